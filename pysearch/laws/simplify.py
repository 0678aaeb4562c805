"""Reported laws in algebraic form: a law program as a sympy expression, simplified and printed.

A discovered law is a float64 :class:`~pysearch.program.Program`; shown instruction by
instruction it can read ``(log(N) - 138858) + 138856``. :func:`to_sympy` turns it into a sympy
expression over symbols named after the inputs (positive by default: scaling-law inputs are
sizes and counts, which lets ``log(a*N)`` and ``(a*N)^b`` split), and :func:`simplify_law` gives
the reported form:

- constant folding and cancellation: sympy's ``Add``/``Mul`` merge numbers as the expression is
  built, so ``(log(N) - 138858) + 138856`` becomes ``log(N) - 2``;
- powers and logs of products split and merged (``expand_power_base``, ``powsimp``,
  ``expand_log``), then ``sympy.simplify``; of the forms tried, the one with the fewest
  operations (``count_ops``) is kept, and only if it agrees with the program's own value on the
  check points (relative 1e-9), so the reported law never drifts from the fitted one;
- canonical form: sympy's term order, so equal laws print alike.

:func:`law_text` prints it sympy-style with constants rounded for reading; :func:`sympy_text`
with every digit (what ``fit.json`` stores); :func:`from_text` reads that text back as a sympy
expression (with the input names as symbols, so ``N`` or ``E`` are not sympy's functions).
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
import sympy

from pysearch.program import Program

_FUNCS = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "fma": lambda a, b, c: a * b + c,
    "neg": lambda a: -a,
    "abs": sympy.Abs,
    "sqrt": sympy.sqrt,
    "exp": sympy.exp,
    "log": sympy.log,
    "pow": lambda a, b: a**b,
    "min": sympy.Min,
    "max": sympy.Max,
    "square": lambda a: a**2,
}


#: Expressions with more operations than this skip ``sympy.simplify`` (the cheap rewrites still run).
SIMPLIFY_MAX_OPS = 40


class SimplifyError(ValueError):
    """A program that cannot be written as a sympy expression (an op without an algebraic form)."""


def symbols(names: Sequence[str], positive: bool = True) -> list[sympy.Symbol]:
    """One sympy symbol per input name (``positive=True``: assumed > 0)."""
    return [sympy.Symbol(n, positive=True) if positive else sympy.Symbol(n, real=True) for n in names]


def to_sympy(program: Program, inputs: Sequence[str] | None = None, positive: bool = True) -> sympy.Expr:
    """The program's output as a sympy expression over its inputs (or ``inputs``), constants as
    full-precision floats."""
    names = tuple(inputs) if inputs is not None else program.inputs
    if len(names) != len(program.inputs):
        raise ValueError(f"{len(names)} input names for a program with {len(program.inputs)} inputs")
    syms = symbols(names, positive)
    vals: dict[int, sympy.Expr] = {}
    live = program.live()
    for i, ins in enumerate(program.instrs):
        if not live[i]:
            continue
        if ins.op not in _FUNCS:
            raise SimplifyError(f"op {ins.op!r} has no algebraic form for sympy; the law is shown as a program instead")
        args = []
        for a in ins.args:
            if a.kind == "input":
                args.append(syms[a.index])
            elif a.kind == "const":
                args.append(sympy.Float(repr(float(a.value)), 17))
            else:
                args.append(vals[a.index])
        vals[i] = _FUNCS[ins.op](*args)
    return sympy.sympify(vals[program.output])


def _value(expr: sympy.Expr, syms: Sequence[sympy.Symbol], X: np.ndarray) -> np.ndarray:
    f = sympy.lambdify(list(syms), expr, modules="numpy")
    with np.errstate(all="ignore"):
        return np.broadcast_to(np.asarray(f(*X), dtype=np.float64), X.shape[1:]).copy()


def _agrees(a: np.ndarray, b: np.ndarray, rtol: float = 1e-9) -> bool:
    both = np.isfinite(a) & np.isfinite(b)
    if not np.array_equal(both, np.isfinite(a)):  # the new form must be finite wherever the old one is
        return False
    scale = np.maximum(np.abs(a[both]), 1e-300)
    return bool(np.all(np.abs(a[both] - b[both]) <= rtol * scale + 1e-12))


def simplify_law(expr: sympy.Expr, check_points: np.ndarray | None = None, syms: Sequence[sympy.Symbol] | None = None) -> sympy.Expr:
    """The simplest of a few equivalent forms of ``expr`` (see the module doc).

    ``check_points``: shape ``(k, n)`` values of the ``syms`` (default: the expression's free
    symbols in name order, at 1, 2, ..., 7 for every input) on which a simplified form must agree
    with ``expr``.
    """
    syms = list(syms) if syms is not None else sorted(expr.free_symbols, key=lambda s: s.name)
    if check_points is None:
        check_points = np.tile(np.arange(1.0, 8.0), (len(syms), 1)) * np.linspace(1.0, 1.9, len(syms) or 1)[:, None]
    check_points = np.atleast_2d(np.asarray(check_points, dtype=np.float64))
    ref = _value(expr, syms, check_points) if syms else None
    tries = [expr]
    steps = [lambda e: sympy.powsimp(sympy.expand_power_base(e)), lambda e: sympy.expand_log(sympy.expand_power_base(e))]
    if sympy.count_ops(expr) <= SIMPLIFY_MAX_OPS:  # sympy.simplify can take long on large expressions
        steps.append(sympy.simplify)
    for step in steps:
        try:
            tries.append(sympy.sympify(step(expr)))
        except (TypeError, ValueError, ZeroDivisionError, RecursionError):  # an exotic form sympy declines
            continue
    best = expr
    for cand in tries[1:]:
        if sympy.count_ops(cand) >= sympy.count_ops(best):
            continue
        if ref is not None and not _agrees(ref, _value(cand, syms, check_points)):
            continue
        best = cand
    return best


def rounded(expr: sympy.Expr, digits: int = 6) -> sympy.Expr:
    """``expr`` with every float rounded to ``digits`` significant digits (for display)."""
    return expr.xreplace({f: sympy.Float(f"{float(f):.{digits}g}", digits) for f in expr.atoms(sympy.Float)})


def law_text(expr: sympy.Expr, digits: int = 6) -> str:
    """Sympy-style text of the law, constants to ``digits`` significant digits."""
    return str(rounded(expr, digits))


def sympy_text(expr: sympy.Expr) -> str:
    """Text sympy reads back exactly (:func:`from_text`): every float with 17 digits."""
    return str(expr.xreplace({f: sympy.Float(repr(float(f)), 17) for f in expr.atoms(sympy.Float) if math.isfinite(float(f))}))


def from_text(text: str, inputs: Sequence[str], positive: bool = True) -> sympy.Expr:
    """Parse :func:`sympy_text` output back, with the ``inputs`` as symbols (not sympy names)."""
    local: Mapping[str, sympy.Symbol] = dict(zip(inputs, symbols(inputs, positive)))
    return sympy.parse_expr(text, local_dict=dict(local))


def simplified(
    program: Program, inputs: Sequence[str] | None = None, X: np.ndarray | None = None, positive: bool | None = None
) -> sympy.Expr:
    """The program as a simplified sympy expression; ``X`` (shape ``(k, n)``) are check points
    (e.g. the data), and with ``positive=None`` the inputs are taken positive when every value
    of ``X`` is (always, without ``X``)."""
    if positive is None:
        positive = X is None or bool(np.all(np.asarray(X) > 0))
    names = tuple(inputs) if inputs is not None else program.inputs
    expr = to_sympy(program, names, positive)
    return simplify_law(expr, X, symbols(names, positive))
