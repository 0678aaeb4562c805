"""Evaluator throughput: a population of random programs over 65,536 float32 points.

Measures pysearch's Rust evaluator (JIT-compiled kernels: AVX-512 where the CPU has it, and the
AVX2+FMA ones forced with PYSEARCH_JIT_ISA=avx2; the chunked interpreter alone, with
PYSEARCH_NO_JIT set) and vectorised numpy on the same programs in the same run, and compares
with this machine's float32 FMA peak measured by experiments/peak-fma.c in the same run.

The user path (``pysearch.evaluate``: program conversion, JIT compilation, output allocation) is
timed against the core call with a reused output (``_core.evaluate(..., out)``; the same
batch, so its compiled kernels come from the JIT's cache): on the same Program objects every
call, on new programs every call (constants nudged by an ulp: nothing cached serves them, as
for a new search population) and into a reused ``out=``. The parts of its overhead are timed
on their own.

    python experiments/bench_throughput.py [--programs 1000] [--points 65536] [--repeat 5]

The op mix is that of search-time populations: fma 30%, mul 20%, add 20%, sub 15%, div 5%,
and 2.5% each of min, max, abs, neg. The numpy baseline computes fma as a*b+c in float32 (two
roundings: cheaper than an exact fma, so the comparison favours numpy).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import pysearch
from pysearch import _core
from pysearch.program import OPCODE, Instr, Program, Ref

MIX = {"fma": 0.30, "mul": 0.20, "add": 0.20, "sub": 0.15, "div": 0.05,
       "min": 0.025, "max": 0.025, "abs": 0.025, "neg": 0.025}
ARITY = {"fma": 3, "mul": 2, "add": 2, "sub": 2, "div": 2, "min": 2, "max": 2, "abs": 1, "neg": 1}


def random_program(rng: np.random.Generator, n_instr: int) -> Program:
    """A program whose every instruction is live (each feeds the next), constants in [-2, 2]."""
    ops, probs = list(MIX), np.array(list(MIX.values()))
    instrs: list[Instr] = []
    for i in range(n_instr):
        op = rng.choice(ops, p=probs / probs.sum())
        args = []
        for j in range(ARITY[op]):
            if j == 0 and i > 0:
                args.append(Ref.val(i - 1))  # chain: keeps every instruction live
            else:
                r = rng.random()
                if r < 0.4 or i == 0 and r < 0.7:
                    args.append(Ref.input(0))
                elif r < 0.7 and i > 0:
                    args.append(Ref.val(int(rng.integers(0, i))))
                else:
                    args.append(Ref.const(float(np.float32(rng.uniform(-2, 2)))))
        instrs.append(Instr(str(op), tuple(args)))
    return Program(instrs)


def nudged(p: Program, r: int) -> Program:
    """A fresh Program object whose constants are moved ``r`` float32 ulps up: new content, so
    no cache (converted arrays, compiled kernels) serves it, as for a new search population."""
    def ref(a):
        if a.kind != "const":
            return a
        v = np.float32(a.value)
        for _ in range(r):
            v = np.nextafter(v, np.float32(np.inf))
        return Ref.const(float(v))
    return Program([Instr(i.op, tuple(ref(a) for a in i.args)) for i in p.instrs], p.inputs, p.dtype, p.output)


def numpy_eval(p: Program, x: np.ndarray) -> np.ndarray:
    """Straightforward vectorised numpy evaluation (one array per instruction)."""
    vals: list[np.ndarray] = []
    f32 = np.float32

    def get(a):
        if a.kind == "input":
            return x
        if a.kind == "value":
            return vals[a.index]
        return f32(a.value)

    for ins in p.instrs:
        a = [get(r) for r in ins.args]
        op = ins.op
        if op == "fma":
            v = a[0] * a[1] + a[2]
        elif op == "add":
            v = a[0] + a[1]
        elif op == "sub":
            v = a[0] - a[1]
        elif op == "mul":
            v = a[0] * a[1]
        elif op == "div":
            v = a[0] / a[1]
        elif op == "min":
            v = np.minimum(a[0], a[1])
        elif op == "max":
            v = np.maximum(a[0], a[1])
        elif op == "abs":
            v = np.abs(a[0])
        else:
            v = -a[0]
        vals.append(np.asarray(v, dtype=f32))
    return vals[p.output]


def measure_peak(runs: int = 3) -> float | None:
    """float32 FMA lane-ops per second on all cores, from experiments/peak-fma.c (best of ``runs``)."""
    src = Path(__file__).resolve().parent / "peak-fma.c"
    if not src.exists():
        return None
    with tempfile.TemporaryDirectory() as d:
        exe = Path(d) / "peak-fma"
        subprocess.run(["gcc", "-O2", "-march=native", "-fopenmp", str(src), "-o", str(exe)], check=True)
        outs = [subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout for _ in range(runs)]
    peaks = [float(line.split()[1]) for out in outs for line in out.splitlines()
             if line.startswith("peak_f32_fma_lane_ops_per_s")]
    return max(peaks) if peaks else None


def best_time(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--programs", type=int, default=1000)
    ap.add_argument("--points", type=int, default=65536)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    # the peak first, while no worker threads of ours (rayon, BLAS) are awake to compete with it
    peak = measure_peak()
    rng = np.random.default_rng(args.seed)
    progs = [random_program(rng, int(rng.integers(8, 17))) for _ in range(args.programs)]
    x = rng.uniform(-2, 2, args.points).astype(np.float32)
    instr_points = sum(p.ops for p in progs) * args.points

    # correctness first: the two agree wherever no fma is involved (numpy rounds fma twice)
    no_fma = [p for p in progs if all(i.op != "fma" for i in p.instrs)][:20]
    for p in no_fma:
        a, b = pysearch.evaluate(p, x), numpy_eval(p, x)
        assert np.array_equal(a, b, equal_nan=True), "evaluator and numpy disagree"

    pysearch.evaluate(progs[:4], x)  # warm up the thread pool
    # new programs for each repeat (constants nudged): nothing cached serves them
    fresh = [[nudged(p, r + 1) for p in progs] for r in range(args.repeat)]
    it = iter(fresh)
    t_fresh = best_time(lambda: pysearch.evaluate(next(it), x), args.repeat)
    t_rust = best_time(lambda: pysearch.evaluate(progs, x), args.repeat)
    compiled = [p.compile().as_tuple() for p in progs]
    mat = x.reshape(1, -1)
    t_alloc = best_time(lambda: _core.evaluate(compiled, mat), args.repeat)
    out = np.empty((len(progs), args.points), dtype=np.float32)
    t_user_out = best_time(lambda: pysearch.evaluate(progs, x, out=out), args.repeat)
    t_core = best_time(lambda: _core.evaluate(compiled, mat, out), args.repeat)
    isa = _core.jit_isa()
    t_avx2 = None
    if isa == "avx512":
        os.environ["PYSEARCH_JIT_ISA"] = "avx2"  # read at each call: the AVX2 kernels
        t_avx2 = best_time(lambda: _core.evaluate(compiled, mat, out), args.repeat)
        del os.environ["PYSEARCH_JIT_ISA"]
    os.environ["PYSEARCH_NO_JIT"] = "1"  # read at each call: the interpreter alone
    t_interp = best_time(lambda: _core.evaluate(compiled, mat, out), args.repeat)
    del os.environ["PYSEARCH_NO_JIT"]
    n_jit = sum(_core.jit_compiled(compiled))
    # the parts of the user path's overhead, each on its own
    fresh2 = [[nudged(p, args.repeat + r + 1) for p in progs] for r in range(2 * args.repeat)]
    it2 = iter(fresh2)
    t_convert = best_time(lambda: [p.compile().as_tuple() for p in next(it2)], args.repeat)
    t_convert_rust = best_time(lambda: _core.evaluate_programs(next(it2), OPCODE, mat[:, :16].copy()), args.repeat)
    t_convert_cached = best_time(lambda: [p.compile().as_tuple() for p in progs], args.repeat)
    t_jit = best_time(lambda: _core.jit_compiled(compiled), args.repeat)  # JIT compile (+ array reads)
    t_np_alloc = best_time(lambda: np.empty((len(progs), args.points), dtype=np.float32).fill(0), args.repeat)
    with np.errstate(all="ignore"):
        t_numpy = best_time(lambda: [numpy_eval(p, x) for p in progs], max(1, args.repeat // 2))

    rate_core = instr_points / t_core
    rate_alloc = instr_points / t_alloc
    rate_np = instr_points / t_numpy
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"interpreter isa={_core.isa()}, jit isa={isa}")
    print(f"workload: {args.programs} programs x {args.points} points, {instr_points / args.points / args.programs:.1f} live instructions/program")
    print()
    print(f"{'evaluator':34} {'seconds':>9} {'instr*points/s':>15} {'vs numpy':>9}")
    print(f"{'numpy (vectorised, one array/op)':34} {t_numpy:9.3f} {rate_np:15.3e} {1.0:9.1f}")
    for name, t in [("pysearch.evaluate, new programs", t_fresh), ("pysearch.evaluate (incl. compile)", t_rust),
                    ("pysearch.evaluate, out=", t_user_out)]:
        print(f"{name:34} {t:9.3f} {instr_points / t:15.3e} {instr_points / t / rate_np:9.1f}")
    print(f"{'_core.evaluate, new output array':34} {t_alloc:9.3f} {rate_alloc:15.3e} {rate_alloc / rate_np:9.1f}")
    print(f"{'_core.evaluate, reused output (out=)':34} {t_core:9.3f} {rate_core:15.3e} {rate_core / rate_np:9.1f}")
    if t_avx2 is not None:
        r2 = instr_points / t_avx2
        print(f"{'  same, AVX2 JIT (PYSEARCH_JIT_ISA)':34} {t_avx2:9.3f} {r2:15.3e} {r2 / rate_np:9.1f}")
    rate_interp = instr_points / t_interp
    print(f"{'  same, interpreter only (no JIT)':34} {t_interp:9.3f} {rate_interp:15.3e} {rate_interp / rate_np:9.1f}")
    print(f"\n{n_jit} of {len(progs)} programs ran as JIT-compiled machine code ({isa})")
    if t_avx2 is not None:
        print(f"AVX-512 JIT vs AVX2 JIT (core call, reused output): {t_avx2 / t_core:.2f}x faster")
    print("\nuser path vs core call (reused output), time ratios (1.00 = no overhead):")
    print(f"  pysearch.evaluate, same programs:  {t_rust / t_core:.2f}x")
    print(f"  pysearch.evaluate, new programs:   {t_fresh / t_core:.2f}x")
    print(f"  pysearch.evaluate, out=:           {t_user_out / t_core:.2f}x")
    print(f"  _core.evaluate, new output array:  {t_alloc / t_core:.2f}x")
    print("parts of the overhead (seconds per call):")
    print(f"  program conversion (compile().as_tuple()), new programs:   {t_convert:.4f}")
    print(f"  new programs read by Rust + JIT + 16 points (user path):   {t_convert_rust:.4f}")
    print(f"  program conversion, cached on the programs:                {t_convert_cached:.4f}")
    print(f"  JIT compilation of the batch (_core.jit_compiled):         {t_jit:.4f}")
    print(f"  a new {len(progs)} x {args.points} float32 array, written once:      {t_np_alloc:.4f}")
    frac = rate_core / peak if peak else float("nan")
    if peak:
        print(f"\nfloat32 FMA peak (peak-fma.c, all cores): {peak:.3e} lane-ops/s; evaluator at {100 * frac:.1f}% of it")
    print(f"RESULT throughput_ratio_vs_numpy={rate_core / rate_np:.2f} fraction_of_peak={frac:.4f} evals_per_s={rate_core:.4e} "
          f"jit_isa={isa} user_path_over_core={t_rust / t_core:.2f}")


if __name__ == "__main__":
    sys.exit(main())
