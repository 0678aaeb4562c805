"""The search engine: determinism, checkpoint/resume equivalence, finding a 1-ULP program."""

from __future__ import annotations

import json

import pytest

from pysearch.program import parse
from pysearch.search.config import SearchConfig
from pysearch.search.individual import structure_key
from pysearch.search.loop import Search

NARROW = (1.0, 1.0078125)  # 2^16 + 1 float32 values


def small_config(**kw) -> SearchConfig:
    base = dict(target="exp2", domain=NARROW, population=16, sample_size=256, opt_per_generation=8,
                verify_every=2, max_instrs=6, seed=3)
    base.update(kw)
    return SearchConfig(**base)


def snapshot(s: Search) -> dict:
    st = s.checkpoint_state()
    return {k: st[k] for k in ("generation", "population", "archive", "front", "rng", "rejected", "extra_x")}


def test_collections_are_rarer_during_a_run_and_restored_after():
    """A run raises the young-generation collection threshold (it allocates much, in cycles hardly
    anything) and puts the thresholds back when it ends, by an exception too."""
    import gc

    from pysearch.search.loop import GC_YOUNG_THRESHOLD

    before = gc.get_threshold()
    seen = []
    s = Search(small_config())
    s.run(generations=2, on_generation=lambda s, info: seen.append(gc.get_threshold()))
    assert seen and all(t[0] >= GC_YOUNG_THRESHOLD and t[1:] == before[1:] for t in seen)
    assert gc.get_threshold() == before

    def fail(s, info):
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        s.run(generations=4, on_generation=fail)
    assert gc.get_threshold() == before


def test_archive_copies_share_instructions_and_keep_fitness():
    """The archive's deep copies of individuals (DEAP copies what it keeps) share the immutable
    instructions, copy the fitness, and the copy's program is its own list."""
    import copy

    s = Search(small_config())
    ind = s.population[0]
    c = copy.deepcopy(ind)
    assert c is not ind and c.program is not ind.program and c.program.instrs is not ind.program.instrs
    assert all(a is b for a, b in zip(c.program.instrs, ind.program.instrs))
    assert c.program == ind.program and c.text == ind.text and (c.max_ulp, c.mean_ulp) == (ind.max_ulp, ind.mean_ulp)
    assert c.fitness is not ind.fitness and c.fitness.values == ind.fitness.values


def test_same_seed_same_run():
    """Two runs with the same seed agree exactly; another seed differs."""
    a, b, c = Search(small_config()), Search(small_config()), Search(small_config(seed=4))
    for s in (a, b, c):
        s.run(generations=3)
    assert snapshot(a) == snapshot(b)
    assert snapshot(a)["population"] != snapshot(c)["population"]


def test_resume_equals_uninterrupted_run():
    """Stopping after 2 generations, saving as JSON and resuming to 5 equals running 5 at once."""
    straight = Search(small_config())
    straight.run(generations=5)
    first = Search(small_config())
    first.run(generations=2)
    first.final_front()  # a finished run's last verification must not change what resumes
    doc = json.loads(json.dumps(first.checkpoint_state(), allow_nan=False))
    resumed = Search.from_checkpoint(doc)
    resumed.run(generations=5)
    assert snapshot(resumed) == snapshot(straight)
    assert [e.text for e in resumed.final_front()] == [e.text for e in straight.final_front()]


def test_checkpoint_logbook_is_the_committed_generations():
    """A checkpoint's logbook holds one record per committed generation (the first population's
    and each generation's), not a record written by a generation still running."""
    s = Search(small_config())
    s.run(generations=3)
    ck = s.checkpoint_state()
    assert [r["gen"] for r in ck["logbook"]] == [0, 1, 2, 3]
    assert ck["logbook"][2]["evals"] == s.logbook[2]["evals"] and "logbook_len" not in ck
    s._record(1, 0, 0.0)  # what a generation writes before it commits
    assert len(s.logbook) == 5 and [r["gen"] for r in s.checkpoint_state()["logbook"]] == [0, 1, 2, 3]


def test_cached_fits_kept_as_programs_are_bounded_and_change_nothing(monkeypatch):
    """Only the most recently used cached fits are kept as programs; the others are read again
    from their texts, and the run is the same as with all of them kept."""
    from pysearch.search import loop

    full = Search(small_config())
    full.run(generations=6)
    assert len(full._cache_programs) > 5  # the test needs evictions below
    monkeypatch.setattr(loop, "CACHED_PROGRAMS", 2)
    small = Search(small_config())
    parsed: list[str] = []
    real = small.problem.parse_genome
    monkeypatch.setattr(small.problem, "parse_genome", lambda text: parsed.append(text) or real(text))
    small.run(generations=6)
    assert len(small._cache_programs) <= 2 and parsed  # evicted fits were read again from their texts
    assert snapshot(small) == snapshot(full) and small.cache == full.cache


def test_finds_verified_one_ulp_program():
    """A tiny search on a narrow exp2 domain finds a verified <= 1 ULP program in a few generations."""
    s = Search(small_config(max_ulp=1.0, population=32, opt_per_generation=16, seed=5))
    s.run(generations=10)
    front = s.final_front()
    ok = [e for e in front if e.max_ulp <= 1.0]
    assert ok, [(e.cost, e.max_ulp) for e in front]
    assert all(e.verified == "exhaustive" and e.n_points == 2**16 + 1 for e in ok)


def test_front_is_pareto_and_verified():
    """Front entries are mutually non-dominated and each carries an exhaustive figure."""
    s = Search(small_config())
    s.run(generations=4)
    front = s.final_front()
    assert front
    for e in front:
        assert e.verified == "exhaustive"
        for f in front:
            assert not (f.cost <= e.cost and f.max_ulp <= e.max_ulp and (f.cost, f.max_ulp) != (e.cost, e.max_ulp))


def test_structure_key_ignores_constants():
    """Programs differing only in constants share a structure key; different wiring does not."""
    a = parse("v1 = fma x 0.5 1\nv2 = mul v1 x\n")
    b = parse("v1 = fma x 0.25 3\nv2 = mul v1 x\n")
    c = parse("v1 = fma x 0.5 1\nv2 = mul v1 v1\n")
    assert structure_key(a) == structure_key(b) != structure_key(c)


def test_children_beyond_the_fitting_budget_are_counted_as_unfitted():
    """``Search.unfitted``: a new structure past ``opt_per_generation`` keeps its inherited
    constants; with a budget as large as the population every child is fitted or cached."""
    tight = Search(small_config(opt_per_generation=1))
    tight.run(generations=4)
    assert tight.unfitted > 0
    roomy = Search(small_config(opt_per_generation=16))
    roomy.run(generations=4)
    assert roomy.unfitted == 0 and roomy.optimisations > 0


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(domain=(1.0, 1.0)), "bad domain"),
        (dict(domain=(0.0, float("inf"))), "bad domain"),
        (dict(dtype="float64"), "float32 only"),
        (dict(ops=("add", "cube")), "unknown op"),
        (dict(max_ulp=-1.0), "max_ulp"),
        (dict(objective="speed"), "objective"),
        (dict(population=7), "population"),
        (dict(fit_points=0), "fit_points"),
    ],
)
def test_bad_config_rejected(kw, match):
    """Invalid settings raise ValueError naming the problem."""
    with pytest.raises(ValueError, match=match):
        small_config(**kw)


def test_fit_points_reach_the_fit_and_survive_a_checkpoint():
    """The real-valued fit runs on ``fit_points`` of the sample (1024 by default, and for a
    configuration saved before the field existed); a saved value is kept."""
    assert Search(small_config(sample_size=2048, fit_points=100)).fit_sample.x_fit.shape[1] == 100
    assert Search(small_config(sample_size=2048)).fit_sample.x_fit.shape[1] == 1024
    doc = small_config(fit_points=300).to_json_obj()
    assert SearchConfig.from_json_obj(doc).fit_points == 300
    del doc["fit_points"]
    assert SearchConfig.from_json_obj(doc).fit_points == 1024


def test_seeded_run_starts_from_baselines():
    """--seed-baselines puts minimax polynomials in the first population."""
    s = Search(small_config(seed_baselines=True))
    first = s.logbook[0]["min_ulp"]
    assert first < 2.0


def test_latency_objective():
    """With objective='latency' the front trades latency, not cost, against error."""
    s = Search(small_config(objective="latency"))
    s.run(generations=3)
    front = s.final_front()
    assert front
    lat = [e.latency for e in front]
    assert lat == sorted(lat)
    assert [e.max_ulp for e in front] == sorted((e.max_ulp for e in front), reverse=True)


def test_cost_weights_change_the_measure():
    """With cost weights, programs are measured (and front entries costed) by the weighted sum."""
    p = parse("v1 = add x 1\nv2 = fma v1 x 0.5\nv3 = mul v2 v2\n")
    s = Search(small_config(cost_weights={"add": 0.25, "mul": 2}))
    assert s.measure(p) == 0.25 + 1 + 2
    s.run(generations=2)
    for e in s.final_front():
        assert e.cost == parse(e.text).cost({"add": 0.25, "mul": 2})


def test_cost_weights_survive_resume():
    """A resumed run restores front entries with the weighted cost, as the uninterrupted run has them."""
    cfg = small_config(cost_weights={"add": 0.25, "sub": 0.25})
    a = Search(cfg)
    a.run(generations=4)
    b = Search.from_checkpoint(json.loads(json.dumps(a.checkpoint_state())))
    assert [(e.text, e.cost) for e in b.front] == [(e.text, e.cost) for e in a.front]
    assert b.config.cost_weights == {"add": 0.25, "sub": 0.25}


def test_seed_programs_enter_first_population():
    """Seed programs are in the first population, with constants refitted (never worse)."""
    seed = "v1 = fma x 0.24022651 0.6931472\nv2 = fma v1 x 1\n"
    s = Search(small_config(seed_programs=(seed,)))
    keys = {structure_key(ind.program) for ind in s.population} | {structure_key(i.program) for i in s.archive}
    assert structure_key(parse(seed)) in keys


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(cost_weights={"cube": 1.0}), "unknown op"),
        (dict(cost_weights={"add": -1.0}), "non-negative"),
        (dict(seed_programs=("v1 = frob x",)), "unknown op"),
        (dict(seed_programs=("inputs x,y\nv1 = add x y",)), "one-input"),
    ],
)
def test_bad_weights_or_seeds_rejected(kw, match):
    """Bad cost weights or seed programs raise ValueError naming the problem."""
    with pytest.raises(ValueError, match=match):
        small_config(**kw)
