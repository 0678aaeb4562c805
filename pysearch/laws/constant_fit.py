"""Law constants: fitting a float64 program's constants to data, and the error that ranks it.

Each candidate's constants are fitted by Levenberg-Marquardt least squares on the residuals in
the fit space (log y for loss data), or with a Huber loss; :func:`bootstrap_constants` gives
percentile intervals by refitting on resampled rows. Fitting evaluates a whole batch of constant
vectors at once with :class:`ConstKernel` (the shared :class:`pysearch.fit_kernel.FitKernel`
over the registry's ``law_fit`` ops, the Rust core's ``fit_eval``); that kernel is used for
fitting only, never for the reported errors, which come from the engine (:func:`engine_evaluate`).

Three fitters, all on exact forward-mode Jacobians from the core (no finite differences):

- :func:`fit_constants`: scipy's ``least_squares`` (MINPACK LM; trf for Huber or when constants
  outnumber rows), for the bootstrap of the chosen law (each resample its own rows), where the
  iteration count matters less than the last digit;
- :func:`fit_many`: the search's fitter (:class:`~pysearch.search.law_problem.LawProblem` fits
  every new structure of a generation with it) and the extrapolation backtests' (every front
  member refitted below a cut in one call, :func:`refit_predict`). Levenberg-Marquardt with
  Marquardt scaling, Huber by iteratively reweighted least squares (the same minimiser as
  scipy's Huber loss), run entirely in the Rust core (``_core.fit_laws``, rust/lawfit.rs): one GIL-free call fits the whole
  batch, in parallel over programs.
- :func:`lm_fit_many` / :func:`fit_many_numpy`: the same algorithm with the same rules in numpy
  (the programs in lock step, each trial step evaluated with its Jacobian in one ``fit_eval``
  call, one batched solve per iteration): the reference the core is tested against and the
  baseline ``experiments/bench_search.py --laws-only`` measures it against.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy import optimize

from pysearch import _core
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
#: Damping multipliers tried together in one iteration of :func:`lm_fit_many` (one core call
#: evaluates them all; one value measured fastest on the law benchmark: the core's time grows
#: with the number of trial vectors, the iterations saved do not make up for it).
_TRIALS = np.array([1.0])


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
    """Levenberg-Marquardt on ``kern``'s constants: ``(constants, cost)``, never worse than the start
    (:func:`lm_fit_many` for one program)."""
    c = np.asarray(kern.program.constants() if c0 is None else c0, dtype=np.float64)
    (c_out, cost), = lm_fit_many([kern], [c], X, t, space, loss, delta, max_iter)
    return c_out, cost


def lm_fit_many(
    kernels: Sequence[ConstKernel],
    starts: Sequence[np.ndarray],
    X: np.ndarray,
    t: np.ndarray,
    space: str,
    loss: str = "lsq",
    delta: float = 1e-3,
    max_iter: int = 40,
) -> list[tuple[np.ndarray, float]]:
    """Levenberg-Marquardt for many programs at once: per program ``(constants, cost)``, never
    worse than its start (``inf`` cost where a program has no Jacobian or no constants).

    ``X``: the ``(inputs, n)`` matrix; ``t``: targets in ``space``. The programs advance in lock
    step: each iteration solves every active program's damped normal equations (Marquardt's
    diagonal scaling; Huber: weights ``min(1, delta/|r|)``) for the damping values of
    :data:`_TRIALS` in one batched solve (constants padded to the largest count), evaluates each
    program's trial vectors with their Jacobians in one core call, and takes the best that lowers
    its cost (the damping shrinks after a success and grows tenfold after a failure). A
    program stops when the relative decrease falls below :data:`FTOL`, the step below
    :data:`XTOL`, its damping runs away, or after ``max_iter`` iterations.
    """
    with np.errstate(all="ignore"):  # overflowing normal equations give a rejected step, not a warning
        return _lm_fit_many(kernels, starts, X, t, space, loss, delta, max_iter)


def _lm_fit_many(
    kernels: Sequence[ConstKernel],
    starts: Sequence[np.ndarray],
    X: np.ndarray,
    t: np.ndarray,
    space: str,
    loss: str,
    delta: float,
    max_iter: int,
) -> list[tuple[np.ndarray, float]]:
    X = np.ascontiguousarray(X, dtype=np.float64)
    P, n = len(kernels), X.shape[1]
    results: list[tuple[np.ndarray, float]] = [(np.asarray(c, dtype=np.float64).copy(), math.inf) for c in starts]
    idx = [i for i, (k, c) in enumerate(zip(kernels, starts)) if len(c) and k.has_jacobian]
    if not idx:
        return results
    M = max(len(starts[i]) for i in idx)
    K = len(_TRIALS)
    C = np.zeros((P, M))
    R = np.zeros((P, n))
    JR = np.zeros((P, n, M))
    cost = np.full(P, np.inf)
    mask = np.zeros((P, M), dtype=bool)  # real (unpadded) constants
    for i in idx:
        m = len(starts[i])
        C[i, :m] = starts[i]
        mask[i, :m] = True
        F, J = kernels[i].jacobian(C[i:i + 1, :m], X)
        R[i] = _residuals(F[0], t, space)
        JR[i, :, :m] = residual_jacobian(F[0], J[0], space)
    cost[idx] = _cost(R[idx], loss, delta)
    lam = np.full(P, 1e-3)
    active = np.array(idx)
    eye = np.eye(M)
    for _ in range(max_iter):
        if not len(active):
            break
        Jr, r = JR[active], R[active]
        if loss == "huber":
            a = np.abs(r)
            w = np.where(a <= delta, 1.0, delta / np.maximum(a, 1e-300))
        else:
            w = np.ones_like(r)
        JwT = (Jr * w[:, :, None]).transpose(0, 2, 1)
        A = JwT @ Jr
        g = (JwT @ r[:, :, None])[:, :, 0]
        diag = np.diagonal(A, axis1=1, axis2=2)
        scale = np.maximum(diag, 1e-12 * np.maximum(diag.max(axis=1, keepdims=True), 1e-300))
        scale = np.where(mask[active], scale, 1.0)  # padded constants: an identity row, a zero step
        lams = lam[active][:, None] * _TRIALS[None, :]  # (p, K)
        Mat = A[:, None] + lams[:, :, None, None] * (scale[:, None, :, None] * eye)
        with np.errstate(all="ignore"):
            try:
                steps = np.linalg.solve(Mat, np.repeat(-g[:, None, :, None], K, axis=1))[..., 0]  # (p, K, M)
            except np.linalg.LinAlgError:  # a singular system: solve one by one, a failed one stays put
                steps = np.zeros((len(active), K, M))
                for q in range(len(active)):
                    for k in range(K):
                        try:
                            steps[q, k] = np.linalg.solve(Mat[q, k], -g[q])
                        except np.linalg.LinAlgError:
                            pass
        trial = C[active][:, None, :] + steps  # (p, K, M)
        ok = np.all(np.isfinite(trial), axis=2)
        trial = np.where(ok[..., None], trial, C[active][:, None, :])
        FT = np.empty((len(active), K, n))
        JT = np.zeros((len(active), K, n, M))
        for q, i in enumerate(active):
            m = len(starts[i])
            F, J = kernels[i].jacobian(np.ascontiguousarray(trial[q, :, :m]), X)
            FT[q] = F
            JT[q, :, :, :m] = J
        RT = _residuals(FT, t, space)
        costs = np.where(ok, _cost(RT, loss, delta), np.inf)
        best = np.argmin(costs, axis=1)
        rows = np.arange(len(active))
        new = costs[rows, best]
        cur = cost[active]
        better = new < cur
        keep = np.ones(len(active), dtype=bool)
        if better.any():
            q = rows[better]
            i = active[better]
            k = best[better]
            decrease = (cur[better] - new[better]) / np.maximum(cur[better], 1e-300)
            rel_step = np.max(np.abs(steps[q, k]) / (np.abs(C[i]) + 1e-12), axis=1)
            C[i] = trial[q, k]
            R[i] = RT[q, k]
            JR[i] = residual_jacobian(FT[q, k], JT[q, k], space)
            cost[i] = new[better]
            lam[i] = np.maximum(lams[q, k] * 0.3, 1e-12)
            keep[better] = ~((decrease < FTOL) | (rel_step < XTOL) | (new[better] == 0.0))
        worse = ~better
        if worse.any():
            i = active[worse]
            lam[i] = lams[worse, -1] * 10.0
            keep[worse] = lam[i] <= 1e12
        active = active[keep]
    for i in idx:
        results[i] = (C[i, : len(starts[i])].copy(), float(cost[i]))
    return results


def fit_many(
    programs: Sequence[Program],
    X: np.ndarray,
    t: np.ndarray,
    space: str,
    loss: str = "lsq",
    delta: float = 1e-3,
    max_iter: int = 40,
) -> list[Program]:
    """Each program with constants fitted in the Rust core (``_core.fit_laws``: the algorithm and
    rules of :func:`lm_fit_many`, the whole batch in one GIL-free call) on ``X`` (``(inputs, n)``),
    or unchanged where the fit cannot start (no constants, non-finite ones, an op without a
    derivative) or does not lower the cost. An op outside :data:`KERNEL_OPS` is a ValueError."""
    X = np.ascontiguousarray(X, dtype=np.float64)
    t = np.ascontiguousarray(t, dtype=np.float64)
    todo = []
    for j, p in enumerate(programs):
        c0 = p.constants()
        if c0 and all(math.isfinite(v) for v in c0):
            bad = {ins.op for ins in p.instrs}.difference(KERNEL_OPS)
            if bad:
                raise ValueError(f"op {sorted(bad)[0]!r} is not supported when fitting law constants; "
                                 f"use {sorted(KERNEL_OPS)}")
            todo.append((j, c0))
    out = list(programs)
    if not todo:
        return out
    consts, _ = _core.fit_laws([programs[j].compile().as_tuple() for j, _ in todo], X, t, space, loss, delta, max_iter)
    for (j, c0), c in zip(todo, consts):
        c = c.tolist()
        if c != c0:
            out[j] = programs[j].with_constants(c)
    return out


def refit_predict(
    programs: Sequence[Program],
    X_fit: np.ndarray,
    t_fit: np.ndarray,
    X_pred: np.ndarray,
    space: str,
    loss: str = "lsq",
    delta: float = 1e-3,
    max_iter: int = 200,
) -> list[np.ndarray]:
    """Each program's constants refitted on ``X_fit`` (``(inputs, n)``) against ``t_fit`` (targets
    in ``space``) by :func:`fit_many` (the whole batch in one core call), and its predictions
    ``(n_pred,)`` at ``X_pred`` (the fit kernel): the backtests of law selection."""
    fitted = fit_many(programs, X_fit, t_fit, space, loss, delta, max_iter)
    cols = [np.ascontiguousarray(c) for c in np.atleast_2d(np.asarray(X_pred, dtype=np.float64))]
    return [ConstKernel(q)(np.array(q.constants()), cols)[0] for q in fitted]


def fit_many_numpy(
    programs: Sequence[Program],
    X: np.ndarray,
    t: np.ndarray,
    space: str,
    loss: str = "lsq",
    delta: float = 1e-3,
    max_iter: int = 40,
) -> list[Program]:
    """:func:`fit_many` with :func:`lm_fit_many` (numpy, all programs in lock step): the baseline
    and reference of the core's fitter."""
    X = np.ascontiguousarray(X, dtype=np.float64)
    todo = []
    for j, p in enumerate(programs):
        c0 = np.asarray(p.constants(), dtype=np.float64)
        if len(c0) and np.all(np.isfinite(c0)):
            todo.append((j, ConstKernel(p), c0))
    out = list(programs)
    fits = lm_fit_many([k for _, k, _ in todo], [c for _, _, c in todo], X, t, space, loss, delta, max_iter)
    for (j, _, c0), (c, _) in zip(todo, fits):
        if not np.array_equal(c, c0):
            out[j] = programs[j].with_constants([float(v) for v in c])
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
