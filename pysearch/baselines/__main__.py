"""``python -m pysearch.baselines``: print the baseline error tables for one or more targets."""

from __future__ import annotations

import argparse
import sys
import time

from pysearch.targets import get_target

from .table import float32_rows, format_rows, real_rows

DEFAULT_TARGETS = ("exp2", "exp", "log2", "log", "tanh", "erf")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pysearch.baselines", description=__doc__)
    ap.add_argument("targets", nargs="*", default=["exp2"], help=f"targets (default exp2; 'all' = {' '.join(DEFAULT_TARGETS)})")
    ap.add_argument("--domain", nargs=2, type=float, metavar=("A", "B"), help="domain (default: the target's)")
    ap.add_argument("--degrees", type=int, nargs="+", default=list(range(2, 9)), help="polynomial degrees")
    ap.add_argument("--float32", action="store_true", help="also tune float32 coefficients (slower)")
    ap.add_argument("--float32-degrees", type=int, nargs="+", default=[5, 6, 7])
    ap.add_argument("--exhaustive", action="store_true", help="verify float32 rows on every float32 of the domain")
    args = ap.parse_args(argv)
    targets = list(DEFAULT_TARGETS) if args.targets == ["all"] else args.targets
    for name in targets:
        try:
            domain = tuple(args.domain) if args.domain else get_target(name).domain
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        t0 = time.time()
        rows = real_rows(name, domain, args.degrees)
        print(f"\n{name} on [{domain[0]:g}, {domain[1]:g}]: real-number max error ({rows[0]['weight']}), "
              f"mpmath at 50 digits ({time.time() - t0:.0f} s)")
        print(format_rows(rows, ["method", "degree", "ops_fma", "ops_muladd", "ops_estrin_fma", "error"]))
        if args.float32:
            t0 = time.time()
            rows = float32_rows(name, domain, args.float32_degrees, args.exhaustive)
            print(f"\n{name}: float32 coefficients (fpminimax-style), max ULP over {rows[0]['verified']} "
                  f"float32 inputs ({time.time() - t0:.0f} s); 'rounded' = real minimax rounded to nearest")
            print(format_rows(rows, ["degree", "order", "fma", "ops", "latency", "max_ulp", "rounded_max_ulp",
                                     "real_error"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
