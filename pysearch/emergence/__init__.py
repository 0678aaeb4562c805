"""Emergence analysis: task metrics, the emergence score, the power-law toy model, PassUntil.

Modules: :mod:`~pysearch.emergence.metrics` (exact match, multiple-choice grade, token edit
distance, Brier score, log-probability, BIG-Bench emergence score),
:mod:`~pysearch.emergence.toy_model` (per-token loss as a power law of scale and the metrics it
implies), :mod:`~pysearch.emergence.passuntil` (sample-until-k estimator, task law, accelerated
emergence), :mod:`~pysearch.emergence.links` (metric ranges, chance floors, the logit and
log(-log) links and 0/1 clipping), :mod:`~pysearch.emergence.analysis` (per-metric report on a
table of models), :mod:`~pysearch.emergence.capability` (capability-space analysis across
benchmarks: observational scaling laws).
"""

from pysearch.emergence.analysis import ResultsTable, analyze, analyze_metric, read_results, write_report
from pysearch.emergence.capability import (
    CapabilityModel,
    capability_analysis,
    fit_capability,
    observational_analysis,
)
from pysearch.emergence.links import MetricRangeError, MetricScale, resolve_scale
from pysearch.emergence.metrics import (
    brier_score,
    emergence_score,
    exact_match,
    loglinear_r2,
    multiple_choice_grade,
    per_token_log_prob,
    sequence_log_prob,
    step_share,
    token_edit_distance,
)
from pysearch.emergence.passuntil import (
    Acceleration,
    PassEstimate,
    PassUntilLaw,
    SampleCount,
    detect_accelerated_emergence,
    estimate_pass_probability,
    fit_passuntil_law,
    pass_probability_estimates,
    pass_until_score,
    sample_until,
)
from pysearch.emergence.toy_model import ToyModel, resolution_limit

__all__ = [
    "Acceleration",
    "CapabilityModel",
    "MetricRangeError",
    "MetricScale",
    "PassEstimate",
    "PassUntilLaw",
    "ResultsTable",
    "SampleCount",
    "ToyModel",
    "analyze",
    "analyze_metric",
    "brier_score",
    "capability_analysis",
    "detect_accelerated_emergence",
    "emergence_score",
    "estimate_pass_probability",
    "exact_match",
    "fit_capability",
    "fit_passuntil_law",
    "loglinear_r2",
    "multiple_choice_grade",
    "observational_analysis",
    "pass_probability_estimates",
    "pass_until_score",
    "per_token_log_prob",
    "read_results",
    "resolution_limit",
    "resolve_scale",
    "sample_until",
    "sequence_log_prob",
    "step_share",
    "token_edit_distance",
    "write_report",
]
