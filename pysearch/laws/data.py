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
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np


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


def holdout_mask(rule: HoldoutRule, columns: Mapping[str, Sequence[str]], default_column: str) -> np.ndarray:
    """Boolean mask of held-out rows for ``rule`` over raw text columns."""
    col = rule.column or default_column
    if col not in columns:
        raise ValueError(f"--holdout {rule.spec!r} names column {col!r}, which the data lacks; columns: {', '.join(columns)}")
    raw = [str(v).strip() for v in columns[col]]
    if rule.kind == "largest":
        vals = np.array([_number(v) if _number(v) is not None else math.nan for v in raw])
        if np.any(np.isnan(vals)):
            raise ValueError(f"--holdout {rule.spec!r}: column {col!r} is not numeric")
        distinct = np.unique(vals)
        if rule.k >= len(distinct):
            raise ValueError(
                f"--holdout {rule.spec!r}: column {col!r} has only {len(distinct)} distinct value(s); "
                "holding out the largest K must leave some for the fit"
            )
        return vals >= distinct[-rule.k]
    target = _number(rule.value)
    numeric = [_number(v) for v in raw]
    if target is not None and all(v is not None for v in numeric):
        vals = np.array(numeric, dtype=np.float64)
        return {"=": vals == target, ">=": vals >= target, ">": vals > target}[rule.op]
    if rule.op != "=":
        raise ValueError(f"--holdout {rule.spec!r}: {rule.op} needs a numeric column and value")
    return np.array([v == rule.value for v in raw])


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


def read_csv_columns(path: str | Path) -> dict[str, list[str]]:
    """Read a CSV file with a header row into {column: [text values]}."""
    p = Path(path)
    with open(p, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise ValueError(f"{p}: the file is empty; expected a CSV header row") from None
        if len(set(header)) != len(header):
            dup = sorted({h for h in header if header.count(h) > 1})
            raise ValueError(f"{p}: duplicate column name(s) in the header: {', '.join(dup)}")
        cols: dict[str, list[str]] = {h: [] for h in header}
        for lineno, row in enumerate(reader, 2):
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) != len(header):
                raise ValueError(f"{p}, line {lineno}: {len(row)} fields, but the header has {len(header)}")
            for h, v in zip(header, row):
                cols[h].append(v)
    if not cols or not next(iter(cols.values())):
        raise ValueError(f"{p}: no data rows")
    return cols


def load_dataset(path: str | Path, x: Sequence[str], y: str, holdout: str | None = None) -> Dataset:
    """Load the ``x`` columns and ``y`` from a CSV; apply the ``holdout`` rule (see module doc)."""
    x = [c.strip() for c in x]
    if not x or any(not c for c in x):
        raise ValueError("--x needs one or more column names, e.g. --x N,D")
    if len(set(x)) != len(x):
        raise ValueError(f"--x names a column twice: {','.join(x)}")
    if y in x:
        raise ValueError(f"column {y!r} is both an x and the y")
    cols = read_csv_columns(path)
    missing = [c for c in list(x) + [y] if c not in cols]
    if missing:
        raise ValueError(
            f"{path}: missing column(s) {', '.join(repr(c) for c in missing)}; the file has: {', '.join(cols)}"
        )
    arrays = []
    for name in list(x) + [y]:
        vals = np.empty(len(cols[name]))
        for i, text in enumerate(cols[name]):
            v = _number(text.strip())
            if v is None or not math.isfinite(v):
                what = "is empty" if not text.strip() else ("is not finite" if v is not None else "is not a number")
                raise ValueError(f"{path}, data row {i + 1} (line {i + 2}), column {name!r}: {text!r} {what}")
            vals[i] = v
        arrays.append(vals)
    n = len(arrays[0])
    mask = np.zeros(n, dtype=bool)
    rule = None
    if holdout:
        rule = parse_holdout(holdout)
        mask = holdout_mask(rule, cols, x[0])
        if not mask.any():
            raise ValueError(f"--holdout {holdout!r} selects no rows")
        if mask.all():
            raise ValueError(f"--holdout {holdout!r} selects every row, leaving nothing to fit")
    return Dataset(tuple(x), y, np.array(arrays[:-1]), arrays[-1], mask, np.arange(1, n + 1), holdout, str(path))
