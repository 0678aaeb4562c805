"""``pysearch search --workers N`` / ``--ray ADDRESS``: the island run of the search command.

:mod:`.search` parses and checks the arguments, takes the run-directory lock and the stop
signals, and hands island runs to :func:`run_islands`, which drives
:class:`~pysearch.search.islands.IslandRun` over local processes or Ray actors and writes the
run directory: ``islands.json`` (every island's checkpoint), ``front.json`` (the merged verified
front) and the plot.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import shlex
import signal
import sys
import time
from pathlib import Path

from ..domain import Domain
from ..search.budget import BudgetPlan
from ..search.verify import Verification
from ..targets import Target
from .common import UserError, parse_duration
from .search import (DEFAULT_BUDGET, _check_resume_args, _read_front_file, _resume_limits, _say,
                     _stop_if_signalled, _write_outputs, check_budget_plan, command_line, format_duration, search_budget,
                     Terminated)


class _RunView:
    """What :func:`.search._write_outputs` reads of a search (its configuration and screening sample)."""

    def __init__(self, config):
        self.config = config
        self.domain = Domain(*config.domain)
        self._screen_x = None

    screen_x = Verification.screen_x  # the same sample island 0 screens with


def _resume_command(cfg, limits: dict, out: Path, ray: str | None) -> str:
    parts = ["pysearch", "search", cfg.target, "--out", str(out), "--resume"]
    if limits.get("budget_s") is not None:
        parts += ["--budget", format_duration(limits["budget_s"])]
    if limits.get("generations") is not None:
        parts += ["--generations", str(limits["generations"])]
    if ray is not None:
        parts += ["--ray", ray]
    return shlex.join(parts)


def _fmt_ulp(v: float) -> str:
    return "-" if not math.isfinite(v) else (f"{v:.3g}" if v >= 0.01 else f"{v:.2e}")


def run_islands(args: argparse.Namespace, out: Path, cfg, target: Target, domain, budget: float | None,
                console, started: float) -> int:
    """The island run, with the run directory locked and the stop signals set (by :func:`.search.run`,
    which started at ``started``)."""
    from ..search.checkpoint import CHECKPOINT_NAME
    from ..search.config import SearchConfig
    from ..search.front import FrontFile, write_front
    from ..search.islands import (DEFAULT_MIGRANTS, DEFAULT_MIGRATE_EVERY, DEFAULT_MIGRATE_SECONDS, ISLANDS_NAME,
                                  IslandError, IslandRun, LocalTransport, RayTransport, island_journals, read_islands,
                                  save_islands)
    from ..search.progress import verified_table

    states, elapsed, restarts = None, 0.0, 0
    if args.resume:
        if not (out / ISLANDS_NAME).exists() and (out / CHECKPOINT_NAME).exists():
            raise UserError(f"{out} holds a single-process run ({CHECKPOINT_NAME}); resume it without --workers "
                            f"and --ray")
        doc = read_islands(out)  # ValueError names the file and the field
        cfg = SearchConfig.from_json_obj(doc["islands"][0]["config"])
        _check_resume_args(args, cfg, target, domain)
        migrate_seconds = float(doc.get("migrate_seconds", DEFAULT_MIGRATE_SECONDS))
        for flag, value, kept in (("workers", args.workers, doc["workers"]),
                                  ("migrate-every", args.migrate_every, doc["migrate_every"]),
                                  ("migrate-seconds", args.migrate_seconds, migrate_seconds),
                                  ("migrants", args.migrants, doc["migrants"])):
            if value is not None and value != kept:
                raise UserError(f"--{flag} {value} differs from the checkpointed run ({kept}); a resumed run keeps "
                                f"its islands")
        ck_like = {"elapsed_s": doc.get("elapsed_s", 0.0), "limits": doc.get("limits", {}),
                   "generation": min(st["generation"] for st in doc["islands"])}
        budget, generations = _resume_limits(args, ck_like, budget)
        on_disk = _read_front_file(out, cfg)  # a front.json of another run is refused
        found_by = on_disk.found_by if on_disk is not None else None
        workers, migrate_every, migrants = doc["workers"], doc["migrate_every"], doc["migrants"]
        states, elapsed, restarts = doc["islands"], float(doc.get("elapsed_s", 0.0)), doc.get("restarts", 0)
        _say(console, f"resuming the {workers}-island run in {out} at generation(s) "
                      f"{', '.join(str(st['generation']) for st in states)}")
    else:
        for name in (CHECKPOINT_NAME, ISLANDS_NAME, "front.json"):
            if (out / name).exists():
                hint = "runs are never overwritten;" if name == "front.json" else "pass --resume to continue it, or"
                raise UserError(f"{out} already holds a run ({name}); {hint} choose another --out")
        generations = args.generations
        if budget is None and generations is None:
            budget = parse_duration(DEFAULT_BUDGET)
        workers = args.workers
        migrate_every = args.migrate_every if args.migrate_every is not None else DEFAULT_MIGRATE_EVERY
        migrate_seconds = args.migrate_seconds if args.migrate_seconds is not None else DEFAULT_MIGRATE_SECONDS
        migrants = args.migrants if args.migrants is not None else DEFAULT_MIGRANTS
        found_by = command_line(args)

    if args.ray is not None:
        transport = RayTransport(args.ray)
        if workers is None:  # one island per CPU of the cluster
            workers = max(1, transport.cluster_cpus())
        share = transport.share_cpus(workers)
        if share < 1:
            _say(console, f"note: the Ray cluster has {transport.cluster_cpus()} CPU(s) for {workers} islands; "
                          f"each island reserves {share:g} CPU")
    else:
        transport = LocalTransport(workers)
    runner = IslandRun(transport, cfg, workers, migrate_every, migrants, states, elapsed, restarts, migrate_seconds)
    journals, pending = island_journals(out, states, workers)  # the islands' fit caches (search/fitcache.py)
    if pending:
        runner.cache_pending()
    saved = [args.resume]  # whether the run directory holds a checkpoint of this run

    def save(r: IslandRun) -> None:
        r.collect()
        # first: front.json never holds what the checkpoint lacks (and the checkpoint what the journals lack)
        state = r.state(cache_delta=True)
        save_islands(out, state, journals)
        r.journaled(state)  # only once they are saved
        ff = FrontFile(cfg.target, cfg.domain, cfg.dtype, cfg.max_ulp, r.merged_front(), cfg.objective,
                       cfg.cost_weights, found_by)
        write_front(out / "front.json", ff)
        saved[0] = True

    last_line = [-math.inf]
    bound = f", max ULP <= {cfg.max_ulp:g}" if cfg.max_ulp is not None else ""

    def on_round(r: IslandRun, info) -> None:
        _stop_if_signalled()
        now = time.monotonic()
        if now - last_line[0] < 10.0:
            return
        last_line[0] = now
        m, s = divmod(int(r.elapsed), 60)
        front = ", ".join(f"{e.measure(cfg.objective):g}:{_fmt_ulp(e.max_ulp)}" for e in info.front[-6:])
        gens = f"{min(info.generations)}" + (f"-{max(info.generations)}" if len(set(info.generations)) > 1 else "")
        _say(console, f"{cfg.target} on [{cfg.domain[0]:.9g}, {cfg.domain[1]:.9g}]{bound} | {r.workers} islands | "
                      f"gen {gens} | {m}:{s:02d} | {info.programs / max(info.seconds, 1e-9):,.0f} programs/s | "
                      f"migrated {info.migrated} | restarts {r.restarts} | verified front {front or '-'}")

    try:
        try:
            runner.start()
            for line in runner.corrections:
                _say(console, f"warning: {line}; the front reports the verified figure")
            runner.set_limits(budget, generations)
            run_budget = budget
            view = _RunView(cfg)  # the screening sample, made once for the baselines and the plot
            if budget is not None:
                # the islands' clock started with them: it counts their start and the baselines
                run_budget, kept = search_budget(args, out, cfg, view.screen_x, budget, started, runner.clock_started)
                plan = runner.plan(run_budget)  # island 0's: every island has the same configuration
                check_budget_plan(BudgetPlan(**{f.name: plan[f.name] for f in dataclasses.fields(BudgetPlan)}), cfg,
                                  plan["count"], budget, kept, run_budget, console, per_island=True)
            if not args.resume:
                _say(console, f"starting {cfg.target} on [{cfg.domain[0]!r}, {cfg.domain[1]!r}] in {out}: "
                              f"{workers} islands ({transport.name}), migrating {migrants} program(s) every "
                              + (f"{migrate_every} generations" if generations is not None
                                 else f"{migrate_seconds:g} s (the islands' generations not in lockstep)"))
            save(runner)
            generations0 = list(runner.generations)
            runner.run_rounds(generations, run_budget, on_round=on_round, on_checkpoint=save,
                              checkpoint_every_s=args.checkpoint_every)
            _stop_if_signalled()
            left = None if run_budget is None else max(run_budget - runner.elapsed, 0.0)
            final, skipped, _ = runner.final(left)
            save(runner)
            _write_outputs(out, view, final, plot=not args.no_plot, baselines=not args.no_baselines,
                           found_by=found_by)
        except KeyboardInterrupt as e:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut the save short
            code = 143 if isinstance(e, Terminated) else 130
            word = "terminated" if code == 143 else "interrupted"
            if not runner.started:
                _say(console, f"{word} while the islands started; " + (
                    f"the checkpoint in {out} is kept" if saved[0] else "nothing saved"))
                return code
            try:
                runner.request_stop()  # each island ends its generation; then all are saved together
                runner.finish_outstanding()
                save(runner)
                _say(console, f"{word}: checkpoint of {workers} islands at generation(s) "
                              f"{', '.join(map(str, runner.generations))} saved in {out}; continue with: "
                              f"{_resume_command(cfg, runner.limits, out, args.ray)}")
            except KeyboardInterrupt:
                if saved[0]:
                    _say(console, f"{word} again: the last checkpoint in {out} is kept; continue with: "
                                  f"{_resume_command(cfg, runner.limits, out, args.ray)}")
                else:
                    _say(console, f"{word} again before the first checkpoint; nothing saved")
            return code
        except IslandError as e:
            raise UserError(f"{e}" + (f"; continue with: {_resume_command(cfg, runner.limits, out, args.ray)}"
                                      if saved[0] else "")) from None
    finally:
        runner.close()
    console.print(verified_table(final, title=f"verified front of {workers} islands ({out / 'front.json'})"))
    if max(runner.generations) == 0:
        _say(console, "warning: no generation ran within the budget; this front is the first random populations', "
                      "not a search result (give a longer --budget)")
    elif runner.generations == generations0:
        _say(console, "warning: no new generation ran within the budget (give a longer --budget)")
    if runner.restarts:
        _say(console, f"note: {runner.restarts} island worker(s) were lost and restarted from their last checkpoint")
    if skipped:
        _say(console, f"note: the final check left {skipped} candidate(s) unverified for lack of time")
    if not final:
        _say(console, "no program was verified; run longer (--budget) or relax --max-ulp")
    print(out / "front.json", file=sys.stdout)
    return 0
