"""Structural variation: rewrites that reach program shapes single-instruction mutations rarely find.

Each operator takes ``(rng, program, ops, max_instrs)`` and returns a new valid, pruned
:class:`~pysearch.program.Program` of the same dtype and inputs, or ``None`` when it does not apply
(an op it needs is not in ``ops``, the result would exceed ``max_instrs``, the program is not a
polynomial, ...). Randomness comes only from the ``numpy.random.Generator``. Constants are set
so that the rewrite starts from the parent's function where that is possible; the caller (the
search) refits them.

- ``affine_input``: ``x -> a*x + b`` at every use of one input (starts at ``a = 1, b = 0``: the
  same function).
- ``repeated_squaring``: ``p(x) -> p(x / 2^k)^(2^k)`` (``k`` = 1..3; a new function to refit).
- ``rational``: ``p -> p / (1 + 0*x)`` (the same function; the denominator's constants refit).
- ``continued_fraction``: a value ``v`` becomes ``c + x / v`` (nesting builds continued fractions).
- For programs that are polynomials in one input (add, sub, mul, fma, neg over constants), the
  polynomial's coefficients are recovered exactly in float64 (:func:`poly_coeffs`) and re-emitted
  as ``horner``, ``estrin``, ``even_odd`` (``e(x^2) + x*o(x^2)``), ``paterson_stockmeyer``
  (baby steps ``x..x^m``, Horner in ``x^m``) or ``knuth4`` (Knuth's preconditioned degree-4
  scheme, TAOCP 4.6.4: 3 multiplications). These compute the same real function up to the
  rounding of the new coefficients to the dtype.
"""

from __future__ import annotations

import math
from typing import Callable, Optional, Sequence

import numpy as np
from numpy.polynomial import polynomial as P

from .program import OP_BY_NAME, Instr, Program, Ref, round_to_dtype

#: Largest polynomial degree :func:`poly_coeffs` recovers (repeated squaring multiplies degrees).
MAX_DEGREE = 24


class _Builder:
    """Appends instructions to a program under construction; values are ``Ref``s."""

    def __init__(self, dtype: str, ops: Sequence[str], instrs: list[Instr] | None = None) -> None:
        self.dtype = dtype
        self.ops = set(ops)
        self.instrs: list[Instr] = list(instrs or [])

    def c(self, v: float) -> Ref:
        return Ref.const(round_to_dtype(float(v), self.dtype))

    def emit(self, op: str, *args: Ref) -> Ref:
        self.instrs.append(Instr(op, tuple(args)))
        return Ref.val(len(self.instrs) - 1)

    def can_mul_add(self) -> bool:
        return "fma" in self.ops or {"mul", "add"} <= self.ops

    def mul_add(self, a: Ref, b: Ref, c: Ref) -> Ref:
        """a*b + c with fma when allowed, else mul then add."""
        if "fma" in self.ops:
            return self.emit("fma", a, b, c)
        return self.emit("add", self.emit("mul", a, b), c)

    def mul(self, a: Ref, b: Ref) -> Ref:
        if "mul" in self.ops:
            return self.emit("mul", a, b)
        return self.emit("fma", a, b, self.c(0.0))

    def program(self, inputs: tuple[str, ...], out: Ref) -> Program | None:
        if out.kind != "value":
            return None
        return Program(self.instrs, inputs, self.dtype, out.index).pruned()


def _fits(p: Program | None, ops: Sequence[str], max_instrs: int) -> Program | None:
    if p is None or len(p.instrs) > max_instrs:
        return None
    allowed = set(ops)
    if any(ins.op not in allowed for ins in p.instrs):
        return None
    return p


def _replace_uses(instrs: Sequence[Instr], old: Ref, new: Ref, start: int = 0) -> list[Instr]:
    """Instructions with every operand equal to ``old`` (an input or value) replaced by ``new``,
    from instruction ``start`` on."""
    out = list(instrs[:start])
    for ins in instrs[start:]:
        out.append(Instr(ins.op, tuple(new if (a.kind == old.kind and a.kind != "const" and a.index == old.index)
                                       else a for a in ins.args)))
    return out


def _shifted(instrs: Sequence[Instr], by: int) -> list[Instr]:
    """Instructions with every value reference moved ``by`` places (new instructions in front)."""
    return [Instr(ins.op, tuple(Ref.val(a.index + by) if a.kind == "value" else a for a in ins.args))
            for ins in instrs]


def _prepend_input_map(p: Program, i: int, head: Callable[[_Builder, Ref], Ref], ops: Sequence[str]) -> Program | None:
    """``p`` with input ``i`` replaced by ``head(builder, x_i)`` computed in front of it."""
    b = _Builder(p.dtype, ops)
    t = head(b, Ref.input(i))
    if t is None or t.kind != "value":
        return None
    n = len(b.instrs)
    body = _replace_uses(_shifted(p.instrs, n), Ref.input(i), t)
    return Program(b.instrs + body, p.inputs, p.dtype, p.output + n).pruned()


# ------------------------------------------------------------ generic rewrites
def affine_input(rng: np.random.Generator, p: Program, ops: Sequence[str], max_instrs: int) -> Program | None:
    """Insert ``t = a*x + b`` (``a = 1, b = 0``: the same function) and use ``t`` for ``x`` everywhere."""
    i = int(rng.integers(len(p.inputs)))
    b0 = _Builder(p.dtype, ops)
    if not b0.can_mul_add():
        return None
    q = _prepend_input_map(p, i, lambda b, x: b.mul_add(x, b.c(1.0), b.c(0.0)), ops)
    return _fits(q, ops, max_instrs)


def repeated_squaring(rng: np.random.Generator, p: Program, ops: Sequence[str], max_instrs: int) -> Program | None:
    """``p(x) -> p(x * 2^-k)^(2^k)`` for ``k`` in 1..3 (then refitted: the function changes)."""
    if "mul" not in ops:
        return None
    k = int(rng.integers(1, 4))
    if len(p.instrs) + 1 + k > max_instrs:
        k = max_instrs - len(p.instrs) - 1
        if k < 1:
            return None
    i = int(rng.integers(len(p.inputs)))
    q = _prepend_input_map(p, i, lambda b, x: b.emit("mul", x, b.c(2.0 ** -k)), ops)
    if q is None:
        return None
    b = _Builder(p.dtype, ops, q.instrs)
    y = Ref.val(q.output)
    for _ in range(k):
        y = b.emit("mul", y, y)
    return _fits(b.program(p.inputs, y), ops, max_instrs)


def rational(rng: np.random.Generator, p: Program, ops: Sequence[str], max_instrs: int) -> Program | None:
    """``p -> p / (0*x + 1)``: the same function, with a denominator for the fit to shape."""
    b = _Builder(p.dtype, ops, p.instrs)
    if "div" not in ops or not b.can_mul_add():
        return None
    x = Ref.input(int(rng.integers(len(p.inputs))))
    q = b.mul_add(x, b.c(0.0), b.c(1.0))
    out = b.emit("div", Ref.val(p.output), q)
    return _fits(b.program(p.inputs, out), ops, max_instrs)


def continued_fraction(rng: np.random.Generator, p: Program, ops: Sequence[str], max_instrs: int) -> Program | None:
    """A live value ``v`` becomes ``c + x / v`` at all its uses (applied again, it nests)."""
    if not {"div", "add"} <= set(ops):
        return None
    live = [k for k, lv in enumerate(p.live()) if lv]
    v = live[int(rng.integers(len(live)))]
    x = Ref.input(int(rng.integers(len(p.inputs))))
    c = float(rng.choice([0.0, 1.0, 0.5, 2.0]))
    head = list(p.instrs[:v + 1])
    b = _Builder(p.dtype, ops, head)
    w = b.emit("add", b.emit("div", x, Ref.val(v)), b.c(c))
    moved = [Instr(ins.op, tuple(Ref.val(a.index + 2) if a.kind == "value" and a.index > v else a
                                 for a in ins.args)) for ins in p.instrs[v + 1:]]
    tail = _replace_uses(moved, Ref.val(v), w)
    out = w.index if p.output == v else p.output + 2
    q = Program(b.instrs + tail, p.inputs, p.dtype, out).pruned()
    return _fits(q, ops, max_instrs)


# ----------------------------------------------------- polynomial rewrites
def poly_coeffs(p: Program, max_degree: int = MAX_DEGREE) -> Optional[np.ndarray]:
    """Coefficients ``c[0] + c[1] x + ...`` (float64) of ``p`` as a real polynomial in its single
    input, or ``None`` if it is not one (other ops, several inputs, degree above ``max_degree``).

    The walk is exact real arithmetic on the program's constants up to float64 rounding of the
    coefficient products and sums.
    """
    if len(p.inputs) != 1:
        return None
    vals: list[np.ndarray] = []
    live = p.live()

    def ref(a: Ref) -> np.ndarray:
        if a.kind == "const":
            return np.array([a.value])
        if a.kind == "input":
            return np.array([0.0, 1.0])
        return vals[a.index]

    for ins, lv in zip(p.instrs, live):
        if not lv:
            vals.append(np.zeros(1))
            continue
        args = [ref(a) for a in ins.args]
        if any(not np.all(np.isfinite(a)) for a in args):
            return None
        if ins.op == "add":
            r = P.polyadd(args[0], args[1])
        elif ins.op == "sub":
            r = P.polysub(args[0], args[1])
        elif ins.op == "mul":
            r = P.polymul(args[0], args[1])
        elif ins.op == "fma":
            r = P.polyadd(P.polymul(args[0], args[1]), args[2])
        elif ins.op == "neg":
            r = -args[0]
        else:
            return None
        r = np.atleast_1d(np.trim_zeros(np.asarray(r, dtype=np.float64), "b"))
        if r.size == 0:
            r = np.zeros(1)
        if r.size - 1 > max_degree:
            return None
        vals.append(r)
    out = vals[p.output]
    return out if np.all(np.isfinite(out)) else None


def _poly_eval(b: _Builder, x: Ref, c: Sequence[float]) -> Ref:
    """Horner evaluation of ``c[0] + c[1] x + ...`` (degree >= 0) in ``x``; returns a Ref."""
    if len(c) == 1:
        return b.c(c[0])
    acc = b.mul_add(x, b.c(c[-1]), b.c(c[-2])) if len(c) >= 2 else b.c(c[0])
    for coef in reversed(c[:-2]):
        acc = b.mul_add(acc, x, b.c(coef))
    return acc


def _classical(order: str, c: Sequence[float], dtype: str, ops: Sequence[str], inputs: tuple[str, ...]) -> Program | None:
    """Horner or Estrin from :func:`pysearch.baselines.programs.polynomial` (fma where allowed)."""
    from .baselines.programs import polynomial

    fma = "fma" in ops
    need = {"mul"} if order == "estrin" else set()
    if len(c) < 2 or not (fma or {"mul", "add"} <= set(ops)) or not need <= set(ops):
        return None
    try:
        q = polynomial(list(c), order, fma, 0.0, dtype)
    except ValueError:  # every non-constant coefficient rounds to 0 in dtype: a constant, no program
        return None
    if q.instrs[q.output].op not in ("fma", "add", "mul"):
        return None
    return Program(q.instrs, inputs, dtype, q.output).pruned()


def emit_horner(c: Sequence[float], dtype: str, ops: Sequence[str], inputs: tuple[str, ...] = ("x",)) -> Program | None:
    """Horner's scheme (the classical baselines' builder)."""
    return _classical("horner", c, dtype, ops, inputs)


def emit_estrin(c: Sequence[float], dtype: str, ops: Sequence[str], inputs: tuple[str, ...] = ("x",)) -> Program | None:
    """Estrin's scheme: pairs ``c[2i] + c[2i+1] x`` combined with ``x^2``, ``x^4``, ... (the
    classical baselines' builder; needs mul for the powers)."""
    return _classical("estrin", c, dtype, ops, inputs)


def emit_even_odd(c: Sequence[float], dtype: str, ops: Sequence[str], inputs: tuple[str, ...] = ("x",)) -> Program | None:
    """``e(x^2) + x * o(x^2)`` with ``e``, ``o`` in Horner form."""
    b = _Builder(dtype, ops)
    if not b.can_mul_add() or len(c) < 3:
        return None
    x = Ref.input(0)
    s = b.mul(x, x)
    c = list(c)
    even, odd = c[0::2], c[1::2]
    e = _poly_eval(b, s, even)
    o = _poly_eval(b, s, odd)
    if o.kind == "const" and e.kind == "const":
        return None
    return b.program(inputs, b.mul_add(x, o, e))


def emit_paterson_stockmeyer(c: Sequence[float], dtype: str, ops: Sequence[str],
                             inputs: tuple[str, ...] = ("x",)) -> Program | None:
    """Baby steps ``x, x^2, .., x^m`` (``m ~ sqrt(degree + 1)``), blocks of ``m`` coefficients as
    fma chains on those powers, then Horner in ``x^m`` over the blocks."""
    b = _Builder(dtype, ops)
    d = len(c) - 1
    if not b.can_mul_add() or d < 3:
        return None
    m = max(2, math.isqrt(d + 1))
    x = Ref.input(0)
    pw = [None, x]
    for _ in range(2, m + 1):
        pw.append(b.mul(pw[-1], x))
    blocks = []
    c = list(c)
    for s in range(0, d + 1, m):
        blk = c[s:s + m]
        acc = b.c(blk[0])
        for j in range(1, len(blk)):
            acc = b.mul_add(pw[j], b.c(blk[j]), acc)
        blocks.append(acc)
    acc = blocks[-1]
    for blk in reversed(blocks[:-1]):
        acc = b.mul_add(acc, pw[m], blk)
    return b.program(inputs, acc)


def knuth4_params(c: Sequence[float]) -> tuple[float, float, float, float, float] | None:
    """Knuth's adapted coefficients for ``c[0] + ... + c[4] x^4`` (``c[4] != 0``):
    ``y = (x + a0) x + a1``, ``p = ((y + x + a2) y + a3) a4`` (derived by matching coefficients)."""
    if len(c) != 5 or c[4] == 0:
        return None
    u4 = c[4]
    b3, b2, b1, b0 = c[3] / u4, c[2] / u4, c[1] / u4, c[0] / u4
    a0 = (b3 - 1.0) / 2.0
    a1 = b1 - a0 * (b2 - a0 * a0 - a0)
    a2 = b2 - a0 * a0 - a0 - 2.0 * a1
    a3 = b0 - a1 * (a1 + a2)
    return a0, a1, a2, a3, u4


def emit_knuth4(c: Sequence[float], dtype: str, ops: Sequence[str], inputs: tuple[str, ...] = ("x",)) -> Program | None:
    b = _Builder(dtype, ops)
    k = knuth4_params(c)
    if k is None or "add" not in b.ops or not b.can_mul_add():
        return None
    a0, a1, a2, a3, a4 = k
    x = Ref.input(0)
    y = b.mul_add(b.emit("add", x, b.c(a0)), x, b.c(a1))
    t = b.emit("add", b.emit("add", y, x), b.c(a2))
    r = b.mul_add(t, y, b.c(a3))
    return b.program(inputs, b.mul(r, b.c(a4)))


#: Polynomial forms by name (coefficients, dtype, ops, inputs) -> Program or None.
POLY_FORMS: dict[str, Callable[..., Program | None]] = {
    "horner": emit_horner,
    "estrin": emit_estrin,
    "even_odd": emit_even_odd,
    "paterson_stockmeyer": emit_paterson_stockmeyer,
    "knuth4": emit_knuth4,
}


def rewrite_polynomial(p: Program, form: str, ops: Sequence[str]) -> Program | None:
    """``p`` re-emitted in polynomial ``form`` (a :data:`POLY_FORMS` key), or None if ``p`` is not a
    polynomial in one input or the form does not apply."""
    c = poly_coeffs(p)
    if c is None:
        return None
    return POLY_FORMS[form](list(c), p.dtype, ops, p.inputs)


def _poly_op(form: str):
    def op(rng: np.random.Generator, p: Program, ops: Sequence[str], max_instrs: int) -> Program | None:
        return _fits(rewrite_polynomial(p, form, ops), ops, max_instrs)
    op.__name__ = f"regroup_{form}"
    op.__doc__ = f"Re-emit a polynomial program in the {form} form (same real function)."
    return op


#: The structural operators :func:`pysearch.variation.mutate` draws from, by mutation kind.
STRUCTURAL_OPERATORS: dict[str, Callable[..., Program | None]] = {
    "affine_input": affine_input,
    "repeated_squaring": repeated_squaring,
    "rational": rational,
    "continued_fraction": continued_fraction,
    "regroup_estrin": _poly_op("estrin"),
    "regroup_even_odd": _poly_op("even_odd"),
    "regroup_paterson_stockmeyer": _poly_op("paterson_stockmeyer"),
    "regroup_knuth4": _poly_op("knuth4"),
    "regroup_horner": _poly_op("horner"),
}


def apply(kind: str, rng: np.random.Generator, p: Program, ops: Sequence[str], max_instrs: int) -> Program | None:
    """Apply structural operator ``kind`` (a :data:`STRUCTURAL_OPERATORS` key) to ``p``."""
    try:
        f = STRUCTURAL_OPERATORS[kind]
    except KeyError:
        raise ValueError(f"unknown structural operator {kind!r}; known: {', '.join(STRUCTURAL_OPERATORS)}") from None
    for name in ops:
        if name not in OP_BY_NAME:
            raise ValueError(f"unknown op {name!r}")
    return f(rng, p.pruned(), ops, max_instrs)
