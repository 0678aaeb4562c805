"""Law choice by cross-validated extrapolation (laws/selection.py), simplification (laws/simplify.py),
declared forms (laws/forms.py FormSpec), the LawRegressor estimator and reproducible budgets."""

import json
import math

import numpy as np
import pytest
import sympy

from pysearch.cli import main
from pysearch.commands.fit import generations_for_budget
from pysearch.laws import LawRegressor, fitting, forms, selection, simplify
from pysearch.laws.constant_fit import ConstKernel, fit_constants, fit_many, refit_predict, search_error
from pysearch.laws.discovery import Candidate, discover
from pysearch.laws.forms import to_space
from pysearch.program import parse

POWER2 = """dtype float64
inputs N, D
v1 = pow N -0.3
v2 = mul v1 2.0
v3 = pow D -0.3
v4 = mul v3 2.0
v5 = add v2 v4
v6 = add v5 1.0
"""


def _grid(n=6, m=6):
    N, D = np.meshgrid(np.geomspace(1, 100, n), np.geomspace(1, 100, m), indexing="ij")
    return np.array([N.ravel(), D.ravel()])


class TestCuts:
    def test_several_distinct_cut_points(self):
        x = np.arange(1.0, 21.0)
        cuts = selection.cut_masks(x)
        assert [int(c.sum()) for c in cuts] == [2, 4, 6]
        for c in cuts:  # each cut sets aside the largest values
            assert x[c].min() > x[~c].max()

    def test_duplicate_and_too_small_cuts_dropped(self):
        x = np.array([1.0, 1.0, 2.0, 2.0, 2.0, 2.0])
        cuts = selection.cut_masks(x)  # every fraction selects the 4 rows at 2, leaving 2 < 3 rows
        assert cuts == []
        x = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0])
        assert len(selection.cut_masks(x)) == 1  # 10%, 20%, 30% all pick the six 5s

    def test_holdout_axis_from_the_rule(self):
        names = ["N", "D"]
        assert selection.holdout_axis(None, names) == 0
        assert selection.holdout_axis("largest:3", names) == 0
        assert selection.holdout_axis("largest:3:D", names) == 1
        assert selection.holdout_axis("D>=50", names) == 1
        assert selection.holdout_axis("step>=5", names) == 0  # not an x column: the first --x


class TestAxis:
    def test_backtest_uses_the_named_axis(self):
        """Regression: the inner backtest cut along the first column whatever --holdout named.
        The error for axis=1 is the one computed by hand with cuts on the second column."""
        X = _grid()
        y = 1.0 + 2.0 * X[0] ** -0.3 + 2.0 * X[1] ** -0.25  # D exponent differs from the program's start
        prog = fit_constants(parse(POWER2), list(X), to_space(y, "log"), "log", max_nfev=200)
        e0 = selection.cv_extrapolation_errors([prog], X, y, "log", axis=0)[0]
        e1 = selection.cv_extrapolation_errors([prog], X, y, "log", axis=1)[0]
        by_hand, scipy_fits = [], []
        for inner in selection.cut_masks(X[1]):
            (q,) = fit_many([prog], X[:, ~inner], to_space(y[~inner], "log"), "log", max_iter=200)
            p = ConstKernel(q)(np.array(q.constants()), [np.ascontiguousarray(c[inner]) for c in X])
            by_hand.append(float(search_error(p, to_space(y[inner], "log"), "log")[0]))
            q = fit_constants(prog, [c[~inner] for c in X], to_space(y[~inner], "log"), "log", max_nfev=200)
            p = ConstKernel(q)(np.array(q.constants()), [np.ascontiguousarray(c[inner]) for c in X])
            scipy_fits.append(float(search_error(p, to_space(y[inner], "log"), "log")[0]))
        assert e1 == float(np.mean(by_hand))
        assert e1 == pytest.approx(float(np.mean(scipy_fits)), rel=1e-3)  # scipy's least squares agrees
        assert e0 != e1

    def test_backtest_batch_equals_each_program_alone(self):
        """The backtest refits every in-range member below a cut in one core call: each member's
        score is the one it gets alone (no program's fit depends on the others in the batch), a
        member out of range is inf without being refitted, and the refit never raises the training
        cost of the member's constants (it starts from them)."""
        X = _grid()
        y = 1.0 + 2.0 * X[0] ** -0.3 + 2.0 * X[1] ** -0.25
        power = fit_constants(parse(POWER2), list(X), to_space(y, "log"), "log", max_nfev=200)
        negative = parse("dtype float64\ninputs N, D\nv1 = mul N -1.0\nv2 = add v1 50.0\n")
        line = parse("dtype float64\ninputs N, D\nv1 = mul D 0.001\nv2 = add v1 1.5\n")
        progs = [power, negative, line, parse(POWER2)]
        batch = selection.cv_extrapolation_errors(progs, X, y, "log", loss="huber")
        alone = [selection.cv_extrapolation_errors([p], X, y, "log", loss="huber")[0] for p in progs]
        assert batch == alone
        assert batch[1] == math.inf and all(math.isfinite(e) for e in (batch[0], batch[2], batch[3]))
        inner = selection.cut_masks(X[0])[0]
        t_fit = to_space(y[~inner], "log")
        cols = [np.ascontiguousarray(c[~inner]) for c in X]
        for p in (power, line):
            start = search_error(ConstKernel(p)(np.array(p.constants()), cols), t_fit, "log", "huber")[0]
            (q,) = fit_many([p], X[:, ~inner], t_fit, "log", "huber")
            (pred,) = refit_predict([p], X[:, ~inner], t_fit, X[:, ~inner], "log", "huber")
            assert pred.tolist() == ConstKernel(q)(np.array(q.constants()), cols)[0].tolist()
            assert search_error(pred[None], t_fit, "log", "huber")[0] <= start

    def test_axis_out_of_range(self):
        with pytest.raises(ValueError, match="holdout axis 2"):
            selection.cv_extrapolation_errors([parse(POWER2)], _grid(), np.ones(36), "log", axis=2)

    def test_discover_passes_the_axis(self, monkeypatch):
        seen = []
        real = selection.choose_by_cv_extrapolation

        def spy(front, X, y, space, loss="lsq", delta=1e-3, axis=0, **kw):
            seen.append(axis)
            return real(front, X, y, space, loss, delta, axis)

        import pysearch.laws.discovery as disc

        monkeypatch.setattr(disc, "choose_by_cv_extrapolation", spy)
        X = _grid(4, 4)
        discover(X, 1 + X[0] ** -0.5 + X[1] ** -0.5, ["N", "D"], generations=2, population=8, seed=1, axis=1)
        assert seen == [1]


class TestRangeGuard:
    def test_line_that_turns_negative_is_never_chosen(self):
        """y = 11.5 - x is fitted exactly on 1..10 but predicts < 0 at 11.5 and beyond; the power
        law, a worse fit, is chosen because it stays positive."""
        x = np.arange(1.0, 11.0)
        y = 11.5 - x
        line = fit_constants(parse("dtype float64\ninputs x\nv1 = mul x -1.0\nv2 = add v1 10.0\n"), [x], y, "linear")
        power = fit_constants(parse("dtype float64\ninputs x\nv1 = pow x -0.5\nv2 = mul v1 10.0\n"), [x], y, "linear")
        front = [Candidate(line, 2.0, 1e-12), Candidate(power, 3.0, 0.5)]
        errs = selection.cv_extrapolation_errors([line, power], x[None], y, "linear")
        assert math.isinf(errs[0]) and math.isfinite(errs[1])
        chosen, _ = selection.choose_by_cv_extrapolation(front, x[None], y, "linear")
        assert chosen.program is power

    def test_guard_holds_without_a_usable_cut(self):
        """Three rows leave no cut to backtest on; the knee rule then picks among in-range members
        only (the knee alone would take the exact line, which turns negative past the data)."""
        x = np.array([1.0, 2.0, 3.0])
        y = 3.5 - x
        line = parse("dtype float64\ninputs x\nv1 = mul x -1.0\nv2 = add v1 3.5\n")
        power = fit_constants(parse("dtype float64\ninputs x\nv1 = pow x -0.5\nv2 = mul v1 2.0\n"), [x], y, "linear")
        front = [Candidate(line, 2.0, 1e-12), Candidate(power, 3.0, 0.3)]
        chosen, errs = selection.choose_by_cv_extrapolation(front, x[None], y, "linear")
        assert chosen.program is power and math.isinf(errs[0]) and math.isnan(errs[1])
        neg = parse("dtype float64\ninputs x\nv1 = add x -2.5\n")  # negative on the data itself
        assert selection.choose_by_cv_extrapolation([Candidate(neg, 1.0, 1.0)], x[None], y, "linear") is None

    def test_shorter_probe_range_when_no_member_lasts_a_decade(self):
        """Both lines leave the range within a decade (at 11.5 and 40); over half a decade the
        second stays positive, so it is chosen rather than falling back to the knee (the first)."""
        x = np.arange(1.0, 11.0)
        y = 11.5 - x
        a = parse("dtype float64\ninputs x\nv1 = mul x -1.0\nv2 = add v1 11.5\n")
        b = parse("dtype float64\ninputs x\nv1 = mul x -0.5\nv2 = add v1 20.0\n")
        assert selection.in_range([a, b], x[None], y, 0, 1.0) == [False, False]
        assert selection.in_range([a, b], x[None], y, 0, 0.5) == [False, True]
        front = [Candidate(a, 2.0, 1e-12), Candidate(b, 3.0, 1.0)]
        chosen, errs = selection.choose_by_cv_extrapolation(front, x[None], y, "linear")
        assert chosen.program is b and math.isinf(errs[0])

    def test_score_of_any_model_applies_the_guard(self):
        x = np.arange(1.0, 11.0)
        y = 11.5 - x

        def line(Xf, yf, Xp):
            a, b = np.polyfit(Xf[0], yf, 1)
            return a * Xp[0] + b

        def power(Xf, yf, Xp):
            return 10.0 * Xp[0] ** -0.5

        assert math.isinf(selection.cv_extrapolation_score(line, x[None], y, "linear"))
        assert math.isfinite(selection.cv_extrapolation_score(power, x[None], y, "linear"))

    def test_out_of_range(self):
        assert selection.out_of_range(np.array([1.0, -0.1]), np.array([1.0, 2.0]))
        assert not selection.out_of_range(np.array([1.0, -0.1]), np.array([1.0, -2.0]))
        assert selection.out_of_range(np.array([1.0, np.nan]), np.array([1.0, -2.0]))

    def test_probes_lie_beyond_the_data(self):
        X = _grid(3, 3)
        P = selection.probe_rows(X, 1, decades=1.0)
        assert P[1].max() == pytest.approx(10 * X[1].max()) and P[0].min() == pytest.approx(X[0].min() / 10)
        assert set(X[0]) <= set(P[0])  # every training row's other input, moved along the axis
        assert P[0].max() == pytest.approx(10 * X[0].max())  # and the largest rows grown together
        assert selection.probe_rows(X, 1, decades=0.0).shape == (2, 0)


class TestSimplify:
    def test_cancellation_and_folding(self):
        p = parse("dtype float64\ninputs N\nv1 = log N\nv2 = sub v1 138858.0\nv3 = add v2 138856.0\n")
        e = simplify.simplified(p)
        N = sympy.Symbol("N", positive=True)
        assert e.free_symbols == {N} and sympy.count_ops(e) == 2  # log, one subtraction
        assert float((e - sympy.log(N)).evalf()) == -2.0
        assert simplify.law_text(e) == "log(N) - 2.0"

    def test_scales_fold_into_coefficients_and_values_agree(self):
        p = parse(POWER2.replace("pow N -0.3", "pow v0 -0.3").replace("v1 = pow v0", "v0 = mul N 1e-9\nv1 = pow v0"))
        X = np.array([np.geomspace(1e8, 1e10, 7), np.geomspace(1e1, 1e3, 7)])
        e = simplify.simplified(p, X=X)
        assert not any(isinstance(a.base, sympy.Mul) for a in e.atoms(sympy.Pow))  # (N*1e-9)^b split
        assert sympy.count_ops(e) < len(p.instrs)
        f = sympy.lambdify(sorted(e.free_symbols, key=lambda s: s.name)[::-1], e)  # (N, D)
        from pysearch import evaluate

        want = np.asarray(evaluate([p], X), dtype=np.float64).ravel()
        np.testing.assert_allclose(f(*X), want, rtol=1e-12)

    def test_exact_text_reads_back(self):
        p = parse(POWER2)
        e = simplify.simplified(p)
        back = simplify.from_text(simplify.sympy_text(e), ["N", "D"])
        f1 = sympy.lambdify(sympy.symbols("N D", positive=True), e)
        f2 = sympy.lambdify(sympy.symbols("N D", positive=True), back)
        assert f1(3.0, 7.0) == f2(3.0, 7.0)

    def test_op_without_algebraic_form(self):
        with pytest.raises(simplify.SimplifyError):
            simplify.to_sympy(parse("dtype float64\ninputs x\nv1 = floor x\n"))


class TestDeclaredForms:
    def test_rectified_recovers_its_constants(self):
        x = np.array([0, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 51200, 102400.0])
        y = 3.0 / (50 + x**0.4) + 1.2
        y *= 1 + 1e-4 * np.random.default_rng(1).standard_normal(len(x))  # 0.01% noise
        r = fitting.fit(forms.make_form("rectified", ["D"]), x[None], y, max_iter=300)
        assert r.params == pytest.approx({"B": 3.0, "D_l": 50.0, "beta": 0.4, "E": 1.2}, rel=2e-2)

    def test_moe_interaction_recovered(self):
        N = np.repeat(np.geomspace(1e7, 1e9, 5), 4)
        E = np.tile([1, 4, 16, 64.0], 5)
        y = np.exp(2.0 - 0.06 * np.log(N) - 0.08 * np.log(E) + 0.003 * np.log(N) * np.log(E))
        r = fitting.fit(forms.make_form("moe", ["N", "E"]), np.array([N, E]), y, loss="lsq")
        assert r.params["c"] == pytest.approx(0.003, rel=1e-6)

    def test_lr_bsz_fits_its_own_data(self):
        rng = np.random.default_rng(0)
        lr, bs = np.exp(rng.uniform(-9, -5, 80)), np.exp(rng.uniform(4, 8, 80))
        D, N = np.exp(rng.uniform(23, 26, 80)), np.exp(rng.uniform(18, 21, 80))
        f = forms.make_form("lr_bsz", ["lr", "bs", "D", "N"])
        theta = np.array([1.8, 0.5, 0.3, 0.6, 0.3, 0.02, -7.0, -0.2, 0.1, 0.01, 6.0, 0.2])
        y = f.predict(theta, np.array([lr, bs, D, N]))
        r = fitting.fit(f, np.array([lr, bs, D, N]), y, loss="lsq")
        assert np.max(np.abs(np.log(r.predict(np.array([lr, bs, D, N]))) - np.log(y))) < 1e-3

    def test_register_a_form_in_a_few_lines(self):
        spec = forms.register(forms.FormSpec(
            name="test_saturating", roles=("N",), formula="E + A / (1 + (N / N0)**alpha)",
            params=(forms.Param("E", positive=True), forms.Param("A", positive=True),
                    forms.Param("N0", positive=True), forms.Param("alpha", 0.0, 5.0)),
            starts={"N0": lambda X: np.exp(np.mean(np.log(X[0]))) * 10.0 ** np.arange(-2, 3), "alpha": (0.3, 1.0)},
            linear=("E", "A"),
        ))
        try:
            x = np.geomspace(1, 1e4, 20)
            y = 1.0 + 2.0 / (1 + (x / 100.0) ** 0.7)
            r = fitting.fit(forms.make_form("test_saturating", ["x"]), x[None], y, loss="lsq")
            assert r.params["alpha"] == pytest.approx(0.7, rel=1e-5)
            assert "test_saturating" in forms.FORM_NAMES
        finally:
            forms.DECLARED.pop(spec.name)
            forms.FORM_NAMES = tuple(n for n in forms.FORM_NAMES if n != spec.name)

    @pytest.mark.parametrize(
        "kw, message",
        [
            ({"formula": "A * N**"}, "cannot read formula"),
            ({"formula": "A * N**q"}, "unknown name"),
            ({"linear": ("Z",)}, "not one of its parameters"),
            ({"name": "chinchilla"}, "taken"),
        ],
    )
    def test_bad_declarations(self, kw, message):
        base = dict(name="bad_form", roles=("N",), formula="A * N**b", params=(forms.Param("A"), forms.Param("b")))
        with pytest.raises(ValueError, match=message):
            forms.register(forms.FormSpec(**{**base, **kw}))
        assert "bad_form" not in forms.DECLARED

    def test_arity_and_domain_messages(self):
        with pytest.raises(ValueError, match="takes 2 --x"):
            forms.make_form("moe", ["N"])
        f = forms.make_form("rectified", ["D"])
        with pytest.raises(ValueError, match="needs inputs >= 0"):
            f.check_domain(np.array([[-1.0, 2.0]]), np.array([1.0, 1.0]), "log")


class TestEstimator:
    def test_known_form(self):
        X = _grid().T
        y = 1.0 + 2.0 * X[:, 0] ** -0.3 + 3.0 * X[:, 1] ** -0.4
        reg = LawRegressor(form="chinchilla", loss="lsq", feature_names=["N", "D"]).fit(X, y)
        assert reg.params_["alpha"] == pytest.approx(0.3, rel=1e-5)
        assert reg.score(X, y) > 0.999999
        e = reg.sympy()
        f = sympy.lambdify(sympy.symbols("N D", real=True), e)
        np.testing.assert_allclose(f(X[:, 0], X[:, 1]), reg.predict(X), rtol=1e-12)

    def test_auto_is_reproducible_and_predicts(self):
        x = np.geomspace(1, 1000, 25)
        y = 3 * x**-0.5 + 1
        a = LawRegressor(generations=6, population=16, seed=3).fit(x[:, None], y)
        b = LawRegressor(generations=6, population=16, seed=3).fit(x[:, None], y)
        assert a.program_.to_text() == b.program_.to_text()
        assert a.predict(x[:, None]).shape == (25,)
        assert np.isfinite(a.score(x[:, None], y))
        assert a.expression()  # sympy text

    def test_params_protocol_and_errors(self):
        reg = LawRegressor()
        assert reg.set_params(seed=5, form="power") is reg and reg.get_params()["seed"] == 5
        with pytest.raises(ValueError, match="no parameter"):
            reg.set_params(bogus=1)
        with pytest.raises(ValueError, match="not fitted"):
            reg.predict(np.ones((2, 1)))
        with pytest.raises(ValueError, match="rows but y has"):
            reg.fit(np.ones((3, 1)), np.ones(4))
        with pytest.raises(ValueError, match="holdout_axis 3"):
            LawRegressor(holdout_axis=3).fit(np.ones((5, 1)), np.ones(5))


class TestBudget:
    def test_budget_is_a_fixed_number_of_generations(self):
        assert generations_for_budget(None, 60.0, 64, 100.0) == (94, 600.0)
        assert generations_for_budget(None, 0.1, 64, 100.0)[0] == 1
        assert generations_for_budget(12, 60.0, 64, 100.0) == (12, 60.0)
        assert generations_for_budget(12, None, 64, 100.0) == (12, math.inf)
        assert generations_for_budget(None, 5.0, 64, 0.0) == (None, 5.0)
        with pytest.raises(ValueError, match="evals-per-second"):
            generations_for_budget(None, 5.0, 64, -1.0)

    def test_same_seed_same_law_from_the_cli(self, tmp_path):
        rng = np.random.default_rng(0)
        N = np.repeat(np.geomspace(1e7, 1e9, 6), 3)
        D = np.tile([1e9, 1e10, 1e11], 6)
        y = 1.7 + 400 * N**-0.34 + 410 * D**-0.28 + rng.normal(0, 1e-3, 18)
        csv = tmp_path / "d.csv"
        csv.write_text("N,D,loss\n" + "".join(f"{a},{b},{c}\n" for a, b, c in zip(N, D, y)))
        docs = []
        for run in ("a", "b"):
            out = tmp_path / run
            rc = main(["fit", str(csv), "--x", "N,D", "--y", "loss", "--form", "auto", "--budget", "2s",
                       "--evals-per-second", "64", "--population", "16", "--bootstrap", "0",
                       "--holdout", "largest:1:D", "--seed", "7", "--quiet", "--out", str(out)])
            assert rc == 0
            docs.append(json.loads((out / "fit.json").read_text()))
        assert docs[0]["program"] == docs[1]["program"]
        assert docs[0]["search"]["generations_limit"] == 8  # 2 s x 64 evals/s / 16
        assert docs[0]["search"]["holdout_axis"] == "D"
        assert "expression_simplified" in docs[0]


def test_declared_form_from_the_cli(tmp_path, capsys):
    x = np.array([0, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 51200.0])
    y = (3.0 / (50 + x**0.4) + 1.2) * (1 + 1e-4 * np.random.default_rng(2).standard_normal(len(x)))
    csv = tmp_path / "ft.csv"
    csv.write_text("D,loss\n" + "".join(f"{a},{b}\n" for a, b in zip(x, y)))
    rc = main(["fit", str(csv), "--x", "D", "--y", "loss", "--form", "rectified", "--holdout", "largest:2",
               "--bootstrap", "0", "--quiet", "--out", str(tmp_path / "o")])
    assert rc == 0
    doc = json.loads((tmp_path / "o" / "fit.json").read_text())
    assert doc["form"] == "rectified" and doc["holdout_error"] < 1e-3


def test_bad_evals_per_second_is_one_line(tmp_path, capsys):
    csv = tmp_path / "d.csv"
    csv.write_text("x,y\n" + "".join(f"{i},{1 + 1 / i}\n" for i in range(1, 9)))
    rc = main(["fit", str(csv), "--x", "x", "--y", "y", "--form", "auto", "--evals-per-second", "-1", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "evals-per-second" in err and len(err.strip().splitlines()) == 1


def test_power_seeds_start_discovery_on_the_law():
    """Seeded with the power family, two generations find y = 1 + 2 N^-0.3 + 3 D^-0.4 (grid data)."""
    progs = forms.power_seed_programs(["N", "D"])
    assert len(progs) == 3 and all(p.dtype == "float64" and p.inputs == ("N", "D") for p in progs)
    assert len(forms.power_seed_programs(["a", "b", "c"], max_instrs=8)) == 3  # the 9-instruction sum is left out
    X = _grid().T
    y = 1.0 + 2.0 * X[:, 0] ** -0.3 + 3.0 * X[:, 1] ** -0.4
    reg = LawRegressor(seed_power=True, generations=2, population=8, loss="lsq", feature_names=["N", "D"]).fit(X, y)
    assert reg.score(X, y) > 0.999999


def test_guard_sees_other_inputs_past_their_range():
    """Regression (Chinchilla, seed 0): a law with (c D - d)^p is NaN just below the smallest
    training D; held-out large models trained on less data hit it. The probes move D below its
    range, so the guard rejects the law."""
    X = _grid(4, 4) * np.array([[1e8], [1e9]])
    y = 1.7 + 400 * X[0] ** -0.3 + 400 * X[1] ** -0.3
    bad = parse("dtype float64\ninputs N, D\nv1 = mul D 1.0\nv2 = add v1 -9e8\nv3 = pow v2 -0.3\nv4 = add v3 2.0\n")
    assert np.all(np.isfinite(ConstKernel(bad)(np.array(bad.constants()), list(X))[0]))  # fine on the data
    assert selection.in_range([bad], X, y, axis=0) == [False]
    assert selection.probe_rows(X, 0)[1].min() < X[1].min()
