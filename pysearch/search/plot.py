"""The front plot: cost (or latency) against verified max ULP, baselines drawn beside it and the
evolved programs a baseline dominates crossed out."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..fileio import write_atomic
from .front import FrontEntry, dominates


@dataclass
class BaselinePoint:
    """A classical program's position on the plot."""

    label: str
    cost: float
    latency: float
    max_ulp: float
    verified: str  # how max_ulp was measured
    text: str | None = None  # the program, where known

    def measure(self, objective: str) -> float:
        """The cost-like objective: ``cost`` or ``latency``."""
        return self.latency if objective == "latency" else self.cost


def plot_front(path: Path | str, entries: Sequence[FrontEntry], title: str, objective: str = "cost",
               baselines: Sequence[BaselinePoint] = (), max_ulp_constraint: float | None = None) -> Path:
    """Write the PNG atomically (temporary file, then ``os.replace``); return its path."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    fig = Figure(figsize=(6.4, 4.4), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    pts = sorted((e.measure(objective), e.max_ulp) for e in entries if math.isfinite(e.max_ulp) and e.max_ulp > 0)
    if pts:
        xs, ys = zip(*pts)
        ax.step(xs, ys, where="post", color="tab:blue", alpha=0.5)
        ax.plot(xs, ys, "o", color="tab:blue", label="evolved (verified)")
    bl = [b for b in baselines if math.isfinite(b.max_ulp) and b.max_ulp > 0]
    beaten = [p for p in pts if any(dominates((b.measure(objective), b.max_ulp), p) for b in bl)]
    if beaten:
        bxs, bys = zip(*beaten)
        ax.plot(bxs, bys, "x", color="tab:red", ms=9, label="evolved, dominated by a baseline")
    if bl:
        bx = [b.latency if objective == "latency" else b.cost for b in bl]
        ax.plot(bx, [b.max_ulp for b in bl], "s", color="tab:orange", mfc="none", label="baselines")
        for b, x in zip(bl, bx):
            ax.annotate(b.label, (x, b.max_ulp), textcoords="offset points", xytext=(4, 4), fontsize=7,
                        color="tab:orange")
    if max_ulp_constraint is not None:
        ax.axhline(max_ulp_constraint, color="gray", ls="--", lw=1, label=f"max ULP = {max_ulp_constraint:g}")
    if pts or bl:
        ax.set_yscale("log")
    ax.set_xlabel("latency (cycles)" if objective == "latency" else "cost (weighted op count)")
    ax.set_ylabel("max error (ULP)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    if pts or bl or max_ulp_constraint is not None:
        ax.legend(fontsize=8)
    fig.tight_layout()
    write_atomic(path, lambda fh: fig.savefig(fh, format="png"), binary=True)
    return path
