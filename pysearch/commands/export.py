"""``pysearch export``: a program from a front, a program file or the shipped library as Python, C or Rust."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Sequence

from pysearch import library
from pysearch.export import LANGUAGES, export, export_many, reserved_reason
from pysearch.fileio import read_json, write_text_atomic
from pysearch.program import Program, ProgramError, parse
from pysearch.search.front import FrontEntry, read_front

from .common import UserError, add_command

_ASCII_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


HELP = "write a program from a front as Python, C or Rust code"
DESCRIPTION = """\
Export one program of a search front (front.json), a program file (.txt program text or program JSON) or a
shipped library function as standalone Python (numpy), C or Rust code that reproduces the evaluator bit for
bit.
"""  # argparse folds the white space


def register(subparsers) -> None:
    p = add_command(subparsers, run, "export", HELP, DESCRIPTION)
    p.add_argument(
        "source",
        nargs="?",
        help="front.json, a program JSON file, a program text file, or the name of a library function",
    )
    p.add_argument(
        "--library",
        metavar="NAMES",
        help="export shipped library functions by name with their verified bounds, e.g. exp2; "
        "several, comma-separated (exp,exp2), go into one C file or Rust module (--lang c or rust)",
    )
    p.add_argument(
        "--pick",
        default="best",
        help="which program of a front: an index (0 = first) or 'best' = the lowest-cost program "
        "meeting the run's --max-ulp, else the most accurate (default: best)",
    )
    p.add_argument("--lang", choices=LANGUAGES, default="python", help="output language (default: python)")
    p.add_argument("--name", help="function name (default: TARGET_approx)")
    p.add_argument("--out", help="write to this file instead of standard output")
    p.add_argument("--target", help="target name for the header, for a single program file")
    p.add_argument("--domain", nargs=2, type=float, metavar=("A", "B"), help="domain for the header")


def _read_json(path: Path) -> object:
    return read_json(path)


def pick_best(programs: Sequence[FrontEntry], max_ulp: float | None) -> int:
    """Index of the lowest-cost program with max_ulp <= ``max_ulp`` (exhaustively verified ones
    first), else of the most accurate program (ties: lowest cost)."""
    idx = range(len(programs))
    if max_ulp is not None:
        meets = [i for i in idx if programs[i].max_ulp <= max_ulp]
        pool = [i for i in meets if programs[i].verified == "exhaustive"] or meets
        if pool:
            return min(pool, key=lambda i: (programs[i].cost, programs[i].max_ulp, i))
    return min(idx, key=lambda i: (programs[i].max_ulp, programs[i].cost, i))


def load_source(path: Path, pick: str) -> tuple[Program, dict]:
    """The program to export and its header metadata."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.is_dir():
        front = path / "front.json"
        if not front.exists():
            raise UserError(f"{path}: a directory without front.json")
        path = front
    text = path.read_text(errors="replace")
    if not text.lstrip().startswith("{"):
        try:
            return parse(text), {}
        except ProgramError as e:
            raise UserError(f"{path}: {e}") from None
    doc = _read_json(path)
    if not isinstance(doc, dict):
        raise UserError(f"{path}: expected a JSON object")
    if "programs" not in doc:
        try:
            return Program.from_json(doc), {}
        except ProgramError as e:
            raise UserError(f"{path}: {e}") from None
    front = read_front(path)  # every field checked; a one-line ValueError names the file and field
    if not front.programs:
        raise UserError(f"{path}: the front holds no programs")
    if pick == "best":
        k = pick_best(front.programs, front.max_ulp_constraint)
    else:
        try:
            k = int(pick)
        except ValueError:
            raise UserError(f"--pick must be an index or 'best', got {pick!r}") from None
        if not 0 <= k < len(front.programs):
            raise UserError(f"--pick {k}: the front has {len(front.programs)} programs (0..{len(front.programs) - 1})")
    entry = front.programs[k]
    meta = {"target": front.target, "domain": list(front.domain), "front index": k, "max_ulp": entry.max_ulp,
            "verified": entry.verified, "cost": entry.cost, "ops": entry.ops, "latency": entry.latency}
    return entry.program, meta


def default_name(target: object) -> str:
    """``TARGET_approx`` when that is a usable function name, else ``approx``."""
    name = f"{target}_approx"
    if isinstance(target, str) and _ASCII_IDENT.match(name) and reserved_reason(name) is None:
        return name
    return "approx"


def _library_names(args) -> list[str] | None:
    """The library functions to export: ``--library``, or a source that names one (and is no file)."""
    if args.library is not None:
        if args.source is not None:
            raise UserError("give a source file or --library, not both")
        return [n.strip() for n in args.library.split(",")]
    if args.source is None:
        raise UserError(f"give a front.json or program file, or --library NAME (one of {', '.join(library.names())})")
    if not Path(args.source).exists() and args.source in library.names():
        return [args.source]
    return None


def run(args) -> int:
    overrides: dict = {}
    if args.target:
        overrides["target"] = args.target
    if args.domain:
        overrides["domain"] = list(args.domain)
    lib_names = _library_names(args)
    if lib_names is not None:
        if str(args.pick) != "best":
            raise UserError("--pick selects a program of a front; it does not apply to library functions")
        if len(lib_names) > 1 and args.name:
            raise UserError("--name names one function; several library functions are each named NAME_approx")
        fns = [library.get(n) for n in lib_names]
        items = [(fn, args.name or default_name(fn.name), overrides) for fn in fns]
        if len(items) == 1:
            fn, name, meta = items[0]
            code = export(fn, args.lang, name, meta)
        else:
            code = export_many(items, args.lang)
            name = ", ".join(item[1] for item in items)
    else:
        program, meta = load_source(Path(args.source), str(args.pick))
        meta.update(overrides)
        name = args.name or default_name(meta.get("target"))
        code = export(program, args.lang, name, meta)
    if args.out:
        out = Path(args.out)
        if out.is_dir():
            raise UserError(f"--out {out}: is a directory; give a file name")
        if not out.parent.is_dir():
            raise UserError(f"--out {out}: the directory {out.parent} does not exist")
        write_text_atomic(out, code)
        print(f"wrote {out} ({args.lang}, function {name})", file=sys.stderr)
    else:
        sys.stdout.write(code)
    return 0
