"""The recorded tiny-transformer ladder (issue 17): its analysis reruns without torch and says what it claims."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = ROOT / "experiments"
sys.path.insert(0, str(EXPERIMENTS))

from tiny_models import ladder  # noqa: E402
from tiny_models.recall import RecallTask  # noqa: E402

RECORDED = EXPERIMENTS / "tiny_models" / "recorded_recall_ladder.csv"  # first round, seed 0
RECORDED_SEED1 = EXPERIMENTS / "tiny_models" / "recorded_recall_ladder_seed1.csv"  # second round, seed 1
RECORDED_3SEEDS = EXPERIMENTS / "tiny_models" / "recorded_recall_ladder_3seeds.csv"  # third round, seeds 2, 3, 4
RECORDED_R4 = EXPERIMENTS / "tiny_models" / "recorded_recall_ladder_r4.csv"  # fourth round, seeds 5..9, new recipe
RECORDED_R5 = EXPERIMENTS / "tiny_models" / "recorded_recall_ladder_r5.csv"  # fifth round, seeds 10..17, r4's recipe
RECORDED_R6 = EXPERIMENTS / "tiny_models" / "recorded_recall_ladder_r6.csv"  # sixth round, seeds 30..35, r4's recipe
RECORDS = [RECORDED, RECORDED_SEED1, RECORDED_3SEEDS, RECORDED_R4, RECORDED_R5, RECORDED_R6]


def _recipe_seed(meta: dict) -> int:
    return meta["recipe"]["seed"] if "seed" in meta["recipe"] else meta["recipe"]["seeds"][0]
RESULT_RE = re.compile(
    r"^RESULT passuntil_pred_rel_dev=(\S+) loss_pred_rel_dev=(\S+) small_half_max_exact_match=(\S+) "
    r"exact_match_emergence_score=(\S+) edit_distance_emergence_score=(\S+)$", re.M)


@pytest.fixture(scope="module")
def rows():
    return ladder.read_ladder(RECORDED)


@pytest.fixture(scope="module")
def meta():
    return json.loads(RECORDED.with_suffix(".json").read_text())


@pytest.fixture(scope="module")
def analysis(rows, meta):
    return ladder.analyze(rows, seed=meta["recipe"]["seed"], version=ladder.analysis_version(meta))


@pytest.fixture(scope="module", params=RECORDS, ids=lambda p: p.stem)
def record(request):
    """(path, rows, meta, analysis) of each recorded ladder, analysed as its prediction was made."""
    rows = ladder.read_ladder(request.param)
    meta = json.loads(request.param.with_suffix(".json").read_text())
    return request.param, rows, meta, ladder.analyze(rows, seed=_recipe_seed(meta),
                                                     version=ladder.analysis_version(meta))


def test_ladder_shape(rows, meta):
    """>= 8 models over >= 2.5 decades, one recipe, one fixed test set, loss falling with size."""
    assert meta["schema"] == 1
    n = np.array([r["params"] for r in rows], float)
    assert len(rows) >= 8
    assert math.log10(n[-1] / n[0]) >= 2.5
    for col in ("steps", "batch", "seed", "depth", "n_items", "n_items_10x", "answer_tokens", "pu_k", "pu_budget"):
        assert len({r[col] for r in rows}) == 1, col
    assert rows[0]["n_items_10x"] == 10 * rows[0]["n_items"]
    loss = [r["per_token_loss"] for r in rows]
    assert all(b < a for a, b in zip(loss, loss[1:])), loss
    # the learning rate is the recorded width rule, the same data for every model
    for r in rows:
        assert r["lr"] == pytest.approx(meta["recipe"]["lr_base"] * min(1.0, 64 / r["width"]) ** 0.5)


def test_second_ladder_shape_and_provenance():
    """The second round's ladder (seed 1): same recipe and test set as the first, >= 8 models over
    >= 2.5 decades; the prediction was made (with analysis version 2) before the largest model's
    training started. Its loss is NOT monotone: w96 measured above w64 (see RESULTS.md); this test
    pins that to the one pair and a rise under 5%, so another inversion or a larger one fails it."""
    rows = ladder.read_ladder(RECORDED_SEED1)
    meta = json.loads(RECORDED_SEED1.with_suffix(".json").read_text())
    first = json.loads(RECORDED.with_suffix(".json").read_text())
    assert meta["recipe"]["seed"] == 1 and first["recipe"]["seed"] == 0
    for key in ("task", "test", "passuntil"):
        assert meta[key] == first[key], key
    assert {k: v for k, v in meta["recipe"].items() if "seed" not in k} == \
        {k: v for k, v in first["recipe"].items() if "seed" not in k}
    assert ladder.analysis_version(meta) == 2
    assert [r["params"] for r in rows] == [r["params"] for r in ladder.read_ladder(RECORDED)]
    assert meta["prediction_before_training"]["made_utc"] <= meta["largest_training_started_utc"]
    loss = [r["per_token_loss"] for r in rows]
    rises = [(rows[i]["model"], rows[i + 1]["model"], b / a) for i, (a, b) in enumerate(zip(loss, loss[1:])) if b >= a]
    assert [(a, b) for a, b, _ in rises] == [("w64_d2", "w96_d2")] and rises[0][2] < 1.05, rises
    for r in rows:
        assert r["lr"] == pytest.approx(meta["recipe"]["lr_base"] * min(1.0, 64 / r["width"]) ** 0.5)


def test_analysis_reruns_to_the_recorded_numbers(record):
    """The analysis from the CSV alone gives the prediction made before training and the recorded RESULT line."""
    _, rows, meta, analysis = record
    pre = meta["prediction_before_training"]
    assert analysis["passuntil"]["pred"] == pytest.approx(pre["passuntil"]["pred"], rel=1e-9)
    assert analysis["passuntil"]["ci"] == pytest.approx(pre["passuntil"]["ci"], rel=1e-9)
    assert analysis["loss"]["pred"] == pytest.approx(pre["loss"]["pred"], rel=1e-6)
    assert pre["made_utc"] <= meta["largest_training_started_utc"]
    assert ladder.result_line(analysis) == meta["result_line"]
    m = RESULT_RE.search(meta["result_line"])
    d, l, small, s, t = (float(v) for v in m.groups())
    assert d == pytest.approx((analysis["passuntil"]["pred"] - rows[-1]["passuntil_sampled"])
                              / rows[-1]["passuntil_sampled"], abs=1e-4)
    assert l == pytest.approx((analysis["loss"]["pred"] - rows[-1]["per_token_loss"]) / rows[-1]["per_token_loss"],
                              abs=1e-4)
    assert small == pytest.approx(max(r["exact_match"] for r in rows[: len(rows) // 2]), rel=1e-3)


def test_papers_regime(record):
    """Pass rates far below 1/(test items) for the small models, rising, the largest short of saturation."""
    _, rows, _, analysis = record
    n_items = rows[0]["n_items"]
    pu = np.array([r["passuntil_exact"] for r in rows])
    assert pu[0] < 0.01 / n_items and pu[-1] > 1e6 * pu[0]
    # rising over the ladder: at most one adjacent pair out of order (training noise), never by 2x
    falls = [(a, b) for a, b in zip(pu, pu[1:]) if b < a]
    assert len(falls) <= 1 and all(b > a / 2 for a, b in falls), falls
    assert rows[-1]["passuntil_exact"] < 0.9 and rows[-1]["exact_match"] < 0.95
    # exact match shows nothing on the smaller half; the 10x test set resolves rates 1000 items cannot show
    assert analysis["small_half_max_exact_match"] <= 0.01
    assert any(0 < r["exact_match_10x"] < 1 / n_items for r in rows)


def test_sampled_passuntil_matches_the_exact_score(record):
    """The sampled PassUntil interval covers the exact product-of-probabilities score (all but at most one model)."""
    rows = record[1]
    misses = [r["model"] for r in rows if r["passuntil_sampled"] > 0
              and not r["passuntil_sampled_lo"] <= r["passuntil_exact"] <= r["passuntil_sampled_hi"]]
    assert len(misses) <= 1, misses
    # where the sampler saw passes on every item, the estimate is within 25% of the exact score
    for r in rows:
        if r["pu_censored"] == 0:
            assert r["passuntil_sampled"] == pytest.approx(r["passuntil_exact"], rel=0.25), r["model"]


def test_passuntil_law_interval_is_calibrated():
    """On data drawn from a known law with stated errors, the 95% prediction interval covers the truth ~95%."""
    rng = np.random.default_rng(1)
    n = np.geomspace(1e3, 1e5, 8)
    n_new = 3e5
    c, alpha = 60.0, 0.45
    truth = math.exp(-c * n_new**-alpha)
    hits = 0
    trials = 200
    for _ in range(trials):
        v = np.log(c) - alpha * np.log(n) + rng.normal(0, 0.05, n.size)  # scatter the fit must find (tau)
        pu = np.exp(-np.exp(v))
        se_logp = 0.05
        lo, hi = pu * math.exp(-1.96 * se_logp), np.minimum(pu * math.exp(1.96 * se_logp), 0.999999)
        pu_noisy = pu * np.exp(rng.normal(0, se_logp, n.size))
        p = ladder.predict_passuntil(n, np.minimum(pu_noisy, 0.999999), np.minimum(lo, pu_noisy),
                                     np.maximum(hi, pu_noisy), n_new)
        hits += p.lo <= truth <= p.hi
    assert 0.88 <= hits / trials <= 0.995


def test_loss_law_has_no_negative_offset_and_is_chosen_out_of_sample():
    """Every loss form keeps E >= 0; the choice follows one-step-ahead errors; the interval covers a true law."""
    rng = np.random.default_rng(3)
    n = np.geomspace(1e3, 2.5e5, 10)
    # a true floor E = 0.3: the offset form must find it (E > 0) and be chosen over the pure power laws
    y = 0.3 + 40.0 * n**-0.5
    p = ladder.predict_loss(n, y, 4e5)
    assert p.detail["form"] == "offset" and p.detail["E"] == pytest.approx(0.3, rel=1e-3)
    assert p.pred == pytest.approx(0.3 + 40.0 * 4e5**-0.5, rel=1e-4)
    # a curve that bends down (as the recorded ladders do): the free fit would want E < 0; here E stays >= 0
    y = 5.0 * n**-0.2 - 0.4
    for form in ladder.LOSS_FORMS:
        e, a, b = ladder._fit_loss_form(form, n, y)
        assert e >= 0.0 and a > 0 and b >= 0, form
    # a pure power law with 5% log-normal scatter: the 95% interval covers the truth in most of 40 draws
    hits = 0
    for _ in range(40):
        yy = 30.0 * n**-0.4 * np.exp(rng.normal(0, 0.05, n.size))
        q = ladder.predict_loss(n, yy, 4e5)
        hits += q.lo <= 30.0 * 4e5**-0.4 <= q.hi
        cv = ladder.loss_cv(n, yy)
        assert q.detail["form"] == min(ladder.LOSS_FORMS, key=lambda f: (np.mean(np.abs(cv[f])), ladder.LOSS_FORMS.index(f)))
    assert hits >= 32
    with pytest.raises(ladder.LadderError, match="at least 5"):
        ladder.predict_loss(n[:4], y[:4], 4e5)


def test_analysis_never_reads_the_held_out_model_for_its_predictions(rows):
    """Changing every measurement of the largest model changes the measured side only."""
    a = ladder.analyze(rows)
    fake = dict(rows[-1], per_token_loss=rows[-1]["per_token_loss"] * 3, passuntil_sampled=0.5,
                passuntil_sampled_lo=0.4, passuntil_sampled_hi=0.6)
    b = ladder.analyze([*rows[:-1], fake])
    for key in ("pred", "ci", "law"):
        assert a["loss"][key] == b["loss"][key] and a["passuntil"][key] == b["passuntil"][key]
    assert a["passuntil"]["cv_smaller_models"] == b["passuntil"]["cv_smaller_models"]
    assert a["loss"]["cv_log_errors"] == b["loss"]["cv_log_errors"]
    assert a["loss"]["relative_deviation"] != b["loss"]["relative_deviation"]


def test_emergence_score_is_the_big_bench_one_and_scale_free(rows):
    """The score is BIG-Bench's (Srivastava et al. 2022, used by Schaeffer et al. 2023): sign * range /
    sqrt(median squared step). It does not depend on the metric's units, so edit distance counted in
    tokens, per answer token, or as 1 - (per-token distance) on exact match's 0..1 scale scores the same |t|."""
    from pysearch.emergence import emergence_score

    n = np.array([r["params"] for r in rows], float)
    ed = np.array([r["token_edit_distance"] for r in rows])
    steps = np.diff(ed)
    assert emergence_score(n, ed) == pytest.approx(-(ed.max() - ed.min()) / math.sqrt(np.median(steps**2)))
    t = emergence_score(n, ed)
    per_token = ed / rows[0]["answer_tokens"]
    assert emergence_score(n, per_token) == pytest.approx(t)
    assert emergence_score(n, 1.0 - per_token) == pytest.approx(-t)
    # a steady metric over m models scores m - 1 (equal steps); one jump scores more
    steady = np.linspace(0.0, 1.0, len(rows))
    assert emergence_score(n, steady) == pytest.approx(len(rows) - 1)
    jump = np.r_[np.zeros(len(rows) - 2), 0.01, 1.0]
    assert emergence_score(n, jump) == math.inf


def test_cli_reads_the_recorded_ladder():
    """``pysearch emergence`` reads the recorded CSV as it is."""
    r = subprocess.run([sys.executable, "-m", "pysearch", "emergence", str(RECORDED), "--x", "params",
                        "--label-col", "model", "--metric-cols",
                        "exact_match,multiple_choice,token_edit_distance,seq_log_prob,brier,passuntil_sampled"],
                       capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    held = [line for line in r.stdout.splitlines() if "held out" in line]
    assert held and ladder.read_ladder(RECORDED)[-1]["model"] in held[0]
    assert "exact_match" in r.stdout and "token_edit_distance" in r.stdout


@pytest.mark.parametrize("path, seeds", [(RECORDED_3SEEDS, [2, 3, 4]), (RECORDED_R4, [5, 6, 7, 8, 9]),
                                         (RECORDED_R5, list(range(10, 18))), (RECORDED_R6, list(range(30, 36)))],
                         ids=["third round", "fourth round", "fifth round", "sixth round"])
def test_seed_averaged_ladder_shape_and_provenance(path, seeds):
    """Rounds 3 to 6: every row averages the round's seeds (new seeds, trained after the earlier rounds), the
    recorded per-seed rows re-combine to it exactly, and the prediction predates every seed's largest model."""
    rows = ladder.read_ladder(path)
    meta = json.loads(path.with_suffix(".json").read_text())
    per_seed = ladder.read_seed_ladders(path.with_name(path.stem + "_per_seed.csv"))
    assert meta["seeds"] == seeds == [ps[0]["seed"] for ps in per_seed]
    again = ladder.combine_seeds(per_seed)
    for a, b in zip(again, rows):
        assert a["model"] == b["model"] and a["n_seeds"] == b["n_seeds"] == len(seeds)
        for c in ladder.COLUMNS[1:]:
            assert a[c] == pytest.approx(b[c], rel=1e-12), (a["model"], c)
    n = np.array([r["params"] for r in rows], float)
    assert len(rows) >= 8 and math.log10(n[-1] / n[0]) >= 2.5
    assert {r["steps"] for r in rows} == {600} and {r["n_items"] for r in rows} == {1000}
    for key in ("command", "torch", "wall_seconds", "cpu_seconds", "started_utc", "finished_utc", "load_at_end"):
        assert meta[key], key
    assert meta["prediction_before_training"]["made_utc"] <= meta["largest_training_started_utc"]
    assert meta["prediction_before_training"]["seeds"] == meta["seeds"]
    for s in meta["seeds"]:
        assert meta["prediction_before_training"]["made_utc"] <= meta["seed_largest_training_started_utc"][str(s)]


def test_fourth_round_recipe_was_chosen_without_its_seeds_or_the_held_out_width():
    """Round 4's recipe (clip 1.0, warmup 20%) is what its record says it trained with, unlike round 3's; the
    models trained to choose it (``seed_scatter_r4.jsonl``) used other seeds and never the held-out width."""
    r4 = json.loads(RECORDED_R4.with_suffix(".json").read_text())
    r3 = json.loads(RECORDED_3SEEDS.with_suffix(".json").read_text())
    assert r4["recipe"]["grad_clip"] == 1.0 and r4["recipe"]["warmup_steps"] == round(0.2 * r4["recipe"]["steps"])
    assert "grad_clip" not in r3["recipe"] and "warmup steps/20" in r3["recipe"]["lr_rule"]
    tuning = [json.loads(line)
              for line in (EXPERIMENTS / "tiny_models" / "seed_scatter_r4.jsonl").read_text().splitlines()]
    assert len(tuning) >= 20
    held_out = ladder.read_ladder(RECORDED_R4)[-1]["width"]
    assert all(t["width"] < held_out for t in tuning)
    assert not {t["seed"] for t in tuning} & set(r4["seeds"])
    chosen = [t for t in tuning if t["label"] == "clip1-warm120"]
    assert {t["clip"] for t in chosen} == {1.0} and {t["warmup"] for t in chosen} == {r4["recipe"]["warmup_steps"]}


@pytest.mark.parametrize("path, n_seeds, before", [(RECORDED_R5, 8, [RECORDED_3SEEDS, RECORDED_R4]),
                                                   (RECORDED_R6, 6, [RECORDED_3SEEDS, RECORDED_R4, RECORDED_R5])],
                         ids=["fifth round", "sixth round"])
def test_later_rounds_replicate_the_fourth_with_new_seeds(path, n_seeds, before):
    """Rounds 5 and 6 changed nothing but the seeds (eight; then six, so that three pairs of children fit 20 minutes
    on 2 cores), none used by an earlier round or by the recipe's tuning: their RESULT lines replicate round 4's
    protocol, not new choices made after seeing an earlier miss."""
    meta = json.loads(path.with_suffix(".json").read_text())
    r4 = json.loads(RECORDED_R4.with_suffix(".json").read_text())
    drop = ("seeds", "data_seeds")
    assert {k: v for k, v in meta["recipe"].items() if k not in drop} == {k: v for k, v in r4["recipe"].items()
                                                                          if k not in drop}
    for key in ("task", "test", "passuntil", "analysis_version"):
        assert meta[key] == r4[key], key
    assert ladder.read_ladder(path)[-1]["width"] == ladder.read_ladder(RECORDED_R4)[-1]["width"]
    earlier = {0, 1, *(s for p in before for s in json.loads(p.with_suffix(".json").read_text())["seeds"])}
    tuning = {json.loads(line)["seed"]
              for line in (EXPERIMENTS / "tiny_models" / "seed_scatter_r4.jsonl").read_text().splitlines()}
    assert len(meta["seeds"]) == n_seeds and not set(meta["seeds"]) & (earlier | tuning)
    assert meta["device"] == "cpu" and meta["jobs"] == 2


def test_fifth_round_rerun_with_cheaper_measuring_has_every_bit():
    """The fifth round run again after the measuring speed-ups (256-row chunks, greedy decoding from the first
    teacher-forced error, the interval test in the PassUntil sampler, AdamW foreach): every measured value of every
    seed's 15 models, the prediction and the RESULT line are those of the record; only times differ."""
    r5 = json.loads(RECORDED_R5.with_suffix(".json").read_text())
    rerun_path = RECORDED_R5.with_name(RECORDED_R5.stem + "_rerun.json")
    rerun = json.loads(rerun_path.read_text())
    old = ladder.read_ladder(RECORDED_R5.with_name(RECORDED_R5.stem + "_per_seed.csv"), check_order=False)
    new = ladder.read_ladder(RECORDED_R5.with_name(RECORDED_R5.stem + "_rerun_per_seed.csv"), check_order=False)
    assert len(old) == len(new) == 8 * 15
    timing = {"train_seconds", "train_cpu_seconds"}
    for a, b in zip(old, new):
        assert {k: v for k, v in a.items() if k not in timing} == {k: v for k, v in b.items() if k not in timing}
    assert rerun["git_commit"] != r5["git_commit"] and rerun["seeds"] == r5["seeds"]
    assert rerun["command"].split(" --out ")[0] == r5["command"].split(" --out ")[0]
    assert rerun["result_line"] == r5["result_line"]
    for key in ("loss", "passuntil"):
        assert rerun["prediction_before_training"][key] == r5["prediction_before_training"][key]
    for key in ("recipe", "task", "test", "passuntil", "device"):
        assert rerun[key] == r5[key], key
    assert r5["rows"].endswith(RECORDED_R5.stem + "_per_seed.csv")


def test_record_is_never_overwritten(tmp_path):
    """--record refuses, before training anything, when its record exists (it did overwrite the first round's)."""
    from test_emergence_experiments import _run_without_torch

    for argv in ([], ["--seeds", "20,21"]):
        r = _run_without_torch("emergence_tiny_transformers.py", [*argv, "--record", "--out", str(tmp_path / "o")])
        assert r.returncode == 2 and r.stderr.startswith("error: --record: ") and len(r.stderr.splitlines()) == 1
        assert "never overwritten" in r.stderr and not (tmp_path / "o").exists()


@pytest.mark.parametrize("path", RECORDS, ids=lambda p: p.stem)
def test_script_reruns_from_csv_without_torch(path, tmp_path):
    """--from-csv needs no torch and prints the recorded RESULT line; a bad CSV is one line and exit 2."""
    from test_emergence_experiments import _run_without_torch

    meta = json.loads(path.with_suffix(".json").read_text())
    png = tmp_path / "ladder.png"
    r = _run_without_torch("emergence_tiny_transformers.py", ["--from-csv", str(path), "--plot", str(png)])
    assert r.returncode == 0, r.stderr
    assert RESULT_RE.search(r.stdout).group(0) == meta["result_line"]
    assert png.stat().st_size > 10_000
    bad = tmp_path / "bad.csv"
    bad.write_text("model,params\nw4,100\n")
    r = _run_without_torch("emergence_tiny_transformers.py", ["--from-csv", str(bad)])
    assert r.returncode == 2
    assert r.stderr.strip().startswith("error:") and "missing column" in r.stderr and len(r.stderr.splitlines()) == 1


@pytest.mark.parametrize("argv, message", [
    (["--seeds", "2"], "bad --seeds '2'"), (["--seeds", "2,2"], "bad --seeds '2,2'"),
    (["--seeds", "2,x"], "bad --seeds"), (["--seeds", "2,3", "--widths", "4,8,x"], "bad --widths")])
def test_seeds_driver_refuses_bad_arguments_in_one_line(argv, message, tmp_path):
    from test_emergence_experiments import _run_without_torch

    r = _run_without_torch("emergence_tiny_transformers.py", [*argv, "--out", str(tmp_path / "out")])
    assert r.returncode == 2 and r.stderr.startswith("error: " + message) and len(r.stderr.splitlines()) == 1


def test_read_ladder_rejects_unsorted(tmp_path, rows):
    path = tmp_path / "ladder.csv"
    ladder.write_ladder(list(reversed(rows)), path)
    with pytest.raises(ladder.LadderError, match="smallest first"):
        ladder.read_ladder(path)
    with pytest.raises(ladder.LadderError, match="cannot read"):
        ladder.read_ladder(tmp_path / "none.csv")


def _seed_rows(rows, seed, pu_counts, k):
    """Copies of ``rows`` as if trained under ``seed``, with PassUntil from the given per-item counts."""
    from pysearch.emergence import pass_until_score

    out = []
    for r, counts in zip(rows, pu_counts):
        est = pass_until_score(counts, k)
        out.append({**r, "seed": seed, "per_token_loss": r["per_token_loss"] * (1 + 0.1 * seed),
                    "exact_match": r["exact_match"] + 0.01 * seed, "passuntil_sampled": est.p,
                    "passuntil_sampled_lo": est.lo, "passuntil_sampled_hi": est.hi, "pu_samples": est.trials})
    return out


def test_combine_seeds_pools_passuntil_like_one_pooled_test_set(rows, tmp_path):
    """Averaging seeds = the estimator on the pooled (seed, item) pairs; means elsewhere; n_seeds survives the CSV."""
    from pysearch.emergence import pass_until_score

    rng = np.random.default_rng(7)
    k, budget, items = 4, 2000, 50
    small = rows[:3]
    per_seed, pooled = [], [[] for _ in small]
    for seed in range(3):
        counts = []
        for j, p_true in enumerate([0.0, 3e-4, 0.02]):
            c = []
            for _ in range(items):
                p_item = p_true * rng.uniform(0.2, 1.8)
                trials = int(rng.negative_binomial(k, p_item)) + k if p_item > 0 else budget
                c.append((k, trials) if trials <= budget else (int(rng.binomial(budget, p_item)), budget))
            counts.append(c)
            pooled[j] += c
        per_seed.append(_seed_rows(small, seed, counts, k))
    out = ladder.combine_seeds(per_seed)
    for j, r in enumerate(out):
        est = pass_until_score(pooled[j], k)
        assert r["passuntil_sampled"] == pytest.approx(est.p, rel=1e-12)
        assert [r["passuntil_sampled_lo"], r["passuntil_sampled_hi"]] == pytest.approx([est.lo, est.hi], rel=1e-9)
        assert r["per_token_loss"] == pytest.approx(np.mean([s[j]["per_token_loss"] for s in per_seed]))
        assert r["exact_match"] == pytest.approx(small[j]["exact_match"] + 0.01)
        assert r["pu_samples"] == sum(s[j]["pu_samples"] for s in per_seed)
        assert (r["seed"], r["n_seeds"], r["params"]) == (0, 3, small[j]["params"])
    path = tmp_path / "avg.csv"
    ladder.write_ladder(out, path)
    assert [r["n_seeds"] for r in ladder.read_ladder(path)] == [3, 3, 3]
    assert all(r["n_seeds"] == 1 for r in ladder.read_ladder(RECORDED))


def test_combine_seeds_refuses_different_ladders(rows):
    other = [{**r, "seed": 1} for r in rows]
    other[2] = {**other[2], "params": other[2]["params"] + 1}
    with pytest.raises(ladder.LadderError, match="differ in params"):
        ladder.combine_seeds([rows, other])
    with pytest.raises(ladder.LadderError, match="distinct seeds"):
        ladder.combine_seeds([rows, rows])
    with pytest.raises(ladder.LadderError, match="same number of models"):
        ladder.combine_seeds([rows, [{**r, "seed": 1} for r in rows[:-1]]])


def test_recall_task_encoding():
    """Items are key, key, value triples of one fixed table; test items are distinct and kept out of training."""
    task = RecallTask(symbols=8, values=5, facts=3, zipf=1.0, table_seed=3)
    seq = task.test_set(40, seed=0)
    assert seq.shape == (40, 9) and task.vocab == 13
    keys = seq[:, 0::3] * 8 + seq[:, 1::3]
    assert np.array_equal(seq[:, 2::3], 8 + task.table[keys])
    assert np.all(seq[:, task.answer_positions] >= 8)
    assert len({row.tobytes() for row in seq}) == 40
    assert np.array_equal(task.table, RecallTask(8, 5, 3, 1.0, 3).table)
    assert task.key_probs.sum() == pytest.approx(1.0) and task.key_probs.max() / task.key_probs.min() == pytest.approx(64.0)
    codes = task.item_codes(seq)
    batch = task.train_batch(2000, np.random.default_rng(0), codes)
    assert not (task.item_codes(batch) & codes)
    with pytest.raises(ValueError, match="values"):
        RecallTask(values=1)


def test_prefix_sampler_picks_tokens_as_searchsorted_does():
    """The prefix sampler tests a draw against the target's cdf interval instead of finding its token; on
    distributions with zero-probability tokens, first- and last-token targets and unnormalised rows, its
    counts equal those of drawing every token with searchsorted from the same stream."""
    from tiny_models.sampling import pass_until_prefix

    def by_searchsorted(dists, targets, k, budget, rng, first_chunk=256):
        m, n_pos, vocab = dists.shape
        cdf = np.cumsum(dists, axis=-1)
        succ, trials = np.zeros(m, np.int64), np.zeros(m, np.int64)
        for i in range(m):
            chunk = first_chunk
            while succ[i] < k and trials[i] < budget:
                n = int(min(chunk, budget - trials[i]))
                alive = np.arange(n)
                for j in range(n_pos):
                    u = rng.random(alive.size) * cdf[i, j, -1]
                    tok = np.minimum(np.searchsorted(cdf[i, j], u, side="right"), vocab - 1)
                    alive = alive[tok == targets[i, j]]
                    if alive.size == 0:
                        break
                need = k - succ[i]
                if alive.size >= need:
                    trials[i] += int(alive[need - 1]) + 1
                    succ[i] = k
                else:
                    trials[i] += n
                    succ[i] += alive.size
                chunk = min(chunk * 8, 1 << 22)
        return succ, trials

    rng = np.random.default_rng(3)
    vocab = 7
    dists = rng.dirichlet(np.full(vocab, 0.3), size=(40, 3))
    dists[::3, :, 2] = 0.0  # zero-probability tokens, some of them targets
    dists[1::5] *= 1.0 + 1e-3  # rows that do not sum to 1
    targets = rng.integers(0, vocab, (40, 3))
    targets[::4] = 0
    targets[2::4] = vocab - 1
    targets[5::7, 1] = 2
    for k, budget in ((1, 50), (4, 3000)):
        got = pass_until_prefix(dists, targets, k, budget, np.random.default_rng(11))
        want = by_searchsorted(dists, targets, k, budget, np.random.default_rng(11))
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
        assert (got[0] < k).any() and (got[0] == k).any()  # both censored and finished items are exercised


class TestWithTorch:
    @pytest.fixture(autouse=True)
    def _torch(self):
        pytest.importorskip("torch", reason="torch not installed (pip install '.[torch]')")

    def test_prefix_sampler_matches_full_sampling_and_exact(self):
        """Sampling whole answers, the prefix-cached sampler and the exact product agree on a trained model."""
        import torch

        from pysearch.emergence import pass_until_score
        from tiny_models.model import TinyTransformer, n_params, param_count
        from tiny_models.sampling import pass_until_prefix
        from tiny_models.train import TrainConfig, answer_distributions, greedy_answers, pass_until, train

        torch.set_num_threads(1)
        task = RecallTask(symbols=6, values=4, facts=3, zipf=0.5, table_seed=0)
        assert n_params(TinyTransformer(task.vocab, task.seq_len, 16, 2)) == param_count(task.vocab, task.seq_len, 16, 2)
        seq = task.test_set(6, seed=0)
        model, _ = train(task, TrainConfig(16, 1, 60, batch=32, lr=3e-3, warmup=5), task.item_codes(seq))
        dists = answer_distributions(model, task, seq)
        target = seq[:, task.answer_positions]
        exact = np.prod(np.take_along_axis(dists, target[..., None], -1)[..., 0], axis=1)
        greedy_ok = (greedy_answers(model, task, seq) == target).all(1)
        assert np.array_equal(greedy_ok, (dists.argmax(-1) == target).all(1))
        k = 30
        s1, n1 = pass_until_prefix(dists, target, k, 200_000, np.random.default_rng(0))
        s2, n2 = pass_until(model, task, seq, k, 200_000, torch.Generator().manual_seed(0))
        for s, n in ((s1, n1), (s2, n2)):
            for i in range(len(seq)):
                est = pass_until_score([(int(s[i]), int(n[i]))], k, confidence=0.999)
                assert est.lo <= exact[i] <= est.hi, (i, exact[i], est)

    def test_measuring_shortcuts_change_no_bit(self):
        """Greedy decoding continued from the teacher-forced argmax equals full greedy decoding token for token,
        and measuring in chunks of CHUNK rows gives the bits of one 4096-row pass, on a trained model whose
        items fail at different answer positions."""
        import torch

        from tiny_models.train import (CHUNK, TrainConfig, answer_distributions, answer_log_probs, greedy_answers,
                                       greedy_answers_from, train)

        torch.set_num_threads(1)
        task = RecallTask(symbols=6, values=4, facts=4, zipf=0.5, table_seed=0)
        seq = task.test_set(3 * CHUNK // 2, seed=0)
        model, _ = train(task, TrainConfig(16, 1, 40, batch=32, lr=3e-3, warmup=5), task.item_codes(seq))
        dists = answer_distributions(model, task, seq)
        assert np.array_equal(dists, answer_distributions(model, task, seq, chunk=4096))
        logp = answer_log_probs(model, task, seq, chunk=4096)
        assert np.array_equal(answer_log_probs(model, task, seq), logp)
        both = answer_distributions(model, task, seq, with_log_probs=True)
        assert np.array_equal(both[0], dists) and np.array_equal(both[1], logp)
        target = seq[:, task.answer_positions]
        first = np.where((dists.argmax(-1) != target).any(1), (dists.argmax(-1) != target).argmax(1), task.facts)
        assert len(set(first.tolist())) >= 3  # errors at several positions, and items without one
        full = greedy_answers(model, task, seq, chunk=4096)
        assert np.array_equal(greedy_answers_from(model, task, seq, dists.argmax(-1)), full)
        assert (full != target).any()

    def test_recipe_options_change_only_what_they_name(self):
        """The fourth round's recipe options: a clip that never binds and an EMA with decay 0 leave training
        bit for bit as it was; a binding clip changes it; an EMA with decay 1 evaluates the initial weights;
        the curve records every step's lr (warmup, then cosine down to lr * floor)."""
        import torch

        from tiny_models.model import TinyTransformer, cosine_lr
        from tiny_models.train import TrainConfig, train

        torch.set_num_threads(1)
        task = RecallTask(symbols=6, values=4, facts=3, zipf=0.5, table_seed=0)
        codes = task.item_codes(task.test_set(6, seed=0))
        base = TrainConfig(16, 1, 40, batch=16, lr=3e-3, warmup=8)

        def weights(cfg, curve=None):
            model, info = train(task, cfg, codes, curve=curve)
            return torch.cat([p.detach().flatten() for p in model.parameters()]), info

        w0, info = weights(base)
        curve: list = []
        w_loose, _ = weights(TrainConfig(**{**base.__dict__, "clip": 1e9}), curve)
        assert torch.equal(w0, w_loose)
        assert max(c[3] for c in curve) < 1e9
        w_tight, _ = weights(TrainConfig(**{**base.__dict__, "clip": 0.5 * min(c[3] for c in curve)}))
        assert not torch.equal(w0, w_tight)
        w_ema0, _ = weights(TrainConfig(**{**base.__dict__, "ema": 0.0}))
        assert torch.equal(w0, w_ema0)
        w_ema1, _ = weights(TrainConfig(**{**base.__dict__, "ema": 1.0}))
        torch.manual_seed(base.seed)
        init = TinyTransformer(task.vocab, task.seq_len, 16, 1)
        assert torch.equal(w_ema1, torch.cat([p.detach().flatten() for p in init.parameters()]))
        # the schedule: warmup to the peak, cosine down to peak * floor (the default floor is rounds 1-3's 10%)
        assert [c[1] for c in curve] == [cosine_lr(s, 40, 3e-3, 8) for s in range(40)]
        assert info["final_lr"] == curve[-1][1] and curve[7][1] == pytest.approx(3e-3)
        assert cosine_lr(10**6, 40, 3e-3, 8) == pytest.approx(3e-4)
        assert cosine_lr(10**6, 40, 3e-3, 8, floor=0.0) == pytest.approx(0.0, abs=1e-18)
        # the data stream's seed: seed + 1 unless given
        w_data, _ = weights(TrainConfig(**{**base.__dict__, "data_seed": base.seed + 1}))
        assert torch.equal(w0, w_data)
        w_other, _ = weights(TrainConfig(**{**base.__dict__, "data_seed": 99}))
        assert not torch.equal(w0, w_other)


    def test_device_choice(self):
        """--device: auto is CUDA exactly when torch sees a GPU; cuda without one and an unknown name are refused by name."""
        import torch

        from tiny_models.train import resolve_device

        assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
        assert resolve_device("cpu") == "cpu"
        with pytest.raises(ValueError, match="unknown --device 'gpu'"):
            resolve_device("gpu")
        if not torch.cuda.is_available():
            with pytest.raises(ValueError, match="no CUDA device"):
                resolve_device("cuda")

    def test_cuda_without_a_gpu_is_one_line_before_training(self, tmp_path):
        """The script refuses --device cuda where torch sees no GPU: one line, exit 2, nothing trained (both drivers)."""
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has a CUDA device")
        for argv in (["--quick"], ["--quick", "--seeds", "2,3"]):
            out = tmp_path / argv[-1].replace(",", "_")
            r = subprocess.run([sys.executable, str(EXPERIMENTS / "emergence_tiny_transformers.py"), *argv,
                                "--device", "cuda", "--out", str(out)], capture_output=True, text=True, timeout=300)
            assert r.returncode == 2, r.stderr
            assert r.stderr.startswith("error: --device cuda: torch sees no CUDA device") and len(r.stderr.splitlines()) == 1
            assert not (out / "results.csv").exists() and not any(out.glob("seed*/results.csv"))

    def test_cuda_training_and_measurement_agree_with_the_cpu(self):
        """On a GPU the same seed trains the same model up to rounding: the same initial weights and data, losses
        within a few percent, and every measurement function returns CPU numpy arrays of the CPU's shapes."""
        import torch

        if not torch.cuda.is_available():
            pytest.skip("no CUDA device (this check runs where one is lent)")
        from tiny_models.train import TrainConfig, answer_distributions, answer_log_probs, greedy_answers, measure, train

        task = RecallTask(symbols=6, values=4, facts=3, zipf=0.5, table_seed=0)
        seq = task.test_set(20, seed=0)
        cfg = TrainConfig(16, 1, 60, batch=32, lr=3e-3, warmup=5)
        results = {}
        for dev in ("cpu", "cuda"):
            curve: list = []
            model, _ = train(task, cfg, task.item_codes(seq), curve=curve, device=dev)
            assert next(model.parameters()).device.type == dev
            m = measure(model, task, seq)
            results[dev] = (curve, answer_distributions(model, task, seq), answer_log_probs(model, task, seq),
                            greedy_answers(model, task, seq), m)
        (c_cpu, d_cpu, l_cpu, g_cpu, m_cpu), (c_gpu, d_gpu, l_gpu, g_gpu, m_gpu) = results["cpu"], results["cuda"]
        assert c_cpu[0][2] == pytest.approx(c_gpu[0][2], rel=1e-4)  # same initial weights and first batch
        assert c_cpu[-1][2] == pytest.approx(c_gpu[-1][2], rel=0.05)
        for a, b in ((d_cpu, d_gpu), (l_cpu, l_gpu), (g_cpu, g_gpu), (m_cpu.token_probs, m_gpu.token_probs)):
            assert isinstance(b, np.ndarray) and b.shape == a.shape and b.dtype == a.dtype
        assert np.abs(d_cpu - d_gpu).max() < 0.05


def test_an_infinite_emergence_score_is_written_as_null(rows, tmp_path):
    """A ladder whose exact match is flat over most steps scores inf (as round 4's seed 8 did); its analysis still
    goes to strict JSON, with null there, and the RESULT line keeps inf."""
    from pysearch.fileio import read_json, write_json_atomic

    flat = [dict(r, exact_match=0.0) for r in rows[:-2]] + [dict(r, exact_match=0.3) for r in rows[-2:]]
    an = ladder.analyze(flat)
    assert an["emergence_scores"]["exact_match"] == math.inf
    with pytest.raises(ValueError):
        write_json_atomic(tmp_path / "raw.json", an)
    write_json_atomic(tmp_path / "an.json", ladder.jsonable(an))
    back = read_json(tmp_path / "an.json", "analysis")
    assert back["emergence_scores"]["exact_match"] is None
    assert back["passuntil"]["pred"] == an["passuntil"]["pred"]
    assert "exact_match_emergence_score=inf" in ladder.result_line(an)
