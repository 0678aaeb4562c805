"""What the sub-commands share: the user-error type, duration and domain-bound parsing, and the helpers
that register a command and its ``--domain`` argument.

Commands import these from here (never back from :mod:`pysearch.cli`, which imports the commands).
"""

from __future__ import annotations

import argparse
import math
import re
from typing import Callable

import numpy as np


class UserError(Exception):
    """A problem with the user's input, reported as one line without a traceback."""


def parse_duration(text: str) -> float:
    """Seconds from ``90``, ``90s``, ``5m``, ``1.5h`` or ``1m30s``."""
    s = str(text).strip().lower()
    parts = re.findall(r"(\d+(?:\.\d+)?)([smh]?)", s)
    if not s or "".join(a + b for a, b in parts) != s:
        raise ValueError(f"bad duration {text!r}; expected e.g. 90s, 5m, 1h or 1m30s")
    total = sum(float(v) * {"": 1, "s": 1, "m": 60, "h": 3600}[u] for v, u in parts)
    if total <= 0:
        raise ValueError(f"duration must be positive, got {text!r}")
    return total


def parse_bound(text: str) -> float:
    """A domain bound: a decimal or hex-float; a trailing '-' means the float32 just below it."""
    t = str(text).strip()
    below = len(t) > 1 and t.endswith("-") and not t.lower().endswith("e-")
    if below:
        t = t[:-1]
    try:
        v = float.fromhex(t) if "0x" in t.lower() else float(t)
    except ValueError:
        raise UserError(f"bad domain bound {text!r}: expected a number such as 0, 1, -0.5 or 0x1p-3") from None
    if not math.isfinite(v):
        raise UserError(f"domain bound {text!r} must be finite")
    if below:
        v = float(np.nextafter(np.float32(v), np.float32(-np.inf)))
    return v


def parse_domain(bounds: list[str] | None) -> tuple[float, float] | None:
    """The ``--domain A B`` pair as two floats (:func:`parse_bound`), or None when not given."""
    if bounds is None:
        return None
    return parse_bound(bounds[0]), parse_bound(bounds[1])


def add_command(sub: argparse._SubParsersAction, func: Callable[[argparse.Namespace], int], name: str, help: str,
                description: str | None = None) -> argparse.ArgumentParser:
    """Add the parser of sub-command ``name``, which runs ``func(args)`` (returning the exit code)."""
    p = sub.add_parser(name, help=help, description=description)
    p.set_defaults(func=func)
    return p


def add_domain_argument(p: argparse.ArgumentParser, help: str) -> None:
    """``--domain A B``, read back with :func:`parse_domain` (bounds such as ``1-`` or ``0x1p-3``)."""
    p.add_argument("--domain", nargs=2, metavar=("A", "B"), default=None, help=help)


def add_table_arguments(p: argparse.ArgumentParser, dest: str, file_help: str, x_help: str) -> None:
    """The CSV file (positional ``dest``) and its ``--x`` column(s), as ``fit`` and ``emergence`` read them."""
    p.add_argument(dest, help=file_help)
    p.add_argument("--x", required=True, help=x_help)
