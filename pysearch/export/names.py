"""Which names an export may use: the function's name, and its parameters renamed away from clashes.

A name is reserved when the exported code itself uses it (found by exporting programs that use
every op and reading the code back: :func:`emitted_names`), when it is a Python, C or Rust
keyword, when the included C headers declare or reserve it (:mod:`pysearch.export.c_stdlib`),
or when it has the prefix of pysearch's own helpers or a leading underscore.
"""

from __future__ import annotations

import keyword
import re
import symtable
from functools import cache

from pysearch.export import c, python, rust
from pysearch.export.c_stdlib import c_stdlib_reserves
from pysearch.export.common import LANGUAGES, ExportError, Plan
from pysearch.ops import OPS
from pysearch.program import Program, parse

_C_KEYWORDS = frozenset(
    "auto break case char const continue default do double else enum extern float for goto if inline int long "
    "register restrict return short signed sizeof static struct switch typedef union unsigned void volatile while "
    "_Alignas _Alignof _Atomic _Bool _Complex _Generic _Imaginary _Noreturn _Static_assert _Thread_local "
    "bool true false alignas alignof noreturn static_assert thread_local asm typeof main errno".split()
)
_RUST_KEYWORDS = frozenset(
    "as async await break const continue crate dyn else enum extern false fn for if impl in let loop match mod move "
    "mut pub ref return self Self static struct super trait true type unsafe use where while abstract become box do "
    "final macro override priv typeof unsized virtual yield try f32 f64 main".split()
)
#: Prefixes of the names pysearch's own exported helpers, macros and guards use.
_OWN_PREFIXES = ("pys_", "PYS_", "PYSEARCH_")
#: Locals of the exported function bodies (array loops: ``out``, ``n``, ``i``); inputs are renamed away from them.
_BODY_LOCALS = frozenset({"out", "n", "i", "shape"})
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_LOCAL = re.compile(r"[vcC]\d+\Z")
_WRITERS = {"python": python.write, "c": c.write, "rust": rust.write}

_PROBE = "pys_probe"


def _probe_programs() -> list[Program]:
    """Programs that between them use every op in both dtypes, and the float32 forms an exporter
    specialises (an ``ldexp`` exponent bounded to an integer or not), so every helper is emitted."""
    out = []
    for dtype in ("float32", "float64"):
        lines = [f"dtype {dtype}", "inputs x,y"]
        for op in OPS:
            if op.float64_only and dtype != "float64":
                continue
            lines.append(f"t_{op.name} = {op.name} {' '.join(['x', 'y', 'x'][:op.arity])}")
        if dtype == "float32":
            lines += ["b_lo = max y -200", "b_hi = min b_lo 200", "b_int = rint b_hi",
                      "t_ldexp_int = ldexp x b_int", "t_ldexp_frac = ldexp x b_hi"]
        names = [ln.split()[0] for ln in lines[2:]]
        acc = names[0]
        for k, nm in enumerate(names[1:]):
            lines.append(f"s{k} = add {acc} {nm}")
            acc = f"s{k}"
        lines.append(f"s_const = fma {acc} 0.5 1")
        out.append(parse("\n".join(lines) + "\n"))
    return out


@cache
def emitted_names(lang: str) -> frozenset[str]:
    """The file-scope names the exporter's own ``lang`` code defines or uses.

    Found by exporting programs that use every op and reading the code back, so a new helper is
    covered without a list to keep: for Python, the module's own names and every global or
    builtin a function looks up (``np``, ``_fma32``, ``float``, ``zip``, ...; from ``symtable``);
    for C, every function defined or called, macro, and ``_t`` type (``pys_minf``, ``fmaf``,
    ``memcpy``, ``uint32_t``, ``NAN``, ``PYS_KERNEL``, ...); for Rust, every function defined or
    called and every path root (``pys_min``, ``f32``, ...). Method and attribute names, and the
    locals of helpers, are not included: a function of that name cannot clash with them.
    """
    writer = _WRITERS[lang]
    names: set[str] = set()
    for program in _probe_programs():
        code = writer(Plan(program), _PROBE, None)
        if lang == "python":
            names |= _python_globals(code)
        else:
            names |= _c_like_globals(code, lang)
    return frozenset(n for n in names if _PROBE not in n)


def _python_globals(code: str) -> set[str]:
    top = symtable.symtable(code, "<export>", "exec")
    names = {s.get_name() for s in top.get_symbols()}
    todo = list(top.get_children())
    while todo:
        table = todo.pop()
        names |= {s.get_name() for s in table.get_symbols() if s.is_global()}
        todo += table.get_children()
    return names


def _c_like_globals(code: str, lang: str) -> set[str]:
    code = re.sub(r"/\*.*?\*/|//[^\n]*", " ", code, flags=re.DOTALL)
    code = re.sub(r"\b0x[0-9a-fA-F_.]+(?:p[+-]?\d+)?\w*|\b\d[\w.]*", " ", code)  # numbers
    names = set(re.findall(r"(?<![\w.:])([A-Za-z_]\w*)\s*(?:\(|::)", code))  # calls, definitions, path roots
    for fn_name, macro in re.findall(r"\bfn\s+(\w+)|#\s*(?:define|ifndef|ifdef)\s+(\w+)", code):
        names.add(fn_name or macro)
    if lang == "c":
        names |= set(re.findall(r"\b(\w+_t|[A-Z][A-Z0-9_]*[A-Z0-9])\b", code))  # types and macros
        return names - _C_KEYWORDS
    return names - _RUST_KEYWORDS - set(re.findall(r"\blet\s+(?:mut\s+)?(\w+)", code))  # closures are locals


def reserved_reason(name: str) -> str | None:
    """Why ``name`` cannot name an exported function or parameter (``None`` when it can)."""
    for lang in LANGUAGES:
        if name in emitted_names(lang):
            return f"the exported {'Python' if lang == 'python' else lang.capitalize()} code uses {name!r} itself"
    if keyword.iskeyword(name):
        return f"{name!r} is a Python keyword"
    if name in _C_KEYWORDS:
        return f"{name!r} is a C keyword or reserved identifier"
    if name in _RUST_KEYWORDS:
        return f"{name!r} is a Rust keyword or primitive type"
    if c_stdlib_reserves(name):
        return f"{name!r} is declared or reserved by the C headers the C export includes (math.h, string.h, ...)"
    if name.startswith(_OWN_PREFIXES):
        return f"names beginning with {', '.join(repr(p) for p in _OWN_PREFIXES)} are kept for pysearch's helpers"
    if name.startswith("_"):
        return "names beginning with '_' are reserved in C (at file scope; '__' and '_' + uppercase everywhere)"
    return None


def check_name(name: object) -> str:
    """``name`` if it can name an exported function, else an :class:`ExportError` saying why not."""
    if not isinstance(name, str) or not _IDENT.match(name):
        raise ExportError(f"function name must be an ASCII identifier ([A-Za-z_][A-Za-z0-9_]*), got {name!r:.80}")
    why = reserved_reason(name)
    if why:
        raise ExportError(f"function name {name!r} cannot be used: {why}; pick another")
    return name


def param_names(program: Program) -> list[str]:
    """Input names usable as parameters in every language (clashes get a trailing '_in')."""
    taken = set(program.inputs)
    out: list[str] = []

    def usable(n: str) -> bool:
        return not (reserved_reason(n) or n in _BODY_LOCALS or _LOCAL.match(n))

    for n in program.inputs:
        if not usable(n):
            base = n.lstrip("_") or "x"
            candidates = [f"{base}_in", f"in_{base}"] + [f"in_{base}_{k}" for k in range(2, len(taken) + 3)]
            n = next(c for c in candidates if c not in taken and usable(c))
            taken.add(n)
        out.append(n)
    return out
