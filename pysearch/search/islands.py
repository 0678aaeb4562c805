"""Islands: N searches in parallel (local processes or Ray actors) with periodic migration of front members.

An island is one :class:`~.loop.Search` held by an :class:`IslandWorker`. Island 0 runs with the
run's seed (so one island is the single-process run, generation for generation); island ``i``
runs with :func:`island_seed`. The driver, :class:`IslandRun`, works in rounds; after each, every
island sends its ``migrants`` best non-dominated programs to the next island of a ring (island
``i`` receives from island ``i - 1``), where they enter the population through the island's own
scoring and NSGA-II selection. A round is

- in a run limited by generations (``--generations``): every island runs up to the next
  multiple of ``migrate_every`` generations. Migration is then deterministic: a run with
  ``--generations`` and a seed is the same run every time, whatever the timing;
- in a run limited by time (a budget, or until stopped): every island runs for
  ``migrate_seconds`` of wall time (it ends the generation under way). Islands whose
  generations take different times (another seed's population, a verification round, a slower
  node) then do not wait for each other: in lockstep rounds two exp2 islands on the 2-core
  development machine kept 1.50 of its 2 cores busy over 5 minutes, the faster one idle for two
  thirds of its rounds once the populations had diverged. Such a run's generation counts
  depend on the timing, as its length already does.

Two transports carry the same :class:`IslandWorker` calls: :class:`LocalTransport` (one
process per island, ``spawn`` context) and :class:`RayTransport` (one Ray actor per island).
A worker that dies (a killed process, a lost Ray node) is restarted from its island's last
checkpoint and the round goes on.

The run directory holds one checkpoint for all islands, ``islands.json`` (schema-versioned,
every island's state checked on load like ``checkpoint.json``), and one ``front.json``: the
non-dominated merge of every island's verified front.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import signal
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np
from deap import tools

from ..fileio import write_json_atomic
from ..program import parse
from .checkpoint import resolve_fit_cache, validate_checkpoint, with_journal
from .config import SearchConfig
from .fields import FieldError, load_kind_document, need_dict, need_float, need_int, need_keys, need_list
from .fitcache import FitCacheError, FitCacheJournal, island_fit_cache_name
from .front import FrontEntry, pareto_insert
from .loop import Search

ISLANDS_SCHEMA = 1
ISLANDS_KIND = "pysearch-islands-checkpoint"
ISLANDS_NAME = "islands.json"
#: Generations between migrations in a run limited by generations, and programs each island
#: sends, unless told otherwise. Such a migration waits for every island to reach it (that keeps
#: runs deterministic), so the faster islands idle for the slowest one's last generations. Two
#: exp2 islands for 30 s on the 2-core development machine idled 2-5% of the time in rounds of 50
#: generations, 12-15% in rounds of 10 (timed per round); later in a run much more (above).
DEFAULT_MIGRATE_EVERY = 50
#: Wall seconds between migrations in a run limited by time (about what 50 exp2 generations took
#: at the start of a run on the development machine).
DEFAULT_MIGRATE_SECONDS = 5.0
#: The range ``migrate_seconds`` may take.
MIGRATE_SECONDS_RANGE = (0.01, 3600.0)  # (checkpoints are written between rounds)
DEFAULT_MIGRANTS = 4
#: Most islands a run may have (far beyond one machine; a Ray cluster of this size is rare).
MAX_WORKERS = 4096
#: Times one island may be lost in a row (without a round completing) before the run gives up.
MAX_RESTARTS = 3


class IslandError(RuntimeError):
    """An island failed (an exception in its search, or lost more than :data:`MAX_RESTARTS` times)."""


class IslandsCheckpointError(ValueError):
    """An ``islands.json`` that cannot be used; the message names the file and the field."""


def island_seed(seed: int, index: int) -> int:
    """The seed of island ``index``: the run's seed for island 0, else one derived from both (below 2**64)."""
    if index == 0:
        return seed
    return int(np.random.SeedSequence(seed, spawn_key=(index,)).generate_state(1, dtype=np.uint64)[0])


def island_config(config: SearchConfig, index: int) -> SearchConfig:
    """The configuration of island ``index``: the run's, with :func:`island_seed`."""
    return dataclasses.replace(config, seed=island_seed(config.seed, index))


class _Stop(Exception):
    """Raised from the generation callback when the driver asked the island to stop."""


class _RoundOver(Exception):
    """Raised from the generation callback when a round of ``round_s`` seconds is over."""


class IslandWorker:
    """One island: a :class:`~.loop.Search` and the calls the driver makes on it.

    Every argument and result is plain data (JSON-able), so any transport can carry it.
    ``threads`` caps the core's worker threads in this process (set before its first parallel call);
    ``stop`` is an event the driver sets to end a :meth:`step` after the current generation.
    """

    def __init__(self, threads: int | None = None, stop=None):
        if threads is not None:
            os.environ["RAYON_NUM_THREADS"] = str(max(1, int(threads)))
        self._stop = stop if stop is not None else threading.Event()
        self.search: Search | None = None
        self.index = -1

    def start(self, index: int, config: dict, checkpoint: dict | None = None, cache_count: int = 0) -> dict:
        """Create the island's search (fresh from ``config``, or from its checkpoint state and its fit cache,
        of which the driver holds ``cache_count`` assignments of this session)."""
        self.index = index
        if checkpoint is None:
            self.search = Search(SearchConfig.from_json_obj(config))
        else:
            self.search = Search.from_checkpoint(checkpoint)
        # the driver keeps the fit cache (for restarts and the run directory's journals): it gets each
        # assignment with the checkpoint states until it says it holds it; a restarted island's cache
        # came from it
        self.search.note_cache_assignments(pending=checkpoint is None, first=cache_count)
        return {"generation": self.search.generation, "corrections": list(self.search.corrections)}

    def _s(self) -> Search:
        if self.search is None:
            raise IslandError("the island was not started")
        return self.search

    def request_stop(self) -> None:
        self._stop.set()

    def set_limits(self, limits: dict) -> None:
        self._s().limits = dict(limits)

    def plan(self, run_budget: float) -> dict:
        """The island's budget plan for ``run_budget`` seconds (see :meth:`~.budget.BudgetPlanning.budget_plan`)."""
        s = self._s()
        plan = s.budget_plan(run_budget)
        return {**dataclasses.asdict(plan), "final_limit": s.final_limit, "count": s.domain.count()}

    def step(self, target_generation: int | None, budget_left_s: float | None = None,
             round_s: float | None = None) -> dict:
        """Run generations up to ``target_generation`` (total; ``None``: no such limit), or until
        ``budget_left_s`` seconds (less the final verification's reserve) are spent, or until stopped,
        or (``round_s``) until the first generation that ends ``round_s`` seconds or more after the call
        began; report what happened."""
        s = self._s()
        gen0, ev0, t0 = s.generation, s.evaluations, time.monotonic()
        budget = None if budget_left_s is None else s.elapsed + max(budget_left_s, 1e-3)

        def on_generation(search: Search, info) -> None:
            if self._stop.is_set() or not _parent_alive():
                raise _Stop
            if round_s is not None and time.monotonic() - t0 >= round_s:
                raise _RoundOver

        stopped = round_over = False
        try:
            s.run(generations=target_generation, budget_s=budget, on_generation=on_generation)
        except _Stop:
            stopped = True
        except _RoundOver:
            round_over = True
        return {
            "generation": s.generation, "generations": s.generation - gen0, "seconds": time.monotonic() - t0,
            "programs": (s.evaluations - ev0) / max(len(s.x), 1), "stopped": stopped,
            "out_of_budget": not (stopped or round_over) and (target_generation is None
                                                                or s.generation < target_generation),
            "front": [e.to_json_obj() for e in s.reported_front()],
        }

    def immigrants(self, k: int) -> list[str]:
        """Up to ``k`` programs of the population's first non-dominated front, spread along it."""
        pop = [ind for ind in self._s().population if math.isfinite(ind.max_ulp)]
        if not pop or k <= 0:
            return []
        first = tools.sortLogNondominated(pop, len(pop), first_front_only=True)
        first = sorted(first, key=lambda ind: (ind.fitness.values, ind.text))
        if len(first) > k:
            picks = sorted(set(np.linspace(0, len(first) - 1, k).round().astype(int).tolist()))
            first = [first[i] for i in picks]
        return [ind.text for ind in first]

    def immigrate(self, texts: list[str]) -> int:
        """Score ``texts`` on this island's sample and let NSGA-II selection decide which stay; return how many did.

        The constants they bring are kept (no fit is spent on them; a structure this island has
        fitted before is offered its own fit too, as for any child).
        """
        s = self._s()
        if not texts:
            return 0
        inds, _ = s._make_individuals([parse(t) for t in texts], budget=0)
        before = {ind.text for ind in s.population}
        s.population = s._select(s.population + inds, s.config.population)
        s.archive.update(inds)
        s._commit()
        return sum(ind.text not in before for ind in s.population)

    def checkpoint_state(self, held: int = 0) -> dict:
        """The island's committed state, with the fit cache's assignments the driver does not hold yet
        (``cache_new``, numbered from ``cache_new_from``): it holds those numbered below ``held``."""
        s = self._s()
        s.drop_cache_new(held)
        return s.checkpoint_state(cache_delta=True)

    def final(self, budget_left_s: float | None = None) -> dict:
        """The last verification round (:meth:`~.verify.Verification.final_front`) within ``budget_left_s``."""
        s = self._s()
        deadline = None if budget_left_s is None else time.monotonic() + max(budget_left_s, 0.0)
        front = s.final_front(deadline=deadline)
        return {"front": [e.to_json_obj() for e in front], "final_skipped": s.final_skipped,
                "final_limit": s.final_limit}

    def pid(self) -> int:
        return os.getpid()


def _parent_alive() -> bool:
    import multiprocessing

    parent = multiprocessing.parent_process()
    return parent is None or parent.is_alive()


# ------------------------------------------------------------------ transports
class _Lost:
    """The result of a call whose worker died before answering."""

    def __repr__(self) -> str:
        return "LOST"


LOST = _Lost()


def _one_line(e: BaseException) -> str:
    return f"{type(e).__name__}: " + (" ".join(str(e).split()) or "(no message)")


def _local_main(conn, threads: int, stop) -> None:
    """A local island process: answer ``(method, args)`` messages on ``conn`` until ``None`` or EOF."""
    # The driver owns Ctrl-C and SIGTERM: it asks the islands to stop after their generation and
    # saves; an island that died of the terminal's Ctrl-C would lose the generation it was in.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    worker = IslandWorker(threads, stop)
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        method, args = msg
        try:
            reply = ("ok", getattr(worker, method)(*args))
        except Exception as e:  # reported to the driver, which raises IslandError naming the island
            reply = ("err", _one_line(e))
        try:
            conn.send(reply)
        except (BrokenPipeError, OSError):
            return


class _LocalIsland:
    def __init__(self, ctx, index: int, threads: int):
        self.index = index
        self.stop = ctx.Event()
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_local_main, args=(child, threads, self.stop),
                                   name=f"pysearch-island-{index}", daemon=True)
        self.process.start()
        child.close()
        self.outstanding = False
        self.lost = False
        self.closing = False

    def submit(self, method: str, *args) -> None:
        self.outstanding = True
        try:
            self.conn.send((method, args))
        except (BrokenPipeError, OSError):
            self.lost = True
        except BaseException:  # a signal while sending: the message may be cut short; restart the worker
            self.lost = True
            raise

    def request_stop(self) -> None:
        self.stop.set()

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def begin_close(self) -> None:
        """Ask the process to end (it finishes the call in hand first); :meth:`close` waits for it."""
        if not self.closing and self.process.is_alive():
            self.closing = True
            try:
                self.conn.send(None)
            except (BrokenPipeError, OSError):
                pass

    def close(self, timeout: float = 5.0) -> None:
        self.begin_close()
        self.process.join(timeout)
        if self.process.is_alive():  # it ignores SIGTERM (see _local_main)
            self.process.kill()
            self.process.join()
        self.conn.close()
        self.process.close()


class LocalTransport:
    """Islands as local processes, forked by a ``forkserver`` that imported pysearch once (a restarted or
    later island starts in milliseconds) and never ran the core (its thread pools never meet a ``fork``).

    Each process's core uses ``threads`` threads (default: this machine's usable cores shared
    out between the islands).
    """

    name = "local processes"

    def __init__(self, workers: int, threads: int | None = None):
        import multiprocessing

        if "forkserver" in multiprocessing.get_all_start_methods():
            self.ctx = multiprocessing.get_context("forkserver")
            self.ctx.set_forkserver_preload([__name__])
        else:  # no fork on this platform
            self.ctx = multiprocessing.get_context("spawn")
        usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        self.threads = threads if threads is not None else max(1, usable // max(workers, 1))

    def start(self, index: int) -> _LocalIsland:
        return _LocalIsland(self.ctx, index, self.threads)

    def gather(self, islands: list) -> list:
        """The replies to the outstanding calls of ``islands``, in order (:data:`LOST` for a dead worker)."""
        from multiprocessing.connection import wait

        results: list = [None] * len(islands)
        waiting: dict[int, _LocalIsland] = {}
        for i, isl in enumerate(islands):
            if isl.lost:
                results[i] = LOST
            elif isl.outstanding:
                waiting[i] = isl
        while waiting:
            objs = {}
            for i, isl in waiting.items():
                objs[isl.conn] = i
                objs[isl.process.sentinel] = i
            for obj in wait(list(objs)):
                i = objs[obj]
                if i not in waiting:
                    continue
                isl = waiting[i]
                try:
                    if isl.conn.poll():
                        results[i] = isl.conn.recv()
                    elif isl.process.is_alive():
                        continue
                    else:
                        results[i] = LOST
                except (EOFError, OSError):
                    results[i] = LOST
                except BaseException:  # a signal while receiving: the reply is gone (or cut); restart the worker
                    isl.outstanding, isl.lost = False, True
                    raise
                isl.outstanding = False
                if results[i] is LOST:
                    isl.lost = True
                del waiting[i]
        return [_unwrap(isl.index, r) for isl, r in zip(islands, results)]

    def close(self) -> None:
        pass


def _unwrap(index: int, reply):
    if reply is LOST:
        return LOST
    if reply is None:  # no call in flight: a gather interrupted by a signal already took its reply
        return None
    status, value = reply
    if status != "ok":
        raise IslandError(f"island {index} failed: {value}")
    return value


def import_ray():
    """The ``ray`` module, or a one-line ``ValueError`` saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ValueError("--ray needs the ray package, which is not installed; install it with "
                         "pip install 'pysearch[ray]' (or pip install ray)") from None
    return ray


def _check_reachable(address: str, timeout_s: float = 10.0) -> None:
    """Refuse a ``HOST:PORT`` (or ``ray://HOST:PORT``) address nothing answers at, in one line (Ray itself
    would retry for minutes); other forms are left to Ray."""
    import socket

    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as e:
        raise ValueError(f"cannot reach the Ray cluster at {address}: {e.strerror or e}; start one with "
                         f"'ray start --head' or use --ray auto") from None


class _RayIsland:
    def __init__(self, actor_cls, index: int, threads: int):
        self.index = index
        self.actor = actor_cls.remote(threads)
        self.ref = None
        self.outstanding = False
        self.lost = False

    def submit(self, method: str, *args) -> None:
        self.outstanding, self.ref = True, None
        try:
            self.ref = getattr(self.actor, method).remote(*args)
        except BaseException:  # a signal while submitting: whether the actor got the call is unknown
            self.lost = True
            raise

    def request_stop(self) -> None:
        try:
            self.actor.request_stop.remote()
        except Exception:  # a dead actor needs no stop; the gather reports it lost
            pass

    @property
    def pid(self) -> int | None:
        return None

    def begin_close(self) -> None:
        pass

    def close(self, timeout: float = 5.0) -> None:
        import ray

        try:
            ray.kill(self.actor)
        except Exception:  # already gone
            pass


class RayTransport:
    """Islands as Ray actors: ``address`` ``auto`` starts a local Ray or uses the one running here
    (``RAY_ADDRESS`` or the latest started on this machine); any other address names a cluster.

    Each island is an actor reserving one CPU, whose core runs on one thread. A Ray started here
    is shut down by :meth:`close`; one this process was already connected to is left running.
    """

    name = "Ray actors"

    def __init__(self, address: str, threads: int = 1):
        ray = import_ray()
        self.ray = ray
        self.threads = threads
        self.started = False
        if not ray.is_initialized():
            if address != "auto":
                _check_reachable(address)
            kw: dict = {"log_to_driver": False}
            if address == "auto":
                kw["include_dashboard"] = False
            try:
                ray.init(address=None if address == "auto" else address, **kw)
            except (ConnectionError, RuntimeError, ValueError) as e:
                raise ValueError(f"cannot connect to the Ray cluster at {address}: {' '.join(str(e).split())}") \
                    from None
            self.started = True
        # one call may run beside a step: request_stop, which only sets an event
        self.actor_cls = ray.remote(num_cpus=1, max_concurrency=2)(IslandWorker)
        self.cpus_per_island = 1.0

    def cluster_cpus(self) -> int:
        return int(self.ray.cluster_resources().get("CPU", 0))

    def share_cpus(self, workers: int) -> float:
        """Reserve a share of a CPU per island when the cluster has fewer CPUs than islands (else the
        islands beyond its CPUs would wait for one forever); return the share."""
        cpus = self.cluster_cpus()
        if 0 < cpus < workers:
            self.cpus_per_island = math.floor(cpus / workers * 1000) / 1000
            self.actor_cls = self.actor_cls.options(num_cpus=self.cpus_per_island)
        return self.cpus_per_island

    def start(self, index: int) -> _RayIsland:
        return _RayIsland(self.actor_cls, index, self.threads)

    def gather(self, islands: list) -> list:
        ray = self.ray
        out = []
        for isl in islands:
            if isl.lost:
                out.append(LOST)
                continue
            if not isl.outstanding:
                out.append(None)
                continue
            try:
                value = ray.get(isl.ref)
            except ray.exceptions.RayActorError:
                isl.lost = True
                value = LOST
            except ray.exceptions.RayTaskError as e:
                isl.outstanding = False
                cause = getattr(e, "cause", None)
                raise IslandError(f"island {isl.index} failed: {_one_line(cause) if cause else e}") from None
            isl.outstanding = False
            out.append(value)
        return out

    def close(self) -> None:
        if self.started and self.ray.is_initialized():
            self.ray.shutdown()


# ------------------------------------------------------------------ the checkpoint of all islands
def save_islands(directory: Path | str, state: dict, journals: list[FitCacheJournal] | None = None) -> Path:
    """Write the islands' checkpoint document (``state`` from :meth:`IslandRun.state`); return its path.

    An island state with its fit cache's new assignments (``cache_new``, ``IslandRun.state(cache_delta=True)``)
    has them appended to its journal (``journals[i]``, :func:`island_journals`) first."""
    path = Path(directory) / ISLANDS_NAME
    islands = [with_journal(st, journals[i] if journals is not None else None) for i, st in enumerate(state["islands"])]
    write_json_atomic(path, {"schema": ISLANDS_SCHEMA, "kind": ISLANDS_KIND, **state, "islands": islands})
    return path


def island_journals(directory: Path | str, states: list[dict] | None, workers: int) -> tuple[list[FitCacheJournal], bool]:
    """The fit-cache journals of an island run's islands: those the islands' checkpoint states (``states``,
    read by :func:`read_islands`) name, or new ones (a new run, or states that held their caches); and
    whether the islands' caches as they are still have to be written to them."""
    if states is not None and all("fit_cache" in st for st in states):
        return [FitCacheJournal.resume(directory, st["fit_cache"]) for st in states], False
    return [FitCacheJournal.create(directory, island_fit_cache_name(i)) for i in range(workers)], True


def read_islands(directory: Path | str) -> dict:
    """Read and check ``islands.json``; raise :class:`IslandsCheckpointError` naming the file and the field."""
    path = Path(directory) / ISLANDS_NAME
    doc = load_kind_document(directory, ISLANDS_NAME, ISLANDS_KIND, ISLANDS_SCHEMA, "islands checkpoint",
                             IslandsCheckpointError)
    try:
        validate_islands(doc, journal_read=False)  # the document's own fields first
        doc["islands"] = [resolve_fit_cache(directory, ck, f"islands[{i}]", (island_fit_cache_name(i),))
                          for i, ck in enumerate(doc["islands"])]
        return validate_islands(doc)
    except FieldError as e:
        raise IslandsCheckpointError(f"islands checkpoint {path}: {e}") from None
    except FitCacheError as e:
        raise IslandsCheckpointError(str(e)) from None


def validate_islands(doc: dict, journal_read: bool = True) -> dict:
    """Check every field (each island as a search checkpoint); raise :class:`~.fields.FieldError` naming it."""
    need_keys(doc, "", ("workers", "migrate_every", "migrants", "islands"),
              ("schema", "kind", "elapsed_s", "limits", "restarts", "migrate_seconds"))
    n = need_int(doc["workers"], "workers", 1, MAX_WORKERS)
    need_int(doc["migrate_every"], "migrate_every", 1, 1 << 31)
    need_float(doc.get("migrate_seconds", DEFAULT_MIGRATE_SECONDS), "migrate_seconds", *MIGRATE_SECONDS_RANGE)
    need_int(doc["migrants"], "migrants", 0, 1 << 20)
    need_float(doc.get("elapsed_s", 0.0), "elapsed_s", 0.0, 1e10)
    need_int(doc.get("restarts", 0), "restarts", 0, 1 << 53)
    limits = need_dict(doc.get("limits", {}), "limits")
    need_keys(limits, "limits", (), ("budget_s", "generations"))
    need_float(limits.get("budget_s"), "limits.budget_s", 1e-3, 1e10, allow_null=True)
    if limits.get("generations") is not None:
        need_int(limits["generations"], "limits.generations", 0, 1 << 53)
    islands = need_list(doc["islands"], "islands", MAX_WORKERS)
    if len(islands) != n:
        raise FieldError("islands", f"holds {len(islands)} islands; workers is {n}")
    base = None
    for i, ck in enumerate(islands):
        try:
            validate_checkpoint(ck, (island_fit_cache_name(i),), journal_read)
        except FieldError as e:
            raise FieldError(f"islands[{i}].{e.field}", e.problem) from None
        cfg = SearchConfig.from_json_obj(ck["config"], field=f"islands[{i}].config")
        if base is None:
            base = cfg
        elif island_config(base, i) != cfg:
            raise FieldError(f"islands[{i}].config", "is not island 0's configuration with this island's seed")
    return doc


def merged_front(states: list[dict], config: SearchConfig) -> list[FrontEntry]:
    """The non-dominated set of every island's verified programs (front and reported), in island order."""
    out: list[FrontEntry] = []
    for st in states:
        for e in [*st.get("front", []), *st.get("reported", [])]:
            pareto_insert(out, FrontEntry.from_json_obj(e, config.cost_weights), config.objective)
    return out


def _merge_entries(fronts: list[list[dict]], config: SearchConfig) -> list[FrontEntry]:
    out: list[FrontEntry] = []
    for front in fronts:
        for e in front:
            pareto_insert(out, FrontEntry.from_json_obj(e, config.cost_weights), config.objective)
    return out


# ------------------------------------------------------------------ the driver
@dataclasses.dataclass
class RoundInfo:
    """What a round did, for progress displays and callbacks."""

    round: int
    generations: list[int]
    programs: float
    seconds: float
    front: list[FrontEntry]
    migrated: int


class IslandRun:
    """The driver of an island run: start the islands, run rounds with migration, checkpoint, finish.

    ``config`` is the run's configuration (island 0's); ``states`` the islands' checkpoint states
    of a resumed run (else None), each with its fit cache (``cache``). The caller saves (:meth:`state`,
    :meth:`merged_front`) and closes. The driver keeps each island's fit cache, for restarts and for
    the run directory: islands hand over their new assignments with each checkpoint state (:meth:`collect`).
    """

    def __init__(self, transport, config: SearchConfig, workers: int, migrate_every: int = DEFAULT_MIGRATE_EVERY,
                 migrants: int = DEFAULT_MIGRANTS, states: list[dict] | None = None, elapsed_s: float = 0.0,
                 restarts: int = 0, migrate_seconds: float = DEFAULT_MIGRATE_SECONDS):
        if not 1 <= workers <= MAX_WORKERS:
            raise ValueError(f"workers must be an integer in [1, {MAX_WORKERS}], not {workers}")
        lo, hi = MIGRATE_SECONDS_RANGE
        if not lo <= migrate_seconds <= hi:
            raise ValueError(f"migrate_seconds must be in [{lo:g}, {hi:g}], not {migrate_seconds}")
        self.transport = transport
        self.config = config
        self.workers = workers
        self.migrate_every = migrate_every
        self.migrate_seconds = float(migrate_seconds)
        self.migrants = migrants
        self.configs = [island_config(config, i).to_json_obj() for i in range(workers)]
        self.states: list[dict | None] = [None] * workers
        self.caches: list[dict[str, str]] = [{} for _ in range(workers)]
        self.cache_new: list[list] = [[] for _ in range(workers)]  # assignments not yet in a saved state
        self.cache_held = [0] * workers  # assignments of this session each island has handed over
        for i, st in enumerate(states or []):
            self.caches[i] = dict(st.get("cache", {}))
            self.states[i] = {k: v for k, v in st.items() if k not in ("cache", "fit_cache")}
        self.generations = [0 if st is None else st["generation"] for st in self.states]
        self.fronts: list[list[dict]] = [[] for _ in range(workers)]
        self.limits: dict = {}
        self.restarts = restarts
        self.elapsed0 = elapsed_s
        self._t0 = time.monotonic()
        self.islands: list = []
        self.corrections: list[str] = []
        self.round = 0
        self.started = False

    # -------------------------------------------------------------- plumbing
    @property
    def elapsed(self) -> float:
        """Seconds this run has spent, in all sessions."""
        return self.elapsed0 + (time.monotonic() - self._t0)

    @property
    def clock_started(self) -> float:
        """When (``time.monotonic()``) :attr:`elapsed` started counting this session's time (:meth:`start`)."""
        return self._t0

    def _start_island(self, i: int) -> None:
        """Start island ``i``'s worker (from its last state) and wait until it is ready."""
        for _ in range(MAX_RESTARTS):
            isl = self.transport.start(i)
            if i < len(self.islands):
                self.islands[i] = isl
            else:
                self.islands.append(isl)
            isl.submit("start", i, self.configs[i], self._start_state(i), self.cache_held[i])
            r = self.transport.gather([isl])[0]
            if r is not LOST and self.limits:
                isl.submit("set_limits", self.limits)
                if self.transport.gather([isl])[0] is LOST:
                    r = LOST
            if r is not LOST:
                self.generations[i] = r["generation"]
                self.corrections += [f"island {i}: {c}" for c in r["corrections"]]
                return
            isl.close(timeout=1.0)
        raise IslandError(f"island {i} could not be started ({MAX_RESTARTS} tries); the last checkpoint is kept")

    def start(self) -> None:
        """Start every island (fresh or from its state) and wait until all are ready."""
        self._t0 = time.monotonic()
        self.islands = [self.transport.start(i) for i in range(self.workers)]
        for i, isl in enumerate(self.islands):
            isl.submit("start", i, self.configs[i], self._start_state(i), self.cache_held[i])
        for i, r in enumerate(self.transport.gather(self.islands)):
            if r is LOST:
                self.islands[i].close(timeout=1.0)
                self.restarts += 1
                self._start_island(i)
            else:
                self.generations[i] = r["generation"]
                self.corrections += [f"island {i}: {c}" for c in r["corrections"]]
        self.started = True

    def call_all(self, method: str, args: Callable[[int], tuple] | tuple = ()) -> list:
        """Call ``method`` on every island and return the replies in island order.

        ``args`` is one tuple for all, or a function of the island index. An island whose worker is
        lost is restarted from its last checkpoint state and asked again.
        """
        def args_of(i: int) -> tuple:
            return args(i) if callable(args) else args

        for i, isl in enumerate(self.islands):
            isl.submit(method, *args_of(i))
        results = self.transport.gather(self.islands)
        for _ in range(MAX_RESTARTS):
            lost = [i for i, r in enumerate(results) if r is LOST]
            if not lost:
                return results
            for i in lost:
                self.islands[i].close(timeout=1.0)
                self.restarts += 1
                self._start_island(i)
                self.islands[i].submit(method, *args_of(i))
            for i, r in zip(lost, self.transport.gather([self.islands[i] for i in lost])):
                results[i] = r
        lost = [i for i, r in enumerate(results) if r is LOST]
        if lost:
            raise IslandError(f"island(s) {', '.join(map(str, lost))} lost {MAX_RESTARTS} times in a row; "
                              f"the last checkpoint is kept")
        return results

    # -------------------------------------------------------------- the run
    def set_limits(self, budget_s: float | None, generations: int | None) -> None:
        self.limits = {"budget_s": budget_s, "generations": generations}
        self.call_all("set_limits", (self.limits,))

    def plan(self, run_budget: float) -> dict:
        """Island 0's budget plan (every island has the same configuration and the same machine's speed)."""
        isl = self.islands[0]
        isl.submit("plan", run_budget)
        r = self.transport.gather([isl])[0]
        if r is LOST:
            raise IslandError("island 0 was lost while planning the budget")
        return r

    def _start_state(self, i: int) -> dict | None:
        """Island ``i``'s last checkpoint state with its whole fit cache (None: not checkpointed yet)."""
        st = self.states[i]
        return None if st is None else {**st, "cache": self.caches[i]}

    def journaled(self, state: dict) -> None:
        """Forget the assignments ``state`` (from ``state(cache_delta=True)``) held: they are saved."""
        for i, st in enumerate(state["islands"]):
            if st is not None:
                del self.cache_new[i][: len(st["cache_new"])]

    def cache_pending(self) -> None:
        """The islands' fit caches as they are go with the next ``state(cache_delta=True)`` (to new journals)."""
        self.cache_new = [list(c.items()) for c in self.caches]

    def collect(self) -> None:
        """Fetch every island's checkpoint state (what :meth:`state` saves) and its new fit-cache assignments.

        An island forgets assignments only once a later call says the driver holds them, so replies
        lost to a signal (:meth:`finish_outstanding`) or a lost worker cost none."""
        for i, st in enumerate(self.call_all("checkpoint_state", lambda i: (self.cache_held[i],))):
            new, first = st.pop("cache_new"), st.pop("cache_new_from")
            if first > self.cache_held[i]:
                raise IslandError(f"island {i} dropped fit-cache assignments the driver never got "
                                  f"({first} > {self.cache_held[i]})")
            new = new[self.cache_held[i] - first:]
            self.caches[i].update(new)
            self.cache_new[i] += new
            self.cache_held[i] += len(new)
            self.states[i] = st
            self.generations[i] = st["generation"]

    def state(self, cache_delta: bool = False) -> dict:
        """The islands' checkpoint document (less schema and kind), from the last :meth:`collect`: each
        island's state with its whole fit cache (``cache``), or with ``cache_delta`` the assignments
        collected and not yet saved (``cache_new``: for :func:`save_islands` with the run directory's
        journals; :meth:`journaled` forgets them once saved)."""
        islands = []
        for i, st in enumerate(self.states):
            st = copy.deepcopy(st)
            if st is None:  # (not collected yet)
                islands.append(st)
                continue
            if cache_delta:
                st["cache_new"] = list(self.cache_new[i])
            else:
                st["cache"] = dict(self.caches[i])
            islands.append(st)
        return {"workers": self.workers, "migrate_every": self.migrate_every, "migrate_seconds": self.migrate_seconds,
                "migrants": self.migrants, "elapsed_s": self.elapsed, "limits": dict(self.limits),
                "restarts": self.restarts, "islands": islands}

    def merged_front(self) -> list[FrontEntry]:
        return merged_front([st for st in self.states if st is not None], self.config)

    def request_stop(self) -> None:
        for isl in self.islands:
            isl.request_stop()

    def finish_outstanding(self) -> None:
        """Wait for the calls in flight (after :meth:`request_stop`, a step ends after its generation)."""
        results = self.transport.gather(self.islands)
        for i, r in enumerate(results):
            if isinstance(r, dict) and "generation" in r:
                self.generations[i] = r["generation"]

    def run_rounds(self, generations: int | None, run_budget: float | None,
                   on_round: Callable[["IslandRun", RoundInfo], None] | None = None,
                   on_checkpoint: Callable[["IslandRun"], None] | None = None,
                   checkpoint_every_s: float = 30.0) -> None:
        """Rounds until ``generations`` (per island, total) or the budget; migrate between rounds. A round
        is ``migrate_every`` generations where ``generations`` limits the run, else ``migrate_seconds`` of
        wall time (see the module doc)."""
        last_ckpt = time.monotonic()
        while True:
            if generations is not None and min(self.generations) >= generations:
                break
            left = None if run_budget is None else run_budget - self.elapsed
            if left is not None and left <= 0:
                break
            target = None
            if generations is not None:
                target = min((max(self.generations) // self.migrate_every + 1) * self.migrate_every, generations)

            def step_args(i: int, target=target) -> tuple:  # the budget left now (a restarted island's too)
                left = None if run_budget is None else run_budget - self.elapsed
                return (None, left, self.migrate_seconds) if target is None else (target, left)

            t0 = time.monotonic()
            results = self.call_all("step", step_args)
            self.round += 1
            for i, r in enumerate(results):
                self.generations[i] = r["generation"]
                self.fronts[i] = r["front"]
            if any(r["stopped"] for r in results):
                break  # request_stop: the caller saves or finishes
            out_of_budget = any(r["out_of_budget"] for r in results)
            migrated = 0
            if self.workers > 1 and self.migrants > 0 and not out_of_budget:
                sent = self.call_all("immigrants", (self.migrants,))
                n = self.workers
                migrated = sum(self.call_all("immigrate", lambda i: (sent[(i - 1) % n],)))
            if on_round is not None:
                info = RoundInfo(self.round, list(self.generations), sum(r["programs"] for r in results),
                                 time.monotonic() - t0, _merge_entries(self.fronts, self.config), migrated)
                on_round(self, info)
            if out_of_budget:
                break
            if on_checkpoint is not None and time.monotonic() - last_ckpt >= checkpoint_every_s:
                on_checkpoint(self)
                last_ckpt = time.monotonic()

    def final(self, budget_left_s: float | None) -> tuple[list[FrontEntry], int, list]:
        """Every island's last verification round, in parallel; the merged front, candidates left unverified
        for lack of time, and the islands' final limits."""
        results = self.call_all("final", (budget_left_s,))
        self.fronts = [r["front"] for r in results]
        return (_merge_entries(self.fronts, self.config), sum(r["final_skipped"] for r in results),
                [r["final_limit"] for r in results])

    def pids(self) -> list[int | None]:
        return [isl.pid for isl in self.islands]

    def close(self) -> None:
        for isl in self.islands:
            isl.begin_close()
        for isl in self.islands:
            isl.close()
        self.transport.close()
