"""The float32 ULP helpers of pysearch.ulp agree with numpy's spacing, the Rust core and mpmath."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import pysearch as ps
from pysearch import _core
from pysearch.ulp import KEY_MAX, KEY_MIN, from_key, inv_ulp32, key, neighbour, ulp32, ulp_errors

finite32 = st.floats(width=32, allow_nan=False, allow_infinity=False)


class TestUlp32:
    @given(finite32)
    def test_is_numpy_spacing_on_float32_values(self, v):
        """On a float32 value v the ulp is the spacing of its binade (np.spacing of |v|, 2^-149 at 0)."""
        f = np.float32(abs(v))
        want = float(np.spacing(f)) if f < np.float32(3.4e38) else 2.0**104
        if f == 0:
            want = 2.0**-149
        assert ulp32(float(f)) == want

    def test_edges(self):
        """Zero, subnormals, powers of two, values past float32's range, inf and NaN follow the core's rule."""
        got = ulp32([0.0, -0.0, 2.0**-140, 2.0**-126, 1.0, 1.9999999, 2.0, 2.0**128, 1e300, math.inf, math.nan])
        want = [2.0**-149] * 4 + [2.0**-23, 2.0**-23, 2.0**-22] + [2.0**104] * 4
        assert list(got) == want

    @given(st.floats(min_value=-1e38, max_value=1e38, allow_nan=False))
    def test_is_a_power_of_two_within_the_binade(self, r):
        """ulp32(r) is 2^(e-23) with 2^e <= |r| < 2^(e+1) for |r| in the normal range."""
        u = ulp32(r)
        m, e = math.frexp(u)
        assert m == 0.5
        if abs(r) >= 2.0**-126:
            assert 2.0**23 * u <= abs(r) < 2.0**24 * u

    def test_read_from_the_exponent_bits_as_the_floor_of_log2_rule(self):
        """ulp32 and inv_ulp32 of any float64 bit pattern are 2^(clamp(floor(log2|r|), -126, 127) -+ 23)
        (frexp's exponent, 127 for inf and NaN), bit for bit; a scalar gives a numpy scalar."""
        rng = np.random.default_rng(5)
        r = np.concatenate([rng.integers(0, 2**64, 200_000, dtype=np.uint64).view(np.float64),
                            [0.0, -0.0, 5e-324, 1e-310, 2.0**-126, 2.0**-127, 2.0**127, 2.0**128, np.inf, -np.inf,
                             np.nan]])
        a = np.abs(r)
        with np.errstate(invalid="ignore"):
            e = np.frexp(np.where(np.isfinite(a), a, 0.0))[1].astype(np.int64) - 1
        e = np.where(np.isfinite(a), np.clip(np.where(a > 0, e, -126), -126, 127), 127)
        np.testing.assert_array_equal(ulp32(r).view(np.uint64), np.ldexp(1.0, e - 23).view(np.uint64))
        np.testing.assert_array_equal(inv_ulp32(r).view(np.uint64), np.ldexp(1.0, 23 - e).view(np.uint64))
        assert isinstance(ulp32(3.0), np.float64) and ulp32(3.0) == 2.0**-22


class TestUlpErrors:
    def test_matches_the_core_on_a_search_sample(self):
        """Per-point errors give the same max and mean as the Rust core's error statistics."""
        p = ps.parse("v1 = fma x 0.34 0.66\nv2 = fma v1 x 1\n")
        x = ps.Domain(0, 1).sample(5000, seed=1)
        ref, rounded = ps.reference("exp2", x)
        e = ulp_errors(ps.evaluate(p, x), ref, rounded)
        st_ = ps.ulp_error(p, x, "exp2")
        assert e.max() == pytest.approx(st_.max_ulp, rel=1e-12)
        assert e.mean() == pytest.approx(st_.mean_ulp, rel=1e-9)

    def test_against_mpmath(self):
        """|y - f(x)| / ulp for a few hand-checked points, from an mpmath recomputation."""
        y = np.float32([1.0, 1.5, 3.0])
        ref = np.array([1.0 + 2.0**-25, 1.5 - 3 * 2.0**-24, 3.0 + 2.0**-21])
        with mpmath.workprec(200):
            want = [abs(mpmath.mpf(float(a)) - mpmath.mpf(b)) / mpmath.mpf(ulp32(b)) for a, b in zip(y, ref)]
        assert list(ulp_errors(y, ref)) == [float(w) for w in want]

    def test_non_finite_values(self):
        """inf targets need the same inf; NaN targets need NaN; a non-finite result of a finite target is inf,
        unless the target overflows float32 and the result is its (infinite) correct rounding."""
        y = np.float32([np.inf, 1.0, np.nan, 2.0, np.inf, np.inf])
        ref = np.array([np.inf, np.inf, np.nan, np.nan, 1.0, 1e39])
        rounded = np.float32([np.inf, np.inf, np.nan, np.nan, 1.0, np.inf])
        assert list(ulp_errors(y, ref, rounded)) == [0.0, np.inf, 0.0, np.inf, np.inf, 0.0]
        assert ulp_errors(y, ref)[-1] == np.inf  # without the rounded values an overflow is not excused


class TestKeys:
    @given(finite32)
    def test_round_trip_and_order(self, v):
        """key/from_key round-trip every float32 and consecutive keys are numpy's nextafter neighbours."""
        k = key(v)
        assert from_key(k) == v and math.copysign(1, from_key(k)) == math.copysign(1, v)
        if k < KEY_MAX:
            with np.errstate(over="ignore"):  # the step past the largest float32 is inf
                up = float(np.nextafter(np.float32(v), np.float32(np.inf)))
            if k == -1:  # -0: the next key is +0, which nextafter skips (it compares equal)
                up = 0.0
            assert from_key(k + 1) == up

    def test_signed_zeros_and_ends(self):
        """-0 is just below +0; -inf and +inf are the ends; stepping clamps there."""
        assert (key(-0.0), key(0.0)) == (-1, 0)
        assert (key(-math.inf), key(math.inf)) == (KEY_MIN, KEY_MAX)
        assert neighbour(math.inf, 5) == math.inf and neighbour(-0.0, 2) == 2.0**-148
        assert neighbour(0.0, -1) == -(2.0**-149) and neighbour(-(2.0**-149), 1) == 0.0
        with pytest.raises(ValueError, match="outside"):
            from_key(KEY_MAX + 1)
        with pytest.raises(ValueError, match="NaN"):
            key(math.nan)

    def test_counts_agree_with_the_core(self):
        """key(b) - key(a) + 1 is the core's count of float32 values in [a, b]."""
        for a, b in ((0.0, 1.0), (-1.0, 1.0), (-2.0**-130, 2.0**-130)):
            lo, hi = _core.float32_key_range(a, b)
            assert (key(a), key(b)) == (lo, hi)
