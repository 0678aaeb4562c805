"""The core's constant-fit evaluator (``_core.fit_eval``) against the numpy walk of FitKernel."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pysearch import _core
from pysearch.fit_kernel import FitKernel
from pysearch.program import ProgramError, parse

from strategies import EXACT_OPS, float64_values, programs

SMOOTH_OPS = ("add", "sub", "mul", "div", "fma", "neg", "sqrt", "exp", "log", "pow")


def _matrix(draw, rows: int, cols: int, values) -> np.ndarray:
    flat = draw(st.lists(values, min_size=rows * cols, max_size=rows * cols))
    return np.array(flat, dtype=np.float64).reshape(rows, cols)


@st.composite
def cases(draw, ops, dtype_choices=("float32", "float64"), values=None):
    dtype = draw(st.sampled_from(dtype_choices))
    n_inputs = draw(st.integers(1, 2))
    p = draw(programs(dtype=dtype, n_inputs=n_inputs, max_instrs=12, ops=ops))
    values = float64_values() if values is None else values
    m = len(p.constants())
    k = draw(st.integers(1, 5))
    n = draw(st.integers(1, 300))
    C = _matrix(draw, k, m, values)
    X = _matrix(draw, n_inputs, n, values)
    return p, C, X


@settings(max_examples=300, deadline=None)
@given(cases(EXACT_OPS))
def test_correctly_rounded_ops_agree_to_the_bit(case):
    """Every op but the libm ones: the same float64 values as numpy (NaN where numpy has NaN)."""
    p, C, X = case
    kern = FitKernel(p)
    np.testing.assert_array_equal(kern(C, X), kern.numpy(C, X))


@settings(max_examples=200, deadline=None)
@given(cases(("add", "mul", "fma", "exp", "log", "pow", "sqrt"), ("float64",),
             st.floats(0.25, 2.0)))
def test_libm_ops_agree_to_rounding(case):
    """exp/log/pow come from different libms (a few ULP apart per op, amplified where a later
    add cancels and by exp's condition number |v|, up to ~700, at each nested exp): agreement to
    1e-10 relative, 1e-12 absolute, on operands in [0.25, 2] (each op alone agrees to 1e-15, below)."""
    p, C, X = case
    kern = FitKernel(p)
    got, want = kern(C, X), kern.numpy(C, X)
    np.testing.assert_array_equal(np.isfinite(got), np.isfinite(want))
    ok = np.isfinite(want)
    np.testing.assert_allclose(got[ok], want[ok], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("op", ["exp", "log", "pow"])
def test_each_libm_op_to_1e_15(op):
    rng = np.random.default_rng(1)
    a = rng.uniform(0.01, 30.0, 4000)
    text = {"exp": "dtype float64\nv1 = exp x\n", "log": "dtype float64\nv1 = log x\n",
            "pow": "dtype float64\nv1 = pow x 1.7\n"}[op]
    kern = FitKernel(parse(text))
    C = np.array([[1.7]]) if op == "pow" else np.zeros((1, 0))
    got, want = kern(C, a[None, :]), kern.numpy(C, a[None, :])
    np.testing.assert_allclose(got, want, rtol=1e-15, atol=0)


@settings(max_examples=150, deadline=None)
@given(cases(SMOOTH_OPS, ("float64",), st.floats(0.5, 2.0)))
def test_jacobian_matches_central_differences(case):
    p, C, X = case
    kern = FitKernel(p)
    Y, J = kern.jacobian(C, X)
    np.testing.assert_array_equal(Y, kern(C, X))
    K, n, m = J.shape
    assert (K, n, m) == (C.shape[0], X.shape[1], C.shape[1])
    def central(j: int, h: np.ndarray) -> np.ndarray:
        Cp, Cm = C.copy(), C.copy()
        Cp[:, j] += h
        Cm[:, j] -= h
        with np.errstate(all="ignore"):
            return (kern.numpy(Cp, X) - kern.numpy(Cm, X)) / (2 * h[:, None])

    for j in range(m):
        h = 1e-5 * np.maximum(np.abs(C[:, j]), 1.0)
        fd, fd_half = central(j, h), central(j, h / 2)
        # the oracle holds only where differencing has converged (two step sizes agree)
        with np.errstate(all="ignore"):
            converged = np.abs(fd - fd_half) <= 1e-6 * (1 + np.abs(fd_half))
        ok = converged & np.isfinite(J[:, :, j]) & (np.abs(Y) < 1e6)
        if ok.any():
            np.testing.assert_allclose(J[:, :, j][ok], fd_half[ok], rtol=1e-4, atol=1e-4)


def test_jacobian_of_a_line_is_exact():
    p = parse("v1 = fma x 0.5 0.25\n")
    x = np.linspace(0, 1, 1000)[None, :]
    Y, J = FitKernel(p).jacobian(np.array([[2.0, 3.0], [1.0, -1.0]]), x)
    np.testing.assert_array_equal(J[:, :, 0], np.broadcast_to(x, (2, 1000)))
    np.testing.assert_array_equal(J[:, :, 1], 1.0)
    np.testing.assert_array_equal(Y[0], 2.0 * x[0] + 3.0)


def test_jacobian_refused_for_ops_without_derivative():
    p = parse("v1 = floor x\nv2 = mul v1 0.5\n")
    assert FitKernel(p).jacobian(np.array([[0.5]]), np.ones((1, 3))) is None
    with pytest.raises(ProgramError, match="floor"):
        _core.fit_eval(FitKernel(p)._raw, np.array([[0.5]]), np.ones((1, 3)), jacobian=True)


def test_argument_checks():
    kern = FitKernel(parse("v1 = fma x 0.5 0.25\n"))
    with pytest.raises(ValueError, match="2 constant"):
        _core.fit_eval(kern._raw, np.zeros((3, 1)), np.ones((1, 4)))
    with pytest.raises(ValueError, match="input"):
        _core.fit_eval(kern._raw, np.zeros((3, 2)), np.ones((2, 4)))
    with pytest.raises(TypeError, match="C-contiguous"):
        _core.fit_eval(kern._raw, np.zeros((2, 3)).T, np.ones((1, 4)))
    with pytest.raises(TypeError, match="float64"):
        _core.fit_eval(kern._raw, np.zeros((3, 2), dtype=np.float32), np.ones((1, 4)))
    assert _core.fit_eval(kern._raw, np.zeros((0, 2)), np.ones((1, 4))).shape == (0, 4)
    assert _core.fit_eval(kern._raw, np.zeros((2, 2)), np.ones((1, 0))).shape == (2, 0)
