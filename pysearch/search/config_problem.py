"""The configuration problem: a fixed-length vector of category indices, one error to minimise.

A genome is a tuple of gene values, gene ``i`` an index in ``range(gene_sizes[i])`` (e.g. a
metric, a transformation and a law; or a model's width, depth and training steps). Its canonical
text is the values joined by commas (``"2,0,1"``): its identity in the population and its form in
checkpoints. Variation: uniform crossover (each gene from either parent with probability 1/2;
a child equal to its parent is replaced by a mutation of that parent) and one-gene resampling (one
gene with more than one value is set to another of its values). Scoring: the problem's *fitness*,
a function of the genome, evaluated once per distinct genome (the scores are kept in the
problem's state, so a resumed run evaluates nothing again); objectives ``(error, 0.0)``: NSGA-II
on one objective. Nothing is fitted (:meth:`ConfigProblem.structure` is ``None``).

A fitness is code, so a checkpoint names it: :func:`register_fitness` maps a name to a factory
that builds the function from JSON arguments (``fitness_args``, saved with the configuration);
the script that runs the search registers its fitness before it starts or resumes one.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, ClassVar, Sequence

import numpy as np

from .fields import FieldError, construct, member, need_dict, need_float, need_int, need_items, need_keys, need_str
from .problem import Problem, Scores, finite_or, register

if TYPE_CHECKING:
    from .loop import Search

Genome = tuple[int, ...]
#: A fitness factory: JSON arguments -> the function from a genome to its error (lower is better).
FitnessFactory = Callable[[dict], Callable[[Genome], float]]

#: Fitness name -> factory (filled by :func:`register_fitness`).
FITNESS: dict[str, FitnessFactory] = {}

MAX_GENES = 4096
MAX_GENE_SIZE = 1 << 31
_TEXT = re.compile(r"(?:0|[1-9][0-9]{0,9})(?:,(?:0|[1-9][0-9]{0,9}))*")


def register_fitness(name: str, factory: FitnessFactory) -> None:
    """Make the fitness ``name`` available to configuration searches (a later registration replaces it)."""
    if not isinstance(name, str) or not name or len(name) > 200:
        raise ValueError(f"a fitness name must be a non-empty string of at most 200 characters, not {name!r}")
    FITNESS[name] = factory


@dataclass
class ConfigSearchConfig:
    """A configuration search: the genes' sizes, the fitness (a registered name and its JSON
    arguments) and the engine settings."""

    gene_sizes: tuple[int, ...]
    fitness: str
    fitness_args: dict = field(default_factory=dict)
    population: int = 12
    crossover_rate: float = 0.4
    seed: int = 0
    #: Nothing is fitted and nothing verified: the engine settings the loop reads, fixed.
    opt_per_generation: ClassVar[int] = 0
    verify_every: ClassVar[int] = 0

    def __post_init__(self) -> None:
        self.gene_sizes = tuple(self.gene_sizes)
        self.validate()

    def validate(self) -> None:
        if not 1 <= len(self.gene_sizes) <= MAX_GENES:
            raise ValueError(f"a genome needs 1 to {MAX_GENES} genes, not {len(self.gene_sizes)}")
        for i, s in enumerate(self.gene_sizes):
            if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or not 1 <= s <= MAX_GENE_SIZE:
                raise ValueError(f"gene {i} size must be an integer in [1, 2**31], not {s!r}")
        self.gene_sizes = tuple(int(s) for s in self.gene_sizes)
        if self.fitness not in FITNESS:
            raise ValueError(f"unknown fitness {self.fitness!r}; registered: {sorted(FITNESS)}")
        try:
            json.dumps(self.fitness_args, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise ValueError(f"fitness_args must be JSON data: {e}") from None
        if not isinstance(self.fitness_args, dict):
            raise ValueError("fitness_args must be a JSON object")
        pop = self.population
        if isinstance(pop, bool) or not isinstance(pop, int) or not 2 <= pop <= 1 << 20:
            raise ValueError(f"population must be an integer in [2, 2**20], not {self.population!r}")
        if not 0.0 <= self.crossover_rate <= 1.0:
            raise ValueError(f"crossover_rate must lie in [0, 1], not {self.crossover_rate}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 1 << 64:
            raise ValueError(f"seed must be an integer in [0, 2**64), not {self.seed!r}")

    @property
    def space_size(self) -> int:
        """How many distinct genomes there are."""
        return math.prod(self.gene_sizes)

    def to_json_obj(self) -> dict:
        return {"gene_sizes": list(self.gene_sizes), "fitness": self.fitness,
                "fitness_args": json.loads(json.dumps(self.fitness_args)), "population": self.population,
                "crossover_rate": self.crossover_rate, "seed": self.seed}

    @classmethod
    def from_json_obj(cls, d: object, field: str = "config") -> "ConfigSearchConfig":
        d = need_dict(d, field)
        need_keys(d, field, ("gene_sizes", "fitness"), ("gene_sizes", "fitness", "fitness_args", "population",
                                                       "crossover_rate", "seed"))
        sizes = need_items(d["gene_sizes"], f"{field}.gene_sizes",
                           lambda v, f: need_int(v, f, 1, MAX_GENE_SIZE), MAX_GENES)
        name = need_str(d["fitness"], f"{field}.fitness", 200)
        if name not in FITNESS:
            raise FieldError(f"{field}.fitness", f"unknown fitness {name!r}; registered: {sorted(FITNESS)}")
        kw: dict = {"gene_sizes": sizes, "fitness": name,
                    "fitness_args": need_dict(d.get("fitness_args", {}), f"{field}.fitness_args")}
        if "population" in d:
            kw["population"] = need_int(d["population"], f"{field}.population", 2, 1 << 20)
        if "crossover_rate" in d:
            kw["crossover_rate"] = need_float(d["crossover_rate"], f"{field}.crossover_rate", 0.0, 1.0)
        if "seed" in d:
            kw["seed"] = need_int(d["seed"], f"{field}.seed", 0, (1 << 64) - 1)
        return construct(cls, kw, field)


@register
class ConfigProblem(Problem):
    """Search a vector of category indices for the lowest fitness (see the module doc)."""

    kind = "config"

    def __init__(self, config: ConfigSearchConfig):
        self.config = config
        self.sizes = np.array(config.gene_sizes, dtype=np.int64)
        #: Genes that can change (more than one value): mutation picks among these.
        self.variable = [i for i, s in enumerate(config.gene_sizes) if s > 1]
        self.fitness = FITNESS[config.fitness](config.fitness_args)
        #: Genome text -> its error, for every genome evaluated (``inf`` where the fitness was not finite).
        self.scores: dict[str, float] = {}

    # ------------------------------------------------------------ the genome
    def genome_text(self, g: Genome) -> str:
        return ",".join(str(v) for v in g)

    def parse_genome(self, text: str) -> Genome:
        if not isinstance(text, str) or not _TEXT.fullmatch(text):
            raise ValueError(f"{text!r} is not a genome (gene values as decimal integers joined by commas)")
        g = tuple(int(v) for v in text.split(","))
        if len(g) != len(self.sizes):
            raise ValueError(f"{text!r} has {len(g)} genes; this search's genomes have {len(self.sizes)}")
        for i, (v, s) in enumerate(zip(g, self.config.gene_sizes)):
            if v >= s:
                raise ValueError(f"{text!r}: gene {i} is {v}, outside its range 0..{s - 1}")
        return g

    def check_program(self, text: object, field: str) -> str:
        s = need_str(text, field, 11 * MAX_GENES)
        try:
            self.parse_genome(s)
        except ValueError as e:
            raise FieldError(field, str(e)) from None
        return s

    def structure(self, g: Genome) -> str | None:
        return None

    def random_genome(self, rng: np.random.Generator) -> Genome:
        return tuple(int(v) for v in rng.integers(self.sizes))

    def initial_programs(self, rng: np.random.Generator, n: int) -> list[Genome]:
        """``n`` random genomes, distinct where the space has room (a bounded number of draws)."""
        out: list[Genome] = []
        seen: set[Genome] = set()
        for _ in range(50 * n):
            if len(out) == n:
                break
            g = self.random_genome(rng)
            if g not in seen or len(seen) >= self.config.space_size:
                seen.add(g)
                out.append(g)
        while len(out) < n:
            out.append(self.random_genome(rng))
        return out

    def mutate(self, rng: np.random.Generator, g: Genome) -> Genome:
        """One-gene resampling: one gene with more than one value takes another of its values."""
        if not self.variable:
            return g
        i = self.variable[int(rng.integers(len(self.variable)))]
        v = int(rng.integers(self.config.gene_sizes[i] - 1))
        if v >= g[i]:
            v += 1
        return g[:i] + (v,) + g[i + 1:]

    def crossover(self, rng: np.random.Generator, a: Genome, b: Genome) -> list:
        """Uniform crossover; a child equal to its parent is replaced by a mutation of that parent."""
        swap = rng.random(len(a)) < 0.5
        pair = [tuple(int(y if s else x) for x, y, s in zip(a, b, swap)),
                tuple(int(x if s else y) for x, y, s in zip(a, b, swap))]
        for j, parent in enumerate((a, b)):
            if pair[j] == parent:
                pair[j] = self.mutate(rng, parent)
        return pair

    # ------------------------------------------------------------ scoring
    def measure(self, g: Genome) -> float:
        return 0.0

    def error(self, g: Genome) -> float:
        """The genome's fitness (evaluated once per distinct genome; ``inf`` where it is not a finite number)."""
        text = self.genome_text(g)
        if text not in self.scores:
            try:
                e = float(self.fitness(tuple(g)))
            except (TypeError, ValueError) as exc:
                raise ValueError(f"fitness {self.config.fitness!r} of genome {text} is not a number: {exc}") from None
            self.scores[text] = e if math.isfinite(e) else math.inf
        return self.scores[text]

    def score(self, programs: list[Genome]) -> Scores:
        errs = np.array([self.error(g) for g in programs], dtype=np.float64)
        return Scores(errs, errs, [(finite_or(e, 1e300), 0.0) for e in errs], 1)

    def fit_constants(self, programs: list[Genome]) -> list[Genome]:
        return list(programs)

    def best(self, search: "Search") -> tuple[Genome, float]:
        """The archive's best genome and its error (ties: the smallest text)."""
        ind = min(search.archive, key=lambda ind: (ind.max_ulp, ind.text))
        return ind.program, ind.max_ulp

    # ------------------------------------------------------------ state and JSON
    def state(self) -> dict:
        return {"scores": {t: (e if math.isfinite(e) else None) for t, e in self.scores.items()}}

    def preload(self, state: dict) -> None:
        self.restore(state)

    def restore(self, state: dict) -> None:
        state = need_dict(state, "problem_state")
        need_keys(state, "problem_state", (), ("scores",))
        scores = {}
        for t, e in need_dict(state.get("scores", {}), "problem_state.scores").items():
            where = member("problem_state.scores", t)
            self.check_program(t, where)
            scores[t] = need_float(e, where, allow_null=True, null_means=math.inf)
        self.scores = scores

    def settings_json(self) -> dict:
        return self.config.to_json_obj()

    @classmethod
    def from_settings_json(cls, d: dict, field: str) -> "ConfigProblem":
        return cls(ConfigSearchConfig.from_json_obj(d, field))

    def verify(self, programs: Sequence[Genome]) -> list[dict]:
        return [{"error": self.error(g)} for g in programs]
