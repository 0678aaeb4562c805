"""Capability-space analysis across benchmarks (observational scaling laws, Ruan et al. 2024).

Benchmark scores of many models are logit-transformed (through each metric's
:class:`~pysearch.emergence.links.MetricScale`, so a chance floor and clipping apply), standardised
and reduced by PCA to a few principal capability measures. Each measure is modelled as a linear
function of log10 scale with one intercept per model family (a family's compute efficiency) and a
slope shared by all families. A model of known scale and family then gets predicted capabilities,
and every benchmark is predicted from them through the PCA loadings and the inverse link, so
predictions stay inside each metric's range.

Missing scores (a benchmark a model was not run on) are filled by iterative rank-k SVD on the
training models (expectation-maximisation for PCA with missing values).

Everything is fitted on the training models only; :func:`capability_analysis` compares the
held-out errors with two direct per-benchmark laws fitted on the same split: the law
:func:`~pysearch.emergence.analysis.analyze_metric` selects (pooled over families), and a logit
line in log scale with family intercepts (the same family model as here, one benchmark at a time).

:func:`observational_analysis` is the other use of the same space (Ruan et al.'s main one): the
held-out models' scores on the other benchmarks are known, their capability components are
projected from those, and the target benchmark is predicted as a logit-linear function of the
components fitted on the training models.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from pysearch.emergence.links import MetricRangeError, MetricScale, resolve_scale

__all__ = [
    "CapabilityModel",
    "capability_analysis",
    "family_line",
    "fit_capability",
    "impute_low_rank",
    "observational_analysis",
]

DEFAULT_COMPONENTS = 3


def impute_low_rank(s: np.ndarray, rank: int, iters: int = 5000, tol: float = 1e-12) -> np.ndarray:
    """Fill the NaNs of ``s`` with a column-mean + rank-``rank`` model, by alternating the fill and
    the truncated SVD (hard impute). The column means are re-estimated each round, so data that is
    exactly mean + rank ``rank`` is completed exactly where it determines the missing cells."""
    missing = np.isnan(s)
    filled = np.where(missing, np.nanmean(s, axis=0), s)
    if not missing.any():
        return filled
    for _ in range(iters):
        mu = filled.mean(axis=0)
        u, sv, vt = np.linalg.svd(filled - mu, full_matrices=False)
        recon = mu + (u[:, :rank] * sv[:rank]) @ vt[:rank]
        new = np.where(missing, recon, s)
        change = float(np.max(np.abs(new - filled)))
        filled = new
        if change < tol:
            break
    return filled


def family_line(logx: np.ndarray, families: Sequence[str], v: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Least squares v = intercept[family] + slope * logx for each column of ``v`` (shared slope).

    Returns ({family: intercepts (k,)}, slopes (k,)). A family needs one model for its intercept;
    the slope needs some family with two distinct scales.
    """
    v = np.asarray(v, float).reshape(len(logx), -1)
    fams = sorted(set(families))
    col = {f: i for i, f in enumerate(fams)}
    design = np.zeros((len(logx), len(fams) + 1))
    design[np.arange(len(logx)), [col[f] for f in families]] = 1.0
    design[:, -1] = logx
    if np.linalg.matrix_rank(design) < design.shape[1]:
        raise MetricRangeError("no family has two models at distinct scales: the slope in log scale is undetermined")
    coef, *_ = np.linalg.lstsq(design, v, rcond=None)
    return {f: coef[col[f]] for f in fams}, coef[-1]


def _intercepts(fam: Mapping[str, np.ndarray], families: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Each model's family intercept; unseen families get the mean intercept (and are listed)."""
    mean = np.mean(np.stack(list(fam.values())), axis=0)
    unseen = sorted({f for f in families if f not in fam})
    return np.stack([fam.get(f, mean) for f in families]) if len(families) else np.zeros((0, mean.size)), unseen


@dataclass
class CapabilityModel:
    """Fitted capability space: standardisation, PCA loadings and the family lines of each component."""

    names: list[str]
    scales: list[MetricScale]
    mean: np.ndarray  # (m,) of the training logits
    std: np.ndarray  # (m,)
    loadings: np.ndarray  # (m, k)
    explained: np.ndarray  # (k,) share of the variance of the completed standardised logits
    family_intercepts: dict[str, np.ndarray]  # family -> (k,)
    slope: np.ndarray  # (k,) per decade of scale

    def components(self, x: np.ndarray, families: Sequence[str]) -> tuple[np.ndarray, list[str]]:
        """Predicted capability components (n, k) at scales ``x``; and the families never seen in training."""
        icpt, unseen = _intercepts(self.family_intercepts, list(families))
        return icpt + np.log10(np.asarray(x, float))[:, None] * self.slope, unseen

    def project(self, scores: np.ndarray) -> np.ndarray:
        """Capability components (n, k) of models from their own scores (n, m; NaN missing): least
        squares on the observed benchmarks; NaN for a model with fewer observed scores than components."""
        scores = np.asarray(scores, float)
        t = np.column_stack([s.logit(scores[:, j])[0] for j, s in enumerate(self.scales)])
        z = (t - self.mean) / self.std
        z[np.isnan(scores)] = np.nan
        k = self.loadings.shape[1]
        out = np.full((scores.shape[0], k), np.nan)
        for i, row in enumerate(z):
            ok = ~np.isnan(row)
            if ok.sum() >= k:
                out[i] = np.linalg.lstsq(self.loadings[ok], row[ok], rcond=None)[0]
        return out

    def predict(self, x: np.ndarray, families: Sequence[str]) -> np.ndarray:
        """Predicted benchmark scores (n, m) in each metric's units, always within its range."""
        pcs, _ = self.components(x, families)
        t = (pcs @ self.loadings.T) * self.std + self.mean
        return np.column_stack([s.from_logit(t[:, j]) for j, s in enumerate(self.scales)])


def fit_capability(
    x: np.ndarray,
    families: Sequence[str],
    scores: np.ndarray,
    scales: Sequence[MetricScale],
    names: Sequence[str],
    n_components: int = DEFAULT_COMPONENTS,
) -> CapabilityModel:
    """Fit the capability space on models with scale ``x`` (n,), ``families`` and ``scores`` (n, m; NaN missing)."""
    scores = np.asarray(scores, float)
    m = scores.shape[1]
    if m < 2:
        raise MetricRangeError(f"a capability analysis needs at least 2 metrics, got {m}")
    if not 1 <= n_components <= m:
        raise MetricRangeError(f"--components must be between 1 and the number of metrics ({m}), got {n_components}")
    for s, name in zip(scales, names):
        if not s.bounded:
            raise MetricRangeError(f"metric {name!r} is unbounded; a capability analysis needs bounded scores "
                                   "(give --metric-range)")
    t = np.column_stack([s.logit(scores[:, j])[0] for j, s in enumerate(scales)])
    t[np.isnan(scores)] = np.nan
    counts = np.sum(~np.isnan(t), axis=0)
    for j, name in enumerate(names):
        if counts[j] < 2:
            raise MetricRangeError(f"metric {name!r} has {int(counts[j])} training value(s); need at least 2")
    std = np.nanstd(t, axis=0)
    if np.any(std == 0):
        raise MetricRangeError(f"metric {names[int(np.argmax(std == 0))]!r} is constant on the training models")
    filled = impute_low_rank(t / std, n_components)
    mean = filled.mean(axis=0) * std
    z = filled - mean / std
    _, sv, vt = np.linalg.svd(z, full_matrices=False)
    loadings = vt[:n_components].T
    loadings *= np.where(loadings.sum(axis=0) < 0, -1.0, 1.0)  # components grow with the scores
    explained = sv[:n_components] ** 2 / float(np.sum(sv**2))
    pcs = z @ loadings
    fam, slope = family_line(np.log10(np.asarray(x, float)), list(families), pcs)
    return CapabilityModel(list(names), list(scales), mean, std, loadings, explained, fam, slope)


def _scale_only_predictions(table, yj: np.ndarray, s, name: str, tr: np.ndarray, te: np.ndarray,
                            fams: np.ndarray):
    """The held-out models of metric ``yj`` predicted from scale alone, two ways: the law
    :func:`analyze_metric` selects (``(selected law name or None, predictions)``) and a logit
    line in log scale with one intercept per family; also the held-out families never fitted."""
    from pysearch.emergence.analysis import analyze_metric

    ok = ~np.isnan(yj)
    rep = analyze_metric(table.x[ok], yj[ok], table.holdout[ok], scale=s, name=name)
    sel = rep["selected_law"]
    direct = np.full(int(te.sum()), np.nan)
    if sel is not None:
        with np.errstate(all="ignore"):
            direct = np.asarray(rep["laws"][sel]["_predict"](table.x[te]), float)
    ok_tr = tr & ok
    icpt, slope = family_line(np.log10(table.x[ok_tr]), list(fams[ok_tr]), s.logit(yj[ok_tr])[0])
    fam_icpt, unseen = _intercepts(icpt, list(fams[te]))
    famline = s.from_logit(fam_icpt[:, 0] + slope[0] * np.log10(table.x[te]))
    return sel, direct, famline, unseen


def _mae(pred: np.ndarray, y: np.ndarray) -> float | None:
    ok = ~np.isnan(y) & ~np.isnan(pred)
    return float(np.mean(np.abs(pred[ok] - y[ok]))) if ok.any() else None


def capability_analysis(
    table,
    n_components: int | None = None,
    metric_range: tuple[float, float] | str | None = "auto",
    chance: float | Mapping[str, float] | None = None,
    n_items: int | None = None,
) -> dict:
    """Fit the capability space on ``table``'s training models and predict the held-out ones.

    ``table`` is a :class:`~pysearch.emergence.analysis.ResultsTable` read with a family column.
    Returns a JSON-ready report (``kind`` ``"capability"``, schema 1) with per-metric held-out
    mean absolute errors (metric units) of the capability model and of the two direct laws on
    the same split (see the module docstring), and their means over all held-out (model, metric)
    cells that each method predicts.
    """
    from pysearch.emergence.analysis import SCHEMA_VERSION, _finite

    names = list(table.metrics)
    k = DEFAULT_COMPONENTS if n_components is None else int(n_components)
    k = min(k, len(names)) if n_components is None else k
    y, scales, fams = _setup(table, names, metric_range, chance, n_items)
    tr, te = ~table.holdout, table.holdout
    keep = tr & ~np.all(np.isnan(y), axis=1)
    model = fit_capability(table.x[keep], list(fams[keep]), y[keep], scales, names, k)
    pred, unseen = model.components(table.x[te], list(fams[te]))
    cap = model.predict(table.x[te], list(fams[te]))

    per_metric: dict = {}
    cells = {"capability": [], "direct_law": [], "direct_family": []}
    for j, name in enumerate(names):
        yj, s = y[:, j], scales[j]
        ok = ~np.isnan(yj)
        ok_tr = tr & ok
        sel, direct, famline, _ = _scale_only_predictions(table, yj, s, name, tr, te, fams)
        truth = yj[te]
        entry = {
            "scale": s.describe(),
            "n_train": int(ok_tr.sum()),
            "n_heldout": int((~np.isnan(truth)).sum()),
            "direct_law": sel,
            "capability_mae": _mae(cap[:, j], truth),
            "direct_law_mae": _mae(direct, truth),
            "direct_family_mae": _mae(famline, truth),
            "capability_pred": [_finite(v) for v in cap[:, j]],
            "direct_law_pred": [_finite(v) for v in direct],
            "direct_family_pred": [_finite(v) for v in famline],
            "truth": [None if np.isnan(v) else float(v) for v in truth],
            "clipped": int(s.to_unit(yj[ok])[1].sum()),
        }
        per_metric[name] = entry
        for key, p in (("capability", cap[:, j]), ("direct_law", direct), ("direct_family", famline)):
            both = ~np.isnan(truth) & ~np.isnan(p)
            cells[key].extend(np.abs(p[both] - truth[both]).tolist())
    labels = [lab for lab, h in zip(table.labels, table.holdout) if h]
    return {
        "schema": SCHEMA_VERSION,
        "kind": "capability",
        "source": table.source,
        "x": table.x_name,
        "n_models": int(table.x.size),
        "n_train": int(keep.sum()),
        "holdout": table.holdout_rule,
        "holdout_models": labels,
        "holdout_families": [str(f) for f in fams[te]],
        "unseen_families": unseen,
        "components": k,
        "explained_variance": [float(v) for v in model.explained],
        "loadings": {n: [float(v) for v in model.loadings[j]] for j, n in enumerate(names)},
        "slope_per_decade": [float(v) for v in model.slope],
        "heldout_components": [[float(v) for v in row] for row in pred],
        "error_metric": "mean |prediction - value| over held-out (model, metric) cells, in metric units",
        "metrics": per_metric,
        "mae": {key: (float(np.mean(v)) if v else None) for key, v in cells.items()},
        "n_cells": {key: len(v) for key, v in cells.items()},
    }


def _setup(table, names, metric_range, chance, n_items):
    if table.families is None:
        raise MetricRangeError("a capability analysis needs each model's family (--family-col)")
    if not table.holdout.any():
        raise MetricRangeError("a capability analysis needs held-out models to predict (--holdout)")
    if isinstance(chance, Mapping):
        unknown = sorted(set(chance) - set(names))
        if unknown:
            raise MetricRangeError(f"--chance names {', '.join(map(repr, unknown))}, not among the metric columns")
    y = np.column_stack([table.metrics[n] for n in names])
    scales = [
        resolve_scale(n, y[:, j], metric_range, chance.get(n) if isinstance(chance, Mapping) else chance, n_items)
        for j, n in enumerate(names)
    ]
    return y, scales, np.array(table.families, dtype=object)


def observational_analysis(
    table,
    target: str,
    n_components: int | None = None,
    metric_range: tuple[float, float] | str | None = "auto",
    chance: float | Mapping[str, float] | None = None,
    n_items: int | None = None,
) -> dict:
    """Predict ``target`` for the held-out models from their scores on the other metrics.

    The capability space is fitted on the training models' other metrics; every model's
    components are projected from its own other scores (:meth:`CapabilityModel.project`);
    logit(target) = w . components + b is fitted on the training models and predicts the held-out
    ones. The report compares, on the same held-out models, the direct law and the family line of
    :func:`capability_analysis` (which see the scale only) and the scale-only capability model.
    """
    from pysearch.emergence.analysis import SCHEMA_VERSION, _finite

    names = list(table.metrics)
    if target not in names:
        raise MetricRangeError(f"--target {target!r} is not among the metric columns ({', '.join(names)})")
    others = [n for n in names if n != target]
    k = min(DEFAULT_COMPONENTS, len(others)) if n_components is None else int(n_components)
    y, scales, fams = _setup(table, names, metric_range, chance, n_items)
    j_t = names.index(target)
    j_o = [names.index(n) for n in others]
    tr, te = ~table.holdout, table.holdout
    keep = tr & ~np.all(np.isnan(y[:, j_o]), axis=1)
    model = fit_capability(table.x[keep], list(fams[keep]), y[keep][:, j_o], [scales[j] for j in j_o], others, k)
    pcs = model.project(y[:, j_o])
    s_t = scales[j_t]
    yt = y[:, j_t]
    fit_rows = tr & ~np.isnan(yt) & ~np.isnan(pcs).any(axis=1)
    if fit_rows.sum() < k + 2:
        raise MetricRangeError(f"--target {target!r}: {int(fit_rows.sum())} training models have it and enough "
                               f"other scores; need at least {k + 2}")
    design = np.column_stack([np.ones(int(fit_rows.sum())), pcs[fit_rows]])
    coef, *_ = np.linalg.lstsq(design, s_t.logit(yt[fit_rows])[0], rcond=None)
    obs = np.full(int(te.sum()), np.nan)
    have = ~np.isnan(pcs[te]).any(axis=1)
    obs[have] = s_t.from_logit(coef[0] + pcs[te][have] @ coef[1:])
    # the scale-only predictions of the same held-out models
    sel, direct, famline, unseen = _scale_only_predictions(table, yt, s_t, target, tr, te, fams)
    keep_all = tr & ~np.all(np.isnan(y), axis=1)
    full = fit_capability(table.x[keep_all], list(fams[keep_all]), y[keep_all], scales, names,
                          min(k, len(names)))
    cap = full.predict(table.x[te], list(fams[te]))[:, j_t]
    truth = yt[te]
    cells = ~np.isnan(truth) & have  # every method is scored on the same models
    methods = {"observational": obs, "capability": cap, "direct_law": direct, "direct_family": famline}
    return {
        "schema": SCHEMA_VERSION,
        "kind": "capability-observational",
        "source": table.source,
        "x": table.x_name,
        "target": target,
        "predictors": others,
        "components": k,
        "explained_variance": [float(v) for v in model.explained],
        "target_weights": [float(v) for v in coef],
        "n_train": int(fit_rows.sum()),
        "holdout_models": [lab for lab, h in zip(table.labels, table.holdout) if h],
        "scored": [bool(v) for v in cells],
        "unseen_families": unseen,
        "direct_law": sel,
        "truth": [None if np.isnan(v) else float(v) for v in truth],
        "pred": {m: [_finite(v) if not np.isnan(v) else None for v in p] for m, p in methods.items()},
        "error_metric": "mean |prediction - value| over the scored held-out models, in metric units",
        "n_cells": int(cells.sum()),
        "mae": {m: _mae(p[cells], truth[cells]) for m, p in methods.items()},
    }
