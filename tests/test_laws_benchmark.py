"""experiments/laws_benchmark.py: fixed extrapolation splits, and a tiny run's table and RESULT line."""

import importlib.util
import re
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _module():
    spec = importlib.util.spec_from_file_location("laws_benchmark", ROOT / "experiments" / "laws_benchmark.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["laws_benchmark"] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def test_splits_hold_out_the_largest_scale():
    tasks = {t.name: t for t in _module().load_tasks()}
    assert set(tasks) == {"chinchilla", "data_constrained", "vocab", "bnsl_addition", "moe", "lr_bsz", "rectified"}
    for t in tasks.values():
        assert 0 < t.holdout.sum() < len(t.y) and t.X.shape == (len(t.names), len(t.y))
        x = t.X[t.axis]
        if t.name == "lr_bsz":  # SLD's split: the largest D or the largest N
            D = t.X[2]
            assert np.all((x[t.holdout] == x.max()) | (D[t.holdout] == D.max()))
            assert not np.any((x[~t.holdout] == x.max()) | (D[~t.holdout] == D.max()))
        else:
            assert x[t.holdout].min() > x[~t.holdout].max(), t.name
    assert tasks["chinchilla"].y.size == 245 and tasks["moe"].y.size == 221 and tasks["bnsl_addition"].holdout.sum() == 3


def test_tiny_run_prints_the_table(capsys):
    mod = _module()
    assert mod.main(["--budget", "1", "--seeds", "0", "--tasks", "rectified"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^rectified\s+13\s+1\s", out, re.MULTILINE), out
    try:
        import pyoperon  # noqa: F401
    except ImportError:
        assert "pyoperon is not installed" in out and "law_programs_per_cpu_s=" in out
        return
    num = r"(?:[0-9.e+-]+|inf|nan)"
    assert re.search(rf"^RESULT laws_heldout_wins_vs_operon=[01]/1 laws_median_heldout_ratio_vs_operon={num} "
                     rf"law_programs_per_cpu_s={num}$", out, re.MULTILINE), out


def test_unknown_task_exits_2(capsys):
    assert _module().main(["--tasks", "nope"]) == 2
    assert "unknown task" in capsys.readouterr().err
