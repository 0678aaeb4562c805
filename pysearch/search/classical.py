"""Classical polynomial baselines for a search: seeds (``--seed-baselines``) and plot points.

Built on :mod:`pysearch.baselines` (Remez minimax polynomials, Horner/Estrin programs); the
float32 coefficients are tuned with this package's fpminimax-style coordinate descent so the
baselines are the strong classical choice, not naive roundings.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..domain import Domain
from ..evaluation import ulp_error
from ..fileio import read_json, write_json_atomic
from ..program import Program, parse
from .constants import FitSample, tune_float32
from .plot import BaselinePoint

BASELINES_NAME = "baselines.json"
#: Schema of ``baselines.json``; 2 added each baseline's program ``text`` (older files are recomputed).
BASELINES_SCHEMA = 2


def minimax_programs(target: str, domain: Sequence[float], degrees: Sequence[int],
                     orders: Sequence[str] = ("horner",)) -> list[tuple[str, Program]]:
    """(label, program) for minimax polynomials of the given degrees; [] if unavailable."""
    try:
        from ..baselines.approximations import minimax
        from ..baselines.programs import to_program
    except ImportError:
        return []
    out = []
    for d in degrees:
        try:
            approx = minimax(target, tuple(domain), d)
        except Exception:  # noqa: BLE001 - a degree Remez cannot do is simply not a baseline
            continue
        for order in orders:
            try:
                out.append((f"{order} {d}", to_program(approx, order=order, fma=True).pruned()))
            except Exception:  # noqa: BLE001
                continue
    return out


def seed_programs(target: str, domain: Sequence[float], max_instrs: int) -> list[Program]:
    """Minimax Horner and Estrin programs of degree 1-8 that fit in ``max_instrs``."""
    progs = [p for _, p in minimax_programs(target, domain, range(1, 9), ("horner", "estrin"))]
    return [p for p in progs if len(p.instrs) <= max_instrs]


def baseline_points(target: str, domain: Sequence[float], x: np.ndarray, degrees: Sequence[int] = range(2, 10),
                    objective: str = "cost") -> list[BaselinePoint]:
    """Minimax Horner polynomials, float32 constants tuned on a subsample, measured on all of ``x``."""
    step = max(1, len(x) // 16384)
    sample = FitSample.build(target, x[::step])
    pts = []
    for label, p in minimax_programs(target, domain, degrees):
        try:
            tuned, _, _ = tune_float32(p, sample, rounds=10)
        except (ValueError, TypeError):
            continue
        m = float(ulp_error(tuned, x, target).max_ulp)
        pts.append(BaselinePoint(f"{label}", tuned.cost(), tuned.latency(), m if math.isfinite(m) else math.inf,
                                 f"sampled ({len(x)} points)", tuned.to_text()))
        if m < 0.51:  # more degrees add nothing once correctly rounded territory is reached
            break
    return pts


def screen_sample(domain: Sequence[float], size: int = 1 << 20, seed: int = 1) -> np.ndarray:
    """The float32 sample baselines are measured on when no search supplies one (a default search's
    screening sample: ``SearchConfig.screen_size`` points drawn with seed ``SearchConfig.seed + 1``)."""
    return np.ascontiguousarray(Domain(*domain).sample(size, seed), dtype=np.float32)


def _reweighted(pts: list[BaselinePoint], cost_weights: Mapping[str, float] | None) -> list[BaselinePoint]:
    """The points with ``cost`` under the run's op weights (the stored cost uses the default weights)."""
    if not cost_weights:
        return pts
    return [replace(b, cost=parse(b.text).cost(cost_weights)) if b.text else b for b in pts]


def read_baselines(directory: Path | str, target: str, domain: Sequence[float],
                   cost_weights: Mapping[str, float] | None = None) -> list[BaselinePoint] | None:
    """The baselines cached in ``DIR/baselines.json`` for this target and domain; ``None`` when the
    file is absent, unreadable, of another schema or for another target or domain."""
    path = Path(directory) / BASELINES_NAME
    try:
        doc = read_json(path)
        if not (isinstance(doc, dict) and doc.get("schema") == BASELINES_SCHEMA and doc.get("target") == target
                and [float(v) for v in doc.get("domain", [])] == [float(v) for v in domain]):
            return None
        pts = [BaselinePoint(str(b["label"]), float(b["cost"]), float(b["latency"]),
                             math.inf if b["max_ulp"] is None else float(b["max_ulp"]), str(b["verified"]),
                             parse(b["text"]).to_text())
               for b in doc["baselines"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return _reweighted(pts, cost_weights)


def write_baselines(directory: Path | str, target: str, domain: Sequence[float], pts: Sequence[BaselinePoint]) -> None:
    """Write ``DIR/baselines.json`` atomically (costs under the default op weights)."""
    write_json_atomic(Path(directory) / BASELINES_NAME, {
        "schema": BASELINES_SCHEMA, "target": target, "domain": [float(v) for v in domain],
        "baselines": [{"label": b.label, "cost": b.cost, "latency": b.latency,
                       "max_ulp": b.max_ulp if math.isfinite(b.max_ulp) else None, "verified": b.verified,
                       "text": b.text} for b in pts],
    })


def load_or_compute(directory: Path | str, target: str, domain: Sequence[float], x: np.ndarray,
                    cost_weights: Mapping[str, float] | None = None, cache: bool = True) -> list[BaselinePoint]:
    """Baselines cached in ``DIR/baselines.json`` (computed on first use, and written there when ``cache``)."""
    pts = read_baselines(directory, target, domain, cost_weights)
    if pts is not None:
        return pts
    pts = baseline_points(target, domain, x)
    if cache:
        write_baselines(directory, target, domain, pts)
    return _reweighted(pts, cost_weights)


def best_at_or_below(baselines: Sequence[BaselinePoint], measure: float, objective: str = "cost") -> BaselinePoint | None:
    """The most accurate baseline whose cost (or latency) is at most ``measure``; the cheaper on a tie."""
    ok = [b for b in baselines if b.measure(objective) <= measure and not math.isnan(b.max_ulp)]
    return min(ok, key=lambda b: (b.max_ulp, b.measure(objective)), default=None)
