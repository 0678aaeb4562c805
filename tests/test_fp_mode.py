"""Verified means verified in the user's process: the floating-point mode is enforced (issue 16).

A shared object built with ``gcc -ffast-math`` sets flush-to-zero and denormals-are-zero in
MXCSR when it is loaded (GCC links ``crtfastmath.o`` into it); ``fesetround`` changes the
rounding. Each is done in a child process (so this suite never runs in such a mode) before
pysearch computes anything, so the core's worker threads start in that mode too; the child then
checks ``ps.evaluate``, ``ps.verify``, the library callables and the numpy reference interpreter
bit for bit against values this process computed first, on subnormal inputs and subnormal
results, JIT and interpreter, with several worker threads. Exported C refuses ``-ffast-math``.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import pysearch as ps
from pysearch import _core, interpreter, library
from pysearch.export import export_many, to_c, to_rust

X86 = platform.machine().lower() in ("x86_64", "amd64")
GCC = shutil.which("gcc")
needs_x86_gcc = pytest.mark.skipif(not (X86 and GCC and sys.platform.startswith("linux")),
                                   reason="needs x86_64 Linux and gcc")

FTZ, DAZ, ROUNDING = 1 << 15, 1 << 6, 3 << 13


def _inputs() -> dict[str, np.ndarray]:
    """Subnormal inputs (log) and inputs with subnormal results (exp2), with a few normal ones."""
    sub = np.arange(1, 1 << 23, 4099, dtype=np.uint32).view(np.float32)
    # from bit patterns: a child in FTZ/DAZ mode would flush 1e-40 to 0 converting it itself
    extra = np.array([0x000116C2, 1, 0x007FFFFF, 0x3F400000, 0x40400000], np.uint32).view(np.float32)
    sub = np.concatenate([sub, -sub, extra])
    # -126 (0xc2fc0000) to -149.9 (0xc315e666): subnormal exp2; then -0.5, 0.5, 10.25
    e2 = np.concatenate([np.arange(0xC2FC0000, 0xC315E666, 331, dtype=np.uint32),
                         np.array([0xBF000000, 0x3F000000, 0x41240000], np.uint32)]).view(np.float32)
    return {"log": sub, "exp2": e2}


#: (program, target, domain) checked exhaustively: subnormal inputs, subnormal results.
VERIFY = [("log", "log", (1e-45, 2e-39)), ("exp2", "exp2", (-149.5, -126.0))]


def _expected() -> dict:
    """What the functions give in IEEE mode, computed in this process (checked to be in it)."""
    mode = _core.fp_control()
    assert mode is not None and mode & (FTZ | DAZ | ROUNDING) == 0, f"the test process is not in IEEE mode: {mode:#x}"
    xs = _inputs()
    out = {}
    for name, x in xs.items():
        out[f"evaluate_{name}"] = ps.evaluate(library.get(name).program, x)
        out[f"interpreter_{name}"] = interpreter.run(library.get(name).program, x)
        out[f"library_{name}"] = library.get(name)(x)
        assert (out[f"evaluate_{name}"].view(np.uint32) == out[f"interpreter_{name}"].view(np.uint32)).all()
    # the inputs really are subnormal / give subnormal results
    assert np.count_nonzero(np.abs(out["evaluate_exp2"]) < np.float32(2.0**-126)) > 3000
    assert np.count_nonzero(np.abs(xs["log"]) < np.float32(2.0**-126)) > 4000
    return out


_CHILD = r"""
import ctypes, json, os, sys
import numpy as np
mode, so, d = sys.argv[1], sys.argv[2], sys.argv[3]
if mode == "ftz":
    ctypes.CDLL(so)                                   # crtfastmath's constructor: FTZ | DAZ
else:
    libm = ctypes.CDLL("libm.so.6")
    assert libm.fesetround(0xC00) == 0                # FE_TOWARDZERO
import pysearch as ps
from pysearch import _core, interpreter, library
from test_fp_mode import VERIFY, _inputs

before = _core.fp_control()
tiny = np.float32(2.0**-126)
with np.errstate(all="ignore"):
    raw = [float(tiny * np.float32(0.5)), float(np.float32(1) + np.float32(1.5 * 2.0**-24))]
with _core.ieee_mode():
    ieee = [float(tiny * np.float32(0.5)), float(np.float32(1) + np.float32(1.5 * 2.0**-24))]
got = {"mode": before, "raw": raw, "ieee": ieee, "verify": {}}
arrays = {}
for path, env in (("jit", None), ("interpreter", "1")):
    if env:
        os.environ["PYSEARCH_NO_JIT"] = env
    for name, x in _inputs().items():
        fn = library.get(name)
        arrays[f"{path}_evaluate_{name}"] = ps.evaluate(fn.program, x)
        arrays[f"{path}_library_{name}"] = fn(x)
    got[f"{path}_log_scalar"] = library.log(1e-40)
    for prog, target, dom in VERIFY:
        got["verify"][f"{path}_{prog}"] = ps.verify(library.get(prog).program, target, dom).to_dict()
    os.environ.pop("PYSEARCH_NO_JIT", None)
for name, x in _inputs().items():
    arrays[f"interpreter.run_{name}"] = interpreter.run(library.get(name).program, x)
got["after"] = _core.fp_control()
# a forked child (the core starts a fresh worker pool there), still in the inherited mode
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(r)
    y = ps.evaluate(library.get("log").program, _inputs()["log"])
    os.write(w, y.tobytes())
    os._exit(0)
os.close(w)
with os.fdopen(r, "rb") as f:
    arrays["forked_evaluate_log"] = np.frombuffer(f.read(), np.float32)
assert os.waitpid(pid, 0)[1] == 0
np.savez(os.path.join(d, "got.npz"), **arrays)
print(json.dumps(got))
"""


@pytest.fixture(scope="module")
def fast_math_so(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("ffm")
    (d / "ffm.c").write_text("float pys_test_ffm(float a, float b) { return a * b + 1.0f; }\n")
    so = d / "libffm.so"
    subprocess.run([GCC, "-O2", "-ffast-math", "-shared", "-fPIC", str(d / "ffm.c"), "-o", str(so)], check=True)
    return so


@needs_x86_gcc
@pytest.mark.parametrize("mode", ["ftz", "round"])
def test_core_and_library_compute_in_ieee_mode_whatever_the_process_set(mode, fast_math_so, tmp_path):
    """FTZ/DAZ from a -ffast-math .so (or round toward zero) in the process, workers included:
    evaluate, verify, library callables and the reference interpreter give the IEEE values."""
    want = _expected()
    want_verify = {f"{path}_{p}": ps.verify(library.get(p).program, t, dom).to_dict()
                   for path in ("jit", "interpreter") for p, t, dom in VERIFY}
    env = {**os.environ, "RAYON_NUM_THREADS": "3", "PYTHONPATH": os.pathsep.join(
        [str(Path(__file__).parent), str(Path(ps.__file__).parents[1]), os.environ.get("PYTHONPATH", "")])}
    env.pop("PYSEARCH_NO_JIT", None)
    r = subprocess.run([sys.executable, "-c", _CHILD, mode, str(fast_math_so), str(tmp_path)],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(r.stdout)
    # the mode really was in force in the child, and is still after pysearch's calls
    if mode == "ftz":
        assert got["mode"] & (FTZ | DAZ) == FTZ | DAZ and got["after"] & (FTZ | DAZ) == FTZ | DAZ
        assert got["raw"][0] == 0.0 and got["ieee"][0] == 2.0**-127  # numpy flushes; not under ieee_mode
    else:
        assert got["mode"] & ROUNDING == ROUNDING and got["after"] & ROUNDING == ROUNDING
        assert got["raw"][1] == 1.0 and got["ieee"][1] == 1 + 2.0**-23
    with np.load(tmp_path / "got.npz") as arrays:
        for key in arrays.files:
            what, name = key.rsplit("_", 1)
            ref = want["interpreter_" + name if what == "interpreter.run" else
                       ("library_" if "library" in what else "evaluate_") + name]
            bad = np.count_nonzero(arrays[key].view(np.uint32) != ref.view(np.uint32))
            assert bad == 0, f"{mode}: {key}: {bad} of {ref.size} outputs differ from IEEE mode"
    assert got["jit_log_scalar"] == got["interpreter_log_scalar"] == float(library.log(1e-40)) != float("-inf")
    assert got["verify"] == want_verify


def test_ieee_mode_context_restores_the_threads_mode():
    """ieee_mode() is IEEE inside (nested too) and gives back the mode it found, flags included."""
    before = _core.fp_control()
    with _core.ieee_mode() as m:
        inside = _core.fp_control()
        with m:
            assert _core.fp_control() == inside
    assert _core.fp_control() == before or before is None
    if before is not None:
        assert inside & (FTZ | DAZ | ROUNDING) == 0
    with pytest.raises(ZeroDivisionError), _core.ieee_mode():
        1 / 0  # exceptions pass through
    assert _core.fp_control() == before


# ------------------------------------------------------------------------------------- exports
def _compile(src: Path, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run([GCC, "-std=c11", "-Wall", "-Wextra", "-Werror", "-c", *flags, str(src),
                           "-o", str(src.with_suffix(".o"))], capture_output=True, text=True)


@pytest.mark.skipif(GCC is None, reason="needs gcc")
def test_exported_c_refuses_fast_math_unless_opted_in(tmp_path):
    """-ffast-math and -Ofast stop the build with the guard's message naming the flag; the
    opt-in macro builds it; safe flags build it; several exports carry the guard once."""
    src = tmp_path / "exp2.c"
    src.write_text(to_c(library.get("exp2"), "k_exp2"))
    for flags in (["-O2", "-ffast-math"], ["-Ofast"], ["-O2", "-ffinite-math-only"]):
        r = _compile(src, *flags)
        assert r.returncode != 0, flags
        assert "#error" in r.stderr and "pysearch export: compiled with -ff" in r.stderr, r.stderr
        assert "PYSEARCH_ALLOW_FAST_MATH" in r.stderr
    r = _compile(src, "-O2", "-ffast-math", "-DPYSEARCH_ALLOW_FAST_MATH")
    assert r.returncode == 0, r.stderr
    for flags in (["-O3", "-march=native", "-ffp-contract=off"], ["-O3", "-ffp-contract=fast"], ["-O0"],
                  ["-O2", "-DNDEBUG"]):
        r = _compile(src, *flags)
        assert r.returncode == 0, (flags, r.stderr)
    many = export_many([(library.get("exp2"), "k_exp2", None), (library.get("log"), "k_log", None)], "c")
    assert many.count("#error") == 3 and many.count("#define PYS_FP_MODE") == 1
    (tmp_path / "many.c").write_text(many)
    assert _compile(tmp_path / "many.c", "-O2").returncode == 0
    assert _compile(tmp_path / "many.c", "-O2", "-ffast-math").returncode != 0
    # `cat a.c b.c`: each file has the block, compiled once
    (tmp_path / "cat.c").write_text(src.read_text() + to_c(library.get("log"), "k_log"))
    r = _compile(tmp_path / "cat.c", "-O2")
    assert r.returncode == 0, r.stderr


_C_MAIN = r"""
#include <stdio.h>
float k_exp2(float x);
int main(int argc, char **argv) {
    (void)argv;
    if (argc > 1) { unsigned m; __asm__ volatile("stmxcsr %0" : "=m"(m)); m |= 0x8040u; __asm__ volatile("ldmxcsr %0" :: "m"(m)); }
    printf("%a\n", (double)k_exp2(-140.5f)); /* a subnormal result */
    return 0;
}
"""


@needs_x86_gcc
def test_exported_c_checks_the_mode_in_debug_builds(tmp_path):
    """Without NDEBUG the export asserts the thread is not in FTZ/DAZ; with NDEBUG it does not check."""
    (tmp_path / "k.c").write_text(to_c(library.get("exp2"), "k_exp2"))
    (tmp_path / "main.c").write_text(_C_MAIN)
    want = float(library.exp2(-140.5))
    assert 0 < want < 2.0**-126
    for flags, fails in ((["-O2"], True), (["-O2", "-DNDEBUG"], False)):
        exe = tmp_path / ("debug" if fails else "release")
        subprocess.run([GCC, "-std=c11", *flags, str(tmp_path / "main.c"), str(tmp_path / "k.c"), "-o", str(exe), "-lm"],
                       check=True)
        ok = subprocess.run([str(exe)], capture_output=True, text=True)
        assert ok.returncode == 0 and float.fromhex(ok.stdout.strip()) == want
        ftz = subprocess.run([str(exe), "ftz"], capture_output=True, text=True)
        if fails:
            assert ftz.returncode != 0 and "floating-point mode is not round-to-nearest" in ftz.stderr
        else:
            assert ftz.returncode == 0 and float.fromhex(ftz.stdout.strip()) == 0.0  # what FTZ does


@pytest.mark.skipif(shutil.which("rustc") is None or not X86, reason="needs rustc on x86_64")
def test_exported_rust_checks_the_mode_in_debug_builds(tmp_path):
    """The Rust export documents its mode and panics in a debug build run under FTZ/DAZ."""
    code = to_rust(library.get("log"), "k_log")
    assert "Floating-point mode" in code and "no fast-math flag" in code
    (tmp_path / "main.rs").write_text(f'mod k {{ include!("k.rs"); }}\n' + r"""
fn main() {
    if std::env::args().count() > 1 {
        let mut m: u32 = 0;
        unsafe {
            std::arch::asm!("stmxcsr [{}]", in(reg) &mut m);
            m |= 0x8040;
            std::arch::asm!("ldmxcsr [{}]", in(reg) &m);
        }
    }
    println!("{}", k::k_log(1e-40).to_bits());
}
""")
    (tmp_path / "k.rs").write_text(code)
    exe = tmp_path / "main"
    subprocess.run(["rustc", "--edition", "2021", "-C", "debug-assertions=on", "-C", "opt-level=1", "-o", str(exe),
                    str(tmp_path / "main.rs")], check=True, cwd=tmp_path)
    ok = subprocess.run([str(exe)], capture_output=True, text=True)
    assert ok.returncode == 0 and int(ok.stdout) == int(np.float32(library.log(1e-40)).view(np.uint32))
    ftz = subprocess.run([str(exe), "ftz"], capture_output=True, text=True)
    assert ftz.returncode != 0 and "not round-to-nearest without FTZ/DAZ" in ftz.stderr
