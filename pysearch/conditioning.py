"""Rounding sensitivity: a cheap screen for programs whose float32 evaluation amplifies rounding.

A program's float32 result differs from the same program evaluated in real arithmetic because
every rounding op (add, sub, mul, div, fma, sqrt, and the float64-only exp, log, pow) rounds its
result ``v_i`` with a relative error of at most ``u = 2^-24``. To first order the output ``y``
moves by ``sum_i dy/dv_i * v_i * delta_i``, so

    amplification(x) = sum over rounding instructions i of |dy/dv_i| * |v_i| / |y|

bounds the relative rounding error of ``y`` in units of ``u`` (Higham's running error analysis,
first order). It is computed in float64 by one forward pass and one reverse (adjoint) pass over a
sample. A well-conditioned Horner polynomial of a function near 1 has an amplification of a few;
a structure that computes a small value as the difference of large ones (``a (x + s)^2 - b``)
has one in the hundreds: its float32 error is hundreds of ULP whatever its real-number accuracy.

:func:`predicted_ulp` turns it into float32 ULP (``amplification * u * |y| / ulp32(y)``);
:func:`rounding_ulp` measures the real thing (float32 evaluation against the float64 evaluation
of the same program, in float32 ULP of the float64 value); :func:`screen` flags programs whose
predicted rounding error on a sample exceeds a threshold. Exact ops (neg, abs, min, max, rint,
floor, ldexp, getexp, getmant) add no rounding; their derivatives pass adjoints through.
"""

from __future__ import annotations

from typing import Callable, Union

import numpy as np

from .program import Program, as_program
from .ulp import ulp32

#: Unit roundoff of float32 (round to nearest).
U32 = 2.0**-24

#: Ops whose result is rounded (the others are exact on their float operands).
ROUNDING_OPS = frozenset({"add", "sub", "mul", "div", "fma", "sqrt", "exp", "log", "pow"})

#: Default :func:`screen` threshold: a predicted rounding error above this many float32 ULP.
SCREEN_ULP = 16.0


def _ldexp_scale(b: np.ndarray) -> np.ndarray:
    return np.exp2(np.trunc(np.clip(b, -2000, 2000)))


def _getmant_ratio(a: np.ndarray) -> np.ndarray:
    m, _ = np.frexp(a)  # a = m 2^e, |m| in [0.5, 1); getmant scales a by a power of two to [1, 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(a != 0, np.abs(2 * m / a), 0.0)


#: Partial derivatives of each op with respect to its operands (float64 arrays).
_PARTIALS: dict[str, Callable[..., tuple[np.ndarray, ...]]] = {
    "add": lambda a, b: (np.ones_like(a), np.ones_like(b)),
    "sub": lambda a, b: (np.ones_like(a), -np.ones_like(b)),
    "mul": lambda a, b: (b, a),
    "div": lambda a, b: (1.0 / b, -a / (b * b)),
    "fma": lambda a, b, c: (b, a, np.ones_like(c)),
    "neg": lambda a: (-np.ones_like(a),),
    "abs": lambda a: (np.sign(a),),
    "sqrt": lambda a: (0.5 / np.sqrt(a),),
    "min": lambda a, b: ((a <= b).astype(float), (a > b).astype(float)),
    "max": lambda a, b: ((a >= b).astype(float), (a < b).astype(float)),
    "rint": lambda a: (np.zeros_like(a),),
    "floor": lambda a: (np.zeros_like(a),),
    "ldexp": lambda a, b: (_ldexp_scale(b), np.zeros_like(b)),
    "getexp": lambda a: (np.zeros_like(a),),
    "getmant": lambda a: (_getmant_ratio(a),),
    "exp": lambda a: (np.exp(a),),
    "log": lambda a: (1.0 / a,),
    "pow": lambda a, b: (b * np.power(a, b - 1), np.power(a, b) * np.log(np.abs(a))),
}


def _forward(p: Program, x: np.ndarray) -> list[np.ndarray]:
    """Values of every instruction in float64 (fma unfused: a real-number evaluation)."""
    from .ops import OP_BY_NAME

    vals: list[np.ndarray] = []
    for ins in p.instrs:
        args = [np.full(x.shape, a.value) if a.kind == "const" else (x if a.kind == "input" else vals[a.index])
                for a in ins.args]
        vals.append(np.asarray(OP_BY_NAME[ins.op].fit(*args), dtype=np.float64))
    return vals


def rounding_scale(program: Union[Program, str], x) -> tuple[np.ndarray, np.ndarray]:
    """``(s, y)`` per point: ``s = sum over rounding instructions of |dy/dv_i| |v_i|`` (the first-order
    absolute rounding error of ``y`` is at most ``s`` times the unit roundoff) and the float64 value
    ``y``; computed in float64 by a forward and an adjoint pass."""
    p = as_program(program).pruned()
    if len(p.inputs) != 1:
        raise ValueError(f"rounding sensitivity needs a one-input program, this one has inputs {p.inputs}")
    x = np.asarray(x, dtype=np.float64).ravel()
    with np.errstate(all="ignore"):
        vals = _forward(p, x)
        adj = [np.zeros_like(x) for _ in p.instrs]
        adj[p.output] = np.ones_like(x)
        total = np.zeros_like(x)
        for i in range(p.output, -1, -1):
            ins = p.instrs[i]
            if ins.op in ROUNDING_OPS:
                total += np.abs(adj[i] * vals[i])
            args = [np.full(x.shape, a.value) if a.kind == "const" else (x if a.kind == "input" else vals[a.index])
                    for a in ins.args]
            for a, d in zip(ins.args, _PARTIALS[ins.op](*args)):
                if a.kind == "value":
                    adj[a.index] = adj[a.index] + adj[i] * d
    return total, vals[p.output]


def amplification(program: Union[Program, str], x) -> np.ndarray:
    """Per-point first-order rounding amplification ``s / |y|`` (see the module docstring and
    :func:`rounding_scale`); NaN where the float64 evaluation is not finite or is 0."""
    s, y = rounding_scale(program, x)
    with np.errstate(all="ignore"):
        out = s / np.abs(y)
    return np.where(np.isfinite(out) & np.isfinite(y) & (y != 0), out, np.nan)


def predicted_ulp(program: Union[Program, str], x) -> np.ndarray:
    """First-order bound of the float32 rounding error in float32 ULP per point (NaN where unknown)."""
    p = as_program(program).pruned()
    x = np.asarray(x, dtype=np.float64).ravel()
    with np.errstate(all="ignore"):
        y = _forward(p, x)[p.output]
        return amplification(p, x) * U32 * np.abs(y) / ulp32(y)


def rounding_ulp(program: Union[Program, str], x) -> np.ndarray:
    """Measured rounding error: the float32 program against its own float64 evaluation (same
    constants, fused fma), in float32 ULP of the float64 value; NaN where either is not finite."""
    import pysearch

    p = as_program(program)
    x32 = np.asarray(x, dtype=np.float32).ravel()
    y32 = pysearch.evaluate(p, x32).astype(np.float64)
    y64 = pysearch.evaluate(p.astype("float64"), x32.astype(np.float64))
    with np.errstate(all="ignore"):
        err = np.abs(y32 - y64) / ulp32(y64)
    return np.where(np.isfinite(y32) & np.isfinite(y64), err, np.nan)


def sensitivity(program: Union[Program, str], x, quantile: float = 1.0) -> float:
    """One number per program: the ``quantile`` (default: max) of :func:`predicted_ulp` over the
    sample's finite points (inf when no point is finite)."""
    if not 0.0 <= quantile <= 1.0:
        raise ValueError(f"quantile must be in [0, 1], got {quantile}")
    v = predicted_ulp(program, x)
    v = v[np.isfinite(v)]
    return float(np.quantile(v, quantile)) if v.size else float("inf")


def screen(program: Union[Program, str], x, max_ulp: float = SCREEN_ULP) -> bool:
    """True when the program passes: its predicted rounding error stays within ``max_ulp``
    float32 ULP on the sample ``x`` (False flags it as ill-conditioned: repair or drop it)."""
    return sensitivity(program, x) <= max_ulp
