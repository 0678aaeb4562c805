"""Hardening of law fitting and emergence inputs (issue 10): CSV reading, identifiability, large inputs, fuzzing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pysearch.cli import main
from pysearch.emergence.analysis import analyze_metric, read_results
from pysearch.laws import fitting
from pysearch.laws.data import DataError, Dataset, load_dataset, read_csv
from pysearch.laws.fitting import FitError, bootstrap, fit, fit_law, point_ids
from pysearch.laws.forms import make_form

DATA = Path(__file__).resolve().parents[1] / "data"
DC_CSV = DATA / "sld_data_constrained_scaling_law_data.csv"

POWER_ROWS = "".join(f"{x},{2 + 3 * x ** -0.5!r}\n" for x in (1.0, 2.0, 4.0, 8.0, 16.0, 32.0))


def _write(tmp_path: Path, content: bytes | str, name: str = "d.csv") -> Path:
    p = tmp_path / name
    p.write_bytes(content.encode() if isinstance(content, str) else content)
    return p


def _cli_error(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


class TestCsvReadErrors:
    def test_bom_header_is_read(self, tmp_path):
        """A UTF-8 BOM before the header does not become part of the first column's name."""
        p = _write(tmp_path, b"\xef\xbb\xbfx,y\n" + POWER_ROWS.encode())
        ds = load_dataset(p, ["x"], "y")
        assert ds.x_names == ("x",) and ds.n == 6
        assert read_csv(p).header == ("x", "y")

    def test_emergence_reads_through_the_same_reader(self, tmp_path):
        """`emergence` reads a BOM file too, and reports bytes that are not UTF-8 like `fit` does."""
        p = _write(tmp_path, b"\xef\xbb\xbfparams,acc\n10,0.1\n100,0.2\n1000,0.4\n10000,0.5\n")
        table = read_results(p, "params", ["acc"], holdout="none")
        assert table.x.tolist() == [10.0, 100.0, 1000.0, 10000.0]
        bad = _write(tmp_path, b"params,acc\n10,0.1\n100,\xff\n", "bad.csv")
        with pytest.raises(DataError, match=r"bad\.csv, line 3: byte 0xff at column 5 is not UTF-8"):
            read_results(bad, "params", ["acc"])

    @pytest.mark.parametrize(
        "content, fragment",
        [
            (b"x,y\n1,2\n\xc3\x28,3\n", "line 3: byte 0xc3 at column 1 is not UTF-8"),
            (b"\x7fELF\x02\x01\x01\x00\x00\x00", "line 1: NUL bytes; this is a binary file"),
            ("x,y\n".encode("utf-16"), "the file is UTF-16 text"),
            (b"", "the file is empty"),
            (b"\n \n,\n", "the file is empty"),
            (b"x,y\n\n\n", "no data rows below the header"),
            (b"a,b\n1,2\n", "missing column(s) 'x', 'y'; the file has: a, b"),
            (b'"line\nbreak",y\n1,2\n', "missing column(s) 'x'; the file has: 'line\\nbreak', y"),
            (b"x,y\n1,2\n\n2,abc\n", "data row 2 (line 4), column 'y': 'abc' is not a number"),
            (b"x,y\n1,2\n2,1e999\n", "column 'y': '1e999' is not finite"),
            (b"x,y\n1,2\n1,2,3\n", "line 3: 3 fields, but the header has 2"),
            (b"x,y\n1,2\n2," + b"9" * 200_000 + b"\n", "line 3: field larger than field limit"),
            (b"x,y\n1,2\n2,3\n", "too few points: 2 training row(s)"),
        ],
    )
    def test_each_error_names_the_file_in_one_line(self, tmp_path, capsys, content, fragment):
        """Every read problem is one line on stderr, exit status 2, naming the file and what is wrong."""
        p = _write(tmp_path, content)
        err = _cli_error(capsys, ["fit", str(p), "--x", "x", "--y", "y", "--bootstrap", "0", "--quiet"])
        assert f"{p}" in err and fragment in err, err

    def test_missing_and_directory_paths(self, tmp_path, capsys):
        """A missing path and a directory are named, with what is wrong, for both commands."""
        err = _cli_error(capsys, ["fit", str(tmp_path / "nope.csv"), "--x", "x", "--y", "y", "--quiet"])
        assert f"{tmp_path / 'nope.csv'}: no such file" in err
        err = _cli_error(capsys, ["emergence", str(tmp_path), "--x", "x", "--metric-cols", "y", "--quiet"])
        assert f"{tmp_path}: is a directory" in err

    def test_long_bad_cell_is_shortened(self, tmp_path):
        """A huge non-numeric cell is quoted shortened, so the message stays short."""
        p = _write(tmp_path, "x,y\n1," + "z" * 5000 + "\n")
        with pytest.raises(DataError) as e:
            load_dataset(p, ["x"], "y")
        assert len(str(e.value)) < 200 and "is not a number" in str(e.value)

    def test_quoted_multiline_cell_reports_its_first_line(self, tmp_path):
        """A quoted field spanning lines is one cell; an error in it names the line where its row starts."""
        p = _write(tmp_path, 'x,y\n1,2\n"3\n4",5\n')
        with pytest.raises(DataError, match=r"data row 2 \(line 3\), column 'x'"):
            load_dataset(p, ["x"], "y")

    def test_old_mac_line_endings(self, tmp_path):
        """Lines ended by a lone CR are read as lines."""
        p = _write(tmp_path, POWER_ROWS.replace("\n", "\r").join(["x,y\r", ""]))
        assert load_dataset(p, ["x"], "y").n == 6


class TestDistinctPointsAndIdentifiability:
    def test_identical_rows_are_refused(self, tmp_path, capsys):
        """20 identical rows no longer fit a law with zero error: too few distinct points, naming the file."""
        p = _write(tmp_path, "x,y\n" + "10,2.5\n" * 20)
        err = _cli_error(capsys, ["fit", str(p), "--x", "x", "--y", "y", "--quiet"])
        assert f"{p}: too few distinct points: the 20 training rows have 1 distinct value(s) of (x)" in err
        assert "need at least 4" in err

    def test_distinct_points_count_tuples(self):
        """Repeated (N, D) pairs count once: 10 rows over 5 pairs cannot fit chinchilla's 5 constants."""
        N = np.repeat([1e7, 1e8, 1e9, 1e10, 1e11], 2)
        D = np.repeat([1e9, 1e10, 1e11, 1e12, 1e13], 2)
        X = np.array([N, D])
        assert int(point_ids(X).max()) + 1 == 5
        with pytest.raises(FitError, match=r"5 distinct value\(s\) of \(N, D\).*need at least 6"):
            fit(make_form("chinchilla", ["N", "D"]), X, 1.8 + 400 * N**-0.34 + 300 * D**-0.28)

    def test_confounded_constants_are_reported(self, tmp_path, capsys):
        """With one D for every row, E, B and beta trade off exactly: they are flagged in the JSON and the output."""
        N = np.geomspace(1e7, 1e10, 12)
        D = np.full(12, 1e10)
        y = 1.8 + 400 * N**-0.34 + 300 * D**-0.28
        r = fit(make_form("chinchilla", ["N", "D"]), np.array([N, D]), y, n_starts=2)
        assert sorted(r.unidentified) == ["B", "E", "beta"]
        assert r.jacobian_condition > 1 / fitting.SINGULAR_RTOL
        p = _write(tmp_path, "N,D,loss\n" + "".join(f"{a!r},{b!r},{c!r}\n" for a, b, c in zip(N.tolist(), D.tolist(), y.tolist())))
        out = tmp_path / "out"
        assert main(["fit", str(p), "--x", "N,D", "--y", "loss", "--bootstrap", "0", "--out", str(out)]) == 0
        assert "the data do not constrain E, B, beta" in " ".join(capsys.readouterr().out.split())
        assert sorted(json.loads((out / "fit.json").read_text())["unidentified"]) == ["B", "E", "beta"]
        assert main(["fit", str(p), "--x", "N,D", "--y", "loss", "--bootstrap", "0", "--quiet"]) == 0
        assert "warning: the data do not constrain E, B, beta" in capsys.readouterr().err

    def test_well_posed_fit_flags_nothing(self):
        """Chinchilla on the real data-constrained runs has a moderate condition number and no flag."""
        ds = load_dataset(DC_CSV, ["params", "tokens"], "loss")
        r = fit(make_form("chinchilla", ds.x_names), ds.X, ds.y, n_starts=2)
        assert r.unidentified == [] and r.jacobian_condition < 1e4

    def test_bootstrap_skips_resamples_with_too_few_distinct_points(self):
        """A resample whose rows cover fewer than P + 1 distinct points is counted failed, not fitted."""
        x = np.repeat([1.0, 2.0, 4.0, 8.0], 2)
        y = 2 + 3 * x**-0.5
        form = make_form("power", ["x"])
        r = bootstrap(fit(form, x[None], y, n_starts=2), x[None], y, n_boot=40, seed=3)
        rng = np.random.default_rng(3)
        lacking = sum(len(np.unique(x[rng.integers(0, 8, 8)])) < 4 for _ in range(40))
        assert lacking > 0
        assert r.n_boot_failed == lacking and len(r.boot_samples) == 40 - lacking

    def test_repeated_scales_do_not_count_as_models_for_a_law(self):
        """Five models at only three distinct scales cannot fit the 3-constant power law: it is skipped, saying why."""
        x = np.array([1e9, 1e9, 1e10, 1e10, 1e11, 1e12])
        y = np.array([0.1, 0.12, 0.2, 0.22, 0.35, 0.5])
        rep = analyze_metric(x, y, np.array([False] * 5 + [True]))
        assert "at least 4 training models at distinct scales" in rep["laws"]["power"]["skipped"]
        assert "has 3" in rep["laws"]["power"]["skipped"]
        assert "params" in rep["laws"]["loglinear"]


class TestLargeInputs:
    @staticmethod
    def _noisy_power(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        x = np.exp(rng.uniform(np.log(1e3), np.log(1e7), n))
        return x[None], (1.7 + 40 * x**-0.3) * np.exp(rng.normal(0, 0.01, n))

    def test_subsampled_starts_reach_the_full_data_optimum(self, monkeypatch):
        """Starts chosen on a subsample give the same constants as starts chosen on every row."""
        X, y = self._noisy_power(1500)
        form = make_form("power", ["x"])
        monkeypatch.setattr(fitting, "START_ROWS", 10**9)
        full = fit(form, X, y, n_starts=3)
        monkeypatch.setattr(fitting, "START_ROWS", 200)
        sub = fit(form, X, y, n_starts=3)
        assert sub.n_train == 1500
        np.testing.assert_allclose(sub.theta, full.theta, rtol=1e-5)
        assert sub.objective <= full.objective * (1 + 1e-9)

    def test_block_residuals_equal_whole_residuals(self, monkeypatch):
        """Residuals evaluated in row blocks are bit-identical to one whole evaluation."""
        X, y = self._noisy_power(10000)
        form = make_form("power", ["x"])
        problem = fitting._Problem(form, X, y, "log", "huber", 1e-3)
        U = fitting.to_internal(form, np.array([[40.0, 0.3, 1.7], [30.0, 0.2, 1.0], [50.0, 0.4, 2.0]]))
        whole = problem.residuals(U)
        monkeypatch.setattr(fitting, "_BLOCK", 64)  # forces 4096-row blocks
        assert np.array_equal(problem.residuals(U), whole)

    def test_numbers_converted_in_blocks_keep_their_lines(self, tmp_path, monkeypatch):
        """Numeric columns converted block by block while reading equal a whole read, and errors keep their line."""
        from pysearch.laws import data

        rows = [f"{i},{i * 0.5!r}" for i in range(1, 11)]
        p = _write(tmp_path, "x,y\n" + "\n".join(rows[:4] + [""] + rows[4:]) + "\n")
        whole = read_csv(p, ["x", "y"], numeric=["x", "y"])
        monkeypatch.setattr(data, "_ROWS_PER_BLOCK", 3)
        blocked = read_csv(p, ["x", "y"], numeric=["x", "y"])
        assert np.array_equal(blocked.values["y"], whole.values["y"]) and blocked.text == {}
        assert blocked.lines.tolist() == [2, 3, 4, 5, 7, 8, 9, 10, 11, 12]
        rows[7] = "8,oops"
        p = _write(tmp_path, "x,y\n" + "\n".join(rows[:4] + [""] + rows[4:]) + "\n")
        with pytest.raises(DataError, match=r"data row 8 \(line 10\), column 'y': 'oops' is not a number"):
            read_csv(p, ["x", "y"], numeric=["x", "y"])

    def test_reader_keeps_only_the_columns_asked_for(self):
        """Only the requested columns are held: numeric ones as float64 arrays, the others as text."""
        t = read_csv(DC_CSV, ["params", "id", "loss"], numeric=["params", "loss"])
        assert list(t.values) == ["params", "loss"] and list(t.text) == ["id"] and t.n_rows == 182
        assert t.values["loss"].dtype == np.float64 and t.numbers("loss") is t.values["loss"]

    def test_bootstrap_reports_progress(self):
        """The progress callback sees every refit, in order, with the total."""
        x = np.geomspace(1, 100, 12)
        ds = Dataset.from_arrays({"x": x}, 2 + 3 * x**-0.5)
        calls = []
        fit_law(ds, make_form("power", ["x"]), n_boot=6, n_starts=2, progress=lambda *a: calls.append(a))
        assert [c[:2] for c in calls] == [(i, 6) for i in range(1, 7)]

    def test_cli_progress_lines_when_not_a_terminal(self, tmp_path, capsys):
        """Without a terminal, `fit` writes a progress line per tenth of the bootstrap to stderr; --quiet none."""
        p = _write(tmp_path, "x,y\n" + "".join(f"{x!r},{2 + 3 * x ** -0.5!r}\n" for x in np.geomspace(1, 100, 12).tolist()))
        args = ["fit", str(p), "--x", "x", "--y", "y", "--bootstrap", "10", "--starts", "2"]
        assert main(args) == 0
        err = capsys.readouterr().err
        assert [line for line in err.splitlines() if line.startswith("bootstrap:")] == [
            f"bootstrap: {i}/10 refits (0 failed)" for i in range(1, 11)
        ]
        assert main(args + ["--quiet"]) == 0
        assert "bootstrap:" not in capsys.readouterr().err


class TestOutputDirectory:
    def test_out_that_is_a_file_is_a_one_line_error(self, tmp_path, capsys):
        """--out naming a file, or a path through a file, is a one-line error for fit and emergence."""
        data = _write(tmp_path, "x,y\n" + POWER_ROWS)
        blocker = _write(tmp_path, "not a directory", "blocker")
        fit_args = ["fit", str(data), "--x", "x", "--y", "y", "--bootstrap", "0", "--quiet"]
        err = _cli_error(capsys, fit_args + ["--out", str(blocker)])
        assert f"--out {blocker}: exists and is not a directory" in err
        emergence_args = ["emergence", str(data), "--x", "x", "--metric-cols", "y", "--quiet", "--no-plots"]
        err = _cli_error(capsys, emergence_args + ["--out", str(blocker / "sub")])
        assert "a part of the path is a file" in err

# ----------------------------------------------------------------------------- fuzzing
_CELLS = st.one_of(
    st.sampled_from(
        ["1", "2.5", "-3", "1e308", "1e999", "-1e999", "nan", "NaN", "inf", "-Infinity", "", " ", "abc", "1,5",
         '"1"', '"2,5"', '"a""b"', '"line\nbreak"', "0x10", "1_000", "\u0661", "\u00e9", "9" * 400]
    ),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=8),
)
_ROW = st.lists(_CELLS, min_size=0, max_size=4).map(",".join)


@st.composite
def _csv_bytes(draw) -> bytes:
    header = draw(st.sampled_from(["x,y", "x,y,z", "y,x", "x", "a,b", " x , y ", "x,x,y", ""]))
    rows = draw(st.lists(_ROW, max_size=8))
    eol = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    text = eol.join([header, *rows]) + draw(st.sampled_from(["", eol]))
    data = text.encode("utf-8", "surrogatepass")
    if draw(st.booleans()):
        data = b"\xef\xbb\xbf" + data
    if draw(st.booleans()):  # splice in raw bytes: invalid UTF-8, NUL, stray quotes
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(min_size=1, max_size=4)) + data[at:]
    return data


class TestCsvFuzz:
    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(data=_csv_bytes())
    def test_fit_reader_succeeds_or_raises_data_error(self, tmp_path_factory, data):
        """Arbitrary CSV bytes either load as finite float columns or raise a one-line DataError naming the file."""
        p = tmp_path_factory.getbasetemp() / "fuzz_fit.csv"
        p.write_bytes(data)
        try:
            ds = load_dataset(p, ["x"], "y")
        except DataError as e:
            assert str(p) in str(e) and "\n" not in str(e)
            return
        assert ds.X.shape == (1, ds.n) and ds.n >= 1
        assert np.all(np.isfinite(ds.X)) and np.all(np.isfinite(ds.y))
        try:  # a holdout rule over the same data: a one-line ValueError if it leaves nothing to fit
            load_dataset(p, ["x"], "y", "largest:1")
        except ValueError as e:
            assert "\n" not in str(e) and "--holdout 'largest:1'" in str(e)

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(data=st.one_of(_csv_bytes(), st.binary(max_size=64)))
    def test_emergence_reader_succeeds_or_raises_data_error(self, tmp_path_factory, data):
        """The emergence reader meets the same bytes with a table or a one-line DataError naming the file."""
        p = tmp_path_factory.getbasetemp() / "fuzz_emergence.csv"
        p.write_bytes(data)
        try:
            table = read_results(p, "x", ["y"], holdout="none")
        except DataError as e:
            assert str(p) in str(e) and "\n" not in str(e)
            return
        assert np.all(np.isfinite(table.x)) and np.all(table.x > 0) and len(table.metrics["y"]) == len(table.x)

