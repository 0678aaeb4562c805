"""Classical polynomial baselines for a search: seeds (``--seed-baselines``) and plot points.

Built on :mod:`pysearch.baselines` (Remez minimax polynomials, Horner/Estrin programs); the
float32 coefficients are tuned with this package's fpminimax-style coordinate descent so the
baselines are the strong classical choice, not naive roundings.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Sequence

import numpy as np

from ..fileio import write_json_atomic
from ..program import Program
from .constants import FitSample, tune_float32
from .plot import BaselinePoint

BASELINES_NAME = "baselines.json"


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
    import pysearch

    step = max(1, len(x) // 16384)
    sample = FitSample.build(target, x[::step])
    pts = []
    for label, p in minimax_programs(target, domain, degrees):
        try:
            tuned, _, _ = tune_float32(p, sample, rounds=10)
        except (ValueError, TypeError):
            continue
        m = float(pysearch.ulp_error(tuned, x, target).max_ulp)
        pts.append(BaselinePoint(f"{label}", tuned.cost(), tuned.latency(), m if math.isfinite(m) else math.inf,
                                 f"sampled ({len(x)} points)"))
        if m < 0.51:  # more degrees add nothing once correctly rounded territory is reached
            break
    return pts


def load_or_compute(directory: Path | str, target: str, domain: Sequence[float], x: np.ndarray) -> list[BaselinePoint]:
    """Baselines cached in ``DIR/baselines.json`` (computed and written on first use)."""
    path = Path(directory) / BASELINES_NAME
    if path.exists():
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            if doc.get("schema") == 1 and doc.get("target") == target and list(doc.get("domain", [])) == list(domain):
                return [BaselinePoint(b["label"], b["cost"], b["latency"],
                                      math.inf if b["max_ulp"] is None else b["max_ulp"], b["verified"])
                        for b in doc["baselines"]]
        except (ValueError, KeyError, TypeError):
            pass
    pts = baseline_points(target, domain, x)
    write_json_atomic(path, {
        "schema": 1, "target": target, "domain": list(domain),
        "baselines": [{"label": b.label, "cost": b.cost, "latency": b.latency,
                       "max_ulp": b.max_ulp if math.isfinite(b.max_ulp) else None, "verified": b.verified,
                       } for b in pts],
    })
    return pts
