"""Hypothesis strategies shared by the tests: float values weighted to hard cases, programs."""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np
from hypothesis import strategies as st

from pysearch.program import OPS, Instr, Program, Ref, round_to_dtype

F32_MAX = float(np.finfo(np.float32).max)
F32_TINY = 2.0**-126  # smallest normal
F32_DENORM_MIN = 2.0**-149
F64_MAX = float(np.finfo(np.float64).max)
F64_TINY = 2.0**-1022
F64_DENORM_MIN = 5e-324


def _signed(values: Iterable[float], dtype: str) -> list[float]:
    out = []
    for v in values:
        v = round_to_dtype(v, dtype)
        out += [v, -v]
    return out


F32_SPECIALS: list[float] = _signed(
    [0.0, math.inf, F32_DENORM_MIN, 2 * F32_DENORM_MIN, F32_TINY - F32_DENORM_MIN, F32_TINY,
     F32_TINY + 2.0**-149, F32_MAX, 2.0**127, 1.0, 1.0 + 2.0**-23, 1.0 - 2.0**-24, 0.5, 1.5, 2.5, 3.5,
     0.49999997, 2.0**23, 2.0**23 - 0.5, 2.0**23 + 1, 2.0**24, 2.0**24 - 1, 2.0**31, 3.0, 0.1, 1e-30],
    "float32",
) + [math.nan]

F64_SPECIALS: list[float] = _signed(
    [0.0, math.inf, F64_DENORM_MIN, 2 * F64_DENORM_MIN, F64_TINY - F64_DENORM_MIN, F64_TINY, F64_MAX,
     2.0**1023, 1.0, 1.0 + 2.0**-52, 1.0 - 2.0**-53, 0.5, 1.5, 2.5, 0.49999999999999994, 2.0**52,
     2.0**52 - 0.5, 2.0**52 + 1, 2.0**53, 3.0, 0.1, F32_DENORM_MIN, F32_MAX, 1e-300, 1e300],
    "float64",
) + [math.nan]


def _from_bits32(bits: int) -> float:
    return float(np.array(bits, dtype=np.uint32).view(np.float32))


def _from_bits64(bits: int) -> float:
    return float(np.array(bits, dtype=np.uint64).view(np.float64))


def _f32_next(v: float, direction: float) -> float:
    return float(np.nextafter(np.float32(v), np.float32(direction)))


def float32_values() -> st.SearchStrategy[float]:
    """Python floats exactly representable in float32, weighted to special and edge cases."""
    sign = st.sampled_from([1.0, -1.0])
    subnormal = st.builds(lambda s, m: s * m * F32_DENORM_MIN, sign, st.integers(1, 2**23 - 1))
    binade_edge = st.builds(
        lambda s, e, d: s * _f32_next(2.0**e, d) if d else s * 2.0**e,
        sign,
        st.integers(-149, 127),
        st.sampled_from([0.0, math.inf, -math.inf]),
    )
    near_integer = st.builds(
        lambda n, off: round_to_dtype(round_to_dtype(float(n), "float32") + off, "float32"),
        st.integers(-(2**25), 2**25),
        st.sampled_from([0.0, 0.5, -0.5, 2.0**-20, -(2.0**-20), 0.25, 0.75]),
    )
    return st.one_of(
        st.sampled_from(F32_SPECIALS),
        st.floats(-8.0, 8.0, width=32),
        st.integers(0, 2**32 - 1).map(_from_bits32),
        subnormal,
        binade_edge,
        near_integer,
        st.floats(width=32),
    )


def float64_values() -> st.SearchStrategy[float]:
    """Python floats weighted to float64 special and edge cases (and float32-range values)."""
    sign = st.sampled_from([1.0, -1.0])
    subnormal = st.builds(lambda s, m: s * m * F64_DENORM_MIN, sign, st.integers(1, 2**52 - 1))
    binade_edge = st.builds(
        lambda s, e, d: s * math.nextafter(2.0**e, d) if d else s * 2.0**e,
        sign,
        st.integers(-1074, 1023),
        st.sampled_from([0.0, math.inf, -math.inf]),
    )
    near_integer = st.builds(
        lambda n, off: float(n) + off,
        st.integers(-(2**54), 2**54),
        st.sampled_from([0.0, 0.5, -0.5, 2.0**-40, 0.25]),
    )
    return st.one_of(
        st.sampled_from(F64_SPECIALS),
        st.floats(-8.0, 8.0),
        st.integers(0, 2**64 - 1).map(_from_bits64),
        subnormal,
        binade_edge,
        near_integer,
        float32_values(),
        st.floats(),
    )


def float_values(dtype: str) -> st.SearchStrategy[float]:
    """:func:`float32_values` or :func:`float64_values`."""
    return float32_values() if dtype == "float32" else float64_values()


def arrays(dtype: str, min_size: int = 1, max_size: int = 40) -> st.SearchStrategy[np.ndarray]:
    """1-D arrays of ``dtype`` drawn from the weighted value strategy."""
    return st.lists(float_values(dtype), min_size=min_size, max_size=max_size).map(
        lambda xs: np.array(xs, dtype=dtype)
    )


def input_names(n_inputs: int) -> tuple[str, ...]:
    """Input names used by generated programs: x, or x, y, z, or x0, x1, ..."""
    if n_inputs == 1:
        return ("x",)
    if n_inputs <= 3:
        return ("x", "y", "z")[:n_inputs]
    return tuple(f"x{i}" for i in range(n_inputs))


ALL_OPS = tuple(op.name for op in OPS)
#: Ops that are bit-exact across implementations (all but the float64-only libm ops).
EXACT_OPS = tuple(op.name for op in OPS if not op.float64_only)


@st.composite
def programs(
    draw,
    dtype: str = "float32",
    n_inputs: int = 1,
    max_instrs: int = 12,
    ops: Iterable[str] | None = None,
) -> Program:
    """Random valid programs over ``ops`` (default: every op the dtype allows)."""
    wanted = set(ALL_OPS if ops is None else ops)
    allowed = [op for op in OPS if op.name in wanted and (dtype == "float64" or not op.float64_only)]
    assert allowed, f"no op of {sorted(wanted)} is allowed in {dtype}"
    n = draw(st.integers(1, max_instrs))
    consts = float_values(dtype)
    instrs: list[Instr] = []
    for i in range(n):
        op = draw(st.sampled_from(allowed))
        kinds = ["value", "value", "input", "const"] if i else ["input", "input", "const"]
        args = []
        for _ in range(op.arity):
            kind = draw(st.sampled_from(kinds))
            if kind == "value":
                args.append(Ref.val(draw(st.integers(0, i - 1))))
            elif kind == "input":
                args.append(Ref.input(draw(st.integers(0, n_inputs - 1))))
            else:
                args.append(Ref.const(round_to_dtype(draw(consts), dtype)))
        instrs.append(Instr(op.name, tuple(args)))
    output = draw(st.one_of(st.just(n - 1), st.integers(0, n - 1)))
    return Program(instrs, input_names(n_inputs), dtype, output)
