"""The evolutionary search: DEAP's NSGA-II over straight-line programs, one batch per generation.

Each generation: binary tournaments (dominance, then crowding distance) pick parents; mutation
and instruction-block crossover make children; new program structures get their constants
fitted (:mod:`.constants`, cached by structure, Lamarckian: the fitted constants are inherited);
all children are scored in one :func:`pysearch.ulp_error` call on the search sample; DEAP's
``selNSGA2`` keeps the population, ``ParetoFront`` archives the best seen, ``Statistics`` and
``Logbook`` record progress. Every few generations the archive's most promising programs are
verified on every float32 of the domain before they enter the reported front; the input where
a verified program is worst is added to the search sample.

A run is a pure function of its configuration and seed: randomness comes from one numpy
``Generator`` whose state is saved with the rest in a JSON checkpoint at generation boundaries.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Callable

import numpy as np
from deap import base, tools
from deap.tools.emo import assignCrowdingDist

from .. import _core
from ..program import OPS, Program, parse
from ..variation import check_ops, crossover, mutate, random_program
from ..ulp import ulp_errors
from .constants import FitSample, optimize_constants, tune_float32
from .fields import FieldError, need_bool, need_dict, need_float, need_int, need_items, need_keys, need_str
from .front import MAX_EXHAUSTIVE, FrontEntry, is_dominated, pareto_insert, verify_candidate

#: Ops a float32 search draws from unless told otherwise (the AutoNumerics-Zero set less sqrt;
#: a repeated name is drawn more often: fma chains are what polynomials are made of).
DEFAULT_OPS = ("add", "sub", "mul", "div", "fma", "fma", "fma")
OBJECTIVES = ("cost", "latency")
#: Most counterexamples (worst inputs found by verification) added to the search sample.
MAX_EXTRA_POINTS = 512


@dataclass
class SearchConfig:
    """Everything that defines a run (saved in the checkpoint, fixed on resume)."""

    target: str
    domain: tuple[float, float]
    dtype: str = "float32"
    ops: tuple[str, ...] = DEFAULT_OPS
    max_ulp: float | None = None
    objective: str = "cost"
    seed: int = 0
    population: int = 128
    max_instrs: int = 14
    init_instrs: int = 3
    sample_size: int = 8192
    opt_per_generation: int = 40
    crossover_rate: float = 0.1
    verify_every: int = 10
    #: Float32 points checked per verification round (and in the final round): a round verifies
    #: max(1, verify_points // domain size) programs, so small domains get their whole front checked.
    verify_points: float = 1.5e9
    final_points: float = 4e9
    screen_size: int = 1 << 20
    seed_baselines: bool = False
    #: Op weights for the cost objective (``Program.cost(weights)``); unnamed ops keep their
    #: default weight. E.g. ``{"add": 0.5, "sub": 0.5}`` where adds run on pipes of their own.
    cost_weights: dict[str, float] | None = None
    #: Program texts put in the first population (structures to start from), after any baselines.
    seed_programs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.domain = (float(self.domain[0]), float(self.domain[1]))
        self.ops = tuple(self.ops)
        self.seed_programs = tuple(self.seed_programs)
        if self.cost_weights is not None:
            self.cost_weights = {str(k): v for k, v in dict(self.cost_weights).items()} or None
        self.validate()

    def validate(self) -> None:
        a, b = self.domain
        if not (math.isfinite(a) and math.isfinite(b)) or not a < b:
            raise ValueError(f"bad domain [{a}, {b}]: need finite A < B")
        if self.dtype != "float32":
            raise ValueError(f"dtype {self.dtype!r} is not supported: searches are float32 only")
        check_ops(self.ops, self.dtype)
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, not {self.objective!r}")
        if self.max_ulp is not None and not (self.max_ulp > 0 and math.isfinite(self.max_ulp)):
            raise ValueError(f"max_ulp must be a positive number, not {self.max_ulp}")
        for name, hi in _INT_LIMITS.items():
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int):
                raise ValueError(f"{name} must be an integer, not {v!r}")
            lo = 0 if name == "opt_per_generation" else 1
            if not lo <= v <= hi:
                raise ValueError(f"{name} must be an integer in [{lo}, {hi}], not {v}")
        if not 0 <= self.seed < 1 << 64:
            raise ValueError(f"seed must be an integer in [0, 2**64), not {self.seed}")
        if not 0.0 <= self.crossover_rate <= 1.0:
            raise ValueError(f"crossover_rate must lie in [0, 1], not {self.crossover_rate}")
        for name in ("verify_points", "final_points"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and 1 <= v <= 1e15):
                raise ValueError(f"{name} must be a number in [1, 1e15], not {v!r}")
        if self.population % 2:
            raise ValueError(f"population must be even, not {self.population}")
        if self.cost_weights is not None:
            known = {op.name for op in OPS}
            unknown = sorted(set(self.cost_weights) - known)
            if unknown:
                raise ValueError(f"cost weights name unknown op(s) {unknown}; ops are {sorted(known)}")
            bad = {k: v for k, v in self.cost_weights.items()
                   if isinstance(v, bool) or not isinstance(v, (int, float)) or not (v >= 0 and math.isfinite(v))}
            if bad:
                raise ValueError(f"cost weights must be finite non-negative numbers, not {bad}")
        for text in self.seed_programs:
            p = parse(text)  # ProgramError (a ValueError) names the problem
            if p.dtype != self.dtype or len(p.inputs) != 1:
                raise ValueError(f"seed program must be a one-input {self.dtype} program:\n{text}")

    def to_json_obj(self) -> dict:
        d = asdict(self)
        d["domain"] = list(self.domain)
        d["ops"] = list(self.ops)
        d["seed_programs"] = list(self.seed_programs)
        return d

    @classmethod
    def from_json_obj(cls, d: object, field: str = "config") -> "SearchConfig":
        """The configuration saved in a checkpoint; raise :class:`~.fields.FieldError` naming a bad field."""
        from .front import read_cost_weights

        d = need_dict(d, field)
        need_keys(d, field, ("target", "domain"), tuple(f.name for f in fields(cls)))
        kw: dict = {}
        for name, v in d.items():
            where = f"{field}.{name}"
            if name in _INT_LIMITS:
                kw[name] = need_int(v, where, 0, _INT_LIMITS[name])
            elif name == "seed":
                kw[name] = need_int(v, where, 0, (1 << 64) - 1)
            elif name in ("target", "dtype", "objective"):
                kw[name] = need_str(v, where, 4096)
            elif name == "domain":
                kw[name] = need_items(v, where, need_float, 2)
                if len(kw[name]) != 2:
                    raise FieldError(where, "expected [A, B]")
            elif name in ("ops", "seed_programs"):
                kw[name] = need_items(v, where, need_str, 4096)
            elif name == "max_ulp":
                kw[name] = need_float(v, where, allow_null=True)
            elif name in ("crossover_rate", "verify_points", "final_points"):
                kw[name] = need_float(v, where)
            elif name == "seed_baselines":
                kw[name] = need_bool(v, where)
            elif name == "cost_weights":
                kw[name] = read_cost_weights(v, where)
        try:
            return cls(**kw)
        except ValueError as e:
            raise FieldError(field, str(e).splitlines()[0]) from None


#: Integer settings and their largest values (far above useful ones; low enough to stay in memory).
_INT_LIMITS = {"population": 1 << 20, "max_instrs": 4096, "init_instrs": 4096, "sample_size": 1 << 24,
               "opt_per_generation": 1 << 20, "verify_every": 1 << 31, "screen_size": 1 << 26}


class SearchFitness(base.Fitness):
    """(error objective, cost objective), both minimised."""

    weights = (-1.0, -1.0)


class Individual:
    """A program with its sample errors and its DEAP fitness."""

    def __init__(self, program: Program, max_ulp: float, mean_ulp: float, fitness_values: tuple[float, float]):
        self.program = program
        self.text = program.to_text()
        self.max_ulp = max_ulp
        self.mean_ulp = mean_ulp
        self.fitness = SearchFitness(fitness_values)

    def __repr__(self) -> str:
        return f"Individual(max_ulp={self.max_ulp:.4g}, cost={self.program.cost()})"


def structure_key(p: Program) -> str:
    """The program with its constants blanked: programs that differ only in constants share it."""
    parts = []
    for ins in p.instrs:
        args = ",".join("c" if a.kind == "const" else f"{a.kind[0]}{a.index}" for a in ins.args)
        parts.append(f"{ins.op}({args})")
    return ";".join(parts) + f">{p.output}"


def _err_objective(max_ulp: float, constraint: float | None) -> float:
    m = max_ulp if math.isfinite(max_ulp) else 1e30
    if constraint is not None:
        m = max(m, constraint)
    return math.log2(1.0 + m)


def _json_float(v: float):
    return v if math.isfinite(v) else None


#: Most of a budget the final verification round may take (beyond one verification).
FINAL_FRACTION = 1 / 3


@dataclass
class BudgetPlan:
    """How a budget splits between search and the final verification round (seconds)."""

    verify_s: float  # one verification, estimated
    wanted: int  # verifications the final round would like
    final_verifications: int  # verifications the budget pays for
    min_search_s: float  # verify_every generations
    needed_s: float  # least budget for one verification after a minimum of search


@dataclass
class GenerationInfo:
    """What one generation did, for progress displays."""

    generation: int
    evaluations: int
    optimised: int
    seconds: float
    verified: list[FrontEntry] = field(default_factory=list)


class Search:
    """A search run: create fresh from a :class:`SearchConfig`, or restore from a checkpoint dict."""

    def __init__(self, config: SearchConfig, checkpoint: dict | None = None):
        import pysearch

        self.config = config
        self.target = config.target
        self.domain = pysearch.Domain(*config.domain)
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
            self._restore(checkpoint)
        self._commit()

    # ------------------------------------------------------------ samples
    def _rebuild_sample(self) -> None:
        extra = np.array(self.extra_x, dtype=np.float32)
        self.x = np.ascontiguousarray(np.concatenate([self._base_x, extra]), dtype=np.float32)
        self.fit_sample = FitSample.build(self.target, self.x)

    @property
    def screen_x(self) -> np.ndarray:
        """A large sample used to screen candidates before exhaustive verification."""
        if self._screen_x is None:
            self._screen_x = np.ascontiguousarray(
                self.domain.sample(self.config.screen_size, self.config.seed + 1), dtype=np.float32
            )
        return self._screen_x

    # ------------------------------------------------------------ scoring
    def measure(self, p: Program) -> float:
        return p.latency() if self.config.objective == "latency" else p.cost(self.config.cost_weights)

    def _score(self, programs: list[Program]) -> list[Individual]:
        """Evaluate all programs in one batch on the search sample."""
        import pysearch

        if not programs:
            return []
        table = pysearch.ulp_error(programs, self.x, self.target)
        self.evaluations += len(programs) * len(self.x)
        mx = np.asarray(table.max_ulp, dtype=np.float64)
        mean = np.asarray(table.mean_ulp, dtype=np.float64)
        out = []
        for p, m, a in zip(programs, mx, mean):
            m = float(m) if not math.isnan(m) else math.inf
            out.append(Individual(p, m, float(a), (_err_objective(m, self.config.max_ulp), self.measure(p))))
        return out

    def _optimise(self, programs: list[Program], budget: int) -> tuple[list[Program], dict[int, Program], int]:
        """Fit constants of new structures (up to ``budget``); offer cached fits as alternatives."""
        out: list[Program] = []
        alternatives: dict[int, Program] = {}
        used = 0
        for i, p in enumerate(programs):
            if not p.constants():
                out.append(p)
                continue
            key = structure_key(p)
            if key in self.cache:
                fitted = self._cache_programs.get(key)
                if fitted is None:
                    fitted = self._cache_programs[key] = parse(self.cache[key])
                if fitted.to_text() != p.to_text():
                    alternatives[i] = fitted
                out.append(p)
            elif used < budget:
                used += 1
                res = optimize_constants(p, self.fit_sample)
                self.cache[key] = res.program.to_text()
                self._cache_programs[key] = res.program
                out.append(res.program)
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

    # ------------------------------------------------------------ verification
    def round_limit(self, points: float, cap: int = 16) -> int:
        """How many programs a verification round of ``points`` float32 evaluations may check."""
        return max(1, min(cap, int(points // max(self.domain.count(), 1))))

    def _candidates(self, front: list[FrontEntry], rejected: set[str], limit: int, final: bool) -> list[Individual]:
        """Archive programs that could still improve the verified front, most useful first.

        With ``max_ulp`` set: those meeting it on the sample, cheapest first (nothing at or above
        the cost of a verified program meeting it); programs missing the bound are verified only
        when a round has room for many (small domains), or, in the final round, the most accurate
        one when nothing verified meets the bound. Without ``max_ulp``: most accurate first.
        """
        cfg = self.config
        in_front = {e.text for e in front}
        pool = [
            ind for ind in self.archive
            if math.isfinite(ind.max_ulp) and ind.text not in rejected and ind.text not in in_front
            and not is_dominated(front, self.measure(ind.program), ind.max_ulp, cfg.objective)
        ]
        if cfg.max_ulp is None:
            return sorted(pool, key=lambda i: (i.max_ulp, self.measure(i.program)))
        best_met = min((e.measure(cfg.objective) for e in front if e.max_ulp <= cfg.max_ulp), default=math.inf)
        meet = sorted((i for i in pool if i.max_ulp <= cfg.max_ulp and self.measure(i.program) < best_met),
                      key=lambda i: (self.measure(i.program), i.max_ulp))
        rest = sorted((i for i in pool if i.max_ulp > cfg.max_ulp), key=lambda i: (i.max_ulp, self.measure(i.program)))
        if limit >= 8:
            return meet + rest
        if final and best_met == math.inf:
            return meet + rest[:1]
        return meet

    @property
    def screen_ref(self) -> np.ndarray:
        import pysearch

        if self._screen_ref is None:
            self._screen_ref = np.asarray(pysearch.reference(self.target, self.screen_x)[0], dtype=np.float64)
        return self._screen_ref

    def _screen_errors(self, p: Program) -> np.ndarray:
        """Per-point ULP errors on the screening sample (inf where the output is not finite)."""
        import pysearch

        return ulp_errors(pysearch.evaluate(p, self.screen_x), self.screen_ref)

    def _screen(self, p: Program, text: str) -> float:
        """Max ULP error on the screening sample (cached by program text)."""
        import pysearch

        if text not in self.screen_cache:
            m = float(pysearch.ulp_error(p, self.screen_x, self.target).max_ulp)
            self.screen_cache[text] = m if not math.isnan(m) else math.inf
        return self.screen_cache[text]

    def polish(self, p: Program, rounds: int = 2, n_hard: int = 4096) -> Program:
        """Re-tune float32 constants on the search sample plus the screening sample's worst points."""
        if not p.constants():
            return p
        best, best_err = p, float(np.max(self._screen_errors(p)))
        cur = p
        for _ in range(rounds):
            err = self._screen_errors(cur)
            hard = self.screen_x[np.argsort(err, kind="stable")[-n_hard:]]
            sample = FitSample.build(self.target, np.unique(np.concatenate([self.x, hard])))
            cur, _, _ = tune_float32(cur, sample, rounds=12)
            m = float(np.max(self._screen_errors(cur)))
            if m < best_err:
                best, best_err = cur, m
        return best

    def _verify(self, p: Program, text: str) -> dict:
        if text not in self.verify_cache:
            stats, kind, note = verify_candidate(p, self.target, self.config.domain)
            m = float(stats.max_ulp)
            self.verify_cache[text] = {
                "max_ulp": m if not math.isnan(m) else math.inf, "verified": kind, "note": note,
                "argmax_x": float(stats.argmax_x), "mean_ulp": float(stats.mean_ulp),
                "frac_correctly_rounded": float(stats.frac_correctly_rounded), "n_points": int(stats.n_points),
            }
        return self.verify_cache[text]

    def _entry(self, p: Program, sample_max_ulp: float | None, facts: dict) -> FrontEntry:
        return FrontEntry(
            text=p.to_text(), cost=p.cost(self.config.cost_weights), ops=p.ops, latency=p.latency(),
            max_ulp=facts["max_ulp"],
            verified=facts["verified"], argmax_x=facts["argmax_x"], mean_ulp=facts["mean_ulp"],
            frac_correctly_rounded=facts["frac_correctly_rounded"], n_points=facts["n_points"],
            sample_max_ulp=sample_max_ulp, generation=self.generation, note=facts["note"],
        )

    def verify_round(self, limit: int) -> list[FrontEntry]:
        """Verify up to ``limit`` archive programs that could improve the front; update the state."""
        added, counterexamples = self._verify_into(self.front, self.rejected, limit, deadline=self.deadline)
        base = set(self._base_x.tolist())
        new = [x for x in dict.fromkeys(counterexamples) if x not in self.extra_x and x not in base]
        if new and len(self.extra_x) < MAX_EXTRA_POINTS:
            self.extra_x += new[: MAX_EXTRA_POINTS - len(self.extra_x)]
            self._rebuild_sample()
            self._rescore_all()
        return added

    def _verify_into(self, front: list[FrontEntry], rejected: set[str], limit: int, final: bool = False,
                     deadline: float | None = None) -> tuple[list[FrontEntry], list[float]]:
        """Polish, screen and verify candidates until ``limit`` verifications were spent."""
        cfg = self.config
        added: list[FrontEntry] = []
        counterexamples: list[float] = []
        spent = 0
        candidates = self._candidates(front, rejected, limit, final)
        self._final_skipped = 0
        for k, ind in enumerate(candidates):
            if spent >= limit:
                break
            if deadline is not None and front and time.monotonic() + self.estimated_verify_seconds() > deadline:
                self._final_skipped = min(limit - spent, len(candidates) - k)
                break
            measure = self.measure(ind.program)
            if is_dominated(front, measure, ind.max_ulp, cfg.objective):
                continue  # an earlier verification in this round covered it
            if cfg.max_ulp is not None and ind.max_ulp <= cfg.max_ulp:
                if any(e.max_ulp <= cfg.max_ulp and e.measure(cfg.objective) <= measure for e in front):
                    continue
            rejected.add(ind.text)
            t0 = time.perf_counter()
            p = self.polish(ind.program)
            text = p.to_text()
            screened = self._screen(p, text)
            if is_dominated(front, measure, screened, cfg.objective):
                continue
            facts = self._verify(p, text)
            self.verify_seconds.append(time.perf_counter() - t0)  # polish + screen + verify
            spent += 1
            if facts["max_ulp"] > ind.max_ulp and math.isfinite(facts["argmax_x"]):
                counterexamples.append(float(np.float32(facts["argmax_x"])))
            entry = self._entry(p, ind.max_ulp, facts)
            if math.isfinite(entry.max_ulp) and pareto_insert(front, entry, cfg.objective):
                added.append(entry)
        return added, counterexamples

    def final_front(self, limit: int | None = None, deadline: float | None = None) -> list[FrontEntry]:
        """The front after one more verification round; the evolution state is left as it was.

        ``deadline`` (a ``time.monotonic()`` value) stops the round once another verification
        would likely end after it, except that a front with nothing verified gets one.
        """
        front = copy.deepcopy(self.front)
        rejected = set(self.rejected)
        if limit is None:
            limit = self.round_limit(self.config.final_points, 64)
            if self.final_limit is not None:
                limit = min(limit, self.final_limit)
        self._verify_into(front, rejected, limit, final=True, deadline=deadline)
        self.final_skipped = self._final_skipped
        for e in front:
            if not any(r.text == e.text for r in self.reported):
                pareto_insert(self.reported, copy.deepcopy(e), self.config.objective)
        return self.reported_front(front)

    def reported_front(self, front: list[FrontEntry] | None = None) -> list[FrontEntry]:
        """The non-dominated set of ``front`` (default: the evolution's) and every program reported before."""
        out: list[FrontEntry] = []
        for e in [*(self.front if front is None else front), *self.reported]:
            pareto_insert(out, e, self.config.objective)
        return out

    def final_verifications(self) -> int:
        """Verifications to reserve time for at the end: with ``max_ulp`` the first success usually ends it."""
        limit = self.round_limit(self.config.final_points, 64)
        if self.final_limit is not None:
            limit = min(limit, self.final_limit)
        return min(limit, 2) if self.config.max_ulp is not None else limit

    def step_seconds(self) -> float:
        """Seconds a generation takes: the mean of the last five, else the first population's time."""
        recent = [r["seconds"] for r in self.logbook[-5:] if r.get("seconds")]
        return float(np.mean(recent)) if recent else self._init_seconds

    def budget_plan(self, budget_s: float) -> BudgetPlan:
        """How a total budget of ``budget_s`` seconds splits between search and the final verification.

        The final round may take at most a third of the budget; when the front candidates it would
        verify cost more, it verifies fewer (``final_limit``). ``needed_s`` is the least budget that
        pays for one verification and ``verify_every`` generations of search.
        """
        self.final_limit = None
        wanted = self.final_verifications()
        verify_s = self.estimated_verify_seconds()
        affordable = max(1, int(budget_s * FINAL_FRACTION // verify_s)) if verify_s > 0 else wanted
        if affordable < wanted:
            self.final_limit = affordable
        min_search_s = self.config.verify_every * self.step_seconds()
        needed_s = self.elapsed + min_search_s + verify_s
        return BudgetPlan(verify_s, wanted, min(wanted, affordable), min_search_s, needed_s)

    def estimated_verify_seconds(self) -> float:
        """Seconds one verification takes: measured on real ones, else by :meth:`calibrate`."""
        if self.verify_seconds:
            return float(np.mean(self.verify_seconds))
        return self.calibrate()

    def calibrate(self, chunks: int = 64, chunk_points: int = 1 << 15) -> float:
        """Estimate the seconds one verification (polish, screen, exhaustive check) takes, by timing.

        The exhaustive check of a ``max_instrs``-long program is timed on ``chunks`` runs of
        ``chunk_points`` consecutive float32 values spread over the domain (the cost per point
        differs between regions) and scaled to the whole domain; polishing and screening are timed
        as five evaluations of the screening sample. Timing only: the search state is untouched.
        """
        import pysearch

        if self._calibrated_s is None:
            cfg = self.config
            prog = parse("".join(f"v{i + 1} = fma {'x' if i == 0 else f'v{i}'} x 0.5\n" for i in range(cfg.max_instrs)))
            lo, hi = self.domain.keys
            count = hi - lo + 1
            if count <= chunks * chunk_points:
                spans = [(lo, hi)]
            else:
                step = (count - chunk_points) // (chunks - 1)
                spans = [(lo + i * step, lo + i * step + chunk_points - 1) for i in range(chunks)]
            timed = 0
            t0 = time.perf_counter()
            for a, b in spans:
                xa, xb = float(_core.float32_from_keys(a, 1)[0]), float(_core.float32_from_keys(b, 1)[0])
                pysearch.verify(prog, self.target, (xa, xb), exhaustive=True)
                timed += b - a + 1
            checked = count if count <= MAX_EXHAUSTIVE else 1 << 22  # verify_candidate samples huge domains
            verify_s = (time.perf_counter() - t0) * checked / timed
            t0 = time.perf_counter()
            pysearch.ulp_error(prog, self.screen_x, self.target)
            self._calibrated_s = verify_s + 5 * (time.perf_counter() - t0)
        return self._calibrated_s

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
        self._committed = {
            "generation": self.generation,
            "rng": copy.deepcopy(self.rng.bit_generator.state),
            "population": [ind.text for ind in self.population],
            "archive": [ind.text for ind in self.archive],
            "cache_len": len(self.cache),
            "rejected": sorted(self.rejected),
            "front": [e.to_json_obj() for e in self.front],
            "extra_x": [float(v).hex() for v in self.extra_x],
            "evaluations": self.evaluations,
            "optimisations": self.optimisations,
            "logbook": [dict(r) for r in self.logbook],
        }

    def checkpoint_state(self) -> dict:
        """The last committed state as a JSON-able dict (plus the time-saving caches)."""
        c = self._committed
        n = c["cache_len"]
        cache = dict(list(self.cache.items())[:n])
        state = {k: v for k, v in c.items() if k != "cache_len"}
        state["logbook"] = [{k: (_json_float(v) if isinstance(v, float) else v) for k, v in r.items()}
                            for r in c["logbook"]]
        state.update(
            config=self.config.to_json_obj(),
            elapsed_s=self.elapsed,
            cache=cache,
            reported=[e.to_json_obj() for e in self.reported],
            limits=dict(self.limits),
            screen_cache={t: _json_float(v) for t, v in self.screen_cache.items()},
        )
        return state

    def _restore(self, ck: dict) -> None:
        """Continue from a checkpoint document (checked by :func:`~.checkpoint.validate_checkpoint`)."""
        weights = self.config.cost_weights
        self.rng.bit_generator.state = ck["rng"]
        self.generation = ck["generation"]
        self.extra_x = [float.fromhex(v) for v in ck.get("extra_x", [])]
        self._rebuild_sample()
        self.cache = dict(ck.get("cache", {}))
        self.screen_cache = {t: (math.inf if v is None else float(v)) for t, v in ck.get("screen_cache", {}).items()}
        self.rejected = set(ck.get("rejected", []))
        self.front = self.reverify([FrontEntry.from_json_obj(e, weights) for e in ck.get("front", [])], "checkpoint")
        self.reported = self.reverify([FrontEntry.from_json_obj(e, weights) for e in ck.get("reported", [])],
                                      "checkpoint")
        self.population = self._score([parse(t) for t in ck["population"]])
        self.archive.update(self._score([parse(t) for t in ck.get("archive", [])]))
        self.evaluations = ck.get("evaluations", 0)
        self.optimisations = ck.get("optimisations", 0)
        self.elapsed = float(ck.get("elapsed_s", 0.0))
        self.limits = dict(ck.get("limits", {}))
        for rec in ck.get("logbook", []):
            self.logbook.record(**{k: (math.inf if v is None else v) for k, v in rec.items()})

    def reverify(self, entries: list[FrontEntry], source: str) -> list[FrontEntry]:
        """Verify loaded front entries again; return the non-dominated set with the figures found.

        A file's claims are not trusted: each program is verified (exhaustively, as in the run)
        before it is reported. An entry whose claimed max ULP does not hold is kept with the
        figure found, and a line describing it goes to :attr:`corrections`.
        """
        out: list[FrontEntry] = []
        for e in entries:
            p = parse(e.text)
            facts = self._verify(p, e.text)
            checked = self._entry(p, e.sample_max_ulp, facts)
            checked.generation = e.generation
            if (e.max_ulp, e.verified) != (checked.max_ulp, checked.verified):
                self.corrections.append(
                    f"a program in the {source} claimed max ULP {e.max_ulp:.6g} ({e.verified}); "
                    f"verified again: {checked.max_ulp:.6g} ({checked.verified})")
            if math.isfinite(checked.max_ulp):
                pareto_insert(out, checked, self.config.objective)
        return out

    def adopt_reported(self, entries: list[FrontEntry], source: str) -> None:
        """Add verified programs from elsewhere (an earlier front.json) to the report, after verifying them."""
        for e in self.reverify([e for e in entries if not any(r.text == e.text for r in self.reported)], source):
            pareto_insert(self.reported, e, self.config.objective)

    @classmethod
    def from_checkpoint(cls, ck: dict) -> "Search":
        """A search continuing from a checkpoint document; raise ``ValueError`` naming a bad field."""
        from .checkpoint import validate_checkpoint

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
    from .classical import seed_programs

    allowed = set(cfg.ops)
    return [p for p in seed_programs(cfg.target, cfg.domain, cfg.max_instrs) if {i.op for i in p.instrs} <= allowed]
