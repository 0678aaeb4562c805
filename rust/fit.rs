//! One program structure evaluated for many constant vectors at once, in float64 without
//! rounding: the Rust twin of `pysearch/fit_kernel.py` (`FitKernel`), used to fit constants.
//!
//! Semantics are the registry's `fit` hooks (`pysearch/ops.py`): every op in float64 whatever the
//! program's dtype, `fma` unfused (`a * b + c`), `ldexp` as `a * exp2(trunc(clamp(b)))`. The
//! constants of the program are replaced by the rows of a `(K, m)` matrix; the inputs are an
//! `(inputs, n)` matrix; the outputs are `(K, n)`. Optionally the forward-mode derivatives with
//! respect to the constants come too, as one `(n, m)` Jacobian per constant vector (`(K, n, m)`),
//! for the ops whose derivative is defined (`jacobian_supported`).
//!
//! Work is split over constant vectors and blocks of `BLOCK` points (rayon); each worker owns
//! one scratch buffer reused for every block it takes.

use rayon::prelude::*;

use crate::errors::CoreError;
use crate::program::{Op, Program};

/// Points evaluated together per instruction.
const BLOCK: usize = 256;

/// Whether forward-mode derivatives are defined for `op` (piecewise constant and exponent
/// manipulating ops are not).
pub fn jacobian_supported(op: Op) -> bool {
    !matches!(
        op,
        Op::Rint | Op::Floor | Op::Ldexp | Op::Getexp | Op::Getmant
    )
}

/// Shapes of one `fit_eval` call: `k` constant vectors of `m` constants, `n` points.
#[derive(Clone, Copy, Debug)]
pub struct FitShape {
    pub k: usize,
    pub m: usize,
    pub n: usize,
}

/// Checks that `prog` fits the shapes and, when `jacobian`, that every live op has a derivative.
pub fn check(
    prog: &Program,
    shape: FitShape,
    n_input_rows: usize,
    jacobian: bool,
) -> Result<(), CoreError> {
    if prog.consts.len() != shape.m {
        return Err(CoreError::Mismatch(format!(
            "the program has {} constant(s) but C has {} column(s)",
            prog.consts.len(),
            shape.m
        )));
    }
    if prog.n_inputs != n_input_rows {
        return Err(CoreError::Mismatch(format!(
            "the program takes {} input(s) but x has {n_input_rows} row(s)",
            prog.n_inputs
        )));
    }
    if jacobian {
        if let Some(&i) = prog
            .live
            .iter()
            .find(|&&i| !jacobian_supported(prog.instrs[i].op))
        {
            return Err(CoreError::InvalidProgram(format!(
                "instruction {}: op {:?} has no derivative for the constant-fit Jacobian",
                i + 1,
                prog.instrs[i].op.name()
            )));
        }
    }
    Ok(())
}

/// Unbiased exponent of a nonzero finite `a` (`frexp`'s exponent minus one).
fn exponent(a: f64) -> i32 {
    let bits = a.to_bits();
    let e = ((bits >> 52) & 0x7ff) as i32;
    if e == 0 {
        let m = bits & ((1u64 << 52) - 1);
        (63 - m.leading_zeros() as i32) - 1074
    } else {
        e - 1023
    }
}

fn getexp(a: f64) -> f64 {
    if a.is_nan() {
        a
    } else if a == 0.0 {
        f64::NEG_INFINITY
    } else if a.is_infinite() {
        f64::INFINITY
    } else {
        f64::from(exponent(a))
    }
}

fn getmant(a: f64) -> f64 {
    if a == 0.0 || !a.is_finite() {
        return a;
    }
    // subnormals: scale into the normal range first (exact)
    let v = if exponent(a) < -1022 {
        a * 2f64.powi(54)
    } else {
        a
    };
    let bits = v.to_bits();
    f64::from_bits((bits & !(0x7ffu64 << 52)) | (1023u64 << 52))
}

fn ldexp_fit(a: f64, b: f64) -> f64 {
    a * b.clamp(-2200.0, 2200.0).trunc().exp2()
}

/// numpy's `minimum`/`maximum`: NaN if either operand is NaN (the first NaN), else the smaller
/// (larger), with ties (`0.0` and `-0.0` too) going to `b` as numpy's do.
fn pick(a: f64, b: f64, is_min: bool) -> bool {
    // true: the result is b
    if a.is_nan() {
        false
    } else if b.is_nan() {
        true
    } else if is_min {
        a >= b
    } else {
        a <= b
    }
}

/// The `fit` value of `op` on one point.
#[inline]
fn value(op: Op, a: f64, b: f64, c: f64) -> f64 {
    match op {
        Op::Add => a + b,
        Op::Sub => a - b,
        Op::Mul => a * b,
        Op::Div => a / b,
        Op::Fma => a * b + c,
        Op::Neg => -a,
        Op::Abs => a.abs(),
        Op::Sqrt => a.sqrt(),
        Op::Min | Op::Max => {
            if pick(a, b, op == Op::Min) {
                b
            } else {
                a
            }
        }
        Op::Rint => a.round_ties_even(),
        Op::Floor => a.floor(),
        Op::Ldexp => ldexp_fit(a, b),
        Op::Getexp => getexp(a),
        Op::Getmant => getmant(a),
        Op::Exp => a.exp(),
        Op::Log => a.ln(),
        Op::Pow => a.powf(b),
    }
}

/// d(a^b)/da given `r = a^b`: `b * r / a` (one division instead of a second `pow`; within a few
/// ULP of the exact derivative, closer than `b * a^(b - 1)` where `b - 1` rounds), and that
/// expression where `r` or `a` is zero, subnormal or not finite (so those cases give what they
/// gave).
#[inline]
fn pow_slope(a: f64, b: f64, r: f64) -> f64 {
    if r.is_normal() && a.is_normal() {
        b * (r / a)
    } else {
        b * a.powf(b - 1.0)
    }
}

/// `pow`'s derivative from its partials `pa`, `pb` and its operands' derivatives `da`, `db`, as
/// `tangent` adds them (a zero derivative adds nothing, so an infinite partial times it is no
/// NaN): 0 + x, then + y, where a skipped x is 0 and a skipped y is -0 (which adds nothing to any
/// value); without branches, so the loop over a block vectorises.
#[inline]
fn pow_tangent(pa: f64, pb: f64, da: f64, db: f64) -> f64 {
    let x = if da == 0.0 { 0.0 } else { pa * da };
    let y = if db == 0.0 { -0.0 } else { pb * db };
    (0.0 + x) + y
}

/// The derivative of `op`'s result `r` given operand values and operand derivatives.
#[inline]
#[allow(clippy::many_single_char_names)]
fn tangent(op: Op, a: f64, b: f64, r: f64, da: f64, db: f64, dc: f64) -> f64 {
    match op {
        Op::Add => da + db,
        Op::Sub => da - db,
        Op::Mul => da * b + a * db,
        Op::Div => (da - r * db) / b,
        Op::Fma => da * b + a * db + dc,
        Op::Neg => -da,
        Op::Abs => {
            if a > 0.0 {
                da
            } else if a < 0.0 {
                -da
            } else {
                0.0
            }
        }
        Op::Sqrt => 0.5 * da / r,
        Op::Min | Op::Max => {
            if pick(a, b, op == Op::Min) {
                db
            } else {
                da
            }
        }
        Op::Exp => r * da,
        Op::Log => da / a,
        Op::Pow => {
            let mut t = 0.0;
            if da != 0.0 {
                t += pow_slope(a, b, r) * da;
            }
            if db != 0.0 {
                t += r * a.ln() * db;
            }
            t
        }
        Op::Rint | Op::Floor | Op::Ldexp | Op::Getexp | Op::Getmant => f64::NAN, // refused by `check`
    }
}

/// Per-thread scratch, kept between calls: slot values (`n_slots x BLOCK`) and, for the
/// Jacobian, slot derivatives (`n_slots x m x BLOCK`). Grown when a bigger program comes.
#[derive(Default)]
struct Scratch {
    vals: Vec<f64>,
    tans: Vec<f64>,
    /// Per slot, the constants it depends on (bit j: constant j; all bits when there are more
    /// than 64 constants): a derivative with respect to any other constant is zero, written
    /// without being computed.
    deps: Vec<u64>,
    /// `pow`'s partial derivatives at each point of a block (with respect to base, exponent).
    dpow: [Vec<f64>; 2],
    /// `(inputs, constants, points)` of the input and constant slots' derivatives now in `tans`:
    /// zeros and unit vectors, the same for every call of that many inputs and constants, which
    /// no call writes otherwise (results go to slots after them), so they are written again only
    /// when those counts change or a call reads more points.
    unit_tans: Option<(usize, usize, usize)>,
}

/// The constants each slot of `prog` depends on (see `Scratch::deps`), into `deps`.
fn dependencies(prog: &Program, m: usize, deps: &mut Vec<u64>) {
    let ni = prog.n_inputs;
    deps.clear();
    deps.resize(prog.n_slots(), 0);
    for j in 0..m {
        deps[ni + j] = if m > 64 { u64::MAX } else { 1 << j };
    }
    let base = prog.first_value_slot();
    for &ii in &prog.live {
        let ins = prog.instrs[ii];
        deps[base + ii] = ins.args[..ins.op.arity()]
            .iter()
            .fold(0, |acc, &a| acc | deps[a as usize]);
    }
}

/// Whether the slot with dependencies `dep` may depend on constant `j`.
#[inline]
fn depends(dep: u64, j: usize) -> bool {
    dep >> j.min(63) & 1 == 1
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

/// Points `start..start + out.len()` (any number of blocks) on this thread's scratch.
fn eval_range(
    prog: &Program,
    c: &[f64],
    xn: (&[f64], usize),
    start: usize,
    out: &mut [f64],
    jac: Option<&mut [f64]>,
) {
    SCRATCH.with(|cell| {
        let s = &mut *cell.borrow_mut();
        let slots = prog.n_slots();
        let m = c.len();
        if s.vals.len() < slots * BLOCK {
            s.vals.resize(slots * BLOCK, 0.0);
        }
        if jac.is_some() && s.tans.len() < slots * m * BLOCK {
            s.tans.resize(slots * m * BLOCK, 0.0);
        }
        // constant slots' values are the same for every block of the range: written once here
        // (only the points a block of this range reads: fewer than BLOCK for a short range); their
        // derivatives and the inputs' (unit vectors, zeros) once per shape (`Scratch::unit_tans`)
        let ni = prog.n_inputs;
        let w = out.len().min(BLOCK);
        for (j, &cj) in c.iter().enumerate() {
            s.vals[(ni + j) * BLOCK..(ni + j) * BLOCK + w].fill(cj);
        }
        if jac.is_some() {
            dependencies(prog, m, &mut s.deps);
            for d in &mut s.dpow {
                if d.len() < BLOCK {
                    d.resize(BLOCK, 0.0);
                }
            }
            if !matches!(s.unit_tans, Some((i, k, width)) if i == ni && k == m && width >= w) {
                for slot in 0..ni + m {
                    for j in 0..m {
                        let at = (slot * m + j) * BLOCK;
                        s.tans[at..at + w].fill(if slot == ni + j { 1.0 } else { 0.0 });
                    }
                }
                s.unit_tans = Some((ni, m, w));
            }
        }
        match jac {
            Some(jac) => {
                for (i, (ob, jb)) in out
                    .chunks_mut(BLOCK)
                    .zip(jac.chunks_mut(BLOCK * m))
                    .enumerate()
                {
                    eval_block(prog, c, xn, start + i * BLOCK, ob, Some(jb), s);
                }
            }
            None => {
                for (i, ob) in out.chunks_mut(BLOCK).enumerate() {
                    eval_block(prog, c, xn, start + i * BLOCK, ob, None, s);
                }
            }
        }
    });
}

/// The derivatives of an instruction's result (slot `dst` of `[a, b, c, dst]`) with respect to
/// every constant at the points of a block, from its operands' values `va`, `vb`, its result `o`
/// and the operand slots' derivatives in `tans` (the same expressions as `tangent`).
fn tangent_block(
    op: Op,
    [a, b, cc, dst]: [usize; 4],
    (va, vb, o): (&[f64], &[f64], &[f64]),
    m: usize,
    tans: &mut [f64],
    (deps, dpow): (&[u64], &mut [Vec<f64>; 2]),
) {
    let len = o.len();
    let mb = m * BLOCK;
    let (tsrc, trest) = tans.split_at_mut(dst * mb);
    let (dep_a, dep_b, dep) = (deps[a], deps[b], deps[dst]);
    if op == Op::Pow {
        // the partials once per point, not once per constant (the same expressions
        // as `tangent`, so the same values)
        let [pa, pb] = dpow;
        for p in 0..len {
            if dep_a != 0 {
                pa[p] = pow_slope(va[p], vb[p], o[p]);
            }
            if dep_b != 0 {
                pb[p] = o[p] * va[p].ln();
            }
        }
    }
    let [pa, pb] = &*dpow;
    for j in 0..m {
        let off = j * BLOCK;
        if !depends(dep, j) {
            trest[off..off + len].fill(0.0);
            continue;
        }
        let (ta, tb, tc) = (
            &tsrc[a * mb + off..],
            &tsrc[b * mb + off..],
            &tsrc[cc * mb + off..],
        );
        let t = &mut trest[off..off + len];
        // one loop per op, as for the values (the same expressions as `tangent`)
        macro_rules! tan {
            ($f:expr) => {
                for p in 0..len {
                    t[p] = $f(va[p], vb[p], o[p], ta[p], tb[p], tc[p]);
                }
            };
        }
        match op {
            Op::Add => tan!(|_, _, _, da: f64, db: f64, _| da + db),
            Op::Sub => tan!(|_, _, _, da: f64, db: f64, _| da - db),
            Op::Mul => tan!(|a: f64, b: f64, _, da: f64, db: f64, _| da * b + a * db),
            Op::Div => tan!(|_, b: f64, r: f64, da: f64, db: f64, _| (da - r * db) / b),
            Op::Fma => {
                tan!(|a: f64, b: f64, _, da: f64, db: f64, dc: f64| da * b + a * db + dc);
            }
            Op::Neg => tan!(|_, _, _, da: f64, _, _| -da),
            Op::Exp => tan!(|_, _, r: f64, da: f64, _, _| r * da),
            Op::Log => tan!(|a: f64, _, _, da: f64, _, _| da / a),
            Op::Pow => {
                let (ta, tb, pa, pb) = (&ta[..len], &tb[..len], &pa[..len], &pb[..len]);
                for p in 0..len {
                    t[p] = pow_tangent(pa[p], pb[p], ta[p], tb[p]);
                }
            }
            _ => tan!(|a, b, r, da, db, dc| tangent(op, a, b, r, da, db, dc)),
        }
    }
}

/// Points `start..start + len` for the constant vector `c`: outputs into `out` (`len`) and,
/// when given, the Jacobian block into `jac` (`len x m`, point-major).
fn eval_block(
    prog: &Program,
    c: &[f64],
    (x, n): (&[f64], usize),
    start: usize,
    out: &mut [f64],
    jac: Option<&mut [f64]>,
    s: &mut Scratch,
) {
    let len = out.len();
    let m = c.len();
    let ni = prog.n_inputs;
    let base = prog.first_value_slot();
    let vals = &mut s.vals;
    let with_jac = jac.is_some();
    let mb = m * BLOCK;
    for &ii in &prog.live {
        let ins = prog.instrs[ii];
        let op = ins.op;
        let [a, b, cc] = ins.args.map(|v| v as usize);
        let dst = base + ii;
        // operands are earlier slots: split so the destination can be written
        let (src, rest) = vals.split_at_mut(dst * BLOCK);
        let o = &mut rest[..len];
        // inputs are read in place; constants and values from the scratch
        let get = |slot: usize| {
            if slot < ni {
                &x[slot * n + start..slot * n + start + len]
            } else {
                &src[slot * BLOCK..slot * BLOCK + len]
            }
        };
        let (va, vb, vc) = (get(a), get(b), get(cc));
        // one loop per op (the op is fixed for the whole block), so each vectorises
        macro_rules! each {
            ($f:expr) => {
                for p in 0..len {
                    o[p] = $f(va[p], vb[p], vc[p]);
                }
            };
        }
        match op {
            Op::Add => each!(|a: f64, b: f64, _| a + b),
            Op::Sub => each!(|a: f64, b: f64, _| a - b),
            Op::Mul => each!(|a: f64, b: f64, _| a * b),
            Op::Div => each!(|a: f64, b: f64, _| a / b),
            Op::Fma => each!(|a: f64, b: f64, c: f64| a * b + c),
            Op::Neg => each!(|a: f64, _, _| -a),
            Op::Abs => each!(|a: f64, _, _| a.abs()),
            Op::Sqrt => each!(|a: f64, _, _| a.sqrt()),
            _ => each!(|a, b, c| value(op, a, b, c)),
        }
        if with_jac {
            tangent_block(
                op,
                [a, b, cc, dst],
                (va, vb, o),
                m,
                &mut s.tans,
                (&s.deps, &mut s.dpow),
            );
        }
    }
    out.copy_from_slice(&vals[prog.output * BLOCK..prog.output * BLOCK + len]);
    if let Some(jac) = jac {
        let at = prog.output * mb;
        for j in 0..m {
            let t = &s.tans[at + j * BLOCK..at + j * BLOCK + len];
            for p in 0..len {
                jac[p * m + j] = t[p];
            }
        }
    }
}

/// One constant vector `c` on the calling thread: outputs at the points `x` (`inputs x n`,
/// `n = out.len()`) into `out` and, when given, the Jacobian into `jac` (`n x m`, point-major).
/// For callers that parallelise over programs themselves (`constfit.rs`); `prog` must pass
/// `check` for these shapes.
pub fn eval_one(prog: &Program, c: &[f64], x: &[f64], out: &mut [f64], jac: Option<&mut [f64]>) {
    let n = out.len();
    if n > 0 {
        eval_range(prog, c, (x, n), 0, out, jac);
    }
}

/// Points per parallel task (a whole number of blocks).
const TASK: usize = 16 * BLOCK;
/// Below this much work (instructions x points x vectors) a call runs on the calling thread:
/// handing tiny fits (one constant vector, ~1000 points) to the pool costs more than it saves.
const SERIAL_WORK: usize = 1 << 16;

/// Evaluates `prog` (already `check`ed) for every row of `consts` (`K x m`) at the points `x`
/// (`inputs x n`) into `out` (`K x n`) and, when given, `jac` (`K x n x m`).
pub fn fit_eval(
    prog: &Program,
    consts: &[f64],
    x: &[f64],
    shape: FitShape,
    out: &mut [f64],
    jac: Option<&mut [f64]>,
) {
    let FitShape { k, m, n } = shape;
    debug_assert_eq!(consts.len(), k * m);
    debug_assert_eq!(out.len(), k * n);
    if n == 0 || k == 0 {
        return;
    }
    let row = |kk: usize| &consts[kk * m..(kk + 1) * m];
    let work = k * n * (prog.live.len() * (1 + if jac.is_some() { m } else { 0 }));
    let serial = work < SERIAL_WORK;
    match jac {
        Some(jac) if m > 0 => {
            debug_assert_eq!(jac.len(), k * n * m);
            let task = |(kk, (orow, jrow)): (usize, (&mut [f64], &mut [f64]))| {
                for (ci, (ob, jb)) in orow
                    .chunks_mut(TASK)
                    .zip(jrow.chunks_mut(TASK * m))
                    .enumerate()
                {
                    eval_range(prog, row(kk), (x, n), ci * TASK, ob, Some(jb));
                }
            };
            if serial {
                out.chunks_mut(n)
                    .zip(jac.chunks_mut(n * m))
                    .enumerate()
                    .for_each(task);
            } else {
                out.par_chunks_mut(n)
                    .zip(jac.par_chunks_mut(n * m))
                    .enumerate()
                    .for_each(|(kk, (orow, jrow))| {
                        orow.par_chunks_mut(TASK)
                            .zip(jrow.par_chunks_mut(TASK * m))
                            .enumerate()
                            .for_each(|(ci, (ob, jb))| {
                                eval_range(prog, row(kk), (x, n), ci * TASK, ob, Some(jb));
                            });
                    });
            }
        }
        _ => {
            if serial {
                for (kk, orow) in out.chunks_mut(n).enumerate() {
                    eval_range(prog, row(kk), (x, n), 0, orow, None);
                }
            } else {
                out.par_chunks_mut(n).enumerate().for_each(|(kk, orow)| {
                    orow.par_chunks_mut(TASK).enumerate().for_each(|(ci, ob)| {
                        eval_range(prog, row(kk), (x, n), ci * TASK, ob, None);
                    });
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prog(ops: &[u8], args: &[i32], m: usize, n_inputs: usize, output: i64) -> Program {
        Program::new(ops, args, vec![0.0; m], n_inputs, output, true).unwrap()
    }

    #[test]
    fn affine_values_and_jacobian() {
        // slots: x=0, c0=1, c1=2; v3 = c0 * x; v4 = v3 + c1
        let p = prog(&[2, 0], &[1, 0, 0, 3, 2, 0], 2, 1, 4);
        let n = 600; // more than two blocks
        let x: Vec<f64> = (0..n).map(|i| i as f64 * 0.01).collect();
        let c = [2.0, 1.0, -1.0, 0.5];
        let shape = FitShape { k: 2, m: 2, n };
        check(&p, shape, 1, true).unwrap();
        let mut out = vec![0.0; 2 * n];
        let mut jac = vec![0.0; 2 * n * 2];
        fit_eval(&p, &c, &x, shape, &mut out, Some(&mut jac));
        for kk in 0..2 {
            for i in 0..n {
                assert_eq!(out[kk * n + i], c[2 * kk] * x[i] + c[2 * kk + 1]);
                assert_eq!(jac[(kk * n + i) * 2], x[i]);
                assert_eq!(jac[(kk * n + i) * 2 + 1], 1.0);
            }
        }
    }

    #[test]
    fn fma_is_unfused_and_exp_derivative() {
        // v3 = fma(c0, x, c1) ; v4 = exp(v3)
        let p = prog(&[4, 15], &[1, 0, 2, 3, 0, 0], 2, 1, 4);
        let x = [0.1, 0.3];
        let c = [0.7, 0.2];
        let shape = FitShape { k: 1, m: 2, n: 2 };
        let mut out = [0.0; 2];
        let mut jac = [0.0; 4];
        fit_eval(&p, &c, &x, shape, &mut out, Some(&mut jac));
        for i in 0..2 {
            let r = (0.7 * x[i] + 0.2f64).exp();
            assert_eq!(out[i], r);
            assert_eq!(jac[2 * i], r * x[i]);
            assert_eq!(jac[2 * i + 1], r);
        }
    }

    #[test]
    fn refuses_jacobian_of_floor_by_name() {
        let p = prog(&[11], &[0, 0, 0], 0, 1, 1);
        let e = check(&p, FitShape { k: 1, m: 0, n: 1 }, 1, true).unwrap_err();
        assert!(
            matches!(e, CoreError::InvalidProgram(ref s) if s.contains("floor")),
            "{e}"
        );
        assert!(check(&p, FitShape { k: 1, m: 0, n: 1 }, 1, false).is_ok());
    }

    #[test]
    fn getexp_getmant_match_frexp() {
        for &a in &[1.0, 1.5, -3.0, 0.75, 5e-324, 1e-310, f64::MAX] {
            let e = getexp(a);
            let m = getmant(a);
            assert!((1.0..2.0).contains(&m.abs()), "{a} {m}");
            assert_eq!(m * 2f64.powf(e), a, "{a}");
        }
        assert_eq!(getexp(0.0), f64::NEG_INFINITY);
    }

    #[test]
    fn pow_slope_is_b_a_to_the_b_minus_one() {
        // b * r / a where a and a^b are normal: within 4 ULP of b * a^(b - 1) (exponents whose
        // b - 1 is exact: otherwise its rounding, times ln a, is the larger error of the two)
        for &a in &[0.5f64, 1.0, 3.7, 1e-3, 2.5e7, 1e150, -2.0] {
            for &b in &[-2.5f64, -1.0, -0.375, 0.25, 0.34375, 1.0, 2.0, 3.0] {
                if a < 0.0 && b != b.trunc() {
                    continue;
                }
                let r: f64 = f64::powf(a, b);
                let want = b * a.powf(b - 1.0);
                if !r.is_normal() || !want.is_normal() {
                    continue;
                }
                let got = pow_slope(a, b, r);
                let ulp = (want.abs().to_bits() as i64 - got.abs().to_bits() as i64).abs();
                assert!(
                    got.signum() == want.signum() && ulp <= 4,
                    "{a} {b}: {got} {want}"
                );
            }
        }
        // where a or a^b is zero, subnormal or not finite: b * a^(b - 1), as before
        for &(a, b) in &[
            (0.0f64, 0.5f64),
            (0.0, 2.0),
            (1e-310, 0.5),
            (1e200, 2.0),
            (1e-160, 2.0),
            (f64::INFINITY, 0.5),
        ] {
            let want: f64 = b * f64::powf(a, b - 1.0);
            assert_eq!(
                pow_slope(a, b, f64::powf(a, b)).to_bits(),
                want.to_bits(),
                "{a} {b}"
            );
        }
        assert!(pow_slope(-2.0, 0.5, f64::NAN).is_nan());
        // a subnormal r has lost bits: the ratio would be off where the fallback is not
        let r: f64 = f64::powf(1e-160, 2.0);
        assert!(r.is_subnormal() && 2.0 * (r / 1e-160) != pow_slope(1e-160, 2.0, r));
    }

    #[test]
    fn pow_tangent_adds_like_tangent() {
        // the branch-free sum against tangent's: the same bits for zero, signed zero, infinite
        // and NaN partials and derivatives
        let vals = [
            0.0,
            -0.0,
            1.5,
            -2.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            1e-310,
        ];
        for &pa in &vals {
            for &pb in &vals {
                for &da in &vals {
                    for &db in &vals {
                        let mut want = 0.0;
                        if da != 0.0 {
                            want += pa * da;
                        }
                        if db != 0.0 {
                            want += pb * db;
                        }
                        let got = pow_tangent(pa, pb, da, db);
                        assert_eq!(got.to_bits(), want.to_bits(), "{pa} {pb} {da} {db}");
                    }
                }
            }
        }
    }

    #[test]
    fn unit_derivatives_survive_other_shapes_on_the_same_thread() {
        // program A (1 input, 2 constants): c0 * x + c1; program B (1 input, 1 constant) puts its
        // values where A keeps its constants' unit derivatives; then A on fewer and more points
        let a = prog(&[2, 0], &[1, 0, 0, 3, 2, 0], 2, 1, 4);
        let b = prog(&[2, 2, 2], &[1, 0, 0, 2, 2, 0, 3, 3, 0], 1, 1, 4);
        let x: Vec<f64> = (0..300).map(|i| f64::from(i) * 0.01 - 1.0).collect();
        let jac_a = |n: usize| {
            let (mut out, mut jac) = (vec![0.0; n], vec![0.0; n * 2]);
            eval_one(&a, &[2.0, 1.0], &x[..n], &mut out, Some(&mut jac));
            jac
        };
        let first = jac_a(300);
        for i in 0..300 {
            assert_eq!((first[2 * i], first[2 * i + 1]), (x[i], 1.0));
        }
        let (mut out, mut jac) = (vec![0.0; 300], vec![0.0; 300]);
        eval_one(&b, &[0.5], &x, &mut out, Some(&mut jac));
        assert_eq!(jac_a(300), first);
        assert_eq!(jac_a(10), first[..20]);
        assert_eq!(jac_a(300), first);
    }
}
