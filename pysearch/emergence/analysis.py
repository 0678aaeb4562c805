"""Emergence analysis of per-model results: is a metric's rise with scale a jump or a trend?

For each metric column of a table of models (one row per model, one scale column), this reports
the BIG-Bench emergence score, how steady the curve is in log scale, and how well laws fitted
on the smaller models extrapolate to the held-out largest ones. Bounded metrics (accuracies,
percentages; :mod:`pysearch.emergence.links`) are fitted through a logit or log(-log) link, so
predictions stay in the metric's range. A law is chosen for each metric without looking at the
held-out rows, by extrapolation cross-validation over several cut points on the scale axis.
Output: a JSON document (schema 1) and one PNG per metric.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from pysearch.emergence.links import MetricRangeError, MetricScale, resolve_scale
from pysearch.emergence.metrics import emergence_score, loglinear_r2, step_share
from pysearch.emergence.toy_model import resolution_limit
from pysearch.fileio import write_atomic

__all__ = [
    "LAWS",
    "ResultsTable",
    "analyze",
    "analyze_metric",
    "cv_cuts",
    "fit_loglinear",
    "fit_power",
    "read_results",
    "write_report",
]

SCHEMA_VERSION = 1
_MISSING = {"", "na", "n/a", "nan", "none", "null", "-"}


@dataclass
class ResultsTable:
    """Per-model results: scale ``x``, metric columns, the held-out mask and what was dropped."""

    x_name: str
    x: np.ndarray
    metrics: dict[str, np.ndarray]  # NaN marks a missing value
    holdout: np.ndarray
    labels: list[str]
    dropped: list[dict]
    source: str = ""
    holdout_rule: str | None = None
    families: list[str] | None = None  # each model's family (``family_col``), if read


def read_results(
    path: str | Path,
    x: str,
    metric_cols: Sequence[str],
    holdout: str | None = "largest:1",
    where: Sequence[str] = (),
    label_col: str | None = None,
    family_col: str | None = None,
) -> ResultsTable:
    """Read a CSV of per-model results; ``where`` items ``COL=VALUE`` keep matching rows only.

    Rows with an empty scale value are dropped (and listed); an empty metric cell is a missing
    value for that metric only. Non-numeric text, or a scale <= 0, is an error naming the cell.
    """
    from pysearch.laws.data import DataError, column_names, holdout_mask, parse_holdout, read_csv

    path = str(path)
    metric_cols = column_names(metric_cols, "--metric-cols", "exact_match,log_prob")
    if x in metric_cols:
        raise ValueError(f"column {x!r} is both the scale (--x) and a metric")
    wanted = [x, *metric_cols] + ([label_col] if label_col else []) + ([family_col] if family_col else [])
    conds = []
    for w in where:
        if "=" not in w:
            raise ValueError(f"bad --where {w!r}: expected COL=VALUE")
        c, v = (s.strip() for s in w.split("=", 1))
        conds.append((c, v))
        wanted.append(c)
    rule = parse_holdout(holdout) if holdout and holdout.strip().lower() != "none" else None
    table = read_csv(path, wanted, optional=[rule.column] if rule and rule.column else ())
    cols = table.text
    keep = np.ones(table.n_rows, dtype=bool)
    for c, v in conds:
        keep &= np.array([t.strip() == v for t in cols[c]], dtype=bool)
    if not keep.any():
        raise DataError(f"{path}: no rows match {' and '.join(map(repr, where))}")
    kept = np.flatnonzero(keep)
    xs = table.numbers(x, missing=_MISSING, rows=kept)
    dropped = [{"row": int(i) + 1, "reason": f"empty scale column {x!r}"} for i in kept[np.isnan(xs)]]
    rows, xs = kept[~np.isnan(xs)], xs[~np.isnan(xs)]
    if np.any(xs <= 0):
        i = int(np.argmax(xs <= 0))
        raise DataError(f"{table.where(int(rows[i]))}, column {x!r}: scale {xs[i]:g} must be > 0 (log scale is taken)")
    if len(rows) < 2:
        raise DataError(f"{path}: need at least 2 models with a scale value, got {len(rows)}")
    metrics = {m: table.numbers(m, missing=_MISSING, rows=rows) for m in metric_cols}
    labels = [cols[label_col][i] if label_col else f"row {i + 1}" for i in rows]
    mask = np.zeros(len(rows), bool)
    if rule is not None:
        sub = {c: [vals[i] for i in rows] for c, vals in cols.items()}
        mask = holdout_mask(rule, sub, x)
        if mask.all():
            raise ValueError(f"--holdout {holdout!r} selects every model, leaving nothing to fit")
    families = [cols[family_col][i].strip() for i in rows] if family_col else None
    return ResultsTable(x, xs, metrics, mask, labels, dropped, path, holdout if mask.any() else None, families)


# ------------------------------------------------------------------ laws
@dataclass(frozen=True)
class Link:
    """A transform of the metric onto the real line and back: ``forward(y) -> (t, clipped)``, ``inverse(t) -> y``."""

    name: str
    forward: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
    inverse: Callable[[np.ndarray], np.ndarray]
    wrap: Callable[[str], str]  # the law in y written around its expression in t


def _identity_link() -> Link:
    return Link("identity", lambda y: (np.asarray(y, float), np.zeros(np.shape(y), bool)), lambda t: t, lambda e: e)


def _scaled(scale: MetricScale, inner: str) -> str:
    if scale.floor == 0 and scale.hi == 1:
        return inner
    return f"{scale.floor:.6g} + {scale.hi - scale.floor:.6g} * {inner}"


def _logit_link(scale: MetricScale) -> Link:
    return Link("logit", scale.logit, scale.from_logit, lambda e: _scaled(scale, f"sigmoid({e})"))


def _loglog_link(scale: MetricScale) -> Link:
    """t = log(-log z): the PassUntil transform; z = exp(-exp(t)) is in [0, 1] for any t."""

    def forward(y):
        if scale.bounded:
            z, clipped = scale.to_unit(y)
        else:  # only reached for values strictly inside (0, 1)
            z, clipped = np.asarray(y, float), np.zeros(np.shape(y), bool)
        return np.log(-np.log(z)), clipped

    def inverse(t):
        z = np.exp(-np.exp(np.asarray(t, float)))
        return scale.from_unit(z) if scale.bounded else z

    return Link("loglog", forward, inverse, lambda e: _scaled(scale, e) if scale.bounded else e)


@dataclass(frozen=True)
class Law:
    """A law of the linked metric t = g(y) in scale x: its name, constant count, link choice and fitter.

    ``link(scale)`` returns the :class:`Link` the law uses for a metric of that scale, or a string
    saying why the law does not apply; ``fit(x, t)`` returns (predict t, params, expression in t).
    """

    name: str
    n_params: int
    link: Callable[[MetricScale, np.ndarray], Link | str]
    fit: Callable[[np.ndarray, np.ndarray], tuple[Callable[[np.ndarray], np.ndarray], dict, str]]


def fit_loglinear(x, y):
    """y = a + b log10 x by least squares; returns (predict, params, expression)."""
    b, a = np.polyfit(np.log10(x), y, 1)
    return (lambda z: a + b * np.log10(z)), {"a": float(a), "b": float(b)}, f"{a:.6g} + {b:.6g} * log10(x)"


def fit_power(x, y):
    """y = c + a * x^(-b) by variable projection: (c, a) solved exactly for each exponent b."""
    from scipy.optimize import minimize_scalar

    x0 = float(np.exp(np.mean(np.log(x))))
    z = x / x0

    def solve(b):
        basis = np.column_stack([np.ones_like(z), z ** (-b)])
        coef, *_ = np.linalg.lstsq(basis, y, rcond=None)
        r = y - basis @ coef
        return float(r @ r), coef

    grid = np.concatenate([-np.logspace(-3, np.log10(3), 25)[::-1], np.logspace(-3, 1, 33)])
    sse = [solve(b)[0] for b in grid]
    i = int(np.argmin(sse))
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
    res = minimize_scalar(lambda b: solve(b)[0], bounds=(lo, hi), method="bounded", options={"xatol": 1e-10})
    b = float(res.x) if res.fun <= sse[i] else float(grid[i])
    (c, a) = solve(b)[1]
    a_orig = float(a) * x0**b  # a * (x / x0)^-b == (a * x0^b) * x^-b
    return (
        lambda t: c + a * (np.asarray(t, float) / x0) ** (-b),
        {"a": a_orig, "b": b, "c": float(c)},
        f"{float(c):.6g} + {a_orig:.6g} * x^({-b:.6g})",
    )


def _fit_passuntil(x, t):
    """log(-log PU) = log c - alpha log x, fitted by :func:`~pysearch.emergence.passuntil.fit_passuntil_law`."""
    from pysearch.emergence.passuntil import fit_passuntil_law

    law = fit_passuntil_law(x, np.exp(-np.exp(t)))
    return law.transformed, {"c": law.c, "alpha": law.alpha}, f"exp(-{law.c:.6g} * x^(-{law.alpha:.6g}))"


def _bounded_logit(scale: MetricScale, y: np.ndarray) -> Link:
    return _logit_link(scale) if scale.bounded else _identity_link()


def _passuntil_link(scale: MetricScale, y: np.ndarray) -> Link | str:
    if scale.bounded or np.all((y > 0) & (y < 1)):
        return _loglog_link(scale)
    return "needs a bounded metric (--metric-range) or every value strictly in (0, 1) for log(-log y)"


#: Candidate laws per metric, all fitted by least squares in the metric's link space: a bounded
#: metric (see :mod:`pysearch.emergence.links`) is fitted in logit(z) by ``loglinear``
#: (t = a + b log10 x, i.e. a sigmoid in log x) and ``power`` (t = c + a x^(-b), variable
#: projection over b), and in log(-log z) by ``passuntil`` (the task law z = exp(-c x^(-alpha)));
#: an unbounded metric uses the identity link (``passuntil`` then needs every value in (0, 1)).
LAWS: dict[str, Law] = {
    "loglinear": Law("loglinear", 2, _bounded_logit, fit_loglinear),
    "power": Law("power", 3, _bounded_logit, fit_power),
    "passuntil": Law("passuntil", 2, _passuntil_link, _fit_passuntil),
}

#: Extrapolation cross-validation: at most this many cut points on the x axis.
CV_CUTS = 4


def _try_fit(law: Law, link: Link, x: np.ndarray, y: np.ndarray):
    """(predict y, params, expression in y) of ``law`` fitted to ``link``-transformed ``y``."""
    with np.errstate(all="ignore"):
        t, _ = link.forward(y)
        predict_t, params, expr = law.fit(x, t)
    return (lambda z: link.inverse(predict_t(z))), params, link.wrap(expr)


def cv_cuts(x: np.ndarray, min_train: int, n_cuts: int = CV_CUTS) -> list[float]:
    """Cut points for extrapolation cross-validation: distinct scales s such that a law is fitted on
    the models below s (at least ``min_train`` distinct scales) and tested on those at or above it.

    Up to ``n_cuts`` cuts, spread evenly over the distinct scales from the middle (or the smallest
    position leaving ``min_train`` scales below) to the largest.
    """
    u = np.unique(np.asarray(x, float))
    first = max(min_train, len(u) // 2)
    if first > len(u) - 1:
        return []
    idx = np.unique(np.round(np.linspace(first, len(u) - 1, min(n_cuts, len(u) - first))).astype(int))
    return [float(u[i]) for i in idx]


def _cv_errors(law: Law, link: Link, x, y, cuts: Sequence[float], spread: float) -> list[float | None]:
    """Per cut: mean |prediction - value| / spread on the models at or above the cut, fitted below it."""
    out: list[float | None] = []
    for cut in cuts:
        below = x < cut
        if len(np.unique(x[below])) < law.n_params + 1:
            out.append(None)
            continue
        try:
            predict, _, _ = _try_fit(law, link, x[below], y[below])
            with np.errstate(all="ignore"):
                err = float(np.mean(np.abs(predict(x[~below]) - y[~below]))) / spread
        except (ValueError, np.linalg.LinAlgError):
            err = math.nan
        out.append(_finite(err))
    return out


def _law_report(law: Law, x_tr, y_tr, x_te, y_te, spread: float, scale: MetricScale, cuts) -> dict:
    with np.errstate(all="ignore"):  # a law may overflow far from its data; errors say so below
        return _law_report_inner(law, x_tr, y_tr, x_te, y_te, spread, scale, cuts)


def _law_report_inner(law: Law, x_tr, y_tr, x_te, y_te, spread: float, scale: MetricScale, cuts) -> dict:
    link = law.link(scale, y_tr)
    if isinstance(link, str):
        return {"skipped": link}
    scales = len(np.unique(x_tr))
    if scales < law.n_params + 1:
        return {
            "skipped": f"needs at least {law.n_params + 1} training models at distinct scales for "
            f"{law.n_params} constants, has {scales}"
        }
    try:
        predict, params, expr = _try_fit(law, link, x_tr, y_tr)
    except (ValueError, np.linalg.LinAlgError) as e:  # includes pysearch.laws.FitError
        return {"skipped": f"fit failed: {e}"}
    out: dict = {"link": link.name, "params": params, "expression": expr}
    pred_tr = predict(x_tr)
    out["train_mae"] = _finite(np.mean(np.abs(pred_tr - y_tr)))
    out["cv_errors"] = _cv_errors(law, link, x_tr, y_tr, cuts, spread)
    done = [e for e in out["cv_errors"] if e is not None]
    out["backtest_error"] = float(np.mean(done)) if done and len(done) == len(out["cv_errors"]) else None
    if len(y_te):
        pred = predict(x_te)
        out["holdout_pred"] = [_finite(v) for v in pred]
        mae = float(np.mean(np.abs(pred - y_te)))
        out["holdout_mae"] = _finite(mae)
        out["holdout_error"] = _finite(mae / spread)
    out["_predict"] = predict
    return out


def _finite(v: float) -> float | None:
    v = float(v)
    return v if math.isfinite(v) else None


def analyze_metric(
    x: np.ndarray,
    y: np.ndarray,
    holdout: np.ndarray,
    resolution: float | None = None,
    laws: Sequence[str] = tuple(LAWS),
    scale: MetricScale | None = None,
    name: str = "metric",
) -> dict:
    """Emergence statistics and law extrapolation for one metric (missing values already removed).

    ``scale`` is the metric's range and link (default: :func:`~pysearch.emergence.links.resolve_scale`
    auto detection: values in [0, 1] are accuracies). Bounded metrics are fitted through a link,
    so every prediction stays in range; points clipped for the link are listed in ``clipped``.
    A law is selected by extrapolation cross-validation on the training models only: for each
    cut point in ``cv_cuts`` it is fitted on the models below the cut and scored on those at or
    above it; ``backtest_error`` is the mean over the cuts (``None`` when some cut lacks points).
    ``holdout_error`` values are mean absolute errors on the held-out models divided by the
    metric's range over all models, so metrics on different scales compare.
    """
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    holdout = np.asarray(holdout, bool)
    order = np.argsort(x, kind="stable")
    x, y, holdout = x[order], y[order], holdout[order]
    if scale is None:
        scale = resolve_scale(name, y)
    score = emergence_score(x, y)
    spread = float(y.max() - y.min())
    rep: dict = {
        "n_points": int(x.size),
        "x": x.tolist(),
        "y": y.tolist(),
        "holdout": holdout.tolist(),
        "direction": "flat" if spread == 0 else ("increasing" if score > 0 else "decreasing"),
        "emergence_score": _finite(score),
        "emergence_score_infinite": bool(math.isinf(score)),
        "step_share": step_share(x, y),
        "loglinear_r2": loglinear_r2(x, y),
        "scale": scale.describe(),
    }
    if resolution is not None:
        rep["resolution"] = resolution
        rep["n_below_resolution"] = int(np.sum(np.abs(y) < resolution))
    if scale.bounded:
        z, clipped = scale.to_unit(y)
        to = scale.floor + (scale.hi - scale.floor) * z  # the value the link sees
        rep["clipped"] = [{"x": float(a), "y": float(b), "to": float(c)}
                          for a, b, c in zip(x[clipped], y[clipped], to[clipped])]
    tr = ~holdout
    need = max((LAWS[n].n_params for n in laws if n in LAWS), default=2) + 1
    cuts = cv_cuts(x[tr], need)
    if not cuts:  # too few models for the largest law: cut where the smaller ones can still fit
        cuts = cv_cuts(x[tr], min((LAWS[n].n_params for n in laws if n in LAWS), default=2) + 1)
    rep["cv_cuts"] = cuts
    law_reports = {}
    for lname in laws:
        if lname not in LAWS:
            raise ValueError(f"unknown law {lname!r}; known: {', '.join(LAWS)}")
        if spread == 0:
            law_reports[lname] = {"skipped": "the metric is constant"}
            continue
        law_reports[lname] = _law_report(LAWS[lname], x[tr], y[tr], x[holdout], y[holdout], spread, scale, cuts)
    rep["laws"] = law_reports
    candidates = [(r["backtest_error"], n) for n, r in law_reports.items() if r.get("backtest_error") is not None]
    rep["selected_law"] = min(candidates)[1] if candidates else None
    sel = law_reports.get(rep["selected_law"]) if rep["selected_law"] else None
    rep["holdout_error"] = sel.get("holdout_error") if sel else None
    return rep


def analyze(
    table: ResultsTable,
    n_items: int | None = None,
    answer_tokens: int | None = None,
    metric_range: tuple[float, float] | str | None = "auto",
    chance: float | Mapping[str, float] | None = None,
) -> dict:
    """Analyse every metric of ``table``; returns the JSON-ready report (schema 1).

    ``metric_range`` applies to every metric (see :func:`~pysearch.emergence.links.resolve_scale`);
    ``chance`` is one chance level for all metrics or a ``{metric: level}`` mapping. ``n_items``
    also sets the clipping resolution 1 / (2 n_items) of bounded metrics.
    """
    resolution = None
    if n_items is not None:
        resolution = resolution_limit(n_items, answer_tokens or 1)
    if isinstance(chance, Mapping):
        unknown = sorted(set(chance) - set(table.metrics))
        if unknown:
            raise MetricRangeError(f"--chance names {', '.join(map(repr, unknown))}, not among the metric columns")
    metrics = {}
    for name, vals in table.metrics.items():
        ok = ~np.isnan(vals)
        if ok.sum() < 2:
            raise ValueError(f"metric {name!r} has {int(ok.sum())} non-empty value(s); need at least 2")
        if not (~table.holdout & ok).any():
            raise ValueError(f"metric {name!r} has no value outside the held-out models")
        ch = chance.get(name) if isinstance(chance, Mapping) else chance
        scale = resolve_scale(name, vals[ok], metric_range, ch, n_items)
        rep = analyze_metric(table.x[ok], vals[ok], table.holdout[ok], resolution, scale=scale, name=name)
        rep["n_missing"] = int((~ok).sum())
        metrics[name] = rep
    ranked = sorted((r["holdout_error"], n) for n, r in metrics.items() if r["holdout_error"] is not None)
    return {
        "schema": SCHEMA_VERSION,
        "kind": "emergence",
        "source": table.source,
        "x": table.x_name,
        "n_models": int(table.x.size),
        "holdout": table.holdout_rule,
        "holdout_models": [lab for lab, h in zip(table.labels, table.holdout) if h],
        "dropped_rows": table.dropped,
        "holdout_error_metric": "mean |prediction - value| on held-out models / range of the metric",
        "law_selection": f"extrapolation cross-validation over up to {CV_CUTS} cut points on {table.x_name!r} "
        "(fit below the cut, mean error at or above it), training models only",
        "metrics": metrics,
        "most_predictable": ranked[0][1] if ranked else None,
    }


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_").lower() or "metric"


def plot_metric(name: str, rep: dict, x_name: str, path: Path) -> None:
    """Write one PNG: the metric against scale, held-out models marked, fitted laws drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = np.array(rep["x"])
    y = np.array(rep["y"])
    h = np.array(rep["holdout"], bool)
    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    ax.scatter(x[~h], y[~h], color="tab:blue", zorder=3, label="fitted models")
    if h.any():
        ax.scatter(x[h], y[h], facecolors="none", edgecolors="tab:red", s=70, linewidths=1.6, zorder=4,
                   label="held out")
    grid = np.logspace(np.log10(x.min()), np.log10(x.max()), 200)

    styles = {"loglinear": ":", "power": "--", "passuntil": "-."}
    for lname, lr in rep["laws"].items():
        pred = lr.get("_predict")
        if pred is None:
            continue
        with np.errstate(all="ignore"):
            gy = pred(grid)
        mark = " (selected)" if lname == rep.get("selected_law") else ""
        err = lr.get("holdout_error")
        tag = f", holdout err {err:.3g}" if err is not None else ""
        (line,) = ax.plot(grid, gy, styles.get(lname, "-"), lw=1.5, label=f"{lname}{mark}{tag}")
        if lr.get("holdout_pred"):
            hp = np.array([np.nan if v is None else v for v in lr["holdout_pred"]])
            ax.scatter(x[h], hp, marker="x", s=36, color=line.get_color(), zorder=2)
    if rep.get("resolution") is not None:
        ax.axhline(rep["resolution"], color="grey", lw=0.8, alpha=0.6, label="resolution 1/(items*tokens)")
    ax.set_xscale("log")
    lo, hi = float(y.min()), float(y.max())
    span = hi - lo if hi > lo else max(abs(hi), 1.0)
    for lr in rep["laws"].values():  # keep held-out predictions in view unless far off
        for v in lr.get("holdout_pred") or []:
            if v is not None and lo - span <= v <= hi + span:
                lo, hi = min(lo, v), max(hi, v)
    pad = 0.15 * (hi - lo if hi > lo else max(abs(hi), 1.0))
    ax.set_ylim(lo - pad, hi + pad)
    score = rep["emergence_score"]
    stxt = "inf" if rep["emergence_score_infinite"] else f"{score:.3g}"
    ax.set_title(f"{name}: emergence score {stxt}, log-linear R² {rep['loglinear_r2']:.2f}", fontsize=9)
    ax.set_xlabel(x_name)
    ax.set_ylabel(name)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    write_atomic(path, lambda fh: fig.savefig(fh, format="png"), binary=True)
    plt.close(fig)


def write_report(report: dict, out_dir: str | Path, plots: bool = True) -> Path:
    """Write ``emergence.json`` and (with ``plots``) ``metric_<name>.png`` files into ``out_dir``."""
    from pysearch.laws.report import make_output_dir

    out = make_output_dir(out_dir)
    used: set[str] = set()
    for name, rep in report["metrics"].items():
        slug = _slug(name)
        while slug in used:
            slug += "_"
        used.add(slug)
        if plots:
            fname = f"metric_{slug}.png"
            plot_metric(name, rep, report["x"], out / fname)
            rep["plot"] = fname
    path = out / "emergence.json"
    write_atomic(path, lambda fh: json.dump(to_json(report), fh, indent=2))
    return path


def to_json(report: Mapping) -> dict:
    """A copy of ``report`` without the in-memory predictors (JSON-serialisable)."""

    def clean(v):
        if isinstance(v, dict):
            return {k: clean(w) for k, w in v.items() if not k.startswith("_")}
        if isinstance(v, list):
            return [clean(w) for w in v]
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, np.generic):
            return clean(v.item())
        return v

    return clean(report)
