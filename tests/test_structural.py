"""Structural variation (pysearch/structural.py): validity over random programs and op sets, and the
algebraic rewrites computing the same real function."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pysearch
from pysearch import structural as S
from pysearch.conditioning import rounding_scale
from pysearch.interpreter import run
from pysearch.program import Instr, Program, Ref, parse
from pysearch.variation import (MUTATION_WEIGHTS, STRUCTURAL_KINDS, STRUCTURAL_MUTATION_WEIGHTS, mutate,
                                random_program)

F32_OPS = ("add", "sub", "mul", "div", "fma", "neg", "abs", "sqrt", "min", "max", "rint", "floor",
           "ldexp", "getexp", "getmant")
op_sets = st.lists(st.sampled_from(F32_OPS), min_size=1, max_size=8, unique=True)
POLY_OPS = ("add", "sub", "mul", "fma", "neg")


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 10), ops=op_sets, max_instrs=st.integers(1, 16),
       n_inputs=st.integers(1, 2), dtype=st.sampled_from(["float32", "float64"]))
def test_every_operator_gives_a_valid_pruned_program(seed, n, ops, max_instrs, n_inputs, dtype):
    """Each operator returns None or a valid, pruned program of the same dtype and inputs, within
    max_instrs and the op set; the same seed gives the same result."""
    inputs = ("x", "y")[:n_inputs]
    p = random_program(np.random.default_rng(seed), n, ops, inputs, dtype)
    for kind in S.STRUCTURAL_OPERATORS:
        q = S.apply(kind, np.random.default_rng(seed + 1), p, ops, max_instrs)
        again = S.apply(kind, np.random.default_rng(seed + 1), p, ops, max_instrs)
        if q is None:
            assert again is None
            continue
        assert q.to_text() == again.to_text()
        assert q.dtype == dtype and q.inputs == inputs
        assert len(q.instrs) <= max_instrs
        assert {ins.op for ins in q.instrs} <= set(ops)
        assert all(q.live())
        assert parse(q.to_text()) == q


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), ops=op_sets)
def test_mutate_with_only_structural_kinds(seed, ops):
    """mutate restricted to the structural kinds still returns a valid program within bounds."""
    rng = np.random.default_rng(seed)
    p = random_program(rng, 5, ops)
    w = {k: 1.0 for k in STRUCTURAL_KINDS}
    q = mutate(rng, p, ops, 12, weights=w)
    assert len(q.instrs) <= 12 and {ins.op for ins in q.instrs} <= set(ops) and all(q.live())


def test_default_weights_are_the_single_instruction_kinds():
    """By default mutate draws the single-instruction kinds only (seeded runs recorded before the
    structural kinds reproduce): no child grows by more than one instruction (repeated squaring or
    a rational form would add two or more)."""
    assert not set(MUTATION_WEIGHTS) & set(STRUCTURAL_KINDS) and "randomize_instr" not in MUTATION_WEIGHTS
    p = parse("inputs x\nv1 = fma x 0.5 1\nv2 = fma v1 x 1\nreturn v2")
    rng = np.random.default_rng(3)
    kids = [mutate(rng, p, ("fma", "mul", "add", "div"), 12) for _ in range(200)]
    assert all(len(k.instrs) <= len(p.instrs) + 1 for k in kids)


def test_mutate_weights_are_checked():
    p = parse("inputs x\nv1 = mul x x\nreturn v1")
    with pytest.raises(ValueError, match="unknown mutation kind"):
        mutate(np.random.default_rng(0), p, ["mul"], 4, weights={"teleport": 1.0})
    with pytest.raises(ValueError, match="at least one positive"):
        mutate(np.random.default_rng(0), p, ["mul"], 4, weights={"insert": 0.0})


def test_mutate_draws_structural_kinds_when_asked():
    """With STRUCTURAL_MUTATION_WEIGHTS the structural rewrites are drawn: over many mutations of a
    Horner polynomial some child has a div (rational / continued fraction) and some starts with
    x -> 1*x + 0."""
    assert set(STRUCTURAL_KINDS) | {"randomize_instr"} | set(MUTATION_WEIGHTS) == set(STRUCTURAL_MUTATION_WEIGHTS)
    p = parse("inputs x\nv1 = fma x 0.5 1\nv2 = fma v1 x 1\nreturn v2")
    rng = np.random.default_rng(3)
    kids = [mutate(rng, p, ("fma", "mul", "add", "div"), 12, weights=STRUCTURAL_MUTATION_WEIGHTS)
            for _ in range(300)]
    assert any(ins.op == "div" for k in kids for ins in k.instrs)
    assert any(k.instrs[0].args == (Ref.input(0), Ref.const(1.0), Ref.const(0.0)) for k in kids)


# ------------------------------------------------------------------ algebra
def _horner(coeffs, dtype="float64") -> Program:
    instrs = [Instr("fma", (Ref.input(0), Ref.const(coeffs[-1]), Ref.const(coeffs[-2])))]
    for c in reversed(coeffs[:-2]):
        instrs.append(Instr("fma", (Ref.val(len(instrs) - 1), Ref.input(0), Ref.const(c))))
    return Program(instrs, ("x",), dtype)


coeff_lists = st.tuples(
    st.lists(st.floats(-4, 4, allow_nan=False, allow_subnormal=False), min_size=2, max_size=9),
    st.floats(0.125, 4), st.sampled_from([1.0, -1.0])).map(lambda t: t[0] + [t[1] * t[2]])  # degree = len - 1
XS = np.linspace(-1.5, 1.5, 61)


def _scale(c, x):
    """sum |c_i| |x|^i: the size the rounding errors of any evaluation order are relative to."""
    return np.polynomial.polynomial.polyval(np.abs(x), np.abs(c))


@settings(max_examples=60, deadline=None)
@given(coeffs=coeff_lists, form=st.sampled_from(sorted(S.POLY_FORMS)))
def test_polynomial_forms_compute_the_same_real_function(coeffs, form):
    """Every polynomial form of a float64 Horner polynomial agrees with it on 61 points in
    [-1.5, 1.5] to 1e-12 * (sum |c_i| |x|^i + s), s the form's own first-order rounding scale
    (conditioning.rounding_scale: Knuth's preconditioned form can cancel, e.g. x^4 + 3x^3 near 0,
    so its float64 error is relative to its intermediate terms, not to the coefficients); float64
    rounding of ~10 ops is ~1e-15 of that."""
    p = _horner(coeffs)
    q = S.rewrite_polynomial(p, form, POLY_OPS)
    if q is None:
        degree = len(coeffs) - 1  # the forms that apply to some degrees only
        assert (form == "knuth4" and degree != 4) or (form == "paterson_stockmeyer" and degree < 3)
        return
    own, _ = rounding_scale(q, XS)
    np.testing.assert_array_less(np.abs(run(q, XS) - run(p, XS)), 1e-12 * (_scale(coeffs, XS) + own) + 1e-300)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 8))
def test_coefficients_of_random_polynomial_programs(seed, n):
    """poly_coeffs of a random add/sub/mul/fma/neg program reproduces the program's float64 values."""
    p = random_program(np.random.default_rng(seed), n, POLY_OPS, dtype="float64")
    c = S.poly_coeffs(p)
    if c is None:  # degree above MAX_DEGREE or an overflowing constant
        return
    want = run(p, XS)
    got = np.polynomial.polynomial.polyval(XS, c)
    ok = np.isfinite(want)
    tol = 1e-9 * (_scale(c, XS) + np.abs(want))
    assert np.all(np.abs(got - want)[ok] <= tol[ok])


def test_even_odd_and_knuth_on_float32():
    """In float32 the rewrites differ only by the rounding of the new coefficients: on exp2's
    Taylor polynomial of degree 4 both agree with Horner within 1e-6 relative on [0, 1]."""
    c = [1.0, 0.6931472, 0.2402265, 0.05550411, 0.009618129]
    p = _horner(c, "float32")
    x = np.linspace(0, 1, 101).astype(np.float32)
    ref = run(p.astype("float64"), x.astype(np.float64))
    for form in ("even_odd", "knuth4", "estrin", "paterson_stockmeyer"):
        q = S.rewrite_polynomial(p, form, POLY_OPS)
        got = pysearch.evaluate(q, x).astype(np.float64)
        assert np.max(np.abs(got - ref) / ref) < 1e-6, form
    # knuth4 has 3 multiplications in the {add, mul} op set where Horner has 4
    q = S.rewrite_polynomial(p, "knuth4", ("add", "mul"))
    assert sum(ins.op == "mul" for ins in q.instrs) == 3


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 8), ops=op_sets)
def test_affine_and_rational_start_from_the_same_function(seed, n, ops):
    """affine_input (a = 1, b = 0) and rational (denominator 0*x + 1) give bit-identical float32
    outputs on positive inputs (x -> 1*x + 0 changes only -0)."""
    ops = tuple(ops) + ("fma", "div")
    p = random_program(np.random.default_rng(seed), n, ops)
    x = np.linspace(0.01, 4, 97).astype(np.float32)
    want = pysearch.evaluate(p, x)
    for kind in ("affine_input", "rational"):
        q = S.apply(kind, np.random.default_rng(seed), p, ops, 20)
        got = pysearch.evaluate(q, x)
        same = (got.view(np.uint32) == want.view(np.uint32)) | (np.isnan(got) & np.isnan(want))
        assert same.all(), kind


def test_repeated_squaring_shape():
    """p(x * 2^-k)^(2^k): the input is scaled by a power of two, the output squared k times."""
    p = _horner([1.0, 0.5, 0.25], "float32")
    q = S.repeated_squaring(np.random.default_rng(0), p, ("fma", "mul"), 20)
    k = sum(1 for ins in q.instrs if ins.op == "mul" and ins.args[0] == ins.args[1])
    assert q.instrs[0].op == "mul" and q.instrs[0].args[1].value == 2.0 ** -k and 1 <= k <= 3
    assert S.repeated_squaring(np.random.default_rng(0), p, ("fma",), 20) is None


def test_unknown_operator_and_op():
    p = _horner([1.0, 0.5, 0.25], "float32")
    with pytest.raises(ValueError, match="unknown structural operator"):
        S.apply("nope", np.random.default_rng(0), p, ("fma",), 10)
    with pytest.raises(ValueError, match="unknown op"):
        S.apply("rational", np.random.default_rng(0), p, ("fma", "frobnicate"), 10)
