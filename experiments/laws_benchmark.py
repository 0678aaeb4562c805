"""Law discovery that extrapolates: pysearch against pyoperon on public scaling data, held-out scale.

    python experiments/laws_benchmark.py [--budget 20] [--seeds 0,1,2] [--tasks chinchilla,moe,...]
                                         [--out runs/laws_benchmark]

Tasks (data/README.md has each file's origin); every split is fixed and holds out the largest
scale, nothing about the held-out rows is used by any method:

- ``chinchilla``: Epoch AI's replication data (245 runs read from Chinchilla's Figure 4), loss vs
  N and D = FLOP / 6N; held out: the largest model sizes (as few as cover 10% of the rows).
- ``data_constrained``: Muennighoff et al.'s runs (SLD copy), loss vs N, D (tokens trained), U
  (unique tokens); held out: the two largest model sizes.
- ``vocab``: SLD vocabulary runs, unigram-normalised loss (negative: fitted in y, not log y) vs
  non-vocabulary parameters, vocabulary size, characters; held out: the largest model size.
- ``bnsl_addition``: 4-digit addition cross-entropy vs training-set size; held out: the file's
  3 extrapolation points.
- ``moe``: Clark et al.'s mixture-of-experts runs (SLD copy, final step 249000), loss vs dense
  parameters N and experts E; held out: the largest N (SLD's split).
- ``lr_bsz``: SLD dense runs, smoothed loss (rows <= 4, SLD's filter) vs learning rate, batch
  size, D, N; held out: the largest D or N (SLD's split); the backtest axis is N.
- ``rectified``: fine-tuning loss on FLAN vs examples for the file's first model; held out: the
  largest size (819200 examples, SLD's split).

Methods, each on the training rows only:

- ``auto``: ``pysearch.laws.discovery.discover`` (symbolic regression over the inputs, Huber loss
  delta 1e-3 on log y, law chosen from the front by cross-validated extrapolation along the task's
  axis with the range guard) with a wall-clock budget of ``--budget`` seconds.
  With ``--seed-power`` the search also starts from power laws (``pysearch fit --seed-power``).
- ``form``: the task's known form (``pysearch.laws.fitting.fit``, Huber on log y, grid + L-BFGS).
- ``ours``: of ``auto`` and ``form``, the one with the lower cross-validated inner-extrapolation
  error on the training rows (``pysearch.laws.selection.cv_extrapolation_score``): the law a
  user of pysearch would be handed without seeing the held-out rows.
- ``operon``: pyoperon's ``SymbolicRegressor`` (NSGA-II on R^2 and length, LM constants, its
  default minimum-description-length choice from the front) on log features and log y (y itself
  where y is not positive), ``max_time`` = ``--budget``, one thread. Skipped with a message when
  pyoperon is not installed (``pip install pyoperon``).

Both searches get the same wall time and one thread each (RAYON_NUM_THREADS=1 for our core).
Held-out error: RMSE of log y (y > 0), else RMSE of y; per task the median over the seeds.
A task is a win when ours < operon; the ratio is ours / operon (< 1 is better). Prints the
per-task table and

    RESULT laws_heldout_wins_vs_operon=<k>/<n> laws_median_heldout_ratio_vs_operon=<r> law_programs_per_cpu_s=<m>

plus a line with Operon's program rate (generations x pool size per CPU second, its own counter
stays 0) and the ratio. Timings on a shared machine are noisy.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from pysearch.laws import discovery, fitting, forms, selection, simplify  # noqa: E402
from pysearch.laws.constant_fit import ConstKernel, fit_constants  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"


@dataclass
class Task:
    name: str
    names: tuple[str, ...]
    X: np.ndarray  # (k, n)
    y: np.ndarray
    holdout: np.ndarray
    axis: int
    form: str
    note: str = ""

    @property
    def space(self) -> str:
        return "log" if np.all(self.y > 0) else "linear"

    @property
    def train(self):
        return self.X[:, ~self.holdout], self.y[~self.holdout]

    @property
    def test(self):
        return self.X[:, self.holdout], self.y[self.holdout]


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _col(rows, name) -> np.ndarray:
    return np.array([float(r[name]) for r in rows])


def _chinchilla() -> Task:
    r = _rows(DATA / "epoch_chinchilla_svg_extracted_data.csv")
    N, C, y = _col(r, "Model Size"), _col(r, "Training FLOP"), _col(r, "loss")
    return Task("chinchilla", ("N", "D"), np.array([N, C / (6 * N)]), y, selection.largest_rows(N, 0.1), 0, "chinchilla")


def _data_constrained() -> Task:
    r = _rows(DATA / "sld_data_constrained_scaling_law_data.csv")
    N, D, U, y = _col(r, "params"), _col(r, "unique_tokens"), _col(r, "tokens"), _col(r, "loss")
    return Task("data_constrained", ("N", "D", "U"), np.array([N, D, U]), y, N >= np.unique(N)[-2], 0, "muennighoff")


def _vocab() -> Task:
    r = _rows(DATA / "sld_vocab_scaling_law_data.csv")
    P, V, Ch, y = _col(r, "Non_vocab_parameters"), _col(r, "vocab_size"), _col(r, "num_characters"), _col(r, "Lossu")
    return Task("vocab", ("P", "V", "C"), np.array([P, V, Ch]), y, P == P.max(), 0, "power")


def _bnsl_addition() -> Task:
    r = _rows(DATA / "bnsl_4digit_addition_ce_vs_dataset_size.csv")
    xs, ys = _col(r, "train_dataset_size"), _col(r, "test_cross_entropy")
    split = np.array([row["split"].strip() != "train" for row in r])
    return Task("bnsl_addition", ("x",), xs[None], ys, split, 0, "bnsl")


def _moe() -> Task:
    r = [row for row in _rows(DATA / "sld_moe_scaling_law_data.csv") if float(row["step"]) == 249000]
    N, E, y = _col(r, "dense_parameter_count"), _col(r, "num_experts"), _col(r, "loss_validation")
    return Task("moe", ("N", "E"), np.array([N, E]), y, N == N.max(), 0, "moe_offset")


def _lr_bsz() -> Task:
    r = [row for row in _rows(DATA / "sld_lr_bsz_dense_lr_bs_loss.csv") if float(row["smooth loss"]) <= 4.0]
    lr, bs, D, N, y = (_col(r, c) for c in ("lr", "bs", "D", "N", "smooth loss"))
    return Task("lr_bsz", ("lr", "bs", "D", "N"), np.array([lr, bs, D, N]), y, (D == D.max()) | (N == N.max()), 3,
                "lr_bsz")


def _rectified() -> Task:
    r = _rows(DATA / "sld_rectified_flan.csv")
    sizes = np.array([float(k) for k in list(r[0])[1:]])
    loss = np.array([float(v) for v in list(r[0].values())[1:]])
    return Task("rectified", ("D",), sizes[None], loss, sizes == sizes.max(), 0, "rectified", r[0]["model"])


LOADERS = {
    "chinchilla": _chinchilla,
    "data_constrained": _data_constrained,
    "vocab": _vocab,
    "bnsl_addition": _bnsl_addition,
    "moe": _moe,
    "lr_bsz": _lr_bsz,
    "rectified": _rectified,
}


def load_tasks(names=None) -> list[Task]:
    return [LOADERS[n]() for n in (names or LOADERS)]


def heldout_error(y: np.ndarray, pred: np.ndarray) -> float:
    m = fitting.error_metrics(y, pred)
    return m[fitting.primary_metric(y)]


@dataclass
class Run:
    error: float
    cv: float = math.nan
    law: str = ""
    fitted: int = 0
    cpu_s: float = 0.0
    wall_s: float = 0.0
    extra: dict = field(default_factory=dict)


def run_auto(task: Task, seed: int, budget: float, seed_power: bool = False) -> Run:
    Xtr, ytr = task.train
    seeds = forms.power_seed_programs(discovery.program_inputs(task.names)) if seed_power else ()
    t0, c0 = time.perf_counter(), time.process_time()
    res = discovery.discover(Xtr, ytr, task.names, space=task.space, budget_s=budget, seed=seed, loss="huber",
                             axis=task.axis, patience=None, seeds=seeds)
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    raw = res.raw_program(res.chosen.program)
    Xte, yte = task.test
    pred = discovery.engine_evaluate([raw], Xte)[0]
    scales = np.array(res.scales)[:, None]
    prog = res.chosen.program

    def fit_predict(Xf, yf, Xp):
        q = fit_constants(prog, [np.ascontiguousarray(c) for c in Xf / scales], _space(yf, task.space), task.space,
                          max_nfev=200, loss="huber")
        return ConstKernel(q)(np.array(q.constants()), [np.ascontiguousarray(c) for c in Xp / scales])[0]

    cv = selection.cv_extrapolation_score(fit_predict, Xtr, ytr, task.space, task.axis)
    try:
        law = simplify.law_text(simplify.simplified(raw, discovery.program_inputs(task.names), Xtr), 4)
    except simplify.SimplifyError:
        law = discovery.infix(raw)
    return Run(heldout_error(yte, pred), cv, law, res.fitted, cpu, wall, {"generations": res.generations})


def _space(y, space):
    return forms.to_space(y, space)


def run_form(task: Task) -> Run:
    Xtr, ytr = task.train
    form = forms.make_form(task.form, task.names)
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        r = fitting.fit(form, Xtr, ytr, task.space)
    except (fitting.FitError, ValueError) as e:
        return Run(math.inf, math.inf, f"fit failed: {e}")
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    Xte, yte = task.test

    def fit_predict(Xf, yf, Xp):
        return fitting.fit(form, Xf, yf, task.space).predict(Xp)

    cv = selection.cv_extrapolation_score(fit_predict, Xtr, ytr, task.space, task.axis)
    return Run(heldout_error(yte, r.predict(Xte)), cv, r.expression(), 0, cpu, wall)


def _operon_features(X: np.ndarray) -> np.ndarray:
    return np.array([np.log(c) if np.all(c > 0) else c for c in X]).T


def run_operon(task: Task, seed: int, budget: float) -> Run:
    from pyoperon.sklearn import SymbolicRegressor

    Xtr, ytr = task.train
    Xte, yte = task.test
    logy = task.space == "log"
    reg = SymbolicRegressor(
        allowed_symbols="add,sub,mul,div,exp,log,constant,variable",
        objectives=["r2", "length"],
        max_time=int(budget),
        generations=10**7,
        max_evaluations=10**12,
        n_threads=1,
        random_state=seed,
    )
    t0, c0 = time.perf_counter(), time.process_time()
    reg.fit(_operon_features(Xtr), np.log(ytr) if logy else ytr)
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    with np.errstate(all="ignore"):
        p = np.asarray(reg.predict(_operon_features(Xte)), dtype=np.float64)
        pred = np.exp(p) if logy else p
    names = [f"log({n})" if np.all(c > 0) else n for n, c in zip(task.names, task.X)]
    law = reg.get_model_string(reg.model_, 4, names)
    programs = int(reg.stats_.get("generations", 0)) * int(reg.pool_size or reg.population_size)
    return Run(heldout_error(yte, pred), math.nan, ("log y = " if logy else "y = ") + law, programs, cpu, wall)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--budget", type=float, default=20.0, help="seconds per search (auto and operon), default 20")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--tasks", default=None, help="comma-separated subset of the task names")
    ap.add_argument("--out", default=None, help="write results.json here")
    ap.add_argument("--seed-power", action="store_true", help="start auto from power laws too (fit --seed-power)")
    args = ap.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    want = args.tasks.split(",") if args.tasks else list(LOADERS)
    unknown = sorted(set(want) - set(LOADERS))
    if unknown:
        print(f"laws_benchmark: unknown task(s) {unknown}; tasks: {list(LOADERS)}", file=sys.stderr)
        return 2
    tasks = load_tasks(want)
    try:
        import pyoperon  # noqa: F401

        have_operon = True
    except ImportError:
        have_operon = False
        print("pyoperon is not installed (pip install pyoperon): running pysearch only, no RESULT comparison")
    print(("auto starts from power laws too (--seed-power); " if args.seed_power else "") + f"budget {args.budget:g} s per search, seeds {seeds}, one thread per search; timings on a shared machine are noisy")
    rows, doc = [], []
    tot_fit, tot_cpu, op_prog, op_cpu = 0, 0.0, 0, 0.0
    for task in tasks:
        form = run_form(task)
        autos, ours, ops = [], [], []
        for s in seeds:
            a = run_auto(task, s, args.budget, args.seed_power)
            autos.append(a)
            tot_fit, tot_cpu = tot_fit + a.fitted, tot_cpu + a.cpu_s
            ours.append(a if a.cv <= form.cv else form)
            if have_operon:
                o = run_operon(task, s, args.budget)
                ops.append(o)
                op_prog, op_cpu = op_prog + o.fitted, op_cpu + o.cpu_s
            print(f"  {task.name} seed {s}: auto {a.error:.4g} (cv {a.cv:.3g}, {a.extra['generations']} gen), "
                  f"form {form.error:.4g} (cv {form.cv:.3g})" + (f", operon {ops[-1].error:.4g}" if ops else ""),
                  flush=True)
        med = lambda runs: float(np.median([r.error for r in runs])) if runs else math.nan  # noqa: E731
        row = {
            "task": task.name, "n_train": int((~task.holdout).sum()), "n_heldout": int(task.holdout.sum()),
            "auto": med(autos), "form": form.error, "ours": med(ours), "operon": med(ops),
            "ours_picks": "".join("a" if r in autos else "f" for r in ours),
            "auto_law": autos[0].law, "form_law": form.law, "operon_law": ops[0].law if ops else "",
        }
        row["ratio"] = row["ours"] / row["operon"] if ops and row["operon"] > 0 else math.nan
        rows.append(row)
        doc.append(row)
    hdr = f"{'task':17} {'train':>5} {'held':>4} {'auto':>9} {'form':>9} {'ours':>9} {'picks':>5} {'operon':>9} {'ratio':>7}"
    print("\nheld-out error (RMSE of log y; vocab: RMSE of y), median over seeds")
    print(hdr)
    for r in rows:
        print(f"{r['task']:17} {r['n_train']:5d} {r['n_heldout']:4d} {r['auto']:9.4g} {r['form']:9.4g} {r['ours']:9.4g} "
              f"{r['ours_picks']:>5} {r['operon']:9.4g} {r['ratio']:7.3g}")
    print("\nlaws (seed 0):")
    for r in rows:
        print(f"  {r['task']}: auto  {r['auto_law']}\n  {' ' * len(r['task'])}  form  {r['form_law']}")
        if r["operon_law"]:
            print(f"  {' ' * len(r['task'])}  operon {r['operon_law']}")
    rate = tot_fit / tot_cpu if tot_cpu > 0 else math.nan
    if have_operon:
        wins = sum(r["ours"] < r["operon"] for r in rows)
        ratios = [r["ratio"] for r in rows]
        med_ratio = float(np.median(ratios))
        op_rate = op_prog / op_cpu if op_cpu > 0 else math.nan
        auto_wins = sum(r["auto"] < r["operon"] for r in rows)
        auto_ratio = float(np.median([r["auto"] / r["operon"] for r in rows]))
        print(f"\nauto alone vs operon: wins {auto_wins}/{len(rows)}, median held-out ratio {auto_ratio:.3g}")
        form_wins = sum(r["form"] < r["operon"] for r in rows)
        print(f"known form alone vs operon: wins {form_wins}/{len(rows)}, "
              f"median held-out ratio {float(np.median([r['form'] / r['operon'] for r in rows])):.3g}")
        print(f"operon programs per CPU s (generations x pool size): {op_rate:.4g}; ours / operon = {rate / op_rate:.3g}")
        print(f"RESULT laws_heldout_wins_vs_operon={wins}/{len(rows)} laws_median_heldout_ratio_vs_operon={med_ratio:.3g} "
              f"law_programs_per_cpu_s={rate:.4g}")
    else:
        print(f"\nlaw_programs_per_cpu_s={rate:.4g} (no operon: no RESULT line)")
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(json.dumps({"schema_version": 1, "budget_s": args.budget, "seeds": seeds,
                                                      "rows": doc}, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
