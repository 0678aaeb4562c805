"""Emergence on freshly trained models: tiny transformers of 1e3..1e6 parameters on addition.

Trains a ladder of decoder-only transformers (same data, steps and schedule; width and depth
grow) on multi-digit addition on the CPU, and measures each on a fixed test set: per-token
probability of every answer token, greedy exact match, token edit distance, sequence log-prob,
Brier score and the PassUntil score (exact: mean over items of the product of the answer-token
probabilities, i.e. the pass rate of temperature-1 sampling; and estimated by sampling until k
passes on a subset of items). Before the largest model is trained, laws fitted on the smaller
ones predict its per-token loss and PassUntil score; after training, the deviation is reported.

Needs torch (``pip install '.[torch]'``); without it the script says so and exits 0.

    python experiments/emergence_tiny_transformers.py                 # full run: 755 s measured on 2 busy cores
    python experiments/emergence_tiny_transformers.py --quick         # pipeline check, ~1 min
    pysearch emergence runs/emergence_tiny/results.csv --x params \\
        --metric-cols exact_match,token_edit_distance,seq_log_prob,passuntil --holdout largest:1

A recorded full run (the default ladder: depth 2, widths 6..192, 1.3e3..9.0e5 parameters) is kept
in ``experiments/tiny_models/recorded_addition_results.csv``. With one fixed recipe (600 steps,
width-scaled learning rate) tiny models are not monotone in size: the loss plateaus, drops
sharply between 1.5e4 and 4.1e4 parameters, and a mid-size model can under-train; the script
reports the prediction's deviation whatever it is.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

SIZES = [(6, 2), (12, 2), (24, 2), (40, 2), (64, 2), (112, 2), (192, 2)]
QUICK_SIZES = [(8, 1), (12, 1), (16, 1), (24, 1), (32, 2)]
COLUMNS = [
    "model", "width", "depth", "params", "steps", "batch", "tokens", "flops", "train_seconds",
    "per_token_loss", "exact_match", "token_edit_distance", "seq_log_prob", "brier", "passuntil",
    "passuntil_subset", "passuntil_sampled", "passuntil_sampled_lo", "passuntil_sampled_hi", "n_items", "answer_tokens",
]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--digits", type=int, default=3, help="operand digits (default 3)")
    p.add_argument("--steps", type=int, default=600, help="training steps per model (default 600)")
    p.add_argument("--batch", type=int, default=128, help="sequences per step (default 128)")
    p.add_argument("--test-items", type=int, default=1000, help="fixed test-set size (default 1000)")
    p.add_argument("--pu-items", type=int, default=40, help="items sampled with PassUntil (default 40)")
    p.add_argument("--pu-k", type=int, default=2, help="PassUntil: successes per item (default 2)")
    p.add_argument("--pu-max", type=int, default=4000, help="PassUntil: samples per item at most (default 4000)")
    p.add_argument("--threads", default="auto", help="torch threads: a number, or auto (2 if the machine is idle, else 1)")
    p.add_argument("--sizes", help="model ladder as width:depth,... smallest first (default "
                   + ",".join(f"{w}:{d}" for w, d in SIZES) + ")")
    p.add_argument("--quick", action="store_true", help="4 small models, 150 steps: checks the pipeline only")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/emergence_tiny", help="output directory (default runs/emergence_tiny)")
    return p.parse_args(argv)


def pick_threads(spec: str) -> int:
    if spec != "auto":
        return max(1, int(spec))
    # Two threads only help on an idle machine; under load they spin against other processes.
    return 2 if os.getloadavg()[0] < 1.0 else 1


def passuntil_sampled(model, task, test_seq, items, k, max_samples, seed):
    """Sample-until-k PassUntil estimate over ``items`` test items, with the per-item counts."""
    import torch

    from pysearch.emergence import pass_until_score, sample_until
    from tiny_models.train import sample_successes

    gen = torch.Generator().manual_seed(seed)
    counts = []
    for i in items:
        buf: list[bool] = []
        chunk = [16]

        def success(_rng, i=i):
            if not buf:
                buf.extend(sample_successes(model, task, test_seq[i], chunk[0], gen).tolist()[::-1])
                chunk[0] = min(chunk[0] * 4, 1024)
            return buf.pop()

        counts.append(sample_until(success, k, max_samples, np.random.default_rng(0)))
    return pass_until_score(counts, k), counts


def measure_row(model, info, task, test_seq, cfg, args, pu_items):
    from pysearch.emergence import token_edit_distance
    from tiny_models.model import train_flops
    from tiny_models.train import measure

    m = measure(model, task, test_seq)
    with np.errstate(divide="ignore"):
        logp = np.log(m.token_probs)
    pu_est, _ = passuntil_sampled(model, task, test_seq, pu_items, args.pu_k, args.pu_max, args.seed + 7)
    return {
        "model": f"w{cfg.width}_d{cfg.depth}",
        "width": cfg.width,
        "depth": cfg.depth,
        "params": info["params"],
        "steps": cfg.steps,
        "batch": cfg.batch,
        "tokens": info["tokens"],
        "flops": train_flops(info["params"], info["tokens"]),
        "train_seconds": round(info["train_seconds"], 2),
        "per_token_loss": float(-logp.mean()),
        "exact_match": float((m.greedy == m.target).all(axis=1).mean()),
        "token_edit_distance": float(np.mean([token_edit_distance(g, t) for g, t in zip(m.greedy, m.target)])),
        "seq_log_prob": float(logp.sum(axis=1).mean()),
        "brier": float(m.brier.mean()),
        "passuntil": float(np.prod(m.token_probs, axis=1).mean()),
        "passuntil_subset": float(np.prod(m.token_probs[pu_items], axis=1).mean()),
        "passuntil_sampled": pu_est.p,
        "passuntil_sampled_lo": pu_est.lo,
        "passuntil_sampled_hi": pu_est.hi,
        "n_items": len(test_seq),
        "answer_tokens": task.answer_len,
    }, m


def print_header():
    print(f"{'model':>9} {'params':>8} {'train s':>7} {'loss/tok':>8} {'exact':>6} {'edit d':>6} "
          f"{'log p':>8} {'brier':>6} {'PU':>9} {'PU subset':>9} {'sampled [95% CI]':>28}")


def print_table(rows):
    for r in rows:
        print(f"{r['model']:>9} {r['params']:>8d} {r['train_seconds']:>7.1f} {r['per_token_loss']:>8.4f} "
              f"{r['exact_match']:>6.3f} {r['token_edit_distance']:>6.3f} {r['seq_log_prob']:>8.3f} "
              f"{r['brier']:>6.3f} {r['passuntil']:>9.3g} {r['passuntil_subset']:>9.3g} {r['passuntil_sampled']:>9.3g} "
              f"[{r['passuntil_sampled_lo']:.3g}, {r['passuntil_sampled_hi']:.3g}]", flush=True)


def predict_largest(rows, n_largest, seed):
    """Fit laws on ``rows`` (the smaller models); predict loss and PassUntil at ``n_largest`` params."""
    from pysearch.emergence import fit_passuntil_law
    from pysearch.laws import bootstrap, fit, make_form

    n = np.array([r["params"] for r in rows], float)
    loss = np.array([r["per_token_loss"] for r in rows])
    pu = np.array([r["passuntil"] for r in rows])
    out = {}
    form = make_form("power", ["params"])
    res = fit(form, n[None, :], loss)
    bootstrap(res, n[None, :], loss, n_boot=200, seed=seed)
    boot = np.array([form.predict(th, np.array([[n_largest]]))[0] for th in res.boot_samples])
    out["loss"] = {
        "law": res.expression(),
        "pred": float(res.predict(np.array([[n_largest]]))[0]),
        "ci": [float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))],
    }
    ok = (pu > 0) & (pu < 1)
    law = fit_passuntil_law(n[ok], pu[ok])
    # 95% interval of log(-log PU) at the new N from the regression, mapped back
    u = np.log(n[ok])
    v = np.log(-np.log(pu[ok]))
    design = np.column_stack([np.ones_like(u), u])
    resid = v - (math.log(law.c) - law.alpha * u)
    dof = len(u) - 2
    s2 = float(resid @ resid) / dof
    x0 = np.array([1.0, math.log(n_largest)])
    se_pred = math.sqrt(s2 * (1 + x0 @ np.linalg.inv(design.T @ design) @ x0))
    from scipy import stats

    t = float(stats.t.ppf(0.975, dof))
    v0 = float(law.transformed(n_largest))
    out["passuntil"] = {
        "law": f"exp(-{law.c:.6g} * N^(-{law.alpha:.6g}))",
        "pred": float(law.predict(n_largest)),
        "ci": [float(np.exp(-np.exp(v0 + t * se_pred))), float(np.exp(-np.exp(v0 - t * se_pred)))],
    }
    return out


def plot(rows, pred, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = np.array([r["params"] for r in rows], float)
    fig, axes = plt.subplots(2, 3, figsize=(13, 7), dpi=100)
    panels = [
        ("exact_match", "exact-match accuracy (greedy)"),
        ("token_edit_distance", "token edit distance (greedy)"),
        ("seq_log_prob", "log-probability of the answer"),
        ("brier", "Brier score per answer token"),
        ("per_token_loss", "per-token loss (nats)"),
        ("passuntil", "PassUntil score"),
    ]
    from pysearch.emergence import emergence_score

    for ax, (col, title) in zip(axes.flat, panels):
        y = np.array([r[col] for r in rows])
        ax.plot(n[:-1], y[:-1], "o-", color="tab:blue", label="trained first")
        ax.plot(n[-1:], y[-1:], "o", mfc="none", mec="tab:red", ms=10, mew=2, label="largest (predicted first)")
        if col in pred:
            p = pred[col]
            ax.errorbar(n[-1:], [p["pred"]], yerr=[[p["pred"] - p["ci"][0]], [p["ci"][1] - p["pred"]]],
                        fmt="x", color="tab:green", capsize=4, label="prediction, 95% interval")
        if col == "passuntil":
            ax.set_yscale("log")
            ax.plot(n, [r["passuntil_sampled"] for r in rows], "s", ms=4, color="tab:orange", label="sampled (PassUntil)")
        if col == "per_token_loss":
            ax.set_yscale("log")
        ax.set_xscale("log")
        ax.set_title(f"{title}\nemergence score {emergence_score(n, y):.3g}", fontsize=9)
        ax.set_xlabel("parameters")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    tmp = Path(str(path) + ".tmp")
    fig.savefig(tmp, format="png")
    os.replace(tmp, path)
    plt.close(fig)


def write_csv(rows, path):
    tmp = Path(str(path) + ".tmp")
    with open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, path)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        import torch
    except ImportError:
        print("skipped: torch not installed (pip install '.[torch]')")
        return 0
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from tiny_models.addition import AdditionTask
    from tiny_models.train import TrainConfig, peak_lr, train

    t_start = time.perf_counter()
    threads = pick_threads(args.threads)
    torch.set_num_threads(threads)
    sizes = QUICK_SIZES if args.quick else SIZES
    if args.sizes:
        try:
            sizes = [tuple(int(v) for v in item.split(":")) for item in args.sizes.split(",")]
        except ValueError:
            sizes = []
        if len(sizes) < 5 or any(len(t) != 2 for t in sizes):
            print(f"bad --sizes {args.sizes!r}: expected at least 5 width:depth pairs, e.g. 8:1,16:1,24:2,32:2,48:2")
            return 2
    steps = 150 if args.quick else args.steps
    if args.quick:
        args.pu_max, args.pu_items = min(args.pu_max, 400), min(args.pu_items, 20)
    task = AdditionTask(args.digits)
    a, b = task.test_set(args.test_items, seed=12345)
    test_seq = task.encode(a, b)
    exclude = set((a * 10**task.digits + b).tolist())
    pu_items = np.arange(min(args.pu_items, len(test_seq)))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"{args.digits}-digit addition, {len(sizes)} models, {steps} steps x {args.batch} sequences, "
          f"{threads} torch thread(s), test set {len(test_seq)} items x {task.answer_len} answer tokens "
          f"(resolution {1 / (len(test_seq) * task.answer_len):.1e})", flush=True)

    rows = []
    print_header()
    for i, (w, d) in enumerate(sizes):
        if i == len(sizes) - 1:
            from tiny_models.model import param_count

            n_big = param_count(12, task.seq_len, w, d)
            print(f"\nfitting laws on the {len(rows)} smaller models; predicting w{w}_d{d} ({n_big} params) "
                  "BEFORE training it:", flush=True)
            pred = predict_largest(rows, n_big, args.seed)
            for key, p in pred.items():
                print(f"  {key:>10}: law {p['law']}\n              predicted {p['pred']:.4g}  "
                      f"(95% interval {p['ci'][0]:.4g} .. {p['ci'][1]:.4g})", flush=True)
            print()
            print_header()
        cfg = TrainConfig(w, d, steps, batch=args.batch, lr=peak_lr(w), seed=args.seed)
        model, info = train(task, cfg, exclude)
        row, _ = measure_row(model, info, task, test_seq, cfg, args, pu_items)
        rows.append(row)
        print_table([row])
        write_csv(rows, out / "results.csv")

    actual = {"loss": rows[-1]["per_token_loss"], "passuntil": rows[-1]["passuntil"]}
    print("\nprediction vs. measurement for the largest model:")
    summary = {"schema": 1, "kind": "emergence_tiny_transformers", "digits": args.digits, "steps": steps,
               "batch": args.batch, "threads": threads, "models": rows, "predictions": {}}
    for key, p in pred.items():
        dev = (p["pred"] - actual[key]) / actual[key]
        inside = p["ci"][0] <= actual[key] <= p["ci"][1]
        print(f"  {key:>10}: predicted {p['pred']:.4g}, measured {actual[key]:.4g}, relative deviation "
              f"{100 * dev:+.1f}% ({'inside' if inside else 'outside'} the 95% interval)")
        summary["predictions"][key] = {**p, "measured": actual[key], "relative_deviation": dev, "inside_ci": inside}
    from pysearch.emergence import detect_accelerated_emergence

    n_all = np.array([r["params"] for r in rows], float)
    pu_all = np.array([r["passuntil"] for r in rows])
    ok = (pu_all > 0) & (pu_all < 1)
    if ok.sum() >= 4:
        acc = detect_accelerated_emergence(n_all[ok], pu_all[ok])
        print(f"\naccelerated emergence test (curvature of log(-log PU) in log N, all {int(ok.sum())} models): "
              f"q = {acc.curvature:.3g} +- {acc.stderr:.2g}, one-sided p = {acc.p_value:.2g} -> "
              f"{'ACCELERATED (bends below any single PassUntil law)' if acc.accelerated else 'consistent with one law'}")
        summary["acceleration"] = {"curvature": acc.curvature, "stderr": acc.stderr, "p_value": acc.p_value,
                                   "accelerated": acc.accelerated}
    rows_plot = [dict(r, loss=r["per_token_loss"]) for r in rows]
    plot(rows_plot, {"per_token_loss": pred["loss"], "passuntil": pred["passuntil"]}, out / "emergence_tiny.png")

    from pysearch.emergence import analyze, read_results, write_report

    table = read_results(out / "results.csv", "params",
                         ["exact_match", "token_edit_distance", "seq_log_prob", "brier", "per_token_loss", "passuntil"],
                         holdout="largest:1", label_col="model")
    report = analyze(table, n_items=len(test_seq), answer_tokens=task.answer_len)
    write_report(report, out / "analysis")
    print(f"\n{'metric':<20} {'emergence score':>15} {'R2 log':>7} {'holdout err':>11}")
    for name, rep in report["metrics"].items():
        score = "inf" if rep["emergence_score_infinite"] else f"{rep['emergence_score']:.3g}"
        he = rep["holdout_error"]
        print(f"{name:<20} {score:>15} {rep['loglinear_r2']:>7.2f} {'-' if he is None else format(he, '.3g'):>11}")
    summary["wall_seconds"] = time.perf_counter() - t_start
    tmp = out / "summary.json.tmp"
    tmp.write_text(json.dumps(summary, indent=2))
    os.replace(tmp, out / "summary.json")
    print(f"\ntotal wall time {summary['wall_seconds']:.0f} s; wrote {out}/results.csv, emergence_tiny.png, "
          "summary.json, analysis/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
