"""The constant-fit cache on disk: an append-only journal beside the checkpoint.

A search's fit cache (structure key -> fitted program text, :attr:`~.loop.Search.cache`) decides
results, so a checkpoint must hold it, and it only grows: a 10-minute tanh run on one core fitted
120,000 structures (49 MB of cache in its checkpoint). Written into the checkpoint document it made
every checkpoint cost as much as the whole cache (every 30 s), and a run of an hour or so wrote a
document larger than a checkpoint may be when it is read back (``fields.MAX_DOCUMENT_BYTES``): a
run that could not be resumed.

So the cache goes to a journal, ``fitcache.jsonl`` (one per island in an island run): a header line
naming the run, then one line ``[key, text]`` per assignment to the cache, in order (a key assigned
again, by a refit that beat the cached fit, has a later line; the last one holds). A checkpoint
appends only the assignments since the previous one, then records in the checkpoint document how
many lines and bytes of the journal belong to it (``fit_cache``: file, run, entries, bytes).
The journal is written and fsynced before the checkpoint is renamed into place, so the document
never names lines that are not on disk; lines past its byte count (a run stopped between the two
writes, or a later checkpoint that never landed) are not read, and are overwritten by the next
append. Reading checks the header's run, the line count and every line, and names the file and
line of the first problem.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Iterable

from .fields import MAX_PROGRAM_CHARS, FieldError, need_dict, need_int, need_keys, need_str

FIT_CACHE_KIND = "pysearch-fit-cache"
FIT_CACHE_SCHEMA = 1
#: The journal of a single-process run; island ``i`` of an island run writes ``fitcache-<i>.jsonl``.
FIT_CACHE_NAME = "fitcache.jsonl"
#: Longest structure key a journal line may hold (keys are a program's ops and operand slots).
MAX_KEY_CHARS = 1 << 16
#: Most lines a journal may hold (far above a run's fits; keeps a corrupt count from meaning hours).
MAX_ENTRIES = 1 << 31


class FitCacheError(ValueError):
    """A fit-cache journal that does not match its checkpoint; the message names the file."""


def island_fit_cache_name(index: int) -> str:
    """The journal file of island ``index``."""
    return f"fitcache-{index}.jsonl"


class FitCacheJournal:
    """The journal of one search's fit cache in a run directory (see the module doc).

    :meth:`create` starts one for a new run, :meth:`resume` continues the one a checkpoint names;
    :meth:`append` writes assignments and :meth:`ref` is what the checkpoint records.
    """

    def __init__(self, path: Path, run: str, entries: int, nbytes: int):
        self.path = Path(path)
        self.run = run
        #: (bytes, entries) the next checkpoint holds: one attribute, so a signal between two updates
        #: cannot leave a count of lines that does not match the bytes
        self.position = (nbytes, entries)

    @property
    def bytes(self) -> int:
        return self.position[0]

    @property
    def entries(self) -> int:
        return self.position[1]

    @classmethod
    def create(cls, directory: Path | str, name: str = FIT_CACHE_NAME) -> "FitCacheJournal":
        """A new journal (an old file of that name, which no checkpoint of this directory names, is replaced)."""
        path = Path(directory) / name
        run = uuid.uuid4().hex
        header = (json.dumps({"kind": FIT_CACHE_KIND, "schema": FIT_CACHE_SCHEMA, "run": run}) + "\n").encode()
        journal = cls(path, run, 0, 0)
        journal._write_at(0, header)
        journal.position = (len(header), 0)
        return journal

    @classmethod
    def resume(cls, directory: Path | str, ref: dict) -> "FitCacheJournal":
        """The journal a checkpoint's ``fit_cache`` names (checked by :func:`check_ref`), continued after
        the lines that checkpoint holds."""
        return cls(Path(directory) / ref["file"], ref["run"], ref["entries"], ref["bytes"])

    def ref(self) -> dict:
        """What a checkpoint records of the journal: its file, run and the lines and bytes it holds."""
        return {"file": self.path.name, "run": self.run, "entries": self.entries, "bytes": self.bytes}

    def append(self, assignments: Iterable[tuple[str, str]]) -> None:
        """Write ``assignments`` (key, text) after the lines written so far (those the last checkpoint holds,
        and any of a save a signal cut short before its checkpoint landed: they are repeated, harmlessly,
        as the same assignments in the same order), and fsync."""
        data = "".join(json.dumps([k, t]) + "\n" for k, t in assignments).encode()
        if not data:
            return
        position = (self.bytes + len(data), self.entries + data.count(b"\n"))
        self._write_at(self.bytes, data)
        self.position = position

    def _write_at(self, offset: int, data: bytes) -> None:
        flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        fd = os.open(self.path, flags, 0o644)
        try:
            os.ftruncate(fd, offset)  # drop lines no checkpoint holds
            os.lseek(fd, offset, os.SEEK_SET)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)


def check_ref(v: object, field: str, names: tuple[str, ...]) -> dict:
    """A checkpoint's ``fit_cache`` field: the journal's file (one of ``names``), run, entries and bytes."""
    ref = need_dict(v, field)
    need_keys(ref, field, ("file", "run", "entries", "bytes"), ())
    need_str(ref["file"], f"{field}.file", choices=names)
    run = need_str(ref["run"], f"{field}.run", 64)
    if not run or not all(c in "0123456789abcdef" for c in run):
        raise FieldError(f"{field}.run", f"{run!r} is not a run id (hex digits)")
    need_int(ref["entries"], f"{field}.entries", 0, MAX_ENTRIES)
    need_int(ref["bytes"], f"{field}.bytes", 1, 1 << 62)
    return ref


def read_fit_cache(directory: Path | str, ref: dict) -> dict[str, str]:
    """The cache a checkpoint's journal holds (``ref`` checked by :func:`check_ref`): its first
    ``ref['entries']`` assignments, the last of each key holding. Raise :class:`FitCacheError` naming
    the file and, for a bad line, its number (the texts are checked as programs by the caller)."""
    path = Path(directory) / ref["file"]
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size < ref["bytes"]:
                raise FitCacheError(f"fit-cache journal {path} holds {size} bytes; the checkpoint needs its first "
                                    f"{ref['bytes']} (the file was truncated or replaced)")
            data = fh.read(ref["bytes"])
    except OSError as e:
        raise FitCacheError(f"fit-cache journal {path} cannot be read ({e.strerror or e}); the checkpoint "
                            f"needs its first {ref['entries']} entries") from None
    if len(data) < ref["bytes"]:
        raise FitCacheError(f"fit-cache journal {path} gave {len(data)} bytes; the checkpoint needs its first "
                            f"{ref['bytes']} (the file changed while it was read)")
    if not data.endswith(b"\n"):
        raise FitCacheError(f"fit-cache journal {path}: the checkpoint's last byte does not end a line "
                            f"(the file was changed)")
    lines = data[:-1].split(b"\n")
    _check_header(path, lines[0], ref["run"])
    if len(lines) - 1 != ref["entries"]:
        raise FitCacheError(f"fit-cache journal {path} holds {len(lines) - 1} entries in its first {ref['bytes']} "
                            f"bytes; the checkpoint says {ref['entries']}")
    cache: dict[str, str] = {}
    for n, line in enumerate(lines[1:], start=2):
        try:
            entry = json.loads(line.decode("utf-8"))
        except (ValueError, RecursionError):  # (UnicodeDecodeError is a ValueError)
            raise FitCacheError(f"fit-cache journal {path}, line {n}: not a JSON line") from None
        if not (isinstance(entry, list) and len(entry) == 2 and all(isinstance(s, str) for s in entry)):
            raise FitCacheError(f"fit-cache journal {path}, line {n}: not a [key, program text] pair")
        key, text = entry
        if len(key) > MAX_KEY_CHARS or len(text) > MAX_PROGRAM_CHARS:
            raise FitCacheError(f"fit-cache journal {path}, line {n}: a key or text over "
                                f"{max(MAX_KEY_CHARS, MAX_PROGRAM_CHARS)} characters")
        cache[key] = text
    return cache


def _check_header(path: Path, line: bytes, run: str) -> None:
    try:
        head = json.loads(line.decode("utf-8"))
    except (ValueError, RecursionError):
        head = None
    if not isinstance(head, dict) or head.get("kind") != FIT_CACHE_KIND:
        raise FitCacheError(f"fit-cache journal {path} does not start with a pysearch fit-cache header")
    if head.get("schema") != FIT_CACHE_SCHEMA:
        raise FitCacheError(f"fit-cache journal {path} has schema {head.get('schema')!r}; this pysearch reads "
                            f"schema {FIT_CACHE_SCHEMA}")
    if head.get("run") != run:
        raise FitCacheError(f"fit-cache journal {path} belongs to another run (run {head.get('run')!r}, the "
                            f"checkpoint's is {run!r})")
