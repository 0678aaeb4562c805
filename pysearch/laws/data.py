"""Scaling data from CSV: column selection, validation with row-level messages, holdout selection.

A holdout rule names the rows kept out of the fit to measure extrapolation:

- ``largest:K`` — rows whose first ``--x`` column takes one of its K largest distinct values;
  ``largest:K:COL`` does the same for column COL.
- ``COL=VALUE``, ``COL>=VALUE``, ``COL>VALUE`` — rows where COL compares so with VALUE
  (numerically when both are numbers, else ``=`` compares text, e.g. ``split=extrapolate``).
"""

from __future__ import annotations

import csv
import math
import re
from array import array
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..fileio import os_error_text


@dataclass(frozen=True)
class HoldoutRule:
    """A parsed ``--holdout`` spec."""

    spec: str
    kind: str  # "largest" or "compare"
    column: str | None = None
    k: int = 0
    op: str = "="
    value: str = ""


_COMPARE = re.compile(r"^\s*([^<>=]+?)\s*(>=|>|=)\s*(.+?)\s*$")


def parse_holdout(spec: str) -> HoldoutRule:
    """Parse ``largest:K[:COL]`` or ``COL=VALUE`` / ``COL>=VALUE`` / ``COL>VALUE``."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError("empty --holdout; expected largest:K, largest:K:COL or COL=VALUE")
    s = spec.strip()
    if s.startswith("largest:"):
        parts = s.split(":")
        if len(parts) not in (2, 3) or not parts[1].isdigit() or int(parts[1]) < 1:
            raise ValueError(f"bad --holdout {spec!r}: expected largest:K or largest:K:COL with K a positive integer")
        return HoldoutRule(s, "largest", parts[2] if len(parts) == 3 else None, int(parts[1]))
    m = _COMPARE.match(s)
    if not m:
        raise ValueError(f"bad --holdout {spec!r}: expected largest:K, largest:K:COL, COL=VALUE, COL>=VALUE or COL>VALUE")
    return HoldoutRule(s, "compare", m.group(1), op=m.group(2), value=m.group(3))


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _floats(texts: Sequence[str]) -> np.ndarray | None:
    """All of ``texts`` as float64 (surrounding spaces allowed), or None if any is not a number."""
    if isinstance(texts, np.ndarray) and texts.dtype == np.float64:
        return texts
    try:
        return np.fromiter(map(float, texts), dtype=np.float64, count=len(texts))
    except ValueError:
        return None


def holdout_mask(rule: HoldoutRule, columns: Mapping[str, Sequence], default_column: str) -> np.ndarray:
    """Boolean mask of held-out rows for ``rule`` over columns of raw text or float64 arrays."""
    col = rule.column or default_column
    if col not in columns:
        raise ValueError(
            f"--holdout {rule.spec!r} names column {col!r}, which the data lacks; columns: {column_list(list(columns))}"
        )
    raw = columns[col]
    if rule.kind == "largest":
        vals = _floats(raw)  # an array of numbers passes through
        if vals is None or np.any(np.isnan(vals)):
            raise ValueError(f"--holdout {rule.spec!r}: column {col!r} is not numeric")
        distinct = np.unique(vals)
        if rule.k >= len(distinct):
            raise ValueError(
                f"--holdout {rule.spec!r}: column {col!r} has only {len(distinct)} distinct value(s); "
                "holding out the largest K must leave some for the fit"
            )
        return vals >= distinct[-rule.k]
    target = _number(rule.value)
    vals = _floats(raw) if target is not None else None
    if vals is not None:
        return {"=": vals == target, ">=": vals >= target, ">": vals > target}[rule.op]
    if rule.op != "=":
        raise ValueError(f"--holdout {rule.spec!r}: {rule.op} needs a numeric column and value")
    return np.array([str(v).strip() == rule.value for v in raw], dtype=bool)


@dataclass
class Dataset:
    """Inputs ``X`` (shape ``(k, n)``, one row per x column), target ``y``, and a holdout mask."""

    x_names: tuple[str, ...]
    y_name: str
    X: np.ndarray
    y: np.ndarray
    holdout: np.ndarray
    rows: np.ndarray  # 1-based data row numbers, for messages
    holdout_rule: str | None = None
    source: str | None = None

    @property
    def n(self) -> int:
        return len(self.y)

    @property
    def train(self) -> tuple[np.ndarray, np.ndarray]:
        m = ~self.holdout
        return self.X[:, m], self.y[m]

    @property
    def test(self) -> tuple[np.ndarray, np.ndarray]:
        return self.X[:, self.holdout], self.y[self.holdout]

    @staticmethod
    def from_arrays(
        x: Mapping[str, Sequence[float]], y: Sequence[float], y_name: str = "y", holdout: Sequence[bool] | None = None
    ) -> "Dataset":
        """A dataset from arrays (``x``: {column name: values}); values are validated as from CSV."""
        names = tuple(x)
        if not names:
            raise ValueError("need at least one x column")
        X = np.array([np.asarray(x[k], dtype=np.float64) for k in names])
        yv = np.asarray(y, dtype=np.float64)
        if X.shape[1] != len(yv):
            raise ValueError(f"x columns have {X.shape[1]} rows but y has {len(yv)}")
        for name, col in zip(names + (y_name,), list(X) + [yv]):
            if not np.all(np.isfinite(col)):
                i = int(np.argmin(np.isfinite(col)))
                raise ValueError(f"row {i + 1}, column {name!r}: value {col[i]!r} is not a finite number")
        mask = np.zeros(len(yv), bool) if holdout is None else np.asarray(holdout, dtype=bool)
        return Dataset(names, y_name, X, yv, mask, np.arange(1, len(yv) + 1))


class DataError(ValueError):
    """A data file that cannot be used: the message names the file, and the line and column where one applies."""


_BOM = b"\xef\xbb\xbf"
_SHOWN = 40  # characters of a bad cell quoted in a message


def _shown(text: str) -> str:
    return repr(text if len(text) <= _SHOWN else text[:_SHOWN] + "...")


def column_list(names: Sequence[str], limit: int = 20) -> str:
    """Column names for a one-line message: plain when printable, else quoted; at most ``limit``."""
    shown = [h if h.isprintable() and "," not in h and len(h) <= _SHOWN else _shown(h) for h in names[:limit]]
    more = f", ... ({len(names)} columns)" if len(names) > limit else ""
    return ", ".join(shown) + more


def _decoded_lines(fb, path: str):
    """Text lines of a binary file: UTF-8 (a leading BOM dropped), line breaks kept for ``csv``.

    Lines end at ``\n``; a lone ``\r`` (old Mac files) also ends one. A NUL byte or bytes that
    are not UTF-8 raise :class:`DataError` naming the line.
    """
    lineno = 0
    for chunk in fb:
        for raw in chunk.splitlines(keepends=True) if b"\r" in chunk[:-2] else (chunk,):
            lineno += 1
            if lineno == 1:
                if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
                    raise DataError(f"{path}: the file is UTF-16 text; save it as UTF-8 CSV")
                raw = raw.removeprefix(_BOM)
            if b"\0" in raw:
                raise DataError(f"{path}, line {lineno}: NUL bytes; this is a binary file, not CSV text")
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DataError(
                    f"{path}, line {lineno}: byte 0x{raw[e.start]:02x} at column {e.start + 1} is not UTF-8; "
                    "save the file as UTF-8 CSV"
                ) from None


def _where(path: str, lines, row: int) -> str:
    return f"{path}, data row {row + 1} (line {int(lines[row])})"


def _to_floats(
    cells: Sequence[str], name: str, where: Callable[[int], str], missing: frozenset[str] = frozenset()
) -> np.ndarray:
    """``cells`` as float64 in one pass; cells in ``missing`` (lower-cased, stripped) become NaN.

    Any other cell that is empty, not a number, or infinite / NaN raises :class:`DataError`
    starting with ``where(i)`` for the cell's index ``i``.
    """
    out = _floats(cells)
    if out is not None and np.all(np.isfinite(out)):
        return out
    out = np.empty(len(cells))
    for i, text in enumerate(cells):
        t = text.strip()
        if t.lower() in missing:
            out[i] = math.nan
            continue
        v = _number(t)
        if v is None or not math.isfinite(v):
            what = "is empty" if not t else ("is not finite" if v is not None else "is not a number")
            raise DataError(f"{where(i)}, column {name!r}: {_shown(text)} {what}")
        out[i] = v
    return out


@dataclass
class CsvTable:
    """Columns of a CSV file, one entry per data row, with the file line where each row starts.

    Columns read as numbers are float64 arrays in ``values``; the others are text in ``text``.
    """

    path: str
    header: tuple[str, ...]
    text: dict[str, list[str]]
    values: dict[str, np.ndarray]
    lines: np.ndarray  # 1-based file line of each data row (blank lines are skipped)

    @property
    def n_rows(self) -> int:
        return len(self.lines)

    @property
    def columns(self) -> dict[str, Sequence]:
        """Every column kept, text or numbers, by name in header order."""
        kept = {**self.text, **self.values}
        return {h: kept[h] for h in self.header if h in kept}

    def where(self, row: int) -> str:
        """``path, data row R (line L)`` for 0-based data row ``row``, the prefix of cell errors."""
        return _where(self.path, self.lines, row)

    def numbers(self, name: str, missing: frozenset[str] = frozenset(), rows: np.ndarray | None = None) -> np.ndarray:
        """Column ``name`` (at 0-based data ``rows``, default all) as float64.

        Cells in ``missing`` (compared lower-cased, stripped) become NaN; any other cell that is
        empty, not a number, or infinite / NaN raises :class:`DataError` naming its line and column.
        """
        if name in self.values:
            return self.values[name] if rows is None else self.values[name][rows]
        col = self.text[name]
        if rows is None:
            return _to_floats(col, name, self.where, missing)
        return _to_floats([col[i] for i in rows], name, lambda i: self.where(int(rows[i])), missing)


def read_csv(
    path: str | Path, columns: Sequence[str] | None = None, optional: Sequence[str] = (), numeric: Sequence[str] = ()
) -> CsvTable:
    """Read a UTF-8 CSV file (a BOM is allowed) with a header row; keep ``columns`` (default: all).

    ``optional`` columns are kept too when the file has them (a caller reports their absence).
    ``numeric`` columns (among ``columns``) are converted to float64 while reading, in blocks of
    rows, so a large file is never held as text; every cell must be a finite number.

    Blank lines are skipped. Every problem raises :class:`DataError` naming the file: missing or
    unreadable, binary or not UTF-8, empty, duplicate or missing columns (listing those the file
    has), ragged rows or a bad number (with the line), no data rows.
    """
    p = str(path)
    try:
        with open(path, "rb") as fb:
            reader = csv.reader(_decoded_lines(fb, p))
            try:
                return _read_rows(reader, p, columns, optional, numeric)
            except csv.Error as e:
                raise DataError(f"{p}, line {reader.line_num}: {e}") from None
    except OSError as e:
        raise DataError(f"{p}: {os_error_text(e, directory='is a directory, not a CSV file')}") from None


_ROWS_PER_BLOCK = 1 << 16


def _read_rows(
    reader, p: str, columns: Sequence[str] | None, optional: Sequence[str], numeric: Sequence[str]
) -> CsvTable:
    header: list[str] = []
    for row in reader:
        if any(c.strip() for c in row):
            header = [h.strip() for h in row]
            break
    if not header:
        raise DataError(f"{p}: the file is empty; expected a CSV header row")
    if len(set(header)) != len(header):
        dup = sorted({h for h in header if header.count(h) > 1})
        raise DataError(f"{p}: duplicate column name(s) in the header: {', '.join(map(_shown, dup[:20]))}")
    wanted = list(dict.fromkeys(header if columns is None else columns))
    missing = [c for c in wanted if c not in header]
    if missing:
        raise DataError(
            f"{p}: missing column(s) {', '.join(map(_shown, missing))}; the file has: {column_list(header)}"
        )
    wanted += [c for c in optional if c in header and c not in wanted]
    idx = [header.index(c) for c in wanted]
    cols: list[list[str]] = [[] for _ in idx]
    appends = [(i, c.append) for i, c in zip(idx, cols)]
    to_convert = [(name, cells, []) for name, cells in zip(wanted, cols) if name in numeric]
    lines = array("q")  # where each kept row starts (a quoted field may span lines)

    def convert() -> None:  # move the numeric columns' text into float64 blocks
        first = len(lines) - len(to_convert[0][1])
        for name, cells, blocks in to_convert:
            blocks.append(_to_floats(cells, name, lambda i: _where(p, lines, first + i)))
            cells.clear()

    width = len(header)
    start = reader.line_num + 1
    pending = 0
    for row in reader:
        if len(row) != width or not all(row):
            if not any(c.strip() for c in row):
                start = reader.line_num + 1
                continue  # a blank line, or only separators
            if len(row) != width:
                raise DataError(f"{p}, line {start}: {len(row)} fields, but the header has {width}")
        for i, append in appends:
            append(row[i])
        lines.append(start)
        start = reader.line_num + 1
        pending += 1
        if pending == _ROWS_PER_BLOCK and to_convert:
            convert()
            pending = 0
    if not lines:
        raise DataError(f"{p}: no data rows below the header")
    if to_convert:
        convert()
    values = {name: np.concatenate(blocks) for name, _, blocks in to_convert}
    text = {name: cells for name, cells in zip(wanted, cols) if name not in values}
    return CsvTable(p, tuple(header), text, values, np.frombuffer(lines, dtype=np.int64).copy())


def column_names(names: Sequence[str], flag: str, example: str) -> list[str]:
    """The stripped column names given to ``flag``; a ValueError if none, one is empty or one repeats."""
    cols = [c.strip() for c in names]
    if not cols or any(not c for c in cols):
        raise ValueError(f"{flag} needs one or more column names, e.g. {flag} {example}")
    if len(set(cols)) != len(cols):
        raise ValueError(f"{flag} names a column twice: {','.join(cols)}")
    return cols


def load_dataset(path: str | Path, x: Sequence[str], y: str, holdout: str | None = None) -> Dataset:
    """Load the ``x`` columns and ``y`` from a CSV; apply the ``holdout`` rule (see module doc)."""
    x = column_names(x, "--x", "N,D")
    if y in x:
        raise ValueError(f"column {y!r} is both an x and the y")
    rule = parse_holdout(holdout) if holdout else None
    holdout_col = [rule.column] if rule and rule.column else []
    table = read_csv(path, list(x) + [y], optional=holdout_col, numeric=list(x) + [y])
    arrays = [table.numbers(name) for name in list(x) + [y]]
    n = table.n_rows
    mask = np.zeros(n, dtype=bool)
    if rule is not None:
        mask = holdout_mask(rule, table.columns, x[0])
        if not mask.any():
            raise ValueError(f"--holdout {holdout!r} selects no rows")
        if mask.all():
            raise ValueError(f"--holdout {holdout!r} selects every row, leaving nothing to fit")
    return Dataset(tuple(x), y, np.array(arrays[:-1]), arrays[-1], mask, np.arange(1, n + 1), holdout, str(path))
