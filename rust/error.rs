//! ULP-error statistics of float32 programs: over given points with given references (a search
//! sample), or streamed over every float32 in an interval (exhaustive verification).

use std::ops::Range;

use rayon::prelude::*;

use crate::domain::{from_key, key_count, key_range};
use crate::errors::CoreError;
use crate::eval::{block_size, multiversion, ChunkRunner, Steps, CHUNK};
use crate::jit::{JitBatch, Kernel};
use crate::program::{check_inputs, Program};
use crate::reference::Target;
use crate::stats::Stats;
use crate::ulp::{ord32, point_error, round32, UNDECIDED_TOL};

/// Runs one float32 program over chunks of at most CHUNK points: its JIT kernel when it has
/// one, else the interpreter.
enum Runner<'a> {
    Jit(Kernel<'a>),
    Interpreter(ChunkRunner<f32>),
}

impl<'a> Runner<'a> {
    fn new(kernel: Option<Kernel<'a>>, p: &Program) -> Self {
        kernel.map_or_else(|| Runner::Interpreter(ChunkRunner::new(p)), Runner::Jit)
    }

    /// out = program(x), `x.len() == out.len() <= CHUNK`.
    fn run(&mut self, x: &[f32], out: &mut [f32]) {
        match self {
            Runner::Jit(k) => k.run(x, out),
            Runner::Interpreter(r) => out.copy_from_slice(r.run(&[x], 0, x.len())),
        }
    }
}

/// Error of every program over points `x` whose exact values are `reference` (float64) and whose
/// correctly rounded float32 values are `rounded`. Single-input programs only.
pub fn sample_errors(
    progs: &[Program],
    x: &[f32],
    reference: &[f64],
    rounded: &[f32],
) -> Vec<Stats> {
    let jit = JitBatch::compile(progs);
    let block = block_size(x.len(), progs.len());
    sample_errors_range(progs, &jit, (x, reference, rounded), 0..x.len(), block)
}

/// `sample_errors` over the points `cols` only (indices in the statistics count from 0, not
/// from `cols.start`, so the parts of a split call merge into the whole), in tasks of `block`
/// points, with the programs' kernels compiled by the caller in `jit`.
pub fn sample_errors_range(
    progs: &[Program],
    jit: &JitBatch,
    (x, reference, rounded): (&[f32], &[f64], &[f32]),
    cols: Range<usize>,
    block: usize,
) -> Vec<Stats> {
    let n_blocks = cols.len().div_ceil(block);
    progs
        .par_iter()
        .enumerate()
        .map(|(pi, p)| {
            let kernel = jit.get(pi);
            // the blocks' statistics merged in block order (the sum's order fixed, whatever
            // rayon's split)
            (0..n_blocks)
                .into_par_iter()
                .map(|bi| {
                    let mut runner = Runner::new(kernel, p);
                    let mut ys = [0f32; CHUNK];
                    let mut st = Stats::default();
                    let end = (cols.start + (bi + 1) * block).min(cols.end);
                    let mut off = cols.start + bi * block;
                    while off < end {
                        let len = CHUNK.min(end - off);
                        runner.run(&x[off..off + len], &mut ys[..len]);
                        let r = off..off + len;
                        fold_sample_chunk(
                            &mut st,
                            off as u64,
                            &ys[..len],
                            &reference[r.clone()],
                            &rounded[r],
                        );
                        off += len;
                    }
                    st
                })
                .collect::<Vec<Stats>>()
                .into_iter()
                .fold(Stats::default(), Stats::merge)
        })
        .collect()
}

/// Result of an exhaustive check: the statistics plus the inputs whose correct rounding the
/// float64 reference could not decide (to be settled in high precision by the caller).
pub struct Exhaustive {
    pub stats: Stats,
    pub undecided: Vec<f32>,
}

/// Points per exhaustive task (a multiple of CHUNK).
pub const EXHAUSTIVE_BLOCK: usize = 1 << 16;

/// Stream every float32 with key in [lo, hi] through the program and the reference.
/// `stats.argmax` counts from `lo`.
pub fn exhaustive_errors(p: &Program, target: Target, lo: i64, hi: i64) -> Exhaustive {
    let jit = JitBatch::compile(std::slice::from_ref(p));
    exhaustive_errors_with(p, jit.get(0), target, (lo, hi), EXHAUSTIVE_BLOCK)
}

/// `exhaustive_errors` with the program's kernel compiled by the caller (`None`: interpreted),
/// in tasks of `block` points (a multiple of CHUNK).
pub fn exhaustive_errors_with(
    p: &Program,
    kernel: Option<Kernel<'_>>,
    target: Target,
    (lo, hi): (i64, i64),
    block: usize,
) -> Exhaustive {
    let (mut stats, undecided) =
        exhaustive_errors_many(std::slice::from_ref(p), &[kernel], target, (lo, hi), block);
    Exhaustive {
        stats: stats.remove(0),
        undecided,
    }
}

/// The exhaustive errors of many programs in one pass over the points: per chunk, the inputs
/// from keys and the references (vectorised for exp2) once, then each program's outputs
/// (`kernels[i]`: its JIT kernel, `None`: the interpreter) and statistics, in one branch-free
/// pass when every value is finite and in float32's normal range (else point by point, as
/// `Stats::add` defines them). Returns each program's statistics (`argmax` counted from `lo`)
/// and the inputs whose rounding the float64 reference cannot decide, in increasing order
/// (they depend on the reference only, so they are the same for every program).
///
/// # Panics
/// If `kernels` and `progs` differ in length.
pub fn exhaustive_errors_many(
    progs: &[Program],
    kernels: &[Option<Kernel<'_>>],
    target: Target,
    (lo, hi): (i64, i64),
    block: usize,
) -> (Vec<Stats>, Vec<f32>) {
    assert_eq!(progs.len(), kernels.len(), "one kernel slot per program");
    #[allow(clippy::cast_possible_wrap)]
    let block = block as i64;
    let total = hi - lo + 1;
    let n_blocks = (total + block - 1) / block;
    let merge = |(mut a, mut ua): (Vec<Stats>, Vec<f32>), (b, ub): (Vec<Stats>, Vec<f32>)| {
        for (x, y) in a.iter_mut().zip(b) {
            *x = x.merge(y);
        }
        ua.extend(ub);
        (a, ua)
    };
    let (stats, mut undecided) = (0..n_blocks)
        .into_par_iter()
        .map(|bi| {
            let mut st = vec![Stats::default(); progs.len()];
            let mut und = Vec::new();
            let mut scratch = Vec::new();
            let mut runners: Vec<Runner<'_>> = progs
                .iter()
                .zip(kernels)
                .map(|(p, k)| Runner::new(*k, p))
                .collect();
            let start = lo + bi * block;
            let end = (start + block).min(hi + 1);
            let mut k = start;
            let mut xs = [0f32; CHUNK];
            let mut ys = [0f32; CHUNK];
            let mut refs = [0f64; CHUNK];
            while k < end {
                let len = (CHUNK as i64).min(end - k) as usize;
                for (i, xi) in xs[..len].iter_mut().enumerate() {
                    *xi = from_key(k + i as i64);
                }
                target.eval_many(&xs[..len], &mut refs[..len]);
                for (pi, (runner, s)) in runners.iter_mut().zip(st.iter_mut()).enumerate() {
                    runner.run(&xs[..len], &mut ys[..len]);
                    // the undecided inputs depend on the reference only: collected once
                    let u = if pi == 0 { &mut und } else { &mut scratch };
                    fold_chunk(s, u, (k - lo) as u64, &xs[..len], &ys[..len], &refs[..len]);
                    scratch.clear();
                }
                k += len as i64;
            }
            (st, und)
        })
        // merged in block order (the sum's order fixed, whatever rayon's split)
        .collect::<Vec<_>>()
        .into_iter()
        .fold((vec![Stats::default(); progs.len()], Vec::new()), merge);
    undecided.sort_by(f32::total_cmp);
    (stats, undecided)
}

/// Work per point of the error statistics and of a reference value, in instruction units
/// (only the size of a step depends on these).
pub const ERROR_WORK: usize = 8;
pub const REFERENCE_WORK: usize = 64;

/// The sample errors of a batch of float32 programs, measured in steps: `steps()` splits the
/// points into ranges, `run` measures one range and merges it into the total, `finish` returns
/// the statistics (as `sample_errors` over all points). The caller decides what happens
/// between steps (the Python binding releases the GIL for each and checks for Ctrl-C).
pub struct SampleScan<'a> {
    progs: &'a [Program],
    jit: &'a JitBatch,
    data: (&'a [f32], &'a [f64], &'a [f32]),
    steps: Steps,
    total: Vec<Stats>,
}

impl<'a> SampleScan<'a> {
    /// Checks the inputs (single-input programs, arrays of one nonzero length) and plans the
    /// steps; `jit` holds the programs' kernels.
    pub fn new(
        progs: &'a [Program],
        jit: &'a JitBatch,
        (x, reference, rounded): (&'a [f32], &'a [f64], &'a [f32]),
    ) -> Result<Self, CoreError> {
        check_inputs(progs, 1)?;
        if reference.len() != x.len() || rounded.len() != x.len() {
            return Err(CoreError::Mismatch(format!(
                "x, reference and rounded differ in length ({}, {}, {})",
                x.len(),
                reference.len(),
                rounded.len()
            )));
        }
        if x.is_empty() {
            return Err(CoreError::Mismatch(
                "no points to measure the error on".into(),
            ));
        }
        let n = x.len();
        let work: usize = progs.iter().map(|p| p.live.len() + ERROR_WORK).sum();
        let steps = Steps::plan(n, progs.len(), work, block_size(n, progs.len()));
        Ok(SampleScan {
            progs,
            jit,
            data: (x, reference, rounded),
            steps,
            total: vec![Stats::default(); progs.len()],
        })
    }

    /// The number of points (`steps().ranges(len())` covers them all).
    pub fn len(&self) -> usize {
        self.data.0.len()
    }

    /// Always false: `new` refuses an empty sample.
    pub fn is_empty(&self) -> bool {
        self.data.0.is_empty()
    }

    pub fn steps(&self) -> Steps {
        self.steps
    }

    /// Measures the points `cols` and merges them into the total.
    pub fn run(&mut self, cols: Range<usize>) {
        let part = sample_errors_range(self.progs, self.jit, self.data, cols, self.steps.block);
        for (t, p) in self.total.iter_mut().zip(part) {
            *t = t.merge(p);
        }
    }

    /// The statistics of each program over the ranges run.
    pub fn finish(self) -> Vec<Stats> {
        self.total
    }
}

/// An exhaustive check of float32 programs over every float32 in [a, b], in steps like
/// `SampleScan`: `run` scans a range of the interval's points (counted from `a`) for every
/// program in one pass (each chunk's references computed once) and merges it into the totals;
/// `finish` returns the statistics, the undecided inputs (sorted) and the inputs where the
/// errors are largest.
pub struct ExhaustiveScan<'a> {
    programs: &'a [Program],
    kernels: Vec<Option<Kernel<'a>>>,
    target: Target,
    lo: i64,
    count: usize,
    steps: Steps,
    total: Vec<Stats>,
    undecided: Vec<f32>,
}

impl<'a> ExhaustiveScan<'a> {
    /// Checks the program (one input) and the interval, and plans the steps; `kernel` is the
    /// program's JIT kernel (`None`: interpreted).
    pub fn new(
        program: &'a Program,
        kernel: Option<Kernel<'a>>,
        target: Target,
        (a, b): (f32, f32),
    ) -> Result<Self, CoreError> {
        ExhaustiveScan::many(std::slice::from_ref(program), vec![kernel], target, (a, b))
    }

    /// `new` for many programs (at least one; `kernels[i]` is program i's kernel).
    pub fn many(
        programs: &'a [Program],
        kernels: Vec<Option<Kernel<'a>>>,
        target: Target,
        (a, b): (f32, f32),
    ) -> Result<Self, CoreError> {
        if programs.is_empty() {
            return Err(CoreError::Mismatch("no programs to verify".into()));
        }
        if kernels.len() != programs.len() {
            return Err(CoreError::Mismatch(format!(
                "{} kernels for {} programs",
                kernels.len(),
                programs.len()
            )));
        }
        check_inputs(programs, 1)?;
        let (lo, hi) = key_range(a, b)?;
        let count = key_count(lo, hi)?;
        let work = programs
            .iter()
            .map(|p| p.live.len() + ERROR_WORK)
            .sum::<usize>()
            + REFERENCE_WORK;
        Ok(ExhaustiveScan {
            programs,
            kernels,
            target,
            lo,
            count,
            steps: Steps::plan(count, 1, work, EXHAUSTIVE_BLOCK),
            total: vec![Stats::default(); programs.len()],
            undecided: Vec::new(),
        })
    }

    /// The number of float32 values in the interval.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Always false: an interval holds at least one value.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn steps(&self) -> Steps {
        self.steps
    }

    /// Scans the points `k` (indices from the interval's first value) and merges them in.
    #[allow(clippy::cast_possible_wrap)] // at most 2^32 points
    pub fn run(&mut self, k: Range<usize>) {
        let (first, last) = (self.lo + k.start as i64, self.lo + k.end as i64 - 1);
        let (parts, undecided) = exhaustive_errors_many(
            self.programs,
            &self.kernels,
            self.target,
            (first, last),
            self.steps.block,
        );
        for (t, mut part) in self.total.iter_mut().zip(parts) {
            part.argmax = part.argmax.saturating_add(k.start as u64);
            *t = t.merge(part);
        }
        self.undecided.extend(undecided);
    }

    /// The statistics (`argmax` counted from the interval's first value), the input value
    /// where the error is largest, and the undecided inputs in increasing order (one program).
    pub fn finish(self) -> (Exhaustive, f32) {
        let (mut stats, mut argmax_x, undecided) = self.finish_many();
        let ex = Exhaustive {
            stats: stats.swap_remove(0),
            undecided,
        };
        (ex, argmax_x.swap_remove(0))
    }

    /// Every program's statistics and the input where its error is largest, and the undecided
    /// inputs (shared by all programs) in increasing order.
    pub fn finish_many(mut self) -> (Vec<Stats>, Vec<f32>, Vec<f32>) {
        let argmax_x = self
            .total
            .iter()
            .map(|st| {
                from_key(
                    self.lo
                        .saturating_add(i64::try_from(st.argmax).unwrap_or(0)),
                )
            })
            .collect();
        self.undecided.sort_by(f32::total_cmp);
        (self.total, argmax_x, self.undecided)
    }
}

/// Interleaved partial sums and maxima of the error folds (`fold_lanes` here, the tuner's
/// `constfit::fold32`): eight float64 lanes fill a 512-bit register and let the loops vectorise.
pub(crate) const LANES: usize = 8;

multiversion! {
    /// Fold one chunk of an exhaustive scan (point i has index `first + i`) into `st`, collecting
    /// undecided inputs (`fold_lanes`; on AVX-512 its 64-bit integer min, max and compares keep
    /// the fold in vector registers).
    fn fold_chunk(
        st: &mut Stats,
        und: &mut Vec<f32>,
        first: u64,
        xs: &[f32],
        ys: &[f32],
        refs: &[f64],
    ) => fold_lanes::<false>(st, und, first, xs, ys, refs, &[]);
}

multiversion! {
    /// Fold one chunk of a sample (point i has index `first + i`, its correctly rounded value is
    /// `rounded[i]`, every rounding decided) into `st` (`fold_lanes`).
    fn fold_sample_chunk(st: &mut Stats, first: u64, ys: &[f32], refs: &[f64], rounded: &[f32])
        => fold_lanes::<true>(st, &mut Vec::new(), first, &[], ys, refs, rounded);
}

/// `Stats::add` of every point of a chunk (point i has index `first + i`) into `st`, but with the
/// chunk's sum of errors taken in `LANES` interleaved partial sums (added in lane order): one
/// branch-free pass in lanes where the outputs are finite and the references' float32 roundings
/// normal numbers, else `Stats::add` point by point (the sum in point order). `SAMPLE`: the
/// correct roundings are the caller's `rounded`, all decided; else (an exhaustive scan, `xs` its
/// inputs) each reference is rounded here (`round32`) and the inputs whose rounding float64
/// cannot decide are added to `und`.
#[inline(always)]
#[allow(clippy::needless_bitwise_bool)] // `&` on bools keeps the lane loop branch-free (vectorised)
fn fold_lanes<const SAMPLE: bool>(
    st: &mut Stats,
    und: &mut Vec<f32>,
    first: u64,
    xs: &[f32],
    ys: &[f32],
    refs: &[f64],
    rounded: &[f32],
) {
    let n = ys.len();
    let refs = &refs[..n];
    let rounded = if SAMPLE { &rounded[..n] } else { rounded };
    let mut sum = [0f64; LANES];
    let mut max = [-1f64; LANES];
    // where each lane's maximum first occurs (its point index in the chunk)
    let mut at = [0u64; LANES];
    let mut n_correct = [0u64; LANES];
    let mut n_undecided = [0u64; LANES];
    let mut max_dist = [0u64; LANES];
    let mut abnormal = [false; LANES];
    // `given`: the caller's rounding (a sample; read only then)
    let mut lane = |l: usize, i: usize, yv: f32, rv: f64, given: f32| {
        #[allow(clippy::cast_possible_truncation)]
        let (cr, undecided) = if SAMPLE {
            (given, false)
        } else {
            (rv as f32, undecided_normal(rv))
        };
        let a = rv.abs();
        abnormal[l] |=
            !(yv.is_finite() & cr.is_finite() & (MIN_NORMAL32..MAX_ROUNDS_FINITE).contains(&a));
        // 1 / ulp32(rv) without `inv_ulp32`'s clamp, which only acts outside float32's normal
        // range, where the chunk is redone point by point
        let inv_ulp = f64::from_bits((2069u64 << 52).wrapping_sub(rv.to_bits() & EXP_BITS));
        let e = (f64::from(yv) - rv).abs() * inv_ulp;
        sum[l] += e;
        at[l] = if e > max[l] { i as u64 } else { at[l] };
        max[l] = if e > max[l] { e } else { max[l] };
        let d = ord32(yv).abs_diff(ord32(cr));
        n_undecided[l] += u64::from(undecided);
        n_correct[l] += u64::from(!undecided & (d == 0));
        let d = if undecided { 0 } else { d };
        max_dist[l] = if d > max_dist[l] { d } else { max_dist[l] };
    };
    // an exhaustive scan has no roundings to pass: the outputs stand in (never read)
    let (yc, rc) = (ys.chunks_exact(LANES), refs.chunks_exact(LANES));
    let cc = if SAMPLE { rounded } else { ys }.chunks_exact(LANES);
    let (y_rest, r_rest, c_rest) = (yc.remainder(), rc.remainder(), cc.remainder());
    let mut base = 0;
    for ((y, r), c) in yc.zip(rc).zip(cc) {
        for l in 0..LANES {
            lane(l, base + l, y[l], r[l], c[l]);
        }
        base += LANES;
    }
    for (l, ((&yv, &rv), &cv)) in y_rest.iter().zip(r_rest).zip(c_rest).enumerate() {
        lane(l, base + l, yv, rv, cv);
    }
    if abnormal.iter().any(|&b| b) {
        for i in 0..n {
            if SAMPLE {
                st.add(
                    first + i as u64,
                    point_error(ys[i], refs[i], rounded[i]),
                    true,
                );
            } else {
                let (cr, undecided) = round32(refs[i]);
                st.add(
                    first + i as u64,
                    point_error(ys[i], refs[i], cr),
                    !undecided,
                );
                if undecided {
                    und.push(xs[i]);
                }
            }
        }
        return;
    }
    let chunk_max = max.iter().copied().fold(-1.0, f64::max);
    if chunk_max > st.max_ulp {
        // indices rise through a block, so the first occurrence is the one `Stats` keeps: the
        // smallest of the lanes' first occurrences of the chunk's maximum
        let i = (0..LANES)
            .filter(|&l| max[l] == chunk_max)
            .map(|l| at[l])
            .min()
            .expect("the maximum occurs in a lane");
        st.max_ulp = chunk_max;
        st.argmax = first + i;
    }
    st.n += n as u64;
    st.sum_ulp += sum.iter().sum::<f64>();
    st.n_correct += n_correct.iter().sum::<u64>();
    let n_und: u64 = n_undecided.iter().sum();
    st.n_undecided += n_und;
    st.max_distance = st
        .max_distance
        .max(max_dist.iter().copied().max().unwrap_or(0));
    if n_und > 0 {
        for i in 0..n {
            if undecided_normal(refs[i]) {
                und.push(xs[i]);
            }
        }
    }
}

/// The exponent field of a float64.
const EXP_BITS: u64 = 0x7ff0_0000_0000_0000;

/// `round32`'s undecided test for a reference whose float32 rounding is a normal number, where
/// float32 keeps the top 24 of float64's 53 significand bits.
#[inline(always)]
fn undecided_normal(r: f64) -> bool {
    (r.to_bits() & ((1u64 << 29) - 1)).abs_diff(1u64 << 28) <= UNDECIDED_TOL
}

/// Smallest normal float32, and the float64 threshold at and above which rounding to float32
/// overflows (`f32::MAX` plus half an ulp).
const MIN_NORMAL32: f64 = 1.1754943508222875e-38;
const MAX_ROUNDS_FINITE: f64 = 3.4028235677973366e38;

/// float64 reference values and their float32 rounding, flagging undecidable roundings.
pub fn reference_values(target: Target, x: &[f32]) -> (Vec<f64>, Vec<f32>, Vec<bool>) {
    let (mut r, mut c, mut u) = (
        vec![0f64; x.len()],
        vec![0f32; x.len()],
        vec![false; x.len()],
    );
    reference_values_into(target, x, (&mut r, &mut c, &mut u));
    (r, c, u)
}

/// `reference_values` written into caller-provided slices of `x`'s length.
pub fn reference_values_into(
    target: Target,
    x: &[f32],
    (r, c, u): (&mut [f64], &mut [f32], &mut [bool]),
) {
    r.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK))
        .for_each(|(o, xs)| target.eval_many(xs, o));
    r.par_iter()
        .zip(c.par_iter_mut().zip(u.par_iter_mut()))
        .for_each(|(&v, (ci, ui))| (*ci, *ui) = round32(v));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity_mul_one() -> Program {
        Program::new(&[2], &[0, 1, 0], vec![1.0], 1, 2, false).unwrap()
    }

    /// The points `i / scale`, `i` in 1..=n, with their exp2 references and correct roundings.
    fn exp2_sample(n: u16, scale: f32) -> (Vec<f32>, Vec<f64>, Vec<f32>) {
        let x: Vec<f32> = (1..=n).map(|i| f32::from(i) / scale).collect();
        let (r, c, _) = reference_values(Target::Exp2, &x);
        (x, r, c)
    }

    /// The one program's statistics over a sample.
    fn sample_stats(p: &Program, (x, r, c): &(Vec<f32>, Vec<f64>, Vec<f32>)) -> Stats {
        sample_errors(std::slice::from_ref(p), x, r, c)[0]
    }

    /// `p` against exp2 over every float32 in [0.5, 0.5001], in one call, with its key range.
    fn exhaustive_exp2(p: &Program) -> (Exhaustive, (i64, i64)) {
        let (lo, hi) = key_range(0.5, 0.5001).unwrap();
        (exhaustive_errors(p, Target::Exp2, lo, hi), (lo, hi))
    }

    /// A scan in parts agrees with the scan in one: the sum to rounding, the rest exactly.
    fn assert_same_stats(one: &Stats, parts: &Stats) {
        assert!((one.sum_ulp - parts.sum_ulp).abs() <= 1e-12 * one.sum_ulp);
        assert_eq!(
            (one.max_ulp, one.argmax, one.n, one.n_correct),
            (parts.max_ulp, parts.argmax, parts.n, parts.n_correct)
        );
    }

    #[test]
    fn exact_program_has_zero_error_exhaustively() {
        // sqrt(x) computed by the sqrt op is correctly rounded: 0.5 ulp at most, all correct.
        let p = Program::new(&[7], &[0, 0, 0], vec![], 1, 1, false).unwrap();
        let (lo, hi) = key_range(1.0, 1.001).unwrap();
        let ex = exhaustive_errors(&p, Target::Sqrt, lo, hi);
        assert_eq!(ex.stats.n, (hi - lo + 1) as u64);
        assert!(ex.stats.max_ulp <= 0.5);
        assert_eq!(ex.stats.n_correct + ex.stats.n_undecided, ex.stats.n);
        assert_eq!(ex.stats.max_distance, 0);
    }

    /// A chunk of outputs (`ys`, within 2 float32 steps) and references near float32 values,
    /// some on (or within the tolerance of) a midpoint; inputs 0, 1, ...
    fn near_midpoints() -> (Vec<f32>, Vec<f32>, Vec<f64>) {
        let mut xs = Vec::new();
        let mut ys = Vec::new();
        let mut refs = Vec::new();
        let mut s: u64 = 7;
        for i in 0..CHUNK {
            s = s
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let r = 1.0 + (s >> 11) as f64 / (1u64 << 53) as f64 * 3.0;
            let r = match i % 5 {
                0 => f64::from_bits((r.to_bits() & !((1u64 << 29) - 1)) | (1 << 28)), // a midpoint
                1 => f64::from_bits((r.to_bits() & !((1u64 << 29) - 1)) | ((1 << 28) + 200)),
                _ => r,
            };
            #[allow(clippy::cast_possible_truncation)]
            let y = f32::from_bits((r as f32).to_bits().wrapping_add((s >> 60) as u32 % 3));
            xs.push(i as f32);
            ys.push(y);
            refs.push(r);
        }
        (xs, ys, refs)
    }

    #[test]
    fn fast_fold_matches_point_by_point_stats() {
        let (xs, mut ys, mut refs) = near_midpoints();
        let compare = |ys: &[f32], refs: &[f64]| {
            let mut fast = Stats::default();
            let mut fast_und = Vec::new();
            fold_chunk(&mut fast, &mut fast_und, 10, &xs, ys, refs);
            let mut slow = Stats::default();
            let mut slow_und = Vec::new();
            for i in 0..CHUNK {
                let (cr, undecided) = round32(refs[i]);
                slow.add(10 + i as u64, point_error(ys[i], refs[i], cr), !undecided);
                if undecided {
                    slow_und.push(xs[i]);
                }
            }
            assert!((fast.sum_ulp - slow.sum_ulp).abs() <= 1e-12 * slow.sum_ulp);
            fast.sum_ulp = slow.sum_ulp;
            assert_eq!(fast, slow);
            assert_eq!(fast_und, slow_und);
            slow
        };
        let slow = compare(&ys, &refs);
        assert!(
            slow.n_undecided >= (CHUNK / 5) as u64 && slow.n_correct > 0 && slow.max_distance == 2
        );
        // a NaN output and a subnormal reference send the chunk down the point-by-point path
        ys[3] = f32::NAN;
        refs[7] = 1e-40;
        let slow = compare(&ys, &refs);
        assert!(slow.max_ulp.is_infinite() && slow.n_nonfinite == 1);
    }

    /// `fold_sample_chunk` is `Stats::add` point by point (with the caller's roundings, all
    /// decided) but for the order of the sum: `LANES` partial sums, added in lane order.
    #[test]
    fn sample_fold_matches_point_by_point_stats() {
        let (_, mut ys, mut refs) = near_midpoints();
        let compare = |ys: &[f32], refs: &[f64]| {
            let rounded: Vec<f32> = refs.iter().map(|&r| round32(r).0).collect();
            let mut fast = Stats::default();
            fold_sample_chunk(&mut fast, 10, ys, refs, &rounded);
            let mut slow = Stats::default();
            let mut lanes = [0f64; LANES];
            for i in 0..CHUNK {
                let e = point_error(ys[i], refs[i], rounded[i]);
                slow.add(10 + i as u64, e, true);
                if e.ulps.is_finite() {
                    lanes[i % LANES] += e.ulps;
                }
            }
            let lane_order: f64 = lanes.iter().sum();
            assert!((fast.sum_ulp - slow.sum_ulp).abs() <= 1e-12 * slow.sum_ulp);
            let sum = fast.sum_ulp;
            fast.sum_ulp = slow.sum_ulp;
            assert_eq!(fast, slow);
            (slow, sum, lane_order)
        };
        let (slow, sum, lane_order) = compare(&ys, &refs);
        assert_eq!(sum, lane_order);
        assert!(slow.n_correct > 0 && slow.max_distance == 2 && slow.n_undecided == 0);
        // the largest error three times, first in a higher lane (37 % 8 = 5) than a later one
        // (100 % 8 = 4)
        for i in [100, 37, 301] {
            refs[i] = 1.5;
            #[allow(clippy::cast_possible_truncation)]
            let y = (1.5 * (1.0 + 1e-4)) as f32;
            ys[i] = y;
        }
        let (slow, _, _) = compare(&ys, &refs);
        assert_eq!(slow.argmax, 10 + 37);
        // a NaN output and a subnormal reference send the chunk down the point-by-point path
        ys[3] = f32::NAN;
        refs[7] = 1e-40;
        let (slow, _, _) = compare(&ys, &refs);
        assert!(slow.max_ulp.is_infinite() && slow.n_nonfinite == 1);
    }

    /// Both lane folds against `Stats::add` point by point on random runs of chunks into one
    /// `Stats`: lengths 0..=512 (remainder lanes), an offset, maxima repeated within and across
    /// chunks, and special values (NaN, infinities, signed zeros, references that round to
    /// infinity or below the normal range, `f32::MAX` outputs). Every field but the sum equal;
    /// the sum to rounding; the same undecided inputs.
    #[test]
    fn lane_folds_are_stats_add_on_random_chunks() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            state >> 11
        };
        let specials_r = [
            f64::NAN,
            f64::INFINITY,
            -0.0,
            0.0,
            3.5e38,
            MAX_ROUNDS_FINITE,
            1e-40,
            1e-38,
        ];
        let specials_y = [
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            -0.0,
            f32::MAX,
            1e-40,
        ];
        for trial in 0..300 {
            let chunks = 1 + next() as usize % 4;
            let first = next() % 1000;
            let (mut fast, mut slow) = (Stats::default(), Stats::default());
            let (mut fast_s, mut slow_s) = (Stats::default(), Stats::default());
            let (mut und_fast, mut und_slow) = (Vec::new(), Vec::new());
            let mut index = first;
            for _ in 0..chunks {
                let len = next() as usize % (CHUNK + 1);
                let mut xs = Vec::with_capacity(len);
                let mut ys = Vec::with_capacity(len);
                let mut refs = Vec::with_capacity(len);
                for i in 0..len {
                    let r =
                        0.5 + (next() % 1000) as f64 / 300.0 * (1.0 + 1e-9 * (next() % 7) as f64);
                    #[allow(clippy::cast_possible_truncation)]
                    let mut y = (r * (1.0 + 1e-7 * ((next() % 5) as f64 - 2.0))) as f32;
                    let mut r = r;
                    if trial % 3 == 0 && next() % 40 == 0 {
                        r = specials_r[next() as usize % specials_r.len()];
                    }
                    if trial % 3 == 1 && next() % 40 == 0 {
                        y = specials_y[next() as usize % specials_y.len()];
                    }
                    if next() % 50 == 0 {
                        (r, y) = (2.0, 2.5); // the same large error again
                    }
                    xs.push(i as f32);
                    ys.push(y);
                    refs.push(r);
                }
                let rounded: Vec<f32> = refs.iter().map(|&r| round32(r).0).collect();
                fold_chunk(&mut fast, &mut und_fast, index, &xs, &ys, &refs);
                fold_sample_chunk(&mut fast_s, index, &ys, &refs, &rounded);
                for i in 0..len {
                    let (cr, undecided) = round32(refs[i]);
                    let at = index + i as u64;
                    slow.add(at, point_error(ys[i], refs[i], cr), !undecided);
                    slow_s.add(at, point_error(ys[i], refs[i], rounded[i]), true);
                    if undecided {
                        und_slow.push(xs[i]);
                    }
                }
                index += len as u64;
            }
            for (mut f, s) in [(fast, slow), (fast_s, slow_s)] {
                let close = f.sum_ulp == s.sum_ulp
                    || (f.sum_ulp - s.sum_ulp).abs() <= 1e-12 * s.sum_ulp.abs();
                assert!(close, "trial {trial}: {} vs {}", f.sum_ulp, s.sum_ulp);
                f.sum_ulp = s.sum_ulp;
                assert!(
                    f == s || (f.max_ulp.is_nan() && s.max_ulp.is_nan()),
                    "trial {trial}: {f:?} vs {s:?}"
                );
            }
            assert_eq!(und_fast, und_slow, "trial {trial}");
        }
    }

    /// Statistics, the float sum behind the mean included, do not depend on how many threads
    /// run them: the split into tasks and steps is planned for `SPLIT_THREADS` and blocks merge
    /// in their order. The errors are large (sums past 2^24 ulps round), the exhaustive interval
    /// long enough for several steps.
    #[test]
    fn statistics_are_the_same_bits_on_any_thread_count() {
        let p = identity_mul_one();
        let n = 50_000u32;
        let x: Vec<f32> = (0..n).map(|i| 1.0 + i as f32 / 3e5).collect();
        let r: Vec<f64> = x
            .iter()
            .zip(0..n)
            .map(|(&v, i)| f64::from(v) * (1.0 + 1e-3 * (f64::from(i * 37 % 101) - 50.0) / 7.3))
            .collect();
        let c: Vec<f32> = r.iter().map(|&v| round32(v).0).collect();
        let on = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let s = sample_errors(std::slice::from_ref(&p), &x, &r, &c)[0];
                let jit = JitBatch::compile(std::slice::from_ref(&p));
                let mut scan =
                    ExhaustiveScan::new(&p, jit.get(0), Target::Exp2, (0.5, 1.0)).unwrap();
                let steps = scan.steps();
                for k in steps.ranges(scan.len()) {
                    scan.run(k);
                }
                let (e, _) = scan.finish();
                (
                    s,
                    e.stats,
                    s.sum_ulp.to_bits(),
                    e.stats.sum_ulp.to_bits(),
                    steps,
                )
            })
        };
        let one = on(1);
        assert!(one.0.sum_ulp > f64::from(1u32 << 24) && one.1.sum_ulp > f64::from(1u32 << 24));
        assert!(one.4.step < (1 << 23), "one step: {:?}", one.4);
        for threads in [2, 3, 8] {
            for _ in 0..3 {
                assert_eq!(on(threads), one, "{threads} threads");
            }
        }
    }

    #[test]
    fn split_scans_merge_into_the_whole() {
        let p = identity_mul_one();
        // sample errors over ranges merge into the statistics of the whole sample
        let sample = exp2_sample(5000, 700.0);
        let whole = sample_stats(&p, &sample);
        let jit = JitBatch::compile(std::slice::from_ref(&p));
        let (x, r, c) = &sample;
        let merged = [0..1000, 1000..3072, 3072..5000]
            .into_iter()
            .map(|k| sample_errors_range(std::slice::from_ref(&p), &jit, (x, r, c), k, CHUNK)[0])
            .fold(Stats::default(), Stats::merge);
        assert_same_stats(&whole, &merged);
        // an exhaustive scan in parts (argmax shifted by each part's offset) equals one scan
        let (one, (lo, hi)) = exhaustive_exp2(&p);
        let mid = lo + (hi - lo) / 3;
        let a = exhaustive_errors_with(&p, jit.get(0), Target::Exp2, (lo, mid), CHUNK);
        let mut b = exhaustive_errors_with(&p, jit.get(0), Target::Exp2, (mid + 1, hi), CHUNK);
        b.stats.argmax += (mid + 1 - lo) as u64;
        assert_same_stats(&one.stats, &a.stats.merge(b.stats));
    }

    #[test]
    fn stepped_scans_equal_one_call() {
        let p = identity_mul_one();
        let jit = JitBatch::compile(std::slice::from_ref(&p));
        // exhaustive: steps of a few chunks, in order, give the one-call result
        let mut scan = ExhaustiveScan::new(&p, jit.get(0), Target::Exp2, (0.5, 0.5001)).unwrap();
        scan.steps = Steps {
            block: CHUNK,
            step: 3 * CHUNK,
        };
        let n = scan.len();
        for k in scan.steps().ranges(n) {
            scan.run(k);
        }
        let (stepped, argmax_x) = scan.finish();
        let (one, (lo, _)) = exhaustive_exp2(&p);
        assert_same_stats(&one.stats, &stepped.stats);
        assert_eq!(one.undecided, stepped.undecided);
        assert_eq!(argmax_x, from_key(lo + one.stats.argmax as i64));
        // sample: the same
        let sample = exp2_sample(5000, 700.0);
        let (x, r, c) = &sample;
        let progs = std::slice::from_ref(&p);
        let mut scan = SampleScan::new(progs, &jit, (x, r, c)).unwrap();
        scan.steps = Steps {
            block: CHUNK,
            step: 2 * CHUNK,
        };
        for k in scan.steps().ranges(x.len()) {
            scan.run(k);
        }
        assert_same_stats(&sample_stats(&p, &sample), &scan.finish()[0]);
    }

    #[test]
    fn scans_refuse_bad_input_with_core_errors() {
        let p = identity_mul_one();
        let jit = JitBatch::compile(std::slice::from_ref(&p));
        let bad = |r: Result<ExhaustiveScan<'_>, CoreError>| r.err().unwrap();
        assert!(matches!(
            bad(ExhaustiveScan::new(&p, None, Target::Exp2, (1.0, 0.0))),
            CoreError::Domain(_)
        ));
        assert!(matches!(
            bad(ExhaustiveScan::new(&p, None, Target::Exp2, (f32::NAN, 0.0))),
            CoreError::Domain(_)
        ));
        let two = Program::new(&[0], &[0, 1, 0], vec![], 2, 2, false).unwrap();
        assert!(matches!(
            bad(ExhaustiveScan::new(&two, None, Target::Exp2, (0.0, 1.0))),
            CoreError::Mismatch(_)
        ));
        let progs = std::slice::from_ref(&p);
        let e = SampleScan::new(progs, &jit, (&[1.0], &[1.0, 2.0], &[1.0]))
            .err()
            .unwrap();
        assert!(matches!(e, CoreError::Mismatch(ref m) if m.contains("differ in length")));
        let e = SampleScan::new(progs, &jit, (&[], &[], &[])).err().unwrap();
        assert!(matches!(e, CoreError::Mismatch(ref m) if m.contains("no points")));
    }

    #[test]
    fn one_pass_over_many_programs_equals_one_pass_each() {
        // x * 1, an interpreted program (no JIT kernel) and a degree-2 fit of exp2
        let progs = [
            identity_mul_one(),
            Program::new(&[2], &[0, 1, 0], vec![1.0], 1, 2, false).unwrap(),
            Program::new(
                &[4, 4],
                &[0, 1, 2, 4, 0, 3],
                vec![0.34, 0.66, 1.0],
                1,
                5,
                false,
            )
            .unwrap(),
        ];
        let jit = JitBatch::compile(&progs);
        let mut kernels: Vec<Option<Kernel<'_>>> = (0..progs.len()).map(|i| jit.get(i)).collect();
        kernels[1] = None;
        let mut scan =
            ExhaustiveScan::many(&progs, kernels.clone(), Target::Exp2, (0.5, 0.5001)).unwrap();
        scan.steps = Steps {
            block: CHUNK,
            step: 5 * CHUNK,
        };
        let n = scan.len();
        for k in scan.steps().ranges(n) {
            scan.run(k);
        }
        let (stats, argmax_x, undecided) = scan.finish_many();
        let (lo, _) = key_range(0.5, 0.5001).unwrap();
        for (i, p) in progs.iter().enumerate() {
            let mut one = ExhaustiveScan::new(p, kernels[i], Target::Exp2, (0.5, 0.5001)).unwrap();
            for k in one.steps().ranges(n) {
                one.run(k);
            }
            let (ex, x) = one.finish();
            assert_same_stats(&ex.stats, &stats[i]);
            assert_eq!(ex.stats.n_undecided, stats[i].n_undecided);
            assert_eq!(ex.stats.max_distance, stats[i].max_distance);
            assert_eq!(x, argmax_x[i]);
            assert_eq!(ex.undecided, undecided);
            assert_eq!(x, from_key(lo + ex.stats.argmax as i64));
        }
        assert!(stats[2].max_ulp < stats[0].max_ulp);
        assert!(matches!(
            ExhaustiveScan::many(&[], Vec::new(), Target::Exp2, (0.0, 1.0)).err(),
            Some(CoreError::Mismatch(_))
        ));
        assert!(matches!(
            ExhaustiveScan::many(&progs, Vec::new(), Target::Exp2, (0.0, 1.0)).err(),
            Some(CoreError::Mismatch(_))
        ));
    }

    #[test]
    fn identity_is_far_from_exp2() {
        let st = sample_stats(&identity_mul_one(), &exp2_sample(1000, 1000.0));
        assert_eq!(st.n, 1000);
        // worst at x near 0 where exp2(x) = 1 and x is tiny: ~2^23 ulps of 1.
        assert!(st.max_ulp > 8.0e6, "{}", st.max_ulp);
        assert_eq!(st.argmax, 0);
        assert_eq!(st.n_correct, 0);
    }
}
