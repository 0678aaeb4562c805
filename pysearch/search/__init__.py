"""Evolutionary search for verified float32 approximations (the ``pysearch search`` engine).

:class:`~pysearch.search.loop.Search` runs DEAP's NSGA-II over straight-line programs with
constant fitting (:mod:`.constants`), exhaustive verification of the reported front
(:mod:`.front`), JSON checkpoints (:mod:`.checkpoint`), a live display (:mod:`.progress`)
and a front plot (:mod:`.plot`).
"""

from .config import SearchConfig
from .front import FrontEntry, FrontFile, read_front, write_front
from .loop import Search

__all__ = ["FrontEntry", "FrontFile", "Search", "SearchConfig", "read_front", "write_front"]
