"""Checked reading of the JSON documents a search loads back (checkpoints, ``front.json``).

A loaded file is input like any other: each reader below takes a value and the dotted name of
the field it came from, and either returns the value in the type the engine uses or raises
:class:`FieldError` naming the field and what is wrong with it. Callers turn that into a
one-line error naming the file as well (:func:`load_json_document`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Callable, TypeVar

from ..fileio import JSONFileError, read_json

T = TypeVar("T")

#: Largest JSON document a search loads (a checkpoint of a long run is a few MB).
MAX_DOCUMENT_BYTES = 512 << 20
#: Largest program text a loaded file may hold (programs have at most a few dozen instructions).
MAX_PROGRAM_CHARS = 1 << 16


class FieldError(ValueError):
    """A field of a loaded document is missing or holds a value of the wrong type or range."""

    def __init__(self, field: str, problem: str):
        field, problem = _one_line(field), _one_line(problem)
        super().__init__(f"field {field}: {problem}")
        self.field = field
        self.problem = problem


def _one_line(text: str) -> str:
    return text if "\n" not in text and "\r" not in text else json.dumps(text)[1:-1]


def construct(cls: Callable[..., T], kw: dict, field: str) -> T:
    """``cls(**kw)`` for settings read from ``field``; the ValueError of a rejected combination
    becomes a :class:`FieldError` naming the field (its first line)."""
    try:
        return cls(**kw)
    except ValueError as e:
        raise FieldError(field, str(e).splitlines()[0]) from None


def member(field: str, key: str) -> str:
    """The name of ``field``'s member ``key`` (object keys are any string: shortened, newlines escaped)."""
    short = key if len(key) <= 40 else key[:40] + "..."
    if short.isidentifier():
        return f"{field}.{short}" if field else short
    return f"{field}[{json.dumps(short)}]"


def load_json_document(path: Path, unreadable: str) -> Any:
    """Parse the JSON file ``path`` strictly (:func:`pysearch.fileio.read_json`); raise ``ValueError``
    with ``unreadable`` formatted with ``path`` and ``problem`` if it cannot be read.

    NaN/Infinity literals, numbers too long to convert and nesting too deep for the parser are
    refused there, so the field readers only ever see plain JSON values.
    """
    try:
        return read_json(path, "the document", max_chars=MAX_DOCUMENT_BYTES)
    except JSONFileError as e:
        raise ValueError(unreadable.format(path=path, problem=str(e))) from None


def load_kind_document(directory: Path | str, name: str, kind: str, schema: int, what: str,
                       error: type[ValueError], title: str | None = None) -> dict:
    """Read ``directory/name`` as a pysearch ``what`` document: strict JSON of the given ``kind``
    and ``schema``. A missing file is ``FileNotFoundError``; anything else wrong raises ``error``
    (or the ``ValueError`` of :func:`load_json_document`) with one line naming the file
    (``title``, default ``what``, says what a document of another kind is not)."""
    path = Path(directory) / name
    if not path.exists():
        raise FileNotFoundError(f"no {what} in {directory} (expected {path})")
    doc = load_json_document(path, what + " {path} is unreadable: {problem}")
    if not isinstance(doc, dict) or doc.get("kind") != kind:
        raise error(f"{path} is not a pysearch {title or what}")
    if doc.get("schema") != schema:
        raise error(f"{what} {path} has schema {doc.get('schema')!r}; this pysearch reads schema {schema}")
    return doc


def _type_name(v: object) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null",
            int: "an integer", float: "a number"}.get(type(v), type(v).__name__)


def need_dict(v: object, field: str) -> dict:
    if not isinstance(v, dict):
        raise FieldError(field, f"expected an object, found {_type_name(v)}")
    return v


def need_list(v: object, field: str, max_len: int | None = None) -> list:
    if not isinstance(v, list):
        raise FieldError(field, f"expected a list, found {_type_name(v)}")
    if max_len is not None and len(v) > max_len:
        raise FieldError(field, f"holds {len(v)} items, more than {max_len}")
    return v


def need_str(v: object, field: str, max_len: int = MAX_PROGRAM_CHARS, choices: tuple[str, ...] | None = None) -> str:
    if not isinstance(v, str):
        raise FieldError(field, f"expected a string, found {_type_name(v)}")
    if len(v) > max_len:
        raise FieldError(field, f"is {len(v)} characters long, more than {max_len}")
    if choices is not None and v not in choices:
        raise FieldError(field, f"is {v[:40]!r}; expected one of {', '.join(choices)}")
    return v


def need_bool(v: object, field: str) -> bool:
    if not isinstance(v, bool):
        raise FieldError(field, f"expected true or false, found {_type_name(v)}")
    return v


def need_int(v: object, field: str, lo: int, hi: int) -> int:
    """An integer in [lo, hi] (JSON numbers such as 3.0 are not integers here)."""
    if isinstance(v, bool) or not isinstance(v, int):
        raise FieldError(field, f"expected an integer, found {_type_name(v)}")
    if not lo <= v <= hi:
        shown = str(v) if abs(v) < 10**30 else f"a {v.bit_length()}-bit integer"
        raise FieldError(field, f"is {shown}; expected an integer in [{lo}, {hi}]")
    return v


def need_float(v: object, field: str, lo: float = -math.inf, hi: float = math.inf,
               allow_null: bool = False, null_means: float | None = None) -> float | None:
    """A finite number in [lo, hi]; with ``allow_null``, JSON null gives ``null_means``."""
    if v is None and allow_null:
        return null_means
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise FieldError(field, f"expected a number, found {_type_name(v)}")
    try:
        f = float(v)
    except OverflowError:
        raise FieldError(field, "is too large a number") from None
    if not (math.isfinite(f) and lo <= f <= hi):
        raise FieldError(field, f"is {f!r}; expected a finite number in [{lo:g}, {hi:g}]")
    return f


def need_items(v: object, field: str, read: Callable[[object, str], T], max_len: int | None = None) -> list[T]:
    """A list whose items each pass ``read(item, 'field[i]')``."""
    return [read(x, f"{field}[{i}]") for i, x in enumerate(need_list(v, field, max_len))]


def need_keys(d: dict, field: str, required: tuple[str, ...], optional: tuple[str, ...] | None = None) -> None:
    """``d`` has every required key, and (unless ``optional`` is None) no key outside required + optional."""
    for k in required:
        if k not in d:
            raise FieldError(member(field, k), "is missing")
    if optional is None:
        return
    unknown = sorted(set(d) - set(required) - set(optional))
    if unknown:
        raise FieldError(member(field, unknown[0]), "is not a known field")
