//! Just-in-time compilation of float32 programs to AVX2+FMA machine code.
//!
//! The chunked interpreter (`eval`) stores every intermediate value to L1 and loads it back,
//! so it is bound by the store port, not by arithmetic. Here each program becomes a loop over
//! 8-lane vectors that keeps its values in ymm registers: per 8 points it loads `x` once, runs
//! one instruction per op (a short fixed sequence for min/max) and stores the output once.
//!
//! Scope: single-input float32 programs whose live ops are add, sub, mul, div, fma, neg, abs,
//! sqrt, min and max, needing at most `VALUE_REGS` live values at once, on x86-64 CPUs with
//! AVX2 and FMA. Everything else (other ops, float64, more inputs, other CPUs) returns `None`
//! from `JitBatch::get` and is run by the interpreter. The semantics are those of `float.rs`,
//! bit for bit (tested against the interpreter below and, from Python, against the reference
//! interpreter).

use crate::program::{Op, Program};

/// One 32-byte constant operand: a value broadcast to 8 lanes.
#[derive(Clone, Copy)]
#[repr(C, align(32))]
pub struct Lane([u32; 8]);

impl Lane {
    fn splat(bits: u32) -> Lane {
        Lane([bits; 8])
    }
}

/// Registers 0..VALUE_REGS hold values (register 0 is the input x); the rest are scratch.
const VALUE_REGS: u8 = 12;
const T0: u8 = 12;
const T1: u8 = 13;
const T2: u8 = 14;
const T3: u8 = 15;

/// Fixed entries of each kernel's constant table (program constants follow).
const SIGN_MASK: usize = 0;
const ABS_MASK: usize = 1;
const QNAN: usize = 2;
const FIXED: usize = 3;

/// Whether this CPU can run the compiled kernels.
pub fn available() -> bool {
    #[cfg(all(target_arch = "x86_64", unix))]
    {
        if std::env::var_os("PYSEARCH_NO_JIT").is_some() {
            return false;
        }
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(all(target_arch = "x86_64", unix)))]
    {
        false
    }
}

#[cfg(all(target_arch = "x86_64", unix))]
mod x64 {
    use super::*;
    use dynasmrt::{dynasm, x64::Assembler, AssemblyOffset, DynasmApi, DynasmLabelApi};

    /// Where an operand lives: a ymm register or an entry of the constant table.
    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    pub(super) enum Loc {
        Reg(u8),
        Mem(usize),
    }

    fn disp(k: usize) -> i32 {
        i32::try_from(k * 32).expect("constant table fits a 32-bit displacement")
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
        } else {
            mov(ops, d, a);
            fma(ops, d, Loc::Reg(d), b, c);
        }
    }

    /// d = min(a, b) or max(a, b) with `float.rs` semantics: the strictly smaller (larger)
    /// operand; for equal operands (±0) the OR (AND) of their bits; NaN if either is NaN.
    /// (Both operands go to registers: dynasm 5 drops the memory operand of `vcmpps`.)
    fn min_max(ops: &mut Assembler, d: u8, a: Loc, b: Loc, is_min: bool) {
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

    /// Emit one instruction `d = op(args)`.
    fn emit(ops: &mut Assembler, op: Op, d: u8, a: Loc, b: Loc, c: Loc) {
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
            Op::Min => min_max(ops, d, a, b, true),
            Op::Max => min_max(ops, d, a, b, false),
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
        )
    }

    /// Compile one program: `fn(x, out, n_vectors >= 1, consts)` looping over 8-lane vectors.
    /// Returns its entry offset and constant table, or `None` when it is out of scope.
    pub(super) fn compile(
        ops: &mut Assembler,
        p: &Program,
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
        let mut last_use = vec![usize::MAX; p.instrs.len()];
        for (pos, &i) in p.live.iter().enumerate() {
            let ins = p.instrs[i];
            for &a in &ins.args[..ins.op.arity()] {
                if a as usize >= base {
                    last_use[a as usize - base] = pos;
                }
            }
        }
        last_use[p.output - base] = usize::MAX;
        let mut reg_of = vec![u8::MAX; p.instrs.len()];
        let mut free: Vec<u8> = (1..VALUE_REGS).rev().collect();
        // the whole body is emitted into a scratch assembler first, so an out-of-registers
        // program leaves nothing behind in `ops`
        let mut body = Vec::with_capacity(p.live.len());
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
            let mut dying: Vec<u8> = Vec::new();
            for &a in &ins.args[..arity] {
                let a = a as usize;
                if a >= base && last_use[a - base] == pos {
                    let r = reg_of[a - base];
                    if !dying.contains(&r) {
                        dying.push(r);
                        free.push(r);
                    }
                }
            }
            // fma is destructive: land it on a dying operand's register when there is one
            let d = match dying.first() {
                Some(&r) if ins.op == Op::Fma => {
                    free.retain(|&f| f != r);
                    r
                }
                _ => free.pop()?,
            };
            reg_of[i] = d;
            body.push((ins.op, d, args));
        }
        let out = reg_of[p.output - base];
        // two variants of the loop: ordinary stores, and non-temporal stores (32-byte aligned
        // output) that stream large results to memory without reading the lines first
        let mut entries = [AssemblyOffset(0); 2];
        for (v, entry) in entries.iter_mut().enumerate() {
            *entry = ops.offset();
            let top = ops.new_dynamic_label();
            dynasm!(ops ; .arch x64 ; =>top ; vmovups Ry(0), [rdi]);
            for &(op, d, [a, b, c]) in &body {
                emit(ops, op, d, a, b, c);
            }
            if v == 0 {
                dynasm!(ops ; .arch x64 ; vmovups [rsi], Ry(out));
            } else {
                dynasm!(ops ; .arch x64 ; vmovntps [rsi], Ry(out));
            }
            dynasm!(ops
                ; .arch x64
                ; add rdi, 32
                ; add rsi, 32
                ; sub rdx, 1
                ; jnz =>top
            );
            if v == 1 {
                dynasm!(ops ; .arch x64 ; sfence);
            }
            dynasm!(ops ; .arch x64 ; vzeroupper ; ret);
        }
        Some((entries, consts))
    }

    pub(super) fn assembler() -> Option<Assembler> {
        Assembler::new().ok()
    }
}

/// Signature of a compiled kernel: inputs, outputs, number of 8-lane vectors (>= 1), constants.
type KernelFn = unsafe extern "sysv64" fn(*const f32, *mut f32, usize, *const Lane);

struct Compiled {
    /// Entry offsets: ordinary stores, non-temporal stores.
    entry: [usize; 2],
    consts: Vec<Lane>,
}

/// Machine code for a batch of programs (one executable buffer for all of them).
pub struct JitBatch {
    #[cfg(all(target_arch = "x86_64", unix))]
    buf: Option<dynasmrt::ExecutableBuffer>,
    kernels: Vec<Option<Compiled>>,
}

/// A compiled program, ready to run.
#[derive(Clone, Copy)]
pub struct Kernel<'a> {
    f: KernelFn,
    f_nt: KernelFn,
    consts: &'a [Lane],
}

impl JitBatch {
    /// Compile every program that is in scope (see the module docs); the rest get `None`.
    pub fn compile(progs: &[Program]) -> JitBatch {
        let mut kernels: Vec<Option<Compiled>> = progs.iter().map(|_| None).collect();
        #[cfg(all(target_arch = "x86_64", unix))]
        {
            if available() {
                if let Some(mut ops) = x64::assembler() {
                    for (k, p) in kernels.iter_mut().zip(progs) {
                        *k = x64::compile(&mut ops, p).map(|(e, consts)| Compiled {
                            entry: [e[0].0, e[1].0],
                            consts,
                        });
                    }
                    if kernels.iter().any(Option::is_some) {
                        if let Ok(buf) = ops.finalize() {
                            return JitBatch {
                                buf: Some(buf),
                                kernels,
                            };
                        }
                    }
                }
            }
            kernels.iter_mut().for_each(|k| *k = None);
            JitBatch { buf: None, kernels }
        }
        #[cfg(not(all(target_arch = "x86_64", unix)))]
        JitBatch { kernels }
    }

    /// The compiled kernel of program `i`, if it was compiled.
    #[allow(unsafe_code)]
    pub fn get(&self, i: usize) -> Option<Kernel<'_>> {
        #[cfg(all(target_arch = "x86_64", unix))]
        {
            let buf = self.buf.as_ref()?;
            let c = self.kernels.get(i)?.as_ref()?;
            // SAFETY: `entry` is the offset of a function emitted by `x64::compile` with the
            // `KernelFn` calling convention; the buffer is executable and lives as long as `self`.
            let [f, f_nt]: [KernelFn; 2] = c
                .entry
                .map(|e| unsafe { std::mem::transmute(buf.ptr(dynasmrt::AssemblyOffset(e))) });
            Some(Kernel {
                f,
                f_nt,
                consts: &c.consts,
            })
        }
        #[cfg(not(all(target_arch = "x86_64", unix)))]
        {
            let _ = i;
            None
        }
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
        if out.len() >= STREAM_MIN && addr % 4 == 0 {
            // plain stores up to the first 32-byte boundary, then streaming stores
            let peel = ((32 - addr % 32) % 32) / 4;
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
        let full = x.len() / 8;
        if full > 0 {
            // SAFETY: the kernel reads `full` * 8 floats from x and writes as many to out, both
            // in bounds (and out is 32-byte aligned for the streaming variant, see `run`);
            // `consts` is the table the kernel was compiled against.
            unsafe { f(x.as_ptr(), out.as_mut_ptr(), full, self.consts.as_ptr()) };
        }
        let done = full * 8;
        if done < x.len() {
            let rest = x.len() - done;
            let mut xi = [0f32; 8];
            let mut yo = [0f32; 8];
            xi[..rest].copy_from_slice(&x[done..]);
            // SAFETY: one full vector from/to local 8-float buffers (plain stores).
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

    fn check(p: &Program) {
        let batch = JitBatch::compile(std::slice::from_ref(p));
        let Some(k) = batch.get(0) else {
            return;
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
                "{p:?} x = {:e} ({:#x}): jit {a:e} interpreter {b:e}",
                x[i],
                x[i].to_bits()
            );
        }
    }

    #[test]
    fn every_op_and_operand_form_matches_the_interpreter() {
        // slot 0 = x, slots 1..=2 constants, then values
        let c = vec![0.75, -1.5];
        for code in [0u8, 1, 2, 3, 4, 5, 6, 7, 8, 9] {
            let op = Op::from_code(code).unwrap();
            let ar = op.arity();
            // operand patterns: all x, constants first, constants last, a value reused
            let patterns: [[i32; 3]; 4] = [[0, 0, 0], [1, 0, 2], [0, 2, 1], [3, 3, 0]];
            for pat in patterns {
                // v3 = x * x + 0.75 (gives a value to reference), v4 = op(pattern)
                let mut args = vec![0, 0, 1];
                let a: Vec<i32> = (0..3)
                    .map(|j| if j < ar { pat[j] } else { pat[0] })
                    .collect();
                args.extend(&a);
                let p = Program::new(&[4, code], &args, c.clone(), 1, 4, false).unwrap();
                assert_eq!(
                    JitBatch::compile(std::slice::from_ref(&p)).n_compiled(),
                    usize::from(available())
                );
                check(&p);
            }
            // an op whose every operand is a constant
            let p = Program::new(&[code], &[1, 2, 1], c.clone(), 1, 3, false).unwrap();
            check(&p);
        }
    }

    #[test]
    fn register_pressure_and_fallback() {
        // a chain that keeps k values alive at once: v_i = x * c + v_{i-1}... summed at the end
        for k in [4usize, 11, 12, 20] {
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
            let batch = JitBatch::compile(std::slice::from_ref(&p));
            if available() {
                assert_eq!(batch.get(0).is_some(), k < VALUE_REGS as usize, "k = {k}");
            }
            check(&p);
        }
    }

    #[test]
    fn out_of_scope_programs_are_not_compiled() {
        // rint (code 10) is left to the interpreter; so are float64-only ops and two inputs
        let p = Program::new(&[10], &[0, 0, 0], vec![], 1, 1, false).unwrap();
        assert!(JitBatch::compile(std::slice::from_ref(&p)).get(0).is_none());
        let two = Program::new(&[0], &[0, 1, 0], vec![], 2, 2, false).unwrap();
        assert!(JitBatch::compile(std::slice::from_ref(&two))
            .get(0)
            .is_none());
    }

    #[test]
    fn batch_of_many_programs_and_tails() {
        let progs: Vec<Program> = (0..50)
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
        let batch = JitBatch::compile(&progs);
        for (i, p) in progs.iter().enumerate() {
            if let Some(k) = batch.get(i) {
                for n in [1usize, 7, 8, 9, 100, STREAM_MIN + 13] {
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
