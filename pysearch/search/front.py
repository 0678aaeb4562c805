"""The reported front: verified programs, Pareto-filtered, and the ``front.json`` file format.

A program enters the reported front only after :func:`verify_candidate` has checked it on every
float32 in the domain (or, where that is impossible, on a large sample, with the reason recorded).
``front.json`` is the contract other tools read::

    {"schema": 1, "target": ..., "domain": [a, b], "dtype": "float32",
     "max_ulp_constraint": E or null, "found_by": "pysearch search ..." (optional),
     "programs": [{"text", "cost", "ops", "latency", "max_ulp", "verified", ...}, ...]}
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from ..domain import Domain
from ..evaluation import verify
from ..fileio import write_json_atomic
from ..program import OPS, Program, parse
from .fields import (FieldError, load_json_document, member, need_dict, need_float, need_int, need_items, need_keys,
                     need_list, need_str)

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
    def from_json_obj(cls, d: object, cost_weights: Mapping[str, float] | None = None,
                      field: str = "program") -> "FrontEntry":
        """The entry of a front.json; ``cost`` is recomputed with the run's ``cost_weights``.

        Every field is checked; a bad one raises :class:`~.fields.FieldError` naming ``field.key``.
        """
        d = need_dict(d, field)
        need_keys(d, field, ("text", "verified", "max_ulp"))  # other tools may add fields
        text = need_str(d["text"], f"{field}.text")
        try:
            p = parse(text)
        except ValueError as e:  # ProgramError names the line
            raise FieldError(f"{field}.text", str(e).splitlines()[0]) from None
        if p.dtype != "float32" or len(p.inputs) != 1:
            raise FieldError(f"{field}.text", "is not a one-input float32 program")
        verified = need_str(d["verified"], f"{field}.verified", choices=VERIFIED_KINDS)
        max_ulp = need_float(d["max_ulp"], f"{field}.max_ulp", 0.0, allow_null=True, null_means=math.inf)
        for k in ("cost", "latency"):
            if k in d:
                need_float(d[k], f"{field}.{k}", 0.0)
        if "ops" in d:
            need_int(d["ops"], f"{field}.ops", 0, 1 << 20)
        note = d.get("note")
        return cls(
            text=p.to_text(), cost=p.cost(cost_weights), ops=p.ops, latency=p.latency(),
            max_ulp=max_ulp, verified=verified,
            argmax_x=need_float(d.get("argmax_x"), f"{field}.argmax_x", allow_null=True),
            mean_ulp=need_float(d.get("mean_ulp"), f"{field}.mean_ulp", 0.0, allow_null=True),
            frac_correctly_rounded=need_float(d.get("frac_correctly_rounded"), f"{field}.frac_correctly_rounded",
                                              0.0, 1.0, allow_null=True),
            n_points=None if d.get("n_points") is None else need_int(d["n_points"], f"{field}.n_points", 0, 1 << 40),
            sample_max_ulp=need_float(d.get("sample_max_ulp"), f"{field}.sample_max_ulp", 0.0, allow_null=True),
            generation=None if d.get("generation") is None else need_int(d["generation"], f"{field}.generation",
                                                                         0, 1 << 53),
            note=None if note is None else need_str(note, f"{field}.note", 4096),
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
    dom = Domain(*domain)  # built once; verify takes the object as it is
    count = dom.count()
    if count <= max_exhaustive:
        return verify(program, target, dom, exhaustive=True), "exhaustive", None
    stats = verify(program, target, dom, exhaustive=False, n_sample=n_sample)
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
    #: the command line that started the run (provenance; None where not known)
    found_by: str | None = None

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
        if self.found_by is not None:
            d["found_by"] = self.found_by
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


#: Longest ``found_by`` command a front.json may hold.
MAX_FOUND_BY = 1 << 16
#: Most programs a front.json may list.
MAX_FRONT_PROGRAMS = 100_000


def read_front(path: Path | str) -> FrontFile:
    """Read ``front.json``; raise ``ValueError``/``FileNotFoundError`` with a one-line message.

    Every field is checked (types, ranges, program texts); the error names the file and the field.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no front file at {path}")
    doc = load_json_document(path, "{path} is not a readable front.json ({problem})")
    if not isinstance(doc, dict) or "programs" not in doc:
        raise ValueError(f"{path} is not a front.json (no 'programs' list)")
    if doc.get("schema") != FRONT_SCHEMA:
        raise ValueError(f"{path} has schema {doc.get('schema')!r}; this pysearch reads schema {FRONT_SCHEMA}")
    try:
        return front_from_json_obj(doc)
    except FieldError as e:
        raise ValueError(f"{path}: malformed front.json ({e})") from None


def front_from_json_obj(doc: dict) -> FrontFile:
    """The :class:`FrontFile` of a parsed front.json document; raise :class:`FieldError` on a bad field."""
    need_keys(doc, "", ("schema", "target", "domain", "programs"))
    target = need_str(doc["target"], "target", 4096)
    domain = need_items(doc["domain"], "domain", need_float)
    if len(domain) != 2 or not domain[0] < domain[1]:
        raise FieldError("domain", "expected [A, B] with A < B")
    weights = read_cost_weights(doc.get("cost_weights"), "cost_weights")
    programs = need_list(doc["programs"], "programs", MAX_FRONT_PROGRAMS)
    return FrontFile(
        target=target, domain=(domain[0], domain[1]),
        dtype=need_str(doc.get("dtype", "float32"), "dtype", choices=("float32",)),
        max_ulp_constraint=need_float(doc.get("max_ulp_constraint"), "max_ulp_constraint", 0.0, allow_null=True),
        programs=[FrontEntry.from_json_obj(e, weights, f"programs[{i}]") for i, e in enumerate(programs)],
        objective=need_str(doc.get("objective", "cost"), "objective", choices=("cost", "latency")),
        cost_weights=weights,
        found_by=None if doc.get("found_by") is None else need_str(doc["found_by"], "found_by", MAX_FOUND_BY),
    )


def read_cost_weights(v: object, field: str) -> dict[str, float] | None:
    """Op weights of the cost objective (null or an object of op name -> finite number >= 0)."""
    if v is None:
        return None
    known = {op.name for op in OPS}
    out = {}
    for k, w in need_dict(v, field).items():
        if k not in known:
            raise FieldError(member(field, k), "is not an op")
        out[k] = need_float(w, member(field, k), 0.0)
    return out or None
