"""File IO for what pysearch writes and reads: atomic writes, strict JSON reads.

Writes: every file pysearch produces appears whole or not at all.

A writer creates an exclusive temporary file (``mkstemp``: a fresh name, ``O_EXCL``, mode 0600,
never following a planted symlink) in the target's own directory, writes and fsyncs it, then
renames it over the target. A crash or Ctrl-C leaves the old file (or none), never half a file,
and the temporary file is removed on any error.

Reads: every JSON document a user hands pysearch (fronts, checkpoints, programs, baselines) goes
through :func:`loads_json`/:func:`read_json`, which refuse what Python's ``json`` would let through
or crash on (``NaN``/``Infinity`` tokens, duplicate keys, integers of thousands of digits, nesting
deep enough for ``RecursionError``, oversized or non-UTF-8 files) with a one-line
:class:`JSONFileError` naming the file.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import IO, Callable

#: Files users load (fronts, checkpoints, reports) are JSON with a schema version; this is the layout.
JSON_INDENT = 1
#: Largest JSON document pysearch reads (checkpoints of big populations are a few MB).
MAX_JSON_FILE_CHARS = 256 * 2**20
#: Longest integer (in digits) a JSON document may hold; pysearch's largest are 128-bit RNG words.
MAX_JSON_INT_DIGITS = 100


def os_error_text(e: OSError, *, directory: str = "is a directory") -> str:
    """What went wrong with a path, in a few words for a one-line message (no errno, no path)."""
    if isinstance(e, FileNotFoundError):
        return "no such file"
    if isinstance(e, IsADirectoryError):
        return directory
    if isinstance(e, FileExistsError):
        return "exists and is not a directory"
    if isinstance(e, NotADirectoryError):
        return "a part of the path is a file, not a directory"
    return f"cannot use it: {e.strerror or e}"


class JSONFileError(ValueError):
    """A JSON document that cannot be read; the message is one line and names the document."""


def write_atomic(path: Path | str, write: Callable[[IO], None], *, binary: bool = False) -> Path:
    """Call ``write(fh)`` on a fresh temporary file beside ``path``, then rename it to ``path``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        # mkstemp makes the file 0600; give the result the permissions a plain open() would
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def write_text_atomic(path: Path | str, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return write_atomic(path, lambda fh: fh.write(text))


def write_json_atomic(path: Path | str, obj: object, *, indent: int = JSON_INDENT) -> Path:
    """Write ``obj`` as strict JSON (no NaN/inf) to ``path`` atomically."""
    text = json.dumps(obj, indent=indent, allow_nan=False) + "\n"
    return write_text_atomic(path, text)


def _json_object(pairs: list[tuple[str, object]]) -> dict:
    obj: dict = {}
    for key, value in pairs:
        if key in obj:
            raise JSONFileError(f"key {key[:60]!r} appears twice in one object")
        obj[key] = value
    return obj


def _json_int(digits: str) -> int:
    n = len(digits.lstrip("-"))
    if n > MAX_JSON_INT_DIGITS:
        raise JSONFileError(f"an integer of {n} digits (at most {MAX_JSON_INT_DIGITS})")
    return int(digits)


def _json_constant(token: str) -> float:
    raise JSONFileError(f"{token} is not a JSON value")


def loads_json(text: str, what: str = "JSON", *, max_chars: int = MAX_JSON_FILE_CHARS) -> object:
    """Parse one strict JSON document; any problem is a :class:`JSONFileError` starting with ``what``."""
    if len(text) > max_chars:
        raise JSONFileError(f"{what} is {len(text)} characters; the limit is {max_chars}")
    try:
        return json.loads(text, object_pairs_hook=_json_object, parse_int=_json_int, parse_constant=_json_constant)
    except JSONFileError as e:
        raise JSONFileError(f"{what} is malformed: {e}") from None
    except RecursionError:
        raise JSONFileError(f"{what} is nested too deeply") from None
    except ValueError as e:  # json.JSONDecodeError, or anything else the decoder rejects
        raise JSONFileError(f"{what} is malformed: {' '.join(str(e).split())}") from None


def read_json(path: Path | str, what: str | None = None, *, max_chars: int = MAX_JSON_FILE_CHARS) -> object:
    """Read and parse the JSON file ``path`` strictly (see :func:`loads_json`); errors name the file.

    A missing file is still ``FileNotFoundError`` (callers often treat it as "nothing there yet").
    """
    path = Path(path)
    what = what or str(path)
    if path.is_dir():
        raise JSONFileError(f"{what} is a directory, not a JSON file")
    with open(path, "rb") as fh:
        raw = fh.read(max_chars * 4 + 1)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise JSONFileError(f"{what} is not UTF-8 text (byte {e.start})") from None
    return loads_json(text, what, max_chars=max_chars)
