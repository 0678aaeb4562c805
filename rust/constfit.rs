//! Constant fitting of float32 programs, entirely in the core: one call fits many programs (in
//! parallel over programs), each through the two stages `pysearch/search/constants.py`
//! describes.
//!
//! 1. Real-valued fit in float64 `fit` semantics (`fit.rs`) on the fit points, minimising the
//!    maximum error in units of ulp(f(x)): a program that is affine in its constants (found
//!    numerically: exact columns and two probe vectors) gets Lawson's reweighted least squares;
//!    any other gets three rounds of reweighted Levenberg-Marquardt with the exact forward-mode
//!    Jacobian, then Nelder-Mead on the maximum error. Programs with an op that has no
//!    derivative (`fit::jacobian_supported`) get Nelder-Mead only: no finite differences.
//! 2. float32 tuning: the constants rounded to float32 move by 1, 2, 4, 8, 32 float32 steps,
//!    coordinate-descent style, keeping the best move while it lowers (max ULP, mean ULP) on the
//!    search sample, measured with the interpreter (`eval.rs`, bit-exact with the JIT). A move
//!    whose error on the incumbent's worst points already exceeds the best maximum cannot win
//!    and is dropped without a full evaluation (the result is the one a full evaluation of
//!    every move gives).
//!
//! Everything is deterministic: a result depends only on the program and the data.

use rayon::prelude::*;

use crate::domain::{from_key, key, KEY_MAX, KEY_MIN};
use crate::error::LANES;
use crate::eval::{multiversion, ChunkRunner, CHUNK};
use crate::fit::{self, jacobian_supported};
use crate::program::Program;
use crate::ulp::{inv_ulp32, point_error};

/// Programs fitted per step of a long call (the Python binding checks for Ctrl-C between
/// steps): a search generation's batch (tens of programs, well under a second) is one step, so
/// no worker waits at a step boundary for the slowest fit of a small step.
pub const PROGRAMS_PER_STEP: usize = 64;
/// float32 steps tried for each constant in a tuning round (up and down).
pub const TUNE_STEPS: [i64; 5] = [1, 2, 4, 8, 32];
/// Residual (in ulps) standing for a non-finite one in the real-valued fit.
const BIG: f64 = 1e12;
/// Incumbent's worst points a tuning move is first measured on.
const PROBE: usize = 64;
/// Largest relative misfit of the affine model on a probe vector (rounding only, for a program
/// that is affine; tiny constants make a nonlinear term small, so the bar is low).
const AFFINE_TOL: f64 = 1e-11;
/// Lawson iterations.
const LAWSON_ITERS: usize = 60;
/// Nelder-Mead stops once its simplex values agree to this fraction of the best (or to 1e-3
/// ulps): within 1e-4 of a 1e6-ulp error is as good as it gets for the search's log-scale
/// objective, while near 1 ulp the absolute 1e-3 decides.
const NM_REL_TOL: f64 = 1e-4;
/// Most constants Nelder-Mead polishes (its simplex grows with the count).
const NM_MAX_CONSTS: usize = 12;

/// The points constants are fitted on (one-input programs).
#[derive(Clone, Copy)]
pub struct FitData<'a> {
    /// Fit points (float64 copies of float32 inputs where f is finite), their f and ulp(f).
    pub x_fit: &'a [f64],
    pub f_fit: &'a [f64],
    pub scale_fit: &'a [f64],
    /// The search sample (float32), f in float64 and f correctly rounded.
    pub x: &'a [f32],
    pub reference: &'a [f64],
    pub rounded: &'a [f32],
}

/// Limits of one fit.
#[derive(Clone, Copy, Debug)]
pub struct FitOptions {
    /// Function evaluations the general (non-affine) real-valued fit may spend.
    pub max_evals: usize,
    /// float32 tuning runs only when the real-valued fit is within this many ulps.
    pub tune_below: f64,
    /// Most tuning rounds.
    pub tune_rounds: usize,
}

/// What fitting one program gave.
#[derive(Clone, Debug)]
pub struct FitOutcome {
    /// The constants (float32 values when `fitted`, else the program's own).
    pub consts: Vec<f64>,
    /// Whether the constants changed (never worse on the sample than the program's own).
    pub fitted: bool,
    pub affine: bool,
    /// Max error (ulps) of the real-valued fit on the fit points.
    pub fit_error: f64,
    /// float32 max ULP error on the search sample of the returned constants.
    pub max_ulp: f64,
}

/// Fits every program of `progs` (in parallel over programs, each program a task of its own:
/// fits take from a millisecond to tens of them, and rayon's default split of a short slice into
/// a few runs per thread would leave a thread idle while the other finishes its run).
pub fn fit_programs(progs: &[Program], data: &FitData, opts: FitOptions) -> Vec<FitOutcome> {
    let sample = Sample::new(data);
    progs
        .par_iter()
        .with_max_len(1)
        .map(|p| fit_with(p, &sample, opts))
        .collect()
}

/// float32 tuning (`tune`) of every program's own constants, rounded to float32 (in parallel
/// over programs): (constants, max ULP, mean ULP) each.
pub fn tune_programs(
    progs: &[Program],
    data: &FitData,
    rounds: usize,
    free: Option<&[usize]>,
) -> Vec<(Vec<f64>, f64, f64)> {
    let sample = Sample::new(data);
    progs
        .par_iter()
        .with_max_len(1)
        .map(|p| tune_with(p, round32(&p.consts), &sample, rounds, free))
        .collect()
}

/// The search sample with what every float32 score of a call reads besides it: per point,
/// 1 / ulp32(f(x)) where f(x) and its rounding are finite (the error of a finite output there
/// is |y - f(x)| times it, `point_error`'s first case, without recomputing the ulp), NaN where
/// `point_error` has to decide.
struct Sample<'a> {
    data: &'a FitData<'a>,
    inv_ulp: Vec<f64>,
    /// 1 / `scale_fit` where every scale is a power of two (ulps are): dividing by a power of
    /// two and multiplying by its reciprocal round the same exact value, so the real-valued fit
    /// multiplies instead (`None`: some scale is not, and it divides).
    inv_scale: Option<Vec<f64>>,
}

impl<'a> Sample<'a> {
    fn new(data: &'a FitData<'a>) -> Self {
        let inv_ulp = inv_ulps(data.reference, data.rounded);
        let inv_scale = data
            .scale_fit
            .iter()
            .map(|&s| power_of_two_reciprocal(s))
            .collect();
        Sample {
            data,
            inv_ulp,
            inv_scale,
        }
    }

    fn points(&self) -> Points<'_> {
        Points {
            x: self.data.x,
            reference: self.data.reference,
            rounded: self.data.rounded,
            inv_ulp: &self.inv_ulp,
        }
    }
}

/// Both stages for one program; the constants returned are never worse on the search sample
/// than the program's own (rounded to float32).
pub fn fit_program(p: &Program, data: &FitData, opts: FitOptions) -> FitOutcome {
    fit_with(p, &Sample::new(data), opts)
}

fn fit_with(p: &Program, sample: &Sample, opts: FitOptions) -> FitOutcome {
    let data = sample.data;
    let own = p.consts.clone();
    let orig_err =
        score32(p, &round32(&own), sample, f64::INFINITY, None).map_or(f64::INFINITY, |s| s.0);
    let keep = |affine: bool, fit_error: f64| FitOutcome {
        consts: own.clone(),
        fitted: false,
        affine,
        fit_error,
        max_ulp: orig_err,
    };
    if own.is_empty() || own.iter().any(|c| !c.is_finite()) {
        return keep(false, f64::INFINITY);
    }
    let real = RealFit::new(p, data, sample.inv_scale.as_deref());
    let basis = real.affine_basis(&own);
    let affine = basis.is_some();
    let (c, fit_error) = match basis {
        Some((a, y0)) => real.fit_affine(&own, &a, &y0),
        None => real.fit_general(&own, opts.max_evals),
    };
    let c32 = round32(&c);
    if c32.iter().any(|v| !v.is_finite()) {
        return keep(affine, fit_error);
    }
    let (c32, err) = if fit_error <= opts.tune_below {
        let (c, m, _) = tune_with(p, c32, sample, opts.tune_rounds, None);
        (c, m)
    } else {
        let m = score32(p, &c32, sample, f64::INFINITY, None).map_or(f64::INFINITY, |s| s.0);
        (c32, m)
    };
    if err.is_nan() || err > orig_err {
        return keep(affine, fit_error);
    }
    FitOutcome {
        consts: c32,
        fitted: true,
        affine,
        fit_error,
        max_ulp: err,
    }
}

/// Per point, 1 / ulp32(f(x)) where f(x) (`reference`) and its rounding are finite, else NaN
/// (`Sample::inv_ulp`).
fn inv_ulps(reference: &[f64], rounded: &[f32]) -> Vec<f64> {
    reference
        .iter()
        .zip(rounded)
        .map(|(&r, &cr)| {
            if r.is_finite() && cr.is_finite() {
                inv_ulp32(r)
            } else {
                f64::NAN
            }
        })
        .collect()
}

/// 1 / `s` when `s` is a positive normal power of two whose reciprocal is one too (then `v / s`
/// and `v * (1 / s)` are the same number for every `v`), else `None`.
fn power_of_two_reciprocal(s: f64) -> Option<f64> {
    const MANTISSA: u64 = (1 << 52) - 1;
    let inv = 1.0 / s;
    let normal = |v: f64| v.is_normal() && v > 0.0 && v.to_bits() & MANTISSA == 0;
    (normal(s) && normal(inv)).then_some(inv)
}

/// Each value rounded to float32 (overflow gives infinities), as float64.
fn round32(c: &[f64]) -> Vec<f64> {
    c.iter().map(|&v| f64::from(v as f32)).collect()
}

/// The float32 `steps` representable values above `v` (below when negative), clamped to ±inf;
/// -0 and +0 are one place (`pysearch.ulp.neighbour`).
pub fn neighbour(v: f64, steps: i64) -> f64 {
    let k = key(v as f32);
    let pos = if k >= 0 { k } else { k + 1 };
    let pos = (pos + steps).clamp(KEY_MIN + 1, KEY_MAX);
    f64::from(from_key(if pos >= 0 { pos } else { pos - 1 }))
}

fn with_consts(p: &Program, c: &[f64]) -> Program {
    let mut q = p.clone();
    q.consts = c.to_vec();
    q
}

/// Points a float32 score is measured on: the whole sample, or a gathered subset.
struct Points<'a> {
    x: &'a [f32],
    reference: &'a [f64],
    rounded: &'a [f32],
    /// `Sample::inv_ulp` at these points.
    inv_ulp: &'a [f64],
}

/// What a float32 score needs of the errors over some points: their maximum, the sum of the
/// finite ones, how many are infinite, and the count. The sum is taken per chunk of the
/// evaluator (`CHUNK` points) in `LANES` interleaved partial sums, added in lane order, and the
/// chunks' sums in point order: a fixed order (the result depends only on the points), in which
/// the pass vectorises.
#[derive(Clone, Copy)]
struct Acc {
    max_ulp: f64,
    sum_ulp: f64,
    n_infinite: u64,
    n: u64,
}

/// Errors over `pts` of the float32 program `runner` runs, given up (`None`) as soon as the
/// running maximum exceeds `limit`.
fn stats32(runner: &mut ChunkRunner<f32>, pts: &Points, limit: f64) -> Option<Acc> {
    let mut acc = Acc {
        max_ulp: -1.0,
        sum_ulp: 0.0,
        n_infinite: 0,
        n: 0,
    };
    let n = pts.x.len();
    let mut off = 0;
    while off < n {
        let len = CHUNK.min(n - off);
        let ys = runner.run(&[pts.x], off, len);
        let (rs, cs) = (&pts.reference[off..off + len], &pts.rounded[off..off + len]);
        let ws = &pts.inv_ulp[off..off + len];
        fold32(&mut acc, ys, rs, cs, ws);
        acc.n += len as u64;
        if acc.max_ulp > limit || acc.max_ulp.is_nan() {
            return None;
        }
        off += len;
    }
    Some(acc)
}

multiversion! {
    /// Folds one chunk's errors into `acc` (the chunk's sum in `LANES` partial sums, see `Acc`).
    fn fold32(acc: &mut Acc, ys: &[f32], rs: &[f64], cs: &[f32], ws: &[f64])
        => fold32_generic(acc, ys, rs, cs, ws);
}

#[inline(always)]
fn fold32_generic(acc: &mut Acc, ys: &[f32], rs: &[f64], cs: &[f32], ws: &[f64]) {
    let n = ys.len();
    let (rs, cs, ws) = (&rs[..n], &cs[..n], &ws[..n]);
    let mut sum = [0f64; LANES];
    let mut max = [-1f64; LANES];
    let (yc, rc, wc) = (
        ys.chunks_exact(LANES),
        rs.chunks_exact(LANES),
        ws.chunks_exact(LANES),
    );
    let (y_rest, r_rest, w_rest) = (yc.remainder(), rc.remainder(), wc.remainder());
    for ((y, r), w) in yc.zip(rc).zip(wc) {
        for l in 0..LANES {
            let e = (f64::from(y[l]) - r[l]).abs() * w[l];
            sum[l] += e;
            max[l] = if e > max[l] { e } else { max[l] };
        }
    }
    for (l, ((&y, &r), &w)) in y_rest.iter().zip(r_rest).zip(w_rest).enumerate() {
        let e = (f64::from(y) - r).abs() * w;
        sum[l] += e;
        max[l] = if e > max[l] { e } else { max[l] };
    }
    // the lane pass holds where every point is `point_error`'s first case (finite y, f(x) and
    // rounding: `inv_ulp` not NaN) with a finite error and no partial sum overflows: else a sum
    // is NaN or infinite and the chunk is redone point by point
    if sum.iter().all(|s| s.is_finite()) {
        let m = max.iter().copied().fold(-1.0, f64::max);
        if m > acc.max_ulp {
            acc.max_ulp = m;
        }
    } else {
        // the same errors, point by point, into the same partial sums
        sum = [0f64; LANES];
        for (i, ((&y, &r), (&cr, &w))) in ys.iter().zip(rs).zip(cs.iter().zip(ws)).enumerate() {
            let e = if y.is_finite() && !w.is_nan() {
                (f64::from(y) - r).abs() * w
            } else {
                point_error(y, r, cr).ulps
            };
            if e > acc.max_ulp {
                acc.max_ulp = e;
            }
            if e.is_finite() {
                sum[i % LANES] += e;
            } else {
                acc.n_infinite += 1;
            }
        }
    }
    acc.sum_ulp += sum.iter().sum::<f64>();
}

/// (max ULP, mean ULP) on the search sample as `ConstantBatch.ulp32` reports them (NaN max is
/// infinite; any infinite error makes the mean infinite); `None` when the maximum exceeds
/// `limit`, which `probe` (points of the sample, gathered) may show early.
fn score32(
    p: &Program,
    c: &[f64],
    sample: &Sample,
    limit: f64,
    probe: Option<&Points>,
) -> Option<(f64, f64)> {
    // one runner for the probe and the sample
    let mut runner = ChunkRunner::<f32>::new(&with_consts(p, c));
    if let Some(pr) = probe {
        stats32(&mut runner, pr, limit)?;
    }
    let st = stats32(&mut runner, &sample.points(), limit)?;
    let mx = if st.max_ulp.is_nan() {
        f64::INFINITY
    } else {
        st.max_ulp
    };
    let mean = if st.n_infinite > 0 {
        f64::INFINITY
    } else {
        st.sum_ulp / st.n.max(1) as f64
    };
    Some((mx, mean))
}

/// The `PROBE` points of the sample where `c` is worst, gathered: x, f(x), its rounding and
/// `Sample::inv_ulp`.
fn worst_points(
    p: &Program,
    c: &[f64],
    sample: &Sample,
) -> (Vec<f32>, Vec<f64>, Vec<f32>, Vec<f64>) {
    let data = sample.data;
    let q = with_consts(p, c);
    let mut runner = ChunkRunner::<f32>::new(&q);
    let n = data.x.len();
    let mut err: Vec<(f64, usize)> = Vec::with_capacity(n);
    let mut off = 0;
    while off < n {
        let len = CHUNK.min(n - off);
        let ys = runner.run(&[data.x], off, len);
        for (i, &y) in ys.iter().enumerate() {
            let j = off + i;
            let e = point_error(y, data.reference[j], data.rounded[j]).ulps;
            err.push((if e.is_nan() { f64::INFINITY } else { e }, j));
        }
        off += len;
    }
    let take = PROBE.min(n);
    if take < n {
        err.select_nth_unstable_by(take - 1, |a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        err.truncate(take);
    }
    err.sort_by_key(|e| e.1);
    (
        err.iter().map(|e| data.x[e.1]).collect(),
        err.iter().map(|e| data.reference[e.1]).collect(),
        err.iter().map(|e| data.rounded[e.1]).collect(),
        err.iter().map(|e| sample.inv_ulp[e.1]).collect(),
    )
}

/// Coordinate descent over neighbouring float32 constants (`consts` are float32 values): each
/// round tries every constant (or those in `free`) at each of `TUNE_STEPS` up and down and keeps
/// the best move if it lowers (max ULP, mean ULP). Returns (constants, max ULP, mean ULP).
pub fn tune(
    p: &Program,
    consts: Vec<f64>,
    data: &FitData,
    rounds: usize,
    free: Option<&[usize]>,
) -> (Vec<f64>, f64, f64) {
    tune_with(p, consts, &Sample::new(data), rounds, free)
}

fn tune_with(
    p: &Program,
    mut consts: Vec<f64>,
    sample: &Sample,
    rounds: usize,
    free: Option<&[usize]>,
) -> (Vec<f64>, f64, f64) {
    let mut best =
        score32(p, &consts, sample, f64::INFINITY, None).unwrap_or((f64::INFINITY, f64::INFINITY));
    if consts.is_empty() || !best.0.is_finite() {
        return (consts, best.0, best.1);
    }
    for _ in 0..rounds {
        let (px, pr, pc, pw) = worst_points(p, &consts, sample);
        let probe = Points {
            x: &px,
            reference: &pr,
            rounded: &pc,
            inv_ulp: &pw,
        };
        let mut tried = false;
        let mut round_best: Option<((f64, f64), Vec<f64>)> = None;
        for j in 0..consts.len() {
            let v = consts[j];
            if !v.is_finite() || free.is_some_and(|f| !f.contains(&j)) {
                continue;
            }
            for s in TUNE_STEPS {
                for sign in [1, -1] {
                    let nv = neighbour(v, sign * s);
                    if nv == v || !nv.is_finite() {
                        continue;
                    }
                    tried = true;
                    let mut c = consts.clone();
                    c[j] = nv;
                    // a move worse in max than the incumbent or this round's best cannot win
                    let limit = round_best.as_ref().map_or(best.0, |(b, _)| b.0.min(best.0));
                    if let Some(sc) = score32(p, &c, sample, limit, Some(&probe)) {
                        if round_best.as_ref().is_none_or(|(b, _)| lex_lt(sc, *b)) {
                            round_best = Some((sc, c));
                        }
                    }
                }
            }
        }
        if !tried {
            break;
        }
        match round_best {
            Some((sc, c)) if lex_lt(sc, best) => {
                best = sc;
                consts = c;
            }
            _ => break,
        }
    }
    (consts, best.0, best.1)
}

/// `a < b` as Python compares (max, mean) tuples.
fn lex_lt(a: (f64, f64), b: (f64, f64)) -> bool {
    a.0 < b.0 || (a.0 == b.0 && a.1 < b.1)
}

// ---------------------------------------------------------------------------------------------
// Real-valued fit

/// The real-valued stage of one program on the fit points.
struct RealFit<'a> {
    p: &'a Program,
    x: &'a [f64],
    f: &'a [f64],
    s: &'a [f64],
    /// `Sample::inv_scale`.
    inv_s: Option<&'a [f64]>,
    k: usize,
    jacobian: bool,
}

impl<'a> RealFit<'a> {
    fn new(p: &'a Program, d: &FitData<'a>, inv_s: Option<&'a [f64]>) -> Self {
        RealFit {
            p,
            x: d.x_fit,
            f: d.f_fit,
            s: d.scale_fit,
            inv_s,
            k: p.consts.len(),
            jacobian: p.live.iter().all(|&i| jacobian_supported(p.instrs[i].op)),
        }
    }

    fn n(&self) -> usize {
        self.x.len()
    }

    /// Outputs for constants `c` (float64 `fit` semantics).
    fn eval(&self, c: &[f64]) -> Vec<f64> {
        let mut out = vec![0.0; self.n()];
        fit::eval_one(self.p, c, self.x, &mut out, None);
        out
    }

    /// ULP-scaled residuals, non-finite ones as `BIG`.
    fn resid(&self, c: &[f64]) -> Vec<f64> {
        let y = self.eval(c);
        let big = |r: f64| if r.is_finite() { r } else { BIG };
        match self.inv_s {
            Some(inv) => y
                .iter()
                .zip(self.f)
                .zip(inv)
                .map(|((&y, &f), &w)| big((y - f) * w))
                .collect(),
            None => y
                .iter()
                .zip(self.f)
                .zip(self.s)
                .map(|((&y, &f), &s)| big((y - f) / s))
                .collect(),
        }
    }

    /// `v / s[i]` (by the reciprocal where `inv_s` has it: the same number).
    #[inline(always)]
    fn unscale(&self, v: f64, i: usize) -> f64 {
        match self.inv_s {
            Some(inv) => v * inv[i],
            None => v / self.s[i],
        }
    }

    fn max_err(&self, c: &[f64]) -> f64 {
        self.resid(c).iter().fold(0.0, |m, r| m.max(r.abs()))
    }

    /// If the program is affine in its constants near `c0`: (A `n x k` row-major, y(c0)), with
    /// y(c) = y(c0) + A (c - c0), checked on two probe vectors.
    fn affine_basis(&self, c0: &[f64]) -> Option<(Vec<f64>, Vec<f64>)> {
        let (k, n) = (self.k, self.n());
        let steps: Vec<f64> = c0
            .iter()
            .map(|&c| if c.abs() > 0.0 { c.abs() } else { 1.0 })
            .collect();
        // fixed pseudo-random probe offsets of 0.3 to 0.8 steps, either sign (splitmix64)
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut unit = || {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            let u = (z >> 11) as f64 / (1u64 << 53) as f64;
            if z & 1 == 0 {
                0.3 + u / 2.0
            } else {
                -0.3 - u / 2.0
            }
        };
        let probes: Vec<Vec<f64>> = (0..2)
            .map(|_| (0..k).map(|j| c0[j] + unit() * steps[j]).collect())
            .collect();
        let y0 = self.eval(c0);
        let mut rows = vec![y0.clone()];
        for j in 0..k {
            let mut c = c0.to_vec();
            c[j] += steps[j];
            rows.push(self.eval(&c));
        }
        for pr in &probes {
            rows.push(self.eval(pr));
        }
        if rows.iter().any(|r| r.iter().any(|v| !v.is_finite())) {
            return None;
        }
        let mut a = vec![0.0; n * k];
        for j in 0..k {
            for i in 0..n {
                a[i * k + j] = (rows[1 + j][i] - y0[i]) / steps[j];
            }
        }
        let pmax = probes.iter().flatten().fold(0.0f64, |m, v| m.max(v.abs()));
        for (pi, pr) in probes.iter().enumerate() {
            let yc = &rows[1 + k + pi];
            for i in 0..n {
                let ai = &a[i * k..(i + 1) * k];
                let pred = y0[i]
                    + ai.iter()
                        .zip(pr)
                        .zip(c0)
                        .map(|((&aij, &c), &c0j)| aij * (c - c0j))
                        .sum::<f64>();
                let mag = rows.iter().fold(0.0f64, |m, r| m.max(r[i].abs()))
                    + ai.iter().map(|v| v.abs()).sum::<f64>() * pmax
                    + 1e-300;
                let rel = (pred - yc[i]).abs() / mag;
                if rel.is_nan() || rel > AFFINE_TOL {
                    return None;
                }
            }
        }
        Some((a, y0))
    }

    /// Lawson minimax of the affine model: b = f - y0 + A c0, min max |A c - b| / s.
    fn fit_affine(&self, c0: &[f64], a: &[f64], y0: &[f64]) -> (Vec<f64>, f64) {
        let k = self.k;
        let b: Vec<f64> = (0..self.n())
            .map(|i| {
                self.f[i] - y0[i]
                    + a[i * k..(i + 1) * k]
                        .iter()
                        .zip(c0)
                        .map(|(x, y)| x * y)
                        .sum::<f64>()
            })
            .collect();
        lawson(a, k, &b, self.s, LAWSON_ITERS)
    }

    /// Reweighted Levenberg-Marquardt on the ULP-scaled residuals (exact Jacobian), then
    /// Nelder-Mead on the maximum error.
    fn fit_general(&self, c0: &[f64], max_evals: usize) -> (Vec<f64>, f64) {
        let (n, k) = (self.n(), self.k);
        let mut best_c = c0.to_vec();
        let mut best_err = self.max_err(c0);
        let mut evals = 1;
        if self.jacobian {
            let mut c = c0.to_vec();
            let mut w = vec![1.0f64; n];
            for _ in 0..3 {
                if evals >= max_evals {
                    break;
                }
                let sw: Vec<f64> = w.iter().map(|v| v.sqrt()).collect();
                let fun = |c: &[f64]| -> Vec<f64> {
                    let mut r = self.resid(c);
                    r.iter_mut().zip(&sw).for_each(|(r, s)| *r *= s);
                    r
                };
                let jac = |c: &[f64]| -> Vec<f64> {
                    let mut y = vec![0.0; n];
                    let mut j = vec![0.0; n * k];
                    fit::eval_one(self.p, c, self.x, &mut y, Some(&mut j));
                    for i in 0..n {
                        let r = self.unscale(y[i] - self.f[i], i);
                        for v in &mut j[i * k..(i + 1) * k] {
                            let d = self.unscale(*v, i);
                            *v = if r.is_finite() && d.is_finite() {
                                d * sw[i]
                            } else {
                                0.0
                            };
                        }
                    }
                    j
                };
                let (cn, used) =
                    levenberg_marquardt(fun, jac, &c, k, (max_evals - evals).div_euclid(3).max(10));
                c = cn;
                evals += used;
                let r: Vec<f64> = self.resid(&c).iter().map(|v| v.abs()).collect();
                let e = r.iter().fold(0.0f64, |m, &v| m.max(v));
                if e < best_err {
                    best_c.clone_from(&c);
                    best_err = e;
                }
                let mean = r.iter().sum::<f64>() / n as f64;
                for (wi, ri) in w.iter_mut().zip(&r) {
                    *wi *= ri / (mean + 1e-300);
                }
                let wm = w.iter().sum::<f64>() / n as f64;
                for v in &mut w {
                    *v /= wm;
                }
            }
        }
        if best_err > 0.0 && evals < max_evals && k <= NM_MAX_CONSTS {
            let (c, e) = nelder_mead(
                |c| self.max_err(c),
                &best_c,
                (max_evals - evals).max(20),
                (1e-3, NM_REL_TOL),
            );
            if e < best_err {
                best_c = c;
                best_err = e;
            }
        }
        (best_c, best_err)
    }
}

/// Copies the upper triangle of the `k x k` matrix `g` (row-major) onto the lower one.
fn mirror(g: &mut [f64], k: usize) {
    for j in 0..k {
        for l in 0..j {
            g[j * k + l] = g[l * k + j];
        }
    }
}

/// The normal equations of the least-squares problem with Jacobian `j` (`n x k` row-major),
/// residuals `r` and optional row weights `w`: (`JᵀWJ` `k x k` row-major, `JᵀWr`). Shared by
/// this module's Levenberg-Marquardt and the law fitter's (`lawfit.rs`).
pub(crate) fn normal_equations(
    j: &[f64],
    r: &[f64],
    w: Option<&[f64]>,
    k: usize,
) -> (Vec<f64>, Vec<f64>) {
    // a fixed size keeps the sums in registers (and unrolls the loops); the same sums, in the
    // same order, as the general loop
    macro_rules! fixed {
        ($($n:literal)*) => {
            match k {
                $($n => normal_equations_fixed::<$n>(j, r, w),)*
                _ => normal_equations_any(j, r, w, k),
            }
        };
    }
    fixed!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16)
}

/// `normal_equations` for `K` constants.
fn normal_equations_fixed<const K: usize>(
    j: &[f64],
    r: &[f64],
    w: Option<&[f64]>,
) -> (Vec<f64>, Vec<f64>) {
    let mut g = [0.0f64; K];
    let mut h = [[0.0f64; K]; K];
    for (i, (row, &ri)) in j.chunks_exact(K).zip(r).enumerate() {
        let wi = w.map_or(1.0, |w| w[i]);
        for a in 0..K {
            let wa = row[a] * wi; // exactly row[a] without weights
            g[a] += wa * ri;
            for b in a..K {
                h[a][b] += wa * row[b];
            }
        }
    }
    let mut hv = vec![0.0; K * K];
    for a in 0..K {
        for b in a..K {
            hv[a * K + b] = h[a][b];
        }
    }
    mirror(&mut hv, K);
    (hv, g.to_vec())
}

/// `normal_equations` for any number of constants.
fn normal_equations_any(j: &[f64], r: &[f64], w: Option<&[f64]>, k: usize) -> (Vec<f64>, Vec<f64>) {
    let mut g = vec![0.0; k];
    let mut h = vec![0.0; k * k];
    if k == 0 {
        return (h, g);
    }
    // every entry sums its terms in row order (the same value whatever the loop shape); the
    // inner loop runs along a row of h, so it vectorises
    for (i, (row, &ri)) in j.chunks_exact(k).zip(r).enumerate() {
        let wi = w.map_or(1.0, |w| w[i]);
        for (a, (&ja, ga)) in row.iter().zip(g.iter_mut()).enumerate() {
            let wa = ja * wi; // exactly ja without weights
            *ga += wa * ri;
            for (hv, &jb) in h[a * k + a..(a + 1) * k].iter_mut().zip(&row[a..]) {
                *hv += wa * jb;
            }
        }
    }
    mirror(&mut h, k);
    (h, g)
}

/// The Levenberg-Marquardt step: the solution of `(h + lam diag(d)) step = -g`, or `None` when
/// that system is singular.
pub(crate) fn damped_step(h: &[f64], g: &[f64], d: &[f64], lam: f64, k: usize) -> Option<Vec<f64>> {
    let mut hl = h.to_vec();
    for a in 0..k {
        hl[a * k + a] += lam * d[a];
    }
    let neg_g: Vec<f64> = g.iter().map(|v| -v).collect();
    solve(&hl, &neg_g, k)
}

/// Solves the `k x k` system `g x = rhs` (row-major) by Gaussian elimination with partial
/// pivoting; `None` when a pivot is exactly zero (singular).
fn solve(g: &[f64], rhs: &[f64], k: usize) -> Option<Vec<f64>> {
    let mut m = g.to_vec();
    let mut x = rhs.to_vec();
    for col in 0..k {
        let piv =
            (col..k).max_by(|&a, &b| m[a * k + col].abs().total_cmp(&m[b * k + col].abs()))?;
        if m[piv * k + col] == 0.0 {
            return None;
        }
        if piv != col {
            for j in 0..k {
                m.swap(piv * k + j, col * k + j);
            }
            x.swap(piv, col);
        }
        let d = m[col * k + col];
        for r in col + 1..k {
            let f = m[r * k + col] / d;
            if f != 0.0 {
                for j in col..k {
                    m[r * k + j] -= f * m[col * k + j];
                }
                x[r] -= f * x[col];
            }
        }
    }
    for col in (0..k).rev() {
        let s: f64 = (col + 1..k).map(|j| m[col * k + j] * x[j]).sum();
        x[col] = (x[col] - s) / m[col * k + col];
    }
    Some(x)
}

/// Lawson's working system: rows of A and b divided by `scale`, then A's columns by their
/// norms (returned, 1 for a zero column).
fn scaled_columns(a: &[f64], k: usize, b: &[f64], scale: &[f64]) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let n = b.len();
    let mut as_ = vec![0.0; n * k];
    let bs: Vec<f64> = b.iter().zip(scale).map(|(b, s)| b / s).collect();
    for i in 0..n {
        for j in 0..k {
            as_[i * k + j] = a[i * k + j] / scale[i];
        }
    }
    let mut norms = vec![0.0f64; k];
    for i in 0..n {
        for j in 0..k {
            norms[j] += as_[i * k + j] * as_[i * k + j];
        }
    }
    for v in &mut norms {
        *v = v.sqrt();
        if *v == 0.0 {
            *v = 1.0;
        }
    }
    for i in 0..n {
        for j in 0..k {
            as_[i * k + j] /= norms[j];
        }
    }
    (as_, bs, norms)
}

/// The upper triangle of `AᵀWA` (A `n x k` row-major, W = diag(`w`); `k x k` row-major, the lower
/// triangle zero): every entry sums its terms in row order, with fixed-size sums for up to 16
/// columns (the same numbers as the general loop).
fn weighted_gram(a: &[f64], w: &[f64], k: usize) -> Vec<f64> {
    macro_rules! fixed {
        ($($n:literal)*) => {
            match k {
                $($n => weighted_gram_fixed::<$n>(a, w),)*
                _ => weighted_gram_any(a, w, k),
            }
        };
    }
    fixed!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16)
}

/// `weighted_gram` for `K` columns.
fn weighted_gram_fixed<const K: usize>(a: &[f64], w: &[f64]) -> Vec<f64> {
    let mut g = [[0.0f64; K]; K];
    for (row, &wi) in a.chunks_exact(K).zip(w) {
        for j in 0..K {
            let wj = wi * row[j];
            for l in j..K {
                g[j][l] += wj * row[l];
            }
        }
    }
    g.iter().flatten().copied().collect()
}

/// `weighted_gram` for any number of columns.
fn weighted_gram_any(a: &[f64], w: &[f64], k: usize) -> Vec<f64> {
    let mut g = vec![0.0; k * k];
    for (row, &wi) in a.chunks_exact(k).zip(w) {
        for j in 0..k {
            let wj = wi * row[j];
            for l in j..k {
                g[j * k + l] += wj * row[l];
            }
        }
    }
    g
}

/// Minimises max |A c - b| / scale (A `n x k` row-major) by Lawson's reweighted least squares;
/// returns (c, max error). The same algorithm as `constants.lawson` in Python. With no columns
/// (`k` = 0) there is nothing to fit: (no constants, infinity).
pub fn lawson(a: &[f64], k: usize, b: &[f64], scale: &[f64], iters: usize) -> (Vec<f64>, f64) {
    if k == 0 {
        return (Vec::new(), f64::INFINITY);
    }
    // a fixed row length unrolls the row loops (the sums are the same, in the same order)
    macro_rules! fixed {
        ($($n:literal)*) => {
            match k {
                $($n => lawson_rows::<$n>(a, k, b, scale, iters),)*
                _ => lawson_rows::<0>(a, k, b, scale, iters),
            }
        };
    }
    fixed!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16)
}

/// `lawson` with rows of `K` columns (`K` = 0: of `k`).
fn lawson_rows<const K: usize>(
    a: &[f64],
    k: usize,
    b: &[f64],
    scale: &[f64],
    iters: usize,
) -> (Vec<f64>, f64) {
    let k = if K > 0 { K } else { k };
    let n = b.len();
    let (as_, bs, norms) = scaled_columns(a, k, b, scale);
    let mut w = vec![1.0 / n as f64; n];
    let (mut best_c, mut best_err) = (vec![0.0; k], f64::INFINITY);
    let ridge = 1e-13;
    let weighted_rhs = |w: &[f64], v: &[f64]| -> Vec<f64> {
        let mut out = vec![0.0; k];
        for ((row, &wi), &vi) in as_.chunks_exact(k).zip(w).zip(v) {
            let wv = wi * vi;
            for (o, &x) in out.iter_mut().zip(row) {
                *o += x * wv;
            }
        }
        out
    };
    let resid = |c: &[f64]| -> Vec<f64> {
        as_.chunks_exact(k)
            .zip(&bs)
            .map(|(row, &bi)| bi - row.iter().zip(c).map(|(x, y)| x * y).sum::<f64>())
            .collect()
    };
    for _ in 0..iters {
        let mut g = weighted_gram(&as_, &w, k);
        mirror(&mut g, k);
        let tr: f64 = (0..k).map(|j| g[j * k + j]).sum();
        for j in 0..k {
            g[j * k + j] += ridge * tr / k as f64;
        }
        let Some(mut c) = solve(&g, &weighted_rhs(&w, &bs), k) else {
            break;
        };
        // one step of iterative refinement (the normal equations square the conditioning)
        let Some(dc) = solve(&g, &weighted_rhs(&w, &resid(&c)), k) else {
            break;
        };
        c.iter_mut().zip(&dc).for_each(|(c, d)| *c += d);
        let r: Vec<f64> = resid(&c).iter().map(|v| v.abs()).collect();
        let err = r.iter().fold(f64::NEG_INFINITY, |m, &v| {
            if v.is_nan() || m.is_nan() {
                f64::NAN
            } else {
                m.max(v)
            }
        });
        if !err.is_finite() {
            break;
        }
        if err < best_err {
            best_c.clone_from(&c);
            best_err = err;
        }
        w.iter_mut().zip(&r).for_each(|(w, r)| *w *= r);
        let total: f64 = w.iter().sum();
        if total.is_nan() || total <= 0.0 {
            break;
        }
        for v in &mut w {
            *v = (*v / total).max(1e-30);
        }
    }
    (
        best_c.iter().zip(&norms).map(|(c, n)| c / n).collect(),
        best_err,
    )
}

/// Minimises ||fun(c)||^2 from `c0` by damped Gauss-Newton (`jac`: `n x k` row-major); returns
/// (c, function evaluations used). The same algorithm as `constants.levenberg_marquardt`.
fn levenberg_marquardt(
    fun: impl Fn(&[f64]) -> Vec<f64>,
    jac: impl Fn(&[f64]) -> Vec<f64>,
    c0: &[f64],
    k: usize,
    max_evals: usize,
) -> (Vec<f64>, usize) {
    let dot = |a: &[f64]| a.iter().map(|v| v * v).sum::<f64>();
    let mut c = c0.to_vec();
    let mut r = fun(&c);
    let mut cost = dot(&r);
    let mut evals = 1;
    let mut lam = 1e-3;
    while evals < max_evals {
        let j = jac(&c);
        evals += 1;
        let (h, g) = normal_equations(&j, &r, None, k);
        let d: Vec<f64> = (0..k)
            .map(|a| {
                if h[a * k + a] > 0.0 {
                    h[a * k + a]
                } else {
                    1.0
                }
            })
            .collect();
        let mut improved = false;
        let mut rel = 0.0;
        while evals < max_evals && lam < 1e12 {
            let Some(step) = damped_step(&h, &g, &d, lam, k) else {
                lam *= 10.0;
                continue;
            };
            let c_new: Vec<f64> = c.iter().zip(&step).map(|(c, s)| c + s).collect();
            let r_new = fun(&c_new);
            evals += 1;
            let cost_new = dot(&r_new);
            if cost_new.is_finite() && cost_new < cost {
                improved = true;
                rel = (cost - cost_new) / cost.max(1e-300);
                c = c_new;
                r = r_new;
                cost = cost_new;
                lam = (lam / 3.0).max(1e-12);
                break;
            }
            lam *= 4.0;
        }
        if !improved || rel < 1e-10 {
            break;
        }
    }
    (c, evals)
}

/// Nelder-Mead (reflection 1, expansion 2, contraction 1/2, shrink 1/2; the first simplex moves
/// each coordinate by 5%, or 0.00025 from zero) from `x0`, with at most about `max_fev`
/// evaluations, stopping early when the simplex values agree within `abs_tol`, or within `rel_tol`
/// of the best value (a program thousands of ulps off gains nothing from the last digits).
/// Returns the best point and its value.
fn nelder_mead(
    f: impl Fn(&[f64]) -> f64,
    x0: &[f64],
    max_fev: usize,
    (abs_tol, rel_tol): (f64, f64),
) -> (Vec<f64>, f64) {
    let n = x0.len();
    let mut sim: Vec<Vec<f64>> = vec![x0.to_vec()];
    for j in 0..n {
        let mut y = x0.to_vec();
        y[j] = if y[j] == 0.0 { 0.00025 } else { 1.05 * y[j] };
        sim.push(y);
    }
    let mut fs: Vec<f64> = sim.iter().map(|x| f(x)).collect();
    let mut fev = n + 1;
    let order = |sim: &mut Vec<Vec<f64>>, fs: &mut Vec<f64>| {
        let mut idx: Vec<usize> = (0..fs.len()).collect();
        idx.sort_by(|&a, &b| fs[a].total_cmp(&fs[b]));
        *sim = idx.iter().map(|&i| sim[i].clone()).collect();
        *fs = idx.iter().map(|&i| fs[i]).collect();
    };
    order(&mut sim, &mut fs);
    let point = |xbar: &[f64], worst: &[f64], t: f64| -> Vec<f64> {
        xbar.iter()
            .zip(worst)
            .map(|(b, w)| (1.0 + t) * b - t * w)
            .collect()
    };
    while fev < max_fev {
        let tol = abs_tol.max(rel_tol * fs[0].abs());
        if fs.iter().all(|v| (v - fs[0]).abs() <= tol) {
            break;
        }
        let mut xbar = vec![0.0; n];
        for x in &sim[..n] {
            xbar.iter_mut().zip(x).for_each(|(b, v)| *b += v / n as f64);
        }
        let worst = sim[n].clone();
        let xr = point(&xbar, &worst, 1.0);
        let fr = f(&xr);
        fev += 1;
        let mut shrink = false;
        if fr < fs[0] {
            let xe = point(&xbar, &worst, 2.0);
            let fe = f(&xe);
            fev += 1;
            (sim[n], fs[n]) = if fe < fr { (xe, fe) } else { (xr, fr) };
        } else if fr < fs[n - 1] {
            (sim[n], fs[n]) = (xr, fr);
        } else if fr < fs[n] {
            let xc = point(&xbar, &worst, 0.5);
            let fc = f(&xc);
            fev += 1;
            if fc <= fr {
                (sim[n], fs[n]) = (xc, fc);
            } else {
                shrink = true;
            }
        } else {
            let xcc = point(&xbar, &worst, -0.5);
            let fcc = f(&xcc);
            fev += 1;
            if fcc < fs[n] {
                (sim[n], fs[n]) = (xcc, fcc);
            } else {
                shrink = true;
            }
        }
        if shrink {
            for j in 1..=n {
                let x: Vec<f64> = sim[0]
                    .iter()
                    .zip(&sim[j])
                    .map(|(a, b)| a + 0.5 * (b - a))
                    .collect();
                fs[j] = f(&x);
                sim[j] = x;
                fev += 1;
            }
        }
        order(&mut sim, &mut fs);
    }
    (sim.swap_remove(0), fs[0])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `fold32` against the errors taken point by point with `point_error`: the same maximum and
    /// infinite count, and the sum in the order `Acc` defines, on chunks that take the lane pass
    /// and chunks with NaN, infinite and undefined points (redone point by point).
    #[test]
    fn fold32_is_point_error_in_its_summation_order() {
        let n = 203; // not a multiple of LANES: the remainder lanes too
        let mut ys: Vec<f32> = (0..n).map(|i| 1.0 + i as f32 / 97.0).collect();
        let rs: Vec<f64> = ys
            .iter()
            .enumerate()
            .map(|(i, &y)| f64::from(y) * (1.0 + 1e-7 * ((i * 37 % 11) as f64 - 5.0)))
            .collect();
        let cs: Vec<f32> = rs.iter().map(|&r| r as f32).collect();
        let ws = inv_ulps(&rs, &cs);
        let reference = |ys: &[f32], rs: &[f64], cs: &[f32]| {
            let (mut max, mut inf, mut sum) = (-1f64, 0u64, [0f64; LANES]);
            for i in 0..ys.len() {
                let e = point_error(ys[i], rs[i], cs[i]).ulps;
                max = if e > max { e } else { max };
                if e.is_finite() {
                    sum[i % LANES] += e;
                } else {
                    inf += 1;
                }
            }
            (max, inf, sum.iter().sum::<f64>())
        };
        let fold = |ys: &[f32], rs: &[f64], cs: &[f32], ws: &[f64]| {
            let mut acc = Acc {
                max_ulp: -1.0,
                sum_ulp: 0.0,
                n_infinite: 0,
                n: 0,
            };
            fold32(&mut acc, ys, rs, cs, ws);
            (acc.max_ulp, acc.n_infinite, acc.sum_ulp)
        };
        let clean = fold(&ys, &rs, &cs, &ws);
        assert!(clean.0 > 0.0 && clean.1 == 0);
        assert_eq!(clean, reference(&ys, &rs, &cs));
        // a NaN output, an infinite one and a point where f is undefined (only NaN is right)
        let mut rs2 = rs.clone();
        let mut cs2 = cs.clone();
        ys[5] = f32::NAN;
        ys[77] = f32::INFINITY;
        rs2[150] = f64::NAN;
        cs2[150] = f32::NAN;
        let ws2 = inv_ulps(&rs2, &cs2);
        let special = fold(&ys, &rs2, &cs2, &ws2);
        assert_eq!(special.1, 3);
        assert_eq!(special, reference(&ys, &rs2, &cs2));
    }

    #[test]
    fn lawson_finds_the_chebyshev_line_of_x_squared() {
        // best line for x^2 on [0, 1]: x - 1/8, max error 1/8
        let n = 2001;
        let x: Vec<f64> = (0..n).map(|i| i as f64 / (n - 1) as f64).collect();
        let a: Vec<f64> = x.iter().flat_map(|&v| [1.0, v]).collect();
        let b: Vec<f64> = x.iter().map(|v| v * v).collect();
        let (c, err) = lawson(&a, 2, &b, &vec![1.0; n], 200);
        assert!((err - 0.125).abs() < 2e-4, "{err}");
        assert!(
            (c[0] + 0.125).abs() < 1e-2 && (c[1] - 1.0).abs() < 1e-2,
            "{c:?}"
        );
    }

    #[test]
    fn nelder_mead_minimises_a_quadratic() {
        let (x, v) = nelder_mead(
            |c| (c[0] - 1.0).powi(2) + (c[1] + 2.0).powi(2),
            &[0.0, 0.0],
            400,
            (1e-12, 0.0),
        );
        assert!(
            v < 1e-8 && (x[0] - 1.0).abs() < 1e-3 && (x[1] + 2.0).abs() < 1e-3,
            "{x:?} {v}"
        );
    }

    #[test]
    fn fixed_size_normal_equations_and_gram_are_the_general_ones_bit_for_bit() {
        let mut state = 12345u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 1e3
        };
        for k in 1..=18 {
            let n = 300;
            let j: Vec<f64> = (0..n * k).map(|_| next()).collect();
            let r: Vec<f64> = (0..n).map(|_| next()).collect();
            let w: Vec<f64> = (0..n).map(|_| next().abs()).collect();
            for weights in [None, Some(&w[..])] {
                let (h, g) = normal_equations(&j, &r, weights, k);
                let (h0, g0) = normal_equations_any(&j, &r, weights, k);
                let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&h), bits(&h0), "k = {k}");
                assert_eq!(bits(&g), bits(&g0), "k = {k}");
            }
            let (g, g0) = (weighted_gram(&j, &w, k), weighted_gram_any(&j, &w, k));
            assert_eq!(
                g.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                g0.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                "k = {k}"
            );
        }
    }

    #[test]
    fn multiplying_by_a_power_of_two_reciprocal_is_dividing() {
        assert_eq!(power_of_two_reciprocal(0.75), None);
        assert_eq!(power_of_two_reciprocal(-2.0), None);
        assert_eq!(power_of_two_reciprocal(0.0), None);
        assert_eq!(power_of_two_reciprocal(f64::INFINITY), None);
        assert_eq!(power_of_two_reciprocal(2f64.powi(-1030)), None); // subnormal
        let mut state = 7u64;
        let mut bits = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            state
        };
        // the ulps of float32 values: 2^-149 .. 2^104
        for e in -149..=104 {
            let s = 2f64.powi(e);
            let inv = power_of_two_reciprocal(s).unwrap();
            for _ in 0..2000 {
                let v = f64::from_bits(bits());
                let (q, p) = (v / s, v * inv);
                assert!(
                    q.to_bits() == p.to_bits() || (q.is_nan() && p.is_nan()),
                    "{v:e} / 2^{e}"
                );
            }
            for v in [1e-310, -4e-320, 1e300, -1.7e308, 0.0, -0.0] {
                assert_eq!((v / s).to_bits(), (v * inv).to_bits(), "{v:e} / 2^{e}");
            }
        }
    }

    #[test]
    fn solve_pivots_and_refuses_singular() {
        let x = solve(&[0.0, 1.0, 2.0, 0.0], &[3.0, 4.0], 2).unwrap();
        assert_eq!(x, vec![2.0, 3.0]);
        assert!(solve(&[1.0, 2.0, 2.0, 4.0], &[1.0, 1.0], 2).is_none());
    }

    #[test]
    fn neighbour_walks_float32_values_across_zero() {
        assert_eq!(
            neighbour(1.0, 1),
            f64::from(f32::from_bits(1.0f32.to_bits() + 1))
        );
        assert_eq!(neighbour(0.0, 1), f64::from(f32::from_bits(1)));
        assert_eq!(neighbour(-0.0, -1), -f64::from(f32::from_bits(1)));
        assert_eq!(
            neighbour(f64::from(f32::from_bits(1)), -2),
            -f64::from(f32::from_bits(1))
        );
        assert_eq!(neighbour(f64::from(f32::MAX), 1), f64::INFINITY);
    }
}
