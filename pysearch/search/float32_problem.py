"""The float32 kernel problem: one-input float32 programs scored by ULP error, verified exhaustively.

The problem ``pysearch search`` runs. Its configuration is a :class:`~.config.SearchConfig`; the
search sample (float32 points of the domain plus the counterexamples verification found) lives on
the :class:`~.loop.Search`, whose :class:`~.verify.Verification` and :class:`~.budget.BudgetPlanning`
halves this problem drives. Scoring: max and mean ULP error on the sample in one
:func:`~pysearch.evaluation.ulp_error` call; objectives (log2(1 + max ULP) bounded below by
``max_ulp``, cost or latency). Constants: :func:`~.constants.optimize_constants_batch`, one core call for a generation's new structures.
Verification: every ``verify_every`` generations a planned round (:meth:`~.verify.Verification.verify_round`:
polish, screen, exhaustive check); the final round's time is reserved inside a budget.
Restarts (``restart_after`` G > 0): after G generations in a row without a change of the archive's
(error, cost) pairs, the population starts again from random programs (the archive, the verified
front and the caches stay); the count and the archive's digest are the problem's checkpointed state.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from ..domain import Domain
from ..evaluation import ulp_error
from ..program import Program, parse
from ..variation import random_program
from .classical import seed_programs
from .config import SearchConfig
from .constants import FitSample, optimize_constants_batch
from .fields import need_int, need_str
from .individual import error_objective
from .problem import Problem, Scores, digest, register

if TYPE_CHECKING:
    from .loop import Search


@register
class Float32Problem(Problem):
    """One-input float32 approximations of ``config.target`` on ``config.domain``."""

    kind = "float32"

    def __init__(self, config: SearchConfig):
        self.config = config
        self.search: Search | None = None
        self.stalled = 0  # generations in a row without a change of the archive
        self.population_restarts = 0
        self._signature = ""

    def attach(self, search: "Search") -> None:
        cfg = self.config
        self.search = search
        search.target = cfg.target
        search.domain = Domain(*cfg.domain)
        search._base_x = np.ascontiguousarray(search.domain.sample(cfg.sample_size, cfg.seed), dtype=np.float32)

    def _search(self) -> "Search":
        if self.search is None:
            raise RuntimeError("Float32Problem is used by a Search: create Search(config) first")
        return self.search

    def rebuild_sample(self, search: "Search") -> None:
        extra = np.array(search.extra_x, dtype=np.float32)
        search.x = np.ascontiguousarray(np.concatenate([search._base_x, extra]), dtype=np.float32)
        search.fit_sample = FitSample.build(search.target, search.x, self.config.fit_points)

    def initial_programs(self, rng: np.random.Generator, n: int) -> list[Program]:
        cfg = self.config
        programs: list[Program] = []
        if cfg.seed_baselines:
            programs += baseline_programs(cfg)[: n // 2]
        programs += [parse(t) for t in cfg.seed_programs][: max(0, n - len(programs))]
        while len(programs) < n:
            k = int(rng.integers(1, cfg.init_instrs + 1))
            programs.append(random_program(rng, k, cfg.ops, dtype=cfg.dtype))
        return programs

    def measure(self, p: Program) -> float:
        return p.latency() if self.config.objective == "latency" else p.cost(self.config.cost_weights)

    def score(self, programs: list[Program]) -> Scores:
        s = self._search()
        table = ulp_error(programs, s.x, s.target)
        mx = np.asarray(table.max_ulp, dtype=np.float64)
        mx = np.where(np.isnan(mx), math.inf, mx)
        mean = np.asarray(table.mean_ulp, dtype=np.float64)
        objectives = [(error_objective(float(m), self.config.max_ulp), self.measure(p)) for p, m in zip(programs, mx)]
        return Scores(mx, mean, objectives, len(s.x))

    def fit_constants(self, programs: list[Program]) -> list[Program]:
        sample = self._search().fit_sample
        return [r.program for r in optimize_constants_batch(programs, sample)]

    def verify_round(self, search: "Search") -> list:
        return search.verify_round(search.round_limit(self.config.verify_points))

    def restart_due(self, search: "Search") -> bool:
        """After ``config.restart_after`` generations in a row without a change of the archive."""
        if not self.config.restart_after:
            return False
        sig = digest([tuple(ind.fitness.values) for ind in search.archive])
        if sig != self._signature:
            self._signature, self.stalled = sig, 0
            return False
        self.stalled += 1
        if self.stalled < self.config.restart_after:
            return False
        self.stalled = 0
        self.population_restarts += 1
        return True

    def state(self) -> dict:
        if not self.config.restart_after:
            return {}
        return {"stalled": self.stalled, "population_restarts": self.population_restarts,
                "signature": self._signature}

    def restore(self, state: dict) -> None:
        self.stalled = need_int(state.get("stalled", 0), "problem_state.stalled", 0, 1 << 31)
        self.population_restarts = need_int(state.get("population_restarts", 0), "problem_state.population_restarts",
                                            0, 1 << 31)
        self._signature = need_str(state.get("signature", ""), "problem_state.signature", 64)

    def reserve_seconds(self, search: "Search", budget_s: float) -> float:
        plan = search.budget_plan(budget_s)  # re-planned as verifications are measured
        return plan.verify_s * plan.final_verifications + search.step_seconds()

    def settings_json(self) -> dict:
        return self.config.to_json_obj()

    def to_json_obj(self) -> dict:
        """The plain :class:`SearchConfig` document (no problem kind: the format older checkpoints have)."""
        return self.config.to_json_obj()

    @classmethod
    def from_settings_json(cls, d: dict, field: str) -> "Float32Problem":
        return cls(SearchConfig.from_json_obj(d, field))


def baseline_programs(cfg: SearchConfig) -> list[Program]:
    """Classical minimax polynomial programs for ``--seed-baselines``, limited to the run's ops."""
    allowed = set(cfg.ops)
    return [p for p in seed_programs(cfg.target, cfg.domain, cfg.max_instrs) if {i.op for i in p.instrs} <= allowed]
