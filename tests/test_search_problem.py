"""The one engine: the problem interface, and the float32 kernel problem's behaviour pinned across the refactor."""

from __future__ import annotations

import hashlib
import json
import math

import pytest

from pysearch.search.config import SearchConfig
from pysearch.search.individual import structure_key
from pysearch.search.loop import Search

NARROW = (1.0, 1.0078125)  # 2^16 + 1 float32 values

#: A 4-generation exp2 run (seed 3) recorded with the float32 loop as it was before the search
#: became generic over problems (commit 3f32a3d): its verified front and a digest of the whole
#: checkpointed state (population, archive, constant cache, RNG, rejected, extra points). The
#: float32 problem must reproduce it bit for bit. If a deliberate change to constant fitting or
#: verification moves it, record the new figures from the old and the new code in the same commit.
PINNED_FRONT = [
    (1.0, "dtype float32\ninputs x\nv1 = fma x 1.3900561 0.6099402\n"),
    (2.0, "dtype float32\ninputs x\nv1 = fma x x x\nv2 = fma v1 0.46214804 1.0757037\n"),
]
PINNED_STATE_SHA256_SKYLAKEX_BLAS = "4c9eb859f097cb7547c9eeb908c94b7fcd9dc481a69200ae4e6e202b5e388457"
#: The same run with the constants fitted by the core (``constants.optimize_constants_batch``,
#: rust/constfit.rs), recorded when it replaced the numpy/scipy fitting: the fits differ, so the
#: state does; the run above is still reproduced with the numpy/scipy fitting patched back in.
PINNED_STATE_CORE_FIT_SHA256 = "baf140b05b6ef37c3a42e80a296d68cae0c69f1e1be560669cc9583eab01a2d0"


def pinned_config() -> SearchConfig:
    return SearchConfig(target="exp2", domain=NARROW, population=16, sample_size=256, opt_per_generation=8,
                        verify_every=2, max_instrs=6, seed=3, max_ulp=1.0)


def state_digest(s: Search) -> str:
    st = s.checkpoint_state()
    snap = {k: st[k] for k in ("generation", "population", "archive", "front", "rng", "rejected", "extra_x", "cache")}
    return hashlib.sha256(json.dumps(snap, sort_keys=True).encode()).hexdigest()


#: The numpy/scipy fitting goes through LAPACK, and OpenBLAS picks its kernels by CPU (SkylakeX on Intel
#: AVX-512, Haswell on AMD Zen 4 and AVX2 CPUs) with different summation orders, so its last bits depend on the
#: machine: the pinned run is replayed in a child with the Haswell kernels (any AVX2 CPU has them).
#: PINNED_STATE_SHA256_SKYLAKEX_BLAS is the same run under OPENBLAS_CORETYPE=SkylakeX (both checked on an AMD EPYC
#: with AVX-512 on 2026-12-02, where OpenBLAS picks Haswell by itself).
PINNED_STATE_SHA256_HASWELL_BLAS = "c9869b8435c683d8c9185a88d9a05b8ca51813e79f80a0b7de496aada00c31b6"
_PINNED_CHILD = """
import hashlib, json, sys
sys.path.insert(0, {tests!r})
from test_search_problem import pinned_config, state_digest
from pysearch.search import float32_problem, verify
from pysearch.search.constants import _tune_float32_python, optimize_constants_python
from pysearch.search.loop import Search
float32_problem.optimize_constants_batch = lambda progs, sample: [optimize_constants_python(p, sample) for p in progs]
verify.tune_float32 = _tune_float32_python
s = Search(pinned_config())
s.run(generations=4)
print(json.dumps({{"front": [(e.cost, e.text) for e in s.front], "digest": state_digest(s)}}))
"""


def _cpu_has_avx2() -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            return " avx2 " in f.read().replace("\n", " ")
    except OSError:
        return False


@pytest.mark.skipif(not _cpu_has_avx2(), reason="needs an x86-64 CPU with AVX2 (OpenBLAS's Haswell kernels)")
def test_float32_problem_reproduces_the_pinned_run():
    """The float32 kernel problem on the generic engine gives the recorded front and state, bit for bit,
    with the numpy/scipy constant fitting of the pre-engine loop (OpenBLAS kernels fixed: see above)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "OPENBLAS_CORETYPE": "Haswell"}
    r = subprocess.run([sys.executable, "-c", _PINNED_CHILD.format(tests=str(Path(__file__).parent))],
                       env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert [tuple(e) for e in got["front"]] == PINNED_FRONT
    assert got["digest"] == PINNED_STATE_SHA256_HASWELL_BLAS


def test_float32_problem_with_core_fitting_is_pinned_too():
    """The default (core) constant fitting: same front on this run, and the state recorded when it landed."""
    s = Search(pinned_config())
    s.run(generations=4)
    assert [(e.cost, e.text) for e in s.front] == PINNED_FRONT
    assert state_digest(s) == PINNED_STATE_CORE_FIT_SHA256


# ------------------------------------------------------------ the problem interface
import numpy as np  # noqa: E402

from pysearch.program import parse  # noqa: E402
from pysearch.search.float32_problem import Float32Problem  # noqa: E402
from pysearch.search.law_problem import LawConfig, LawProblem  # noqa: E402
from pysearch.search.problem import Problem, Scores, problem_from_json  # noqa: E402


def law_problem(**kw) -> LawProblem:
    x = np.geomspace(1, 100, 12)
    base = dict(X=x[None], y=2 * x ** -0.3 + 0.5, inputs=("x",), population=16, seed=4, patience=None)
    base.update(kw)
    return LawProblem(LawConfig(**base))


def law_snapshot(s: Search) -> dict:
    st = s.checkpoint_state()
    return {k: st[k] for k in ("generation", "population", "archive", "rng", "cache", "problem_state")}


def test_every_problem_implements_the_interface():
    """Each problem scores a batch (one error and two objectives per program) and fits constants in a batch."""
    law = law_problem()
    s = Search(pinned_config())
    for problem, progs in ((s.problem, [parse("dtype float32\ninputs x\nv1 = fma x 0.7 1.0\n")] * 2),
                           (law, law.initial_programs(np.random.default_rng(0), 6))):
        assert isinstance(problem, Problem)
        sc = problem.score(progs)
        assert isinstance(sc, Scores) and len(sc.errors) == len(sc.objectives) == len(progs) and sc.points > 0
        with_consts = [p for p in progs if p.constants()]
        fitted = problem.fit_constants(with_consts)
        assert len(fitted) == len(with_consts)
        # a fit never makes the training error worse
        before, after = problem.score(with_consts).errors, problem.score(fitted).errors
        assert np.all((after <= before * (1 + 1e-12)) | ~np.isfinite(before))
    assert isinstance(s.problem, Float32Problem)


def test_law_fit_recovers_constants_exactly():
    """The law problem's batched Levenberg-Marquardt (exact Jacobians) recovers a power law's constants."""
    law = law_problem()
    p = parse("dtype float64\ninputs x\nv1 = pow x -0.4\nv2 = mul v1 1.5\nv3 = add v2 0.8\n")
    q = law.fit_constants([p])[0]
    np.testing.assert_allclose(q.constants(), [-0.3, 2.0, 0.5], rtol=1e-9)
    assert law.score([q]).errors[0] < 1e-12 < law.score([p]).errors[0]


def test_law_fit_of_a_start_seen_before_is_the_earlier_fit(monkeypatch):
    """A start fitted before (the same program and constants) is not fitted again: its earlier
    result comes back, bit for bit what a fresh fit gives; new starts in the same batch are fitted,
    and a full memo starts again without changing any result."""
    from pysearch.search import law_problem as lp

    progs = [parse(f"dtype float64\ninputs x\nv1 = pow x {e}\nv2 = mul v1 1.5\nv3 = add v2 0.8\n")
             for e in (-0.4, -0.2, -0.9)]
    fresh = [law_problem().fit_constants([p])[0].to_text() for p in progs]
    sent: list[int] = []
    real = lp.fit_many

    def counting(programs, *args):
        sent.append(len(programs))
        return real(programs, *args)

    monkeypatch.setattr(lp, "fit_many", counting)
    law = law_problem()
    first = law.fit_constants(progs[:2])
    again = law.fit_constants([progs[1], progs[2], progs[0], progs[2]])
    assert sent == [2, 1]  # only the new start (once, though it came twice)
    assert [q.to_text() for q in first] == fresh[:2]
    assert [q.to_text() for q in again] == [fresh[1], fresh[2], fresh[0], fresh[2]]
    assert law.fits_reused == 3
    monkeypatch.setattr(lp, "FIT_MEMO_SIZE", 2)
    small = law_problem()
    out = [small.fit_constants([p])[0].to_text() for p in progs + progs]
    assert out == fresh + fresh and len(small._fits) <= 2 and sent[2:] == [1] * 6
    # a batch of a start kept and a new one that fills the memo: the kept one's fit still comes back
    assert [q.to_text() for q in small.fit_constants([progs[2], progs[0]])] == [fresh[2], fresh[0]]
    assert sent[-1] == 1
    # a start the fit leaves as it is (already exact) is kept as such: given back itself
    text = "dtype float64\ninputs x\nv1 = pow x -0.3\nv2 = mul v1 2.0\nv3 = add v2 0.5\n"
    exact, again_exact = parse(text), parse(text)
    done = law_problem()
    assert done.fit_constants([exact])[0] is exact and done._fits[text] is None
    assert done.fit_constants([again_exact])[0] is again_exact and done.fits_reused == 1


def test_law_search_is_seeded():
    """A law search on the engine is a pure function of its seed."""
    a, b, c = Search(law_problem()), Search(law_problem()), Search(law_problem(seed=5))
    for s in (a, b, c):
        s.run(generations=3)
    assert law_snapshot(a) == law_snapshot(b)
    assert law_snapshot(a)["population"] != law_snapshot(c)["population"]


def test_law_checkpoint_resume_equals_uninterrupted_run():
    """A law search saved as JSON after 2 generations and resumed to 5 equals 5 at once."""
    straight = Search(law_problem(patience=3))
    straight.run(generations=5)
    first = Search(law_problem(patience=3))
    first.run(generations=2)
    doc = json.loads(json.dumps(first.checkpoint_state(), allow_nan=False))
    assert doc["config"]["problem"] == "law" and doc["config"]["problem_schema"] == LawProblem.schema
    resumed = Search.from_checkpoint(doc)
    assert isinstance(resumed.problem, LawProblem)
    resumed.run(generations=5)
    assert law_snapshot(resumed) == law_snapshot(straight)


def test_bad_problem_documents_are_named():
    """A checkpoint naming an unknown problem, a newer schema or bad law data fails with the field named."""
    doc = json.loads(json.dumps(Search(law_problem()).checkpoint_state(), allow_nan=False))
    for change, field in (({"problem": "quantum"}, "config.problem"), ({"problem_schema": 99}, "config.problem_schema"),
                          ({"y": [1.0, 2.0]}, "config"), ({"space": "cubic"}, "config")):
        bad = json.loads(json.dumps(doc))
        bad["config"].update(change)
        with pytest.raises(ValueError, match=field.replace(".", r"\.")):
            Search.from_checkpoint(bad)
    bad = json.loads(json.dumps(doc))
    bad["population"] = ["dtype float32\ninputs x\nv1 = add x x\n"]
    with pytest.raises(ValueError, match="population.*float64"):
        Search.from_checkpoint(bad)


def test_problem_json_round_trip():
    """Each problem's configuration survives JSON (what checkpoints store), with its kind and schema."""
    law = law_problem(loss="huber", delta=0.01)
    again = problem_from_json(json.loads(json.dumps(law.to_json_obj())))
    assert isinstance(again, LawProblem) and again.config == law.config
    f32 = Float32Problem(pinned_config())
    doc = f32.to_json_obj()
    assert "problem" not in doc  # float32 checkpoints keep the format older versions read and wrote
    assert problem_from_json(doc).config == pinned_config()


# ------------------------------------------------------------ real-number problem
from pysearch.search.real_problem import RealConfig, RealProblem  # noqa: E402


def real_problem(**kw) -> RealProblem:
    base = dict(target="exp2", points=64, population=12, seed=1, verify_points=513, max_instrs=6)
    base.update(kw)
    return RealProblem(RealConfig(**base))


def test_real_problem_fits_and_verifies_a_polynomial():
    """An affine-in-constants Horner chain gets least-squares constants; the dense check agrees with
    the training error and is measured against the 40-digit reference (below float64's rounding)."""
    rp = real_problem()
    p = parse("dtype float64\ninputs x\nv1 = fma x 0.1 0.5\nv2 = fma v1 x 0.9\nv3 = fma v2 x 1.1\n")
    q = rp.fit_constants([p])[0]
    train = float(rp.score([q]).errors[0])
    assert 1e-5 < train < 1e-3 < float(rp.score([p]).errors[0])  # a cubic: ~1e-4 relative on [0, 1]
    dense = rp.verify([q])[0]
    assert dense["points"] == 513 and not dense["ends_excluded"]
    assert train <= dense["max_rel_error"] * (1 + 1e-9) and dense["max_rel_error"] < 2 * train
    assert rp.measure(parse("dtype float64\ninputs x\nv1 = mul 2 3\nv2 = fma x v1 1\n")) == 1.0


def test_real_search_is_seeded_and_resumes():
    """A real-number search is a pure function of its seed, and resumes from JSON exactly."""
    a, b = Search(real_problem()), Search(real_problem())
    a.run(generations=3)
    b.run(generations=1)
    resumed = Search.from_checkpoint(json.loads(json.dumps(b.checkpoint_state(), allow_nan=False)))
    resumed.run(generations=3)
    assert law_snapshot(a) == law_snapshot(resumed)
    assert a.problem.best_structures().keys() == resumed.problem.best_structures().keys()
    best = min(a.archive, key=lambda ind: ind.max_ulp)
    assert best.max_ulp < 0.05  # at least a straight line through 2^x on [0, 1] (about 4% at best)


def test_real_search_restarts_by_the_engine_cache_and_old_configs_keep_scipy():
    """Run by a search, the real problem takes "fitted before" from the engine's constant cache (no
    second, growing set in every checkpoint); a configuration saved before the core fit existed
    resumes with the scipy fit and no restarts, as it ran."""
    from pysearch.search.real_problem import RealConfig

    s = Search(real_problem(restarts=2))
    s.run(generations=2)
    assert s.cache and "started" not in s.checkpoint_state()["problem_state"]
    assert not s.problem.started
    paper = parse("dtype float64\ninputs x\nv1 = div 1.5 x\nv2 = add x v1\nv3 = div 2.5 v2\n")
    key = structure_key(paper)
    assert s.problem._first_fit(key) and key not in s.problem.started
    s.cache[key] = paper.to_text()
    assert not s.problem._first_fit(key)
    doc = real_problem().config.to_json_obj()
    assert RealConfig.from_json_obj(doc).fit == "core"
    del doc["fit"], doc["restarts"]
    old = RealConfig.from_json_obj(doc)
    assert (old.fit, old.restarts) == ("scipy", 0)


def run_and_resume(make, split: int = 5, total: int = 12) -> tuple[Search, Search]:
    """A run of ``total`` generations with restarts after every stalled generation, and a run stopped
    at ``split`` and resumed from its JSON checkpoint to ``total`` (both from ``make()``); the first
    restarted at least once and the resumed one counted as many restarts."""
    a = Search(make())
    a.run(generations=total)
    assert a.problem.population_restarts >= 1
    b = Search(make())
    b.run(generations=split)
    resumed = Search.from_checkpoint(json.loads(json.dumps(b.checkpoint_state(), allow_nan=False)))
    resumed.run(generations=total)
    assert resumed.problem.population_restarts == a.problem.population_restarts
    return a, resumed


def test_real_search_restarts_a_stalled_population_and_resumes_exactly():
    """With ``restart_after``, a population without a new best at any cost for that many generations
    starts again from random programs (the bests stay remembered); the count survives a resume, which
    then continues exactly as the uninterrupted run."""
    a, resumed = run_and_resume(lambda: real_problem(restart_after=1, max_instrs=3))
    bests = dict(a.problem.best_by_cost)
    assert all(min(e for e, _ in a.problem.kept[c].values()) == b for c, b in bests.items())
    assert law_snapshot(a) == law_snapshot(resumed)
    never = Search(real_problem())
    never.run(generations=12)
    assert never.problem.population_restarts == 0


def test_float32_search_restarts_a_stalled_population_and_resumes_exactly():
    """``restart_after`` on the float32 problem: a population whose archive did not change for that
    many generations starts again (the archive stays: it only improves); the count and the archive's
    digest are checkpointed, so a resumed run continues exactly as the uninterrupted one; an old
    configuration without the field never restarts."""
    import dataclasses

    cfg = dataclasses.replace(pinned_config(), restart_after=1)
    a, resumed = run_and_resume(lambda: cfg)
    assert a.checkpoint_state()["problem_state"]["population_restarts"] == a.problem.population_restarts
    assert state_digest(resumed) == state_digest(a)
    never = Search(pinned_config())
    never.run(generations=12)
    assert never.problem.population_restarts == 0 and "problem_state" not in never.checkpoint_state()
    doc = cfg.to_json_obj()
    del doc["restart_after"]
    assert SearchConfig.from_json_obj(doc).restart_after == 0
    with pytest.raises(ValueError, match="restart_after"):
        dataclasses.replace(pinned_config(), restart_after=-1)


def test_structure_cap_keeps_more_structures_and_resumes_exactly():
    """``max_per_structure`` K: after a generation the population holds at most K programs of any
    structure while enough others exist, those K the most accurate of their structure; a run stopped
    and resumed from its JSON checkpoint continues exactly; an old configuration without the field has
    no cap; a negative cap is refused by name."""
    import dataclasses
    from collections import Counter

    from pysearch.search.individual import Individual

    cfg = dataclasses.replace(pinned_config(), population=32, max_per_structure=1)
    capped, free = Search(cfg), Search(dataclasses.replace(cfg, max_per_structure=0))
    capped.run(generations=12)
    free.run(generations=12)

    def most_copies(s: Search) -> int:
        return max(Counter(s.problem.structure(d.program) or d.text for d in s.population).values())

    assert most_copies(capped) == 1 < most_copies(free)
    # the selection itself: 6 copies of one cost-2 structure (by accuracy: 5, 1, 4, 2, 6, 3 ULP) and 2 other
    # programs of cost 3 that every copy dominates (without a cap NSGA-II would take the copies first)
    s = Search(dataclasses.replace(cfg, max_per_structure=2))
    base = parse("dtype float32\ninputs x\nv1 = mul x 2.0\nv2 = add v1 1.0\n")
    others = [parse("dtype float32\ninputs x\nv1 = mul x x\nv2 = add v1 x\nv3 = mul v2 x\n"),
              parse("dtype float32\ninputs x\nv1 = add x x\nv2 = mul v1 x\nv3 = add v2 x\n")]
    copies = [base.with_constants([2.0 + i, 1.0]) for i in range(6)]
    inds = [Individual(p, e, e, (e, p.cost())) for p, e in zip(copies, (5.0, 1.0, 4.0, 2.0, 6.0, 3.0))]
    inds += [Individual(p, 50.0, 50.0, (50.0, p.cost())) for p in others]
    kept, extra = s._capped(inds, 2)
    assert [d.max_ulp for d in kept] == [1.0, 2.0, 50.0, 50.0] and [d.max_ulp for d in extra] == [5.0, 4.0, 6.0, 3.0]
    assert sorted(d.max_ulp for d in s._select(inds, 4)) == [1.0, 2.0, 50.0, 50.0]
    # too few structures for the population: the best of the rest fill it
    assert sorted(d.max_ulp for d in s._select(inds, 6)) == [1.0, 2.0, 3.0, 4.0, 50.0, 50.0]
    uncapped = Search(dataclasses.replace(cfg, max_per_structure=0))
    assert sorted(d.max_ulp for d in uncapped._select(inds, 4)) == [1.0, 2.0, 3.0, 4.0]
    b = Search(cfg)
    b.run(generations=5)
    resumed = Search.from_checkpoint(json.loads(json.dumps(b.checkpoint_state(), allow_nan=False)))
    resumed.run(generations=12)
    assert state_digest(resumed) == state_digest(capped)
    doc = cfg.to_json_obj()
    del doc["max_per_structure"]
    assert SearchConfig.from_json_obj(doc).max_per_structure == 0
    with pytest.raises(ValueError, match="max_per_structure"):
        dataclasses.replace(pinned_config(), max_per_structure=-1)


def test_refit_of_known_structures_follows_the_problem():
    """Law and real problems fit a known structure again from a child's own constants and keep the
    better fit; the float32 problem offers the cached fit instead (its behaviour, pinned above)."""
    s = Search(law_problem())
    p = parse("dtype float64\ninputs x\nv1 = pow x -0.9\nv2 = mul v1 0.1\nv3 = add v2 3.0\n")
    (first,), used = s._make_individuals([p], budget=4)
    assert used == 1
    key = next(iter(k for k, v in s.cache.items() if v == first.text))
    other = p.with_constants([-0.2, 1.9, 0.6])  # another start for the same structure
    (second,), used = s._make_individuals([other], budget=4)
    assert used == 1  # fitted again, not just offered the cached fit
    assert second.max_ulp <= first.max_ulp
    assert s.cache[key] == second.text and parse(s.cache[key]).constants() != p.constants()
    f32 = Search(pinned_config())
    q = parse("dtype float32\ninputs x\nv1 = fma x 0.7 1.0\n")
    f32._make_individuals([q], budget=4)
    _, used = f32._make_individuals([q.with_constants([0.5, 1.25])], budget=4)
    assert used == 0


def test_bench_search_laws_only_measures_the_law_problem(capsys):
    """experiments/bench_search.py --laws-only: the law discovery alone, its figure in the RESULT line."""
    import importlib.util
    import re
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "experiments" / "bench_search.py"
    spec = importlib.util.spec_from_file_location("bench_search", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.main(["--laws-only", "--law-seconds", "0", "--law-generations", "1"])
    out = capsys.readouterr().out
    m = re.search(r"^RESULT search_candidates_per_s=nan law_programs_per_cpu_s=([0-9.]+) workers_speedup_2=nan "
                  r"seconds_to_1ulp_cost6=nan$", out, re.MULTILINE)
    assert m, out
    assert float(m.group(1)) > 0


PAPER_OPS = ("add", "sub", "mul", "div")


REAL_PROGRAMS = [  # paper-ops programs the search meets: a square, a pole, a squared pole plus a constant
    "v1 = mul x 0.1\nv2 = add v1 0.5\nv3 = mul v2 v2\n",
    "v1 = sub x 3.4\nv2 = div -8.2 v1\nv3 = add v2 -1.4\n",
    "v1 = sub x 7.3\nv2 = div 20.6 v1\nv3 = sub v2 -1.9\nv4 = mul v3 v3\nv5 = add v4 0.18\n",
    "v1 = div 0.5 x\nv2 = add v1 x\nv3 = div 2.0 v2\nv4 = add v3 1.0\n",
]


def test_real_core_fit_is_never_worse_and_matches_scipy():
    """The batched core fit (``_core.fit_laws`` on relative error) of real-number programs is never
    worse than their start and matches or improves the one-at-a-time scipy fit (the earlier path);
    errors are the problem's own (float64 values, double-double below 1e-12)."""
    core = real_problem(ops=PAPER_OPS, points=256, restarts=0)
    ref = real_problem(ops=PAPER_OPS, points=256, fit="scipy")
    progs = [parse("dtype float64\ninputs x\n" + body) for body in REAL_PROGRAMS]
    fitted = core.fit_constants(progs)  # one batch
    start, got = core.errors(progs), core.errors(fitted)
    want = core.errors(ref.fit_constants(progs))
    for p, s0, e, w in zip(progs, start, got, want):
        assert e <= s0, p.to_text()
        assert e < 0.5 * s0, p.to_text()  # the fit did something
        assert e <= w * (1 + 1e-6), (p.to_text(), e, w)
    # one at a time gives the same constants as the batch (a fit depends only on its program)
    assert [core.fit_constants([p])[0].constants() for p in progs] == [q.constants() for q in fitted]
    # a program whose output does not depend on x, or without constants, comes back as it was
    const = parse("dtype float64\ninputs x\nv1 = mul 2 3\n")
    assert core.fit_constants([const])[0].to_text() == const.to_text()


def test_real_core_fit_restarts_new_structures_once():
    """A structure fitted for the first time is also fitted from ``restarts`` random starts (seeded by
    the structure): the paper's 10-op shape from all-ones constants needs them; a structure seen
    before is fitted from its own constants only; the set of started structures is checkpointed."""
    paper = parse("dtype float64\ninputs x\nt0 = div 1 x\nt = add x t0\na = div 1 t\nb = add a 1\n"
                  "u = add b t\ng = div 1 u\nh = sub g 1\nh2 = mul h h\nh4 = mul h2 h2\nh8 = mul h4 h4\n")
    single = real_problem(ops=PAPER_OPS, points=256, restarts=0).fit_constants([paper])[0]
    rp = real_problem(ops=PAPER_OPS, points=256, restarts=32)
    multi = rp.fit_constants([paper])[0]
    e_single, e_multi = rp.errors([single, multi])
    assert e_multi < 1e-7 < e_single
    assert rp.started == {structure_key(paper)}
    again = real_problem(ops=PAPER_OPS, points=256, restarts=32)
    assert again.fit_constants([paper])[0].constants() == multi.constants()  # seeded by the structure
    again.restore(json.loads(json.dumps(rp.state())))
    assert again.started == rp.started
    # known now: fitted from its own (all-ones) constants only, as without restarts
    assert again.fit_constants([paper])[0].constants() == single.constants()


def test_real_errors_are_double_double_where_float64_rounding_matters():
    """The problem's error is the float64 max relative error, and the double-double one where that
    is below 1e-12 (a 10-op program there: float64 rounding is a visible part of its error)."""
    from pysearch.search.real_problem import DD_BELOW

    rp = real_problem(ops=PAPER_OPS, points=256)
    coarse = parse("dtype float64\ninputs x\n" + REAL_PROGRAMS[1])
    assert rp.errors([coarse])[0] == rp.max_rel(coarse) > DD_BELOW
    # Taylor degree 10 of 2^x about 1/2 (about 2e-13), Horner with mul and add
    ck = [2 ** 0.5 * math.log(2) ** k / math.factorial(k) for k in range(11)]
    body = f"t = sub x 0.5\nv10 = mul t {ck[10]!r}\n"
    for k in range(9, -1, -1):
        body += f"a{k} = add v{k + 1} {ck[k]!r}\n" + (f"v{k} = mul a{k} t\n" if k else "")
    fine = parse("dtype float64\ninputs x\n" + body)
    e = rp.errors([fine])[0]
    assert e < DD_BELOW and e == rp.real_max_rel(fine) != rp.max_rel(fine)


def test_real_cost_counts_only_x_dependent_ops():
    """The real-number cost is the paper's: live ops that depend on x; ops on constants alone and
    dead ops are free, and the paper's 10-op program counts 10."""
    from pysearch.search.real_problem import x_dependent_ops

    p = parse("dtype float64\ninputs x\nc1 = mul 3 0.5\nc2 = div 1 c1\nd = mul x x\nv1 = mul x c2\n"
              "v2 = add v1 c1\nv3 = div c2 v2\n")
    assert x_dependent_ops(p) == 3  # v1, v2, v3; c1 and c2 fold into constants, d is dead
    assert real_problem(ops=PAPER_OPS).measure(p) == 3.0
    q = parse("dtype float64\ninputs x\nc1 = mul 3 0.5\nv1 = mul x c1\nv2 = add v1 c1\nv3 = div c1 v2\n")
    assert x_dependent_ops(q) == 3 and len(q.instrs) == 4
    paper = parse("dtype float64\ninputs x\nt0 = div 0.1 x\nt = add x t0\na = div 0.2 t\nb = add a 0.3\n"
                  "u = add b t\ng = div 0.4 u\nh = sub g 0.5\nh2 = mul h h\nh4 = mul h2 h2\nh8 = mul h4 h4\n")
    assert x_dependent_ops(paper) == 10


def test_real_problem_enforces_its_op_set():
    """A search in the paper's op set (structural mutations, which build fma where allowed) only makes
    programs in that set; a program with another op is refused when scored and in a checkpoint;
    an unknown mutation set is a named error."""
    from pysearch.variation import MUTATION_SETS

    for mutation in MUTATION_SETS:
        s = Search(real_problem(ops=PAPER_OPS, mutation=mutation, max_instrs=8))
        s.run(generations=4)
        seen = [ind.program for ind in s.population] + [ind.program for ind in s.archive]
        seen += [p for v in s.problem.best_structures().values() for _, p in v]
        assert len(seen) > 12
        assert {i.op for p in seen for i in p.instrs} <= set(PAPER_OPS), mutation
    fma = parse("dtype float64\ninputs x\nv1 = fma x 0.5 1\n")
    with pytest.raises(ValueError, match=r"op\(s\) \['fma'\] outside the op set"):
        s.problem.score([fma])
    ck = json.loads(json.dumps(s.checkpoint_state(), allow_nan=False))
    ck["population"][0] = fma.to_text()
    with pytest.raises(ValueError, match=r"checkpoint is malformed: field population\[0\]: .*\['fma'\]"):
        Search.from_checkpoint(ck)
    with pytest.raises(ValueError, match="unknown mutation set 'nope'"):
        real_problem(mutation="nope")
    cfg = real_problem(mutation="autonumerics").config
    assert RealConfig.from_json_obj(cfg.to_json_obj()).mutation == "autonumerics"

