"""Floating-point mode and fast-math: what a user's process and compiler do to verified results.

Two reproductions (issue 16), each printing counts measured in this run:

(a) FTZ/DAZ in the process. A shared object built with ``gcc -ffast-math`` (GCC links
    ``crtfastmath.o``, whose constructor sets MXCSR's flush-to-zero and denormals-are-zero bits
    for the loading thread) is loaded in a child process before pysearch first computes, so the
    core's worker threads inherit the mode too. The child evaluates the shipped full-range
    ``log`` and ``exp2`` on subnormal inputs / subnormal results (JIT and interpreter),
    ``pysearch.verify`` of ``log`` over the positive subnormals, and the numpy reference
    interpreter; every output is compared bit for bit with a child that loads nothing.

(b) Compiler flags on exported C. ``exp2`` and ``log`` (full range) and ``exp2_reduced_5fma``
    ([0, 1)) are exported with :func:`pysearch.export.to_c`, compiled with each of
    ``FLAG_SETS`` (object compiled with the flags, linked without them, so the loading process
    keeps its own FP mode) and their outputs compared with :func:`pysearch.evaluate` over every
    float32 of the domain (``--stride 1``) or every 16th chunk of 2^22 of them (the default).
    Exports refuse ``-ffast-math`` and ``-Ofast`` (an ``#error``), which is reported; the
    fast-math row is then a build that opts in with ``-DPYSEARCH_ALLOW_FAST_MATH``.

    python experiments/fp_mode.py [--stride 16]

Last line: ``RESULT ftz_changed_outputs=<n> fastmath_refused=<0|1> safe_flags_changed=<n>
fastmath_exp2_changed=<n> fastmath_exp2_reduced_5fma_changed=<n>``.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

CHUNK = 1 << 22

_CHILD = r"""
import ctypes, json, sys
import numpy as np
if sys.argv[1] != "-":
    ctypes.CDLL(sys.argv[1])        # -ffast-math .so: its constructor sets FTZ/DAZ in this thread
import pysearch as ps
from pysearch import _core, interpreter, library

def bits(a):
    return np.asarray(a, np.float32).view(np.uint32).tolist()

sub = np.arange(1, 1 << 23, 97, dtype=np.uint32).view(np.float32)   # positive subnormal inputs
sub = np.concatenate([sub, -sub, np.array([0x116C2, 0x800116C2, 1], np.uint32).view(np.float32)])  # 1e-40 ...
e2 = np.arange(0xC2FC0000, 0xC315E666, 7, dtype=np.uint32).view(np.float32)  # exp2 on [-149.9, -126]: subnormal results
out = {}
for kind, env in (("jit", None), ("interpreter", "1")):
    import os
    if env: os.environ["PYSEARCH_NO_JIT"] = env
    out[f"log_{kind}"] = bits(ps.evaluate(library.get("log").program, sub))
    out[f"exp2_{kind}"] = bits(ps.evaluate(library.get("exp2").program, e2))
    out[f"lib_log_{kind}"] = bits(library.log(sub))
    st = ps.verify(library.get("log").program, "log", (1e-45, 1.1754942e-38))
    out[f"verify_{kind}"] = [st.max_ulp, st.frac_correctly_rounded]
    os.environ.pop("PYSEARCH_NO_JIT", None)
out["log_numpy_reference"] = bits(interpreter.run(library.get("log").program, sub))
out["exp2_numpy_reference"] = bits(interpreter.run(library.get("exp2").program, e2))
out["log_1e-40"] = float(library.log(1e-40))
print(json.dumps(out))
"""


def compiler() -> str:
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        sys.exit("fp_mode.py needs gcc (or cc)")
    return cc


def ftz_reproduction(tmp: Path) -> int:
    """(a): how many outputs change when a -ffast-math shared object is loaded first."""
    src = tmp / "ffm.c"
    src.write_text("float ffm_dummy(float a, float b) { return a * b + 1.0f; }\n")
    so = tmp / "libffm.so"
    subprocess.run([compiler(), "-O2", "-ffast-math", "-shared", "-fPIC", str(src), "-o", str(so)], check=True)
    runs = {}
    for label, arg in (("ieee", "-"), ("fast-math .so loaded", str(so))):
        r = subprocess.run([sys.executable, "-c", _CHILD, arg], capture_output=True, text=True, check=True)
        runs[label] = json.loads(r.stdout)
    a, b = runs["ieee"], runs["fast-math .so loaded"]
    print(f"(a) log(1e-40): {a['log_1e-40']!r} in IEEE mode, {b['log_1e-40']!r} with the -ffast-math .so loaded")
    total = 0
    for key in a:
        if key == "log_1e-40":
            continue
        if key.startswith("verify"):
            print(f"    {key:26s} max_ulp/frac_correct: {a[key]} vs {b[key]}")
            total += a[key] != b[key]
            continue
        n = sum(x != y for x, y in zip(a[key], b[key]))
        total += n
        print(f"    {key:26s} {n:7d} of {len(a[key])} outputs differ")
    return total


def export_library(fn_name: str, tmp: Path, cflags: list[str]) -> ctypes.CDLL | str:
    """The exported C of a library function built with ``cflags`` and loaded, or the compiler's error."""
    from pysearch import library
    from pysearch.export import to_c

    src = tmp / f"{fn_name}.c"
    src.write_text(to_c(library.get(fn_name), "k"))
    tag = "_".join(f.strip("-").replace("=", "") for f in cflags)
    obj, so = tmp / f"{fn_name}_{tag}.o", tmp / f"{fn_name}_{tag}.so"
    r = subprocess.run([compiler(), "-std=c11", "-fPIC", "-c", *cflags, str(src), "-o", str(obj)],
                       capture_output=True, text=True)
    if r.returncode:
        return r.stderr.strip().splitlines()[0] if r.stderr.strip() else "compilation failed"
    subprocess.run([compiler(), "-shared", str(obj), "-o", str(so), "-lm"], check=True)
    lib = ctypes.CDLL(str(so))
    lib.k_array.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
    return lib


def changed(lib: ctypes.CDLL, fn_name: str, chunks) -> tuple[int, int]:
    import pysearch
    from pysearch import library

    prog = library.get(fn_name).program
    n_diff = n = 0
    for x in chunks:
        y = np.empty_like(x)
        lib.k_array(x.ctypes.data, y.ctypes.data, x.size)
        want = pysearch.evaluate(prog, x)
        n_diff += int(np.count_nonzero(y.view(np.uint32) != want.view(np.uint32)))
        n += x.size
    return n_diff, n


#: Compiler flags whose exports are compared with pysearch.evaluate (all with -std=c11 -fPIC).
FLAG_SETS = [
    ["-O2", "-ffp-contract=off"],
    ["-O0"],
    ["-O3", "-march=native", "-ffp-contract=off"],
    ["-O3", "-march=native", "-ffp-contract=fast"],
    ["-O3", "-march=native", "-DNDEBUG"],
    ["-O2", "-ffast-math", "-DPYSEARCH_ALLOW_FAST_MATH"],
]
FUNCTIONS = ("exp2", "exp2_reduced_5fma", "log")


def fastmath_reproduction(tmp: Path, stride: int) -> tuple[int, dict]:
    """(b): whether exports refuse -ffast-math, and how many outputs each flag set changes."""
    from pysearch import _core, library

    refused = {f: export_library("exp2", tmp, f.split()) for f in ("-O2 -ffast-math", "-Ofast")}
    for f, r in refused.items():
        print(f"(b) exported exp2 with {f}: {'refused: ' + r if isinstance(r, str) else 'compiled'}")
    counts = {}

    def chunks(fn_name):
        lo, hi = _core.float32_key_range(*(np.float32(v) for v in library.get(fn_name).domain))
        for s in range(lo, hi + 1, CHUNK * stride):
            yield _core.float32_from_keys(s, min(CHUNK, hi + 1 - s))

    for fn_name in FUNCTIONS:
        for fl in FLAG_SETS:
            label = " ".join(fl)
            if "-ffast-math" in fl and not all(isinstance(r, str) for r in refused.values()):
                fl = [f for f in fl if f != "-DPYSEARCH_ALLOW_FAST_MATH"]  # the export before the guard
            lib = export_library(fn_name, tmp, fl)
            if isinstance(lib, str):
                raise SystemExit(f"{fn_name} {label}: {lib}")
            d, n = changed(lib, fn_name, chunks(fn_name))
            print(f"    {fn_name:18s} {label:50s} {d:10d} of {n} outputs differ from pysearch.evaluate")
            counts[(fn_name, label)] = d
    what = "every float32 of the domain" if stride == 1 else f"every {stride}th chunk of {CHUNK} float32 of the domain"
    print(f"    (inputs: {what}, -inf..inf for exp2 and log; NaN outputs compared by bit pattern)")
    fast = " ".join(FLAG_SETS[-1])
    safe = sum(v for (f, lab), v in counts.items() if "-ffast-math" not in lab)
    return int(all(isinstance(r, str) for r in refused.values())), {
        "exp2": counts[("exp2", fast)], "exp2_reduced_5fma": counts[("exp2_reduced_5fma", fast)], "safe": safe}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stride", type=int, default=16, help="every STRIDE-th chunk of 2^22 inputs (1: all)")
    args = ap.parse_args()
    if args.stride < 1:
        sys.exit("--stride must be >= 1")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        ftz = ftz_reproduction(tmp)
        refused, counts = fastmath_reproduction(tmp, args.stride)
    print(f"RESULT ftz_changed_outputs={ftz} fastmath_refused={refused} safe_flags_changed={counts['safe']} "
          f"fastmath_exp2_changed={counts['exp2']} fastmath_exp2_reduced_5fma_changed={counts['exp2_reduced_5fma']}")


if __name__ == "__main__":
    main()
