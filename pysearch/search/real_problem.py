"""The real-number problem (the paper's setting): exact-arithmetic programs, relative error vs a high-precision reference.

Programs are float64 programs over ``x`` whose ops (default add, sub, mul, div, fma) are read as
real-number operations; the cost is the number of live operations that depend on ``x``
(operations on constants alone fold into one constant). Training points: Chebyshev points of
the domain (the ends left out: some programs divide by x). Reference: the target's exact value
(:meth:`pysearch.targets.Target.exact`, 40 digits) as a double-double.

- Constants (:meth:`RealProblem.fit_constants`, ``config.fit="core"``): the whole batch in one
  GIL-free core call, ``_core.fit_laws`` (rust/lawfit.rs: Levenberg-Marquardt with exact
  forward-mode Jacobians) on the relative error of the float64 value at the training points
  (linear residuals, targets f, weights 1/f). A structure fitted for the first time is also fitted
  from ``config.restarts`` random starts (each constant a random sign times exp(U(-3, 9)), drawn
  from a generator seeded by the run's seed and the structure, so the same whatever the batch);
  every fit and the start compete on the problem's error (:meth:`RealProblem.errors`), so a
  program never comes back worse. Below 1e-13 the best goes on in double-double on the
  real-number residual, which float64 rounding no longer hides (two Gauss-Newton steps where the
  program is affine in its constants, else trust-region least squares with the forward-mode
  Jacobian of :class:`~pysearch.baselines.program_minimax.MpModel`). ``config.fit="scipy"``: the
  earlier path, one program at a time (a linear solve in double-double when affine in its
  constants, else scipy's trust-region least squares on the float64 residual, then the same
  refinement), kept as the benchmark's baseline and for ops without a core derivative.
- Scoring (:meth:`RealProblem.score`, :meth:`RealProblem.errors`): max relative error at the
  training points of the float64 values of the whole batch (one core evaluation), and of the
  program's real-number value (double-double; float64 where an op has no double-double form)
  where the float64 error is below 1e-12, where float64 rounding (about 1e-16 times the program's
  condition) is no longer negligible; objectives (log2 of that error, cost).
- Verification (:meth:`RealProblem.verify`): the same error on a dense grid of the domain
  (``verify_points`` points, ends included where the program is finite there).

- Variation: the engine's mutation and crossover over ``config.ops``, with the named mutation set
  ``config.mutation`` (:data:`pysearch.variation.MUTATION_SETS`); a program using another op is
  refused when scored and when read from a checkpoint (the op set is part of the problem).

Besides the Pareto archive the engine keeps, the problem records the best programs of distinct
structure at each cost (:meth:`RealProblem.best_structures`), which a polish step can take further.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Sequence

import mpmath
import numpy as np
from scipy.optimize import least_squares

from .. import _core
from ..double_double import DDProgram, dd_add, supports
from ..evaluation import evaluate
from ..ops import ops_where
from ..program import Program, parse
from ..targets import get_target
from ..variation import MUTATION_SETS, check_ops, random_program
from ..variation import mutate as program_mutate
from .fields import FieldError, construct, need_float, need_int, need_items, need_keys, need_str
from .individual import structure_key
from .problem import Problem, Scores, register

if TYPE_CHECKING:
    from .loop import Search

_CORE_OPS = frozenset(ops_where("law_fit"))  # ops with forward-mode derivatives in the core fit
_BAD = 1e3  # residual standing in for a non-finite value
#: Constant fitters (:attr:`RealConfig.fit`).
FIT_ENGINES = ("core", "scipy")
#: Below this float64 max relative error a program is scored in double-double (float64 rounding,
#: about 1e-16 times the program's condition, is no longer negligible there).
DD_BELOW = 1e-12
#: Below this error a fit goes on in double-double (the real-number residual).
REFINE_BELOW = 1e-13
#: Random restarts draw each constant as a random sign times exp(U(lo, hi)).
RESTART_LOG_RANGE = (-3.0, 9.0)


def x_dependent_ops(p: Program) -> int:
    """The real-number cost: live operations that depend on x (the paper's count; operations on
    constants alone are free, since they fold into one constant)."""
    return sum(d and lv for d, lv in zip(p.depends_on_input(), p.live()))


def chebyshev_points(n: int, domain: tuple[float, float]) -> np.ndarray:
    """``n`` Chebyshev points strictly inside ``domain``, sorted."""
    a, b = domain
    k = np.arange(n)
    t = 0.5 - 0.5 * np.cos(np.pi * (k + 0.5) / n)
    return np.ascontiguousarray(np.sort(a + (b - a) * t), dtype=np.float64)


def exact_values(target: str, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The target at ``x`` as a double-double ``(hi, lo)`` (40 significant digits)."""
    t = get_target(target)
    with mpmath.workdps(40):
        exact = [t.fn(mpmath.mpf(float(v))) for v in x]
        hi = np.array([float(v) for v in exact])
        lo = np.array([float(v - mpmath.mpf(float(v))) for v in exact])
    return hi, lo


@dataclass
class RealConfig:
    """A real-number approximation search of ``target`` on ``domain``."""

    target: str = "exp2"
    domain: tuple[float, float] = (0.0, 1.0)
    points: int = 1000
    ops: tuple[str, ...] = ("add", "sub", "mul", "div", "fma")
    max_instrs: int = 12
    init_instrs: int = 4
    population: int = 64
    seed: int = 0
    crossover_rate: float = 0.2
    opt_per_generation: int | None = None
    fit_iterations: int = 60
    #: Points of the dense verification grid.
    verify_points: int = 20001
    #: Distinct structures remembered per cost (:meth:`RealProblem.best_structures`).
    keep_per_cost: int = 16
    verify_every: int = 0
    dtype: str = "float64"
    #: Named mutation set (:data:`pysearch.variation.MUTATION_SETS`): ``engine``, ``structural``
    #: (adds the rewrites of :mod:`pysearch.structural`) or ``autonumerics`` (the paper's set).
    mutation: str = "engine"
    #: Where constants are fitted: ``core`` (the whole batch in one ``_core.fit_laws`` call) or
    #: ``scipy`` (one program at a time, the earlier path, kept as the benchmark's baseline).
    fit: str = "core"
    #: Random restarts of a structure's constants the first time it is fitted (``fit="core"``).
    restarts: int = 4
    #: Start the population again from random programs after this many generations in which no
    #: cost's best error (over the whole run) improved by more than 0.1% (0: never). The run's bests
    #: stay in the archive and in :meth:`RealProblem.best_structures`.
    restart_after: int = 0

    def __post_init__(self) -> None:
        self.domain = (float(self.domain[0]), float(self.domain[1]))
        self.ops = tuple(self.ops)
        if self.opt_per_generation is None:
            self.opt_per_generation = self.population
        self.validate()

    def validate(self) -> None:
        get_target(self.target)  # names an unknown target
        a, b = self.domain
        if not (math.isfinite(a) and math.isfinite(b) and a < b):
            raise ValueError(f"bad domain [{a}, {b}]: need finite A < B")
        if self.dtype != "float64":
            raise ValueError(f"real-number programs are float64 programs, not {self.dtype!r}")
        check_ops(self.ops, "float64")
        if self.fit not in FIT_ENGINES:
            raise ValueError(f"unknown fit {self.fit!r}; known: {', '.join(FIT_ENGINES)}")
        if self.mutation not in MUTATION_SETS:
            raise ValueError(f"unknown mutation set {self.mutation!r}; known: {', '.join(MUTATION_SETS)}")
        for name, lo, hi in (("points", 4, 1 << 20), ("max_instrs", 1, 4096), ("init_instrs", 1, 4096),
                             ("population", 4, 1 << 20), ("fit_iterations", 1, 1 << 16),
                             ("verify_points", 2, 1 << 24), ("keep_per_cost", 1, 4096),
                             ("opt_per_generation", 0, 1 << 20), ("restarts", 0, 1024),
                             ("restart_after", 0, 1 << 31)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise ValueError(f"{name} must be an integer in [{lo}, {hi}], not {v!r}")
        if not 0.0 <= self.crossover_rate <= 1.0:
            raise ValueError(f"crossover_rate must lie in [0, 1], not {self.crossover_rate}")

    def to_json_obj(self) -> dict:
        d = asdict(self)
        d["domain"] = list(self.domain)
        d["ops"] = list(self.ops)
        return d

    @classmethod
    def from_json_obj(cls, d: dict, field: str = "config") -> "RealConfig":
        need_keys(d, field, (), tuple(f.name for f in fields(cls)))
        kw: dict = {"fit": "scipy", "restarts": 0}  # a run saved before the core fit continues as it started
        for name, v in d.items():
            where = f"{field}.{name}"
            if name in ("target", "dtype", "mutation", "fit"):
                kw[name] = need_str(v, where, 4096)
            elif name == "domain":
                kw[name] = need_items(v, where, need_float, 2)
                if len(kw[name]) != 2:
                    raise FieldError(where, "expected [A, B]")
            elif name == "ops":
                kw[name] = need_items(v, where, need_str, 4096)
            elif name == "crossover_rate":
                kw[name] = need_float(v, where)
            elif name == "seed":
                kw[name] = need_int(v, where, 0, (1 << 64) - 1)
            elif name == "opt_per_generation" and v is None:
                kw[name] = None
            else:
                kw[name] = need_int(v, where, 0, 1 << 31)
        return construct(cls, kw, field)


@register
class RealProblem(Problem):
    """Approximate ``config.target`` with real-number programs (see the module doc)."""

    kind = "real"
    refit_known_structures = True  # Levenberg-Marquardt from another start can find another minimum
    #: Parents from the first front: each cost's best program is extended (measured on exp2: the
    #: minimax Horner chain at every op count 2..12 within 1536 children; tournaments reached 4 ops).
    parent_selection = "front"

    def __init__(self, config: RealConfig):
        self.config = config
        self.x = chebyshev_points(config.points, config.domain)
        self.f_hi, self.f_lo = exact_values(config.target, self.x)
        self.f = self.f_hi
        #: cost -> structure key -> (error, program): the best fit of each structure seen.
        self.kept: dict[int, dict[str, tuple[float, Program]]] = {}
        #: Structure keys fitted before (their random restarts are spent), when no search runs the
        #: problem; a search's own constant cache (``Search.cache``, checkpointed by the engine) says
        #: which structures it fitted before, so a long run keeps no second, growing copy of them.
        self.started: set[str] = set()
        self.search: "Search | None" = None
        #: generations since any cost's best error (:attr:`best_by_cost`) improved
        self.stalled = 0
        self.population_restarts = 0
        self._improved = False
        self._weights = np.ascontiguousarray(1.0 / self.f)
        self._dense: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    # ------------------------------------------------------------ engine hooks
    def attach(self, search: "Search") -> None:
        self.search = search

    def _first_fit(self, key: str) -> bool:
        """Whether structure ``key`` is fitted for the first time (and remember it, standalone)."""
        if self.search is not None:
            return key not in self.search.cache
        if key in self.started:
            return False
        self.started.add(key)
        return True

    def initial_programs(self, rng: np.random.Generator, n: int) -> list[Program]:
        cfg = self.config
        return [random_program(rng, int(rng.integers(1, cfg.init_instrs + 1)), cfg.ops, dtype="float64").pruned()
                for _ in range(n)]

    def measure(self, p: Program) -> float:
        """:func:`x_dependent_ops` (operations on constants alone are free)."""
        return float(x_dependent_ops(p))

    def mutate(self, rng: np.random.Generator, g: Program) -> Program:
        """A mutation from the configured set (``config.mutation``) over ``config.ops``."""
        cfg = self.config
        weights = None if cfg.mutation == "engine" else MUTATION_SETS[cfg.mutation]
        return program_mutate(rng, g, cfg.ops, cfg.max_instrs, weights=weights)

    def check_ops_used(self, p: Program) -> None:
        """Raise ``ValueError`` naming the op when ``p`` uses an op outside ``config.ops``."""
        bad = sorted({ins.op for ins in p.instrs} - set(self.config.ops))
        if bad:
            raise ValueError(f"program uses op(s) {bad} outside the op set {list(self.config.ops)}")

    def score(self, programs: list[Program]) -> Scores:
        for p in programs:
            self.check_ops_used(p)
        errs = self.errors(programs)
        objectives = []
        for p, e in zip(programs, errs):
            cost = self.measure(p)
            objectives.append((math.log2(e) if e > 0 and math.isfinite(e) else (-1100.0 if e == 0 else 1e300), cost))
            if math.isfinite(e) and cost >= 1 and p.depends_on_input()[p.output]:
                self._remember(int(cost), p, float(e))
        return Scores(errs, errs, objectives, len(self.x))

    def errors(self, programs: Sequence[Program]) -> np.ndarray:
        """Max relative error of each program at the training points: float64 values from one core
        call, and the real-number value (double-double, :meth:`real_max_rel`) where that is below
        :data:`DD_BELOW` (float64 rounding matters there); ``inf`` where not finite."""
        if not programs:
            return np.zeros(0)
        with np.errstate(all="ignore"):
            y = np.asarray(evaluate(list(programs), self.x), dtype=np.float64).reshape(len(programs), -1)
            r = np.abs(y - self.f) / self.f
            e = np.where(np.all(np.isfinite(r), axis=1), np.max(r, axis=1), math.inf)
        e = np.where(e < _BAD, e, math.inf)
        for i in np.flatnonzero(e < DD_BELOW):
            e[i] = self.real_max_rel(programs[i])
        return e

    def fit_constants(self, programs: list[Program]) -> list[Program]:
        """Each program without its dead instructions, constants fitted where its output depends on x
        (``config.fit``: the batch in the core, or one program at a time in scipy); never worse
        than its start."""
        pruned = [p.pruned() for p in programs]
        todo = [i for i, p in enumerate(pruned) if p.depends_on_input()[p.output]]
        if self.config.fit == "scipy":
            for i in todo:
                pruned[i] = self.lsq(pruned[i], self.config.fit_iterations)
            return pruned
        return self._fit_core(pruned, todo)

    def _fit_core(self, progs: list[Program], todo: list[int]) -> list[Program]:
        """The core fit of ``progs[i]`` for ``i`` in ``todo`` (see the module doc)."""
        cfg = self.config
        jobs: list[tuple[int, list[float]]] = []  # (program index, starting constants)
        for i in todo:
            p = progs[i]
            c0 = p.constants()
            if not c0 or not all(math.isfinite(v) for v in c0):
                continue
            if {ins.op for ins in p.instrs} - _CORE_OPS:  # no derivative in the core: scipy
                progs[i] = self.lsq(p, cfg.fit_iterations)
                continue
            jobs.append((i, c0))
            key = structure_key(p)
            if self._first_fit(key):
                # seeded by the structure alone: the same starts whatever the batch or the order
                rng = np.random.default_rng([cfg.seed, zlib.crc32(key.encode())])
                lo, hi = RESTART_LOG_RANGE
                for _ in range(cfg.restarts):
                    c = rng.choice((-1.0, 1.0), len(c0)) * np.exp(rng.uniform(lo, hi, len(c0)))
                    jobs.append((i, [float(v) for v in c]))
        if not jobs:
            return progs
        raws = []  # each start: its program's compiled form with the start's constants (float64 programs)
        for i, c in jobs:
            ops, args, _, n_inputs, output = progs[i].compile().as_tuple()
            raws.append((ops, args, np.asarray(c, dtype=np.float64), n_inputs, output))
        consts, _ = _core.fit_laws(raws, self.x[None, :], self.f, "linear", "lsq", 1e-3, cfg.fit_iterations,
                                   self._weights)
        # every start and every fit of a program compete on the max relative error; the start is
        # among them, so the result is never worse than it
        cands: dict[int, list[Program]] = {}
        for (i, _), c in zip(jobs, consts):
            cands.setdefault(i, [progs[i]]).append(progs[i].with_constants([float(v) for v in c]))
        flat = [q for qs in cands.values() for q in qs]
        errs = iter(self.errors(flat).tolist())
        for i, qs in cands.items():
            es = [next(errs) for _ in qs]
            k = int(np.argmin(es))  # the first of equals: the start where nothing improved on it
            best, best_e = qs[k], es[k]
            if best_e < REFINE_BELOW and supports(best):
                refined = self._refine_real(best)
                if refined is not best and self.real_max_rel(refined) < best_e:
                    best = refined
            progs[i] = best
        return progs

    def verify(self, programs: Sequence[Program]) -> list[dict]:
        """Max relative error of each program's real-number value on the dense grid (``inf`` where
        it is not finite; the ends of the domain are left out where the program is undefined there)."""
        if self._dense is None:
            a, b = self.config.domain
            x = np.linspace(a, b, self.config.verify_points)
            hi, lo = exact_values(self.config.target, x)
            self._dense = (x, hi, lo)
        x, hi, lo = self._dense
        out = []
        for p in programs:
            r = np.abs(self._real_residual_at(p, p.constants(), x, hi, lo))
            ok = np.isfinite(r)
            # a program undefined at an end of the domain (it divides by x there) is checked inside it
            inner = np.ones_like(ok)
            inner[0] = inner[-1] = False
            m = float(r.max()) if ok.all() else (float(r[inner].max()) if ok[inner].all() else math.inf)
            out.append({"max_rel_error": m, "points": int(len(x)), "cost": self.measure(p),
                        "ends_excluded": not bool(ok.all())})
        return out

    # ------------------------------------------------------------ bookkeeping
    def restart_due(self, search: "Search") -> bool:
        """After ``config.restart_after`` generations without a new best at any cost (see the field)."""
        self.stalled = 0 if self._improved else self.stalled + 1
        self._improved = False
        if self.config.restart_after and self.stalled >= self.config.restart_after:
            self.stalled = 0
            self.population_restarts += 1
            return True
        return False

    @property
    def best_by_cost(self) -> dict[int, float]:
        """Cost -> least error seen over the run (each cost's best is never evicted from ``kept``)."""
        return {c: min(e for e, _ in v.values()) for c, v in self.kept.items() if v}

    def _remember(self, cost: int, p: Program, e: float) -> None:
        by_shape = self.kept.setdefault(cost, {})
        if e < min((b for b, _ in by_shape.values()), default=math.inf) * (1 - 1e-3):
            self._improved = True
        key = structure_key(p)
        if key not in by_shape or e < by_shape[key][0]:
            by_shape[key] = (e, p)
            if len(by_shape) > self.config.keep_per_cost:
                del by_shape[max(by_shape, key=lambda k: by_shape[k][0])]

    def state(self) -> dict:
        state: dict = {"kept": {str(k): {key: [e, p.to_text()] for key, (e, p) in v.items()}
                                for k, v in self.kept.items()}}
        if self.search is None:
            state["started"] = sorted(self.started)
        if self.config.restart_after:
            state["stalled"], state["population_restarts"] = self.stalled, self.population_restarts
        return state

    def restore(self, state: dict) -> None:
        kept = state.get("kept", {})
        self.started = set(need_items(state.get("started", []), "problem_state.started", need_str, 1 << 40))
        self.stalled = need_int(state.get("stalled", 0), "problem_state.stalled", 0, 1 << 31)
        self.population_restarts = need_int(state.get("population_restarts", 0), "problem_state.population_restarts",
                                            0, 1 << 31)
        self.kept = {}
        for k, v in kept.items():
            field = f"problem_state.kept[{k!r}]"
            if not k.isdigit() or not isinstance(v, dict):
                raise FieldError(field, "expected a cost and a map of structures")
            self.kept[int(k)] = {key: (need_float(e, field, 0.0), parse(self.check_program(t, field)))
                                 for key, (e, t) in ((key, tuple(ev)) for key, ev in v.items())}
        self._improved = False

    def best_structures(self) -> dict[int, list[tuple[float, Program]]]:
        """Per cost, the remembered programs of distinct structure, most accurate first."""
        return {k: sorted(v.values(), key=lambda t: t[0]) for k, v in sorted(self.kept.items())}

    # ------------------------------------------------------------ errors
    def residual(self, prog: Program, c: Sequence[float]) -> np.ndarray:
        """Relative error of the float64-evaluated program with constants ``c`` at the training points."""
        with np.errstate(all="ignore"):
            y = evaluate(prog.with_constants(list(c)), self.x)
            r = (y - self.f) / self.f
        return np.where(np.isfinite(r), r, _BAD)

    def max_rel(self, prog: Program) -> float:
        """Max relative error of the float64-evaluated program (rounding errors included)."""
        return float(np.abs(self.residual(prog, prog.constants())).max())

    def _real_residual_at(self, prog: Program, c, x, f_hi, f_lo) -> np.ndarray:
        if not supports(prog):
            with np.errstate(all="ignore"):
                y = evaluate(prog.with_constants(list(c)), x)
                return (y - f_hi) / f_hi
        dd = DDProgram(prog)
        hi, lo = dd(x, np.asarray(c, dtype=np.float64), np.zeros(dd.n))
        with np.errstate(all="ignore"):
            d = dd_add((hi, lo), (-f_hi, -f_lo))
            return d[0] / f_hi

    def real_residual(self, prog: Program, c) -> np.ndarray:
        """Signed relative error of the program's real-number value (double-double) with constants ``c``."""
        r = self._real_residual_at(prog, c, self.x, self.f_hi, self.f_lo)
        return np.where(np.isfinite(r), r, _BAD)

    def real_max_rel(self, prog: Program) -> float:
        """Max relative error of the program's real-number value (double-double) at the training points."""
        if not supports(prog):
            m = self.max_rel(prog)
        else:
            m = float(np.abs(self.real_residual(prog, prog.constants())).max())
        return m if m < _BAD else math.inf

    # ------------------------------------------------------------ constants
    def lsq(self, prog: Program, iters: int = 60) -> Program:
        """One program's least squares on relative error in scipy (``config.fit="scipy"``, see the
        module doc); never returns a worse program."""
        from ..baselines.program_minimax import MpModel, affine_in_constants

        c0 = np.array(prog.constants(), dtype=np.float64)
        if c0.size == 0 or not np.all(np.isfinite(c0)):
            return prog
        if not supports(prog):
            return self._lm(prog, lambda c: self.residual(prog, c), "2-point", c0, iters, self.max_rel)
        if affine_in_constants(prog):
            return self._refine_real(prog)
        model = MpModel(prog)

        def jac(c):
            with np.errstate(all="ignore"):
                J = model.jacobian(self.x, c) / self.f[:, None]
            return np.where(np.isfinite(J), J, 0.0)

        p = self._lm(prog, lambda c: self.residual(prog, c), jac, c0, iters, self.real_max_rel)
        return self._refine_real(p) if self.real_max_rel(p) < REFINE_BELOW else p

    def _refine_real(self, prog: Program) -> Program:
        """Least squares on the real-number (double-double) residual from ``prog``'s constants: two
        Gauss-Newton steps where ``prog`` is affine in its constants, else ``fit_iterations // 3``
        iterations of trust-region least squares; ``prog`` itself where that is not better."""
        from ..baselines.program_minimax import MpModel, affine_in_constants

        model = MpModel(prog)

        def jac(c):
            with np.errstate(all="ignore"):
                J = model.jacobian(self.x, c) / self.f[:, None]
            return np.where(np.isfinite(J), J, 0.0)

        c = np.array(prog.constants(), dtype=np.float64)
        if not affine_in_constants(prog):
            return self._lm(prog, lambda c: self.real_residual(prog, c), jac, c,
                            max(self.config.fit_iterations // 3, 1), self.real_max_rel)
        best, best_e = prog, self.real_max_rel(prog)
        for _ in range(2):
            try:
                c = c + np.linalg.lstsq(jac(c), -self.real_residual(prog, c), rcond=None)[0]
            except np.linalg.LinAlgError:
                break
            cand = prog.with_constants([float(v) for v in c])
            e = self.real_max_rel(cand)
            if e < best_e:
                best, best_e = cand, e
        return best

    @staticmethod
    def _lm(prog, fun, jac, c0, iters, measure) -> Program:
        """At most about ``iters`` iterations of scipy's trust-region reflective least squares.

        Not ``method="lm"``: scipy's MINPACK gives results that differ in the last bits from run to
        run on identical inputs (it depends on where its work arrays land in memory: measured with
        scipy 1.17, 4 different results in 300 identical calls), which would make a seeded search
        irreproducible; ``"trf"`` gave one result in 300.
        """
        nfev = iters * (c0.size + 1) if isinstance(jac, str) else iters
        try:
            with np.errstate(all="ignore"):
                res = least_squares(fun, c0, jac=jac, method="trf", max_nfev=nfev)
            if not np.all(np.isfinite(res.x)):
                return prog
            cand = prog.with_constants([float(v) for v in res.x])
        except (ValueError, np.linalg.LinAlgError, FloatingPointError):
            return prog
        return cand if measure(cand) <= measure(prog) else prog

    # ------------------------------------------------------------ JSON
    def settings_json(self) -> dict:
        return self.config.to_json_obj()

    @classmethod
    def from_settings_json(cls, d: dict, field: str) -> "RealProblem":
        return cls(RealConfig.from_json_obj(d, field))

    def check_program(self, text: object, field: str) -> str:
        s = super().check_program(text, field)
        p = parse(s)
        if len(p.inputs) != 1:
            raise FieldError(field, "is not a one-input float64 program")
        try:
            self.check_ops_used(p)
        except ValueError as e:
            raise FieldError(field, str(e)) from None
        return s
