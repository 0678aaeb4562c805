"""What a search is about: the :class:`Problem` interface of the one evolutionary engine.

:class:`~.loop.Search` holds the only evolutionary loop in pysearch (DEAP's NSGA-II, binary
tournaments, mutation and crossover from :mod:`pysearch.variation`, a constant-fit cache by
program structure, the archive, checkpoint/resume, budgets). Everything that differs between
searches is a problem:

- the program dtype, op set and variation limits (``config``: ``ops``, ``max_instrs``,
  ``population``, ``crossover_rate``, ``opt_per_generation``, ``verify_every``, ``seed``);
- the initial programs (:meth:`Problem.initial_programs`) and how parents are drawn
  (``parent_selection``: binary tournaments, or uniformly from the first Pareto front);
- the cost measure (:meth:`Problem.measure`);
- how a batch of candidates is scored on the training sample (:meth:`Problem.score`: a scalar
  error per program for statistics and ties, and the two minimised objectives);
- how constants are fitted (:meth:`Problem.fit_constants`: a list of programs in, the fitted
  programs out, one call per generation);
- how a candidate is verified before it is reported (:meth:`Problem.verify_round` during the run,
  :meth:`Problem.verify` for a list of programs);
- when a run is done early (:meth:`Problem.done`) and how much of a time budget to keep for the
  final verification (:meth:`Problem.reserve_seconds`);
- the JSON form of its configuration, saved in checkpoints (:meth:`Problem.to_json_obj`, read
  back by :func:`problem_from_json`; each kind has a schema version);
- the genome: what a candidate is and how it varies. By default a straight-line
  :class:`~pysearch.program.Program` (mutation and instruction-block crossover from
  :mod:`pysearch.variation`, identity by program text, the constant-fit cache keyed by program
  structure); a problem may supply its own (:meth:`Problem.mutate`, :meth:`Problem.crossover`,
  :meth:`Problem.genome_text` (the canonical identity string: de-duplication, checkpoints),
  :meth:`Problem.parse_genome`, :meth:`Problem.structure` (``None``: nothing to fit), with
  :meth:`Problem.initial_programs` drawing random genomes and :meth:`Problem.score` giving the
  objectives; a single objective is ``(error, 0.0)``).

The problems: :class:`~.float32_problem.Float32Problem` (float32 kernels, ULP error, exhaustive
verification; a plain :class:`~.config.SearchConfig` means this one and its checkpoints carry no
problem kind), :class:`~.law_problem.LawProblem` (scaling laws),
:class:`~.real_problem.RealProblem` (real-number approximations, the paper's setting) and
:class:`~.config_problem.ConfigProblem` (a vector of category indices: model and metric
configurations, ``experiments/evolve_configs.py``).
"""

from __future__ import annotations

import hashlib
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Sequence

import numpy as np

from ..program import Program, parse
from ..variation import crossover as program_crossover
from ..variation import mutate as program_mutate
from .fields import FieldError, need_dict, need_float, need_int, need_items, need_keys, need_str

if TYPE_CHECKING:  # the loop imports this module
    from .loop import Search

#: Problem kind -> its class (filled by :func:`register`); ``"float32"`` is the default.
PROBLEM_KINDS: dict[str, type["Problem"]] = {}


@dataclass
class Scores:
    """A batch of scored programs: per program a scalar error (``inf`` where unusable; the
    statistics' key), a secondary error (breaks ties between fits of one structure) and the two
    minimised objectives; ``points`` is the sample size each was evaluated on."""

    errors: np.ndarray
    means: np.ndarray
    objectives: list[tuple[float, float]]
    points: int


class Problem(ABC):
    """A search problem for :class:`~.loop.Search` (see the module doc for each part)."""

    #: The problem's name in checkpoints.
    kind: ClassVar[str]
    #: JSON schema version of :meth:`to_json_obj`.
    schema: ClassVar[int] = 1
    #: Fit a child of an already fitted structure again from its own constants (a fit whose result
    #: depends on its start); otherwise the cached fit of the structure is offered instead.
    refit_known_structures: ClassVar[bool] = False
    #: How the loop draws parents: ``"tournament"`` (binary tournaments on dominance, then crowding
    #: distance) or ``"front"`` (uniformly from the population's first Pareto front).
    parent_selection: ClassVar[str] = "tournament"
    #: The engine settings the loop reads: ``population``, ``ops``, ``max_instrs``,
    #: ``crossover_rate``, ``opt_per_generation``, ``verify_every`` (0: never), ``seed``.
    config: Any

    def attach(self, search: "Search") -> None:
        """Called once by the search that runs this problem, before anything else."""

    def structure_cap(self) -> int:
        """Most programs of one :meth:`structure` the loop keeps in the population (0: no cap; see
        ``SearchConfig.max_per_structure``). Default: the config's ``max_per_structure``, else 0."""
        return getattr(self.config, "max_per_structure", 0)

    @property
    def dtype(self) -> str:
        return self.config.dtype

    @abstractmethod
    def initial_programs(self, rng: np.random.Generator, n: int) -> list[Program]:
        """``n`` programs for the first population (seeded structures, then random ones from ``rng``)."""

    @abstractmethod
    def measure(self, p: Program) -> float:
        """The program's cost (the second objective)."""

    @abstractmethod
    def score(self, programs: list[Program]) -> Scores:
        """Score a batch of programs (constants as given) on the training sample."""

    @abstractmethod
    def fit_constants(self, programs: list[Program]) -> list[Program]:
        """The programs with fitted constants (each has at least one constant); one call per generation."""

    def verify(self, programs: Sequence[Program]) -> list[dict]:
        """Facts about each program from the problem's check before reporting (default: none)."""
        return [{} for _ in programs]

    def verify_round(self, search: "Search") -> list:
        """A verification round during the run (every ``verify_every`` generations); new reported entries."""
        return []

    def done(self, search: "Search") -> bool:
        """Whether the run should stop before its limits (checked before each generation)."""
        return False

    def restart_due(self, search: "Search") -> bool:
        """Whether the population should start again from fresh initial programs (checked after
        each generation; the archive and what the problem remembers stay). Default: never."""
        return False

    def reserve_seconds(self, search: "Search", budget_s: float) -> float:
        """Seconds of ``budget_s`` to keep free at the end (a generation's time, plus any final verification)."""
        return search.step_seconds()

    def rebuild_sample(self, search: "Search") -> None:
        """Rebuild the search sample after it grew (default: the sample is fixed)."""

    def state(self) -> dict:
        """The problem's own evolving state (JSON-able), committed with each generation."""
        return {}

    def restore(self, state: dict) -> None:
        """Continue from :meth:`state`."""

    def preload(self, state: dict) -> None:
        """On a resume, before the population is scored again: the committed :meth:`state` (e.g. a score
        cache that spares expensive evaluations); :meth:`restore` follows after the scoring."""

    # ------------------------------------------------------------ the genome (default: a Program)
    def genome_text(self, g: Any) -> str:
        """The genome's canonical text: its identity (de-duplication) and its form in checkpoints."""
        return g.to_text()

    def parse_genome(self, text: str) -> Any:
        """The genome from :meth:`genome_text`; raise ``ValueError`` naming the problem."""
        return parse(text)

    def structure(self, g: Any) -> str | None:
        """The constant-fit cache key of a genome (genomes that differ only in constants share it);
        ``None`` when it has nothing to fit."""
        from .individual import structure_key

        return structure_key(g) if g.constants() else None

    def mutate(self, rng: np.random.Generator, g: Any) -> Any:
        """A mutated copy of ``g`` (default: :func:`pysearch.variation.mutate` over ``config.ops``)."""
        return program_mutate(rng, g, self.config.ops, self.config.max_instrs)

    def crossover(self, rng: np.random.Generator, a: Any, b: Any) -> list:
        """Two children of ``a`` and ``b`` (default: instruction-block crossover; a child too long or equal
        to its parent is replaced by a mutation of that parent)."""
        pair = list(program_crossover(rng, a, b))
        for j, (c, parent) in enumerate(zip(pair, (a, b))):
            if len(c.instrs) > self.config.max_instrs or c.to_text() == parent.to_text():
                pair[j] = self.mutate(rng, parent)
        return pair

    @abstractmethod
    def settings_json(self) -> dict:
        """The configuration as a JSON-able dict (without kind and schema)."""

    @classmethod
    @abstractmethod
    def from_settings_json(cls, d: dict, field: str) -> "Problem":
        """The problem from :meth:`settings_json`; raise :class:`~.fields.FieldError` naming a bad field."""

    def to_json_obj(self) -> dict:
        return {"problem": self.kind, "problem_schema": self.schema, **self.settings_json()}

    def check_program(self, text: object, field: str) -> str:
        """A program text from a checkpoint: it must parse and have this problem's dtype."""
        s = need_str(text, field, 1 << 20)
        try:
            p = parse(s)
        except ValueError as e:
            raise FieldError(field, str(e).splitlines()[0]) from None
        if p.dtype != self.dtype:
            raise FieldError(field, f"is not a {self.dtype} program")
        return s


def register(cls: type[Problem]) -> type[Problem]:
    """Class decorator: make a problem kind loadable from checkpoints."""
    PROBLEM_KINDS[cls.kind] = cls
    return cls


def problem_kind(config: object) -> str:
    """The problem kind a checkpoint's ``config`` names (``"float32"`` when it names none, as older ones)."""
    if isinstance(config, dict) and "problem" in config:
        return need_str(config["problem"], "config.problem", 64)
    return "float32"


def problem_from_json(d: object, field: str = "config") -> Problem:
    """A problem from :meth:`Problem.to_json_obj`; raise :class:`~.fields.FieldError` naming a bad field."""
    from . import config_problem, float32_problem, law_problem, real_problem  # noqa: F401  (they register their kinds)

    d = need_dict(d, field)
    kind = problem_kind(d)
    if kind not in PROBLEM_KINDS:
        raise FieldError(f"{field}.problem", f"unknown problem kind {kind!r}; known: {sorted(PROBLEM_KINDS)}")
    cls = PROBLEM_KINDS[kind]
    if "problem" in d:
        schema = need_int(d.get("problem_schema"), f"{field}.problem_schema", 0, 1 << 31)
        if schema != cls.schema:
            raise FieldError(f"{field}.problem_schema", f"is {schema}; this pysearch reads {kind} schema {cls.schema}")
    settings = {k: v for k, v in d.items() if k not in ("problem", "problem_schema")}
    return cls.from_settings_json(settings, field)


#: Fields of a checkpoint of a problem other than float32 (which keeps its own format, :mod:`.checkpoint`).
GENERIC_REQUIRED = ("config", "generation", "rng", "population")
GENERIC_OPTIONAL = ("archive", "rejected", "front", "reported", "extra_x", "evaluations", "optimisations", "logbook",
                    "elapsed_s", "cache", "verify_cache", "screen_cache", "limits", "problem_state")


def validate_generic_checkpoint(doc: object) -> tuple[dict, Problem]:
    """Check a checkpoint of a non-float32 problem; return it and its problem. Raise :class:`FieldError`."""
    from .checkpoint import MAX_PROGRAMS, _check_rng

    doc = need_dict(doc, "checkpoint")
    need_keys(doc, "", GENERIC_REQUIRED, ("schema", "kind", *GENERIC_OPTIONAL))
    problem = problem_from_json(doc["config"])
    need_int(doc["generation"], "generation", 0, 1 << 53)
    _check_rng(doc["rng"])
    if not need_items(doc["population"], "population", problem.check_program, MAX_PROGRAMS):
        raise FieldError("population", "is empty")
    need_items(doc.get("archive", []), "archive", problem.check_program, MAX_PROGRAMS)
    for name in ("front", "reported", "extra_x", "rejected"):
        if doc.get(name):
            raise FieldError(name, f"must be empty for a {problem.kind} search")
    need_int(doc.get("evaluations", 0), "evaluations", 0, 1 << 63)
    need_int(doc.get("optimisations", 0), "optimisations", 0, 1 << 63)
    need_float(doc.get("elapsed_s", 0.0), "elapsed_s", 0.0, 1e10)
    need_items(doc.get("logbook", []), "logbook", need_dict, 1 << 20)
    for k, v in need_dict(doc.get("cache", {}), "cache").items():
        problem.check_program(v, f"cache[{k!r}]")
    limits = need_dict(doc.get("limits", {}), "limits")
    need_keys(limits, "limits", (), ("budget_s", "generations"))
    need_dict(doc.get("problem_state", {}), "problem_state")
    return doc, problem


def digest(pairs: Sequence[tuple]) -> str:
    """A short digest of an archive's (objective, objective) pairs: it changes when they do (the
    problems' stall detection checkpoints it instead of the pairs)."""
    return hashlib.sha256(repr(sorted(pairs)).encode()).hexdigest()[:16]


def finite_or(v: float, default: float) -> float:
    """``v`` as a float, or ``default`` where it is NaN or infinite."""
    v = float(v)
    return v if math.isfinite(v) else default
