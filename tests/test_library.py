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


@pytest.mark.parametrize("lo, hi", [(-0.31, -0.29), (0.38, 0.41), (-17.4, -17.2), (88.6, 88.73),
                                    (-2.0**-126, 2.0**-126)])
def test_expm1_hard_regions(lo, hi):
    """expm1 on every float32 of its hard regions: where its reduction switches n between -1, 0 and 1 (the
    cancellation in 2^n e^f - 1), where the result becomes -1, where it overflows, and subnormal x (-> x)."""
    fn = library.get("expm1")
    st = pysearch.verify(fn.program, "expm1", (lo, hi), exhaustive=True)
    assert st.max_ulp <= fn.max_ulp and st.n_points > 10_000
    if hi == 2.0**-126:
        x = pysearch.Domain(lo, hi).sample(1 << 12, seed=0)
        assert (fn(x).view(np.uint32) == x.view(np.uint32)).all()


def test_erf_pieces_meet_within_the_bound_and_erf_is_odd():
    """erf's pieces meet where rint(0.625 x) changes (|x| = 0.8, 2.4) and |x| is clamped at 3.96: every float32
    within 2^14 ulps of those points meets the bound; erf(-x) is -erf(x) bit for bit."""
    fn = library.get("erf")
    for p in (0.8, 2.4, 3.96):
        c = np.array([p], dtype=np.float32).view(np.uint32)[0]
        x = (np.int64(c) + np.arange(-(1 << 14), 1 << 14)).astype(np.uint32).view(np.float32)
        st = pysearch.ulp_error(fn.program, np.concatenate([x, -x]), "erf")
        assert st.max_ulp <= fn.max_ulp, (p, st.argmax_x)
    x = pysearch.Domain(0.0, 5.0).sample(1 << 16, seed=2)
    np.testing.assert_array_equal(fn(-x).view(np.uint32), (-fn(x)).view(np.uint32))


def test_tanh_hard_regions():
    """tanh is odd bit for bit (-0 included), x itself below 2^-12, within its bound where the polynomial hands
    over to the exp form (|x| ~ 0.78), and correctly rounded where it saturates: 1 - 2^-24 on [8.5, 9], 1 from 9.02."""
    fn = library.get("tanh")
    tiny = np.array([2.0**-149, 2.0**-126, 1e-30, 2.0**-13], dtype=np.float32)
    x = np.concatenate([np.array([0.0], np.float32), tiny, pysearch.Domain(0.0, 12.0).sample(1 << 16, seed=2)])
    y = fn(x)
    np.testing.assert_array_equal(fn(-x).view(np.uint32), (-y).view(np.uint32))
    np.testing.assert_array_equal(fn(tiny), tiny)
    handover = pysearch.Domain(0.7, 0.9).sample(1 << 16, seed=3)
    for pts in (handover, -handover):
        assert pysearch.ulp_error(fn.program, pts, "tanh").max_ulp <= fn.max_ulp
    below_one = np.linspace(8.5, 9.0, 4097, dtype=np.float32)
    assert (fn(below_one) == np.float32(1 - 2.0**-24)).all()
    one = np.concatenate([np.linspace(9.02, 20.0, 4097, dtype=np.float32), np.array([1e30, 3.4e38], np.float32)])
    assert (fn(one) == 1).all() and (fn(-one) == -1).all()


def test_sigmoid_hard_regions_every_float32():
    """Every float32 of sigmoid's hard regions is within the bound: the subnormal results (x down to where
    0 is right), 2^n meeting e^-g's last bits in the denominator (n = rint(x/ln2) in -27..-23) and the
    rounding of 1 - e^-x to 1 or 1 - 2^-24 (n = 24, 25, then the clamp); results are 0 and 1 beyond."""
    fn = library.get("sigmoid")
    for a, b in ((-104.5, -86.5), (-18.75, -15.75), (16.5, 18.0)):
        x = pysearch.Domain(a, b).all()
        st = pysearch.ulp_error(fn.program, x, "sigmoid")
        assert st.max_ulp <= fn.max_ulp, (a, b, st.max_ulp, st.argmax_x)
    x = np.array([-104.0, -1e4, -3.4e38], dtype=np.float32)
    assert (fn(x) == 0).all() and not np.signbit(fn(x)).any()
    assert (fn(np.array([17.33287, 17.5, 88.0, 3.4e38], dtype=np.float32)) == 1).all()


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


def test_fused_log_reduction_matches_the_original():
    """log/log2's reduction (g by the 1.5*2^23 rounding trick, r in one fma) gives the same e' and r as
    ``_log_reduction`` for every float32 significand in [1, 2), scaled into other binades (subnormals
    included), and at +-0 and +-inf (other negative inputs differ, and become NaN after either)."""
    from pysearch.library import build
    from pysearch.program import parse

    m = np.arange(np.float32(1).view(np.uint32), np.float32(2).view(np.uint32), dtype=np.uint32).view(np.float32)
    x = np.concatenate([m, m[::97] * np.float32(2.0**-140), m[::89] * np.float32(2.0**100), m[::83] * np.float32(0.5),
                        np.array([0.0, -0.0, np.inf, -np.inf, 2.0**-149], np.float32)])
    for out in ("ee", "r"):
        got, want = (pysearch.evaluate(parse("\n".join([*lines, f"o = add {out} 0"]) + "\n"), x)
                     for lines in (build._log_reduction_fused(), build._log_reduction()))
        same = (got.view(np.uint32) == want.view(np.uint32)) | (np.isnan(got) & np.isnan(want))
        assert same.all(), (out, x[~same][:4], got[~same][:4], want[~same][:4])


def test_out_argument_like_a_ufunc():
    """``out=`` receives the result (returned, no new array), also in place; a wrong out is refused by name."""
    fn = library.log
    x = pysearch.Domain(1e-3, 1e3).sample(3 * 257, seed=4)[: 3 * 257].reshape(3, 257)
    want = fn(x)
    out = np.empty_like(x)
    assert fn(x, out=out) is out and (out.view(np.uint32) == want.view(np.uint32)).all()
    y = x.copy()
    assert fn(y, out=y) is y and (y.view(np.uint32) == want.view(np.uint32)).all()
    for bad, err in ((np.empty(5, np.float32), ValueError), (np.empty(x.shape), TypeError),
                     (np.empty(x.shape[::-1], np.float32).T, ValueError), ([0.0], TypeError)):
        with pytest.raises(err, match="^log: out"):
            fn(x, out=bad)
    with pytest.raises(TypeError, match="for array inputs"):
        fn(1.5, out=out)
    z = np.ones(9, np.float32)
    with pytest.raises(ValueError, match="overlaps"):
        fn(z[1:], out=z[:-1])


def test_array_calls_match_the_reference_interpreter_bit_for_bit():
    """The direct path of a float32 array call (C-contiguous, ``out=`` apart from it or none) gives what
    the reference interpreter gives, NaN payloads included, in the input's shape; so do the general
    paths (a strided view, an overlapping ``out``)."""
    from pysearch import interpreter

    rng = np.random.default_rng(14)
    special = np.array([0x0, 0x80000000, 0x1, 0x807fffff, 0x7f800000, 0xff800000, 0x7fc00000, 0xffc00000,
                        0x7fa00001, 0xffc01234, 0x7f7fffff, 0x3f800000], np.uint32)
    bits = np.concatenate([special, rng.integers(0, 2**32, 4096 - len(special), dtype=np.uint32)])
    x = bits.view(np.float32).reshape(64, 64)
    for fn in library.functions():
        want = interpreter.run(fn.program, x.ravel()).view(np.uint32).reshape(x.shape)
        got = fn(x)
        assert got.shape == x.shape and (got.view(np.uint32) == want).all(), fn.name
        out = np.empty_like(x)
        assert fn(x, out=out) is out and (out.view(np.uint32) == want).all(), fn.name
        strided = np.repeat(x, 2, axis=1)[:, ::2]  # not contiguous: the general path
        assert (fn(strided).view(np.uint32) == want).all(), fn.name
        y = x.copy()
        assert fn(y, out=y) is y and (y.view(np.uint32) == want).all(), fn.name
