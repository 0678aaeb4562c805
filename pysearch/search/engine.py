"""The search engine's public names, for code written against the former one-module engine.

The engine is split by job: :mod:`.config` (the run configuration), :mod:`.individual`
(population members), :mod:`.loop` (the evolutionary loop, :class:`~.loop.Search`),
:mod:`.verify` (screening and verification), :mod:`.budget` (time budgets) and
:mod:`.checkpoint` (state to and from JSON). New code imports from those modules.
"""

from .budget import FINAL_FRACTION, BudgetPlan
from .config import DEFAULT_OPS, MAX_EXTRA_POINTS, OBJECTIVES, SearchConfig
from .individual import Individual, structure_key
from .loop import GenerationInfo, Search

__all__ = ["BudgetPlan", "DEFAULT_OPS", "FINAL_FRACTION", "GenerationInfo", "Individual", "MAX_EXTRA_POINTS",
           "OBJECTIVES", "Search", "SearchConfig", "structure_key"]
