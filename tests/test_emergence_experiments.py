"""The emergence experiments: skip cleanly without torch; tiny-model pieces are right with it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = ROOT / "experiments"
sys.path.insert(0, str(EXPERIMENTS))

# Run a script as if torch were not installed: a finder that refuses to import it.
_NO_TORCH = """
import importlib.abc, runpy, sys
class NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("No module named 'torch'")
sys.meta_path.insert(0, NoTorch())
sys.argv = [{path!r}] + {args!r}
runpy.run_path({path!r}, run_name="__main__")
"""


def _run_without_torch(script: str, args: list[str]) -> subprocess.CompletedProcess:
    code = _NO_TORCH.format(path=str(EXPERIMENTS / script), args=args)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)


def test_tiny_transformers_skip_without_torch():
    """Without torch the experiment prints why it skipped and exits 0."""
    r = _run_without_torch("emergence_tiny_transformers.py", [])
    assert r.returncode == 0, r.stderr
    assert "skipped: torch not installed (pip install '.[torch]')" in r.stdout


def test_frontier_skips_without_torch(tmp_path):
    """The compute-frontier search needs torch and says so; it exits 0."""
    r = _run_without_torch("evolve_configs.py", ["frontier", "--out", str(tmp_path)])
    assert r.returncode == 0, r.stderr
    assert "skipped: torch not installed" in r.stdout


def test_metric_search_on_toy_model(tmp_path):
    """The metric/transformation GA runs without torch and finds the exhaustive optimum."""
    import json

    r = _run_without_torch("evolve_configs.py", ["metrics", "--source", "toy", "--out", str(tmp_path)])
    assert r.returncode == 0, r.stderr
    res = json.loads((tmp_path / "metric_predictability.json").read_text())
    assert res["schema"] == 1
    best = min(t["holdout_error"] for t in res["exhaustive"] if t["holdout_error"] is not None)
    assert res["ga_best"]["holdout_error"] == pytest.approx(best)
    # exact match is the least predictable metric of the toy model; log(-log PU) beats raw PU
    per = res["best_per_metric"]
    assert per["exact_match"]["holdout_error"] == max(v["holdout_error"] for v in per.values())
    pu = {(t["transform"], t["law"]): t["holdout_error"] for t in res["exhaustive"] if t["metric"] == "passuntil"}
    assert pu[("log(-log y)", "line")] < pu[("none", "line")] / 3


def test_pysearch_does_not_import_torch():
    """Importing the emergence package and command never loads torch."""
    code = "import sys, pysearch.emergence, pysearch.commands.emergence; print('torch' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"


def test_addition_encoding():
    """123 + 456 = 579 is written with zero-padded operands and the 4-digit sum reversed."""
    from tiny_models.addition import EQUALS, PLUS, AdditionTask

    task = AdditionTask(3)
    seq = task.encode(np.array([123]), np.array([456]))
    assert seq.tolist() == [[1, 2, 3, PLUS, 4, 5, 6, EQUALS, 9, 7, 5, 0]]
    assert seq.shape[1] == task.seq_len
    a, b = task.test_set(50, seed=1)
    assert len(set(zip(a.tolist(), b.tolist()))) == 50


class TestWithTorch:
    @pytest.fixture(autouse=True)
    def _torch(self):
        pytest.importorskip("torch", reason="torch not installed (pip install '.[torch]')")

    def test_param_count_formula(self):
        """The closed-form parameter count matches the built model."""
        from tiny_models.model import TinyTransformer, n_params, param_count

        for w, d in [(8, 1), (16, 2), (48, 3)]:
            assert n_params(TinyTransformer(12, 12, w, d)) == param_count(12, 12, w, d)

    def test_sampling_matches_teacher_forced_probability(self):
        """PassUntil sampling of a trained model agrees with the product of its per-token probabilities."""
        import torch

        from pysearch.emergence import pass_until_score, sample_until
        from tiny_models.addition import AdditionTask
        from tiny_models.train import TrainConfig, measure, sample_successes, train

        torch.set_num_threads(1)
        task = AdditionTask(1)
        a, b = task.test_set(3, seed=0)
        seq = task.encode(a, b)
        model, info = train(task, TrainConfig(16, 1, 40, batch=64, lr=3e-3, seed=0), exclude=set())
        assert info["params"] > 0
        m = measure(model, task, seq)
        assert m.token_probs.shape == (3, task.answer_len)
        assert np.all((m.token_probs > 0) & (m.token_probs <= 1))
        exact = np.prod(m.token_probs, axis=1)
        gen = torch.Generator().manual_seed(0)
        for i in range(3):
            buf: list[bool] = []

            def success(_rng, i=i):
                if not buf:
                    buf.extend(sample_successes(model, task, seq[i], 256, gen).tolist())
                return buf.pop()

            count = sample_until(success, 20, 200_000, np.random.default_rng(0))
            est = pass_until_score([count], 20, confidence=0.999)
            assert est.lo <= exact[i] <= est.hi
