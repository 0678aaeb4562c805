"""float32 error of baseline programs on samples of a domain (through the Rust core)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from pysearch import targets
from pysearch.domain import Domain
from pysearch.evaluation import evaluate, ulp_error
from pysearch.program import Program
from pysearch.ulp import ulp_errors


def reference(target: object, x: np.ndarray) -> np.ndarray:
    """f(x) in float64 for float32 ``x``."""
    return np.asarray(targets.reference(target, x)[0], dtype=np.float64)


def max_ulp(programs: Sequence[Program], x: np.ndarray, target: object) -> tuple[np.ndarray, np.ndarray]:
    """(max ULP, mean ULP) arrays over ``x``, one entry per float32 program."""
    table = ulp_error(list(programs), x, target)
    return np.asarray(table.max_ulp, dtype=np.float64), np.asarray(table.mean_ulp, dtype=np.float64)


def worst_points(program: Program, x: np.ndarray, target: object, k: int) -> np.ndarray:
    """The k inputs of ``x`` where ``program`` has its largest ULP errors."""
    e = ulp_errors(evaluate(program, x), reference(target, x))
    return x[np.argsort(e)[-k:]]


def sample(domain: Sequence[float], n: int, seed: int = 0) -> np.ndarray:
    """Sorted distinct float32 values of [a, b]: three quarters uniform in value, one quarter
    from ``Domain.sample`` (uniform in bit pattern, edges, binade boundaries)."""
    dom = Domain(*domain)
    rng = np.random.default_rng(seed)
    by_value = rng.uniform(dom.a, dom.b, n - n // 4).astype(np.float32)
    x = np.concatenate([by_value, dom.sample(max(n // 4, 1), seed)])
    return np.unique(x[(x >= np.float32(dom.a)) & (x <= np.float32(dom.b))])
