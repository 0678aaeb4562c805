"""Atomic file writes: every file pysearch produces appears whole or not at all.

A writer creates an exclusive temporary file (``mkstemp``: a fresh name, ``O_EXCL``, mode 0600,
never following a planted symlink) in the target's own directory, writes and fsyncs it, then
renames it over the target. A crash or Ctrl-C leaves the old file (or none), never half a file,
and the temporary file is removed on any error.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import IO, Callable

#: Files users load (fronts, checkpoints, reports) are JSON with a schema version; this is the layout.
JSON_INDENT = 1


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
