"""Constant optimisation: fit a program's constants to the target, then tune them in float32.

Two stages, as in classical minimax design:

1. **Real-valued fit** (float64 evaluation). A program that is affine in its constants (Horner
   and Estrin polynomials with ``fma`` are) is detected numerically; its constants are fitted by
   Lawson's iteratively reweighted least squares to minimise the maximum error in units of the
   target's ULP (relative error, weighted per binade). Other programs get a few rounds of
   reweighted Levenberg-Marquardt (with the exact forward-mode Jacobian), then a short
   Nelder-Mead polish on the max error itself.
2. **float32 tuning** (the fpminimax idea): the fitted constants are rounded to float32 and each
   is moved to neighbouring float32 values (1, 2, 4, 8, 32 ulps away), coordinate-descent style,
   keeping the best move while it lowers the float32 (max ULP, mean ULP) on the sample.

Both stages run in the Rust core (``rust/constfit.rs``): :func:`optimize_constants_batch` fits
many programs in one GIL-free call (in parallel over programs), :func:`tune_float32` tunes in one
call (``_core.tune_constants``). No finite differences and no per-candidate Python round trips.
:func:`optimize_constants_python` is the earlier numpy/scipy implementation of the same two
stages (finite differences where an op has no derivative), kept as the reference the
benchmarks (experiments/bench_fit.py, experiments/bench_search.py) measure the core against.

Everything here is deterministic: it depends only on the program and the sample.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..fit_kernel import FitKernel
from ..program import Program
from ..targets import reference
from ..ulp import neighbour, ulp32

#: Neighbouring float32 steps (in ulps) tried for each constant per tuning round.
TUNE_STEPS = (1, 2, 4, 8, 32)


@dataclass
class FitSample:
    """The points constants are fitted on: float32 inputs, f(x) in float64, and ulp(f(x))."""

    target: object
    x: np.ndarray  # float32, the search sample (ULP errors are measured on it)
    ref: np.ndarray  # float64 f(x)
    rounded: np.ndarray  # float32, f(x) correctly rounded
    x_fit: np.ndarray  # float64 (1, n) matrix: finite-target subset used by the real-valued fit
    f_fit: np.ndarray  # float64 f(x_fit)
    scale_fit: np.ndarray  # ulp(f(x_fit))

    @classmethod
    def build(cls, target: object, x: np.ndarray, max_fit_points: int = 1024) -> "FitSample":
        """Fit on at most ``max_fit_points`` of the float32 points ``x``; tune on all of them."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        ref, rounded = reference(target, x)
        f = np.asarray(ref, dtype=np.float64)
        ok = np.isfinite(f)
        idx = np.flatnonzero(ok)
        if len(idx) > max_fit_points:
            # keep points spread in value and in bit pattern: every k-th sorted point
            idx = idx[np.round(np.linspace(0, len(idx) - 1, max_fit_points)).astype(np.int64)]
            idx = np.unique(idx)
        xf = np.ascontiguousarray(x[idx].astype(np.float64).reshape(1, -1))
        ff = f[idx]
        return cls(target, x, np.ascontiguousarray(f), np.ascontiguousarray(rounded, dtype=np.float32), xf, ff,
                   ulp32(ff))


@dataclass
class FitResult:
    """A program with optimised constants and what was learned on the way."""

    program: Program
    affine: bool
    fit_error: float  # max error (ulps) of the real-valued fit on the fit points
    max_ulp: float  # float32 max ULP error on the search sample after tuning


def _eval_real(program: Program, C: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Evaluate ``program`` in float64 for every row of constants ``C`` at once: shape (len(C), n)."""
    return FitKernel(program)(C, x)


class ConstantBatch:
    """One program structure evaluated with many constant vectors at once.

    Constant fitting evaluates the same structure thousands of times with different constants,
    so this compiles it once and hands the Rust core the flat arrays directly (the same arrays
    :meth:`Program.compile` produces), skipping per-call parsing and validation.
    """

    def __init__(self, program: Program):
        c = program.compile()
        self.program = program
        self.opcodes, self.args, self.n_inputs, self.output = c.opcodes, c.args, c.n_inputs, c.output
        self.k = len(c.consts)
        self.kernel = FitKernel(program)

    def _tuples(self, C) -> list[tuple]:
        return [(self.opcodes, self.args, np.ascontiguousarray(c, dtype=np.float64), self.n_inputs, self.output)
                for c in C]

    def eval64(self, C, x: np.ndarray) -> np.ndarray:
        """Real-valued outputs (float64, fma as a*b+c), shape (len(C), n), for the (1, n) inputs ``x``.

        All constant vectors go to the core together in one call (:class:`FitKernel`).
        Bit-exactness does not matter here (only the float32 stage measures real errors).
        """
        C = np.asarray(C, dtype=np.float64).reshape(len(C), self.k)
        return self.kernel(C, np.asarray(x, dtype=np.float64))

    def ulp32(self, C, sample: FitSample) -> tuple[np.ndarray, np.ndarray]:
        """(max ULP, mean ULP) of the float32 program for each constant vector (rounded to float32)."""
        from pysearch import _core

        C32 = [np.asarray(c, dtype=np.float32).astype(np.float64) for c in C]
        cols = _core.sample_ulp_errors(self._tuples(C32), sample.x, sample.ref, sample.rounded)
        mx = np.asarray(cols["max_ulp"], dtype=np.float64)
        mean = np.where(np.asarray(cols["n_infinite"]) > 0, np.inf,
                        np.asarray(cols["sum_ulp"], dtype=np.float64) / np.maximum(np.asarray(cols["n"]), 1))
        return np.where(np.isnan(mx), np.inf, mx), mean


# ---------------------------------------------------------------- real-valued fit
def _affine_basis(batch: ConstantBatch, c0: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """If the program is affine in its constants, return (A, y0) with y(c) = y0 + A (c - c0)."""
    k = len(c0)
    rng = np.random.default_rng(12345)
    steps = np.where(np.abs(c0) > 0, np.abs(c0), 1.0)
    probes = [c0 + rng.standard_normal(k) * 0.3 * steps for _ in range(2)]
    C = [c0] + [c0 + steps[j] * np.eye(k)[j] for j in range(k)] + probes
    Y = batch.eval64(C, x)
    if not np.all(np.isfinite(Y)):
        return None
    y0 = Y[0]
    A = (Y[1 : k + 1] - y0).T / steps
    mag = np.abs(Y).max(axis=0) + np.abs(A).sum(axis=1) * np.abs(np.stack(probes)).max(axis=0).max() + 1e-300
    for c, yc in zip(probes, Y[k + 1 :]):
        pred = y0 + A @ (c - c0)
        if np.max(np.abs(pred - yc) / mag) > 1e-9:
            return None
    return A, y0


def lawson(A: np.ndarray, b: np.ndarray, scale: np.ndarray, iters: int = 60) -> tuple[np.ndarray, float]:
    """Minimise max |A c - b| / scale by Lawson's reweighted least squares; return (c, max error)."""
    n, k = A.shape
    As = A / scale[:, None]
    bs = b / scale
    norms = np.sqrt(np.einsum("ij,ij->j", As, As))
    norms[norms == 0] = 1.0
    As = As / norms
    w = np.full(n, 1.0 / n)
    best_c, best_err = np.zeros(k), math.inf
    ridge = 1e-13
    for _ in range(iters):
        Aw = As * w[:, None]
        G = np.einsum("ij,ik->jk", Aw, As)
        G[np.diag_indices(k)] += ridge * np.trace(G) / k
        try:
            c = np.linalg.solve(G, np.einsum("ij,i->j", Aw, bs))
            # one step of iterative refinement (the normal equations square the conditioning)
            r = bs - As @ c
            c = c + np.linalg.solve(G, np.einsum("ij,i->j", Aw, r))
        except np.linalg.LinAlgError:
            break
        r = np.abs(As @ c - bs)
        err = float(r.max())
        if not math.isfinite(err):
            break
        if err < best_err:
            best_c, best_err = c.copy(), err
        w = w * r
        total = w.sum()
        if total <= 0:
            break
        w /= total
        # keep weights from collapsing to exact zeros
        w = np.maximum(w, 1e-30)
    return best_c / norms, best_err


def _fit_affine(batch: ConstantBatch, c0: np.ndarray, sample: FitSample, basis) -> tuple[np.ndarray, float]:
    A, y0 = basis
    b = sample.f_fit - y0 + A @ c0
    c, err = lawson(A, b, sample.scale_fit)
    return c, err


def levenberg_marquardt(fun, jac, c0: np.ndarray, max_evals: int) -> tuple[np.ndarray, int]:
    """Minimise ||fun(c)||^2 from ``c0``; return (c, function evaluations used).

    A plain damped Gauss-Newton written with numpy (einsum and a k x k solve), so results
    depend only on the inputs. (scipy's MINPACK ``least_squares(method="lm")`` was seen to
    give different answers for identical calls within one process, which would break
    reproducible searches.)
    """
    c = np.asarray(c0, dtype=np.float64).copy()
    r = fun(c)
    cost = float(np.einsum("i,i->", r, r))
    evals = 1
    lam = 1e-3
    while evals < max_evals:
        J, n_j = jac(c)
        evals += n_j
        g = np.einsum("ij,i->j", J, r)
        H = np.einsum("ij,ik->jk", J, J)
        d = np.diag(H).copy()
        d[d <= 0] = 1.0
        improved = False
        while evals < max_evals and lam < 1e12:
            try:
                step = np.linalg.solve(H + lam * np.diag(d), -g)
            except np.linalg.LinAlgError:
                lam *= 10
                continue
            c_new = c + step
            r_new = fun(c_new)
            evals += 1
            cost_new = float(np.einsum("i,i->", r_new, r_new))
            if np.isfinite(cost_new) and cost_new < cost:
                improved = True
                rel = (cost - cost_new) / max(cost, 1e-300)
                c, r, cost = c_new, r_new, cost_new
                lam = max(lam / 3, 1e-12)
                break
            lam *= 4
        if not improved or rel < 1e-10:
            break
    return c, evals


def _fit_general(batch: ConstantBatch, c0: np.ndarray, sample: FitSample, max_evals: int) -> tuple[np.ndarray, float]:
    """Reweighted Levenberg-Marquardt on ULP-scaled residuals, then Nelder-Mead on the max."""
    from scipy.optimize import minimize

    x, f, s = sample.x_fit, sample.f_fit, sample.scale_fit
    k = len(c0)
    big = 1e12

    def resid_many(cs: list[np.ndarray]) -> np.ndarray:
        Y = batch.eval64(cs, x)
        R = (Y - f) / s
        return np.where(np.isfinite(R), R, big)

    def max_err(c: np.ndarray) -> float:
        return float(np.max(np.abs(resid_many([c])[0])))

    best_c, best_err = c0.copy(), max_err(c0)
    c = c0.copy()
    w = np.ones(len(f))
    evals = 1
    eye = np.eye(k)
    exact = batch.kernel.has_jacobian
    for _ in range(3):
        if evals >= max_evals:
            break
        sw = np.sqrt(w)

        def fun(c):
            return resid_many([c])[0] * sw

        def jac(c):
            if exact:  # forward-mode derivatives from the core: one call, no differencing
                Y, D = batch.kernel.jacobian(c[None, :], x)
                R = (Y[0] - f) / s
                J = D[0] / s[:, None]
                return np.where(np.isfinite(R)[:, None] & np.isfinite(J), J, 0.0) * sw[:, None], 1
            h = 1e-7 * np.maximum(np.abs(c), 1e-3)
            R = resid_many([c] + [c + h[j] * eye[j] for j in range(k)]) * sw
            return ((R[1:] - R[0]) / h[:, None]).T, 1

        c, used = levenberg_marquardt(fun, jac, c, max(10, (max_evals - evals) // 3))
        evals += used
        r = np.abs(resid_many([c])[0])
        e = float(r.max())
        if e < best_err:
            best_c, best_err = c.copy(), e
        w = w * (r / (r.mean() + 1e-300))
        w = w / w.mean()
    if best_err > 0 and evals < max_evals and k <= 12:
        res = minimize(max_err, best_c, method="Nelder-Mead",
                       options={"maxfev": max(20, max_evals - evals), "xatol": 0.0, "fatol": 1e-3})
        if res.fun < best_err:
            best_c, best_err = np.asarray(res.x), float(res.fun)
    return best_c, best_err


# ---------------------------------------------------------------- float32 tuning
def tune_float32(program: Program, sample: FitSample, rounds: int = 8,
                 batch: ConstantBatch | None = None, free: Sequence[int] | None = None) -> tuple[Program, float, float]:
    """Coordinate descent over neighbouring float32 constants; return (program, max_ulp, mean_ulp).

    Each round tries every constant (or those whose positions in :meth:`Program.constants` are
    listed in ``free``) at each of :data:`TUNE_STEPS` ulps up and down and keeps the best move if
    it lowers (max ULP, mean ULP) on ``sample``; all rounds run in one core call
    (``_core.tune_constants``). ``batch`` is accepted for the callers of the numpy version and
    not needed.
    """
    from pysearch import _core

    consts, mx, mean = _core.tune_constants([program.compile().as_tuple()], sample.x, sample.ref, sample.rounded,
                                            rounds=rounds, free=None if free is None else [int(j) for j in free])
    return program.with_constants([float(c) for c in consts[0]]), float(mx[0]), float(mean[0])


def _tune_float32_python(program: Program, sample: FitSample, rounds: int = 8,
                         batch: ConstantBatch | None = None, free: Sequence[int] | None = None) -> tuple[Program, float, float]:
    """The numpy version of :func:`tune_float32` (one ``sample_ulp_errors`` call per round).

    Each round tries every constant (or those whose positions in :meth:`Program.constants` are
    listed in ``free``) at each of :data:`TUNE_STEPS` ulps up and down (one batch) and keeps the
    best move if it lowers (max ULP, mean ULP) on ``sample``.
    """
    batch = batch or ConstantBatch(program)
    consts = [float(np.float32(c)) for c in program.constants()]
    m, a = batch.ulp32([consts], sample)
    best = (float(m[0]), float(a[0]))
    if not consts or not math.isfinite(best[0]):
        return program.with_constants(consts), best[0], best[1]
    for _ in range(rounds):
        cands: list[list[float]] = []
        for j, v in enumerate(consts):
            if not math.isfinite(v) or (free is not None and j not in free):
                continue
            for s in TUNE_STEPS:
                for sign in (1, -1):
                    nv = neighbour(v, sign * s)
                    if nv != v and math.isfinite(nv):
                        c = list(consts)
                        c[j] = nv
                        cands.append(c)
        if not cands:
            break
        mx, mean = batch.ulp32(cands, sample)
        i = int(np.lexsort((mean, mx))[0])
        if (mx[i], mean[i]) < best:
            best = (float(mx[i]), float(mean[i]))
            consts = cands[i]
        else:
            break
    return program.with_constants(consts), best[0], best[1]


# ---------------------------------------------------------------- entry point
def optimize_constants_batch(programs: Sequence[Program], sample: FitSample, max_evals: int = 120,
                             tune_below: float = 4.0, tune_rounds: int = 8) -> list[FitResult]:
    """Fit and tune the constants of every program in one core call (``_core.fit_constants``).

    Each result is never worse on the sample than its program. float32 tuning runs only when
    the real-valued fit is within ``tune_below`` ulps (farther off, rounding the constants is
    all that matters). Programs with an op that has no derivative (rint, floor, ldexp, getexp,
    getmant) get Nelder-Mead alone in the real-valued stage.
    """
    from pysearch import _core

    programs = list(programs)
    if not programs:
        return []
    out = _core.fit_constants([p.compile().as_tuple() for p in programs], sample.x_fit[0], sample.f_fit,
                              sample.scale_fit, sample.x, sample.ref, sample.rounded, max_evals=max_evals,
                              tune_below=tune_below, tune_rounds=tune_rounds)
    results = []
    for i, p in enumerate(programs):
        fitted = p.with_constants([float(c) for c in out["consts"][i]]) if out["fitted"][i] else p
        results.append(FitResult(fitted, bool(out["affine"][i]), float(out["fit_error"][i]), float(out["max_ulp"][i])))
    return results


def optimize_constants(program: Program, sample: FitSample, max_evals: int = 120,
                       tune_below: float = 4.0, tune_rounds: int = 8) -> FitResult:
    """Fit and tune ``program``'s constants (:func:`optimize_constants_batch` of one program)."""
    return optimize_constants_batch([program], sample, max_evals, tune_below, tune_rounds)[0]


def optimize_constants_python(program: Program, sample: FitSample, max_evals: int = 120,
                              tune_below: float = 4.0, tune_rounds: int = 8) -> FitResult:
    """The numpy/scipy implementation of :func:`optimize_constants` (the benchmarks' baseline)."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return _optimize(program, sample, max_evals, tune_below, tune_rounds)


def _optimize(program: Program, sample: FitSample, max_evals: int, tune_below: float, tune_rounds: int) -> FitResult:
    consts = np.array(program.constants(), dtype=np.float64)
    batch = ConstantBatch(program)
    orig_err = float(batch.ulp32([consts], sample)[0][0])
    if len(consts) == 0 or not np.all(np.isfinite(consts)):
        return FitResult(program, False, math.inf, orig_err)
    basis = _affine_basis(batch, consts, sample.x_fit)
    if basis is not None:
        c, fit_err = _fit_affine(batch, consts, sample, basis)
    else:
        c, fit_err = _fit_general(batch, consts, sample, max_evals)
    with np.errstate(over="ignore", invalid="ignore"):
        c32 = np.asarray(c, dtype=np.float64).astype(np.float32).astype(np.float64)
    if not np.all(np.isfinite(c32)):
        return FitResult(program, basis is not None, fit_err, orig_err)
    fitted = program.with_constants(list(c32))
    if fit_err <= tune_below:
        fitted, err, _ = _tune_float32_python(fitted, sample, rounds=tune_rounds, batch=batch)
    else:
        err = float(batch.ulp32([c32], sample)[0][0])
    if not err <= orig_err:  # also catches NaN
        return FitResult(program, basis is not None, fit_err, orig_err)
    return FitResult(fitted, basis is not None, fit_err, err)
