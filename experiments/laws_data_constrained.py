"""Which law extrapolates the data-constrained runs to the largest models?

    python experiments/laws_data_constrained.py [--out runs/laws_data_constrained] [--boot 200]
                                                [--auto-generations 150] [--seed 0]

Data: data/sld_data_constrained_scaling_law_data.csv, from linhaowei1/SLD @ bf7e8e3
(data/data_constrained/), the training runs of Muennighoff et al. (2023), "Scaling Data-Constrained
Language Models": 182 runs of N parameters trained for D tokens drawn from U unique tokens.

Column meaning. The file's ``unique_tokens`` column holds the tokens trained on (D) and its
``tokens`` column the unique tokens (U): every row has unique_tokens >= tokens, and the run ids
spell params / tokens seen / unique tokens (``8b7178b13b``: 8.7B params, 178B tokens seen, 13B
unique, i.e. ~14 epochs; the paper's Figure 1 series). We therefore use N = params,
D = unique_tokens, U = tokens.

Holdout (extrapolation): the two largest model sizes (4.2B and 8.7B parameters, 17 runs), i.e.
``--holdout largest:2`` on params; and, as a second check, the split of the SLD benchmark
(params >= 4.2B or tokens seen >= 600B). Nothing about the held-out rows is used for fitting or
for choosing among the front of ``--form auto``.

Forms: a plain power law in compute C = 6 N D, Kaplan's L(N, D), Chinchilla's L(N, D), the
data-constrained law (``muennighoff``: Chinchilla over effective N' and D'), an ablation with
D' only (N' = N), and ``--form auto`` (symbolic regression over N, D, U), once from random
programs and once with Chinchilla's structure among the initial programs; the law is chosen from
the front by backtesting on the training rows (the largest training models, >= 10% of the runs,
set aside and constants refitted on the rest); its constants are fitted with the same Huber loss.
All known forms are fitted with
Huber loss (delta 1e-3) on log loss by L-BFGS from a grid of starts; errors are the RMS of
log(predicted) - log(observed) and the mean absolute relative error on the held-out rows.
Writes data_constrained.png into --out.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from pysearch.laws import Dataset, load_dataset, make_form
from pysearch.laws.discovery import discover, engine_evaluate, infix
from pysearch.laws.fitting import error_metrics, fit_law
from pysearch.laws.forms import Muennighoff
from pysearch.program import parse

ROOT = Path(__file__).resolve().parents[1]
CSV = ROOT / "data" / "sld_data_constrained_scaling_law_data.csv"


class _Model:
    """A fitted law: name, constant count, and a predictor over (N, D, U)."""

    def __init__(self, name, n_const, predict, detail=""):
        self.name, self.n_const, self.predict, self.detail = name, n_const, predict, detail


def _sub(ds: Dataset, X: np.ndarray, names: tuple[str, ...]) -> Dataset:
    return Dataset(names, ds.y_name, X, ds.y, ds.holdout, ds.rows, ds.holdout_rule, ds.source)


def fit_all(ds: Dataset, n_boot: int, auto_generations: int, seed: int, console: Console) -> list[_Model]:
    N, D, U = ds.X
    models: list[_Model] = []
    C = (6 * N * D)[None]
    specs = [
        ("power law in C = 6ND", "power", C, ("C",), None),
        ("Kaplan L(N, D)", "kaplan", ds.X[:2], ("N", "D"), None),
        ("Chinchilla L(N, D)", "chinchilla", ds.X[:2], ("N", "D"), None),
        ("data-constrained, D' only", "muennighoff", ds.X, ("N", "D", "U"), False),
        ("data-constrained (N', D')", "muennighoff", ds.X, ("N", "D", "U"), True),
    ]
    for label, form_name, X, names, excess in specs:
        form = Muennighoff(names, excess_params=excess) if excess is not None else make_form(form_name, names)
        t0 = time.perf_counter()
        lf = fit_law(_sub(ds, X, names), form, n_boot=n_boot if form_name in ("chinchilla", "muennighoff") else 0, seed=seed)
        secs = time.perf_counter() - t0
        r = lf.result
        if r.ci:
            t = Table(title=f"{label}: constants, 95% bootstrap CI ({len(r.boot_samples)} resamples, {secs:.0f} s)")
            for c in ("constant", "value", "CI low", "CI high"):
                t.add_column(c, justify="right")
            for k, v in r.params.items():
                t.add_row(k, f"{v:.5g}", f"{r.ci[k][0]:.5g}", f"{r.ci[k][1]:.5g}")
            console.print(t)
        if form_name == "power":
            models.append(_Model(label, form.n_params, lambda Xn, r=r: r.predict((6 * Xn[0] * Xn[1])[None])))
        else:
            k = len(names)
            models.append(_Model(label, form.n_params, lambda Xn, r=r, k=k: r.predict(Xn[:k])))
    if auto_generations > 0:
        models.append(_auto(ds, auto_generations, seed, (), "auto (symbolic regression)", console))
        seed_prog = parse(CHINCHILLA_PROGRAM)
        models.append(_auto(ds, auto_generations, seed, (seed_prog,), "auto, seeded with Chinchilla", console))
    return models


#: Chinchilla's structure as a program over the scaled inputs (constants are refitted).
CHINCHILLA_PROGRAM = """dtype float64
inputs N,D,U
v1 = pow N -0.3
v2 = mul v1 0.5
v3 = pow D -0.3
v4 = mul v3 0.5
v5 = add v2 v4
v6 = add v5 2
"""


def _auto(ds: Dataset, generations: int, seed: int, seeds, label: str, console: Console) -> _Model:
    """Symbolic regression on the training rows; prints the front with held-out errors for information."""
    Xtr, ytr = ds.train
    t0 = time.perf_counter()
    res = discover(
        Xtr, ytr, ("N", "D", "U"), generations=generations, budget_s=1800, seed=seed, patience=None, seeds=seeds,
        loss="huber",
    )
    raw = res.raw_program(res.chosen.program)
    console.print(
        f"{label}: {res.generations} generations, {res.fitted} programs fitted in {time.perf_counter() - t0:.0f} s; "
        f"front of {len(res.front)}; chosen (train data only, {res.rule})"
    )
    t = Table(title=f"{label}: Pareto front (held-out error shown for information; not used to choose)")
    for c in ("complexity", "train huber/delta", "inner extrap. huber/delta", "held-out rmse_log_y", "expression"):
        t.add_column(c)
    Xte, yte = ds.test
    inner = res.inner_errors or [float("nan")] * len(res.front)
    for c, ie in zip(res.front, inner):
        p = res.raw_program(c.program)
        he = error_metrics(yte, engine_evaluate([p], Xte)[0])["rmse_log_y"]
        mark = " *" if c is res.chosen else ""
        t.add_row(f"{c.complexity:g}{mark}", f"{c.error:.4g}", f"{ie:.4g}", f"{he:.4g}", infix(c.program, inputs=res.scaled_names()))
    console.print(t)
    return _Model(label, len(res.chosen.program.constants()), lambda Xn, p=raw: engine_evaluate([p], Xn)[0])


def score(ds: Dataset, models: list[_Model], title: str, console: Console) -> dict[str, dict]:
    Xtr, ytr = ds.train
    Xte, yte = ds.test
    t = Table(title=title)
    for c in ("law", "constants", "train rmse_log_y", "held-out rmse_log_y", "held-out mare", "held-out max rel. err"):
        t.add_column(c, justify="right")
    out = {}
    for m in models:
        tr = error_metrics(ytr, m.predict(Xtr))
        pte = m.predict(Xte)
        te = error_metrics(yte, pte)
        mx = float(np.max(np.abs(pte / yte - 1)))
        out[m.name] = te
        t.add_row(m.name, str(m.n_const), f"{tr['rmse_log_y']:.4f}", f"{te['rmse_log_y']:.4f}", f"{te['mare']:.2%}", f"{mx:.2%}")
    console.print(t)
    return out


def plot(path: Path, ds: Dataset, models: list[_Model]) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(13, 5.2), dpi=110)
    FigureCanvasAgg(fig)
    ax, bx = fig.subplots(1, 2)
    Xte, yte = ds.test
    markers = "osD^vP*X"
    for m, mk in zip(models, markers):
        ax.scatter(yte, m.predict(Xte), marker=mk, s=22, label=m.name, alpha=0.8)
    lo, hi = yte.min() * 0.97, yte.max() * 1.05
    ax.plot([lo, hi], [lo, hi], color="grey", ls="--", lw=1)
    ax.set_xlabel("observed loss (held-out: 4.2B and 8.7B models)")
    ax.set_ylabel("predicted loss")
    ax.legend(fontsize=7)
    ax.set_title("extrapolation to the two largest model sizes", fontsize=10)
    N, D, U = ds.X
    sel = N == N.max()
    order = np.argsort(U[sel])
    bx.scatter(U[sel][order], ds.y[sel][order], color="black", zorder=5, label="observed (8.7B params, 178B tokens)")
    Ug = np.geomspace(U[sel].min(), U[sel].max(), 60)
    Xg = np.array([np.full(60, N.max()), np.full(60, D[sel][0]), Ug])
    for m in models:
        bx.plot(Ug, m.predict(Xg), lw=1.3, label=m.name)
    bx.set_xscale("log")
    bx.set_xlabel("unique tokens U (epochs = 178B / U)")
    bx.set_ylabel("loss")
    bx.legend(fontsize=7)
    bx.set_title("8.7B model, 178B tokens, less unique data", fontsize=10)
    fig.suptitle("Data-constrained runs (Muennighoff et al. 2023, via SLD): fitted on models <= 3.9B params", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "runs" / "laws_data_constrained"))
    ap.add_argument("--boot", type=int, default=200)
    ap.add_argument(
        "--auto-generations", type=int, default=150,
        help="generations of symbolic regression, population 64 (0: skip); fixed so that runs repeat",
    )
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    console = Console(width=160)
    ds = load_dataset(CSV, ["params", "unique_tokens", "tokens"], "loss", "largest:2")
    if not np.all(ds.X[1] >= ds.X[2]):
        raise SystemExit("expected unique_tokens (tokens seen) >= tokens (unique tokens) on every row")
    held = ", ".join(f"{v:.3g}" for v in sorted(set(ds.X[0, ds.holdout])))
    console.print(f"{ds.n} runs; held out: {int(ds.holdout.sum())} runs with params in {{{held}}}", markup=False)
    models = fit_all(ds, args.boot, args.auto_generations, args.seed, console)
    score(ds, models, "split A: hold out the 2 largest model sizes (17 runs)", console)
    N, D, _ = ds.X
    sld = (N >= np.unique(N)[-2]) | (D >= np.unique(D)[-2])
    ds_b = Dataset(ds.x_names, ds.y_name, ds.X, ds.y, sld, ds.rows, "SLD split")
    console.print(f"split B (SLD benchmark's test split: params >= 4.2B or tokens seen >= 600B): {int(sld.sum())} held out; refitting")
    models_b = fit_all(ds_b, 0, 0, args.seed, console)
    score(ds_b, models_b, "split B: SLD test split", console)
    plot(out / "data_constrained.png", ds, models)
    console.print(f"plot: {out / 'data_constrained.png'}")


if __name__ == "__main__":
    main()
