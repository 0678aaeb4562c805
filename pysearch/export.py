"""Programs as source code: standalone Python (numpy), C and Rust that agree bit for bit.

Each export is a complete file: a header comment (target, domain, verified error, cost, ops,
latency, and the program text), small helpers for the operations a language lacks (exact float32
fma for numpy; ``min``/``max``/``ldexp``/``getexp``/``getmant`` with the semantics of
``docs/program-format.md``), and the function. Constants appear in exact form: hex-float
literals in C, ``float.fromhex`` in Python, ``from_bits`` in Rust, each with its decimal value
in a comment. C code must be compiled without contraction of ``a * b + c``
(``-ffp-contract=off``, the default for ``-std=c11``). The C program body is a ``static inline``
kernel called by both the public ``NAME`` and the array loop ``NAME_array`` (a call to the public,
interposable symbol would go through the PLT under ``-fPIC`` and stop inlining), and the float32
helpers are branch-free, so GCC vectorises the array loop. C helpers and kernels sit inside include
guards, so several exported C files make one translation unit (:func:`export_many`).

Nothing from the metadata (a shared ``front.json`` or ``--target``) becomes code: every value is
written through :func:`comment_text`, which keeps it on one line of inert ASCII. Function names
that the exported code itself uses, keywords and the identifiers of the included C headers are
refused (:func:`reserved_reason`); inputs named like them are renamed.
"""

from __future__ import annotations

import hashlib
import keyword
import math
import re
import symtable
from functools import cache
from typing import Mapping, Sequence

import numpy as np

from pysearch.c_stdlib import c_stdlib_reserves
from pysearch.library import LibraryFunction
from pysearch.ops import OP_BY_NAME, OPS
from pysearch.program import Program, Ref, as_program, format_const, parse

LANGUAGES = ("python", "c", "rust")

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


class ExportError(ValueError):
    """A function name, input or metadata value that cannot be exported."""


# ============================================================================ common


def comment_text(value: object, lang: str) -> str:
    r"""``value`` as one line of printable ASCII that is inert inside a ``lang`` comment or docstring.

    Printable ASCII stays as it is, except that a backslash is doubled; every other character
    (newline, control, non-ASCII) is written as ``\n``, ``\xNN``, ``\uXXXX`` or ``\UXXXXXXXX``
    (Python's ``unicode_escape``), so the text cannot end a ``//`` comment. For C, ``*/``, ``/*``
    and ``??`` are broken up with a space (``* /``, ``/ *``, ``? ?``: no comment ends or nests, and
    no trigraph splices lines). For Python, whose docstrings are raw strings, each double quote
    gets a backslash before it, so no triple quote ends the docstring.
    """
    if lang not in LANGUAGES:
        raise ValueError(f"unknown language {lang!r}; choose one of {', '.join(LANGUAGES)}")
    text = str(value).encode("unicode_escape").decode("ascii")
    if lang == "c":
        text = re.sub(r"\*(?=/)|/(?=\*)|\?(?=\?)", lambda m: m.group() + " ", text)
    elif lang == "python":
        text = text.replace('"', '\\"')
    return text


_PROBE = "pys_probe"


def _probe_programs() -> list[Program]:
    """Programs that between them use every op in both dtypes (so every helper is emitted)."""
    out = []
    for dtype in ("float32", "float64"):
        lines = [f"dtype {dtype}", "inputs x,y"]
        for op in OPS:
            if op.float64_only and dtype != "float64":
                continue
            lines.append(f"t_{op.name} = {op.name} {' '.join(['x', 'y', 'x'][:op.arity])}")
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
    writer = {"python": _to_python, "c": _to_c, "rust": _to_rust}[lang]
    names: set[str] = set()
    for program in _probe_programs():
        code = writer(program, _PROBE, None, probe=True)
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


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not _IDENT.match(name):
        raise ExportError(f"function name must be an ASCII identifier ([A-Za-z_][A-Za-z0-9_]*), got {name!r:.80}")
    why = reserved_reason(name)
    if why:
        raise ExportError(f"function name {name!r} cannot be used: {why}; pick another")
    return name


def _param_names(program: Program) -> list[str]:
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


class _Plan:
    """The pruned program with names for its constants, values and inputs."""

    def __init__(self, program: Program | str, probe: bool = False) -> None:
        self.program = as_program(program).pruned()
        self.dtype = self.program.dtype
        # the probe that finds the reserved names cannot ask which names are reserved
        self.params = list(self.program.inputs) if probe else _param_names(self.program)
        self.consts: list[float] = []
        self._const_index: dict[int, int] = {}
        for ins in self.program.instrs:
            for a in ins.args:
                if a.kind == "const":
                    key = int(np.array(a.value, dtype=np.float64).view(np.uint64))
                    if key not in self._const_index:
                        self._const_index[key] = len(self.consts)
                        self.consts.append(a.value)
        self.ops = {ins.op for ins in self.program.instrs}

    def ref(self, a: Ref) -> str:
        if a.kind == "input":
            return self.params[a.index]
        if a.kind == "value":
            return f"v{a.index + 1}"
        key = int(np.array(a.value, dtype=np.float64).view(np.uint64))
        return f"c{self._const_index[key] + 1}"

    def uses_input(self) -> list[bool]:
        used = [False] * len(self.params)
        for ins in self.program.instrs:
            for a in ins.args:
                if a.kind == "input":
                    used[a.index] = True
        return used


def _fmt_num(v: object, nd: int = 6) -> str:
    try:
        v = float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(v)
    return f"{v:.{nd}g}"


def _domain_text(dom: object) -> str:
    if isinstance(dom, (list, tuple)) and len(dom) == 2:
        try:
            lo, hi = (float(v) for v in dom)
        except (TypeError, ValueError):
            pass
        else:
            return f" on [{_fmt_num(lo, 9)}, {_fmt_num(hi, 9)}]"
    raise ExportError(f"metadata 'domain' must be two numbers [a, b], got {dom!r:.80}")


def header_lines(program: Program, name: str, meta: Mapping | None) -> list[str]:
    """The header comment's lines, unescaped and without comment markers (see :func:`comment_text`)."""
    meta = dict(meta or {})
    p = as_program(program)
    target = meta.get("target", "unknown target")
    dom = meta.get("domain")
    dom_s = _domain_text(dom) if dom is not None else ""
    lines = [f"{name}: {p.dtype} approximation of {target}{dom_s}, exported by pysearch."]
    if meta.get("max_ulp") is not None:
        how = meta.get("verified")
        if how == "exhaustive":
            how_s = ", verified on every float32 of the domain" if p.dtype == "float32" else ", verified exhaustively"
        else:
            how_s = f" ({how}, not a bound)" if how else " (how it was measured is not recorded)"
        lines.append(f"Max error: {_fmt_num(meta['max_ulp'])} ULP{how_s}.")
    else:
        lines.append("Max error: not measured.")
    lines.append(
        f"Cost {_fmt_num(meta.get('cost', p.cost()))}, ops {meta.get('ops', p.ops)}, "
        f"critical-path latency {_fmt_num(meta.get('latency', p.latency()))} cycles."
    )
    for key in sorted(set(meta) - {"target", "domain", "max_ulp", "verified", "cost", "ops", "latency"}, key=str):
        lines.append(f"{key}: {meta[key]}")
    lines.append("Program:")
    lines += ["    " + ln for ln in p.pruned().to_text().splitlines()]
    return lines


def library_meta(fn: LibraryFunction) -> dict:
    """Header metadata of a shipped library function: target, domain, verified bound and provenance."""
    return {
        "target": fn.target, "domain": list(fn.domain), "max_ulp": fn.max_ulp, "verified": fn.verified,
        "cost": fn.cost, "ops": fn.ops, "latency": fn.latency, "library function": f"pysearch.library.{fn.name}",
        "points checked": fn.n_points, "found": fn.found, "description": fn.description,
    }


def _source(program: Program | str | LibraryFunction, meta: Mapping | None) -> tuple[Program | str, dict | None]:
    """The program and header metadata; a library function brings its own (``meta`` overrides keys)."""
    if isinstance(program, LibraryFunction):
        return program.program, {**library_meta(program), **(meta or {})}
    return program, None if meta is None else dict(meta)


def export(program: Program | str | LibraryFunction, lang: str, name: str = "approx",
           meta: Mapping | None = None) -> str:
    """Source code for ``program`` in ``lang`` (``'python'``, ``'c'`` or ``'rust'``).

    ``program`` may be a :mod:`pysearch.library` function, whose verified metadata fills the header.
    A reserved or clashing ``name`` is an :class:`ExportError` (a ``ValueError``).
    """
    if lang not in LANGUAGES:
        raise ExportError(f"unknown language {lang!r}; choose one of {', '.join(LANGUAGES)}")
    return {"python": to_python, "c": to_c, "rust": to_rust}[lang](program, name, meta)


def export_many(items: Sequence[tuple[Program | str | LibraryFunction, str, Mapping | None]], lang: str) -> str:
    """Several functions in one C file: ``(program, name, meta)`` each; helpers are defined once.

    Each exported C file guards its helpers and its kernel, so this is their concatenation (and
    ``cat a.c b.c`` works the same). Only C: Python and Rust exports are one function per file.
    """
    if lang != "c":
        raise ExportError(f"several functions in one file are exported as C only, not {lang!r}")
    if not items:
        raise ExportError("nothing to export")
    seen: dict[str, str] = {}
    for _, name, _ in items:
        for defined in (name, f"{name}_array"):
            if defined in seen:
                raise ExportError(f"function name {name!r} clashes with {seen[defined]!r} in the same file")
            seen[defined] = name
    return "\n".join(to_c(p, name, meta) for p, name, meta in items)


# ============================================================================ Python

_PY_HELPERS = {
    "fma32": '''
def _fma32(a, b, c):
    """float32 a * b + c with one rounding.

    The product of two float32 values is exact in float64; the sum is made exact with TwoSum,
    rounded to odd at 53 bits, then to nearest at 24 bits (two extra bits make the double
    rounding innocuous).
    """
    a, b, c = (np.asarray(v, dtype=np.float32).astype(np.float64) for v in (a, b, c))
    p = a * b
    s = p + c
    z = s - p
    err = (p - (s - z)) + (c - z)
    odd = (s.view(np.uint64) & np.uint64(1)) == 1
    nudge = np.isfinite(s) & (err != 0) & ~odd
    s = np.where(nudge, np.nextafter(s, np.copysign(np.inf, err)), s)
    return s.astype(np.float32)
''',
    "fma64": '''
def _fma64_scalar(a, b, c):
    if not (math.isfinite(a) and math.isfinite(b)):
        return a * b + c
    if not math.isfinite(c):
        return c  # the exact product is finite, even where a * b would overflow
    exact = Fraction(a) * Fraction(b) + Fraction(c)
    if exact == 0:
        product_negative = (math.copysign(1.0, a) * math.copysign(1.0, b) < 0)
        both_zero_negative = a * b == 0 and c == 0 and product_negative and math.copysign(1.0, c) < 0
        return -0.0 if both_zero_negative else 0.0
    try:
        return float(exact)  # int / int division: correctly rounded
    except OverflowError:
        return math.inf if exact > 0 else -math.inf


def _fma64(a, b, c):
    """float64 a * b + c with one rounding (exact rational arithmetic, element by element)."""
    a, b, c = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (a, b, c)))
    out = [_fma64_scalar(*t) for t in zip(a.ravel().tolist(), b.ravel().tolist(), c.ravel().tolist())]
    return np.array(out, dtype=np.float64).reshape(a.shape)
''',
    "min": '''
def _min(a, b):
    """NaN if either is NaN; the smaller; min(+0, -0) = -0; for equal operands a."""
    a, b = np.broadcast_arrays(a, b)
    r = np.where(b < a, b, a)
    both_zero = (a == 0) & (b == 0)
    r = np.where(both_zero, np.where(np.signbit(a) | np.signbit(b), -np.abs(a), np.abs(a)), r)
    return np.where(np.isnan(a) | np.isnan(b), a.dtype.type(np.nan), r)
''',
    "max": '''
def _max(a, b):
    """NaN if either is NaN; the larger; max(+0, -0) = +0; for equal operands a."""
    a, b = np.broadcast_arrays(a, b)
    r = np.where(b > a, b, a)
    both_zero = (a == 0) & (b == 0)
    r = np.where(both_zero, np.where(np.signbit(a) & np.signbit(b), -np.abs(a), np.abs(a)), r)
    return np.where(np.isnan(a) | np.isnan(b), a.dtype.type(np.nan), r)
''',
    "ldexp32": '''
def _ldexp32(a, b):
    """float32 a * 2**k, k = trunc(clamp(b, -300, 300)), one rounding; NaN b gives NaN."""
    a, b = np.broadcast_arrays(np.asarray(a, dtype=np.float32), np.asarray(b, dtype=np.float32))
    nan_b = np.isnan(b)
    k = np.trunc(np.clip(np.where(nan_b, 0, b), -300, 300)).astype(np.int64)
    r = np.ldexp(a.astype(np.float64), k).astype(np.float32)  # exact in float64, then one rounding
    return np.where(nan_b, np.float32(np.nan), r)
''',
    "ldexp64": '''
def _ldexp64(a, b):
    """float64 a * 2**k, k = trunc(clamp(b, -2200, 2200)), one rounding; NaN b gives NaN."""
    a, b = np.broadcast_arrays(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
    nan_b = np.isnan(b)
    k = np.trunc(np.clip(np.where(nan_b, 0, b), -2200, 2200)).astype(np.int64)
    return np.where(nan_b, np.nan, np.ldexp(a, k))
''',
    "getexp": '''
def _getexp(a):
    """floor(log2|a|) as a float; +-0 -> -inf, +-inf -> +inf, NaN -> NaN."""
    a = np.asarray(a)
    _, e = np.frexp(a.astype(np.float64))
    r = (e - 1).astype(np.float64)
    r = np.where(a == 0, -np.inf, r)
    r = np.where(np.isinf(a), np.inf, r)
    r = np.where(np.isnan(a), np.nan, r)
    return r.astype(a.dtype)
''',
    "getmant": '''
def _getmant(a):
    """a / 2**getexp(a), sign kept, |m| in [1, 2); +-0, +-inf and NaN are returned as they are."""
    a = np.asarray(a)
    m, _ = np.frexp(a)
    special = (a == 0) | ~np.isfinite(a)
    return np.where(special, a, m * a.dtype.type(2))
''',
    "result": '''
def _result(v, shape, dtype):
    r = np.array(np.broadcast_to(v, shape), dtype=dtype)
    return r[()] if r.ndim == 0 else r
''',
}


def _helpers(plan: _Plan, lang: str) -> list[str]:
    """The helper snippets ``lang``'s code for ``plan`` needs, in op order, each once."""
    names = [h for op in OPS if op.name in plan.ops for h in op.emit(lang).helpers(plan.dtype)]
    return list(dict.fromkeys(names))


def _expr(plan: _Plan, lang: str, op: str, args: list[str]) -> str:
    return OP_BY_NAME[op].emit(lang).expr(plan.dtype, args)


def to_python(program: Program | str | LibraryFunction, name: str = "approx", meta: Mapping | None = None) -> str:
    """A standalone numpy module defining ``name(x, ...)``, bit-exact with the evaluator.

    The function takes numpy arrays or scalars (converted to the program's dtype first, so
    float64 values are rounded to float32 once) and returns an array, or a numpy scalar for
    scalar input. Metadata appears in the (raw) docstrings as :func:`comment_text` writes it.
    """
    program, meta = _source(program, meta)
    return _to_python(program, _check_name(name), meta)


def _to_python(program: Program | str, name: str, meta: Mapping | None, probe: bool = False) -> str:
    plan = _Plan(program, probe)
    dt = plan.dtype
    helpers = ["result"] + _helpers(plan, "python")
    out = ['r"""' + "\n".join(comment_text(ln, "python") for ln in header_lines(plan.program, name, meta))]
    out.append("")
    out.append("Standalone: needs numpy only. Reproduces the pysearch evaluator bit for bit.")
    out.append('"""')
    out.append("")
    if "fma64" in helpers:
        out += ["import math", "from fractions import Fraction", ""]
    out += ["import numpy as np", ""]
    for h in helpers:
        out.append(_PY_HELPERS[h].rstrip("\n"))
        out.append("")
    out.append("")
    params = ", ".join(plan.params)
    out.append(f"def {name}({params}):")
    target = comment_text((meta or {}).get("target", "the target"), "python")
    out.append(f'    r"""{target} approximation; numpy {dt} arrays or scalars in, same shape out."""')
    np_dt = f"np.{dt}"
    for i, v in enumerate(plan.consts):
        out.append(f'    c{i + 1} = {np_dt}({_py_const(v)})  # {format_const(v, dt)}')
    for p in plan.params:
        out.append(f"    {p} = np.asarray({p}, dtype={np_dt})")
    if len(plan.params) == 1:
        shape = f"{plan.params[0]}.shape"
    else:
        shape = f"np.broadcast_shapes({', '.join(p + '.shape' for p in plan.params)})"
    out.append('    with np.errstate(all="ignore"):')
    for i, ins in enumerate(plan.program.instrs):
        out.append(f"        v{i + 1} = {_expr(plan, 'python', ins.op, [plan.ref(a) for a in ins.args])}")
    out.append(f"    return _result(v{plan.program.output + 1}, {shape}, {np_dt})")
    return "\n".join(out) + "\n"


def _py_const(v: float) -> str:
    if math.isnan(v):
        return 'float("nan")'
    if math.isinf(v):
        return 'float("inf")' if v > 0 else '-float("inf")'
    return f'float.fromhex("{_hex(v)}")'


def _hex(v: float) -> str:
    """float.hex without trailing zeros in the fraction: 0x1.8p+1, 0x1p-149, -0x0p+0."""
    h = float(v).hex()
    mant, exp = h.split("p")
    if "." in mant:
        mant = mant.rstrip("0").rstrip(".")
    return f"{mant}p{exp}"


# ============================================================================ C

# float32 helpers are branch-free and work on bit patterns: comparisons give 0/1 integers and
# selects are masks (pys_sel32). GCC does not if-convert a select that guards a float operation
# (it might raise a flag), and it threads chains of float comparisons into jumps; either way a
# branch keeps the array loop from vectorising. libm's rintf/floorf are avoided too: they are
# calls (floorf always; rintf without SSE4.1).
_C_HELPERS = {
    "sel32": """
static inline uint32_t pys_bits32(float a) {
    uint32_t u;
    memcpy(&u, &a, sizeof u);
    return u;
}
static inline float pys_float32(uint32_t u) {
    float a;
    memcpy(&a, &u, sizeof a);
    return a;
}
/* c ? a : b for c in {0, 1}, without a branch. */
static inline uint32_t pys_sel32(uint32_t c, uint32_t a, uint32_t b) {
    uint32_t m = 0u - c;
    return (a & m) | (b & ~m);
}
/* 1 if a is a NaN, else 0. */
static inline uint32_t pys_isnan32(uint32_t a) {
    return (a & 0x7fffffffu) > 0x7f800000u;
}""",
    "min32": """
/* NaN if either is NaN; the smaller; min(+0, -0) = -0; for equal operands a. */
static inline float pys_minf(float a, float b) {
    uint32_t ua = pys_bits32(a), ub = pys_bits32(b);
    uint32_t r = pys_sel32(b < a, ub, ua);
    r = pys_sel32(((ua | ub) & 0x7fffffffu) == 0, ua | ub, r); /* both zero: -0 if either is */
    return pys_float32(pys_sel32(pys_isnan32(ua) | pys_isnan32(ub), 0x7fc00000u, r));
}""",
    "max32": """
/* NaN if either is NaN; the larger; max(+0, -0) = +0; for equal operands a. */
static inline float pys_maxf(float a, float b) {
    uint32_t ua = pys_bits32(a), ub = pys_bits32(b);
    uint32_t r = pys_sel32(b > a, ub, ua);
    r = pys_sel32(((ua | ub) & 0x7fffffffu) == 0, ua & ub, r); /* both zero: -0 if both are */
    return pys_float32(pys_sel32(pys_isnan32(ua) | pys_isnan32(ub), 0x7fc00000u, r));
}""",
    "rint32": """
/* Round to the nearest integer, ties to even. For |a| < 2^23 the sum 2^23 + |a| has unit
   spacing, so it rounds |a| (to nearest even); the sign is put back (rint(-0.25) = -0).
   |a| >= 2^23 (already an integer), +-inf and NaN are returned as they are. */
static inline float pys_rintf(float a) {
    uint32_t u = pys_bits32(a), mag = u & 0x7fffffffu;
    float m = pys_float32(mag);
    float r = (m + 0x1p23f) - 0x1p23f;
    return pys_float32(pys_sel32(mag < 0x4b000000u, pys_bits32(r) | (u & 0x80000000u), u));
}""",
    "floor32": """
/* floor(a): rint(a), less 1 where that rounded up (exact: both are integers; -0 stays -0). */
static inline float pys_floorf(float a) {
    float r = pys_rintf(a);
    return r - pys_float32(pys_sel32(r > a, 0x3f800000u, 0u));
}""",
    "ldexp32": """
/* a * 2^k, k = trunc(clamp(b, -300, 300)); NaN b gives NaN. a * 2^k is exact in double for
   |k| <= 300, so the conversion to float is the one rounding. */
static inline float pys_ldexpf(float a, float b) {
    uint32_t ub = pys_bits32(b), nan_b = pys_isnan32(ub);
    uint32_t cb = pys_sel32(b < -300.0f, 0xc3960000u, pys_sel32(b > 300.0f, 0x43960000u, ub)); /* +-300 */
    float c = pys_float32(pys_sel32(nan_b, 0u, cb));
    uint64_t scale_bits = (uint64_t)(uint32_t)((int32_t)c + 1023) << 52;
    double scale;
    memcpy(&scale, &scale_bits, sizeof scale);
    float r = (float)((double)a * scale);
    return pys_float32(pys_sel32(nan_b, 0x7fc00000u, pys_bits32(r)));
}""",
    "min64": """
/* NaN if either is NaN; the smaller; min(+0, -0) = -0; for equal operands a. */
static inline double pys_min(double a, double b) {
    double r = b < a ? b : a;
    r = ((a == 0.0) & (b == 0.0)) ? (signbit(a) ? a : b) : r;
    return ((a != a) | (b != b)) ? NAN : r;
}""",
    "max64": """
/* NaN if either is NaN; the larger; max(+0, -0) = +0; for equal operands a. */
static inline double pys_max(double a, double b) {
    double r = b > a ? b : a;
    r = ((a == 0.0) & (b == 0.0)) ? (signbit(a) ? b : a) : r;
    return ((a != a) | (b != b)) ? NAN : r;
}""",
    "ldexp64": """
/* a * 2^k, k = trunc(clamp(b, -2200, 2200)), one rounding (libm ldexp); NaN b gives NaN. */
static inline double pys_ldexp(double a, double b) {
    if (b != b) return NAN;
    return ldexp(a, (int)(b < -2200.0 ? -2200.0 : (b > 2200.0 ? 2200.0 : b)));
}""",
    "getexp32": """
/* floor(log2|a|) as a float; +-0 -> -inf, +-inf -> +inf, NaN -> NaN. A subnormal's exponent
   comes from converting its integer significand (exact) to float. */
static inline float pys_getexpf(float a) {
    uint32_t u = pys_bits32(a), mag = u & 0x7fffffffu;
    uint32_t s = pys_bits32((float)(int32_t)mag);
    int32_t e = (int32_t)pys_sel32(mag < 0x00800000u, (s >> 23) - 276u, (mag >> 23) - 127u);
    uint32_t r = pys_bits32((float)e);
    r = pys_sel32(mag == 0, 0xff800000u, r);          /* -inf */
    r = pys_sel32(mag == 0x7f800000u, 0x7f800000u, r); /* +inf */
    return pys_float32(pys_sel32(mag > 0x7f800000u, u, r)); /* NaN stays */
}""",
    "getexp64": """
/* floor(log2|a|) as a float; +-0 -> -inf, +-inf -> +inf, NaN -> NaN. A subnormal's exponent
   comes from converting its integer significand (exact) to double. */
static inline double pys_getexp(double a) {
    uint64_t u, s;
    memcpy(&u, &a, sizeof u);
    u &= 0x7fffffffffffffffull;
    double m = (double)u;
    memcpy(&s, &m, sizeof s);
    int64_t e = u < 0x0010000000000000ull ? (int64_t)(s >> 52) - 1023 - 1074 : (int64_t)(u >> 52) - 1023;
    double r = (double)e;
    r = u == 0 ? -INFINITY : r;
    r = u == 0x7ff0000000000000ull ? INFINITY : r;
    return u > 0x7ff0000000000000ull ? a : r;
}""",
    "getmant32": """
/* a / 2^getexp(a): sign kept, |m| in [1, 2); +-0, +-inf and NaN are returned as they are.
   A subnormal's significand comes from converting it, as an integer, to float (exact). */
static inline float pys_getmantf(float a) {
    uint32_t u = pys_bits32(a), mag = u & 0x7fffffffu;
    uint32_t src = pys_sel32(mag < 0x00800000u, pys_bits32((float)(int32_t)mag), u);
    uint32_t v = (src & 0x007fffffu) | 0x3f800000u | (u & 0x80000000u);
    return pys_float32(pys_sel32((mag == 0) | (mag >= 0x7f800000u), u, v));
}""",
    "getmant64": """
/* a / 2^getexp(a): sign kept, |m| in [1, 2); +-0, +-inf and NaN are returned as they are. */
static inline double pys_getmant(double a) {
    uint64_t u, v;
    memcpy(&u, &a, sizeof u);
    uint64_t mag = u & 0x7fffffffffffffffull;
    double s = mag < 0x0010000000000000ull ? a * 0x1p52 : a; /* subnormals: scale up exactly first */
    memcpy(&v, &s, sizeof v);
    v = (v & 0x800fffffffffffffull) | 0x3ff0000000000000ull;
    double m;
    memcpy(&m, &v, sizeof m);
    return ((mag == 0) | (mag >= 0x7ff0000000000000ull)) ? a : m;
}""",
}


def _c_const(v: float, dtype: str) -> str:
    f = "f" if dtype == "float32" else ""
    if math.isnan(v):
        return "NAN" if dtype == "float32" else "(double)NAN"
    if math.isinf(v):
        inf = "INFINITY" if dtype == "float32" else "(double)INFINITY"
        return inf if v > 0 else f"-{inf}"
    return _hex(v) + f


def to_c(program: Program | str | LibraryFunction, name: str = "approx", meta: Mapping | None = None) -> str:
    """A C11 translation unit defining ``T name(T x, ...)`` and ``void name_array(...)``.

    Both call the ``static inline`` kernel ``pys_kernel_name``, so the array loop inlines it and
    vectorises even when compiled with ``-fPIC``.

    Compile with ``-ffp-contract=off`` (the default with ``-std=c11``) so that no ``a * b + c``
    is fused behind the program's back; ``fma`` is spelled ``fmaf``/``fma``.

    Each helper and the kernel itself sit inside include guards (``PYS_HELPER_*``,
    ``PYSEARCH_KERNEL_<name>_<program hash>``), so several exported files can be concatenated
    into, or included in, one translation unit.
    """
    program, meta = _source(program, meta)
    return _to_c(program, _check_name(name), meta)


def _to_c(program: Program | str, name: str, meta: Mapping | None, probe: bool = False) -> str:
    plan = _Plan(program, probe)
    dt = plan.dtype
    ct = "float" if dt == "float32" else "double"
    out = ["/*"]
    out += [f" * {comment_text(ln, 'c')}".rstrip() for ln in header_lines(plan.program, name, meta)]
    out.append(" *")
    out.append(" * Build: cc -O3 -march=native -std=c11 -ffp-contract=off ... -lm")
    out.append(" */")
    out += ["#include <math.h>", "#include <stddef.h>", "#include <stdint.h>", "#include <string.h>", "",
            "/* The kernel is inlined into the array loop even when it is long (GCC would leave a long one a call). */",
            "#ifndef PYS_KERNEL",
            "#if defined(__GNUC__)",
            "#define PYS_KERNEL static inline __attribute__((always_inline))",
            "#else",
            "#define PYS_KERNEL static inline",
            "#endif",
            "#endif"]
    for h in _helpers(plan, "c"):
        guard = f"PYS_HELPER_{h.upper()}"
        out += [f"#ifndef {guard}", f"#define {guard}{_C_HELPERS[h]}", "#endif"]
    out.append("")
    # The kernel's guard names the function and the program: the same file included twice is
    # compiled once, two different programs of the same name are a redefinition error, not a
    # silent choice of one of them.
    digest = hashlib.sha256(plan.program.to_text().encode()).hexdigest()[:12]
    guard = f"PYSEARCH_KERNEL_{name}_{digest}"
    out += [f"#ifndef {guard}", f"#define {guard}", ""]
    # The program lives in a static inline kernel that both the public function and the array
    # loop call: a call to the public (interposable) symbol from the loop would go through the
    # PLT under -fPIC, and then nothing is inlined or vectorised.
    kernel = f"pys_kernel_{name}"
    params = ", ".join(f"{ct} {p}" for p in plan.params)
    out.append(f"PYS_KERNEL {ct} {kernel}({params}) {{")
    for p, used in zip(plan.params, plan.uses_input()):
        if not used:
            out.append(f"    (void){p};")
    for i, v in enumerate(plan.consts):
        out.append(f"    const {ct} c{i + 1} = {_c_const(v, dt)}; /* {format_const(v, dt)} */")
    for i, ins in enumerate(plan.program.instrs):
        out.append(f"    const {ct} v{i + 1} = {_expr(plan, 'c', ins.op, [plan.ref(a) for a in ins.args])};")
    out.append(f"    return v{plan.program.output + 1};")
    out.append("}")
    out.append("")
    out.append(f"{ct} {name}({params}) {{")
    out.append(f"    return {kernel}({', '.join(plan.params)});")
    out.append("}")
    out.append("")
    if len(plan.params) == 1:
        out.append(f"void {name}_array(const {ct} *restrict x, {ct} *restrict y, size_t n) {{")
        out.append(f"    for (size_t i = 0; i < n; i++) y[i] = {kernel}(x[i]);")
    else:
        arrays = ", ".join(f"const {ct} *restrict in_{p}" for p in plan.params)
        out.append(f"void {name}_array({arrays}, {ct} *restrict out, size_t n) {{")
        call = ", ".join(f"in_{p}[i]" for p in plan.params)
        out.append(f"    for (size_t i = 0; i < n; i++) out[i] = {kernel}({call});")
    out.append("}")
    out.append(f"#endif /* {guard} */")
    return "\n".join(out) + "\n"


# ============================================================================ Rust

_RUST_HELPERS = {
    "min": """
/// NaN if either is NaN; the smaller; min(+0, -0) = -0; for equal operands `a`.
#[inline]
fn pys_min(a: {T}, b: {T}) -> {T} {
    if a.is_nan() || b.is_nan() {
        return {T}::NAN;
    }
    if a == 0.0 && b == 0.0 {
        return if a.is_sign_negative() { a } else { b };
    }
    if b < a { b } else { a }
}""",
    "max": """
/// NaN if either is NaN; the larger; max(+0, -0) = +0; for equal operands `a`.
#[inline]
fn pys_max(a: {T}, b: {T}) -> {T} {
    if a.is_nan() || b.is_nan() {
        return {T}::NAN;
    }
    if a == 0.0 && b == 0.0 {
        return if a.is_sign_negative() { b } else { a };
    }
    if b > a { b } else { a }
}""",
    "ldexp32": """
/// a * 2^k, k = trunc(clamp(b, -300, 300)), one rounding (exact in f64, then one cast); NaN b gives NaN.
#[inline]
fn pys_ldexp(a: f32, b: f32) -> f32 {
    if b.is_nan() {
        return f32::NAN;
    }
    let k = b.clamp(-300.0, 300.0) as i64;
    let scale = f64::from_bits(((k + 1023) as u64) << 52);
    (f64::from(a) * scale) as f32
}""",
    "ldexp64": """
/// a * 2^k, k = trunc(clamp(b, -2200, 2200)), one rounding; NaN b gives NaN.
#[inline]
fn pys_ldexp(a: f64, b: f64) -> f64 {
    if b.is_nan() {
        return f64::NAN;
    }
    if a == 0.0 || !a.is_finite() {
        return a;
    }
    let k = b.clamp(-2200.0, 2200.0) as i64;
    // a = +-m * 2^e exactly, m < 2^53.
    let bits = a.to_bits();
    let field = ((bits >> 52) & 0x7ff) as i64;
    let (m, e) = if field == 0 {
        (bits & 0x000f_ffff_ffff_ffff, -1074)
    } else {
        ((bits & 0x000f_ffff_ffff_ffff) | (1 << 52), field - 1075)
    };
    let big_e = e + k;
    let mag = if i64::from(64 - m.leading_zeros()) + big_e > 1024 {
        f64::INFINITY
    } else if big_e < -1074 {
        // Subnormal or zero result: shift out the low bits, round to nearest even.
        let shift = -1074 - big_e;
        let q = if shift > 63 {
            0
        } else {
            let q = m >> shift;
            let rem = m & ((1u64 << shift) - 1);
            let half = 1u64 << (shift - 1);
            if rem > half || (rem == half && q & 1 == 1) { q + 1 } else { q }
        };
        f64::from_bits(q)
    } else {
        // Exactly representable: scale in exact steps.
        let pow2 = |p: i64| f64::from_bits(((p + 1023) as u64) << 52);
        let mut r = m as f64;
        let mut left = big_e;
        while left > 1023 {
            r *= pow2(1023);
            left -= 1023;
        }
        if left < -1022 {
            r *= pow2(-1022);
            left += 1022;
        }
        r * pow2(left)
    };
    if bits >> 63 == 1 { -mag } else { mag }
}""",
    "getexp32": """
/// floor(log2|a|) as a float; +-0 -> -inf, +-inf -> +inf, NaN -> NaN.
#[inline]
fn pys_getexp(a: f32) -> f32 {
    let u = a.to_bits() & 0x7fff_ffff;
    if u >= 0x7f80_0000 {
        return if u == 0x7f80_0000 { f32::INFINITY } else { a };
    }
    if u == 0 {
        return f32::NEG_INFINITY;
    }
    if u < 0x0080_0000 {
        return (31 - u.leading_zeros() as i32 - 149) as f32; // subnormal
    }
    ((u >> 23) as i32 - 127) as f32
}""",
    "getexp64": """
/// floor(log2|a|) as a float; +-0 -> -inf, +-inf -> +inf, NaN -> NaN.
#[inline]
fn pys_getexp(a: f64) -> f64 {
    let u = a.to_bits() & 0x7fff_ffff_ffff_ffff;
    if u >= 0x7ff0_0000_0000_0000 {
        return if u == 0x7ff0_0000_0000_0000 { f64::INFINITY } else { a };
    }
    if u == 0 {
        return f64::NEG_INFINITY;
    }
    if u < 0x0010_0000_0000_0000 {
        return f64::from(63 - u.leading_zeros() as i32 - 1074); // subnormal
    }
    f64::from((u >> 52) as i32 - 1023)
}""",
    "getmant32": """
/// a / 2^getexp(a): sign kept, |m| in [1, 2); +-0, +-inf and NaN are returned as they are.
#[inline]
fn pys_getmant(a: f32) -> f32 {
    let mag = a.to_bits() & 0x7fff_ffff;
    if mag == 0 || mag >= 0x7f80_0000 {
        return a;
    }
    let a = if mag < 0x0080_0000 { a * f32::from_bits(0x4b00_0000) } else { a }; // * 2^23, exact
    f32::from_bits((a.to_bits() & 0x807f_ffff) | 0x3f80_0000)
}""",
    "getmant64": """
/// a / 2^getexp(a): sign kept, |m| in [1, 2); +-0, +-inf and NaN are returned as they are.
#[inline]
fn pys_getmant(a: f64) -> f64 {
    let mag = a.to_bits() & 0x7fff_ffff_ffff_ffff;
    if mag == 0 || mag >= 0x7ff0_0000_0000_0000 {
        return a;
    }
    let a = if mag < 0x0010_0000_0000_0000 { a * f64::from_bits(0x4330_0000_0000_0000) } else { a }; // * 2^52
    f64::from_bits((a.to_bits() & 0x800f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000)
}""",
}


def to_rust(program: Program | str | LibraryFunction, name: str = "approx", meta: Mapping | None = None) -> str:
    """Rust source defining ``pub fn name(x: f32, ...) -> f32`` (``f64`` for float64 programs)."""
    program, meta = _source(program, meta)
    return _to_rust(program, _check_name(name), meta)


def _to_rust(program: Program | str, name: str, meta: Mapping | None, probe: bool = False) -> str:
    plan = _Plan(program, probe)
    dt = plan.dtype
    rt = "f32" if dt == "float32" else "f64"
    out = [f"// {comment_text(ln, 'rust')}".rstrip() for ln in header_lines(plan.program, name, meta)]
    for h in _helpers(plan, "rust"):
        out.append(_RUST_HELPERS[h].replace("{T}", rt))
    out.append("")
    used = plan.uses_input()
    params = ", ".join(f"{'' if u else '_'}{p}: {rt}" for p, u in zip(plan.params, used))
    out.append("#[inline]")
    out.append("#[must_use]")
    out.append(f"pub fn {name}({params}) -> {rt} {{")
    for i, v in enumerate(plan.consts):
        out.append(f"    const C{i + 1}: {rt} = {_rust_const(v, dt)}; // {format_const(v, dt)}")
    for i, ins in enumerate(plan.program.instrs):
        args = [plan.ref(a).upper() if a.kind == "const" else plan.ref(a) for a in ins.args]
        out.append(f"    let v{i + 1} = {_expr(plan, 'rust', ins.op, args)};")
    out.append(f"    v{plan.program.output + 1}")
    out.append("}")
    return "\n".join(out) + "\n"


def _rust_const(v: float, dtype: str) -> str:
    if dtype == "float32":
        return f"f32::from_bits(0x{int(np.array(v, dtype=np.float32).view(np.uint32)):08x})"
    return f"f64::from_bits(0x{int(np.array(v, dtype=np.float64).view(np.uint64)):016x})"
