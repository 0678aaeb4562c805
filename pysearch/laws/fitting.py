"""Fit a law form robustly: Huber loss + L-BFGS-B (or least squares) from a grid of starts.

The procedure follows the Chinchilla replication (Besiroglu et al. 2024): residuals are taken in
the form's space (log y for loss laws), the loss is Huber with delta 1e-3, positive constants are
optimised as their logarithm, and L-BFGS is started from a grid of points. Here the whole grid is
scored in one vectorised pass and L-BFGS-B runs from the ``n_starts`` best grid points (the
replication ran from every one); the best converged run wins and is polished by scipy's
trust-region least squares on the same Huber objective (kept only if that lowers it). Gradients
are central differences, computed for all parameters in one batched evaluation of the form.
A fit needs more distinct input points than the form has constants, and one that converges from
no start raises :class:`FitError`; constants that the data do not determine (a vanishing or
nearly dependent column of the Jacobian at the optimum) are listed in ``FitResult.unidentified``.
Beyond ``START_ROWS`` rows the grid and the multi-start runs use a fixed random subsample; the
fit on every row starts from the subsample optimum that is best on every row and runs trf (then
L-BFGS-B if trf has not converged in 50 evaluations); residuals are evaluated in row blocks.

Confidence intervals come from a nonparametric bootstrap: training rows are resampled with
replacement, the same objective is minimised again starting from the point estimate, and the
percentile interval of each constant is reported.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize

from pysearch.laws.forms import SPACES, LawForm, finite_clip, to_space

LOSSES = ("huber", "lsq")
_FD_STEP = 1e-6
#: Above this many rows, starts are chosen and refined on a fixed random subsample of this size;
#: the fit itself then runs on every row from the subsample's optima.
START_ROWS = 4096
_BLOCK = 1 << 20  # array elements per block when evaluating many parameter vectors over many rows
#: Singular values of the column-scaled Jacobian below this fraction of the largest mark
#: directions in which the data do not determine the constants.
SINGULAR_RTOL = 1e-7


class FitError(ValueError):
    """A fit that cannot be trusted: too few points, or no start converged. The message says which."""


@dataclass
class FitResult:
    """A fitted form: constants, how they were found, and (after :func:`bootstrap`) intervals."""

    form: LawForm
    theta: np.ndarray
    space: str
    loss: str
    delta: float
    objective: float
    converged: bool
    message: str
    n_starts: int
    n_train: int
    at_bound: list[str] = field(default_factory=list)
    unidentified: list[str] = field(default_factory=list)  # constants the data do not constrain
    jacobian_condition: float = math.nan  # of the column-scaled residual Jacobian in optimiser space
    starts: np.ndarray | None = None  # internal-space starts tried (best first), reused by bootstrap
    ci: dict[str, tuple[float, float]] | None = None
    ci_level: float = 0.95
    boot_samples: np.ndarray | None = None
    n_boot_failed: int = 0
    ci_at_bound: list[str] = field(default_factory=list)  # interval ends at a constant's bound

    @property
    def params(self) -> dict[str, float]:
        return {n: float(v) for n, v in zip(self.form.param_names, self.theta)}

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.form.predict(self.theta, np.asarray(X, dtype=np.float64))

    def expression(self) -> str:
        return self.form.expression(self.params)


# ---------------------------------------------------------------- parametrisation
def _bounds(form: LawForm) -> tuple[np.ndarray, np.ndarray]:
    lo = np.array([math.log(p.lo) if p.positive else p.lo for p in form.params])
    hi = np.array([math.log(p.hi) if p.positive else p.hi for p in form.params])
    return lo, hi


def to_internal(form: LawForm, theta: np.ndarray) -> np.ndarray:
    """Natural constants -> optimiser space (log for positive constants), clipped into bounds."""
    theta = np.asarray(theta, dtype=np.float64)
    pos = np.array([p.positive for p in form.params])
    with np.errstate(all="ignore"):
        u = np.where(pos, np.log(np.where(pos, np.maximum(theta, 1e-300), 1.0)), theta)
    lo, hi = _bounds(form)
    return np.clip(np.nan_to_num(u), lo, hi)


def from_internal(form: LawForm, u: np.ndarray) -> np.ndarray:
    pos = np.array([p.positive for p in form.params])
    with np.errstate(over="ignore"):
        return np.where(pos, np.exp(np.where(pos, u, 0.0)), u)


class _Problem:
    """Residuals, objective and batched finite-difference derivatives for one dataset."""

    def __init__(self, form: LawForm, X: np.ndarray, y: np.ndarray, space: str, loss: str, delta: float):
        self.form, self.X, self.space, self.loss, self.delta = form, X, space, loss, delta
        self.t = to_space(y, space)
        self.n = len(y)
        self.lo, self.hi = _bounds(form)

    def residuals(self, u: np.ndarray) -> np.ndarray:
        """Residuals for ``u`` of shape ``(..., P)`` -> ``(..., n)``, in row blocks when that is large."""
        theta = from_internal(self.form, u)
        step = max(4096, _BLOCK // max(1, math.prod(np.shape(u)[:-1])))
        if self.n <= step:
            return self._block(theta, self.X, self.t)
        out = np.empty(np.shape(u)[:-1] + (self.n,))
        for s in range(0, self.n, step):
            out[..., s : s + step] = self._block(theta, self.X[:, s : s + step], self.t[s : s + step])
        return out

    def _block(self, theta: np.ndarray, X: np.ndarray, t: np.ndarray) -> np.ndarray:
        r = self.form.transformed(theta, X, self.space) - t
        return finite_clip(r, 1e100)  # keeps squares finite inside the optimizers

    def value_of_residuals(self, r: np.ndarray) -> np.ndarray:
        """Scaled objective over the last axis: mean Huber / delta, or mean square / 2."""
        if self.loss == "lsq":
            return 0.5 * np.mean(r * r, axis=-1)
        a = np.abs(r)
        d = self.delta
        h = np.where(a <= d, 0.5 * r * r, d * (a - 0.5 * d))
        return np.mean(h, axis=-1) / d

    def _perturbed(self, u: np.ndarray) -> np.ndarray:
        P = len(u)
        U = np.repeat(u[None, :], 2 * P + 1, axis=0)
        idx = np.arange(P)
        U[1 + idx, idx] += _FD_STEP
        U[1 + P + idx, idx] -= _FD_STEP
        return self.residuals(U)

    def jacobian(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(r, J) with J of shape (n, P), by central differences in one batched evaluation."""
        P = len(u)
        R = self._perturbed(u)
        return R[0], ((R[1 : P + 1] - R[P + 1 :]) / (2 * _FD_STEP)).T

    def value_and_grad(self, u: np.ndarray) -> tuple[float, np.ndarray]:
        r, J = self.jacobian(u)
        f = float(self.value_of_residuals(r))
        if self.loss == "lsq":
            g = J.T @ r / self.n
        else:
            g = J.T @ np.clip(r, -self.delta, self.delta) / (self.n * self.delta)
        if not math.isfinite(f) or not np.all(np.isfinite(g)):
            return 1e300, np.zeros_like(u)
        return f, g

    def projected_grad_norm(self, u: np.ndarray, g: np.ndarray) -> float:
        g = g.copy()
        g[(u <= self.lo + 1e-12) & (g > 0)] = 0.0
        g[(u >= self.hi - 1e-12) & (g < 0)] = 0.0
        return float(np.max(np.abs(g))) if len(g) else 0.0


def _grid_starts(problem: _Problem, grid: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` best distinct grid points (internal space), scored in vectorised chunks."""
    U = to_internal(problem.form, grid)
    U = np.unique(np.round(U, 12), axis=0)
    scores = np.empty(len(U))
    chunk = max(1, min(2048, _BLOCK // max(1, problem.n)))
    for s in range(0, len(U), chunk):
        with np.errstate(all="ignore"):
            scores[s : s + chunk] = problem.value_of_residuals(problem.residuals(U[s : s + chunk]))
    scores = np.nan_to_num(scores, nan=np.inf)
    order = np.argsort(scores, kind="stable")
    return U[order[: max(1, k)]]


@contextlib.contextmanager
def _blas_single_thread():
    """Run small dense solves on one BLAS thread when threadpoolctl is installed.

    L-BFGS-B makes many tiny LAPACK calls; on a loaded machine OpenBLAS thread hand-offs made
    each iteration ~15x slower than on one thread.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _run_one(problem: _Problem, u0: np.ndarray, max_iter: int, optimizer: str) -> tuple[np.ndarray, float, bool, str]:
    """One local optimisation from ``u0``; returns (u, objective, converged, message).

    ``optimizer``: ``"lbfgs"`` (L-BFGS-B on the scaled objective), ``"trf"`` (scipy's
    trust-region least squares, with its Huber loss for ``loss="huber"``; same minimiser), or
    ``"auto"``: trf for at most 50 evaluations, then L-BFGS-B from there if trf has not
    converged (trf is fastest on smooth fits; L-BFGS copes better with the nearly-L1 objective
    of a form that fits badly, where most residuals are far beyond delta).
    """
    if optimizer == "auto":
        u, f, ok, msg = _run_one(problem, u0, min(max_iter, 50), "trf")
        if ok:
            return u, f, ok, msg
        return _run_one(problem, u if np.all(np.isfinite(u)) else u0, max_iter, "lbfgs")
    lo = np.where(np.isfinite(problem.lo), problem.lo, -np.inf)
    hi = np.where(np.isfinite(problem.hi), problem.hi, np.inf)
    u0 = np.clip(u0, lo, hi)
    if optimizer == "trf" or problem.loss == "lsq":
        kw = {"loss": "huber", "f_scale": problem.delta} if problem.loss == "huber" else {}
        res = optimize.least_squares(
            problem.residuals,
            u0,
            jac=lambda u: problem.jacobian(u)[1],
            bounds=(lo, hi),
            method="trf",
            x_scale=1.0,
            xtol=1e-10,
            ftol=1e-10,
            gtol=1e-10,
            max_nfev=max_iter,
            **kw,
        )
        f = float(problem.value_of_residuals(res.fun))
        return res.x, f, bool(res.status > 0) and math.isfinite(f) and f < 1e299, str(res.message)
    if optimizer != "lbfgs":
        raise ValueError(f"unknown optimizer {optimizer!r}; expected 'lbfgs', 'trf' or 'auto'")
    bounds = list(zip(np.where(np.isfinite(lo), lo, None), np.where(np.isfinite(hi), hi, None)))
    # L-BFGS-B's stopping tests are absolute below f = 1; a good fit has f << 1, so it would stop
    # early in flat directions. Dividing by the starting value makes the tests relative.
    scale = problem.value_and_grad(u0)[0]
    scale = scale if math.isfinite(scale) and 0 < scale < 1e299 else 1.0

    def scaled(u):
        f, g = problem.value_and_grad(u)
        return f / scale, g / scale

    res = optimize.minimize(
        scaled,
        u0,
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        options={"maxiter": max_iter, "ftol": 1e-12, "gtol": 1e-9, "maxls": 50},
    )
    f = float(res.fun) * scale
    ok = bool(res.success)
    msg = str(res.message)
    if not ok and res.status == 2:  # line search stalled: accept if at a stationary point
        _, g = scaled(res.x)
        ok = problem.projected_grad_norm(res.x, g) <= 1e-5 * max(1.0, abs(float(res.fun)))
    return res.x, f, ok and math.isfinite(f) and f < 1e299, msg


def point_ids(X: np.ndarray) -> np.ndarray:
    """For each row (column of ``X``), the index of its distinct input point."""
    return np.unique(X.T, axis=0, return_inverse=True)[1].reshape(-1)


def _check_size(form: LawForm, X: np.ndarray) -> None:
    """Refuse data with fewer distinct input points than the form has constants, plus one."""
    need = form.n_params + 1
    n = X.shape[1]
    what = f"the {form.n_params} constants of {form.name!r} ({', '.join(form.param_names)})"
    if n < need:
        raise FitError(f"too few points: {n} training row(s) for {what}; need at least {need}")
    distinct = int(point_ids(X).max()) + 1
    if distinct < need:
        inputs = ", ".join(form.inputs)
        raise FitError(
            f"too few distinct points: the {n} training rows have {distinct} distinct value(s) of ({inputs}); "
            f"{what} need at least {need}"
        )


def fit(
    form: LawForm,
    X: np.ndarray,
    y: np.ndarray,
    space: str | None = None,
    loss: str = "huber",
    delta: float = 1e-3,
    n_starts: int = 6,
    max_iter: int = 3000,
    optimizer: str = "lbfgs",
) -> FitResult:
    """Fit ``form`` to (X, y); raise :class:`FitError` on too few points or if no start converges.

    The whole grid of ``form.init_grid`` is scored, the local optimizer runs from the
    ``n_starts`` best points, and the best converged result is polished with ``trf`` (which
    minimises the same objective) and kept if that lowers the objective.
    """
    X = np.atleast_2d(np.asarray(X, dtype=np.float64))
    y = np.asarray(y, dtype=np.float64)
    space = space or form.default_space
    if space not in SPACES:
        raise ValueError(f"unknown residual space {space!r}; expected one of {SPACES}")
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; expected one of {LOSSES}")
    if not delta > 0:
        raise ValueError(f"Huber delta must be > 0, got {delta}")
    if max_iter < 1:
        raise ValueError(f"max_iter must be >= 1, got {max_iter}")
    if X.shape[0] != len(form.inputs):
        raise ValueError(f"form {form.name!r} takes {len(form.inputs)} input row(s), X has {X.shape[0]}")
    if X.shape[1] != len(y):
        raise ValueError(f"X has {X.shape[1]} columns but y has {len(y)} values")
    _check_size(form, X)
    form.check_domain(X, y, space)
    problem = _Problem(form, X, y, space, loss, delta)
    with _blas_single_thread():
        if problem.n > START_ROWS:
            # Run the multi-start search on a subsample; refine on all rows from the optimum of
            # the subsample's optima that is best on all rows, by trf (L-BFGS if trf stalls).
            sub = np.sort(np.random.default_rng(0).choice(problem.n, START_ROWS, replace=False))
            small = _Problem(form, X[:, sub], y[sub], space, loss, delta)
            starts = _grid_starts(small, form.init_grid(small.X, y[sub], space), n_starts)
            optima = _fit_from(small, starts, max_iter, optimizer, keep_starts=True).starts
            with np.errstate(all="ignore"):
                scores = np.nan_to_num(problem.value_of_residuals(problem.residuals(optima)), nan=np.inf)
            best = optima[int(np.argmin(scores))][None, :]
            return _fit_from(problem, best, max_iter, "auto", keep_starts=True, polish=True, assess=True)
        starts = _grid_starts(problem, form.init_grid(X, y, space), n_starts)
        return _fit_from(problem, starts, max_iter, optimizer, keep_starts=True, polish=True, assess=True)


def _fit_from(
    problem: _Problem,
    starts: np.ndarray,
    max_iter: int,
    optimizer: str,
    keep_starts: bool = False,
    polish: bool = False,
    assess: bool = False,
) -> FitResult:
    form = problem.form
    best = None
    messages = []
    finals = []
    with np.errstate(all="ignore"):
        for u0 in starts:
            u, f, ok, msg = _run_one(problem, u0, max_iter, optimizer)
            messages.append(msg)
            if ok:
                finals.append((f, u))
                if best is None or f < best[1]:
                    best = (u, f, msg)
        if best is None:
            common = max(set(messages), key=messages.count)
            raise FitError(
                f"the {form.name} fit did not converge from any of {len(starts)} start(s) "
                f"(optimizer {optimizer}: {common}; max iterations {max_iter}); constants would not be trustworthy"
            )
        if polish and optimizer != "trf":
            # A lower objective is a better estimate even if trf stops at its evaluation cap.
            u, f, _, _ = _run_one(problem, best[0], min(max_iter, 500), "trf")
            if np.all(np.isfinite(u)) and f < best[1]:
                best = (u, f, best[2] + "; polished by trf")
    u, f, msg = best
    theta = from_internal(form, u)
    if not np.all(np.isfinite(theta)):
        raise FitError(f"the {form.name} fit ended with non-finite constants {theta.tolist()}")
    at_bound = [
        p.name for p, ui, lo, hi in zip(form.params, u, problem.lo, problem.hi) if ui <= lo + 1e-9 or ui >= hi - 1e-9
    ]
    unidentified, cond = _identifiability(problem, u) if assess else ([], math.nan)
    kept = None
    if keep_starts:
        kept_list = [u]
        for _, v in sorted(finals, key=lambda t: t[0]):
            if all(np.max(np.abs(v - k)) > 1e-6 for k in kept_list):
                kept_list.append(v)
        kept = np.array(kept_list)
    return FitResult(
        form, theta, problem.space, problem.loss, problem.delta, f, True, msg, len(starts), problem.n, at_bound,
        unidentified, cond, kept,
    )


def _identifiability(problem: _Problem, u: np.ndarray) -> tuple[list[str], float]:
    """Constants the data do not determine at ``u``, and the condition number of the Jacobian.

    The residual Jacobian (optimiser space) has its columns scaled to unit length, so the
    condition number does not depend on the constants' units. A constant is reported if its
    column vanishes (it has no effect on the residuals), or if it takes part in a direction of a
    singular value below ``SINGULAR_RTOL`` times the largest (constants that trade off exactly,
    such as ``E`` and ``B`` when every row has the same ``D``). A constant the data do not fix
    stays wherever its start put it, so its bootstrap interval would look falsely tight.
    """
    names = problem.form.param_names
    with np.errstate(all="ignore"):
        _, J = problem.jacobian(u)
        norms = np.linalg.norm(J, axis=0)
        if not np.all(np.isfinite(J)) or not np.any(norms > 0):
            return list(names), math.inf
        live = norms > 1e-9 * norms.max()
        flagged = ~live
        # R of a QR factorisation has the Jacobian's singular values and right vectors, in P x P.
        _, sv, Vt = np.linalg.svd(np.linalg.qr(J[:, live] / norms[live], mode="r"))
        cond = float(sv[0] / sv[-1]) if sv[-1] > 0 else math.inf
        weak = sv < SINGULAR_RTOL * sv[0]
        if np.any(weak):
            involved = np.any(np.abs(Vt[weak]) >= 0.2, axis=0)
            flagged[np.flatnonzero(live)[involved]] = True
        if not live.all():
            cond = math.inf
    return [n for n, f in zip(names, flagged) if f], cond


def bootstrap(
    result: FitResult,
    X: np.ndarray,
    y: np.ndarray,
    n_boot: int = 200,
    seed: int = 0,
    level: float = 0.95,
    max_iter: int = 3000,
    n_starts: int = 1,
    time_budget_s: float | None = None,
    optimizer: str = "auto",
    progress: Callable[[int, int, int], None] | None = None,
) -> FitResult:
    """Attach percentile bootstrap intervals to ``result`` (resample rows, refit, percentiles).

    Each refit starts from the point estimate (and, with ``n_starts > 1``, from the next distinct
    optima the original fit found), with ``optimizer`` (default ``trf``: it minimises the same
    objective and converges in fewer iterations than L-BFGS on these small problems). Resamples whose refit does not converge are counted in ``n_boot_failed``;
    with ``time_budget_s`` the loop stops early (after at least 20 refits). ``progress``, if
    given, is called as ``progress(done, n_boot, failed)`` after each resample.
    """
    if n_boot < 2:
        raise ValueError(f"bootstrap needs at least 2 resamples, got {n_boot}")
    if not 0 < level < 1:
        raise ValueError(f"confidence level must be in (0, 1), got {level}")
    X = np.atleast_2d(np.asarray(X, dtype=np.float64))
    y = np.asarray(y, dtype=np.float64)
    form = result.form
    rng = np.random.default_rng(seed)
    starts = result.starts if result.starts is not None else to_internal(form, result.theta)[None, :]
    starts = starts[: max(1, n_starts)]
    with _blas_single_thread():
        samples, failed = _resample_fits(
            form, result, X, y, starts, n_boot, rng, max_iter, optimizer, time_budget_s, progress
        )
    if len(samples) < 2:
        raise FitError(f"bootstrap failed: only {len(samples)} of {n_boot} refits converged")
    S = np.array(samples)
    q = 100 * (1 - level) / 2
    lo, hi = np.percentile(S, q, axis=0), np.percentile(S, 100 - q, axis=0)
    result.ci = {p: (float(a), float(b)) for p, a, b in zip(form.param_names, lo, hi)}
    result.ci_at_bound = [
        p.name for p, a, b in zip(form.params, lo, hi) if np.isclose(a, p.lo, rtol=1e-6) or np.isclose(b, p.hi, rtol=1e-6)
    ]
    result.ci_level = level
    result.boot_samples = S
    result.n_boot_failed = failed
    return result


def _resample_fits(form, result, X, y, starts, n_boot, rng, max_iter, optimizer, time_budget_s, progress=None):
    samples, failed = [], 0
    t0 = time.monotonic()
    n = len(y)
    points = point_ids(X)
    for i in range(n_boot):
        if time_budget_s is not None and time.monotonic() - t0 > time_budget_s and len(samples) >= 20:
            break
        idx = rng.integers(0, n, n)
        if np.count_nonzero(np.bincount(points[idx])) < form.n_params + 1:
            failed += 1  # too few distinct points to determine the constants
        else:
            problem = _Problem(form, X[:, idx], y[idx], result.space, result.loss, result.delta)
            try:
                samples.append(_fit_from(problem, starts, max_iter, optimizer).theta)
            except FitError:
                failed += 1
        if progress is not None:
            progress(i + 1, n_boot, failed)
    return samples, failed


# ---------------------------------------------------------------- errors
def error_metrics(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """RMSE of log y (when y > 0), mean absolute relative error, and RMSE of y."""
    y = np.asarray(y, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    out: dict[str, float] = {}
    if len(y) == 0:
        return out
    with np.errstate(all="ignore"):
        if np.all(y > 0):
            lp = np.where(pred > 0, np.log(np.where(pred > 0, pred, 1.0)), np.inf)
            out["rmse_log_y"] = float(np.sqrt(np.mean((lp - np.log(y)) ** 2)))
        out["mare"] = float(np.mean(np.abs(pred - y) / np.abs(y))) if np.all(y != 0) else math.inf
        out["rmse_y"] = float(np.sqrt(np.mean((pred - y) ** 2)))
    return {k: (v if math.isfinite(v) else math.inf) for k, v in out.items()}


def primary_metric(y: np.ndarray) -> str:
    """The headline error metric: RMSE of log y when every y is positive, else RMSE of y."""
    return "rmse_log_y" if np.all(np.asarray(y) > 0) else "rmse_y"


@dataclass
class LawFit:
    """A fit plus its errors on the training rows and on the held-out rows."""

    result: FitResult
    train_errors: dict[str, float]
    holdout_errors: dict[str, float] | None
    error_metric: str

    @property
    def train_error(self) -> float:
        return self.train_errors[self.error_metric]

    @property
    def holdout_error(self) -> float | None:
        return None if self.holdout_errors is None else self.holdout_errors[self.error_metric]


def fit_law(
    dataset,
    form: LawForm,
    space: str | None = None,
    loss: str = "huber",
    delta: float = 1e-3,
    n_boot: int = 200,
    seed: int = 0,
    n_starts: int = 6,
    max_iter: int = 3000,
    time_budget_s: float | None = None,
    optimizer: str = "lbfgs",
    progress: Callable[[int, int, int], None] | None = None,
) -> LawFit:
    """Fit ``form`` on the training rows of ``dataset``, bootstrap it, and score train and holdout.

    A :class:`FitError` names the dataset's file when it came from one; ``progress`` is passed
    to :func:`bootstrap`.
    """
    Xtr, ytr = dataset.train
    try:
        res = fit(form, Xtr, ytr, space, loss, delta, n_starts, max_iter, optimizer)
        if n_boot:
            bootstrap(res, Xtr, ytr, n_boot, seed, max_iter=max_iter, time_budget_s=time_budget_s, progress=progress)
    except FitError as e:
        if dataset.source is None:
            raise
        raise FitError(f"{dataset.source}: {e}") from None
    metric = primary_metric(dataset.y)
    train = error_metrics(ytr, res.predict(Xtr))
    hold = None
    if dataset.holdout.any():
        Xte, yte = dataset.test
        hold = error_metrics(yte, res.predict(Xte))
    return LawFit(res, train, hold, metric)
