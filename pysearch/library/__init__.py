"""Discovered float32 functions that ship with pysearch, each with its verified error bound.

>>> import numpy as np
>>> from pysearch import library
>>> library.names()                                  # doctest: +ELLIPSIS
['erf', 'erf_reduced', 'exp', 'exp2', ...]
>>> library.exp2(0.5)                                # full-range exp2: a Python number gives a float
1.4142135381698608
>>> print(library.exp2(np.array([-1, 0, 3], dtype=np.float32)))   # a float32 array gives an array
[0.5 1.  8. ]
>>> fn = library.get("exp2_reduced")                 # a kernel for [0, 1) with its metadata
>>> fn.target, fn.verified, fn.max_ulp < 1           # verified on every float32 of its domain
('exp2', 'exhaustive', True)

Each function is a straight-line program stored as JSON in ``pysearch/library/data`` with its
target, domain, verified max ULP (``verified``: "exhaustive" = every float32 of the domain was
checked), cost and how it was found. Calling one evaluates the program with the Rust core,
bit for bit as the verification did; Python numbers, lists and numpy scalars are rounded to
float32 first. Outside its domain a function's error is not bounded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from importlib import resources
from typing import Any

import numpy as np

from .. import _core
from ..evaluation import evaluate, evaluate_converted
from ..fileio import loads_json
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
    #: how and when the bound was last checked exhaustively: call, command, date (UTC), seconds
    verification: dict = field(default_factory=dict, compare=False)

    @property
    def cost(self) -> float:
        return self.program.cost()

    @property
    def ops(self) -> int:
        return self.program.ops

    @property
    def latency(self) -> float:
        return self.program.latency()

    def __call__(self, x: Any, out: np.ndarray | None = None) -> Any:
        """Evaluate in float32; a Python number gives a float, a numpy scalar a ``np.float32``, a list
        or array a float32 array of the same shape. ``out`` (as for a numpy ufunc): a C-contiguous float32
        array of ``x``'s shape that receives the result and is returned (no allocation); arrays only.

        Python numbers, lists of them and numpy scalars are rounded to float32 first (to nearest, ties
        to even; beyond the float32 range that is +-inf). Arrays must already be float32 (or float16,
        which converts exactly): a float64 or integer array is refused rather than rounded silently.
        Conversions and evaluation run in IEEE mode whatever the process set (``_core.ieee_mode``:
        a subnormal such as 1e-40 is not flushed to zero).
        """
        if (type(x) is np.ndarray and x.dtype == np.float32 and x.ndim and x.size and x.flags.c_contiguous
                and (out is None or (type(out) is np.ndarray and out.dtype == np.float32 and out.shape == x.shape
                                     and out.flags.c_contiguous and out.flags.writeable
                                     and not np.may_share_memory(out, x)))):
            # the common call (a float32 array, out= apart from it): straight to the core, as below
            with _core.ieee_mode():
                y = evaluate_converted(self._converted, x.reshape(1, -1), None if out is None else out.reshape(1, -1))
            return y[0].reshape(x.shape) if out is None else out
        with _core.ieee_mode():
            arr = _float32_input(self.name, x)
            if out is not None:
                _check_out(self.name, arr, x, out)
            flat = np.ascontiguousarray(arr.ravel())
            if flat.size == 0:
                return arr.copy() if out is None else out
            if out is not None:
                if np.shares_memory(out, arr):  # in place (out=x): the core reads and writes distinct arrays
                    out[...] = evaluate(self.program, flat).reshape(arr.shape)
                else:
                    evaluate(self.program, flat, out=out.reshape(-1))
                return out
            y = evaluate(self.program, flat).reshape(arr.shape)
            if isinstance(x, np.generic) or (isinstance(x, np.ndarray) and x.ndim == 0):
                return np.float32(y.reshape(()))
            if isinstance(x, (int, float)):
                return float(y.reshape(()))
            return y

    @cached_property
    def _converted(self) -> list[tuple]:
        """The program as the core takes it (converted once)."""
        return [self.program.compile().as_tuple()]

    def to_json_obj(self) -> dict:
        return {
            "schema": SCHEMA, "name": self.name, "target": self.target, "domain": list(self.domain),
            "text": self.program.to_text(), "max_ulp": self.max_ulp, "verified": self.verified,
            "n_points": self.n_points, "cost": self.cost, "ops": self.ops, "latency": self.latency,
            "found": self.found, "description": self.description,
            **({"verification": dict(self.verification)} if self.verification else {}),
        }


def _check_out(name: str, arr: np.ndarray, x: Any, out: Any) -> None:
    """A ``ValueError``/``TypeError`` naming what is wrong with ``out`` for input ``arr``."""
    if not isinstance(x, (np.ndarray, list, tuple)) or arr.ndim == 0:
        raise TypeError(f"{name}: out= is for array inputs, not {type(x).__name__}")
    if not isinstance(out, np.ndarray) or out.dtype != np.float32:
        raise TypeError(f"{name}: out must be a float32 numpy array, not "
                        f"{out.dtype if isinstance(out, np.ndarray) else type(out).__name__}")
    if out.shape != arr.shape:
        raise ValueError(f"{name}: out has shape {out.shape}, the input {arr.shape}")
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError(f"{name}: out must be a writeable C-contiguous array")
    if np.shares_memory(out, arr) and out.__array_interface__["data"][0] != arr.__array_interface__["data"][0]:
        raise ValueError(f"{name}: out overlaps the input at an offset (in place, out=x, is allowed)")


def _float32_input(name: str, x: Any) -> np.ndarray:
    """``x`` as a float32 array, or a ``TypeError``/``ValueError`` saying what ``name`` accepts."""
    accepts = "a float, an int, a list of them, a numpy scalar or a float32 array"
    if isinstance(x, np.ndarray):
        if x.dtype == np.float32:
            return x
        if x.dtype == np.float16:
            return x.astype(np.float32)
        if x.dtype.kind in "fiu":
            raise TypeError(f"{name} computes in float32; pass a float32 array (got {x.dtype}), "
                            "e.g. x.astype(np.float32)")
        raise TypeError(f"{name} takes {accepts}, not an array of {x.dtype}")
    if isinstance(x, (bool, np.bool_)) or x is None or isinstance(x, (str, bytes)):
        raise TypeError(f"{name} takes {accepts}, not {type(x).__name__}")
    if isinstance(x, int) and not isinstance(x, np.generic):
        try:
            x = float(x)
        except OverflowError:
            raise ValueError(f"{name}: an integer of {x.bit_length()} bits is beyond the float32 range") from None
    try:
        arr = np.asarray(x)
    except ValueError:
        raise ValueError(f"{name} takes a rectangular list of numbers; {type(x).__name__} {x!r:.60} is ragged") from None
    if arr.dtype.kind not in "fiu":
        what = type(x).__name__ if arr.ndim == 0 else f"a {type(x).__name__} of {arr.dtype}"
        raise TypeError(f"{name} takes {accepts}, not {what}")
    with np.errstate(over="ignore"):  # beyond float32's range rounds to +-inf, as IEEE conversion does
        return arr.astype(np.float32)


def _from_json(doc: dict, origin: str) -> LibraryFunction:
    if doc.get("schema") != SCHEMA:
        raise ValueError(f"{origin}: schema {doc.get('schema')!r}, expected {SCHEMA}")
    try:
        program = parse(doc["text"])
        program.compile()  # converted once: each call passes the flat arrays to the core
        return LibraryFunction(
            name=doc["name"], target=doc["target"], domain=(float(doc["domain"][0]), float(doc["domain"][1])),
            program=program, max_ulp=float(doc["max_ulp"]), verified=doc["verified"],
            n_points=int(doc["n_points"]), found=doc["found"], description=doc.get("description", ""),
            verification=dict(doc.get("verification") or {}),
        )
    except (KeyError, TypeError, IndexError) as e:
        raise ValueError(f"{origin}: malformed library entry ({e})") from None


@lru_cache(maxsize=1)
def _load_all() -> dict[str, LibraryFunction]:
    out: dict[str, LibraryFunction] = {}
    data = resources.files(__name__).joinpath("data")
    for entry in sorted(data.iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".json"):
            fn = _from_json(loads_json(entry.read_text(encoding="utf-8"), entry.name), entry.name)
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
