"""The scaling-law problem: float64 programs over data columns, fitted constants, error in the fit space.

:func:`pysearch.laws.discovery.discover` (``pysearch fit --form auto``) runs this problem on the
engine. Programs read the (scaled) x columns; the ops come from the registry's ``law_fit`` set.
Constants: every new structure of a generation is fitted by
:func:`~pysearch.laws.constant_fit.fit_many` (Levenberg-Marquardt on exact Jacobians, Huber by
reweighting, the whole batch in one GIL-free call to the Rust core, ``_core.fit_laws``). Scoring: the fitted programs are evaluated by the engine
(:func:`pysearch.evaluate`, one batch) and ranked by the RMSE of their residuals in the fit
space (or the mean Huber loss / delta); objectives (error, ``Program.cost()``). Verification
(:meth:`LawProblem.verify`): the engine's error on the training rows and, where the problem has
held-out rows, on those (extrapolation check). The run ends early when the front has not changed
for ``patience`` generations or a program's error reaches ``target_error``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Sequence

import numpy as np

from ..laws.constant_fit import KERNEL_OPS, engine_evaluate, fit_many, search_error
from ..laws.forms import SPACES, to_space
from ..program import Program, parse
from ..variation import check_ops, random_program
from .fields import FieldError, construct, need_float, need_int, need_items, need_keys, need_str
from .problem import Problem, Scores, digest, finite_or, register

if TYPE_CHECKING:
    from .loop import Search

LOSSES = ("lsq", "huber")
#: Starts whose fits :meth:`LawProblem.fit_constants` keeps (then it starts again from none).
FIT_MEMO_SIZE = 50_000


@dataclass
class LawConfig:
    """A law search: the data (inputs as rows of ``X``), the fit space and loss, and the engine settings."""

    X: tuple[tuple[float, ...], ...]
    y: tuple[float, ...]
    inputs: tuple[str, ...]
    space: str = "log"
    loss: str = "lsq"
    delta: float = 1e-3
    ops: tuple[str, ...] = ("add", "sub", "mul", "div", "pow", "exp", "log")
    max_instrs: int = 8
    init_instrs: int = 4
    population: int = 64
    seed: int = 0
    patience: int | None = 40
    target_error: float | None = None
    seed_programs: tuple[str, ...] = ()
    crossover_rate: float = 0.25
    #: New structures fitted per generation (default: every one, as many as the population).
    opt_per_generation: int | None = None
    #: Levenberg-Marquardt iterations per fit.
    fit_iterations: int = 40
    #: Held-out rows for :meth:`LawProblem.verify` (inputs as rows), if any.
    X_holdout: tuple[tuple[float, ...], ...] = ()
    y_holdout: tuple[float, ...] = ()
    verify_every: int = 0
    dtype: str = "float64"

    def __post_init__(self) -> None:
        self.X = tuple(tuple(float(v) for v in row) for row in np.atleast_2d(np.asarray(self.X, dtype=np.float64)))
        self.y = tuple(float(v) for v in np.asarray(self.y, dtype=np.float64).ravel())
        self.inputs = tuple(self.inputs)
        self.ops = tuple(self.ops)
        self.seed_programs = tuple(self.seed_programs)
        self.X_holdout = tuple(tuple(float(v) for v in row) for row in
                               (np.atleast_2d(np.asarray(self.X_holdout, dtype=np.float64)) if len(self.X_holdout) else ()))
        self.y_holdout = tuple(float(v) for v in np.asarray(self.y_holdout, dtype=np.float64).ravel())
        if self.opt_per_generation is None:
            self.opt_per_generation = self.population
        self.validate()

    def validate(self) -> None:
        if self.dtype != "float64":
            raise ValueError(f"law programs are float64, not {self.dtype!r}")
        if self.space not in SPACES:
            raise ValueError(f"unknown residual space {self.space!r}; expected one of {SPACES}")
        if self.loss not in LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}; expected 'lsq' or 'huber'")
        if not (self.delta > 0 and math.isfinite(self.delta)):
            raise ValueError(f"delta must be a positive number, not {self.delta}")
        if len(self.X) != len(self.inputs):
            raise ValueError(f"{len(self.inputs)} input names for {len(self.X)} input rows")
        if any(len(row) != len(self.y) for row in self.X):
            raise ValueError(f"every input row needs {len(self.y)} values (one per y)")
        if len(self.y) < 3:
            raise ValueError(f"too few points for a search: {len(self.y)} training rows (need at least 3)")
        if not all(math.isfinite(v) for row in self.X for v in row) or not all(math.isfinite(v) for v in self.y):
            raise ValueError("the data must be finite numbers")
        unsupported = [o for o in self.ops if o not in KERNEL_OPS]
        if unsupported:
            raise ValueError(f"op(s) {unsupported} are not available for law search; choose from {sorted(KERNEL_OPS)}")
        check_ops(self.ops, "float64")
        if self.population < 4:
            raise ValueError(f"population must be at least 4, got {self.population}")
        for name in ("max_instrs", "init_instrs", "fit_iterations"):
            if not 1 <= getattr(self, name) <= 4096:
                raise ValueError(f"{name} must be an integer in [1, 4096], not {getattr(self, name)}")
        if not 0 <= self.opt_per_generation <= 1 << 20:
            raise ValueError(f"opt_per_generation must be in [0, 2**20], not {self.opt_per_generation}")
        if not 0.0 <= self.crossover_rate <= 1.0:
            raise ValueError(f"crossover_rate must lie in [0, 1], not {self.crossover_rate}")
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"patience must be at least 1 (or None), not {self.patience}")
        if self.target_error is not None and not self.target_error >= 0:
            raise ValueError(f"target_error must be a non-negative number (or None), not {self.target_error}")
        if len(self.X_holdout) not in (0, len(self.inputs)) or (
                len(self.X_holdout) and any(len(r) != len(self.y_holdout) for r in self.X_holdout)):
            raise ValueError("held-out data must have the training data's inputs and one y per row")
        for text in self.seed_programs:
            p = parse(text)
            if p.inputs != self.inputs or p.dtype != "float64":
                raise ValueError(f"seed programs must be float64 over inputs {self.inputs}, got {p.inputs} ({p.dtype})")

    def to_json_obj(self) -> dict:
        d = asdict(self)
        for k in ("X", "X_holdout"):
            d[k] = [list(r) for r in d[k]]
        for k in ("y", "y_holdout", "inputs", "ops", "seed_programs"):
            d[k] = list(d[k])
        return d

    @classmethod
    def from_json_obj(cls, d: dict, field: str = "config") -> "LawConfig":
        need_keys(d, field, ("X", "y", "inputs"), tuple(f.name for f in fields(cls)))

        def row(v: object, where: str) -> list[float]:
            return need_items(v, where, need_float, 1 << 24)

        kw: dict = {}
        for name, v in d.items():
            where = f"{field}.{name}"
            if name in ("X", "X_holdout"):
                kw[name] = need_items(v, where, row, 4096)
            elif name in ("y", "y_holdout"):
                kw[name] = row(v, where)
            elif name in ("inputs", "ops", "seed_programs"):
                kw[name] = need_items(v, where, need_str, 4096)
            elif name in ("space", "loss", "dtype"):
                kw[name] = need_str(v, where, 64)
            elif name in ("delta", "crossover_rate"):
                kw[name] = need_float(v, where)
            elif name == "target_error":
                kw[name] = need_float(v, where, allow_null=True)
            elif name in ("patience", "opt_per_generation"):
                kw[name] = None if v is None else need_int(v, where, 0, 1 << 31)
            elif name == "seed":
                kw[name] = need_int(v, where, 0, (1 << 64) - 1)
            else:
                kw[name] = need_int(v, where, 0, 1 << 31)
        return construct(cls, kw, field)


@register
class LawProblem(Problem):
    """Discover ``y = f(x)`` as a float64 program (see the module doc)."""

    kind = "law"
    refit_known_structures = True  # Levenberg-Marquardt from another start can find another minimum

    def __init__(self, config: LawConfig):
        self.config = config
        self.X = np.ascontiguousarray(np.array(config.X, dtype=np.float64))
        self.y = np.array(config.y, dtype=np.float64)
        self.t = to_space(self.y, config.space)
        self._last_change = 0
        self._signature = ""
        #: start text -> its fitted constants (None: the fit kept the start's), for the starts fitted
        #: so far (see :meth:`fit_constants`)
        self._fits: dict[str, tuple[float, ...] | None] = {}
        #: programs of :meth:`fit_constants` calls given an earlier fit of the same start
        self.fits_reused = 0

    def initial_programs(self, rng: np.random.Generator, n: int) -> list[Program]:
        cfg = self.config
        programs = [parse(t).pruned() for t in cfg.seed_programs][:n]
        while len(programs) < n:
            k = int(rng.integers(1, cfg.init_instrs + 1))
            programs.append(random_program(rng, k, cfg.ops, cfg.inputs, "float64"))
        return programs

    def measure(self, p: Program) -> float:
        return p.cost()

    def errors(self, programs: Sequence[Program], X: np.ndarray | None = None, y: np.ndarray | None = None) -> np.ndarray:
        """Error of each program by the engine (:func:`pysearch.evaluate`) on the training rows (or ``X``, ``y``)."""
        cfg = self.config
        if X is None:
            X, t = self.X, self.t
        else:
            t = to_space(np.asarray(y, dtype=np.float64), cfg.space)
        return search_error(engine_evaluate(list(programs), X), t, cfg.space, cfg.loss, cfg.delta)

    def score(self, programs: list[Program]) -> Scores:
        errs = self.errors(programs)
        objectives = [(finite_or(e, 1e300), self.measure(p)) for p, e in zip(programs, errs)]
        return Scores(errs, errs, objectives, len(self.y))

    def fit_constants(self, programs: list[Program]) -> list[Program]:
        """Each program fitted by :func:`fit_many`, except a start fitted before in this run: a fit is
        a deterministic function of its start (the program and its constants; the data and settings
        are the problem's), so the earlier result is given again, the same bits. A law search offers
        the same start often (2,617 of 15,372 fits of a 300-generation discovery on the Chinchilla-shaped
        data, seed 0)."""
        cfg = self.config
        memo = self._fits
        keys = [p.to_text() for p in programs]
        known = {k: memo[k] for k in keys if k in memo}
        starts: dict[str, Program] = {}
        for k, p in zip(keys, programs):
            if k not in known:
                starts.setdefault(k, p)
        out = {}
        if starts:
            fitted = fit_many(list(starts.values()), self.X, self.t, cfg.space, cfg.loss, cfg.delta, cfg.fit_iterations)
            out = dict(zip(starts, fitted))
            if len(memo) + len(starts) > FIT_MEMO_SIZE:
                memo.clear()  # bounded memory; no result depends on what is kept
            for (k, p), q in zip(starts.items(), fitted):
                memo[k] = None if q is p else tuple(q.constants())
        self.fits_reused += len(programs) - len(starts)
        return [out[k] if k in out else p if known[k] is None else p.with_constants(known[k])
                for k, p in zip(keys, programs)]

    def verify(self, programs: Sequence[Program]) -> list[dict]:
        """The engine's training error and complexity of each program, and its held-out error where
        the problem has held-out rows (the extrapolation check)."""
        cfg = self.config
        train = self.errors(programs)
        held = None
        if len(cfg.X_holdout):
            held = self.errors(programs, np.array(cfg.X_holdout), np.array(cfg.y_holdout))
        return [{"error": float(train[i]), "complexity": self.measure(p),
                 **({"holdout_error": float(held[i])} if held is not None else {})}
                for i, p in enumerate(programs)]

    def front_signature(self, search: "Search") -> str:
        """A digest of the archive's (complexity, error) pairs: it changes when the front does."""
        # (the complexity is the second objective, measured when the program was scored)
        return digest([(ind.fitness.values[1], ind.max_ulp) for ind in search.archive])

    def done(self, search: "Search") -> bool:
        cfg = self.config
        if search.generation > 0:
            sig = self.front_signature(search)
            if sig != self._signature:
                self._signature, self._last_change = sig, search.generation
        if cfg.patience is not None and search.generation - self._last_change >= cfg.patience:
            return True
        if cfg.target_error is not None:
            best = min((ind.max_ulp for ind in search.archive), default=math.inf)
            if best <= cfg.target_error:
                return True
        return False

    def state(self) -> dict:
        return {"last_change": self._last_change, "signature": self._signature}

    def restore(self, state: dict) -> None:
        self._last_change = need_int(state.get("last_change", 0), "problem_state.last_change", 0, 1 << 53)
        self._signature = need_str(state.get("signature", ""), "problem_state.signature", 64)

    def settings_json(self) -> dict:
        return self.config.to_json_obj()

    @classmethod
    def from_settings_json(cls, d: dict, field: str) -> "LawProblem":
        return cls(LawConfig.from_json_obj(d, field))
