"""Law constants fitted in the core (``_core.fit_laws``, rust/lawfit.rs) against the numpy
Levenberg-Marquardt it replaces (``constant_fit.lm_fit_many``, the same algorithm and rules).

The two differ only in rounding (BLAS sums, LAPACK's solve), so on well-posed fits they reach the
same objective; on ill-posed programs (products of constants that only the product of decides)
the rounding can send the two down different paths, so those are compared on aggregate.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pysearch import _core
from pysearch.laws import constant_fit
from pysearch.laws.constant_fit import ConstKernel, _cost, _residuals, fit_many, fit_many_numpy, lm_fit_many
from pysearch.laws.forms import to_space
from pysearch.program import parse
from pysearch.variation import random_program

#: Well-posed law templates over x0, x1 (every constant is identifiable from the data).
TEMPLATES = {
    "power": ("v1 = pow x0 {0}\nv2 = mul {1} v1\n", 2),
    "chinchilla1": ("v1 = pow x0 {0}\nv2 = mul {1} v1\nv3 = add {2} v2\n", 3),
    "chinchilla2": ("v1 = pow x0 {0}\nv2 = mul {1} v1\nv3 = pow x1 {2}\nv4 = mul {3} v3\nv5 = add v2 v4\n"
                    "v6 = add {4} v5\n", 5),
    "exp": ("v1 = mul {0} x0\nv2 = exp v1\nv3 = mul {1} v2\n", 2),
    "log": ("v1 = log x0\nv2 = mul {0} v1\nv3 = add {1} v2\n", 2),
}


def _program(name: str, consts: list[float]):
    body, m = TEMPLATES[name]
    return parse("dtype float64\ninputs x0,x1\n" + body.format(*[repr(float(c)) for c in consts[:m]]))


def _numpy_costs(programs, X, t, space, loss, delta, max_iter=40):
    kernels = [ConstKernel(p) for p in programs]
    starts = [np.array(p.constants(), dtype=np.float64) for p in programs]
    return [(c, cost) for c, cost in lm_fit_many(kernels, starts, X, t, space, loss, delta, max_iter)]


def _core_fit(programs, X, t, space, loss, delta, max_iter=40):
    return _core.fit_laws([p.compile().as_tuple() for p in programs], X, t, space, loss, delta, max_iter)


def _start_cost(p, X, t, space, loss, delta):
    F = ConstKernel(p)(np.array([p.constants()]), X)[0]
    return float(_cost(_residuals(F, t, space), loss, delta))


@st.composite
def law_fits(draw):
    name = draw(st.sampled_from(sorted(TEMPLATES)))
    m = TEMPLATES[name][1]
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    n = draw(st.integers(8, 120))
    X = np.ascontiguousarray(rng.uniform(1.0, 20.0, (2, n)))
    truth = {"power": [-0.5, 2.0], "chinchilla1": [-0.7, 3.0, 1.5], "chinchilla2": [-0.3, 2.0, -0.4, 1.0, 1.0],
             "exp": [-0.2, 3.0], "log": [-0.3, 2.0]}[name]
    truth = [c * rng.uniform(0.7, 1.3) for c in truth]
    y = ConstKernel(_program(name, truth))(np.array([truth]), X)[0]
    y = y * np.exp(draw(st.sampled_from([0.0, 1e-3, 0.05])) * rng.standard_normal(n))
    start = [c * rng.uniform(0.6, 1.4) for c in truth]
    space = draw(st.sampled_from(["log", "linear"]))
    loss = draw(st.sampled_from(["lsq", "huber"]))
    delta = draw(st.sampled_from([1e-3, 0.05]))
    return _program(name, start), X, to_space(y, space), space, loss, delta, m


@settings(max_examples=60, deadline=None)
@given(law_fits())
def test_core_matches_the_numpy_fit_on_well_posed_laws(case):
    p, X, t, space, loss, delta, m = case
    (c_np, cost_np), = _numpy_costs([p], X, t, space, loss, delta)
    consts, costs = _core_fit([p], X, t, space, loss, delta)
    cost = float(costs[0])
    start = _start_cost(p, X, t, space, loss, delta)
    assert len(consts[0]) == m
    assert cost <= start  # never worse than the start
    # the same objective as the numpy path (or lower), up to rounding
    assert cost <= cost_np * (1 + 1e-6) + 1e-12, (cost, cost_np)
    # and the objective the core reports is the one of its constants
    q = p.with_constants(consts[0].tolist())
    assert math.isclose(_start_cost(q, X, t, space, loss, delta), cost, rel_tol=1e-9, abs_tol=1e-12)


def _random_laws(n: int, seed: int):
    rng = np.random.default_rng(seed)
    ops = ("add", "sub", "mul", "div", "pow", "exp", "log")
    out = []
    while len(out) < n:
        p = random_program(rng, int(rng.integers(1, 7)), ops, ("x0", "x1"), "float64")
        if p.constants():
            out.append(p)
    return out


@pytest.mark.parametrize("space,loss", [("log", "huber"), ("log", "lsq"), ("linear", "lsq")])
def test_core_matches_the_numpy_fit_on_random_law_programs(space, loss):
    """Random programs of the law search (many ill-posed) on Chinchilla-shaped data: the core
    reaches the numpy path's objective on nearly every program and on the sum."""
    rng = np.random.default_rng(7)
    n = 150
    N, D = 10 ** rng.uniform(7, 10, n), 10 ** rng.uniform(9, 12, n)
    X = np.ascontiguousarray(np.stack([N / 1e9, D / 1e9]))
    y = 1.7 + 400 / N**0.34 + 410 / D**0.28
    t = to_space(y, space)
    progs = _random_laws(300, 3)
    _, costs = _core_fit(progs, X, t, space, loss, 1e-3)
    ref = np.array([c for _, c in _numpy_costs(progs, X, t, space, loss, 1e-3)])
    np.testing.assert_array_equal(np.isinf(costs), np.isinf(ref))  # the same programs can be fitted
    fin = np.isfinite(ref)
    assert fin.sum() > 100
    close = costs[fin] <= ref[fin] * (1 + 1e-6) + 1e-12
    assert close.mean() >= 0.95, f"{(~close).sum()} of {fin.sum()} fits worse than numpy's"
    assert costs[fin].sum() <= ref[fin].sum() * (1 + 1e-3)


def test_fit_many_uses_the_core_and_agrees_with_the_numpy_baseline():
    p = _program("chinchilla1", [-0.5, 1.0, 1.0])
    rng = np.random.default_rng(0)
    X = np.ascontiguousarray(rng.uniform(1, 20, (2, 50)))
    y = 1.5 + 3.0 * X[0] ** -0.7
    t = to_space(y, "log")
    nothing = parse("dtype float64\ninputs x0,x1\nv1 = add x0 x1\n")
    nan = _program("power", [float("nan"), 1.0])
    a = fit_many([p, nothing, nan], X, t, "log", "huber", 1e-3)
    b = fit_many_numpy([p, nothing, nan], X, t, "log", "huber", 1e-3)
    assert a[1] is nothing and a[2] is nan and b[1] is nothing
    np.testing.assert_allclose(a[0].constants(), [-0.7, 3.0, 1.5], rtol=1e-6)
    np.testing.assert_allclose(a[0].constants(), b[0].constants(), rtol=1e-8)


def test_fit_many_refuses_ops_outside_the_law_set_like_the_numpy_path():
    p = parse("dtype float64\ninputs x0\nv1 = rint x0\nv2 = mul 2.0 v1\n")
    X, t = np.ones((1, 4)), np.zeros(4)
    with pytest.raises(ValueError, match="rint") as e1:
        fit_many([p], X, t, "linear")
    with pytest.raises(ValueError, match="rint"):
        fit_many_numpy([p], X, t, "linear")
    assert "\n" not in str(e1.value)


def test_unfittable_programs_keep_their_constants_with_infinite_cost():
    X, t = np.ascontiguousarray(np.linspace(1, 2, 5)[None, :]), np.zeros(5)
    progs = [parse("dtype float64\ninputs x\nv1 = floor x\nv2 = mul 2.0 v1\n"),  # no derivative
             parse("dtype float64\ninputs x\nv1 = mul x x\n"),  # no constants
             parse("dtype float64\ninputs x\nv1 = mul nan x\n")]  # a non-finite start
    consts, costs = _core.fit_laws([p.compile().as_tuple() for p in progs], X, t, "linear")
    assert np.all(np.isinf(costs))
    assert consts[0].tolist() == [2.0] and consts[1].tolist() == [] and np.isnan(consts[2][0])


def test_fits_are_deterministic_and_independent_of_the_batch():
    progs = _random_laws(120, 11)
    rng = np.random.default_rng(1)
    X = np.ascontiguousarray(rng.uniform(0.5, 30, (2, 90)))
    t = to_space(2.0 + X[0] ** -0.5 + 0.1 * rng.random(90), "log")
    c1, k1 = _core_fit(progs, X, t, "log", "huber", 1e-3)
    c2, k2 = _core_fit(progs, X, t, "log", "huber", 1e-3)
    np.testing.assert_array_equal(k1, k2)
    assert all(np.array_equal(a, b, equal_nan=True) for a, b in zip(c1, c2))
    for i in (0, 57, 119):  # alone, the same result as in the batch
        c, k = _core_fit([progs[i]], X, t, "log", "huber", 1e-3)
        assert np.array_equal(c[0], c1[i], equal_nan=True) and (k[0] == k1[i] or np.isnan(k1[i]))


def _bad(**kw):
    p = parse("dtype float64\ninputs x\nv1 = mul 2.0 x\n").compile().as_tuple()
    args = {"programs": [p], "x": np.ones((1, 4)), "t": np.zeros(4), "space": "log"} | kw
    return lambda: _core.fit_laws(**args)


@pytest.mark.parametrize("kw,exc,words", [
    ({"space": "loglin"}, ValueError, "space"),
    ({"loss": "l1"}, ValueError, "loss"),
    ({"delta": 0.0}, ValueError, "delta"),
    ({"delta": float("nan")}, ValueError, "delta"),
    ({"x": np.ones((1, 4), dtype=np.float32)}, TypeError, "x"),
    ({"x": np.ones(4)}, TypeError, "x"),
    ({"x": np.ones((1, 8))[:, ::2]}, TypeError, "x"),
    ({"t": np.zeros(3)}, ValueError, "target"),
    ({"t": np.zeros((1, 4))}, TypeError, "t"),
    ({"x": np.ones((1, 0)), "t": np.zeros(0)}, ValueError, "target"),
    ({"x": np.ones((2, 4))}, ValueError, "input"),
])
def test_bad_input_is_a_one_line_named_error(kw, exc, words):
    with pytest.raises(exc) as e:
        _bad(**kw)()
    msg = str(e.value)
    assert words in msg and "\n" not in msg, msg


def test_weights_fit_the_relative_error():
    """Per-point weights multiply each residual: with linear space, targets f and weights 1/f the
    core fits the relative error, here of a line through 2^x, the weighted least-squares solution
    numpy gives; a weight array of the wrong length is a one-line error."""
    x = np.linspace(0.0, 4.0, 50)
    f = 2.0 ** x
    p = parse("dtype float64\ninputs x\nv1 = mul x 1.0\nv2 = add v1 1.0\n")
    A = np.stack([x, np.ones_like(x)], axis=1)
    want = np.linalg.lstsq(A / f[:, None], np.ones_like(x), rcond=None)[0]
    unweighted = np.linalg.lstsq(A, f, rcond=None)[0]
    X = np.ascontiguousarray(x[None, :])
    (c,), (cost,) = _core.fit_laws([p.compile().as_tuple()], X, f, "linear", weights=1.0 / f)
    assert np.allclose(c, want, rtol=1e-6) and not np.allclose(c, unweighted, rtol=1e-2)
    rel = (c[0] * x + c[1] - f) / f
    assert cost == pytest.approx(0.5 * float(rel @ rel), rel=1e-9)
    with pytest.raises(ValueError, match="weights must have one entry per target, got 3 weight"):
        _core.fit_laws([p.compile().as_tuple()], X, f, "linear", weights=np.ones(3))
