"""Test your own float32 implementations: hypothesis strategies and a max-ULP assertion.

>>> import numpy as np
>>> from hypothesis import given
>>> from pysearch.library import exp2 as my_exp2     # or your own: float32 array in, float32 array out
>>> from pysearch.testing import assert_max_ulp, float32s
>>> report = assert_max_ulp(my_exp2, "exp2", (0.0, 1.0), ulps=1.0, exhaustive=False, n_sample=10_000)
>>> report.max_ulp <= 1.0
True
>>> @given(float32s(0.0, 1.0))
... def test_at_least_one(x):
...     assert my_exp2(np.float32(x)) >= 1
>>> test_at_least_one()

Errors are measured as pysearch measures them everywhere: |y - f(x)| / ulp(f(x)) with
ulp(v) = 2^(floor(log2|v|) - 23), at least 2^-149, f(x) from pysearch's exact references.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from pysearch.domain import Domain
from pysearch.targets import reference
from pysearch.ulp import from_key, key
from pysearch.ulp import ulp_errors as ulp_errors_against

__all__ = ["UlpReport", "assert_max_ulp", "float32_arrays", "float32s", "ulp_errors"]

#: Domains with at most this many float32 values are checked exhaustively by default.
EXHAUSTIVE_LIMIT = 1 << 24


def _bounds(a: float, b: float) -> tuple[float, float]:
    for name, v in (("lower", a), ("upper", b)):
        if not isinstance(v, (int, float, np.floating, np.integer)) or isinstance(v, bool):
            raise TypeError(f"{name} bound must be a number, not {type(v).__name__}")
        if math.isnan(v):
            raise ValueError(f"{name} bound is NaN")
    a32, b32 = float(np.float32(a)), float(np.float32(b))
    if a32 > b32:
        raise ValueError(f"empty domain: [{a}, {b}]")
    return a32, b32


def _special_points(a: float, b: float) -> list[float]:
    """Edges and their neighbours, zeros, the smallest subnormals and binade boundaries inside [a, b]."""
    lo, hi = key(a), key(b)
    keys = {lo, min(lo + 1, hi), max(hi - 1, lo), hi}
    pts = [from_key(k) for k in keys]
    for v in (0.0, -0.0, 2.0**-149, -(2.0**-149), 2.0**-126, -(2.0**-126)):
        if a <= v <= b:
            pts.append(v)
    for e in range(-149, 128):
        for s in (1.0, -1.0):
            p = s * 2.0**e
            for q in (from_key(key(p) - 1), p, from_key(key(p) + 1)):
                if a <= q <= b and math.isfinite(q):
                    pts.append(q)
    return sorted(set(pts), key=key)


def float32s(a: float = -math.inf, b: float = math.inf, *, subnormals: bool = True):
    """Hypothesis strategy: Python floats exactly representable in float32, in [a, b].

    Mixes values uniform in bit pattern (every binade weighs the same), uniform in value,
    and hard cases weighted in: the edges and their neighbours, signed zeros, subnormals, and
    powers of two with their neighbours (binade boundaries). ``subnormals=False`` leaves them out.
    """
    from hypothesis import strategies as st

    a, b = _bounds(a, b)
    lo, hi = key(a), key(b)
    pts = _special_points(a, b)

    def ok(v: float) -> bool:
        return subnormals or v == 0 or abs(v) >= 2.0**-126 or not math.isfinite(v)

    parts = [st.integers(lo, hi).map(from_key).filter(ok)]
    if math.isfinite(a) and math.isfinite(b):
        has_sub = a < 2.0**-126 and b > -(2.0**-126)
        parts.append(st.floats(a, b, width=32, allow_subnormal=subnormals and has_sub))
    special = [p for p in pts if ok(p)]
    if special:
        parts.append(st.sampled_from(special))
    sub_lo, sub_hi = max(lo, key(-(2.0**-126))), min(hi, key(2.0**-126))
    if subnormals and sub_lo <= sub_hi:
        parts.append(st.integers(sub_lo, sub_hi).map(from_key))
    return st.one_of(*parts)


def float32_arrays(a: float = -math.inf, b: float = math.inf, *, min_size: int = 1, max_size: int = 64,
                   subnormals: bool = True):
    """Hypothesis strategy: 1-D numpy float32 arrays with elements from :func:`float32s`."""
    from hypothesis import strategies as st

    return st.lists(float32s(a, b, subnormals=subnormals), min_size=min_size, max_size=max_size).map(
        lambda xs: np.array(xs, dtype=np.float32)
    )


def ulp_errors(y: np.ndarray, target, x: np.ndarray) -> np.ndarray:
    """Per-point ULP errors of float32 outputs ``y`` at float32 inputs ``x`` against ``target``.

    inf where the output is NaN or infinite but f(x) is finite, or where f(x) is not finite
    and the output differs from it.
    """
    x = np.ascontiguousarray(x, dtype=np.float32).ravel()
    y = np.asarray(y)
    if y.shape != x.shape:
        raise ValueError(f"outputs have shape {y.shape}, inputs {x.shape}")
    if y.dtype != np.float32:
        raise TypeError(f"outputs must be float32, not {y.dtype}")
    ref, rounded = reference(target, x)
    return ulp_errors_against(y, ref, rounded)


@dataclass(frozen=True)
class UlpReport:
    """What :func:`assert_max_ulp` measured."""

    max_ulp: float
    argmax_x: float
    n_points: int
    exhaustive: bool
    n_over: int


def assert_max_ulp(fn: Callable[[np.ndarray], np.ndarray], target, domain: Sequence[float], ulps: float, *,
                   exhaustive: bool | None = None, n_sample: int = 1 << 20, seed: int = 0) -> UlpReport:
    """Assert that ``fn`` is within ``ulps`` ULP of ``target`` on every checked float32 in ``domain``.

    ``fn`` takes a 1-D float32 numpy array and returns float32 outputs of the same shape.
    By default domains of up to 2^24 values are checked exhaustively, larger ones on a stratified
    sample of ``n_sample`` points with the edges and binade boundaries added. Raises
    ``AssertionError`` naming the worst input, the output and the correctly rounded value.
    """
    a, b = _bounds(*domain)
    if not (isinstance(ulps, (int, float)) and ulps >= 0):
        raise ValueError(f"ulps must be a non-negative number, not {ulps!r}")
    dom = Domain(a, b)
    if exhaustive is None:
        exhaustive = dom.count() <= EXHAUSTIVE_LIMIT
    if exhaustive:
        x = dom.all()
    else:
        x = np.unique(np.concatenate([dom.sample(n_sample, seed), np.array(_special_points(a, b), np.float32)]))
    y = np.asarray(fn(x.copy()))
    if y.shape != x.shape:
        raise AssertionError(f"fn returned shape {y.shape} for {x.shape} inputs")
    if y.dtype != np.float32:
        raise AssertionError(f"fn returned {y.dtype} values; expected float32")
    err = ulp_errors(y, target, x)
    i = int(np.argmax(err))
    report = UlpReport(float(err[i]), float(x[i]), len(x), bool(exhaustive), int(np.sum(err > ulps)))
    if report.max_ulp > ulps:
        _, rounded = reference(target, x[i : i + 1])
        how = "every float32" if exhaustive else f"{len(x)} sampled float32s"
        raise AssertionError(
            f"max error {report.max_ulp:.4g} ULP > {ulps} at x = {x[i]!r} ({float(x[i]).hex()}): "
            f"got {y[i]!r}, correctly rounded {rounded[0]!r}; {report.n_over} of {how} in "
            f"[{a!r}, {b!r}] exceed the bound"
        )
    return report
