"""Minimax constants for a fixed program structure, in high precision (the modules below, by job).

Given a program, its constants are re-fitted to minimise the real-number max relative (or
absolute) error against a target on an interval, keeping the program's own parameterisation
(its operation graph) fixed. Two evaluators serve the fit: mpmath (50 digits) with exact
derivatives in the constants (forward mode) for the small exact solves, and double-double
numpy (:mod:`pysearch.double_double`, about 32 digits, constants as double-double pairs)
for the error at many points, which is what costs time.

- :func:`affine_in_constants`: whether the output is affine in the constants (Horner and
  Estrin ``fma`` chains are; products of constants, divisions by constant-dependent values and
  square roots are not), decided from the operation graph.
- :func:`remez`: Remez exchange on the program's error. Each iteration solves, in mpmath on a
  reference of n + 1 points (n free constants), ``e(x_j) + J_j d = (-1)^j E`` for the constant
  update ``d`` and the level ``E``: for an affine program this is the classical linear Remez
  system and one solve is exact; otherwise it is a Newton step, repeated and halved while the
  distance from equioscillation on the reference drops. The reference is then exchanged for
  alternating extrema of the new error (dense sampling plus golden-section refinement).
- :func:`slp_minimax`: for nonlinear programs far from equioscillation, where Newton needs a
  better start: trust-region sequential linear programming on a dense grid.
- :func:`store_constants`: constants for the program's dtype, fpminimax-style: the constant
  whose rounding costs most is rounded (both neighbours tried for the costliest two), the
  remaining ones are re-fitted by linear programming on the linearised error, and so on; then
  coordinate moves to nearby representable values.
- :func:`polish`: all of the above. The result holds the exact (high-precision) constants with
  their error, and the stored program with its error measured by :func:`max_error` (mpmath);
  it is never worse than the program it started from.

Modules: :mod:`.model` (degree in the constants, mpmath value and gradient, float64 Jacobian),
:mod:`.problem` (the error against the target and its extrema), :mod:`.remez` (Remez exchange,
sequential linear programming), :mod:`.rounding` (storing in the dtype), :mod:`.polish` (the
entry point). ``pysearch.baselines.program_minimax`` re-exports the public names.
"""

from .model import SUPPORTED_OPS, MpModel, affine_in_constants, constant_degree
from .polish import Polished, polish
from .problem import Problem
from .remez import RemezResult, remez, slp_minimax
from .rounding import store_constants

__all__ = [
    "MpModel",
    "Polished",
    "Problem",
    "RemezResult",
    "SUPPORTED_OPS",
    "affine_in_constants",
    "constant_degree",
    "polish",
    "remez",
    "slp_minimax",
    "store_constants",
]
