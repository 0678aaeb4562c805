"""Discovered float32 functions that ship with pysearch, each with its verified error bound.

>>> from pysearch import library
>>> library.names()                          # doctest: +SKIP
['erf_0_1', 'exp', 'exp2', 'exp2_0_1', ...]
>>> library.exp2(np.float32(0.5))            # full-range exp2, numpy scalars and arrays
>>> library.get("exp2_0_1").max_ulp          # verified max ULP on its domain

Each function is a straight-line program stored as JSON in ``pysearch/library/data`` with its
target, domain, verified max ULP (``verified``: "exhaustive" = every float32 of the domain was
checked), cost and how it was found. Calling one evaluates the program with the Rust core,
bit for bit as the verification did. Outside its domain a function's error is not bounded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np

from ..program import Program, parse

SCHEMA = 1


@dataclass(frozen=True)
class LibraryFunction:
    """A shipped program with its metadata; call it on float32 numpy arrays or scalars."""

    name: str
    target: str
    domain: tuple[float, float]
    program: Program = field(repr=False)
    max_ulp: float
    verified: str
    n_points: int
    found: str
    description: str = ""

    @property
    def cost(self) -> float:
        return self.program.cost()

    @property
    def ops(self) -> int:
        return self.program.ops

    @property
    def latency(self) -> float:
        return self.program.latency()

    def __call__(self, x: Any) -> Any:
        """Evaluate on a float32 array (any shape) or scalar; returns the same kind."""
        import pysearch

        arr = np.asarray(x)
        if arr.dtype != np.float32:
            if arr.dtype.kind in "fiu":
                raise TypeError(
                    f"{self.name} computes in float32; pass float32 values (got {arr.dtype}), "
                    "e.g. np.float32(x) or x.astype(np.float32)"
                )
            raise TypeError(f"{self.name} takes float32 numbers, not {arr.dtype}")
        flat = np.ascontiguousarray(arr.ravel())
        if flat.size == 0:
            return arr.copy()
        y = pysearch.evaluate(self.program, flat).reshape(arr.shape)
        if np.isscalar(x) or arr.ndim == 0:
            return np.float32(y.reshape(()))
        return y

    def to_json_obj(self) -> dict:
        return {
            "schema": SCHEMA, "name": self.name, "target": self.target, "domain": list(self.domain),
            "text": self.program.to_text(), "max_ulp": self.max_ulp, "verified": self.verified,
            "n_points": self.n_points, "cost": self.cost, "ops": self.ops, "latency": self.latency,
            "found": self.found, "description": self.description,
        }


def _from_json(doc: dict, origin: str) -> LibraryFunction:
    if doc.get("schema") != SCHEMA:
        raise ValueError(f"{origin}: schema {doc.get('schema')!r}, expected {SCHEMA}")
    try:
        return LibraryFunction(
            name=doc["name"], target=doc["target"], domain=(float(doc["domain"][0]), float(doc["domain"][1])),
            program=parse(doc["text"]), max_ulp=float(doc["max_ulp"]), verified=doc["verified"],
            n_points=int(doc["n_points"]), found=doc["found"], description=doc.get("description", ""),
        )
    except (KeyError, TypeError, IndexError) as e:
        raise ValueError(f"{origin}: malformed library entry ({e})") from None


@lru_cache(maxsize=1)
def _load_all() -> dict[str, LibraryFunction]:
    out: dict[str, LibraryFunction] = {}
    data = resources.files(__name__).joinpath("data")
    for entry in sorted(data.iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".json"):
            fn = _from_json(json.loads(entry.read_text(encoding="utf-8")), entry.name)
            if fn.name in out:
                raise ValueError(f"duplicate library function {fn.name!r}")
            out[fn.name] = fn
    return out


def names() -> list[str]:
    """Names of the shipped functions."""
    return sorted(_load_all())


def get(name: str) -> LibraryFunction:
    """A shipped function by name; ``ValueError`` lists the names for an unknown one."""
    funcs = _load_all()
    if name not in funcs:
        raise ValueError(f"no library function {name!r}; available: {', '.join(sorted(funcs))}")
    return funcs[name]


def functions() -> list[LibraryFunction]:
    return [_load_all()[n] for n in names()]


def __getattr__(name: str) -> LibraryFunction:
    if name.startswith("_"):
        raise AttributeError(name)
    funcs = _load_all()
    if name in funcs:
        return funcs[name]
    raise AttributeError(f"module 'pysearch.library' has no function {name!r}; see pysearch.library.names()")
