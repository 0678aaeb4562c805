"""Minimax constants for a fixed program structure: the public names of
:mod:`pysearch.baselines.minimax_program`, where the code lives (split by job), importable from here too."""

from .minimax_program import (
    SUPPORTED_OPS,
    MpModel,
    Polished,
    Problem,
    RemezResult,
    affine_in_constants,
    constant_degree,
    polish,
    remez,
    slp_minimax,
    store_constants,
)

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
