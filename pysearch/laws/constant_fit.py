"""Law constants: fitting a float64 program's constants to data, and the error that ranks it.

Each candidate's constants are fitted by Levenberg-Marquardt least squares on the residuals in
the fit space (log y for loss data), or with a Huber loss; :func:`bootstrap_constants` gives
percentile intervals by refitting on resampled rows. Fitting evaluates a whole batch of constant
vectors at once with :class:`ConstKernel` (the shared :class:`pysearch.fit_kernel.FitKernel`
over the registry's ``law_fit`` ops); that kernel is used for fitting only, never for the
reported errors, which come from the engine (:func:`engine_evaluate`).
"""

from __future__ import annotations

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
        h = 1e-6 * np.maximum(np.abs(c), 1e-3)
        C = np.repeat(c[None, :], 2 * m, axis=0)
        idx = np.arange(m)
        C[idx, idx] += h
        C[m + idx, idx] -= h
        R = resid_many(C)
        return ((R[:m] - R[m:]) / (2 * h[:, None])).T

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
