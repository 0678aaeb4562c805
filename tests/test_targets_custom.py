"""Any function as a target: expressions in x from the CLI and the Python API (issue 10)."""

from __future__ import annotations

import json
import math

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pysearch as ps
from pysearch.cli import main
from pysearch.expression import FUNCTIONS, MAX_LENGTH, ExpressionError, parse_expression
from pysearch.targets import (
    BUILTIN, EXACT_PREC, TRUST_REL, Target, TargetUndefinedError, round_exact_to_float32,
)

SINC = "sin(x)/x"
# 1 - x^2/6 + x^4/120 in float32: a few hundred ulps from sin(x)/x on (0, 1]
SINC_DEG4 = "v1 = mul x x\nv2 = fma v1 0.008333333 -0.16666667\nv3 = fma v2 v1 1.0\n"


class TestExpressionParser:
    @pytest.mark.parametrize("text, canonical", [
        ("sin(x)/x", "sin(x) / x"),
        ("x", "x"),
        ("-x**2 + 3*x - 0.5", "-x ** 2 + 3 * x - 0.5"),
        ("exp(-x*x) * erf(x) / sqrt(pi)", "exp(-x * x) * erf(x) / sqrt(pi)"),
        ("lgamma(x + 1) - log(gamma(x + 1))", "lgamma(x + 1) - log(gamma(x + 1))"),
        ("2**x + e**x + x**(1/3)", "2 ** x + e ** x + x ** (1 / 3)"),
        ("  +atanh(tanh(x))  ", "+atanh(tanh(x))"),
        ("0x10 * 1_000 * 1e-3", "16 * 1000 * 0.001"),
    ])
    def test_accepts_the_whitelist(self, text, canonical):
        """Numbers, x, pi, e, + - * / **, unary signs and whitelisted calls parse to canonical text."""
        assert parse_expression(text).text == canonical

    @pytest.mark.parametrize("name", sorted(FUNCTIONS))
    def test_every_function_parses_and_evaluates(self, name):
        """Each whitelisted function parses as name(x) and evaluates in mpmath and float64."""
        e = parse_expression(f"{name}(x)")
        x = 1.375 if name == "acosh" else 0.375
        with mpmath.workprec(EXACT_PREC):
            w = e.mp(mpmath.mpf(x))
        v, err = e.f64(np.array([x], np.float32))
        assert isinstance(w, mpmath.mpf) and 0 <= err[0] <= 1e-13 * abs(v[0])
        assert abs(w - mpmath.mpf(v[0])) <= err[0]

    @pytest.mark.parametrize("text, needle", [
        ("x.__class__", "attribute access"),
        ("x.real", "attribute access"),
        ("__import__('os')", "unknown function '__import__'"),
        ("__builtins__", "unknown name '__builtins__'"),
        ("(lambda: 1)()", "only named functions"),
        ("lambda: x", "lambda"),
        ("[x for x in ()]", "comprehensions"),
        ("sum(x for x in ())", "unknown function 'sum'"),
        ("x[0]", "subscripts"),
        ("'x'", "str constant"),
        ("1j * x", "complex constant"),
        ("True + x", "bool constant"),
        ("x if x else 1", "if-else"),
        ("x < 1", "comparisons"),
        ("x % 2", "Mod"),
        ("x // 2", "FloorDiv"),
        ("~x", "Invert"),
        ("sin(y)", "unknown name 'y'"),
        ("sinc(x)", "unknown function 'sinc'"),
        ("sin(x, 1)", "exactly one argument"),
        ("sin()", "exactly one argument"),
        ("sin(x=1)", "exactly one argument"),
        ("sin(*x)", "exactly one argument"),
        ("sin", "must be called"),
        ("sin(x", "syntax error"),
        ("x = 1", "syntax error"),
        ("x; 1", "syntax error"),
        ("", "empty"),
        ("x ** 2 ** 100", "exponent '2 \\*\\* 100'|exponent '2\\*\\*100'"),
        ("x ** 1e5", "exponent"),
        ("x ** -2000", "exponent"),
        ("x ** (1/0)", "exponent"),
        ("1e999 * x", "too large"),
        ("9" * 400 + " * x", "too large"),
        ("x" + "+x" * MAX_LENGTH, "limit"),
        ("(" * 300 + "x" + ")" * 300, "syntax error.*nested"),
        ("-" * 990 + "x", "nested too deeply"),
        ("x\x00", "null byte|cannot parse"),
    ])
    def test_rejects_everything_else(self, text, needle):
        """Anything outside the grammar is an ExpressionError (a ValueError) naming the problem."""
        with pytest.raises(ExpressionError, match=needle) as info:
            parse_expression(text)
        assert isinstance(info.value, ValueError) and "\n" not in str(info.value)

    @pytest.mark.parametrize("text, inexact", [("0.1", True), ("1e-3", True), ("0.5", False), ("3", False),
                                                ("0x1p", None), ("2.5e3", False), ("pi", True)])
    def test_decimal_literals_carry_their_rounding_error(self, text, inexact):
        """A decimal that float64 cannot hold gets half an ulp of error bound; exact ones get none."""
        if inexact is None:
            with pytest.raises(ExpressionError):
                parse_expression(text)
            return
        v, err = parse_expression(text).f64(np.zeros(1, np.float32))
        assert (err[0] == math.ulp(v[0]) / 2) if inexact else err[0] == 0

    @settings(max_examples=200)
    @given(st.text(alphabet="x()+-*/.^%[]_,'ey0123456789 sinexplogqrtabcdg", max_size=40))
    def test_fuzzed_text_parses_or_is_an_expression_error(self, text):
        """Random text gives an Expression or an ExpressionError, never another exception."""
        try:
            e = parse_expression(text)
        except ExpressionError:
            return
        assert parse_expression(e.text).text == e.text  # the canonical form is a fixed point

    def test_get_target_names_the_problem(self):
        """get_target reports unknown names and bad expressions as one-line ValueErrors."""
        with pytest.raises(ValueError, match="unknown target 'cube'.*expression in x"):
            ps.get_target("cube")
        with pytest.raises(ValueError, match="bad target 'x.imag'.*attribute access"):
            ps.get_target("x.imag")


def _exact(expr, x):
    with mpmath.workprec(EXACT_PREC):
        try:
            w = expr.mp(mpmath.mpf(float(x)))
        except (ZeroDivisionError, ValueError):
            return None
        return None if isinstance(w, mpmath.mpc) or mpmath.isnan(w) else w


# each function on float32 points where it is real and finite
_FUNCTION_RANGES = {
    "exp": (-700, 700), "exp2": (-1000, 1000), "expm1": (-50, 700), "log": (1e-30, 1e30),
    "log2": (1e-30, 1e30), "log10": (1e-30, 1e30), "log1p": (-0.999, 1e30), "sqrt": (0, 1e30),
    "cbrt": (-1e30, 1e30), "sin": (-1e4, 1e4), "cos": (-1e4, 1e4), "tan": (-1e4, 1e4),
    "asin": (-1, 1), "acos": (-1, 1), "atan": (-1e30, 1e30), "sinh": (-700, 700), "cosh": (-700, 700),
    "tanh": (-30, 30), "asinh": (-1e30, 1e30), "acosh": (1, 1e30), "atanh": (-0.9999, 0.9999),
    "erf": (-6, 6), "erfc": (-6, 26), "gamma": (-170.5, 170), "lgamma": (-1e3, 1e30), "abs": (-1e30, 1e30),
}


def _expressions():
    """Random expression texts of the grammar, up to three levels deep."""
    leaves = st.sampled_from(["x", "x", "pi", "e", "2", "0.1", "3", "0.5"])
    calls = st.sampled_from(sorted(FUNCTIONS))

    def extend(inner):
        return st.one_of(
            st.tuples(calls, inner).map(lambda t: f"{t[0]}({t[1]})"),
            st.tuples(inner, st.sampled_from(["+", "-", "*", "/"]), inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
            st.tuples(inner, st.sampled_from(["2", "3", "0.5", "-1", "x"])).map(lambda t: f"({t[0]}) ** {t[1]}"),
            inner.map(lambda t: f"-({t})"),
        )

    return st.recursive(leaves, extend, max_leaves=6)


class TestFloat64AgreesWithMpmath:
    @pytest.mark.parametrize("name", sorted(FUNCTIONS))
    @settings(max_examples=25)
    @given(u=st.floats(0, 1))
    def test_exact_value_within_the_float64_bound(self, name, u):
        """For every function, the mpmath value lies within the float64 value's error bound."""
        lo, hi = _FUNCTION_RANGES[name]
        x = np.float32(lo + (hi - lo) * u)
        e = parse_expression(f"{name}(x)")
        w = _exact(e, x)
        v, err = e.f64(np.array([x], np.float32))
        if w is None or not (math.isfinite(v[0]) and math.isfinite(err[0])):
            return  # undefined or undecided in float64: settled by mpmath
        assert abs(w - mpmath.mpf(v[0])) <= mpmath.mpf(err[0]), (name, x, w, v[0], err[0])

    @pytest.mark.parametrize("text", [
        SINC, "(exp(x) - 1) / x", "log(1 + x) - x", "x**3 - 3*x + 1", "sqrt(1 - x*x) * cos(pi*x)",
        "gamma(x) * sin(pi * x)", "1 / (1 + exp(-x))", "tan(x) - x", "erfc(x) * exp(x*x)",
    ])
    @settings(max_examples=25)
    @given(u=st.floats(-1, 1))
    def test_composed_expressions_round_correctly(self, text, u):
        """The float32 reference of composed expressions equals mpmath's correct rounding."""
        x = np.array([np.float32(u * 2.5)], np.float32)
        t = Target.from_expression(text)
        w = _exact(t.expression, x[0])
        if w is None:
            with pytest.raises(TargetUndefinedError):
                ps.reference(t, x)
            return
        ref, rounded = ps.reference(t, x)
        want = round_exact_to_float32(w)
        assert rounded[0] == want or (np.isnan(rounded[0]) and np.isnan(want))
        if mpmath.isfinite(w) and w != 0:
            assert abs(mpmath.mpf(ref[0]) - w) <= abs(w) * TRUST_REL * 1.01

    @settings(max_examples=60)
    @given(text=_expressions(), x=st.floats(-40, 40, width=32))
    def test_random_expressions_round_correctly(self, text, x):
        """For random grammar trees, the reference equals mpmath's rounding or names an undefined point."""
        t = Target.from_expression(text)
        xs = np.array([x], np.float32)
        w = _exact(t.expression, xs[0])
        if w is None:
            with pytest.raises(TargetUndefinedError):
                ps.reference(t, xs)
            return
        want = round_exact_to_float32(w)
        got = ps.reference(t, xs)[1][0]
        assert got == want or (np.isnan(got) and np.isnan(want)), (text, x, got, want)

    def test_sample_reference_matches_mpmath_everywhere(self):
        """On a 4096-point search sample of sin(x)/x, every rounded reference equals mpmath's."""
        t = ps.get_target(SINC)
        x = ps.Domain(0.001, 4.0).sample(4096)
        _, rounded = ps.reference(t, x)
        want = np.array([round_exact_to_float32(t.exact(xi)) for xi in x], np.float32)
        assert np.array_equal(rounded, want)


class TestRoundExactToFloat32:
    def test_exact_at_low_working_precision(self):
        """Rounding is exact even at mpmath's default 53 bits: near-ties and overflow included."""
        with mpmath.workprec(300):
            above_tie = 1 + mpmath.ldexp(1, -24) + mpmath.ldexp(1, -100)
            below_tie = 1 + mpmath.ldexp(1, -24) - mpmath.ldexp(1, -100)
            tie = 1 + mpmath.ldexp(1, -24)
            big = mpmath.mpf(10) ** 48
            overflow_edge = mpmath.mpf(float(np.finfo(np.float32).max)) + mpmath.ldexp(1, 103)
            just_below_edge = overflow_edge - mpmath.ldexp(1, 60)
        assert mpmath.mp.prec == 53
        assert round_exact_to_float32(above_tie) == np.float32(1 + 2.0**-23)
        assert round_exact_to_float32(below_tie) == np.float32(1.0)
        assert round_exact_to_float32(tie) == np.float32(1.0)
        assert round_exact_to_float32(big) == np.inf and round_exact_to_float32(-big) == -np.inf
        assert round_exact_to_float32(overflow_edge) == np.inf
        assert round_exact_to_float32(just_below_edge) == np.finfo(np.float32).max


class TestVerifyLargeDomain:
    def test_eight_million_points_exhaustively(self):
        """x**0.5 (not the built-in) is verified on all 8,388,608 float32s of [1, 2): the sqrt op is exact."""
        t = ps.get_target("x ** 0.5")
        assert not t.builtin and t.expression is not None
        st_ = ps.verify("v = sqrt x\n", t, (1.0, float(np.nextafter(np.float32(2), np.float32(0)))))
        assert st_.mode == "exhaustive" and st_.n_points == 2**23
        assert st_.max_ulp <= 0.5 and st_.frac_correctly_rounded == 1.0 and st_.max_ulp_distance == 0

    def test_chunked_exhaustive_equals_one_sample_of_all_points(self, monkeypatch):
        """Merging chunk statistics gives what measuring the materialised domain at once gives."""
        import pysearch.evaluation as ev

        monkeypatch.setattr(ev, "EXPRESSION_CHUNK", 1000)
        dom = ps.Domain(0.5, 0.5 + 2.0**-12)
        ex = ps.verify(SINC_DEG4, SINC, dom)
        sm = ps.ulp_error(SINC_DEG4, dom.all(), SINC)
        assert ex.n_points == sm.n_points == dom.count() > 4000
        assert ex.max_ulp == sm.max_ulp and ex.argmax_x == sm.argmax_x
        assert ex.frac_correctly_rounded == sm.frac_correctly_rounded
        assert ex.max_ulp_distance == sm.max_ulp_distance
        assert ex.mean_ulp == pytest.approx(sm.mean_ulp, rel=1e-12)

    def test_expression_equal_to_a_builtin_verifies_the_same(self):
        """exp2 written as 2**x gives the built-in exp2's exhaustive statistics."""
        p = "v1 = fma x 0.3371894 0.6576363\nv2 = fma v1 x 1.0\n"
        dom = (0.25, 0.25 + 2.0**-8)
        a = ps.verify(p, "exp2", dom)
        b = ps.verify(p, "2 ** x", dom)
        assert (a.max_ulp, a.argmax_x, a.frac_correctly_rounded, a.n_points) == \
            (b.max_ulp, b.argmax_x, b.frac_correctly_rounded, b.n_points)


class TestUndefinedPoints:
    def test_removable_singularity_is_an_error_naming_the_point(self):
        """sin(x)/x on a domain holding 0 raises TargetUndefinedError at x=0.0."""
        with pytest.raises(TargetUndefinedError, match=r"undefined at x=-?0\.0 \(division by zero\)"):
            ps.verify(SINC_DEG4, SINC, (-1.0, 1.0))

    @pytest.mark.parametrize("text, x, reason", [
        ("log(x)", -1.0, "not real"),
        ("sqrt(x)", -2.0, "not real"),
        ("gamma(x)", -3.0, "pole"),
        ("x ** -1", 0.0, "division by zero"),
        ("exp(exp(exp(x))) - exp(exp(exp(x)))", 20.0, "NaN"),
        ("sin(exp(x))", 1e30, "NaN"),  # exp(1e30) is beyond 2^16384: inf, not a hang
    ])
    def test_undefined_values_name_the_reason(self, text, x, reason):
        """Non-real values, poles and 0/0 raise TargetUndefinedError with the reason."""
        with pytest.raises(TargetUndefinedError, match=reason):
            ps.reference(text, np.array([0.5, x], np.float32))

    def test_huge_intermediates_round_as_infinities(self):
        """Values beyond 2^16384 in mpmath become +-inf, which round as the exact value does."""
        x = np.array([20.0, 1e30], np.float32)
        assert np.array_equal(ps.reference("1 / exp(exp(x))", x)[1], [0.0, 0.0])
        assert np.array_equal(ps.reference("-exp(exp(x))", x)[1], [-np.inf, -np.inf])

    def test_infinite_values_are_targets(self):
        """log(0) is exactly -inf: a target value, not an error."""
        ref, rounded = ps.reference("log(x) + 0", np.array([0.0, 1.0], np.float32))
        assert ref[0] == -np.inf and rounded[0] == -np.inf and rounded[1] == 0.0


class TestPythonAPI:
    def test_get_target_and_from_expression(self):
        """get_target parses expressions (cached), Target.from_expression takes a domain."""
        t = ps.get_target(SINC)
        assert t.name == "sin(x) / x" and t.expression is not None and ps.get_target(" sin(x)/x") is t
        assert ps.Target.from_expression(SINC, (0.001, 1.0)).domain == (0.001, 1.0)
        assert not ps.get_target("exp(x)").builtin and ps.get_target("exp") is BUILTIN["exp"]

    def test_verify_and_ulp_error_take_the_expression_text(self):
        """ps.verify(p, 'sin(x)/x', (0.001, 1)) and ps.ulp_error measure the same program alike."""
        sampled = ps.verify(SINC_DEG4, SINC, (0.001, 1), exhaustive=False, n_sample=20000)
        assert sampled.mode == "sample" and 0 < sampled.max_ulp < 1e4
        x = ps.Domain(0.001, 1).sample(20000)
        assert ps.ulp_error(SINC_DEG4, x, SINC).max_ulp == sampled.max_ulp

    def test_mpmath_callable_targets_still_work(self):
        """A plain mpmath callable is still accepted, with mpmath at every point."""
        t = ps.get_target(lambda v: mpmath.sin(v) / v)
        x = np.array([0.25, 0.5], np.float32)
        assert np.array_equal(ps.reference(t, x)[1], ps.reference(SINC, x)[1])


class TestCliSearch:
    def test_search_verify_show_export_end_to_end(self, tmp_path, monkeypatch, capsys):
        """A tiny search on 'sin(x)/x' writes a front that verify, show and export read back."""
        monkeypatch.chdir(tmp_path)
        code = main(["search", SINC, "--domain", "1", "1.0078125", "--generations", "2", "--population", "16",
                     "--sample-size", "256", "--max-instrs", "6", "--no-plot", "--seed", "3"])
        out, err = capsys.readouterr()
        assert code == 0, err
        front_path = tmp_path / out.strip().splitlines()[-1]
        assert front_path.parent.parent.name == "runs" and front_path.parent.name.startswith("sin_x_div_x-")
        doc = json.loads(front_path.read_text())
        assert doc["target"] == "sin(x) / x" and doc["programs"]
        assert main(["verify", str(front_path), "--exhaustive", "--json"]) == 0
        res = json.loads(capsys.readouterr().out)
        assert res["target"] == "sin(x) / x" and all(r["claim_holds"] for r in res["results"])
        assert main(["show", str(front_path.parent), "--no-plot"]) == 0
        assert "sin(x) / x" in capsys.readouterr().out
        assert main(["export", str(front_path), "--pick", "best", "--lang", "python"]) == 0
        src = capsys.readouterr().out
        assert "approximation of sin(x) / x" in src
        compile(src, "export.py", "exec")
        # resuming accepts the expression however it is spaced, and refuses another target
        assert main(["search", "sin( x ) / x", "--out", str(front_path.parent), "--resume", "--generations", "3",
                     "--no-plot"]) == 0
        assert main(["search", "cos(x)/x", "--out", str(front_path.parent), "--resume", "--generations", "4",
                     "--no-plot"]) == 2
        assert "checkpoint is for target 'sin(x) / x'" in capsys.readouterr().err

    @pytest.mark.parametrize("target, needle", [
        ("sin(y)", "unknown name 'y'"),
        ("x.__class__", "attribute access"),
        ("sin(x, 2)", "exactly one argument"),
        ("sin(x", "syntax error"),
        ("x ** 10 ** 10", "exponent"),
    ])
    def test_bad_expressions_exit_2_with_one_line(self, target, needle, tmp_path, capsys):
        """A bad expression is a one-line error and exit status 2, before any run directory exists."""
        code = main(["search", target, "--generations", "1", "--out", str(tmp_path / "r")])
        _, err = capsys.readouterr()
        assert code == 2 and needle in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
        assert not (tmp_path / "r").exists()

    def test_undefined_point_in_the_domain_exits_2(self, tmp_path, capsys):
        """A search whose domain holds an undefined point fails with one line naming it, exit 2."""
        code = main(["search", "log(x)", "--domain", "-1", "1", "--generations", "1", "--no-plot",
                     "--population", "8", "--sample-size", "64", "--out", str(tmp_path / "r")])
        _, err = capsys.readouterr()
        assert code == 2 and "undefined at x=" in err and "Traceback" not in err

