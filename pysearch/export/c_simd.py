"""The intrinsics bodies of a float32 C export's array loop: AVX-512 (16 lanes) and AVX2+FMA (8 lanes).

``c.py`` writes the portable scalar kernel (branch-free helpers that GCC vectorises) and, for
float32 programs, the vector kernels here, which ``NAME_array`` uses when the compiler targets
AVX-512F+DQ, else AVX2+FMA (``-march=native`` on such a CPU), unless ``PYS_NO_INTRINSICS`` is
defined (``PYS_NO_AVX512`` skips only the 16-lane one). Every op maps to instructions whose IEEE
semantics match the program format bit for bit (NaN payloads aside):

- AVX-512: ``ldexp`` is ``vscalefps`` on the clamped, truncated exponent, ``getexp``/``getmant``
  are ``vgetexpps``/``vgetmantps`` (zeros and infinities passed through), ``rint``/``floor``
  ``vrndscaleps``;
- AVX2: ``ldexp`` is three multiplications by powers of two built from the integer exponent k
  (clamped to +-278, beyond which every result is the same): 2^kl with kl = clamp(k, -126, 127),
  and the rest of k in two halves first, so only the last multiplication can round (an earlier
  one that underflows leaves a result below 2^-252, zero either way; one that overflows is inf
  either way); ``getexp``/``getmant`` read the exponent and significand bits after scaling a
  subnormal by 2^23 (exact).

A ``min`` or ``max`` with a constant operand that needs no signed-zero or NaN fix-up is one
``vminps``/``vmaxps`` with the operands in the order that passes a NaN through; an ``ldexp`` with a
constant exponent is a multiplication (AVX2) or one ``vscalefps`` (AVX-512). Subnormals need the
default MXCSR (no FTZ/DAZ), as for the scalar code.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from pysearch.export.common import Plan, minmax_select
from pysearch.ops import LDEXP_BOUND


@dataclass(frozen=True)
class Isa:
    name: str  # "512" / "256": the suffix of kernel and helper names
    vec: str  # the vector type
    p: str  # the intrinsics prefix
    lanes: int
    condition: str  # the preprocessor condition under which the array loop uses it
    helpers: dict[str, str]
    ops: dict[str, str]


_HELPERS_512 = {
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

_HELPERS_256 = {
    "min": """
/* min per the program format: NaN if either is NaN (an all-ones lane); equal operands give a | b. */
static inline __m256 pys_min256(__m256 a, __m256 b) {
    __m256 r = _mm256_blendv_ps(_mm256_min_ps(a, b), _mm256_or_ps(a, b), _mm256_cmp_ps(a, b, _CMP_EQ_OQ));
    return _mm256_or_ps(r, _mm256_cmp_ps(a, b, _CMP_UNORD_Q));
}""",
    "max": """
/* max per the program format: NaN if either is NaN (an all-ones lane); equal operands give a & b. */
static inline __m256 pys_max256(__m256 a, __m256 b) {
    __m256 r = _mm256_blendv_ps(_mm256_max_ps(a, b), _mm256_and_ps(a, b), _mm256_cmp_ps(a, b, _CMP_EQ_OQ));
    return _mm256_or_ps(r, _mm256_cmp_ps(a, b, _CMP_UNORD_Q));
}""",
    "ldexp": """
/* 2^k for integer k in [-126, 127]. */
static inline __m256 pys_pow2i256(__m256i k) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k, _mm256_set1_epi32(127)), 23));
}
/* a * 2^k, k = trunc(clamp(b, -278, 278)) (the same results as +-300), one rounding: only the last
   of the three multiplications can round; NaN b gives NaN. */
static inline __m256 pys_ldexp256(__m256 a, __m256 b) {
    __m256 kc = _mm256_min_ps(_mm256_set1_ps(278.0f), _mm256_max_ps(_mm256_set1_ps(-278.0f), b));
    __m256i k = _mm256_cvttps_epi32(kc); /* NaN: INT32_MIN, replaced below */
    __m256i kl = _mm256_min_epi32(_mm256_max_epi32(k, _mm256_set1_epi32(-126)), _mm256_set1_epi32(127));
    __m256i f = _mm256_sub_epi32(k, kl);
    __m256i f1 = _mm256_srai_epi32(f, 1);
    __m256 r = _mm256_mul_ps(_mm256_mul_ps(a, pys_pow2i256(f1)), pys_pow2i256(_mm256_sub_epi32(f, f1)));
    r = _mm256_mul_ps(r, pys_pow2i256(kl));
    return _mm256_or_ps(r, _mm256_cmp_ps(b, b, _CMP_UNORD_Q));
}
/* ldexp for an exponent the exporter has bounded: trunc(b) in [-252, 254] wherever b is not NaN.
   a * 2^f * 2^kl with kl = clamp(k, -126, 127), f = k - kl in [-126, 127]: only the last product
   rounds (see pys_ldexp256). nan_b: give NaN where b is NaN (else a is NaN there already). */
static inline __m256 pys_ldexp2_256(__m256 a, __m256 b, int nan_b) {
    __m256i k = _mm256_cvttps_epi32(b);
    __m256i kl = _mm256_min_epi32(_mm256_max_epi32(k, _mm256_set1_epi32(-126)), _mm256_set1_epi32(127));
    __m256 r = _mm256_mul_ps(_mm256_mul_ps(a, pys_pow2i256(_mm256_sub_epi32(k, kl))), pys_pow2i256(kl));
    return nan_b ? _mm256_or_ps(r, _mm256_cmp_ps(b, b, _CMP_UNORD_Q)) : r;
}""",
    "getexp": """
/* floor(log2|a|); +-0 -> -inf, +-inf -> +inf, NaN -> NaN; a subnormal is scaled by 2^23 first (exact). */
static inline __m256 pys_getexp256(__m256 a) {
    __m256 mag = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a);
    __m256 sub = _mm256_cmp_ps(mag, _mm256_set1_ps(0x1p-126f), _CMP_LT_OQ);
    __m256 s = _mm256_blendv_ps(mag, _mm256_mul_ps(mag, _mm256_set1_ps(0x1p23f)), sub);
    __m256i bias = _mm256_blendv_epi8(_mm256_set1_epi32(127), _mm256_set1_epi32(150), _mm256_castps_si256(sub));
    __m256 r = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srli_epi32(_mm256_castps_si256(s), 23), bias));
    r = _mm256_blendv_ps(r, _mm256_set1_ps(-INFINITY), _mm256_cmp_ps(mag, _mm256_setzero_ps(), _CMP_EQ_OQ));
    return _mm256_blendv_ps(r, mag, _mm256_cmp_ps(mag, _mm256_set1_ps(INFINITY), _CMP_NLT_UQ));
}""",
    "getmant": """
/* a / 2^getexp(a), sign kept; +-0, +-inf and NaN as they are; a subnormal is scaled by 2^23 first. */
static inline __m256 pys_getmant256(__m256 a) {
    __m256 mag = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a);
    __m256 s = _mm256_blendv_ps(a, _mm256_mul_ps(a, _mm256_set1_ps(0x1p23f)),
                                _mm256_cmp_ps(mag, _mm256_set1_ps(0x1p-126f), _CMP_LT_OQ));
    __m256 m = _mm256_or_ps(_mm256_and_ps(s, _mm256_castsi256_ps(_mm256_set1_epi32(INT32_MIN | 0x007fffff))),
                            _mm256_set1_ps(1.0f));
    __m256 keep = _mm256_or_ps(_mm256_cmp_ps(mag, _mm256_setzero_ps(), _CMP_EQ_OQ),
                               _mm256_cmp_ps(mag, _mm256_set1_ps(INFINITY), _CMP_NLT_UQ));
    return _mm256_blendv_ps(m, a, keep);
}""",
}


def _arith(p: str, vec_bits: str) -> dict[str, str]:
    return {
        "add": f"{p}_add_ps({{0}}, {{1}})",
        "sub": f"{p}_sub_ps({{0}}, {{1}})",
        "mul": f"{p}_mul_ps({{0}}, {{1}})",
        "div": f"{p}_div_ps({{0}}, {{1}})",
        "fma": f"{p}_fmadd_ps({{0}}, {{1}}, {{2}})",
        "sqrt": f"{p}_sqrt_ps({{0}})",
        "min": f"pys_min{vec_bits}({{0}}, {{1}})",
        "max": f"pys_max{vec_bits}({{0}}, {{1}})",
        "ldexp": f"pys_ldexp{vec_bits}({{0}}, {{1}})",
        "getmant": f"pys_getmant{vec_bits}({{0}})",
    }


AVX512 = Isa("512", "__m512", "_mm512", 16,
             "defined(__AVX512F__) && defined(__AVX512DQ__) && !defined(PYS_NO_INTRINSICS) && !defined(PYS_NO_AVX512)",
             _HELPERS_512, {
                 **_arith("_mm512", "512"),
                 "neg": "_mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512({0}), _mm512_set1_epi32(INT32_MIN)))",
                 "abs": "_mm512_abs_ps({0})",
                 "rint": "_mm512_roundscale_ps({0}, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)",
                 "floor": "_mm512_roundscale_ps({0}, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC)",
                 "getexp": "_mm512_getexp_ps({0})",
             })
AVX2 = Isa("256", "__m256", "_mm256", 8, "defined(__AVX2__) && defined(__FMA__) && !defined(PYS_NO_INTRINSICS)",
           _HELPERS_256, {
               **_arith("_mm256", "256"),
               "neg": "_mm256_xor_ps({0}, _mm256_set1_ps(-0.0f))",
               "abs": "_mm256_andnot_ps(_mm256_set1_ps(-0.0f), {0})",
               "rint": "_mm256_round_ps({0}, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)",
               "floor": "_mm256_round_ps({0}, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC)",
               "getexp": "pys_getexp256({0})",
           })
ISAS = (AVX512, AVX2)

#: float32 ops the kernels cover (the float64-only exp/log/pow never occur in float32 programs).
OPS = frozenset(AVX512.ops) & frozenset(AVX2.ops)


def supported(plan: Plan) -> bool:
    return plan.dtype == "float32" and plan.ops <= OPS


def helpers(plan: Plan, isa: Isa) -> list[str]:
    return [h for h in isa.helpers if h in plan.ops]


@dataclass(frozen=True)
class Range:
    """What an exporter may rely on about a value for every input: its non-NaN values lie in [lo, hi];
    ``nan`` whether it can be NaN at all; ``nan_from_input`` whether it is NaN only where the (single)
    input is; ``integral`` whether its non-NaN values are integers; ``on_input`` whether it depends on
    the input (then it is NaN wherever the input is: every float32 op propagates NaN)."""

    lo: float = -math.inf
    hi: float = math.inf
    nan: bool = True
    nan_from_input: bool = False
    integral: bool = False
    on_input: bool = True


_SLACK = 2.0 ** -20  # relative widening of computed bounds: covers float32 rounding of the endpoints


def _widen(lo: float, hi: float) -> tuple[float, float]:
    return (lo - abs(lo) * _SLACK if math.isfinite(lo) else lo, hi + abs(hi) * _SLACK if math.isfinite(hi) else hi)


def ranges(plan: Plan) -> list[Range]:
    """A sound, deliberately small range analysis of a float32 program (one per instruction): exact through
    min/max with constants, rint/floor, neg, abs, mul/add/sub with a finite constant and fma with a finite
    constant factor and addend; anything else may be any float or NaN. Enough to see that
    ``ldexp(p, rint(clamp(x) * c))`` (or ``floor(fma(clamp(x), c, d))``) has a bounded exponent."""
    single = len(plan.params) == 1
    out: list[Range] = []

    def of(a) -> Range:
        if a.kind == "const":
            v = float(a.value)
            if math.isnan(v):
                return Range(nan=True, on_input=False)
            return Range(v, v, nan=False, integral=math.isfinite(v) and v == math.floor(v), on_input=False)
        if a.kind == "input":
            return Range(nan=True, nan_from_input=single, on_input=True)
        return out[a.index]

    for ins in plan.program.instrs:
        rs = [of(a) for a in ins.args]
        on = any(r.on_input for r in rs)
        nan, from_in = any(r.nan for r in rs), all(r.nan_from_input or not r.nan for r in rs)
        op, r = ins.op, Range(on_input=on)
        if op in ("min", "max"):
            a, b = rs
            f = min if op == "min" else max
            r = Range(f(a.lo, b.lo), f(a.hi, b.hi), nan, from_in, a.integral and b.integral, on)
        elif op in ("rint", "floor"):
            (a,) = rs
            lo = float(math.floor(a.lo)) if math.isfinite(a.lo) else a.lo
            hi = float(math.ceil(a.hi)) if math.isfinite(a.hi) else a.hi
            r = Range(lo, hi, a.nan, a.nan_from_input, True, on)
        elif op == "neg":
            (a,) = rs
            r = Range(-a.hi, -a.lo, a.nan, a.nan_from_input, a.integral, on)
        elif op == "abs":
            (a,) = rs
            lo = 0.0 if a.lo <= 0 <= a.hi else min(abs(a.lo), abs(a.hi))
            r = Range(lo, max(abs(a.lo), abs(a.hi)), a.nan, a.nan_from_input, a.integral, on)
        elif op in ("mul", "add", "sub") and any(ar.kind == "const" for ar in ins.args):
            k = next(i for i, ar in enumerate(ins.args) if ar.kind == "const")
            c, v = float(ins.args[k].value), rs[1 - k]
            if math.isfinite(c) and (op != "mul" or c != 0):
                if op == "mul":
                    lo, hi = sorted((v.lo * c, v.hi * c))
                elif op == "add":
                    lo, hi = v.lo + c, v.hi + c
                elif k == 1:
                    lo, hi = v.lo - c, v.hi - c
                else:
                    lo, hi = c - v.hi, c - v.lo
                r = Range(*_widen(lo, hi), v.nan, v.nan_from_input, False, on)
        elif op == "fma" and ins.args[2].kind == "const" and sum(ar.kind == "const" for ar in ins.args[:2]) == 1:
            k = 0 if ins.args[0].kind == "const" else 1
            c, d, v = float(ins.args[k].value), float(ins.args[2].value), rs[1 - k]
            if math.isfinite(c) and c != 0 and math.isfinite(d):
                lo, hi = sorted((v.lo * c, v.hi * c))
                r = Range(*_widen(lo + d, hi + d), v.nan, v.nan_from_input, False, on)
        out.append(r)
    return out


def _const(ref) -> float | None:
    return float(ref.value) if ref.kind == "const" else None


def _f32(v: float) -> str:
    return f"{float(v).hex()}f"


def bounded_exponent(plan: Plan, rng: list[Range], refs: list) -> tuple[bool, bool] | None:
    """For ``ldexp a b``: None unless every non-NaN b truncates into [-252, 254] (two power-of-two
    factors then suffice for any a, see pys_ldexp2_256); else (whether a NaN b needs its own NaN
    select, whether b is integral)."""
    a, b = refs
    if b.kind != "value":
        return None
    rb = rng[b.index]
    if not (-252 <= math.trunc(rb.lo) if math.isfinite(rb.lo) else False) or not (
            math.trunc(rb.hi) <= 254 if math.isfinite(rb.hi) else False):
        return None
    ra = rng[a.index] if a.kind == "value" else None
    # b is NaN only where the input is, and a is NaN there too: a * anything is NaN already
    covered = not rb.nan or (rb.nan_from_input and ((a.kind == "input" and len(plan.params) == 1)
                                                     or (ra is not None and ra.on_input and len(plan.params) == 1)))
    return (not covered, rb.integral)


def _expr(plan: Plan, isa: Isa, op: str, refs: list, rng: list[Range]) -> str:
    args = [plan.ref(a) for a in refs]
    if op in ("min", "max"):
        # min(c, v) / max(c, v) with a constant c: vminps/vmaxps(c, v) is the select c < v ? c : v
        # (> for max), which gives v where v is NaN or equal to c (common.minmax_select).
        i = minmax_select(op, refs)
        if i is not None:
            return f"{isa.p}_{op}_ps({args[i]}, {args[1 - i]})"
    if op == "ldexp":
        k = _const(refs[1])
        if k is not None and not math.isnan(k):  # the exponent is known when exporting
            bound = LDEXP_BOUND["float32"]
            k = math.trunc(max(-bound, min(bound, k)))
            if isa is AVX512:
                return f"_mm512_scalef_ps({args[0]}, _mm512_set1_ps({_f32(k)}))"
            k = max(-278, min(278, k))
            kl = max(-126, min(127, k))
            f1 = (k - kl) >> 1
            expr = args[0]
            for e in (f1, k - kl - f1, kl):  # the same three steps as pys_ldexp256, the last one rounding
                if e:
                    expr = f"_mm256_mul_ps({expr}, _mm256_set1_ps({_f32(2.0 ** e)}))"
            return expr
        bounded = bounded_exponent(plan, rng, refs)
        if bounded is not None:
            nan_select, integral = bounded
            if isa is AVX512:  # |b| < 300 already: the clamp is idle; trunc is idle for an integral b
                k = args[1] if integral else f"_mm512_roundscale_ps({args[1]}, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC)"
                return f"_mm512_scalef_ps({args[0]}, {k})"
            return f"pys_ldexp2_256({args[0]}, {args[1]}, {int(nan_select)})"
    return isa.ops[op].format(*args)


def kernel_lines(plan: Plan, isa: Isa, kernel: str, const_literal) -> list[str]:
    """The vector kernel ``kernel`` (``isa.vec`` in and out) computing the program."""
    params = ", ".join(f"{isa.vec} {p}" for p in plan.params)
    out = [f"PYS_KERNEL {isa.vec} {kernel}({params}) {{"]
    for p, used in zip(plan.params, plan.uses_input()):
        if not used:
            out.append(f"    (void){p};")
    rng = ranges(plan)
    body = [f"    const {isa.vec} v{i + 1} = {_expr(plan, isa, ins.op, list(ins.args), rng)};"
            for i, ins in enumerate(plan.program.instrs)]
    used = set(re.findall(r"\bc(\d+)\b", "\n".join(body)))  # a folded ldexp exponent needs no vector
    for i, v in enumerate(plan.consts):
        if str(i + 1) in used:
            out.append(f"    const {isa.vec} c{i + 1} = {isa.p}_set1_ps({const_literal(v)});")
    out += body
    out.append(f"    return v{plan.program.output + 1};")
    out.append("}")
    return out


def array_lines(isa: Isa, kernel: str, inputs: list[str], output: str) -> list[str]:
    """The body of ``NAME_array``: ``isa.lanes`` at a time, the tail with masked loads and stores."""
    w = isa.lanes
    loads = ", ".join(f"{isa.p}_loadu_ps({p} + i)" for p in inputs)
    if isa is AVX512:
        masked = ", ".join(f"_mm512_maskz_loadu_ps(m, {p} + i)" for p in inputs)
        tail = ["        __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);",
                f"        _mm512_mask_storeu_ps({output} + i, m, {kernel}({masked}));"]
    else:
        masked = ", ".join(f"_mm256_maskload_ps({p} + i, m)" for p in inputs)
        tail = ["        __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n - i)), "
                "_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));",
                f"        _mm256_maskstore_ps({output} + i, m, {kernel}({masked}));"]
    return ["    size_t i = 0;",
            f"    for (; i + {w} <= n; i += {w}) {isa.p}_storeu_ps({output} + i, {kernel}({loads}));",
            "    if (i < n) {", *tail, "    }"]
