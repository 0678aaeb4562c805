"""Loading scaling data from CSV: validation messages and holdout selection."""

from pathlib import Path

import numpy as np
import pytest

from pysearch.laws.data import DataError, Dataset, load_dataset, parse_holdout

DATA = Path(__file__).resolve().parents[1] / "data"
BNSL_CSV = DATA / "bnsl_4digit_addition_ce_vs_dataset_size.csv"
DC_CSV = DATA / "sld_data_constrained_scaling_law_data.csv"


def _write(tmp_path, text, name="d.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


class TestHoldout:
    def test_split_column_on_real_bnsl_data(self):
        """split=extrapolate holds out exactly the 3 largest dataset sizes of the BNSL file."""
        ds = load_dataset(BNSL_CSV, ["train_dataset_size"], "test_cross_entropy", "split=extrapolate")
        assert ds.holdout.sum() == 3 and ds.n == 17
        assert ds.X[0, ds.holdout].tolist() == [800.0, 864.0, 928.0]
        assert ds.train[1].shape == (14,)

    def test_largest_k_of_first_x(self):
        """largest:2 holds out every row whose first x takes one of its 2 largest distinct values."""
        ds = load_dataset(DC_CSV, ["params", "unique_tokens"], "loss", "largest:2")
        big = np.unique(ds.X[0])[-2:]
        assert np.array_equal(ds.holdout, np.isin(ds.X[0], big))
        assert ds.holdout.sum() == 17

    def test_largest_k_named_column_and_compare(self, tmp_path):
        """largest:K:COL uses COL; COL>=V and COL>V compare numerically."""
        p = _write(tmp_path, "x,z,y\n1,5,1\n2,4,2\n3,3,3\n4,2,4\n4,1,5\n")
        assert load_dataset(p, ["x"], "y", "largest:1:z").holdout.tolist() == [True, False, False, False, False]
        assert load_dataset(p, ["x"], "y", "largest:1").holdout.tolist() == [False, False, False, True, True]
        assert load_dataset(p, ["x"], "y", "x>=3").holdout.tolist() == [False, False, True, True, True]
        assert load_dataset(p, ["x"], "y", "x>3").holdout.tolist() == [False, False, False, True, True]
        assert load_dataset(p, ["x"], "y", "z=4").holdout.tolist() == [False, True, False, False, False]

    @pytest.mark.parametrize(
        "spec, message",
        [
            ("largest:0", "K a positive integer"),
            ("largest:x", "K a positive integer"),
            ("bogus", "expected largest:K"),
            ("", "empty --holdout"),
        ],
    )
    def test_bad_specs(self, spec, message):
        """Malformed holdout specs are rejected with the accepted syntax."""
        with pytest.raises(ValueError, match=message):
            parse_holdout(spec)

    def test_rules_that_select_nothing_or_everything(self, tmp_path):
        """A holdout must leave rows on both sides, and K must leave values to fit."""
        p = _write(tmp_path, "x,y\n1,1\n2,2\n3,3\n")
        with pytest.raises(ValueError, match="selects no rows"):
            load_dataset(p, ["x"], "y", "x>10")
        with pytest.raises(ValueError, match="selects every row"):
            load_dataset(p, ["x"], "y", "x>=0")
        with pytest.raises(ValueError, match="only 3 distinct value"):
            load_dataset(p, ["x"], "y", "largest:3")
        with pytest.raises(ValueError, match="names column 'q'"):
            load_dataset(p, ["x"], "y", "q=1")


class TestValidation:
    def test_missing_column(self):
        """A missing column is named, with the columns the file does have."""
        with pytest.raises(ValueError, match=r"missing column\(s\) 'N'.*the file has: id, params"):
            load_dataset(DC_CSV, ["N", "tokens"], "loss")

    def test_non_numeric_value(self, tmp_path):
        """A non-numeric cell names its row, line and column."""
        p = _write(tmp_path, "x,y\n1,2\n2,abc\n")
        with pytest.raises(ValueError, match=r"data row 2 \(line 3\), column 'y': 'abc' is not a number"):
            load_dataset(p, ["x"], "y")

    def test_empty_and_non_finite_cells(self, tmp_path):
        """Empty cells and inf/nan are refused, not read as numbers."""
        with pytest.raises(ValueError, match="'' is empty"):
            load_dataset(_write(tmp_path, "x,y\n1,\n2,3\n"), ["x"], "y")
        with pytest.raises(ValueError, match="'nan' is not finite"):
            load_dataset(_write(tmp_path, "x,y\n1,nan\n2,3\n", "b.csv"), ["x"], "y")

    def test_structure_errors(self, tmp_path):
        """Empty files, ragged rows, duplicate headers and x == y are reported."""
        with pytest.raises(ValueError, match="the file is empty"):
            load_dataset(_write(tmp_path, ""), ["x"], "y")
        with pytest.raises(ValueError, match="line 3: 3 fields, but the header has 2"):
            load_dataset(_write(tmp_path, "x,y\n1,2\n1,2,3\n", "r.csv"), ["x"], "y")
        with pytest.raises(ValueError, match="duplicate column name"):
            load_dataset(_write(tmp_path, "x,x,y\n1,2,3\n", "h.csv"), ["x"], "y")
        with pytest.raises(ValueError, match="both an x and the y"):
            load_dataset(_write(tmp_path, "x,y\n1,2\n", "s.csv"), ["y"], "y")

    def test_missing_file(self, tmp_path):
        """A missing file raises DataError naming it (the CLI prints it as one line)."""
        with pytest.raises(DataError, match=r"nope\.csv: no such file"):
            load_dataset(tmp_path / "nope.csv", ["x"], "y")

    def test_from_arrays_checks_values(self):
        """Arrays get the same finiteness check as CSV cells."""
        with pytest.raises(ValueError, match="column 'y'"):
            Dataset.from_arrays({"x": [1.0, 2.0]}, [1.0, np.inf])
