"""Exported Python, C and Rust code agree bit for bit with the interpreter (compiled once per session)."""

from __future__ import annotations

import importlib.util
import json
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from pysearch.cli import main as cli_main
from pysearch.export import to_c, to_python, to_rust
from pysearch.interpreter import run
from pysearch.program import OPS, Instr, Program, Ref, parse, round_to_dtype

from strategies import F32_SPECIALS, F64_SPECIALS

# ----------------------------------------------------------------------------- programs

HAND_WRITTEN = {
    "horner6": """
        inputs x
        v1 = fma x 0.00021702255 0.0012439687
        v2 = fma v1 x 0.009678841
        v3 = fma v2 x 0.05548334
        v4 = fma v3 x 0.24022983
        v5 = fma v4 x 0.693147
        v6 = fma v5 x 1
    """,
    "rational": """
        t = sub x 0.5
        n1 = mul t 0.0033052508
        n2 = add n1 0.05233536
        n3 = fma n2 t 1
        d1 = mul t -0.0023371652
        d2 = add d1 0.044018183
        d3 = fma d2 t 1
        r = div n3 d3
    """,
    "every_op32": """
        a = fma x 0.24022651 0.6931472
        b = min a x
        c = max b 0.5
        d = ldexp c x
        e = getexp d
        f = getmant x
        g = rint f
        h = floor x
        i = sqrt x
        j = abs x
        k = neg j
        l = div k 3
        m = add e g
        n = sub m h
        o = mul n i
        p = fma o l c
        q = min p -0
        r = max q d
        s = ldexp x x
        t = getexp s
        u = add r t
    """,
    "special_constants32": """
        a = mul x -0
        b = add a 1e-45
        c = max b -inf
        d = fma x 3.4028235e38 -3.4028235e38
        e = min d inf
        f = add c e
    """,
    "two_inputs32": """
        inputs x,y
        a = fma x y 1
        b = min x y
        c = max y x
        d = ldexp x y
        e = div a b
        f = fma c d e
    """,
    "constant32": """
        inputs x
        a = add 1 2
        b = mul a 3
    """,
    "every_op64": """
        dtype float64
        a = fma x 0.24022650695910071 0.69314718055994531
        b = min a x
        c = max b 0.5
        d = ldexp c x
        e = getexp d
        f = getmant x
        g = rint f
        h = floor x
        i = sqrt x
        j = abs x
        k = neg j
        l = div k 3
        m = add e g
        n = sub m h
        o = mul n i
        p = fma o l c
        q = fma x x -1
        r = ldexp x -1100
        s = ldexp x 1500
        t = getexp r
        u = getmant r
        w = add p q
        y = add w t
        z = add y u
        zz = min z s
        out = add zz r
    """,
    "libm64": """
        dtype float64
        inputs x,y
        a = exp x
        b = log y
        c = pow x y
        d = add a b
        e = add d c
    """,
    "two_inputs64": """
        dtype float64
        inputs x,y
        a = fma x y 1
        b = min x y
        c = max y x
        d = ldexp x y
        e = div a b
        f = fma c d e
    """,
}


def _random_program(rng: np.random.Generator, dtype: str, n_inputs: int) -> Program:
    ops = [op for op in OPS if not op.float64_only]
    specials = F32_SPECIALS if dtype == "float32" else F64_SPECIALS
    instrs: list[Instr] = []
    for i in range(int(rng.integers(3, 12))):
        op = ops[int(rng.integers(len(ops)))]
        args = []
        for _ in range(op.arity):
            r = rng.random()
            if i and r < 0.5:
                args.append(Ref.val(int(rng.integers(i))))
            elif r < 0.8:
                args.append(Ref.input(int(rng.integers(n_inputs))))
            elif r < 0.9:
                args.append(Ref.const(round_to_dtype(float(specials[int(rng.integers(len(specials)))]), dtype)))
            else:
                args.append(Ref.const(round_to_dtype(float(rng.normal() * 4), dtype)))
        instrs.append(Instr(op.name, tuple(args)))
    return Program(instrs, ("x", "y")[:n_inputs], dtype)


def _programs() -> dict[str, Program]:
    progs = {name: parse(text) for name, text in HAND_WRITTEN.items()}
    for dtype in ("float32", "float64"):
        for op in OPS:
            if not op.float64_only:
                inputs = ("x", "y", "z")[: op.arity]
                progs[f"op_{op.name}_{dtype}"] = Program(
                    [Instr(op.name, tuple(Ref.input(i) for i in range(op.arity)))], inputs, dtype
                )
    rng = np.random.default_rng(20240601)
    for k in range(16):
        dtype = "float32" if k % 3 else "float64"
        progs[f"random{k}_{dtype}"] = _random_program(rng, dtype, 1 + k % 2)
    return progs


def _inputs(dtype: str, n_inputs: int, seed: int) -> np.ndarray:
    """(n_inputs, n) values: specials, random bit patterns, moderate values, small integers."""
    rng = np.random.default_rng(seed)
    if dtype == "float32":
        specials = np.concatenate([np.array(F32_SPECIALS, dtype=np.float32), _rounding_edges32()])
        bits = rng.integers(0, 2**32, 1200, dtype=np.uint64).astype(np.uint32).view(np.float32)
    else:
        specials = np.array(F64_SPECIALS, dtype=np.float64)
        bits = rng.integers(0, 2**64 - 1, 1200, dtype=np.uint64, endpoint=True).view(np.float64)
    moderate = [rng.uniform(-4, 4, 1200), rng.integers(-400, 400, 300).astype(float), rng.uniform(0, 1, 300)]
    pool = np.concatenate([specials, bits] + [m.astype(dtype) for m in moderate])
    cols = [pool]
    for _ in range(n_inputs - 1):
        cols.append(rng.permutation(pool))
    x = np.stack(cols)
    if n_inputs == 2:  # every pair of special values (min(+0, -0), ldexp(x, nan), ...)
        scales = [250.0, -250.0, 150.5, -150.5, 277.0, -277.0, 278.0, -278.0]  # ldexp exponents near the edges
        sp = np.array((F32_SPECIALS if dtype == "float32" else F64_SPECIALS) + scales, dtype=dtype)
        x = np.concatenate([x, np.stack([np.repeat(sp, sp.size), np.tile(sp, sp.size)])], axis=1)
    if n_inputs == 3:
        x = np.concatenate([x, _fma_hard_cases(dtype)], axis=1)
    return x


def _rounding_edges32() -> np.ndarray:
    """float32 values where rint/floor/ldexp/getexp/getmant are easy to get wrong without a branch."""
    halves = np.arange(-12, 12) + 0.5  # ties: rint goes to even
    near_2_23 = [2.0**22 + 0.5, 2.0**22 - 0.5, 2.0**23 - 0.5, 2.0**23 - 1.5, 2.0**23 - 1, 2.0**23 + 2]
    near_half = [float(np.nextafter(np.float32(0.5), np.float32(v))) for v in (0, 1)]
    near_int = [float(np.nextafter(np.float32(k), np.float32(d))) for k in (1, 2, 3, 1000) for d in (-1e9, 1e9)]
    exponents = [2.0**e for e in (-149, -127, -126, -125, 126, 127)] + [300.0, 300.5, 301.0, 299.9, 1e9, 3e38]
    sub_tops = [2.0**-126 - 2.0**-149, 2.0**-127 + 2.0**-149, 3 * 2.0**-149]
    v = np.array(list(halves) + near_2_23 + near_half + near_int + exponents + sub_tops, dtype=np.float64)
    return np.concatenate([v, -v]).astype(np.float32)


def _fma_hard_cases(dtype: str) -> np.ndarray:
    """fma operands whose exact result sits just off a rounding midpoint (double rounding traps)."""
    bits = 24 if dtype == "float32" else 53
    e = 20 if dtype == "float32" else 30
    rows = []
    for sign in (1.0, -1.0):
        for scale in (1.0, 2.0**-60, 2.0**40):
            for extra in (0.0, 2.0, 4.0, 6.0):
                a, b = (1 - 2.0**-e) * scale, (1 + 2.0**-e) / scale
                rows.append((sign * a, b, sign * (2.0**bits + extra)))
                rows.append((sign * a, -b, sign * (2.0**bits + extra)))
                rows.append((a, b, -(2.0**bits + extra) * sign))
    big = 2.0**120 if dtype == "float32" else 2.0**1000  # a * b overflows; fma's exact product does not
    rows += [(big, big, -math.inf), (big, -big, math.inf), (-big, big, math.nan), (big, big, -big)]
    return np.array(rows, dtype=dtype).T


def _bits(a: np.ndarray) -> np.ndarray:
    """Bit patterns with every NaN mapped to one value (NaN payloads are unspecified)."""
    a = np.asarray(a)
    u = np.uint32 if a.dtype == np.float32 else np.uint64
    canon = np.array(np.nan, dtype=a.dtype).view(u)
    return np.where(np.isnan(a), canon, a.view(u))


# ----------------------------------------------------------------------------- harness
def _c_main(progs: dict[str, Program]) -> str:
    lines = ["#include <stdio.h>", "#include <stdint.h>", "#include <string.h>", "#include <stdlib.h>", ""]
    for name, p in progs.items():
        ct = "float" if p.dtype == "float32" else "double"
        lines.append(f"{ct} {name}({', '.join([ct] * len(p.inputs))});")
        if len(p.inputs) == 1:
            lines.append(f"void {name}_array(const {ct} *x, {ct} *y, size_t n);")
    lines += ["", "int main(int argc, char **argv) {", "    char path[4096];", "    (void)argc;"]
    for name, p in progs.items():
        f32 = p.dtype == "float32"
        ct, ut = ("float", "uint32_t") if f32 else ("double", "uint64_t")
        k = len(p.inputs)
        lines += [
            "    {",
            f'        snprintf(path, sizeof path, "%s/{name}.in", argv[1]);',
            '        FILE *f = fopen(path, "r");',
            f'        snprintf(path, sizeof path, "%s/{name}.c.out", argv[1]);',
            '        FILE *g = fopen(path, "w");',
            "        size_t n = 0, cap = 1024;",
            f"        {ct} *xs = malloc(cap * {k} * sizeof({ct}));",
            f"        {ct} *ys = malloc(cap * sizeof({ct}));",
            "        for (;;) {",
            f"            unsigned long long raw[{k}]; int ok = 1;",
            f'            for (int j = 0; j < {k}; j++) ok &= fscanf(f, "%llx", &raw[j]) == 1;',
            "            if (!ok) break;",
            f"            if (n == cap) {{ cap *= 2; xs = realloc(xs, cap * {k} * sizeof({ct})); ys = realloc(ys, cap * sizeof({ct})); }}",
            f"            for (int j = 0; j < {k}; j++) {{ {ut} u = ({ut})raw[j]; memcpy(&xs[n * {k} + j], &u, sizeof u); }}",
            f"            ys[n] = {name}({', '.join(f'xs[n * {k} + {j}]' for j in range(k))});",
            "            n++;",
            "        }",
        ]
        if k == 1:
            lines += [
                f"        {ct} *ya = malloc(n * sizeof({ct}) + 1);",
                f"        {name}_array(xs, ya, n);",
                f'        for (size_t i = 0; i < n; i++) {{ {ut} u, v; memcpy(&u, &ys[i], sizeof u); memcpy(&v, &ya[i], sizeof v); fprintf(g, "%llx %llx\\n", (unsigned long long)u, (unsigned long long)v); }}',
                "        free(ya);",
            ]
        else:
            lines.append(
                f'        for (size_t i = 0; i < n; i++) {{ {ut} u; memcpy(&u, &ys[i], sizeof u); fprintf(g, "%llx %llx\\n", (unsigned long long)u, (unsigned long long)u); }}'
            )
        lines += ["        fclose(f); fclose(g); free(xs); free(ys);", "    }"]
    lines += ["    return 0;", "}"]
    return "\n".join(lines) + "\n"


def _rust_main(progs: dict[str, Program]) -> str:
    lines = [f'mod {name} {{ include!("{name}.rs"); }}' for name in progs]
    lines.append(
        """
use std::fs;

fn rows(dir: &str, name: &str) -> Vec<Vec<u64>> {
    let text = fs::read_to_string(format!("{dir}/{name}.in")).unwrap();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().map(|t| u64::from_str_radix(t, 16).unwrap()).collect())
        .collect()
}

fn write(dir: &str, name: &str, scalar: Vec<u64>, slice: Vec<u64>) {
    let text: String = scalar.iter().zip(&slice).map(|(u, v)| format!("{u:x} {v:x}\\n")).collect();
    fs::write(format!("{dir}/{name}.rs.out"), text).unwrap();
}

fn main() {
    let dir = std::env::args().nth(1).unwrap();
    let dir = dir.as_str();
"""
    )
    for name, p in progs.items():
        if p.dtype == "float32":
            t, conv, back = "f32", "f32::from_bits(r[{j}] as u32)", "u64::from(y.to_bits())"
        else:
            t, conv, back = "f64", "f64::from_bits(r[{j}])", "y.to_bits()"
        k = len(p.inputs)
        call_args = ", ".join(conv.format(j=j) for j in range(k))
        cols = "; ".join(f"let c{j}: Vec<{t}> = r.iter().map(|r| {conv.format(j=j)}).collect()" for j in range(k))
        lines += [
            "    {",
            f'        let r = rows(dir, "{name}");',
            f"        let scalar = r.iter().map(|r| {{ let y = {name}::{name}({call_args}); {back} }}).collect();",
            f"        {cols};",
            f"        let mut out = vec![{t}::NAN; r.len() + 3]; // longer: the slice writes min(len) = r.len()",
            f"        let n = {name}::{name}_slice({', '.join(f'&c{j}' for j in range(k))}, &mut out);",
            "        assert_eq!(n, r.len());",
            f'        write(dir, "{name}", scalar, out[..n].iter().map(|&y| {back}).collect());',
            "    }",
        ]
    lines.append("}")
    return "\n".join(lines) + "\n"


def _load_python(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(f"exported_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, name)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Every test program exported, compiled and run; per program the inputs and all outputs."""
    d = tmp_path_factory.mktemp("export")
    progs = _programs()
    data = {}
    for i, (name, p) in enumerate(progs.items()):
        x = _inputs(p.dtype, len(p.inputs), i)
        u = np.uint32 if p.dtype == "float32" else np.uint64
        (d / f"{name}.in").write_text("\n".join(" ".join(f"{int(v):x}" for v in row) for row in x.view(u).T) + "\n")
        (d / f"{name}.py").write_text(to_python(p, name, {"target": "test"}))
        (d / f"{name}.c").write_text(to_c(p, name))
        (d / f"{name}.rs").write_text(to_rust(p, name))
        data[name] = {"program": p, "x": x, "interp": run(p, x if len(p.inputs) > 1 else x[0])}
    results = {"data": data, "dir": d, "c_error": None, "rust_error": None}
    gcc, rustc = shutil.which("gcc"), shutil.which("rustc")
    builds = {}  # both compilers at once: most of this fixture's time is compiling
    if gcc:
        (d / "main.c").write_text(_c_main(progs))
        cmd = [gcc, "-O3", "-march=native", "-std=c11", "-ffp-contract=off", "-Wall", "-Wextra", "-Werror",
               "-o", str(d / "c_bin"), str(d / "main.c")] + [str(d / f"{n}.c") for n in progs] + ["-lm"]
        builds["c"] = (subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True), d / "c_bin")
    if rustc:
        (d / "main.rs").write_text(_rust_main(progs))
        cmd = [rustc, "-O", "--edition", "2021", "-D", "warnings", "-o", str(d / "rust_bin"), str(d / "main.rs")]
        builds["rust"] = (subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, cwd=d), d / "rust_bin")
    for lang, (proc, binary) in builds.items():
        _, err = proc.communicate()
        if proc.returncode == 0:
            r = subprocess.run([str(binary), str(d)], capture_output=True, text=True)
            err = r.stderr if r.returncode else None
        results[f"{lang}_error"] = err[-3000:] if err is not None else None
    results["has_gcc"], results["has_rustc"] = bool(gcc), bool(rustc)
    return results


def _read_out(path: Path, dtype: str, column: int = 0) -> np.ndarray:
    u = np.uint32 if dtype == "float32" else np.uint64
    vals = [int(line.split()[column], 16) for line in path.read_text().splitlines() if line.strip()]
    return np.array(vals, dtype=u).view(dtype)


def _assert_same(name: str, got: np.ndarray, want: np.ndarray, x: np.ndarray, what: str) -> None:
    """Bit-for-bit equality; programs with exp/log/pow (libm, not bit-exact) to 1e-13 relative."""
    assert got.shape == want.shape, f"{name} ({what}): shape {got.shape} != {want.shape}"
    if name.startswith("libm"):
        with np.errstate(all="ignore"):
            same = (_bits(got) == _bits(want)) | np.isclose(got, want, rtol=1e-13, atol=0)
        bad = np.nonzero(~same)[0]
    else:
        bad = np.nonzero(_bits(got) != _bits(want))[0]
    if len(bad):
        i = bad[0]
        raise AssertionError(
            f"{name} ({what}): {len(bad)} mismatches; first at inputs {[float(c[i]) for c in x]}: "
            f"got {float(got[i])!r}, interpreter {float(want[i])!r}"
        )


# ----------------------------------------------------------------------------- tests
def test_python_export_matches_interpreter(exported):
    """The standalone numpy export reproduces the interpreter bit for bit on every program."""
    for name, rec in exported["data"].items():
        fn = _load_python(exported["dir"] / f"{name}.py", name)
        x = rec["x"]
        got = fn(*x)
        _assert_same(name, np.asarray(got), rec["interp"], x, "python")


def test_python_export_takes_scalars(exported):
    """Scalar inputs give numpy scalars equal to the array results."""
    for name in ("horner6", "every_op32", "two_inputs32", "every_op64", "constant32"):
        rec = exported["data"][name]
        fn = _load_python(exported["dir"] / f"{name}.py", name)
        for i in (0, 7, 40, 1500):
            args = [c[i] for c in rec["x"]]
            y = fn(*args)
            assert isinstance(y, np.generic) and y.dtype == rec["interp"].dtype
            assert _bits(np.array([y]))[0] == _bits(rec["interp"][i : i + 1])[0]
        assert isinstance(fn(0.25) if len(rec["x"]) == 1 else fn(0.25, 2.0), np.generic)


def test_c_export_matches_interpreter(exported):
    """C exports (scalar function and array loop) compile warning-free and agree bit for bit."""
    if not exported["has_gcc"]:
        pytest.skip("gcc is not installed")
    assert exported["c_error"] is None, exported["c_error"]
    for name, rec in exported["data"].items():
        dtype = rec["program"].dtype
        for col, what in ((0, "c scalar"), (1, "c array")):
            got = _read_out(exported["dir"] / f"{name}.c.out", dtype, col)
            _assert_same(name, got, rec["interp"], rec["x"], what)


def test_rust_export_matches_interpreter(exported):
    """Rust exports (scalar function and slice loop) compile without warnings and agree bit for bit."""
    if not exported["has_rustc"]:
        pytest.skip("rustc is not installed")
    assert exported["rust_error"] is None, exported["rust_error"]
    for name, rec in exported["data"].items():
        for col, what in ((0, "rust scalar"), (1, "rust slice")):
            got = _read_out(exported["dir"] / f"{name}.rs.out", rec["program"].dtype, col)
            _assert_same(name, got, rec["interp"], rec["x"], what)


def test_exports_show_exact_constants_and_header():
    """Constants appear in exact form and the header states target, domain, bound and cost."""
    p = parse("v1 = fma x 0.24022651 0.6931472\nv2 = fma v1 x 1\n")
    meta = {"target": "exp2", "domain": [0, 1], "max_ulp": 0.87, "verified": "exhaustive"}
    c, rs, py = to_c(p, "k", meta), to_rust(p, "k", meta), to_python(p, "k", meta)
    assert "0x1.62e43p-1f" in c and "fmaf(" in c and "void k_array(" in c
    assert "f32::from_bits(0x3f317218)" in rs and ".mul_add(" in rs and "pub fn k(x: f32) -> f32" in rs
    assert 'float.fromhex("0x1.62e43p-1")' in py
    for code in (c, rs, py):
        assert "exp2 on [0, 1]" in code and "Cost 2, ops 2" in code
        assert "Max error: 0.87 ULP, verified on every float32 of the domain." in code


def test_export_rejects_bad_names():
    """A function name that is not an identifier, or is reserved, is a ValueError."""
    p = parse("v1 = add x 1\n")
    for bad in ("1abc", "fn", "float", "my-fn", "return"):
        with pytest.raises(ValueError, match="name"):
            to_c(p, bad)


def test_export_renames_clashing_inputs():
    """Inputs named like a keyword or a local still give working code."""
    p = parse("inputs fn,v1\nv1_ = add fn v1\n")
    fn = {}
    exec(compile(to_python(p, "f"), "<export>", "exec"), fn)
    assert float(fn["f"](np.float32(1), np.float32(2))) == 3.0


# ----------------------------------------------------------------------------- CLI
FRONT = {
    "schema": 1,
    "target": "exp2",
    "domain": [0, 1],
    "dtype": "float32",
    "max_ulp_constraint": 1.0,
    "programs": [
        {"text": "v1 = fma x 0.5 1\n", "cost": 1, "ops": 1, "latency": 4, "max_ulp": 9000.0, "verified": "exhaustive"},
        {"text": "v1 = fma x 0.34 1\nv2 = fma v1 x 1\n", "cost": 2, "ops": 2, "latency": 8, "max_ulp": 0.9,
         "verified": "exhaustive"},
        {"text": "v1 = fma x 0.3 1\nv2 = fma v1 x 1\nv3 = fma v2 x 1\n", "cost": 3, "ops": 3, "latency": 12,
         "max_ulp": 0.6, "verified": "exhaustive"},
    ],
}


def test_cli_export_picks_best_under_constraint(tmp_path, capsys):
    """--pick best takes the cheapest program meeting the run's max-ULP constraint."""
    f = tmp_path / "front.json"
    f.write_text(json.dumps(FRONT))
    assert cli_main(["export", str(f), "--lang", "c"]) == 0
    out = capsys.readouterr().out
    assert "float exp2_approx(float x)" in out and "0.9 ULP, verified" in out


def test_cli_export_without_constraint_picks_most_accurate(tmp_path, capsys):
    """Without a constraint, --pick best takes the most accurate program; --pick K takes index K."""
    f = tmp_path / "front.json"
    f.write_text(json.dumps(dict(FRONT, max_ulp_constraint=None)))
    assert cli_main(["export", str(f), "--lang", "rust", "--name", "e2"]) == 0
    assert "0.6 ULP" in capsys.readouterr().out
    out_file = tmp_path / "k.py"
    assert cli_main(["export", str(f), "--pick", "0", "--out", str(out_file)]) == 0
    assert "9000 ULP" in out_file.read_text()


def test_cli_export_single_program_files(tmp_path, capsys):
    """A program text file and a program JSON file are exported too."""
    t = tmp_path / "p.txt"
    t.write_text("v1 = mul x x\n")
    assert cli_main(["export", str(t), "--lang", "python", "--target", "square"]) == 0
    assert "def square_approx(x):" in capsys.readouterr().out
    j = tmp_path / "p.json"
    j.write_text(parse("v1 = mul x x\n").to_json())
    assert cli_main(["export", str(j), "--lang", "rust"]) == 0
    assert "pub fn approx(x: f32) -> f32" in capsys.readouterr().out


@pytest.mark.parametrize(
    "content, message",
    [
        (json.dumps(dict(FRONT, schema=2)), "schema 2"),
        ("{not json", "is malformed"),
        (json.dumps(dict(FRONT, programs=[])), "no programs"),
        ("v1 = frob x\n", "unknown op"),
    ],
)
def test_cli_export_bad_files_give_one_line(tmp_path, capsys, content, message):
    """Unreadable or wrong-version files exit 2 with one error line."""
    f = tmp_path / "front.json"
    f.write_text(content)
    assert cli_main(["export", str(f)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_cli_export_bad_pick(tmp_path, capsys):
    """An out-of-range --pick is a one-line error."""
    f = tmp_path / "front.json"
    f.write_text(json.dumps(FRONT))
    assert cli_main(["export", str(f), "--pick", "7"]) == 2
    assert "3 programs" in capsys.readouterr().err


# ----------------------------------------------------------------------------- vectorisation
def _native_has_fma() -> bool:
    gcc = shutil.which("gcc")
    if gcc is None:
        return False
    r = subprocess.run([gcc, "-march=native", "-dM", "-E", "-x", "c", "-"], input="", capture_output=True, text=True)
    return r.returncode == 0 and "__FMA__" in r.stdout and "__AVX2__" in r.stdout


@pytest.mark.skipif(not _native_has_fma(), reason="needs gcc and an AVX2+FMA host")
@pytest.mark.parametrize("kernel", ["exp2_reduced", "exp2", "exp", "log2", "log"])
def test_c_array_loop_vectorises_under_fpic(tmp_path, kernel):
    """The portable array loop of a library kernel (the AVX-512 intrinsics off) compiles to 8-wide AVX
    code without calls, also with -fPIC."""
    from pysearch import library

    src = tmp_path / "k.c"
    src.write_text(to_c(library.get(kernel).program, "k"))
    asm = tmp_path / "k.s"
    r = subprocess.run(["gcc", "-O3", "-march=native", "-std=c11", "-ffp-contract=off", "-fPIC", "-S",
                        "-DPYS_NO_INTRINSICS", "-fopt-info-vec-optimized", "-o", str(asm), str(src)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "loop vectorized using 32 byte vectors" in r.stderr
    text = asm.read_text()
    loop = text[text.index("k_array:"):]
    # the one call: the failed-assertion path of the floating-point mode check (no NDEBUG), outside the loop
    assert "call" not in loop.replace("call\t__assert_fail@PLT", "") and "jmp\tk@PLT" not in loop
    assert "vfmadd" in loop and "ps\t" in loop and "%ymm" in loop
