"""Law constants: fitting a float64 program's constants to data, and the error that ranks it.

Each candidate's constants are fitted by Levenberg-Marquardt least squares on the residuals in
the fit space (log y for loss data), or with a Huber loss; :func:`bootstrap_constants` gives
percentile intervals by refitting on resampled rows. Fitting evaluates a whole batch of constant
vectors at once with :class:`ConstKernel` (the shared :class:`pysearch.fit_kernel.FitKernel`
over the registry's ``law_fit`` ops, the Rust core's ``fit_eval``); that kernel is used for
fitting only, never for the reported errors, which come from the engine (:func:`engine_evaluate`).

Two fitters, both on exact forward-mode Jacobians from the core (no finite differences):

- :func:`fit_constants`: scipy's ``least_squares`` (MINPACK LM; trf for Huber or when constants
  outnumber rows), for the chosen law, its bootstrap and the extrapolation check, where the
  iteration count matters less than the last digit;
- :func:`lm_fit` / :func:`fit_many`: the search's fitter (:class:`~pysearch.search.law_problem.LawProblem`
  fits every new structure of a generation with it). Levenberg-Marquardt with Marquardt scaling,
  Huber by iteratively reweighted least squares (the same minimiser as scipy's Huber loss), and
  three damping values tried per iteration in *one* core call that also returns their
  Jacobians, so an iteration is one GIL-free call plus a few small numpy operations.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy import optimize

from pysearch.evaluation import evaluate
from pysearch.fit_kernel import FitKernel
from pysearch.laws.forms import finite_clip, to_space
from pysearch.ops import ops_where
from pysearch.program import Program

#: Ops whose constants law fitting can fit: the registry's ``law_fit`` ops (evaluated by their ``fit`` hook).
KERNEL_OPS = ops_where("law_fit")
_RESID_CAP = 1e6


class ConstKernel(FitKernel):
    """Evaluate one law program structure for many constant vectors at once: ``(K, m) -> (K, n)``.

    The fit kernel of :mod:`pysearch.fit_kernel` restricted to :data:`KERNEL_OPS` (the float32
    constant fit of ``search/constants.py`` uses the same kernel over every op).
    """

    def __init__(self, program: Program):
        super().__init__(program, KERNEL_OPS, "when fitting law constants")


def engine_evaluate(programs: list[Program], X: np.ndarray) -> np.ndarray:
    """Predictions ``(P, n)`` from the engine (:func:`pysearch.evaluate`)."""
    X = np.ascontiguousarray(X, dtype=np.float64)
    with np.errstate(all="ignore"):
        return np.asarray(evaluate(programs, X), dtype=np.float64).reshape(len(programs), -1)


def search_error(pred: np.ndarray, t: np.ndarray, space: str, loss: str = "lsq", delta: float = 1e-3) -> np.ndarray:
    """Per row of ``pred``: RMSE of the residuals in ``space`` (``loss="lsq"``), or their mean
    Huber loss divided by ``delta`` (``"huber"``; about the mean absolute residual when residuals
    exceed delta). Inf where any prediction is unusable."""
    with np.errstate(all="ignore"):
        ps = to_space(pred, space)
        r = ps - t
        if loss == "huber":
            a = np.abs(r)
            e = np.mean(np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta)), axis=-1) / delta
        else:
            e = np.sqrt(np.mean(r * r, axis=-1))
        bad = ~np.all(np.isfinite(pred), axis=-1) | (np.max(np.abs(ps), axis=-1) >= 1e299)
        if space == "log":
            bad |= np.any(pred <= 0, axis=-1)
        elif space == "loglog":
            bad |= np.any((pred <= 0) | (pred >= 1), axis=-1)
    return np.where(bad | ~np.isfinite(e), np.inf, e)


def fit_constants(
    program: Program,
    cols: Sequence[np.ndarray],
    t: np.ndarray,
    space: str,
    max_nfev: int = 60,
    loss: str = "lsq",
    delta: float = 1e-3,
) -> Program:
    """Constants by least squares (Levenberg-Marquardt; trf when constants outnumber rows), or
    with ``loss="huber"`` by trf on scipy's Huber loss with scale ``delta``. Returns the program
    unchanged if the fit fails or does not lower the objective."""
    kern = ConstKernel(program)
    c0 = np.asarray(program.constants(), dtype=np.float64)
    m = len(c0)
    if m == 0:
        return program

    def resid_many(C: np.ndarray) -> np.ndarray:
        return finite_clip(to_space(kern(C, cols), space) - t, _RESID_CAP)

    def fun(c):
        return resid_many(c[None, :])[0]

    def jac(c):
        out = kern.jacobian(c[None, :], cols)
        if out is None:  # an op without a derivative (not a law op today): central differences
            h = 1e-6 * np.maximum(np.abs(c), 1e-3)
            C = np.repeat(c[None, :], 2 * m, axis=0)
            idx = np.arange(m)
            C[idx, idx] += h
            C[m + idx, idx] -= h
            R = resid_many(C)
            return ((R[:m] - R[m:]) / (2 * h[:, None])).T
        F, J = out
        return residual_jacobian(F[0], J[0], space)

    def objective(c):
        return float(search_error(kern(c[None, :], cols), t, space, loss, delta)[0])

    if not np.all(np.isfinite(fun(c0))):
        return program
    if loss == "huber":
        kw = {"method": "trf", "loss": "huber", "f_scale": delta}
    else:
        kw = {"method": "lm" if len(t) >= m else "trf"}
    try:
        with np.errstate(all="ignore"):
            res = optimize.least_squares(fun, c0, jac=jac, max_nfev=max_nfev, **kw)
    except (ValueError, np.linalg.LinAlgError):
        return program
    c = res.x
    if not np.all(np.isfinite(c)) or not objective(c) <= objective(c0):
        return program
    return program.with_constants([float(v) for v in c])


def residual_jacobian(F: np.ndarray, J: np.ndarray, space: str) -> np.ndarray:
    """d(residual)/d(constants) ``(..., n, m)`` from outputs ``F`` ``(..., n)`` and their Jacobian
    ``J`` ``(..., n, m)``: the chain rule through :func:`~pysearch.laws.forms.to_space` (zero where
    it clips or the residual is capped)."""
    with np.errstate(all="ignore"):
        if space == "linear":
            d = np.ones_like(F)
        elif space == "log":
            d = np.where(F > 1e-300, 1.0 / F, 0.0)
        else:  # loglog: log(-log F)
            d = np.where((F > 1e-300) & (F < 1.0), 1.0 / (F * np.log(F)), 0.0)
        out = J * d[..., None]
    return np.where(np.isfinite(out), out, 0.0)


def _residuals(F: np.ndarray, t: np.ndarray, space: str) -> np.ndarray:
    """``finite_clip(to_space(F, space) - t, _RESID_CAP)``, with fewer numpy calls for the common spaces."""
    if space == "loglog":
        return finite_clip(to_space(F, space) - t, _RESID_CAP)
    with np.errstate(all="ignore"):
        r = (np.log(np.maximum(F, 1e-300)) if space == "log" else F) - t
    r[np.isnan(r)] = _RESID_CAP
    return np.minimum(np.maximum(r, -_RESID_CAP), _RESID_CAP, out=r)


def _cost(R: np.ndarray, loss: str, delta: float) -> np.ndarray:
    """Per row of residuals: half the sum of squares, or the summed Huber loss."""
    if loss == "huber":
        a = np.abs(R)
        return np.sum(np.where(a <= delta, 0.5 * R * R, delta * (a - 0.5 * delta)), axis=-1)
    return 0.5 * np.sum(R * R, axis=-1)


#: :func:`lm_fit` stops once an accepted step lowers the cost by less than this fraction, or
#: moves no constant by more than ``XTOL`` of its size (a search ranks
#: candidates: the last digits of a slowly converging Huber fit do not change which survive).
FTOL = 1e-6
XTOL = 1e-9
#: Damping multipliers tried together in one iteration of :func:`lm_fit`.
_TRIALS = np.array([0.1, 1.0, 10.0])


def lm_fit(
    kern: ConstKernel,
    X: np.ndarray,
    t: np.ndarray,
    space: str,
    loss: str = "lsq",
    delta: float = 1e-3,
    max_iter: int = 40,
    c0: np.ndarray | None = None,
) -> tuple[np.ndarray, float]:
    """Levenberg-Marquardt on ``kern``'s constants: ``(constants, cost)``, never worse than the start.

    ``X``: the ``(inputs, n)`` matrix; ``t``: targets in ``space``. Each iteration solves the
    damped normal equations (Marquardt's diagonal scaling; Huber: weights ``min(1, delta/|r|)``)
    for three damping values and evaluates all three, with their Jacobians, in one core call; the
    best that lowers the cost is taken. Stops when the relative decrease falls below 1e-12, the
    step vanishes, the damping runs away, or after ``max_iter`` iterations.
    """
    c = np.asarray(kern.program.constants() if c0 is None else c0, dtype=np.float64).copy()
    m = len(c)
    out = kern.jacobian(c[None, :], X) if m else None
    if out is None:
        return c, math.inf
    F, J = out
    r = _residuals(F[0], t, space)
    Jr = residual_jacobian(F[0], J[0], space)
    cur = float(_cost(r, loss, delta))
    lam = 1e-3
    eye = np.eye(m)
    for _ in range(max_iter):
        if loss == "huber":
            a = np.abs(r)
            w = np.where(a <= delta, 1.0, delta / np.maximum(a, 1e-300))
            A = Jr.T @ (Jr * w[:, None])
            g = Jr.T @ (w * r)
        else:
            A = Jr.T @ Jr
            g = Jr.T @ r
        diag = np.diag(A)
        scale = np.maximum(diag, 1e-12 * max(float(diag.max()), 1e-300))
        lams = lam * _TRIALS
        M = A[None, :, :] + (lams[:, None, None] * (scale * eye)[None, :, :])
        try:
            steps = np.linalg.solve(M, np.repeat(-g[None, :, None], len(lams), axis=0))[:, :, 0]
        except np.linalg.LinAlgError:
            break
        C = c[None, :] + steps
        ok = np.all(np.isfinite(C), axis=1)
        if not ok.any():
            break
        C = np.where(ok[:, None], C, c[None, :])
        F, J = kern.jacobian(C, X)
        R = _residuals(F, t, space)
        costs = np.where(ok, _cost(R, loss, delta), np.inf)
        k = int(np.argmin(costs))
        new = float(costs[k])
        if new < cur:
            decrease = (cur - new) / max(cur, 1e-300)
            step = float(np.max(np.abs(steps[k]) / (np.abs(c) + 1e-12)))
            c, r, cur = C[k].copy(), R[k], new
            Jr = residual_jacobian(F[k], J[k], space)
            lam = max(lams[k] * 0.3, 1e-12)
            if decrease < FTOL or step < XTOL or cur == 0.0:
                break
        else:
            lam = lams[-1] * 10.0
            if lam > 1e12:
                break
    return c, cur


def fit_many(
    programs: Sequence[Program],
    X: np.ndarray,
    t: np.ndarray,
    space: str,
    loss: str = "lsq",
    delta: float = 1e-3,
    max_iter: int = 40,
) -> list[Program]:
    """Each program with constants fitted by :func:`lm_fit` on ``X`` (``(inputs, n)``), or unchanged
    where the fit cannot start (non-finite constants) or does not lower the cost."""
    X = np.ascontiguousarray(X, dtype=np.float64)
    out = []
    for p in programs:
        kern = ConstKernel(p)
        c0 = np.asarray(p.constants(), dtype=np.float64)
        if not len(c0) or not np.all(np.isfinite(c0)):
            out.append(p)
            continue
        c, _ = lm_fit(kern, X, t, space, loss, delta, max_iter, c0)
        out.append(p if np.array_equal(c, c0) else p.with_constants([float(v) for v in c]))
    return out


def bootstrap_constants(
    program: Program,
    X: np.ndarray,
    y: np.ndarray,
    space: str,
    n_boot: int = 200,
    seed: int = 0,
    level: float = 0.95,
    loss: str = "lsq",
    delta: float = 1e-3,
) -> tuple[dict[str, tuple[float, float]], int]:
    """Percentile intervals for the constants ``c1..cm``: resample rows, refit (same loss)."""
    m = len(program.constants())
    if m == 0 or n_boot < 2:
        return {}, 0
    X = np.atleast_2d(np.asarray(X, dtype=np.float64))
    y = np.asarray(y, dtype=np.float64)
    rng = np.random.default_rng(seed)
    samples, failed = [], 0
    for _ in range(n_boot):
        idx = rng.integers(0, len(y), len(y))
        cols = [np.ascontiguousarray(c[idx]) for c in X]
        q = fit_constants(program, cols, to_space(y[idx], space), space, max_nfev=200, loss=loss, delta=delta)
        c = np.asarray(q.constants())
        if np.all(np.isfinite(c)):
            samples.append(c)
        else:
            failed += 1
    if len(samples) < 2:
        return {}, failed
    S = np.array(samples)
    qlo = 100 * (1 - level) / 2
    lo, hi = np.percentile(S, qlo, axis=0), np.percentile(S, 100 - qlo, axis=0)
    return {f"c{i + 1}": (float(lo[i]), float(hi[i])) for i in range(m)}, failed
