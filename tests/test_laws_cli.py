"""``pysearch fit`` end to end on the real data in data/ and on a synthetic CSV."""

import json
from pathlib import Path

import numpy as np
import pytest

from pysearch.cli import main
from pysearch.commands.fit import parse_duration

DATA = Path(__file__).resolve().parents[1] / "data"
BNSL_CSV = DATA / "bnsl_4digit_addition_ce_vs_dataset_size.csv"
DC_CSV = DATA / "sld_data_constrained_scaling_law_data.csv"
CONTRACT = {"schema", "form", "expression", "params", "ci", "train_error", "holdout_error", "error_metric"}


def _check_outputs(out: Path) -> dict:
    doc = json.loads((out / "fit.json").read_text())
    assert CONTRACT <= set(doc)
    assert doc["schema"] == 1
    assert set(doc["ci"]) == set(doc["params"])
    for lo, hi in doc["ci"].values():
        assert lo <= hi
    assert (out / "fit.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return doc


def test_bnsl_on_real_addition_curve(tmp_path, capsys):
    """BNSL on the 4-digit addition curve: fit.json contract, PNG, and the extrapolation error."""
    rc = main(
        [
            "fit", str(BNSL_CSV), "--x", "train_dataset_size", "--y", "test_cross_entropy",
            "--form", "bnsl", "--holdout", "split=extrapolate", "--bootstrap", "10", "--starts", "3",
            "--out", str(tmp_path),
        ]
    )
    assert rc == 0
    doc = _check_outputs(tmp_path)
    assert doc["form"] == "bnsl"
    assert list(doc["params"]) == ["a", "b", "c0", "c1", "d1", "f1"]
    assert doc["error_metric"] == "rmse_log_y" and doc["n_holdout"] == 3 and doc["n_train"] == 14
    assert doc["train_error"] < 0.005
    assert doc["holdout_error"] is not None and doc["holdout_error"] < 0.05
    assert "held out" in capsys.readouterr().out
    assert set(doc["ci_at_bound"]) <= set(doc["params"])


def test_chinchilla_on_real_data_constrained_runs(tmp_path):
    """Chinchilla on the data-constrained runs names its constants E, A, B, alpha, beta."""
    rc = main(
        [
            "fit", str(DC_CSV), "--x", "params,unique_tokens", "--y", "loss", "--form", "chinchilla",
            "--holdout", "largest:2", "--bootstrap", "10", "--starts", "2", "--out", str(tmp_path), "--quiet",
        ]
    )
    assert rc == 0
    doc = _check_outputs(tmp_path)
    assert list(doc["params"]) == ["E", "A", "B", "alpha", "beta"]
    assert doc["transform"] == "log-y" and doc["loss"] == "huber" and doc["huber_delta"] == 1e-3
    assert doc["expression"] == "E + A / params^alpha + B / unique_tokens^beta"
    assert 0 < doc["holdout_error"] < 0.2


def test_auto_on_synthetic_csv(tmp_path):
    """--form auto writes the chosen law, its front and constants with intervals."""
    x = np.geomspace(1, 1000, 25)
    csv = tmp_path / "law.csv"
    csv.write_text("x,y\n" + "".join(f"{float(a)!r},{float(3 * a**-0.5 + 1)!r}\n" for a in x))
    out = tmp_path / "out"
    rc = main(
        [
            "fit", str(csv), "--x", "x", "--y", "y", "--form", "auto", "--holdout", "largest:3",
            "--generations", "80", "--target-error", "1e-10", "--population", "48", "--budget", "2m", "--loss", "lsq", "--bootstrap", "20", "--out", str(out),
            "--quiet",
        ]
    )
    assert rc == 0
    doc = _check_outputs(out)
    assert doc["form"] == "auto" and doc["pareto"] and sum(r["chosen"] for r in doc["pareto"]) == 1
    assert doc["program"]["schema"] == 1 and doc["program"]["dtype"] == "float64"
    assert list(doc["params"]) == [f"c{i + 1}" for i in range(len(doc["params"]))]
    assert doc["train_error"] < 1e-6 and doc["holdout_error"] < 1e-6


@pytest.mark.parametrize(
    "args, message",
    [
        (["--x", "N,D", "--y", "loss"], "missing column(s) 'N', 'D'"),
        (["--x", "params", "--y", "loss", "--form", "chinchilla"], "takes 2 --x column(s)"),
        (["--x", "params,unique_tokens", "--y", "loss", "--holdout", "largest:99"], "distinct value"),
        (["--x", "params,unique_tokens", "--y", "loss", "--budget", "5 minutes"], "bad duration"),
        (["--x", "params,unique_tokens", "--y", "loss", "--bootstrap", "1"], "--bootstrap must be 0 or at least 2"),
    ],
)
def test_bad_input_exits_2_with_one_line(args, message, capsys):
    """User mistakes print one line naming the problem and exit with status 2."""
    rc = main(["fit", str(DC_CSV)] + args + ["--quiet"])
    err = capsys.readouterr().err
    assert rc == 2
    assert message in err and err.count("\n") == 1


def test_too_few_points_message(tmp_path, capsys):
    """Too few rows for the form's constants is a user error, not a silent fit."""
    csv = tmp_path / "few.csv"
    csv.write_text("N,D,loss\n1e8,1e9,3.1\n1e9,1e10,2.5\n1e10,1e11,2.2\n")
    assert main(["fit", str(csv), "--x", "N,D", "--y", "loss", "--quiet"]) == 2
    assert "too few points: 3 training row(s) for the 5 constants of 'chinchilla'" in capsys.readouterr().err


def test_parse_duration():
    """Budgets accept seconds, minutes, hours and combinations."""
    assert parse_duration("90") == 90 and parse_duration("5m") == 300 and parse_duration("1m30s") == 90
    assert parse_duration("1.5h") == 5400
    for bad in ("", "5 m", "-3s", "0s", "m"):
        with pytest.raises(ValueError):
            parse_duration(bad)
