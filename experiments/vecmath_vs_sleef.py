"""Full-range float32 vector math: pysearch.library against SLEEF u10, glibc and numpy, in one run.

Functions: exp, exp2, expm1, log, log2, log1p, tanh, sigmoid, erf, each a full-range kernel in
``pysearch.library`` (a function without one gets SLEEF / glibc / numpy rows only; the table says so).

Implementations, all compiled in this run with ``gcc -O3 -march=native -std=c11
-ffp-contract=off -fPIC`` into ONE shared object (``float32_speed.CBench``) and called over the
same arrays:

- ours: the library program exported by ``pysearch.export.to_c`` (checked bit for bit against
  ``pysearch.evaluate`` before timing), whose array loop is AVX-512 intrinsics on an AVX-512F/DQ
  CPU, AVX2 intrinsics on an AVX2+FMA one; on an AVX-512 CPU the AVX2 build (``-DPYS_NO_AVX512``)
  is timed too, and on every CPU the portable C loop (``-DPYS_NO_INTRINSICS``, which GCC
  vectorises);
- SLEEF 3.5 ``_u10`` (<= 1.0 ULP), ``Sleef_<f>f8_u10avx2`` over 8 floats at a time where the CPU
  has AVX2, and ``Sleef_<f>f16_u10avx512f`` where it has AVX-512F (read from /proc/cpuinfo);
- glibc's scalar ``<f>f`` called element by element (a plain -O3 loop);
- ours as Rust: the same programs exported by ``pysearch.export.export_many(..., "rust")`` as one
  module, whose ``NAME_slice`` loops LLVM vectorises (``rustc --edition 2021 --crate-type cdylib
  -C opt-level=3 -C target-cpu=native``), called through an ``extern "C"`` wrapper into which
  the slice loop is inlined, from a C candidate (checked bit for bit like the C export; skipped
  without rustc); the "vector" column gives the width of the wrapper's vector fma in the asm of
  the same build;
- sigmoid, which neither SLEEF nor glibc has, against ``1 / (1 + e^-x)`` built from their ``expf``
  (``COMPOSED``): SLEEF's vector ``expf`` u10 and an add and a divide in the same vector loop, glibc's
  ``expf`` likewise per element. That is the composition a user of those libraries writes; it is not
  <= 1 ULP itself (the rounded e^-x and 1 + e^-x add to the division's error: see its max ULP);
- numpy's float32 ufunc (timed in the same process, ``out=`` preallocated);
- ``pysearch.library.<f>(x, out=y)`` on a float32 array (the numpy-facing call into the Rust core's JIT),
  with ``out=`` preallocated as for numpy.

Inputs (``--n`` floats, default 2^16, in cache): ``uniform`` over the function's useful range and
``log-uniform`` (|x| = 2^u, u uniform; random sign where negative inputs are meaningful); the ranges
are printed. Timing: ``--rounds`` rounds; in each, every candidate is timed ``--repeat`` times
interleaved and its best counts (compiled code: CPU time of the thread, so time descheduled on a
busy machine does not count; numpy and pysearch.library: wall-clock, as they may use worker
threads). A ratio is the SLEEF time over ours in the same round (> 1: ours faster); the table gives
the median over rounds and every round's ratio.

Accuracy: ours is the exhaustive max ULP over every non-NaN float32 from the library metadata
(``pysearch.verify``, the Rust exhaustive path; ``--verify`` re-runs it); SLEEF, glibc and numpy
are scored with the same ULP measure (``full_range_vs_libm.scan_outputs``) over every
``--stride``-th chunk of 2^22 bit patterns (stated in the table).

    python experiments/vecmath_vs_sleef.py [--functions exp log] [--stride 64] [--rounds 7]

The speed-up table also gives the Rust export against SLEEF and against the exported C (its
intrinsics loop and its portable loop) in every round; the RESULT line is about the exported C.

Last line: ``RESULT vecmath_min_speedup_vs_sleef_u10=<x> vecmath_max_ulp=<u> vecmath_functions=<k>``:
the smallest median ratio against the fastest SLEEF u10 variant on this CPU over the functions
with a library kernel and a SLEEF u10 function (sigmoid's composed baseline is printed on its own
line, outside the minimum), both input sets; the largest exhaustive max ULP of the library kernels,
and how many there are. Without libsleef-dev the script says how to install it and exits 0 without a RESULT line.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import math
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pysearch  # noqa: E402
from float32_speed import Candidate, CBench, format_table, libm_candidate, program_candidate  # noqa: E402
from full_range_vs_libm import scan_outputs  # noqa: E402

def _scipy(name: str):
    """scipy.special's float32 ufunc ``name`` (the numpy-side baseline where numpy has none), or None without scipy."""
    try:
        from scipy import special
    except ImportError:
        return None
    return getattr(special, name)


def py_label(f) -> str:
    """The row label of a numpy-side ufunc: numpy's own or scipy.special's."""
    return f"{'numpy' if getattr(np, f.__name__, None) is f else 'scipy.special'} {f.__name__} float32"


#: function -> (SLEEF / glibc name or None, numpy float32 implementation, uniform range, log-uniform exponent range,
#:              whether the log-uniform inputs get random signs)
FUNCTIONS = {
    "exp": ("expf", np.exp, (-87.0, 88.0), (-20, 6.4), True),
    "exp2": ("exp2f", np.exp2, (-126.0, 127.0), (-20, 6.98), True),
    "log": ("logf", np.log, (1e-3, 1e3), (-126, 127), False),
    "log2": ("log2f", np.log2, (1e-3, 1e3), (-126, 127), False),
    "expm1": ("expm1f", np.expm1, (-20.0, 88.0), (-30, 6.4), True),
    "log1p": ("log1pf", np.log1p, (-0.5, 1e3), (-30, 100), False),
    "tanh": ("tanhf", np.tanh, (-9.0, 9.0), (-20, 3.2), True),
    "sigmoid": (None, _scipy("expit"), (-88.0, 88.0), (-20, 6.4), True),
    "erf": ("erff", _scipy("erf"), (-4.0, 4.0), (-20, 2.0), True),
}
#: functions SLEEF and glibc lack -> the function of theirs f that gives them as 1 / (1 + f(-x))
COMPOSED = {"sigmoid": "expf"}
SLEEF_INSTALL = "SLEEF not found: install it with `apt-get install libsleef-dev` (Debian/Ubuntu) and run again."


def cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def sleef_available() -> str | None:
    """Path of libsleef if the library and ``sleef.h`` are both there, else None."""
    lib = ctypes.util.find_library("sleef")
    cc = shutil.which("gcc") or shutil.which("cc")
    if lib is None or cc is None:
        return None
    probe = subprocess.run([cc, "-E", "-x", "c", "-"], input="#include <sleef.h>\n", capture_output=True, text=True)
    return lib if probe.returncode == 0 else None


def sleef_candidate(func: str, width: int, composed: str | None = None) -> Candidate:
    """SLEEF ``<func>`` u10 over ``width`` floats at a time (AVX2: 8, AVX-512F: 16), scalar u10 tail; with
    ``composed`` (a ``COMPOSED`` name) ``1 / (1 + <func>(-x))`` instead, vector and tail alike."""
    isa, vec, p = {8: ("avx2", "__m256", "_mm256"), 16: ("avx512f", "__m512", "_mm512")}[width]
    call = f"Sleef_{func}{width}_u10{isa}(v)"
    tail = f"Sleef_{func}_u10(x[i])"
    label = f"SLEEF {func}{width}_u10{isa}"
    if composed is not None:
        neg = f"Sleef_{func}{width}_u10{isa}({p}_sub_ps({p}_setzero_ps(), v))"
        call = f"{p}_div_ps({p}_set1_ps(1.0f), {p}_add_ps({p}_set1_ps(1.0f), {neg}))"
        tail = f"1.0f / (1.0f + Sleef_{func}_u10(-x[i]))"
        label = f"SLEEF 1/(1+{func}{width}_u10{isa}(-x))"
    cname = f"sleef_{composed or func}{width}"
    src = f"""#include <immintrin.h>
#include <stddef.h>
#include <sleef.h>
void {cname}_array(const float *restrict x, float *restrict y, size_t n) {{
    size_t i = 0;
    for (; i + {width} <= n; i += {width}) {{
        {vec} v = {p}_loadu_ps(x + i);
        {p}_storeu_ps(y + i, {call});
    }}
    for (; i < n; i++) y[i] = {tail};
}}
"""
    return Candidate(label, cname, src, None, math.nan, "", "sleef")


def composed_libm_candidate(name: str) -> Candidate:
    """``1 / (1 + f(-x))`` with glibc's scalar ``f = COMPOSED[name]``, element by element (a plain -O3 loop)."""
    func = COMPOSED[name]
    cname = f"libm_{name}"
    src = (f"#include <math.h>\n#include <stddef.h>\n"
           f"void {cname}_array(const float *restrict x, float *restrict y, size_t n) {{\n"
           f"    for (size_t i = 0; i < n; i++) y[i] = 1.0f / (1.0f + {func}(-x[i]));\n}}\n")
    return Candidate(f"glibc 1/(1+{func}(-x)) (scalar)", cname, src, None, math.nan, "", "libm")


RUST_FLAGS = ["--edition", "2021", "--crate-type", "cdylib", "-C", "opt-level=3", "-C", "target-cpu=native"]
RUST_LABEL = "ours, Rust export (LLVM-vectorised NAME_slice)"


def rust_library(names: list[str]) -> dict[str, str] | str:
    """The library kernels ``names`` as one exported Rust module with an ``extern "C"`` wrapper
    ``pys_rust_<name>_array`` over each ``<name>_approx_slice``, compiled into a cdylib that is loaded
    with RTLD_GLOBAL (the bench object's calls resolve against it). Returns, per name, what the asm of
    the same build says about the wrapper, into which the slice loop is inlined ("zmm"/"ymm"/"xmm"
    vector fma, else "NO"), or the reason it cannot be built."""
    from pysearch import library
    from pysearch.export import export_many

    rustc = shutil.which("rustc")
    if rustc is None:
        return "rustc not found"
    work = Path(tempfile.mkdtemp(prefix="pysearch_vecmath_rust_"))
    (work / "library.rs").write_text(export_many([(library.get(n), f"{n}_approx", None) for n in names], "rust"))
    lines = ['pub mod library { include!("library.rs"); }']
    for n in names:
        lines.append(f"""
#[no_mangle]
pub extern "C" fn pys_rust_{n}_array(x: *const f32, y: *mut f32, n: usize) {{
    // SAFETY: the benchmark passes two arrays of n floats that do not overlap.
    let (x, y) = unsafe {{ (std::slice::from_raw_parts(x, n), std::slice::from_raw_parts_mut(y, n)) }};
    library::{n}_approx_slice(x, y);
}}""")
    (work / "lib.rs").write_text("\n".join(lines) + "\n")
    so = work / "librs.so"
    r = subprocess.run([rustc, *RUST_FLAGS, "--emit", f"link={so},asm={work / 'lib.s'}", str(work / "lib.rs")],
                       capture_output=True, text=True, cwd=work)
    if r.returncode != 0:
        return f"rustc failed: {' '.join(r.stderr.split())[:300]}"
    ctypes.CDLL(str(so), mode=ctypes.RTLD_GLOBAL)
    asm = (work / "lib.s").read_text()
    vec = {}
    for n in names:
        m = re.search(rf"^pys_rust_{n}_array:$", asm, re.MULTILINE)  # the slice loop is inlined there
        body = asm[m.end():asm.index(".cfi_endproc", m.end())] if m else ""
        widths = [w for w in ("zmm", "ymm", "xmm") if re.search(rf"vfmadd\d+ps\t%{w}", body)]
        vec[n] = f"LLVM-vectorised ({widths[0]})" if widths else "NO"
    return vec


def rust_candidate(name: str, program, max_ulp: float, verified: str) -> Candidate:
    """The Rust export's ``<name>_approx_slice`` (through its ``extern "C"`` wrapper) as a bench candidate."""
    src = f"""#include <stddef.h>
void pys_rust_{name}_array(const float *x, float *y, size_t n);
void rust_{name}_array(const float *restrict x, float *restrict y, size_t n) {{ pys_rust_{name}_array(x, y, n); }}
"""
    return Candidate(RUST_LABEL, f"rust_{name}", src, program, max_ulp, verified, "rust")


def inputs(name: str, kind: str, n: int, seed: int) -> np.ndarray:
    _, _, (a, b), (ea, eb), signed = FUNCTIONS[name]
    rng = np.random.default_rng(seed)
    if kind == "uniform":
        return rng.uniform(a, b, n).astype(np.float32)
    x = np.exp2(rng.uniform(ea, eb, n))
    if signed:
        x *= rng.choice([-1.0, 1.0], n)
    if name == "log1p":
        x = np.where(rng.random(n) < 0.5, -np.exp2(rng.uniform(-30, -1, n)), x)
    return x.astype(np.float32)


def time_python(func, x: np.ndarray, elements: int, repeat: int) -> float:
    """Best-of-``repeat`` ns per element of ``func(x, y)``, wall-clock (``pysearch.library`` may run on worker
    threads, whose CPU time the calling thread's clock would not see)."""
    y = np.empty_like(x)
    reps = max(1, elements // x.size)
    best = math.inf
    with np.errstate(all="ignore"):
        func(x, y)
        for _ in range(repeat):
            t = time.perf_counter()
            for _ in range(reps):
                func(x, y)
            best = min(best, (time.perf_counter() - t) * 1e9 / (reps * x.size))
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--functions", nargs="+", default=list(FUNCTIONS), choices=list(FUNCTIONS))
    ap.add_argument("--stride", type=int, default=64,
                    help="score SLEEF/glibc/numpy on every STRIDE-th chunk of 2^22 bit patterns (1 = exhaustive)")
    ap.add_argument("--verify", action="store_true", help="re-verify ours over every float32 (minutes per function)")
    ap.add_argument("--n", type=int, default=1 << 16, help="timing array length")
    ap.add_argument("--elements", type=int, default=1 << 18, help="elements per timing")
    ap.add_argument("--repeat", type=int, default=15, help="timings per candidate in a round; the best counts")
    ap.add_argument("--rounds", type=int, default=7, help="rounds (ratios: median over rounds)")
    args = ap.parse_args(argv)
    if args.stride < 1:
        raise SystemExit("--stride must be >= 1")
    lib = sleef_available()
    if lib is None:
        print(SLEEF_INSTALL)
        return 0
    ctypes.CDLL(lib, mode=ctypes.RTLD_GLOBAL)  # the bench object's Sleef_* symbols resolve against it
    from pysearch import library

    flags = cpu_flags()
    widths = [w for w, f in ((8, "avx2"), (16, "avx512f")) if f in flags]
    if not widths:
        print("this CPU has neither AVX2 nor AVX-512F: no SLEEF vector variant to compare with")
        return 0
    frac = "every float32 bit pattern" if args.stride == 1 else f"every {args.stride}th chunk of 2^22 patterns"
    print(f"CPU: {'AVX-512F' if 16 in widths else 'AVX2'} (SLEEF variants: {', '.join(f'{w} lanes' for w in widths)}); "
          f"SLEEF {lib}")
    rows, summary, ratio_rows = [], [], []
    worst = {}
    command = ""
    with_kernel = [n for n in args.functions if n in library.names()]
    rust_vec = rust_library(with_kernel) if with_kernel else "no function with a library kernel"
    if isinstance(rust_vec, str):
        print(f"no Rust rows: {rust_vec}")
    for name in args.functions:
        cfunc, npf, *_ = FUNCTIONS[name]
        ours = library.get(name) if name in library.names() else None
        cands: list[Candidate] = []
        if ours is not None:
            cands.append(program_candidate("ours (exported C)", f"ours_{name}", ours.program, ours.max_ulp,
                                           ours.verified, "evolved"))
            variants = [("portable", "PYS_NO_INTRINSICS", "ours, portable C (-DPYS_NO_INTRINSICS)")]
            if 16 in widths:  # the same export without its AVX-512 kernel: what an AVX2 machine runs
                variants.insert(0, ("avx2", "PYS_NO_AVX512", "ours, AVX2 intrinsics (-DPYS_NO_AVX512)"))
            for tag, macro, label in variants:
                v = program_candidate(label, f"{tag}_{name}", ours.program, ours.max_ulp, ours.verified, tag)
                v.source = f"#define {macro} 1\n" + v.source
                cands.append(v)
            if isinstance(rust_vec, dict):
                cands.append(rust_candidate(name, ours.program, ours.max_ulp, ours.verified))
        if cfunc is not None:
            cands += [sleef_candidate(cfunc, w) for w in widths]
            cands.append(libm_candidate(cfunc, f"glibc {cfunc} (scalar)"))
        elif name in COMPOSED:
            cands += [sleef_candidate(COMPOSED[name], w, composed=name) for w in widths]
            cands.append(composed_libm_candidate(name))
        if not cands:
            print(f"{name}: no library kernel, no SLEEF or glibc function: skipped")
            continue
        bench = CBench(cands)
        command = bench.command
        idx = {c.cname: i for i, c in enumerate(cands)}
        sleef_idx = [i for i, c in enumerate(cands) if c.kind == "sleef"]
        py_fns: dict[str, object] = {}
        if npf is not None:
            py_fns[py_label(npf)] = lambda x, y, f=npf: f(x, out=y)
        if ours is not None:
            py_fns["pysearch.library (Rust core, numpy API)"] = lambda x, y, f=ours: f(x, out=y)

        # accuracy of the others over a stated sample
        producers = {c.label: (lambda v, i=i: bench.run(i, v)) for i, c in enumerate(cands) if c.kind != "evolved"}
        if npf is not None:
            producers[py_label(npf)] = lambda v, f=npf: f(v)
        if producers:
            with np.errstate(all="ignore"):
                scan = scan_outputs(name, producers, args.stride)
        else:
            scan = {}
        if ours is not None:
            if args.verify:
                t0 = time.time()
                st = pysearch.verify(ours.program, name, (-math.inf, math.inf))
                our_ulp, our_n = float(st.max_ulp), int(st.n_points)
                how = f"pysearch.verify, every float32 ({time.time() - t0:.0f} s)"
            else:
                our_ulp, our_n, how = ours.max_ulp, ours.n_points, f"library metadata ({ours.verified})"
            worst[name] = our_ulp

        for kind in ("uniform", "log-uniform"):
            x = inputs(name, kind, args.n, seed=1)
            if ours is not None:
                want = pysearch.evaluate(ours.program, x)
                for i, c in enumerate(cands):
                    if c.program is not None:
                        got = bench.run(i, x)
                        same = (want.view(np.uint32) == got.view(np.uint32)) | (np.isnan(want) & np.isnan(got))
                        assert same.all(), f"{name}: {c.label} differs from pysearch.evaluate"
            rounds = bench.time_rounds(x, args.elements, args.repeat, args.rounds)
            py = np.array([[time_python(f, x, args.elements, args.repeat) for f in py_fns.values()]
                           for _ in range(args.rounds)]).reshape(args.rounds, len(py_fns))
            allt = np.concatenate([rounds, py], axis=1)
            labels = [c.label for c in cands] + list(py_fns)
            rng_txt = (f"[{FUNCTIONS[name][2][0]:g}, {FUNCTIONS[name][2][1]:g}]" if kind == "uniform" else
                       f"|x| = 2^[{FUNCTIONS[name][3][0]:g}, {FUNCTIONS[name][3][1]:g}]")
            if ours is not None:
                io = idx[f"ours_{name}"]
                best_sleef = min(sleef_idx, key=lambda i: rounds[:, i].min()) if sleef_idx else None
            for j, lab in enumerate(labels):
                c = cands[j] if j < len(cands) else None
                if c is not None and c.program is not None:
                    ulp, checked = our_ulp, f"{our_n} ({how})"
                    if c.kind == "rust":
                        vec = rust_vec[name]
                    elif c.kind == "evolved" and {"avx512f", "avx512dq"} <= flags:
                        vec = "AVX-512 intrinsics"
                    elif c.kind in ("evolved", "avx2") and {"avx2", "fma"} <= flags:
                        vec = "AVX2 intrinsics"
                    else:
                        vec = {True: "GCC-vectorised", False: "NO", None: "?"}[bench.vectorised[c.cname]]
                elif lab == "pysearch.library (Rust core, numpy API)":
                    ulp, checked, vec = our_ulp, "same program as ours", "Rust core"
                else:
                    ulp, _, n_s = scan[lab]
                    checked, vec = f"{n_s} ({frac})", "-" if c is None or c.kind == "libm" else "SLEEF"
                row = {"function": name, "inputs": f"{kind} {rng_txt}", "implementation": lab, "max ULP": ulp,
                       "inputs checked": checked, "vector": vec, "ns/elt": float(allt[:, j].min())}
                if ours is not None:
                    per = allt[:, j] / allt[:, io]
                    row["ours speed-up"] = float(np.median(per))
                    row["per round"] = " ".join(f"{v:.2f}" for v in per)
                rows.append(row)
            if ours is not None and best_sleef is not None:
                per = rounds[:, best_sleef] / rounds[:, io]
                summary.append((name, kind, cands[best_sleef].label, float(np.median(per))))
                for i in sleef_idx:
                    p = rounds[:, i] / rounds[:, io]
                    ratio_rows.append({"function": name, "inputs": kind, "ours": "exported C", "vs": cands[i].label,
                                       "median": float(np.median(p)),
                                       "every round": " ".join(f"{v:.3f}" for v in p)})
                for tag, what in (("avx2", "AVX2 intrinsics"), ("portable", "portable C")):
                    if f"{tag}_{name}" in idx and sleef_idx:
                        ip = idx[f"{tag}_{name}"]
                        p = rounds[:, sleef_idx[0]] / rounds[:, ip]
                        ratio_rows.append({"function": name, "inputs": kind, "ours": what,
                                           "vs": cands[sleef_idx[0]].label, "median": float(np.median(p)),
                                           "every round": " ".join(f"{v:.3f}" for v in p)})
                if f"rust_{name}" in idx:
                    ir = idx[f"rust_{name}"]
                    others = [(cands[i].label, i) for i in sleef_idx]
                    others += [(what, idx[c]) for what, c in (("ours exported C", f"ours_{name}"),
                                                              ("ours portable C", f"portable_{name}")) if c in idx]
                    for what, i in others:
                        p = rounds[:, i] / rounds[:, ir]
                        ratio_rows.append({"function": name, "inputs": kind, "ours": "Rust export", "vs": what,
                                           "median": float(np.median(p)),
                                           "every round": " ".join(f"{v:.3f}" for v in p)})
                k = labels.index("pysearch.library (Rust core, numpy API)")
                if npf is not None:
                    kn = labels.index(py_label(npf))
                    p = allt[:, kn] / allt[:, k]
                    ratio_rows.append({"function": name, "inputs": kind, "ours": "pysearch.library", "vs": py_label(npf),
                                       "median": float(np.median(p)),
                                       "every round": " ".join(f"{v:.3f}" for v in p)})
        print(format_table([r for r in rows if r["function"] == name],
                           ["function", "inputs", "implementation", "max ULP", "inputs checked", "vector", "ns/elt",
                            "ours speed-up", "per round"]), flush=True)
        print()

    if isinstance(rust_vec, dict):
        command += f"; Rust: rustc {' '.join(RUST_FLAGS)}"
    print(f"compiled: {command}; n={args.n}, {args.elements} elements per timing, {args.rounds} rounds of the best of "
          f"{args.repeat}; ns/elt: best round; speed-up: the other's time over ours, median over rounds "
          "(> 1: ours faster). C timings are CPU time of the thread, numpy and pysearch.library rows "
          "wall-clock; on a shared machine all are noisy.")
    print(format_table(rows, ["function", "inputs", "implementation", "max ULP", "inputs checked", "vector", "ns/elt",
                              "ours speed-up", "per round"]))
    print()
    print("Speed-ups (the other's time over ours) in every round:")
    print(format_table(ratio_rows, ["function", "inputs", "ours", "vs", "median", "every round"]))
    if not summary:
        print("no function with a library kernel and a SLEEF variant: no RESULT")
        return 0
    # a composition such as 1/(1+expf(-x)) is not a SLEEF u10 function (nor <= 1 ULP): reported, not in the minimum
    direct = [s for s in summary if s[0] not in COMPOSED]
    for name, kind, label, ratio in summary:
        if name in COMPOSED:
            print(f"{name} ({kind} inputs): {ratio:.3f}x {label} (a composition, not a SLEEF function, and not "
                  f"<= 1 ULP: outside the RESULT minimum)")
    if not direct:
        print("no function with a library kernel and a SLEEF u10 function: no RESULT")
        return 0
    low = min(direct, key=lambda s: s[3])
    print(f"slowest relative to the fastest SLEEF u10: {low[0]} ({low[1]} inputs) at {low[3]:.3f}x {low[2]}")
    print(f"RESULT vecmath_min_speedup_vs_sleef_u10={low[3]:.4f} vecmath_max_ulp={max(worst.values()):.4f} "
          f"vecmath_functions={len(worst)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
