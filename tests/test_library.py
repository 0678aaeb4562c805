"""pysearch.library: shipped functions, their metadata, and re-verification of every claim."""

from __future__ import annotations

import math

import numpy as np
import pytest

import pysearch
from pysearch import library
from pysearch.testing import assert_max_ulp

REDUCED = ["exp2_reduced", "exp_reduced", "log2_reduced", "log_reduced", "tanh_reduced", "erf_reduced"]
#: the full-range functions shipped (every entry whose domain is all of float32); the first four are required
FULL = sorted(n for n in library.names() if library.get(n).domain == (-math.inf, math.inf))
REQUIRED_FULL = ["exp2", "exp", "log2", "log"]
ALL = REDUCED + FULL

#: C99/IEEE answers at inf, -inf, 0, -0 and NaN, per target (a zero's sign is checked too)
SPECIAL = {
    "exp": [np.inf, 0.0, 1.0, 1.0, np.nan],
    "exp2": [np.inf, 0.0, 1.0, 1.0, np.nan],
    "expm1": [np.inf, -1.0, 0.0, -0.0, np.nan],
    "log": [np.inf, np.nan, -np.inf, -np.inf, np.nan],
    "log2": [np.inf, np.nan, -np.inf, -np.inf, np.nan],
    "log1p": [np.inf, np.nan, 0.0, -0.0, np.nan],
    "tanh": [1.0, -1.0, 0.0, -0.0, np.nan],
    "sigmoid": [1.0, 0.0, 0.5, 0.5, np.nan],
    "erf": [1.0, -1.0, 0.0, -0.0, np.nan],
}


def test_required_functions_ship():
    """The library holds reduced-domain and full-range functions for the required targets."""
    assert set(REDUCED + REQUIRED_FULL) <= set(ALL) <= set(library.names())


@pytest.mark.parametrize("name", ALL)
def test_metadata(name):
    """Each function records target, domain, a finite verified bound, cost and how it was found."""
    fn = library.get(name)
    assert fn.target in pysearch.targets.BUILTIN
    assert fn.verified == "exhaustive"
    assert math.isfinite(fn.max_ulp) and fn.max_ulp > 0
    assert fn.cost == fn.program.cost() and fn.ops >= 1 and fn.latency > 0
    assert fn.found
    assert fn.n_points == pysearch.Domain(*fn.domain).count()


@pytest.mark.parametrize("name", FULL)
def test_full_range_exhaustive_check_is_recorded(name):
    """Each full-range entry records the command, UTC date and duration of its last exhaustive check."""
    import datetime

    v = library.get(name).verification
    assert v["call"].startswith("pysearch.verify(") and "exhaustive=True" in v["call"]
    assert v["command"].startswith("python -m pysearch.library.build") and v["command"].endswith(name)
    assert datetime.datetime.strptime(v["date"], "%Y-%m-%dT%H:%M:%SZ").year >= 2024
    assert v["seconds"] > 0
    assert library.get(name).to_json_obj()["verification"] == v


@pytest.mark.parametrize("name", REDUCED)
def test_reduced_bound_reverified_small_sample(name):
    """A sampled re-check of each reduced-domain function stays within its verified bound."""
    fn = library.get(name)
    x = pysearch.Domain(*fn.domain).sample(1 << 16, seed=11)
    st = pysearch.ulp_error(fn.program, x, fn.target)
    assert st.max_ulp <= fn.max_ulp


@pytest.mark.parametrize("name", FULL)
def test_full_range_sampled(name):
    """Full-range functions meet their bound on random bit patterns and on the busy range."""
    fn = library.get(name)
    rng = np.random.default_rng(0)
    bits = rng.integers(0, 2**32, size=1 << 18, dtype=np.uint64).astype(np.uint32)
    x = bits.view(np.float32)
    x = x[~np.isnan(x)]
    busy = pysearch.Domain(-160.0, 160.0).sample(1 << 18, seed=1)
    rep = assert_max_ulp(fn, fn.target, (-np.inf, np.inf), fn.max_ulp, n_sample=1 << 16)
    assert rep.max_ulp <= fn.max_ulp
    for pts in (x, busy):
        st = pysearch.ulp_error(fn.program, np.ascontiguousarray(pts), fn.target)
        assert st.max_ulp <= fn.max_ulp


@pytest.mark.parametrize("name", FULL)
def test_full_range_special_values(name):
    """inf, -inf, 0, -0 and NaN inputs give the C99/IEEE answers (signed zeros included)."""
    fn = library.get(name)
    x = np.array([np.inf, -np.inf, 0.0, -0.0, np.nan], dtype=np.float32)
    y = fn(x)
    expect = np.array(SPECIAL[fn.target], dtype=np.float32)
    np.testing.assert_array_equal(y, expect)
    np.testing.assert_array_equal(np.signbit(y[2:4]), np.signbit(expect[2:4]))


def test_call_on_scalars_and_arrays():
    """Functions take float32 scalars and arrays of any shape and return the same kind."""
    fn = library.exp2
    y = fn(np.float32(3.0))
    assert isinstance(y, np.float32) and y == np.float32(8.0)
    a = np.array([[0.5, 1.0], [2.0, -1.0]], dtype=np.float32)
    out = fn(a)
    assert out.shape == (2, 2) and out.dtype == np.float32
    assert out[0, 1] == np.float32(2.0) and out[1, 1] == np.float32(0.5)
    with pytest.raises(TypeError, match="float32"):
        fn(np.array([1.0]))


def _float32_run(a: float, b: float) -> np.ndarray:
    """Every float32 from a to b (both of one sign)."""
    lo, hi = sorted(int(np.float32(v).view(np.uint32)) for v in (a, b))
    return np.arange(lo, hi + 1, dtype=np.uint32).view(np.float32)


def test_log1p_reduction_edges():
    """log1p: every float32 around the ends of the k = 0 window of its reduction (x = 1/2, where one input,
    1/2 - 2^-25, gets k = 1 and f rounded by 2^-26, and x = -1/4) and next to -1 is within the bound;
    log1p(-1) = -inf, below -1 NaN, and a tiny or subnormal x gives x."""
    fn = library.get("log1p")
    x = np.concatenate([_float32_run(0.5 - 2.0**-12, 0.5 + 2.0**-12), _float32_run(-0.25 + 2.0**-13, -0.25 - 2.0**-13),
                        _float32_run(-1 + 2.0**-24, -1 + 2.0**-12)])
    st = pysearch.ulp_error(fn.program, x, fn.target)
    assert st.max_ulp <= fn.max_ulp and st.n_points == x.size
    assert fn(np.float32(-1.0)) == -np.inf
    below = np.concatenate([_float32_run(-1 - 2.0**-14, -1 - 2.0**-23), np.float32([-2.0, -1e30, -3.4028235e38])])
    assert np.isnan(fn(below)).all()
    tiny = np.concatenate([_float32_run(1e-45, 1e-38)[::4099], -_float32_run(1e-45, 1e-38)[::4099]])
    np.testing.assert_array_equal(fn(tiny), tiny)


def test_unknown_name():
    """An unknown name lists what is available."""
    with pytest.raises(ValueError, match="available"):
        library.get("cube")
    with pytest.raises(AttributeError):
        library.cube  # noqa: B018


@pytest.mark.slow
@pytest.mark.parametrize("name", REDUCED)
def test_reduced_bound_exhaustive(name):
    """Every float32 of the reduced domain is within the claimed bound (exhaustive re-check)."""
    fn = library.get(name)
    st = pysearch.verify(fn.program, fn.target, fn.domain, exhaustive=True)
    assert st.max_ulp <= fn.max_ulp and st.n_points == fn.n_points


@pytest.mark.slow
@pytest.mark.parametrize("name", FULL)
def test_full_range_exhaustive(name):
    """Every non-NaN float32 pattern (about 4.3e9) is within the claimed bound."""
    fn = library.get(name)
    st = pysearch.verify(fn.program, fn.target, (-np.inf, np.inf), exhaustive=True)
    assert st.max_ulp <= fn.max_ulp and st.n_points == 2**32 - 2**24 + 2
