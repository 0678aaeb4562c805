"""``pysearch search``: evolve float32 programs for a target on a domain, verify the front."""

from __future__ import annotations

import argparse
import contextlib
import math
import shlex
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np

from ..targets import Target, get_target
from .common import UserError, add_command, add_domain_argument, parse_domain, parse_duration

DEFAULT_BUDGET = "10m"
#: Longest budget a run may have (checkpoints store it; far beyond any useful run).
MAX_BUDGET_S = 1e9
#: Seconds of ``--budget`` kept for what follows the final verification round, with and without the
#: plot: the checkpoint, front.json and the figure (matplotlib's import and one figure took about 1.5 s
#: on the development machine; the rest is margin).
OUTPUT_SECONDS_PLOT = 5.0
OUTPUT_SECONDS = 2.0


def parse_ops(text: str) -> tuple[str, ...]:
    """'add,sub,mul,fma*3' -> ('add', 'sub', 'mul', 'fma', 'fma', 'fma'); '*N' weights an op."""
    out: list[str] = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        name, _, w = part.partition("*")
        try:
            n = int(w) if w else 1
        except ValueError:
            raise UserError(f"bad op weight in {part!r}: expected NAME or NAME*N") from None
        if n < 1:
            raise UserError(f"op weight must be at least 1 in {part!r}")
        out += [name.strip()] * n
    if not out:
        raise UserError("--ops names no operation")
    return tuple(out)


def parse_cost_weights(text: str) -> dict[str, float]:
    """'add=0.5,sub=0.5' -> {'add': 0.5, 'sub': 0.5} (op weights for the cost objective)."""
    from ..program import OPS

    known = {op.name for op in OPS}
    out: dict[str, float] = {}
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        name, eq, w = part.partition("=")
        name = name.strip()
        if not eq:
            raise UserError(f"bad cost weight {part!r}: expected OP=WEIGHT, e.g. add=0.5")
        if name not in known:
            raise UserError(f"unknown op {name!r} in --cost-weights; ops are {', '.join(sorted(known))}")
        try:
            v = float(w)
        except ValueError:
            raise UserError(f"bad cost weight {part!r}: the weight must be a number") from None
        if not (math.isfinite(v) and v >= 0):
            raise UserError(f"cost weight of {name} must be a finite number >= 0, not {w.strip()}")
        out[name] = v
    if not out:
        raise UserError("--cost-weights names no op")
    return out


def _cost_model_weights(args: argparse.Namespace) -> dict | None:
    """With ``--cost-model FILE``: check the model, set ``args.cost_weights`` from its weights (so
    the config, the checkpoint and the resume check see them as cost weights) and return it."""
    if args.cost_model is None:
        return None
    from ..calibrate import CalibrationError, read_model

    if args.cost_weights is not None:
        raise UserError("give --cost-model or --cost-weights, not both")
    try:
        model = read_model(args.cost_model)
    except CalibrationError as e:
        raise UserError(str(e)) from None
    args.cost_weights = ",".join(f"{op}={w!r}" for op, w in model["weights"].items())
    return model


def read_seed_programs(paths: list[str]) -> tuple[str, ...]:
    """Canonical texts of the programs in ``paths`` (program text or program JSON files)."""
    from ..program import Program, ProgramError, parse

    texts = []
    for path in paths:
        try:
            raw = Path(path).read_text(encoding="utf-8")
        except OSError as e:
            raise UserError(f"cannot read seed program {path}: {e.strerror or e}") from None
        try:
            p = Program.from_json(raw) if raw.lstrip().startswith("{") else parse(raw)
        except (ProgramError, ValueError) as e:
            raise UserError(f"seed program {path}: {e}") from None
        texts.append(p.to_text())
    return tuple(texts)


HELP = "evolve verified float32 approximations of a function"
DESCRIPTION = """\
Evolve straight-line float32 programs approximating TARGET on [A, B]: a Pareto front of cost against max ULP
error, every reported error verified on every float32 in the domain.
"""  # argparse folds the white space


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, run, "search", HELP, DESCRIPTION)
    p.add_argument("target", help="function to approximate: a built-in name (exp2, exp, log2, log, tanh, erf, "
                                  "sqrt, ...) or an expression in x, quoted, e.g. 'sin(x)/x' (default domain [0, 1])")
    add_domain_argument(p, help="closed interval [A, B] (default: the target's reduced domain); "
                        "write B as '1-' for the float32 just below 1, i.e. [A, 1)")
    p.add_argument("--dtype", default=None, choices=["float32"], help="program format (float32)")
    p.add_argument("--max-ulp", type=float, default=None, metavar="E",
                   help="error bound: minimise cost among programs with max ULP <= E")
    p.add_argument("--objective", choices=["cost", "latency"], default=None,
                   help="what to minimise beside error (default: cost)")
    stop = p.add_argument_group("stopping (whichever comes first; default --budget 10m)")
    stop.add_argument("--budget", default=None, help="wall-clock budget in total, e.g. 90s, 10m, 1h")
    stop.add_argument("--generations", type=int, default=None, metavar="N", help="stop after N generations in total")
    p.add_argument("--seed", type=int, default=None, help="random seed (default 0)")
    p.add_argument("--out", default=None, metavar="DIR", help="run directory (default runs/TARGET-TIME)")
    p.add_argument("--resume", action="store_true", help="continue the run checkpointed in --out DIR")
    p.add_argument("--seed-baselines", action="store_true", default=None,
                   help="start from minimax polynomials too (default: from scratch)")
    p.add_argument("--seed-program", action="append", default=None, metavar="FILE", dest="seed_program",
                   help="start from this program too (text or JSON file; repeatable); its constants are refitted")
    p.add_argument("--ops", default=None, help="ops to draw from, e.g. 'add,sub,mul,div,fma*3' (*N weights)")
    p.add_argument("--cost-weights", default=None, metavar="OP=W,...",
                   help="op weights of the cost objective, e.g. 'add=0.5,sub=0.5' (others keep their "
                        "default weight from docs/program-format.md)")
    p.add_argument("--cost-model", default=None, metavar="FILE",
                   help="cost weights from a machine's cost model (`pysearch calibrate`); copied into the run")
    p.add_argument("--population", type=int, default=None, help="population size (default 128)")
    p.add_argument("--max-instrs", type=int, default=None, help="largest program (default 14)")
    p.add_argument("--sample-size", type=int, default=None, help="search sample size (default 8192)")
    p.add_argument("--verify-every", type=int, default=None, metavar="N",
                   help="verify promising programs every N generations (default 10)")
    p.add_argument("--restart-after", type=int, default=None, metavar="G",
                   help="start the population again from random programs after G generations without a change "
                        "of the archive (the archive and the verified front stay; default: never)")
    p.add_argument("--max-per-structure", type=int, default=None, metavar="K",
                   help="keep at most K programs of one structure (constants blanked) in the population while "
                        "enough structures remain, so more structures stay (default: no cap)")
    p.add_argument("--checkpoint-every", type=float, default=30.0, metavar="SECONDS",
                   help="checkpoint interval (default 30 s; 0 = every generation)")
    p.add_argument("--no-plot", action="store_true", help="do not write front.png")
    p.add_argument("--no-baselines", action="store_true", help="do not compute baselines for the plot")
    isl = p.add_argument_group("islands (parallel searches with migration; see README: Running on a Ray cluster)")
    isl.add_argument("--workers", type=int, default=None, metavar="N",
                     help="run N islands in N processes (default: one search in this process; with --ray: "
                          "one island per CPU of the cluster)")
    isl.add_argument("--ray", default=None, metavar="ADDRESS",
                     help="run the islands as Ray actors: 'auto' starts or uses a local Ray, else the address "
                          "of a running cluster (needs pip install 'pysearch[ray]')")
    isl.add_argument("--migrate-every", type=int, default=None, metavar="N",
                     help="generations between migrations in a run with --generations (default 50; the islands "
                          "in lockstep: such a run is the same every time)")
    isl.add_argument("--migrate-seconds", type=float, default=None, metavar="S",
                     help="wall seconds between migrations in a run without --generations (default 5; at a "
                          "migration the islands wait only for the generation under way)")
    isl.add_argument("--migrants", type=int, default=None, metavar="K",
                     help="programs each island sends to the next at a migration (default 4)")


_CONFIG_ARGS = {
    "seed": "seed", "max_ulp": "max_ulp", "objective": "objective", "ops": "ops", "population": "population",
    "max_instrs": "max_instrs", "sample_size": "sample_size", "verify_every": "verify_every",
    "seed_baselines": "seed_baselines", "dtype": "dtype", "cost_weights": "cost_weights",
    "seed_program": "seed_programs", "restart_after": "restart_after", "max_per_structure": "max_per_structure",
}
_PARSERS = {"ops": parse_ops, "cost_weights": parse_cost_weights, "seed_program": read_seed_programs}


def _config_from_args(args: argparse.Namespace, target: str, domain: tuple[float, float]):
    from ..search.config import SearchConfig

    kw = {}
    for arg, field in _CONFIG_ARGS.items():
        v = getattr(args, arg)
        if v is not None:
            kw[field] = _PARSERS[arg](v) if arg in _PARSERS else v
    return SearchConfig(target=target, domain=domain, **kw)


def run_dir_name(target_name: str) -> str:
    """A directory-name form of a target ('sin(x) / x' -> 'sin_x_div_x')."""
    t = target_name.replace("**", " pow ").replace("*", " mul ").replace("/", " div ").replace("+", " plus ")
    t = t.replace("-", " minus ").replace(".", "p")
    slug = "_".join("".join(c if c.isalnum() else " " for c in t).split())
    return slug[:60] or "target"


def _check_resume_args(args: argparse.Namespace, cfg, target: Target, domain) -> None:
    if target.name != cfg.target:
        raise UserError(f"the checkpoint is for target {cfg.target!r}, not {args.target!r}")
    if domain is not None and tuple(np.float32(domain)) != tuple(np.float32(cfg.domain)):
        raise UserError(f"the checkpoint is for domain [{cfg.domain[0]}, {cfg.domain[1]}], not [{domain[0]}, {domain[1]}]")
    for arg, field in _CONFIG_ARGS.items():
        v = getattr(args, arg)
        if v is None:
            continue
        v = _PARSERS[arg](v) if arg in _PARSERS else v
        if v != getattr(cfg, field):
            raise UserError(f"--{arg.replace('_', '-')} {v} differs from the checkpointed run "
                            f"({getattr(cfg, field)}); a resumed run keeps its settings")


def command_line(args: argparse.Namespace) -> str | None:
    """The command that started this run, as a shell line (the front file's ``found_by``); None when
    the command was not called through :func:`pysearch.cli.main`."""
    argv = getattr(args, "argv", None)
    return shlex.join(["pysearch", *argv]) if argv is not None else None


def search_budget(args: argparse.Namespace, out: Path, cfg, screen_x, budget: float, started: float,
                  clock_started: float | None = None) -> tuple[float, float]:
    """(seconds of ``budget`` the search may spend, seconds kept from it): ``budget`` is the run's whole
    wall-clock budget (a resumed run's included), ``started`` when this command started and
    ``clock_started`` when the search's own clock, which counts the rest, started this session (default:
    when the search starts, after this call), both ``time.monotonic()``.

    The classical baselines the plot shows are measured first, here (and kept in the run directory for
    the plot), so that their time is counted rather than guessed. Kept from the budget are the seconds
    this command spent before the search's clock started (set-up; the baselines too when that clock
    starts after this call) and those the outputs take (:data:`OUTPUT_SECONDS_PLOT`); the search is
    given at least half of the budget.
    """
    plot = not args.no_plot
    if plot and not args.no_baselines:
        from ..search.classical import load_or_compute

        load_or_compute(out, cfg.target, cfg.domain, screen_x, cfg.cost_weights)
    before = (time.monotonic() if clock_started is None else clock_started) - started
    kept = (OUTPUT_SECONDS_PLOT if plot else OUTPUT_SECONDS) + before
    return max(budget - kept, budget * 0.5), kept


def _write_outputs(out: Path, search, front, plot: bool, baselines: bool, found_by: str | None = None) -> None:
    from ..search.classical import load_or_compute
    from ..search.front import FrontFile, write_front
    from ..search.plot import plot_front

    cfg = search.config
    ff = FrontFile(cfg.target, cfg.domain, cfg.dtype, cfg.max_ulp, front, cfg.objective, cfg.cost_weights, found_by)
    write_front(out / "front.json", ff)
    if plot:
        pts = load_or_compute(out, cfg.target, cfg.domain, search.screen_x, cfg.cost_weights) if baselines else []
        plot_front(out / "front.png", front, f"{cfg.target} on [{cfg.domain[0]:.9g}, {cfg.domain[1]:.9g}]",
                   cfg.objective, pts, cfg.max_ulp)


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()  # --budget counts from here
    from rich.console import Console

    from ..search.checkpoint import CHECKPOINT_NAME
    from ..search.rundir import RunLock

    target = get_target(args.target)  # ValueError names the built-in targets or the bad expression
    domain = parse_domain(args.domain)
    if domain is not None:
        if not domain[0] < domain[1]:
            raise UserError(f"bad domain [{args.domain[0]}, {args.domain[1]}]: need A < B")
    budget = parse_duration(args.budget) if args.budget is not None else None
    if budget is not None and not budget <= MAX_BUDGET_S:
        raise UserError(f"--budget {args.budget} is longer than the most a run may have "
                        f"({format_duration(MAX_BUDGET_S)})")
    if args.generations is not None and args.generations < 0:
        raise UserError("--generations must be non-negative")
    if args.checkpoint_every < 0:
        raise UserError("--checkpoint-every must be non-negative")
    _check_island_args(args)

    model = _cost_model_weights(args)
    if args.out is None:
        if args.resume:
            raise UserError("--resume needs --out DIR (the run directory to continue)")
        out = Path("runs") / f"{run_dir_name(target.name)}-{time.strftime('%Y%m%d-%H%M%S')}"
    else:
        out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a directory")
    console = Console(stderr=True)

    cfg = None
    if args.resume:
        if not out.is_dir():
            raise FileNotFoundError(f"no checkpoint in {out} (expected {out / CHECKPOINT_NAME})")
    else:
        cfg = _config_from_args(args, target.name, domain if domain is not None else tuple(target.domain))
        out.mkdir(parents=True, exist_ok=True)
        if model is not None:  # the run keeps the model its cost weights came from
            from ..fileio import write_json_atomic

            write_json_atomic(out / "cost_model.json", model)
    with RunLock(out), _stop_signals():
        try:
            return _run_locked(args, out, cfg, target, domain, budget, console, started)
        except Terminated:  # before the search existed (it saves and returns 143 itself)
            _say(console, "terminated before the first generation; nothing saved")
            return 143


def _check_island_args(args: argparse.Namespace) -> None:
    from ..search.islands import MAX_WORKERS, MIGRATE_SECONDS_RANGE

    if args.workers is not None and not 1 <= args.workers <= MAX_WORKERS:
        raise UserError(f"--workers must be an integer in [1, {MAX_WORKERS}], not {args.workers}")
    if args.migrate_every is not None and args.migrate_every < 1:
        raise UserError(f"--migrate-every must be at least 1, not {args.migrate_every}")
    if args.migrants is not None and args.migrants < 0:
        raise UserError(f"--migrants must be non-negative, not {args.migrants}")
    lo, hi = MIGRATE_SECONDS_RANGE
    if args.migrate_seconds is not None and not lo <= args.migrate_seconds <= hi:
        raise UserError(f"--migrate-seconds must be in [{lo:g}, {hi:g}], not {args.migrate_seconds}")
    if not args.resume and (args.workers is not None or args.ray is not None):
        if args.generations is None and args.migrate_every is not None:
            raise UserError("--migrate-every applies to runs with --generations (lockstep rounds); a run limited by "
                            "time migrates every --migrate-seconds")
        if args.generations is not None and args.migrate_seconds is not None:
            raise UserError("--migrate-seconds applies to runs without --generations; a run with --generations "
                            "migrates every --migrate-every generations")
    if args.ray is not None:
        if not args.ray.strip():
            raise UserError("--ray needs 'auto' or the address of a Ray cluster")
        from ..search.islands import import_ray

        import_ray()  # one line naming the extra to install when ray is missing
    elif args.workers is None and not args.resume and (
            args.migrate_every is not None or args.migrants is not None or args.migrate_seconds is not None):
        raise UserError("--migrate-every, --migrate-seconds and --migrants apply to island runs: add --workers N "
                        "or --ray ADDRESS")


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: the run saves a checkpoint and its front, then exits 143."""


@contextlib.contextmanager
def _stop_signals():
    """While the block runs, SIGINT raises ``KeyboardInterrupt`` and SIGTERM :class:`Terminated` (in the
    main thread; elsewhere nothing changes), and each also leaves a flag that the search checks at every
    generation: an exception raised where Python swallows it (a finalizer, a ``__str__`` called from C)
    would otherwise let the run go on as if no signal had come."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_signal(signum, frame):
        _STOP_SIGNAL[0] = signum
        raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()

    _STOP_SIGNAL[0] = None
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _STOP_SIGNAL[0] = None


#: The signal that asked the run to stop (None: none came).
_STOP_SIGNAL: list[int | None] = [None]


def _stop_if_signalled() -> None:
    """Raise what the last stop signal raised, if one came (its own exception may have been lost)."""
    signum = _STOP_SIGNAL[0]
    if signum is not None:
        raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def format_duration(seconds: float) -> str:
    """A duration :func:`.common.parse_duration` reads back: ``600`` -> ``10m``, ``95`` -> ``1m35s``."""
    if seconds != int(seconds):
        return f"{seconds:.3f}".rstrip("0").rstrip(".") + "s"
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return "".join(f"{v}{u}" for v, u in ((h, "h"), (m, "m"), (s, "s")) if v) or "0s"


def _resume_limits(args: argparse.Namespace, ck: dict, budget: float | None) -> tuple[float | None, int | None]:
    """The stopping limits of a resumed run: those given now, else the run's own (else the default budget).

    ``ck`` is the checked checkpoint; a run that already reached the limits is refused, saying what to pass.
    """
    elapsed, generation = float(ck.get("elapsed_s", 0.0)), ck["generation"]
    if budget is None and args.generations is None:
        limits = ck.get("limits", {})
        budget = limits.get("budget_s")
        generations = limits.get("generations")
        if budget is None and generations is None:  # a checkpoint of a version that did not store them
            budget = parse_duration(DEFAULT_BUDGET)
    else:
        generations = args.generations
    if budget is not None and elapsed >= budget:
        raise UserError(
            f"the run in {args.out} has used its budget of {format_duration(budget)}; to continue, "
            f"give a larger total, e.g. --budget {format_duration(math.ceil(elapsed + budget))}")
    if generations is not None and generation >= generations:
        raise UserError(
            f"the run in {args.out} has run its {generations} generations; to continue, give a larger "
            f"total, e.g. --generations {generation + max(generations, 1)}")
    return budget, generations


def resume_command(search, out: Path) -> str:
    """The command line that continues the run in ``out`` with its own limits."""
    parts = ["pysearch", "search", search.config.target, "--out", str(out), "--resume"]
    if search.limits.get("budget_s") is not None:
        parts += ["--budget", format_duration(search.limits["budget_s"])]
    if search.limits.get("generations") is not None:
        parts += ["--generations", str(search.limits["generations"])]
    return shlex.join(parts)


def _read_front_file(out: Path, cfg):
    """The run's front.json (checked, and for this run's target and settings), or None if there is none."""
    from ..search.front import read_front

    path = out / "front.json"
    if not path.exists():
        return None
    ff = read_front(path)  # ValueError names the file and the field
    if (ff.target, ff.objective, ff.cost_weights or None) != (cfg.target, cfg.objective, cfg.cost_weights or None) \
            or tuple(np.float32(ff.domain)) != tuple(np.float32(cfg.domain)):
        raise UserError(f"{path} belongs to another run ({ff.target} on [{ff.domain[0]}, {ff.domain[1]}]); "
                        f"move it away to resume the run checkpointed in {out}")
    return ff


def _run_locked(args, out: Path, cfg, target: Target, domain, budget: float | None, console, started: float) -> int:
    """The search itself, with the run directory locked (``target`` resolved once, by :func:`run`, which
    started at ``started``)."""
    from ..search.checkpoint import CHECKPOINT_NAME, read_checkpoint, save_checkpoint
    from ..search.fitcache import FitCacheJournal
    from ..search.front import FrontFile, write_front
    from ..search.islands import ISLANDS_NAME

    if args.workers is not None or args.ray is not None or (out / ISLANDS_NAME).exists():
        from .search_islands import run_islands  # (a new run in a directory of islands is refused there)

        return run_islands(args, out, cfg, target, domain, budget, console, started)

    from ..search.loop import Search
    from ..search.progress import Progress, verified_table

    if args.resume:
        ck = read_checkpoint(out)
        from ..search.config import SearchConfig

        cfg = SearchConfig.from_json_obj(ck["config"])
        _check_resume_args(args, cfg, target, domain)
        budget, generations = _resume_limits(args, ck, budget)
        on_disk = _read_front_file(out, cfg)
        loaded = len(ck.get("front", [])) + len(ck.get("reported", []))
        _say(console, f"resuming {out} at generation {ck['generation']}"
                      + (f"; verifying its {loaded} front program(s) again" if loaded else ""))
        search = Search.from_checkpoint(ck)
        journal = FitCacheJournal.resume(out, ck["fit_cache"]) if "fit_cache" in ck else None
        if on_disk is not None:  # programs only front.json lists (an older version's final round) are kept too
            search.adopt_reported(on_disk.programs, "front.json")
        found_by = on_disk.found_by if on_disk is not None else None
    else:
        for name in (CHECKPOINT_NAME, "front.json"):
            if (out / name).exists():
                hint = "pass --resume to continue it, or" if name == CHECKPOINT_NAME else "runs are never overwritten;"
                raise UserError(f"{out} already holds a run ({name}); {hint} choose another --out")
        generations = args.generations
        if budget is None and generations is None:
            budget = parse_duration(DEFAULT_BUDGET)
        search = journal = None
        found_by = command_line(args)

    def save(s) -> None:
        # first: front.json never holds what the checkpoint lacks (and the checkpoint what the journal lacks)
        state = s.checkpoint_state(cache_delta=True)
        save_checkpoint(out, state, journal)
        s.drop_cache_new(state["cache_new_from"] + len(state["cache_new"]))  # only once they are saved
        ff = FrontFile(s.config.target, s.config.domain, s.config.dtype, s.config.max_ulp, s.reported_front(),
                       s.config.objective, s.config.cost_weights, found_by)
        write_front(out / "front.json", ff)

    try:
        if search is None:
            search = Search(cfg)
        # the fit cache goes to the journal: all of it once for a new run (or one checkpointed with its
        # cache inline by an older version), afterwards what each checkpoint adds
        pending = journal is None
        if pending:
            journal = FitCacheJournal.create(out)
        search.note_cache_assignments(pending)
        search.limits = {"budget_s": budget, "generations": generations}
        for line in search.corrections:
            _say(console, f"warning: {line}; the front reports the verified figure")
        run_budget = budget
        start_limit = None
        if budget is not None:
            run_budget, kept = search_budget(args, out, search.config, search.screen_x, budget, started)
            start_limit = _plan_budget(search, budget, kept, run_budget, console)  # before anything is saved
        if not args.resume:
            _say(console, f"starting {cfg.target} on [{cfg.domain[0]!r}, {cfg.domain[1]!r}] in {out}")
        save(search)
        generation0 = search.generation
        with Progress(search, console) as progress:
            def on_generation(*info) -> None:
                _stop_if_signalled()
                progress.update(*info)

            search.run(generations=generations, budget_s=run_budget, on_generation=on_generation,
                       on_checkpoint=save, checkpoint_every_s=args.checkpoint_every)
        _stop_if_signalled()
        final = search.final_front(deadline=search.deadline)
        save(search)
        _write_outputs(out, search, final, plot=not args.no_plot, baselines=not args.no_baselines, found_by=found_by)
    except KeyboardInterrupt as e:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second signal must not cut the save short
        code = 143 if isinstance(e, Terminated) else 130
        if search is not None and search.cache_new is not None:  # (noted once the journal is open)
            save(search)
            _say(console, f"{'terminated' if code == 143 else 'interrupted'}: checkpoint of generation "
                          f"{search.generation} saved in {out}; continue with: {resume_command(search, out)}")
        else:
            _say(console, f"interrupted before the first generation; the checkpoint in {out} is kept" if args.resume
                 else "interrupted before the first generation; nothing saved")
        return code
    console.print(verified_table(final, title=f"verified front ({out / 'front.json'})"))
    if search.generation == 0:
        _say(console, "warning: no generation ran within the budget; this front is the first random population's, "
                      "not a search result (give a longer --budget)")
    elif search.generation == generation0:
        _say(console, "warning: no new generation ran within the budget (give a longer --budget)")
    if search.final_limit is not None and search.final_limit != start_limit:
        _say(console, f"note: verifications took longer than estimated; to fit the budget the final check verified at "
                      f"most {search.final_limit} candidate(s)")
    if search.final_skipped:
        _say(console, f"note: the final check left {search.final_skipped} candidate(s) unverified for lack of time")
    if search.config.restart_after:
        _say(console, f"population restarted {search.problem.population_restarts} time(s) (after "
                      f"{search.config.restart_after} generations without a change of the archive)")
    if not final:
        _say(console, "no program was verified; run longer (--budget) or relax --max-ulp")
    print(out / "front.json", file=sys.stdout)
    return 0


def _say(console, line: str) -> None:
    """One plain line on the console: no markup (paths may hold brackets), never wrapped (commands stay whole)."""
    console.print(line, highlight=False, markup=False, soft_wrap=True)


def _plan_budget(search, budget: float, kept: float, run_budget: float, console) -> int | None:
    """:func:`check_budget_plan` on the search's plan; return the most verifications the final check may
    spend, or None when it may verify all it wants."""
    check_budget_plan(search.budget_plan(run_budget), search.config, search.domain.count(), budget, kept, run_budget,
                      console)
    return search.final_limit


def check_budget_plan(plan, cfg, count: int, budget: float, kept: float, run_budget: float, console,
                      per_island: bool = False) -> None:
    """Refuse a budget that cannot pay for a final verification after a minimum of search; say when it scales.

    ``plan``: a :class:`~pysearch.search.budget.BudgetPlan` for ``run_budget``, what the search itself may
    spend of ``budget`` (``kept`` is not for the search: :func:`search_budget`); ``count``: float32 values
    in the domain; ``per_island``: the plan is one island's (each verifies its own candidates).
    """
    from ..search.budget import FINAL_FRACTION

    if run_budget < plan.needed_s:
        need = math.ceil(plan.needed_s + kept)
        raise UserError(
            f"--budget {format_duration(budget)} is too short for {cfg.target} on [{cfg.domain[0]:.9g}, "
            f"{cfg.domain[1]:.9g}] ({count} float32 values): verifying one program takes about "
            f"{plan.verify_s:.0f} s and {cfg.verify_every} generations of search about {plan.min_search_s:.0f} s; "
            f"use --budget {format_duration(need)} or more")
    if plan.final_verifications < plan.wanted:
        full = math.ceil(plan.wanted * plan.verify_s / FINAL_FRACTION + kept)
        _say(
            console,
            f"note: this budget pays for verifying {plan.final_verifications} of up to {plan.wanted} front candidates"
            f"{' per island' if per_island else ''} at the end (about {plan.verify_s:.1f} s each); "
            f"--budget {format_duration(full)} verifies all")
