"""PassUntil: sample-until-k estimator, its confidence intervals, the task law, acceleration."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pysearch.emergence import (
    SampleCount,
    detect_accelerated_emergence,
    estimate_pass_probability,
    fit_passuntil_law,
    pass_probability_estimates,
    pass_until_score,
    sample_until,
)


def _nb_trials(rng, k, p, size):
    """Attempts needed for k passes: k plus negative-binomial failures."""
    return k + rng.negative_binomial(k, p, size)


class TestSampleUntil:
    def test_stops_at_k_successes(self):
        """Sampling stops right after the k-th success."""
        outcomes = iter([False, True, False, False, True, True])
        got = sample_until(lambda rng: next(outcomes), k=2, max_samples=100, rng=np.random.default_rng(0))
        assert got == SampleCount(2, 5)

    def test_stops_at_budget(self):
        """With no success the budget ends sampling: a censored count."""
        got = sample_until(lambda rng: False, k=3, max_samples=7, rng=np.random.default_rng(0))
        assert got == SampleCount(0, 7)

    def test_counts_follow_negative_binomial(self):
        """Mean attempts for k passes at rate p is k/p."""
        rng = np.random.default_rng(1)
        trials = [sample_until(lambda r: r.random() < 0.2, 3, 10_000, rng).trials for _ in range(3000)]
        assert np.mean(trials) == pytest.approx(3 / 0.2, rel=0.03)

    def test_bad_arguments(self):
        """k must be positive and the budget at least k."""
        with pytest.raises(ValueError, match="k must be"):
            sample_until(lambda r: True, 0, 10, np.random.default_rng(0))
        with pytest.raises(ValueError, match="max_samples"):
            sample_until(lambda r: True, 5, 3, np.random.default_rng(0))


class TestEstimator:
    @pytest.mark.parametrize("p,k", [(0.3, 2), (0.01, 3), (1e-4, 5)])
    def test_unbiased(self, p, k):
        """(k-1)/(n-1) averages to p over many simulated items, even at p = 1e-4."""
        rng = np.random.default_rng(7)
        reps = 4000
        est, _, _ = pass_probability_estimates(np.full(reps, k), _nb_trials(rng, k, p, reps), k)
        # standard error of the mean is at most p / sqrt(reps * (k - 1)) for this estimator
        assert np.mean(est) == pytest.approx(p, abs=4 * p / math.sqrt(reps * (k - 1)))

    def test_mle_is_biased_up(self):
        """The plain k/n estimate overshoots for small k, which is why it is not the default."""
        rng = np.random.default_rng(3)
        est, _, _ = pass_probability_estimates(np.full(4000, 2), _nb_trials(rng, 2, 0.05, 4000), 2, estimator="mle")
        assert np.mean(est) > 1.2 * 0.05

    @pytest.mark.parametrize("method,floor", [("exact", 0.94), ("wilson", 0.85)])
    def test_ci_coverage(self, method, floor):
        """95% intervals cover the true p in about 95% of simulated items (exact is conservative)."""
        rng = np.random.default_rng(11)
        p, k, reps = 0.02, 4, 2000
        _, lo, hi = pass_probability_estimates(np.full(reps, k), _nb_trials(rng, k, p, reps), k, method=method)
        cover = np.mean((lo <= p) & (p <= hi))
        assert floor <= cover <= 0.995

    def test_hand_values(self):
        """Exact bounds invert P(Bin(n, p) >= k) at the tails; censored counts use Clopper-Pearson."""
        from scipy import stats

        e = estimate_pass_probability(2, 10, 2)
        assert e.p == pytest.approx(1 / 9)
        assert stats.binom.sf(1, 10, e.lo) == pytest.approx(0.025)  # P(N <= 10 | lo) = 2.5%
        assert stats.binom.cdf(1, 9, e.hi) == pytest.approx(0.025)  # P(N >= 10 | hi) = 2.5%
        c = estimate_pass_probability(0, 100, 2)
        assert c.censored and c.p == 0.0 and c.lo == 0.0
        assert c.hi == pytest.approx(1 - 0.025 ** (1 / 100))

    def test_vector_matches_scalar(self):
        """The vectorised estimates equal the one-item function, censored items included."""
        s, n = [2, 0, 1, 2], [10, 50, 40, 2]
        p, lo, hi = pass_probability_estimates(s, n, 2)
        for i in range(4):
            e = estimate_pass_probability(s[i], n[i], 2)
            assert (p[i], lo[i], hi[i]) == pytest.approx((e.p, e.lo, e.hi))
        assert hi[3] == 1.0

    def test_bad_counts(self):
        """More successes than k or than trials is rejected."""
        with pytest.raises(ValueError, match="successes"):
            estimate_pass_probability(3, 10, 2)
        with pytest.raises(ValueError, match="method"):
            estimate_pass_probability(2, 10, 2, method="bayes")


class TestTaskScore:
    def test_mean_and_coverage(self):
        """The task score averages item estimates; its interval covers the true mean ~95% of the time."""
        rng = np.random.default_rng(5)
        ps = np.array([0.2, 0.01, 0.003, 0.05, 1e-3])
        k, reps = 3, 800
        vals, cover = [], 0
        for _ in range(reps):
            counts = [(k, int(_nb_trials(rng, k, q, 1)[0])) for q in ps]
            e = pass_until_score(counts, k)
            vals.append(e.p)
            cover += e.lo <= ps.mean() <= e.hi
        assert np.mean(vals) == pytest.approx(ps.mean(), rel=0.05)
        assert 0.92 <= cover / reps <= 0.99

    def test_single_item_is_exact(self):
        """One item gives that item's exact interval."""
        one = pass_until_score([SampleCount(2, 50)], 2)
        assert (one.p, one.lo, one.hi) == pytest.approx(
            tuple(getattr(estimate_pass_probability(2, 50, 2), f) for f in ("p", "lo", "hi"))
        )


class TestLaw:
    def test_recovers_constants(self):
        """A noiseless PU(N) = exp(-c N^-alpha) is recovered exactly."""
        n = np.logspace(3, 8, 6)
        law = fit_passuntil_law(n, np.exp(-40.0 * n**-0.35))
        assert law.c == pytest.approx(40.0, rel=1e-6)
        assert law.alpha == pytest.approx(0.35, rel=1e-6)
        assert law.predict(1e9) == pytest.approx(math.exp(-40.0 * 1e9**-0.35), rel=1e-6)

    def test_needs_open_unit_interval(self):
        """A pass rate of 0 or 1 has no log(-log PU): a clear error."""
        with pytest.raises(ValueError, match=r"\(0, 1\)"):
            fit_passuntil_law([1e3, 1e4, 1e5], [0.0, 0.1, 0.2])

    def test_too_few_points(self):
        """Two points cannot fit two constants with a residual."""
        with pytest.raises(ValueError, match="too few points"):
            fit_passuntil_law([1e3, 1e4], [0.01, 0.1])


class TestAcceleration:
    def test_law_is_not_accelerated(self):
        """Points on the law (with small noise) show no significant bend."""
        rng = np.random.default_rng(2)
        n = np.logspace(3, 8, 8)
        v = np.log(40.0) - 0.35 * np.log(n) + rng.normal(0, 0.02, n.size)
        acc = detect_accelerated_emergence(n, np.exp(-np.exp(v)))
        assert not acc.accelerated

    def test_bend_is_accelerated(self):
        """log(-log PU) that falls faster and faster in log N is flagged."""
        n = np.logspace(3, 8, 8)
        u = np.log(n)
        v = 3.0 - 0.1 * (u - u[0]) - 0.08 * (u - u[0]) ** 2
        acc = detect_accelerated_emergence(n, np.exp(-np.exp(v)))
        assert acc.accelerated and acc.curvature == pytest.approx(-0.08, rel=1e-6)

    def test_needs_four_points(self):
        """A curvature test on three points is refused."""
        with pytest.raises(ValueError, match="at least 4"):
            detect_accelerated_emergence([1e3, 1e4, 1e5], [0.01, 0.1, 0.3])
