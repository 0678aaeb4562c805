"""Type stubs for the Rust extension (rust/python.rs).

Array arguments must be C-contiguous numpy arrays of the stated dtype (anything else raises
``TypeError``). The core's errors (``CoreError`` in rust/errors.rs) arrive as: an invalid
program ``pysearch.ProgramError``; a NaN or reversed domain, keys out of range ``DomainError``;
an unknown target name ``UnknownTarget``; arguments that do not fit together (a program's inputs
and the rows of ``x``, sample arrays of different lengths) ``ValueError``; outputs too large to
allocate ``MemoryError``; worker threads that cannot start ``WorkerPoolError``; a panic in the
core ``RuntimeError``. Long calls release the GIL and raise ``KeyboardInterrupt`` on Ctrl-C.
Every call computes in IEEE mode (round to nearest, no flush-to-zero) whatever the calling
thread's mode is, and gives that mode back (rust/fpenv.rs); ``ieee_mode()`` does the same for
Python code.
Checked against the compiled module by tests/test_stubs.py (mypy.stubtest).
"""

from typing import Literal, TypeAlias, final, overload

import numpy as np
import numpy.typing as npt

__all__ = [
    "UnknownTarget",
    "DomainError",
    "WorkerPoolError",
    "evaluate",
    "evaluate_programs",
    "fit_eval",
    "fit_constants",
    "fit_laws",
    "tune_constants",
    "sample_ulp_errors",
    "reference",
    "exhaustive_ulp_error",
    "exhaustive_ulp_errors",
    "float32_key_range",
    "float32_from_keys",
    "isa",
    "jit_compiled",
    "jit_isa",
    "op_table",
    "target_names",
    "fp_control",
    "ieee_mode",
]

#: A compiled program as ``Program.compile().as_tuple()`` gives it: (opcodes, args (n x 3),
#: constants, n_inputs, output slot). Stub-only (private, so stubtest expects no runtime name).
_RawProgram: TypeAlias = tuple[npt.NDArray[np.uint8], npt.NDArray[np.int32], npt.NDArray[np.float64], int, int]

class UnknownTarget(ValueError): ...
class DomainError(ValueError): ...
class WorkerPoolError(ValueError): ...

def evaluate(programs: list[_RawProgram], x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray: ...
def evaluate_programs(programs: list, opcode: dict[str, int], x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray: ...
@overload
def fit_eval(program: _RawProgram, consts: np.ndarray, x: np.ndarray, jacobian: Literal[False] = False) -> np.ndarray: ...
@overload
def fit_eval(program: _RawProgram, consts: np.ndarray, x: np.ndarray, jacobian: Literal[True]) -> tuple[np.ndarray, np.ndarray]: ...
@overload
def fit_eval(program: _RawProgram, consts: np.ndarray, x: np.ndarray, jacobian: bool) -> np.ndarray | tuple[np.ndarray, np.ndarray]: ...
def fit_constants(
    programs: list[_RawProgram],
    x_fit: npt.NDArray[np.float64],
    f_fit: npt.NDArray[np.float64],
    scale_fit: npt.NDArray[np.float64],
    x: npt.NDArray[np.float32],
    reference: npt.NDArray[np.float64],
    rounded: npt.NDArray[np.float32],
    max_evals: int = 120,
    tune_below: float = 4.0,
    tune_rounds: int = 8,
) -> dict[str, np.ndarray | list[npt.NDArray[np.float64]]]: ...
def fit_laws(
    programs: list[_RawProgram],
    x: npt.NDArray[np.float64],
    t: npt.NDArray[np.float64],
    space: str,
    loss: str = "lsq",
    delta: float = 1e-3,
    max_iter: int = 40,
    weights: npt.NDArray[np.float64] | None = None,
) -> tuple[list[npt.NDArray[np.float64]], npt.NDArray[np.float64]]: ...
def tune_constants(
    programs: list[_RawProgram],
    x: npt.NDArray[np.float32],
    reference: npt.NDArray[np.float64],
    rounded: npt.NDArray[np.float32],
    rounds: int = 8,
    free: list[int] | None = None,
) -> tuple[list[npt.NDArray[np.float64]], npt.NDArray[np.float64], npt.NDArray[np.float64]]: ...
def sample_ulp_errors(
    programs: list[_RawProgram],
    x: npt.NDArray[np.float32],
    reference: npt.NDArray[np.float64],
    rounded: npt.NDArray[np.float32],
) -> dict[str, np.ndarray]: ...
def reference(
    name: str, x: npt.NDArray[np.float32]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float32], npt.NDArray[np.bool_]]: ...
def exhaustive_ulp_error(
    program: _RawProgram, name: str, a: float, b: float
) -> tuple[dict[str, np.ndarray], float, npt.NDArray[np.float32]]: ...
def exhaustive_ulp_errors(
    programs: list[_RawProgram], name: str, a: float, b: float
) -> tuple[dict[str, np.ndarray], npt.NDArray[np.float32], npt.NDArray[np.float32]]: ...
def float32_key_range(a: float, b: float) -> tuple[int, int]: ...
def float32_from_keys(start: int, count: int) -> npt.NDArray[np.float32]: ...
def isa() -> str: ...
def jit_compiled(programs: list[_RawProgram]) -> list[bool]: ...
def jit_isa() -> str | None: ...
def target_names() -> list[str]: ...
def op_table() -> list[tuple[str, int, bool, bool, bool]]:
    """The core's ops in opcode order: (name, arity, float32 supported, float64 supported,
    compiled by the JIT where it runs)."""
def fp_control() -> int | None: ...

@final
class ieee_mode:
    """Context manager: the body computes in IEEE mode on this thread (see rust/fpenv.rs)."""

    def __init__(self) -> None: ...
    def __enter__(self) -> ieee_mode: ...
    def __exit__(self, exc_type: object, exc: object, tb: object) -> bool: ...
