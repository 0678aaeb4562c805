"""Full-range float32 exp2/exp/log2/log: pysearch.library against glibc and numpy, in one run.

Accuracy: max ULP error over float32 inputs (NaN inputs excluded; +-inf and subnormals included).
Ours is measured by ``pysearch.verify`` over the whole range (every non-NaN float32) when
``--verify`` is given, else the exhaustive figure stored in the library metadata is reported
(it was produced by the same call). glibc (``expf``, ``exp2f``, ``logf``, ``log2f`` called from C
compiled in this run) and numpy's float32 ufuncs are run over all 2^32 bit patterns in chunks of
2^22 (``--stride 1``), or over every ``--stride``-th chunk (default 16: 1/16 of all patterns,
spread over the whole range), and their outputs are scored with the ULP measure of pysearch
(|y - f(x)| / ulp(f(x)), f from ``pysearch.reference``, ulp(v) = 2^(floor(log2|v|) - 23) at least
2^-149; a non-finite output where the correctly rounded result is finite, or the reverse, is inf).

Throughput: ns per element over ``--n`` inputs spread over the function's useful range, ours
(exported C by ``pysearch.export.to_c``: branch-free helpers, so GCC vectorises the array loop;
the table says whether it did) and glibc (called element by element, as a plain ``-O3`` loop
does) in one compiled object, numpy timed in the same process; best of ``--repeat``; times are
the thread's CPU time (time descheduled on a loaded machine does not count).

    python experiments/full_range_vs_libm.py [--targets exp2 exp log2 log] [--stride 16] [--verify]

Last line: ``RESULT exp2_full_range_max_ulp=<u> exp2_speed_ratio_vs_glibc=<x>`` (ratio > 1: ours faster).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pysearch  # noqa: E402
from float32_speed import CBench, format_table, libm_candidate, program_candidate  # noqa: E402

LIBM = {"exp2": "exp2f", "exp": "expf", "log2": "log2f", "log": "logf"}
NUMPY = {"exp2": np.exp2, "exp": np.exp, "log2": np.log2, "log": np.log}
CHUNK = 1 << 22


def timing_inputs(target: str, n: int, seed: int = 0) -> np.ndarray:
    """Inputs where the function is finite and non-trivial (what a throughput test should feed)."""
    rng = np.random.default_rng(seed)
    if target == "exp2":
        return rng.uniform(-126, 127, n).astype(np.float32)
    if target == "exp":
        return rng.uniform(-87, 88, n).astype(np.float32)
    return np.exp2(rng.uniform(-126, 127, n)).astype(np.float32)  # log, log2: log-uniform positives


def ulp_errors(y: np.ndarray, ref: np.ndarray, cr: np.ndarray) -> np.ndarray:
    """ULP error of float32 outputs ``y``: ``ref`` = f(x) in float64, ``cr`` = f(x) correctly rounded."""
    with np.errstate(all="ignore"):
        fin = np.isfinite(cr) & np.isfinite(y)
        a = np.abs(ref)
        e = np.floor(np.log2(np.where(a > 0, a, 1.0)))
        ulp = np.maximum(np.exp2(np.minimum(e, 127) - 23), 2.0 ** -149)
        err = np.where(fin, np.abs(y.astype(np.float64) - ref) / ulp, 0.0)
        same = (y == cr) | (np.isnan(y) & np.isnan(cr))
        err = np.where(~fin & ~same, np.inf, err)
    return err


def scan_outputs(target: str, producers: dict, stride: int, log=print) -> dict:
    """Max ULP (and where) of each producer (float32 x -> float32 y) over every ``stride``-th chunk."""
    best = {k: (0.0, math.nan) for k in producers}
    n = 0
    n_chunks = (1 << 32) // CHUNK
    t0 = time.time()
    for c in range(0, n_chunks, stride):
        bits = np.arange(c * CHUNK, (c + 1) * CHUNK, dtype=np.uint64).astype(np.uint32)
        x = bits.view(np.float32)
        x = x[~np.isnan(x)]
        if x.size == 0:
            continue
        ref, cr = pysearch.reference(target, x)
        n += x.size
        for k, f in producers.items():
            err = ulp_errors(f(x), ref, cr)
            j = int(np.argmax(err))
            if err[j] > best[k][0]:
                best[k] = (float(err[j]), float(x[j]))
    log(f"  {target}: scanned {n} inputs ({n / 4278190082:.2%} of the non-NaN float32) in {time.time() - t0:.0f} s")
    return {k: (v[0], v[1], n) for k, v in best.items()}


def time_numpy(func, x: np.ndarray, elements: int, repeat: int) -> float:
    """Best-of-``repeat`` ns per element of a numpy ufunc writing into a preallocated array."""
    y = np.empty_like(x)
    reps = max(1, elements // x.size)
    best = math.inf
    with np.errstate(all="ignore"):
        func(x, out=y)
        for _ in range(repeat):
            t = time.thread_time()
            for _ in range(reps):
                func(x, out=y)
            best = min(best, (time.thread_time() - t) * 1e9 / (reps * x.size))
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--targets", nargs="+", default=["exp2", "exp", "log2", "log"], choices=sorted(LIBM))
    ap.add_argument("--stride", type=int, default=16,
                    help="score glibc/numpy on every STRIDE-th chunk of 2^22 bit patterns (1 = exhaustive)")
    ap.add_argument("--verify", action="store_true",
                    help="re-verify ours with pysearch.verify over every float32 (else library metadata)")
    ap.add_argument("--n", type=int, default=1 << 16, help="timing array length")
    ap.add_argument("--elements", type=int, default=1 << 18, help="elements per timing")
    ap.add_argument("--repeat", type=int, default=101)
    args = ap.parse_args(argv)
    if args.stride < 1:
        raise SystemExit("--stride must be >= 1")
    from pysearch import library

    frac = "every float32 bit pattern" if args.stride == 1 else f"every {args.stride}th chunk of 2^22 patterns"
    rows = []
    result = {}
    for target in args.targets:
        fn = library.get(target)
        ours = program_candidate(f"pysearch.library.{target}", f"ours_{target}", fn.program, fn.max_ulp,
                                 fn.verified, "evolved")
        glibc = libm_candidate(LIBM[target])
        bench = CBench([ours, glibc])
        x = timing_inputs(target, args.n)
        want = pysearch.evaluate(fn.program, x)
        assert (want.view(np.uint32) == bench.run(0, x).view(np.uint32)).all(), "exported C differs from pysearch"
        ns_ours, ns_glibc = bench.time_all(x, args.elements, args.repeat)
        ns_np = time_numpy(NUMPY[target], x, args.elements, args.repeat)

        if args.verify:
            t0 = time.time()
            st = pysearch.verify(fn.program, target, (-math.inf, math.inf))
            our_ulp, our_n, how = float(st.max_ulp), int(st.n_points), f"pysearch.verify, every float32 ({time.time() - t0:.0f} s)"
        else:
            our_ulp, our_n, how = fn.max_ulp, fn.n_points, f"library metadata ({fn.verified})"
        npf = NUMPY[target]

        def numpy_out(v, f=npf):
            with np.errstate(all="ignore"):
                return f(v)

        scan = scan_outputs(target, {"glibc": lambda v: bench.run(1, v), "numpy": numpy_out}, args.stride)
        vec = {True: ", loop vectorised", False: ", loop NOT vectorised", None: ""}[bench.vectorised[ours.cname]]
        rows.append({"function": target, "implementation": f"ours ({fn.ops} ops{vec})", "max ULP": our_ulp,
                     "inputs checked": f"{our_n} ({how})", "ns/elt": ns_ours, "ours speed-up": 1.0})
        rows.append({"function": target, "implementation": f"glibc {LIBM[target]}", "max ULP": scan["glibc"][0],
                     "inputs checked": f"{scan['glibc'][2]} ({frac})", "ns/elt": ns_glibc,
                     "ours speed-up": ns_glibc / ns_ours})
        rows.append({"function": target, "implementation": f"numpy {npf.__name__} float32", "max ULP": scan["numpy"][0],
                     "inputs checked": f"{scan['numpy'][2]} ({frac})", "ns/elt": ns_np,
                     "ours speed-up": ns_np / ns_ours})
        result[target] = (our_ulp, ns_glibc / ns_ours)
        print(format_table(rows[-3:], ["function", "implementation", "max ULP", "inputs checked", "ns/elt",
                                       "ours speed-up"]), flush=True)
    print()
    print(f"compiled: {bench.command}; timing: n={args.n}, {args.elements} elements per timing, best of {args.repeat}")
    print(format_table(rows, ["function", "implementation", "max ULP", "inputs checked", "ns/elt", "ours speed-up"]))
    if "exp2" not in result:
        print("RESULT exp2_full_range_max_ulp=nan exp2_speed_ratio_vs_glibc=nan")
        return 1
    u, r = result["exp2"]
    print(f"RESULT exp2_full_range_max_ulp={u:.4f} exp2_speed_ratio_vs_glibc={r:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
