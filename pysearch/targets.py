"""Target functions: what a program approximates, with exact references.

A :class:`Target` pairs a name with an mpmath function (the exact truth, used in tests and to
settle rounding ties) and, for built-in targets, a float64 reference in Rust that is fast enough
for exhaustive checks over ~1e9 float32 inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import mpmath
import numpy as np

from pysearch import _core

#: Working precision (bits) of mpmath when settling a float32 rounding.
EXACT_PREC = 160


@dataclass(frozen=True)
class Target:
    """A function to approximate: ``fn`` maps an mpmath mpf to an mpf (the exact value)."""

    name: str
    fn: Callable[[mpmath.mpf], mpmath.mpf]
    #: Reduced domain the function is usually searched on (closed interval).
    domain: tuple[float, float] = (0.0, 1.0)
    #: True when the Rust core has a float64 reference for it.
    builtin: bool = False

    def exact(self, x: float) -> mpmath.mpf:
        """f(x) at EXACT_PREC bits."""
        with mpmath.workprec(EXACT_PREC):
            return self.fn(mpmath.mpf(float(x)))


def _sigmoid(x):
    return 1 / (1 + mpmath.exp(-x))


_LN2_HALF = float(np.float32(0.34657359))

BUILTIN: dict[str, Target] = {
    t.name: t
    for t in (
        Target("exp", mpmath.exp, (-_LN2_HALF, _LN2_HALF), True),
        Target("exp2", lambda x: mpmath.power(2, x), (0.0, 1.0), True),
        Target("expm1", mpmath.expm1, (-_LN2_HALF, _LN2_HALF), True),
        Target("log", mpmath.log, (0.5, 1.0), True),
        Target("log2", lambda x: mpmath.log(x, 2), (1.0, 2.0), True),
        Target("log1p", mpmath.log1p, (0.0, 1.0), True),
        Target("sin", mpmath.sin, (0.0, float(np.float32(np.pi / 4))), True),
        Target("cos", mpmath.cos, (0.0, float(np.float32(np.pi / 4))), True),
        Target("tanh", mpmath.tanh, (0.0, 1.0), True),
        Target("sigmoid", _sigmoid, (0.0, 1.0), True),
        Target("erf", mpmath.erf, (0.0, 1.0), True),
        Target("sqrt", mpmath.sqrt, (1.0, 4.0), True),
        Target("rsqrt", lambda x: 1 / mpmath.sqrt(x), (1.0, 4.0), True),
    )
}
assert set(BUILTIN) == set(_core.target_names()), "Rust and Python target lists differ"


def get_target(target: "str | Target | Callable") -> Target:
    """A built-in target by name, a Target as is, or a custom Target from an mpmath callable."""
    if isinstance(target, Target):
        return target
    if isinstance(target, str):
        try:
            return BUILTIN[target]
        except KeyError:
            raise ValueError(
                f"unknown target {target!r}; built-in targets: {', '.join(BUILTIN)}"
            ) from None
    if callable(target):
        return Target(getattr(target, "__name__", "custom"), target)
    raise TypeError(f"a target is a name, a Target or an mpmath callable, not {type(target).__name__}")


def round_exact_to_float32(v: mpmath.mpf) -> np.float32:
    """Correctly round (to nearest, ties to even) an mpmath value to float32, subnormals included."""
    if mpmath.isnan(v):
        return np.float32(np.nan)
    if mpmath.isinf(v):
        return np.float32(np.inf if v > 0 else -np.inf)
    d = float(v)  # correctly rounded to float64; the float32 answer is this or a neighbour
    big = float(np.finfo(np.float32).max)
    c = np.float32(max(-big, min(big, d)))
    best = None
    with np.errstate(over="ignore"):
        neighbours = (np.nextafter(c, np.float32(-np.inf)), c, np.nextafter(c, np.float32(np.inf)))
    for cand in neighbours:
        if not np.isfinite(cand):
            continue
        dist = abs(mpmath.mpf(float(cand)) - v)
        key = (dist, int(np.array(cand).view(np.uint32)) & 1)  # ties: even mantissa
        if best is None or key < best[0]:
            best = (key, cand)
    out = best[1]
    # beyond FLT_MAX + half an ulp the rounding is to infinity
    if abs(float(out)) == big and abs(v) >= mpmath.mpf(float(big)) + mpmath.ldexp(1, 103):
        return np.float32(np.copysign(np.inf, d))
    return np.float32(out)


def reference(target: "str | Target", x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact values of ``target`` at float32 points: (float64 values, correctly rounded float32).

    Built-in targets use the Rust float64 reference; points where float64 cannot decide the
    float32 rounding are settled with mpmath. Custom targets use mpmath at every point.
    """
    t = get_target(target)
    x = np.ascontiguousarray(x, dtype=np.float32)
    if t.builtin:
        ref, rounded, undecided = _core.reference(t.name, x)
        for i in np.flatnonzero(undecided):
            rounded[i] = round_exact_to_float32(t.exact(x[i]))
        return ref, rounded
    ref = np.empty(len(x), dtype=np.float64)
    rounded = np.empty(len(x), dtype=np.float32)
    with mpmath.workprec(EXACT_PREC):
        for i, xi in enumerate(x):
            v = t.fn(mpmath.mpf(float(xi)))
            if isinstance(v, mpmath.mpc):
                v = mpmath.mpf("nan") if v.imag != 0 else v.real
            ref[i] = float(v)
            rounded[i] = round_exact_to_float32(v)
    return ref, rounded
