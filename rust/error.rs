//! ULP-error statistics of float32 programs: over given points with given references (a search
//! sample), or streamed over every float32 in an interval (exhaustive verification).

use rayon::prelude::*;

use crate::domain::from_key;
use crate::eval::{block_size, ChunkRunner, CHUNK};
use crate::program::Program;
use crate::reference::Target;
use crate::stats::Stats;
use crate::ulp::{point_error, round32};

/// Error of every program over points `x` whose exact values are `reference` (float64) and whose
/// correctly rounded float32 values are `rounded`. Single-input programs only.
pub fn sample_errors(progs: &[Program], x: &[f32], reference: &[f64], rounded: &[f32]) -> Vec<Stats> {
    let n = x.len();
    let block = block_size(n, progs.len());
    let n_blocks = n.div_ceil(block);
    progs
        .par_iter()
        .map(|p| {
            (0..n_blocks)
                .into_par_iter()
                .map(|bi| {
                    let mut r = ChunkRunner::<f32>::new(p);
                    let mut st = Stats::default();
                    let end = ((bi + 1) * block).min(n);
                    let mut off = bi * block;
                    while off < end {
                        let len = CHUNK.min(end - off);
                        let y = r.run(&[x], off, len);
                        for i in 0..len {
                            let j = off + i;
                            st.add(j as u64, point_error(y[i], reference[j], rounded[j]), true);
                        }
                        off += len;
                    }
                    st
                })
                .reduce(Stats::default, Stats::merge)
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
const EXHAUSTIVE_BLOCK: i64 = 1 << 16;

/// Stream every float32 with key in [lo, hi] through the program and the reference.
/// `stats.argmax` counts from `lo`.
pub fn exhaustive_errors(p: &Program, target: Target, lo: i64, hi: i64) -> Exhaustive {
    let total = hi - lo + 1;
    let n_blocks = (total + EXHAUSTIVE_BLOCK - 1) / EXHAUSTIVE_BLOCK;
    let (stats, undecided) = (0..n_blocks)
        .into_par_iter()
        .map(|bi| {
            let mut st = Stats::default();
            let mut und = Vec::new();
            let mut r = ChunkRunner::<f32>::new(p);
            let start = lo + bi * EXHAUSTIVE_BLOCK;
            let end = (start + EXHAUSTIVE_BLOCK).min(hi + 1);
            let mut k = start;
            let mut xs = [0f32; CHUNK];
            while k < end {
                let len = (CHUNK as i64).min(end - k) as usize;
                for (i, xi) in xs[..len].iter_mut().enumerate() {
                    *xi = from_key(k + i as i64);
                }
                let y = r.run(&[&xs[..len]], 0, len);
                for i in 0..len {
                    let rf = target.eval(f64::from(xs[i]));
                    let (cr, undecided) = round32(rf);
                    st.add((k - lo) as u64 + i as u64, point_error(y[i], rf, cr), !undecided);
                    if undecided {
                        und.push(xs[i]);
                    }
                }
                k += len as i64;
            }
            (st, und)
        })
        .reduce(
            || (Stats::default(), Vec::new()),
            |(a, mut ua), (b, ub)| {
                ua.extend(ub);
                (a.merge(b), ua)
            },
        );
    let mut undecided = undecided;
    undecided.sort_by(|a, b| a.total_cmp(b));
    Exhaustive { stats, undecided }
}

/// float64 reference values and their float32 rounding, flagging undecidable roundings.
pub fn reference_values(target: Target, x: &[f32]) -> (Vec<f64>, Vec<f32>, Vec<bool>) {
    let r: Vec<f64> = x.par_iter().map(|&v| target.eval(f64::from(v))).collect();
    let (c, u): (Vec<f32>, Vec<bool>) = r.par_iter().map(|&v| round32(v)).unzip();
    (r, c, u)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::key_range;

    fn identity_mul_one() -> Program {
        Program::new(&[2], &[0, 1, 0], vec![1.0], 1, 2, false).unwrap()
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

    #[test]
    fn identity_is_far_from_exp2() {
        let p = identity_mul_one();
        let x: Vec<f32> = (1..=1000).map(|i| i as f32 / 1000.0).collect();
        let (r, c, _) = reference_values(Target::Exp2, &x);
        let st = sample_errors(std::slice::from_ref(&p), &x, &r, &c)[0];
        assert_eq!(st.n, 1000);
        // worst at x near 0 where exp2(x) = 1 and x is tiny: ~2^23 ulps of 1.
        assert!(st.max_ulp > 8.0e6, "{}", st.max_ulp);
        assert_eq!(st.argmax, 0);
        assert_eq!(st.n_correct, 0);
    }
}
