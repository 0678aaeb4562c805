"""Classical baselines: Taylor, Padé, Chebyshev, minimax (real and float32 coefficients).

Fits are computed in 50-digit arithmetic (:mod:`.approximations`), float32 coefficients are
tuned in the spirit of Sollya's ``fpminimax`` (:mod:`.fpminimax`), and any approximation becomes
a :class:`pysearch.program.Program` in Horner or Estrin order, with fma or mul-then-add
(:mod:`.programs`). ``python -m pysearch.baselines`` prints a table of their errors.
"""

from .approximations import (
    Approximation,
    chebyshev,
    max_error,
    minimax,
    pade,
    rational_minimax,
    resolve_target,
    taylor,
)
from .fpminimax import FloatMinimax, fpminimax, round_sequentially
from .programs import ORDERS, estrin, horner, polynomial, rational, to_program

__all__ = [
    "ORDERS",
    "Approximation",
    "FloatMinimax",
    "chebyshev",
    "estrin",
    "fpminimax",
    "horner",
    "max_error",
    "minimax",
    "pade",
    "polynomial",
    "rational",
    "rational_minimax",
    "resolve_target",
    "round_sequentially",
    "taylor",
    "to_program",
]
