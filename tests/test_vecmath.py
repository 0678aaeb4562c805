"""The vector paths of the C export (pysearch/export/c_simd.py and the constant min/max selects of
pysearch/export/c.py), the Rust export's slice loop (pysearch/export/rust.py) and the vecmath
benchmark's harness: bit for bit with pysearch.evaluate."""

from __future__ import annotations

import ctypes
import importlib.util
import math
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import pysearch
from pysearch import library
from pysearch.export import c_simd, export_many, to_c, to_rust
from pysearch.export.common import Plan
from pysearch.ops import OPS
from pysearch.program import parse

ROOT = Path(__file__).resolve().parents[1]
GCC = shutil.which("gcc")
RUSTC = shutil.which("rustc")
X86 = platform.machine() in ("x86_64", "AMD64")


# Programs whose min/max/ldexp take a constant operand: each specialised form, and the signed-zero
# and NaN constants that must keep the general form.
CONST_PROGRAMS = {
    "min_c": "v = min x 2.5", "min_c_first": "v = min -3 x", "max_c": "v = max x -104",
    "min_pz": "v = min x 0", "min_nz": "v = min x -0", "max_pz": "v = max x 0", "max_nz": "v = max -0 x",
    "min_nan": "v = min x nan", "max_inf": "v = max x inf",
    "ldexp_c": "v = ldexp x 300", "ldexp_frac": "v = ldexp x -0.5", "ldexp_big": "v = ldexp x -1e9",
    "ldexp_nan": "v = ldexp x nan", "ldexp_const_a": "v = ldexp 3 x",
    "clamp_rint": "a = max x -151\nb = min a 129\nn = rint b\nf = sub b n\nv = ldexp f n",
    "floor_getexp": "a = floor x\nb = getexp x\nc = getmant x\nd = fma a b c\nv = min d x",
    # exponents the exporter bounds (c_simd.ranges): with and without the NaN select, integral or not
    "bounded_const_a": "a = max x -200\nb = min a 200\nn = rint b\nv = ldexp 3 n",
    "bounded_frac": "a = max x -252.9\nb = min a 254.9\nv = ldexp x b",
    "bounded_floor": "a = mul x 0.5\nb = max a -252\nc = min b 254\nd = floor c\ne = mul x 1e-30\nv = ldexp e d",
    "bounded_two_inputs": "inputs x, y\na = max y -252.9\nb = min a 254.9\nn = add b 0.5\nv = ldexp x n",
}


def _inputs(n_random: int = 1 << 14) -> np.ndarray:
    specials = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0, 0.5, -0.5, 1.5, 2.5, -2.5, 2.0, 3.0,
                         -3.0, 2.0**-149, -(2.0**-149), 2.0**-126, 1e-40, -1e-40, 3.4028234663852886e38,
                         -3.4028234663852886e38, 88.7, -103.9, 128.0, -150.0, -149.5, 129.0, -104.0, 300.0, -300.0,
                         277.0, -277.5, 8388608.0, 8388609.0, -8388609.0, 1e30, -1e30], dtype=np.float32)
    rng = np.random.default_rng(5)
    bits = rng.integers(0, 2**32, n_random, dtype=np.uint64).astype(np.uint32).view(np.float32)
    busy = rng.uniform(-300, 300, n_random).astype(np.float32)
    near = rng.uniform(-5, 5, n_random).astype(np.float32)  # where erf's pieces meet (0.8, 2.4, 3.96)
    # log1p's window ends and the neighbours of -1 (float32 values, written as exact sums)
    edges = np.array([0.5 - 2.0**-25, 0.5 - 3 * 2.0**-25, -0.25 + 2.0**-26, -0.25 - 2.0**-25, -1 + 2.0**-24,
                      -1 - 2.0**-23], dtype=np.float32)
    # an odd length: the AVX-512 loop's masked tail is used
    return np.concatenate([specials, bits, busy, near, edges, specials[:7]])


def _op_programs() -> dict:
    """The constant-operand forms (``CONST_PROGRAMS``) and every float32 op applied to its inputs, by name."""
    progs: dict[str, object] = {f"c_{k}": parse(v + "\n" if v.startswith("inputs") else f"inputs x\n{v}\n")
                                for k, v in CONST_PROGRAMS.items()}
    for op in OPS:
        if "float32" in op.dtypes:
            names = ("x", "y", "z")[: op.arity]
            progs[f"op_{op.name}"] = parse(f"inputs {', '.join(names)}\nv = {op.name} {' '.join(names)}\n")
    return progs


def _columns(prog, x: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """Input columns for ``prog``: ``x`` for one input; with more, every pair of the 38 special values first,
    then permutations of ``x``."""
    if len(prog.inputs) == 1:
        return [x]
    sp = x[:38]
    pairs = [np.repeat(sp, sp.size), np.tile(sp, sp.size)]
    cols = [np.concatenate([pairs[0], x]), np.concatenate([pairs[1], rng.permutation(x)])]
    cols += [np.concatenate([rng.permutation(cols[0][:sp.size ** 2]), rng.permutation(x)])] * (len(prog.inputs) - 2)
    return cols


def _native_macros() -> str:
    if GCC is None:
        return ""
    r = subprocess.run([GCC, "-march=native", "-dM", "-E", "-x", "c", "-"], input="", capture_output=True, text=True)
    return r.stdout if r.returncode == 0 else ""


MACROS = _native_macros()
HAS_AVX512 = "__AVX512F__" in MACROS and "__AVX512DQ__" in MACROS
HAS_AVX2 = "__AVX2__" in MACROS and "__FMA__" in MACROS
#: build -> (extra C flags, what the host needs to run it)
MODES = {
    "avx512": ([], HAS_AVX512),
    "avx2": (["-DPYS_NO_AVX512"], HAS_AVX2),
    "portable": (["-DPYS_NO_INTRINSICS"], True),
}


def _compile(programs: dict[str, object], tmp_path: Path, flags: list[str]) -> ctypes.CDLL:
    """The programs' C exports as ONE translation unit (the helpers' guards let them share it) in a
    shared object (gcc -O3 -march=native, warnings are errors)."""
    src = tmp_path / "all.c"
    src.write_text("".join(to_c(prog, name) for name, prog in programs.items()))
    so = tmp_path / "k.so"
    r = subprocess.run([GCC, "-O3", "-march=native", "-std=c11", "-ffp-contract=off", "-fPIC", "-shared", "-Wall",
                        "-Wextra", "-Werror", *flags, "-o", str(so), str(src), "-lm"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    return ctypes.CDLL(str(so))


def _run_array(lib: ctypes.CDLL, name: str, cols: list[np.ndarray]) -> np.ndarray:
    fp = ctypes.POINTER(ctypes.c_float)
    cols = [np.ascontiguousarray(c, dtype=np.float32) for c in cols]
    out = np.empty_like(cols[0])
    fn = getattr(lib, f"{name}_array")
    fn.argtypes = [fp] * (len(cols) + 1) + [ctypes.c_size_t]
    fn(*[c.ctypes.data_as(fp) for c in cols], out.ctypes.data_as(fp), out.size)
    return out


def _assert_bit_exact(name: str, got: np.ndarray, want: np.ndarray, cols: list[np.ndarray]) -> None:
    same = (got.view(np.uint32) == want.view(np.uint32)) | (np.isnan(got) & np.isnan(want))
    if not same.all():
        j = int(np.argmin(same))
        raise AssertionError(f"{name}: inputs {[float(c[j]) for c in cols]}: compiled code gives {got[j]!r}, "
                             f"pysearch.evaluate {want[j]!r} ({int((~same).sum())} mismatches)")


def test_every_float32_op_has_an_avx512_form():
    """Every op a float32 program can use has an intrinsics template, so float32 exports get the AVX-512 loop."""
    float32_ops = {op.name for op in OPS if "float32" in op.dtypes}
    assert float32_ops <= c_simd.OPS, float32_ops - c_simd.OPS
    assert c_simd.supported(Plan(library.get("log").program))


def test_float64_exports_have_no_intrinsics():
    src = to_c(parse("dtype float64\ninputs x\nv = fma x 2 1\n"), "k")
    assert "_mm512" not in src and "PYS_NO_INTRINSICS" not in src


ISA_FLAGS = {"avx512": ["-mavx512f", "-mavx512dq", "-mfma"], "avx2": ["-march=haswell"]}
ISA_ASM = {"avx512": ("%zmm", {"exp": ["vscalefps", "vrndscaleps", "vfmadd"], "log": ["vgetexpps", "vgetmantps"],
                               "tanh": ["vscalefps", "vrndscaleps", "vdivps", "vfmadd"],
                               "sigmoid": ["vscalefps", "vrndscaleps", "vdivps", "vfmadd"],
                               "log1p": ["vgetexpps", "vscalefps", "vfmadd"]}),
           "avx2": ("%ymm", {"exp": ["vroundps", "vpslld", "vfmadd"], "log": ["vpsrld", "vblendvps", "vfmadd"],
                             "tanh": ["vroundps", "vpslld", "vdivps", "vfmadd"],
                             "sigmoid": ["vroundps", "vpslld", "vdivps", "vfmadd"],
                             "log1p": ["vpsrld", "vpslld", "vfmadd"]})}


@pytest.mark.skipif(GCC is None or not X86, reason="needs gcc on x86-64")
@pytest.mark.parametrize("isa", list(ISA_FLAGS))
@pytest.mark.parametrize("kernel", ["exp", "log", "tanh", "sigmoid", "log1p"])
def test_intrinsics_loop_compiles_to_vector_code(tmp_path, kernel, isa):
    """For AVX-512F/DQ (-mavx512f -mavx512dq) and for AVX2 alone (-march=haswell) the array loop is
    vector code of that width with the expected instructions and no calls (the host need not run it)."""
    src = tmp_path / "k.c"
    src.write_text(to_c(library.get(kernel).program, "k"))
    asm = tmp_path / "k.s"
    # -DNDEBUG: without it the entry's FP-mode check (export.c FP_MODE) adds an __assert_fail call
    # outside the loop, which the "no calls" check below would trip over.
    r = subprocess.run([GCC, "-O3", *ISA_FLAGS[isa], "-std=c11", "-ffp-contract=off", "-fPIC", "-DNDEBUG",
                        "-Wall", "-Wextra", "-Werror", "-S", "-o", str(asm), str(src)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    text = asm.read_text()
    loop = text[text.index("k_array:"):]
    reg, want = ISA_ASM[isa]
    assert "call" not in loop and reg in loop
    assert all(w in loop for w in want[kernel]), [w for w in want[kernel] if w not in loop]
    if isa == "avx2":
        assert "%zmm" not in loop and "{%k" not in loop  # no AVX-512 instruction slipped in


@pytest.mark.skipif(GCC is None, reason="gcc is not installed")
@pytest.mark.parametrize("mode", list(MODES))
def test_array_loops_are_bit_exact(tmp_path, mode):
    """Every float32 op (every pair of special values for two operands), min/max/ldexp with constant
    operands (specialised or not) and the library's full-range kernels: the array loop of each build
    (AVX-512 intrinsics, AVX2 intrinsics, portable C) agrees with pysearch.evaluate, also in the tail."""
    flags, runs_here = MODES[mode]
    if not runs_here:
        pytest.skip(f"the host cannot run the {mode} build")
    progs = _op_programs()
    progs.update({f"lib_{fn.name}": fn.program for fn in library.functions() if fn.domain == (-math.inf, math.inf)})
    lib = _compile(progs, tmp_path, flags)
    x = _inputs()
    rng = np.random.default_rng(9)
    for name, prog in progs.items():
        cols = _columns(prog, x, rng)
        want = pysearch.evaluate(prog, cols[0] if len(cols) == 1 else np.stack(cols))
        _assert_bit_exact(f"{mode} {name}", _run_array(lib, name, cols), want, cols)
        for n in (1, 7, 15, 16, 17):  # the tail alone and around a full vector
            tail = [c[-n:] for c in cols]
            _assert_bit_exact(f"{mode} {name} (n={n})", _run_array(lib, name, tail), want[-n:], tail)
    # the constant clamp with a signed zero keeps its meaning: min(-0, +0) = -0, max(+0, -0) = +0
    assert np.signbit(_run_array(lib, "c_min_nz", [np.array([0.0], np.float32)])[0])
    assert not np.signbit(_run_array(lib, "c_max_pz", [np.array([-0.0], np.float32)])[0])


def test_range_analysis_bounds_the_exp_exponents_only():
    """exp/exp2's ldexp exponent rint(clamp(x) * c) is bounded (no NaN select: the scaled value is NaN where
    the exponent is), and tanh's rint(min(|x|, c) * c'); a getexp's is not (it can be +-inf); a two-input
    program keeps the NaN select."""
    for name, want in (("exp", "pys_ldexp2_256(v12, v4, 0)"), ("exp2", "pys_ldexp2_256(v10, v3, 0)")):
        src = to_c(library.get(name).program, "k")
        assert want in src and "_mm512_scalef_ps(v" in src and "pys_ldexp512(" not in src.split("pys_kernel512_k")[1]
    # tanh's 2^n: n = rint(min(|x|, 8.49) * 2/ln2) lies in [0, 25] (abs is in the analysis)
    src = to_c(library.get("tanh").program, "k").split("pys_kernel256_k")[1]
    assert "pys_ldexp2_256(" in src and "pys_ldexp256(" not in src
    r = c_simd.ranges(Plan(parse("inputs x\na = abs x\nb = min a 8.49\n")))
    assert (r[0].lo, r[0].hi, r[1].lo, r[1].hi) == (0, math.inf, 0, np.float32(8.49))
    r = c_simd.ranges(Plan(parse("inputs x\na = max x -3\nb = min a -2\nc = abs b\n")))
    assert (r[2].lo, r[2].hi) == (2, 3)
    src = to_c(parse("inputs x\na = getexp x\nv = ldexp x a\n"), "k")
    assert "pys_ldexp256(x, v1)" in src and "pys_ldexp2_256" not in src.split("pys_kernel256_k")[1]
    for name in ("log", "log2"):  # their reduction halves m by a multiplication: the only ldexp is by 300
        kernel = to_c(library.get(name).program, "k").split("pys_kernel256_k")[1]
        assert "pys_ldexp256(" not in kernel and "_mm256_mul_ps(_mm256_mul_ps(_mm256_mul_ps(v" in kernel
    src = to_c(parse("inputs x, y\na = max y -252.9\nb = min a 254.9\nv = ldexp x b\n"), "k")
    assert "pys_ldexp2_256(x, v2, 1)" in src
    src = to_c(parse("inputs x\na = max x -253.5\nb = min a 254\nv = ldexp x b\n"), "k")  # trunc -253: too wide
    assert "pys_ldexp256(x, v2)" in src
    r = c_simd.ranges(Plan(parse("inputs x\na = max x -151\nb = min a 129\nn = rint b\nv = mul n -2\n")))
    assert (r[2].lo, r[2].hi, r[2].integral, r[2].nan_from_input) == (-151, 129, True, True)
    assert r[3].lo <= -258 and r[3].hi >= 302 and not r[3].integral
    # an fma with a constant factor and addend (expm1's floor(fma(clamp(x), 1/ln2, 0.43))) keeps the bound
    r = c_simd.ranges(Plan(parse("inputs x\na = max x -18\nb = min a 88.73\nc = fma b 1.442695 0.43\nn = floor c\n")))
    assert r[2].lo <= -18 * 1.442695 + 0.43 and r[2].hi >= 88.73 * 1.442695 + 0.43 and not r[2].integral
    assert (r[3].lo, r[3].hi, r[3].integral) == (-26, 129, True)
    assert "pys_ldexp2_256(c" in to_c(library.get("expm1").program, "k")  # its 2^n: the bounded form
    r = c_simd.ranges(Plan(parse("inputs x, y\na = max x -18\nb = min a 88\nc = fma b y 0.5\nn = floor c\n")))
    assert r[2].lo == -math.inf and r[3].hi == math.inf  # a variable factor: unbounded


def test_constant_minmax_export_uses_the_short_form():
    """A min/max against a constant is one select in the portable C and one vminps/vmaxps in the
    AVX-512 kernel, except for the zero that would lose to the other sign."""
    c = to_c(parse("inputs x\na = max x -104\nv = min a 0\n"), "k")
    assert "pys_sel32(c1 > x," in c and "_mm512_max_ps(c1, x)" in c and "_mm512_min_ps(c2, v1)" in c
    c = to_c(parse("inputs x\nv = min x -0\n"), "k")
    assert "pys_minf(x, c1)" in c and "pys_min512(x, c1)" in c


#: where each full-range kernel's result changes most (default: positive numbers, for the logarithms)
BUSY = {"exp": (-160.0, 160.0), "exp2": (-160.0, 160.0), "expm1": (-160.0, 160.0), "erf": (-5.0, 5.0),
        "tanh": (-20.0, 20.0), "sigmoid": (-160.0, 160.0), "log1p": (-1.0, 1e30)}


def test_library_full_range_kernels_in_both_paths_on_busy_range():
    """The library's full-range kernels evaluate to their reference within their bound on the busy range
    (the export tests above compare the compiled code with this same evaluation)."""
    for name in [f.name for f in library.functions() if f.domain == (-math.inf, math.inf)]:
        fn = library.get(name)
        lo, hi = BUSY.get(name, (1e-30, 1e30))
        x = pysearch.Domain(lo, hi).sample(1 << 14, seed=3)
        assert pysearch.ulp_error(fn.program, x, fn.target).max_ulp <= fn.max_ulp


# ----------------------------------------------------------------------------- the Rust slice loop
_RUST_WRAPPER = """
#[no_mangle]
pub extern "C" fn {name}_c({params}, out: *mut f32, n_in: usize, n_out: usize) -> usize {{
    // SAFETY: the test passes arrays of n_in (inputs) and n_out (output) floats.
    unsafe {{ {module}::{name}_slice({slices}, std::slice::from_raw_parts_mut(out, n_out)) }}
}}
"""


def _rust_cdylib(singles: dict[str, object], library_names: list[str], tmp_path: Path, flags: list[str]):
    """``singles`` exported one file each (to_rust) and ``library_names`` as ONE module (export_many),
    each behind an ``extern "C"`` wrapper over its slice function, in a cdylib (warnings are errors)."""
    lines = []
    for name, prog in singles.items():
        (tmp_path / f"{name}.rs").write_text(to_rust(prog, name))
        lines.append(f'pub mod {name} {{ include!("{name}.rs"); }}')
    lib_fns = {f"lib_{n}": library.get(n) for n in library_names}
    (tmp_path / "library.rs").write_text(export_many([(fn, name, None) for name, fn in lib_fns.items()], "rust"))
    lines.append('pub mod library { include!("library.rs"); }')
    for name, prog in [*singles.items(), *((n, f.program) for n, f in lib_fns.items())]:
        ins = [f"in{k}" for k in range(len(prog.inputs))]
        lines.append(_RUST_WRAPPER.format(
            name=name, module="library" if name in lib_fns else name,
            params=", ".join(f"{p}: *const f32" for p in ins),
            slices=", ".join(f"std::slice::from_raw_parts({p}, n_in)" for p in ins)))
    (tmp_path / "lib.rs").write_text("\n".join(lines) + "\n")
    so = tmp_path / "libk.so"
    r = subprocess.run([RUSTC, "--edition", "2021", "--crate-type", "cdylib", "-D", "warnings", *flags,
                        "-o", str(so), str(tmp_path / "lib.rs")], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    return ctypes.CDLL(str(so))


def _run_slice(lib: ctypes.CDLL, name: str, cols: list[np.ndarray], n_out: int | None = None) -> tuple[int, np.ndarray]:
    """``NAME_slice`` on the input arrays (each of their length) and an output of ``n_out`` NaNs: (count, output)."""
    fp = ctypes.POINTER(ctypes.c_float)
    cols = [np.ascontiguousarray(c, dtype=np.float32) for c in cols]
    out = np.full(cols[0].size if n_out is None else n_out, np.nan, dtype=np.float32)
    fn = getattr(lib, f"{name}_c")
    fn.argtypes = [fp] * (len(cols) + 1) + [ctypes.c_size_t, ctypes.c_size_t]
    fn.restype = ctypes.c_size_t
    n = fn(*[c.ctypes.data_as(fp) for c in cols], out.ctypes.data_as(fp), cols[0].size, out.size)
    return int(n), out


#: The library's full-range kernels (exp, exp2, log, log2, ...).
FULL_RANGE = [fn.name for fn in library.functions() if fn.domain == (-math.inf, math.inf)]
#: Rust builds: the host's CPU (AVX-512 or AVX2 lanes here), the x86-64 baseline (SSE2: rint without
#: SSE4.1 takes the 1.5 * 2^23 path), and a debug build (overflow checks and debug assertions on: the
#: helpers' integer arithmetic must not overflow, also on NaN and infinite operands).
RUST_MODES = {"native": ["-C", "opt-level=3", "-C", "target-cpu=native"], "baseline": ["-C", "opt-level=3"],
              "debug": ["-C", "opt-level=1", "-C", "debug-assertions=on", "-C", "overflow-checks=on"]}


@pytest.mark.skipif(RUSTC is None, reason="rustc is not installed")
@pytest.mark.parametrize("mode", list(RUST_MODES))
def test_rust_slice_loops_are_bit_exact(tmp_path, mode):
    """Every float32 op (every pair of special values for two operands), min/max/ldexp with constant
    operands, and the library's full-range kernels exported as one Rust module: ``NAME_slice`` agrees
    with pysearch.evaluate, also on short slices (the scalar tail); the library kernels on 2^21 random
    bit patterns and 2^20 inputs over their busy range besides the special values."""
    progs = _op_programs()
    lib_names = FULL_RANGE
    lib = _rust_cdylib(progs, lib_names, tmp_path, RUST_MODES[mode])
    x = _inputs()
    rng = np.random.default_rng(11)
    for name, prog in progs.items():
        cols = _columns(prog, x, rng)
        want = pysearch.evaluate(prog, cols[0] if len(cols) == 1 else np.stack(cols))
        n, got = _run_slice(lib, name, cols)
        assert n == cols[0].size
        _assert_bit_exact(f"rust {mode} {name}", got, want, cols)
        for k in (1, 7, 15, 16, 17):  # the tail alone and around a full vector
            tail = [c[-k:] for c in cols]
            _assert_bit_exact(f"rust {mode} {name} (n={k})", _run_slice(lib, name, tail)[1], want[-k:], tail)
    bits = rng.integers(0, 2**32, 1 << 21, dtype=np.uint64).astype(np.uint32).view(np.float32)
    for name in lib_names:
        if name.startswith("log"):  # log1p: also (-1, 0)
            sign = (-1.0 if name == "log1p" else 1.0) ** rng.integers(0, 2, 1 << 20)
            busy = (np.exp2(rng.uniform(-150, 128, 1 << 20)) * sign).astype(np.float32)
        else:
            busy = rng.uniform(-160, 160, 1 << 20).astype(np.float32)
        xs = np.concatenate([_inputs(0), bits, busy])
        _assert_bit_exact(f"rust {mode} lib_{name}", _run_slice(lib, f"lib_{name}", [xs])[1],
                          pysearch.evaluate(library.get(name).program, xs), [xs])


@pytest.mark.skipif(RUSTC is None, reason="rustc is not installed")
def test_rust_slice_of_unequal_lengths_writes_the_shorter(tmp_path):
    """Slices of different lengths: NAME_slice writes min(len) elements, returns that count, leaves the
    rest of the output as it was, and does not panic (a panic across extern "C" would abort the test)."""
    prog = parse("inputs x, y\nv = fma x y 1\n")
    lib = _rust_cdylib({"two": prog}, ["exp2"], tmp_path, ["-C", "opt-level=3"])
    x = np.linspace(-3, 3, 40, dtype=np.float32)
    for n_out in (0, 13, 40, 57):
        n, got = _run_slice(lib, "lib_exp2", [x], n_out)
        assert n == min(n_out, x.size)
        assert (got[:n].view(np.uint32) == library.exp2(x[:n]).view(np.uint32)).all() and np.isnan(got[n:]).all()
        n, got = _run_slice(lib, "two", [x, x], n_out)
        assert n == min(n_out, x.size) and (got[:n] == x[:n] * x[:n] + 1).all() and np.isnan(got[n:]).all()


#: isa -> (target CPU, vector register): AMD Zen 4 (AVX-512, which LLVM uses at full width there; for
#: x86-64-v4 and Intel server CPUs it prefers 256-bit vectors) and x86-64-v3 (AVX2 + FMA).
RUST_ISAS = {"avx512": ("znver4", "%zmm"), "avx2": ("x86-64-v3", "%ymm")}


@pytest.mark.skipif(RUSTC is None or not X86, reason="needs rustc on x86-64")
@pytest.mark.parametrize("isa", list(RUST_ISAS))
def test_rust_slice_loop_compiles_to_vector_code(tmp_path, isa):
    """With -C opt-level=3 and an AVX-512 (znver4) or AVX2 (x86-64-v3) target, LLVM vectorises the
    slice loop of every full-range library kernel: vector fma of that width, no calls, and no lane-by-lane
    float-to-int conversion (cvttss2si: what a saturating `as i32` becomes)."""
    cpu, reg = RUST_ISAS[isa]
    src = tmp_path / "k.rs"
    src.write_text(export_many([(library.get(n), n + "_k", None) for n in FULL_RANGE], "rust"))
    asm = tmp_path / "k.s"
    r = subprocess.run([RUSTC, "--edition", "2021", "--crate-type", "lib", "--emit", "asm", "-C", "opt-level=3",
                        "-C", f"target-cpu={cpu}", "-D", "warnings", "-o", str(asm), str(src)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    text = asm.read_text()
    for n in FULL_RANGE:
        start = re.search(rf"^\S*{n}_k_slice\S*:$", text, re.MULTILINE)
        assert start, f"no {n}_k_slice in the asm"
        body = text[start.end():text.index(".cfi_endproc", start.end())]
        assert re.search(rf"vfmadd\d+ps\t{reg}", body), (n, isa)
        assert "call" not in body and "cvttss2si" not in body, n
        if isa == "avx2":
            assert "%zmm" not in body


def _load_vecmath():
    spec = importlib.util.spec_from_file_location("vecmath_vs_sleef", ROOT / "experiments" / "vecmath_vs_sleef.py")
    mod = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(ROOT / "experiments"))
    try:
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(str(ROOT / "experiments"))
    return mod


def test_vecmath_inputs_cover_the_stated_ranges():
    """The benchmark's uniform and log-uniform inputs lie in the ranges its table states."""
    vm = _load_vecmath()
    for name, (_, _, (a, b), (ea, eb), signed) in vm.FUNCTIONS.items():
        u = vm.inputs(name, "uniform", 4096, 0)
        assert u.dtype == np.float32 and u.min() >= np.float32(a) and u.max() <= np.float32(b)
        g = vm.inputs(name, "log-uniform", 4096, 0)
        mag = np.abs(g[(g > 0) | signed])
        assert mag.min() >= np.float32(2.0**ea) * 0.999 and mag.max() <= np.float32(2.0**eb) * 1.001
        assert (g < 0).any() == (signed or name == "log1p")


@pytest.mark.skipif(GCC is None or not X86, reason="needs gcc on x86-64")
def test_vecmath_without_sleef_says_how_to_install(monkeypatch, capsys):
    """Without libsleef the benchmark prints the install command and exits 0 with no RESULT line."""
    vm = _load_vecmath()
    monkeypatch.setattr(vm, "sleef_available", lambda: None)
    assert vm.main(["--functions", "exp"]) == 0
    out = capsys.readouterr().out
    assert "apt-get install libsleef-dev" in out and "RESULT" not in out


@pytest.mark.skipif(GCC is None or RUSTC is None or not X86, reason="needs gcc and rustc on x86-64")
def test_vecmath_rust_rows_time_the_vectorised_slice_loop():
    """The benchmark's Rust candidate runs the exported slice loop (vector fma in its asm) and gives
    pysearch.evaluate's outputs through the C bench harness."""
    vm = _load_vecmath()
    vec = vm.rust_library(["exp2", "log"])
    assert isinstance(vec, dict) and all(v.startswith("LLVM-vectorised (") for v in vec.values()), vec
    x = _inputs()
    for name in ("exp2", "log"):
        fn = library.get(name)
        bench = vm.CBench([vm.rust_candidate(name, fn.program, fn.max_ulp, fn.verified)])
        _assert_bit_exact(f"vecmath rust {name}", bench.run(0, x), pysearch.evaluate(fn.program, x), [x])


def test_results_sentence_reports_the_rust_rows():
    """experiments/results.py reads the Rust rows of a vecmath run: against the fastest SLEEF variant of each
    function and input set (the lowest of its ratios) and against the exported C."""
    spec = importlib.util.spec_from_file_location("results", ROOT / "experiments" / "results.py")
    results = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(results)
    out = "\n".join([
        "| exp | uniform | Rust export | SLEEF expf8_u10avx2 | 2.2 | 2.2 2.2 |",
        "| exp | uniform | Rust export | SLEEF expf16_u10avx512f | 1.05 | 1.05 1.05 |",
        "| exp | uniform | Rust export | ours exported C | 0.64 | 0.64 0.64 |",
        "| log | log-uniform | Rust export | SLEEF logf16_u10avx512f | 0.95 | 0.95 0.95 |",
        "| log | log-uniform | Rust export | ours exported C | 0.7 | 0.7 0.7 |",
        "RESULT vecmath_min_speedup_vs_sleef_u10=1.5 vecmath_max_ulp=0.9 vecmath_functions=2",
    ])
    s = results.vecmath_sentence(out)
    assert "runs at 0.950-1.050x the fastest SLEEF u10 variant and 0.640-0.700x the exported C" in s
    assert "Rust export" not in results.vecmath_sentence(out.split("\n")[-1])


def test_results_sentence_reports_the_library_against_numpy_and_scipy():
    """The numpy-side baseline is numpy's ufunc, or scipy.special's where numpy has none (erf, sigmoid), labelled
    as such; results.py names the functions where the library call is slower."""
    import scipy.special

    vm = _load_vecmath()
    assert vm.py_label(np.exp) == "numpy exp float32"
    assert vm.py_label(vm.FUNCTIONS["erf"][1]) == "scipy.special erf float32"
    assert vm.FUNCTIONS["sigmoid"][1] is scipy.special.expit
    spec = importlib.util.spec_from_file_location("results", ROOT / "experiments" / "results.py")
    results = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(results)
    rows = ["| exp | uniform | pysearch.library | numpy exp float32 | 1.4 | 1.4 1.4 |",
            "| erf | uniform | pysearch.library | scipy.special erf float32 | 20.5 | 20 21 |",
            "RESULT vecmath_min_speedup_vs_sleef_u10=1.5 vecmath_max_ulp=0.9 vecmath_functions=2"]
    s = results.vecmath_sentence("\n".join(rows))
    assert "1.400-20.500x numpy's" in s and "faster for every function" in s
    rows.insert(1, "| log2 | log-uniform | pysearch.library | numpy log2 float32 | 0.32 | 0.3 0.3 |")
    assert "slower for log2." in results.vecmath_sentence("\n".join(rows))
