"""Pure-Python reference interpreter for pysearch programs.

:func:`run` evaluates a program over numpy arrays with the exact floating-point semantics of
``docs/program-format.md`` (every operation rounds once in the program's dtype, round to nearest
even, no flush to zero). It is slow but plainly correct, and the Rust evaluator is tested
against it bit for bit.

:func:`run_mpmath` evaluates the same program over the real numbers (at ``dps`` decimal
digits, no rounding to the program's dtype) to measure how well a program approximates a
function mathematically, apart from floating-point rounding.
"""

from __future__ import annotations

import math
from typing import Callable, Mapping, Sequence, Union

import mpmath
import numpy as np

from .program import Program, as_program

ArrayInput = Union[np.ndarray, Mapping[str, np.ndarray]]

#: Clamp bound K of ``ldexp`` exponents, per dtype.
LDEXP_BOUND = {"float32": 300, "float64": 2200}


# --------------------------------------------------------------------------- inputs
def input_columns(program: Program, x: ArrayInput) -> list[np.ndarray]:
    """Split ``x`` into one 1-D array per program input, checking shape and dtype.

    ``x`` is a 1-D array (one input), a 2-D array of shape (n_inputs, n), or a dict mapping
    every input name to a 1-D array. Raises ``TypeError`` for a wrong type or dtype and
    ``ValueError`` for a wrong shape or missing/unknown names.
    """
    n_in = len(program.inputs)
    if isinstance(x, Mapping):
        missing = [n for n in program.inputs if n not in x]
        unknown = [n for n in x if n not in program.inputs]
        if missing or unknown:
            raise ValueError(
                f"input dict must have exactly the program's inputs {list(program.inputs)}; "
                f"missing {missing}, unknown {unknown}"
            )
        cols = [x[n] for n in program.inputs]
    elif isinstance(x, np.ndarray):
        if x.ndim == 1:
            if n_in != 1:
                raise ValueError(
                    f"a 1-D input array fits a one-input program; this one has {n_in} inputs "
                    f"{list(program.inputs)}: pass shape ({n_in}, n) or a dict"
                )
            cols = [x]
        elif x.ndim == 2:
            if x.shape[0] != n_in:
                raise ValueError(
                    f"input array has shape {x.shape}; expected ({n_in}, n) for inputs {list(program.inputs)}"
                )
            cols = list(x)
        else:
            raise ValueError(f"input array must be 1-D or 2-D, not {x.ndim}-D")
    else:
        raise TypeError(f"inputs must be a numpy array or a dict of arrays, not {type(x).__name__}")
    for name, col in zip(program.inputs, cols):
        if not isinstance(col, np.ndarray):
            raise TypeError(f"input {name!r} must be a numpy array, not {type(col).__name__}")
        if col.dtype != np.dtype(program.dtype):
            raise TypeError(f"input {name!r} has dtype {col.dtype}, but the program's dtype is {program.dtype}")
        if col.ndim != 1:
            raise ValueError(f"input {name!r} must be 1-D, not shape {col.shape}")
    if len({len(c) for c in cols}) > 1:
        raise ValueError(f"inputs have different lengths: {[len(c) for c in cols]}")
    return cols


# --------------------------------------------------------------------------- float ops
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


def _fma(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    return _fma32(a, b, c) if a.dtype == np.float32 else _fma64(a, b, c)


_FLOAT_OPS: dict[str, Callable[..., np.ndarray]] = {
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
    "div": np.divide,
    "fma": _fma,
    "neg": _neg,
    "abs": _abs,
    "sqrt": np.sqrt,
    "min": lambda a, b: _min_max(a, b, True),
    "max": lambda a, b: _min_max(a, b, False),
    "rint": np.rint,
    "floor": np.floor,
    "ldexp": _ldexp,
    "getexp": _getexp,
    "getmant": _getmant,
    "exp": np.exp,
    "log": np.log,
    "pow": np.power,
}


def run(program: Union[Program, str], x: ArrayInput) -> np.ndarray:
    """Evaluate ``program`` element-wise over ``x`` (same conventions as ``pysearch.evaluate``).

    Returns a 1-D array of the program's dtype, one value per input point.
    """
    program = as_program(program)
    dtype = np.dtype(program.dtype)
    cols = input_columns(program, x)
    n = len(cols[0])
    live = program.live()
    values: list[np.ndarray | None] = [None] * len(program.instrs)
    with np.errstate(all="ignore"):
        for i, ins in enumerate(program.instrs):
            if not live[i]:
                continue
            args = []
            for a in ins.args:
                if a.kind == "input":
                    args.append(np.ascontiguousarray(cols[a.index]))
                elif a.kind == "value":
                    args.append(values[a.index])
                else:
                    args.append(np.full(n, dtype.type(a.value), dtype=dtype))
            r = np.asarray(_FLOAT_OPS[ins.op](*args))
            assert r.dtype == dtype, (ins.op, r.dtype)
            values[i] = r
    return values[program.output]


# --------------------------------------------------------------------------- real numbers
def _to_mpf(v: object) -> mpmath.mpf:
    if isinstance(v, mpmath.mpf):
        return v
    if isinstance(v, (bool, np.bool_)):
        raise TypeError("run_mpmath inputs must be numbers, not booleans")
    if isinstance(v, (int, np.integer)):
        return mpmath.mpf(int(v))
    if isinstance(v, (float, np.floating)):
        return mpmath.mpf(float(v))  # exact: the working precision is >= 53 bits
    raise TypeError(f"run_mpmath inputs must be numbers, not {type(v).__name__}")


def _mp_columns(program: Program, xs: object) -> list[list[mpmath.mpf]]:
    n_in = len(program.inputs)
    if isinstance(xs, Mapping):
        if set(xs) != set(program.inputs):
            raise ValueError(f"input dict keys {sorted(xs)} differ from the program's inputs {list(program.inputs)}")
        cols = [list(xs[n]) for n in program.inputs]
    elif isinstance(xs, np.ndarray) and xs.ndim == 2 or (
        n_in > 1 and isinstance(xs, Sequence) and all(isinstance(r, (Sequence, np.ndarray)) for r in xs)
    ):
        cols = [list(r) for r in xs]
        if len(cols) != n_in:
            raise ValueError(f"got {len(cols)} input rows; the program has {n_in} inputs {list(program.inputs)}")
    else:
        if n_in != 1:
            raise ValueError(f"the program has {n_in} inputs {list(program.inputs)}: pass n_inputs rows or a dict")
        if isinstance(xs, (str, bytes)):
            raise TypeError("run_mpmath inputs must be a sequence of numbers")
        cols = [list(np.atleast_1d(xs)) if isinstance(xs, np.ndarray) else list(xs)]
    if len({len(c) for c in cols}) > 1:
        raise ValueError(f"inputs have different lengths: {[len(c) for c in cols]}")
    return [[_to_mpf(v) for v in c] for c in cols]


def _mp_isnan(v: mpmath.mpf) -> bool:
    return bool(mpmath.isnan(v))


def _mp_div(a: mpmath.mpf, b: mpmath.mpf) -> mpmath.mpf:
    if b == 0 or _mp_isnan(a) or _mp_isnan(b):
        return mpmath.nan
    return mpmath.fdiv(a, b)


def _mp_sqrt(a: mpmath.mpf) -> mpmath.mpf:
    if _mp_isnan(a) or a < 0:
        return mpmath.nan
    return mpmath.sqrt(a)


def _mp_min_max(a: mpmath.mpf, b: mpmath.mpf, is_min: bool) -> mpmath.mpf:
    if _mp_isnan(a) or _mp_isnan(b):
        return mpmath.nan
    return (b if b < a else a) if is_min else (b if b > a else a)


def _mp_round(a: mpmath.mpf, f: Callable) -> mpmath.mpf:
    return a if _mp_isnan(a) or mpmath.isinf(a) else mpmath.mpf(f(a))


def _mp_ldexp(a: mpmath.mpf, b: mpmath.mpf, bound: int) -> mpmath.mpf:
    if _mp_isnan(a) or _mp_isnan(b):
        return mpmath.nan
    k = int(max(-bound, min(bound, b)))  # int() truncates toward zero
    return a if a == 0 or mpmath.isinf(a) else mpmath.ldexp(a, k)


def _mp_getexp(a: mpmath.mpf) -> mpmath.mpf:
    if _mp_isnan(a):
        return mpmath.nan
    if a == 0:
        return mpmath.ninf
    if mpmath.isinf(a):
        return mpmath.inf
    return mpmath.mpf(mpmath.frexp(a)[1] - 1)


def _mp_getmant(a: mpmath.mpf) -> mpmath.mpf:
    if _mp_isnan(a) or a == 0 or mpmath.isinf(a):
        return a
    return mpmath.ldexp(mpmath.frexp(a)[0], 1)


def _mp_log(a: mpmath.mpf) -> mpmath.mpf:
    if _mp_isnan(a) or a < 0:
        return mpmath.nan
    return mpmath.ninf if a == 0 else mpmath.log(a)


def _mp_pow(a: mpmath.mpf, b: mpmath.mpf) -> mpmath.mpf:
    if _mp_isnan(a) or _mp_isnan(b):
        return mpmath.nan
    try:
        r = mpmath.power(a, b)
    except ZeroDivisionError:
        return mpmath.nan
    return r if isinstance(r, mpmath.mpf) else mpmath.nan  # complex result: undefined


def _mp_ops(bound: int) -> dict[str, Callable[..., mpmath.mpf]]:
    return {
        "add": mpmath.fadd,
        "sub": mpmath.fsub,
        "mul": mpmath.fmul,
        "div": _mp_div,
        "fma": lambda a, b, c: mpmath.fadd(mpmath.fmul(a, b, exact=True), c),
        "neg": lambda a: -a,
        "abs": lambda a: a if _mp_isnan(a) else abs(a),
        "sqrt": _mp_sqrt,
        "min": lambda a, b: _mp_min_max(a, b, True),
        "max": lambda a, b: _mp_min_max(a, b, False),
        "rint": lambda a: _mp_round(a, mpmath.nint),
        "floor": lambda a: _mp_round(a, mpmath.floor),
        "ldexp": lambda a, b: _mp_ldexp(a, b, bound),
        "getexp": _mp_getexp,
        "getmant": _mp_getmant,
        "exp": lambda a: mpmath.nan if _mp_isnan(a) else mpmath.exp(a),
        "log": _mp_log,
        "pow": _mp_pow,
    }


def run_mpmath(program: Union[Program, str], xs: object, dps: int = 50) -> list[mpmath.mpf]:
    """Evaluate ``program`` over the real numbers at ``dps`` decimal digits.

    Constants are taken exactly as their (dtype-rounded) float values; each operation is
    computed exactly or rounded once at the working precision, never to the program's dtype.
    ``fma`` forms the product exactly. ``rint`` rounds half to even, ``ldexp`` keeps the
    documented clamp of its exponent. Where an operation is undefined over the reals
    (``a / 0``, ``sqrt`` or ``log`` of a negative number, ``pow`` with a non-real result or
    ``0 ** negative``) the result is ``mpmath.nan``; ``log(0)`` is ``-inf``. Infinite inputs
    and constants follow mpmath's extended-real arithmetic.

    ``xs``: a sequence of numbers (one-input programs), ``n_inputs`` sequences, or a dict
    name -> sequence. Returns one ``mpmath.mpf`` per point.
    """
    program = as_program(program)
    if isinstance(dps, bool) or not isinstance(dps, (int, np.integer)) or dps < 16:
        raise ValueError(f"dps must be an integer >= 16 (so float64 values are exact), got {dps!r}")
    bound = LDEXP_BOUND[program.dtype]
    ops = _mp_ops(bound)
    live = program.live()
    out: list[mpmath.mpf] = []
    with mpmath.workdps(int(dps)):
        consts = {
            (i, j): mpmath.mpf(a.value)
            for i, ins in enumerate(program.instrs)
            for j, a in enumerate(ins.args)
            if a.kind == "const"
        }
        cols = _mp_columns(program, xs)
        for point in zip(*cols):
            values: list[mpmath.mpf | None] = [None] * len(program.instrs)
            for i, ins in enumerate(program.instrs):
                if not live[i]:
                    continue
                args = [
                    point[a.index] if a.kind == "input" else values[a.index] if a.kind == "value" else consts[(i, j)]
                    for j, a in enumerate(ins.args)
                ]
                values[i] = ops[ins.op](*args)
            out.append(values[program.output])
    return out
