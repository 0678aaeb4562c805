"""How much of a float32 search's work explores new structures as the run goes on, and why it stops.

    python experiments/search_diversity.py [--target exp2] [--domain 0 1] [--seconds 90] [--seed 0] [--max-per-structure K]

A child whose structure (the program with its constants blanked) was fitted before takes the cached
fit instead of a new one. This runs one search (``SearchConfig`` defaults) for ``--seconds`` and
prints, per stretch of the run, the share of children that were new structures and the fits a
generation; then, for the final population, how many distinct structures it holds and how often a
mutation of one of its members (1, 2, 3, 4 mutations in a row) reaches a structure not fitted yet.

    RESULT late_new_structure_share=<s> population_structures=<k> one_mutation_new=<a> two_mutations_new=<b>

(``late``: the generations after the first half of the run). ``--max-per-structure K`` runs the search
with that cap (``SearchConfig.max_per_structure``: at most K programs of one structure in the population).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from pysearch.search import Search, SearchConfig


class _Stop(Exception):
    pass


def walk_new_share(s: Search, steps: int, per_member: int, rng: np.random.Generator) -> float:
    """The share of ``steps`` mutations in a row from each population member that end at an unfitted structure."""
    new = tot = 0
    for ind in s.population:
        for _ in range(per_member):
            child = ind.program
            for _ in range(steps):
                child = s.problem.mutate(rng, child)
            key = s.problem.structure(child)
            tot += 1
            new += key is not None and key not in s.cache
    return new / tot


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--target", default="exp2")
    ap.add_argument("--domain", type=float, nargs=2, default=[0.0, 1.0])
    ap.add_argument("--seconds", type=float, default=90.0, help="wall time of the search (default 90)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--walks", type=int, default=20, help="mutation walks per population member (default 20)")
    ap.add_argument("--max-per-structure", type=int, default=0, metavar="K",
                    help="at most K programs of one structure in the population (default 0: no cap)")
    args = ap.parse_args(argv)
    cfg = SearchConfig(target=args.target, domain=tuple(args.domain), max_ulp=1.0, seed=args.seed,
                       max_per_structure=args.max_per_structure)
    s = Search(cfg)
    children = 2 * (cfg.population // 2)
    rows: list[tuple[float, int, int]] = []  # (seconds, fits, unfitted) per generation
    last = [s.optimisations, s.unfitted]
    start = time.monotonic()

    def on_generation(s: Search, info) -> None:
        rows.append((time.monotonic() - start, s.optimisations - last[0], s.unfitted - last[1]))
        last[:] = [s.optimisations, s.unfitted]
        if time.monotonic() - start >= args.seconds:
            raise _Stop

    try:
        s.run(on_generation=on_generation)
    except _Stop:
        pass
    a = np.array(rows, dtype=float)
    cap = f", at most {cfg.max_per_structure} programs of one structure" if cfg.max_per_structure else ""
    print(f"# {args.target} on [{args.domain[0]:g}, {args.domain[1]:g}], seed {args.seed}, {args.seconds:g} s{cap}: "
          f"{len(rows)} generations of {children} children, fits capped at {cfg.opt_per_generation} a generation")
    print("| stretch (s) | generations | fits a generation | children new structures (fitted) | "
          "new structures over the cap (unfitted) | children taking a cached fit |")
    print("|---|---|---|---|---|---|")
    edges = [0.0, args.seconds / 6, args.seconds / 3, args.seconds / 2, np.inf]
    for lo, hi in zip(edges, edges[1:]):
        m = (a[:, 0] >= lo) & (a[:, 0] < hi)
        if not m.any():
            continue
        n = m.sum() * children
        fits, unfit = a[m, 1].sum(), a[m, 2].sum()
        label = f"{lo:.0f}-{hi:.0f}" if np.isfinite(hi) else f"{lo:.0f}-end"
        print(f"| {label} | {int(m.sum())} | {fits / m.sum():.1f} | {fits / n:.1%} | {unfit / n:.1%} | "
              f"{1 - (fits + unfit) / n:.1%} |")
    late = a[:, 0] >= args.seconds / 2
    late_share = (a[late, 1].sum() + a[late, 2].sum()) / max(late.sum() * children, 1)
    structures = len({s.problem.structure(ind.program) or ind.text for ind in s.population})  # no constants: its own
    print(f"\nfinal population: {len(s.population)} programs, {structures} distinct structures; {len(s.cache)} "
          f"structures fitted in the run")
    rng = np.random.default_rng(args.seed + 1)
    shares = {k: walk_new_share(s, k, args.walks, rng) for k in (1, 2, 3, 4)}
    for k, v in shares.items():
        print(f"{k} mutation(s) in a row from a population member reach a structure not fitted yet: {v:.1%} "
              f"({args.walks * len(s.population)} walks)")
    print(f"RESULT late_new_structure_share={late_share:.4f} population_structures={structures} "
          f"one_mutation_new={shares[1]:.4f} two_mutations_new={shares[2]:.4f}")


if __name__ == "__main__":
    main()
