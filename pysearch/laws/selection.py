"""Choosing a law by how well it extrapolates: cross-validated backtests on the holdout axis.

A law is wanted for the rows it has not seen, usually larger models or more data than any it
was fitted on. :func:`choose_by_cv_extrapolation` picks the Pareto member that extrapolates
best *inside the training rows*, along the axis the user's ``--holdout`` names
(:func:`holdout_axis`; the first ``--x`` column when the rule names none):

1. Cut points (:func:`cut_masks`): for each fraction in ``fractions`` (default 10%, 20%, 30%),
   the training rows at the largest distinct values of the axis, as few values as cover that
   fraction, are set aside. Identical cuts are kept once; a cut that leaves fewer than 3 rows
   to fit is dropped.
2. For every cut, each member's constants are refitted on the rows below the cut and it
   predicts the rows above it; its score is the mean, over the cuts, of the error there (RMSE
   in the fit space, or the mean Huber loss / delta with ``loss="huber"``).
3. Range guard (:func:`out_of_range`): a member whose predictions leave the range the quantity
   lives in is never chosen. Where every ``y`` is positive (a loss, a cross-entropy), a
   prediction <= 0 or non-finite is out of range, on the training rows and on *probe* rows
   beyond the data (:func:`probe_rows`: 32 distances, dense near the data, up to
   ``probe_decades`` decades further for a positive axis; every training row moved along the
   axis, the largest rows grown in every input together, and every other input moved past
   both ends of its range).
   When every member of the front leaves the range within that decade (a steep curve such as
   BNSL's 4-digit addition), the farthest of 0.5, 0.25, 0.1 and 0 decades over which some member
   stays in range is used instead. A cubic that turns negative
   just past the data (BNSL 4-digit addition) is rejected here, not picked for its small
   inner error.
4. The member with the lowest score wins; ties go to the simpler member. Its constants are
   the ones fitted on all training rows. Without a usable cut, or when no member has a finite
   score, the knee rule picks among the members that pass the guard; ``None`` (the caller's
   fallback) only when none does.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from pysearch.laws.constant_fit import ConstKernel, refit_predict, search_error
from pysearch.laws.forms import to_space

#: Fractions of the training rows each cut point sets aside (largest axis values first).
DEFAULT_FRACTIONS = (0.1, 0.2, 0.3)
#: How far beyond the largest training value of the axis the range guard probes (decades).
PROBE_DECADES = 1.0
#: Probe ranges tried in turn when no front member stays in range over the full one.
PROBE_FALLBACK = (PROBE_DECADES, 0.5, 0.25, 0.1, 0.0)
#: Probe points per row at the largest axis value.
PROBE_STEPS = 32

RULE_TEXT = (
    "inner extrapolation, cross-validated: for cut points at 10%, 20% and 30% of the training rows "
    "(largest values of the --holdout axis), constants refitted below each cut predict the rows above "
    "it; lowest mean error wins (ties: simpler); members predicting out of range (<= 0 for a positive "
    "quantity, non-finite) on the data or up to a decade beyond it (less when no member manages that) are "
    "never chosen (without a usable cut: the knee among the in-range members)"
)


def holdout_axis(holdout_spec: str | None, x_names: Sequence[str]) -> int:
    """Index of the x column the ``--holdout`` rule names (``largest:K:COL``, ``COL>=V``, ...);
    0 (the first x column) when the rule names no column or one that is not an x column."""
    if not holdout_spec:
        return 0
    from pysearch.laws.data import parse_holdout

    col = parse_holdout(holdout_spec).column
    return list(x_names).index(col) if col in x_names else 0


def largest_rows(x: np.ndarray, frac: float) -> np.ndarray:
    """Rows at the largest distinct values of ``x``, as few values as cover ``frac`` of the rows."""
    need = max(1, math.ceil(frac * len(x)))
    mask = np.zeros(len(x), dtype=bool)
    for v in np.unique(x)[::-1]:
        mask |= x == v
        if mask.sum() >= need:
            break
    return mask


def cut_masks(x: np.ndarray, fractions: Sequence[float] = DEFAULT_FRACTIONS, min_fit: int = 3) -> list[np.ndarray]:
    """The set-aside masks of the cut points (see the module doc), distinct, each leaving at
    least ``min_fit`` rows to fit."""
    out: list[np.ndarray] = []
    for f in fractions:
        m = largest_rows(np.asarray(x), f)
        if m.all() or (~m).sum() < min_fit or any(np.array_equal(m, o) for o in out):
            continue
        out.append(m)
    return out


def probe_rows(X: np.ndarray, axis: int, decades: float = PROBE_DECADES, steps: int = PROBE_STEPS) -> np.ndarray:
    """Rows beyond the data along ``axis``, at ``steps`` distances ``u = (j / steps)**2`` (dense
    near the data, where extrapolation starts) of ``decades`` decades (a positive axis: times
    ``10**(decades u)``; otherwise plus ``u`` times the axis' range):

    - every row of ``X`` with the axis moved that far beyond the axis' largest value, the other
      inputs as they are (a larger model with each training run's data, learning rate, ...);
    - the rows at the axis' largest value with every positive input multiplied by the same
      factor (scale growing in every input together, as a larger model is trained on more data);
    - for every other positive input, the rows at its smallest and largest value with it moved
      below and above its range by the same factors (a held-out large model may come with less
      data than any training run, as in Chinchilla's grid).
    """
    X = np.atleast_2d(np.asarray(X, dtype=np.float64))
    x = X[axis]
    if decades <= 0:
        return X[:, :0]
    top = X[:, x == x.max()]
    positive = np.all(X > 0, axis=1)
    blocks = []
    for j in range(1, steps + 1):
        u = (j / steps) ** 2
        moved = X.copy()
        if positive[axis]:
            moved[axis] = x.max() * 10.0 ** (decades * u)
        else:
            moved[axis] = x.max() + (x.max() - x.min()) * u
        grown = top.copy()
        grown[positive] = grown[positive] * 10.0 ** (decades * u)
        if not positive[axis]:
            grown[axis] = x.max() + (x.max() - x.min()) * u
        blocks += [moved, grown]
        for i in np.flatnonzero(positive):  # each other input past both ends of its range
            if i == axis:
                continue
            for end, sign in ((X[i].min(), -1.0), (X[i].max(), 1.0)):
                b = X[:, X[i] == end].copy()
                b[i] = end * 10.0 ** (sign * decades * u)
                blocks.append(b)
    return np.concatenate(blocks, axis=1)


def out_of_range(pred: np.ndarray, y: np.ndarray) -> bool:
    """True when ``pred`` has a non-finite value, or a value <= 0 while every ``y`` is positive."""
    pred = np.asarray(pred, dtype=np.float64)
    if not np.all(np.isfinite(pred)):
        return True
    return bool(np.all(np.asarray(y) > 0) and np.any(pred <= 0))


def cv_extrapolation_errors(
    programs: Sequence,
    X: np.ndarray,
    y: np.ndarray,
    space: str,
    axis: int = 0,
    loss: str = "lsq",
    delta: float = 1e-3,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    probe_decades: float = PROBE_DECADES,
) -> list[float] | None:
    """Per program (constants fitted on all of ``X``, ``y``): the mean inner-extrapolation error
    over the cut points, inf where the range guard rejects it; ``None`` without a usable cut."""
    X = np.atleast_2d(np.asarray(X, dtype=np.float64))
    y = np.asarray(y, dtype=np.float64)
    if not 0 <= axis < X.shape[0]:
        raise ValueError(f"holdout axis {axis} is not an input index (0..{X.shape[0] - 1})")
    cuts = cut_masks(X[axis], fractions)
    if not cuts:
        return None
    probes = probe_rows(X, axis, probe_decades)
    full = np.concatenate([X, probes], axis=1)
    cols = [np.ascontiguousarray(c) for c in full]
    ok = [i for i, prog in enumerate(programs)
          if not out_of_range(ConstKernel(prog)(np.array(prog.constants()), cols)[0], y)]
    per_cut: list[list[float]] = [[] for _ in programs]
    for inner in cuts:  # every in-range program refitted below the cut in one core call
        t_in = to_space(y[inner], space)
        preds = refit_predict([programs[i] for i in ok], X[:, ~inner], to_space(y[~inner], space), X[:, inner],
                              space, loss, delta)
        for i, p in zip(ok, preds):
            e = float(search_error(p[None], t_in, space, loss, delta)[0])
            per_cut[i].append(math.inf if out_of_range(p, y) else e)
    return [float(np.mean(es)) if es and all(math.isfinite(e) for e in es) else math.inf for es in per_cut]


def in_range(programs: Sequence, X: np.ndarray, y: np.ndarray, axis: int = 0,
             probe_decades: float = PROBE_DECADES) -> list[bool]:
    """Per program: whether it passes the range guard on the rows of ``X`` and the probe rows."""
    X = np.atleast_2d(np.asarray(X, dtype=np.float64))
    full = np.concatenate([X, probe_rows(X, axis, probe_decades)], axis=1)
    cols = [np.ascontiguousarray(c) for c in full]
    return [not out_of_range(ConstKernel(p)(np.array(p.constants()), cols)[0], y) for p in programs]


def choose_by_cv_extrapolation(front, X, y, space, loss="lsq", delta=1e-3, axis=0, fractions=DEFAULT_FRACTIONS):
    """The front member chosen by the module doc's rule and every member's score, or ``None``
    when no member passes the range guard. Without a usable cut (or when every in-range member's
    backtest fails) the knee rule (:func:`pysearch.laws.front.choose`) picks among the members
    that pass the guard; their scores are then NaN (inf for members out of range)."""
    progs = [c.program for c in front]
    for decades in PROBE_FALLBACK:  # the farthest probe range some member stays in range over
        ok = in_range(progs, X, y, axis, decades)
        if any(ok):
            break
    else:
        return None
    errs = cv_extrapolation_errors(progs, X, y, space, axis, loss, delta, fractions, decades)
    if errs is not None:
        best = min(range(len(front)), key=lambda i: (errs[i], front[i].complexity))
        if math.isfinite(errs[best]):
            return front[best], errs
    from pysearch.laws.front import choose

    chosen = choose([c for c, good in zip(front, ok) if good])
    return chosen, [math.nan if good else math.inf for good in ok]


def cv_extrapolation_score(
    fit_predict,
    X: np.ndarray,
    y: np.ndarray,
    space: str,
    axis: int = 0,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
) -> float:
    """The same backtest for any model: ``fit_predict(X_fit, y_fit, X_pred) -> predictions``
    is called once on all rows (its predictions there and at the probe rows must pass the
    range guard) and once per cut point; the score is the mean RMSE in ``space`` on the rows above the
    cuts, inf where a prediction is out of range or the fit raises ``ValueError`` (a known form
    against a program, say). NaN without a usable cut."""
    X = np.atleast_2d(np.asarray(X, dtype=np.float64))
    y = np.asarray(y, dtype=np.float64)
    cuts = cut_masks(X[axis], fractions)
    if not cuts:
        return math.nan
    try:
        with np.errstate(all="ignore"):
            whole = fit_predict(X, y, np.concatenate([X, probe_rows(X, axis)], axis=1))
    except ValueError:
        return math.inf
    if out_of_range(whole, y):  # fitted on every training row, out of range on them or just beyond
        return math.inf
    errs = []
    for inner in cuts:
        try:
            with np.errstate(all="ignore"):
                pred = np.asarray(fit_predict(X[:, ~inner], y[~inner], X[:, inner]), dtype=np.float64)
        except ValueError:
            return math.inf
        if out_of_range(pred, y):
            return math.inf
        errs.append(float(search_error(pred[None], to_space(y[inner], space), space)[0]))
    return float(np.mean(errs))
