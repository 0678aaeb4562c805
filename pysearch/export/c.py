"""Programs as C11: a ``static inline`` kernel, the public function and its array loop.

The program body is a ``static inline`` kernel called by both the public ``NAME`` and the array
loop ``NAME_array`` (a call to the public, interposable symbol would go through the PLT under
``-fPIC`` and stop inlining), and the float32 helpers (``C_HELPERS``, emitted-code templates) are
branch-free, so GCC vectorises the array loop. A float32 program's array loop has intrinsics bodies
(``c_simd.py``): 16 lanes of AVX-512F/DQ where the target has them, else 8 of AVX2+FMA, unless
``PYS_NO_INTRINSICS`` is defined. Helpers and kernels sit inside include guards, so
several exported C files make one translation unit. Constants are hex-float literals. C code
must be compiled without contraction of ``a * b + c`` (``-ffp-contract=off``, the default for
``-std=c11``) and without fast-math, which :data:`FP_MODE` refuses at compile time and, in
builds without ``NDEBUG``, checks at run time.
"""

from __future__ import annotations

import hashlib
import math
from typing import Mapping

from pysearch.export import c_simd
from pysearch.export.common import Plan, comment_text, expr, header_lines, helpers, hex_literal, minmax_select
from pysearch.program import format_const

# float32 helpers are branch-free and work on bit patterns: comparisons give 0/1 integers and
# selects are masks (pys_sel32). GCC does not if-convert a select that guards a float operation
# (it might raise a flag), and it threads chains of float comparisons into jumps; either way a
# branch keeps the array loop from vectorising. libm's rintf/floorf are avoided too: they are
# calls (floorf always; rintf without SSE4.1).
C_HELPERS = {
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
#if defined(__SSE4_1__) || defined(__aarch64__)
    return __builtin_rintf(a); /* one roundps / frintx (the same answer, also on NaN and -0) */
#else
    uint32_t u = pys_bits32(a), mag = u & 0x7fffffffu;
    float m = pys_float32(mag);
    float r = (m + 0x1p23f) - 0x1p23f;
    return pys_float32(pys_sel32(mag < 0x4b000000u, pys_bits32(r) | (u & 0x80000000u), u));
#endif
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


#: The floating-point mode block: documents the mode the results were verified in, refuses
#: compilers' fast-math modes (``#error`` naming the flag; ``-DPYSEARCH_ALLOW_FAST_MATH`` opts
#: out) and excess precision, and in debug builds (no ``NDEBUG``) checks the mode at each call.
#: Guarded, so several exported files in one translation unit compile it once.
FP_MODE = """
/* Floating-point mode. These results were verified bit for bit in IEEE 754 arithmetic: round to
 * nearest even, subnormals kept (no flush-to-zero, no denormals-are-zero), no contraction of
 * a * b + c (fma is spelled fmaf/fma). Safe to compile with -O0 to -O3, -march=native,
 * -ffp-contract=off. Not with -ffast-math or -Ofast: they reassociate and fold the rounding
 * steps (the exported full-range exp2 became 2^trunc(x)) and link code that sets FTZ/DAZ for
 * the whole process; nor with -funsafe-math-optimizations, -fassociative-math,
 * -freciprocal-math or -ffinite-math-only (compilers define no macro for the first three, so
 * only -ffast-math and -ffinite-math-only are refused here). Define PYSEARCH_ALLOW_FAST_MATH to
 * compile anyway, accepting results that are no longer the verified ones. At run time the
 * calling thread must be in that mode (a -ffast-math library or torch.set_flush_denormal(True)
 * loaded into the process changes it); builds without NDEBUG check it at every call. */
#ifndef PYS_FP_MODE
#define PYS_FP_MODE
#if defined(__FAST_MATH__) && !defined(PYSEARCH_ALLOW_FAST_MATH)
#error "pysearch export: compiled with -ffast-math (or -Ofast): __FAST_MATH__ is defined, and fast-math changes the verified results; compile without it, or define PYSEARCH_ALLOW_FAST_MATH to accept unverified results"
#endif
#if defined(__FINITE_MATH_ONLY__) && __FINITE_MATH_ONLY__ && !defined(PYSEARCH_ALLOW_FAST_MATH)
#error "pysearch export: compiled with -ffinite-math-only: __FINITE_MATH_ONLY__ is set, which changes results at infinities and NaNs; compile without it, or define PYSEARCH_ALLOW_FAST_MATH to accept unverified results"
#endif
#if defined(__FLT_EVAL_METHOD__) && (__FLT_EVAL_METHOD__ == 1 || __FLT_EVAL_METHOD__ == 2)
#error "pysearch export: float arithmetic is evaluated in excess precision (__FLT_EVAL_METHOD__ is 1 or 2, e.g. x87 -mfpmath=387); compile for SSE2 (-mfpmath=sse) so that every operation rounds once"
#endif
#ifndef NDEBUG
#include <assert.h>
/* 1 when the calling thread computes in the verified mode: 2^-126 / 2 is not flushed (FTZ),
   2^-149 is not read as 0 (DAZ), +-(1 + 1.5 * 2^-24) round to nearest. The results are compared
   as bit patterns: under DAZ a float comparison would read a subnormal operand as 0 too. */
static inline int pys_fp_mode_ok(void) {
    volatile float tiny = 0x1p-126f, least = 0x1p-149f, one = 1.0f, bit = 0x1.8p-24f;
    float r[4] = {tiny * 0.5f, least * 2.0f, one + bit, -one - bit};
    uint32_t u[4];
    memcpy(u, r, sizeof u);
    return (u[0] == 0x00400000u) & (u[1] == 2u) & (u[2] == 0x3f800001u) & (u[3] == 0xbf800001u);
}
#define PYS_CHECK_FP_MODE() assert(pys_fp_mode_ok() && "pysearch export: the floating-point mode is not round-to-nearest without FTZ/DAZ, so results are not the verified ones")
#else
#define PYS_CHECK_FP_MODE() ((void)0)
#endif
#endif /* PYS_FP_MODE */"""


def write(plan: Plan, name: str, meta: Mapping | None, fp_mode: bool = True) -> str:
    """The translation unit for ``plan``: header comment, guarded helpers, kernel, ``name`` and ``name_array``.

    ``fp_mode``: include the floating-point mode block (:data:`FP_MODE`); a file that follows
    another in the same translation unit (:func:`pysearch.export.export_many`) leaves it out.
    """
    dt = plan.dtype
    ct = "float" if dt == "float32" else "double"
    out = ["/*"]
    out += [f" * {comment_text(ln, 'c')}".rstrip() for ln in header_lines(plan.program, name, meta)]
    out.append(" *")
    out.append(" * Build: cc -O3 -march=native -std=c11 -ffp-contract=off ... -lm")
    out.append(" * Never -ffast-math or -Ofast (refused; see the floating-point mode below).")
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
    if fp_mode:
        out.append(FP_MODE)
    for h in helpers(plan, "c"):
        guard = f"PYS_HELPER_{h.upper()}"
        out += [f"#ifndef {guard}", f"#define {guard}{C_HELPERS[h]}", "#endif"]
    simd = c_simd.supported(plan)
    if simd:  # the array loop's AVX-512 / AVX2 kernels (pysearch/export/c_simd.py) where the target has them
        for isa in c_simd.ISAS:
            out += [f"#if {isa.condition}", "#include <immintrin.h>"]
            for h in c_simd.helpers(plan, isa):
                guard = f"PYS_HELPER_{h.upper()}{isa.name}"
                out += [f"#ifndef {guard}", f"#define {guard}{isa.helpers[h]}", "#endif"]
            out.append("#endif")
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
        out.append(f"    const {ct} v{i + 1} = {_expr(plan, ins)};")
    out.append(f"    return v{plan.program.output + 1};")
    out.append("}")
    out.append("")
    if simd:
        for isa in c_simd.ISAS:
            out += [f"#if {isa.condition}",
                    *c_simd.kernel_lines(plan, isa, f"pys_kernel{isa.name}_{name}", lambda v: _c_const(v, dt)),
                    "#endif", ""]
    out.append(f"{ct} {name}({params}) {{")
    out.append("    PYS_CHECK_FP_MODE();")
    out.append(f"    return {kernel}({', '.join(plan.params)});")
    out.append("}")
    out.append("")
    if len(plan.params) == 1:
        out.append(f"void {name}_array(const {ct} *restrict x, {ct} *restrict y, size_t n) {{")
        out.append("    PYS_CHECK_FP_MODE();")
        loop = f"    for (size_t i = 0; i < n; i++) y[i] = {kernel}(x[i]);"
        ins, dst = ["x"], "y"
    else:
        arrays = ", ".join(f"const {ct} *restrict in_{p}" for p in plan.params)
        out.append(f"void {name}_array({arrays}, {ct} *restrict out, size_t n) {{")
        out.append("    PYS_CHECK_FP_MODE();")
        call = ", ".join(f"in_{p}[i]" for p in plan.params)
        loop = f"    for (size_t i = 0; i < n; i++) out[i] = {kernel}({call});"
        ins, dst = [f"in_{p}" for p in plan.params], "out"
    if simd:
        for k, isa in enumerate(c_simd.ISAS):
            out += [f"#{'el' if k else ''}if {isa.condition}",
                    *c_simd.array_lines(isa, f"pys_kernel{isa.name}_{name}", ins, dst)]
        out += ["#else", loop, "#endif"]
    else:
        out.append(loop)
    out.append("}")
    out.append(f"#endif /* {guard} */")
    return "\n".join(out) + "\n"


def _expr(plan: Plan, ins) -> str:
    """The C expression of one instruction: the op registry's template, except that a float32 min/max
    with a constant operand that needs no signed-zero fix-up is one select (c < v ? c : v passes a NaN
    v through and gives v where v equals c), without the helper's NaN and zero masks. The select is
    on bit patterns (pys_sel32): a float ?: next to another makes GCC branch, and then not vectorise."""
    args = [plan.ref(a) for a in ins.args]
    i = minmax_select(ins.op, ins.args) if plan.dtype == "float32" else None
    if i is not None:
        cmp = "<" if ins.op == "min" else ">"
        c, v = args[i], args[1 - i]
        return f"pys_float32(pys_sel32({c} {cmp} {v}, pys_bits32({c}), pys_bits32({v})))"
    return expr(plan, "c", ins.op, args)


def _c_const(v: float, dtype: str) -> str:
    f = "f" if dtype == "float32" else ""
    if math.isnan(v):
        return "NAN" if dtype == "float32" else "(double)NAN"
    if math.isinf(v):
        inf = "INFINITY" if dtype == "float32" else "(double)INFINITY"
        return inf if v > 0 else f"-{inf}"
    return hex_literal(v) + f
