"""Constant optimisation: Lawson minimax, affine detection, float32 tuning."""

from __future__ import annotations

import math

import numpy as np
import pytest

import pysearch
from pysearch.program import parse
from pysearch.search.constants import (
    ConstantBatch,
    FitSample,
    _affine_basis,
    lawson,
    optimize_constants,
    tune_float32,
)
from pysearch.ulp import neighbour, ulp32

NARROW = (1.0, 1.0625)  # 2^19 float32 values: exhaustive checks are instant


@pytest.fixture(scope="module")
def sample() -> FitSample:
    x = pysearch.Domain(*NARROW).sample(2048, seed=0)
    return FitSample.build("exp2", x)


def test_lawson_recovers_known_minimax():
    """The best line for x^2 on [0, 1] has max error 1/8 (Chebyshev alternation)."""
    x = np.linspace(0.0, 1.0, 2001)
    A = np.stack([np.ones_like(x), x], axis=1)
    c, err = lawson(A, x**2, np.ones_like(x), iters=200)
    assert err == pytest.approx(0.125, abs=2e-4)
    assert c[1] == pytest.approx(1.0, abs=1e-2)
    assert c[0] == pytest.approx(-0.125, abs=1e-2)


def test_ulp_of_matches_definition():
    """ulp(v) = 2^(floor(log2|v|) - 23), at least 2^-149."""
    v = np.array([1.0, 1.5, 2.0, 0.75, -3.0, 0.0, 1e-45])
    expect = np.array([2.0**-23, 2.0**-23, 2.0**-22, 2.0**-24, 2.0**-22, 2.0**-149, 2.0**-149])
    assert np.array_equal(ulp32(v), expect)


def test_f32_step_walks_representable_values():
    """Stepping n float32 values moves like repeated nextafter, across zero too."""
    assert neighbour(1.0, 1) == float(np.nextafter(np.float32(1), np.float32(2)))
    assert neighbour(1.0, -1) == float(np.nextafter(np.float32(1), np.float32(0)))
    assert neighbour(0.0, 1) == 2.0**-149
    assert neighbour(2.0**-149, -2) == -(2.0**-149)
    assert neighbour(-1.0, 3) > -1.0


def test_affine_detection(sample):
    """Horner with fma is affine in its constants; squaring a polynomial is not."""
    horner = parse("v1 = fma x 0.1 0.2\nv2 = fma v1 x 1\n")
    square = parse("v1 = fma x 0.1 0.2\nv2 = mul v1 v1\n")
    for p, affine in ((horner, True), (square, False)):
        c = np.array(p.constants())
        assert (_affine_basis(ConstantBatch(p), c, sample.x_fit) is not None) is affine


def test_fit_reaches_one_ulp_on_narrow_domain(sample):
    """A degree-3 Horner structure with junk constants is fitted to <= 1 ULP, verified exhaustively."""
    p = parse("v1 = fma x 0.5 0.5\nv2 = fma v1 x 0.5\nv3 = fma v2 x 0.5\n")
    res = optimize_constants(p, sample)
    assert res.affine
    assert res.max_ulp <= 1.0
    st = pysearch.verify(res.program, "exp2", NARROW)
    assert st.max_ulp <= 1.0


def test_optimisation_never_worsens(sample):
    """The optimised program is never worse on the sample than the input, affine or not."""
    progs = [
        parse("v1 = fma x 0.6931472 1\n"),
        parse("v1 = div 1 x\nv2 = fma v1 0.3 x\n"),
        parse("v1 = mul x x\nv2 = fma v1 0.2 0.5\nv3 = mul v2 v2\n"),
        parse("v1 = add x 1\n"),  # a constant the structure cannot use well
    ]
    for p in progs:
        before = float(pysearch.ulp_error(p, sample.x, "exp2").max_ulp)
        res = optimize_constants(p, sample)
        after = float(pysearch.ulp_error(res.program, sample.x, "exp2").max_ulp)
        assert after <= before or math.isinf(before)
        assert res.max_ulp == pytest.approx(after)


def test_nonlinear_structure_improves(sample):
    """A squared polynomial (not affine in its constants) gets much better constants."""
    p = parse("v1 = fma x 0.1 0.3\nv2 = fma v1 x 1\nv3 = mul v2 v2\n")
    before = float(pysearch.ulp_error(p, sample.x, "exp2").max_ulp)
    res = optimize_constants(p, sample)
    assert not res.affine
    assert res.max_ulp < before / 100


def test_tuning_only_moves_to_better_constants(sample):
    """float32 tuning returns constants at least as good, each a float32 value."""
    p = parse("v1 = fma x 0.0801 0.2262\nv2 = fma v1 x 0.6958\nv3 = fma v2 x 1.0001\n")
    before = float(pysearch.ulp_error(p, sample.x, "exp2").max_ulp)
    q, m, _ = tune_float32(p, sample, rounds=4)
    assert m <= before
    assert all(float(np.float32(c)) == c for c in q.constants())
