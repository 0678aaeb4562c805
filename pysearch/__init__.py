"""pysearch: evolve fast, verified float32 approximations; fit and discover scaling laws.

The core API: programs (:mod:`pysearch.program`), evaluation and ULP error in Rust
(:func:`evaluate`, :func:`ulp_error`, :func:`verify`), domains and targets.

Errors are named ``ValueError`` subclasses: :class:`ProgramError` (a program fails validation),
:class:`DomainError` (NaN or reversed domain bounds, float32 keys out of range),
:class:`UnknownTarget` (the Rust core has no built-in target of that name) and
:class:`WorkerPoolError` (the Rust core could not start its worker threads). Arguments that do
not fit together (a program's inputs and the rows of ``x``) raise plain ``ValueError``, wrong
array types ``TypeError``; outputs too large to allocate raise ``MemoryError``; Ctrl-C interrupts
any long evaluation with ``KeyboardInterrupt``. The Rust core raises each of these from one enum
(``CoreError`` in rust/errors.rs); see docs/architecture.md.
"""

from pysearch._core import UnknownTarget, WorkerPoolError
from pysearch.domain import Domain, DomainError
from pysearch.evaluation import ErrorStats, ErrorTable, evaluate, ulp_error, verify
from pysearch.program import Program, ProgramError, parse
from pysearch.targets import Target, get_target, reference

__all__ = [
    "Domain",
    "DomainError",
    "ErrorStats",
    "ErrorTable",
    "Program",
    "ProgramError",
    "Target",
    "UnknownTarget",
    "WorkerPoolError",
    "evaluate",
    "get_target",
    "parse",
    "reference",
    "ulp_error",
    "verify",
]
#: The package version; pyproject.toml's [project] version says the same (tests/test_newcomer.py checks).
__version__ = "0.1.0"
