"""A program as a function of its constants: degree in them, and value with derivatives (forward mode).

Values come from the op registry (:mod:`pysearch.ops`): the ``real`` hook (mpmath) for the exact
solves and the ``fit`` hook (float64 numpy) for Jacobians at many points. The derivative rules
below are this module's own, one per op, written once for both representations (a :class:`_Grads`
says how gradients add and scale in each). The ops are the registry's ``dd`` ops (those
double-double evaluation also takes: the error at many points is measured that way); a program
with any other op is refused with a ValueError naming the ops.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import mpmath
import numpy as np

from ...ops import OP_BY_NAME
from ...program import Program
from ...double_double import DD_OPS

#: Operations the evaluators handle (the registry's ``dd`` ops; a program with any other op comes back unchanged).
SUPPORTED_OPS = DD_OPS

_NONPOLY = math.inf


# ------------------------------------------------------------------------- gradients
class _Grads:
    """How gradients in the constants combine; ``None`` is a gradient that does not depend on them."""

    def add(self, g1, g2, s=1):
        raise NotImplementedError

    def scale(self, g, k):
        raise NotImplementedError


class _MpGrads(_Grads):
    """Gradients as lists of mpmath numbers (one point)."""

    def add(self, g1, g2, s=1):
        if g1 is None:
            return None if g2 is None else ([-v for v in g2] if s < 0 else g2)
        if g2 is None:
            return g1
        return [u + s * v for u, v in zip(g1, g2)]

    def scale(self, g, k):
        return None if g is None else [k * v for v in g]


class _NpGrads(_Grads):
    """Gradients as float64 arrays of shape (m, n) (m points, values of shape (m,))."""

    def add(self, g1, g2, s=1):
        if g1 is None:
            return None if g2 is None else s * g2
        return g1 if g2 is None else g1 + s * g2

    def scale(self, g, k):
        if g is None:
            return None
        return g * (k[:, None] if np.ndim(k) else k)


_MP, _NP = _MpGrads(), _NpGrads()


# ------------------------------------------------------------------------- the rules, one per op
@dataclass(frozen=True)
class _Rule:
    """``grad(G, a, v)``: the gradient of an op's value ``v`` from its operands ``a`` (value,
    gradient) pairs, in the representation ``G``. ``degree(d)``: the polynomial degree in the
    constants from the operands' degrees (``None``: polynomial only when no operand depends on
    them)."""

    grad: Callable
    degree: Callable[[list[float]], float] | None = None


def _grad_mul(G: _Grads, a, v):
    (u, gu), (w, gw) = a[0], a[1]
    return G.add(G.scale(gu, w), G.scale(gw, u))


def _grad_div(G: _Grads, a, v):
    (u, gu), (w, gw) = a
    inv = 1 / w  # always formed: at w == 0 mpmath raises, and the point is undefined
    return G.scale(G.add(gu, G.scale(gw, v), -1), inv)


def _grad_sqrt(G: _Grads, a, v):
    k = 0.5 / v  # always formed, as for div
    return G.scale(a[0][1], k)


_RULES: dict[str, _Rule] = {
    "add": _Rule(lambda G, a, v: G.add(a[0][1], a[1][1]), lambda d: max(d)),
    "sub": _Rule(lambda G, a, v: G.add(a[0][1], a[1][1], -1), lambda d: max(d)),
    "mul": _Rule(_grad_mul, lambda d: d[0] + d[1]),
    "fma": _Rule(lambda G, a, v: G.add(_grad_mul(G, a, v), a[2][1]), lambda d: max(d[0] + d[1], d[2])),
    "div": _Rule(_grad_div, lambda d: d[0] if d[1] == 0 else _NONPOLY),
    "neg": _Rule(lambda G, a, v: G.scale(a[0][1], -1), lambda d: d[0]),
    "sqrt": _Rule(_grad_sqrt),
}
if set(_RULES) != set(SUPPORTED_OPS):  # the registry's ``dd`` flag and this table must name the same ops
    raise ImportError(f"derivative rules {sorted(_RULES)} differ from the registry's dd ops {sorted(SUPPORTED_OPS)}")


def constant_degree(program: Program) -> float:
    """Polynomial degree of the output in the constants (``inf`` if not a polynomial in them).

    Ops without a degree rule (sqrt, and ops outside :data:`SUPPORTED_OPS`) are polynomial
    (degree 0) only when none of their operands depends on a constant.
    """
    program = program.pruned()
    deg: list[float] = []
    for ins in program.instrs:
        d = [1.0 if a.kind == "const" else 0.0 if a.kind == "input" else deg[a.index] for a in ins.args]
        rule = _RULES.get(ins.op)
        if rule is not None and rule.degree is not None:
            deg.append(rule.degree(d))
        else:
            deg.append(0.0 if max(d) == 0 else _NONPOLY)
    return deg[program.output]


def affine_in_constants(program: Program) -> bool:
    """True when the program's output is an affine function of its constants."""
    return constant_degree(program) <= 1


# ------------------------------------------------------------------------- evaluators
class MpModel:
    """A one-input program with free constants: mpmath value and gradient in the constants at a
    point, and a float64 Jacobian at many points."""

    def __init__(self, program: Program) -> None:
        program = program.pruned()
        bad = sorted({ins.op for ins in program.instrs} - set(SUPPORTED_OPS))
        if bad:
            raise ValueError(f"polish supports {', '.join(SUPPORTED_OPS)}; the program uses {', '.join(bad)}")
        if len(program.inputs) != 1:
            raise ValueError(f"polish takes one-input programs, got inputs {program.inputs}")
        self.program = program
        self.affine = affine_in_constants(program)
        self.code = program.numbered_operands()
        self.steps = [(OP_BY_NAME[op], _RULES[op].grad, args) for op, args in self.code]
        self.start = [mpmath.mpf(v) for v in program.constants()]
        self.n = len(self.start)

    def value_grad(self, x: mpmath.mpf, c: Sequence[mpmath.mpf]) -> tuple[mpmath.mpf, list[mpmath.mpf]]:
        """Output and its gradient in the constants at ``x`` (nan value where undefined)."""
        n = self.n
        zero = mpmath.mpf(0)
        dtype = self.program.dtype
        vals: list[tuple[mpmath.mpf, list | None]] = []
        try:
            for info, grad, args in self.steps:
                a = []
                for kind, i in args:
                    if kind == "const":
                        g = [zero] * n
                        g[i] = mpmath.mpf(1)
                        a.append((c[i], g))
                    else:
                        a.append((x, None) if kind == "input" else vals[i])
                v = info.real(*(u for u, _ in a), dtype)
                vals.append((v, grad(_MP, a, v)))
        except ZeroDivisionError:
            return mpmath.nan, [mpmath.nan] * n
        v, g = vals[self.program.output]
        return v, (g if g is not None else [zero] * n)

    def jacobian(self, xs: np.ndarray, c: Sequence) -> np.ndarray:
        """d output / d constants at the points ``xs`` in float64, shape (len(xs), n): for
        linearised steps, where float64 derivatives are plenty."""
        xs = np.asarray(xs, dtype=np.float64)
        cf = [float(v) for v in c]
        m = len(xs)
        vals: list = []
        with np.errstate(all="ignore"):
            for info, grad, args in self.steps:
                a = []
                for kind, i in args:
                    if kind == "const":
                        g = np.zeros((m, self.n))
                        g[:, i] = 1.0
                        a.append((np.full(m, cf[i]), g))
                    else:
                        a.append((xs, None) if kind == "input" else vals[i])
                v = info.fit(*(u for u, _ in a))
                vals.append((v, grad(_NP, a, v)))
        g = vals[self.program.output][1]
        return np.zeros((m, self.n)) if g is None else g
