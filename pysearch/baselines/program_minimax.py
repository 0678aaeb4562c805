"""Minimax constants for a fixed program structure: the public names of
:mod:`pysearch.baselines.minimax_program` (where the code lives, split by job), importable from
here too. The names are listed once, in ``minimax_program.__all__``."""

from . import minimax_program
from .minimax_program import *  # noqa: F403

__all__ = minimax_program.__all__
