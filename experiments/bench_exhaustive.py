"""Exhaustive check speed: max ULP error of a degree-6 Horner exp2 over every float32 in [0, 1).

Runs pysearch.verify (Rust: streams all 1,065,353,216 inputs in chunks through the JIT-compiled
program, a vectorised float64 exp2 reference within 2 float64 ulps of libm's, and a branch-free
statistics pass; roundings the float64 reference cannot decide are settled with mpmath) and the same computation in numpy (float64 reference np.exp2, chunks of 2^24 points,
fma emulated as a float64 product and sum rounded to float32) in the same run, and prints both.

    python experiments/bench_exhaustive.py [--numpy-fraction 1.0]

--numpy-fraction < 1 times numpy on that leading fraction of the inputs and scales its time up
(the printed table says so); the default measures numpy on every input too.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import pysearch
from pysearch import _core
from pysearch.baselines import horner, minimax, round_sequentially

CHUNK = 1 << 24


def numpy_exhaustive(coeffs: list[float], lo_bits: int, hi_bits: int) -> tuple[float, float]:
    """Max ULP error and the fraction equal to float32(f64 reference), in numpy."""
    c = [np.float32(v) for v in coeffs]
    worst, n_eq, n = 0.0, 0, 0
    for start in range(lo_bits, hi_bits + 1, CHUNK):
        bits = np.arange(start, min(start + CHUNK, hi_bits + 1), dtype=np.uint32)
        x = bits.view(np.float32)
        xd = x.astype(np.float64)
        y = np.full_like(x, c[-1])
        for ck in reversed(c[:-1]):
            y = (y.astype(np.float64) * xd + np.float64(ck)).astype(np.float32)
        ref = np.exp2(xd)
        _, e = np.frexp(ref)
        ulp = np.ldexp(1.0, np.maximum(e - 1, -126) - 23)
        err = np.abs(y.astype(np.float64) - ref) / ulp
        worst = max(worst, float(err.max()))
        n_eq += int(np.count_nonzero(y == ref.astype(np.float32)))
        n += len(x)
    return worst, n_eq / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--numpy-fraction", type=float, default=1.0)
    args = ap.parse_args()

    # degree-6 relative minimax (Remez), coefficients rounded to float32 one at a time with refits
    approx = round_sequentially(minimax("exp2", (0.0, 1.0), 6))
    coeffs = [float(np.float32(float(c))) for c in approx.num]
    prog = horner(coeffs)
    dom = pysearch.Domain(0.0, float(np.nextafter(np.float32(1), np.float32(0))))  # [0, 1)
    print(f"program ({prog.ops} ops): {prog.expression()}")
    print(f"domain {dom}: {dom.count():,} float32 inputs; threads: {_core.isa()} hot loop\n")

    t0 = time.perf_counter()
    st = pysearch.verify(prog, "exp2", dom)
    t_rust = time.perf_counter() - t0

    lo, hi = np.array([dom.a, dom.b], np.float32).view(np.uint32).astype(np.int64)
    n_np = int((hi - lo + 1) * args.numpy_fraction)
    t0 = time.perf_counter()
    with np.errstate(all="ignore"):
        np_max, np_cr = numpy_exhaustive(coeffs, int(lo), int(lo + n_np - 1))
    t_np = (time.perf_counter() - t0) * (hi - lo + 1) / n_np

    note = "" if args.numpy_fraction >= 1 else f" (timed on {100 * args.numpy_fraction:.0f}% of inputs, scaled)"
    print(f"{'implementation':40} {'seconds':>9} {'max ULP':>9} {'frac. correctly rounded':>24}")
    print(f"{'numpy, float64 reference' + note:40} {t_np:9.2f} {np_max:9.4f} {np_cr:24.6f}")
    print(f"{'pysearch.verify (Rust, exhaustive)':40} {t_rust:9.2f} {st.max_ulp:9.4f} {st.frac_correctly_rounded:24.6f}")
    print(f"\nspeed-up: {t_np / t_rust:.1f}x; worst input x = {st.argmax_x!r}")
    if args.numpy_fraction >= 1:
        # numpy's emulated fma rounds twice, so rare inputs may differ; the maxima normally agree
        print(f"max ULP agrees with numpy: {abs(np_max - st.max_ulp) <= 1e-9 * max(1.0, st.max_ulp)}")
    print(f"RESULT exhaustive_seconds={t_rust:.3f} exhaustive_ratio_vs_numpy={t_np / t_rust:.2f} max_ulp={st.max_ulp:.6f}")


if __name__ == "__main__":
    main()
