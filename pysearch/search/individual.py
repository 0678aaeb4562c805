"""A member of the search population: a program, its sample errors and its NSGA-II fitness."""

from __future__ import annotations

import copy
import math

from deap import base

from ..program import Program


class SearchFitness(base.Fitness):
    """(error objective, cost objective), both minimised."""

    weights = (-1.0, -1.0)


class Individual:
    """A program with its sample errors and its DEAP fitness."""

    def __init__(self, program: Program, max_ulp: float, mean_ulp: float, fitness_values: tuple[float, float],
                 text: str | None = None):
        self.program = program
        #: The genome's canonical text (a program's text unless the problem gives another genome's).
        self.text = program.to_text() if text is None else text
        self.max_ulp = max_ulp
        self.mean_ulp = mean_ulp
        self.fitness = SearchFitness(fitness_values)

    def __deepcopy__(self, memo: dict) -> "Individual":
        """A copy for DEAP's archive, which deep-copies what it keeps: a program is copied sharing
        its (immutable) instructions and what is known of them (another genome deeply), the
        fitness by DEAP's own copy; the rest are immutable values."""
        new = object.__new__(Individual)
        new.__dict__.update(self.__dict__)
        p = self.program
        new.program = p._copy() if isinstance(p, Program) else copy.deepcopy(p, memo)
        new.fitness = copy.deepcopy(self.fitness, memo)
        memo[id(self)] = new
        return new

    def __repr__(self) -> str:
        return f"Individual({self.text!r}, error={self.max_ulp:.4g}, objectives={self.fitness.values})"


def structure_key(p: Program) -> str:
    """The program with its constants blanked: programs that differ only in constants share it."""
    parts = []
    for ins in p.instrs:
        args = ",".join("c" if a.kind == "const" else f"{a.kind[0]}{a.index}" for a in ins.args)
        parts.append(f"{ins.op}({args})")
    return ";".join(parts) + f">{p.output}"


def error_objective(max_ulp: float, constraint: float | None) -> float:
    """The error objective: log2(1 + max ULP), no lower than the run's ``max_ulp`` bound (met is met)."""
    m = max_ulp if math.isfinite(max_ulp) else 1e30
    if constraint is not None:
        m = max(m, constraint)
    return math.log2(1.0 + m)
