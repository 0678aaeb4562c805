"""float32 ULP arithmetic in numpy: the one place for ulp, per-point ULP error and value-order keys.

The definitions are those of the Rust core (``rust/ulp.rs``, ``rust/domain.rs``), so a figure
computed here and one computed by :func:`pysearch.ulp_error` agree:

- ``ulp32(r) = 2^(clamp(floor(log2 |r|), -126, 127) - 23)`` for a real value ``r`` (float64): the
  spacing of the float32 binade holding ``r``, the subnormal spacing 2^-149 at and near 0, and
  2^104 beyond float32's range (and for inf and NaN).
- the error of a float32 result ``y`` against the exact value ``r`` is ``|y - r| / ulp32(r)``.
- the key of a float32 counts representable values in value order, -0 just below +0 (key -1
  and 0), so consecutive keys are neighbours and ``key(b) - key(a) + 1`` counts ``[a, b]``.
"""

from __future__ import annotations

import numpy as np

#: Least float32 spacing: the ulp of subnormals and zero.
MIN_ULP32 = 2.0**-149


def _binade(r) -> np.ndarray:
    """``clamp(floor(log2 |r|), -126, 127)`` of float64 values, 127 for inf and NaN: read from the
    exponent field (a float64 subnormal or zero reads -1023, infinities and NaN 1024; the clamp
    takes them to -126 and 127), as int64."""
    biased = (np.asarray(r, dtype=np.float64).view(np.uint64) >> np.uint64(52)) & np.uint64(0x7FF)
    return np.clip(biased.astype(np.int64) - 1023, -126, 127)


def _power_of_two(e: np.ndarray):
    """2.0**e for integer exponents of normal float64 values, built from the bits (an array, or a
    numpy scalar for a 0-d ``e``)."""
    out = ((e + 1023).astype(np.uint64) << np.uint64(52)).view(np.float64)
    return out[()] if out.ndim == 0 else out


def ulp32(r) -> np.ndarray:
    """float32 ulp of the real values ``r`` (array or scalar, float64), as float64."""
    return _power_of_two(_binade(r) - 23)


def inv_ulp32(r) -> np.ndarray:
    """``1 / ulp32(r)``, a power of two: multiplying by it is dividing by ``ulp32(r)``, exactly."""
    return _power_of_two(23 - _binade(r))


def ulp_errors(y, ref, rounded=None) -> np.ndarray:
    """Per-point error in ULPs of float32 results ``y`` against exact values ``ref`` (float64).

    ``|y - ref| / ulp32(ref)`` where ``ref`` is finite; where it is not (an infinite or NaN
    target value) 0 if ``y`` is the same and inf otherwise. A non-finite ``y`` where ``ref`` is
    finite is inf, unless ``ref`` lies beyond float32's range and ``y`` equals ``rounded`` (the
    correctly rounded float32 values, when given: then an infinite result is the right one).
    """
    y64 = np.asarray(y).astype(np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    with np.errstate(all="ignore"):
        err = np.abs(y64 - ref) * inv_ulp32(ref)
    fin = np.isfinite(ref)
    same = (y64 == ref) | (np.isnan(y64) & np.isnan(ref))
    err = np.where(fin, err, np.where(same, 0.0, np.inf))
    exact_overflow = np.zeros_like(fin)
    if rounded is not None:
        rounded = np.asarray(rounded, dtype=np.float32)
        exact_overflow = fin & np.isinf(rounded) & (np.asarray(y) == rounded)
    err = np.where(exact_overflow, 0.0, err)
    err = np.where(fin & ~np.isfinite(y64) & ~exact_overflow, np.inf, err)
    return np.where(np.isnan(err), np.inf, err)


def key(v: float) -> int:
    """The value-order key of float32 ``v`` (-0 is -1, +0 is 0); NaN is refused."""
    f = np.float32(v)
    if np.isnan(f):
        raise ValueError("NaN has no place in value order")
    b = int(np.array(f).view(np.uint32))
    return b if b < 0x80000000 else -1 - (b & 0x7FFFFFFF)


#: Keys of -inf and +inf: every float32 that is not NaN has a key in this closed range.
KEY_MIN, KEY_MAX = -1 - 0x7F800000, 0x7F800000


def from_key(k: int) -> float:
    """The float32 (as a Python float) whose value-order key is ``k``."""
    k = int(k)
    if not KEY_MIN <= k <= KEY_MAX:
        raise ValueError(f"float32 key {k} is outside [{KEY_MIN}, {KEY_MAX}] (-inf .. inf)")
    bits = k if k >= 0 else (-1 - k) | 0x80000000
    return float(np.array(bits, dtype=np.uint32).view(np.float32))


def neighbour(v: float, steps: int) -> float:
    """The float32 ``steps`` representable values above ``v`` (below when negative), clamped to ±inf.

    Steps count distinct values, so -0 and +0 are one place (as in the core's ULP distance):
    one step up from either zero is 2^-149, one step down -2^-149.
    """
    k = key(v)
    pos = k if k >= 0 else k + 1  # value position: -0 and +0 both 0
    pos = min(max(pos + int(steps), KEY_MIN + 1), KEY_MAX)
    return from_key(pos if pos >= 0 else pos - 1)
