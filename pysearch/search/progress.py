"""Live progress of a search with rich: generation, evaluation rate and the current front.

On a terminal the display redraws in place; otherwise (a pipe, a log file) one plain line is
printed every few seconds, so logs stay readable.
"""

from __future__ import annotations

import math
import time
from typing import Sequence

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from .loop import GenerationInfo, Search
from .front import FrontEntry
from .plot import BaselinePoint


def _fmt_ulp(v: float | None) -> str:
    if v is None or not math.isfinite(v):
        return "-"
    return f"{v:.3g}" if v >= 0.01 else f"{v:.2e}"


def _fmt_time(s: float) -> str:
    m, s = divmod(int(s), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def front_table(search: Search, max_rows: int = 12) -> Table:
    """The archive (sample front) with verified figures where known."""
    cfg = search.config
    verified = {e.text: e for e in search.front}
    table = Table(title="current front", title_justify="left", show_edge=False, pad_edge=False)
    for col in ("cost", "ops", "latency", "sample max ULP", "verified max ULP"):
        table.add_column(col, justify="right")
    rows = sorted(search.archive, key=lambda i: (search.measure(i.program), i.max_ulp))
    rows = [r for r in rows if math.isfinite(r.max_ulp)]
    if len(rows) > max_rows:  # keep the accurate end, which is what users care about
        rows = rows[-max_rows:]
    for ind in rows:
        p = ind.program
        v = verified.get(ind.text)
        ok = cfg.max_ulp is None or ind.max_ulp <= cfg.max_ulp
        style = None if ok else "dim"
        table.add_row(f"{p.cost(cfg.cost_weights):g}", str(p.ops), f"{p.latency():g}", _fmt_ulp(ind.max_ulp),
                      _fmt_ulp(v.max_ulp) if v else "", style=style)
    return table


def verified_table(front: list[FrontEntry], title: str = "verified front",
                   classical: Sequence[BaselinePoint] | None = None, objective: str = "cost") -> Table:
    """A table of verified front entries; with ``classical``, each beside the best classical baseline
    of equal or lower cost (or latency) and a marker where that baseline dominates the entry."""
    from .classical import best_at_or_below
    from .front import dominates

    table = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
    for col in ("#", "cost", "ops", "latency", "max ULP", "verified", "correctly rounded"):
        table.add_column(col, justify="right")
    if classical is not None:
        table.add_column(f"best classical at {objective} <= this", justify="left")
        table.add_column("classical dominates", justify="left")
    for i, e in enumerate(front):
        cr = f"{100 * e.frac_correctly_rounded:.2f}%" if e.frac_correctly_rounded is not None else ""
        row = [str(i), f"{e.cost:g}", str(e.ops), f"{e.latency:g}", _fmt_ulp(e.max_ulp), e.verified, cr]
        if classical is not None:
            b = best_at_or_below(classical, e.measure(objective), objective)
            if b is None:
                row += ["-", ""]
            else:
                better = dominates((b.measure(objective), b.max_ulp), (e.measure(objective), e.max_ulp))
                row += [f"{b.label}: {objective} {b.measure(objective):g}, {_fmt_ulp(b.max_ulp)} ULP",
                        ("YES" if b.verified == "exhaustive" else "YES (baseline sampled)") if better else ""]
        table.add_row(*row, style="red" if classical is not None and row[-1] else None)
    return table


class Progress:
    """Context manager that shows a search's progress; call :meth:`update` after each generation."""

    def __init__(self, search: Search, console: Console | None = None, log_every_s: float = 10.0):
        self.search = search
        self.console = console or Console(stderr=True)
        self.live: Live | None = None
        self.log_every_s = log_every_s
        self._last_log = 0.0
        self._t0 = time.monotonic()
        self._evals0 = search.evaluations
        self._gen0 = search.generation

    def __enter__(self) -> "Progress":
        if self.console.is_terminal:
            self.live = Live(self.render(), console=self.console, refresh_per_second=4, transient=False)
            self.live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.live is not None:
            self.live.update(self.render())
            self.live.__exit__(*exc)
            self.live = None

    def rates(self) -> tuple[float, float]:
        """(programs per second, point evaluations per second) in this session."""
        dt = max(time.monotonic() - self._t0, 1e-9)
        points = (self.search.evaluations - self._evals0) / dt
        programs = points / max(len(self.search.x), 1)
        return programs, points

    def header(self) -> str:
        s = self.search
        cfg = s.config
        progs, points = self.rates()
        bound = f", max ULP <= {cfg.max_ulp:g}" if cfg.max_ulp is not None else ""
        return (
            f"{cfg.target} on [{cfg.domain[0]:.9g}, {cfg.domain[1]:.9g}]{bound} | gen {s.generation} | "
            f"{_fmt_time(s.elapsed)} | {progs:,.0f} programs/s ({points / 1e6:,.1f}M points/s) | "
            f"{s.optimisations} constant fits | verified {len(s.front)}"
        )

    def render(self) -> Group:
        return Group(Text(self.header(), style="bold"), front_table(self.search))

    def update(self, search: Search, info: GenerationInfo | None = None) -> None:
        if self.live is not None:
            self.live.update(self.render())
            return
        now = time.monotonic()
        if now - self._last_log >= self.log_every_s:
            self._last_log = now
            best = [i for i in search.archive if math.isfinite(i.max_ulp)]
            front = ", ".join(
                f"{search.measure(i.program):g}:{_fmt_ulp(i.max_ulp)}"
                for i in sorted(best, key=lambda i: search.measure(i.program))[-6:]
            )
            self.console.print(f"{self.header()} | front {front}", highlight=False, soft_wrap=True)
