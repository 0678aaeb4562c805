"""``pysearch emergence``: emergence score, smoothness and law extrapolation of metrics vs. scale."""

from __future__ import annotations

import argparse

from pysearch.emergence import analysis
from pysearch.emergence.links import MetricRangeError, parse_metric_range

from .common import add_command, add_table_arguments


HELP = "analyse task metrics across model scale: emergence score, smoothness, extrapolation"
DESCRIPTION = """\
Read a CSV with one row per model (a scale column and one or more metric columns). For each metric report
BIG-Bench's emergence score, the share of the change made in the largest single step, the R^2 of a straight
line in log scale, and the extrapolation error of laws (log-linear, power, PassUntil) fitted on the smaller
models to the held-out largest ones; the law is chosen by extrapolation cross-validation over several cut
points on the scale axis, on the training models only. Bounded metrics (accuracies in [0, 1]; 0-100 scores
with --metric-range or a BLEU/ROUGE/percent name) are fitted through a logit link (log(-log) for PassUntil),
optionally above a chance level, so predictions stay in range; scores of exactly 0 or 1 (or at/below chance)
are clipped to 1/(2*n_items) (default 1/2000) and listed. --capability fits a capability space across the
metrics (PCA of logit scores, linear in log scale within each --family-col family) and compares its held-out
errors with the direct per-metric laws; --target predicts one metric from the others. Writes emergence.json
(or capability.json) and one PNG per metric with --out.
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
    p.add_argument("--n-items", type=int,
                   help="test items per model: reports the resolution 1/(items*tokens); 0/1 scores clip to 1/(2*items)")
    p.add_argument("--answer-tokens", type=int, help="tokens per answer, for the resolution (default 1)")
    p.add_argument("--metric-range", nargs="+", metavar="BOUND",
                   help="range of every metric: two numbers (e.g. 0 1, or 0 100 for percentages and BLEU), 'none' "
                        "(unbounded) or 'auto' (default: [0, 1] if every value is; [0, 100] for names like BLEU, "
                        "ROUGE, percent whose values exceed 1). Bounded metrics are fitted through a logit / "
                        "log(-log) link so predictions stay in range")
    p.add_argument("--chance", action="append", default=[], metavar="[COL=]LEVEL",
                   help="chance level of a multiple-choice metric (accuracy = chance + (1-chance) * sigmoid(...)); "
                        "LEVEL alone applies to every metric (repeatable)")
    p.add_argument("--capability", action="store_true",
                   help="capability-space analysis across the metric columns (observational scaling laws): PCA "
                        "of logit scores, each component linear in log scale within a family; needs --family-col")
    p.add_argument("--family-col", help="column naming each model's family (for --capability)")
    p.add_argument("--components", type=int, default=None,
                   help="principal capability components for --capability (default: 3, at most the metric count)")
    p.add_argument("--target", metavar="COL",
                   help="with --capability: predict this metric of the held-out models from their scores on the "
                        "other metric columns (observational scaling law) instead of from scale alone")
    p.add_argument("--out", help="directory to write emergence.json and metric_*.png into")
    p.add_argument("--no-plots", action="store_true", help="with --out, write only emergence.json")
    p.add_argument("--quiet", action="store_true", help="do not print the table")


def _parse_chance(items: list[str]) -> float | dict[str, float] | None:
    """``--chance`` values: one LEVEL for all metrics, or COL=LEVEL items."""
    if not items:
        return None
    per: dict[str, float] = {}
    common = None
    for item in items:
        col, _, level = item.rpartition("=")
        try:
            value = float(level)
        except ValueError:
            raise MetricRangeError(f"bad --chance {item!r}: expected LEVEL or COL=LEVEL with a number") from None
        if col.strip():
            per[col.strip()] = value
        elif common is None:
            common = value
        else:
            raise MetricRangeError("--chance LEVEL without a column is given twice")
    if common is not None and per:
        raise MetricRangeError("give --chance either as one LEVEL for every metric or as COL=LEVEL items, not both")
    return common if common is not None else per


def _fmt(v, spec: str = ".3g") -> str:
    return "-" if v is None else format(v, spec)


def run(args: argparse.Namespace) -> int:
    if args.n_items is not None and args.n_items < 1:
        raise ValueError(f"--n-items must be >= 1, got {args.n_items}")
    if args.answer_tokens is not None and args.answer_tokens < 1:
        raise ValueError(f"--answer-tokens must be >= 1, got {args.answer_tokens}")
    metric_range = parse_metric_range(args.metric_range)
    chance = _parse_chance(args.chance)
    if args.capability and not args.family_col:
        raise ValueError("--capability needs --family-col (the column naming each model's family)")
    if args.components is not None and not args.capability:
        raise ValueError("--components applies to --capability only")
    if args.target is not None and not args.capability:
        raise ValueError("--target applies to --capability only")
    table = analysis.read_results(
        args.results,
        args.x.strip(),
        args.metric_cols.split(","),
        holdout=args.holdout,
        where=args.where,
        label_col=args.label_col,
        family_col=args.family_col,
    )
    if args.capability:
        return _run_capability(args, table, metric_range, chance)
    report = analysis.analyze(table, n_items=args.n_items, answer_tokens=args.answer_tokens,
                              metric_range=metric_range, chance=chance)
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
        for name, rep in report["metrics"].items():
            if rep.get("clipped"):
                pts = ", ".join(f"{c['y']:g} at {c['x']:g}" for c in rep["clipped"][:6])
                more = f" and {len(rep['clipped']) - 6} more" if len(rep["clipped"]) > 6 else ""
                print(f"  {name}: clipped for the link to resolution {rep['scale']['clip_resolution']:g}: {pts}{more}")
        if report["most_predictable"]:
            print(f"most predictable across scale (lowest holdout error): {report['most_predictable']}")
    if args.out:
        path = analysis.write_report(report, args.out, plots=not args.no_plots)
        if not args.quiet:
            print(f"wrote {path}")
    return 0


def _write_json(report: dict, out: str, name: str, quiet: bool) -> None:
    import json

    from pysearch.fileio import write_atomic
    from pysearch.laws.report import make_output_dir

    path = make_output_dir(out) / name
    write_atomic(path, lambda fh: json.dump(analysis.to_json(report), fh, indent=2))
    if not quiet:
        print(f"wrote {path}")


def _run_observational(args: argparse.Namespace, table, metric_range, chance) -> int:
    from pysearch.emergence.capability import observational_analysis

    report = observational_analysis(table, args.target.strip(), n_components=args.components,
                                    metric_range=metric_range, chance=chance, n_items=args.n_items)
    if not args.quiet:
        print(f"{report['target']} of {len(report['holdout_models'])} held-out models from {report['components']} "
              f"capability components of {', '.join(report['predictors'])} (fitted on {report['n_train']} models)")
        head = f"{'model':<40} {'value':>7} {'observ.':>8} {'capab.':>8} {'direct':>8} {'family':>8}"
        print(head)
        print("-" * len(head))
        p = report["pred"]
        for i, name in enumerate(report["holdout_models"]):
            cells = [report["truth"][i], p["observational"][i], p["capability"][i], p["direct_law"][i],
                     p["direct_family"][i]]
            mark = "" if report["scored"][i] else "  (not scored)"
            print(f"{name[:40]:<40} " + " ".join(f"{_fmt(v):>{w}}" for v, w in zip(cells, (7, 8, 8, 8, 8))) + mark)
        m = report["mae"]
        print(f"{'mean absolute error':<40} {report['n_cells']:>7} {_fmt(m['observational']):>8} "
              f"{_fmt(m['capability']):>8} {_fmt(m['direct_law']):>8} {_fmt(m['direct_family']):>8}")
    if args.out:
        _write_json(report, args.out, "capability.json", args.quiet)
    return 0


def _run_capability(args: argparse.Namespace, table, metric_range, chance) -> int:
    from pysearch.emergence.capability import capability_analysis

    if args.target is not None:
        return _run_observational(args, table, metric_range, chance)
    report = capability_analysis(table, n_components=args.components, metric_range=metric_range, chance=chance,
                                 n_items=args.n_items)
    if not args.quiet:
        held = ", ".join(report["holdout_models"]) or "none"
        print(f"{report['n_models']} models ({report['n_train']} fitted), scale column {report['x']!r}; held out: {held}")
        ev = ", ".join(f"{v:.2f}" for v in report["explained_variance"])
        print(f"{report['components']} capability components (variance shares {ev}), each linear in log10 "
              f"{report['x']} with family intercepts")
        if report["unseen_families"]:
            print(f"  families without a fitted model (mean intercept used): {', '.join(report['unseen_families'])}")
        head = f"{'metric':<16} {'held out':>8} {'capability':>10} {'direct law':>16} {'direct+family':>13}"
        print("held-out mean absolute error (metric units)")
        print(head)
        print("-" * len(head))
        for name, m in report["metrics"].items():
            law = f"{_fmt(m['direct_law_mae'])} ({m['direct_law'] or '-'})"
            print(f"{name[:16]:<16} {m['n_heldout']:>8} {_fmt(m['capability_mae']):>10} {law:>16} "
                  f"{_fmt(m['direct_family_mae']):>13}")
        mae = report["mae"]
        print(f"{'all cells':<16} {report['n_cells']['capability']:>8} {_fmt(mae['capability']):>10} "
              f"{_fmt(mae['direct_law']):>16} {_fmt(mae['direct_family']):>13}")
    if args.out:
        _write_json(report, args.out, "capability.json", args.quiet)
    return 0
