"""The evolutionary search: DEAP's NSGA-II over straight-line programs, one batch per generation.

Each generation: binary tournaments (dominance, then crowding distance) pick parents; mutation
and instruction-block crossover make children; new program structures get their constants
fitted (:mod:`.constants`, cached by structure, Lamarckian: the fitted constants are inherited);
all children are scored in one :func:`~pysearch.evaluation.ulp_error` call on the search sample;
DEAP's ``selNSGA2`` keeps the population, ``ParetoFront`` archives the best seen, ``Statistics``
and ``Logbook`` record progress. Every few generations the archive's most promising programs are
verified (:mod:`.verify`); time budgets are planned by :mod:`.budget`.

A run is a pure function of its configuration and seed: randomness comes from one numpy
``Generator`` whose state is saved with the rest in a JSON checkpoint (:mod:`.checkpoint`) at
generation boundaries.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from deap import tools
from deap.tools.emo import assignCrowdingDist

from ..domain import Domain
from ..evaluation import ulp_error
from ..program import Program, parse
from ..variation import crossover, mutate, random_program
from .budget import BudgetPlanning
from .checkpoint import checkpoint_state, committed_state, restore_state, validate_checkpoint
from .classical import seed_programs
from .config import SearchConfig
from .constants import FitSample, optimize_constants_batch
from .fields import FieldError
from .front import FrontEntry
from .individual import Individual, error_objective, structure_key
from .verify import Verification


@dataclass
class GenerationInfo:
    """What one generation did, for progress displays."""

    generation: int
    evaluations: int
    optimised: int
    seconds: float
    verified: list[FrontEntry] = field(default_factory=list)


class Search(Verification, BudgetPlanning):
    """A search run: create fresh from a :class:`SearchConfig`, or restore from a checkpoint dict."""

    def __init__(self, config: SearchConfig, checkpoint: dict | None = None):
        self.config = config
        self.target = config.target
        self.domain = Domain(*config.domain)
        self.rng = np.random.default_rng(config.seed)
        self._base_x = np.ascontiguousarray(self.domain.sample(config.sample_size, config.seed), dtype=np.float32)
        self.extra_x: list[float] = []
        self.cache: dict[str, str] = {}  # structure key -> fitted program text (decides results)
        self._cache_programs: dict[str, Program] = {}
        self.verify_cache: dict[str, dict] = {}  # text -> facts verified by this process (saves time only)
        self.screen_cache: dict[str, float] = {}  # text -> max ulp on the screening sample
        self.rejected: set[str] = set()
        self.front: list[FrontEntry] = []
        #: Verified programs reported beside ``front`` (final rounds, an earlier front.json): they
        #: never steer the evolution, so a finished run resumes exactly, and the report only grows.
        self.reported: list[FrontEntry] = []
        #: Loaded front entries whose claimed figures did not hold when verified again (one line each).
        self.corrections: list[str] = []
        #: The run's own stopping limits (``budget_s``, ``generations``), kept for a resume.
        self.limits: dict = {}
        #: Most verifications the final round may spend (set when the budget cannot pay for all).
        self.final_limit: int | None = None
        #: Candidates the last final round left unverified for lack of time.
        self.final_skipped = 0
        self._calibrated_s: float | None = None
        self._init_seconds = 0.0
        self._final_skipped = 0
        self.population: list[Individual] = []
        self.archive = tools.ParetoFront(similar=lambda a, b: True)
        self.logbook = tools.Logbook()
        self.stats = tools.Statistics(key=lambda ind: ind.max_ulp)
        self.stats.register("min_ulp", np.min)
        self.stats.register("median_ulp", np.median)
        self.generation = 0
        self.evaluations = 0
        self.optimisations = 0
        self.elapsed = 0.0
        self.verify_seconds: list[float] = []
        self.deadline: float | None = None  # monotonic time the current run() must end by
        self._screen_x: np.ndarray | None = None
        self._screen_ref: np.ndarray | None = None
        if checkpoint is None:
            self._rebuild_sample()
            self._initialise()
        else:
            restore_state(self, checkpoint)
        self._commit()

    # ------------------------------------------------------------ samples
    def _rebuild_sample(self) -> None:
        extra = np.array(self.extra_x, dtype=np.float32)
        self.x = np.ascontiguousarray(np.concatenate([self._base_x, extra]), dtype=np.float32)
        self.fit_sample = FitSample.build(self.target, self.x)

    # ------------------------------------------------------------ scoring
    def measure(self, p: Program) -> float:
        return p.latency() if self.config.objective == "latency" else p.cost(self.config.cost_weights)

    def _score(self, programs: list[Program]) -> list[Individual]:
        """Evaluate all programs in one batch on the search sample."""
        if not programs:
            return []
        table = ulp_error(programs, self.x, self.target)
        self.evaluations += len(programs) * len(self.x)
        mx = np.asarray(table.max_ulp, dtype=np.float64)
        mean = np.asarray(table.mean_ulp, dtype=np.float64)
        out = []
        for p, m, a in zip(programs, mx, mean):
            m = float(m) if not math.isnan(m) else math.inf
            out.append(Individual(p, m, float(a), (error_objective(m, self.config.max_ulp), self.measure(p))))
        return out

    def _optimise(self, programs: list[Program], budget: int) -> tuple[list[Program], dict[int, Program], int]:
        """Fit constants of new structures (up to ``budget``); offer cached fits as alternatives."""
        out: list[Program] = []
        alternatives: dict[int, Program] = {}
        todo: dict[str, int] = {}  # new structure -> index of its first program (fitted, in one batch)
        for i, p in enumerate(programs):
            if p.constants():
                key = structure_key(p)
                if key not in self.cache and key not in todo and len(todo) < budget:
                    todo[key] = i
        for key, res in zip(todo, optimize_constants_batch([programs[i] for i in todo.values()], self.fit_sample)):
            self.cache[key] = res.program.to_text()
            self._cache_programs[key] = res.program
        used = len(todo)
        for i, p in enumerate(programs):
            if not p.constants():
                out.append(p)
                continue
            key = structure_key(p)
            if todo.get(key) == i:
                out.append(self._cache_programs[key])
            elif key in self.cache:
                fitted = self._cache_programs.get(key)
                if fitted is None:
                    fitted = self._cache_programs[key] = parse(self.cache[key])
                if fitted.to_text() != p.to_text():
                    alternatives[i] = fitted
                out.append(p)
            else:
                out.append(p)
        self.optimisations += used
        return out, alternatives, used

    def _make_individuals(self, programs: list[Program], budget: int) -> tuple[list[Individual], int]:
        progs, alts, used = self._optimise(programs, budget)
        alt_idx = sorted(alts)
        scored = self._score(progs + [alts[i] for i in alt_idx])
        inds = scored[: len(progs)]
        for k, i in enumerate(alt_idx):
            alt = scored[len(progs) + k]
            if (alt.max_ulp, alt.mean_ulp) <= (inds[i].max_ulp, inds[i].mean_ulp):
                inds[i] = alt
        return inds, used

    # ------------------------------------------------------------ lifecycle
    def _initialise(self) -> None:
        t0 = time.perf_counter()
        cfg = self.config
        programs = []
        if cfg.seed_baselines:
            programs += _baseline_programs(cfg)[: cfg.population // 2]
        programs += [parse(t) for t in cfg.seed_programs][: max(0, cfg.population - len(programs))]
        while len(programs) < cfg.population:
            n = int(self.rng.integers(1, cfg.init_instrs + 1))
            programs.append(random_program(self.rng, n, cfg.ops, dtype=cfg.dtype))
        inds, _ = self._make_individuals(programs, budget=cfg.population)
        self.population = self._select(inds, cfg.population)
        self.archive.update(inds)
        self._record(len(inds), 0, 0.0)
        self._init_seconds = time.perf_counter() - t0

    def _select(self, inds: list[Individual], k: int) -> list[Individual]:
        seen: set[str] = set()
        unique = []
        for ind in inds:
            if ind.text not in seen:
                seen.add(ind.text)
                unique.append(ind)
        return tools.selNSGA2(unique, min(k, len(unique)), nd="log")

    def _tournament(self, pop: list[Individual], k: int) -> list[Individual]:
        """Binary tournaments on dominance, then crowding distance (DEAP's DCD rule), numpy-seeded."""
        for front in tools.sortLogNondominated(pop, len(pop)):
            assignCrowdingDist(front)
        idx = self.rng.integers(len(pop), size=(k, 2))
        ties = self.rng.random(k)
        chosen = []
        for (i, j), t in zip(idx, ties):
            a, b = pop[int(i)], pop[int(j)]
            if a.fitness.dominates(b.fitness):
                chosen.append(a)
            elif b.fitness.dominates(a.fitness):
                chosen.append(b)
            elif a.fitness.crowding_dist != b.fitness.crowding_dist:
                chosen.append(a if a.fitness.crowding_dist > b.fitness.crowding_dist else b)
            else:
                chosen.append(a if t < 0.5 else b)
        return chosen

    def _vary(self, parents: list[Individual]) -> list[Program]:
        cfg = self.config
        children: list[Program] = []
        for i in range(0, len(parents) - 1, 2):
            a, b = parents[i].program, parents[i + 1].program
            if self.rng.random() < cfg.crossover_rate:
                pair = list(crossover(self.rng, a, b))
                for j, (c, parent) in enumerate(zip(pair, (a, b))):
                    if len(c.instrs) > cfg.max_instrs or c.to_text() == parent.to_text():
                        pair[j] = mutate(self.rng, parent, cfg.ops, cfg.max_instrs)
                children += pair
            else:
                children.append(mutate(self.rng, a, cfg.ops, cfg.max_instrs))
                children.append(mutate(self.rng, b, cfg.ops, cfg.max_instrs))
        return children

    def step(self) -> GenerationInfo:
        """Run one generation and commit it."""
        t0 = time.perf_counter()
        cfg = self.config
        evals0 = self.evaluations
        parents = self._tournament(self.population, cfg.population)
        children = self._vary(parents)
        offspring, used = self._make_individuals(children, cfg.opt_per_generation)
        self.population = self._select(self.population + offspring, cfg.population)
        self.archive.update(offspring)
        self.generation += 1
        verified: list[FrontEntry] = []
        if self.generation % cfg.verify_every == 0:
            verified = self.verify_round(self.round_limit(cfg.verify_points))
        seconds = time.perf_counter() - t0
        self._record(self.evaluations - evals0, used, seconds)
        self._commit()
        return GenerationInfo(self.generation, self.evaluations - evals0, used, seconds, verified)

    def _record(self, evals: int, used: int, seconds: float) -> None:
        rec = self.stats.compile(self.population)
        self.logbook.record(
            gen=self.generation, evals=evals, optimised=used, seconds=round(seconds, 4),
            archive=len(self.archive), front=len(self.front),
            **{k: float(v) for k, v in rec.items()},
        )

    def _rescore_all(self) -> None:
        """Re-evaluate population and archive after the sample changed."""
        pop = self._score([ind.program for ind in self.population])
        arch = self._score([ind.program for ind in self.archive])
        self.population = pop
        self.archive = tools.ParetoFront(similar=lambda a, b: True)
        self.archive.update(arch)
        self.archive.update(pop)

    # ------------------------------------------------------------ checkpoints
    def _commit(self) -> None:
        """Snapshot the state at a generation boundary (what a checkpoint records)."""
        self._committed = committed_state(self)

    def checkpoint_state(self) -> dict:
        """The last committed state as a JSON-able dict (plus the time-saving caches)."""
        return checkpoint_state(self)

    @classmethod
    def from_checkpoint(cls, ck: dict) -> "Search":
        """A search continuing from a checkpoint document; raise ``ValueError`` naming a bad field."""
        try:
            validate_checkpoint(ck)
        except FieldError as e:
            raise ValueError(f"checkpoint is malformed: {e}") from None
        return cls(SearchConfig.from_json_obj(ck["config"]), checkpoint=ck)

    # ------------------------------------------------------------ driver
    def run(self, generations: int | None = None, budget_s: float | None = None,
            on_generation: Callable[["Search", GenerationInfo], None] | None = None,
            on_checkpoint: Callable[["Search"], None] | None = None, checkpoint_every_s: float = 30.0) -> None:
        """Run generations until ``generations`` (total) or ``budget_s`` (total seconds) is reached.

        Time for the final verification round is reserved inside the budget. ``on_checkpoint`` is
        called at most every ``checkpoint_every_s`` seconds, after a generation.
        """
        start = time.monotonic()
        elapsed0 = self.elapsed
        self.deadline = None if budget_s is None else start + (budget_s - elapsed0)
        last_ckpt = start
        while True:
            if generations is not None and self.generation >= generations:
                break
            if budget_s is not None:
                plan = self.budget_plan(budget_s)  # re-planned as verifications are measured
                reserve = plan.verify_s * plan.final_verifications + self.step_seconds()
                if self.elapsed + reserve >= budget_s:
                    break
            info = self.step()
            self.elapsed = elapsed0 + (time.monotonic() - start)
            if on_generation is not None:
                on_generation(self, info)
            if on_checkpoint is not None and time.monotonic() - last_ckpt >= checkpoint_every_s:
                on_checkpoint(self)
                last_ckpt = time.monotonic()


def _baseline_programs(cfg: SearchConfig) -> list[Program]:
    """Classical minimax polynomial programs for ``--seed-baselines``, limited to the run's ops."""
    allowed = set(cfg.ops)
    return [p for p in seed_programs(cfg.target, cfg.domain, cfg.max_instrs) if {i.op for i in p.instrs} <= allowed]
