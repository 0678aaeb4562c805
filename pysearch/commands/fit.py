"""``pysearch fit``: fit a known scaling law with bootstrap intervals, or discover one (--form auto)."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Iterator

import numpy as np

from pysearch.laws import data as law_data
from pysearch.laws import discovery, fitting, forms, report, selection, simplify

from .common import add_command, add_table_arguments, parse_duration

TRANSFORMS = {"none": "linear", "log-y": "log", "loglog-y": "loglog"}
#: --form auto with --budget: programs evaluated per second of budget (the budget becomes a fixed
#: number of generations, so a run is reproducible from --seed; see generations_for_budget).
EVALS_PER_SECOND = 100.0
SPACE_NAMES = {v: k for k, v in TRANSFORMS.items()}


HELP = "fit a scaling law (chinchilla, kaplan, power, bnsl, passuntil, muennighoff) or discover one"
DESCRIPTION = """\
Fit a known scaling-law form with Huber loss (delta 1e-3) in log space by L-BFGS from a grid of starts, with
bootstrap confidence intervals; or, with --form auto, discover a form by symbolic regression (NSGA-II on
complexity and error). Reports train error and the extrapolation error on held-out rows; writes fit.json and
fit.png with --out.
"""  # argparse folds the white space


def register(subparsers) -> None:
    p = add_command(subparsers, run, "fit", HELP, DESCRIPTION)
    add_table_arguments(p, "data", "CSV file with a header row",
                        "input column(s), comma-separated, in the form's order (chinchilla: N,D)")
    p.add_argument("--y", required=True, help="the column to predict (e.g. loss)")
    p.add_argument(
        "--form",
        choices=forms.FORM_NAMES + ("auto",),
        default=None,
        help="law form (default: chinchilla for two --x columns, power otherwise); auto = symbolic regression",
    )
    p.add_argument(
        "--transform",
        choices=tuple(TRANSFORMS),
        default=None,
        help="space the residuals are measured in (default: the form's: log-y; loglog-y for passuntil)",
    )
    p.add_argument(
        "--holdout",
        help="rows kept out of the fit to measure extrapolation: largest:K (K largest values of the first --x), "
        "largest:K:COL, COL=VALUE, COL>=VALUE or COL>VALUE",
    )
    p.add_argument("--loss", choices=fitting.LOSSES, default="huber", help="huber (default) or lsq (least squares)")
    p.add_argument("--huber-delta", type=float, default=1e-3, help="Huber delta in residual units (default 1e-3)")
    p.add_argument("--bootstrap", type=int, default=200, metavar="B", help="bootstrap resamples for CIs (0: none; default 200)")
    p.add_argument("--starts", type=int, default=6, help="local optimisations from the best grid points (default 6)")
    p.add_argument("--max-iter", type=int, default=3000, help="iteration limit of each local optimisation")
    p.add_argument("--breaks", type=int, default=1, help="number of breaks for --form bnsl (default 1)")
    p.add_argument("--budget", help="time budget, e.g. 90s or 5m (auto: search time, default 60s; known forms: bootstrap cap)")
    p.add_argument("--generations", type=int, help="auto: stop after this many generations (reproducible with --seed)")
    p.add_argument(
        "--evals-per-second",
        type=float,
        default=EVALS_PER_SECOND,
        help="auto: the budget buys this many program evaluations per second, as whole generations, so a "
        "budgeted run is reproducible from --seed (default %(default)g; 0: stop by the wall clock instead)",
    )
    p.add_argument("--target-error", type=float, help="auto: stop once a program's search error is at most this (RMSE in the fit space with --loss lsq; mean Huber/delta with huber)")
    p.add_argument(
        "--select",
        choices=("extrapolation", "knee"),
        default="extrapolation",
        help="auto: how to choose from the Pareto front using training rows only (default: extrapolation, "
        "cross-validated backtests at several cut points of the column --holdout names, else the first --x)",
    )
    p.add_argument("--population", type=int, default=64, help="auto: population size (default 64)")
    p.add_argument(
        "--seed-power",
        action="store_true",
        help="auto: start the search from power laws too (c + a x^-b per input, and their sum over the inputs)",
    )
    p.add_argument("--max-instrs", type=int, default=8, help="auto: instructions per program at most (default 8)")
    p.add_argument("--ops", default=",".join(discovery.LAW_OPS), help="auto: ops to search over (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed for the bootstrap and the search (default 0)")
    p.add_argument("--out", help="directory to write fit.json and fit.png into")
    p.add_argument("--quiet", action="store_true", help="do not print the tables")


def run(args: argparse.Namespace) -> int:
    x_cols = [c.strip() for c in args.x.split(",")]
    ds = law_data.load_dataset(args.data, x_cols, args.y.strip(), args.holdout)
    form_name = args.form or ("chinchilla" if len(x_cols) == 2 else "power")
    budget = parse_duration(args.budget) if args.budget else None
    if args.bootstrap < 0 or args.bootstrap == 1:
        raise ValueError(f"--bootstrap must be 0 or at least 2, got {args.bootstrap}")
    common = {
        "data": str(args.data),
        "inputs": list(ds.x_names),
        "y": ds.y_name,
        "n_train": int((~ds.holdout).sum()),
        "n_holdout": int(ds.holdout.sum()),
        "holdout_rule": args.holdout,
        "seed": args.seed,
    }
    if form_name == "auto":
        doc, predict = _run_auto(args, ds, budget, common)
    else:
        doc, predict = _run_form(args, ds, form_name, budget, common)
    if not args.quiet:
        report.print_table(doc)
    elif doc.get("unidentified"):  # a warning --quiet does not hide
        print(f"pysearch fit: warning: the data do not constrain {', '.join(doc['unidentified'])}", file=sys.stderr)
    if args.out:
        out = report.make_output_dir(args.out)
        report.write_json(out / "fit.json", doc)
        title = f"{doc['form']}: {doc.get('expression_fitted', doc['expression'])}   train {doc['error_metric']} = {doc['train_error']:.4g}"
        if doc["holdout_error"] is not None:
            title += f", held out = {doc['holdout_error']:.4g}"
        report.plot_fit(out / "fit.png", ds.X, ds.y, ds.holdout, ds.x_names, ds.y_name, predict, title)
        if not args.quiet:
            print(f"wrote {out / 'fit.json'} and {out / 'fit.png'}", file=sys.stderr)
    return 0


def _space(args, default: str) -> str:
    return TRANSFORMS[args.transform] if args.transform else default


@contextlib.contextmanager
def bootstrap_progress(total: int, stream=None, enabled: bool = True) -> Iterator[Callable[[int, int, int], None]]:
    """Yield a ``progress(done, total, failed)`` callback for :func:`pysearch.laws.fitting.bootstrap`.

    It shows progress on ``stream`` (default stderr): a rich bar on a terminal, else one line at
    every tenth of the refits; nothing when not ``enabled``.
    """
    stream = stream if stream is not None else sys.stderr
    if not enabled or total <= 0:
        yield lambda done, total, failed: None
        return
    if not stream.isatty():
        step = max(1, total // 10)

        def line(done: int, total: int, failed: int) -> None:
            if done % step == 0 or done == total:
                print(f"bootstrap: {done}/{total} refits ({failed} failed)", file=stream, flush=True)

        yield line
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    columns = (TextColumn("bootstrap"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[failed]} failed"))
    with Progress(*columns, TimeRemainingColumn(), console=Console(file=stream), transient=True) as bar:
        task = bar.add_task("bootstrap", total=total, failed=0)
        yield lambda done, total, failed: bar.update(task, completed=done, failed=failed)


def _run_form(args, ds, form_name, budget, common):
    form = forms.make_form(form_name, ds.x_names, n_breaks=args.breaks)
    space = _space(args, form.default_space)
    with bootstrap_progress(args.bootstrap, enabled=not args.quiet) as progress:
        lf = fitting.fit_law(
            ds,
            form,
            space=space,
            loss=args.loss,
            delta=args.huber_delta,
            n_boot=args.bootstrap,
            seed=args.seed,
            n_starts=args.starts,
            max_iter=args.max_iter,
            time_budget_s=budget,
            progress=progress,
        )
    r = lf.result
    doc = report.fit_document(
        form_name,
        form.expression(),
        r.params,
        r.ci,
        lf.train_errors,
        lf.holdout_errors,
        lf.error_metric,
        expression_fitted=r.expression(),
        ci_level=r.ci_level if r.ci else None,
        n_boot=0 if r.boot_samples is None else int(len(r.boot_samples)),
        n_boot_failed=r.n_boot_failed,
        transform=SPACE_NAMES[space],
        loss=args.loss,
        huber_delta=args.huber_delta if args.loss == "huber" else None,
        optimizer="L-BFGS-B from the best grid starts, polished by trust-region least squares; bootstrap refits by trust-region",
        objective=r.objective,
        at_bound=r.at_bound,
        ci_at_bound=r.ci_at_bound,
        unidentified=r.unidentified,
        jacobian_condition=r.jacobian_condition,
        **common,
    )
    return doc, r.predict


def _run_auto(args, ds, budget, common):
    Xtr, ytr = ds.train
    default_space = "log" if np.all(ds.y > 0) else "linear"
    space = _space(args, default_space)
    forms._check_y_domain(ds.y, space)
    ops = tuple(o.strip() for o in args.ops.split(",") if o.strip())
    generations, wall_s = generations_for_budget(args.generations, budget, args.population, args.evals_per_second)
    res = discovery.discover(
        Xtr,
        ytr,
        ds.x_names,
        space=space,
        ops=ops,
        max_instrs=args.max_instrs,
        population=args.population,
        generations=generations,
        budget_s=wall_s,
        seed=args.seed,
        target_error=args.target_error,
        select=args.select,
        loss=args.loss,
        delta=args.huber_delta,
        axis=selection.holdout_axis(args.holdout, ds.x_names),
        seeds=forms.power_seed_programs(discovery.program_inputs(ds.x_names), args.max_instrs) if args.seed_power else (),
    )
    if generations is not None and res.generations < generations and res.elapsed_s > wall_s:
        print(f"pysearch fit: warning: the wall-clock backstop ({wall_s:g} s) stopped the search after "
              f"{res.generations} of {generations} generations; this run is not reproducible", file=sys.stderr)
    chosen = res.chosen.program  # over scaled inputs
    raw = res.raw_program(chosen)  # the same law over the raw columns
    names = [f"c{i + 1}" for i in range(len(chosen.constants()))]
    shown = res.scaled_names()
    Xtr_scaled = Xtr / np.array(res.scales)[:, None]
    ci, failed = discovery.bootstrap_constants(
        chosen, Xtr_scaled, ytr, space, args.bootstrap, args.seed, loss=args.loss, delta=args.huber_delta
    )

    def predict(X):
        return discovery.engine_evaluate([raw], np.atleast_2d(X))[0]

    metric = fitting.primary_metric(ds.y)
    train = fitting.error_metrics(ytr, predict(Xtr))
    hold = fitting.error_metrics(ds.test[1], predict(ds.test[0])) if ds.holdout.any() else None
    front_rows = []
    for i, c in enumerate(res.front):
        p_raw = res.raw_program(c.program)
        row = {
            "complexity": c.complexity,
            "train_error": fitting.error_metrics(ytr, discovery.engine_evaluate([p_raw], Xtr)[0]).get(metric),
            "expression": discovery.infix(c.program, inputs=shown),
            "program": p_raw.to_text(),
            "chosen": c is res.chosen,
        }
        if res.inner_errors is not None:
            row["inner_extrapolation_error"] = res.inner_errors[i]
        if ds.holdout.any():
            Xte, yte = ds.test
            row["holdout_error"] = fitting.error_metrics(yte, discovery.engine_evaluate([p_raw], Xte)[0]).get(metric)
        front_rows.append(row)
    doc = report.fit_document(
        "auto",
        discovery.infix(chosen, consts=names, inputs=shown),
        dict(zip(names, chosen.constants())),
        ci,
        train,
        hold,
        metric,
        expression_fitted=discovery.infix(chosen, inputs=shown),
        **_sympy_fields(raw, ds.x_names, Xtr),
        input_scales=dict(zip(ds.x_names, res.scales)),
        ci_level=0.95 if ci else None,
        n_boot=args.bootstrap,
        n_boot_failed=failed,
        transform=SPACE_NAMES[space],
        loss=args.loss,
        huber_delta=args.huber_delta if args.loss == "huber" else None,
        program=raw.to_json_obj(),
        complexity=res.chosen.complexity,
        selection_rule=res.rule,
        pareto=front_rows,
        search={
            "generations": res.generations,
            "programs_fitted": res.fitted,
            "elapsed_s": round(res.elapsed_s, 3),
            "population": args.population,
            "max_instrs": args.max_instrs,
            "ops": list(ops),
            "budget_s": budget if budget is not None else 60.0,
            "generations_limit": generations,
            "evals_per_second": args.evals_per_second if args.generations is None else None,
            "holdout_axis": ds.x_names[selection.holdout_axis(args.holdout, ds.x_names)],
        },
        **common,
    )
    return doc, predict


def generations_for_budget(
    generations: int | None, budget_s: float | None, population: int, evals_per_second: float
) -> tuple[int | None, float]:
    """(generation limit, wall-clock limit in s) for ``--form auto``.

    ``--generations`` wins; else ``--budget`` (default 60 s) buys ``evals_per_second`` program
    evaluations per second as whole generations of ``population``, at least one, so the same
    seed gives the same run on any machine. The wall clock is then only a backstop at 10x the
    budget (a run it stops is reported as not reproducible). ``evals_per_second=0`` stops by the
    wall clock at the budget instead.
    """
    budget = 60.0 if budget_s is None else float(budget_s)
    if generations is not None:
        if generations < 0:
            raise ValueError(f"--generations must be >= 0, got {generations}")
        return generations, budget if budget_s is not None else float("inf")
    if evals_per_second < 0 or evals_per_second != evals_per_second:
        raise ValueError(f"--evals-per-second must be >= 0, got {evals_per_second}")
    if evals_per_second == 0:
        return None, budget
    return max(1, round(budget * evals_per_second / population)), 10.0 * budget


def _sympy_fields(program, names, X) -> dict:
    """The law as simplified sympy text (rounded, and exact), when it has an algebraic form."""
    try:
        expr = simplify.simplified(program, discovery.program_inputs(names), X)
    except simplify.SimplifyError:
        return {}
    return {"expression_simplified": simplify.law_text(expr), "expression_sympy": simplify.sympy_text(expr)}
