"""Emergence on freshly trained models: PassUntil and the Mirage on a ladder of tiny transformers.

Trains a ladder of decoder-only transformers from scratch (on the CPU, or on a CUDA GPU when torch sees
one: ``--device auto``, the default; ``cpu`` or ``cuda`` to choose), one recipe for all (same
data stream, steps, batch, schedule; learning rate scaled with width), on chained fact recall
(``tiny_models/recall.py``): each item asks for FACTS values of a fixed random table, all of
which must be right. Each model is measured on a fixed test set:

* PassUntil (Hu et al. 2023): every test item is sampled until it has passed K times or BUDGET
  samples were drawn, at temperature 1 from the model (with a prefix cache: a sample ends at its
  first wrong token, so the live samples share one forward pass); the estimate and its 95%
  interval come from :func:`pysearch.emergence.pass_until_score`. The exact pass rate (mean over
  items of the product of the answer-token probabilities) is the cross-check.
* Mirage (Schaeffer et al. 2023): greedy exact match, a 4-way multiple-choice grade, token edit
  distance, answer log-probability, Brier score; exact match again on a test set 10x larger.

Before the largest model is trained, the loss law and the PassUntil law fitted on the smaller
models predict its per-token loss and pass rate (printed and saved); then it is trained and
measured. Results go to OUT/results.csv (+ summary.json with provenance, emergence_ladder.png);
``--record`` also copies them to ``experiments/tiny_models/recorded_recall_ladder.{csv,json}`` (the first
round's record; the second round's, seed 1, is ``recorded_recall_ladder_seed1.{csv,json}``). ``--seeds`` trains several seeds per
width (child processes, ``--jobs`` at a time), predicts from the seed-averaged smaller models before any
seed trains its largest model, and analyses the averaged ladder; ``--record`` then writes
``recorded_recall_ladder_r6.{csv,json}`` and ``..._per_seed.csv`` (the sixth round, six seeds; the fifth,
eight seeds, is ``recorded_recall_ladder_r5*``, with ``..._r5_rerun*`` its bit-identical rerun; the fourth
round's is ``recorded_recall_ladder_r4*``, the third round's, seeds 2, 3, 4, ``recorded_recall_ladder_3seeds*``;
``--record`` never overwrites a record). The recipe since the fourth round clips the
gradient norm to 1 and warms up over 20% of the steps (``--clip 0 --warmup-frac 0.05`` is the first three
rounds' recipe; each record's JSON carries its own). How the laws are chosen (on the smaller models only)
is in ``tiny_models/ladder.py``.

    python experiments/emergence_tiny_transformers.py             # full ladder (see RESULTS.md for times)
    python experiments/emergence_tiny_transformers.py --quick     # pipeline check on 6 small models
    python experiments/emergence_tiny_transformers.py --seed 1 --out runs/s1 --stop-before-largest  # 10 models, stop
    python experiments/emergence_tiny_transformers.py --seed 1 --out runs/s1 --resume   # predict, then train the largest
    python experiments/emergence_tiny_transformers.py --seeds 2,3,4 --jobs 3 \
        --widths 2,3,4,5,6,8,10,12,16,24,32,48,64,96,128 --out runs/ladder17_3seeds \
        --clip 0 --warmup-frac 0.05   # the third round
    python experiments/emergence_tiny_transformers.py --seeds 5,6,7,8,9 --jobs 3 \
        --widths 2,3,4,5,6,8,10,12,16,24,32,48,64,96,128 --out runs/ladder17_r4   # the fourth round
    python experiments/emergence_tiny_transformers.py --seeds 10,11,12,13,14,15,16,17 --jobs 2 \
        --widths 2,3,4,5,6,8,10,12,16,24,32,48,64,96,128 --out runs/ladder17_r5   # the fifth round
    python experiments/emergence_tiny_transformers.py --from-csv experiments/tiny_models/recorded_recall_ladder.csv
    pysearch emergence experiments/tiny_models/recorded_recall_ladder.csv --x params --label-col model \\
        --metric-cols exact_match,multiple_choice,token_edit_distance,seq_log_prob,brier,passuntil_sampled

Training needs torch (``pip install '.[torch]'``); without it the script says so and exits 0.
``--from-csv`` reruns the whole analysis on a recorded ladder and needs no torch.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from tiny_models import ladder  # noqa: E402  (torch-free)

WIDTHS = [4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128]
QUICK_WIDTHS = [4, 6, 8, 12, 16, 24]
RECORDED = HERE / "tiny_models" / "recorded_recall_ladder.csv"
RECORDED_3SEEDS = HERE / "tiny_models" / "recorded_recall_ladder_3seeds.csv"  # the third round (seeds 2, 3, 4)
#: where ``--seeds ... --record`` writes (the sixth round; the earlier rounds' records are kept as they are, and
#: ``--record`` never overwrites a record: a new round names its files here first)
RECORDED_SEEDS = HERE / "tiny_models" / "recorded_recall_ladder_r6.csv"
#: the fourth round's recipe changes (chosen on w64/w96 seed scatter with tuning seeds only, see RESULTS.md)
WARMUP_FRAC = 0.2
CLIP = 1.0


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--symbols", type=int, default=48, help="key alphabet: symbols^2 keys (default 48)")
    p.add_argument("--values", type=int, default=16, help="value tokens (default 16)")
    p.add_argument("--facts", type=int, default=18, help="look-ups per item, i.e. answer tokens (default 18)")
    p.add_argument("--zipf", type=float, default=1.0, help="Zipf exponent of the key frequencies (default 1.0)")
    p.add_argument("--widths", help="ladder widths, smallest first (default " + ",".join(map(str, WIDTHS)) + ")")
    p.add_argument("--depth", type=int, default=2, help="blocks per model (default 2)")
    p.add_argument("--steps", type=int, default=600, help="training steps per model (default 600)")
    p.add_argument("--batch", type=int, default=40, help="items per step (default 40)")
    p.add_argument("--lr", type=float, default=3e-3, help="peak learning rate at width <= 64 (default 3e-3)")
    p.add_argument("--warmup-frac", type=float, default=WARMUP_FRAC,
                   help=f"linear warmup over this fraction of the steps (default {WARMUP_FRAC}; rounds 1-3: 0.05)")
    p.add_argument("--clip", type=float, default=CLIP,
                   help=f"clip the gradient's global norm to this before each step, 0 for none (default {CLIP}; "
                        "rounds 1-3: none)")
    p.add_argument("--test-items", type=int, default=1000, help="fixed test-set size (default 1000)")
    p.add_argument("--k", type=int, default=8, help="PassUntil: passes per item (default 8)")
    p.add_argument("--budget", type=int, default=20_000, help="PassUntil: samples per item at most (default 2e4)")
    p.add_argument("--device", default="auto",
                   help="where to train: auto (a CUDA GPU when torch sees one, else the CPU), cpu or cuda")
    p.add_argument("--threads", default="auto", help="torch threads: a number, or auto (2 if the machine is idle, else 1)")
    p.add_argument("--quick", action="store_true",
                   help="6 small models, 150 steps, 4 look-ups in a 16x16 table: checks the pipeline only")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/emergence_tiny", help="output directory (default runs/emergence_tiny)")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run in --out (same settings): trained models are kept")
    p.add_argument("--stop-before-largest", action="store_true",
                   help="train and measure every model but the largest, then stop; --resume later makes the "
                        "prediction (with the analysis code of that moment) and trains the largest")
    p.add_argument("--seeds", help="several training seeds per width, e.g. 2,3,4: every seed's ladder is trained by a "
                                   "child process (--jobs at a time) in OUT/seed<S>, and each row of the analysed ladder "
                                   "averages the seeds (prediction made on the averaged smaller models before any "
                                   "seed's largest model is trained)")
    p.add_argument("--jobs", type=int, default=1, help="with --seeds: child processes at a time (default 1)")
    p.add_argument("--record", action="store_true", help="also write the results to " + str(RECORDED.relative_to(HERE.parent))
                   + " (with --seeds: to " + str(RECORDED_SEEDS.relative_to(HERE.parent)) + ")")
    p.add_argument("--from-csv", metavar="CSV", help="analyse a recorded ladder instead of training (no torch needed)")
    p.add_argument("--plot", help="with --from-csv: write the PNG here")
    p.add_argument("--markdown", action="store_true", help="with --from-csv: also print the ladder as Markdown")
    return p.parse_args(argv)


def pick_threads(spec: str) -> int:
    if spec != "auto":
        return max(1, int(spec))
    # Two threads only help on an idle machine; under load they spin against other processes.
    return 2 if os.getloadavg()[0] < 1.0 else 1


def device_name(device: str) -> str:
    """The device as the records name it: ``cpu``, or ``cuda (<GPU name>)``."""
    if device == "cpu":
        return "cpu"
    import torch

    return f"cuda ({torch.cuda.get_device_name(0)})"


def git_commit() -> str:
    try:
        r = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, cwd=HERE)
        return r.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def multiple_choice_seqs(task, test_seq: np.ndarray, rng: np.random.Generator, n_choices: int = 4) -> np.ndarray:
    """(items, n_choices, seq_len): the correct item first, then distractors with one answer value changed each."""
    m = len(test_seq)
    out = np.repeat(test_seq[:, None, :], n_choices, axis=1)
    pos = np.asarray(task.answer_positions)
    for c in range(1, n_choices):
        j = pos[rng.integers(0, len(pos), m)]
        shift = rng.integers(1, task.values, m)
        out[np.arange(m), c, j] = task.symbols + (out[np.arange(m), c, j] - task.symbols + shift) % task.values
    return out


def measure_model(model, task, test_seq, big_seq, mc_seq, args, seed) -> dict:
    from pysearch.emergence import multiple_choice_grade, pass_until_score, token_edit_distance
    from tiny_models.sampling import pass_until_prefix
    from tiny_models.train import answer_distributions, answer_log_probs, greedy_answers_from

    pos = np.asarray(task.answer_positions)
    target = test_seq[:, pos]
    # the multiple-choice items' first choice is the test item itself: its log-probabilities come with ``dists``
    if not np.array_equal(mc_seq[:, 0], test_seq):
        raise ValueError("the multiple-choice items must start with the test items")
    dists, mc_lp0 = answer_distributions(model, task, test_seq, with_log_probs=True)
    tok_p = np.take_along_axis(dists, target[..., None], axis=-1)[..., 0]
    onehot = np.eye(task.vocab)[target]
    # greedy decoding follows the teacher-forced argmax up to an item's first error (tested against full decoding),
    # so it is right iff every argmax along the correct prefix is right: the 10x set uses that
    greedy = greedy_answers_from(model, task, test_seq, dists.argmax(-1))
    exact = (greedy == target).all(axis=1)
    big_dists = answer_distributions(model, task, big_seq)
    big_exact = (big_dists.argmax(-1) == big_seq[:, pos]).all(axis=1)
    distractors = mc_seq[:, 1:].reshape(-1, mc_seq.shape[-1])
    mc_lp = np.concatenate([mc_lp0[:, None, :], answer_log_probs(model, task, distractors).reshape(
        len(mc_seq), mc_seq.shape[1] - 1, -1)], axis=1).sum(-1)
    t0 = time.process_time()
    succ, trials = pass_until_prefix(dists, target, args.k, args.budget, np.random.default_rng(seed))
    est = pass_until_score(list(zip(succ.tolist(), trials.tolist())), args.k)
    with np.errstate(divide="ignore"):
        logp = np.log(tok_p)
    return {
        "per_token_loss": float(-logp.mean()),
        "exact_match": float(exact.mean()),
        "exact_match_10x": float(big_exact.mean()),
        "multiple_choice": float(multiple_choice_grade(mc_lp, np.zeros(len(mc_lp), int)).mean()),
        "token_edit_distance": float(np.mean([token_edit_distance(g, t) for g, t in zip(greedy, target)])),
        "seq_log_prob": float(logp.sum(axis=1).mean()),
        "brier": float(((dists - onehot) ** 2).sum(-1).mean()),
        "passuntil_exact": float(np.prod(tok_p, axis=1).mean()),
        "passuntil_exact_pu_items": float(np.prod(tok_p, axis=1).mean()),
        "passuntil_sampled": est.p,
        "passuntil_sampled_lo": est.lo,
        "passuntil_sampled_hi": est.hi,
        "pu_items": len(test_seq),
        "pu_k": args.k,
        "pu_budget": args.budget,
        "pu_samples": int(trials.sum()),
        "pu_censored": int((succ < args.k).sum()),
        "pu_cpu_seconds": time.process_time() - t0,
        "n_items": len(test_seq),
        "n_items_10x": len(big_seq),
        "answer_tokens": task.answer_len,
    }


def report(rows, an, out_png=None) -> None:
    print(ladder.format_table(rows))
    print()
    print(ladder.format_analysis(an))
    print("\ngoals of issue 17:")
    for name, ok in ladder.goals(an).items():
        print(f"  [{'x' if ok else ' '}] {name}")
    if out_png:
        ladder.plot(rows, an, out_png)
        print(f"wrote {out_png}")
    print(ladder.result_line(an), flush=True)


def from_csv(args) -> int:
    side = Path(args.from_csv).with_suffix(".json")
    meta = {}
    if side.exists():
        try:
            meta = json.loads(side.read_text())
        except (OSError, ValueError) as e:
            print(f"error: cannot read {side}: {e}", file=sys.stderr)
            return 2
    try:
        rows = ladder.read_ladder(args.from_csv)
        # a recorded run reruns with the analysis its prediction was made with (the seed of its recipe)
        an = ladder.analyze(rows, seed=meta.get("recipe", {}).get("seed", args.seed),
                            version=ladder.analysis_version(meta))
    except ladder.LadderError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if meta:
        if "prediction_before_training" in meta:
            pre = meta["prediction_before_training"]
            print(f"recorded run {meta.get('finished_utc', '?')}: prediction made at {pre.get('made_utc', '?')}, "
                  f"before the largest model's training started at {meta.get('largest_training_started_utc', '?')}")
    report(rows, an, args.plot)
    if args.markdown:
        print()
        print(ladder.markdown(rows, an))
    return 0


def _sigterm(signum, frame):
    raise KeyboardInterrupt


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.from_csv:
        return from_csv(args)
    if not 0.0 <= args.warmup_frac < 1.0 or not args.clip >= 0.0:
        print(f"error: bad recipe: --warmup-frac {args.warmup_frac} must be in [0, 1) and --clip {args.clip} >= 0",
              file=sys.stderr)
        return 2
    record = RECORDED_SEEDS if args.seeds else RECORDED
    if args.record and record.exists():
        print(f"error: --record: {record.relative_to(HERE.parent)} already holds a recorded ladder; records are never "
              "overwritten (name the new round's files in RECORDED_SEEDS first)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _sigterm)
    try:
        return train_seeds(args) if args.seeds else train_ladder(args)
    except KeyboardInterrupt:
        print(f"\ninterrupted: the models trained so far are in {args.out}/results.csv; rerun with --resume to "
              "continue", file=sys.stderr)
        return 130


def parse_widths(args) -> list[int] | None:
    """The ladder's widths (--widths, else the defaults); None after a one-line error for a bad list."""
    if not args.widths:
        return QUICK_WIDTHS if args.quick else WIDTHS
    try:
        widths = [int(v) for v in args.widths.split(",")]
    except ValueError:
        widths = []
    if len(widths) < 5 or any(w < 1 for w in widths) or sorted(set(widths)) != widths:
        print(f"error: bad --widths {args.widths!r}: expected at least 5 increasing positive widths", file=sys.stderr)
        return None
    return widths


def _child_argv(args, seed: int) -> list[str]:
    """The command line of one seed's child run (same settings, one torch thread, its own --out)."""
    argv = [sys.executable, str(Path(__file__).resolve()), "--seed", str(seed), "--out", str(Path(args.out) / f"seed{seed}"),
            "--threads", "1", "--device", args.device, "--symbols", str(args.symbols), "--values", str(args.values), "--facts", str(args.facts),
            "--zipf", repr(args.zipf), "--depth", str(args.depth), "--steps", str(args.steps), "--batch", str(args.batch),
            "--lr", repr(args.lr), "--warmup-frac", repr(args.warmup_frac), "--clip", repr(args.clip),
            "--test-items", str(args.test_items), "--k", str(args.k), "--budget", str(args.budget)]
    if args.widths:
        argv += ["--widths", args.widths]
    if args.quick:
        argv.append("--quick")
    return argv


def _run_children(cmds: list[list[str]], jobs: int, logs: list[Path]) -> None:
    """Run the commands, ``jobs`` at a time, each with its output in its log; raise if one fails."""
    pending = list(zip(cmds, logs))
    running: list = []
    failed = []
    try:
        while pending or running:
            while pending and len(running) < max(1, jobs):
                cmd, log = pending.pop(0)
                fh = open(log, "a")
                running.append((subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT), fh, log))
            time.sleep(0.05)  # a finished child frees its slot at once (16 hand-overs in an 8-seed run)
            for item in list(running):
                proc, fh, log = item
                if proc.poll() is not None:
                    fh.close()
                    running.remove(item)
                    if proc.returncode != 0:
                        failed.append(f"{log} (exit {proc.returncode})")
    finally:
        for proc, fh, _ in running:
            proc.terminate()
            proc.wait()
            fh.close()
    if failed:
        raise RuntimeError("child run(s) failed, see " + ", ".join(failed))


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def train_seeds(args) -> int:
    """Several seeds per width: children train the smaller models, the averaged ladder predicts, then the largest."""
    try:
        seeds = [int(v) for v in args.seeds.split(",")]
    except ValueError:
        seeds = []
    if len(seeds) < 2 or len(set(seeds)) != len(seeds):
        print(f"error: bad --seeds {args.seeds!r}: expected at least 2 distinct integers", file=sys.stderr)
        return 2
    widths = parse_widths(args)
    if widths is None:
        return 2
    try:
        import torch  # noqa: F401  (the children train with it)
    except ImportError:
        print("skipped: torch not installed (pip install '.[torch]')")
        return 0
    from tiny_models.train import resolve_device

    try:
        resolve_device(args.device)  # the children resolve it again; a bad one stops here, before any trains
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    import resource

    from pysearch.fileio import read_json, write_json_atomic
    from tiny_models.model import param_count
    from tiny_models.recall import RecallTask

    t_wall = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cmd_line = " ".join([Path(sys.executable).name, *sys.argv])
    print(f"{len(seeds)} seeds per width ({args.seeds}), {len(widths)} widths, {args.jobs} child process(es) at a "
          f"time; logs in {out}/seed<S>.log", flush=True)
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    load_start = round(os.getloadavg()[0], 1)
    logs = [out / f"seed{s}.log" for s in seeds]
    pred_path = out / "prediction.json"
    stage1 = [_child_argv(args, s) + ["--stop-before-largest"] for s in seeds]
    if args.resume:
        stage1 = [c + ["--resume"] for c in stage1]
    if not pred_path.exists():
        _run_children(stage1, args.jobs, logs)
        small = [ladder.read_ladder(out / f"seed{s}" / "results.csv") for s in seeds]
        if any(len(r) != len(widths) - 1 for r in small):
            print("error: a seed's smaller models are incomplete; see the logs", file=sys.stderr)
            return 1
        rows = ladder.combine_seeds(small)
        task = RecallTask(args.symbols, args.values, args.facts, args.zipf) if not args.quick else \
            RecallTask(16, args.values, 4, args.zipf)
        n_big = param_count(task.vocab, task.seq_len, widths[-1], args.depth)
        print(f"\nfitting laws on the {len(rows)} smaller widths averaged over seeds {args.seeds}; predicting "
              f"w{widths[-1]} ({n_big} params) BEFORE any seed trains it:", flush=True)
        lo = ladder.predict_loss([r["params"] for r in rows], [r["per_token_loss"] for r in rows], n_big, seed=seeds[0])
        ok = [r for r in rows if 0.0 < r["passuntil_sampled"] < 1.0]
        pu = ladder.predict_passuntil([r["params"] for r in ok], [r["passuntil_sampled"] for r in ok],
                                      [r["passuntil_sampled_lo"] for r in ok], [r["passuntil_sampled_hi"] for r in ok],
                                      n_big)
        for key, p in (("loss", lo), ("passuntil", pu)):
            print(f"  {key:>10}: law {p.law}\n              predicted {p.pred:.4g} (95% interval "
                  f"{p.lo:.4g} .. {p.hi:.4g})", flush=True)
        write_json_atomic(pred_path, {
            "made_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "analysis_git_commit": git_commit(),
            "analysis_sha256": {"experiments/tiny_models/ladder.py": _sha256(HERE / "tiny_models" / "ladder.py")},
            "seeds": seeds, "loss": lo.as_dict(), "passuntil": pu.as_dict()})
    pre = read_json(pred_path, "prediction")
    largest_started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    _run_children([_child_argv(args, s) + ["--resume"] for s in seeds], args.jobs, logs)
    per_seed = [ladder.read_ladder(out / f"seed{s}" / "results.csv") for s in seeds]
    rows = ladder.combine_seeds(per_seed)
    an = ladder.analyze(rows, seed=seeds[0])
    if abs(pre["passuntil"]["pred"] - an["passuntil"]["pred"]) > 1e-9 * an["passuntil"]["pred"]:
        raise RuntimeError("the recorded prediction and the re-analysis disagree")
    child = resource.getrusage(resource.RUSAGE_CHILDREN)
    seed_meta = [read_json(out / f"seed{s}" / "run.json", "run state") for s in seeds]
    meta = {k: seed_meta[0][k] for k in ("schema", "task", "test", "passuntil", "torch", "numpy", "python", "device")}
    meta.update({
        "kind": "emergence_tiny_transformers/recall_ladder_seeds", "git_commit": git_commit(),
        "analysis_version": ladder.ANALYSIS_VERSION, "command": cmd_line, "seeds": seeds, "jobs": args.jobs,
        "started_utc": started, "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, load {load_start} at start",
        "threads": 1,
        "recipe": {**{k: v for k, v in seed_meta[0]["recipe"].items() if k not in ("seed", "data_seed")},
                   "seeds": seeds, "data_seeds": [s + 1 for s in seeds]},
        "rows": "each row is the mean over the seeds (PassUntil pooled over seeds x items); per-seed rows in "
                + RECORDED_SEEDS.stem + "_per_seed.csv",
        "prediction_before_training": pre, "largest_training_started_utc": largest_started,
        "seed_largest_training_started_utc": {str(s): m.get("largest_training_started_utc") for s, m in
                                              zip(seeds, seed_meta)},
        "wall_seconds": round(time.perf_counter() - t_wall, 1),
        "cpu_seconds": round(child.ru_utime + child.ru_stime, 1),
        "finished_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "load_at_end": round(os.getloadavg()[0], 1), "analysis": ladder.jsonable(an), "result_line": ladder.result_line(an)})
    ladder.write_ladder(rows, out / "results.csv")
    ladder.write_ladder([r for rs in per_seed for r in rs], out / "results_per_seed.csv")
    write_json_atomic(out / "summary.json", meta)
    report(rows, an, out / "emergence_ladder.png")
    print(f"total: {meta['wall_seconds']:.0f} s wall, {meta['cpu_seconds']:.0f} s CPU (children), load "
          f"{load_start} at start, {meta['load_at_end']} at end; wrote {out}/results.csv, results_per_seed.csv, "
          "summary.json, emergence_ladder.png")
    if args.record:
        shutil.copyfile(out / "results.csv", RECORDED_SEEDS)
        shutil.copyfile(out / "summary.json", RECORDED_SEEDS.with_suffix(".json"))
        shutil.copyfile(out / "results_per_seed.csv", RECORDED_SEEDS.with_name(RECORDED_SEEDS.stem + "_per_seed.csv"))
        shutil.copyfile(out / "emergence_ladder.png", HERE / "emergence_ladder.png")
        print(f"recorded to {RECORDED_SEEDS} (+ .json, _per_seed.csv) and {HERE / 'emergence_ladder.png'}")
    return 0


def train_ladder(args) -> int:
    try:
        import torch
    except ImportError:
        print("skipped: torch not installed (pip install '.[torch]')")
        return 0
    from pysearch.fileio import read_json, write_json_atomic
    from tiny_models.model import param_count
    from tiny_models.recall import RecallTask
    from tiny_models.train import TrainConfig, peak_lr, resolve_device, train

    t_wall, t_cpu = time.perf_counter(), time.process_time()
    try:
        device = resolve_device(args.device)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    threads = pick_threads(args.threads)
    torch.set_num_threads(threads)
    widths = parse_widths(args)
    if widths is None:
        return 2
    steps = 150 if args.quick else args.steps
    if args.quick:
        args.symbols, args.facts, args.test_items, args.budget = 16, 4, min(args.test_items, 300), min(args.budget, 20_000)
    try:
        task = RecallTask(args.symbols, args.values, args.facts, args.zipf)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    warmup = max(1, round(steps * args.warmup_frac))
    test_seq = task.test_set(args.test_items, seed=12345)
    big_seq = task.test_set(10 * args.test_items, seed=54321)
    mc_seq = multiple_choice_seqs(task, test_seq, np.random.default_rng(777))
    exclude = task.item_codes(test_seq) | task.item_codes(big_seq)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"chained fact recall: {task.facts} look-ups per item in a random table of {task.n_keys} keys -> "
          f"{task.values} values (Zipf {task.zipf}); {len(widths)} models, depth {args.depth}, {steps} steps x "
          f"{args.batch} items, on {device_name(device)} ({threads} torch thread(s)); test set {len(test_seq)} items (and {len(big_seq)}), "
          f"chance pass rate {task.values ** -task.facts:.1e}; PassUntil k={args.k}, budget {args.budget:.0e} "
          "samples per item", flush=True)
    meta = {"schema": 1, "kind": "emergence_tiny_transformers/recall_ladder", "git_commit": git_commit(),
            "analysis_version": ladder.ANALYSIS_VERSION,
            "started_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version(),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f} at start",
            "threads": threads, "device": device_name(device),
            "task": {"name": "recall", "symbols": task.symbols, "values": task.values, "facts": task.facts,
                     "zipf": task.zipf, "table_seed": task.table_seed},
            "recipe": {"depth": args.depth, "steps": steps, "batch": args.batch, "lr_base": args.lr,
                       "lr_rule": f"lr_base * min(1, 64/width)^0.5, warmup {warmup} steps, cosine to 10%",
                       "warmup_steps": warmup, "grad_clip": args.clip or None,
                       "optimizer": "AdamW(betas=(0.9, 0.98), weight_decay=0.01)", "seed": args.seed,
                       "data_seed": args.seed + 1},
            "test": {"items": len(test_seq), "seed": 12345, "items_10x": len(big_seq), "seed_10x": 54321,
                     "mc_seed": 777},
            "passuntil": {"k": args.k, "budget": args.budget, "sampling_seed": "seed + 1000 + model index"}}
    rows = []
    state = out / "run.json"
    if args.resume and state.exists() and (out / "results.csv").exists():
        old = read_json(state, "run state")
        same = all(old.get(k) == meta[k] for k in ("task", "recipe", "test", "passuntil")) and \
            old.get("device", device_name("cpu")) == meta["device"]
        rows = ladder.read_ladder(out / "results.csv") if same else []
        if not same or [r["width"] for r in rows] != widths[: len(rows)]:
            print(f"error: --resume: {out} holds a run with other settings; use another --out", file=sys.stderr)
            return 2
        meta = {**old, "threads": threads, "resumed_utc": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        print(f"resuming: {len(rows)} model(s) already trained in {out}", flush=True)
    for i, w in enumerate(widths):
        if i < len(rows):
            continue
        write_json_atomic(state, meta)
        if i == len(widths) - 1 and args.stop_before_largest:
            print(f"\nstopped before the largest model (w{w}): {len(rows)} models in {out}/results.csv; rerun with "
                  "--resume (without --stop-before-largest) to predict it and then train it", flush=True)
            return 0
        if i == len(widths) - 1 and "prediction_before_training" not in meta:
            n_big = param_count(task.vocab, task.seq_len, w, args.depth)
            print(f"\nfitting laws on the {len(rows)} smaller models; predicting w{w} ({n_big} params) BEFORE "
                  "training it:", flush=True)
            try:
                lo = ladder.predict_loss([r["params"] for r in rows], [r["per_token_loss"] for r in rows], n_big,
                                         seed=args.seed)
                ok = [r for r in rows if 0.0 < r["passuntil_sampled"] < 1.0]
                pu = ladder.predict_passuntil([r["params"] for r in ok], [r["passuntil_sampled"] for r in ok],
                                              [r["passuntil_sampled_lo"] for r in ok],
                                              [r["passuntil_sampled_hi"] for r in ok], n_big)
            except (ladder.LadderError, ValueError, RuntimeError) as e:
                print(f"  no prediction: {e}", flush=True)
            else:
                meta["prediction_before_training"] = {
                    "made_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "analysis_git_commit": git_commit(),
                    "loss": lo.as_dict(), "passuntil": pu.as_dict()}
                for key, p in (("loss", lo), ("passuntil", pu)):
                    print(f"  {key:>10}: law {p.law}\n              predicted {p.pred:.4g} (95% interval "
                          f"{p.lo:.4g} .. {p.hi:.4g})", flush=True)
            meta["largest_training_started_utc"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
            write_json_atomic(state, meta)
        cfg = TrainConfig(w, args.depth, steps, batch=args.batch, lr=peak_lr(w, args.lr),
                          warmup=warmup, seed=args.seed, clip=args.clip or None)
        model, info = train(task, cfg, exclude, device=device)
        row = {"model": f"w{w}_d{args.depth}", "width": w, "depth": args.depth, "params": info["params"],
               "seed": args.seed, "steps": steps, "batch": args.batch, "lr": cfg.lr, "tokens": info["tokens"],
               "flops": 6.0 * info["params"] * info["tokens"], "train_seconds": round(info["train_seconds"], 2),
               "train_cpu_seconds": round(info["train_cpu_seconds"], 2)}
        row.update(measure_model(model, task, test_seq, big_seq, mc_seq, args, args.seed + 1000 + i))
        rows.append(row)
        r = row
        print(f"  {r['model']:>8} N={r['params']:>7d} loss {r['per_token_loss']:.4f} exact {r['exact_match']:.3f} "
              f"(10x {r['exact_match_10x']:.4f}) MC {r['multiple_choice']:.3f} PU exact {r['passuntil_exact']:.3g} "
              f"sampled {r['passuntil_sampled']:.3g} [{r['passuntil_sampled_lo']:.3g}, {r['passuntil_sampled_hi']:.3g}] "
              f"({r['pu_samples']} samples, {r['pu_censored']} items censored); train {r['train_seconds']:.0f} s "
              f"wall / {r['train_cpu_seconds']:.0f} s CPU", flush=True)
        ladder.write_ladder(rows, out / "results.csv")
    print()
    try:
        an = ladder.analyze(rows, seed=args.seed)
    except (ladder.LadderError, ValueError, RuntimeError) as e:
        print(ladder.format_table(rows))
        print(f"no analysis: {e}")
        return 1
    pre = meta["prediction_before_training"]
    if abs(pre["passuntil"]["pred"] - an["passuntil"]["pred"]) > 1e-9 * an["passuntil"]["pred"]:
        raise RuntimeError("the recorded prediction and the re-analysis disagree")
    meta["wall_seconds"] = round(time.perf_counter() - t_wall, 1)
    meta["cpu_seconds"] = round(time.process_time() - t_cpu, 1)
    meta["finished_utc"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    meta["load_at_end"] = round(os.getloadavg()[0], 1)
    meta["analysis"] = ladder.jsonable(an)
    meta["result_line"] = ladder.result_line(an)
    write_json_atomic(out / "summary.json", meta)
    report(rows, an, out / "emergence_ladder.png")
    print(f"total: {meta['wall_seconds']:.0f} s wall, {meta['cpu_seconds']:.0f} s CPU (this process, "
          f"{threads} torch thread(s)); wrote {out}/results.csv, summary.json, emergence_ladder.png")
    if args.record:
        shutil.copyfile(out / "results.csv", RECORDED)
        shutil.copyfile(out / "summary.json", RECORDED.with_suffix(".json"))
        shutil.copyfile(out / "emergence_ladder.png", HERE / "emergence_ladder.png")
        print(f"recorded to {RECORDED} (+ .json) and {HERE / 'emergence_ladder.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
