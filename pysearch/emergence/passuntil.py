"""PassUntil: pass probabilities far below 1/(test-set size), and their scaling law.

Instead of one attempt per item, sample each item until it has passed ``k`` times (or a sample
budget runs out). The number of attempts is negative-binomial in the pass probability p, which
gives an unbiased estimate (k-1)/(n-1) and exact confidence intervals even when p is 1e-6.

Task law (Hu et al. 2023): PU(N) = exp(-c * N^(-alpha)), so log(-log PU) is a straight line in
log N with slope -alpha. Curves of log(-log PU) that bend down faster than any line
("accelerated emergence") are what a single law of this form cannot describe.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
from scipy import stats

__all__ = [
    "SampleCount",
    "PassEstimate",
    "sample_until",
    "estimate_pass_probability",
    "pass_probability_estimates",
    "pass_until_score",
    "PassUntilLaw",
    "fit_passuntil_law",
    "Acceleration",
    "detect_accelerated_emergence",
]


@dataclass(frozen=True)
class SampleCount:
    """Outcome of sampling one item: ``successes`` passes in ``trials`` attempts."""

    successes: int
    trials: int


@dataclass(frozen=True)
class PassEstimate:
    """Estimated pass probability ``p`` with confidence interval [``lo``, ``hi``]."""

    p: float
    lo: float
    hi: float
    successes: int
    trials: int
    k: int
    censored: bool
    method: str


def sample_until(
    fn_success: Callable[[np.random.Generator], bool],
    k: int,
    max_samples: int,
    rng: np.random.Generator,
) -> SampleCount:
    """Call ``fn_success(rng)`` until it has returned True ``k`` times or ``max_samples`` calls were made."""
    k, max_samples = int(k), int(max_samples)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if max_samples < k:
        raise ValueError(f"max_samples ({max_samples}) must be >= k ({k})")
    successes = trials = 0
    while successes < k and trials < max_samples:
        trials += 1
        if fn_success(rng):
            successes += 1
    return SampleCount(successes, trials)


def _check_counts(successes, trials, k) -> tuple[np.ndarray, np.ndarray, int]:
    s = np.atleast_1d(np.asarray(successes))
    n = np.atleast_1d(np.asarray(trials))
    if s.shape != n.shape or s.ndim != 1:
        raise ValueError(f"successes and trials must be 1-D of equal length (got {s.shape} and {n.shape})")
    if s.size and not (np.all(s == np.round(s)) and np.all(n == np.round(n))):
        raise ValueError("successes and trials must be whole numbers")
    s = s.astype(np.int64)
    n = n.astype(np.int64)
    k = int(k)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if np.any(n < 1):
        raise ValueError(f"trials must be >= 1, got {int(n.min())}")
    bad = (s < 0) | (s > np.minimum(n, k))
    if np.any(bad):
        i = int(np.argmax(bad))
        raise ValueError(f"successes must be in 0..min(trials, k) = 0..{min(int(n[i]), k)}, got {int(s[i])}")
    return s, n, k


def pass_probability_estimates(
    successes: Sequence[int] | np.ndarray,
    trials: Sequence[int] | np.ndarray,
    k: int,
    confidence: float = 0.95,
    method: str = "exact",
    estimator: str = "unbiased",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vectorised :func:`estimate_pass_probability`: arrays (p, lo, hi) for many items at once."""
    s, n, k = _check_counts(successes, trials, k)
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if estimator not in ("unbiased", "mle"):
        raise ValueError(f"estimator must be 'unbiased' or 'mle', got {estimator!r}")
    if method not in ("exact", "wilson"):
        raise ValueError(f"method must be 'exact' or 'wilson', got {method!r}")
    a = 1.0 - confidence
    censored = s < k
    sf, nf = s.astype(float), n.astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        if estimator == "unbiased" and k >= 2:
            complete = (k - 1) / (nf - 1)
        else:
            complete = k / nf
        p = np.where(censored, sf / nf, complete)
        if method == "exact":
            # censored: binomial sample, Clopper-Pearson; complete: inverse binomial,
            # P(N <= n) = P(Bin(n, p) >= k) and P(N >= n) = P(Bin(n - 1, p) <= k - 1)
            lo_c = np.where(s > 0, stats.beta.ppf(a / 2, np.maximum(s, 1), n - s + 1), 0.0)
            hi_c = stats.beta.ppf(1 - a / 2, s + 1, np.maximum(n - s, 1))
            lo_k = stats.beta.ppf(a / 2, k, n - k + 1)
            hi_k = np.where(n > k, stats.beta.ppf(1 - a / 2, k, np.maximum(n - k, 1)), 1.0)
            lo = np.where(censored, lo_c, lo_k)
            hi = np.where(censored, np.where(n > s, hi_c, 1.0), hi_k)
        else:
            z = float(stats.norm.ppf(1 - a / 2))
            phat = sf / nf
            centre = (phat + z * z / (2 * nf)) / (1 + z * z / nf)
            half = z * np.sqrt(phat * (1 - phat) / nf + z * z / (4 * nf * nf)) / (1 + z * z / nf)
            lo, hi = np.maximum(0.0, centre - half), np.minimum(1.0, centre + half)
    return p.astype(float), np.asarray(lo, float), np.asarray(hi, float)


def estimate_pass_probability(
    successes: int,
    trials: int,
    k: int,
    confidence: float = 0.95,
    method: str = "exact",
    estimator: str = "unbiased",
) -> PassEstimate:
    """Pass probability of one item sampled with :func:`sample_until`.

    When ``successes == k`` sampling stopped at the k-th pass (negative-binomial count); the
    ``'unbiased'`` estimate is (k-1)/(n-1) (k >= 2; k = 1 falls back to 1/n), ``'mle'`` is k/n.
    When fewer than k passes were seen, the sample budget ran out (``censored``): a fixed-size
    binomial sample, estimate s/n. ``method='exact'`` inverts the sampling distribution
    (Clopper-Pearson style, conservative); ``'wilson'`` is the Wilson score interval on s/n.
    """
    p, lo, hi = pass_probability_estimates([successes], [trials], k, confidence, method, estimator)
    s, n = int(successes), int(trials)
    return PassEstimate(float(p[0]), float(lo[0]), float(hi[0]), s, n, int(k), s < int(k), method)


def pass_until_score(
    counts: Sequence[SampleCount | tuple[int, int]],
    k: int,
    confidence: float = 0.95,
) -> PassEstimate:
    """PassUntil score of a task: mean of the items' pass-probability estimates, with a CI.

    Items are the fixed test set, so the interval covers sampling noise only. For one item it is
    the exact interval; for several it is a normal interval on log(score) from the items'
    variances, p^2 (1-p) / (k-1) for complete counts (negative-binomial sampling) and
    p (1-p) / n for censored ones; when that is degenerate (every estimate 0 or 1) it is the
    mean of the items' exact bounds.
    """
    if len(counts) == 0:
        raise ValueError("no items given")
    pairs = [(c.successes, c.trials) if isinstance(c, SampleCount) else tuple(c) for c in counts]
    s = np.array([q[0] for q in pairs])
    n = np.array([q[1] for q in pairs])
    p_i, lo_i, hi_i = pass_probability_estimates(s, n, k, confidence)
    m = len(pairs)
    p = float(p_i.mean())
    censored = bool(np.any(s < k))
    if m == 1:
        return PassEstimate(p, float(lo_i[0]), float(hi_i[0]), int(s[0]), int(n[0]), int(k), censored, "exact")
    var_i = np.where(s < k, p_i * (1 - p_i) / n, p_i * p_i * (1 - p_i) / max(int(k) - 1, 1))
    var = float(var_i.sum()) / (m * m)
    if p > 0.0 and var > 0.0:
        z = float(stats.norm.ppf(0.5 + confidence / 2))
        rel = math.sqrt(var) / p
        lo, hi, method = p * math.exp(-z * rel), min(1.0, p * math.exp(z * rel)), "lognormal"
    else:
        lo, hi, method = float(lo_i.mean()), float(hi_i.mean()), "exact-mean"
    return PassEstimate(p, lo, hi, int(s.sum()), int(n.sum()), int(k), censored, method)


@dataclass(frozen=True)
class PassUntilLaw:
    """PU(N) = exp(-c * N^(-alpha)); ``alpha_stderr``/``log_c_stderr`` from the linear fit."""

    c: float
    alpha: float
    log_c_stderr: float
    alpha_stderr: float
    n_points: int

    def predict(self, n: float | np.ndarray) -> np.ndarray:
        a = np.asarray(n, dtype=float)
        return np.exp(-self.c * a ** (-self.alpha))

    def transformed(self, n: float | np.ndarray) -> np.ndarray:
        """log(-log PU) predicted at N: log c - alpha log N."""
        return math.log(self.c) - self.alpha * np.log(np.asarray(n, dtype=float))


def _passuntil_xy(n: Sequence[float], pu: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    na = np.asarray(n, dtype=float)
    pa = np.asarray(pu, dtype=float)
    if na.ndim != 1 or na.shape != pa.shape:
        raise ValueError(f"N and PU must be 1-D of equal length (got {na.shape} and {pa.shape})")
    if np.any(~np.isfinite(na)) or np.any(na <= 0):
        raise ValueError("N must be finite and > 0 (log N is taken)")
    bad = ~((pa > 0) & (pa < 1))
    if np.any(bad):
        raise ValueError(
            f"PassUntil scores must lie strictly in (0, 1) for log(-log PU); got {pa[bad][:3].tolist()}"
        )
    return np.log(na), np.log(-np.log(pa))


def fit_passuntil_law(n: Sequence[float], pu: Sequence[float]) -> PassUntilLaw:
    """Fit log(-log PU) = log c - alpha log N by least squares (needs >= 3 points).

    The fit is the ``passuntil`` form of :mod:`pysearch.laws` with squared residuals in
    log(-log PU) space, i.e. ordinary least squares on the transformed points, so the usual
    regression standard errors of log c and alpha apply and are reported with it.
    """
    from pysearch.laws import fit, make_form

    u, v = _passuntil_xy(n, pu)
    if np.ptp(u) == 0:
        raise ValueError("all N are equal; cannot fit a law in N")
    form = make_form("passuntil", ["N"])
    res = fit(form, np.exp(u)[None, :], np.exp(-np.exp(v)), space="loglog", loss="lsq")
    c, alpha = float(res.params["c"]), float(res.params["alpha"])
    design = np.column_stack([np.ones_like(u), u])
    resid = v - (math.log(c) - alpha * u)
    s2 = float(resid @ resid) / (u.size - 2)
    se = np.sqrt(np.diag(s2 * np.linalg.inv(design.T @ design)))
    return PassUntilLaw(c, alpha, float(se[0]), float(se[1]), int(u.size))


@dataclass(frozen=True)
class Acceleration:
    """Curvature of log(-log PU) in log N: ``curvature`` < 0 bends down (faster than the law)."""

    curvature: float
    stderr: float
    t_stat: float
    p_value: float
    accelerated: bool


def detect_accelerated_emergence(
    n: Sequence[float], pu: Sequence[float], significance: float = 0.05
) -> Acceleration:
    """Fit log(-log PU) = a + b log N + q (log N)^2 and test q < 0 (one-sided t-test)."""
    u, v = _passuntil_xy(n, pu)
    if u.size < 4:
        raise ValueError(f"a curvature test needs at least 4 points, got {u.size}")
    uc = u - u.mean()
    design = np.column_stack([np.ones_like(uc), uc, uc**2])
    if np.linalg.matrix_rank(design) < 3:
        raise ValueError("need at least 3 distinct N for a curvature test")
    coef, *_ = np.linalg.lstsq(design, v, rcond=None)
    resid = v - design @ coef
    dof = u.size - 3
    s2 = float(resid @ resid) / dof
    var_q = s2 * float(np.linalg.inv(design.T @ design)[2, 2])
    q = float(coef[2])
    if var_q <= 0.0:
        t = -math.inf if q < 0 else (math.inf if q > 0 else 0.0)
        se = 0.0
    else:
        se = math.sqrt(var_q)
        t = q / se
    pval = float(stats.t.cdf(t, dof))
    return Acceleration(q, se, t, pval, bool(q < 0 and pval < significance))
