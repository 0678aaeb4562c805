"""``pysearch show DIR``: a run's verified front as a table, and its plot redrawn.

Each front entry is shown beside the best classical baseline (a minimax Horner polynomial with
float32-tuned constants, :mod:`pysearch.search.classical`) of equal or lower cost, marked where
that baseline dominates it. Baselines are read from ``DIR/baselines.json``, or computed once and
cached there when the run did not write them (e.g. ``--no-baselines``, ``--no-plot``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import UserError, add_command


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, run, "show", help="show a search run's front (table and plot)",
                       description="Print a run directory's verified front and redraw DIR/front.png.")
    p.add_argument("directory", metavar="DIR", help="run directory (holds front.json)")
    p.add_argument("--programs", action="store_true", help="print each program's text too")
    p.add_argument("--no-plot", action="store_true", help="do not redraw front.png")
    p.add_argument("--no-baselines", action="store_true",
                   help="do not compare with classical baselines (nor compute them when the run has none)")


def _classical(d: Path, front, console) -> list:
    """The run's classical baselines, costs under its op weights; computed and cached if absent."""
    from ..search.classical import load_or_compute, read_baselines, screen_sample

    pts = read_baselines(d, front.target, front.domain, front.cost_weights)
    if pts is not None:
        return pts
    console.print("computing classical baselines (once per run directory) ...", style="dim", highlight=False)
    try:
        x = screen_sample(front.domain)
        try:
            return load_or_compute(d, front.target, front.domain, x, front.cost_weights)
        except OSError:  # a read-only run directory: show them without caching
            return load_or_compute(d, front.target, front.domain, x, front.cost_weights, cache=False)
    except ValueError as e:  # e.g. a target the classical baselines cannot approximate
        console.print(f"no classical baselines: {e}", highlight=False, markup=False)
        return []


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from ..search.checkpoint import CHECKPOINT_NAME, read_checkpoint
    from ..search.front import read_front
    from ..search.plot import plot_front
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
    baselines = None if args.no_baselines else _classical(d, front, console)
    console.print(verified_table(front.programs, classical=baselines, objective=front.objective))
    if baselines is not None:
        if not baselines:
            console.print(f"no classical baseline is available for {front.target} on this domain", highlight=False)
        else:
            how = sorted({b.verified for b in baselines})
            console.print(f"classical max ULP measured: {', '.join(how)}; the front's: "
                          f"{', '.join(sorted({e.verified for e in front.programs})) or '-'}", highlight=False)
    if args.programs:
        for i, e in enumerate(front.programs):
            console.print(f"\n# {i}: cost {e.cost:g}, max ULP {e.max_ulp:.4g} ({e.verified})", highlight=False)
            console.print(e.text.rstrip(), highlight=False, markup=False)
    if not args.no_plot:
        out = plot_front(d / "front.png", front.programs, f"{front.target} on [{front.domain[0]:.9g}, {front.domain[1]:.9g}]",
                         front.objective, baselines or [], front.max_ulp_constraint)
        console.print(f"plot: {out}", highlight=False)
    return 0
