"""One program structure evaluated for many constant vectors at once, in float64 without rounding.

Constant fitting evaluates the same structure thousands of times with different constants. A
:class:`FitKernel` walks the program once per call with the constants as a ``(K, m)`` matrix
(one row per constant vector), one numpy operation per instruction, each op by its registry
``fit`` hook (:mod:`pysearch.ops`: float64, ``fma`` unfused). It serves both constant fits:

- float32 kernels (``search/constants.py``, :class:`~pysearch.search.constants.ConstantBatch`):
  every op, the real-valued stage before float32 tuning;
- scaling laws (``laws/constant_fit.py``, ``ConstKernel``): float64 programs, restricted to the
  registry's ``law_fit`` ops (the op set law search uses; others are refused by name).

The call runs in the Rust core (``_core.fit_eval``: one GIL-free call for all constant vectors,
the same float64 ``fit`` semantics, bit for bit for the correctly rounded ops and to ~1e-15
relative for exp/log/pow, whose libm may differ from numpy's); :meth:`FitKernel.numpy` is the
numpy walk it replaces, kept as the reference. :meth:`FitKernel.jacobian` gives the exact
forward-mode derivatives with respect to the constants (``None`` where an op has none).

Bit-exactness does not matter here: reported errors always come from the engine.
"""

from __future__ import annotations

from typing import Callable, Collection, Sequence

import numpy as np

from . import _core
from .ops import OP_BY_NAME
from .program import Program

#: Ops without a forward-mode derivative in the core (piecewise constant or exponent handling).
_NO_DERIVATIVE = frozenset({"rint", "floor", "ldexp", "getexp", "getmant"})


class FitKernel:
    """``kernel(C, cols)``: outputs of shape ``(K, n)`` for constants ``C`` ``(K, m)`` (or one vector)
    and the inputs ``cols`` (one length-n float64 array per program input, or an
    ``(inputs, n)`` matrix).

    ``ops``: the ops allowed (default: every op); another op is a ValueError naming ``purpose``
    and the allowed ops.
    """

    def __init__(self, program: Program, ops: Collection[str] | None = None, purpose: str = "here") -> None:
        self.program = program
        self.steps: list[tuple[Callable, list[tuple[str, int]]]] = []
        for op, args in program.numbered_operands():
            fn = OP_BY_NAME[op].fit if ops is None or op in ops else None
            if fn is None:
                allowed = sorted(ops) if ops is not None else sorted(OP_BY_NAME)
                raise ValueError(f"op {op!r} is not supported {purpose}; use {allowed}")
            self.steps.append((fn, args))
        self.n_consts = len(program.constants())
        compiled = program.compile()
        self._raw = (compiled.opcodes, compiled.args, np.zeros(self.n_consts), compiled.n_inputs, compiled.output)
        live = {op for op, _ in program.numbered_operands()}
        self.has_jacobian = not (live & _NO_DERIVATIVE)

    @staticmethod
    def _inputs(cols: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        if isinstance(cols, np.ndarray) and cols.ndim == 2:
            return np.ascontiguousarray(cols, dtype=np.float64)
        return np.ascontiguousarray(np.stack([np.asarray(c, dtype=np.float64) for c in cols]))

    def _consts(self, C: np.ndarray) -> np.ndarray:
        C = np.asarray(C, dtype=np.float64)
        return np.ascontiguousarray(C if C.ndim == 2 else C.reshape(1, self.n_consts))

    def __call__(self, C: np.ndarray, cols: Sequence[np.ndarray]) -> np.ndarray:
        return _core.fit_eval(self._raw, self._consts(C), self._inputs(cols))

    def jacobian(self, C: np.ndarray, cols: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray] | None:
        """``(outputs (K, n), derivatives (K, n, m))`` with respect to the constants, or ``None``
        when an op of the program has no derivative (rint, floor, ldexp, getexp, getmant)."""
        if not self.has_jacobian:
            return None
        return _core.fit_eval(self._raw, self._consts(C), self._inputs(cols), jacobian=True)

    def numpy(self, C: np.ndarray, cols: Sequence[np.ndarray]) -> np.ndarray:
        """The same outputs, one numpy operation per instruction (the reference for the core)."""
        C = np.atleast_2d(C)
        vals: list[np.ndarray] = []
        with np.errstate(all="ignore"), _core.ieee_mode():  # IEEE whatever the process set (FTZ/DAZ)
            for fn, args in self.steps:
                operands = []
                for kind, i in args:
                    if kind == "const":
                        operands.append(C[:, i : i + 1])
                    elif kind == "input":
                        operands.append(cols[i][None, :])
                    else:
                        operands.append(vals[i])
                vals.append(np.asarray(fn(*operands), dtype=np.float64))
        out = vals[self.program.output]
        shape = (C.shape[0], len(cols[0]))
        return out if out.shape == shape else np.broadcast_to(out, shape).copy()
