"""``pysearch emergence``: emergence score, smoothness and law extrapolation of metrics vs. scale."""

from __future__ import annotations

import argparse

from pysearch.emergence import analysis

from .common import add_command, add_table_arguments


HELP = "analyse task metrics across model scale: emergence score, smoothness, extrapolation"
DESCRIPTION = """\
Read a CSV with one row per model (a scale column and one or more metric columns). For each metric report
BIG-Bench's emergence score, the share of the change made in the largest single step, the R^2 of a straight
line in log scale, and the extrapolation error of laws (log-linear, power, PassUntil) fitted on the smaller
models to the held-out largest ones; the law is chosen by a backtest on the training models only. Writes
emergence.json and one PNG per metric with --out.
"""  # argparse folds the white space


def register(subparsers) -> None:
    p = add_command(subparsers, run, "emergence", HELP, DESCRIPTION)
    add_table_arguments(p, "results", "CSV file of per-model results with a header row",
                        "the scale column (parameters, FLOPs, ...); values must be > 0")
    p.add_argument("--metric-cols", required=True, help="metric column(s), comma-separated")
    p.add_argument("--holdout", default="largest:1",
                   help="models kept out of the fits: largest:K (default largest:1), COL=VALUE, COL>=VALUE, or none")
    p.add_argument("--where", action="append", default=[], metavar="COL=VALUE",
                   help="keep only rows where COL equals VALUE (repeatable), e.g. --where 'Model Family=Qwen1.5'")
    p.add_argument("--label-col", help="column naming each model (for messages and the JSON)")
    p.add_argument("--n-items", type=int, help="test items per model: reports the resolution 1/(items*tokens)")
    p.add_argument("--answer-tokens", type=int, help="tokens per answer, for the resolution (default 1)")
    p.add_argument("--out", help="directory to write emergence.json and metric_*.png into")
    p.add_argument("--no-plots", action="store_true", help="with --out, write only emergence.json")
    p.add_argument("--quiet", action="store_true", help="do not print the table")


def _fmt(v, spec: str = ".3g") -> str:
    return "-" if v is None else format(v, spec)


def run(args: argparse.Namespace) -> int:
    if args.n_items is not None and args.n_items < 1:
        raise ValueError(f"--n-items must be >= 1, got {args.n_items}")
    if args.answer_tokens is not None and args.answer_tokens < 1:
        raise ValueError(f"--answer-tokens must be >= 1, got {args.answer_tokens}")
    table = analysis.read_results(
        args.results,
        args.x.strip(),
        args.metric_cols.split(","),
        holdout=args.holdout,
        where=args.where,
        label_col=args.label_col,
    )
    report = analysis.analyze(table, n_items=args.n_items, answer_tokens=args.answer_tokens)
    if not args.quiet:
        held = ", ".join(report["holdout_models"]) or "none"
        print(f"{report['n_models']} models, scale column {report['x']!r}; held out: {held}")
        for d in report["dropped_rows"]:
            print(f"  dropped data row {d['row']}: {d['reason']}")
        head = f"{'metric':<24} {'emergence':>10} {'step share':>10} {'R2 log':>7} {'law':>10} {'holdout err':>11}"
        print(head)
        print("-" * len(head))
        for name, rep in report["metrics"].items():
            score = "inf" if rep["emergence_score_infinite"] else _fmt(rep["emergence_score"])
            print(
                f"{name[:24]:<24} {score:>10} {_fmt(rep['step_share'], '.2f'):>10} "
                f"{_fmt(rep['loglinear_r2'], '.2f'):>7} {rep['selected_law'] or '-':>10} "
                f"{_fmt(rep['holdout_error']):>11}"
            )
        if report["most_predictable"]:
            print(f"most predictable across scale (lowest holdout error): {report['most_predictable']}")
    if args.out:
        path = analysis.write_report(report, args.out, plots=not args.no_plots)
        if not args.quiet:
            print(f"wrote {path}")
    return 0
