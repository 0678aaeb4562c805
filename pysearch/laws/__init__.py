"""Scaling laws: known forms fitted robustly with bootstrap intervals, and forms discovered by search.

Modules: :mod:`~pysearch.laws.forms` (the law forms), :mod:`~pysearch.laws.data` (CSV loading,
validation, holdout selection), :mod:`~pysearch.laws.fitting` (Huber + L-BFGS / least squares from
a grid of starts, bootstrap), :mod:`~pysearch.laws.discovery` (symbolic regression over float64
programs, NSGA-II on complexity and error) with :mod:`~pysearch.laws.constant_fit` (its constant
fitting and error) and :mod:`~pysearch.laws.front` (Pareto front, choice of a law),
:mod:`~pysearch.laws.report` (fit.json, table, plot), :mod:`~pysearch.laws.selection` (choice by
cross-validated extrapolation on the holdout axis, with a range guard), :mod:`~pysearch.laws.simplify`
(laws as simplified sympy expressions) and :mod:`~pysearch.laws.estimator` (``LawRegressor``).
"""

from pysearch.laws.data import DataError, Dataset, load_dataset, parse_holdout, read_csv
from pysearch.laws.fitting import FitError, FitResult, bootstrap, fit, fit_law
from pysearch.laws.forms import FORM_NAMES, FormSpec, LawForm, make_form, register
from pysearch.laws.estimator import LawRegressor

__all__ = [
    "DataError",
    "Dataset",
    "FORM_NAMES",
    "FitError",
    "FitResult",
    "FormSpec",
    "LawRegressor",
    "LawForm",
    "bootstrap",
    "fit",
    "fit_law",
    "load_dataset",
    "make_form",
    "parse_holdout",
    "read_csv",
    "register",
]
