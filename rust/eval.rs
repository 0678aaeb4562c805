//! Chunked interpretation: each instruction runs over a chunk of points held in L1, so the
//! dispatch cost is paid once per chunk and the inner loops vectorise. The hot loop is compiled
//! several times (AVX-512, AVX2+FMA, baseline) and picked at run time.

use std::ops::Range;
use std::sync::Arc;

use rayon::prelude::*;

use crate::float::Float;
use crate::jit::{JitBatch, Kernel};
use crate::program::{Op, Program};

/// Points per chunk. Rows are reused once their value is dead (see `Plan`), so a chunk of
/// rows stays in L1 while the per-instruction dispatch cost is spread over many points.
pub const CHUNK: usize = 512;

/// Where an operand comes from: a scratch row (input or value) or a constant broadcast.
#[derive(Clone, Copy, Debug)]
enum Src {
    Row(usize),
    Const(f64),
}

/// One step of the execution plan: `rows[dst] = op(srcs)`.
#[derive(Clone, Copy, Debug)]
struct Step {
    op: Op,
    dst: usize,
    src: [Src; 3],
}

/// A program lowered for execution: live instructions only, values assigned to physical rows
/// that are recycled after a value's last use (register allocation over rows).
#[derive(Clone, Debug)]
struct Plan {
    steps: Vec<Step>,
    n_rows: usize,
    out_row: usize,
}

impl Plan {
    fn new(p: &Program) -> Plan {
        let base = p.first_value_slot();
        let last_use = p.last_uses();
        let mut row_of = vec![usize::MAX; p.instrs.len()];
        let mut free: Vec<usize> = Vec::new();
        let mut n_rows = p.n_inputs;
        let mut steps = Vec::with_capacity(p.live.len());
        for (pos, &i) in p.live.iter().enumerate() {
            let ins = p.instrs[i];
            let src_of = |a: u32| -> Src {
                let a = a as usize;
                if a < p.n_inputs {
                    Src::Row(a)
                } else if a < base {
                    Src::Const(p.consts[a - p.n_inputs])
                } else {
                    Src::Row(row_of[a - base])
                }
            };
            let src = [
                src_of(ins.args[0]),
                src_of(ins.args[1]),
                src_of(ins.args[2]),
            ];
            let dst = free.pop().unwrap_or_else(|| {
                n_rows += 1;
                n_rows - 1
            });
            row_of[i] = dst;
            steps.push(Step {
                op: ins.op,
                dst,
                src,
            });
            // operands whose last use is this step free their rows (after dst was taken)
            let mut seen = [usize::MAX; 3];
            for (j, &a) in ins.args[..ins.op.arity()].iter().enumerate() {
                let a = a as usize;
                if a >= base && last_use[a - base] == pos && !seen.contains(&a) {
                    free.push(row_of[a - base]);
                    seen[j] = a;
                }
            }
        }
        Plan {
            steps,
            n_rows,
            out_row: row_of[p.output - base],
        }
    }
}

/// Operand access in a kernel: a row slice or a broadcast constant.
trait Operand<T>: Copy {
    /// Restrict to the first `n` points (lets the compiler drop bounds checks in the loop).
    fn fit(self, n: usize) -> Self;
    fn at(self, i: usize) -> T;
}

impl<T: Float> Operand<T> for &[T] {
    #[inline(always)]
    fn fit(self, n: usize) -> Self {
        &self[..n]
    }
    #[inline(always)]
    fn at(self, i: usize) -> T {
        self[i]
    }
}

#[derive(Clone, Copy)]
struct Splat<T>(T);

impl<T: Float> Operand<T> for Splat<T> {
    #[inline(always)]
    fn fit(self, _: usize) -> Self {
        self
    }
    #[inline(always)]
    fn at(self, _: usize) -> T {
        self.0
    }
}

#[inline(always)]
fn kernel<T: Float, A: Operand<T>, B: Operand<T>, C: Operand<T>>(
    op: Op,
    d: &mut [T],
    a: A,
    b: B,
    c: C,
) {
    let n = d.len();
    let (a, b, c) = (a.fit(n), b.fit(n), c.fit(n));
    macro_rules! each {
        (|$i:ident| $e:expr) => {
            for $i in 0..n {
                d[$i] = $e;
            }
        };
    }
    match op {
        Op::Add => each!(|i| a.at(i) + b.at(i)),
        Op::Sub => each!(|i| a.at(i) - b.at(i)),
        Op::Mul => each!(|i| a.at(i) * b.at(i)),
        Op::Div => each!(|i| a.at(i) / b.at(i)),
        Op::Fma => each!(|i| T::fused_mul_add(a.at(i), b.at(i), c.at(i))),
        Op::Neg => each!(|i| a.at(i).neg()),
        Op::Abs => each!(|i| a.at(i).abs()),
        Op::Sqrt => each!(|i| a.at(i).sqrt()),
        Op::Min => each!(|i| T::min_op(a.at(i), b.at(i))),
        Op::Max => each!(|i| T::max_op(a.at(i), b.at(i))),
        Op::Rint => each!(|i| a.at(i).rint()),
        Op::Floor => each!(|i| a.at(i).floor()),
        Op::Ldexp => each!(|i| a.at(i).ldexp(b.at(i))),
        Op::Getexp => each!(|i| a.at(i).getexp()),
        Op::Getmant => each!(|i| a.at(i).getmant()),
        Op::Exp => each!(|i| a.at(i).exp()),
        Op::Log => each!(|i| a.at(i).ln()),
        Op::Pow => each!(|i| a.at(i).pow(b.at(i))),
    }
}

/// Run every step over `len` points: inputs are read in place from `inputs[k][off..]`, and the
/// last step (the output) writes straight into `out` when given, else into its row.
#[inline(always)]
fn run_chunk_generic<T: Float>(
    plan: &Plan,
    rows: &mut [Vec<T>],
    inputs: &[&[T]],
    off: usize,
    len: usize,
    mut out: Option<&mut [T]>,
) {
    use Src::{Const as K, Row as R};
    let n_in = inputs.len();
    let last = plan.steps.len() - 1;
    for (si, st) in plan.steps.iter().enumerate() {
        let mut d = std::mem::take(&mut rows[st.dst]);
        {
            let dd: &mut [T] = match out.as_deref_mut() {
                Some(o) if si == last => o,
                _ => &mut d[..len],
            };
            let r = |k: usize| -> &[T] {
                if k < n_in {
                    &inputs[k][off..off + len]
                } else {
                    &rows[k][..len]
                }
            };
            let s = |v: f64| Splat(T::from_f64(v));
            match st.src {
                [R(a), R(b), R(c)] => kernel(st.op, dd, r(a), r(b), r(c)),
                [R(a), R(b), K(c)] => kernel(st.op, dd, r(a), r(b), s(c)),
                [R(a), K(b), R(c)] => kernel(st.op, dd, r(a), s(b), r(c)),
                [R(a), K(b), K(c)] => kernel(st.op, dd, r(a), s(b), s(c)),
                [K(a), R(b), R(c)] => kernel(st.op, dd, s(a), r(b), r(c)),
                [K(a), R(b), K(c)] => kernel(st.op, dd, s(a), r(b), s(c)),
                [K(a), K(b), R(c)] => kernel(st.op, dd, s(a), s(b), r(c)),
                [K(a), K(b), K(c)] => kernel(st.op, dd, s(a), s(b), s(c)),
            }
        }
        rows[st.dst] = d;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx512vl,avx2,fma")]
#[allow(unsafe_code)]
unsafe fn run_chunk_avx512<T: Float>(
    plan: &Plan,
    rows: &mut [Vec<T>],
    inputs: &[&[T]],
    off: usize,
    len: usize,
    out: Option<&mut [T]>,
) {
    run_chunk_generic(plan, rows, inputs, off, len, out);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(unsafe_code)]
unsafe fn run_chunk_avx2<T: Float>(
    plan: &Plan,
    rows: &mut [Vec<T>],
    inputs: &[&[T]],
    off: usize,
    len: usize,
    out: Option<&mut [T]>,
) {
    run_chunk_generic(plan, rows, inputs, off, len, out);
}

/// Which compiled variant of the hot loop this CPU runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    Avx512,
    Avx2Fma,
    Baseline,
}

/// Detect the best instruction set once (cached by std).
pub fn isa() -> Isa {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512dq")
            && std::is_x86_feature_detected!("avx512vl")
            && std::is_x86_feature_detected!("avx2")
            && std::is_x86_feature_detected!("fma")
        {
            return Isa::Avx512;
        }
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            return Isa::Avx2Fma;
        }
    }
    Isa::Baseline
}

/// `fn name(args) => body;` defines `name`, which runs `body` (an expression of the arguments,
/// calling `#[inline(always)]` functions) compiled for AVX-512 (F, DQ, VL), for AVX2 with FMA, or
/// for the baseline, whichever `isa` reports: one body, vectorised as wide as the CPU allows. The
/// operations are the same in each (Rust never contracts a multiply and an add into an fma), so
/// the results are too.
macro_rules! multiversion {
    (
        $(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) => $body:expr;
    ) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512dq,avx512vl,avx2,fma")]
                #[allow(unsafe_code)]
                unsafe fn avx512($($arg: $ty),*) {
                    $body;
                }
                #[target_feature(enable = "avx2,fma")]
                #[allow(unsafe_code)]
                unsafe fn avx2($($arg: $ty),*) {
                    $body;
                }
                match $crate::eval::isa() {
                    // SAFETY: `isa` reports AVX-512 only where the CPU has AVX-512 F, DQ and VL,
                    // AVX2 and FMA, and AVX2 with FMA only where it has both.
                    #[allow(unsafe_code)]
                    $crate::eval::Isa::Avx512 => return unsafe { avx512($($arg),*) },
                    #[allow(unsafe_code)]
                    $crate::eval::Isa::Avx2Fma => return unsafe { avx2($($arg),*) },
                    $crate::eval::Isa::Baseline => {}
                }
            }
            $body;
        }
    };
}
pub(crate) use multiversion;

/// Evaluates one program chunk by chunk with the variant chosen for this CPU.
pub struct ChunkRunner<T: Float> {
    plan: Plan,
    rows: Vec<Vec<T>>,
    n_inputs: usize,
    isa: Isa,
}

impl<T: Float> ChunkRunner<T> {
    pub fn new(prog: &Program) -> Self {
        let plan = Plan::new(prog);
        // input rows stay empty: inputs are read in place
        let rows = (0..plan.n_rows)
            .map(|k| {
                if k < prog.n_inputs {
                    Vec::new()
                } else {
                    vec![T::default(); CHUNK]
                }
            })
            .collect();
        ChunkRunner {
            plan,
            rows,
            n_inputs: prog.n_inputs,
            isa: isa(),
        }
    }

    #[allow(unsafe_code)]
    fn dispatch(&mut self, inputs: &[&[T]], off: usize, len: usize, out: Option<&mut [T]>) {
        debug_assert!(len <= CHUNK && inputs.len() == self.n_inputs);
        let rows = &mut self.rows[..];
        match self.isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `isa()` confirmed the CPU supports these target features.
            Isa::Avx512 => unsafe { run_chunk_avx512(&self.plan, rows, inputs, off, len, out) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            Isa::Avx2Fma => unsafe { run_chunk_avx2(&self.plan, rows, inputs, off, len, out) },
            _ => run_chunk_generic(&self.plan, rows, inputs, off, len, out),
        }
    }

    /// Run the program on `inputs[k][off..off + len]` (len <= CHUNK); return the outputs.
    pub fn run(&mut self, inputs: &[&[T]], off: usize, len: usize) -> &[T] {
        self.dispatch(inputs, off, len, None);
        &self.rows[self.plan.out_row][..len]
    }

    /// Evaluate on `inputs[k][start..start + out.len()]` for every input k, writing `out`.
    pub fn eval_into(&mut self, inputs: &[&[T]], start: usize, out: &mut [T]) {
        for (ci, o) in out.chunks_mut(CHUNK).enumerate() {
            let len = o.len();
            self.dispatch(inputs, start + ci * CHUNK, len, Some(o));
        }
    }
}

/// Threads a call's split into tasks and steps is planned for, whatever rayon's pool holds: the
/// split decides how a float sum (the one behind a mean ULP) is grouped, so a split that depends
/// on the machine would let its last bits depend on it too. Enough tasks for this many threads
/// keep a smaller pool busy as well.
pub const SPLIT_THREADS: usize = 16;

/// Points per parallel task so that a batch yields enough tasks to keep every thread busy (of
/// `SPLIT_THREADS`).
pub fn block_size(n_points: usize, n_programs: usize) -> usize {
    let want_tasks = 4 * SPLIT_THREADS;
    let per_prog = want_tasks.div_ceil(n_programs.max(1));
    let block = n_points.div_ceil(per_prog.max(1));
    let block = block.clamp(CHUNK * 8, 1 << 16);
    block.div_ceil(CHUNK) * CHUNK
}

/// Work (instructions x points, all programs together) per step of a long call: a fraction of
/// a second, so that the caller can check for Ctrl-C between steps.
pub const STEP_WORK: usize = 1 << 28;

/// A call with less work than this (instructions x points) runs on the calling thread: tens of
/// microseconds of compiled code, less than handing tasks to rayon's workers costs on a busy
/// machine (a worker that slept has to be woken, and the caller waits for it).
pub const SERIAL_WORK: usize = 1 << 20;

/// `SERIAL_WORK` for a call whose programs all run as JIT kernels (several times faster per
/// instruction than the interpreter): up to about 30 us of kernel time on the calling thread.
/// On two busy cores, float32 library functions at 65536 points ran 1.4-3.6x faster serially
/// than in rayon's tasks (tanh 0.49 -> 0.34 ns/element, log2 0.98 -> 0.27).
pub const SERIAL_WORK_JIT: usize = 1 << 22;

/// How a call over `n` points is split: `block` points per parallel task and `step` points per
/// step (a multiple of `block`). `rows` is the number of independent rows (programs) each step
/// runs, `per_point` the work per point over all of them, `block` the usual task size. A call
/// whose work fits in `STEP_WORK` is one step with the usual blocks; a longer one gets steps of
/// about `STEP_WORK`, with blocks shrunk (down to `CHUNK`) so every thread still has a task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Steps {
    pub block: usize,
    pub step: usize,
}

impl Steps {
    pub fn plan(n: usize, rows: usize, per_point: usize, block: usize) -> Steps {
        let want = (STEP_WORK / per_point.max(1)).max(1);
        if want >= n {
            return Steps {
                block,
                step: n.max(1),
            };
        }
        // blocks no longer than a step, and small enough to give every thread a task (of
        // `SPLIT_THREADS`)
        let chunks = |points: usize| points.div_ceil(CHUNK).max(1).saturating_mul(CHUNK);
        let per_thread = want.saturating_mul(rows.max(1)) / SPLIT_THREADS;
        let block = chunks(per_thread).min(chunks(want)).min(block);
        Steps {
            block,
            step: want.div_ceil(block) * block,
        }
    }

    /// The consecutive point ranges covering `0..n`.
    pub fn ranges(self, n: usize) -> impl Iterator<Item = Range<usize>> {
        (0..n)
            .step_by(self.step)
            .map(move |s| s..(s + self.step).min(n))
    }
}

/// A batch of programs ready to run on inputs (each `inputs[k]` of the same length): float32
/// programs in the JIT's scope are compiled once, so that a long evaluation can run range by
/// range (see `Steps`) without compiling again.
pub struct Batch<'a, T: Float> {
    progs: &'a [Program],
    inputs: &'a [&'a [T]],
    jit: Option<Arc<JitBatch>>,
}

impl<'a, T: Float> Batch<'a, T> {
    pub fn new(progs: &'a [Program], inputs: &'a [&'a [T]]) -> Self {
        // float32 programs in the JIT's scope run as machine code; the rest are interpreted
        let jit = match inputs {
            [x] if T::as_f32(x).is_some() => Some(JitBatch::compile_cached(progs)),
            _ => None,
        };
        Batch { progs, inputs, jit }
    }

    /// Points per input.
    pub fn n_points(&self) -> usize {
        self.inputs.first().map_or(0, |x| x.len())
    }

    /// Total work per point: the live instructions of every program.
    pub fn work_per_point(&self) -> usize {
        self.progs.iter().map(|p| p.live.len()).sum()
    }

    /// The `SERIAL_WORK` threshold of this batch (`SERIAL_WORK_JIT` when every program is a
    /// JIT kernel).
    pub fn serial_work(&self) -> usize {
        match &self.jit {
            Some(j) if j.n_compiled() == self.progs.len() => SERIAL_WORK_JIT,
            _ => SERIAL_WORK,
        }
    }

    /// Evaluate program `pi` on the points `start..start + o.len()` into `o`.
    fn run_block(&self, pi: usize, kernel: Option<Kernel<'_>>, start: usize, o: &mut [T]) {
        if let (Some(k), Some(x), Some(y)) = (
            kernel,
            T::as_f32(&self.inputs[0][start..start + o.len()]),
            T::as_f32_mut(&mut *o),
        ) {
            k.run(x, y);
        } else {
            ChunkRunner::new(&self.progs[pi]).eval_into(self.inputs, start, o);
        }
    }

    /// Evaluate every program on the points `cols`, in tasks of `block` points. `out` is
    /// row-major (programs x `n_points()`); only its columns `cols` are written. Less work than
    /// `serial_work()` runs on the calling thread.
    pub fn run_columns(&self, out: &mut [T], cols: Range<usize>, block: usize) {
        let n = self.n_points();
        if n == 0 || cols.is_empty() {
            return;
        }
        if cols.len().saturating_mul(self.work_per_point()) < self.serial_work() {
            for (pi, row) in out.chunks_mut(n).enumerate() {
                let kernel = self.jit.as_ref().and_then(|j| j.get(pi));
                self.run_block(pi, kernel, cols.start, &mut row[cols.clone()]);
            }
            return;
        }
        out.par_chunks_mut(n).enumerate().for_each(|(pi, row)| {
            let kernel = self.jit.as_ref().and_then(|j| j.get(pi));
            row[cols.clone()]
                .par_chunks_mut(block)
                .enumerate()
                .for_each(|(bi, o)| self.run_block(pi, kernel, cols.start + bi * block, o));
        });
    }
}

/// Evaluate every program on every point. `out` is row-major (programs x points).
pub fn evaluate<T: Float>(progs: &[Program], inputs: &[&[T]], out: &mut [T]) {
    let batch = Batch::new(progs, inputs);
    let n = batch.n_points();
    batch.run_columns(out, 0..n, block_size(n, progs.len()));
}

#[cfg(test)]
// the programs below are exp2 polynomials whose coefficients are written as float32 prints
// them; 0.6931472 is one of them, not an approximation of ln 2
#[allow(clippy::approx_constant, clippy::excessive_precision)]
mod tests {
    use super::*;

    fn horner_exp2() -> Program {
        // v0 = fma(x, c0, c1); v1 = fma(v0, x, 1)
        Program::new(
            &[4, 4],
            &[0, 1, 2, 4, 0, 3],
            vec![0.24022651, 0.6931472, 1.0],
            1,
            5,
            false,
        )
        .unwrap()
    }

    #[test]
    fn evaluates_across_partial_chunks() {
        let p = horner_exp2();
        let x: Vec<f32> = (0..1000).map(|i| i as f32 / 1000.0).collect();
        let mut out = vec![0f32; x.len()];
        evaluate(std::slice::from_ref(&p), &[&x], &mut out);
        for (&xi, &y) in x.iter().zip(&out) {
            let c0 = 0.24022651f32;
            let c1 = 0.6931472f32;
            let want = xi.mul_add(c0, c1).mul_add(xi, 1.0);
            assert_eq!(y.to_bits(), want.to_bits());
        }
    }

    #[test]
    fn serial_and_parallel_calls_give_every_point() {
        // below the serial threshold the calling thread runs the call, above it rayon's tasks
        // do; both write every point of every row (two programs, float32 through the JIT where
        // there is one, float64 through the interpreter; each side of either threshold)
        let progs = [horner_exp2(), horner_exp2()];
        let per_point = 2 * horner_exp2().live.len();
        let x1: [&[f32]; 1] = [&[0.5]];
        let jit_all = Batch::new(&progs, &x1).serial_work() == SERIAL_WORK_JIT;
        assert_eq!(jit_all, crate::jit::jit_isa().is_some());
        let x2: [&[f64]; 1] = [&[0.5]];
        assert_eq!(Batch::new(&progs, &x2).serial_work(), SERIAL_WORK);
        for n in [
            100,
            SERIAL_WORK / per_point - 1,
            SERIAL_WORK / per_point + 777,
            SERIAL_WORK_JIT / per_point - 1,
            SERIAL_WORK_JIT / per_point + 777,
        ] {
            let x: Vec<f32> = (0..n).map(|i| (i % 4099) as f32 / 4099.0).collect();
            let mut out = vec![f32::NAN; 2 * n];
            evaluate(&progs, &[&x], &mut out);
            let x64: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
            let mut out64 = vec![f64::NAN; 2 * n];
            evaluate(&progs, &[&x64], &mut out64);
            for (i, &xi) in x.iter().enumerate() {
                let want = xi.mul_add(0.24022651, 0.6931472).mul_add(xi, 1.0);
                let want64 = f64::from(xi)
                    .mul_add(0.24022651, 0.6931472)
                    .mul_add(f64::from(xi), 1.0);
                for row in 0..2 {
                    assert_eq!(
                        out[row * n + i].to_bits(),
                        want.to_bits(),
                        "n = {n}, i = {i}"
                    );
                    assert_eq!(
                        out64[row * n + i].to_bits(),
                        want64.to_bits(),
                        "n = {n}, i = {i}"
                    );
                }
            }
        }
    }

    #[test]
    fn rows_are_recycled_after_last_use() {
        // chain of 6 fma: only the input row and two value rows are ever needed
        let args: Vec<i32> = (0..6)
            .flat_map(|i| [if i == 0 { 0 } else { 6 + i }, 0, 1 + i])
            .collect();
        let p = Program::new(&[4; 6], &args, vec![0.5; 6], 1, 12, false).unwrap();
        let plan = Plan::new(&p);
        assert_eq!(plan.n_rows, 3);
        let x: Vec<f32> = (0..700).map(|i| i as f32 * 1e-3).collect();
        let mut out = vec![0f32; x.len()];
        evaluate(std::slice::from_ref(&p), &[&x], &mut out);
        for (&xi, &y) in x.iter().zip(&out) {
            let mut v = xi.mul_add(xi, 0.5);
            for _ in 1..6 {
                v = v.mul_add(xi, 0.5);
            }
            assert_eq!(y.to_bits(), v.to_bits());
        }
    }

    #[test]
    fn steps_cover_the_points_in_blocks() {
        // work that fits in one step keeps the usual blocks and runs as one step
        let one = Steps::plan(10_000, 3, 20, 4096);
        assert_eq!(
            one,
            Steps {
                block: 4096,
                step: 10_000
            }
        );
        assert_eq!(one.ranges(10_000).collect::<Vec<_>>(), vec![0..10_000]);
        // long work is split into steps of about STEP_WORK, each a whole number of blocks
        let n = 3_000_001;
        let s = Steps::plan(n, 1, 20_000, 1 << 16);
        assert!(
            s.block.is_multiple_of(CHUNK) && s.block <= 1 << 16 && s.step.is_multiple_of(s.block)
        );
        assert!(s.step * 20_000 <= STEP_WORK + s.block * 20_000);
        // many programs: a step is still about STEP_WORK, not one block per program
        let m = Steps::plan(n, 16, 16 * 20_000, 1 << 16);
        assert!(
            m.step * 16 * 20_000 <= STEP_WORK + CHUNK * 16 * 20_000,
            "{m:?}"
        );
        let ranges: Vec<_> = s.ranges(n).collect();
        assert!(ranges.len() > 1);
        assert_eq!(ranges[0].start, 0);
        assert_eq!(ranges.last().unwrap().end, n);
        assert!(ranges.windows(2).all(|w| w[0].end == w[1].start));
        assert_eq!(Steps::plan(0, 1, 5, 4096).ranges(0).count(), 0);
    }

    #[test]
    fn columns_in_steps_equal_one_evaluation() {
        let progs = [
            horner_exp2(),
            Program::new(&[2], &[0, 0, 0], vec![], 1, 1, false).unwrap(),
        ];
        let x: Vec<f32> = (0..5000).map(|i| i as f32 * 1e-3 - 2.0).collect();
        let inputs: [&[f32]; 1] = [&x];
        let mut whole = vec![0f32; 2 * x.len()];
        evaluate(&progs, &inputs, &mut whole);
        let batch = Batch::new(&progs, &inputs);
        let mut parts = vec![f32::NAN; 2 * x.len()];
        let s = Steps {
            block: CHUNK,
            step: 3 * CHUNK,
        };
        for r in s.ranges(x.len()) {
            batch.run_columns(&mut parts, r, s.block);
        }
        let bits = |v: &[f32]| v.iter().map(|y| y.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&whole), bits(&parts));
    }

    #[test]
    fn all_isas_agree_bitwise() {
        let p = horner_exp2();
        let mut r = ChunkRunner::<f32>::new(&p);
        let xs: Vec<f32> = (0..CHUNK).map(|i| (i as f32 - 260.0) * 0.037).collect();
        let fast = r.run(&[&xs], 0, CHUNK).to_vec();
        r.isa = Isa::Baseline;
        let slow = r.run(&[&xs], 0, CHUNK).to_vec();
        assert_eq!(
            fast.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            slow.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
    }
}
