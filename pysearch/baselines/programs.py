"""Evaluation orders: polynomials and rationals as :class:`pysearch.program.Program` objects.

The programs are what a C programmer would write: Horner (``c_d`` then ``acc = acc * t + c_j``)
or Estrin (pairs ``c_2i + c_2i+1 * t`` combined with ``t^2``, ``t^4``, ...), each step one fma
or a mul then an add. Zero coefficients cost nothing (``acc * t`` alone, no ``+ 0``), a
coefficient of 1 needs no multiply, and ``t = x - shift`` is one ``sub`` when the shift is not 0.
A rational is two polynomials and one ``div``.
"""

from __future__ import annotations

from typing import Sequence

from pysearch.program import Instr, Program, Ref, round_to_dtype

ORDERS = ("horner", "estrin")


class _Builder:
    """Appends instructions; operands are ``Ref`` values (inputs, earlier values, constants)."""

    def __init__(self, dtype: str, fma: bool) -> None:
        self.dtype = dtype
        self.fma = fma
        self.instrs: list[Instr] = []

    def emit(self, op: str, *args: Ref) -> Ref:
        self.instrs.append(Instr(op, tuple(args)))
        return Ref.val(len(self.instrs) - 1)

    def const(self, v: float) -> Ref:
        return Ref.const(round_to_dtype(float(v), self.dtype))

    def mul_add(self, a: Ref, b: Ref, c: Ref) -> Ref:
        """a * b + c, skipping multiplications by 1 and additions of 0."""
        for one, other in ((a, b), (b, a)):
            if _is(one, 1.0):
                return other if _is(c, 0.0) else self.emit("add", other, c)
        if _is(a, 0.0) or _is(b, 0.0):
            return c
        if _is(c, 0.0):
            return self.emit("mul", a, b)
        if self.fma:
            return self.emit("fma", a, b, c)
        return self.emit("add", self.emit("mul", a, b), c)

    def program(self, result: Ref, inputs: tuple[str, ...]) -> Program:
        if result.kind != "value":
            raise ValueError("the approximation is a constant: no instruction depends on the input")
        return Program(self.instrs, inputs, self.dtype, result.index)


def _is(r: Ref, v: float) -> bool:
    return r.kind == "const" and r.value == v


def _trim(coeffs: Sequence[float], dtype: str) -> list[float]:
    cs = [round_to_dtype(float(c), dtype) for c in coeffs]
    if not cs:
        raise ValueError("a polynomial needs at least one coefficient")
    while len(cs) > 1 and cs[-1] == 0.0:
        cs.pop()
    return cs


def _horner(b: _Builder, cs: list[float], t: Ref) -> Ref:
    acc = b.const(cs[-1])
    for c in reversed(cs[:-1]):
        acc = b.mul_add(acc, t, b.const(c))
    return acc


def _estrin(b: _Builder, cs: list[float], t: Ref) -> Ref:
    level = [b.const(c) for c in cs]
    power = t
    while len(level) > 1:
        nxt = [b.mul_add(level[i + 1], power, level[i]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
        if len(level) > 1:
            power = b.emit("mul", power, power)
    return level[0]


def _poly(b: _Builder, cs: list[float], t: Ref, order: str) -> Ref:
    if order == "horner":
        return _horner(b, cs, t)
    if order == "estrin":
        return _estrin(b, cs, t)
    raise ValueError(f"order must be one of {ORDERS}, got {order!r}")


def _start(dtype: str, fma: bool, shift: float) -> tuple[_Builder, Ref]:
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    b = _Builder(dtype, fma)
    t = Ref.input(0)
    if shift:
        t = b.emit("sub", t, b.const(shift))
    return b, t


def polynomial(
    coeffs: Sequence[float],
    order: str = "horner",
    fma: bool = True,
    shift: float = 0.0,
    dtype: str = "float32",
) -> Program:
    """``sum coeffs[j] * t**j`` with ``t = x - shift``, coefficients rounded to ``dtype``."""
    return rational(coeffs, (1.0,), order, fma, shift, dtype)


def horner(coeffs: Sequence[float], fma: bool = True, shift: float = 0.0, dtype: str = "float32") -> Program:
    """Horner evaluation of ``sum coeffs[j] * (x - shift)**j``."""
    return polynomial(coeffs, "horner", fma, shift, dtype)


def estrin(coeffs: Sequence[float], fma: bool = True, shift: float = 0.0, dtype: str = "float32") -> Program:
    """Estrin evaluation of ``sum coeffs[j] * (x - shift)**j``."""
    return polynomial(coeffs, "estrin", fma, shift, dtype)


def rational(
    num: Sequence[float],
    den: Sequence[float],
    order: str = "horner",
    fma: bool = True,
    shift: float = 0.0,
    dtype: str = "float32",
) -> Program:
    """``num(t) / den(t)``, ``t = x - shift``: both polynomials in ``order``, then one ``div``."""
    b, t = _start(dtype, fma, shift)
    p = _poly(b, _trim(num, dtype), t, order)
    dc = _trim(den, dtype)
    if len(dc) == 1 and dc[0] == 1.0:
        return b.program(p, ("x",))
    q = _poly(b, dc, t, order)
    return b.program(b.emit("div", p, q), ("x",))


def to_program(approx: object, order: str = "horner", fma: bool = True, dtype: str = "float32") -> Program:
    """The program for an :class:`~pysearch.baselines.approximations.Approximation`."""
    num = [float(c) for c in approx.num]
    if approx.den is None:
        return polynomial(num, order, fma, approx.shift, dtype)
    return rational(num, [float(c) for c in approx.den], order, fma, approx.shift, dtype)
