"""Export hardening: metadata cannot inject code, names cannot clash, library kernels export by
name with their verified bounds, several C kernels share one translation unit, --out is atomic."""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pysearch
from pysearch import library
from pysearch.cli import main as cli_main
from pysearch.export import (
    _C_HELPERS,
    _PY_HELPERS,
    _RUST_HELPERS,
    ExportError,
    comment_text,
    emitted_names,
    export,
    export_many,
    reserved_reason,
    to_c,
    to_python,
    to_rust,
)
from pysearch.export.rust import doc_text
from pysearch.ops import OPS
from pysearch.program import parse

GCC = shutil.which("gcc")
RUSTC = shutil.which("rustc")
RUSTDOC = shutil.which("rustdoc")
CLIPPY = shutil.which("clippy-driver")
needs_gcc = pytest.mark.skipif(GCC is None, reason="gcc is not installed")
needs_rustc = pytest.mark.skipif(RUSTC is None or RUSTDOC is None, reason="rustc and rustdoc are not installed")
C_FLAGS = ["-std=c11", "-ffp-contract=off", "-Wall", "-Wextra", "-Werror"]

# A program that uses min, max, rint, ldexp, getexp and getmant, so the exports carry helpers.
PROGRAM = parse(
    "inputs x\nv1 = max x -151\nv2 = min v1 129\nv3 = rint v2\nv4 = sub v2 v3\n"
    "v5 = fma v4 0.24022645 0.6931472\nv6 = fma v5 v4 1\nv7 = ldexp v6 v3\nv8 = getmant v7\n"
    "v9 = getexp v7\nv10 = add v8 v9\n"
)
SAMPLES = np.array([0.0, -0.0, 0.5, -3.25, 1e-40, 7.5, 130.0, -200.0, np.inf, -np.inf, np.nan], dtype=np.float32)

# Fragments that end or escape comments and docstrings in one language or another.
HOSTILE = ['"""', "'''", '"', "*/", "/*", "//", "\n", "\r", "\\", "\\N", "??/", "\u2028", "\x00", "#", "é", "\ud800"]
meta_text = st.lists(st.one_of(st.text(max_size=8), st.sampled_from(HOSTILE)), max_size=8).map("".join)
metadata = st.fixed_dictionaries(
    {"target": meta_text, "verified": meta_text, "ops": meta_text, "cost": meta_text, "latency": meta_text},
    optional={"max_ulp": meta_text, "note": meta_text},
).flatmap(lambda d: st.dictionaries(meta_text, meta_text, max_size=2).map(lambda extra: {**extra, **d}))


def _bits(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, dtype=np.float32).view(np.uint32)


def _without_docstrings(tree: ast.Module) -> str:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef)) and ast.get_docstring(node, clean=False) is not None:
            node.body = node.body[1:]
    return ast.dump(tree)


def _code_after_header(code: str, lang: str) -> str:
    """The code below the header comment (which the header must not leak into); for Rust without the
    ``///`` doc comments (checked on their own: :func:`_rust_docs`)."""
    lines = code.splitlines()
    if lang == "rust":
        k = next(i for i, ln in enumerate(lines) if not ln.startswith("//"))
        assert all(ln.startswith("// ") or ln == "//" for ln in lines[:k])
        return "\n".join(ln for ln in lines[k:] if not ln.lstrip().startswith("///"))
    end = code.index("\n */\n")
    assert code.startswith("/*\n") and "*/" not in code[:end], code[: end + 4]
    return code[end + 4 :]


def _gcc(tmp_path: Path, source: str, *extra: str) -> subprocess.CompletedProcess:
    f = tmp_path / "k.c"
    f.write_text(source)
    return subprocess.run([GCC, *C_FLAGS, *extra, str(f)], capture_output=True, text=True, cwd=tmp_path)


class TestMetadataCannotInjectCode:
    """Item 1: every metadata value lands in comments and docstrings as inert, escaped text."""

    @given(meta_text)
    def test_comment_text_is_one_inert_ascii_line(self, text):
        """comment_text gives printable ASCII without line breaks, comment delimiters or bare quotes."""
        for lang in ("python", "c", "rust"):
            out = comment_text(text, lang)
            assert all(" " <= ch <= "~" for ch in out), out
        c = comment_text(text, "c")
        assert "*/" not in c and "/*" not in c and "??" not in c
        py = comment_text(text, "python")
        assert ast.literal_eval('r"""' + py + ' """') == py + " "  # no quote ends the raw docstring early

    def test_plain_text_is_unchanged(self):
        """Ordinary metadata (printable ASCII without delimiters) is written as it is."""
        s = "exp2 on [0, 1]: Lawson minimax, (tuned) 0.87 ULP"
        assert comment_text(s, "c") == comment_text(s, "rust") == comment_text(s, "python") == s

    @given(metadata)
    def test_python_export_docstrings_hold_the_escaped_metadata(self, meta):
        """Any metadata gives a module whose docstrings equal the escaped text and whose code is unchanged."""
        code = to_python(PROGRAM, "f", meta)
        tree = ast.parse(code)
        header = "\n".join(comment_text(ln, "python") for ln in pysearch.export.header_lines(PROGRAM, "f", meta))
        assert ast.get_docstring(tree, clean=False).startswith(header + "\n\nStandalone:")
        fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "f")
        assert ast.get_docstring(fn, clean=False).startswith(comment_text(meta["target"], "python") + " approximation;")
        assert _without_docstrings(tree) == _without_docstrings(ast.parse(to_python(PROGRAM, "f")))
        namespace: dict = {}
        exec(compile(tree, "<export>", "exec"), namespace)
        assert (_bits(namespace["f"](SAMPLES)) == _bits(pysearch.evaluate(PROGRAM, SAMPLES))).all()

    @given(metadata)
    def test_rust_export_header_is_single_line_comments(self, meta):
        """Every Rust header line is one '//' comment line, the code below is unchanged, and the doc
        comment of `f` carries the first two header lines as Markdown-escaped text."""
        code = to_rust(PROGRAM, "f", meta)
        assert _code_after_header(code, "rust") == _code_after_header(to_rust(PROGRAM, "f"), "rust")
        head = pysearch.export.header_lines(PROGRAM, "f", meta)
        docs = code.split("\npub fn f(")[0].rsplit("\n\n", 1)[1].splitlines()
        assert docs[:2] == [f"/// {doc_text(head[0])}", f"/// {doc_text(head[1])}"]

    @given(meta_text)
    def test_doc_text_escapes_all_markdown(self, text):
        """doc_text is one line of printable ASCII in which every Markdown character has a backslash before it."""
        out = doc_text(text)
        assert all(" " <= ch <= "~" for ch in out)
        assert not re.search(r"[`*\[\]<>&|~]", re.sub(r"\\.", "", out)), out

    @needs_rustc
    def test_hostile_metadata_makes_no_doctest(self, tmp_path):
        """Metadata that would open a code fence, an indented block or HTML in a doc comment gives no doctest:
        `rustdoc --test` on the export (single function and library module) runs nothing."""
        hostile = {"target": "x\n```\nfn main() { panic!() }\n```\n    panic!()\n<script> pys_floorf(x)",
                   "max_ulp": "`1`\n~~~", "verified": "exhaustive", "description": "```rust\npanic!()\n```"}
        for i, code in enumerate((to_rust(PROGRAM, "f", hostile),
                                  export_many([(PROGRAM, "f", hostile), (PROGRAM, "g", hostile)], "rust"))):
            src = tmp_path / f"k{i}.rs"
            src.write_text(code)
            r = subprocess.run([RUSTDOC, "--test", "--edition", "2021", "--crate-type", "lib", str(src)],
                               capture_output=True, text=True, cwd=tmp_path)
            assert r.returncode == 0 and "running 0 tests" in r.stdout, r.stdout + r.stderr
            # a helper named in the metadata is not emitted (it would be dead code: an error under -D warnings)
            r = subprocess.run([RUSTC, "--edition", "2021", "--crate-type", "lib", "-D", "warnings", "--emit",
                                "metadata", "-o", str(tmp_path / "k.rmeta"), str(src)], capture_output=True, text=True)
            assert r.returncode == 0 and "fn pys_floorf" not in code, r.stderr[-2000:]

    @given(metadata)
    def test_c_export_header_is_one_comment(self, meta):
        """The C header is one block comment that nothing ends early, and the code below is unchanged."""
        code = to_c(PROGRAM, "f", meta)
        assert _code_after_header(code, "c") == _code_after_header(to_c(PROGRAM, "f"), "c")

    @needs_gcc
    @settings(max_examples=8)
    @given(metadata)
    def test_c_export_with_any_metadata_compiles(self, tmp_path_factory, meta):
        """gcc -fsyntax-only accepts the C export whatever the metadata (warnings are errors)."""
        r = _gcc(tmp_path_factory.mktemp("c"), to_c(PROGRAM, "f", meta), "-fsyntax-only")
        assert r.returncode == 0, r.stderr

    @needs_gcc
    @needs_rustc
    def test_hostile_front_json_exports_compile_and_run_nothing(self, tmp_path, capsys):
        """A shared front.json whose target tries to break out gives code that compiles and runs nothing."""
        target = 'x"""; PWNED = 1; """\n*/ int pwned; /*\npub fn pwned() {}\n\\'
        entry = {"text": PROGRAM.to_text(), "max_ulp": 1, "verified": "exhaustive", "ops": 1, "cost": 2, "latency": 4}
        # fields with a fixed type or vocabulary are checked on reading: a hostile value there is refused
        for key, hostile in (("verified", 'a"""\n*/'), ("ops", "1\n*/"), ("cost", "2\n")):
            bad = {"schema": 1, "target": "t", "domain": [0, 1], "programs": [{**entry, key: hostile}]}
            (tmp_path / "front.json").write_text(json.dumps(bad))
            assert cli_main(["export", str(tmp_path / "front.json"), "--lang", "c"]) == 2
            err = capsys.readouterr().err.strip()
            assert key in err and len(err.splitlines()) == 1
        # the free-text target passes through, escaped
        front = {"schema": 1, "target": target, "domain": [0, 1], "programs": [entry]}
        (tmp_path / "front.json").write_text(json.dumps(front))
        for lang in ("python", "c", "rust"):
            out = tmp_path / f"k.{ {'python': 'py', 'c': 'c', 'rust': 'rs'}[lang] }"
            assert cli_main(["export", str(tmp_path / "front.json"), "--lang", lang, "--out", str(out)]) == 0
        namespace: dict = {}
        exec(compile((tmp_path / "k.py").read_text(), "k.py", "exec"), namespace)
        assert "PWNED" not in namespace and "approx" in namespace
        r = _gcc(tmp_path, (tmp_path / "k.c").read_text(), "-c", "-o", str(tmp_path / "k.o"))
        assert r.returncode == 0, r.stderr
        nm = subprocess.run(["nm", str(tmp_path / "k.o")], capture_output=True, text=True).stdout
        assert "pwned" not in nm
        r = subprocess.run([RUSTC, "--edition", "2021", "--crate-type", "lib", "-D", "warnings", "--emit",
                            "metadata", "-o", str(tmp_path / "k.rmeta"), str(tmp_path / "k.rs")],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        rust_code = _code_after_header((tmp_path / "k.rs").read_text(), "rust")
        assert "pub fn pwned" not in rust_code and "pub fn approx(" in rust_code

    def test_malformed_domain_is_a_clear_error(self, tmp_path, capsys):
        """A domain that is not two numbers is a ValueError in Python and a one-line exit 2 on the CLI."""
        with pytest.raises(ExportError, match="domain"):
            to_c(PROGRAM, "f", {"domain": 5})
        front = {"schema": 1, "target": "t", "domain": "ab", "programs": [{"text": "v1 = add x 1\n"}]}
        (tmp_path / "front.json").write_text(json.dumps(front))
        assert cli_main(["export", str(tmp_path / "front.json")]) == 2
        err = capsys.readouterr().err.strip()
        assert "domain" in err and len(err.splitlines()) == 1


def _helper_names() -> dict[str, set[str]]:
    """Function names defined by the exporter's helper tables, read from the tables themselves."""
    return {
        "python": {m for src in _PY_HELPERS.values() for m in re.findall(r"^def (\w+)\(", src, re.MULTILINE)},
        "c": {m for src in _C_HELPERS.values() for m in re.findall(r"^static inline \w+ (\w+)\(", src, re.MULTILINE)},
        "rust": {m for src in _RUST_HELPERS.values() for m in re.findall(r"^fn (\w+)\(", src, re.MULTILINE)},
    }


class TestReservedNames:
    """Item 2: names that clash with emitted helpers, keywords or the C library are refused."""

    def test_every_helper_of_every_language_is_refused(self):
        """Each helper an exporter can emit is among its emitted names and refused as a function name."""
        for lang, names in _helper_names().items():
            assert names, lang
            assert names <= emitted_names(lang), (lang, names - emitted_names(lang))
            for name in names | emitted_names(lang):
                with pytest.raises(ExportError, match="cannot be used"):
                    export(PROGRAM, lang, name)

    @pytest.mark.parametrize(
        "name",
        ["fmaf", "memcpy", "size_t", "np", "_result", "int", "float", "def", "fn", "static", "math", "struct",
         "zip", "Fraction", "exp", "sqrtf", "uint8_t", "NAN", "M_PI", "y0", "strlen", "memfoo", "INT8_MAX",
         "__x", "_X", "_lower", "pys_min", "PYS_KERNEL", "PYSEARCH_KERNEL_f", "linux", "errno", "main", "f32"],
    )
    def test_reserved_names_are_refused(self, name):
        """Keywords, C library identifiers, emitted names and reserved prefixes give a ValueError naming why."""
        with pytest.raises(ValueError, match=f"function name '{name}' cannot be used: .+; pick another"):
            to_c(PROGRAM, name)

    @needs_gcc
    def test_c_header_identifiers_are_refused(self, tmp_path):
        """Every function, type and macro the included C headers declare (ISO and GNU modes) is refused."""
        (tmp_path / "h.c").write_text("".join(f"#include <{h}.h>\n" for h in ("math", "stddef", "stdint", "string")))
        declared = set()
        for std in ("c11", "gnu11"):
            pp = subprocess.run([GCC, f"-std={std}", "-E", "-P", "h.c"], capture_output=True, text=True,
                                cwd=tmp_path, check=True).stdout
            declared |= set(re.findall(r"\b([A-Za-z]\w*)\s*\(", pp))  # functions
            declared |= set(re.findall(r"\b([A-Za-z]\w*)\s*;", pp))  # typedef names (and variables)
            macros = subprocess.run([GCC, f"-std={std}", "-E", "-dM", "h.c"], capture_output=True, text=True,
                                    cwd=tmp_path, check=True).stdout
            declared |= set(re.findall(r"^#define ([A-Za-z]\w*)", macros, re.MULTILINE))
        declared -= {"__attribute__", "extern", "return", "int", "double", "float", "long", "char", "void"}
        allowed = sorted(n for n in declared if reserved_reason(n) is None)
        assert not allowed, f"C header identifiers accepted as function names: {allowed}"

    @needs_gcc
    def test_ordinary_names_compile_in_one_unit(self, tmp_path):
        """Names that are refused nowhere (even helper locals such as 'a' or 'u') compile side by side."""
        names = ["a", "u", "m", "approx", "kernel", "exp2_approx", "x"]
        assert all(reserved_reason(n) is None for n in names)
        r = _gcc(tmp_path, export_many([(PROGRAM, n, None) for n in names], "c"), "-fsyntax-only")
        assert r.returncode == 0, r.stderr

    def test_cli_reserved_name_exits_2(self, tmp_path, capsys):
        """--name memcpy is a one-line error with exit status 2."""
        f = tmp_path / "p.txt"
        f.write_text("v1 = mul x x\n")
        assert cli_main(["export", str(f), "--lang", "c", "--name", "memcpy"]) == 2
        err = capsys.readouterr().err.strip()
        assert "'memcpy' cannot be used" in err and len(err.splitlines()) == 1

    def test_default_name_skips_reserved_targets(self, tmp_path, capsys):
        """A target whose TARGET_approx would be reserved gets the plain default name instead of an error."""
        f = tmp_path / "p.txt"
        f.write_text("v1 = mul x x\n")
        assert cli_main(["export", str(f), "--lang", "c", "--target", "strength"]) == 0
        assert "float approx(float x)" in capsys.readouterr().out

    def test_inputs_named_like_emitted_names_still_work(self, tmp_path):
        """Inputs called _result, fmaf, np or fn_in are renamed apart, and the export computes the program."""
        p = parse("inputs _result,fmaf,np,fn,fn_in\nv1 = fma _result fmaf np\nv2 = add v1 fn\nv3 = mul v2 fn_in\n")
        namespace: dict = {}
        exec(compile(to_python(p, "f"), "<export>", "exec"), namespace)
        args = [np.float32(v) for v in (1.5, 2.0, 0.25, -1.0, 3.0)]
        want = pysearch.evaluate(p, np.array([[a] for a in args], dtype=np.float32))
        assert _bits(namespace["f"](*args)) == _bits(want)[0]
        if GCC:
            r = _gcc(tmp_path, to_c(p, "f"), "-fsyntax-only")
            assert r.returncode == 0, r.stderr


class TestLibraryExportByName:
    """Item 3: shipped library functions export by name with their verified metadata."""

    def test_cli_positional_library_name(self, tmp_path, capsys, monkeypatch):
        """`pysearch export exp2 --lang c` writes the library kernel with target, domain and bound."""
        monkeypatch.chdir(tmp_path)
        assert cli_main(["export", "exp2", "--lang", "c"]) == 0
        out = capsys.readouterr().out
        assert "exp2_approx: float32 approximation of exp2 on [-inf, inf]" in out
        assert "Max error: 0.867696 ULP, verified on every float32 of the domain." in out
        assert "library function: pysearch.library.exp2" in out and "float exp2_approx(float x)" in out
        assert "unknown target" not in out and "not measured" not in out

    def test_cli_library_flag_exports_exact_python(self, tmp_path, capsys):
        """--library NAME --lang python gives a module that reproduces the library function bit for bit."""
        out = tmp_path / "k.py"
        assert cli_main(["export", "--library", "log2", "--out", str(out)]) == 0
        code = out.read_text()
        fn = library.get("log2")
        assert f"Max error: {fn.max_ulp:.6g} ULP, verified on every float32" in code
        namespace: dict = {}
        exec(compile(code, str(out), "exec"), namespace)
        x = np.array([0.5, 1.0, 3.0, 1e-30, 7e30, np.inf, 0.0, -1.0], dtype=np.float32)
        assert (_bits(namespace["log2_approx"](x)) == _bits(fn(x))).all()

    def test_api_takes_a_library_function(self):
        """export() of a LibraryFunction fills the header from the library; meta keys override it."""
        fn = library.get("exp2_reduced")
        code = export(fn, "rust", "e2")
        assert f"on [{fn.domain[0]:.9g}, {fn.domain[1]:.9g}]" in code and "verified on every float32" in code
        assert "approximation of mine" in export(fn, "rust", "e2", {"target": "mine"})

    def test_a_file_of_that_name_wins(self, tmp_path, capsys, monkeypatch):
        """A file named like a library function is read as the file, not as the library function."""
        monkeypatch.chdir(tmp_path)
        Path("exp2").write_text("v1 = mul x x\n")
        assert cli_main(["export", "exp2", "--lang", "c"]) == 0
        assert "not measured" in capsys.readouterr().out

    @pytest.mark.parametrize(
        "argv, message",
        [
            (["--library", "nope"], "no library function 'nope'; available: "),
            (["p.txt", "--library", "exp2"], "not both"),
            (["--library", "exp2", "--pick", "1"], "--pick"),
            (["--library", "exp,exp2", "--lang", "python"], "C or Rust"),
            (["--library", "exp,exp2", "--lang", "c", "--name", "k"], "--name"),
            (["--library", "exp,exp", "--lang", "c"], "clashes"),
            ([], "--library NAME"),
        ],
    )
    def test_bad_library_requests_exit_2(self, tmp_path, capsys, monkeypatch, argv, message):
        """Unknown names and contradictory options are one-line errors with exit status 2."""
        monkeypatch.chdir(tmp_path)
        Path("p.txt").write_text("v1 = mul x x\n")
        assert cli_main(["export", *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1


_C_DRIVER = r"""
#include <stdio.h>
#include <string.h>
float exp_approx(float);
float exp2_approx(float);
int main(void) {
    const float xs[] = {XS};
    for (size_t i = 0; i < sizeof xs / sizeof xs[0]; i++) {
        float a = exp_approx(xs[i]), b = exp2_approx(xs[i]);
        unsigned ua, ub;
        memcpy(&ua, &a, 4);
        memcpy(&ub, &b, 4);
        printf("%08x %08x\n", ua, ub);
    }
    return 0;
}
"""


class TestOneTranslationUnit:
    """Item 4: exported C kernels concatenate into one translation unit; helpers are defined once."""

    @needs_gcc
    def test_cat_of_two_exports_compiles_and_stays_exact(self, tmp_path):
        """`cat exp.c exp2.c` (and one file twice) compiles warning-free, and both kernels stay bit-exact."""
        for name in ("exp", "exp2"):
            assert cli_main(["export", "--library", name, "--lang", "c", "--out", str(tmp_path / f"{name}.c")]) == 0
        both = (tmp_path / "exp.c").read_text() + (tmp_path / "exp2.c").read_text()
        (tmp_path / "both.c").write_text(both + (tmp_path / "exp2.c").read_text())
        xs = np.array([-104.5, -3.0, -0.0, 0.1, 1.0, 2.5, 88.7, 127.9], dtype=np.float32)
        (tmp_path / "main.c").write_text(_C_DRIVER.replace("XS", ", ".join(f"{float(v).hex()}f" for v in xs)))
        r = subprocess.run([GCC, "-O2", *C_FLAGS, "-o", "prog", "both.c", "main.c", "-lm"],
                           capture_output=True, text=True, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        rows = subprocess.run([str(tmp_path / "prog")], capture_output=True, text=True, check=True).stdout.split()
        got = np.array([int(v, 16) for v in rows], dtype=np.uint32).reshape(-1, 2)
        assert (got[:, 0] == _bits(library.get("exp")(xs))).all()
        assert (got[:, 1] == _bits(library.get("exp2")(xs))).all()

    @needs_gcc
    def test_library_list_writes_one_c_file(self, tmp_path):
        """--library exp,exp2,log --lang c writes one file with three headers that compiles."""
        out = tmp_path / "all.c"
        assert cli_main(["export", "--library", "exp,exp2,log", "--lang", "c", "--out", str(out)]) == 0
        code = out.read_text()
        for name in ("exp", "exp2", "log"):
            assert f"library function: pysearch.library.{name}\n" in code and f"float {name}_approx(float x)" in code
        r = _gcc(tmp_path, code, "-c", "-o", "all.o")
        assert r.returncode == 0, r.stderr

    @needs_gcc
    def test_two_programs_of_one_name_do_not_pass_silently(self, tmp_path):
        """Two different programs exported under the same name are a compile error, not a silent pick."""
        r = _gcc(tmp_path, to_c("v1 = add x 1\n", "k") + to_c("v1 = add x 2\n", "k"), "-fsyntax-only")
        assert r.returncode != 0 and "redefinition" in r.stderr

    def test_export_many_refuses_clashing_names(self):
        """Names that repeat, or that equal another kernel's NAME_array, are refused before any code is written."""
        with pytest.raises(ExportError, match="clashes"):
            export_many([(PROGRAM, "k", None), (PROGRAM, "k", None)], "c")
        with pytest.raises(ExportError, match="clashes"):
            export_many([(PROGRAM, "k", None), (PROGRAM, "k_array", None)], "c")
        with pytest.raises(ExportError, match="clashes"):
            export_many([(PROGRAM, "k", None), (PROGRAM, "k_slice", None)], "rust")


class TestOneRustModule:
    """Several library kernels as one Rust module: the mode note and each helper once, every function
    documented with its verified bound, no warnings from rustc or clippy."""

    @needs_rustc
    def test_library_list_writes_one_rust_module(self, tmp_path):
        """--library exp,exp2,log --lang rust writes one module: each helper defined once, each function with
        its header comment and a doc comment stating its verified bound; rustc (and clippy) -D warnings pass."""
        out = tmp_path / "all.rs"
        assert cli_main(["export", "--library", "exp,exp2,log", "--lang", "rust", "--out", str(out)]) == 0
        code = out.read_text()
        defined = re.findall(r"^fn (\w+)\(", code, re.MULTILINE)
        assert len(defined) == len(set(defined)) and code.count("fn pys_fp_mode_ok()") == 1
        assert {"pys_rintf", "pys_ldexp2f", "pys_exp2_intf", "pys_getexpf", "pys_getmantf"} <= set(defined)
        for name in ("exp", "exp2", "log"):
            fn = library.get(name)
            assert f"// library function: pysearch.library.{name}\n" in code
            doc = f"/// Max error: {fn.max_ulp:.6g} ULP, verified on every float32 of the domain.\n"
            assert doc + "///\n/// Bit for bit" in code
            assert f"pub fn {name}_approx(x: f32) -> f32 {{" in code
            assert f"pub fn {name}_approx_slice(x: &[f32], y: &mut [f32]) -> usize {{" in code
        compilers = [[RUSTC, "-C", "opt-level=3", "-C", "target-cpu=native"]] + ([[CLIPPY]] if CLIPPY else [])
        for cc in compilers:
            r = subprocess.run([*cc, "--edition", "2021", "--crate-type", "lib", "-D", "warnings", "--emit", "metadata",
                                "-o", str(tmp_path / "all.rmeta"), str(out)], capture_output=True, text=True)
            assert r.returncode == 0, r.stderr[-3000:]

    @pytest.mark.skipif(CLIPPY is None, reason="clippy is not installed")
    def test_every_op_export_is_clippy_clean(self, tmp_path):
        """A float32 and a float64 program that use every op export to Rust that clippy passes with -D warnings."""
        for dtype in ("float32", "float64"):
            ops = [op for op in OPS if dtype in op.dtypes]
            text = f"dtype {dtype}\ninputs x, y\n" + "".join(
                f"t{i} = {op.name} {' '.join(['x', 'y', 'x'][:op.arity])}\n" for i, op in enumerate(ops))
            text += "".join(f"s{i} = add {'t0' if i == 1 else f's{i - 1}'} t{i}\n" for i in range(1, len(ops)))
            src = tmp_path / f"k_{dtype}.rs"
            src.write_text(to_rust(parse(text), "k"))
            r = subprocess.run([CLIPPY, "--edition", "2021", "--crate-type", "lib", "-D", "warnings", "--emit",
                                "metadata", "-o", str(tmp_path / "k.rmeta"), str(src)], capture_output=True, text=True)
            assert r.returncode == 0, r.stderr[-3000:]


class TestAtomicOutput:
    """Item 5: export --out writes through pysearch.fileio and never follows planted links."""

    def test_planted_tmp_symlink_is_not_followed(self, tmp_path):
        """A symlink out.c.tmp -> victim planted beside the target leaves the victim untouched."""
        victim = tmp_path / "victim"
        victim.write_text("precious\n")
        for planted in ("out.c.tmp", ".out.c.tmp"):
            os.symlink(victim, tmp_path / planted)
        out = tmp_path / "out.c"
        assert cli_main(["export", "--library", "exp2", "--lang", "c", "--out", str(out)]) == 0
        assert victim.read_text() == "precious\n"
        assert (tmp_path / "out.c.tmp").is_symlink() and os.readlink(tmp_path / "out.c.tmp") == str(victim)
        assert not out.is_symlink() and "float exp2_approx(float x)" in out.read_text()
        assert sorted(p.name for p in tmp_path.iterdir()) == [".out.c.tmp", "out.c", "out.c.tmp", "victim"]

    def test_symlink_at_the_target_is_replaced_not_written_through(self, tmp_path):
        """An --out path that is a symlink gets a new file in its place; the file it pointed to is unchanged."""
        victim = tmp_path / "victim"
        victim.write_text("precious\n")
        out = tmp_path / "out.rs"
        os.symlink(victim, out)
        assert cli_main(["export", "--library", "exp2", "--lang", "rust", "--out", str(out)]) == 0
        assert victim.read_text() == "precious\n" and not out.is_symlink() and "pub fn exp2_approx" in out.read_text()

    @pytest.mark.parametrize("where, message", [("missing/k.c", "does not exist"), (".", "is a directory")])
    def test_bad_out_paths_exit_2(self, tmp_path, capsys, where, message):
        """An --out in a missing directory, or naming a directory, is a one-line error with exit status 2."""
        assert cli_main(["export", "--library", "exp2", "--out", str(tmp_path / where)]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1
