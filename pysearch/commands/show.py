"""``pysearch show DIR``: a run's verified front as a table, and its plot redrawn."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..cli import UserError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("show", help="show a search run's front (table and plot)",
                       description="Print a run directory's verified front and redraw DIR/front.png.")
    p.add_argument("directory", metavar="DIR", help="run directory (holds front.json)")
    p.add_argument("--programs", action="store_true", help="print each program's text too")
    p.add_argument("--no-plot", action="store_true", help="do not redraw front.png")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from ..search.checkpoint import CHECKPOINT_NAME, read_checkpoint
    from ..search.classical import BASELINES_NAME
    from ..search.front import read_front
    from ..search.plot import BaselinePoint, plot_front
    from ..search.progress import verified_table

    d = Path(args.directory)
    if not d.is_dir():
        raise UserError(f"{d} is not a directory")
    front = read_front(d / "front.json")
    console = Console()
    bound = f", max ULP <= {front.max_ulp_constraint:g}" if front.max_ulp_constraint is not None else ""
    info = ""
    if (d / CHECKPOINT_NAME).exists():
        try:
            doc = read_checkpoint(d)
            info = f" | generation {doc['generation']} | {float(doc.get('elapsed_s', 0.0)):.0f} s"
        except (ValueError, OSError):
            info = " | checkpoint unreadable"
    console.print(f"[bold]{front.target} on [{front.domain[0]!r}, {front.domain[1]!r}]{bound}{info}[/bold]",
                  highlight=False)
    console.print(verified_table(front.programs))
    if args.programs:
        for i, e in enumerate(front.programs):
            console.print(f"\n# {i}: cost {e.cost:g}, max ULP {e.max_ulp:.4g} ({e.verified})", highlight=False)
            console.print(e.text.rstrip(), highlight=False, markup=False)
    if not args.no_plot:
        baselines = []
        bpath = d / BASELINES_NAME
        if bpath.exists():
            try:
                doc = json.loads(bpath.read_text(encoding="utf-8"))
                baselines = [BaselinePoint(b["label"], b["cost"], b["latency"],
                                           float("inf") if b["max_ulp"] is None else b["max_ulp"], b["verified"])
                             for b in doc.get("baselines", [])]
            except (ValueError, KeyError, TypeError):
                baselines = []
        out = plot_front(d / "front.png", front.programs, f"{front.target} on [{front.domain[0]:.9g}, {front.domain[1]:.9g}]",
                         front.objective, baselines, front.max_ulp_constraint)
        console.print(f"plot: {out}", highlight=False)
    return 0
