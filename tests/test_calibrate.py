"""Cost model calibration (pysearch/calibrate.py, `pysearch calibrate`, `search --cost-model`).

No timing is asserted: the tests check the chain programs, the model's JSON schema, the errors,
and that the weights load into Program.cost and into a search's configuration.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

import pysearch
from pysearch import calibrate as cal
from pysearch.cli import main
from pysearch.program import parse

HAVE_CC = shutil.which("gcc") is not None or shutil.which("cc") is not None
NARROW = ["--domain", "1", "1.0078125"]
FAST = ["--population", "16", "--sample-size", "256", "--max-instrs", "6", "--verify-every", "2",
        "--no-baselines", "--no-plot", "--checkpoint-every", "0"]


def _model(weights=None) -> dict:
    return {"schema": 1, "kind": cal.KIND, "weights": weights or {"fma": 1.0, "add": 1.0, "div": 12.5}}


@pytest.mark.parametrize("op", cal.FLOAT32_OPS)
def test_chain_programs(op):
    """A chain of k steps uses the op k times (unary ops between k adds) and stays finite on [1, 2)."""
    for k in (1, 2, 10):
        p = cal.chain_program(op, k)
        assert sum(ins.op == op for ins in p.instrs) == k
        assert all(p.live())
        y = pysearch.evaluate(p, np.linspace(1, 2, 65).astype(np.float32))
        assert np.all(np.isfinite(y))


@pytest.mark.skipif(not HAVE_CC, reason="no C compiler")
def test_calibrate_writes_a_model_that_loads(tmp_path):
    """A small calibration: the schema fields, fma as unit, the atomic write, and weights usable by
    Program.cost (no timing asserted)."""
    model = cal.calibrate(("fma", "add", "neg", "div"), n=256, elements=1024, repeat=1, rounds=1,
                          workdir=tmp_path / "work")
    assert model["schema"] == 1 and model["kind"] == cal.KIND
    assert set(model["weights"]) == {"fma", "add", "neg", "div"}
    assert set(model["ns_per_element_per_op"]) == set(model["weights"])
    assert all(w >= cal.MIN_WEIGHT for w in model["weights"].values())
    if model["unit"] == "fma":
        assert model["weights"]["fma"] == 1.0
    path = cal.write_model(tmp_path / "m.json", model)
    assert not list(tmp_path.glob("*.tmp*"))
    back = cal.read_model(path)
    assert back["weights"] == model["weights"]
    w = cal.cost_weights(path)
    p = parse("inputs x\nv1 = fma x 0.5 1\nv2 = div v1 x\nv3 = neg v2\nreturn v3")
    assert p.cost(w) == pytest.approx(w["fma"] + w["div"] + w["neg"])


@pytest.mark.parametrize("doc, needle", [
    ("{not json", "malformed"),
    ('{"schema": 1, "kind": "pysearch cost model", "weights": {"fma": NaN}}', "NaN"),
    (json.dumps([1, 2]), "JSON object"),
    (json.dumps({"schema": 1, "weights": {"fma": 1}}), "not a cost model"),
    (json.dumps({"schema": 7, "kind": cal.KIND, "weights": {"fma": 1}}), "schema 7"),
    (json.dumps(_model({"cube": 1.0})), "unknown op 'cube'"),
    (json.dumps(_model({"exp": 1.0})), "unknown op 'exp'"),
    (json.dumps(_model({"fma": -1.0})), ">= 0"),
    (json.dumps(_model({"fma": True})), ">= 0"),
    (json.dumps({"schema": 1, "kind": cal.KIND, "weights": {}}), "non-empty"),
])
def test_bad_model_files(tmp_path, doc, needle):
    """A bad cost model file is one CalibrationError line naming the problem."""
    f = tmp_path / "m.json"
    f.write_text(doc)
    with pytest.raises(cal.CalibrationError, match=needle) as e:
        cal.read_model(f)
    assert "\n" not in str(e.value)
    with pytest.raises(cal.CalibrationError, match="no such file"):
        cal.read_model(tmp_path / "missing.json")


def test_calibrate_argument_errors():
    with pytest.raises(cal.CalibrationError, match="no float32 op 'exp'"):
        cal.calibrate(("exp",))
    with pytest.raises(cal.CalibrationError, match="rounds"):
        cal.calibrate(("fma",), rounds=0)
    with pytest.raises(cal.CalibrationError, match="cannot run the C compiler"):
        cal.calibrate(("fma",), n=64, elements=64, repeat=1, rounds=1, cc="/nonexistent/cc")


@pytest.mark.parametrize("args, needle", [
    (["calibrate", "--ops", "fma,cube"], "no float32 op 'cube'"),
    (["calibrate", "--rounds", "0"], "--rounds"),
    (["calibrate", "--cc", "/nonexistent/cc", "--ops", "fma"], "cannot run the C compiler"),
])
def test_cli_errors(args, needle, capsys, tmp_path):
    code = main([*args, "--out", str(tmp_path / "m.json")])
    err = capsys.readouterr().err
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1


def test_search_with_a_cost_model(tmp_path, capsys):
    """--cost-model: the weights become the run's cost weights (config, checkpoint, front.json),
    the model is copied into the run; bad files and --cost-weights beside it are one-line errors."""
    m = tmp_path / "m.json"
    cal.write_model(m, _model())
    out = tmp_path / "r"
    assert main(["search", "exp2", *NARROW, "--generations", "1", "--out", str(out), *FAST,
                 "--cost-model", str(m)]) == 0
    want = {"fma": 1.0, "add": 1.0, "div": 12.5}
    assert json.loads((out / "front.json").read_text())["cost_weights"] == want
    assert json.loads((out / "checkpoint.json").read_text())["config"]["cost_weights"] == want
    assert cal.read_model(out / "cost_model.json")["weights"] == want
    capsys.readouterr()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"schema": 1}))
    for extra, needle in ((["--cost-model", str(bad)], "not a cost model"),
                          (["--cost-model", str(m), "--cost-weights", "add=1"], "not both"),
                          (["--cost-model", str(tmp_path / "none.json")], "no such file")):
        code = main(["search", "exp2", "--generations", "1", "--out", str(tmp_path / "x"), *extra])
        err = capsys.readouterr().err
        assert code == 2 and needle in err and len(err.strip().splitlines()) == 1
