"""Fit outputs: the ``fit.json`` document, a rich table, and the ``fit.png`` plot.

``fit.json`` (schema 1) holds at least: ``form``, ``expression``, ``params`` {name: value},
``ci`` {name: [lo, hi]}, ``train_error``, ``holdout_error`` (null without a holdout) and
``error_metric`` (the metric both errors are in). Known forms add ``unidentified`` (constants the
data do not determine: their values and intervals are meaningless; also printed as a warning) and
``jacobian_condition`` (of the column-scaled residual Jacobian at the optimum). Non-finite numbers
are written as null.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from ..fileio import os_error_text, write_atomic, write_json_atomic

SCHEMA_VERSION = 1

#: What each error metric means, for tables and the JSON document.
METRIC_DESCRIPTIONS = {
    "rmse_log_y": "root mean square of log(predicted) - log(observed)",
    "mare": "mean absolute relative error |predicted - observed| / |observed|",
    "rmse_y": "root mean square of predicted - observed",
}


def json_safe(v):
    """Plain JSON values: numpy scalars to Python, non-finite floats to None, recursively."""
    if isinstance(v, Mapping):
        return {str(k): json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, np.ndarray)):
        return [json_safe(x) for x in v]
    if isinstance(v, (np.floating, float)):
        f = float(v)
        return f if math.isfinite(f) else None
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.bool_):
        return bool(v)
    return v


def make_output_dir(path: str | Path) -> Path:
    """Create the output directory ``path`` (and parents); a ValueError names what is in the way."""
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(f"--out {out}: {os_error_text(e)}") from None
    return out


def write_json(path: str | Path, doc: Mapping) -> None:
    """Write ``doc`` as JSON atomically (temporary file, then rename)."""
    write_json_atomic(path, json_safe(doc), indent=2)


def fit_document(
    form: str,
    expression: str,
    params: Mapping[str, float],
    ci: Mapping[str, tuple[float, float]] | None,
    train_errors: Mapping[str, float],
    holdout_errors: Mapping[str, float] | None,
    error_metric: str,
    **extra,
) -> dict:
    """The ``fit.json`` contract plus ``extra`` keys (all errors, settings, front...)."""
    doc = {
        "schema": SCHEMA_VERSION,
        "form": form,
        "expression": expression,
        "params": dict(params),
        "ci": {k: [lo, hi] for k, (lo, hi) in (ci or {}).items()},
        "train_error": train_errors.get(error_metric),
        "holdout_error": None if holdout_errors is None else holdout_errors.get(error_metric),
        "error_metric": error_metric,
        "error_metric_meaning": METRIC_DESCRIPTIONS.get(error_metric, error_metric),
        "errors": {"train": dict(train_errors), "holdout": None if holdout_errors is None else dict(holdout_errors)},
    }
    doc.update(extra)
    return doc


def print_table(doc: Mapping, console=None) -> None:
    """Print constants with their intervals and the errors as rich tables."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    console.print(f"[bold]{doc['form']}[/bold]: {doc.get('expression_fitted') or doc['expression']}")
    if doc.get("expression_simplified"):
        console.print(f"simplified: {doc['expression_simplified']}", markup=False)
    level = doc.get("ci_level")
    t = Table(title="constants")
    t.add_column("name")
    t.add_column("value", justify="right")
    t.add_column(f"{int(round(100 * level))}% CI low" if level else "CI low", justify="right")
    t.add_column("CI high", justify="right")
    for name, v in doc["params"].items():
        lo, hi = doc["ci"].get(name, (None, None))
        t.add_row(name, _num(v), _num(lo), _num(hi))
    console.print(t)
    e = Table(title=f"errors ({doc['error_metric']}: {METRIC_DESCRIPTIONS.get(doc['error_metric'], '')})")
    e.add_column("rows")
    e.add_column("n", justify="right")
    metrics = list(doc["errors"]["train"])
    for m in metrics:
        e.add_column(m, justify="right")
    e.add_row("train", str(doc.get("n_train", "")), *[_num(doc["errors"]["train"].get(m)) for m in metrics])
    if doc["errors"]["holdout"] is not None:
        e.add_row(
            f"held out ({doc.get('holdout_rule', '')})",
            str(doc.get("n_holdout", "")),
            *[_num(doc["errors"]["holdout"].get(m)) for m in metrics],
        )
    console.print(e)
    if doc.get("pareto"):
        p = Table(title="Pareto front (* = chosen from training rows only: " + doc.get("selection_rule", "") + ")")
        inner = any("inner_extrapolation_error" in r for r in doc["pareto"])
        for c in ("complexity", "train error") + (("inner extrap. error",) if inner else ()) + ("holdout error", "expression"):
            p.add_column(c)
        for row in doc["pareto"]:
            mark = " *" if row.get("chosen") else ""
            cells = [_num(row["complexity"]) + mark, _num(row["train_error"])]
            if inner:
                cells.append(_num(row.get("inner_extrapolation_error")))
            p.add_row(*cells, _num(row.get("holdout_error")), row["expression"])
        console.print(p)
    if doc.get("unidentified"):
        console.print(
            f"[red]warning:[/red] the data do not constrain {', '.join(doc['unidentified'])}: their values and "
            "intervals are meaningless"
        )
    if doc.get("ci_at_bound"):
        console.print(
            f"[yellow]note:[/yellow] the interval of {', '.join(doc['ci_at_bound'])} reaches the end of the "
            "allowed range: the data bound it on one side only"
        )
    if doc.get("at_bound"):
        console.print(f"[yellow]note:[/yellow] at a bound of their range: {', '.join(doc['at_bound'])}")


def _num(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, (int, np.integer)):
        return str(v)
    return f"{float(v):.6g}"


def plot_fit(
    path: str | Path,
    X: np.ndarray,
    y: np.ndarray,
    holdout: np.ndarray,
    x_names: tuple[str, ...],
    y_name: str,
    predict: Callable[[np.ndarray], np.ndarray],
    title: str,
) -> None:
    """Data (held-out rows marked), fitted curves, and predicted vs observed; PNG via Agg."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    X = np.atleast_2d(np.asarray(X, dtype=np.float64))
    y = np.asarray(y, dtype=np.float64)
    holdout = np.asarray(holdout, dtype=bool)
    fig = Figure(figsize=(12, 5.2), dpi=110)
    FigureCanvasAgg(fig)
    ax, bx = fig.subplots(1, 2)
    log_y = bool(np.all(y > 0))
    log_x = bool(np.all(X[0] > 0))
    with np.errstate(all="ignore"):
        pred = np.asarray(predict(X), dtype=np.float64)
    groups = _groups(X)
    colours = matplotlib.colormaps["viridis"]
    if groups is not None:
        for gi, idx in enumerate(groups):
            col = colours(gi / max(1, len(groups) - 1))
            xs = X[0, idx]
            if np.ptp(xs) > 0:
                grid = np.geomspace(xs.min(), xs.max(), 100) if log_x else np.linspace(xs.min(), xs.max(), 100)
                Xg = np.repeat(X[:, idx[:1]], 100, axis=1)
                Xg[0] = grid
                with np.errstate(all="ignore"):
                    ax.plot(grid, predict(Xg), color=col, lw=1.2)
            tr = idx[~holdout[idx]]
            ax.scatter(X[0, tr], y[tr], color=col, s=18, zorder=3)
        label = ", ".join(x_names[1:])
        if label:
            ax.text(0.01, 0.01, f"one colour per {label}", transform=ax.transAxes, fontsize=8, va="bottom")
    else:
        c = np.log10(X[1]) if X.shape[0] > 1 and np.all(X[1] > 0) else None
        ax.scatter(X[0, ~holdout], y[~holdout], c=None if c is None else c[~holdout], s=14, zorder=3, label="train")
        ax.scatter(X[0], pred, marker="_", color="black", s=30, lw=1, zorder=2, label="fitted")
        if c is not None:
            ax.text(0.01, 0.01, f"colour: log10 {x_names[1]}", transform=ax.transAxes, fontsize=8, va="bottom")
    if holdout.any():
        ax.scatter(X[0, holdout], y[holdout], marker="X", color="crimson", s=60, zorder=4, label="held out")
        ax.scatter(X[0, holdout], pred[holdout], marker="o", facecolors="none", edgecolors="crimson", s=50, zorder=4, label="predicted (held out)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="best")
    ax.set_xlabel(x_names[0])
    ax.set_ylabel(y_name)
    if log_x:
        ax.set_xscale("log")
    if log_y:
        ax.set_yscale("log")
    ax.set_title("data and fitted law", fontsize=10)

    finite = np.isfinite(pred)
    bx.scatter(y[~holdout & finite], pred[~holdout & finite], s=14, label="train")
    if holdout.any():
        bx.scatter(y[holdout & finite], pred[holdout & finite], marker="X", color="crimson", s=60, label="held out")
    lo = np.nanmin(np.concatenate([y, pred[finite]]))
    hi = np.nanmax(np.concatenate([y, pred[finite]]))
    bx.plot([lo, hi], [lo, hi], color="grey", lw=1, ls="--")
    if log_y and lo > 0:
        bx.set_xscale("log")
        bx.set_yscale("log")
    bx.set_xlabel(f"observed {y_name}")
    bx.set_ylabel(f"predicted {y_name}")
    bx.legend(fontsize=8)
    bx.set_title("predicted vs observed", fontsize=10)
    fig.suptitle("\n".join(textwrap.wrap(title, 120)), fontsize=9)
    fig.tight_layout()
    write_atomic(path, lambda fh: fig.savefig(fh, format="png"), binary=True)


def _groups(X: np.ndarray, max_groups: int = 12) -> list[np.ndarray] | None:
    """Row indices per distinct value of the other inputs (all rows if one input), or None if many."""
    if X.shape[0] == 1:
        return [np.argsort(X[0])]
    keys = [tuple(col) for col in X[1:].T]
    distinct = sorted(set(keys))
    if len(distinct) > max_groups:
        return None
    return [np.array(sorted((i for i, k in enumerate(keys) if k == d), key=lambda i: X[0, i])) for d in distinct]
