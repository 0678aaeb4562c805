"""pysearch: evolve fast, verified float32 approximations; fit and discover scaling laws.

The core API: programs (:mod:`pysearch.program`), evaluation and ULP error in Rust
(:func:`evaluate`, :func:`ulp_error`, :func:`verify`), domains and targets.
"""

from pysearch.domain import Domain
from pysearch.evaluation import ErrorStats, ErrorTable, evaluate, ulp_error, verify
from pysearch.program import Program, ProgramError, parse
from pysearch.targets import Target, get_target, reference

__all__ = [
    "Domain",
    "ErrorStats",
    "ErrorTable",
    "Program",
    "ProgramError",
    "Target",
    "evaluate",
    "get_target",
    "parse",
    "reference",
    "ulp_error",
    "verify",
]
#: The package version; pyproject.toml's [project] version says the same (tests/test_newcomer.py checks).
__version__ = "0.1.0"
