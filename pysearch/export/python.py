"""Programs as standalone Python: a numpy module, bit for bit with the evaluator.

The helpers (``PY_HELPERS``) are emitted-code templates: exact float32 and float64 ``fma`` and
``min``/``max``/``ldexp``/``getexp``/``getmant`` with the semantics of ``docs/program-format.md``,
written in numpy for the exported module (the interpreter's own versions live in
:mod:`pysearch.ops`). Constants are ``float.fromhex`` literals with their decimal value in a
comment.
"""

from __future__ import annotations

import math
from typing import Mapping

from pysearch.export.common import Plan, comment_text, expr, header_lines, helpers, hex_literal
from pysearch.program import format_const

PY_HELPERS = {
    "fma32": '''
def _fma32(a, b, c):
    """float32 a * b + c with one rounding.

    The product of two float32 values is exact in float64; the sum is made exact with TwoSum,
    rounded to odd at 53 bits, then to nearest at 24 bits (two extra bits make the double
    rounding innocuous).
    """
    a, b, c = (np.asarray(v, dtype=np.float32).astype(np.float64) for v in (a, b, c))
    p = a * b
    s = p + c
    z = s - p
    err = (p - (s - z)) + (c - z)
    odd = (s.view(np.uint64) & np.uint64(1)) == 1
    nudge = np.isfinite(s) & (err != 0) & ~odd
    s = np.where(nudge, np.nextafter(s, np.copysign(np.inf, err)), s)
    return s.astype(np.float32)
''',
    "fma64": '''
def _fma64_scalar(a, b, c):
    if not (math.isfinite(a) and math.isfinite(b)):
        return a * b + c
    if not math.isfinite(c):
        return c  # the exact product is finite, even where a * b would overflow
    exact = Fraction(a) * Fraction(b) + Fraction(c)
    if exact == 0:
        product_negative = (math.copysign(1.0, a) * math.copysign(1.0, b) < 0)
        both_zero_negative = a * b == 0 and c == 0 and product_negative and math.copysign(1.0, c) < 0
        return -0.0 if both_zero_negative else 0.0
    try:
        return float(exact)  # int / int division: correctly rounded
    except OverflowError:
        return math.inf if exact > 0 else -math.inf


def _fma64(a, b, c):
    """float64 a * b + c with one rounding (exact rational arithmetic, element by element)."""
    a, b, c = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (a, b, c)))
    out = [_fma64_scalar(*t) for t in zip(a.ravel().tolist(), b.ravel().tolist(), c.ravel().tolist())]
    return np.array(out, dtype=np.float64).reshape(a.shape)
''',
    "min": '''
def _min(a, b):
    """NaN if either is NaN; the smaller; min(+0, -0) = -0; for equal operands a."""
    a, b = np.broadcast_arrays(a, b)
    r = np.where(b < a, b, a)
    both_zero = (a == 0) & (b == 0)
    r = np.where(both_zero, np.where(np.signbit(a) | np.signbit(b), -np.abs(a), np.abs(a)), r)
    return np.where(np.isnan(a) | np.isnan(b), a.dtype.type(np.nan), r)
''',
    "max": '''
def _max(a, b):
    """NaN if either is NaN; the larger; max(+0, -0) = +0; for equal operands a."""
    a, b = np.broadcast_arrays(a, b)
    r = np.where(b > a, b, a)
    both_zero = (a == 0) & (b == 0)
    r = np.where(both_zero, np.where(np.signbit(a) & np.signbit(b), -np.abs(a), np.abs(a)), r)
    return np.where(np.isnan(a) | np.isnan(b), a.dtype.type(np.nan), r)
''',
    "ldexp32": '''
def _ldexp32(a, b):
    """float32 a * 2**k, k = trunc(clamp(b, -300, 300)), one rounding; NaN b gives NaN."""
    a, b = np.broadcast_arrays(np.asarray(a, dtype=np.float32), np.asarray(b, dtype=np.float32))
    nan_b = np.isnan(b)
    k = np.trunc(np.clip(np.where(nan_b, 0, b), -300, 300)).astype(np.int64)
    r = np.ldexp(a.astype(np.float64), k).astype(np.float32)  # exact in float64, then one rounding
    return np.where(nan_b, np.float32(np.nan), r)
''',
    "ldexp64": '''
def _ldexp64(a, b):
    """float64 a * 2**k, k = trunc(clamp(b, -2200, 2200)), one rounding; NaN b gives NaN."""
    a, b = np.broadcast_arrays(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
    nan_b = np.isnan(b)
    k = np.trunc(np.clip(np.where(nan_b, 0, b), -2200, 2200)).astype(np.int64)
    return np.where(nan_b, np.nan, np.ldexp(a, k))
''',
    "getexp": '''
def _getexp(a):
    """floor(log2|a|) as a float; +-0 -> -inf, +-inf -> +inf, NaN -> NaN."""
    a = np.asarray(a)
    _, e = np.frexp(a.astype(np.float64))
    r = (e - 1).astype(np.float64)
    r = np.where(a == 0, -np.inf, r)
    r = np.where(np.isinf(a), np.inf, r)
    r = np.where(np.isnan(a), np.nan, r)
    return r.astype(a.dtype)
''',
    "getmant": '''
def _getmant(a):
    """a / 2**getexp(a), sign kept, |m| in [1, 2); +-0, +-inf and NaN are returned as they are."""
    a = np.asarray(a)
    m, _ = np.frexp(a)
    special = (a == 0) | ~np.isfinite(a)
    return np.where(special, a, m * a.dtype.type(2))
''',
    "result": '''
def _result(v, shape, dtype):
    r = np.array(np.broadcast_to(v, shape), dtype=dtype)
    return r[()] if r.ndim == 0 else r
''',
}


def write(plan: Plan, name: str, meta: Mapping | None) -> str:
    """The module for ``plan``: its docstring header, the helpers it needs, and ``name(x, ...)``."""
    dt = plan.dtype
    used = ["result"] + helpers(plan, "python")
    out = ['r"""' + "\n".join(comment_text(ln, "python") for ln in header_lines(plan.program, name, meta))]
    out.append("")
    out.append("Standalone: needs numpy only. Reproduces the pysearch evaluator bit for bit.")
    out.append('"""')
    out.append("")
    if "fma64" in used:
        out += ["import math", "from fractions import Fraction", ""]
    out += ["import numpy as np", ""]
    for h in used:
        out.append(PY_HELPERS[h].rstrip("\n"))
        out.append("")
    out.append("")
    params = ", ".join(plan.params)
    out.append(f"def {name}({params}):")
    target = comment_text((meta or {}).get("target", "the target"), "python")
    out.append(f'    r"""{target} approximation; numpy {dt} arrays or scalars in, same shape out."""')
    np_dt = f"np.{dt}"
    for i, v in enumerate(plan.consts):
        out.append(f'    c{i + 1} = {np_dt}({_py_const(v)})  # {format_const(v, dt)}')
    for p in plan.params:
        out.append(f"    {p} = np.asarray({p}, dtype={np_dt})")
    if len(plan.params) == 1:
        shape = f"{plan.params[0]}.shape"
    else:
        shape = f"np.broadcast_shapes({', '.join(p + '.shape' for p in plan.params)})"
    out.append('    with np.errstate(all="ignore"):')
    for i, ins in enumerate(plan.program.instrs):
        out.append(f"        v{i + 1} = {expr(plan, 'python', ins.op, [plan.ref(a) for a in ins.args])}")
    out.append(f"    return _result(v{plan.program.output + 1}, {shape}, {np_dt})")
    return "\n".join(out) + "\n"


def _py_const(v: float) -> str:
    if math.isnan(v):
        return 'float("nan")'
    if math.isinf(v):
        return 'float("inf")' if v > 0 else '-float("inf")'
    return f'float.fromhex("{hex_literal(v)}")'
