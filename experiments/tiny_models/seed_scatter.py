"""Seed-to-seed scatter of a few ladder widths under a training recipe (issue 17, fourth round).

Trains the recall ladder's models of the given widths under several seeds with one recipe (the
ladder's task, test set, data stream and steps; options for gradient clipping, the cosine floor,
the width rule of the learning rate, an EMA of the weights, steps x batch) and reports, per model:
the per-token test loss (the ladder's ``per_token_loss``), the median and upper quantiles of the
per-token -log p and the share of the loss carried by its worst 1% of tokens, the loss on keys
by how often training saw them, the exact PassUntil score, the final lr and the training curve
(largest jump of the smoothed train loss, gradient-norm quantiles). The last lines give per width
the mean and sd/mean over seeds. Diagnosis only: it never trains the held-out largest width unless
told to, and it writes nothing into the recorded ladders.

    python experiments/tiny_models/seed_scatter.py --widths 64,96 --seeds 2,3,4 --jobs 2
    python experiments/tiny_models/seed_scatter.py --widths 64,96 --seeds 20,21,22,23 --clip 1.0 --out s.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--widths", default="64,96")
    p.add_argument("--seeds", default="2,3,4")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--batch", type=int, default=40)
    p.add_argument("--lr", type=float, default=3e-3, help="peak lr at width <= 64")
    p.add_argument("--lr-exp", type=float, default=0.5, help="peak lr = lr * min(1, 64/width)^lr_exp (default 0.5)")
    p.add_argument("--lr-floor", type=float, default=0.1, help="cosine ends at lr * floor (default 0.1)")
    p.add_argument("--warmup", type=int, default=None, help="warmup steps (default steps // 20, the ladder's)")
    p.add_argument("--clip", type=float, default=None, help="clip the gradient norm to this (default: none)")
    p.add_argument("--ema", type=float, default=None, help="evaluate an EMA of the weights with this decay")
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--data-seeds", help="data-stream seeds paired with --seeds (default: each seed + 1, the ladder's "
                   "rule): separates the initialisation's share of the scatter from the data order's")
    p.add_argument("--out", help="append one JSON line per model here")
    p.add_argument("--label", default="", help="a name for this recipe in the output")
    return p.parse_args(argv)


def run_one(job: tuple) -> dict:
    import torch

    from tiny_models.recall import RecallTask
    from tiny_models.train import TrainConfig, answer_distributions, train

    torch.set_num_threads(1)
    w, seed, data_seed, a = job
    task = RecallTask(48, 16, 18, 1.0)  # the ladder's task (emergence_tiny_transformers defaults)
    test_seq = task.test_set(1000, seed=12345)
    big_seq = task.test_set(10_000, seed=54321)
    exclude = task.item_codes(test_seq) | task.item_codes(big_seq)
    lr = a.lr * min(1.0, 64 / w) ** a.lr_exp
    cfg = TrainConfig(w, 2, a.steps, batch=a.batch, lr=lr, warmup=a.warmup or max(1, a.steps // 20), seed=seed,
                      weight_decay=a.weight_decay, clip=a.clip, lr_floor=a.lr_floor, ema=a.ema, data_seed=data_seed)
    curve: list = []
    model, info = train(task, cfg, exclude, curve=curve)
    pos = np.asarray(task.answer_positions)
    target = test_seq[:, pos]
    dists = answer_distributions(model, task, test_seq)
    tok_p = np.take_along_axis(dists, target[..., None], axis=-1)[..., 0]
    nlp = -np.log(np.maximum(tok_p, 1e-300))
    flat = np.sort(nlp.ravel())[::-1]
    # how often each test key was seen in training: replay this seed's data stream
    rng = np.random.default_rng(data_seed)
    counts = np.zeros(task.n_keys, np.int64)
    for _ in range(a.steps):
        seq = task.train_batch(a.batch, rng, exclude)
        np.add.at(counts, (seq[:, 0::3] * task.symbols + seq[:, 1::3]).ravel(), 1)
    test_keys = test_seq[:, 0::3] * task.symbols + test_seq[:, 1::3]
    seen = counts[test_keys]
    by_seen = {}
    for name, lo, hi in (("0", 0, 0), ("1-9", 1, 9), ("10-99", 10, 99), ("100+", 100, 1 << 60)):
        m = (seen >= lo) & (seen <= hi)
        by_seen[name] = [int(m.sum()), float(nlp[m].mean()) if m.any() else None]
    tl = np.array([c[2] for c in curve])
    sm = np.convolve(tl, np.ones(10) / 10, mode="valid")
    gn = np.array([c[3] for c in curve])
    return {
        "label": a.label, "width": w, "seed": seed, "data_seed": data_seed, "params": info["params"], "lr": lr,
        "steps": a.steps, "batch": a.batch, "warmup": cfg.warmup, "clip": a.clip, "lr_floor": a.lr_floor,
        "ema": a.ema, "lr_exp": a.lr_exp,
        "loss": float(nlp.mean()), "median": float(np.median(nlp)), "p90": float(np.quantile(nlp, 0.9)),
        "p99": float(np.quantile(nlp, 0.99)), "max": float(flat[0]),
        "top1pct_share": float(flat[: flat.size // 100].sum() / flat.sum()),
        "wrong_argmax": float((dists.argmax(-1) != target).mean()),
        "pu_exact": float(np.prod(tok_p, axis=1).mean()), "by_seen": by_seen,
        "final_lr": info["final_lr"], "final_train_loss_10": float(tl[-10:].mean()),
        "train_loss_at": {str(s): float(sm[min(s, sm.size - 1)]) for s in (25, 50, 100, 150, 200, 300, 400, 500)},
        "max_smoothed_jump": float(np.max(np.diff(sm[::10]))) if sm.size > 20 else None,
        "gnorm_q": [float(np.nanquantile(gn, q)) for q in (0.5, 0.9, 0.99, 1.0)],
        "cpu_s": info["train_cpu_seconds"],
    }


def main(argv=None) -> int:
    a = parse_args(argv)
    widths = [int(v) for v in a.widths.split(",")]
    seeds = [int(v) for v in a.seeds.split(",")]
    data_seeds = [int(v) for v in a.data_seeds.split(",")] if a.data_seeds else [s + 1 for s in seeds]
    if len(data_seeds) != len(seeds):
        print("error: --data-seeds needs one seed per --seeds entry", file=sys.stderr)
        return 2
    jobs = [(w, s, d, a) for w in sorted(widths, reverse=True) for s, d in zip(seeds, data_seeds)]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=a.jobs) as ex:
        res = list(ex.map(run_one, jobs))
    res.sort(key=lambda r: (r["width"], r["seed"]))
    if a.out:
        with open(a.out, "a") as fh:
            for r in res:
                fh.write(json.dumps(r) + "\n")
    print(f"recipe {a.label!r}: steps {a.steps} x batch {a.batch}, warmup {a.warmup or max(1, a.steps // 20)}, "
          f"lr {a.lr} x min(1,64/w)^{a.lr_exp}, floor "
          f"{a.lr_floor}, clip {a.clip}, ema {a.ema}, wd {a.weight_decay}")
    for r in res:
        print(f"w{r['width']:<3} s{r['seed']:<3} d{r['data_seed']:<3} loss {r['loss']:.4f} median {r['median']:.4f} p90 {r['p90']:.3f} "
              f"p99 {r['p99']:.2f} top1% {r['top1pct_share']:.2f} wrong {r['wrong_argmax']:.4f} PU {r['pu_exact']:.4f} "
              f"seen " + " ".join(f"{k}:{v[0]}/{v[1]:.3f}" if v[1] is not None else f"{k}:0" for k, v in
                                  r["by_seen"].items())
              + f" | lr_end {r['final_lr']:.2e} train@50/150/300/500/end {r['train_loss_at']['50']:.3f}/"
              f"{r['train_loss_at']['150']:.3f}/{r['train_loss_at']['300']:.3f}/"
              f"{r['train_loss_at']['500']:.3f}/{r['final_train_loss_10']:.3f} jump {r['max_smoothed_jump']:.3f} "
              f"gnorm q50/q99/max {r['gnorm_q'][0]:.2f}/{r['gnorm_q'][2]:.2f}/{r['gnorm_q'][3]:.2f} cpu {r['cpu_s']:.0f}")
    for w in widths:
        rs = [r for r in res if r["width"] == w]
        for key in ("loss", "median", "pu_exact"):
            v = np.array([r[key] for r in rs])
            print(f"w{w} {key}: mean {v.mean():.4f} sd/mean {v.std(ddof=1) / v.mean():.3f} (n={v.size})")
    print(f"wall {time.perf_counter() - t0:.0f} s, cpu {sum(r['cpu_s'] for r in res):.0f} s (training)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
