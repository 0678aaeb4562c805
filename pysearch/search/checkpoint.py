"""Search checkpoints: one JSON document, written atomically, read back with clear errors.

The document holds everything the next generation depends on (configuration, population,
archive, constant-fit cache, verified front, RNG state as numpy's JSON-able ``bit_generator.state``),
so a resumed run continues exactly where the checkpoint left it. Never pickle. A run directory's
checkpoint keeps the constant-fit cache in a journal beside it (:mod:`.fitcache`; the document's
``fit_cache`` names the journal's lines that belong to it); a document held in memory, or written
by an older version, holds the cache itself (``cache``).
:func:`committed_state`, :func:`checkpoint_state` and :func:`restore_state` turn a
:class:`~.loop.Search`'s state into the document and back.

A checkpoint is input like any other file: :func:`read_checkpoint` checks every field
(:func:`validate_checkpoint`) and names the file and the field of the first bad one. Figures it
claims about programs (the verified front) are not trusted: the engine verifies them again.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from ..fileio import write_json_atomic
from ..program import parse
from .config import MAX_EXTRA_POINTS, SearchConfig
from .fields import (FieldError, load_kind_document, member, need_dict, need_float, need_int, need_items, need_keys,
                     need_str)
from .fitcache import FIT_CACHE_NAME, FitCacheError, FitCacheJournal, check_ref, read_fit_cache
from .front import FrontEntry

if TYPE_CHECKING:  # the search imports this module; only its type is needed here
    from .loop import Search

CHECKPOINT_SCHEMA = 1
CHECKPOINT_KIND = "pysearch-search-checkpoint"
CHECKPOINT_NAME = "checkpoint.json"

#: Fields of a checkpoint document besides schema and kind; the first four are required.
REQUIRED_FIELDS = ("config", "generation", "rng", "population")
OPTIONAL_FIELDS = ("archive", "rejected", "front", "reported", "extra_x", "evaluations", "optimisations", "logbook",
                   "elapsed_s", "cache", "fit_cache", "verify_cache", "screen_cache", "limits", "problem_state")
#: Bounds on list lengths: far above what a run produces, low enough that loading stays quick.
MAX_PROGRAMS = 1 << 20
LOGBOOK_INT_KEYS = ("gen", "evals", "optimised", "archive", "front")
LOGBOOK_FLOAT_KEYS = ("seconds", "min_ulp", "median_ulp")


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used; the message names the file and the field."""


def save_checkpoint(directory: Path | str, state: dict, journal: FitCacheJournal | None = None) -> Path:
    """Write ``state`` (JSON-able) as the run directory's checkpoint; return its path.

    A state with the cache's new assignments (``cache_new``: ``Search.checkpoint_state(cache_delta=True)``)
    has them appended to ``journal`` first, and records the journal instead (:func:`with_journal`).
    """
    path = Path(directory) / CHECKPOINT_NAME
    doc = {"schema": CHECKPOINT_SCHEMA, "kind": CHECKPOINT_KIND, **with_journal(state, journal)}
    write_json_atomic(path, doc)
    return path


def with_journal(state: dict, journal: FitCacheJournal | None) -> dict:
    """``state`` with its ``cache_new`` assignments written to ``journal`` (fsynced) and replaced by the
    journal's reference (``fit_cache``); a state without ``cache_new`` is returned as it is."""
    if "cache_new" not in state:
        return state
    if journal is None:
        raise ValueError("a checkpoint state with cache_new needs the fit-cache journal to write them to")
    state = dict(state)
    journal.append(state.pop("cache_new"))
    state.pop("cache_new_from", None)
    state["fit_cache"] = journal.ref()
    return state


def resolve_fit_cache(directory: Path | str, doc: dict, field: str = "",
                      names: tuple[str, ...] = (FIT_CACHE_NAME,)) -> dict:
    """``doc`` with the cache of the journal its ``fit_cache`` names read into ``cache`` (a document
    without ``fit_cache`` is returned as it is). Raise :class:`~.fields.FieldError` for a bad field
    (named under ``field``), :class:`~.fitcache.FitCacheError` for a journal that does not match."""
    if not isinstance(doc, dict) or "fit_cache" not in doc:
        return doc
    where = f"{field}." if field else ""
    if "cache" in doc:
        raise FieldError(f"{where}cache", "is present beside fit_cache (one of them holds the cache)")
    ref = check_ref(doc["fit_cache"], f"{where}fit_cache", names)
    return {**doc, "cache": read_fit_cache(directory, ref)}


def load_checkpoint(directory: Path | str) -> dict:
    """Read a run directory's checkpoint document (JSON, kind and schema checked, fields not).

    Raise ``FileNotFoundError``/``ValueError`` naming the problem; :func:`read_checkpoint` checks every field.
    """
    path = Path(directory) / CHECKPOINT_NAME
    doc = load_kind_document(directory, CHECKPOINT_NAME, CHECKPOINT_KIND, CHECKPOINT_SCHEMA, "checkpoint",
                             CheckpointError, title="search checkpoint")
    for key in REQUIRED_FIELDS:
        if key not in doc:
            raise CheckpointError(f"checkpoint {path} is incomplete: no {key!r}")
    return doc


def read_checkpoint(directory: Path | str) -> dict:
    """Load a run directory's checkpoint (and the fit cache of its journal) and check every field; raise
    :class:`CheckpointError` naming the file and the field (or the journal and its line)."""
    doc = load_checkpoint(directory)
    path = Path(directory) / CHECKPOINT_NAME
    try:
        validate_checkpoint(doc, journal_read=False)  # the document's own fields first
        return validate_checkpoint(resolve_fit_cache(directory, doc))
    except FieldError as e:
        raise CheckpointError(f"checkpoint {path}: {e}") from None
    except FitCacheError as e:
        raise CheckpointError(str(e)) from None


def validate_checkpoint(doc: object, fit_cache_names: tuple[str, ...] = (FIT_CACHE_NAME,),
                        journal_read: bool = True) -> dict:
    """Check every field of a checkpoint document; return it with ``config`` as a ``SearchConfig``-ready dict.

    Raise :class:`~.fields.FieldError` naming the first bad field. Program texts must parse, numbers
    must be finite and in range, the RNG state must be numpy PCG64's. A document naming a fit-cache
    journal (``fit_cache``, one of ``fit_cache_names``) must hold the cache read from it
    (:func:`resolve_fit_cache`), unless ``journal_read`` is false (the fields before the journal is read).
    """
    doc = need_dict(doc, "checkpoint")
    need_keys(doc, "", REQUIRED_FIELDS, ("schema", "kind", *OPTIONAL_FIELDS))
    if "fit_cache" in doc:
        check_ref(doc["fit_cache"], "fit_cache", fit_cache_names)
        if "cache" not in doc and journal_read:
            raise FieldError("fit_cache", "names a journal that was not read (read the checkpoint with "
                                          "read_checkpoint)")
    cfg = SearchConfig.from_json_obj(doc["config"], field="config")

    def program(v: object, field: str) -> str:
        text = need_str(v, field)
        try:
            p = parse(text)
        except ValueError as e:
            raise FieldError(field, str(e).splitlines()[0]) from None
        if p.dtype != cfg.dtype or len(p.inputs) != 1:
            raise FieldError(field, f"is not a one-input {cfg.dtype} program")
        return text

    def entry(v: object, field: str) -> dict:
        FrontEntry.from_json_obj(v, cfg.cost_weights, field)
        return v  # type: ignore[return-value]

    def point(v: object, field: str) -> str:
        try:
            x = float.fromhex(need_str(v, field, 64))
        except (ValueError, OverflowError):
            raise FieldError(field, f"{v!r} is not a hex float") from None
        if not cfg.domain[0] <= x <= cfg.domain[1]:
            raise FieldError(field, f"{x!r} lies outside the domain")
        return v  # type: ignore[return-value]

    need_int(doc["generation"], "generation", 0, 1 << 53)
    _check_rng(doc["rng"])
    if not need_items(doc["population"], "population", program, MAX_PROGRAMS):
        raise FieldError("population", "is empty")
    need_items(doc.get("archive", []), "archive", program, MAX_PROGRAMS)
    need_items(doc.get("rejected", []), "rejected", need_str, MAX_PROGRAMS)
    need_items(doc.get("front", []), "front", entry, MAX_PROGRAMS)
    need_items(doc.get("reported", []), "reported", entry, MAX_PROGRAMS)
    need_items(doc.get("extra_x", []), "extra_x", point, MAX_EXTRA_POINTS)
    need_int(doc.get("evaluations", 0), "evaluations", 0, 1 << 63)
    need_int(doc.get("optimisations", 0), "optimisations", 0, 1 << 63)
    need_float(doc.get("elapsed_s", 0.0), "elapsed_s", 0.0, 1e10)
    need_items(doc.get("logbook", []), "logbook", _check_log_record, MAX_PROGRAMS)
    for k, v in need_dict(doc.get("cache", {}), "cache").items():
        program(v, member("cache", k))
    need_dict(doc.get("verify_cache", {}), "verify_cache")  # written by older versions; not trusted, not read
    for k, v in need_dict(doc.get("screen_cache", {}), "screen_cache").items():
        need_float(v, member("screen_cache", k), 0.0, allow_null=True)
    limits = need_dict(doc.get("limits", {}), "limits")
    need_keys(limits, "limits", (), ("budget_s", "generations"))
    need_float(limits.get("budget_s"), "limits.budget_s", 1e-3, 1e10, allow_null=True)
    if limits.get("generations") is not None:
        need_int(limits["generations"], "limits.generations", 0, 1 << 53)
    return doc


def _check_rng(v: object) -> None:
    """numpy's PCG64 ``bit_generator.state``: 128-bit state and increment, a buffered 32-bit word."""
    rng = need_dict(v, "rng")
    need_keys(rng, "rng", ("bit_generator", "state", "has_uint32", "uinteger"))
    need_str(rng["bit_generator"], "rng.bit_generator", choices=("PCG64",))
    st = need_dict(rng["state"], "rng.state")
    need_keys(st, "rng.state", ("state", "inc"), ())
    need_int(st["state"], "rng.state.state", 0, (1 << 128) - 1)
    need_int(st["inc"], "rng.state.inc", 0, (1 << 128) - 1)
    need_int(rng["has_uint32"], "rng.has_uint32", 0, 1)
    need_int(rng["uinteger"], "rng.uinteger", 0, (1 << 32) - 1)


def _check_log_record(v: object, field: str) -> dict:
    rec = need_dict(v, field)
    need_keys(rec, field, (), LOGBOOK_INT_KEYS + LOGBOOK_FLOAT_KEYS)
    for k in LOGBOOK_INT_KEYS:
        if k in rec:
            need_int(rec[k], f"{field}.{k}", 0, 1 << 63)
    for k in LOGBOOK_FLOAT_KEYS:
        if k in rec:
            need_float(rec[k], f"{field}.{k}", 0.0, allow_null=True)
    return rec


# ------------------------------------------------------------ a search's state <-> the document
def json_float(v: float):
    """``v``, or ``None`` where it is not finite (JSON has no inf/nan)."""
    return v if math.isfinite(v) else None


def committed_state(search: Search) -> dict:
    """Snapshot of the state at a generation boundary (what a checkpoint records)."""
    return {
        "generation": search.generation,
        "rng": copy.deepcopy(search.rng.bit_generator.state),
        "population": [ind.text for ind in search.population],
        "archive": [ind.text for ind in search.archive],
        "cache_len": len(search.cache),
        "cache_new_end": search.cache_new_from + (0 if search.cache_new is None else len(search.cache_new)),
        "rejected": sorted(search.rejected),
        "front": [e.to_json_obj() for e in search.front],
        "extra_x": [float(v).hex() for v in search.extra_x],
        "evaluations": search.evaluations,
        "optimisations": search.optimisations,
        # the logbook only grows, and a record is not changed once written: its length is the
        # snapshot (a copy of every record at every generation grew with the run: quadratic time)
        "logbook_len": len(search.logbook),
    }


def checkpoint_state(search: Search, cache_delta: bool = False) -> dict:
    """The last committed state as a JSON-able dict (plus the time-saving caches).

    The fit cache is the whole committed cache (``cache``), or with ``cache_delta`` the committed
    assignments to it not yet in the run's journal (``cache_new``, ``[key, text]`` pairs in order;
    ``cache_new_from``, the number of the first): the caller writes them to the journal
    (:func:`with_journal`) and then drops them (``Search.drop_cache_new``).
    """
    c = search._committed
    state = {k: v for k, v in c.items() if k not in ("cache_len", "cache_new_end", "logbook_len")}
    if cache_delta:
        if search.cache_new is None:
            raise ValueError("this search does not note its cache assignments (note_cache_assignments)")
        n = c["cache_new_end"] - search.cache_new_from
        state["cache_new"] = [list(a) for a in search.cache_new[:n]]
        state["cache_new_from"] = search.cache_new_from
    else:
        state["cache"] = dict(list(search.cache.items())[: c["cache_len"]])
    state["logbook"] = [{k: (json_float(v) if isinstance(v, float) else v) for k, v in r.items()}
                        for r in search.logbook[: c["logbook_len"]]]
    state.update(
        config=search.config.to_json_obj(),
        elapsed_s=search.elapsed,
        reported=[e.to_json_obj() for e in search.reported],
        limits=dict(search.limits),
        screen_cache={t: json_float(v) for t, v in search.screen_cache.items()},
    )
    return state


def restore_state(search: Search, ck: dict) -> None:
    """Continue from a checkpoint document (checked by :func:`validate_checkpoint`)."""
    weights = search.config.cost_weights
    search.rng.bit_generator.state = ck["rng"]
    search.generation = ck["generation"]
    search.extra_x = [float.fromhex(v) for v in ck.get("extra_x", [])]
    search._rebuild_sample()
    search.cache = dict(ck.get("cache", {}))
    search.screen_cache = {t: (math.inf if v is None else float(v)) for t, v in ck.get("screen_cache", {}).items()}
    search.rejected = set(ck.get("rejected", []))
    search.front = search.reverify([FrontEntry.from_json_obj(e, weights) for e in ck.get("front", [])], "checkpoint")
    search.reported = search.reverify([FrontEntry.from_json_obj(e, weights) for e in ck.get("reported", [])],
                                    "checkpoint")
    restore_population(search, ck, parse)
    try:  # after the re-scoring above (the problem's state: restarts, see float32_problem)
        search.problem.restore(need_dict(ck.get("problem_state", {}), "problem_state"))
    except FieldError as e:
        raise ValueError(f"checkpoint is malformed: {e}") from None


def restore_population(search: Search, ck: dict, genome: Callable[[str], object]) -> None:
    """The part of a restore every problem shares: population and archive re-scored from their
    texts (read by ``genome``), the counters, the run's limits and the logbook."""
    search.population = search._score([genome(t) for t in ck["population"]])
    search.archive.update(search._score([genome(t) for t in ck.get("archive", [])]))
    search.evaluations = ck.get("evaluations", 0)
    search.optimisations = ck.get("optimisations", 0)
    search.elapsed = float(ck.get("elapsed_s", 0.0))
    search.limits = dict(ck.get("limits", {}))
    for rec in ck.get("logbook", []):
        search.logbook.record(**{k: (math.inf if v is None else v) for k, v in rec.items()})
