"""Does the calibrated cost predict compiled-C speed better than op count? Measured in one run.

1. Calibrates the per-op cost model on this machine (``pysearch.calibrate.calibrate``; or reads
   ``--model FILE`` written by ``pysearch calibrate``).
2. Times, in the compiled-C harness of ``experiments/float32_speed.py`` (one shared object, gcc
   -O3 -march=native, vector loop over an in-cache array, thread CPU time, best of rounds), a set
   of float32 programs: the library kernels (``pysearch.library``), Horner and Estrin polynomials
   of degrees 3-8 with and without fma, and random programs over several op sets.
3. Prints, for each predictor (op count, the registry's default cost, the registry's latency, the
   calibrated cost), its Spearman rank correlation with the measured ns per element.

    python experiments/cost_model.py [--random 40] [--rounds 3] [--repeat 11] [--model FILE]

Last line: ``RESULT cost_model_spearman=<r> op_count_spearman=<r> default_cost_spearman=<r>
latency_spearman=<r> programs=<n>``. Timings on a shared machine are noisy: compare runs.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from scipy.stats import spearmanr

from pysearch import library
from pysearch.baselines import estrin, horner
from pysearch.calibrate import CBench, ProgramKernel, calibrate, cost_weights, read_model
from pysearch.variation import random_program

EXP2_TAYLOR = [1.0, 0.6931472, 0.24022651, 0.05550411, 0.009618129, 0.0013333558, 0.00015403530, 1.5252734e-5,
               1.3215487e-6]
RANDOM_OP_SETS = (
    ("add", "sub", "mul", "fma"),
    ("add", "mul", "fma", "div"),
    ("fma", "mul", "add", "sqrt", "min", "max"),
    ("fma", "add", "rint", "floor", "ldexp", "getexp", "getmant"),
    ("add", "sub", "mul", "div"),
)


def programs(n_random: int, seed: int = 0) -> list[tuple[str, object]]:
    out = []
    for fn in library.functions():
        out.append((f"library {fn.name}", fn.program))
    for deg in range(3, 9):
        c = EXP2_TAYLOR[:deg + 1]
        for fma in (True, False):
            out.append((f"horner{deg}{'' if fma else ' mul+add'}", horner(c, fma=fma)))
            out.append((f"estrin{deg}{'' if fma else ' mul+add'}", estrin(c, fma=fma)))
    rng = np.random.default_rng(seed)
    for k in range(n_random):
        ops = RANDOM_OP_SETS[k % len(RANDOM_OP_SETS)]
        out.append((f"random {k} ({','.join(ops)})", random_program(rng, int(rng.integers(3, 16)), ops)))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--random", type=int, default=40, help="random programs (default 40)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=11)
    ap.add_argument("--model", default=None, help="cost model JSON (default: calibrate now)")
    args = ap.parse_args(argv)

    model = read_model(args.model) if args.model else calibrate(rounds=args.rounds, repeat=args.repeat)
    w = cost_weights(model)
    print(f"cost model: {model['machine']['cpu']}, {model['compiler']}; weights (fma = 1): "
          + ", ".join(f"{k}={v:.3g}" for k, v in w.items()))
    progs = programs(args.random)
    kernels = [ProgramKernel.of(p, f"k{i}") for i, (_, p) in enumerate(progs)]
    bench = CBench(kernels)
    x = np.random.default_rng(1).uniform(0.5, 1.5, 1 << 14).astype(np.float32)
    ns = bench.time_rounds(x, 1 << 18, args.repeat, args.rounds).min(axis=0)
    preds = {
        "op count": np.array([p.ops for _, p in progs], float),
        "default cost": np.array([p.cost() for _, p in progs]),
        "latency": np.array([p.latency() for _, p in progs]),
        "calibrated cost": np.array([p.cost(w) for _, p in progs]),
    }
    print(f"\n{len(progs)} programs timed (compiled: {bench.command}; best of {args.rounds} rounds x {args.repeat})")
    print("| program | ops | default cost | calibrated cost | vectorised | ns/elt |")
    print("|---|---|---|---|---|---|")
    for i, (label, p) in enumerate(progs):
        vec = bench.vectorised.get(kernels[i].cname)
        print(f"| {label} | {p.ops} | {p.cost():g} | {p.cost(w):.3g} | {'?' if vec is None else 'yes' if vec else 'no'} "
              f"| {ns[i]:.4f} |")
    rho = {k: float(spearmanr(v, ns).statistic) for k, v in preds.items()}
    print("\n| predictor | Spearman rank correlation with ns/elt |\n|---|---|")
    for k, v in rho.items():
        print(f"| {k} | {v:.3f} |")
    print(f"RESULT cost_model_spearman={rho['calibrated cost']:.4f} op_count_spearman={rho['op count']:.4f} "
          f"default_cost_spearman={rho['default cost']:.4f} latency_spearman={rho['latency']:.4f} programs={len(progs)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
