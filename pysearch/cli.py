"""The ``pysearch`` command line: one sub-command per module in :mod:`pysearch.commands`.

Each command module defines ``register(subparsers)``, which adds its parser(s) and sets
``func`` (a callable taking the parsed arguments and returning an exit code). Errors that a user
can fix (bad input, unknown target, unreadable file) are printed as one line, exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# UserError and parse_duration live in commands/common.py (the commands import them from there);
# re-exported here because users and tests import them as pysearch.cli.UserError / parse_duration.
from pysearch.commands.common import UserError, parse_duration

#: Command modules, in the order ``pysearch --help`` lists them.
COMMAND_MODULES = ("demo", "search", "verify", "export", "show", "fit", "emergence", "calibrate")

__all__ = ["COMMAND_MODULES", "UserError", "build_parser", "main", "parse_duration"]


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The CLI parser; with ``only``, just that command is imported (fast start-up)."""
    parser = argparse.ArgumentParser(
        prog="pysearch",
        description="Evolve fast, verified float32 approximations; fit and discover scaling laws.",
    )
    from pysearch import __version__

    parser.add_argument("--version", action="version", version=f"pysearch {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in (only,) if only else COMMAND_MODULES:
        try:
            module = importlib.import_module(f"pysearch.commands.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"pysearch.commands.{name}":
                continue  # command not built into this version
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    first = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(first if first in COMMAND_MODULES else None)
    args = parser.parse_args(argv)
    args.argv = list(argv)  # the command as given (a search's front file records it)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("pysearch: interrupted", file=sys.stderr)
        return 130
    except (UserError, ValueError, TypeError, OSError, MemoryError) as e:
        # OSError covers a missing, unwritable or full output place (FileExistsError, NotADirectoryError,
        # ENOSPC, ...); MemoryError is a size the core refused before allocating
        message = " ".join(str(e).split()) or type(e).__name__
        print(f"pysearch {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
