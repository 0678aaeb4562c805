"""The AVX-512 body of a float32 C export's array loop: each op as AVX-512F/DQ intrinsics.

``c.py`` writes the portable scalar kernel (branch-free helpers that GCC vectorises with 256-bit
vectors) and, for float32 programs, this 16-lane kernel that ``NAME_array`` uses when the
compiler targets AVX-512F and AVX-512DQ (``-march=native`` on such a CPU) unless
``PYS_NO_INTRINSICS`` is defined. Every op maps to one to five instructions whose IEEE semantics
match the program format bit for bit (NaN payloads aside): ``ldexp`` is ``vscalefps`` on the
clamped, truncated exponent, ``getexp``/``getmant`` are ``vgetexpps``/``vgetmantps`` (zeros and
infinities passed through as the format says), ``rint``/``floor`` are ``vrndscaleps``. A ``min``
or ``max`` with a constant operand that needs no signed-zero or NaN fix-up is one ``vminps``/
``vmaxps`` with the operands in the order that passes a NaN through. Subnormals need the default
MXCSR (no FTZ/DAZ), as for the scalar code.
"""

from __future__ import annotations

import math
import re

from pysearch.export.common import Plan
from pysearch.ops import LDEXP_BOUND

#: The preprocessor condition under which the array loop uses this kernel.
CONDITION = "defined(__AVX512F__) && defined(__AVX512DQ__) && !defined(PYS_NO_INTRINSICS)"

AVX512_HELPERS = {
    "min": """
/* min per the program format: NaN if either is NaN; equal operands give a | b (-0 wins). */
static inline __m512 pys_min512(__m512 a, __m512 b) {
    __m512 r = _mm512_min_ps(a, b);
    __mmask16 eq = _mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ);
    r = _mm512_mask_or_ps(r, eq, a, b);
    return _mm512_mask_mov_ps(r, _mm512_cmp_ps_mask(a, b, _CMP_UNORD_Q), _mm512_set1_ps(NAN));
}""",
    "max": """
/* max per the program format: NaN if either is NaN; equal operands give a & b (+0 wins). */
static inline __m512 pys_max512(__m512 a, __m512 b) {
    __m512 r = _mm512_max_ps(a, b);
    __mmask16 eq = _mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ);
    r = _mm512_mask_and_ps(r, eq, a, b);
    return _mm512_mask_mov_ps(r, _mm512_cmp_ps_mask(a, b, _CMP_UNORD_Q), _mm512_set1_ps(NAN));
}""",
    "ldexp": """
/* a * 2^trunc(clamp(b, -300, 300)), one rounding; NaN b gives NaN (vmaxps/vminps pass the NaN
   second operand through). */
static inline __m512 pys_ldexp512(__m512 a, __m512 b) {
    __m512 k = _mm512_min_ps(_mm512_set1_ps(300.0f), _mm512_max_ps(_mm512_set1_ps(-300.0f), b));
    return _mm512_scalef_ps(a, _mm512_roundscale_ps(k, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC));
}""",
    "getmant": """
/* |m| in [1, 2), sign kept; +-0 and +-inf are returned as they are (0x1e: +-0, +-inf). */
static inline __m512 pys_getmant512(__m512 a) {
    __m512 m = _mm512_getmant_ps(a, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_src);
    return _mm512_mask_mov_ps(m, _mm512_fpclass_ps_mask(a, 0x1e), a);
}""",
}

_SIMPLE = {
    "add": "_mm512_add_ps({0}, {1})",
    "sub": "_mm512_sub_ps({0}, {1})",
    "mul": "_mm512_mul_ps({0}, {1})",
    "div": "_mm512_div_ps({0}, {1})",
    "fma": "_mm512_fmadd_ps({0}, {1}, {2})",
    "neg": "_mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512({0}), _mm512_set1_epi32(INT32_MIN)))",
    "abs": "_mm512_abs_ps({0})",
    "sqrt": "_mm512_sqrt_ps({0})",
    "rint": "_mm512_roundscale_ps({0}, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)",
    "floor": "_mm512_roundscale_ps({0}, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC)",
    "getexp": "_mm512_getexp_ps({0})",
    "min": "pys_min512({0}, {1})",
    "max": "pys_max512({0}, {1})",
    "ldexp": "pys_ldexp512({0}, {1})",
    "getmant": "pys_getmant512({0})",
}

#: float32 ops this kernel covers (the float64-only exp/log/pow never occur in float32 programs).
OPS = frozenset(_SIMPLE)


def supported(plan: Plan) -> bool:
    return plan.dtype == "float32" and plan.ops <= OPS


def helpers(plan: Plan) -> list[str]:
    return [h for h in AVX512_HELPERS if h in plan.ops]


def _const(plan: Plan, ref) -> float | None:
    return float(ref.value) if ref.kind == "const" else None


def _expr(plan: Plan, op: str, refs: list) -> str:
    args = [plan.ref(a) for a in refs]
    if op in ("min", "max"):
        # min(c, v) / max(c, v) with a constant c: vminps/vmaxps(c, v) gives v where v is NaN or
        # equal to c, which is the format's answer unless c is a zero of the losing sign.
        for i in (0, 1):
            c = _const(plan, refs[i])
            if c is None or math.isnan(c) or _const(plan, refs[1 - i]) is not None:
                continue
            lose = (c == 0 and math.copysign(1, c) < 0) if op == "min" else (c == 0 and math.copysign(1, c) > 0)
            if not lose:
                return f"_mm512_{op}_ps({args[i]}, {args[1 - i]})"
    if op == "ldexp":
        k = _const(plan, refs[1])
        if k is not None and not math.isnan(k):  # the exponent is known: one vscalefps
            bound = LDEXP_BOUND["float32"]
            return f"_mm512_scalef_ps({args[0]}, _mm512_set1_ps({float(math.trunc(max(-bound, min(bound, k)))):.1f}f))"
    return _SIMPLE[op].format(*args)


def kernel_lines(plan: Plan, kernel: str, const_literal) -> list[str]:
    """The 16-lane kernel ``kernel`` (``__m512`` in and out) computing the program."""
    params = ", ".join(f"__m512 {p}" for p in plan.params)
    out = [f"PYS_KERNEL __m512 {kernel}({params}) {{"]
    for p, used in zip(plan.params, plan.uses_input()):
        if not used:
            out.append(f"    (void){p};")
    body = [f"    const __m512 v{i + 1} = {_expr(plan, ins.op, list(ins.args))};"
            for i, ins in enumerate(plan.program.instrs)]
    used = set(re.findall(r"\bc(\d+)\b", "\n".join(body)))  # a folded ldexp exponent needs no vector
    for i, v in enumerate(plan.consts):
        if str(i + 1) in used:
            out.append(f"    const __m512 c{i + 1} = _mm512_set1_ps({const_literal(v)});")
    out += body
    out.append(f"    return v{plan.program.output + 1};")
    out.append("}")
    return out


def array_lines(plan: Plan, kernel: str, inputs: list[str], output: str) -> list[str]:
    """The body of ``NAME_array``: 16 lanes at a time, the tail with masked loads and stores."""
    loads = ", ".join(f"_mm512_loadu_ps({p} + i)" for p in inputs)
    masked = ", ".join(f"_mm512_maskz_loadu_ps(m, {p} + i)" for p in inputs)
    return [
        "    size_t i = 0;",
        f"    for (; i + 16 <= n; i += 16) _mm512_storeu_ps({output} + i, {kernel}({loads}));",
        "    if (i < n) {",
        "        __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);",
        f"        _mm512_mask_storeu_ps({output} + i, m, {kernel}({masked}));",
        "    }",
    ]
