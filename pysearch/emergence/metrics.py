"""Task metrics for emergence analysis, and BIG-Bench's emergence score.

Per-item metrics return one value per test item (average them for a task score). Discontinuous
metrics (exact match, multiple-choice grade) jump when a model crosses a threshold; continuous
ones (token edit distance, Brier score, log-probability) move smoothly with the same underlying
per-token improvement. The emergence score measures how jumpy a metric-vs-scale curve is.
"""

from __future__ import annotations

import math
from typing import Callable, Hashable, Iterator, Sequence

import numpy as np

__all__ = [
    "exact_match",
    "multiple_choice_grade",
    "token_edit_distance",
    "brier_score",
    "per_token_log_prob",
    "sequence_log_prob",
    "emergence_score",
    "step_share",
    "loglinear_r2",
]


def _as_token_list(seq: Sequence[Hashable] | str, what: str) -> list:
    if isinstance(seq, (str, bytes)):
        return list(seq)
    if isinstance(seq, np.ndarray):
        if seq.ndim != 1:
            raise ValueError(f"{what} must be a 1-D token sequence, got an array of shape {seq.shape}")
        return seq.tolist()
    try:
        return list(seq)
    except TypeError:
        raise TypeError(f"{what} must be a sequence of tokens, got {type(seq).__name__}") from None


def _check_same_length(predictions: Sequence, targets: Sequence) -> None:
    if len(predictions) != len(targets):
        raise ValueError(
            f"predictions and targets differ in length ({len(predictions)} vs {len(targets)} items)"
        )


def exact_match(predictions: Sequence, targets: Sequence) -> np.ndarray:
    """1.0 for each item whose predicted token sequence equals the target exactly, else 0.0."""
    _check_same_length(predictions, targets)
    return np.array(
        [
            float(_as_token_list(p, "prediction") == _as_token_list(t, "target"))
            for p, t in zip(predictions, targets)
        ]
    )


def _choice_items(
    rows: Sequence[Sequence[float]],
    correct: Sequence[int],
    name: str,
    shape_error: str,
    check: Callable[[int, np.ndarray], None] = lambda i, a: None,
) -> Iterator[tuple[int, np.ndarray, int]]:
    """(item, its choice row as a 1-D float array of >= 2 choices, the correct index), checked.

    ``shape_error`` (formatted with ``shape``) says what a row of the wrong shape lacks.
    """
    if len(rows) != len(correct):
        raise ValueError(f"{name} and correct differ in length ({len(rows)} vs {len(correct)} items)")
    for i, (row, c) in enumerate(zip(rows, correct)):
        a = np.asarray(row, dtype=float)
        if a.ndim != 1 or a.size < 2:
            raise ValueError(f"item {i}: " + shape_error.format(shape=a.shape))
        check(i, a)
        if not 0 <= int(c) < a.size:
            raise ValueError(f"item {i}: correct index {c} is outside 0..{a.size - 1}")
        yield i, a, int(c)


def multiple_choice_grade(choice_scores: Sequence[Sequence[float]], correct: Sequence[int]) -> np.ndarray:
    """1.0 for each item whose highest-scoring choice is the correct one (ties count as wrong)."""
    out = np.empty(len(correct))
    shape_error = "needs a 1-D list of at least 2 choice scores, got shape {shape}"
    for i, s, c in _choice_items(choice_scores, correct, "choice_scores", shape_error):
        best = np.flatnonzero(s == s.max())
        out[i] = float(best.size == 1 and best[0] == c)
    return out


def token_edit_distance(prediction: Sequence[Hashable] | str, target: Sequence[Hashable] | str) -> int:
    """Levenshtein distance between two token sequences (insert, delete, substitute cost 1)."""
    a = _as_token_list(prediction, "prediction")
    b = _as_token_list(target, "target")
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, ta in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, tb in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ta != tb))
        prev = cur
    return prev[-1]


def _check_distribution(i: int, p: np.ndarray) -> None:
    if np.any(~np.isfinite(p)) or np.any(p < 0) or abs(p.sum() - 1.0) > 1e-6:
        raise ValueError(f"item {i}: probabilities must be finite, >= 0 and sum to 1 (sum {p.sum():.6g})")


def brier_score(probabilities: Sequence[Sequence[float]], correct: Sequence[int]) -> np.ndarray:
    """Per-item multi-class Brier score: sum over choices of (p_j - [j is correct])^2; 0 is perfect."""
    out = np.empty(len(correct))
    shape_error = "needs a 1-D probability vector over >= 2 choices"
    for i, p, c in _choice_items(probabilities, correct, "probabilities", shape_error, _check_distribution):
        onehot = np.zeros_like(p)
        onehot[c] = 1.0
        out[i] = float(np.sum((p - onehot) ** 2))
    return out


def _token_probs(items: Sequence[Sequence[float]] | np.ndarray) -> list[np.ndarray]:
    if isinstance(items, np.ndarray) and items.ndim == 1:
        items = [items]
    out = []
    for i, probs in enumerate(items):
        p = np.atleast_1d(np.asarray(probs, dtype=float))
        if p.ndim != 1 or p.size == 0:
            raise ValueError(f"item {i}: needs a non-empty 1-D array of per-token probabilities")
        if np.any(~np.isfinite(p)) or np.any(p < 0) or np.any(p > 1):
            raise ValueError(f"item {i}: per-token probabilities must lie in [0, 1]")
        out.append(p)
    if not out:
        raise ValueError("no items given")
    return out


def per_token_log_prob(target_token_probs: Sequence[Sequence[float]] | np.ndarray) -> float:
    """Mean natural-log probability of the correct tokens over all tokens of all items.

    ``target_token_probs`` holds, per item, the probability the model gave each correct target
    token (teacher-forced). The negative of this value is the per-token cross-entropy.
    """
    items = _token_probs(target_token_probs)
    allp = np.concatenate(items)
    with np.errstate(divide="ignore"):
        return float(np.mean(np.log(allp)))


def sequence_log_prob(target_token_probs: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    """Per-item log-probability of the whole target sequence (sum of per-token log-probabilities)."""
    items = _token_probs(target_token_probs)
    with np.errstate(divide="ignore"):
        return np.array([float(np.sum(np.log(p))) for p in items])


def _sorted_xy(x: Sequence[float], y: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    xa = np.asarray(x, dtype=float)
    ya = np.asarray(y, dtype=float)
    if xa.ndim != 1 or ya.ndim != 1 or xa.size != ya.size:
        raise ValueError(f"x and y must be 1-D of equal length (got shapes {xa.shape} and {ya.shape})")
    if xa.size < 2:
        raise ValueError(f"need at least 2 points, got {xa.size}")
    if not (np.all(np.isfinite(xa)) and np.all(np.isfinite(ya))):
        raise ValueError("x and y must be finite")
    order = np.argsort(xa, kind="stable")
    return xa[order], ya[order]


def emergence_score(x: Sequence[float], y: Sequence[float]) -> float:
    """BIG-Bench emergence score of y against scale x.

    sign(argmax y - argmin y) * (max y - min y) / sqrt(median((y_i - y_{i-1})^2)), over the points
    sorted by x. A curve that rises in one jump scores high (``inf`` when most steps are exactly
    zero); a steady curve of n points scores about n - 1. The sign is negative when the minimum
    comes after the maximum (a falling curve).
    """
    _, ys = _sorted_xy(x, y)
    spread = float(ys.max() - ys.min())
    if spread == 0.0:
        return 0.0
    sign = math.copysign(1.0, float(np.argmax(ys)) - float(np.argmin(ys)))
    typical_step = math.sqrt(float(np.median(np.diff(ys) ** 2)))
    if typical_step == 0.0:
        return sign * math.inf
    return sign * spread / typical_step


def step_share(x: Sequence[float], y: Sequence[float]) -> float:
    """Largest single step between x-adjacent points as a fraction of the total range of y.

    1/(n-1) for evenly spread steps, 1.0 when the whole change happens in one step; 0 for a flat curve.
    """
    _, ys = _sorted_xy(x, y)
    spread = float(ys.max() - ys.min())
    if spread == 0.0:
        return 0.0
    return float(np.max(np.abs(np.diff(ys)))) / spread


def loglinear_r2(x: Sequence[float], y: Sequence[float]) -> float:
    """R^2 of a straight-line fit of y against log10 x: 1 means a perfectly steady trend in log scale."""
    xs, ys = _sorted_xy(x, y)
    if np.any(xs <= 0):
        raise ValueError("x must be > 0 (log scale)")
    u = np.log10(xs)
    total = float(np.sum((ys - ys.mean()) ** 2))
    if total == 0.0:
        return 1.0
    if np.ptp(u) == 0.0:
        return 0.0
    coef = np.polyfit(u, ys, 1)
    resid = ys - np.polyval(coef, u)
    return 1.0 - float(np.sum(resid**2)) / total
