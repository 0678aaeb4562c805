//! Constant fitting of float64 law programs entirely in the core: one call fits a batch of
//! programs (in parallel over programs), each by the Levenberg-Marquardt of
//! `pysearch/laws/constant_fit.py` (`lm_fit_many`, kept there as the numpy baseline) with the same
//! rules, so the two give the same constants up to rounding:
//!
//! - residuals in the fit space (`linear`, `log`, `loglog`: `forms.to_space`), NaN as
//!   `RESID_CAP`, clipped to `±RESID_CAP`; their Jacobian by the chain rule through the space
//!   from the exact forward-mode derivatives of `fit.rs` (zero where the space clips, non-finite
//!   entries zero);
//! - optional per-point weights multiplying each residual and its Jacobian row (relative error:
//!   linear space, targets `f`, weights `1/f`);
//! - least squares, or Huber with scale `delta` by iteratively reweighted least squares (weights
//!   `min(1, delta/|r|)`, recomputed from the residuals at every iteration; the cost compared is
//!   the Huber loss itself);
//! - Marquardt's diagonal scaling (`max(diag, 1e-12 max diag)`), damping from 1e-3, times 0.3
//!   after an accepted step (at least 1e-12), times 10 after a rejected one; a program stops when
//!   an accepted step lowers the cost by less than `FTOL` of it, moves no constant by more than
//!   `XTOL` of its size, or reaches a zero cost, when the damping exceeds 1e12, or after
//!   `max_iter` trial steps (accepted or not).
//!
//! The normal equations, the damped solve and Gaussian elimination are `constfit.rs`'s (one
//! implementation for both fitters). Everything is deterministic: a result depends only on the
//! program, its starting constants and the data, not on the thread count.

use rayon::prelude::*;

use crate::constfit::{damped_step, normal_equations};
use crate::fit::{self, jacobian_supported};
use crate::program::Program;

/// Largest residual magnitude (a NaN residual counts as this).
pub const RESID_CAP: f64 = 1e6;
/// Stop once an accepted step lowers the cost by less than this fraction of it.
pub const FTOL: f64 = 1e-6;
/// Stop once an accepted step moves no constant by more than this fraction of its size.
pub const XTOL: f64 = 1e-9;
/// Programs fitted per step of a long call (the binding checks for Ctrl-C between steps).
pub const PROGRAMS_PER_STEP: usize = 64;
const TINY: f64 = 1e-300;
const LAMBDA0: f64 = 1e-3;
const LAMBDA_MIN: f64 = 1e-12;
const LAMBDA_MAX: f64 = 1e12;

/// The space residuals are measured in (`pysearch.laws.forms.SPACES`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Space {
    Linear,
    Log,
    LogLog,
}

impl Space {
    /// The space named `name`, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "linear" => Some(Space::Linear),
            "log" => Some(Space::Log),
            "loglog" => Some(Space::LogLog),
            _ => None,
        }
    }

    /// The residual of the prediction `f` against the target `t` (already in this space).
    fn residual(self, f: f64, t: f64) -> f64 {
        if f.is_nan() {
            return RESID_CAP;
        }
        let v = match self {
            Space::Linear => f,
            Space::Log => f.max(TINY).ln(),
            // to_space: log(max(-log(clip(f, tiny, 1)), tiny)), always finite here
            Space::LogLog => (-f.clamp(TINY, 1.0).ln()).max(TINY).ln(),
        };
        let r = v - t;
        if r.is_nan() {
            RESID_CAP
        } else {
            r.clamp(-RESID_CAP, RESID_CAP)
        }
    }

    /// d(residual)/d(prediction) at `f` (zero where the space clips).
    fn slope(self, f: f64) -> f64 {
        match self {
            Space::Linear => 1.0,
            Space::Log => {
                if f > TINY {
                    1.0 / f
                } else {
                    0.0
                }
            }
            Space::LogLog => {
                if f > TINY && f < 1.0 {
                    1.0 / (f * f.ln())
                } else {
                    0.0
                }
            }
        }
    }
}

/// The loss summed over the residuals.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Loss {
    /// Half the sum of squares.
    Lsq,
    /// Huber with this scale `delta` (> 0).
    Huber(f64),
}

impl Loss {
    fn cost(self, r: &[f64]) -> f64 {
        match self {
            Loss::Lsq => 0.5 * r.iter().map(|v| v * v).sum::<f64>(),
            Loss::Huber(d) => r
                .iter()
                .map(|&v| {
                    let a = v.abs();
                    if a <= d {
                        0.5 * v * v
                    } else {
                        d * (a - 0.5 * d)
                    }
                })
                .sum(),
        }
    }

    /// IRLS weights for the residuals (`None`: all ones).
    fn weights(self, r: &[f64]) -> Option<Vec<f64>> {
        match self {
            Loss::Lsq => None,
            Loss::Huber(d) => Some(
                r.iter()
                    .map(|&v| {
                        let a = v.abs();
                        if a <= d {
                            1.0
                        } else {
                            d / a.max(TINY)
                        }
                    })
                    .collect(),
            ),
        }
    }
}

/// The data and the rules of a law fit.
#[derive(Clone, Copy)]
pub struct LawData<'a> {
    /// Inputs, `(inputs, n)` row-major.
    pub x: &'a [f64],
    /// Targets in `space`, length `n`.
    pub t: &'a [f64],
    pub space: Space,
    pub loss: Loss,
    /// Most trial steps per program.
    pub max_iter: usize,
    /// Per-point weights, length `n` (`None`: all ones): the residual at point `i` is
    /// `weights[i]` times its residual in `space` (with `Space::Linear`, targets `f` and weights
    /// `1/f`, the residual is the relative error `(y - f)/f`).
    pub weights: Option<&'a [f64]>,
}

/// What fitting one program gave: its constants (never worse than the start) and their cost;
/// `cost` is infinite (and `consts` the program's own) where the fit cannot start: no
/// constants, a non-finite one, or an op without a derivative.
#[derive(Clone, Debug)]
pub struct LawFit {
    pub consts: Vec<f64>,
    pub cost: f64,
}

/// Fits every program of `progs` from its own constants (in parallel over programs).
pub fn fit_laws(progs: &[Program], data: &LawData) -> Vec<LawFit> {
    progs.par_iter().map(|p| fit_law(p, data)).collect()
}

/// A program's residuals and their Jacobian (`n x m`, row-major) at some constants, with the
/// outputs they come from.
struct Point {
    f: Vec<f64>,
    r: Vec<f64>,
    jac: Vec<f64>,
}

impl Point {
    fn new(n: usize, m: usize) -> Self {
        Point {
            f: vec![0.0; n],
            r: vec![0.0; n],
            jac: vec![0.0; n * m],
        }
    }

    /// Evaluates `p` at the constants `c` into this point (every entry is overwritten).
    fn eval(&mut self, p: &Program, c: &[f64], data: &LawData) {
        let m = c.len();
        fit::eval_one(p, c, data.x, &mut self.f, Some(&mut self.jac));
        let w = |i: usize| data.weights.map_or(1.0, |w| w[i]);
        for (i, ((r, &f), &t)) in self.r.iter_mut().zip(&self.f).zip(data.t).enumerate() {
            *r = w(i) * data.space.residual(f, t);
        }
        for (i, (row, &fi)) in self.jac.chunks_mut(m.max(1)).zip(&self.f).enumerate() {
            let d = w(i) * data.space.slope(fi);
            for v in row {
                let w = *v * d;
                *v = if w.is_finite() { w } else { 0.0 };
            }
        }
    }
}

/// Levenberg-Marquardt on one program's constants (see the module doc).
pub fn fit_law(p: &Program, data: &LawData) -> LawFit {
    let own = || LawFit {
        consts: p.consts.clone(),
        cost: f64::INFINITY,
    };
    let m = p.consts.len();
    if m == 0
        || p.consts.iter().any(|c| !c.is_finite())
        || !p.live.iter().all(|&i| jacobian_supported(p.instrs[i].op))
    {
        return own();
    }
    let mut c = p.consts.clone();
    let n = data.t.len();
    let (mut at, mut trial_at) = (Point::new(n, m), Point::new(n, m));
    at.eval(p, &c, data);
    let mut cost = data.loss.cost(&at.r);
    let mut lam = LAMBDA0;
    for _ in 0..data.max_iter {
        let w = data.loss.weights(&at.r);
        let (h, g) = normal_equations(&at.jac, &at.r, w.as_deref(), m);
        let top = (0..m)
            .map(|j| h[j * m + j])
            .fold(f64::NEG_INFINITY, f64::max);
        let floor = 1e-12 * top.max(TINY);
        let scale: Vec<f64> = (0..m).map(|j| h[j * m + j].max(floor)).collect();
        // a singular system stays put (a rejected step)
        let step = damped_step(&h, &g, &scale, lam, m).unwrap_or_else(|| vec![0.0; m]);
        let trial: Vec<f64> = c.iter().zip(&step).map(|(c, s)| c + s).collect();
        let accepted = if trial.iter().all(|v| v.is_finite()) {
            trial_at.eval(p, &trial, data);
            let new = data.loss.cost(&trial_at.r);
            (new < cost).then_some(new)
        } else {
            None
        };
        if let Some(new) = accepted {
            let decrease = (cost - new) / cost.max(TINY);
            let rel_step = step
                .iter()
                .zip(&c)
                .map(|(s, c)| s.abs() / (c.abs() + 1e-12))
                .fold(f64::NEG_INFINITY, f64::max);
            std::mem::swap(&mut at, &mut trial_at);
            (c, cost) = (trial, new);
            lam = (lam * 0.3).max(LAMBDA_MIN);
            if decrease < FTOL || rel_step < XTOL || new == 0.0 {
                break;
            }
        } else {
            lam *= 10.0;
            if lam > LAMBDA_MAX {
                break;
            }
        }
    }
    LawFit { consts: c, cost }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `c0 * x ^ c1` (slots: x=0, c0=1, c1=2; v3 = pow(x, c1); v4 = c0 * v3).
    fn power_law(c: [f64; 2]) -> Program {
        Program::new(&[17, 2], &[0, 2, 0, 1, 3, 0], c.to_vec(), 1, 4, true).unwrap()
    }

    fn data(x: &[f64], y: &[f64], space: Space, loss: Loss) -> (Vec<f64>, Vec<f64>, Space, Loss) {
        let t = y
            .iter()
            .map(|&v| space.residual(v, 0.0))
            .collect::<Vec<_>>();
        (x.to_vec(), t, space, loss)
    }

    #[test]
    fn recovers_a_power_law_in_log_space() {
        let x: Vec<f64> = (1..=40).map(|i| f64::from(i) * 0.5).collect();
        let y: Vec<f64> = x.iter().map(|v| 3.0 * v.powf(-0.7)).collect();
        for loss in [Loss::Lsq, Loss::Huber(1e-3)] {
            let (x, t, space, loss) = data(&x, &y, Space::Log, loss);
            let d = LawData {
                x: &x,
                t: &t,
                space,
                loss,
                max_iter: 100,
                weights: None,
            };
            let out = fit_law(&power_law([1.0, -0.2]), &d);
            assert!(
                (out.consts[0] - 3.0).abs() < 1e-5 && (out.consts[1] + 0.7).abs() < 1e-5,
                "{loss:?} {:?}",
                out.consts
            );
            assert!(out.cost < 1e-9, "{}", out.cost);
        }
    }

    #[test]
    fn never_worse_than_the_start_and_refuses_what_it_cannot_fit() {
        let x = [1.0, 2.0, 3.0];
        let (x, t, space, loss) = data(&x, &[1.0, 0.5, 0.25], Space::Linear, Loss::Lsq);
        let d = LawData {
            x: &x,
            t: &t,
            space,
            loss,
            max_iter: 1,
            weights: None,
        };
        let p = power_law([1.0, -1.0]);
        let mut start = Point::new(3, 2);
        start.eval(&p, &p.consts, &d);
        let out = fit_law(&p, &d);
        assert!(out.cost <= Loss::Lsq.cost(&start.r));
        let nan = power_law([f64::NAN, 1.0]);
        let out = fit_law(&nan, &d);
        assert!(out.cost.is_infinite() && out.consts[0].is_nan());
        // floor(x): no constants, no derivative
        let fl = Program::new(&[11], &[0, 0, 0], vec![], 1, 1, true).unwrap();
        assert!(fit_law(&fl, &d).cost.is_infinite());
    }

    #[test]
    fn weights_scale_each_residual() {
        // c0 * x at x = 1 against targets 1 and 100: weights 1/f minimise the relative error
        // (weighted mean (1 + 1e-4 * 100) / (1 + 1e-4)), no weights the absolute one (50.5); LM
        // stops within FTOL of the minimum
        let p = Program::new(&[2], &[0, 1, 0], vec![3.0], 1, 2, true).unwrap();
        let (x, t) = ([1.0, 1.0], [1.0, 100.0]);
        for (weights, want) in [(Some(&[1.0, 0.01][..]), 1.01 / 1.0001), (None, 50.5)] {
            let d = LawData {
                x: &x,
                t: &t,
                space: Space::Linear,
                loss: Loss::Lsq,
                max_iter: 50,
                weights,
            };
            let out = fit_law(&p, &d);
            assert!(
                (out.consts[0] - want).abs() < 1e-5 * want,
                "{weights:?} {:?}",
                out.consts
            );
            let r: Vec<f64> = t
                .iter()
                .enumerate()
                .map(|(i, &f)| weights.map_or(1.0, |w| w[i]) * (out.consts[0] - f))
                .collect();
            assert!((out.cost - Loss::Lsq.cost(&r)).abs() <= 1e-12 * out.cost.max(1.0));
        }
    }

    #[test]
    fn residuals_cap_nan_and_clip_like_to_space() {
        assert_eq!(Space::Log.residual(f64::NAN, 0.0), RESID_CAP);
        assert_eq!(Space::Log.residual(-1.0, 0.0), (1e-300f64).ln());
        assert_eq!(Space::Linear.residual(1e300, 0.0), RESID_CAP);
        assert_eq!(Space::Linear.residual(f64::NEG_INFINITY, 0.0), -RESID_CAP);
        assert_eq!(Space::LogLog.residual(2.0, 0.0), (1e-300f64).ln());
        assert_eq!(Space::LogLog.slope(2.0), 0.0);
        assert_eq!(Space::Log.slope(0.0), 0.0);
    }
}
