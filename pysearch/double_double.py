"""Programs evaluated in double-double arithmetic (about 106 significant bits) with numpy.

A value is a pair of float64 arrays (hi, lo) with ``hi + lo`` the represented number; the
operations are the classical error-free transformations (Knuth's two-sum, Dekker's split
product). Constants and inputs are exact float64 values, so the result approximates the
program's real-number value (every operation exact, as :func:`pysearch.interpreter.run_mpmath`
computes it) to about 1e-31 relative per operation: many points at numpy speed, where mpmath
would take milliseconds a point. Used to rank programs by real-number error below float64's
own rounding (about 1e-16).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .ops import ops_where
from .program import Program

#: Operations evaluated here: those the op registry (:mod:`pysearch.ops`) marks ``dd``.
DD_OPS = ops_where("dd")

_SPLIT = 134217729.0  # 2^27 + 1


def _two_sum(a, b):
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def _quick_two_sum(a, b):
    s = a + b
    return s, b - (s - a)


def _split(a):
    t = _SPLIT * a
    hi = t - (t - a)
    return hi, a - hi


def _two_prod(a, b):
    p = a * b
    ah, al = _split(a)
    bh, bl = _split(b)
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def dd_add(a, b):
    """(hi, lo) sum, accurate to about 2^-105 relative."""
    s1, s2 = _two_sum(a[0], b[0])
    t1, t2 = _two_sum(a[1], b[1])
    s1, s2 = _quick_two_sum(s1, s2 + t1)
    return _quick_two_sum(s1, s2 + t2)


def dd_neg(a):
    return -a[0], -a[1]


def dd_mul(a, b):
    p, e = _two_prod(a[0], b[0])
    return _quick_two_sum(p, e + (a[0] * b[1] + a[1] * b[0]))


def dd_div(a, b):
    q1 = a[0] / b[0]
    r = dd_add(a, dd_neg(dd_mul(b, (q1, np.zeros_like(q1)))))
    q2 = r[0] / b[0]
    r = dd_add(r, dd_neg(dd_mul(b, (q2, np.zeros_like(q2)))))
    q3 = r[0] / b[0]
    q1, q2 = _quick_two_sum(q1, q2)
    return dd_add((q1, q2), (q3, np.zeros_like(q3)))


def dd_sqrt(a):
    s = np.sqrt(a[0])
    r = dd_add(a, dd_neg(dd_mul((s, np.zeros_like(s)), (s, np.zeros_like(s)))))
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = np.where(s > 0, r[0] / (2 * s), 0.0)
    return _quick_two_sum(s, corr)


#: The double-double form of each op in :data:`DD_OPS` (operands are (hi, lo) pairs).
_DD_EVAL = {
    "add": dd_add,
    "sub": lambda a, b: dd_add(a, dd_neg(b)),
    "mul": dd_mul,
    "fma": lambda a, b, c: dd_add(dd_mul(a, b), c),
    "div": dd_div,
    "neg": dd_neg,
    "sqrt": dd_sqrt,
}
if set(_DD_EVAL) != set(DD_OPS):  # the registry's ``dd`` flag and this table must name the same ops
    raise ImportError(f"double-double table {sorted(_DD_EVAL)} differs from the registry's dd ops {sorted(DD_OPS)}")


def supports(program: Program) -> bool:
    """Whether every live operation of the (one-input) program is one of :data:`DD_OPS`."""
    p = program.pruned()
    return len(p.inputs) == 1 and all(ins.op in DD_OPS for ins in p.instrs)


class DDProgram:
    """A one-input program compiled for double-double evaluation with replaceable constants.

    ``DDProgram(p)(x)`` uses the program's own constants; ``(x, hi, lo)`` takes constants as
    double-double pairs (``hi[k] + lo[k]``, operand order as ``Program.constants()``), so
    constants known beyond float64 (from a high-precision fit) keep about 32 digits.
    """

    def __init__(self, program: Program) -> None:
        if not supports(program):
            raise ValueError(f"double-double evaluation takes one-input programs using only {', '.join(DD_OPS)}")
        p = program.pruned()
        self.program = p
        self.code = p.numbered_operands()
        self.hi = np.array(p.constants(), dtype=np.float64)
        self.n = len(self.hi)
        self.lo = np.zeros(self.n)

    def __call__(self, x, hi: Sequence[float] | None = None, lo: Sequence[float] | None = None):
        """(hi, lo) arrays of the real-number value at the float64 points ``x`` (inf/nan where an
        operation is undefined)."""
        x = np.ascontiguousarray(x, dtype=np.float64)
        hi = self.hi if hi is None else np.asarray(hi, dtype=np.float64)
        lo = (self.lo if hi is self.hi else np.zeros(self.n)) if lo is None else np.asarray(lo, dtype=np.float64)
        zero = np.zeros_like(x)
        vals: list[tuple[np.ndarray, np.ndarray]] = []
        with np.errstate(all="ignore"):
            for op, args in self.code:
                a = [(x, zero) if kind == "input" else vals[i] if kind == "value"
                     else (np.full_like(x, hi[i]), np.full_like(x, lo[i])) for kind, i in args]
                vals.append(_DD_EVAL[op](*a))
        return vals[self.program.output]


def dd_values(program: Program, x: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """The program's real-number value at float64 points ``x`` as (hi, lo) float64 arrays.

    ``ValueError`` for programs with several inputs or ops outside :data:`DD_OPS`. Where an
    operation is undefined (division by zero, square root of a negative) the result is inf/nan.
    """
    return DDProgram(program)(x)


def dd_relative_errors(program: Program, x: np.ndarray, f_hi: np.ndarray, f_lo: np.ndarray) -> np.ndarray:
    """|program(x) - f| / |f| in float64, with the program and f = f_hi + f_lo in double-double."""
    hi, lo = dd_values(program, x)
    with np.errstate(all="ignore"):
        d = dd_add((hi, lo), (-f_hi, -f_lo))
        r = np.abs(d[0] / f_hi)
    return np.where(np.isfinite(r), r, np.inf)
