"""The Pareto front of law candidates and the choice of one law from it.

Choice from the front uses training rows only (held-out rows are never seen), by one of two
stated rules (:data:`SELECTION_RULES`, recorded in the result):

- ``"extrapolation"`` (default): cross-validated backtests of extrapolation inside the training
  data, along the axis ``--holdout`` names, with a range guard: see :mod:`pysearch.laws.selection`
  (used by discovery; :func:`choose_by_extrapolation` here is the older single-cut rule on the
  first input).
- ``"knee"``: sort the front by complexity and score each member by the drop in log error per
  unit of complexity from the previous member; among members whose error is within 2x the
  front's lowest, pick the highest score.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from deap import base

from pysearch.laws.constant_fit import refit_predict, search_error
from pysearch.laws.forms import to_space
from pysearch.laws.selection import RULE_TEXT, largest_rows
from pysearch.program import Program

#: The front-choice rules, as stated in results.
SELECTION_RULES = {
    "knee": (
        "knee: among Pareto members with train error <= 2x the lowest, the one with the largest "
        "drop in log(train error) per unit of complexity from the next simpler member"
    ),
    "extrapolation": RULE_TEXT,
}


class _LawFitness(base.Fitness):
    weights = (-1.0, -1.0)  # minimise (complexity, error)


@dataclass
class Candidate:
    """A program with fitted constants, its complexity (cost) and train error in the fit space."""

    program: Program
    complexity: float
    error: float
    fitness: _LawFitness = field(default_factory=_LawFitness, repr=False, compare=False)




def pareto(cands: Sequence[Candidate]) -> list[Candidate]:
    """Non-dominated candidates (finite error), sorted by complexity."""
    best: dict[float, Candidate] = {}
    for c in cands:
        if math.isfinite(c.error) and (c.complexity not in best or c.error < best[c.complexity].error):
            best[c.complexity] = c
    front: list[Candidate] = []
    for cx in sorted(best):
        c = best[cx]
        if not front or c.error < front[-1].error:
            front.append(c)
    return front


def inner_holdout(x0: np.ndarray, frac: float = 0.1) -> np.ndarray:
    """Rows at the largest distinct values of ``x0``, as few values as cover ``frac`` of the rows."""
    return largest_rows(x0, frac)


def choose_by_extrapolation(
    front: Sequence[Candidate], X: np.ndarray, y: np.ndarray, space: str, loss: str = "lsq", delta: float = 1e-3
) -> tuple[Candidate, list[float]] | None:
    """The member that best predicts the training rows at the largest first input when refitted
    without them (see :func:`inner_holdout` and the module doc); ``None`` when there is no such
    split (one distinct value, or fewer than 3 rows left to fit). Also returns each member's
    inner-extrapolation error."""
    X = np.atleast_2d(np.asarray(X, dtype=np.float64))
    inner = inner_holdout(X[0])
    if inner.all() or (~inner).sum() < 3:
        return None
    preds = refit_predict([c.program for c in front], X[:, ~inner], to_space(y[~inner], space), X[:, inner],
                          space, loss, delta)
    t_in = to_space(y[inner], space)
    errs = [float(search_error(p[None], t_in, space, loss, delta)[0]) for p in preds]
    best = min(range(len(front)), key=lambda i: (errs[i] if math.isfinite(errs[i]) else math.inf, front[i].complexity))
    if not math.isfinite(errs[best]):
        return None
    return front[best], errs


def choose(front: Sequence[Candidate]) -> Candidate:
    """The knee of the front by :data:`SELECTION_RULES` ``["knee"]`` (training errors only)."""
    if not front:
        raise ValueError("empty Pareto front")
    e_min = min(c.error for c in front)
    floor = 1e-300
    best, best_score = front[0], -math.inf
    for i, c in enumerate(front):
        if c.error > 2 * e_min:
            continue
        if i == 0:
            score = 0.0
        else:
            prev = front[i - 1]
            score = (math.log(max(prev.error, floor)) - math.log(max(c.error, floor))) / max(c.complexity - prev.complexity, 1e-9)
        if score > best_score:
            best, best_score = c, score
    return best
