"""Capability-space analysis (observational scaling laws): PCA of logit benchmark scores, each
component linear in log scale within a family, held-out models predicted from it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.special import expit

from pysearch.cli import main
from pysearch.emergence import read_results
from pysearch.emergence.analysis import ResultsTable
from pysearch.emergence.capability import (
    capability_analysis,
    family_line,
    fit_capability,
    impute_low_rank,
    observational_analysis,
)
from pysearch.emergence.links import MetricRangeError, MetricScale

OBSSCALING = Path(__file__).resolve().parents[1] / "data" / "obsscaling_base_llm_benchmark_eval.csv"
BENCHMARKS = ["MMLU", "ARC-C", "HellaSwag", "Winograd", "TruthfulQA", "GSM8K", "XWinograd", "HumanEval"]


def _synthetic(rng, n_fam=5, per_fam=6, m=6, k=2, chance=None):
    """Benchmarks that are exactly sigmoid(linear in k capabilities), each capability linear in log10 x
    with a family offset: the model the analysis assumes, so it must recover held-out models."""
    fams, logx = [], []
    for f in range(n_fam):
        fams += [f"f{f}"] * per_fam
        logx += list(np.sort(rng.uniform(0, 4, per_fam)))
    logx = np.array(logx)
    offset = rng.normal(0, 1, (n_fam, k))
    slope = rng.uniform(0.3, 0.8, k)
    caps = offset[[int(f[1:]) for f in fams]] + logx[:, None] * slope - 1.0
    w = rng.uniform(0.5, 1.5, (k, m))
    b = rng.normal(0, 0.5, m)
    floor = 0.0 if chance is None else chance
    y = floor + (1 - floor) * expit(caps @ w + b)
    holdout = np.zeros(len(fams), bool)
    holdout[per_fam - 1 :: per_fam] = True  # the largest model of each family
    return ResultsTable("x", 10.0**logx, {f"b{j}": y[:, j] for j in range(m)}, holdout,
                        [f"m{i}" for i in range(len(fams))], [], families=fams)


class TestSynthetic:
    def test_recovers_held_out_models(self):
        """On data from the assumed model, held-out predictions are exact (to 1e-9)."""
        table = _synthetic(np.random.default_rng(0))
        rep = capability_analysis(table, n_components=2)
        assert rep["mae"]["capability"] < 1e-9
        assert sum(rep["explained_variance"]) == pytest.approx(1.0)
        assert rep["n_cells"]["capability"] == 5 * 6 and rep["unseen_families"] == []
        # with too few components the same data is not recovered: the test can fail
        assert capability_analysis(table, n_components=1)["mae"]["capability"] > 1e-3

    def test_missing_scores_are_imputed(self):
        """Over 20 training scores missing: the low-rank fill still recovers the held-out models."""
        rng = np.random.default_rng(1)
        table = _synthetic(rng, chance=0.25)
        drop = rng.random((table.x.size, len(table.metrics))) < 0.25
        drop[table.holdout] = False
        drop[drop.sum(axis=1) > 3] = False  # every model keeps >= 3 of its 6 scores
        assert drop.sum() > 20
        for j, v in enumerate(table.metrics.values()):
            v[drop[:, j]] = np.nan
        rep = capability_analysis(table, n_components=2, chance=0.25)
        assert rep["mae"]["capability"] < 1e-4
        for m in rep["metrics"].values():
            assert all(0.25 <= p <= 1 for p in m["capability_pred"])

    def test_observational_target_recovered(self):
        """Target predicted from the other benchmarks' components: exact on data from the model, also for a
        held-out model whose family was never fitted (it needs no family intercept)."""
        table = _synthetic(np.random.default_rng(4))
        table.families[-1] = "new"
        rep = observational_analysis(table, "b5", n_components=2)
        assert rep["n_cells"] == 5 and rep["predictors"] == ["b0", "b1", "b2", "b3", "b4"]
        assert rep["mae"]["observational"] < 1e-9
        assert rep["mae"]["capability"] > 1e-3  # scale alone cannot place the unseen family
        with pytest.raises(MetricRangeError, match="--target 'b9' is not among the metric columns"):
            observational_analysis(table, "b9")

    def test_impute_low_rank_exact(self):
        rng = np.random.default_rng(2)
        full = rng.normal(size=6) + rng.normal(size=(30, 2)) @ rng.normal(size=(2, 6))  # mean + rank 2
        drop = rng.random(full.shape) < 0.2
        drop[drop.sum(axis=1) > 3] = False  # each row keeps >= 3 values, enough to place it
        s = np.where(drop, np.nan, full)
        assert drop.sum() > 20
        assert np.max(np.abs(impute_low_rank(s, 2) - full)) < 1e-6
        assert np.max(np.abs(impute_low_rank(s, 1) - full)) > 1e-2  # too low a rank cannot

    def test_unseen_family_uses_the_mean_intercept(self):
        table = _synthetic(np.random.default_rng(3))
        table.families[-1] = "new"  # a held-out model of a family never fitted
        rep = capability_analysis(table, n_components=2)
        assert rep["unseen_families"] == ["new"] and rep["holdout_families"][-1] == "new"

    def test_slope_needs_two_scales_in_a_family(self):
        with pytest.raises(MetricRangeError, match="slope in log scale is undetermined"):
            family_line(np.array([1.0, 2.0, 3.0]), ["a", "b", "c"], np.array([1.0, 2.0, 3.0]))

    def test_fit_rejects_unbounded(self):
        with pytest.raises(MetricRangeError, match="'loss' is unbounded"):
            fit_capability(np.array([1.0, 10.0, 100.0]), ["a"] * 3, np.ones((3, 2)),
                           [MetricScale(0, 1), MetricScale()], ["acc", "loss"], n_components=1)


class TestRealData:
    @pytest.fixture(scope="class")
    @classmethod
    def report(cls):
        table = read_results(OBSSCALING, "FLOPs (1E21)", BENCHMARKS, holdout="largest:10", label_col="Model",
                             family_col="Model Family")
        return capability_analysis(table)

    def test_heldout_error_beats_the_direct_law(self, report):
        """12 largest-compute models held out (93 scored cells): the capability model's mean absolute error
        is finite, below 0.1 accuracy and below the direct per-benchmark law's on the same cells (0.091 vs
        0.142 when written)."""
        mae = report["mae"]
        assert report["n_cells"] == {"capability": 93, "direct_law": 93, "direct_family": 93}
        assert np.isfinite(mae["capability"]) and mae["capability"] < 0.1
        assert mae["capability"] < 0.8 * mae["direct_law"]
        assert mae["capability"] < mae["direct_family"] + 0.01  # on par with family lines per benchmark

    def test_components_and_range(self, report):
        assert report["components"] == 3 and report["explained_variance"][0] > 0.6
        assert len(report["holdout_models"]) == 12 and "meta-llama/Meta-Llama-3.1-405B-FP8" in report["holdout_models"]
        for name, m in report["metrics"].items():
            assert all(0.0 <= v <= 1.0 for v in m["capability_pred"] + m["direct_family_pred"]), name
            assert all(v is None or 0.0 <= v <= 1.0 for v in m["direct_law_pred"]), name


    @pytest.mark.parametrize("target, before", [("GSM8K", 0.239), ("MMLU", 0.171), ("HumanEval", 0.165)])
    def test_observational_beats_scale_alone(self, target, before):
        """The held-out models' other benchmarks predict the target better than any scale-only method on
        the same models (direct law MAE in ``before`` when written; observational 0.105, 0.054, 0.121)."""
        table = read_results(OBSSCALING, "FLOPs (1E21)", BENCHMARKS, holdout="largest:10", label_col="Model",
                             family_col="Model Family")
        rep = observational_analysis(table, target)
        mae = rep["mae"]
        assert rep["n_cells"] >= 11
        assert mae["direct_law"] == pytest.approx(before, abs=0.002)
        assert mae["observational"] < 0.8 * min(mae["capability"], mae["direct_law"], mae["direct_family"])
        assert all(v is None or 0 <= v <= 1 for p in rep["pred"].values() for v in p)


def test_command(tmp_path, capsys):
    out = tmp_path / "cap"
    rc = main(["emergence", str(OBSSCALING), "--x", "FLOPs (1E21)", "--metric-cols", ",".join(BENCHMARKS),
               "--label-col", "Model", "--family-col", "Model Family", "--holdout", "largest:10", "--capability",
               "--components", "2", "--out", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "held-out mean absolute error" in text and "all cells" in text and "DeepSeek-V2" in text
    rep = json.loads((out / "capability.json").read_text())
    assert rep["kind"] == "capability" and rep["schema"] == 1 and rep["components"] == 2
    assert set(rep["metrics"]) == set(BENCHMARKS)


def test_command_target(tmp_path, capsys):
    out = tmp_path / "obs"
    argv = ["emergence", str(OBSSCALING), "--x", "FLOPs (1E21)", "--metric-cols", "MMLU,ARC-C,HellaSwag,GSM8K",
            "--family-col", "Model Family", "--holdout", "largest:3", "--capability", "--target", "GSM8K"]
    assert main([*argv, "--out", str(out)]) == 0
    assert "mean absolute error" in capsys.readouterr().out
    rep = json.loads((out / "capability.json").read_text())
    assert rep["kind"] == "capability-observational" and rep["target"] == "GSM8K"
    assert main([*argv[:-1], "BLEU"]) == 2
    assert "--target 'BLEU' is not among the metric columns" in capsys.readouterr().err
    assert main([*argv[:10], "--target", "GSM8K"]) == 2
    assert "--target applies to --capability only" in capsys.readouterr().err
