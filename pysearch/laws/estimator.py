"""``LawRegressor``: scaling-law fitting and discovery as a scikit-learn-style estimator.

For users coming from PySR or scikit-learn::

    from pysearch.laws import LawRegressor
    reg = LawRegressor(form="auto", generations=40, seed=0).fit(X, y)   # X: (n_samples, n_features)
    reg.predict(X_new); reg.score(X_new, y_new); reg.sympy()

``form="auto"`` discovers a law by symbolic regression (:func:`pysearch.laws.discovery.discover`,
the Pareto member chosen by cross-validated extrapolation along column ``holdout_axis``,
:mod:`pysearch.laws.selection`); any name of :data:`pysearch.laws.forms.FORM_NAMES` fits that
known form (:func:`pysearch.laws.fitting.fit`). ``seed_power=True`` starts discovery from power
laws too (:func:`pysearch.laws.forms.power_seed_programs`). A run is reproducible from ``seed``: discovery
stops after ``generations`` (no wall clock unless ``budget_s`` is given). ``get_params`` /
``set_params`` follow scikit-learn's conventions (no scikit-learn dependency), so the estimator
works with its model-selection tools.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from pysearch.laws import discovery, fitting, forms, simplify


class NotFittedError(ValueError):
    """``predict``/``score``/``sympy`` called before ``fit``."""


_PARAMS = (
    "form", "space", "loss", "delta", "holdout_axis", "generations", "budget_s", "population", "max_instrs",
    "ops", "seed", "select", "feature_names", "n_starts", "seed_power",
)


class LawRegressor:
    """Fit or discover ``y = f(X)``; see the module doc."""

    def __init__(
        self,
        form: str = "auto",
        space: str | None = None,
        loss: str = "huber",
        delta: float = 1e-3,
        holdout_axis: int = 0,
        generations: int | None = 40,
        budget_s: float | None = None,
        population: int = 64,
        max_instrs: int = 8,
        ops: Sequence[str] = discovery.LAW_OPS,
        seed: int = 0,
        select: str = "extrapolation",
        feature_names: Sequence[str] | None = None,
        n_starts: int = 6,
        seed_power: bool = False,
    ):
        self.form = form
        self.space = space
        self.loss = loss
        self.delta = delta
        self.holdout_axis = holdout_axis
        self.generations = generations
        self.budget_s = budget_s
        self.population = population
        self.max_instrs = max_instrs
        self.ops = ops
        self.seed = seed
        self.select = select
        self.feature_names = feature_names
        self.n_starts = n_starts
        self.seed_power = seed_power

    # ------------------------------------------------------------ sklearn protocol
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {k: getattr(self, k) for k in _PARAMS}

    def set_params(self, **params: Any) -> "LawRegressor":
        for k, v in params.items():
            if k not in _PARAMS:
                raise ValueError(f"LawRegressor has no parameter {k!r}; parameters: {', '.join(_PARAMS)}")
            setattr(self, k, v)
        return self

    def __repr__(self) -> str:
        return f"LawRegressor(form={self.form!r}, seed={self.seed})"

    # ------------------------------------------------------------ fit / predict
    def _names(self, k: int) -> list[str]:
        if self.feature_names is None:
            return [f"x{i}" for i in range(k)]
        names = [str(n) for n in self.feature_names]
        if len(names) != k:
            raise ValueError(f"{len(names)} feature_names for {k} columns of X")
        return names

    @staticmethod
    def _check_X(X, k: int | None = None) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim == 1:
            X = X[:, None]
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {X.shape}")
        if k is not None and X.shape[1] != k:
            raise ValueError(f"X has {X.shape[1]} features, the law was fitted on {k}")
        if not np.all(np.isfinite(X)):
            raise ValueError("X has a NaN or infinite value")
        return X

    def fit(self, X, y) -> "LawRegressor":
        X = self._check_X(X)
        y = np.asarray(y, dtype=np.float64).ravel()
        if len(y) != X.shape[0]:
            raise ValueError(f"X has {X.shape[0]} rows but y has {len(y)} values")
        if not np.all(np.isfinite(y)):
            raise ValueError("y has a NaN or infinite value")
        names = self._names(X.shape[1])
        self.n_features_in_ = X.shape[1]
        self.feature_names_in_ = names
        if self.form == "auto":
            if not 0 <= self.holdout_axis < X.shape[1]:
                raise ValueError(f"holdout_axis {self.holdout_axis} is not a column of X (0..{X.shape[1] - 1})")
            space = self.space or ("log" if np.all(y > 0) else "linear")
            forms._check_y_domain(y, space)
            if self.generations is None and self.budget_s is None:
                raise ValueError("give generations (reproducible) or budget_s (wall clock) for form='auto'")
            res = discovery.discover(
                X.T, y, names, space=space, ops=tuple(self.ops), max_instrs=self.max_instrs,
                population=self.population, generations=self.generations,
                budget_s=math.inf if self.budget_s is None else float(self.budget_s), seed=self.seed,
                select=self.select, loss=self.loss, delta=self.delta, axis=self.holdout_axis,
                seeds=forms.power_seed_programs(discovery.program_inputs(names), self.max_instrs) if self.seed_power else (),
            )
            self.result_ = res
            self.program_ = res.raw_program(res.chosen.program)
            self.space_ = space
        else:
            form = forms.make_form(self.form, names)
            res_f = fitting.fit(form, X.T, y, self.space, self.loss, self.delta, self.n_starts)
            self.result_ = res_f
            self.params_ = res_f.params
            self.space_ = self.space or form.default_space
        self._X_fit = X.T.copy()
        return self

    def _fitted(self) -> None:
        if not hasattr(self, "result_"):
            raise NotFittedError("this LawRegressor is not fitted yet; call fit(X, y) first")

    def predict(self, X) -> np.ndarray:
        self._fitted()
        X = self._check_X(X, self.n_features_in_)
        if self.form == "auto":
            return discovery.engine_evaluate([self.program_], np.ascontiguousarray(X.T))[0]
        return np.asarray(self.result_.predict(X.T), dtype=np.float64)

    def score(self, X, y) -> float:
        """R^2 of the predictions (scikit-learn's regressor score)."""
        y = np.asarray(y, dtype=np.float64).ravel()
        pred = self.predict(X)
        ss_res = float(np.sum((y - pred) ** 2))
        ss_tot = float(np.sum((y - y.mean()) ** 2))
        return 1.0 - ss_res / ss_tot if ss_tot > 0 else (1.0 if ss_res == 0 else -math.inf)

    # ------------------------------------------------------------ the law
    def sympy(self):
        """The fitted law as a sympy expression over the feature names (simplified for
        ``form="auto"``, checked against the program on the training inputs)."""
        self._fitted()
        if self.form == "auto":
            return simplify.simplified(self.program_, self.feature_names_in_, self._X_fit)
        import sympy

        form = self.result_.form
        if hasattr(form, "sympy_expr"):  # a declared form
            expr = form.sympy_expr.xreplace(
                {sympy.Symbol(r, real=True): sympy.Symbol(n, real=True) for r, n in zip(form.roles, form.inputs)}
            )
        else:
            names = form.param_names + list(form.inputs)
            try:
                expr = sympy.parse_expr(form.expression().replace("^", "**"), local_dict={n: sympy.Symbol(n, real=True) for n in names})
            except (SyntaxError, TypeError, ValueError, sympy.SympifyError):
                raise simplify.SimplifyError(f"form {form.name!r} has no sympy form; use expression() of the fit") from None
        subs = {s: sympy.Float(repr(self.params_[s.name]), 17) for s in expr.free_symbols if s.name in self.params_}
        return expr.xreplace(subs)

    def expression(self, digits: int = 6) -> str:
        """The fitted law as sympy-style text, constants to ``digits`` significant digits."""
        return simplify.law_text(self.sympy(), digits)
