"""Programs as Rust: ``pub fn NAME(x: f32, ...) -> f32`` (``f64`` for float64 programs).

The helpers (``RUST_HELPERS``, emitted-code templates with ``{T}`` for the float type where
one text serves both) give ``min``/``max``/``ldexp``/``getexp``/``getmant`` the semantics of
``docs/program-format.md``. Constants are ``from_bits`` literals with their decimal value in a
comment.

Floating-point mode: Rust has no fast-math mode for ``+ - * /`` (LLVM's fast-math flags are
reached only through intrinsics such as ``fadd_fast`` or ``algebraic_add``, which the export does
not use) and ``mul_add`` always rounds once, so any ``opt-level`` and ``-C target-cpu`` keep the
results. What can change them is the thread's mode at run time (flush-to-zero or
denormals-are-zero set by a ``-ffast-math`` C library loaded into the process, another rounding
mode): :data:`FP_MODE` says so in the file and debug builds check it (``debug_assert!``).
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from pysearch.export.common import Plan, comment_text, expr, header_lines, helpers
from pysearch.program import format_const

RUST_HELPERS = {
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


#: The floating-point mode note and its debug-build check, in every Rust export.
FP_MODE = """
// Floating-point mode: verified bit for bit in IEEE 754 arithmetic (round to nearest even,
// subnormals kept), which is how Rust computes: it has no fast-math flag for + - * / and
// mul_add rounds once, so any opt-level and -C target-cpu=native are safe. Keep it that way:
// no fadd_fast/algebraic_* rewrites. At run time the thread must not flush subnormals to zero
// (FTZ/DAZ, set by a C library built with -ffast-math loaded into the process) or round
// otherwise; debug builds check this at every call.

/// Whether this thread computes in the verified mode: 2^-126 / 2 is not flushed (FTZ), 2^-149
/// is not read as 0 (DAZ), +-(1 + 1.5 * 2^-24) round to nearest.
#[inline]
fn pys_fp_mode_ok() -> bool {
    use std::hint::black_box;
    let tiny = black_box(f32::from_bits(0x0080_0000));
    let least = black_box(f32::from_bits(1));
    let one = black_box(1.0f32);
    let bit = black_box(f32::from_bits(0x33c0_0000));
    (tiny * 0.5).to_bits() == 0x0040_0000
        && (least * 2.0).to_bits() == 2
        && (one + bit).to_bits() == 0x3f80_0001
        && (-one - bit).to_bits() == 0xbf80_0001
}"""


def write(plan: Plan, name: str, meta: Mapping | None) -> str:
    """The source for ``plan``: header comment, the helpers it needs, and ``pub fn name``."""
    dt = plan.dtype
    rt = "f32" if dt == "float32" else "f64"
    out = [f"// {comment_text(ln, 'rust')}".rstrip() for ln in header_lines(plan.program, name, meta)]
    out.append(FP_MODE)
    for h in helpers(plan, "rust"):
        out.append(RUST_HELPERS[h].replace("{T}", rt))
    out.append("")
    used = plan.uses_input()
    params = ", ".join(f"{'' if u else '_'}{p}: {rt}" for p, u in zip(plan.params, used))
    out.append("#[inline]")
    out.append("#[must_use]")
    out.append(f"pub fn {name}({params}) -> {rt} {{")
    out.append('    debug_assert!(pys_fp_mode_ok(), "the floating-point mode is not round-to-nearest without FTZ/DAZ");')
    for i, v in enumerate(plan.consts):
        out.append(f"    const C{i + 1}: {rt} = {_rust_const(v, dt)}; // {format_const(v, dt)}")
    for i, ins in enumerate(plan.program.instrs):
        args = [plan.ref(a).upper() if a.kind == "const" else plan.ref(a) for a in ins.args]
        out.append(f"    let v{i + 1} = {expr(plan, 'rust', ins.op, args)};")
    out.append(f"    v{plan.program.output + 1}")
    out.append("}")
    return "\n".join(out) + "\n"


def _rust_const(v: float, dtype: str) -> str:
    if dtype == "float32":
        return f"f32::from_bits(0x{int(np.array(v, dtype=np.float32).view(np.uint32)):08x})"
    return f"f64::from_bits(0x{int(np.array(v, dtype=np.float64).view(np.uint64)):016x})"
