"""The reported front: verified programs, Pareto-filtered, and the ``front.json`` file format.

A program enters the reported front only after :func:`verify_candidate` has checked it on every
float32 in the domain (or, where that is impossible, on a large sample, with the reason recorded).
``front.json`` is the contract other tools read::

    {"schema": 1, "target": ..., "domain": [a, b], "dtype": "float32",
     "max_ulp_constraint": E or null,
     "programs": [{"text", "cost", "ops", "latency", "max_ulp", "verified", ...}, ...]}
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from ..fileio import write_json_atomic
from ..program import Program, parse

FRONT_SCHEMA = 1
VERIFIED_KINDS = ("exhaustive", "sampled")
#: Domains with more float32 values than this are verified on a sample instead (never for float32).
MAX_EXHAUSTIVE = 1 << 33


@dataclass
class FrontEntry:
    """One verified program of the front."""

    text: str
    cost: float
    ops: int
    latency: float
    max_ulp: float
    verified: str  # "exhaustive" | "sampled"
    argmax_x: float | None = None
    mean_ulp: float | None = None
    frac_correctly_rounded: float | None = None
    n_points: int | None = None
    sample_max_ulp: float | None = None
    generation: int | None = None
    note: str | None = None

    @property
    def program(self) -> Program:
        return parse(self.text)

    def measure(self, objective: str) -> float:
        """The cost-like objective: ``cost`` or ``latency``."""
        return self.latency if objective == "latency" else self.cost

    def to_json_obj(self) -> dict:
        d = {
            "text": self.text,
            "cost": self.cost,
            "ops": self.ops,
            "latency": self.latency,
            "max_ulp": _finite_or_none(self.max_ulp),
            "verified": self.verified,
        }
        for k in ("argmax_x", "mean_ulp", "frac_correctly_rounded", "n_points", "sample_max_ulp", "generation",
                  "note"):
            v = getattr(self, k)
            if v is not None:
                d[k] = _finite_or_none(v) if isinstance(v, float) else v
        return d

    @classmethod
    def from_json_obj(cls, d: Mapping, cost_weights: Mapping[str, float] | None = None) -> "FrontEntry":
        """The entry of a front.json; ``cost`` is recomputed with the run's ``cost_weights``."""
        try:
            text = d["text"]
            p = parse(text)
            verified = d["verified"]
            max_ulp = d["max_ulp"]
        except KeyError as e:
            raise ValueError(f"front entry lacks the field {e.args[0]!r}") from None
        if verified not in VERIFIED_KINDS:
            raise ValueError(f"front entry has verified={verified!r}; expected one of {VERIFIED_KINDS}")
        return cls(
            text=p.to_text(), cost=p.cost(cost_weights), ops=p.ops, latency=p.latency(),
            max_ulp=math.inf if max_ulp is None else float(max_ulp), verified=verified,
            argmax_x=d.get("argmax_x"), mean_ulp=d.get("mean_ulp"),
            frac_correctly_rounded=d.get("frac_correctly_rounded"), n_points=d.get("n_points"),
            sample_max_ulp=d.get("sample_max_ulp"), generation=d.get("generation"), note=d.get("note"),
        )


def _finite_or_none(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def dominates(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """Pareto dominance for minimisation of (measure, error)."""
    return a[0] <= b[0] and a[1] <= b[1] and (a[0] < b[0] or a[1] < b[1])


def pareto_insert(front: list[FrontEntry], entry: FrontEntry, objective: str) -> bool:
    """Insert ``entry`` unless dominated or equalled; drop what it dominates. Return whether added."""
    key = (entry.measure(objective), entry.max_ulp)
    for e in front:
        other = (e.measure(objective), e.max_ulp)
        if dominates(other, key) or other == key:
            return False
    front[:] = [e for e in front if not dominates(key, (e.measure(objective), e.max_ulp))]
    front.append(entry)
    front.sort(key=lambda e: (e.measure(objective), e.max_ulp))
    return True


def is_dominated(front: Iterable[FrontEntry], measure: float, err: float, objective: str) -> bool:
    """Whether (measure, err) is dominated or equalled by some entry of ``front``."""
    for e in front:
        other = (e.measure(objective), e.max_ulp)
        if dominates(other, (measure, err)) or other == (measure, err):
            return True
    return False


def verify_candidate(program: Program, target: object, domain: Sequence[float], n_sample: int = 1 << 22,
                     max_exhaustive: int = MAX_EXHAUSTIVE) -> tuple[object, str, str | None]:
    """Verify ``program`` on the domain; return (ErrorStats, "exhaustive"|"sampled", note)."""
    import pysearch

    count = pysearch.Domain(*domain).count()
    if count <= max_exhaustive:
        return pysearch.verify(program, target, tuple(domain), exhaustive=True), "exhaustive", None
    stats = pysearch.verify(program, target, tuple(domain), exhaustive=False, n_sample=n_sample)
    note = f"the domain holds {count} values, more than the exhaustive limit {max_exhaustive}; sampled {n_sample}"
    return stats, "sampled", note


# ------------------------------------------------------------------ front.json
@dataclass
class FrontFile:
    """Contents of ``front.json``."""

    target: str
    domain: tuple[float, float]
    dtype: str
    max_ulp_constraint: float | None
    programs: list[FrontEntry]
    objective: str = "cost"
    cost_weights: dict[str, float] | None = None  # op weights of "cost" where not the defaults

    def to_json_obj(self) -> dict:
        d = {
            "schema": FRONT_SCHEMA,
            "target": self.target,
            "domain": [self.domain[0], self.domain[1]],
            "dtype": self.dtype,
            "max_ulp_constraint": self.max_ulp_constraint,
            "objective": self.objective,
        }
        if self.cost_weights:
            d["cost_weights"] = dict(self.cost_weights)
        d["programs"] = [e.to_json_obj() for e in self.programs]
        return d

    def best(self) -> FrontEntry:
        """Lowest cost meeting the constraint, or the most accurate program when none is set."""
        if not self.programs:
            raise ValueError("the front holds no verified program")
        if self.max_ulp_constraint is not None:
            ok = [e for e in self.programs if e.max_ulp <= self.max_ulp_constraint]
            if not ok:
                raise ValueError(f"no verified program meets max_ulp <= {self.max_ulp_constraint}")
            return min(ok, key=lambda e: (e.cost, e.max_ulp))
        return min(self.programs, key=lambda e: (e.max_ulp, e.cost))


def write_front(path: Path | str, front: FrontFile) -> None:
    write_json_atomic(path, front.to_json_obj())


def read_front(path: Path | str) -> FrontFile:
    """Read ``front.json``; raise ``ValueError``/``FileNotFoundError`` with a clear message."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"no front file at {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not a readable front.json ({e})") from None
    if not isinstance(doc, dict) or "programs" not in doc:
        raise ValueError(f"{path} is not a front.json (no 'programs' list)")
    if doc.get("schema") != FRONT_SCHEMA:
        raise ValueError(f"{path} has schema {doc.get('schema')!r}; this pysearch reads schema {FRONT_SCHEMA}")
    try:
        domain = tuple(float(v) for v in doc["domain"])
        if len(domain) != 2:
            raise ValueError
        weights = doc.get("cost_weights") or None
        return FrontFile(
            target=str(doc["target"]), domain=domain, dtype=str(doc.get("dtype", "float32")),
            max_ulp_constraint=doc.get("max_ulp_constraint"),
            programs=[FrontEntry.from_json_obj(e, weights) for e in doc["programs"]],
            objective=str(doc.get("objective", "cost")), cost_weights=weights,
        )
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{path}: malformed front.json ({e})") from None
