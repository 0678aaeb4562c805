"""Pure-Python reference interpreter for pysearch programs.

:func:`run` evaluates a program over numpy arrays with the exact floating-point semantics of
``docs/program-format.md`` (every operation rounds once in the program's dtype, round to nearest
even, no flush to zero: it runs in IEEE mode, ``_core.ieee_mode``, whatever the process set).
It is slow but plainly correct, and the Rust evaluator is tested against it bit for bit.

The per-op semantics (the ``exact`` and ``real`` hooks) live in the op registry,
:mod:`pysearch.ops`; this module walks a program and calls them.

:func:`run_mpmath` evaluates the same program over the real numbers (at ``dps`` decimal
digits, no rounding to the program's dtype) to measure how well a program approximates a
function mathematically, apart from floating-point rounding.
"""

from __future__ import annotations

from typing import Mapping, Sequence, Union

import mpmath
import numpy as np

from . import _core
from .ops import LDEXP_BOUND, OP_BY_NAME, fma64_scalar, round_scaled_int  # noqa: F401  (re-exported)
from .program import Program, as_program

ArrayInput = Union[np.ndarray, Mapping[str, np.ndarray]]



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
    with np.errstate(all="ignore"), _core.ieee_mode():  # IEEE whatever the process set (FTZ/DAZ)
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
            r = np.asarray(OP_BY_NAME[ins.op].exact(*args))
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
                values[i] = OP_BY_NAME[ins.op].real(*args, program.dtype)
            out.append(values[program.output])
    return out
