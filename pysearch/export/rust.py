"""Programs as Rust: ``pub fn NAME(x: f32, ...) -> f32`` and the slice loop ``pub fn NAME_slice``.

Both call one private kernel ``pys_kernel_NAME`` (the program). ``NAME_slice(x: &[f32], y: &mut
[f32]) -> usize`` (several inputs: one slice each, then ``out``) writes the first ``n`` = least of
the lengths elements and returns ``n``: like ``Iterator::zip``, never a panic. The helpers
(``RUST_HELPERS``, emitted-code templates) give ``min``/``max``/``rint``/``floor``/``ldexp``/
``getexp``/``getmant`` the semantics of ``docs/program-format.md``; the float32 ones are
branch-free (selects on bit patterns) and cast no float to an integer (``as i32`` saturates, which
LLVM does lane by lane), so LLVM vectorises the slice loop: 16 lanes of AVX-512 or 8 of AVX2 with
``-C opt-level=3 -C target-cpu=native``. Float64 programs get the same functions with plain
helpers. Constants are ``from_bits`` literals with their decimal value in a comment.
:func:`write_many` puts several functions in one module, the helpers once. The public functions'
doc comments carry the first two header lines through :func:`doc_text`.

Floating-point mode: Rust has no fast-math mode for ``+ - * /`` (LLVM's fast-math flags are
reached only through intrinsics such as ``fadd_fast`` or ``algebraic_add``, which the export does
not use) and ``mul_add`` always rounds once, so any ``opt-level`` and ``-C target-cpu`` keep the
results. What can change them is the thread's mode at run time (flush-to-zero or
denormals-are-zero set by a ``-ffast-math`` C library loaded into the process, another rounding
mode): :data:`FP_MODE` says so in the file and debug builds check it (``debug_assert!``).
"""

from __future__ import annotations

import re
from typing import Mapping, Sequence

import numpy as np

from pysearch.export import c_simd
from pysearch.export.common import Plan, comment_text, expr, header_lines, minmax_select
from pysearch.program import Instr, format_const

RUST_HELPERS = {
    "min32": """
/// NaN if either is NaN; the smaller; min(+0, -0) = -0; for equal operands `a`. Branch-free (selects).
#[inline]
fn pys_minf(a: f32, b: f32) -> f32 {
    let (ua, ub) = (a.to_bits(), b.to_bits());
    let r = if b < a { ub } else { ua };
    let r = if (ua | ub) & 0x7fff_ffff == 0 { ua | ub } else { r }; // both zero: -0 if either is
    f32::from_bits(if a.is_nan() | b.is_nan() { 0x7fc0_0000 } else { r })
}""",
    "max32": """
/// NaN if either is NaN; the larger; max(+0, -0) = +0; for equal operands `a`. Branch-free (selects).
#[inline]
fn pys_maxf(a: f32, b: f32) -> f32 {
    let (ua, ub) = (a.to_bits(), b.to_bits());
    let r = if b > a { ub } else { ua };
    let r = if (ua | ub) & 0x7fff_ffff == 0 { ua & ub } else { r }; // both zero: -0 if both are
    f32::from_bits(if a.is_nan() | b.is_nan() { 0x7fc0_0000 } else { r })
}""",
    "rint32": """
/// The nearest integer, ties to even. With SSE4.1 (or on aarch64) one rounding instruction; else,
/// for |a| < 2^23, (|a| + 2^23) - 2^23 rounds |a| (unit spacing there) and the sign is put back
/// (rint(-0.25) = -0); |a| >= 2^23 (an integer already), +-inf and NaN are returned as they are.
#[inline]
fn pys_rintf(a: f32) -> f32 {
    #[cfg(any(target_feature = "sse4.1", target_arch = "aarch64"))]
    {
        a.round_ties_even()
    }
    #[cfg(not(any(target_feature = "sse4.1", target_arch = "aarch64")))]
    {
        let (u, two23) = (a.to_bits(), f32::from_bits(0x4b00_0000));
        let mag = u & 0x7fff_ffff;
        let r = (f32::from_bits(mag) + two23) - two23;
        f32::from_bits(if mag < 0x4b00_0000 { r.to_bits() | (u & 0x8000_0000) } else { u })
    }
}""",
    "floor32": """
/// floor(a): rint(a), less 1 where that rounded up (exact: both are integers; -0 stays -0).
#[inline]
fn pys_floorf(a: f32) -> f32 {
    let r = pys_rintf(a);
    r - if r > a { 1.0 } else { 0.0 }
}""",
    "ldexp32": """
/// a * 2^k, k = trunc(clamp(b, -300, 300)), one rounding; NaN b gives NaN. Clamping to +-278 gives
/// the same results (|a| * 2^278 overflows and |a| * 2^-278 rounds to 0 for every nonzero finite a).
/// Three multiplications by powers of two, a * 2^f1 * 2^(f - f1) * 2^kl with kl = clamp(k, -126, 127)
/// and f = k - kl: only the last can round (an earlier one that rounds leaves a value below 2^-252,
/// zero either way; one that overflows is inf either way). Branch-free.
#[inline]
fn pys_ldexpf(a: f32, b: f32) -> f32 {
    let k = pys_trunc_i32(if b.is_nan() { 0.0 } else { b.clamp(-278.0, 278.0) });
    let kl = k.clamp(-126, 127);
    let f = k - kl;
    let f1 = f >> 1;
    let r = a * pys_pow2f(f1) * pys_pow2f(f - f1) * pys_pow2f(kl);
    if b.is_nan() { f32::NAN } else { r }
}""",
    "ldexp2_32": """
/// a * 2^b for an integral b in [-252, 254] (an exponent the exporter has bounded): a * 2^(b - bl) *
/// 2^bl with bl = clamp(b, -126, 127), so only the last multiplication can round (see pys_ldexpf).
/// All in float lanes: the clamp is vmaxps/vminps, each power of two one addition and one shift.
#[inline]
fn pys_ldexp2f(a: f32, b: f32) -> f32 {
    let bl = b.clamp(-126.0, 127.0);
    a * pys_exp2_intf(b - bl) * pys_exp2_intf(bl)
}

/// 2^e for an integral e in [-126, 127]: the bits of 1.5 * 2^23 + 127 + e (exact) shifted left by
/// 23 are (e + 127) << 23, as those of 1.5 * 2^23 shift out.
#[inline]
fn pys_exp2_intf(e: f32) -> f32 {
    f32::from_bits((e + f32::from_bits(0x4b40_007f)).to_bits() << 23)
}""",
    "pow2_32": """
/// 2^e for an integer e in [-126, 127].
#[inline]
fn pys_pow2f(e: i32) -> f32 {
    f32::from_bits(((e + 127) as u32) << 23)
}""",
    "truncf32": """
/// trunc(c) for |c| < 2^22, up to the sign of a zero. With SSE4.1 (or on aarch64) one rounding
/// instruction; else rint(c) = (c + 1.5 * 2^23) - 1.5 * 2^23 (unit spacing there), moved one toward
/// zero where that rounded away from zero (no libm call, which would stop the loop vectorising).
#[inline]
fn pys_truncf(c: f32) -> f32 {
    #[cfg(any(target_feature = "sse4.1", target_arch = "aarch64"))]
    {
        c.trunc()
    }
    #[cfg(not(any(target_feature = "sse4.1", target_arch = "aarch64")))]
    {
        let r = (c + f32::from_bits(0x4b40_0000)) - f32::from_bits(0x4b40_0000);
        let down = if (c > 0.0) & (r > c) { 1.0 } else { 0.0 };
        let up = if (c < 0.0) & (r < c) { 1.0 } else { 0.0 };
        r - down + up
    }
}""",
    "trunc32": """
/// trunc(c) as an i32 for |c| < 2^22: the bits of 1.5 * 2^23 + trunc(c) (exact) less those of
/// 1.5 * 2^23. Not `c as i32`, a saturating cast that LLVM does lane by lane, not in vector lanes.
#[inline]
fn pys_trunc_i32(c: f32) -> i32 {
    (pys_truncf(c) + f32::from_bits(0x4b40_0000)).to_bits() as i32 - 0x4b40_0000
}""",
    "getexp32": """
/// floor(log2|a|) as a float; +-0 -> -inf, +-inf -> +inf, NaN -> NaN. A subnormal's exponent comes
/// from converting its integer significand (exact) to float. Branch-free (selects).
#[inline]
fn pys_getexpf(a: f32) -> f32 {
    let mag = a.to_bits() & 0x7fff_ffff;
    let s = (mag as i32 as f32).to_bits();
    let e = if mag < 0x0080_0000 { (s >> 23) as i32 - 276 } else { (mag >> 23) as i32 - 127 };
    let r = if mag == 0 { f32::NEG_INFINITY } else { e as f32 };
    let r = if mag == 0x7f80_0000 { f32::INFINITY } else { r };
    if mag > 0x7f80_0000 { a } else { r }
}""",
    "getmant32": """
/// a / 2^getexp(a): sign kept, |m| in [1, 2); +-0, +-inf and NaN are returned as they are. A
/// subnormal's significand comes from converting it, as an integer, to float (exact). Branch-free.
#[inline]
fn pys_getmantf(a: f32) -> f32 {
    let u = a.to_bits();
    let mag = u & 0x7fff_ffff;
    let src = if mag < 0x0080_0000 { (mag as i32 as f32).to_bits() } else { u };
    let m = (src & 0x007f_ffff) | 0x3f80_0000 | (u & 0x8000_0000);
    if (mag == 0) | (mag >= 0x7f80_0000) { a } else { f32::from_bits(m) }
}""",
    "min64": """
/// NaN if either is NaN; the smaller; min(+0, -0) = -0; for equal operands `a`.
#[inline]
fn pys_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        return f64::NAN;
    }
    if a == 0.0 && b == 0.0 {
        return if a.is_sign_negative() { a } else { b };
    }
    if b < a { b } else { a }
}""",
    "max64": """
/// NaN if either is NaN; the larger; max(+0, -0) = +0; for equal operands `a`.
#[inline]
fn pys_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        return f64::NAN;
    }
    if a == 0.0 && b == 0.0 {
        return if a.is_sign_negative() { b } else { a };
    }
    if b > a { b } else { a }
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


#: Characters that could start Markdown in a rustdoc comment (code spans and fences, whose code
#: ``cargo test`` would compile and run as a doctest, links, HTML, emphasis, tables): each gets a
#: backslash, which CommonMark reads as "this character, literally".
_MARKDOWN = re.compile(r"[\\`*\[\]<>&|~]")


def doc_text(value: object) -> str:
    """``value`` as one line of a ``///`` doc comment that rustdoc shows as plain text.

    :func:`comment_text` makes it one line of printable ASCII; every character that could start
    Markdown (``\\ ` * [ ] < > & | ~``) is then backslash-escaped, so no code block (a doctest),
    link or HTML can come from metadata. The caller starts each line with fixed text, so no line
    is indented into a code block either.
    """
    return _MARKDOWN.sub(lambda m: "\\" + m.group(), comment_text(value, "rust"))


def write(plan: Plan, name: str, meta: Mapping | None) -> str:
    """The source for ``plan``: header comment, the helpers it needs, ``pub fn name`` and ``pub fn name_slice``."""
    out = [f"// {comment_text(ln, 'rust')}".rstrip() for ln in header_lines(plan.program, name, meta)]
    functions = _functions(plan, name, meta)
    return "\n".join(out + _prelude([functions]) + functions) + "\n"


def write_many(items: Sequence[tuple[Plan, str, Mapping | None]]) -> str:
    """One Rust module with every ``(plan, name, meta)`` function: the floating-point mode note and the
    helpers once, then each function under its own header comment (checked names, distinct)."""
    names = ", ".join(name for _, name, _ in items)
    out = [f"// pysearch library: {names} (and each one's NAME_slice), exported by pysearch in one module.",
           "// Above each function: its header comment (target, domain, verified bound, program)."]
    functions = [_functions(plan, name, meta) for plan, name, meta in items]
    out += _prelude(functions)
    for (plan, name, meta), lines in zip(items, functions):
        out.append("")
        out += [f"// {comment_text(ln, 'rust')}".rstrip() for ln in header_lines(plan.program, name, meta)]
        out += lines
    return "\n".join(out) + "\n"


#: The functions each helper snippet defines.
_DEFINES = {key: set(re.findall(r"^fn (\w+)\(", src, re.MULTILINE)) for key, src in RUST_HELPERS.items()}


def _helpers_called(code: str) -> list[str]:
    """The helper snippets that ``code`` calls, directly or through other helpers, in table order.

    Read from the code (comments, which may hold metadata, left out) rather than from the op
    registry alone: the specialised forms (a bounded ``ldexp`` exponent) call other helpers than
    the op's template, and an unused private helper would be a dead-code warning.
    """
    keys: set[str] = set()
    text = code
    while True:
        called = set(re.findall(r"\b(pys_\w+)\(", re.sub(r"//[^\n]*", "", text)))  # calls, not comments
        new = {k for k, defined in _DEFINES.items() if defined & called} - keys
        if not new:
            return [k for k in RUST_HELPERS if k in keys]
        keys |= new
        text = "\n".join(RUST_HELPERS[k] for k in new)


def _prelude(functions: list[list[str]]) -> list[str]:
    """The floating-point mode note and every helper the functions' code calls, each once."""
    return [FP_MODE] + [RUST_HELPERS[h] for h in _helpers_called("\n".join(ln for f in functions for ln in f))]


def _functions(plan: Plan, name: str, meta: Mapping | None) -> list[str]:
    """The kernel ``pys_kernel_NAME`` and the public ``NAME`` and ``NAME_slice`` that call it."""
    dt = plan.dtype
    rt = "f32" if dt == "float32" else "f64"
    kernel = f"pys_kernel_{name}"
    check = 'debug_assert!(pys_fp_mode_ok(), "the floating-point mode is not round-to-nearest without FTZ/DAZ");'
    used = plan.uses_input()
    params = ", ".join(f"{'' if u else '_'}{p}: {rt}" for p, u in zip(plan.params, used))
    out = ["", f"/// The program of `{name}`; the loop of `{name}_slice` inlines it.", "#[inline]",
           f"fn {kernel}({params}) -> {rt} {{"]
    for i, v in enumerate(plan.consts):
        out.append(f"    const C{i + 1}: {rt} = {_rust_const(v, dt)}; // {format_const(v, dt)}")
    instrs = plan.program.instrs
    rng = c_simd.ranges(plan) if dt == "float32" else []
    for i, ins in enumerate(instrs):
        code = _expr(plan, ins, rng)
        if i == len(instrs) - 1 and plan.program.output == i:
            out.append(f"    {code}")  # the result, without a `let` that clippy::let_and_return flags
        else:
            out.append(f"    let v{i + 1} = {code};")
    if plan.program.output != len(instrs) - 1:
        out.append(f"    v{plan.program.output + 1}")
    out.append("}")

    head = header_lines(plan.program, name, meta)
    out += ["", f"/// {doc_text(head[0])}", f"/// {doc_text(head[1])}", "///",
            "/// Bit for bit what `pysearch.evaluate` gives for the program in the header comment.",
            "#[inline]", "#[must_use]",
            f"pub fn {name}({', '.join(f'{p}: {rt}' for p in plan.params)}) -> {rt} {{",
            f"    {check}", f"    {kernel}({', '.join(plan.params)})", "}"]

    if len(plan.params) == 1:
        srcs, dst = ["x"], "y"
    else:
        srcs, dst = list(plan.params), "out"
    lens = [f"`{s}.len()`" for s in srcs + [dst]]
    lens_text = ", ".join(lens[:-1]) + f" and {lens[-1]}"
    call = f"{name}({', '.join(f'{s}[i]' for s in srcs)})"
    vector = (["/// Branch-free, so LLVM vectorises the loop (AVX2 or AVX-512 lanes with `-C target-cpu=native`)."]
              if dt == "float32" else [])
    out += ["", f"/// `{dst}[i] = {call}` for every `i < n`, `n` the least of {lens_text}; returns `n`.", "///",
            "/// Slices of different lengths are not an error and never panic: as with `Iterator::zip`, the",
            f"/// shortest sets `n` and `{dst}[n..]` is left as it was (compare `n` with the lengths to detect a",
            f"/// mismatch). The results are those of `{name}` bit for bit.", *vector,
            f"pub fn {name}_slice({', '.join(f'{s}: &[{rt}]' for s in srcs)}, {dst}: &mut [{rt}]) -> usize {{",
            f"    {check}"]
    n = f"{dst}.len()" + "".join(f".min({s}.len())" for s in srcs)
    out.append(f"    let n = {n};")
    pattern = f"({dst}, &{srcs[0]})"
    chain = f"{dst}.iter_mut().zip({srcs[0]})"
    for s in srcs[1:]:
        pattern, chain = f"({pattern}, &{s})", f"{chain}.zip({s})"
    out += [f"    for {pattern} in {chain} {{", f"        *{dst} = {kernel}({', '.join(srcs)});", "    }", "    n", "}"]
    return out


def _expr(plan: Plan, ins: Instr, rng: list) -> str:
    """The Rust expression of one instruction: the op registry's template, except in float32 programs
    a ``min``/``max`` against a constant that one select computes (:func:`minmax_select`: LLVM makes it
    one vminps/vmaxps) and an ``ldexp`` whose exponent the range analysis of the C vector export bounds
    (:func:`pysearch.export.c_simd.bounded_exponent`): no clamp, two multiplications, no NaN select
    where a NaN exponent comes only with a NaN ``a``."""
    args = [plan.ref(a).upper() if a.kind == "const" else plan.ref(a) for a in ins.args]
    if plan.dtype == "float32":
        i = minmax_select(ins.op, ins.args)
        if i is not None:
            c, v = args[i], args[1 - i]
            return f"if {c} {'<' if ins.op == 'min' else '>'} {v} {{ {c} }} else {{ {v} }}"
        if ins.op == "ldexp" and ins.args[1].kind != "const":
            bounded = c_simd.bounded_exponent(plan, rng, list(ins.args))
            if bounded is not None:
                nan_select, integral = bounded
                a, b = args
                e = f"pys_ldexp2f({a}, {b if integral else f'pys_truncf({b})'})"
                return f"if {b}.is_nan() {{ f32::NAN }} else {{ {e} }}" if nan_select else e
    return expr(plan, "rust", ins.op, args)


def _rust_const(v: float, dtype: str) -> str:
    if dtype == "float32":
        return f"f32::from_bits(0x{int(np.array(v, dtype=np.float32).view(np.uint32)):08x})"
    return f"f64::from_bits(0x{int(np.array(v, dtype=np.float64).view(np.uint64)):016x})"
