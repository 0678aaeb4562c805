"""Double-double evaluation of programs (pysearch.double_double) against 60-digit mpmath."""

import mpmath
import numpy as np
import pytest

from pysearch.interpreter import run_mpmath
from pysearch.program import parse
from pysearch.double_double import DDProgram, dd_relative_errors, dd_values, supports

MIXED = """dtype float64
inputs x
a = fma x 0.1234567890123 -0.987654321
b = div 3.25 a
c = mul b b
d = sub c x
e = sqrt x
f = add d e
g = neg f
return g
"""


def _rel_gap(prog, x, hi, lo):
    ref = run_mpmath(prog, x, dps=60)
    with mpmath.workdps(60):
        return max(abs((mpmath.mpf(h) + mpmath.mpf(l_) - r) / r) for h, l_, r in zip(hi, lo, ref))


def test_matches_mpmath_to_about_32_digits():
    """Every op (fma, div, mul, sub, sqrt, add, neg) agrees with mpmath to 1e-29 relative."""
    prog = parse(MIXED)
    x = np.linspace(0.01, 1.0, 97)
    hi, lo = dd_values(prog, x)
    assert float(_rel_gap(prog, x, hi, lo)) < 1e-29


def test_double_double_constants_beyond_float64():
    """Constants given as (hi, lo) pairs act as their sum: x * (1 + 2^-70) differs from x * 1."""
    prog = parse("dtype float64\nv1 = mul x 1.0\n")
    dd = DDProgram(prog)
    x = np.array([0.75])
    hi, lo = dd(x, [1.0], [2.0 ** -70])
    assert hi[0] == 0.75 and lo[0] == pytest.approx(0.75 * 2.0 ** -70, rel=1e-12)
    assert dd(x)[1][0] == 0.0


def test_relative_errors_see_below_float64_rounding():
    """The error of a float64 constant 0.1 against the real 1/10 is found (about 5.6e-17)."""
    prog = parse("dtype float64\nv1 = add x 0.1\nv2 = sub v1 x\n")
    x = np.array([0.5, 0.25])
    with mpmath.workdps(40):
        f = mpmath.mpf(1) / 10
        f_hi = np.full(2, float(f))
        f_lo = np.full(2, float(f - mpmath.mpf(float(f))))
    err = dd_relative_errors(prog, x, f_hi, f_lo)
    assert err == pytest.approx(np.full(2, 5.551115123125783e-17), rel=1e-6)


def test_unsupported_ops_rejected():
    """A program using floor is refused with a ValueError naming the supported ops."""
    prog = parse("dtype float64\nv1 = floor x\n")
    assert not supports(prog)
    with pytest.raises(ValueError, match="double-double"):
        dd_values(prog, [0.5])
