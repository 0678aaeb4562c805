"""``pysearch calibrate``: measure per-op throughput on this machine and write a cost model.

The model (JSON, schema 1, written atomically) holds the measured ns per element per op and the
weights relative to fma that ``pysearch search --cost-model FILE`` uses as its cost objective.
"""

from __future__ import annotations

import argparse
import sys

from .common import UserError, add_command

HELP = "measure per-op throughput with a compiled C harness; write a cost model for --cost-model"


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, run, "calibrate", HELP, description=HELP)
    p.add_argument("--out", default="cost_model.json", metavar="FILE",
                   help="where to write the cost model (default cost_model.json)")
    p.add_argument("--ops", default=None, help="ops to measure, comma-separated (default: every float32 op)")
    p.add_argument("--rounds", type=int, default=3, help="rounds of timings; the best counts (default 3)")
    p.add_argument("--repeat", type=int, default=11, help="timings per kernel in a round (default 11)")
    p.add_argument("--cc", default=None, help="C compiler (default gcc, else cc)")


def run(args: argparse.Namespace) -> int:
    from ..calibrate import FLOAT32_OPS, CalibrationError, calibrate, write_model

    ops = FLOAT32_OPS if args.ops is None else tuple(o.strip() for o in args.ops.split(",") if o.strip())
    if not ops:
        raise UserError("--ops names no op")
    for name in ("rounds", "repeat"):
        if getattr(args, name) < 1:
            raise UserError(f"--{name} must be at least 1")
    try:
        model = calibrate(ops, rounds=args.rounds, repeat=args.repeat, cc=args.cc,
                          log=lambda line: print(line, file=sys.stderr))
    except CalibrationError as e:
        raise UserError(str(e)) from None
    path = write_model(args.out, model)
    print(f"cost model for {model['machine']['cpu']} ({model['compiler']}): weights relative to fma", file=sys.stderr)
    print(path)
    return 0
