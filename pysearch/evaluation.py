"""Evaluate programs and measure their error, in Rust, from Python.

Everything here is a thin, checking front for :mod:`pysearch._core`: inputs are validated
(dtype, shape, contiguity, emptiness) and turned into clear ``TypeError``/``ValueError``s before
any work starts; the work itself runs in Rust with the GIL released, in steps between which
Ctrl-C raises ``KeyboardInterrupt``. An output too large to allocate raises ``MemoryError``.
"""

from __future__ import annotations

import math
import sys
import threading
from dataclasses import dataclass, fields
from typing import Iterable, Mapping, Sequence, Union

import numpy as np

from pysearch import _core
from pysearch.domain import Domain, as_domain
from pysearch.program import OPCODE, Program, as_programs
from pysearch.targets import Target, get_target, reference, round_exact_to_float32

ProgramsLike = Union[Program, str, Iterable[Union[Program, str]]]

#: Largest domain verified exhaustively for a plain mpmath-callable target (mpmath at every
#: point); expression targets and built-in ones have a float64 reference and no such limit.
MAX_CUSTOM_EXHAUSTIVE = 1 << 16

#: Points per step of an exhaustive check of an expression target (float64 reference in numpy).
EXPRESSION_CHUNK = 1 << 20


def _inputs_matrix(progs: Sequence[Program], x) -> np.ndarray:
    """Shape inputs as the (n_inputs, n) array Rust takes, without copying where possible."""
    dtype = progs[0].dtype
    names = progs[0].inputs
    for p in progs[1:]:
        if p.dtype != dtype:
            raise TypeError(f"all programs in a batch must share a dtype ({dtype} vs {p.dtype})")
        if p.inputs != names:
            raise ValueError(f"all programs in a batch must share inputs ({names} vs {p.inputs})")
    if isinstance(x, Mapping):
        missing = [n for n in names if n not in x]
        if missing:
            raise ValueError(f"inputs missing from x: {missing} (program inputs: {list(names)})")
        cols = [_check_array(x[n], dtype, f"x[{n!r}]", ndim=1) for n in names]
        if len({len(c) for c in cols}) != 1:
            raise ValueError(f"input arrays differ in length: {[len(c) for c in cols]}")
        mat = cols[0].reshape(1, -1) if len(cols) == 1 else np.stack(cols)
    else:
        arr = _check_array(x, dtype, "x", ndim=None)
        if arr.ndim == 1:
            mat = arr.reshape(1, -1)
        elif arr.ndim == 2:
            mat = arr
        else:
            raise ValueError(f"x must be 1-D (one input) or 2-D (n_inputs, n), got shape {arr.shape}")
    if mat.shape[0] != len(names):
        raise ValueError(f"programs take {len(names)} input(s) {list(names)} but x has {mat.shape[0]} row(s)")
    return mat


def _check_array(x, dtype: str, what: str, ndim: int | None) -> np.ndarray:
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{what} must be a numpy array of {dtype}, not {type(x).__name__}")
    if x.dtype != np.dtype(dtype):
        raise TypeError(f"{what} has dtype {x.dtype}, but the program computes in {dtype}; convert with x.astype(np.{dtype})")
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{what} must be {ndim}-D, got shape {x.shape}")
    if x.size == 0:
        raise ValueError(f"{what} is empty")
    if not x.flags.c_contiguous:
        raise TypeError(f"{what} is not contiguous; pass np.ascontiguousarray({what})")
    return x


def _refcount_in(arrays: list, i: int) -> int:
    return sys.getrefcount(arrays[i])


#: What `_refcount_in` reports for an object that only its list refers to.
_ONLY_THE_POOL = _refcount_in([object()], 0)


class _OutputPool:
    """Result arrays of :func:`evaluate`, recycled once no result refers to them.

    A fresh array of hundreds of MB costs more than the evaluation that fills it (the kernel
    zeroes each page at its first write), so the pool keeps the last ``keep`` large arrays it
    made (1 MiB to 256 MiB each). Each result is a view of one; an array is handed out again only
    when its sole reference is the pool's (no result, view or slice of one is alive), and the
    evaluator then overwrites every element. At most ``keep`` arrays stay alive after their
    results are gone; ``clear()`` drops them.
    """

    MIN_BYTES = 1 << 20
    MAX_BYTES = 1 << 28

    def __init__(self, keep: int = 2):
        self.keep = keep
        self.arrays: list[np.ndarray] = []
        self.lock = threading.Lock()

    def take(self, shape: tuple, dtype: str) -> np.ndarray:
        dt = np.dtype(dtype)
        nbytes = math.prod(shape) * dt.itemsize
        if not self.MIN_BYTES <= nbytes <= self.MAX_BYTES:
            return np.empty(shape, dtype=dt)
        with self.lock:
            for i in range(len(self.arrays)):
                if _refcount_in(self.arrays, i) == _ONLY_THE_POOL:
                    a = self.arrays[i]
                    if a.shape == shape and a.dtype == dt:
                        self.arrays.append(self.arrays.pop(i))  # most recently used last
                        return a[...]
            a = np.empty(shape, dtype=dt)
            self.arrays.append(a)
            if len(self.arrays) > self.keep:
                self.arrays.pop(0)  # an array still in use lives on with its results
            return a[...]

    def clear(self) -> None:
        with self.lock:
            self.arrays.clear()


_OUTPUTS = _OutputPool()


def evaluate(programs: ProgramsLike, x, out: np.ndarray | None = None) -> np.ndarray:
    """Run programs on inputs; one program gives shape (n,), a list gives (n_programs, n).

    ``x`` is a contiguous 1-D array (one input), a 2-D (n_inputs, n) array, or a dict of 1-D
    arrays by input name, in the programs' dtype. ``out``, if given, is a contiguous array of
    the result's shape and dtype that receives the result (no allocation); otherwise large
    results are written into recycled arrays (see ``_OutputPool``: the last two stay allocated).
    Bit-exact with :mod:`pysearch.interpreter`.
    """
    progs, single = as_programs(programs)
    if not progs:
        raise ValueError("no programs to evaluate")
    mat = _inputs_matrix(progs, x)
    if out is not None:
        want = (mat.shape[1],) if single else (len(progs), mat.shape[1])
        _check_array(out, progs[0].dtype, "out", ndim=len(want))
        if out.shape != want:
            raise ValueError(f"out has shape {out.shape}, expected {want}")
        out = out.reshape(len(progs), mat.shape[1])
    if all("_compiled" in p.__dict__ for p in progs):  # converted before: compile() reuses that
        res = evaluate_converted([p.compile().as_tuple() for p in progs], mat, out)
    else:  # Rust reads the Program objects: no numpy arrays per program
        if out is None:
            out = _OUTPUTS.take((len(progs), mat.shape[1]), progs[0].dtype)
        res = _core.evaluate_programs(progs, OPCODE, mat, out)
    return res[0] if single else res


def evaluate_converted(raws: list[tuple], mat: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """:func:`evaluate`'s core call for programs already converted (``Program.compile().as_tuple()``)
    on a checked ``(n_inputs, n)`` input matrix of their dtype: the result, ``(len(raws), n)``, in
    ``out`` (checked as :func:`evaluate` checks it) or in a recycled array (see ``_OutputPool``)."""
    if out is None:
        out = _OUTPUTS.take((len(raws), mat.shape[1]), mat.dtype.name)
    return _core.evaluate(raws, mat, out)


@dataclass(frozen=True)
class ErrorStats:
    """Error of one float32 program against a target over a set of float32 inputs.

    ``max_ulp`` is max |y - f(x)| / ulp(f(x)) (inf when some output is NaN/inf where f is
    finite, or wrong where f is NaN/inf); ``max_ulp_distance`` counts float32 values between y and
    the correctly rounded f(x) (inf for a NaN output).
    """

    max_ulp: float
    argmax_x: float
    mean_ulp: float
    frac_correctly_rounded: float
    nonfinite: bool
    max_ulp_distance: float
    n_points: int
    mode: str = "sample"

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class ErrorTable:
    """Errors of a batch of programs: numpy arrays with :class:`ErrorStats`' field names."""

    def __init__(self, cols: dict, x: np.ndarray, mode: str):
        n = cols["n"].astype(np.float64)
        self.max_ulp = cols["max_ulp"]
        self.argmax_x = x[np.minimum(cols["argmax"], len(x) - 1).astype(np.int64)]
        self.mean_ulp = np.where(cols["n_infinite"] > 0, np.inf, cols["sum_ulp"] / n)
        self.frac_correctly_rounded = cols["n_correct"] / n
        self.nonfinite = cols["n_nonfinite"] > 0
        dist = cols["max_distance"]
        self.max_ulp_distance = np.where(dist == np.iinfo(np.uint64).max, np.inf, dist.astype(np.float64))
        self.n_points = len(x)
        self.mode = mode

    def __len__(self) -> int:
        return len(self.max_ulp)

    def __getitem__(self, i: int) -> ErrorStats:
        return ErrorStats(
            float(self.max_ulp[i]),
            float(self.argmax_x[i]),
            float(self.mean_ulp[i]),
            float(self.frac_correctly_rounded[i]),
            bool(self.nonfinite[i]),
            float(self.max_ulp_distance[i]),
            self.n_points,
            self.mode,
        )

    def __iter__(self):
        return (self[i] for i in range(len(self)))


class _ReferenceCache:
    """Remembers the reference of the last few (target, points) pairs: searches reuse one sample."""

    def __init__(self, size: int = 8):
        self.size = size
        self.items: dict = {}

    def get(self, t: Target, x: np.ndarray):
        key = (t.name, id(t.fn), x.tobytes().__hash__(), len(x))
        hit = self.items.get(key)
        if hit is not None and np.array_equal(hit[0], x):
            return hit[1], hit[2]
        ref, rounded = reference(t, x)
        if len(self.items) >= self.size:
            self.items.pop(next(iter(self.items)))
        self.items[key] = (x.copy(), ref, rounded)
        return ref, rounded


_REFS = _ReferenceCache()


def ulp_error(programs: ProgramsLike, x: np.ndarray, target) -> Union[ErrorStats, ErrorTable]:
    """Error of float32 programs over the float32 points ``x`` against ``target``.

    One program gives an :class:`ErrorStats`, a list an :class:`ErrorTable`.
    """
    progs, single = as_programs(programs)
    if not progs:
        raise ValueError("no programs to measure")
    for p in progs:
        if p.dtype != "float32":
            raise TypeError("ulp_error measures float32 programs; this one computes in " + p.dtype)
        if len(p.inputs) != 1:
            raise ValueError(f"ulp_error needs single-input programs; this one takes {list(p.inputs)}")
    x = _check_array(x, "float32", "x", ndim=1)
    t = get_target(target)
    ref, rounded = _REFS.get(t, x)
    cols = _core.sample_ulp_errors([p.compile().as_tuple() for p in progs], x, ref, rounded)
    table = ErrorTable(cols, x, "sample")
    return table[0] if single else table


def verify(program: Union[Program, str], target, domain, exhaustive: bool = True,
           n_sample: int = 1_000_000, seed: int = 0) -> ErrorStats:
    """Error of one float32 program over a domain: every float32 in it, or a stratified sample.

    Exhaustive checks of built-in targets stream every input through Rust; the few inputs whose
    rounding float64 cannot decide are settled with mpmath. Expression targets (``'sin(x)/x'``)
    are streamed in chunks: a float64 numpy reference with an error bound, mpmath where the
    bound cannot decide (see :mod:`pysearch.targets`), errors measured in Rust. Plain mpmath
    callables are exhaustive only up to 65,536 points (mpmath at each); larger ones raise
    ``ValueError`` unless sampled. Python-side arithmetic runs in IEEE mode whatever the process
    set (``_core.ieee_mode``), as the core's does.
    """
    with _core.ieee_mode():
        return _verify(program, target, domain, exhaustive, n_sample, seed)


def _verify(program: Union[Program, str], target, domain, exhaustive: bool, n_sample: int, seed: int) -> ErrorStats:
    (prog,), _ = as_programs(program)
    if prog.dtype != "float32" or len(prog.inputs) != 1:
        raise TypeError("verify checks single-input float32 programs")
    dom = as_domain(domain)
    t = get_target(target)
    if not exhaustive:
        st = ulp_error(prog, dom.sample(n_sample, seed), t)
        return st
    return _verify_exhaustive([prog], t, dom)[0]


def verify_many(programs: ProgramsLike, target, domain) -> list[ErrorStats]:
    """Exhaustive errors of float32 programs over every float32 in a domain, in one pass.

    The same figures as :func:`verify` with ``exhaustive=True`` for each program, but the domain
    is streamed once for all of them: each chunk's reference values (and the mpmath settling
    of the inputs whose rounding float64 cannot decide) are computed once and shared, so a
    batch of k programs costs one reference pass plus k program passes.
    """
    with _core.ieee_mode():
        progs, _ = as_programs(programs)
        if not progs:
            raise ValueError("no programs to verify")
        for p in progs:
            if p.dtype != "float32" or len(p.inputs) != 1:
                raise TypeError("verify checks single-input float32 programs")
        return _verify_exhaustive(progs, get_target(target), as_domain(domain))


def _verify_exhaustive(progs: list[Program], t: Target, dom: Domain) -> list[ErrorStats]:
    if t.expression is not None:
        return _verify_expression(progs, t, dom)
    if not t.builtin:
        if dom.count() > MAX_CUSTOM_EXHAUSTIVE:
            raise ValueError(
                f"custom target {t.name!r}: exhaustive check of {dom.count()} points needs mpmath at "
                f"each; limit is {MAX_CUSTOM_EXHAUSTIVE}. Write the target as an expression in x "
                f"(e.g. 'sin(x)/x', float64 reference) or use exhaustive=False (sampling)."
            )
        table = ulp_error(progs, dom.all(), t)
        return [ErrorStats(**{**st.to_dict(), "mode": "exhaustive"}) for st in table]
    cols, argmax_x, undecided = _core.exhaustive_ulp_errors([p.compile().as_tuple() for p in progs], t.name,
                                                           dom.a, dom.b)
    n_correct = [int(v) for v in cols["n_correct"]]
    max_dist = [int(v) for v in cols["max_distance"]]
    if len(undecided):
        # the inputs float64 cannot decide depend on the target only: settled once for all programs
        cr = [round_exact_to_float32(t.exact(xi)) for xi in undecided]
        ys = evaluate(progs, undecided)
        for i, y in enumerate(ys):
            for yi, ci in zip(y, cr):
                d = _distance32(yi, ci)
                n_correct[i] += d == 0
                max_dist[i] = max(max_dist[i], d)
    big = np.iinfo(np.uint64).max
    out = []
    for i in range(len(progs)):
        n = int(cols["n"][i])
        out.append(ErrorStats(
            max_ulp=float(cols["max_ulp"][i]),
            argmax_x=float(argmax_x[i]),
            mean_ulp=float("inf") if cols["n_infinite"][i] else float(cols["sum_ulp"][i]) / n,
            frac_correctly_rounded=n_correct[i] / n,
            nonfinite=bool(cols["n_nonfinite"][i]),
            max_ulp_distance=float("inf") if max_dist[i] >= big else float(max_dist[i]),
            n_points=n,
            mode="exhaustive",
        ))
    return out


def _verify_expression(progs: list[Program], t: Target, dom: Domain) -> list[ErrorStats]:
    """Exhaustive errors against an expression target, EXPRESSION_CHUNK points at a time (each
    chunk's reference computed once for all programs)."""
    raws = [p.compile().as_tuple() for p in progs]
    lo, hi = dom.keys
    # undefined points (0/0 at 0, log of negatives) usually show on a small probe: fail fast
    probe = dom.sample(4096)
    if dom.a < 0 < dom.b:
        probe = np.append(probe, np.float32(0))
    reference(t, probe)
    totals: list[dict] | None = None
    for start in range(lo, hi + 1, EXPRESSION_CHUNK):
        x = _core.float32_from_keys(start, min(EXPRESSION_CHUNK, hi + 1 - start))
        ref, rounded = reference(t, x)
        cols = _core.sample_ulp_errors(raws, x, ref, rounded)
        chunk = [{k: v[i] for k, v in cols.items()} for i in range(len(raws))]
        for c in chunk:
            c["argmax"] = int(c["argmax"]) + (start - lo)
        totals = chunk if totals is None else [_merge_stats(a, b) for a, b in zip(totals, chunk)]
    assert totals is not None
    out = []
    for total in totals:
        n = int(total["n"])
        dist = int(total["max_distance"])
        out.append(ErrorStats(
            max_ulp=float(total["max_ulp"]),
            argmax_x=float(_core.float32_from_keys(lo + int(total["argmax"]), 1)[0]),
            mean_ulp=float("inf") if total["n_infinite"] else float(total["sum_ulp"]) / n,
            frac_correctly_rounded=int(total["n_correct"]) / n,
            nonfinite=bool(total["n_nonfinite"]),
            max_ulp_distance=float("inf") if dist >= np.iinfo(np.uint64).max else float(dist),
            n_points=n,
            mode="exhaustive",
        ))
    return out


def _merge_stats(a: dict, b: dict) -> dict:
    """Two chunks' statistics as one (as rust/stats.rs ``Stats::merge``: ties keep the first point)."""
    out = {k: a[k] + b[k] for k in ("sum_ulp", "n", "n_correct", "n_nonfinite", "n_infinite", "n_undecided")}
    first = a if a["max_ulp"] >= b["max_ulp"] else b
    out["max_ulp"], out["argmax"] = first["max_ulp"], first["argmax"]
    out["max_distance"] = max(a["max_distance"], b["max_distance"])
    return out


def _distance32(a: np.float32, b: np.float32) -> int:
    """ULP distance between two float32 values (-0 equals +0); huge for NaN."""
    if np.isnan(a) or np.isnan(b):
        return int(np.iinfo(np.uint64).max)

    def ord32(v):
        bits = int(np.array(v, dtype=np.float32).view(np.uint32))
        return bits if bits < 0x80000000 else -(bits & 0x7FFFFFFF)

    return abs(ord32(a) - ord32(b))


__all__ = ["evaluate", "ulp_error", "verify", "verify_many", "ErrorStats", "ErrorTable", "Domain", "Target"]
