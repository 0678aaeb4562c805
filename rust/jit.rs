//! Just-in-time compilation of float32 programs to AVX-512 or AVX2+FMA machine code.
//!
//! The chunked interpreter (`eval`) stores every intermediate value to L1 and loads it back,
//! so it is bound by the store port, not by arithmetic. Here each program becomes a loop over
//! vectors (16 lanes in zmm registers with AVX-512, 8 lanes in ymm registers with AVX2) that
//! keeps its values in registers: per vector it loads `x` once, runs one instruction per op (a
//! short fixed sequence for min/max and the range-reduction ops) and stores the output once.
//! A body that fits in half the registers runs two vectors per iteration (`emit_loops`).
//!
//! The instruction set is picked at run time (`jit_isa`): AVX-512 (F and DQ) where the CPU has
//! it, else AVX2+FMA; `PYSEARCH_JIT_ISA=avx2` forces the AVX2 code on an AVX-512 machine and
//! `PYSEARCH_NO_JIT` turns the JIT off. dynasm 5 has no EVEX encodings, so the AVX-512 code is
//! encoded by the small `evex` encoder below (tested against GNU as output).
//!
//! Scope: single-input float32 programs whose live ops are add, sub, mul, div, fma, neg, abs,
//! sqrt, min, max, rint, floor, ldexp, getexp and getmant, needing at most `Isa::value_regs` live
//! values at once (11 with AVX2, 27 with AVX-512; register 0 holds x). Everything else (other ops, float64, more inputs, other
//! CPUs) returns `None` from `JitBatch::get` and is run by the interpreter. The semantics are those of `float.rs`,
//! bit for bit, NaN payloads included (tested against the interpreter below and, from Python,
//! against the reference interpreter).
//!
//! The ops beyond plain arithmetic (the sequences of `pysearch/export/c_simd.py`, with NaN lanes
//! made the canonical quiet NaN the interpreter gives):
//! - rint, floor: `vroundps` / `vrndscaleps` (to nearest even, toward -inf);
//! - ldexp a b = a * 2^trunc(clamp(b, -300, 300)), one rounding: AVX-512 `vscalefps` on the clamped,
//!   truncated exponent; AVX2 three multiplications by powers of two built in the exponent field
//!   (k clamped to +-278, which gives the same results: 2^kl with kl = clamp(k, -126, 127) last and
//!   the rest of k in two halves first, so only the last multiplication can round: an earlier one
//!   that underflows leaves less than 2^-252, zero either way, one that overflows is inf either
//!   way). A constant exponent becomes its precomputed factor(s); a NaN exponent gives NaN.
//!   AVX-512: an exponent that `facts` proves within ±300 whose NaNs (and the scaled value's) can
//!   only be the canonical quiet NaN is one `vscalefps` (after a truncation unless it is an
//!   integer), as tanh's `ldexp 1 rint(..)` and exp's final ldexp are;
//! - min/max with a constant: no NaN fix-up where `facts` proves the other operand is never NaN
//!   or only the canonical quiet NaN (which `vminps(c, v)` passes through), both ISAs;
//! - getexp, getmant: AVX-512 `vgetexpps` / `vgetmantps` (normalised to [1, 2), sign kept), with
//!   ±0, ±inf and NaN passed through for getmant; AVX2 reads the exponent and significand fields
//!   after scaling a subnormal by 2^23 (exact), with ±0 -> -inf and ±inf -> +inf for getexp.

use std::sync::{Arc, Mutex, PoisonError};

use crate::program::{Op, Program};

/// One 64-byte constant operand: a value broadcast to 16 lanes (the AVX2 code reads the first 8).
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(C, align(64))]
pub struct Lane([u32; 16]);

impl Lane {
    fn splat(bits: u32) -> Lane {
        Lane([bits; 16])
    }
}

/// The vector instruction set a kernel is compiled for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Isa {
    /// 8 lanes in ymm0..15, VEX encodings (AVX2 + FMA).
    Avx2,
    /// 16 lanes in zmm0..31, EVEX encodings (AVX-512 F + DQ).
    Avx512,
}

impl Isa {
    /// float32 lanes per vector.
    pub fn lanes(self) -> usize {
        match self {
            Isa::Avx2 => 8,
            Isa::Avx512 => 16,
        }
    }

    /// Registers 0..value_regs hold values (register 0 is the input x); the next four are scratch.
    pub fn value_regs(self) -> u8 {
        match self {
            Isa::Avx2 => 12,
            Isa::Avx512 => 28,
        }
    }

    /// The name reported to Python.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }
}

/// The register holding the input x.
const X: u8 = 0;

/// Fixed entries of each kernel's constant table (program constants follow; the constants of
/// the ops beyond plain arithmetic are appended as needed, see `lane`).
const SIGN_MASK: usize = 0;
const ABS_MASK: usize = 1;
const QNAN: usize = 2;
const FIXED: usize = 3;

/// The index of a constant-table entry holding `bits` in every lane, appended if there is none.
/// (Emission runs twice per kernel, once per loop variant: the second run finds the entries.)
fn lane(consts: &mut Vec<Lane>, bits: u32) -> usize {
    if let Some(k) = consts.iter().position(|l| *l == Lane::splat(bits)) {
        return k;
    }
    consts.push(Lane::splat(bits));
    consts.len() - 1
}

/// The float32 value of a constant-table entry.
fn lane_value(consts: &[Lane], k: usize) -> f32 {
    f32::from_bits(consts[k].0[0])
}

/// Bit patterns of the constants the ops beyond plain arithmetic use.
mod bits {
    /// The smallest normal float32 (also the integer 2^23), and the largest finite one.
    pub(super) const MIN_NORMAL: u32 = 0x0080_0000;
    pub(super) const MAX_FINITE: u32 = 0x7f7f_ffff;
    pub(super) const NEG_INF: u32 = 0xff80_0000;
    pub(super) const ONE: u32 = 0x3f80_0000;
    /// 2^23 as a float (scales a subnormal to a normal number exactly).
    pub(super) const TWO_P23: u32 = 0x4b00_0000;
    /// Sign and significand fields.
    pub(super) const SIGN_MANT: u32 = 0x807f_ffff;
    /// The integers 127, -126 and 23.
    pub(super) const I127: u32 = 127;
    pub(super) const IM126: u32 = (-126i32).cast_unsigned();
    pub(super) const I23: u32 = 23;
}

/// The ldexp exponent clamp of `float.rs` (the AVX-512 code clamps there too).
#[allow(clippy::cast_possible_truncation)]
const LDEXP_LIMIT: f32 = <f32 as crate::float::Float>::LDEXP_LIMIT as f32;
/// The clamp of the AVX2 code: the same results (see the module docs), and the three factors
/// stay within the normal exponent range.
const LDEXP_LIMIT_AVX2: f32 = 278.0;

/// trunc(clamp(e, -limit, limit)) for a constant, non-NaN exponent.
#[allow(clippy::cast_possible_truncation)]
fn ldexp_exponent(e: f32, limit: f32) -> i32 {
    e.clamp(-limit, limit) as i32
}

/// 2^e as float32 bits, for e in [-126, 127].
#[allow(clippy::cast_sign_loss)]
fn pow2_bits(e: i32) -> u32 {
    debug_assert!((-126..=127).contains(&e));
    ((e + 127) as u32) << 23
}

/// Whether the JIT compiles `op` (where it runs at all: see `jit_isa`); for `_core.op_table()`.
pub fn compiles_op(op: Op) -> bool {
    #[cfg(all(target_arch = "x86_64", unix))]
    {
        x64::supported(op)
    }
    #[cfg(not(all(target_arch = "x86_64", unix)))]
    {
        let _ = op;
        false
    }
}

/// The instruction set the JIT compiles for on this CPU, or `None` when it is off. Read at
/// every batch: `PYSEARCH_NO_JIT` (any value) turns the JIT off; `PYSEARCH_JIT_ISA=avx2` caps it
/// at AVX2 on an AVX-512 CPU (`avx512`, or unset, takes the best the CPU has).
pub fn jit_isa() -> Option<Isa> {
    #[cfg(all(target_arch = "x86_64", unix))]
    {
        if std::env::var_os("PYSEARCH_NO_JIT").is_some() {
            return None;
        }
        if !(std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")) {
            return None;
        }
        let avx512 =
            std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512dq");
        let capped =
            std::env::var("PYSEARCH_JIT_ISA").is_ok_and(|v| v.eq_ignore_ascii_case("avx2"));
        Some(if avx512 && !capped {
            Isa::Avx512
        } else {
            Isa::Avx2
        })
    }
    #[cfg(not(all(target_arch = "x86_64", unix)))]
    {
        None
    }
}

/// What the JIT may rely on about one value of a program for every input (a small, sound range
/// analysis after `ranges` in `pysearch/export/c_simd.py`, with NaN payloads tracked as the JIT
/// must keep them): its non-NaN values lie in [lo, hi]; `nan`: it can be NaN; `canon`: every NaN
/// it can be is the canonical quiet NaN (`f32::NAN`, what `float.rs` gives for min, max, getexp
/// and a NaN ldexp exponent); `integral`: its non-NaN values are integers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fact {
    pub lo: f64,
    pub hi: f64,
    pub nan: bool,
    pub canon: bool,
    pub integral: bool,
}

impl Fact {
    /// Anything: any float, any NaN.
    const ANY: Fact = Fact {
        lo: f64::NEG_INFINITY,
        hi: f64::INFINITY,
        nan: true,
        canon: false,
        integral: false,
    };

    fn constant(c: f32) -> Fact {
        if c.is_nan() {
            return Fact {
                canon: c.to_bits() == f32::NAN.to_bits(),
                ..Fact::ANY
            };
        }
        let v = f64::from(c);
        Fact {
            lo: v,
            hi: v,
            nan: false,
            canon: true,
            integral: v.is_finite() && v == v.floor(),
        }
    }

    /// [lo, hi] widened by 2^-20 relatively (covers the float32 rounding of computed bounds);
    /// beyond the float32 range a bound is infinite (the value may have overflowed).
    fn widened(lo: f64, hi: f64, nan: bool, canon: bool) -> Fact {
        const SLACK: f64 = 1.0 / 1_048_576.0;
        let max = f64::from(f32::MAX);
        let lo = lo - lo.abs() * SLACK;
        let hi = hi + hi.abs() * SLACK;
        Fact {
            lo: if lo.is_nan() || lo < -max {
                f64::NEG_INFINITY
            } else {
                lo
            },
            hi: if hi.is_nan() || hi > max {
                f64::INFINITY
            } else {
                hi
            },
            nan,
            canon,
            integral: false,
        }
    }

    /// Whether every non-NaN value is within `limit` of zero.
    fn within(&self, limit: f64) -> bool {
        -limit <= self.lo && self.hi <= limit
    }
}

/// The `Fact` of add, sub, mul or fma (`op`) of operands whose non-NaN values are finite:
/// interval arithmetic. Finite operands never make a NaN, and a NaN operand's payload is passed
/// on (x86 and `float.rs` alike), so the result's NaNs are canonical when the operands' are.
fn interval(op: Op, args: &[Fact]) -> Fact {
    let corners = |a: Fact, b: Fact| {
        let c = [a.lo * b.lo, a.lo * b.hi, a.hi * b.lo, a.hi * b.hi];
        let lo = c.iter().copied().fold(f64::INFINITY, f64::min);
        (lo, c.iter().copied().fold(f64::NEG_INFINITY, f64::max))
    };
    let (a, b) = (args[0], args[1]);
    let (lo, hi) = match op {
        Op::Add => (a.lo + b.lo, a.hi + b.hi),
        Op::Sub => (a.lo - b.hi, a.hi - b.lo),
        Op::Mul => corners(a, b),
        _ => {
            let (lo, hi) = corners(a, b);
            (lo + args[2].lo, hi + args[2].hi)
        }
    };
    let nan = args.iter().any(|a| a.nan);
    Fact::widened(lo, hi, nan, args.iter().all(|a| !a.nan || a.canon))
}

/// A `Fact` for every slot of `p` (inputs, constants, then instruction results; dead
/// instructions get `Fact::ANY`). Exact through min/max, rint/floor, neg, abs, mul/add/sub
/// with a finite constant (nonzero for mul) and fma with a finite nonzero constant factor and a
/// finite constant addend (none of which makes a NaN out of numbers, and each keeps the payload
/// of a NaN operand, on x86 as in `float.rs`); anything else may be any float or NaN.
#[allow(clippy::cast_possible_truncation)]
pub fn facts(p: &Program) -> Vec<Fact> {
    let base = p.first_value_slot();
    let mut f = vec![Fact::ANY; base + p.instrs.len()];
    for (k, &c) in p.consts.iter().enumerate() {
        f[p.n_inputs + k] = Fact::constant(c as f32);
    }
    let is_const = |a: u32| (p.n_inputs..base).contains(&(a as usize));
    for &i in &p.live {
        let ins = p.instrs[i];
        let arg = |j: usize| f[ins.args[j] as usize];
        let r = match ins.op {
            Op::Min | Op::Max => {
                let (a, b) = (arg(0), arg(1));
                let pick = if ins.op == Op::Min {
                    f64::min
                } else {
                    f64::max
                };
                Fact {
                    lo: pick(a.lo, b.lo),
                    hi: pick(a.hi, b.hi),
                    nan: a.nan || b.nan,
                    canon: true,
                    integral: a.integral && b.integral,
                }
            }
            Op::Rint | Op::Floor => {
                let a = arg(0);
                Fact {
                    lo: a.lo.floor(),
                    hi: a.hi.ceil(),
                    integral: true,
                    ..a
                }
            }
            Op::Neg => {
                let a = arg(0);
                Fact {
                    lo: -a.hi,
                    hi: -a.lo,
                    canon: !a.nan, // the sign bit of a NaN flips too
                    ..a
                }
            }
            Op::Abs => {
                let a = arg(0);
                let lo = if a.lo <= 0.0 && 0.0 <= a.hi {
                    0.0
                } else {
                    a.lo.abs().min(a.hi.abs())
                };
                Fact {
                    lo,
                    hi: a.lo.abs().max(a.hi.abs()),
                    ..a
                }
            }
            Op::Add | Op::Sub | Op::Mul | Op::Fma
                if ins.args[..ins.op.arity()].iter().all(|&a| {
                    let a = f[a as usize];
                    a.lo.is_finite() && a.hi.is_finite()
                }) =>
            {
                let args: Vec<Fact> = (0..ins.op.arity()).map(arg).collect();
                interval(ins.op, &args)
            }
            Op::Add | Op::Sub | Op::Mul if is_const(ins.args[0]) || is_const(ins.args[1]) => {
                let k = usize::from(!is_const(ins.args[0]));
                let (c, v) = (arg(k).lo, arg(1 - k));
                if !c.is_finite() || (ins.op == Op::Mul && c == 0.0) || arg(k).nan {
                    Fact::ANY
                } else {
                    let (lo, hi) = match (ins.op, k) {
                        (Op::Mul, _) => (v.lo * c, v.hi * c),
                        (Op::Add, _) | (Op::Sub, 1) => {
                            let s = if ins.op == Op::Sub { -c } else { c };
                            (v.lo + s, v.hi + s)
                        }
                        _ => (c - v.hi, c - v.lo),
                    };
                    Fact::widened(lo.min(hi), lo.max(hi), v.nan, v.canon)
                }
            }
            Op::Fma if is_const(ins.args[2]) && is_const(ins.args[0]) != is_const(ins.args[1]) => {
                let k = usize::from(!is_const(ins.args[0]));
                let (c, d, v) = (arg(k), arg(2), arg(1 - k));
                if c.nan || d.nan || !c.lo.is_finite() || c.lo == 0.0 || !d.lo.is_finite() {
                    Fact::ANY
                } else {
                    let (lo, hi) = (v.lo * c.lo, v.hi * c.lo);
                    Fact::widened(lo.min(hi) + d.lo, lo.max(hi) + d.lo, v.nan, v.canon)
                }
            }
            _ => Fact::ANY,
        };
        f[base + i] = r;
    }
    f
}

/// How an op may be emitted more cheaply than in general, by what `facts` proves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hint {
    General,
    /// min/max with a constant: the other operand is never NaN (no NaN fix-up).
    NoNan,
    /// min/max with a constant: every NaN of the other operand is the canonical one, which
    /// `vminps(c, v)` passes through as it is (no fix-up when the order suits ±0 too).
    CanonNan,
    /// ldexp with its exponent in a register: |b| <= 300 (the clamp is idle) and a NaN b gives
    /// the canonical NaN under `vscalefps` (b and a are then canonical NaNs or numbers);
    /// `integral`: b is an integer (the truncation is idle too).
    Scale {
        integral: bool,
    },
}

/// The `Hint` for live instruction `i` of `p`, given `facts(p)`.
pub fn hint(p: &Program, facts: &[Fact], i: usize) -> Hint {
    let ins = p.instrs[i];
    let base = p.first_value_slot();
    let is_const = |a: u32| (p.n_inputs..base).contains(&(a as usize));
    let arg = |j: usize| facts[ins.args[j] as usize];
    match ins.op {
        Op::Min | Op::Max if is_const(ins.args[0]) != is_const(ins.args[1]) => {
            let v = arg(usize::from(is_const(ins.args[0])));
            if !v.nan {
                Hint::NoNan
            } else if v.canon {
                Hint::CanonNan
            } else {
                Hint::General
            }
        }
        Op::Ldexp if !is_const(ins.args[1]) => {
            let (a, b) = (arg(0), arg(1));
            let nan_ok = !b.nan || (b.canon && (!a.nan || a.canon));
            if nan_ok && b.within(LDEXP_LIMIT.into()) {
                Hint::Scale {
                    integral: b.integral,
                }
            } else {
                Hint::General
            }
        }
        _ => Hint::General,
    }
}

/// Every instruction set this CPU can run kernels of, whatever the environment says.
pub fn cpu_isas() -> Vec<Isa> {
    let mut v = Vec::new();
    #[cfg(all(target_arch = "x86_64", unix))]
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        v.push(Isa::Avx2);
        if std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512dq") {
            v.push(Isa::Avx512);
        }
    }
    v
}

/// Whether this CPU can run the compiled kernels (and the JIT is not turned off).
pub fn available() -> bool {
    jit_isa().is_some()
}

#[cfg(all(target_arch = "x86_64", unix))]
#[allow(clippy::useless_conversion)] // conversions generated by the dynasm! macro
mod x64 {
    use super::*;
    use dynasmrt::{
        dynasm, x64::X64Relocation, AssemblyOffset, DynasmApi, DynasmLabelApi, VecAssembler,
    };

    /// Code is assembled into a plain vector and copied into executable memory once.
    pub(super) type Assembler = VecAssembler<X64Relocation>;

    /// Where an operand lives: a ymm register or an entry of the constant table.
    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    pub(super) enum Loc {
        Reg(u8),
        Mem(usize),
    }

    /// Scratch ymm registers of the AVX2 code (values live in 0..12).
    const T0: u8 = 12;
    const T1: u8 = 13;
    const T2: u8 = 14;
    const T3: u8 = 15;

    fn disp(k: usize) -> i32 {
        i32::try_from(k * std::mem::size_of::<Lane>())
            .expect("constant table fits a 32-bit displacement")
    }

    /// Copy an operand into register `d`.
    fn mov(ops: &mut Assembler, d: u8, a: Loc) {
        match a {
            Loc::Reg(r) if r == d => {}
            Loc::Reg(r) => dynasm!(ops ; .arch x64 ; vmovaps Ry(d), Ry(r)),
            Loc::Mem(k) => dynasm!(ops ; .arch x64 ; vmovups Ry(d), [rcx + disp(k)]),
        }
    }

    /// A register holding `a` (loading a constant into scratch register `t` if needed).
    fn in_reg(ops: &mut Assembler, a: Loc, t: u8) -> u8 {
        match a {
            Loc::Reg(r) => r,
            Loc::Mem(_) => {
                mov(ops, t, a);
                t
            }
        }
    }

    macro_rules! binary {
        ($ops:expr, $ins:ident, $d:expr, $a:expr, $b:expr) => {{
            let (d, a, b) = ($d, $a, $b);
            match b {
                Loc::Reg(rb) => dynasm!($ops ; .arch x64 ; $ins Ry(d), Ry(a), Ry(rb)),
                Loc::Mem(k) => dynasm!($ops ; .arch x64 ; $ins Ry(d), Ry(a), [rcx + disp(k)]),
            }
        }};
    }

    /// d = a * b + c with one rounding. `d` is either a register none of the operands use or
    /// the register of an operand that dies here.
    fn fma(ops: &mut Assembler, d: u8, a: Loc, b: Loc, c: Loc) {
        let is = |l: Loc| l == Loc::Reg(d);
        if is(a) || is(b) {
            // d holds one factor m; f is the other: d = f * d + c (213) or d = d * f + c (132)
            let f = if is(a) { b } else { a };
            match (f, c) {
                (Loc::Reg(rf), Loc::Reg(rc)) => {
                    dynasm!(ops ; .arch x64 ; vfmadd213ps Ry(d), Ry(rf), Ry(rc))
                }
                (Loc::Reg(rf), Loc::Mem(kc)) => {
                    dynasm!(ops ; .arch x64 ; vfmadd213ps Ry(d), Ry(rf), [rcx + disp(kc)])
                }
                (Loc::Mem(kf), Loc::Reg(rc)) => {
                    dynasm!(ops ; .arch x64 ; vfmadd132ps Ry(d), Ry(rc), [rcx + disp(kf)])
                }
                (Loc::Mem(_), Loc::Mem(kc)) => {
                    let rf = in_reg(ops, f, T0);
                    dynasm!(ops ; .arch x64 ; vfmadd213ps Ry(d), Ry(rf), [rcx + disp(kc)])
                }
            }
        } else if is(c) {
            // d = a * b + d (231)
            let (ra, b) = match (a, b) {
                (Loc::Reg(ra), b) => (ra, b),
                (a, Loc::Reg(rb)) => (rb, a),
                (a, b) => (in_reg(ops, a, T0), b),
            };
            match b {
                Loc::Reg(rb) => dynasm!(ops ; .arch x64 ; vfmadd231ps Ry(d), Ry(ra), Ry(rb)),
                Loc::Mem(kb) => {
                    dynasm!(ops ; .arch x64 ; vfmadd231ps Ry(d), Ry(ra), [rcx + disp(kb)])
                }
            }
        } else if matches!(c, Loc::Reg(_)) {
            // d is free: copy the addend in, then d = a * b + d
            mov(ops, d, c);
            fma(ops, d, a, b, Loc::Reg(d));
        } else {
            // copy in a factor, preferring a constant (a load rather than a register move, and
            // the other factor can then stay where it is)
            let (m, f) = if matches!(b, Loc::Mem(_)) {
                (b, a)
            } else {
                (a, b)
            };
            mov(ops, d, m);
            fma(ops, d, Loc::Reg(d), f, c);
        }
    }

    /// min/max of a value `v` (a register) and a constant `c` that is not NaN: with `vminps`
    /// (`vmaxps`), which returns its second source on equal or unordered operands, only NaN lanes
    /// need a fix-up. Equal operands differ only for ±0, where `float.rs` gives -0 for min and +0
    /// for max: `c` itself unless it is the other zero, when it is `v`. Returns `v`'s register,
    /// `c`'s table index and whether `c` is the second source (else `v` is).
    fn with_constant(consts: &[Lane], a: Loc, b: Loc, is_min: bool) -> Option<(u8, usize, bool)> {
        let ((Loc::Reg(v), Loc::Mem(k)) | (Loc::Mem(k), Loc::Reg(v))) = (a, b) else {
            return None;
        };
        let c = lane_value(consts, k);
        if c.is_nan() {
            return None;
        }
        let losing_zero = c == 0.0 && c.is_sign_negative() != is_min;
        Some((v, k, !losing_zero))
    }

    /// For min/max of `v` and the constant `consts[k]` whose `hint` says `v`'s NaNs need no
    /// fix-up: the operand order (`c_second`, as `with_constant` gives it) under which one
    /// `vminps`/`vmaxps` is the whole op; `None` when the fix-up is needed. A canonical NaN
    /// passes through only as the second source (so `c` goes first, which gives `v` on equal
    /// lanes: right unless `c` is a zero that should win).
    fn nan_free_order(consts: &[Lane], k: usize, c_second: bool, hint: Hint) -> Option<bool> {
        match hint {
            Hint::NoNan => Some(c_second),
            Hint::CanonNan if lane_value(consts, k) != 0.0 || !c_second => Some(false),
            _ => None,
        }
    }

    /// d = min(a, b) or max(a, b) with `float.rs` semantics: the strictly smaller (larger)
    /// operand; for equal operands (±0) the OR (AND) of their bits; NaN if either is NaN.
    /// (Both operands go to registers: dynasm 5 drops the memory operand of `vcmpps`.)
    /// With a `hint` (see `Hint`), min/max with a constant needs no NaN fix-up.
    fn min_max(
        ops: &mut Assembler,
        consts: &[Lane],
        d: u8,
        a: Loc,
        b: Loc,
        is_min: bool,
        hint: Hint,
    ) {
        if let Some((v, k, c_second)) = with_constant(consts, a, b, is_min) {
            if let Some(c_second) = nan_free_order(consts, k, c_second, hint) {
                let (first, second) = if c_second {
                    (v, Loc::Mem(k))
                } else {
                    mov(ops, T3, Loc::Mem(k));
                    (T3, Loc::Reg(v))
                };
                if is_min {
                    binary!(ops, vminps, d, first, second);
                } else {
                    binary!(ops, vmaxps, d, first, second);
                }
                return;
            }
            // T1 = vminps(v, c) or vminps(c, v); NaN lanes (of v) get the quiet NaN
            dynasm!(ops ; .arch x64 ; vcmpps Ry(T2), Ry(v), Ry(v), 3);
            let (first, second) = if c_second {
                (v, Loc::Mem(k))
            } else {
                mov(ops, T3, Loc::Mem(k));
                (T3, Loc::Reg(v))
            };
            if is_min {
                binary!(ops, vminps, T1, first, second);
            } else {
                binary!(ops, vmaxps, T1, first, second);
            }
            dynasm!(ops ; .arch x64 ; vblendvps Ry(d), Ry(T1), [rcx + disp(QNAN)], Ry(T2));
            return;
        }
        let ra = in_reg(ops, a, T0);
        let rb = in_reg(ops, b, T3);
        // vminps/vmaxps give b for equal operands; predicate 0 (EQ_OQ) marks those lanes.
        // dynasm swaps the two sources of register-form vcmpps: harmless, both predicates used
        // here are symmetric.
        if is_min {
            dynasm!(ops
                ; .arch x64
                ; vminps Ry(T1), Ry(ra), Ry(rb)
                ; vcmpps Ry(T2), Ry(ra), Ry(rb), 0
                ; vandps Ry(T2), Ry(T2), Ry(ra)
                ; vorps Ry(T1), Ry(T1), Ry(T2) // equal lanes: b | a
            );
        } else {
            dynasm!(ops
                ; .arch x64
                ; vmaxps Ry(T1), Ry(ra), Ry(rb)
                ; vcmpps Ry(T2), Ry(ra), Ry(rb), 0
                ; vandnps Ry(T2), Ry(ra), Ry(T2) // equal lanes: !a
                ; vandnps Ry(T1), Ry(T2), Ry(T1) // equal lanes: b & a
            );
        }
        // unordered lanes (predicate 3): the canonical quiet NaN
        dynasm!(ops
            ; .arch x64
            ; vcmpps Ry(T2), Ry(ra), Ry(rb), 3
            ; vblendvps Ry(d), Ry(T1), [rcx + disp(QNAN)], Ry(T2)
        );
    }

    /// d = rint(a) or floor(a): `vroundps` (imm 8 + mode: precision exception suppressed).
    fn round(ops: &mut Assembler, d: u8, a: Loc, mode: i8) {
        let imm = 8 | mode;
        match a {
            Loc::Reg(ra) => dynasm!(ops ; .arch x64 ; vroundps Ry(d), Ry(ra), imm),
            Loc::Mem(k) => dynasm!(ops ; .arch x64 ; vroundps Ry(d), [rcx + disp(k)], imm),
        }
    }

    /// d = ldexp(a, b) (see the module docs): three multiplications by powers of two, the last
    /// by 2^clamp(k, -126, 127); lanes where b is NaN get the quiet NaN.
    fn ldexp(ops: &mut Assembler, consts: &mut Vec<Lane>, d: u8, a: Loc, b: Loc) {
        if let Loc::Mem(kb) = b {
            // a constant exponent: multiply by its factors (at least one: 1 for a zero exponent
            // quiets a signalling NaN, as the interpreter's multiplication does)
            let e = lane_value(consts, kb);
            if e.is_nan() {
                mov(ops, d, Loc::Mem(QNAN));
                return;
            }
            let k = ldexp_exponent(e, LDEXP_LIMIT_AVX2);
            let kl = k.clamp(-126, 127);
            let f1 = (k - kl) >> 1;
            let mut cur = a;
            for (i, f) in [f1, k - kl - f1, kl].into_iter().enumerate() {
                if f != 0 || i == 2 {
                    let m = Loc::Mem(lane(consts, pow2_bits(f)));
                    let r = in_reg(ops, cur, T0);
                    binary!(ops, vmulps, d, r, m);
                    cur = Loc::Reg(d);
                }
            }
            return;
        }
        let Loc::Reg(rb) = b else {
            unreachable!("a constant exponent is handled above")
        };
        let lo = disp(lane(consts, (-LDEXP_LIMIT_AVX2).to_bits()));
        let hi = disp(lane(consts, LDEXP_LIMIT_AVX2.to_bits()));
        let i127 = disp(lane(consts, bits::I127));
        let im126 = disp(lane(consts, bits::IM126));
        dynasm!(ops
            ; .arch x64
            ; vmaxps Ry(T1), Ry(rb), [rcx + lo]
            ; vminps Ry(T1), Ry(T1), [rcx + hi]
            ; vcvttps2dq Ry(T1), Ry(T1)          // k
            ; vpmaxsd Ry(T2), Ry(T1), [rcx + im126]
            ; vpminsd Ry(T2), Ry(T2), [rcx + i127] // kl
            ; vpsubd Ry(T1), Ry(T1), Ry(T2)      // f = k - kl
            ; vpsrad Ry(T3), Ry(T1), 1           // f1
            ; vpsubd Ry(T1), Ry(T1), Ry(T3)      // f - f1
            ; vpaddd Ry(T3), Ry(T3), [rcx + i127]
            ; vpslld Ry(T3), Ry(T3), 23          // 2^f1
            ; vpaddd Ry(T1), Ry(T1), [rcx + i127]
            ; vpslld Ry(T1), Ry(T1), 23          // 2^(f - f1)
            ; vpaddd Ry(T2), Ry(T2), [rcx + i127]
            ; vpslld Ry(T2), Ry(T2), 23          // 2^kl
        );
        binary!(ops, vmulps, T3, T3, a);
        dynasm!(ops
            ; .arch x64
            ; vmulps Ry(T3), Ry(T3), Ry(T1)
            ; vmulps Ry(T3), Ry(T3), Ry(T2)
            ; vcmpps Ry(T1), Ry(rb), Ry(rb), 3   // b unordered
            ; vblendvps Ry(d), Ry(T3), [rcx + disp(QNAN)], Ry(T1)
        );
    }

    /// The sign-cleared `a` in T0 and, in T1, the lanes where it is subnormal or zero (the
    /// integer compare 2^-126 > |a| of the bit patterns); `a` in a register (`ra`).
    fn magnitude_and_small(ops: &mut Assembler, consts: &mut Vec<Lane>, ra: u8) {
        let min_normal = disp(lane(consts, bits::MIN_NORMAL));
        dynasm!(ops
            ; .arch x64
            ; vandps Ry(T0), Ry(ra), [rcx + disp(ABS_MASK)]
            ; vmovups Ry(T1), [rcx + min_normal]
            ; vpcmpgtd Ry(T1), Ry(T1), Ry(T0)
        );
    }

    /// d = getexp(a): the exponent field of |a| (of |a| * 2^23, less 23, for a subnormal) less
    /// the bias; ±0 -> -inf, ±inf -> +inf, NaN -> the quiet NaN.
    fn getexp(ops: &mut Assembler, consts: &mut Vec<Lane>, d: u8, a: Loc) {
        let ra = in_reg(ops, a, T3);
        magnitude_and_small(ops, consts, ra);
        let two_p23 = disp(lane(consts, bits::TWO_P23));
        let i23 = disp(lane(consts, bits::I23));
        let i127 = disp(lane(consts, bits::I127));
        let neg_inf = disp(lane(consts, bits::NEG_INF));
        let max_finite = disp(lane(consts, bits::MAX_FINITE));
        dynasm!(ops
            ; .arch x64
            ; vmulps Ry(T2), Ry(T0), [rcx + two_p23]
            ; vblendvps Ry(T2), Ry(T0), Ry(T2), Ry(T1) // normal
            ; vpsrld Ry(T2), Ry(T2), 23
            ; vpand Ry(T1), Ry(T1), [rcx + i23]
            ; vpaddd Ry(T1), Ry(T1), [rcx + i127]     // bias (+ 23 where scaled)
            ; vpsubd Ry(T2), Ry(T2), Ry(T1)
            ; vcvtdq2ps Ry(T2), Ry(T2)
            ; vpxor Ry(T1), Ry(T1), Ry(T1)
            ; vpcmpeqd Ry(T1), Ry(T1), Ry(T0)         // ±0
            ; vblendvps Ry(T2), Ry(T2), [rcx + neg_inf], Ry(T1)
            ; vpcmpgtd Ry(T1), Ry(T0), [rcx + max_finite] // inf or NaN
            ; vblendvps Ry(T2), Ry(T2), Ry(T0), Ry(T1)
            ; vcmpps Ry(T1), Ry(T0), Ry(T0), 3        // NaN
            ; vblendvps Ry(d), Ry(T2), [rcx + disp(QNAN)], Ry(T1)
        );
    }

    /// d = getmant(a): the significand field of a (of a * 2^23 for a subnormal) with the
    /// exponent of 1, sign kept; ±0, ±inf and NaN as they are.
    fn getmant(ops: &mut Assembler, consts: &mut Vec<Lane>, d: u8, a: Loc) {
        let ra = in_reg(ops, a, T3);
        magnitude_and_small(ops, consts, ra);
        let two_p23 = disp(lane(consts, bits::TWO_P23));
        let sign_mant = disp(lane(consts, bits::SIGN_MANT));
        let one = disp(lane(consts, bits::ONE));
        let max_finite = disp(lane(consts, bits::MAX_FINITE));
        dynasm!(ops
            ; .arch x64
            ; vmulps Ry(T2), Ry(ra), [rcx + two_p23]
            ; vblendvps Ry(T2), Ry(ra), Ry(T2), Ry(T1) // normal
            ; vandps Ry(T2), Ry(T2), [rcx + sign_mant]
            ; vorps Ry(T2), Ry(T2), [rcx + one]
            ; vpxor Ry(T1), Ry(T1), Ry(T1)
            ; vpcmpeqd Ry(T1), Ry(T1), Ry(T0)         // ±0
            ; vpcmpgtd Ry(T0), Ry(T0), [rcx + max_finite] // inf or NaN
            ; vpor Ry(T1), Ry(T1), Ry(T0)
            ; vblendvps Ry(d), Ry(T2), Ry(ra), Ry(T1)
        );
    }

    /// Emit one instruction `d = op(args)`; constants the op needs are added to `consts`.
    fn emit(ops: &mut Assembler, consts: &mut Vec<Lane>, (op, d, [a, b, c], hint): Step) {
        match op {
            Op::Add | Op::Mul => {
                // commutative: keep a constant, if any, as the memory operand
                let (a, b) = if matches!(a, Loc::Mem(_)) {
                    (b, a)
                } else {
                    (a, b)
                };
                let ra = in_reg(ops, a, T0);
                if op == Op::Add {
                    binary!(ops, vaddps, d, ra, b);
                } else {
                    binary!(ops, vmulps, d, ra, b);
                }
            }
            Op::Sub => {
                let ra = in_reg(ops, a, T0);
                binary!(ops, vsubps, d, ra, b);
            }
            Op::Div => {
                let ra = in_reg(ops, a, T0);
                binary!(ops, vdivps, d, ra, b);
            }
            Op::Fma => fma(ops, d, a, b, c),
            Op::Neg => {
                let ra = in_reg(ops, a, T0);
                binary!(ops, vxorps, d, ra, Loc::Mem(SIGN_MASK));
            }
            Op::Abs => {
                let ra = in_reg(ops, a, T0);
                binary!(ops, vandps, d, ra, Loc::Mem(ABS_MASK));
            }
            Op::Sqrt => match a {
                Loc::Reg(ra) => dynasm!(ops ; .arch x64 ; vsqrtps Ry(d), Ry(ra)),
                Loc::Mem(k) => dynasm!(ops ; .arch x64 ; vsqrtps Ry(d), [rcx + disp(k)]),
            },
            Op::Min => min_max(ops, consts, d, a, b, true, hint),
            Op::Max => min_max(ops, consts, d, a, b, false, hint),
            Op::Rint => round(ops, d, a, 0),
            Op::Floor => round(ops, d, a, 1),
            Op::Ldexp => ldexp(ops, consts, d, a, b),
            Op::Getexp => getexp(ops, consts, d, a),
            Op::Getmant => getmant(ops, consts, d, a),
            _ => unreachable!("unsupported ops are filtered out before emission"),
        }
    }

    pub(super) fn supported(op: Op) -> bool {
        matches!(
            op,
            Op::Add
                | Op::Sub
                | Op::Mul
                | Op::Div
                | Op::Fma
                | Op::Neg
                | Op::Abs
                | Op::Sqrt
                | Op::Min
                | Op::Max
                | Op::Rint
                | Op::Floor
                | Op::Ldexp
                | Op::Getexp
                | Op::Getmant
        )
    }

    /// Compile one program: `fn(x, out, n_vectors >= 1, consts)` looping over vectors of
    /// `isa.lanes()` lanes. Returns its entry offsets and constant table, or `None` when it is
    /// out of scope.
    pub(super) fn compile(
        ops: &mut Assembler,
        p: &Program,
        isa: Isa,
    ) -> Option<([AssemblyOffset; 2], Vec<Lane>)> {
        if p.n_inputs != 1 || p.live.iter().any(|&i| !supported(p.instrs[i].op)) {
            return None;
        }
        let base = p.first_value_slot();
        let mut consts = vec![
            Lane::splat(0x8000_0000),
            Lane::splat(0x7fff_ffff),
            Lane::splat(f32::NAN.to_bits()),
        ];
        #[allow(clippy::cast_possible_truncation)]
        consts.extend(p.consts.iter().map(|&c| Lane::splat((c as f32).to_bits())));
        let last_use = p.last_uses();
        let facts = facts(p);
        let mut reg_of = vec![u8::MAX; p.instrs.len()];
        let mut free: Vec<u8> = (1..isa.value_regs()).rev().collect();
        // the whole body is emitted into a scratch assembler first, so an out-of-registers
        // program leaves nothing behind in `ops`
        let mut body: Vec<Step> = Vec::with_capacity(p.live.len());
        for (pos, &i) in p.live.iter().enumerate() {
            let ins = p.instrs[i];
            let arity = ins.op.arity();
            let loc = |a: u32| -> Loc {
                let a = a as usize;
                if a < p.n_inputs {
                    Loc::Reg(0)
                } else if a < base {
                    Loc::Mem(FIXED + a - p.n_inputs)
                } else {
                    Loc::Reg(reg_of[a - base])
                }
            };
            let args = [loc(ins.args[0]), loc(ins.args[1]), loc(ins.args[2])];
            // values dying here give their registers back before the result is placed: every
            // emitted sequence reads all operands before it writes the destination
            let mut first_dying = None;
            for (j, &a) in ins.args[..arity].iter().enumerate() {
                let a = a as usize;
                // (an operand repeated in the same instruction is freed once)
                if a >= base && last_use[a - base] == pos && !ins.args[..j].contains(&(a as u32)) {
                    let r = reg_of[a - base];
                    first_dying.get_or_insert(r);
                    free.push(r);
                }
            }
            // fma is destructive: land it on a dying operand's register when there is one
            let d = match first_dying {
                Some(r) if ins.op == Op::Fma => {
                    free.retain(|&f| f != r);
                    r
                }
                _ => free.pop()?,
            };
            reg_of[i] = d;
            body.push((ins.op, d, args, hint(p, &facts, i)));
        }
        let out = reg_of[p.output - base];
        let entries = emit_loops(ops, &mut consts, isa, &body, out);
        Some((entries, consts))
    }

    /// One step of a kernel body: `d = op(args)`, with what `facts` proves about it.
    type Step = (Op, u8, [Loc; 3], Hint);

    /// `step` with every register moved up by `off` (the second vector of a pair).
    fn shifted((op, d, args, hint): Step, off: u8) -> Step {
        let up = |l: Loc| match l {
            Loc::Reg(r) => Loc::Reg(r + off),
            m @ Loc::Mem(_) => m,
        };
        (op, d + off, args.map(up), hint)
    }

    fn load(ops: &mut Assembler, isa: Isa, r: u8, d: i32) {
        match isa {
            Isa::Avx2 => dynasm!(ops ; .arch x64 ; vmovups Ry(r), [rdi + d]),
            Isa::Avx512 => z::ins(ops, z::VMOVUPS_LOAD, r, 0, z::Rm::Mem(z::RDI, d), 0, None),
        }
    }

    fn store(ops: &mut Assembler, isa: Isa, r: u8, d: i32, streaming: bool) {
        match (isa, streaming) {
            (Isa::Avx2, false) => dynasm!(ops ; .arch x64 ; vmovups [rsi + d], Ry(r)),
            (Isa::Avx2, true) => dynasm!(ops ; .arch x64 ; vmovntps [rsi + d], Ry(r)),
            (Isa::Avx512, _) => {
                let enc = if streaming {
                    z::VMOVNTPS
                } else {
                    z::VMOVUPS_STORE
                };
                z::ins(ops, enc, r, 0, z::Rm::Mem(z::RSI, d), 0, None);
            }
        }
    }

    fn step(ops: &mut Assembler, consts: &mut Vec<Lane>, isa: Isa, s: Step) {
        match isa {
            Isa::Avx2 => emit(ops, consts, s),
            Isa::Avx512 => z::emit(ops, consts, s),
        }
    }

    /// The two loops of a kernel with the `KernelFn` calling convention (ordinary stores; and
    /// non-temporal stores to vector-aligned output, which stream large results to memory
    /// without reading the lines first). Returns their entry offsets.
    ///
    /// When the body's values fit in half the value registers, the loop runs two vectors per
    /// iteration, their instructions interleaved op by op (the second vector's registers are
    /// the first's moved up by half): two independent dependency chains in flight, for the long
    /// serial chains of polynomial kernels. An odd last vector runs alone.
    fn emit_loops(
        ops: &mut Assembler,
        consts: &mut Vec<Lane>,
        isa: Isa,
        body: &[Step],
        out: u8,
    ) -> [AssemblyOffset; 2] {
        let half = isa.value_regs() / 2;
        let used = body.iter().map(|s| s.1).max().unwrap_or(X);
        let pair = (used < half).then_some(half);
        let vb = i32::try_from(4 * isa.lanes()).expect("a vector is 32 or 64 bytes");
        let mut entries = [AssemblyOffset(0); 2];
        for (v, entry) in entries.iter_mut().enumerate() {
            *entry = ops.offset();
            let streaming = v == 1;
            let top = ops.new_dynamic_label();
            let done = ops.new_dynamic_label();
            if let Some(off) = pair {
                // rdx = vectors left - 2 at the top of the loop
                let tail = ops.new_dynamic_label();
                dynasm!(ops ; .arch x64 ; sub rdx, 2 ; jb =>tail ; =>top);
                load(ops, isa, X, 0);
                load(ops, isa, X + off, vb);
                for &s in body {
                    step(ops, consts, isa, s);
                    step(ops, consts, isa, shifted(s, off));
                }
                store(ops, isa, out, 0, streaming);
                store(ops, isa, out + off, vb, streaming);
                dynasm!(ops
                    ; .arch x64
                    ; add rdi, 2 * vb
                    ; add rsi, 2 * vb
                    ; sub rdx, 2
                    ; jae =>top
                    ; =>tail
                    ; add rdx, 2
                    ; jz =>done
                );
                // one vector left
                load(ops, isa, X, 0);
                for &s in body {
                    step(ops, consts, isa, s);
                }
                store(ops, isa, out, 0, streaming);
            } else {
                dynasm!(ops ; .arch x64 ; =>top);
                load(ops, isa, X, 0);
                for &s in body {
                    step(ops, consts, isa, s);
                }
                store(ops, isa, out, 0, streaming);
                dynasm!(ops
                    ; .arch x64
                    ; add rdi, vb
                    ; add rsi, vb
                    ; sub rdx, 1
                    ; jnz =>top
                );
            }
            dynasm!(ops ; .arch x64 ; =>done);
            if streaming {
                dynasm!(ops ; .arch x64 ; sfence);
            }
            dynasm!(ops ; .arch x64 ; vzeroupper ; ret);
        }
        entries
    }

    /// The AVX-512 code: 16-lane zmm vectors, 32 registers, EVEX encodings emitted byte by byte
    /// (dynasm 5 has no AVX-512). Same operand handling and the same results as the AVX2 code.
    pub(super) mod z {
        use super::super::{
            lane, lane_value, ldexp_exponent, Lane, ABS_MASK, LDEXP_LIMIT, QNAN, SIGN_MASK,
        };
        use super::{disp, nan_free_order, with_constant, Assembler, Loc, Step};
        use crate::jit::Hint;
        use crate::program::Op;
        use dynasmrt::DynasmApi;

        /// Scratch zmm registers (values live in 0..28).
        const T0: u8 = 28;
        const T1: u8 = 29;
        const T3: u8 = 31;
        /// General registers: the constant table, the output and the input pointers.
        pub(crate) const RCX: u8 = 1;
        pub(crate) const RSI: u8 = 6;
        pub(crate) const RDI: u8 = 7;
        /// Opmask registers used by min/max.
        const K_EQ: u8 = 1;
        const K_NAN: u8 = 2;

        /// The r/m operand of an instruction: a zmm register or `[base + disp]`.
        #[derive(Clone, Copy, PartialEq, Eq, Debug)]
        pub(crate) enum Rm {
            Reg(u8),
            Mem(u8, i32),
        }

        /// Opcode map (1 = 0F, 2 = 0F38, 3 = 0F3A), mandatory prefix (0 none, 1 = 66) and opcode
        /// byte.
        #[derive(Clone, Copy)]
        pub(crate) struct Enc(u8, u8, u8);

        pub(crate) const VMOVUPS_LOAD: Enc = Enc(1, 0, 0x10);
        pub(crate) const VMOVUPS_STORE: Enc = Enc(1, 0, 0x11);
        pub(crate) const VMOVAPS: Enc = Enc(1, 0, 0x28);
        pub(crate) const VMOVNTPS: Enc = Enc(1, 0, 0x2B);
        pub(crate) const VSQRTPS: Enc = Enc(1, 0, 0x51);
        pub(crate) const VANDPS: Enc = Enc(1, 0, 0x54);
        pub(crate) const VORPS: Enc = Enc(1, 0, 0x56);
        pub(crate) const VXORPS: Enc = Enc(1, 0, 0x57);
        pub(crate) const VADDPS: Enc = Enc(1, 0, 0x58);
        pub(crate) const VMULPS: Enc = Enc(1, 0, 0x59);
        pub(crate) const VSUBPS: Enc = Enc(1, 0, 0x5C);
        pub(crate) const VMINPS: Enc = Enc(1, 0, 0x5D);
        pub(crate) const VDIVPS: Enc = Enc(1, 0, 0x5E);
        pub(crate) const VMAXPS: Enc = Enc(1, 0, 0x5F);
        pub(crate) const VCMPPS: Enc = Enc(1, 0, 0xC2);
        pub(crate) const VBLENDMPS: Enc = Enc(2, 1, 0x65);
        pub(crate) const VFMADD132PS: Enc = Enc(2, 1, 0x98);
        pub(crate) const VFMADD213PS: Enc = Enc(2, 1, 0xA8);
        pub(crate) const VFMADD231PS: Enc = Enc(2, 1, 0xB8);
        pub(crate) const VSCALEFPS: Enc = Enc(2, 1, 0x2C);
        pub(crate) const VGETEXPPS: Enc = Enc(2, 1, 0x42);
        pub(crate) const VRNDSCALEPS: Enc = Enc(3, 1, 0x08);
        pub(crate) const VGETMANTPS: Enc = Enc(3, 1, 0x26);
        pub(crate) const VFPCLASSPS: Enc = Enc(3, 1, 0x66);

        /// Emit `enc reg{mask}, vvvv, rm[, imm]` as EVEX.512.W0 (merging mask; mask 0 = none).
        /// `reg` is a zmm register or, for vcmpps and vfpclassps, an opmask register; `vvvv` is
        /// 0 when unused.
        /// Memory operands take a base register other than rsp/r12 and use the compressed
        /// 8-bit displacement (scaled by 64, the operand size) when it fits.
        pub(crate) fn ins(
            ops: &mut Assembler,
            Enc(map, pp, opc): Enc,
            reg: u8,
            vvvv: u8,
            rm: Rm,
            mask: u8,
            imm: Option<u8>,
        ) {
            assert!(reg < 32 && vvvv < 32 && mask < 8);
            let (b, x) = match rm {
                Rm::Reg(m) => ((m >> 3) & 1, (m >> 4) & 1),
                Rm::Mem(base, _) => ((base >> 3) & 1, 0),
            };
            // P0: R X B R' 0 0 m m (R, X, B, R' inverted)
            let p0 = (((reg >> 3) & 1) ^ 1) << 7
                | (x ^ 1) << 6
                | (b ^ 1) << 5
                | (((reg >> 4) & 1) ^ 1) << 4
                | map;
            // P1: W vvvv 1 pp (vvvv inverted, W0)
            let p1 = ((!vvvv) & 0xF) << 3 | 0b100 | pp;
            // P2: z L'L b V' aaa (L'L = 10: 512 bits; V' inverted)
            let p2 = 0b10 << 5 | (((vvvv >> 4) & 1) ^ 1) << 3 | mask;
            for byte in [0x62, p0, p1, p2, opc] {
                ops.push(byte);
            }
            match rm {
                Rm::Reg(m) => ops.push(0xC0 | (reg & 7) << 3 | (m & 7)),
                Rm::Mem(base, d) => {
                    assert!(base & 7 != 4, "rsp/r12 bases need a SIB byte");
                    let modrm = (reg & 7) << 3 | (base & 7);
                    if d == 0 && base & 7 != 5 {
                        ops.push(modrm);
                    } else if let Some(d8) =
                        (d % 64 == 0).then(|| i8::try_from(d / 64).ok()).flatten()
                    {
                        ops.push(0x40 | modrm);
                        ops.push(d8.to_le_bytes()[0]);
                    } else {
                        ops.push(0x80 | modrm);
                        for byte in d.to_le_bytes() {
                            ops.push(byte);
                        }
                    }
                }
            }
            if let Some(i) = imm {
                ops.push(i);
            }
        }

        fn rm(a: Loc) -> Rm {
            match a {
                Loc::Reg(r) => Rm::Reg(r),
                Loc::Mem(k) => Rm::Mem(RCX, disp(k)),
            }
        }

        /// Copy an operand into register `d`.
        fn mov(ops: &mut Assembler, d: u8, a: Loc) {
            match a {
                Loc::Reg(r) if r == d => {}
                Loc::Reg(r) => ins(ops, VMOVAPS, d, 0, Rm::Reg(r), 0, None),
                Loc::Mem(_) => ins(ops, VMOVUPS_LOAD, d, 0, rm(a), 0, None),
            }
        }

        /// A register holding `a` (loading a constant into scratch register `t` if needed).
        fn in_reg(ops: &mut Assembler, a: Loc, t: u8) -> u8 {
            match a {
                Loc::Reg(r) => r,
                Loc::Mem(_) => {
                    mov(ops, t, a);
                    t
                }
            }
        }

        fn binary(ops: &mut Assembler, enc: Enc, d: u8, a: u8, b: Loc) {
            ins(ops, enc, d, a, rm(b), 0, None);
        }

        /// d = a * b + c with one rounding; the register rules of the AVX2 `fma`.
        fn fma(ops: &mut Assembler, d: u8, a: Loc, b: Loc, c: Loc) {
            let is = |l: Loc| l == Loc::Reg(d);
            if is(a) || is(b) {
                // d holds one factor; f is the other: d = f * d + c (213) or d = d * f + c (132)
                let f = if is(a) { b } else { a };
                match (f, c) {
                    (Loc::Reg(rf), c) => binary(ops, VFMADD213PS, d, rf, c),
                    (Loc::Mem(_), Loc::Reg(rc)) => binary(ops, VFMADD132PS, d, rc, f),
                    (Loc::Mem(_), Loc::Mem(_)) => {
                        let rf = in_reg(ops, f, T0);
                        binary(ops, VFMADD213PS, d, rf, c);
                    }
                }
            } else if is(c) {
                // d = a * b + d (231)
                let (ra, b) = match (a, b) {
                    (Loc::Reg(ra), b) => (ra, b),
                    (a, Loc::Reg(rb)) => (rb, a),
                    (a, b) => (in_reg(ops, a, T0), b),
                };
                binary(ops, VFMADD231PS, d, ra, b);
            } else if matches!(c, Loc::Reg(_)) {
                mov(ops, d, c);
                fma(ops, d, a, b, Loc::Reg(d));
            } else {
                let (m, f) = if matches!(b, Loc::Mem(_)) {
                    (b, a)
                } else {
                    (a, b)
                };
                mov(ops, d, m);
                fma(ops, d, Loc::Reg(d), f, c);
            }
        }

        /// min/max with `float.rs` semantics, as the AVX2 `min_max` but with opmasks: vminps
        /// (vmaxps), then equal lanes (±0) get a | b (a & b), unordered lanes the quiet NaN.
        /// Every operand is read before `d` is written.
        fn min_max(
            ops: &mut Assembler,
            consts: &[Lane],
            d: u8,
            (a, b): (Loc, Loc),
            is_min: bool,
            hint: Hint,
        ) {
            let pick = if is_min { VMINPS } else { VMAXPS };
            if let Some((v, k, c_second)) = with_constant(consts, a, b, is_min) {
                if let Some(c_second) = nan_free_order(consts, k, c_second, hint) {
                    if c_second {
                        binary(ops, pick, d, v, Loc::Mem(k));
                    } else {
                        mov(ops, T3, Loc::Mem(k));
                        binary(ops, pick, d, T3, Loc::Reg(v));
                    }
                    return;
                }
                // as the AVX2 code: vminps(v, c) or vminps(c, v), then NaN lanes of v
                ins(ops, VCMPPS, K_NAN, v, Rm::Reg(v), 0, Some(3)); // UNORD_Q
                if c_second {
                    binary(ops, pick, d, v, Loc::Mem(k));
                } else {
                    mov(ops, T3, Loc::Mem(k));
                    binary(ops, pick, d, T3, Loc::Reg(v));
                }
                ins(ops, VMOVUPS_LOAD, d, 0, rm(Loc::Mem(QNAN)), K_NAN, None);
                return;
            }
            let ra = in_reg(ops, a, T0);
            let rb = in_reg(ops, b, T3);
            ins(ops, VCMPPS, K_EQ, ra, Rm::Reg(rb), 0, Some(0)); // EQ_OQ
            ins(ops, VCMPPS, K_NAN, ra, Rm::Reg(rb), 0, Some(3)); // UNORD_Q
            let equal = if is_min { VORPS } else { VANDPS };
            ins(ops, pick, T1, ra, Rm::Reg(rb), 0, None);
            ins(ops, equal, T1, ra, Rm::Reg(rb), K_EQ, None);
            // vblendmps: d = k ? [qnan] : T1
            ins(ops, VBLENDMPS, d, T1, rm(Loc::Mem(QNAN)), K_NAN, None);
        }

        /// vfpclassps categories: quiet NaN, ±0, ±inf, signalling NaN.
        const CLASS_QNAN: u8 = 0x01;
        const CLASS_ZERO_INF: u8 = 0x1e;
        const CLASS_SNAN: u8 = 0x80;

        /// d = ldexp(a, b): `vscalefps` by trunc(clamp(b, -300, 300)) (a constant exponent is
        /// precomputed); lanes where b is NaN get the quiet NaN. With `Hint::Scale` (b within
        /// the clamp, its NaNs canonical) the clamp and the NaN select are idle: vscalefps by
        /// trunc(b), or by b itself when b is an integer (vscalefps takes floor(b)).
        fn ldexp(
            ops: &mut Assembler,
            consts: &mut Vec<Lane>,
            d: u8,
            (a, b): (Loc, Loc),
            hint: Hint,
        ) {
            let ra = in_reg(ops, a, T3);
            if let Loc::Mem(kb) = b {
                let e = lane_value(consts, kb);
                if e.is_nan() {
                    mov(ops, d, Loc::Mem(QNAN));
                } else {
                    #[allow(clippy::cast_precision_loss)] // |k| <= 300
                    let k = ldexp_exponent(e, LDEXP_LIMIT) as f32;
                    let m = Loc::Mem(lane(consts, k.to_bits()));
                    binary(ops, VSCALEFPS, d, ra, m);
                }
                return;
            }
            let Loc::Reg(rb) = b else {
                unreachable!("a constant exponent is handled above")
            };
            if let Hint::Scale { integral } = hint {
                if integral {
                    binary(ops, VSCALEFPS, d, ra, Loc::Reg(rb));
                } else {
                    ins(ops, VRNDSCALEPS, T1, 0, Rm::Reg(rb), 0, Some(0x0b)); // toward zero
                    binary(ops, VSCALEFPS, d, ra, Loc::Reg(T1));
                }
                return;
            }
            let lo = Loc::Mem(lane(consts, (-LDEXP_LIMIT).to_bits()));
            let hi = Loc::Mem(lane(consts, LDEXP_LIMIT.to_bits()));
            ins(ops, VCMPPS, K_NAN, rb, Rm::Reg(rb), 0, Some(3)); // UNORD_Q
            binary(ops, VMAXPS, T1, rb, lo);
            binary(ops, VMINPS, T1, T1, hi);
            ins(ops, VRNDSCALEPS, T1, 0, Rm::Reg(T1), 0, Some(0x0b)); // toward zero
            binary(ops, VSCALEFPS, T1, ra, Loc::Reg(T1));
            ins(ops, VBLENDMPS, d, T1, rm(Loc::Mem(QNAN)), K_NAN, None);
        }

        /// Emit one instruction `d = op(args)`; constants the op needs are added to `consts`.
        pub(crate) fn emit(
            ops: &mut Assembler,
            consts: &mut Vec<Lane>,
            (op, d, [a, b, c], hint): Step,
        ) {
            match op {
                Op::Add | Op::Mul => {
                    let (a, b) = if matches!(a, Loc::Mem(_)) {
                        (b, a)
                    } else {
                        (a, b)
                    };
                    let ra = in_reg(ops, a, T0);
                    binary(ops, if op == Op::Add { VADDPS } else { VMULPS }, d, ra, b);
                }
                Op::Sub | Op::Div => {
                    let ra = in_reg(ops, a, T0);
                    binary(ops, if op == Op::Sub { VSUBPS } else { VDIVPS }, d, ra, b);
                }
                Op::Fma => fma(ops, d, a, b, c),
                Op::Neg => {
                    let ra = in_reg(ops, a, T0);
                    binary(ops, VXORPS, d, ra, Loc::Mem(SIGN_MASK));
                }
                Op::Abs => {
                    let ra = in_reg(ops, a, T0);
                    binary(ops, VANDPS, d, ra, Loc::Mem(ABS_MASK));
                }
                Op::Sqrt => ins(ops, VSQRTPS, d, 0, rm(a), 0, None),
                Op::Min => min_max(ops, consts, d, (a, b), true, hint),
                Op::Max => min_max(ops, consts, d, (a, b), false, hint),
                // vrndscaleps imm 8 + mode: scale 0, precision exception suppressed
                Op::Rint => ins(ops, VRNDSCALEPS, d, 0, rm(a), 0, Some(0x08)),
                Op::Floor => ins(ops, VRNDSCALEPS, d, 0, rm(a), 0, Some(0x09)),
                Op::Ldexp => ldexp(ops, consts, d, (a, b), hint),
                Op::Getexp => {
                    // NaN lanes: the quiet NaN (vgetexpps would keep the payload)
                    let nan = CLASS_QNAN | CLASS_SNAN;
                    ins(ops, VFPCLASSPS, K_NAN, 0, rm(a), 0, Some(nan));
                    ins(ops, VGETEXPPS, d, 0, rm(a), 0, None);
                    ins(ops, VMOVUPS_LOAD, d, 0, rm(Loc::Mem(QNAN)), K_NAN, None);
                }
                Op::Getmant => {
                    // imm 0: normalised to [1, 2), sign of the source; ±0, ±inf and NaN lanes
                    // keep a itself
                    let keep = CLASS_QNAN | CLASS_ZERO_INF | CLASS_SNAN;
                    ins(ops, VFPCLASSPS, K_EQ, 0, rm(a), 0, Some(keep));
                    ins(ops, VGETMANTPS, T1, 0, rm(a), 0, Some(0));
                    ins(ops, VBLENDMPS, d, T1, rm(a), K_EQ, None);
                }
                _ => unreachable!("unsupported ops are filtered out before emission"),
            }
        }
    }

    pub(super) fn assembler() -> Assembler {
        Assembler::new_with_capacity(0, 64 * 1024, 0, 0, 2 * super::PART, 0, 2 * super::PART)
    }

    /// Copy assembled code into a fresh executable mapping.
    pub(super) fn finalize(ops: Assembler) -> Option<dynasmrt::ExecutableBuffer> {
        let code = ops.finalize().ok()?;
        let mut buf = dynasmrt::mmap::MutableBuffer::new(code.len()).ok()?;
        buf.set_len(code.len());
        buf.copy_from_slice(&code);
        buf.make_exec().ok()
    }
}

/// Signature of a compiled kernel: inputs, outputs, number of vectors (>= 1), constants.
type KernelFn = unsafe extern "sysv64" fn(*const f32, *mut f32, usize, *const Lane);

struct Compiled {
    /// Index of the executable buffer holding the code.
    part: usize,
    /// Entry offsets: ordinary stores, non-temporal stores.
    entry: [usize; 2],
    consts: Vec<Lane>,
}

/// Machine code for a batch of programs (one executable buffer per `PART` programs).
pub struct JitBatch {
    #[cfg(all(target_arch = "x86_64", unix))]
    parts: Vec<Option<dynasmrt::ExecutableBuffer>>,
    kernels: Vec<Option<Compiled>>,
    /// The instruction set of the kernels (`None`: the JIT is off or unavailable).
    isa: Option<Isa>,
}

/// A compiled program, ready to run.
#[derive(Clone, Copy)]
pub struct Kernel<'a> {
    f: KernelFn,
    f_nt: KernelFn,
    consts: &'a [Lane],
    /// float32 lanes per vector (8 or 16).
    lanes: usize,
}

/// Programs per executable buffer; the parts of a large batch are compiled in parallel.
const PART: usize = 128;

/// Batches compiled by the last calls, by instruction set and content (see `compile_cached`).
type BatchCache = Vec<(Isa, Vec<u64>, Arc<JitBatch>)>;
static CACHE: Mutex<BatchCache> = Mutex::new(Vec::new());
/// The cache holds at most this many programs in all (a larger batch is not kept).
const CACHED_PROGRAMS: usize = 16_384;
/// ... in at most this many batches.
const CACHED_BATCHES: usize = 4;

/// Everything compilation depends on, for every program: the cache key of a batch (constants by
/// their bits, so -0.0 and 0.0 differ).
fn batch_key(progs: &[Program]) -> Vec<u64> {
    let mut k = Vec::with_capacity(
        progs
            .iter()
            .map(|p| 4 + p.consts.len() + 2 * p.instrs.len())
            .sum(),
    );
    for p in progs {
        k.extend([p.n_inputs, p.output, p.consts.len(), p.instrs.len()].map(|v| v as u64));
        k.extend(p.consts.iter().map(|c| c.to_bits()));
        for ins in &p.instrs {
            k.push(u64::from(ins.op as u8) << 32 | u64::from(ins.args[0]));
            k.push(u64::from(ins.args[1]) << 32 | u64::from(ins.args[2]));
        }
    }
    k
}

impl JitBatch {
    /// Compile every program that is in scope (see the module docs); the rest get `None`.
    pub fn compile(progs: &[Program]) -> JitBatch {
        JitBatch::compile_for(progs, jit_isa())
    }

    /// `compile`, reusing the batch one of the last few calls compiled for the same programs
    /// (by content) and instruction set: a population evaluated again is not compiled again.
    pub fn compile_cached(progs: &[Program]) -> Arc<JitBatch> {
        let Some(isa) = jit_isa() else {
            return Arc::new(JitBatch::compile_for(progs, None));
        };
        if progs.len() > CACHED_PROGRAMS {
            return Arc::new(JitBatch::compile_for(progs, Some(isa)));
        }
        let key = batch_key(progs);
        {
            let mut cache = CACHE.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(pos) = cache.iter().position(|(i, k, _)| *i == isa && *k == key) {
                let hit = cache.remove(pos);
                let batch = Arc::clone(&hit.2);
                cache.push(hit); // most recently used last
                return batch;
            }
        }
        let batch = Arc::new(JitBatch::compile_for(progs, Some(isa)));
        let mut cache = CACHE.lock().unwrap_or_else(PoisonError::into_inner);
        cache.push((isa, key, Arc::clone(&batch)));
        while cache.len() > CACHED_BATCHES
            || cache.iter().map(|e| e.2.kernels.len()).sum::<usize>() > CACHED_PROGRAMS
        {
            cache.remove(0);
        }
        batch
    }

    /// Compile for the given instruction set (`None`: compile nothing). The caller makes sure
    /// the CPU has it (`jit_isa`, `cpu_isas`).
    pub fn compile_for(progs: &[Program], isa: Option<Isa>) -> JitBatch {
        #[cfg(all(target_arch = "x86_64", unix))]
        {
            use rayon::prelude::*;
            let Some(isa) = isa else {
                return JitBatch {
                    parts: Vec::new(),
                    kernels: progs.iter().map(|_| None).collect(),
                    isa: None,
                };
            };
            let compile_part = |(pi, chunk): (usize, &[Program])| {
                let mut kernels: Vec<Option<Compiled>> = chunk.iter().map(|_| None).collect();
                let mut ops = x64::assembler();
                for (k, p) in kernels.iter_mut().zip(chunk) {
                    *k = x64::compile(&mut ops, p, isa).map(|(e, consts)| Compiled {
                        part: pi,
                        entry: [e[0].0, e[1].0],
                        consts,
                    });
                }
                match kernels
                    .iter()
                    .any(Option::is_some)
                    .then(|| x64::finalize(ops))
                    .flatten()
                {
                    Some(buf) => (Some(buf), kernels),
                    None => (None, chunk.iter().map(|_| None).collect()),
                }
            };
            let done: Vec<_> = if progs.len() > PART {
                progs
                    .par_chunks(PART)
                    .enumerate()
                    .map(compile_part)
                    .collect()
            } else {
                progs.chunks(PART).enumerate().map(compile_part).collect()
            };
            let mut parts = Vec::with_capacity(done.len());
            let mut kernels = Vec::with_capacity(progs.len());
            for (buf, ks) in done {
                parts.push(buf);
                kernels.extend(ks);
            }
            JitBatch {
                parts,
                kernels,
                isa: Some(isa),
            }
        }
        #[cfg(not(all(target_arch = "x86_64", unix)))]
        {
            let _ = isa;
            JitBatch {
                kernels: progs.iter().map(|_| None).collect(),
                isa: None,
            }
        }
    }

    /// The compiled kernel of program `i`, if it was compiled.
    #[allow(unsafe_code)]
    pub fn get(&self, i: usize) -> Option<Kernel<'_>> {
        #[cfg(all(target_arch = "x86_64", unix))]
        {
            let c = self.kernels.get(i)?.as_ref()?;
            let buf = self.parts.get(c.part)?.as_ref()?;
            // SAFETY: `entry` is the offset of a function emitted by `x64::compile` with the
            // `KernelFn` calling convention; the buffer is executable and lives as long as `self`.
            let [f, f_nt]: [KernelFn; 2] = c
                .entry
                .map(|e| unsafe { std::mem::transmute(buf.ptr(dynasmrt::AssemblyOffset(e))) });
            Some(Kernel {
                f,
                f_nt,
                consts: &c.consts,
                lanes: self.isa?.lanes(),
            })
        }
        #[cfg(not(all(target_arch = "x86_64", unix)))]
        {
            let _ = i;
            None
        }
    }

    /// The instruction set the kernels were compiled for (`None` when the JIT was off).
    pub fn isa(&self) -> Option<Isa> {
        self.isa
    }

    /// How many programs were compiled.
    pub fn n_compiled(&self) -> usize {
        self.kernels.iter().filter(|k| k.is_some()).count()
    }
}

/// Outputs at least this long are written with non-temporal stores (they would not stay in
/// cache anyway); shorter ones, which the caller is about to read, go through the cache.
pub const STREAM_MIN: usize = 1 << 14;

impl Kernel<'_> {
    /// out[i] = program(x[i]) for every i (`x` and `out` of equal length).
    pub fn run(&self, x: &[f32], out: &mut [f32]) {
        assert_eq!(x.len(), out.len(), "input and output lengths differ");
        let addr = out.as_ptr() as usize;
        if out.len() >= STREAM_MIN && addr.is_multiple_of(4) {
            // plain stores up to the first vector-aligned address, then streaming stores
            let align = 4 * self.lanes;
            let peel = ((align - addr % align) % align) / 4;
            let (x0, x1) = x.split_at(peel);
            let (o0, o1) = out.split_at_mut(peel);
            self.run_with(self.f, x0, o0);
            self.run_with(self.f_nt, x1, o1);
        } else {
            self.run_with(self.f, x, out);
        }
    }

    #[allow(unsafe_code)]
    fn run_with(&self, f: KernelFn, x: &[f32], out: &mut [f32]) {
        let lanes = self.lanes;
        let full = x.len() / lanes;
        if full > 0 {
            // SAFETY: the kernel reads `full` * `lanes` floats from x and writes as many to out,
            // both in bounds (and out is vector-aligned for the streaming variant, see `run`);
            // `consts` is the table the kernel was compiled against.
            unsafe { f(x.as_ptr(), out.as_mut_ptr(), full, self.consts.as_ptr()) };
        }
        let done = full * lanes;
        if done < x.len() {
            // the tail: one full vector through local buffers (every op is lane-wise, so the
            // padding lanes cannot change the others)
            let rest = x.len() - done;
            let mut xi = [0f32; 16];
            let mut yo = [0f32; 16];
            xi[..rest].copy_from_slice(&x[done..]);
            // SAFETY: one full vector (at most 16 floats) from/to local 16-float buffers
            // (plain stores).
            unsafe { (self.f)(xi.as_ptr(), yo.as_mut_ptr(), 1, self.consts.as_ptr()) };
            out[done..].copy_from_slice(&yo[..rest]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::ChunkRunner;

    /// Special and ordinary values: ±0, subnormals, ±inf, NaNs, extremes, ordinary numbers.
    fn inputs() -> Vec<f32> {
        let mut v = vec![
            0.0,
            -0.0,
            f32::from_bits(1),
            -f32::from_bits(1),
            f32::MIN_POSITIVE,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            f32::from_bits(0x7fa0_0001),
            f32::from_bits(0xffc0_1234),
            f32::MAX,
            -f32::MAX,
            1.0,
            -1.0,
            0.5,
            2.0,
            3.0,
        ];
        let mut s: u32 = 12345;
        for _ in 0..2000 {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            v.push(f32::from_bits(s));
            v.push((s >> 8) as f32 / (1 << 22) as f32 - 2.0);
        }
        v
    }

    /// Every instruction set of this CPU compiles `p` the same way and agrees bit for bit with
    /// the interpreter.
    fn check(p: &Program) {
        for isa in cpu_isas() {
            let batch = JitBatch::compile_for(std::slice::from_ref(p), Some(isa));
            let Some(k) = batch.get(0) else {
                continue;
            };
            let x = inputs();
            let mut fast = vec![0f32; x.len()];
            k.run(&x, &mut fast);
            let mut r = ChunkRunner::<f32>::new(p);
            let mut want = vec![0f32; x.len()];
            r.eval_into(&[&x], 0, &mut want);
            for (i, (a, b)) in fast.iter().zip(&want).enumerate() {
                assert_eq!(
                    a.to_bits(),
                    b.to_bits(),
                    "{isa:?} {p:?} x = {:e} ({:#x}): jit {a:e} interpreter {b:e}",
                    x[i],
                    x[i].to_bits()
                );
            }
        }
    }

    #[test]
    fn every_op_and_operand_form_matches_the_interpreter() {
        // slot 0 = x, slots 1..=2 constants, then values
        let c = vec![0.75, -1.5];
        for code in 0u8..=14 {
            let op = Op::from_code(code).unwrap();
            let ar = op.arity();
            // operand patterns: all x, constants first, constants last, a value reused, two
            // constants with x, a constant with a value
            let patterns: [[i32; 3]; 6] = [
                [0, 0, 0],
                [1, 0, 2],
                [0, 2, 1],
                [3, 3, 0],
                [1, 2, 0],
                [2, 3, 3],
            ];
            for pat in patterns {
                // v3 = x * x + 0.75 (gives a value to reference), v4 = op(pattern)
                let mut args = vec![0, 0, 1];
                let a: Vec<i32> = (0..3)
                    .map(|j| if j < ar { pat[j] } else { pat[0] })
                    .collect();
                args.extend(&a);
                let p = Program::new(&[4, code], &args, c.clone(), 1, 4, false).unwrap();
                for isa in cpu_isas() {
                    let b = JitBatch::compile_for(std::slice::from_ref(&p), Some(isa));
                    assert_eq!(b.n_compiled(), 1);
                }
                check(&p);
            }
            // an op whose every operand is a constant
            let p = Program::new(&[code], &[1, 2, 1], c.clone(), 1, 3, false).unwrap();
            check(&p);
        }
    }

    #[test]
    fn special_constants_on_either_side() {
        // ±0 against ±0 (min/max take the OR/AND of the bits), NaNs, infinities, subnormals
        // (a NaN constant only for min/max and ldexp: arithmetic on two NaNs may return either
        // payload)
        for code in [0u8, 1, 2, 3, 8, 9, 12] {
            for c in [
                0.0,
                -0.0,
                f64::NAN,
                f64::INFINITY,
                -f64::INFINITY,
                1e-45,
                1.0,
            ] {
                if c.is_nan() && code < 8 {
                    continue;
                }
                for args in [[0, 1, 0], [1, 0, 0]] {
                    let p = Program::new(&[code], &args, vec![c], 1, 2, false).unwrap();
                    check(&p);
                }
            }
        }
    }

    /// Inputs for the ops beyond plain arithmetic: integers and halves across the whole ldexp
    /// exponent range and beyond, every power of two, neighbours of the subnormal/normal and
    /// finite/inf boundaries, and `inputs()`.
    fn exponent_inputs() -> Vec<f32> {
        let mut v = inputs();
        for i in -340i16..=340 {
            let i = f32::from(i);
            v.extend([i, i + 0.5, i - 0.25, i + 0.75]);
        }
        for b in 0u32..=255 {
            let e = b << 23;
            for bits in [e, e | 1, e | 0x40_0000, e | 0x7f_ffff, e.wrapping_sub(1)] {
                v.extend([f32::from_bits(bits), -f32::from_bits(bits)]);
            }
        }
        v.extend([1e10, -1e10, 8_388_607.5, 8_388_608.5, -4_194_304.5]);
        v
    }

    /// `check` on the given inputs.
    fn check_on(p: &Program, x: &[f32]) {
        for isa in cpu_isas() {
            let batch = JitBatch::compile_for(std::slice::from_ref(p), Some(isa));
            let k = batch.get(0).expect("in the JIT's scope");
            let mut fast = vec![0f32; x.len()];
            k.run(x, &mut fast);
            let mut want = vec![0f32; x.len()];
            ChunkRunner::<f32>::new(p).eval_into(&[x], 0, &mut want);
            for (i, (a, b)) in fast.iter().zip(&want).enumerate() {
                assert_eq!(
                    a.to_bits(),
                    b.to_bits(),
                    "{isa:?} {p:?} x = {:e} ({:#x}): jit {a:e} ({:#x}) interpreter {b:e} ({:#x})",
                    x[i],
                    x[i].to_bits(),
                    a.to_bits(),
                    b.to_bits()
                );
            }
        }
    }

    #[test]
    fn rounding_and_exponent_ops_match_the_interpreter() {
        // rint, floor, getexp, getmant of x (ties, ±0, subnormals, every exponent, inf, NaNs)
        let x = exponent_inputs();
        for code in [10u8, 11, 13, 14] {
            check_on(
                &Program::new(&[code], &[0, 0, 0], vec![], 1, 1, false).unwrap(),
                &x,
            );
        }
        // ldexp with x as the exponent, on mantissas that round, overflow and underflow
        // (1.5 * 2^-150 and 1.5 * 2^-149 are ties; 0x1.fffffep0 rounds up to the next binade)
        for a in [
            1.0,
            1.5,
            -1.75,
            1.000_000_1,
            1.999_999_9,
            1e-40,
            -1e-45,
            3e38,
            0.0,
            -0.0,
            f64::INFINITY,
            f64::NAN,
        ] {
            check_on(
                &Program::new(&[12], &[1, 0, 0], vec![a], 1, 2, false).unwrap(),
                &x,
            );
        }
        // ldexp with a constant exponent (precomputed factors) and with x as both operands
        for e in [
            -1e9,
            -300.0,
            -299.5,
            -278.9,
            -278.0,
            -200.0,
            -150.0,
            -149.0,
            -126.0,
            -0.5,
            0.0,
            0.99,
            1.0,
            23.0,
            127.0,
            128.0,
            254.0,
            278.0,
            300.0,
            1e9,
            -f64::INFINITY,
            f64::INFINITY,
            f64::NAN,
        ] {
            check_on(
                &Program::new(&[12], &[0, 1, 0], vec![e], 1, 2, false).unwrap(),
                &x,
            );
        }
        check_on(
            &Program::new(&[12], &[0, 0, 0], vec![], 1, 1, false).unwrap(),
            &x,
        );
        // exponents from a value: ldexp(getmant x, getexp x) rebuilds x (a register operand on
        // both sides, the exponent dying there)
        let p = Program::new(
            &[14, 13, 12],
            &[0, 0, 0, 0, 0, 0, 1, 2, 0],
            vec![],
            1,
            3,
            false,
        );
        check_on(&p.unwrap(), &x);
    }

    /// The hint of each live instruction of `p`.
    fn hints(p: &Program) -> Vec<Hint> {
        let f = facts(p);
        p.live.iter().map(|&i| hint(p, &f, i)).collect()
    }

    #[test]
    fn proven_ranges_drop_clamps_and_nan_fixups_bit_exactly() {
        // slot 0 = x; constants 1..=9; values from 10
        let c = vec![8.49, 2.885_39, 1.0, -0.75, -104.0, 89.0, 1.25, -0.0, 0.0];
        let mut x = exponent_inputs();
        // NaNs with payloads, of either sign, quiet and signalling
        x.extend([0x7fc0_0001u32, 0xffc0_0000, 0xff80_0001, 0x7f80_0100].map(f32::from_bits));
        let run = |ops: &[u8], args: &[i32], want: &[Hint]| {
            let out = 9 + i64::try_from(ops.len()).unwrap();
            let p = Program::new(ops, args, c.clone(), 1, out, false).unwrap();
            assert_eq!(hints(&p), want, "{p:?}");
            check_on(&p, &x);
        };
        let g = Hint::General;
        let int = Hint::Scale { integral: true };
        // tanh's s = ldexp 1 rint(min(|x|, 8.49) * 2.88539): the exponent is an integer in
        // [0, 25], NaN only as the canonical NaN of min
        run(
            &[6, 8, 2, 10, 12],
            &[0, 0, 0, 10, 1, 0, 11, 2, 0, 12, 0, 0, 3, 13, 0],
            &[g, Hint::General, g, g, int],
        );
        // exp's shape: y = ldexp p(r) k with k = rint(clamp(x) * 1.25) in [-130, 112],
        // r = fma(k, -0.75, clamp(x)): p(r) is NaN only where x is, canonically (finite
        // operands pass payloads on). (With 2.88539 instead of 1.25, k could pass 300: general.)
        run(
            &[9, 8, 2, 10, 4, 4, 12],
            &[
                0, 5, 0, 10, 6, 0, 11, 7, 0, 12, 0, 0, 13, 4, 11, 14, 14, 3, 15, 13, 0,
            ],
            &[g, Hint::CanonNan, g, g, g, g, int],
        );
        // a fractional exponent: truncated, not floored (x in [-104, 89] * -0.75)
        run(
            &[9, 8, 2, 12],
            &[0, 5, 0, 10, 6, 0, 11, 4, 0, 3, 12, 0],
            &[g, Hint::CanonNan, g, Hint::Scale { integral: false }],
        );
        // not provable: x's own NaN payloads as the scaled value, an unbounded exponent, a
        // negated (sign-flipped) canonical NaN, an exponent from an arbitrary product
        run(
            &[8, 9, 10, 12],
            &[0, 3, 0, 10, 5, 0, 11, 0, 0, 0, 12, 0],
            &[g, Hint::CanonNan, g, g],
        );
        run(&[2, 10, 12], &[0, 2, 0, 10, 0, 0, 3, 11, 0], &[g, g, g]);
        run(&[8, 5, 8], &[0, 3, 0, 10, 0, 0, 11, 2, 0], &[g, g, g]);
        run(&[8, 2, 12], &[0, 3, 0, 10, 0, 0, 3, 11, 0], &[g, g, g]);
        // min/max with a constant of a value that cannot be NaN (from constants only), and of
        // canonical NaNs against ±0 (for min(v, -0) and max(v, +0) the emitter keeps the
        // general code: the constant must win on equal zeros but can only be the second source)
        run(
            &[2, 8, 0],
            &[3, 7, 0, 10, 2, 0, 11, 0, 0],
            &[g, Hint::NoNan, g],
        );
        for (op, k) in [(8, 8), (8, 9), (9, 9), (9, 8)] {
            run(&[8, op], &[0, 3, 0, 10, k, 0], &[g, Hint::CanonNan]);
            run(&[8, op], &[0, 3, 0, k, 10, 0], &[g, Hint::CanonNan]);
        }
    }

    #[test]
    fn register_pressure_and_fallback() {
        // a chain that keeps k values alive at once: v_i = x * c + v_{i-1}... summed at the end
        for k in [4usize, 11, 12, 20, 27, 28, 40] {
            let mut codes = Vec::new();
            let mut args = Vec::new();
            for i in 0..k {
                codes.push(4u8); // fma(x, x, c0) with a different shape per value
                args.extend([0, if i % 2 == 0 { 0 } else { 1 }, 1]);
            }
            for i in 1..k {
                codes.push(0u8);
                let prev = if i == 1 { 2 } else { 2 + k + i - 2 } as i32;
                args.extend([prev, (2 + i) as i32, 0]);
            }
            let out = (2 + codes.len() - 1) as i64;
            let p = Program::new(&codes, &args, vec![1.25], 1, out, false).unwrap();
            for isa in cpu_isas() {
                let batch = JitBatch::compile_for(std::slice::from_ref(&p), Some(isa));
                let fits = k < usize::from(isa.value_regs());
                assert_eq!(batch.get(0).is_some(), fits, "{isa:?} k = {k}");
            }
            check(&p);
        }
    }

    /// The EVEX encoder against GNU as (`as --64`, Intel syntax) on the same instructions:
    /// every opcode used, registers 0..31 in each field, opmasks, compressed and full
    /// displacements.
    #[cfg(all(target_arch = "x86_64", unix))]
    #[test]
    fn evex_encodings_match_gnu_as() {
        use crate::jit::x64::z::{self, Rm, RCX, RDI, RSI};
        let mut ops = x64::assembler();
        let m = |d: i32| Rm::Mem(RCX, d);
        let r = Rm::Reg;
        let list = [
            (z::VMOVUPS_LOAD, 0, 0, Rm::Mem(RDI, 0), 0, None),
            (z::VMOVUPS_STORE, 27, 0, Rm::Mem(RSI, 0), 0, None),
            (z::VMOVNTPS, 5, 0, Rm::Mem(RSI, 0), 0, None),
            (z::VMOVAPS, 17, 0, r(9), 0, None),
            (z::VMOVUPS_LOAD, 28, 0, m(192), 0, None),
            (z::VMOVUPS_LOAD, 3, 0, m(64 * 130), 0, None),
            (z::VADDPS, 1, 2, r(3), 0, None),
            (z::VADDPS, 20, 15, r(31), 0, None),
            (z::VMULPS, 8, 16, m(128), 0, None),
            (z::VSUBPS, 27, 1, r(26), 0, None),
            (z::VDIVPS, 12, 28, m(0), 0, None),
            (z::VSQRTPS, 19, 0, r(7), 0, None),
            (z::VSQRTPS, 2, 0, m(256), 0, None),
            (z::VXORPS, 4, 21, m(0), 0, None),
            (z::VANDPS, 22, 4, m(64), 0, None),
            (z::VFMADD132PS, 10, 18, m(320), 0, None),
            (z::VFMADD213PS, 25, 3, r(17), 0, None),
            (z::VFMADD231PS, 11, 24, r(30), 0, None),
            (z::VCMPPS, 1, 13, r(31), 0, Some(0)),
            (z::VCMPPS, 2, 28, r(9), 0, Some(3)),
            (z::VMINPS, 29, 16, r(8), 0, None),
            (z::VMAXPS, 29, 16, r(8), 0, None),
            (z::VORPS, 29, 28, r(31), 1, None),
            (z::VANDPS, 29, 20, r(1), 1, None),
            (z::VBLENDMPS, 14, 29, m(128), 2, None),
            (z::VBLENDMPS, 23, 29, m(8192), 2, None),
            (z::VSCALEFPS, 3, 17, r(30), 0, None),
            (z::VSCALEFPS, 20, 2, m(192), 0, None),
            (z::VGETEXPPS, 9, 0, r(25), 0, None),
            (z::VGETEXPPS, 1, 0, m(8192), 0, None),
            (z::VRNDSCALEPS, 12, 0, r(4), 0, Some(0x08)),
            (z::VRNDSCALEPS, 29, 0, m(64), 0, Some(0x0b)),
            (z::VGETMANTPS, 7, 0, r(19), 0, Some(0)),
            (z::VGETMANTPS, 30, 0, m(0), 0, Some(0)),
            (z::VFPCLASSPS, 2, 0, r(18), 0, Some(0x81)),
            (z::VFPCLASSPS, 1, 0, m(128), 0, Some(0x9f)),
            (z::VMOVUPS_LOAD, 5, 0, m(128), 2, None),
        ];
        for (enc, reg, v, rm, mask, imm) in list {
            z::ins(&mut ops, enc, reg, v, rm, mask, imm);
        }
        let want = "62f17c48100762617c48111e62f17c482b2e62c17c4828c962617c4810610362f17c48\
                    10998020000062f16c4858cb6281044858e762717c40594102620174485cda62711c40\
                    5e2162e17c4851df62f17c4851510462f15440572162e15c4854710162726d40985105\
                    62226548a8c962123d40b8de62911448c2cf0062d11c40c2d10362417c405de862417c\
                    405fe862011c4156ef62615c4154e96272154265710262e2154265b900200000\
                    629275402cde62e26d482c610362127d4842c962f27d4842890020000062737d48\
                    08e40862637d480869010b62b37d4826fb0062637d4826310062b37d4866d28162\
                    f37d486649029f62f17c4a106902";
        let got = ops
            .finalize()
            .unwrap()
            .iter()
            .fold(String::new(), |mut s, b| {
                use std::fmt::Write;
                write!(s, "{b:02x}").unwrap();
                s
            });
        assert_eq!(got, want);
    }

    #[test]
    fn batches_are_cached_by_content() {
        let p = |c: f64| Program::new(&[0], &[0, 1, 0], vec![c], 1, 2, false).unwrap();
        let a = JitBatch::compile_cached(&[p(1.5), p(0.0)]);
        let b = JitBatch::compile_cached(&[p(1.5), p(0.0)]);
        let c = JitBatch::compile_cached(&[p(1.5), p(-0.0)]);
        if available() {
            assert!(Arc::ptr_eq(&a, &b));
            assert!(!Arc::ptr_eq(&a, &c));
        }
        // the kernel of x + -0.0 keeps -0.0; that of x + 0.0 gives +0.0
        if let (Some(k0), Some(k)) = (a.get(1), c.get(1)) {
            let (mut y0, mut y) = ([1f32; 16], [1f32; 16]);
            k0.run(&[-0.0; 16], &mut y0);
            k.run(&[-0.0; 16], &mut y);
            assert_eq!(y0[0].to_bits(), 0.0f32.to_bits());
            assert_eq!(y[0].to_bits(), (-0.0f32).to_bits());
        }
    }

    #[test]
    fn out_of_scope_programs_are_not_compiled() {
        // float64-only ops (exp, code 15) are left to the interpreter; so are two inputs
        let p = Program::new(&[15], &[0, 0, 0], vec![], 1, 1, true).unwrap();
        assert!(JitBatch::compile(std::slice::from_ref(&p)).get(0).is_none());
        let two = Program::new(&[0], &[0, 1, 0], vec![], 2, 2, false).unwrap();
        assert!(JitBatch::compile(std::slice::from_ref(&two))
            .get(0)
            .is_none());
    }

    #[test]
    fn batch_of_many_programs_and_tails() {
        let progs: Vec<Program> = (0..2 * PART + 5)
            .map(|i| {
                let c = vec![0.5 + i as f64, -0.25];
                Program::new(
                    &[4, 2, 1, 8],
                    &[0, 1, 2, 3, 0, 0, 4, 2, 0, 5, 1, 0],
                    c,
                    1,
                    6,
                    false,
                )
                .unwrap()
            })
            .collect();
        for isa in cpu_isas() {
            let batch = JitBatch::compile_for(&progs, Some(isa));
            assert_eq!(batch.n_compiled(), progs.len());
            for (i, p) in progs.iter().enumerate() {
                if let Some(k) = batch.get(i) {
                    for n in [1usize, 7, 8, 9, 15, 16, 17, 47, 48, 100, STREAM_MIN + 13] {
                        let x: Vec<f32> = (0..n).map(|j| j as f32 * 0.37 - 3.0).collect();
                        let mut buf = vec![0f32; n + 1];
                        // misaligned by one float on odd programs (exercises the streaming peel)
                        let off = i % 2;
                        let y = &mut buf[off..off + n];
                        k.run(&x, y);
                        let mut r = ChunkRunner::<f32>::new(p);
                        let mut want = vec![0f32; n];
                        r.eval_into(&[&x], 0, &mut want);
                        assert_eq!(
                            y.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                            want.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
                        );
                    }
                }
            }
        }
    }
}
