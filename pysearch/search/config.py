"""A search run's configuration: :class:`SearchConfig`, its limits, validation and JSON form.

Everything that defines a run lives here; it is saved in the checkpoint and fixed on resume.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from ..ops import OPS
from ..program import parse
from ..variation import check_ops
from .fields import FieldError, construct, need_bool, need_dict, need_float, need_int, need_items, need_keys, need_str
from .front import read_cost_weights

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
    #: Points of the search sample the real-valued constant fit runs on (float32 tuning uses the
    #: whole sample). Fewer fit faster but worse: with 512, exp2 [0, 1) seeds 0 and 1 found no verified
    #: <= 1 ULP cost-6 program in 90 s (1024: 6.9 s and 19.4 s).
    fit_points: int = 1024
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
    #: Start the population again from random programs after this many generations in a row in
    #: which the archive (the non-dominated programs found) did not change; the archive, the
    #: verified front and the caches stay. 0: never (runs saved before this setting resume with 0).
    restart_after: int = 0
    #: Keep at most this many programs of one structure (the program with its constants blanked) in
    #: the population, the most accurate on the sample; others fill it only when too few structures
    #: remain. Late in a run most children are of structures fitted before, and the population holds
    #: copies of a dozen structures whose one-mutation neighbours were all tried; a cap keeps more
    #: structures (``experiments/search_diversity.py``, erf, 90 s: 107 against 11 of 128). 0: no cap
    #: (runs saved before this setting resume with 0).
    max_per_structure: int = 0

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
            lo = 0 if name in ("opt_per_generation", "restart_after", "max_per_structure") else 1
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
        return construct(cls, kw, field)


#: Integer settings and their largest values (far above useful ones; low enough to stay in memory).
_INT_LIMITS = {"population": 1 << 20, "max_instrs": 4096, "init_instrs": 4096, "sample_size": 1 << 24,
               "fit_points": 1 << 24, "opt_per_generation": 1 << 20, "verify_every": 1 << 31, "screen_size": 1 << 26,
               "restart_after": 1 << 31, "max_per_structure": 1 << 20}
