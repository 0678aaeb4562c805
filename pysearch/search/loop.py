"""The evolutionary search: DEAP's NSGA-II over straight-line programs, one batch per generation.

Each generation: binary tournaments (dominance, then crowding distance) pick parents; mutation
and instruction-block crossover make children; new program structures get their constants
fitted (:mod:`.constants`, cached by structure, Lamarckian: the fitted constants are inherited);
all children are scored in one :func:`~pysearch.evaluation.ulp_error` call on the search sample;
DEAP's ``selNSGA2`` keeps the population, ``ParetoFront`` archives the best seen, ``Statistics``
and ``Logbook`` record progress. Every few generations the archive's most promising programs are
verified (:mod:`.verify`); time budgets are planned by :mod:`.budget`.

The loop is the only evolutionary loop in pysearch: what varies between searches is a *problem*
(:mod:`.problem`): :class:`~.float32_problem.Float32Problem` (a :class:`SearchConfig`; the
float32 kernels of ``pysearch search``), :class:`~.law_problem.LawProblem` (scaling laws),
:class:`~.real_problem.RealProblem` (real-number approximations) and
:class:`~.config_problem.ConfigProblem` (configurations: vectors of category indices). The
problem supplies the initial programs, the cost, the batch scoring, the batch constant fit, the
verification and the genome's operations (mutation, crossover, canonical text; by default those of
a straight-line program); the loop does selection, the calls to variation, the structure cache,
the archive, budgets and checkpoints.

A run is a pure function of its configuration and seed: randomness comes from one numpy
``Generator`` whose state is saved with the rest in a JSON checkpoint (:mod:`.checkpoint`) at
generation boundaries.
"""

from __future__ import annotations

import contextlib
import copy
import gc
import math
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from deap import tools
from deap.tools.emo import assignCrowdingDist

from ..program import Program
from .budget import BudgetPlanning
from .checkpoint import checkpoint_state, committed_state, restore_population, restore_state, validate_checkpoint
from .config import SearchConfig
from .fields import FieldError
from .float32_problem import Float32Problem
from .front import FrontEntry
from .individual import Individual
from .problem import Problem, problem_kind, validate_generic_checkpoint
from .verify import Verification

#: Cached fits kept as programs (the most recently used structures; the others as texts only).
CACHED_PROGRAMS = 4096


@dataclass
class GenerationInfo:
    """What one generation did, for progress displays."""

    generation: int
    evaluations: int
    optimised: int
    seconds: float
    verified: list[FrontEntry] = field(default_factory=list)


class Search(Verification, BudgetPlanning):
    """A search run: create fresh from a :class:`SearchConfig` (the float32 kernel problem) or any
    :class:`~.problem.Problem`, or restore from a checkpoint dict."""

    def __init__(self, config: SearchConfig | Problem, checkpoint: dict | None = None):
        self.problem: Problem = config if isinstance(config, Problem) else Float32Problem(config)
        self.config = self.problem.config
        self.target = None
        self.domain = None
        self.rng = np.random.default_rng(self.config.seed)
        self.problem.attach(self)
        self.extra_x: list[float] = []
        self.cache: dict[str, str] = {}  # structure key -> fitted program text (decides results)
        #: assignments to ``cache`` (key, text) not yet in a checkpoint's journal, once a caller asked
        #: for them (:meth:`note_cache_assignments`; None: not noted), and the number of the first
        #: (counted from when noting started: :meth:`drop_cache_new` takes a count, so it can be repeated)
        self.cache_new: list[tuple[str, str]] | None = None
        self.cache_new_from = 0
        self._cache_programs: OrderedDict[str, Program] = OrderedDict()  # see _fitted_program
        self.verify_cache: dict[str, dict] = {}  # text -> facts verified by this process (saves time only)
        self.screen_cache: dict[str, float] = {}  # text -> max ulp on the screening sample
        self._screen_errors_memo: dict[str, np.ndarray] = {}  # text -> per-point errors (the last few)
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
        #: Programs with constants of a new structure that a batch's fitting budget left out (scored
        #: with the constants they came with); counted by this process, not checkpointed.
        self.unfitted = 0
        self.elapsed = 0.0
        self.verify_seconds: list[float] = []
        self.deadline: float | None = None  # monotonic time the current run() must end by
        self._screen_x: np.ndarray | None = None
        self._screen_ref: np.ndarray | None = None
        if checkpoint is None:
            self._rebuild_sample()
            self._initialise()
        elif self.problem.kind == "float32":
            restore_state(self, checkpoint)
        else:
            self._restore_generic(checkpoint)
        self._commit()

    # ------------------------------------------------------------ samples
    def _rebuild_sample(self) -> None:
        self.problem.rebuild_sample(self)

    # ------------------------------------------------------------ scoring
    def measure(self, p: Program) -> float:
        return self.problem.measure(p)

    def _score(self, programs: list[Program]) -> list[Individual]:
        """Evaluate all programs in one batch on the search sample."""
        if not programs:
            return []
        sc = self.problem.score(programs)
        self.evaluations += len(programs) * sc.points
        text = self.problem.genome_text
        return [Individual(p, float(m), float(a), obj, text(p))
                for p, m, a, obj in zip(programs, sc.errors, sc.means, sc.objectives)]

    def _optimise(self, programs: list[Program], budget: int) -> tuple[list[Program], dict[int, Program], int]:
        """Fit constants of new structures (up to ``budget``, one batch); offer cached fits as alternatives.

        A structure seen before (in the cache, or fitted earlier in this batch) is not fitted
        again: its fitted program is offered as an alternative to the child's own constants.
        Where the problem asks for it (``refit_known_structures``: fits that depend on where they
        start), a child of a cached structure with other constants is fitted from its own
        constants too, within the budget; the better fit goes to the cache once scored.
        """
        out: list[Program] = []
        to_fit: list[tuple[int, str]] = []  # (index, structure key): the first of each new structure
        repeats: list[tuple[int, str]] = []  # later children of a structure fitted in this batch
        pending: set[str] = set()
        alternatives: dict[int, Program] = {}
        self._refits: dict[int, str] = {}
        problem = self.problem
        refit = problem.refit_known_structures
        for i, p in enumerate(programs):
            out.append(p)
            key = problem.structure(p)
            if key is None:
                continue
            if key in self.cache:
                fitted = self._fitted_program(key)
                if problem.genome_text(fitted) != problem.genome_text(p):
                    alternatives[i] = fitted
                    if refit and key not in pending and len(to_fit) < budget:
                        pending.add(key)
                        to_fit.append((i, key))
                        self._refits[i] = key
            elif key in pending:
                repeats.append((i, key))
            elif len(to_fit) < budget:
                pending.add(key)
                to_fit.append((i, key))
            else:
                self.unfitted += 1
        fitted_programs = self.problem.fit_constants([programs[i] for i, _ in to_fit]) if to_fit else []
        for (i, key), q in zip(to_fit, fitted_programs):
            out[i] = q
            if i not in self._refits:
                self._cache_put(key, problem.genome_text(q))
                self._keep_fitted(key, q)
        for i, key in repeats:
            if self.cache[key] != problem.genome_text(programs[i]):
                alternatives[i] = self._fitted_program(key)
        used = len(to_fit)
        self.optimisations += used
        return out, alternatives, used

    def _cache_put(self, key: str, text: str) -> None:
        """Set the fit cache's entry ``key`` (and note the assignment for the checkpoint's journal)."""
        self.cache[key] = text
        if self.cache_new is not None:
            self.cache_new.append((key, text))

    def note_cache_assignments(self, pending: bool, first: int = 0) -> None:
        """Note every assignment to the fit cache from now on, for ``checkpoint_state(cache_delta=True)``
        (a run directory's journal, :mod:`.fitcache`). ``pending``: the cache as it is now is not in the
        journal yet (a new run, or one resumed from a checkpoint that held its cache) and goes with the
        next such state; else (resumed from the journal) only later assignments do. ``first``: the
        number of the first one noted (an island restarted by a driver that holds ``first`` already).
        Call it at a generation boundary, before the next generation."""
        if self.cache_new is None:
            noted = list(self.cache.items()) if pending else []
            self.cache_new_from = first
            self._committed["cache_new_end"] = first + len(noted)
            self.cache_new = noted  # last: a save sees all of it or none (the journal not open yet)

    def drop_cache_new(self, upto: int) -> None:
        """Forget the noted assignments numbered below ``upto``: they are in the journal (or with the
        driver of an island run). Until then each ``checkpoint_state(cache_delta=True)`` hands them over
        again, so a save cut short by a signal loses none (one repeated is harmless: the same assignments
        in the same order)."""
        k = upto - self.cache_new_from
        if self.cache_new is not None and k > 0:
            del self.cache_new[:k]
            self.cache_new_from = upto

    def _fitted_program(self, key: str) -> Program:
        """The cached fit of structure ``key`` as a program: kept for the structures used most
        recently (:data:`CACHED_PROGRAMS`), else read again from its text in ``cache`` (the same
        program: texts are exact). A long run caches hundreds of thousands of structures; their
        programs, with what each keeps (text, compiled arrays), took about 6 KB each."""
        progs = self._cache_programs
        p = progs.get(key)
        if p is None:
            p = self.problem.parse_genome(self.cache[key])
            self._keep_fitted(key, p)
        else:
            progs.move_to_end(key)
        return p

    def _keep_fitted(self, key: str, p: Program) -> None:
        """Keep ``p`` as structure ``key``'s cached program (see :meth:`_fitted_program`)."""
        progs = self._cache_programs
        progs[key] = p
        progs.move_to_end(key)
        if len(progs) > CACHED_PROGRAMS:
            progs.popitem(last=False)

    def _make_individuals(self, programs: list[Program], budget: int) -> tuple[list[Individual], int]:
        progs, alts, used = self._optimise(programs, budget)
        alt_idx = sorted(alts)
        scored = self._score(progs + [alts[i] for i in alt_idx])
        inds = scored[: len(progs)]
        for k, i in enumerate(alt_idx):
            alt = scored[len(progs) + k]
            if (alt.max_ulp, alt.mean_ulp) <= (inds[i].max_ulp, inds[i].mean_ulp):
                inds[i] = alt
            elif i in self._refits:  # a refit beat the cached fit of its structure
                self._cache_put(self._refits[i], inds[i].text)
                self._keep_fitted(self._refits[i], inds[i].program)
        return inds, used

    # ------------------------------------------------------------ lifecycle
    def _initialise(self) -> None:
        t0 = time.perf_counter()
        cfg = self.config
        programs = self.problem.initial_programs(self.rng, cfg.population)
        inds, _ = self._make_individuals(programs, budget=cfg.population)
        self.population = self._select(inds, cfg.population)
        self.archive.update(inds)
        self._record(len(inds), 0, 0.0)
        self._init_seconds = time.perf_counter() - t0

    def _select(self, inds: list[Individual], k: int) -> list[Individual]:
        """NSGA-II's ``k`` of the distinct genomes of ``inds``; with the problem's structure cap, the
        programs beyond the most accurate ``cap`` of each structure take part only when too few remain."""
        seen: set[str] = set()
        unique = []
        for ind in inds:
            if ind.text not in seen:
                seen.add(ind.text)
                unique.append(ind)
        cap = self.problem.structure_cap()
        if cap and len(unique) > k:
            kept, extra = self._capped(unique, cap)
            if len(kept) >= k:
                return tools.selNSGA2(kept, k, nd="log")
            return kept + tools.selNSGA2(extra, k - len(kept), nd="log")
        return tools.selNSGA2(unique, min(k, len(unique)), nd="log")

    def _capped(self, inds: list[Individual], cap: int) -> tuple[list[Individual], list[Individual]]:
        """``inds`` split into the ``cap`` most accurate of each structure (max then mean error on the
        sample, earlier first on ties; a structure's programs share their cost, so no kept one is dominated
        by one left out) and the rest, each in the order of ``inds``."""
        def accuracy(i: int) -> tuple[float, float, int]:
            ind = inds[i]
            return (ind.max_ulp if ind.max_ulp == ind.max_ulp else math.inf,
                    ind.mean_ulp if ind.mean_ulp == ind.mean_ulp else math.inf, i)

        count: dict[str, int] = {}
        keep = [False] * len(inds)
        for i in sorted(range(len(inds)), key=accuracy):
            key = self.problem.structure(inds[i].program)
            if key is None:  # nothing to fit: each such program is its own structure
                keep[i] = True
                continue
            n = count.get(key, 0)
            if n < cap:
                count[key] = n + 1
                keep[i] = True
        return [d for d, ok in zip(inds, keep) if ok], [d for d, ok in zip(inds, keep) if not ok]

    def _parents(self, pop: list[Individual], k: int) -> list[Individual]:
        """``k`` parents by the problem's rule (``parent_selection``): binary tournaments, or uniform
        draws from the population's first Pareto front (elitist: every cost's best is a parent)."""
        if self.problem.parent_selection == "front":
            front = tools.sortLogNondominated(pop, len(pop), first_front_only=True)
            return [front[int(i)] for i in self.rng.integers(len(front), size=k)]
        return self._tournament(pop, k)

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
        """Children of consecutive parent pairs: the problem's crossover (at ``crossover_rate``) or
        its mutation of each parent."""
        cfg, problem = self.config, self.problem
        children: list[Program] = []
        for i in range(0, len(parents) - 1, 2):
            a, b = parents[i].program, parents[i + 1].program
            if self.rng.random() < cfg.crossover_rate:
                children += problem.crossover(self.rng, a, b)
            else:
                children.append(problem.mutate(self.rng, a))
                children.append(problem.mutate(self.rng, b))
        return children

    def step(self) -> GenerationInfo:
        """Run one generation and commit it."""
        t0 = time.perf_counter()
        cfg = self.config
        evals0 = self.evaluations
        parents = self._parents(self.population, cfg.population)
        children = self._vary(parents)
        offspring, used = self._make_individuals(children, cfg.opt_per_generation)
        self.population = self._select(self.population + offspring, cfg.population)
        self.archive.update(offspring)
        if self.problem.restart_due(self):
            # a stalled population starts again from scratch; the archive keeps what it found
            fresh, fitted = self._make_individuals(self.problem.initial_programs(self.rng, cfg.population),
                                                   budget=cfg.population)
            used += fitted
            self.population = self._select(fresh, cfg.population)
            self.archive.update(fresh)
        self.generation += 1
        verified: list[FrontEntry] = []
        if cfg.verify_every and self.generation % cfg.verify_every == 0:
            verified = self.problem.verify_round(self)
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
        self._committed_problem_state = copy.deepcopy(self.problem.state())

    def checkpoint_state(self, cache_delta: bool = False) -> dict:
        """The last committed state as a JSON-able dict (plus the time-saving caches); with
        ``cache_delta``, the fit cache's committed assignments not yet dropped (:meth:`drop_cache_new`)
        instead of the whole cache (``cache_new``, for the run directory's journal: see
        :func:`.checkpoint.checkpoint_state`).

        The float32 problem's document is the one it always was (``config`` is the
        :class:`SearchConfig`), with ``problem_state`` only when it has one (a run with restarts);
        other problems' ``config`` names the problem kind and they add ``problem_state``.
        """
        state = checkpoint_state(self, cache_delta)
        if self.problem.kind != "float32":
            state["config"] = self.problem.to_json_obj()
        if self.problem.kind != "float32" or self._committed_problem_state:
            state["problem_state"] = copy.deepcopy(self._committed_problem_state)
        return state

    @classmethod
    def from_checkpoint(cls, ck: dict) -> "Search":
        """A search continuing from a checkpoint document; raise ``ValueError`` naming a bad field."""
        try:
            kind = problem_kind(ck.get("config") if isinstance(ck, dict) else None)
            if kind == "float32":
                validate_checkpoint(ck)
                return cls(SearchConfig.from_json_obj(ck["config"]), checkpoint=ck)
            ck, problem = validate_generic_checkpoint(ck)
        except FieldError as e:
            raise ValueError(f"checkpoint is malformed: {e}") from None
        return cls(problem, checkpoint=ck)

    def _restore_generic(self, ck: dict) -> None:
        """Continue a non-float32 problem's run from a checkpoint (checked by ``validate_generic_checkpoint``)."""
        self.rng.bit_generator.state = ck["rng"]
        self.generation = ck["generation"]
        self.cache = dict(ck.get("cache", {}))
        genome = self.problem.parse_genome
        try:
            self.problem.preload(ck.get("problem_state", {}))
        except FieldError as e:
            raise ValueError(f"checkpoint is malformed: {e}") from None
        restore_population(self, ck, genome)
        try:  # after the re-scoring above, which a problem may also record
            self.problem.restore(ck.get("problem_state", {}))
        except FieldError as e:
            raise ValueError(f"checkpoint is malformed: {e}") from None

    # ------------------------------------------------------------ driver
    def run(self, generations: int | None = None, budget_s: float | None = None,
            on_generation: Callable[["Search", GenerationInfo], None] | None = None,
            on_checkpoint: Callable[["Search"], None] | None = None, checkpoint_every_s: float = 30.0) -> None:
        """Run generations until ``generations`` (total) or ``budget_s`` (total seconds) is reached.

        Time for the final verification round is reserved inside the budget. ``on_checkpoint`` is
        called at most every ``checkpoint_every_s`` seconds, after a generation.
        """
        with _fewer_collections():
            self._run(generations, budget_s, on_generation, on_checkpoint, checkpoint_every_s)

    def _run(self, generations, budget_s, on_generation, on_checkpoint, checkpoint_every_s) -> None:
        start = time.monotonic()
        elapsed0 = self.elapsed
        self.deadline = None if budget_s is None else start + (budget_s - elapsed0)
        last_ckpt = start
        while True:
            if generations is not None and self.generation >= generations:
                break
            if budget_s is not None:
                reserve = self.problem.reserve_seconds(self, budget_s)
                if self.elapsed + reserve >= budget_s:
                    break
            if self.problem.done(self):
                break
            info = self.step()
            self.elapsed = elapsed0 + (time.monotonic() - start)
            if on_generation is not None:
                on_generation(self, info)
            if on_checkpoint is not None and time.monotonic() - last_ckpt >= checkpoint_every_s:
                on_checkpoint(self)
                last_ckpt = time.monotonic()


#: Allocations between young-generation collections while a search runs (CPython's default: 700).
GC_YOUNG_THRESHOLD = 100_000


@contextlib.contextmanager
def _fewer_collections():
    """Collect cyclic garbage less often while the loop runs, then restore the thresholds.

    A generation allocates hundreds of thousands of short-lived objects (programs, operands,
    individuals) that reference counting frees, and almost none in cycles (a 900-generation law
    discovery leaves about a thousand cyclic objects to the collector). At CPython's default
    threshold the young generation is collected every 700 allocations and the older ones, which
    hold the caches, are walked again and again: a law discovery of 2 x 300 generations took a
    best of 20.05 CPU-s at the default and 17.12 s at this threshold on the development machine
    (4 interleaved runs each). Collections still happen, only less often.
    """
    saved = gc.get_threshold()
    gc.set_threshold(max(saved[0], GC_YOUNG_THRESHOLD), *saved[1:])
    try:
        yield
    finally:
        gc.set_threshold(*saved)
