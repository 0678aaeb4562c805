"""``pysearch demo``: a short tour on a built-in default (2^x on [0, 1) in float32).

1. re-verifies the shipped exp2 kernel on every float32 in [0, 1);
2. evolves kernels from scratch (120 generations, seed 0) and verifies the front exhaustively;
3. exports the best verified program as C.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from pysearch import library
from pysearch.cli import main as cli_main
from pysearch.evaluation import verify

from .common import add_command


def register(sub) -> None:
    p = add_command(sub, run, "demo", help="a short tour: verify, search and export exp2 kernels")
    p.add_argument("--generations", type=int, default=120,
                   help="generations to evolve (default 120: about 3 minutes on 2 cores)")
    p.add_argument("--out", default=None, help="run directory (default: a temporary one)")


def run(args) -> int:
    fn = library.get("exp2_reduced")
    a, b = fn.domain
    print(f"1) The shipped kernel for 2^x on [{a}, {b}] ({fn.program.ops} ops), checked on every float32 there:")
    t0 = time.perf_counter()
    st = verify(fn.program, "exp2", (a, b))
    print(f"   max error {st.max_ulp:.3f} ULP at x = {st.argmax_x!r}; {100 * st.frac_correctly_rounded:.2f}% "
          f"correctly rounded; {st.n_points:,} inputs in {time.perf_counter() - t0:.1f} s\n")

    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="pysearch-demo-"))
    print(f"2) Evolving exp2 kernels from scratch for {args.generations} generations, seed 0 "
          f"(run directory {out}):")
    rc = cli_main(["search", "exp2", "--domain", "0", "1-", "--max-ulp", "1", "--generations", str(args.generations),
                   "--seed", "0", "--out", str(out), "--no-baselines"])
    if rc:
        return rc
    print("\n3) The best verified program as C (`pysearch export FRONT.json --pick best --lang c`):\n")
    return cli_main(["export", str(out / "front.json"), "--pick", "best", "--lang", "c", "--name", "exp2_demo"])
