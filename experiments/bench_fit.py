"""Constant fitting in the core against the numpy path it replaced (issue 12, item 2).

Two measurements, old and new path in the same run (the old path is restored by patching
:class:`pysearch.fit_kernel.FitKernel` back to its numpy walk and turning the exact Jacobian off,
so Levenberg-Marquardt differences again):

1. ``FitKernel(C, x)`` on a 12-instruction search-shaped float32 program, K=64 constant vectors,
   n=2048 points: numpy walk vs ``_core.fit_eval``;
2. Fitting the constants of a fixed set of non-affine exp2 [0, 1) programs (the case where
   Levenberg-Marquardt runs) three ways: the numpy/scipy path with the numpy walk and finite
   differences (the original), the same path over ``_core.fit_eval`` with the exact Jacobian
   (``optimize_constants_python``, the strongest baseline: numpy/scipy driving the core), and
   the whole fit in the core for all programs in one call (``optimize_constants_batch``,
   rust/constfit.rs); the fitted max ULP errors are printed for each.

    python experiments/bench_fit.py [--repeat N]

prints the ratios and ``RESULT fit_eval_speedup=<x> optimize_constants_speedup=<y> fit_batch_speedup=<z>``:
``optimize_constants_speedup`` is the numpy/scipy path over the core against the numpy walk,
``fit_batch_speedup`` the all-core batch against the numpy/scipy path over the core.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

import numpy as np

import pysearch
from pysearch.fit_kernel import FitKernel
from pysearch.program import parse
from pysearch.search.constants import FitSample, optimize_constants_batch, optimize_constants_python

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_throughput import best_time  # noqa: E402  (one timing helper for the benchmarks)

SEARCH_PROGRAM = """\
v1 = mul x 0.6931472
v2 = fma v1 0.0013 0.0096
v3 = fma v2 v1 0.0555
v4 = fma v3 v1 0.2402
v5 = fma v4 v1 0.6931
v6 = mul v5 x
v7 = add v6 1
v8 = max v7 0.5
v9 = mul v8 v8
v10 = sub v9 v7
v11 = fma v10 0.001 v7
v12 = div v11 1.0002
"""

FIT_PROGRAMS = [
    "v1 = mul x x\nv2 = fma v1 0.2 0.5\nv3 = mul v2 v2\nv4 = fma v3 0.7 0.3\n",
    "v1 = div 1 x\nv2 = fma v1 0.3 x\nv3 = add v2 0.1\nv4 = div x v3\nv5 = add v4 1\n",
    "v1 = fma x 0.25 1\nv2 = mul v1 v1\nv3 = mul v2 v2\nv4 = fma v3 0.9 0.1\n",
    "v1 = fma x 0.34 1.1\nv2 = div 1 v1\nv3 = fma x 0.5 v2\nv4 = mul v3 v1\nv5 = fma v4 0.6 0.4\n",
    "v1 = mul x 0.7\nv2 = fma v1 0.24 0.69\nv3 = fma v2 v1 1\nv4 = mul v3 v3\nv5 = sqrt v4\nv6 = fma v5 0.9 0.1\n",
    "v1 = fma x 0.16 0.5\nv2 = fma v1 x 0.7\nv3 = fma v2 x 1\nv4 = div v3 1.01\nv5 = mul v4 v4\nv6 = sqrt v5\n",
]


@contextlib.contextmanager
def numpy_path():
    """The path before this change: the numpy walk and finite-difference Jacobians."""
    call, init = FitKernel.__call__, FitKernel.__init__

    def old_init(self, *a, **kw):
        init(self, *a, **kw)
        self.has_jacobian = False

    FitKernel.__call__, FitKernel.__init__ = FitKernel.numpy, old_init
    try:
        yield
    finally:
        FitKernel.__call__, FitKernel.__init__ = call, init


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    prog = parse(SEARCH_PROGRAM)
    kern = FitKernel(prog)
    rng = np.random.default_rng(0)
    m = kern.n_consts
    C = np.array(prog.constants()) * (1 + 0.01 * rng.standard_normal((64, m)))
    x = np.linspace(0.0, 1.0, 2048)[None, :]
    same = np.array_equal(kern(C, x), kern.numpy(C, x), equal_nan=True)
    reps = 20 * args.repeat
    t_np = best_time(lambda: [kern.numpy(C, x) for _ in range(reps)], 3) / reps
    t_rs = best_time(lambda: [kern(C, x) for _ in range(reps)], 3) / reps
    pts = 64 * 2048 * len(prog.instrs)
    print(f"FitKernel, {len(prog.instrs)} instructions, K=64, n=2048 (bit-identical: {same}):")
    print(f"  numpy {t_np * 1e3:8.3f} ms  ({pts / t_np / 1e6:8.1f} M instr*points/s)")
    print(f"  core  {t_rs * 1e3:8.3f} ms  ({pts / t_rs / 1e6:8.1f} M instr*points/s)  ratio {t_np / t_rs:.1f}x")

    sample = FitSample.build("exp2", pysearch.Domain(0.0, 1.0).sample(4096, seed=0))
    progs = [parse(t) for t in FIT_PROGRAMS]

    def fit_all():
        return [optimize_constants_python(p, sample) for p in progs]

    def fit_batch():
        return optimize_constants_batch(progs, sample)

    with numpy_path():
        old = fit_all()
        t_old = best_time(fit_all, args.repeat)
    mid = fit_all()
    t_mid = best_time(fit_all, args.repeat)
    new = fit_batch()
    t_new = best_time(fit_batch, args.repeat)
    print(f"constant fitting of {len(progs)} non-affine exp2 [0,1) programs (best of {args.repeat}):")
    print(f"  numpy walk, finite differences         {t_old:7.3f} s  ({len(progs) / t_old:7.1f} programs/s)")
    print(f"  numpy/scipy over the core (Jacobian)    {t_mid:7.3f} s  ({len(progs) / t_mid:7.1f} programs/s)"
          f"  ratio {t_old / t_mid:.2f}x")
    print(f"  all in the core, one batch              {t_new:7.3f} s  ({len(progs) / t_new:7.1f} programs/s)"
          f"  ratio {t_mid / t_new:.2f}x against the line above")
    for i, (a, b, c) in enumerate(zip(old, mid, new)):
        print(f"  program {i}: max ULP numpy {a.max_ulp:10.4g}  over the core {b.max_ulp:10.4g}  "
              f"all core {c.max_ulp:10.4g}")
    print(f"RESULT fit_eval_speedup={t_np / t_rs:.2f} optimize_constants_speedup={t_old / t_mid:.2f} "
          f"fit_batch_speedup={t_mid / t_new:.2f}")


if __name__ == "__main__":
    main()
