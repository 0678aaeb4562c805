"""A problem's own genome on the one engine: the configuration problem (vectors of category indices).

The fitness here is a cheap stand-in (no torch): a separable function with one known optimum, so
a search that finds it and a resume that equals the uninterrupted run are both checkable.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pysearch.search.config_problem import ConfigProblem, ConfigSearchConfig, register_fitness
from pysearch.search.loop import Search

SIZES = (4, 4, 2, 5, 1)
CALLS: list[tuple[int, ...]] = []


def _separable(args: dict):
    target = tuple(args["target"])

    def f(g):
        CALLS.append(tuple(g))
        if g[0] == 3 and g[1] == 0:  # a corner the fitness cannot score
            return math.nan
        return float(sum((a - b) ** 2 * (i + 1) for i, (a, b) in enumerate(zip(g, target))))

    return f


register_fitness("test_separable", _separable)
TARGET = [2, 1, 1, 3, 0]


def problem(**kw) -> ConfigProblem:
    base = {"gene_sizes": SIZES, "fitness": "test_separable", "fitness_args": {"target": TARGET}, "population": 8,
            "seed": 3}
    base.update(kw)
    return ConfigProblem(ConfigSearchConfig(**base))


def snapshot(s: Search) -> dict:
    st_ = s.checkpoint_state()
    return {k: st_[k] for k in ("generation", "population", "archive", "rng", "problem_state", "evaluations")}


def to_json(doc: dict) -> dict:
    return json.loads(json.dumps(doc, allow_nan=False))


def test_search_finds_the_optimum_and_is_seeded():
    """Two runs with one seed are the same run; the archive holds the known optimum (error 0)."""
    a, b = Search(problem()), Search(problem())
    a.run(generations=12)
    b.run(generations=12)
    assert snapshot(a) == snapshot(b)
    genes, err = a.problem.best(a)
    assert genes == tuple(TARGET) and err == 0.0
    # the population is distinct genomes, each scored exactly as the fitness says
    texts = [ind.text for ind in a.population]
    assert len(texts) == len(set(texts))
    for ind in a.population:
        assert ind.fitness.values[1] == 0.0
        assert ind.text == ",".join(map(str, ind.program))
    # NaN fitness is an unusable genome: inf error, never in the archive's best
    bad = a.problem.score([(3, 0, 0, 0, 0)])
    assert bad.errors[0] == math.inf and bad.objectives[0][0] == 1e300
    c = Search(problem(seed=4))
    c.run(generations=12)
    assert snapshot(c)["rng"] != snapshot(a)["rng"]


def test_each_distinct_genome_is_evaluated_once():
    CALLS.clear()
    s = Search(problem())
    s.run(generations=6)
    assert len(CALLS) == len(set(CALLS)) == len(s.problem.scores)


def test_checkpoint_resume_equals_uninterrupted_run():
    """Stop after 4 generations, go through JSON, resume to 10: the same state as 10 straight,
    and the resume evaluates no genome it had evaluated before."""
    straight = Search(problem())
    straight.run(generations=10)
    first = Search(problem())
    first.run(generations=4)
    doc = to_json(first.checkpoint_state())
    assert doc["config"]["problem"] == "config" and doc["config"]["problem_schema"] == 1
    CALLS.clear()
    resumed = Search.from_checkpoint(doc)
    assert CALLS == []  # population and archive were scored from the saved scores
    assert isinstance(resumed.problem, ConfigProblem)
    resumed.run(generations=10)
    assert snapshot(resumed) == snapshot(straight)
    assert not set(CALLS) & {tuple(map(int, t.split(","))) for t in doc["problem_state"]["scores"]}


@pytest.mark.parametrize("where, value, field", [
    (("config", "gene_sizes"), [4, 0], "config.gene_sizes[1]"),
    (("config", "fitness"), "nope", "config.fitness"),
    (("config", "population"), 1, "config.population"),
    (("config", "crossover_rate"), 2.0, "config.crossover_rate"),
    (("config", "colour"), 1, "config"),
    (("config", "problem_schema"), 2, "config.problem_schema"),
    (("population",), ["1,2,0,0,0", "9,0,0,0,0"], "population[1]"),
    (("population",), ["1,2,0"], "population[0]"),
    (("population",), ["01,2,0,0,0"], "population[0]"),
    (("archive",), [" 1,2,0,0,0"], "archive[0]"),
    (("problem_state", "scores"), {"1,2,0,0,x": 1.0}, "problem_state.scores"),
    (("problem_state", "scores"), {"1,2,0,0,0": "low"}, "problem_state.scores"),
    (("problem_state", "colour"), 1, "problem_state"),
])
def test_bad_checkpoint_fields_are_named(where, value, field):
    doc = to_json(Search(problem()).checkpoint_state())
    bad = json.loads(json.dumps(doc))
    d = bad
    for k in where[:-1]:
        d = d[k]
    d[where[-1]] = value
    pattern = r"checkpoint is malformed: field " + field.replace(".", r"\.").replace("[", r"\[")
    with pytest.raises(ValueError, match=pattern):
        Search.from_checkpoint(bad)


def test_bad_configurations_are_named():
    for kw, words in (({"gene_sizes": ()}, "genes"), ({"gene_sizes": (3, 0)}, "gene 1 size"),
                      ({"fitness": "nope"}, "unknown fitness 'nope'"), ({"population": 1}, "population"),
                      ({"fitness_args": {"x": math.nan}}, "fitness_args"), ({"crossover_rate": -1}, "crossover_rate")):
        with pytest.raises(ValueError, match=words):
            problem(**kw)


genomes = st.tuples(*[st.integers(0, s - 1) for s in SIZES])


@given(seed=st.integers(0, 2**32 - 1), a=genomes, b=genomes)
def test_genome_operators_stay_valid(seed, a, b):
    """Random genomes, one-gene resampling and uniform crossover give valid genomes; text round-trips."""
    p = problem()
    rng = np.random.default_rng(seed)
    for g in p.initial_programs(rng, 5) + [a, b]:
        assert len(g) == len(SIZES) and all(0 <= v < s for v, s in zip(g, SIZES))
        assert p.parse_genome(p.genome_text(g)) == g
    m = p.mutate(rng, a)
    changed = [i for i in range(len(a)) if m[i] != a[i]]
    assert len(changed) == 1 and SIZES[changed[0]] > 1 and 0 <= m[changed[0]] < SIZES[changed[0]]
    c1, c2 = p.crossover(rng, a, b)
    for child, parent, other in ((c1, a, b), (c2, b, a)):
        assert all(0 <= v < s for v, s in zip(child, SIZES))
        if child != parent:
            # each gene from one of the parents, or (a child equal to its parent) one gene resampled
            from_parents = all(v in (x, y) for v, x, y in zip(child, parent, other))
            one_off = sum(v != x for v, x in zip(child, parent)) == 1
            assert from_parents or one_off
        else:
            pytest.fail("a child equal to its parent should have been mutated")


@given(text=st.text(max_size=20))
def test_genome_text_parser_rejects_everything_else(text):
    p = problem()
    try:
        g = p.parse_genome(text)
    except ValueError as e:
        assert str(e)
    else:
        assert p.genome_text(g) == text


def test_initial_genomes_are_distinct_where_the_space_allows():
    p = problem(gene_sizes=(2, 3), population=6)
    assert sorted(p.initial_programs(np.random.default_rng(0), 6)) == [(i, j) for i in range(2) for j in range(3)]
    q = problem(gene_sizes=(1,), population=4)
    assert q.mutate(np.random.default_rng(0), (0,)) == (0,)
    s = Search(problem(gene_sizes=(1, 1), population=4))
    s.run(generations=2)
    assert [ind.text for ind in s.population] == ["0,0"]


def test_experiment_evolve_runs_on_the_engine():
    """experiments/evolve_configs.py's ``evolve`` is a thin configuration of the engine: on the
    frontier's genes (width, depth, steps) with a synthetic loss it returns the optimum, the log
    (one record per generation) and every distinct genome scored once."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
    import evolve_configs as ec

    sizes = (len(ec.WIDTHS), len(ec.DEPTHS), len(ec.STEPS))
    register_fitness("test_frontier_stand_in",
                     lambda args: lambda g: abs(g[0] - args["w"]) + 2 * abs(g[1] - 1) + 0.5 * abs(g[2] - 3))
    genes, err, log, prob = ec.evolve(sizes, "test_frontier_stand_in", {"w": 5}, 6, 10, 0)
    assert genes == (5, 1, 3) and err == 0.0
    assert [r["gen"] for r in log] == list(range(11)) and all(r["min"] <= r["median"] for r in log)
    assert log[-1]["min"] == 0.0
    again = ec.evolve(sizes, "test_frontier_stand_in", {"w": 5}, 6, 10, 0)
    assert again[2] == log and again[3].scores == prob.scores


def test_unusable_scores_survive_json():
    """A genome the fitness could not score (inf) is saved as null and read back as inf, not evaluated again."""
    p = problem()
    p.score([(3, 0, 0, 0, 0), (2, 1, 1, 3, 0)])
    state = to_json(p.state())
    assert state["scores"] == {"3,0,0,0,0": None, "2,1,1,3,0": 0.0}
    q = problem()
    q.preload(state)
    CALLS.clear()
    assert list(q.score([(3, 0, 0, 0, 0)]).errors) == [math.inf] and CALLS == []
