"""Classical baselines: fits reproduce the published errors, programs evaluate them, float32 tuning."""

from __future__ import annotations

import math

import numpy as np
import pytest

import pysearch
from pysearch.baselines import (
    chebyshev,
    estrin,
    fpminimax,
    horner,
    max_error,
    minimax,
    pade,
    rational,
    rational_minimax,
    taylor,
    to_program,
)
from pysearch.baselines.approximations import poly_ascending
from pysearch.baselines.table import format_rows, real_rows
from pysearch.interpreter import run_mpmath

LN2_HALF = math.log(2) / 2
PROBLEMS = [
    ("exp2", (0.0, 1.0)),
    ("log2", (1.0, 2.0)),
    ("erf", (0.0, 1.0)),
    ("tanh", (0.0, 1.0)),
    ("exp", (-LN2_HALF, LN2_HALF)),
    ("log", (0.5, 1.0)),
]


@pytest.fixture(scope="module")
def exp2_minimax():
    """Real minimax polynomials for exp2 on [0, 1], degrees 5 and 6."""
    return {n: minimax("exp2", (0, 1), n) for n in (5, 6)}


class TestPublishedErrors:
    """The paper's comparison points for 2^x on [0, 1] (max relative error)."""

    def test_minimax_degree5_and_6(self, exp2_minimax):
        """Degree-5 minimax: 7.49e-8 (paper: 7.5e-8); degree 6: 1.86e-9."""
        assert float(exp2_minimax[5].error) == pytest.approx(7.4936e-8, rel=1e-4)
        assert float(exp2_minimax[6].error) == pytest.approx(1.8558e-9, rel=1e-4)

    def test_absolute_minimax_matches_classical_figures(self):
        """Absolute-error minimax gives the ~1.0e-7 (degree 5) and ~2.5e-9 (degree 6) figures."""
        assert float(minimax("exp2", (0, 1), 5, weight="absolute").error) == pytest.approx(1.069e-7, rel=1e-3)
        assert float(minimax("exp2", (0, 1), 6, weight="absolute").error) == pytest.approx(2.644e-9, rel=1e-3)

    def test_taylor_pade_rational(self):
        """Taylor degree 5 at 0: 8.5e-5; Padé (3,3) at 1/2: 6.0e-9; rational minimax (3,3): 9.3e-11."""
        assert float(taylor("exp2", (0, 1), 5, center=0).error) == pytest.approx(8.536e-5, rel=1e-3)
        assert float(pade("exp2", (0, 1), 3, 3).error) == pytest.approx(5.986e-9, rel=1e-3)
        assert float(rational_minimax("exp2", (0, 1), 3, 3).error) == pytest.approx(9.31e-11, rel=1e-3)

    def test_exp_equals_exp2_by_change_of_variable(self):
        """exp on [-ln2/2, ln2/2] is exp2 on [0, 1] after an affine map: same relative minimax."""
        assert float(minimax("exp", (-LN2_HALF, LN2_HALF), 4).error) == pytest.approx(2.5934e-6, rel=1e-4)

    def test_chebyshev_is_near_minimax(self, exp2_minimax):
        """Chebyshev interpolation is within a factor 1.5 of the minimax error, and not below it."""
        ch = float(chebyshev("exp2", (0, 1), 5).error)
        assert float(exp2_minimax[5].error) <= ch <= 1.5 * float(exp2_minimax[5].error)


class TestRemez:
    """Robustness of the exchange algorithms."""

    @pytest.mark.parametrize("target, domain", PROBLEMS)
    @pytest.mark.parametrize("degree", [1, 7])
    def test_converges(self, target, domain, degree):
        """Remez converges (levelled error) and the independent error search agrees with it."""
        a = minimax(target, domain, degree)
        assert a.info["converged"]
        assert a.weight == "relative"
        measured = max_error(a, target, domain, n_sample=150)
        assert float(measured) == pytest.approx(float(a.error), rel=1e-5)

    @pytest.mark.slow
    @pytest.mark.parametrize("target, domain", PROBLEMS)
    def test_converges_every_degree(self, target, domain):
        """Degrees 1..10 all converge and the error decreases with the degree."""
        errors = []
        for n in range(1, 11):
            a = minimax(target, domain, n)
            assert a.info["converged"], (target, n)
            errors.append(float(a.error))
        assert all(e2 < e1 for e1, e2 in zip(errors, errors[1:])), errors

    def test_rational_converges_without_poles(self):
        """Rational minimax (2,2) for log2 converges; its denominator keeps one sign on the domain."""
        r = rational_minimax("log2", (1, 2), 2, 2)
        assert r.info["converged"]
        qs = [poly_ascending(r.den, t) for t in np.linspace(0, 1, 101)]
        assert all(q > 0 for q in qs) or all(q < 0 for q in qs)

    def test_zero_of_target_is_factored_out(self):
        """log2 on [1, 2]: fitted in t = x - 1 with a zero constant term, so x = 1 gives exactly 0."""
        a = minimax("log2", (1, 2), 5)
        assert a.shift == 1.0 and a.num[0] == 0
        p = to_program(a, "horner", True, "float32")
        assert pysearch.evaluate(p, np.array([1.0], dtype=np.float32))[0] == 0.0
        assert float(max_error(p, "log2", (1, 2), n_sample=100)) < 1e-4

    def test_interior_zeros(self):
        """One zero at a float32 value, also inside the domain, is factored out; two zeros fall
        back to absolute error."""
        assert minimax("tanh", (-1, 0.5), 3).shift == 0.0
        assert minimax("sin", (-1, 4), 3).weight == "absolute"

    def test_bad_arguments(self):
        """Unknown targets, empty domains and bad degrees are ValueErrors naming the problem."""
        with pytest.raises(ValueError, match="unknown target"):
            minimax("exp3", (0, 1), 3)
        with pytest.raises(ValueError, match="a < b"):
            minimax("exp2", (1, 0), 3)
        with pytest.raises(ValueError, match="degree"):
            minimax("exp2", (0, 1), 0)
        with pytest.raises(ValueError, match="numerator"):
            rational_minimax("log2", (1, 2), 0, 2)


class TestPrograms:
    """Evaluation orders and their op counts."""

    def test_op_counts(self, exp2_minimax):
        """Degree 6: Horner 6 fma or 12 mul/add; Estrin 8 ops with a shorter critical path."""
        a = exp2_minimax[6]
        h, hm = to_program(a, "horner", True), to_program(a, "horner", False)
        e = to_program(a, "estrin", True)
        assert (h.ops, hm.ops, e.ops) == (6, 12, 8)
        assert {i.op for i in h.instrs} == {"fma"} and {i.op for i in hm.instrs} == {"mul", "add"}
        assert e.latency() < h.latency()

    def test_rational_op_count(self):
        """A (3,3) rational is two degree-3 Horner polynomials and one division."""
        p = rational([1, 2, 3, 4], [1, 5, 6, 7], fma=True)
        assert p.ops == 7 and [i.op for i in p.instrs].count("div") == 1

    def test_zero_and_unit_coefficients_cost_nothing(self):
        """x*(c1 + x*c2): no '+ 0' step; a leading coefficient 1 needs no multiply."""
        assert [i.op for i in horner([0, 3, 2]).instrs] == ["fma", "mul"]
        assert [i.op for i in horner([5, 1, 1]).instrs] == ["add", "fma"]
        assert [i.op for i in horner([2, 3], shift=1.0).instrs] == ["sub", "fma"]

    def test_orders_compute_the_polynomial(self):
        """Horner and Estrin (fma or not) evaluate sum c_j x^j to float64 accuracy."""
        cs = [1.0, -0.5, 0.25, 0.125, -0.0625, 0.03125, 0.3, -0.7]
        x = np.linspace(-2, 2, 101)
        want = np.polyval(cs[::-1], x)
        for p in (horner(cs, dtype="float64"), estrin(cs, dtype="float64"), estrin(cs, False, dtype="float64")):
            np.testing.assert_allclose(pysearch.evaluate(p, x), want, rtol=1e-13, atol=1e-14)

    def test_real_error_of_program(self, exp2_minimax):
        """max_error of the float64 program equals the approximation's error (real arithmetic)."""
        p = to_program(exp2_minimax[5], "horner", True, "float64")
        assert float(max_error(p, "exp2", (0, 1), n_sample=150)) == pytest.approx(7.4936e-8, rel=1e-4)
        assert float(run_mpmath(p, [0.0])[0]) == pytest.approx(1.0, abs=1e-7)

    def test_constant_program_is_rejected(self):
        """A degree-0 polynomial has no instruction depending on x."""
        with pytest.raises(ValueError, match="constant"):
            horner([1.5])


@pytest.fixture(scope="module")
def deg6():
    """fpminimax-style degree-6 Horner-fma exp2 on [0, 1] (reduced search sizes)."""
    return fpminimax("exp2", (0, 1), 6, n_sample=1 << 13, n_hard=1 << 13, n_scan=1 << 20, exhaustive=False)


class TestFloat32:
    """fpminimax-style coefficients."""

    def test_coefficients_are_float32(self, deg6):
        """Every coefficient is exactly a float32 and the program is 6 fma."""
        for c in deg6.approximation.num:
            assert float(np.float32(float(c))) == float(c)
        assert deg6.program.ops == 6 and {i.op for i in deg6.program.instrs} == {"fma"}

    def test_real_error_stays_near_minimax(self, deg6, exp2_minimax):
        """Rounding and tuning cost less than a factor 2 in real relative error."""
        assert float(deg6.real_error) < 2 * float(exp2_minimax[6].error)

    def test_under_one_ulp_where_the_maximum_lives(self, deg6):
        """Below 1 ULP on every float32 of [0.5, 1] (the whole domain: the slow test)."""
        stats = pysearch.verify(deg6.program, "exp2", (0.5, 1.0))
        assert stats.max_ulp < 1.0
        assert deg6.verified == "sampled" and deg6.max_ulp < 1.0
        assert deg6.max_ulp <= deg6.rounded_max_ulp  # never worse than plain sequential rounding

    def test_beats_nearest_rounding(self, deg6, exp2_minimax):
        """The tuned coefficients beat the real minimax rounded to nearest (0.95 ULP sampled)."""
        naive = to_program(exp2_minimax[6].float_coefficients(), "horner", True)
        x = pysearch.Domain(0.5, 1.0).sample(1 << 18, 3)
        assert pysearch.ulp_error(deg6.program, x, "exp2").max_ulp < pysearch.ulp_error(naive, x, "exp2").max_ulp

    @pytest.mark.slow
    def test_degree6_horner_fma_exhaustive(self):
        """Default settings: at most 0.9 ULP over every float32 in [0, 1] (Sollya's: 0.896)."""
        fm = fpminimax("exp2", (0, 1), 6)
        assert fm.verified == "exhaustive" and fm.max_ulp < 0.9
        assert pysearch.verify(fm.program, "exp2", (0.0, 1.0)).max_ulp == fm.max_ulp


def test_table_rows():
    """The baseline table lists every method with op counts and errors."""
    rows = real_rows("exp2", (0, 1), degrees=[3], rational_types=[(1, 1)])
    assert {r["method"] for r in rows} == {"taylor@0", "taylor@0.5", "chebyshev", "minimax", "pade@0.5",
                                           "rational minimax"}
    text = format_rows(rows, ["method", "degree", "ops_fma", "error"])
    assert "rational minimax" in text and len(text.splitlines()) == len(rows) + 2
