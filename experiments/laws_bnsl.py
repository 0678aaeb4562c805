"""BNSL on the 4-digit addition curve, and a Chinchilla fit on synthetic data with known constants.

    python experiments/laws_bnsl.py [--out runs/laws_bnsl] [--boot 200] [--coverage 20]

Part 1 — data: data/bnsl_4digit_addition_ce_vs_dataset_size.csv, transcribed from
ethancaballero/broken_neural_scaling_laws @ ffa608f (the 4-digit addition fit script): test
cross-entropy of a model vs. training-set size. Its ``split`` column marks the 14 points that are
fitted and the 3 largest that are extrapolated. We fit BNSL (one break, Huber delta 1e-3 on
log y, L-BFGS from the best grid starts) on the 14, bootstrap the constants, and report the error
on the 3 held-out points; a plain power law ``c + a x^-b`` is fitted the same way for comparison.

Part 2 — synthetic: losses generated from Chinchilla's published constants (E=1.69, A=406.4,
B=410.7, alpha=0.34, beta=0.28) on a grid of model sizes and token counts with 1% log-normal
noise; we check that the 95% bootstrap intervals contain the true constants, and over
``--coverage`` independent noise draws report how often each interval covers its constant.

Writes bnsl_addition.png and chinchilla_synthetic.png into --out and prints every number.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from pysearch.laws import bootstrap, fit, make_form
from pysearch.laws.data import load_dataset
from pysearch.laws.fitting import error_metrics, fit_law
from pysearch.laws.report import plot_fit

ROOT = Path(__file__).resolve().parents[1]
BNSL_CSV = ROOT / "data" / "bnsl_4digit_addition_ce_vs_dataset_size.csv"
CHINCHILLA = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}


def part_bnsl(out: Path, n_boot: int, console: Console) -> None:
    ds = load_dataset(BNSL_CSV, ["train_dataset_size"], "test_cross_entropy", "split=extrapolate")
    fits = {}
    for name in ("bnsl", "power"):
        t0 = time.perf_counter()
        fits[name] = fit_law(ds, make_form(name, ds.x_names), n_boot=n_boot, seed=0)
        fits[name].seconds = time.perf_counter() - t0
    b = fits["bnsl"].result
    t = Table(title=f"BNSL on 4-digit addition (14 fitted points; 95% bootstrap CI, {len(b.boot_samples)} resamples)")
    for c in ("constant", "value", "CI low", "CI high"):
        t.add_column(c, justify="right")
    for k, v in b.params.items():
        lo, hi = b.ci[k]
        t.add_row(k, f"{v:.6g}", f"{lo:.6g}", f"{hi:.6g}")
    console.print(t)
    Xte, yte = ds.test
    t = Table(title="extrapolation to the 3 held-out points")
    for c in ("train_dataset_size", "observed CE", "BNSL", "BNSL rel. err", "power law", "power rel. err"):
        t.add_column(c, justify="right")
    pb, pp = b.predict(Xte), fits["power"].result.predict(Xte)
    for i in range(len(yte)):
        t.add_row(
            f"{Xte[0, i]:g}", f"{yte[i]:.5f}", f"{pb[i]:.5f}", f"{pb[i] / yte[i] - 1:+.2%}",
            f"{pp[i]:.5f}", f"{pp[i] / yte[i] - 1:+.2%}",
        )
    console.print(t)
    t = Table(title="errors (rmse_log_y = RMS of log pred - log obs; mare = mean |pred - obs| / obs)")
    for c in ("form", "constants", "train rmse_log_y", "held-out rmse_log_y", "held-out mare", "seconds"):
        t.add_column(c, justify="right")
    for name, lf in fits.items():
        t.add_row(
            name, str(lf.result.form.n_params), f"{lf.train_errors['rmse_log_y']:.4g}",
            f"{lf.holdout_errors['rmse_log_y']:.4g}", f"{lf.holdout_errors['mare']:.4g}", f"{lf.seconds:.1f}",
        )
    console.print(t)
    title = (
        f"BNSL, 4-digit addition: {b.expression()}; held-out mare {fits['bnsl'].holdout_errors['mare']:.3%} "
        f"(power law {fits['power'].holdout_errors['mare']:.3%})"
    )
    plot_fit(out / "bnsl_addition.png", ds.X, ds.y, ds.holdout, ds.x_names, ds.y_name, b.predict, title)


def _synthetic(rng: np.random.Generator, noise: float) -> tuple[np.ndarray, np.ndarray]:
    f = make_form("chinchilla", ["N", "D"])
    N, D = np.meshgrid(np.geomspace(7e7, 1.6e10, 10), np.geomspace(5e9, 5e11, 10))
    X = np.array([N.ravel(), D.ravel()])
    y = f.predict(np.array([CHINCHILLA[k] for k in f.param_names]), X)
    return X, y * np.exp(rng.normal(0.0, noise, X.shape[1]))


def part_chinchilla(out: Path, n_boot: int, n_cov: int, console: Console) -> None:
    f = make_form("chinchilla", ["N", "D"])
    X, y = _synthetic(np.random.default_rng(0), 0.01)
    t0 = time.perf_counter()
    r = bootstrap(fit(f, X, y), X, y, n_boot=n_boot, seed=0)
    secs = time.perf_counter() - t0
    t = Table(title=f"Chinchilla on synthetic data (100 points, 1% noise; {len(r.boot_samples)} resamples, {secs:.1f} s)")
    for c in ("constant", "true", "fitted", "95% CI low", "CI high", "covered"):
        t.add_column(c, justify="right")
    for k, v in CHINCHILLA.items():
        lo, hi = r.ci[k]
        t.add_row(k, f"{v:g}", f"{r.params[k]:.5g}", f"{lo:.5g}", f"{hi:.5g}", "yes" if lo <= v <= hi else "NO")
    console.print(t)
    console.print(f"train errors: {error_metrics(y, r.predict(X))}")
    plot_fit(
        out / "chinchilla_synthetic.png", X, y, np.zeros(len(y), bool), ("N", "D"), "loss", r.predict,
        f"Chinchilla fitted to synthetic data from the published constants: {r.expression()}",
    )
    if n_cov:
        hits = np.zeros(5)
        t0 = time.perf_counter()
        for s in range(n_cov):
            Xs, ys = _synthetic(np.random.default_rng(100 + s), 0.01)
            rs = bootstrap(fit(f, Xs, ys, n_starts=3), Xs, ys, n_boot=100, seed=s)
            hits += [rs.ci[k][0] <= v <= rs.ci[k][1] for k, v in CHINCHILLA.items()]
        t = Table(title=f"coverage of the 95% bootstrap CI over {n_cov} noise draws (100 resamples each; {time.perf_counter() - t0:.0f} s)")
        for k in CHINCHILLA:
            t.add_column(k, justify="right")
        t.add_row(*[f"{h / n_cov:.0%}" for h in hits])
        console.print(t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "runs" / "laws_bnsl"))
    ap.add_argument("--boot", type=int, default=200, help="bootstrap resamples (default 200)")
    ap.add_argument("--coverage", type=int, default=20, help="noise draws for the coverage check (0: skip)")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    console = Console(width=140)
    part_bnsl(out, args.boot, console)
    part_chinchilla(out, args.boot, args.coverage, console)
    console.print(f"plots: {out / 'bnsl_addition.png'}, {out / 'chinchilla_synthetic.png'}")


if __name__ == "__main__":
    main()
