"""Variation operators: validity, determinism and bounds."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pysearch.program import OP_BY_NAME, parse
from pysearch.variation import (MUTATION_WEIGHTS, STRUCTURAL_MUTATION_WEIGHTS, _draw, _kind_table, crossover, mutate,
                                random_program)

F32_OPS = ("add", "sub", "mul", "div", "fma", "neg", "abs", "sqrt", "min", "max", "rint", "floor",
           "ldexp", "getexp", "getmant")
F64_OPS = F32_OPS + ("exp", "log", "pow")

op_sets = st.lists(st.sampled_from(F32_OPS), min_size=1, max_size=6, unique=True)


def _roundtrips(p) -> bool:
    """Valid (the operators build their results unchecked: ``Program._derived``) and the text
    form reads back as the same program."""
    p.validate()
    return parse(p.to_text()) == p


class TestRandomProgram:
    @settings(max_examples=30, deadline=None)
    @given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 12), ops=op_sets)
    def test_valid_and_uses_only_given_ops(self, seed, n, ops):
        """Random programs are valid, use only the given ops and fit the instruction count."""
        p = random_program(np.random.default_rng(seed), n, ops)
        assert 1 <= len(p.instrs) <= n
        assert {i.op for i in p.instrs} <= set(ops)
        assert all(p.live())
        assert _roundtrips(p)

    def test_multiple_inputs_and_float64(self):
        """Programs over several inputs in float64 may use float64-only ops and every input name."""
        rng = np.random.default_rng(1)
        ps = [random_program(rng, 8, F64_OPS, inputs=("n", "d"), dtype="float64") for _ in range(50)]
        assert all(p.dtype == "float64" and p.inputs == ("n", "d") for p in ps)
        used = {a.index for p in ps for i in p.instrs for a in i.args if a.kind == "input"}
        assert used == {0, 1}

    def test_same_seed_same_program(self):
        """The same seed gives the same program text."""
        a = random_program(np.random.default_rng(7), 6, F32_OPS)
        b = random_program(np.random.default_rng(7), 6, F32_OPS)
        assert a.to_text() == b.to_text()

    def test_bad_arguments(self):
        """Unknown ops, float64-only ops in float32, and empty programs are rejected."""
        rng = np.random.default_rng(0)
        with pytest.raises(ValueError, match="unknown op"):
            random_program(rng, 3, ["add", "cube"])
        with pytest.raises(ValueError, match="only available in float64"):
            random_program(rng, 3, ["add", "exp"])
        with pytest.raises(ValueError, match="n_instr"):
            random_program(rng, 0, ["add"])
        with pytest.raises(TypeError):
            random_program(rng, 3, "add")


class TestMutate:
    @settings(max_examples=30, deadline=None)
    @given(seed=st.integers(0, 2**32 - 1), ops=op_sets, max_instrs=st.integers(1, 10))
    def test_mutants_are_valid_and_different(self, seed, ops, max_instrs):
        """Each mutant is valid, bounded in size, uses allowed ops and differs from its parent."""
        rng = np.random.default_rng(seed)
        p = random_program(rng, max_instrs, ops)
        if max_instrs == 1 and len(ops) == 1 and OP_BY_NAME[ops[0]].arity == 1:
            return  # the space holds a single program: nothing to mutate to
        for _ in range(10):
            q = mutate(rng, p, ops, max_instrs)
            assert q.to_text() != p.pruned().to_text()
            assert len(q.instrs) <= max_instrs
            assert {i.op for i in q.instrs} <= set(ops)
            assert _roundtrips(q)
            p = q

    @settings(max_examples=30, deadline=None)
    @given(seed=st.integers(0, 2**32 - 1), ops=st.lists(st.sampled_from(F64_OPS), min_size=1, max_size=8, unique=True))
    def test_float64_mutants_and_children_of_several_inputs_are_valid(self, seed, ops):
        """Every mutation kind (the structural set) and crossover keep float64 programs over two inputs valid."""
        rng = np.random.default_rng(seed)
        p = random_program(rng, 6, ops, inputs=("n", "d"), dtype="float64")
        for _ in range(10):
            q = mutate(rng, p, ops, 8, weights=STRUCTURAL_MUTATION_WEIGHTS)
            assert q.inputs == ("n", "d") and q.dtype == "float64"
            assert _roundtrips(q)
            for c in crossover(rng, p, q):
                assert _roundtrips(c)
            p = q

    def test_all_mutation_kinds_occur(self):
        """Over many mutations, programs grow, shrink, change op and change constants."""
        rng = np.random.default_rng(3)
        ops = ("add", "mul", "fma")
        p = parse("v1 = fma x 0.5 1\nv2 = fma v1 x 1\n")
        grew = shrank = op_changed = const_changed = False
        for _ in range(300):
            q = mutate(rng, p, ops, 8)
            grew |= len(q.instrs) > len(p.instrs)
            shrank |= len(q.instrs) < len(p.instrs)
            if len(q.instrs) == len(p.instrs):
                op_changed |= [i.op for i in q.instrs] != [i.op for i in p.instrs]
                const_changed |= q.constants() != p.constants() and len(q.constants()) == len(p.constants())
        assert grew and shrank and op_changed and const_changed

    def test_deterministic(self):
        """The same seed gives the same chain of mutants."""
        def chain(seed):
            rng = np.random.default_rng(seed)
            p = random_program(rng, 4, F32_OPS)
            out = []
            for _ in range(20):
                p = mutate(rng, p, F32_OPS, 8)
                out.append(p.to_text())
            return out

        assert chain(11) == chain(11)
        assert chain(11) != chain(12)

    @pytest.mark.parametrize("table", [MUTATION_WEIGHTS, STRUCTURAL_MUTATION_WEIGHTS,
                                       {"insert": 1, "delete": 0.0, "rewire": 3.0}])
    def test_kind_draw_is_numpy_choice(self, table):
        """A mutation kind is drawn as ``rng.choice(len(kinds), p=w)`` draws it, leaving the generator alike."""
        kinds, cdf = _kind_table(table)
        assert kinds == [k for k in table if table[k] > 0]
        w = np.array([float(table[k]) for k in kinds])
        w = w / w.sum()
        for seed in range(20):
            a, b = np.random.default_rng(seed), np.random.default_rng(seed)
            assert [int(a.choice(len(kinds), p=w)) for _ in range(500)] == [_draw(b, cdf) for _ in range(500)]
            assert a.bit_generator.state == b.bit_generator.state

    @pytest.mark.parametrize("table, message", [({"grow": 1.0}, "unknown mutation kind"),
                                                ({"insert": float("nan")}, "finite"),
                                                ({"insert": 0.0}, "at least one positive")])
    def test_bad_weights_rejected_every_time(self, table, message):
        """A bad weight table is refused on every call (only checked tables are remembered)."""
        p = parse("v1 = fma x 0.5 1\n")
        for _ in range(2):
            with pytest.raises(ValueError, match=message):
                mutate(np.random.default_rng(0), p, ("add", "fma"), 4, weights=table)


class TestCrossover:
    @settings(max_examples=30, deadline=None)
    @given(seed=st.integers(0, 2**32 - 1), ops=op_sets)
    def test_children_valid(self, seed, ops):
        """Children are valid programs over the parents' inputs built from the parents' ops."""
        rng = np.random.default_rng(seed)
        p1 = random_program(rng, int(rng.integers(1, 8)), ops, inputs=("a", "b"))
        p2 = random_program(rng, int(rng.integers(1, 8)), ops, inputs=("a", "b"))
        for c in crossover(rng, p1, p2):
            assert c.inputs == ("a", "b")
            assert {i.op for i in c.instrs} <= set(ops)
            assert len(c.instrs) <= len(p1.instrs) + len(p2.instrs)
            assert _roundtrips(c)

    def test_child_mixes_parents(self):
        """Some children contain ops from both parents when the parents use disjoint ops."""
        rng = np.random.default_rng(0)
        p1 = parse("v1 = mul x x\nv2 = mul v1 x\nv3 = mul v2 x\n")
        p2 = parse("v1 = add x 1\nv2 = add v1 x\nv3 = add v2 2\n")
        mixed = 0
        for _ in range(50):
            for c in crossover(rng, p1, p2):
                mixed += {i.op for i in c.instrs} == {"mul", "add"}
        assert mixed > 0

    def test_mismatched_parents_rejected(self):
        """Parents with different inputs cannot be crossed."""
        rng = np.random.default_rng(0)
        with pytest.raises(ValueError, match="same inputs"):
            crossover(rng, parse("v1 = add x 1\n"), parse("inputs y\nv1 = add y 1\n"))


def test_arity_of_generated_instructions():
    """Every generated instruction has the arity its op requires."""
    rng = np.random.default_rng(5)
    for _ in range(100):
        p = random_program(rng, 6, F32_OPS)
        assert all(len(i.args) == OP_BY_NAME[i.op].arity for i in p.instrs)
