"""Structural variation on and off: the same seeded search from scratch, fronts side by side.

Runs the public ``pysearch.search.Search`` on exp2 over [0, 1) in float32 (from scratch: no
baseline or hand-written program in the initial population), once with
``pysearch.variation.STRUCTURAL_MUTATION_WEIGHTS`` (the structural rewrites of
``pysearch.structural`` and randomise-an-instruction besides the usual kinds) and once with the
default ``MUTATION_WEIGHTS`` (the single-instruction kinds only), for the same number of
generations and seeds (generations, not seconds: the budget is the same however loaded the
machine is). It prints both verified fronts (max ULP verified on every
float32 of the domain) and, per arm, the rounding sensitivity (``pysearch.conditioning``) of each
front program.

The search loop calls ``mutate(rng, parent, ops, max_instrs)`` without weights, so the
"structural" arm puts its weights in ``MUTATION_WEIGHTS`` for its duration; the hook the engine
needs to make this a setting is ``SearchConfig.mutation_weights`` passed on to
``mutate(..., weights=)``.

    python experiments/structural_variation.py [--generations 60] [--seeds 0 1] [--target exp2]

Last line: ``RESULT structural_cheapest_1ulp_cost=<c> plain_cheapest_1ulp_cost=<c>
structural_best_ulp_at_cost6=<u> plain_best_ulp_at_cost6=<u> structural_front_size=<n>
plain_front_size=<n>`` (the least cost of a program verified exhaustively at <= 1 ULP, and the best
verified max ULP among programs of cost <= 6, over the seeds; inf where none). A few seeds of a short search are an anecdote, not a
ranking.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
import time

import numpy as np

from pysearch import conditioning, variation
from pysearch.search import Search
from pysearch.search.config import SearchConfig

DOMAINS = {"exp2": (0.0, float(np.nextafter(np.float32(1), np.float32(0))))}
@contextlib.contextmanager
def mutation_weights(weights: dict[str, float] | None):
    """Make ``weights`` the default ``variation.MUTATION_WEIGHTS`` (None: leave it) while the block runs."""
    saved = dict(variation.MUTATION_WEIGHTS)
    if weights is not None:
        variation.MUTATION_WEIGHTS.clear()
        variation.MUTATION_WEIGHTS.update(weights)
    try:
        yield
    finally:
        variation.MUTATION_WEIGHTS.clear()
        variation.MUTATION_WEIGHTS.update(saved)


def run_arm(target: str, seed: int, generations: int, weights: dict[str, float] | None, max_instrs: int):
    cfg = SearchConfig(target=target, domain=DOMAINS[target], seed=seed, max_ulp=None, max_instrs=max_instrs)
    with mutation_weights(weights):
        s = Search(cfg)
        assert not cfg.seed_baselines and not cfg.seed_programs  # from scratch
        t0 = time.monotonic()
        s.run(generations=generations)
        front = s.final_front()
    return front, s.generation, time.monotonic() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--target", default="exp2", choices=sorted(DOMAINS))
    ap.add_argument("--generations", type=int, default=60,
                    help="generations per search (default 60; a count, not seconds, so a loaded machine "
                         "gives the same fronts)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--max-instrs", type=int, default=14)
    args = ap.parse_args(argv)
    x = np.linspace(*DOMAINS[args.target], 4097).astype(np.float32)
    best: dict[str, float] = {}
    cheapest: dict[str, float] = {}
    sizes: dict[str, int] = {}
    for name, weights in (("structural", variation.STRUCTURAL_MUTATION_WEIGHTS), ("plain", None)):
        best[name], sizes[name], cheapest[name] = math.inf, 0, math.inf
        for seed in args.seeds:
            front, gens, secs = run_arm(args.target, seed, args.generations, weights, args.max_instrs)
            print(f"## {name} mutations, seed {seed}: {gens} generations in {secs:.0f} s, {len(front)} front programs")
            print("| cost | ops | max ULP | verified | rounding sensitivity (pred. ULP) | program |")
            print("|---|---|---|---|---|---|")
            for e in sorted(front, key=lambda e: e.cost):
                sens = conditioning.sensitivity(e.text, x)
                prog = " ; ".join(ln.strip() for ln in e.text.splitlines() if ln.strip() and "=" in ln)
                print(f"| {e.cost:g} | {e.ops} | {e.max_ulp:.4g} | {e.verified} | {sens:.3g} | `{prog}` |")
                if e.cost <= 6 and e.verified == "exhaustive":
                    best[name] = min(best[name], e.max_ulp)
                if e.max_ulp <= 1 and e.verified == "exhaustive":
                    cheapest[name] = min(cheapest[name], e.cost)
            sizes[name] += len(front)
            print()
    print(f"RESULT structural_cheapest_1ulp_cost={cheapest['structural']:g} "
          f"plain_cheapest_1ulp_cost={cheapest['plain']:g} structural_best_ulp_at_cost6={best['structural']:.4g} plain_best_ulp_at_cost6={best['plain']:.4g} "
          f"structural_front_size={sizes['structural']} plain_front_size={sizes['plain']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
