"""The op registry: every operation a program may use, and what each part of pysearch needs of it.

One :class:`OpInfo` per op, in opcode order (the index is the opcode the Rust core uses;
``pysearch._core.op_table()`` lists the core's own table and ``tests/test_ops_registry.py``
checks that the two agree). An entry holds

- the metadata: name, arity, the dtypes it runs in, default cost and latency;
- the semantics hooks of the Python side: ``exact`` (numpy, bit-exact in the program's dtype:
  the reference interpreter :func:`pysearch.interpreter.run`), ``real`` (mpmath over the real
  numbers: :func:`pysearch.interpreter.run_mpmath`) and ``fit`` (unrounded float64 numpy, used
  when fitting constants: ``pysearch/fit_kernel.py``, for ``search/constants.py`` and, where
  ``law_fit``, ``laws/constant_fit.py``);
- how each exporter spells it (:class:`Emit`: an expression template per dtype and the helper
  snippets of ``pysearch/export/{python,c,rust}.py`` it needs), for Python/numpy, C and Rust;
- which partial evaluators take it: ``dd`` (double-double evaluation, ``double_double.py``,
  and the program minimax polish built on it, ``baselines/minimax_program/``), ``law_fit`` (law constant fitting) and
  ``exact_before_rounding`` (``baselines/fpminimax.py``: the float64 value of the op on float32
  operands is its exact result to ~2^-29 ULP, so the last rounding is where the error is).

Adding an op = one entry here + its Rust semantics (``rust/program.rs``, ``rust/float.rs``,
``rust/eval.rs``; ``rust/jit.rs`` for the JIT fast path) + its row in ``docs/program-format.md``
(+ a helper snippet in ``export/<language>.py`` if an exporter needs one). Semantics are specified in
``docs/program-format.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import mpmath
import numpy as np

DTYPES = ("float32", "float64")

#: Clamp bound K of ``ldexp`` exponents, per dtype.
LDEXP_BOUND = {"float32": 300, "float64": 2200}


@dataclass(frozen=True)
class Emit:
    """How one exporter spells an op: an expression per dtype (``{0}``, ``{1}``, ``{2}`` are the
    operands) and the names of the helper snippets that expression calls, per dtype."""

    f32: str
    f64: str
    helpers32: tuple[str, ...] = ()
    helpers64: tuple[str, ...] = ()

    def expr(self, dtype: str, args: Sequence[str]) -> str:
        return (self.f32 if dtype == "float32" else self.f64).format(*args)

    def helpers(self, dtype: str) -> tuple[str, ...]:
        return self.helpers32 if dtype == "float32" else self.helpers64


def _same(template: str, *helpers: str) -> Emit:
    """The same expression and helpers in both dtypes."""
    return Emit(template, template, helpers, helpers)


@dataclass(frozen=True)
class OpInfo:
    """Everything pysearch knows about one operation (see the module docstring)."""

    name: str
    arity: int
    cost: float
    latency: float
    dtypes: tuple[str, ...] = DTYPES
    exact: Callable[..., np.ndarray] | None = field(default=None, repr=False, compare=False)
    real: Callable[..., mpmath.mpf] | None = field(default=None, repr=False, compare=False)
    fit: Callable[..., np.ndarray] | None = field(default=None, repr=False, compare=False)
    python: Emit | None = field(default=None, repr=False, compare=False)
    c: Emit | None = field(default=None, repr=False, compare=False)
    rust: Emit | None = field(default=None, repr=False, compare=False)
    dd: bool = False
    law_fit: bool = False
    exact_before_rounding: bool = False

    @property
    def float64_only(self) -> bool:
        """Reserved to float64 programs (scaling laws)."""
        return "float32" not in self.dtypes

    def emit(self, lang: str) -> Emit:
        """The exporter template for ``lang`` (``'python'``, ``'c'`` or ``'rust'``)."""
        e = {"python": self.python, "c": self.c, "rust": self.rust}[lang]
        if e is None:
            raise ValueError(f"op {self.name!r} has no {lang} export")
        return e


# ============================================================================ exact (numpy)
def _uint(dtype: np.dtype) -> type:
    return np.uint32 if dtype == np.float32 else np.uint64


def _sign_bit(dtype: np.dtype) -> int:
    return 1 << (8 * dtype.itemsize - 1)


def _neg(a: np.ndarray) -> np.ndarray:
    u = _uint(a.dtype)
    return (a.view(u) ^ u(_sign_bit(a.dtype))).view(a.dtype)


def _abs(a: np.ndarray) -> np.ndarray:
    u = _uint(a.dtype)
    return (a.view(u) & u(_sign_bit(a.dtype) - 1)).view(a.dtype)


def _min_max(a: np.ndarray, b: np.ndarray, is_min: bool) -> np.ndarray:
    pick_b = (b < a) if is_min else (b > a)
    r = np.where(pick_b, b, a)
    both_zero = (a == 0) & (b == 0)
    if both_zero.any():
        neg = np.signbit(a) | np.signbit(b) if is_min else np.signbit(a) & np.signbit(b)
        zero = np.where(neg, a.dtype.type(-0.0), a.dtype.type(0.0))
        r = np.where(both_zero, zero, r)
    return np.where(np.isnan(a) | np.isnan(b), a.dtype.type(np.nan), r)


def _fma32(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """float32 fma with one rounding.

    The product of two float32 values is exact in float64. The sum p + c is formed with
    TwoSum (s + err exactly), rounded to odd at 53 bits, then rounded to 24 bits: with at least
    two extra bits, round-to-odd followed by round-to-nearest equals one correct rounding.
    All nonzero exact results lie far above float64's subnormal range, so nothing is lost
    there; non-finite operands fall through the plain float64 formula.
    """
    p = a.astype(np.float64) * b.astype(np.float64)
    c64 = c.astype(np.float64)
    s = p + c64
    bb = s - p
    err = (p - (s - bb)) + (c64 - bb)
    fix = np.isfinite(s) & (err != 0) & ((s.view(np.uint64) & np.uint64(1)) == 0)
    if fix.any():
        s = s.copy()
        s[fix] = np.nextafter(s[fix], np.copysign(np.inf, err[fix]))
    return s.astype(np.float32)


def round_scaled_int(m: int, e: int, precision: int = 53, min_exp: int = -1074, max_exp: int = 1024) -> float:
    """Round the exact value ``m * 2**e`` (``m`` a nonzero int) once to a binary float.

    ``precision`` significand bits, smallest ulp ``2**min_exp``, overflow at ``2**max_exp``
    (defaults: float64). Round to nearest, ties to even; overflow gives a signed infinity.
    The result is returned as a Python float (exact in the target format).
    """
    negative = m < 0
    m = -m if negative else m
    lead = e + m.bit_length() - 1
    ulp_exp = max(lead - (precision - 1), min_exp)
    shift = ulp_exp - e
    if shift > 0:
        q = m >> shift
        rem = m - (q << shift)
        half = 1 << (shift - 1)
        if rem > half or (rem == half and q & 1):
            q += 1
        m, e = q, ulp_exp
    if m == 0:
        return -0.0 if negative else 0.0
    if m.bit_length() + e > max_exp:
        return -math.inf if negative else math.inf
    v = math.ldexp(float(m), e)  # m has at most `precision` (<= 53) bits: exact
    return -v if negative else v


def _split(v: float) -> tuple[int, int]:
    """Finite float ``v`` as (integer m, exponent e) with v == m * 2**e exactly."""
    f, e = math.frexp(v)
    return int(f * (1 << 53)), e - 53


def fma64_scalar(a: float, b: float, c: float) -> float:
    """Exact float64 fma (one rounding) of three Python floats."""
    if not (math.isfinite(a) and math.isfinite(b)):
        return a * b + c  # the product is inf or NaN exactly: float arithmetic is right
    if not math.isfinite(c):
        return c  # a finite product (even one past float64's range) cannot cancel inf or NaN
    ma, ea = _split(a)
    mb, eb = _split(b)
    mc, ec = _split(c)
    mp, ep = ma * mb, ea + eb
    e = min(ep, ec)
    total = (mp << (ep - e)) + (mc << (ec - e))
    if total == 0:
        if mp == 0 and mc == 0:
            product_negative = math.copysign(1.0, a) * math.copysign(1.0, b) < 0
            return -0.0 if product_negative and math.copysign(1.0, c) < 0 else 0.0
        return 0.0  # exact cancellation rounds to +0
    return round_scaled_int(total, e)


def _fma64(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    out = [fma64_scalar(x, y, z) for x, y, z in zip(a.tolist(), b.tolist(), c.tolist())]
    return np.array(out, dtype=np.float64).reshape(a.shape)


def _fma(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    return _fma32(a, b, c) if a.dtype == np.float32 else _fma64(a, b, c)


def _ldexp(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    dtype = a.dtype
    bound = LDEXP_BOUND[dtype.name]
    nan_b = np.isnan(b)
    k = np.trunc(np.clip(np.where(nan_b, 0, b), -bound, bound)).astype(np.int64)
    if dtype == np.float32:
        # |k| <= 300 keeps a * 2**k exact in float64; the cast is the one rounding.
        r = np.ldexp(a.astype(np.float64), k).astype(np.float32)
    else:
        r = np.ldexp(a, k)
    return np.where(nan_b, dtype.type(np.nan), r)


def _getexp(a: np.ndarray) -> np.ndarray:
    _, e = np.frexp(a.astype(np.float64))
    r = (e - 1).astype(np.float64)
    r = np.where(a == 0, -np.inf, r)
    r = np.where(np.isinf(a), np.inf, r)
    r = np.where(np.isnan(a), np.nan, r)
    return r.astype(a.dtype)


def _getmant(a: np.ndarray) -> np.ndarray:
    m, _ = np.frexp(a)
    special = (a == 0) | ~np.isfinite(a)
    return np.where(special, a, m * a.dtype.type(2))


# ============================================================================ real (mpmath)
# Each hook takes the operands and the program's dtype (only ldexp's clamp depends on it).
def _mp_isnan(v: mpmath.mpf) -> bool:
    return bool(mpmath.isnan(v))


def _mp_div(a: mpmath.mpf, b: mpmath.mpf, dtype: str) -> mpmath.mpf:
    if b == 0 or _mp_isnan(a) or _mp_isnan(b):
        return mpmath.nan
    return mpmath.fdiv(a, b)


def _mp_sqrt(a: mpmath.mpf, dtype: str) -> mpmath.mpf:
    if _mp_isnan(a) or a < 0:
        return mpmath.nan
    return mpmath.sqrt(a)


def _mp_min_max(a: mpmath.mpf, b: mpmath.mpf, is_min: bool) -> mpmath.mpf:
    if _mp_isnan(a) or _mp_isnan(b):
        return mpmath.nan
    return (b if b < a else a) if is_min else (b if b > a else a)


def _mp_round(a: mpmath.mpf, f: Callable) -> mpmath.mpf:
    return a if _mp_isnan(a) or mpmath.isinf(a) else mpmath.mpf(f(a))


def _mp_ldexp(a: mpmath.mpf, b: mpmath.mpf, dtype: str) -> mpmath.mpf:
    if _mp_isnan(a) or _mp_isnan(b):
        return mpmath.nan
    bound = LDEXP_BOUND[dtype]
    k = int(max(-bound, min(bound, b)))  # int() truncates toward zero
    return a if a == 0 or mpmath.isinf(a) else mpmath.ldexp(a, k)


def _mp_getexp(a: mpmath.mpf, dtype: str) -> mpmath.mpf:
    if _mp_isnan(a):
        return mpmath.nan
    if a == 0:
        return mpmath.ninf
    if mpmath.isinf(a):
        return mpmath.inf
    return mpmath.mpf(mpmath.frexp(a)[1] - 1)


def _mp_getmant(a: mpmath.mpf, dtype: str) -> mpmath.mpf:
    if _mp_isnan(a) or a == 0 or mpmath.isinf(a):
        return a
    return mpmath.ldexp(mpmath.frexp(a)[0], 1)


def _mp_log(a: mpmath.mpf, dtype: str) -> mpmath.mpf:
    if _mp_isnan(a) or a < 0:
        return mpmath.nan
    return mpmath.ninf if a == 0 else mpmath.log(a)


def _mp_pow(a: mpmath.mpf, b: mpmath.mpf, dtype: str) -> mpmath.mpf:
    if _mp_isnan(a) or _mp_isnan(b):
        return mpmath.nan
    try:
        r = mpmath.power(a, b)
    except ZeroDivisionError:
        return mpmath.nan
    return r if isinstance(r, mpmath.mpf) else mpmath.nan  # complex result: undefined


# ============================================================================ fit (float64, unrounded)
# Most ops fit with their exact hook or numpy (float64 in, float64 out); fma is unfused there.
def _fit_fma(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    return a * b + c  # unfused: fitting only


# ============================================================================ the table
def _binop(sym: str) -> Emit:
    return _same("{0} %s {1}" % sym)


#: Every operation, in opcode order (the index is the opcode the Rust core uses).
OPS: tuple[OpInfo, ...] = (
    OpInfo("add", 2, 1, 3, exact=np.add, real=lambda a, b, d: mpmath.fadd(a, b), fit=np.add,
           python=_binop("+"), c=_binop("+"), rust=_binop("+"), dd=True, law_fit=True, exact_before_rounding=True),
    OpInfo("sub", 2, 1, 3, exact=np.subtract, real=lambda a, b, d: mpmath.fsub(a, b), fit=np.subtract,
           python=_binop("-"), c=_binop("-"), rust=_binop("-"), dd=True, law_fit=True, exact_before_rounding=True),
    OpInfo("mul", 2, 1, 3, exact=np.multiply, real=lambda a, b, d: mpmath.fmul(a, b), fit=np.multiply,
           python=_binop("*"), c=_binop("*"), rust=_binop("*"), dd=True, law_fit=True, exact_before_rounding=True),
    OpInfo("div", 2, 4, 11, exact=np.divide, real=_mp_div, fit=np.divide,
           python=_binop("/"), c=_binop("/"), rust=_binop("/"), dd=True, law_fit=True),
    OpInfo("fma", 3, 1, 4, exact=_fma, real=lambda a, b, c, d: mpmath.fadd(mpmath.fmul(a, b, exact=True), c),
           fit=_fit_fma,
           python=Emit("_fma32({0}, {1}, {2})", "_fma64({0}, {1}, {2})", ("fma32",), ("fma64",)),
           c=Emit("fmaf({0}, {1}, {2})", "fma({0}, {1}, {2})"), rust=_same("{0}.mul_add({1}, {2})"),
           dd=True, law_fit=True, exact_before_rounding=True),
    OpInfo("neg", 1, 1, 1, exact=_neg, real=lambda a, d: -a, fit=np.negative,
           python=_same("np.negative({0})"), c=_same("-{0}"), rust=_same("-{0}"), dd=True, law_fit=True),
    OpInfo("abs", 1, 1, 1, exact=_abs, real=lambda a, d: a if _mp_isnan(a) else abs(a), fit=np.abs,
           python=_same("np.abs({0})"), c=Emit("fabsf({0})", "fabs({0})"), rust=_same("{0}.abs()"), law_fit=True),
    OpInfo("sqrt", 1, 4, 13, exact=np.sqrt, real=_mp_sqrt, fit=np.sqrt,
           python=_same("np.sqrt({0})"), c=Emit("sqrtf({0})", "sqrt({0})"), rust=_same("{0}.sqrt()"),
           dd=True, law_fit=True),
    OpInfo("min", 2, 1, 1, exact=lambda a, b: _min_max(a, b, True), real=lambda a, b, d: _mp_min_max(a, b, True),
           fit=np.minimum, python=_same("_min({0}, {1})", "min"),
           c=Emit("pys_minf({0}, {1})", "pys_min({0}, {1})", ("sel32", "min32"), ("min64",)),
           rust=Emit("pys_minf({0}, {1})", "pys_min({0}, {1})", ("min32",), ("min64",)), law_fit=True),
    OpInfo("max", 2, 1, 1, exact=lambda a, b: _min_max(a, b, False), real=lambda a, b, d: _mp_min_max(a, b, False),
           fit=np.maximum, python=_same("_max({0}, {1})", "max"),
           c=Emit("pys_maxf({0}, {1})", "pys_max({0}, {1})", ("sel32", "max32"), ("max64",)),
           rust=Emit("pys_maxf({0}, {1})", "pys_max({0}, {1})", ("max32",), ("max64",)), law_fit=True),
    OpInfo("rint", 1, 1, 3, exact=np.rint, real=lambda a, d: _mp_round(a, mpmath.nint), fit=np.rint,
           python=_same("np.rint({0})"), c=Emit("pys_rintf({0})", "rint({0})", ("sel32", "rint32")),
           rust=Emit("pys_rintf({0})", "{0}.round_ties_even()", ("rint32",))),
    OpInfo("floor", 1, 1, 3, exact=np.floor, real=lambda a, d: _mp_round(a, mpmath.floor), fit=np.floor,
           python=_same("np.floor({0})"), c=Emit("pys_floorf({0})", "floor({0})", ("sel32", "rint32", "floor32")),
           rust=Emit("pys_floorf({0})", "{0}.floor()", ("rint32", "floor32"))),
    OpInfo("ldexp", 2, 1, 2, exact=_ldexp, real=_mp_ldexp,
           fit=lambda a, b: a * np.exp2(np.trunc(np.clip(b, -LDEXP_BOUND["float64"], LDEXP_BOUND["float64"]))),
           python=Emit("_ldexp32({0}, {1})", "_ldexp64({0}, {1})", ("ldexp32",), ("ldexp64",)),
           c=Emit("pys_ldexpf({0}, {1})", "pys_ldexp({0}, {1})", ("sel32", "ldexp32"), ("ldexp64",)),
           rust=Emit("pys_ldexpf({0}, {1})", "pys_ldexp({0}, {1})", ("ldexp32", "trunc32", "truncf32", "pow2_32"), ("ldexp64",))),
    OpInfo("getexp", 1, 1, 2, exact=_getexp, real=_mp_getexp, fit=_getexp,
           python=_same("_getexp({0})", "getexp"),
           c=Emit("pys_getexpf({0})", "pys_getexp({0})", ("sel32", "getexp32"), ("getexp64",)),
           rust=Emit("pys_getexpf({0})", "pys_getexp({0})", ("getexp32",), ("getexp64",))),
    OpInfo("getmant", 1, 1, 2, exact=_getmant, real=_mp_getmant, fit=_getmant,
           python=_same("_getmant({0})", "getmant"),
           c=Emit("pys_getmantf({0})", "pys_getmant({0})", ("sel32", "getmant32"), ("getmant64",)),
           rust=Emit("pys_getmantf({0})", "pys_getmant({0})", ("getmant32",), ("getmant64",))),
    OpInfo("exp", 1, 8, 20, ("float64",), exact=np.exp, real=lambda a, d: mpmath.nan if _mp_isnan(a) else mpmath.exp(a),
           fit=np.exp, python=_same("np.exp({0})"), c=_same("exp({0})"), rust=_same("{0}.exp()"), law_fit=True),
    OpInfo("log", 1, 8, 20, ("float64",), exact=np.log, real=_mp_log, fit=np.log,
           python=_same("np.log({0})"), c=_same("log({0})"), rust=_same("{0}.ln()"), law_fit=True),
    OpInfo("pow", 2, 8, 20, ("float64",), exact=np.power, real=_mp_pow, fit=np.power,
           python=_same("np.power({0}, {1})"), c=_same("pow({0}, {1})"), rust=_same("{0}.powf({1})"), law_fit=True),
)
OP_BY_NAME: dict[str, OpInfo] = {op.name: op for op in OPS}
OPCODE: dict[str, int] = {op.name: i for i, op in enumerate(OPS)}


def ops_where(flag: str) -> tuple[str, ...]:
    """Names of the ops whose ``flag`` (``'dd'``, ``'law_fit'``, ``'exact_before_rounding'``) is set."""
    return tuple(op.name for op in OPS if getattr(op, flag))

