"""Programs as source code: standalone Python (numpy), C and Rust that agree bit for bit.

Each export is a complete file: a header comment (target, domain, verified error, cost, ops,
latency, and the program text), small helpers for the operations a language lacks (exact float32
fma for numpy; ``min``/``max``/``ldexp``/``getexp``/``getmant`` with the semantics of
``docs/program-format.md``), and the function. Constants appear in exact form: hex-float
literals in C, ``float.fromhex`` in Python, ``from_bits`` in Rust, each with its decimal value
in a comment. C code must be compiled without contraction of ``a * b + c``
(``-ffp-contract=off``, the default for ``-std=c11``) and without fast-math: it refuses
``-ffast-math`` with an ``#error`` (``-DPYSEARCH_ALLOW_FAST_MATH`` overrides) and checks the
thread's floating-point mode (round to nearest, no FTZ/DAZ) in builds without ``NDEBUG``. The C program body is a ``static inline``
kernel called by both the public ``NAME`` and the array loop ``NAME_array`` (a call to the public,
interposable symbol would go through the PLT under ``-fPIC`` and stop inlining), and the float32
helpers are branch-free, so GCC vectorises the array loop. C helpers and kernels sit inside include
guards, so several exported C files make one translation unit (:func:`export_many`). The Rust
export has ``NAME`` and the slice loop ``NAME_slice`` (branch-free float32 helpers, so LLVM
vectorises it), and :func:`export_many` writes several functions as one Rust module.

Nothing from the metadata (a shared ``front.json`` or ``--target``) becomes code: every value is
written through :func:`comment_text`, which keeps it on one line of inert ASCII (in Rust doc
comments also with Markdown escaped: :func:`pysearch.export.rust.doc_text`). Function names
that the exported code itself uses, keywords and the identifiers of the included C headers are
refused (:func:`reserved_reason`); inputs named like them are renamed.

The rooms: :mod:`.common` (the plan of a program, header, comment escaping), :mod:`.names`
(reserved names, parameter renaming), one writer per language (:mod:`.python`, :mod:`.c` with
:mod:`.c_stdlib`, :mod:`.rust`), and here the public functions that check the name, plan the
program and call the writer.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from pysearch.export import c, python, rust
from pysearch.export.common import LANGUAGES, ExportError, Plan, comment_text, header_lines, library_meta, source
from pysearch.export.names import check_name, emitted_names, param_names, reserved_reason
from pysearch.library import LibraryFunction
from pysearch.program import Program

__all__ = [
    "LANGUAGES", "ExportError", "comment_text", "emitted_names", "export", "export_many", "header_lines",
    "library_meta", "reserved_reason", "to_c", "to_python", "to_rust",
]
# The emitted-code helper templates of each language, by their names before the split.
_PY_HELPERS, _C_HELPERS, _RUST_HELPERS = python.PY_HELPERS, c.C_HELPERS, rust.RUST_HELPERS


def _plan(program: Program | str | LibraryFunction, name: str, meta: Mapping | None) -> tuple[Plan, str, dict | None]:
    """The plan, checked function name and header metadata of one export."""
    program, meta = source(program, meta)
    name = check_name(name)
    return Plan(program, param_names), name, meta


def to_python(program: Program | str | LibraryFunction, name: str = "approx", meta: Mapping | None = None) -> str:
    """A standalone numpy module defining ``name(x, ...)``, bit-exact with the evaluator.

    The function takes numpy arrays or scalars (converted to the program's dtype first, so
    float64 values are rounded to float32 once) and returns an array, or a numpy scalar for
    scalar input. Metadata appears in the (raw) docstrings as :func:`comment_text` writes it.
    """
    return python.write(*_plan(program, name, meta))


def to_c(program: Program | str | LibraryFunction, name: str = "approx", meta: Mapping | None = None) -> str:
    """A C11 translation unit defining ``T name(T x, ...)`` and ``void name_array(...)``.

    Both call the ``static inline`` kernel ``pys_kernel_name``, so the array loop inlines it and
    vectorises even when compiled with ``-fPIC``.

    Compile with ``-ffp-contract=off`` (the default with ``-std=c11``) so that no ``a * b + c``
    is fused behind the program's back; ``fma`` is spelled ``fmaf``/``fma``. ``-ffast-math``
    (and ``-Ofast``, ``-ffinite-math-only``) is refused with an ``#error`` unless
    ``PYSEARCH_ALLOW_FAST_MATH`` is defined; builds without ``NDEBUG`` check at each call that
    the thread rounds to nearest without flush-to-zero (``assert``).

    Each helper and the kernel itself sit inside include guards (``PYS_HELPER_*``,
    ``PYSEARCH_KERNEL_<name>_<program hash>``), so several exported files can be concatenated
    into, or included in, one translation unit.
    """
    return c.write(*_plan(program, name, meta))


def to_rust(program: Program | str | LibraryFunction, name: str = "approx", meta: Mapping | None = None) -> str:
    """Rust source defining ``pub fn name(x: f32, ...) -> f32`` (``f64`` for float64 programs) and
    ``pub fn name_slice(x: &[f32], y: &mut [f32]) -> usize`` (several inputs: one slice each, then
    ``out``), which writes ``min`` of the lengths elements, returns that count and never panics.

    The float32 helpers are branch-free and avoid float-to-int casts, so LLVM vectorises the slice
    loop (AVX2 or AVX-512 lanes with ``-C opt-level=3 -C target-cpu=native``). Each public function
    has a ``///`` doc comment with the first two header lines (what it approximates, its verified
    bound), escaped so that rustdoc reads them as plain text (:func:`pysearch.export.rust.doc_text`).
    """
    return rust.write(*_plan(program, name, meta))


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
    """Several functions in one C file or one Rust module: ``(program, name, meta)`` each; helpers are defined once.

    C: each exported C file guards its helpers and its kernel, so this is their concatenation (and
    ``cat a.c b.c`` works the same), with the floating-point mode block written once. Rust: one
    module with the floating-point mode note and the helpers once, then each function (``NAME`` and
    ``NAME_slice``, documented with its verified bound) under its own header comment. Python
    exports are one function per file.
    """
    if lang not in ("c", "rust"):
        raise ExportError(f"several functions in one file are exported as C or Rust, not {lang!r}")
    if not items:
        raise ExportError("nothing to export")
    suffix = "_array" if lang == "c" else "_slice"
    seen: dict[str, str] = {}
    for _, name, _ in items:
        for defined in (name, f"{name}{suffix}"):
            if defined in seen:
                raise ExportError(f"function name {name!r} clashes with {seen[defined]!r} in the same file")
            seen[defined] = name
    plans = [_plan(p, name, meta) for p, name, meta in items]
    if lang == "rust":
        return rust.write_many(plans)
    # the floating-point mode block (guarded, so `cat a.c b.c` compiles it once too) once, first
    return "\n".join(c.write(*plan, fp_mode=i == 0) for i, plan in enumerate(plans))
