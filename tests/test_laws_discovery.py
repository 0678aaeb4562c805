"""Law discovery (--form auto): constant fitting, Pareto front, knee choice, recovery of a known law."""

import numpy as np
import pytest

from pysearch import interpreter, variation
from pysearch.laws.discovery import (
    LAW_OPS,
    Candidate,
    ConstKernel,
    bootstrap_constants,
    choose,
    choose_by_extrapolation,
    discover,
    fit_constants,
    infix,
    inner_holdout,
    pareto,
    program_inputs,
    with_input_scales,
)
from pysearch.laws.forms import to_space
from pysearch.program import parse

POWER_LAW = """dtype float64
inputs x
v1 = pow x -0.7
v2 = mul v1 1.0
v3 = add v2 0.5
"""


class TestConstants:
    def test_kernel_matches_interpreter(self):
        """The batched fitting kernel computes what the reference interpreter computes."""
        rng = np.random.default_rng(0)
        X = np.array([np.geomspace(0.5, 50, 40), np.linspace(0.1, 3, 40)])
        for _ in range(60):
            p = variation.random_program(rng, int(rng.integers(1, 7)), LAW_OPS, ("N", "D"), "float64")
            want = interpreter.run(p, X)
            got = ConstKernel(p)(np.array(p.constants()), list(X))[0]
            assert np.array_equal(np.isnan(want), np.isnan(got)), p.to_text()
            ok = ~np.isnan(want)
            np.testing.assert_allclose(got[ok], want[ok], rtol=1e-12, atol=0, err_msg=p.to_text())

    def test_fit_constants_recovers_power_law(self):
        """Least squares in log space finds a, b, c of y = a x^-b + c from a rough start."""
        x = np.geomspace(1, 1000, 30)
        y = 3 * x**-0.5 + 1
        q = fit_constants(parse(POWER_LAW), [x], to_space(y, "log"), "log", max_nfev=200)
        np.testing.assert_allclose(q.constants(), [-0.5, 3.0, 1.0], rtol=1e-8)

    def test_huber_fit_resists_an_outlier(self):
        """With one corrupted row, Huber constants stay on the law; least squares is pulled off."""
        x = np.geomspace(1, 1000, 30)
        y = 3 * x**-0.5 + 1
        y[10] *= 2.0
        t = to_space(y, "log")
        hub = fit_constants(parse(POWER_LAW), [x], t, "log", max_nfev=500, loss="huber", delta=1e-3)
        lsq = fit_constants(parse(POWER_LAW), [x], t, "log", max_nfev=500)
        np.testing.assert_allclose(hub.constants(), [-0.5, 3.0, 1.0], rtol=1e-3)
        assert abs(lsq.constants()[0] + 0.5) > 0.01

    def test_bootstrap_constants_cover_truth(self):
        """Percentile intervals of refitted constants contain the true exponent, scale and offset."""
        rng = np.random.default_rng(2)
        x = np.geomspace(1, 1000, 40)
        y = (3 * x**-0.5 + 1) * np.exp(rng.normal(0, 0.01, 40))
        p = fit_constants(parse(POWER_LAW), [x], to_space(y, "log"), "log", max_nfev=200)
        ci, failed = bootstrap_constants(p, x[None], y, "log", n_boot=60, seed=0)
        assert failed == 0 and set(ci) == {"c1", "c2", "c3"}
        for name, true in zip(["c1", "c2", "c3"], [-0.5, 3.0, 1.0]):
            assert ci[name][0] <= true <= ci[name][1], (name, ci[name])


class TestFront:
    def _c(self, cx, err):
        return Candidate(parse("dtype float64\ninputs x\nv1 = add x 1\n"), cx, err)

    def test_pareto_drops_dominated(self):
        """Only candidates better than every simpler one stay, sorted by complexity."""
        cands = [self._c(3, 0.5), self._c(1, 1.0), self._c(5, 0.7), self._c(3, 0.4), self._c(8, float("inf"))]
        assert [(c.complexity, c.error) for c in pareto(cands)] == [(1, 1.0), (3, 0.4)]

    def test_knee_prefers_the_big_drop(self):
        """The member with the largest log-error drop per unit complexity wins, not the lowest error."""
        front = [self._c(1, 1.0), self._c(3, 0.5), self._c(10, 1e-16), self._c(14, 0.9e-16)]
        assert choose(front).complexity == 10

    def test_knee_ignores_members_far_above_the_best(self):
        """A steep early drop does not win if its error is more than twice the front's lowest."""
        front = [self._c(1, 1.0), self._c(2, 0.01), self._c(20, 0.001)]
        assert choose(front).complexity == 20


class TestExtrapolationChoice:
    def test_prefers_the_law_that_backtests(self):
        """Refitted without the largest-x rows, the true law predicts them; a flexible fit does not."""
        x = np.geomspace(1, 1000, 30)
        y = 3 * x**-0.5 + 1
        law = fit_constants(parse(POWER_LAW), [x], to_space(y, "log"), "log", max_nfev=200)
        wiggly = parse(
            "dtype float64\ninputs x\nv1 = log x\nv2 = mul v1 v1\nv3 = mul v2 0.01\nv4 = mul v1 -0.3\n"
            "v5 = add v3 v4\nv6 = add v5 1.5\nv7 = exp v6\n"
        )
        wiggly = fit_constants(wiggly, [x], to_space(y, "log"), "log", max_nfev=300)
        front = [Candidate(law, 30.0, 1e-12), Candidate(wiggly, 12.0, 1e-3)]
        chosen, errs = choose_by_extrapolation(front, x[None], y, "log")
        assert chosen.program is law and errs[0] < 1e-8 < errs[1]

    def test_inner_holdout_covers_ten_percent(self):
        """The set-aside rows are the largest x values, as few as cover 10% of the rows."""
        x0 = np.array([1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 10, 10, 20.0] + [0.5] * 16)
        assert np.flatnonzero(inner_holdout(x0)).tolist() == [11, 12, 13]
        assert inner_holdout(np.arange(5.0)).tolist() == [False] * 4 + [True]

    def test_no_split_without_distinct_values(self):
        """With a single x value there is nothing to backtest on."""
        x = np.full(6, 5.0)
        front = [Candidate(parse(POWER_LAW), 10.0, 0.1)]
        assert choose_by_extrapolation(front, x[None], np.linspace(1, 2, 6), "log") is None


class TestDiscover:
    def test_recovers_simple_law(self):
        """y = 3 x^-0.5 + 1 is rediscovered exactly and extrapolates 1000x beyond the data."""
        x = np.geomspace(1, 1000, 30)
        y = 3 * x**-0.5 + 1
        r = discover(x[None], y, ["x"], generations=60, population=48, budget_s=120, seed=0, target_error=1e-10)
        assert r.chosen.error < 1e-10
        assert r.rule.startswith("inner extrapolation") and len(r.inner_errors) == len(r.front)
        assert r.chosen.program.inputs == ("x",) and r.chosen.program.dtype == "float64"
        assert r.scales == pytest.approx((np.sqrt(1000),))
        xs = np.geomspace(1e3, 1e6, 20)
        pred = interpreter.run(r.raw_program(r.chosen.program), xs)
        np.testing.assert_allclose(pred, 3 * xs**-0.5 + 1, rtol=1e-8)
        assert [c.complexity for c in r.front] == sorted(c.complexity for c in r.front)

    def test_seeded(self):
        """Same seed and generation count give the same front."""
        x = np.geomspace(1, 100, 12)
        y = 2 * x**-0.3 + 0.5
        a = discover(x[None], y, ["x"], generations=3, population=16, budget_s=120, seed=4)
        b = discover(x[None], y, ["x"], generations=3, population=16, budget_s=120, seed=4)
        assert [c.program.to_text() for c in a.front] == [c.program.to_text() for c in b.front]

    def test_bad_arguments(self):
        """Too few rows, unsupported ops and tiny populations are refused."""
        x = np.geomspace(1, 10, 5)
        with pytest.raises(ValueError, match="too few points"):
            discover(x[None, :2], x[:2], ["x"])
        with pytest.raises(ValueError, match="not available for law search"):
            discover(x[None], x, ["x"], ops=("add", "rint"))
        with pytest.raises(ValueError, match="population must be at least 4"):
            discover(x[None], x, ["x"], population=2)


def test_input_scaling_is_exact_rewrite():
    """A program over scaled inputs and its raw-input rewrite compute the same values."""
    p = parse("dtype float64\ninputs N,D\nv1 = pow N -0.3\nv2 = div v1 D\nv3 = add v2 1.5\n")
    X = np.array([np.geomspace(1e7, 1e10, 9), np.geomspace(1e9, 1e12, 9)])
    scales = (1e8, 1e10)
    raw = with_input_scales(p, scales)
    assert raw.inputs == ("N", "D") and len(raw.instrs) == 5
    np.testing.assert_allclose(interpreter.run(raw, X), interpreter.run(p, X / np.array(scales)[:, None]), rtol=1e-14)


def test_infix_and_input_names():
    """Expressions print with column names and 6-digit or named constants; odd names get x1, x2."""
    p = parse(POWER_LAW)
    assert infix(p) == "((x ^ (-0.7)) * 1) + 0.5"
    assert infix(p, consts=["c1", "c2", "c3"], inputs=["params"]) == "((params ^ c1) * c2) + c3"
    assert program_inputs(["params", "unique_tokens"]) == ("params", "unique_tokens")
    assert program_inputs(["num-params", "log"]) == ("x1", "x2")


def test_infix_is_program_expression():
    """infix is Program.expression with pow written '^': same shape, constants numbered over dead code too."""
    p = parse("dtype float64\ninputs N,D\nv1 = mul N 2.5\nv2 = pow N -0.3\nv3 = div v2 D\nv4 = add v3 1.5\nreturn v4\n")
    labels = ["c1", "c2", "c3"]
    assert infix(p, consts=labels) == "((N ^ c2) / D) + c3"
    q = parse("dtype float64\ninputs N,D\nv1 = mul N 2.5\nv2 = div N D\nv3 = add v2 1.5\nreturn v3\n")
    assert infix(q, consts=["2.5", "1.5"]) == q.expression()
