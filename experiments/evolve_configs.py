"""Evolving configurations, not formulas: the DEAP loop applied to models and to metrics.

(a) ``frontier`` (needs torch): for each fixed training-compute budget C (FLOPs = 6 * N * tokens),
    a genetic algorithm searches tiny-transformer configurations (width, depth, steps; the batch
    size follows from the budget) on 3-digit addition for the lowest test loss. All trained
    configurations are then fitted with a Chinchilla law L(N, D) = E + A/N^alpha + B/D^beta, and
    the law's compute-optimal model size at each budget is compared with the evolved one.
(b) ``metrics`` (no torch): which metric and transformation of a task's scores makes the curve
    across scale most predictable? A genome picks a metric (exact match, token edit distance,
    log-probability, PassUntil), a transformation (none, log|y|, logit, log(-log y)) and a law in
    log N (a line, or a power law); its fitness is the error extrapolating to the largest models
    held out, as a fraction of the metric's range. Data: the recorded tiny-transformer results
    (``tiny_models/recorded_addition_results.csv``), or the power-law toy model measured on a
    finite test set (exact match limited by resolution, PassUntil by sampling until k passes).

    python experiments/evolve_configs.py metrics                 # seconds
    python experiments/evolve_configs.py frontier                # minutes (at most 36 trainings of <= 3e10 FLOPs)
    python experiments/evolve_configs.py frontier --quick        # ~1 min pipeline check

Both searches run on pysearch's one evolutionary engine (:class:`pysearch.search.loop.Search`) as a
:class:`~pysearch.search.config_problem.ConfigProblem`: a genome is a vector of category indices,
varied by uniform crossover and one-gene resampling, with one objective (NSGA-II on (error, 0));
this script registers the fitness and reads the result.

Budgets (defaults): frontier 2 compute budgets (1e10, 3e10 FLOPs) x (population 6 + 2 generations x 6 children),
each configuration trained at most once (cached); metrics: population 12, 8 generations.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

from pysearch.search.config_problem import ConfigProblem, ConfigSearchConfig, register_fitness
from pysearch.search.loop import Search

HERE = Path(__file__).resolve().parent
RECORDED = HERE / "tiny_models" / "recorded_addition_results.csv"


def evolve(gene_sizes, fitness, fitness_args, population, generations, seed):
    """Run the engine on a configuration problem (the registered ``fitness`` with ``fitness_args``):
    ``population`` genomes, ``generations`` generations of ``population`` children each.

    Return the best genome, its error, the per-generation log (generation, genomes scored, min and
    median error of the population) and the problem (its ``scores``: every distinct genome evaluated).
    """
    problem = ConfigProblem(ConfigSearchConfig(tuple(gene_sizes), fitness, fitness_args, population=population,
                                               seed=seed))
    search = Search(problem)
    search.run(generations=generations)
    genes, err = problem.best(search)
    log = [{"gen": r["gen"], "nevals": r["evals"], "min": r["min_ulp"], "median": r["median_ulp"]}
           for r in search.logbook]
    return genes, err, log, problem


def _atomic_text(path: Path, text: str) -> None:
    tmp = Path(str(path) + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _savefig(fig, path: Path) -> None:
    tmp = Path(str(path) + ".tmp")
    fig.savefig(tmp, format="png")
    os.replace(tmp, path)


# ------------------------------------------------------------------ (b) metrics
METRICS = ("exact_match", "token_edit_distance", "seq_log_prob", "passuntil")
TRANSFORMS = ("none", "log|y|", "logit", "log(-log y)")
LAWS = ("line", "power")


def _forward(name, y):
    """Transform y; None when the transform cannot take these values."""
    y = np.asarray(y, float)
    if name == "none":
        return y
    if name == "log|y|":
        if np.all(y > 0):
            return np.log(y)
        if np.all(y < 0):
            return np.log(-y)
        return None
    if not np.all((y > 0) & (y < 1)):
        return None
    return np.log(y / (1 - y)) if name == "logit" else np.log(-np.log(y))


def _inverse(name, t, sign):
    with np.errstate(over="ignore"):
        if name == "none":
            return t
        if name == "log|y|":
            return sign * np.exp(t)
        if name == "logit":
            return 1 / (1 + np.exp(-t))
        return np.exp(-np.exp(t))


def extrapolation_error(x, y, holdout, transform, law):
    """Held-out mean absolute error (in y) of a law fitted to transformed y, / range of y."""
    from pysearch.emergence.analysis import fit_loglinear, fit_power

    tr = ~holdout
    t = _forward(transform, y[tr])
    if t is None or _forward(transform, y) is None:
        return math.inf
    need = 3 if law == "line" else 4
    if tr.sum() < need:
        return math.inf
    fit = fit_loglinear if law == "line" else fit_power
    try:
        with np.errstate(all="ignore"):
            predict, _, _ = fit(x[tr], t)
            pred = _inverse(transform, predict(x[holdout]), -1.0 if np.all(y < 0) else 1.0)
    except (ValueError, np.linalg.LinAlgError):
        return math.inf
    spread = float(np.ptp(y))
    err = float(np.mean(np.abs(pred - y[holdout]))) / spread if spread > 0 else math.inf
    return err if math.isfinite(err) else math.inf


def toy_results(seed, n_models=9, n_items=200, k=2, max_samples=10**9):
    """Toy-model 'models' measured as a benchmark would: finite test set, PassUntil by sampling."""
    from pysearch.emergence import ToyModel, pass_until_score

    rng = np.random.default_rng(seed)
    toy = ToyModel(c=1e11, alpha=-0.2, n_tokens=5)
    n = np.logspace(9, 14, n_models)
    sim = toy.simulate(n, n_items, rng)
    rows = []
    for i, v in enumerate(n):
        p = float(toy.exact_match(v))
        trials = np.minimum(k + rng.negative_binomial(k, p, n_items), max_samples)
        counts = [(k if t < max_samples else 0, int(t)) for t in trials]
        rows.append({
            "params": v,
            "exact_match": sim["exact_match"][i],
            "token_edit_distance": sim["edit_distance"][i],
            "seq_log_prob": float(toy.sequence_log_prob(v)) + rng.normal(0, 0.05),
            "passuntil": pass_until_score(counts, k).p,
        })
    return rows


def read_rows(path):
    with open(path, newline="") as fh:
        return [{k: float(v) for k, v in r.items() if k in ("params",) + METRICS} for r in csv.DictReader(fh)]


_METRIC_DATA: dict[str, tuple] = {}


def metric_data(source: str, seed: int, holdout_models: int):
    """(x, data per metric, held-out mask, description) of a metrics source, or None when the
    recorded results are missing (loaded once per arguments)."""
    key = json.dumps([source, seed, holdout_models])
    if key not in _METRIC_DATA:
        if source == "toy":
            rows, desc = toy_results(seed), "toy model (c=1e11, alpha=-0.2, 5 tokens), 200 items, PassUntil k=2"
        else:
            path = Path(source) if source != "recorded" else RECORDED
            if not path.exists():
                return None
            rows, desc = read_rows(path), str(path)
        rows.sort(key=lambda r: r["params"])
        x = np.array([r["params"] for r in rows])
        data = {m: np.array([r[m] for r in rows]) for m in METRICS}
        holdout = np.zeros(len(x), bool)
        holdout[-holdout_models:] = True
        _METRIC_DATA[key] = (x, data, holdout, desc)
    return _METRIC_DATA[key]


def metric_fitness(args: dict):
    """The fitness of a (metric, transform, law) genome: its held-out extrapolation error (1e6 where it has none)."""
    loaded = metric_data(args["source"], args["seed"], args["holdout"])
    if loaded is None:
        raise ValueError(f"no metrics data for source {args['source']!r}")
    x, data, holdout, _ = loaded

    def fitness(genes):
        m, t, law = METRICS[genes[0]], TRANSFORMS[genes[1]], LAWS[genes[2]]
        e = extrapolation_error(x, data[m], holdout, t, law)
        return e if math.isfinite(e) else 1e6

    return fitness


register_fitness("metric_predictability", metric_fitness)


def run_metrics(args) -> dict:
    loaded = metric_data(args.source, args.seed, args.holdout)
    if loaded is None:
        path = Path(args.source) if args.source != "recorded" else RECORDED
        print(f"no recorded results at {path}; run experiments/emergence_tiny_transformers.py or use --source toy")
        return {}
    x, data, holdout, source = loaded
    print(f"(b) metric/transformation search on {source}: {len(x)} models, largest {args.holdout} held out")

    t0 = time.perf_counter()
    best, best_error, log, problem = evolve(
        [len(METRICS), len(TRANSFORMS), len(LAWS)], "metric_predictability",
        {"source": args.source, "seed": args.seed, "holdout": args.holdout}, args.population, args.generations,
        args.seed)
    ga_seconds = time.perf_counter() - t0
    cache = problem.scores
    table = []
    for g in itertools.product(range(len(METRICS)), range(len(TRANSFORMS)), range(len(LAWS))):
        e = extrapolation_error(x, data[METRICS[g[0]]], holdout, TRANSFORMS[g[1]], LAWS[g[2]])
        table.append({"metric": METRICS[g[0]], "transform": TRANSFORMS[g[1]], "law": LAWS[g[2]],
                      "holdout_error": e if math.isfinite(e) else None})
    ok = sorted((r for r in table if r["holdout_error"] is not None), key=lambda r: r["holdout_error"])
    best_row = {"metric": METRICS[best[0]], "transform": TRANSFORMS[best[1]], "law": LAWS[best[2]],
                "holdout_error": best_error}
    print(f"  GA ({args.population} x {args.generations} generations, {len(cache)} distinct genomes of "
          f"{len(table)}, {ga_seconds:.1f} s) best: {best_row['metric']} / {best_row['transform']} / "
          f"{best_row['law']}: held-out error {best_row['holdout_error']:.3g} of the metric's range")
    print(f"  exhaustive best: {ok[0]['metric']} / {ok[0]['transform']} / {ok[0]['law']}: {ok[0]['holdout_error']:.3g}")
    print(f"  {'metric':<20} {'best transform':>15} {'law':>6} {'held-out err':>12}   (raw, line: err)")
    per_metric = {}
    for m in METRICS:
        rows_m = [r for r in ok if r["metric"] == m]
        raw = next((r for r in table if r["metric"] == m and r["transform"] == "none" and r["law"] == "line"), None)
        if rows_m:
            r = rows_m[0]
            per_metric[m] = r
            rawe = raw["holdout_error"] if raw and raw["holdout_error"] is not None else float("nan")
            print(f"  {m:<20} {r['transform']:>15} {r['law']:>6} {r['holdout_error']:>12.3g}   ({rawe:.3g})")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = {"schema": 1, "kind": "metric_predictability", "source": source, "holdout_models": int(args.holdout),
              "error": "mean |prediction - value| on held-out models / range of the metric over all models",
              "ga_best": best_row, "exhaustive": table, "best_per_metric": per_metric,
              "ga_log": log}
    _atomic_text(out / "metric_predictability.json", json.dumps(result, indent=2, default=float))
    plot_metrics(x, data, holdout, per_metric, out / "metric_predictability.png", source)
    print(f"  wrote {out}/metric_predictability.json, metric_predictability.png")
    return result


def plot_metrics(x, data, holdout, per_metric, path, source):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pysearch.emergence.analysis import fit_loglinear, fit_power

    fig, axes = plt.subplots(1, len(METRICS), figsize=(4 * len(METRICS), 3.6), dpi=100)
    grid = np.logspace(np.log10(x.min()), np.log10(x.max()), 200)
    for ax, m in zip(axes, METRICS):
        y = data[m]
        ax.plot(x[~holdout], y[~holdout], "o", color="tab:blue", label="fitted")
        ax.plot(x[holdout], y[holdout], "o", mfc="none", mec="tab:red", ms=9, mew=2, label="held out")
        r = per_metric.get(m)
        if r:
            fit = fit_loglinear if r["law"] == "line" else fit_power
            with np.errstate(all="ignore"):
                predict, _, _ = fit(x[~holdout], _forward(r["transform"], y[~holdout]))
                gy = _inverse(r["transform"], predict(grid), -1.0 if np.all(y < 0) else 1.0)
            ax.plot(grid, gy, "-", color="tab:green",
                    label=f"{r['transform']}, {r['law']}: err {r['holdout_error']:.2g}")
        if m == "passuntil":
            ax.set_yscale("log")
        ax.set_xscale("log")
        ax.set_title(m, fontsize=10)
        ax.set_xlabel("parameters")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"most predictable transformation per metric ({source})", fontsize=9)
    fig.tight_layout()
    _savefig(fig, path)
    plt.close(fig)


# ------------------------------------------------------------------ (a) frontier
WIDTHS = (8, 12, 16, 24, 32, 48, 64, 96)
DEPTHS = (1, 2, 3, 4)
STEPS = (32, 64, 128, 256, 512)
MIN_BATCH, MAX_BATCH = 8, 1024


def run_frontier(args) -> dict:
    try:
        import torch
    except ImportError:
        print("(a) frontier skipped: torch not installed (pip install '.[torch]')")
        return {}
    sys.path.insert(0, str(HERE))
    from tiny_models.addition import AdditionTask
    from tiny_models.model import param_count
    from tiny_models.train import TrainConfig, measure, peak_lr, train

    torch.set_num_threads(1)
    task = AdditionTask(3)
    a, b = task.test_set(500, seed=999)
    test_seq = task.encode(a, b)
    exclude = set((a * 10**task.digits + b).tolist())
    tokens_per_seq = task.seq_len - 1
    budgets = [float(v) for v in args.budgets.split(",")]
    trained: dict[tuple, dict] = {}
    t_start = time.perf_counter()

    def config(genes, budget):
        w, d, steps = WIDTHS[genes[0]], DEPTHS[genes[1]], STEPS[genes[2]]
        n = param_count(12, task.seq_len, w, d)
        seqs = budget / (6.0 * n * tokens_per_seq)
        # repair: keep the batch in range by moving the step count, the budget stays fixed
        steps = int(min(max(steps, math.ceil(seqs / MAX_BATCH)), max(1, int(seqs // MIN_BATCH))))
        batch = int(round(seqs / steps))
        return w, d, steps, batch, n

    def evaluate(genes, budget):
        w, d, steps, batch, n = config(genes, budget)
        key = (w, d, steps, batch)
        if batch < MIN_BATCH:
            return 1e6  # even one step of the smallest batch overspends the budget
        if key not in trained:
            cfg = TrainConfig(w, d, steps, batch=batch, lr=peak_lr(w), warmup=max(1, steps // 10), seed=args.seed)
            model, info = train(task, cfg, exclude)
            m = measure(model, task, test_seq)
            with np.errstate(divide="ignore"):
                loss = float(-np.log(np.maximum(m.token_probs, 1e-300)).mean())
            trained[key] = {"budget": budget, "width": w, "depth": d, "steps": steps, "batch": batch, "params": n,
                            "tokens": info["tokens"], "flops": 6.0 * n * info["tokens"], "loss": loss,
                            "seconds": info["train_seconds"]}
            print(f"    C={budget:.0e}: width {w:3d} depth {d} steps {steps:4d} batch {batch:4d} "
                  f"N={n:7d}  loss {loss:.4f}  ({info['train_seconds']:.1f} s)", flush=True)
        return trained[key]["loss"]

    register_fitness("tiny_transformer_loss", lambda fa: (lambda g: evaluate(g, fa["budget"])))
    best = {}
    for C in budgets:
        print(f"(a) budget C = {C:.1e} FLOPs: GA population {args.population}, {args.generations} generations")
        b, _, _, _ = evolve([len(WIDTHS), len(DEPTHS), len(STEPS)], "tiny_transformer_loss", {"budget": C},
                            args.population, args.generations, args.seed)
        w, d, steps, batch, n = config(tuple(b), C)
        best[C] = trained[(w, d, steps, batch)]
    runs = list(trained.values())
    sizes = [param_count(12, task.seq_len, w, d) for w in WIDTHS for d in DEPTHS]
    law = fit_frontier_law(runs, budgets, (min(sizes), max(sizes)))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "frontier_runs.csv.tmp", "w", newline="") as fh:
        wr = csv.DictWriter(fh, fieldnames=list(runs[0]))
        wr.writeheader()
        wr.writerows(runs)
    os.replace(out / "frontier_runs.csv.tmp", out / "frontier_runs.csv")
    print(f"\n  {'budget':>8} {'evolved N':>9} {'loss':>7} | {'law N_opt':>9} {'law loss':>8} {'law at evolved':>14}")
    rows = []
    for C in budgets:
        e = best[C]
        row = {"budget": C, "evolved": e}
        if law.get("params"):
            row["law_opt"] = law["optimum"][str(C)]
            row["law_at_evolved"] = law["predict"](e["params"], e["tokens"])
            edge = "*" if row["law_opt"]["at_edge_of_search_space"] else " "
            print(f"  {C:>8.1e} {e['params']:>9d} {e['loss']:>7.4f} | {row['law_opt']['params']:>8.0f}{edge} "
                  f"{row['law_opt']['loss']:>8.4f} {row['law_at_evolved']:>14.4f}")
        else:
            print(f"  {C:>8.1e} {e['params']:>9d} {e['loss']:>7.4f} | law not fitted: {law.get('error')}")
        rows.append(row)
    if any(r.get("law_opt", {}).get("at_edge_of_search_space") for r in rows):
        print("  * the law's optimum lies at the edge of the searchable sizes (the law extrapolates there)")
    plot_frontier(runs, budgets, best, law, out / "frontier.png")
    result = {"schema": 1, "kind": "compute_frontier", "budgets": budgets, "runs": runs,
              "law": {k: v for k, v in law.items() if k != "predict"}, "best": rows,
              "wall_seconds": time.perf_counter() - t_start}
    _atomic_text(out / "frontier.json", json.dumps(result, indent=2, default=float))
    print(f"  {len(runs)} configurations trained in {result['wall_seconds']:.0f} s; wrote {out}/frontier.json, "
          "frontier_runs.csv, frontier.png")
    return result


def fit_frontier_law(runs, budgets, n_range) -> dict:
    """Chinchilla L(N, D) on every trained configuration; the law's optimal N (within the
    searchable model sizes ``n_range``) at each budget."""
    from pysearch.laws import fit, make_form

    n = np.array([r["params"] for r in runs], float)
    d = np.array([r["tokens"] for r in runs], float)
    y = np.array([r["loss"] for r in runs])
    form = make_form("chinchilla", ["N", "D"])
    try:
        res = fit(form, np.vstack([n, d]), y)
    except ValueError as e:
        return {"error": str(e)}
    p = res.params

    def predict(nn, dd):
        return float(res.predict(np.array([[nn], [dd]], float))[0])

    opt = {}
    grid = np.logspace(math.log10(n_range[0]), math.log10(n_range[1]), 400)
    for C in budgets:
        losses = res.predict(np.vstack([grid, C / (6 * grid)]))
        i = int(np.argmin(losses))
        opt[str(C)] = {"params": float(grid[i]), "tokens": float(C / (6 * grid[i])), "loss": float(losses[i]),
                       "at_edge_of_search_space": bool(i in (0, len(grid) - 1))}
    return {"expression": res.expression(), "params": p, "optimum": opt, "predict": predict,
            "n_range": list(n_range)}


def plot_frontier(runs, budgets, best, law, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=100)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    grid = np.logspace(*np.log10(law.get("n_range", (1e3, 3e6))), 300)
    for i, C in enumerate(budgets):
        c = colors[i % len(colors)]
        rs = [r for r in runs if r["budget"] == C]
        ax.scatter([r["params"] for r in rs], [r["loss"] for r in rs], color=c, s=18, alpha=0.7,
                   label=f"C={C:.0e}: trained configs")
        e = best[C]
        ax.scatter([e["params"]], [e["loss"]], marker="*", s=220, color=c, edgecolor="k", zorder=5,
                   label=f"C={C:.0e}: evolved best")
        if law.get("params"):
            ax.plot(grid, [law["predict"](g, C / (6 * g)) for g in grid], "--", color=c, lw=1)
            o = law["optimum"][str(C)]
            ax.scatter([o["params"]], [o["loss"]], marker="D", s=50, facecolor="none", edgecolor=c, lw=2,
                       label=f"C={C:.0e}: law optimum")
    ax.set_xscale("log")
    ax.set_xlabel("parameters N (tokens D = C / 6N)")
    ax.set_ylabel("test per-token loss")
    title = "evolved configurations vs. Chinchilla law iso-FLOP curves"
    if law.get("expression"):
        title += f"\n{law['expression']}"
    ax.set_title(title, fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=6)
    fig.tight_layout()
    _savefig(fig, path)
    plt.close(fig)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("part", nargs="?", choices=("both", "frontier", "metrics"), default="both")
    p.add_argument("--source", default="recorded", help="metrics data: recorded (default), toy, or a CSV path")
    p.add_argument("--holdout", type=int, default=2, help="metrics: largest models held out (default 2)")
    p.add_argument("--budgets", default="1e10,3e10", help="frontier: compute budgets in FLOPs (default 1e10,3e10)")
    p.add_argument("--population", type=int, default=None, help="GA population (default 6 frontier, 12 metrics)")
    p.add_argument("--generations", type=int, default=None, help="GA generations (default 2 frontier, 8 metrics)")
    p.add_argument("--quick", action="store_true", help="frontier: one small budget, population 4, 1 generation")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/evolve_configs")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.part in ("both", "metrics"):
        a = argparse.Namespace(**vars(args))
        a.population = args.population or 12
        a.generations = args.generations or 8
        run_metrics(a)
        if args.source == "recorded" and RECORDED.exists():
            a.source = "toy"
            run_metrics(argparse.Namespace(**{**vars(a), "out": str(Path(args.out) / "toy")}))
    if args.part in ("both", "frontier"):
        a = argparse.Namespace(**vars(args))
        a.population = args.population or (4 if args.quick else 6)
        a.generations = args.generations if args.generations is not None else (1 if args.quick else 2)
        if args.quick:
            a.budgets = "1e10"
        run_frontier(a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
