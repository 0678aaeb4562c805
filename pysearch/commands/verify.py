"""``pysearch verify``: measure programs' max ULP error on a domain, exhaustively or sampled."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from ..domain import Domain
from ..evaluation import verify
from ..fileio import loads_json
from ..targets import get_target
from .common import UserError, add_command, add_domain_argument, parse_domain

CLAIM_TOLERANCE = 1e-9  # relative slack when comparing a re-measured bound with the claimed one


HELP = "measure a program's (or a front's) max ULP error over a domain"
DESCRIPTION = """\
Measure max ULP error, where it occurs and the fraction correctly rounded, for a program (text file, JSON
file or inline text) or every program of a front.json. Exit status 1 when a front's claimed bound is
exceeded.
"""  # argparse folds the white space


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, run, "verify", HELP, DESCRIPTION)
    p.add_argument("source", metavar="FRONT.json|PROGRAM", help="a front.json, a program file, or program text")
    p.add_argument("--target", default=None,
                   help="function the program approximates: a built-in name or an expression in x such as "
                        "'sin(x)/x' (default: the front's)")
    add_domain_argument(p, help="closed interval (default: the front's, else the target's reduced domain); "
                        "'1-' means the float32 just below 1")
    p.add_argument("--exhaustive", action="store_true", help="check every float32 in the domain (default: sample)")
    p.add_argument("--samples", type=int, default=1_000_000, help="sample size when not exhaustive (default 1e6)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")


def _load_source(source: str):
    """(front or None, [programs]) from a path or inline program text."""
    from ..program import Program, ProgramError, parse
    from ..search.front import read_front

    path = Path(source)
    if "\n" not in source and "=" not in source:
        if not path.exists():
            raise FileNotFoundError(f"no such file: {source}")
        text = path.read_text(encoding="utf-8")
        stripped = text.lstrip()
        if stripped.startswith("{"):
            doc = loads_json(text, source)
            if isinstance(doc, dict) and "programs" in doc:
                front = read_front(path)
                return front, [e.program for e in front.programs]
            return None, [Program.from_json(doc)]
    else:
        text = source
    try:
        return None, [parse(text)]
    except ProgramError as e:
        raise ValueError(f"cannot read a program from {source if len(source) < 60 else 'the text'}: {e}") from None


def run(args: argparse.Namespace) -> int:
    front, programs = _load_source(args.source)
    target = args.target or (front.target if front else None)
    if target is None:
        raise UserError("--target is required when verifying a program (not a front.json)")
    t = get_target(target)
    domain = parse_domain(args.domain)
    if domain is None:
        domain = front.domain if front is not None else tuple(t.domain)
    if not domain[0] <= domain[1]:
        raise UserError(f"bad domain [{domain[0]}, {domain[1]}]: need A <= B")
    if args.samples < 1:
        raise UserError("--samples must be positive")
    dom = Domain(*domain)  # the Target and Domain objects go to the core as they are
    rows = []
    violated = False
    for i, p in enumerate(programs):
        st = verify(p, t, dom, exhaustive=args.exhaustive, n_sample=args.samples)
        claim = front.programs[i].max_ulp if front is not None else None
        bad = claim is not None and st.max_ulp > claim * (1 + CLAIM_TOLERANCE)
        violated |= bad
        rows.append({
            "index": i, "cost": p.cost(), "ops": p.ops, "latency": p.latency(),
            "max_ulp": st.max_ulp if math.isfinite(st.max_ulp) else None,
            "argmax_x": st.argmax_x, "frac_correctly_rounded": st.frac_correctly_rounded,
            "mean_ulp": st.mean_ulp if math.isfinite(st.mean_ulp) else None, "n_points": st.n_points,
            "mode": "exhaustive" if args.exhaustive else "sampled",
            "claimed_max_ulp": claim, "claim_holds": None if claim is None else not bad,
        })
    if args.json:
        json.dump({"target": t.name, "domain": list(domain), "results": rows}, sys.stdout, indent=1)
        print()
    else:
        _print_table(t.name, domain, rows)
    return 1 if violated else 0


def _print_table(target: str, domain, rows) -> None:
    from rich.console import Console
    from rich.table import Table

    mode = rows[0]["mode"] if rows else "sampled"
    table = Table(title=f"{target} on [{domain[0]!r}, {domain[1]!r}] ({mode})", title_justify="left")
    for col in ("#", "cost", "max ULP", "at x", "correctly rounded", "points", "claimed"):
        table.add_column(col, justify="right")
    for r in rows:
        mx = "inf" if r["max_ulp"] is None else f"{r['max_ulp']:.4g}"
        claim = "" if r["claimed_max_ulp"] is None else (
            f"{r['claimed_max_ulp']:.4g} " + ("ok" if r["claim_holds"] else "EXCEEDED"))
        table.add_row(str(r["index"]), f"{r['cost']:g}", mx, f"{r['argmax_x']!r}",
                      f"{100 * r['frac_correctly_rounded']:.4f}%", f"{r['n_points']:,}", claim)
    Console().print(table)
