"""Scaling laws: known forms fitted robustly with bootstrap intervals, and forms discovered by search.

Modules: :mod:`~pysearch.laws.forms` (the law forms), :mod:`~pysearch.laws.data` (CSV loading,
validation, holdout selection), :mod:`~pysearch.laws.fitting` (Huber + L-BFGS / least squares from
a grid of starts, bootstrap), :mod:`~pysearch.laws.discovery` (symbolic regression over float64
programs, NSGA-II on complexity and error) with :mod:`~pysearch.laws.constant_fit` (its constant
fitting and error) and :mod:`~pysearch.laws.front` (Pareto front, choice of a law),
:mod:`~pysearch.laws.report` (fit.json, table, plot).
"""

from pysearch.laws.data import DataError, Dataset, load_dataset, parse_holdout, read_csv
from pysearch.laws.fitting import FitError, FitResult, bootstrap, fit, fit_law
from pysearch.laws.forms import FORM_NAMES, LawForm, make_form

__all__ = [
    "DataError",
    "Dataset",
    "FORM_NAMES",
    "FitError",
    "FitResult",
    "LawForm",
    "bootstrap",
    "fit",
    "fit_law",
    "load_dataset",
    "make_form",
    "parse_holdout",
    "read_csv",
]
