"""Target functions: what a program approximates, with exact references.

A :class:`Target` pairs a name with an mpmath function (the exact truth, used in tests and to
settle rounding ties) and a fast float64 reference for exhaustive checks over ~1e9 float32
inputs: in Rust for the built-in targets, vectorised numpy for expressions in x
(``get_target('sin(x)/x')``, grammar in :mod:`pysearch.expression`). Plain mpmath callables
have no float64 reference: mpmath runs at every point, so they suit small domains only.

Precision argument for expressions: float64 evaluates the expression with a first-order error
bound E (:meth:`pysearch.expression.Expression.f64`), doubled for safety plus one float64 ulp.
A point is decided in float64 when [v - E, v + E] rounds to a single float32 (rounding is
monotone, so the exact value rounds to it too) and E <= 2^-36 |v|, so the float64 value used
for the ULP error is off by at most 2^-12 float32 ulps (ulp(v) > 2^-24 |v|). Every other point (values or bounds that
are NaN or inf, near-cancellations, rounding boundaries) is recomputed with mpmath at
EXACT_PREC bits and rounded exactly. Where the expression is undefined at a point of the
domain (0/0 as in sin(x)/x at 0, log of a negative, a pole of gamma) the reference raises
:class:`TargetUndefinedError` naming the point: choose a domain without it. Values that are
exactly infinite (log(0)) are targets like any other.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable, Optional

import mpmath
import numpy as np

from pysearch import _core
from pysearch.expression import FUNCTIONS, Expression, ExpressionError, parse_expression

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
    #: The parsed expression of a target written as an expression in x (float64 reference).
    expression: Optional[Expression] = None

    @classmethod
    def from_expression(cls, text: str, domain: tuple[float, float] = (0.0, 1.0)) -> "Target":
        """A target from an expression in x, e.g. ``Target.from_expression('sin(x)/x')``.

        The grammar (numbers, x, pi, e, + - * / **, whitelisted functions) is checked with
        :mod:`ast`; nothing is evaluated as Python. Bad text raises
        :class:`~pysearch.expression.ExpressionError` (a ValueError) naming the problem. The
        name is the canonical text (``'sin(x) / x'``).
        """
        expr = parse_expression(text)
        return cls(expr.text, _ExpressionFunction(expr), tuple(domain), False, expr)

    def exact(self, x: float) -> mpmath.mpf:
        """f(x) at EXACT_PREC bits."""
        with mpmath.workprec(EXACT_PREC):
            return self.fn(mpmath.mpf(float(x)))


class TargetUndefinedError(ValueError):
    """The target has no real value at a point of the domain (0/0, log of a negative, ...)."""


class _ExpressionFunction:
    """An expression as an mpmath callable (mpf -> mpf; NotRealError where it is not real)."""

    def __init__(self, expr: Expression):
        self.expr = expr
        self.__name__ = expr.text

    def __call__(self, x):
        return self.expr.mp(x)


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
    """A built-in target by name, an expression in x, a Target as is, or an mpmath callable.

    ``get_target('exp2')`` is built in; ``get_target('sin(x)/x')`` parses the expression (see
    :meth:`Target.from_expression`). ``'log(x)'`` is an expression, not the built-in ``'log'``:
    the same values, but undefined points are errors instead of NaN targets. Unknown names and
    bad expressions raise ValueError naming the problem.
    """
    if isinstance(target, Target):
        return target
    if isinstance(target, str):
        return _target_from_text(target.strip())
    if callable(target):
        return Target(getattr(target, "__name__", "custom"), target)
    raise TypeError(f"a target is a name, a Target or an mpmath callable, not {type(target).__name__}")


@functools.lru_cache(maxsize=64)
def _target_from_text(text: str) -> Target:
    """Built-in target or parsed expression (cached: one Target object per text)."""
    if text in BUILTIN:
        return BUILTIN[text]
    if text.isidentifier() and text != "x" and text not in FUNCTIONS:
        raise ValueError(f"unknown target {text!r}; built-in targets: {', '.join(BUILTIN)}; "
                         "or write an expression in x such as 'sin(x)/x'")
    try:
        t = Target.from_expression(text)
    except ExpressionError as e:
        raise ExpressionError(f"bad target {text[:80]!r}: {e}") from None
    return t


def round_exact_to_float32(v: mpmath.mpf) -> np.float32:
    """Correctly round (to nearest, ties to even) an mpmath value to float32, subnormals included.

    Exact whatever mpmath's current precision: the distances to the candidates are computed
    with enough bits for ``v``'s whole mantissa.
    """
    if mpmath.isnan(v):
        return np.float32(np.nan)
    if mpmath.isinf(v):
        return np.float32(np.inf if v > 0 else -np.inf)
    big = float(np.finfo(np.float32).max)
    with mpmath.workprec(max(mpmath.mp.prec, int(v.man).bit_length()) + 320):
        # from FLT_MAX + half an ulp on, the rounding is to infinity
        if abs(v) >= mpmath.mpf(big) + mpmath.ldexp(1, 103):
            return np.float32(np.inf if v > 0 else -np.inf)
        d = float(v)  # correctly rounded to float64; the float32 answer is this or a neighbour
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
    return np.float32(best[1])


def reference(target: "str | Target", x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact values of ``target`` at float32 points: (float64 values, correctly rounded float32).

    Built-in targets use the Rust float64 reference, expression targets a float64 numpy
    reference with an error bound; points where float64 cannot decide the float32 rounding are
    settled with mpmath. Plain mpmath-callable targets use mpmath at every point. An expression
    undefined at a point raises :class:`TargetUndefinedError`. Computed in IEEE mode whatever
    the process set (``_core.ieee_mode``: no flush-to-zero, round to nearest).
    """
    with _core.ieee_mode():
        return _reference(target, x)


def _reference(target: "str | Target", x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    t = get_target(target)
    x = np.ascontiguousarray(x, dtype=np.float32)
    if t.expression is not None:
        return _expression_reference(t, x)
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


#: A float64 value is trusted as the reference when its error bound is at most this fraction of
#: it: the ULP error measured against it is then off by at most 2^-12 float32 ulps. Points beyond
#: it go to mpmath (tens of microseconds each): cancellation such as exp(x) - 1 near 0 costs time;
#: expm1(x) does not.
TRUST_REL = 2.0**-36
#: Points per step of the float64 reference of an expression (bounds numpy's temporaries).
_REFERENCE_CHUNK = 1 << 20


def _expression_reference(t: Target, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(float64 values, correctly rounded float32) of an expression target at float32 points."""
    ref = np.empty(len(x), dtype=np.float64)
    rounded = np.empty(len(x), dtype=np.float32)
    for s in range(0, len(x), _REFERENCE_CHUNK):
        xs = x[s:s + _REFERENCE_CHUNK]
        v, e = t.expression.f64(xs)
        with np.errstate(all="ignore"):
            e = 2 * e + np.spacing(np.abs(v))
            lo = (v - e).astype(np.float32)
            hi = (v + e).astype(np.float32)
            decided = np.isfinite(v) & np.isfinite(e) & (lo == hi) & (e <= TRUST_REL * np.abs(v))
        ref[s:s + len(xs)] = v
        rounded[s:s + len(xs)] = lo
        for i in np.flatnonzero(~decided):
            w = _exact_real(t, xs[i])
            ref[s + i] = float(w)
            rounded[s + i] = round_exact_to_float32(w)
    return ref, rounded


def _exact_real(t: Target, xi: np.float32) -> mpmath.mpf:
    """The target's real value at ``xi`` at EXACT_PREC bits, or TargetUndefinedError."""
    reason = None
    with mpmath.workprec(EXACT_PREC):
        try:
            w = t.fn(mpmath.mpf(float(xi)))
        except ZeroDivisionError:
            reason = "division by zero"
        except (ValueError, ArithmeticError) as err:
            reason = str(err) or type(err).__name__
        else:
            if isinstance(w, mpmath.mpc):
                if w.imag != 0:
                    reason = "the value is not real"
                w = w.real
            if reason is None and mpmath.isnan(w):
                reason = "the value is NaN, e.g. inf - inf or 0 * inf"
    if reason is not None:
        raise TargetUndefinedError(
            f"target {t.name!r} is undefined at x={float(xi)!r} ({reason}); choose a domain without that point"
        )
    return w
