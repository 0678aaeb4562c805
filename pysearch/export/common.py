"""What every language's export shares: the plan of a program, the header, and comment escaping.

:class:`Plan` prunes the program and names its constants (``c1``, ...), values (``v1``, ...)
and inputs; :func:`header_lines` writes the metadata header that each language wraps in its
comment markers, every value through :func:`comment_text` so that no metadata becomes code.
:func:`helpers` and :func:`expr` read the op registry (:mod:`pysearch.ops`): which helper
snippets a language's code needs, and the expression of one instruction.
"""

from __future__ import annotations

import math
import re
from typing import Callable, Mapping, Sequence

import numpy as np

from pysearch.library import LibraryFunction
from pysearch.ops import OP_BY_NAME, OPS
from pysearch.program import Program, Ref, as_program

LANGUAGES = ("python", "c", "rust")


class ExportError(ValueError):
    """A function name, input or metadata value that cannot be exported."""


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


class Plan:
    """The pruned program with names for its constants, values and inputs.

    ``params`` names the inputs (given the pruned program); without it they keep the program's
    own names (the probe that finds the reserved names cannot ask which names are reserved).
    """

    def __init__(self, program: Program | str, params: Callable[[Program], list[str]] | None = None) -> None:
        self.program = as_program(program).pruned()
        self.dtype = self.program.dtype
        self.params = list(self.program.inputs) if params is None else params(self.program)
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


def helpers(plan: Plan, lang: str) -> list[str]:
    """The helper snippets ``lang``'s code for ``plan`` needs, in op order, each once."""
    names = [h for op in OPS if op.name in plan.ops for h in op.emit(lang).helpers(plan.dtype)]
    return list(dict.fromkeys(names))


def expr(plan: Plan, lang: str, op: str, args: list[str]) -> str:
    """``lang``'s expression for ``op`` applied to ``args`` (the op registry's template)."""
    return OP_BY_NAME[op].emit(lang).expr(plan.dtype, args)


def minmax_select(op: str, args: Sequence[Ref]) -> int | None:
    """For ``min``/``max`` with one constant operand (``args``): that operand's index when one
    select is the whole op, else None.

    ``min(c, v)`` as ``c < v ? c : v`` (``max``: ``>``) gives ``v`` where ``v`` is NaN (a NaN, its
    payload unspecified) or equal to ``c``, which is the format's answer unless ``c`` is a zero of
    the sign that wins over the other zero (-0 for min, +0 for max) or NaN.
    """
    if op not in ("min", "max"):
        return None
    for i in (0, 1):
        a, other = args[i], args[1 - i]
        if a.kind != "const" or other.kind == "const" or math.isnan(a.value):
            continue
        if not (a.value == 0 and (math.copysign(1, a.value) < 0) == (op == "min")):
            return i
    return None


def hex_literal(v: float) -> str:
    """float.hex without trailing zeros in the fraction: 0x1.8p+1, 0x1p-149, -0x0p+0."""
    h = float(v).hex()
    mant, exp = h.split("p")
    if "." in mant:
        mant = mant.rstrip("0").rstrip(".")
    return f"{mant}p{exp}"


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


def source(program: Program | str | LibraryFunction, meta: Mapping | None) -> tuple[Program | str, dict | None]:
    """The program and header metadata; a library function brings its own (``meta`` overrides keys)."""
    if isinstance(program, LibraryFunction):
        return program.program, {**library_meta(program), **(meta or {})}
    return program, None if meta is None else dict(meta)
