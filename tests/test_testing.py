"""pysearch.testing: float32 strategies and the max-ULP assertion users run on their code."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings

import pysearch
from pysearch.testing import assert_max_ulp, float32_arrays, float32s, ulp_errors


def _is_f32(v: float) -> bool:
    return float(np.float32(v)) == v or math.isnan(v)


class TestStrategies:
    @settings(max_examples=100)
    @given(float32s(0.5, 3.0))
    def test_values_in_domain_and_float32(self, v):
        """Every drawn value is a float32 inside the domain."""
        assert 0.5 <= v <= 3.0 and _is_f32(v)

    @settings(max_examples=60)
    @given(float32s(-1e-30, 1e-30, subnormals=False))
    def test_subnormals_can_be_excluded(self, v):
        """With subnormals=False no subnormal is drawn."""
        assert v == 0 or abs(v) >= 2.0**-126

    def test_hard_cases_are_weighted_in(self):
        """Edges, binade boundaries and subnormals all appear among a few hundred draws."""
        seen: set[float] = set()

        @settings(max_examples=250, database=None)
        @given(float32s(-2.0, 2.0))
        def collect(v):
            seen.add(v)

        collect()
        assert {-2.0, 2.0, 1.0, 0.5} & seen
        assert any(0 < abs(v) < 2.0**-126 for v in seen)
        def next_to_power_of_two(v: float) -> bool:
            f = np.float32(v)
            return any(math.frexp(float(np.nextafter(f, np.float32(d))))[0] in (0.5, -0.5) for d in (-3, 3))

        assert any(next_to_power_of_two(v) and math.frexp(v)[0] not in (0.5, -0.5) for v in seen if v)

    @settings(max_examples=30)
    @given(float32_arrays(1.0, 2.0, max_size=16))
    def test_arrays(self, xs):
        """Array strategy yields 1-D float32 arrays inside the domain."""
        assert xs.dtype == np.float32 and xs.ndim == 1 and np.all((xs >= 1) & (xs <= 2))

    def test_bad_domain(self):
        """An empty or NaN domain is rejected."""
        with pytest.raises(ValueError, match="empty domain"):
            float32s(2.0, 1.0)
        with pytest.raises(ValueError, match="NaN"):
            float32s(float("nan"), 1.0)


class TestAssertMaxUlp:
    def test_numpy_exp2_passes(self):
        """numpy's float32 exp2 is within 1 ULP on [0, 1/64] (exhaustive)."""
        rep = assert_max_ulp(np.exp2, "exp2", (1.0, 1.015625), ulps=1.0)
        assert rep.exhaustive and rep.n_points == pysearch.Domain(1.0, 1.015625).count()
        assert rep.max_ulp <= 1.0

    def test_bad_implementation_fails_with_details(self):
        """A truncated series fails, and the message names the worst input and the bound."""
        def poor_exp2(x):
            return (np.float32(1) + x * np.float32(0.6931472)).astype(np.float32)

        with pytest.raises(AssertionError, match=r"ULP > 1.0 at x = "):
            assert_max_ulp(poor_exp2, "exp2", (0.0, 0.5), ulps=1.0)

    def test_sampled_for_large_domains(self):
        """Large domains are sampled unless exhaustive is forced."""
        rep = assert_max_ulp(np.sqrt, "sqrt", (1.0, 1e6), ulps=0.5, n_sample=4096)
        assert not rep.exhaustive and rep.n_points >= 4096

    def test_wrong_output_type(self):
        """An implementation returning float64 is reported, not silently converted."""
        with pytest.raises(AssertionError, match="float64"):
            assert_max_ulp(lambda x: np.exp2(x.astype(np.float64)), "exp2", (0.0, 0.001), ulps=1.0)

    def test_ulp_errors_nonfinite(self):
        """A NaN output where f is finite counts as an infinite error; an exact output as zero."""
        x = np.array([0.0, 1.0], dtype=np.float32)
        err = ulp_errors(np.array([np.nan, 2.0], dtype=np.float32), "exp2", x)
        assert math.isinf(err[0]) and err[1] == 0.0

    def test_ulp_errors_overflow(self):
        """Where f(x) overflows float32, inf is the right answer and the largest float is not."""
        x = np.array([128.0, 128.0], dtype=np.float32)
        y = np.array([np.inf, np.finfo(np.float32).max], dtype=np.float32)
        err = ulp_errors(y, "exp2", x)
        assert err[0] == 0.0 and err[1] >= 0.5
