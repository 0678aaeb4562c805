"""Chained fact recall: answer ``facts`` look-ups in one fixed random table, all of them right.

A fixed random table ``f`` maps each key, a pair of symbols (a, b) from an alphabet of
``symbols`` letters, to one of ``values`` value tokens. An item lists ``facts`` keys, each
followed by its value::

    a1 b1 f(a1,b1)  a2 b2 f(a2,b2)  ...

The answer is the ``facts`` value tokens; an item passes when every one of them is right. Keys
are drawn with Zipf frequencies (rank r has weight (r + 1)^-zipf over a fixed random ranking),
so a model learns the frequent facts first and more of the tail the larger it is: the per-token
loss falls steadily with size, while exact match needs all ``facts`` look-ups at once. Nothing
here needs torch.

Vocabulary: key symbols 0..symbols-1, then value tokens symbols..symbols+values-1.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np


@dataclass(frozen=True)
class RecallTask:
    """``facts`` look-ups per item in a random table over ``symbols``^2 keys with ``values`` values."""

    symbols: int = 32
    values: int = 16
    facts: int = 4
    zipf: float = 1.3
    table_seed: int = 2024

    def __post_init__(self) -> None:
        for name in ("symbols", "values", "facts"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.values < 2:
            raise ValueError(f"values must be >= 2, got {self.values}")
        if not self.zipf >= 0.0:
            raise ValueError(f"zipf must be >= 0, got {self.zipf}")

    @property
    def vocab(self) -> int:
        return self.symbols + self.values

    @property
    def n_keys(self) -> int:
        return self.symbols * self.symbols

    @property
    def seq_len(self) -> int:
        return 3 * self.facts

    @property
    def answer_len(self) -> int:
        return self.facts

    @property
    def answer_positions(self) -> np.ndarray:
        """Sequence positions of the answer (value) tokens."""
        return np.arange(self.facts) * 3 + 2

    @cached_property
    def table(self) -> np.ndarray:
        """f(key) as value index 0..values-1, for key = a * symbols + b."""
        return np.random.default_rng(self.table_seed).integers(0, self.values, self.n_keys)

    @cached_property
    def key_probs(self) -> np.ndarray:
        """Sampling probability of each key (Zipf over a fixed random ranking of the keys)."""
        rng = np.random.default_rng(self.table_seed + 1)
        rank = rng.permutation(self.n_keys)
        w = (rank + 1.0) ** -self.zipf
        return w / w.sum()

    def encode(self, keys: np.ndarray) -> np.ndarray:
        """Token sequences (n, seq_len) for keys of shape (n, facts)."""
        keys = np.asarray(keys, dtype=np.int64)
        if keys.ndim != 2 or keys.shape[1] != self.facts:
            raise ValueError(f"keys must have shape (n, {self.facts}), got {keys.shape}")
        out = np.empty((keys.shape[0], self.seq_len), dtype=np.int64)
        out[:, 0::3] = keys // self.symbols
        out[:, 1::3] = keys % self.symbols
        out[:, 2::3] = self.symbols + self.table[keys]
        return out

    def sample_keys(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.choice(self.n_keys, size=(n, self.facts), p=self.key_probs)

    def test_set(self, n: int, seed: int) -> np.ndarray:
        """A fixed set of ``n`` distinct items (token sequences) drawn from the task distribution."""
        rng = np.random.default_rng(seed)
        seen: set[bytes] = set()
        rows = []
        while len(rows) < n:
            for k in self.sample_keys(2 * (n - len(rows)) + 16, rng):
                b = k.tobytes()
                if b not in seen:
                    seen.add(b)
                    rows.append(k)
                    if len(rows) == n:
                        break
        return self.encode(np.array(rows))

    def train_batch(self, n: int, rng: np.random.Generator, exclude: set[bytes]) -> np.ndarray:
        """``n`` random items, dropping any whose key tuple is in ``exclude`` (see :meth:`item_codes`)."""
        keys = self.sample_keys(n, rng)
        if exclude:
            keep = np.fromiter((k.tobytes() not in exclude for k in keys), bool, n)
            keys = keys[keep]
        return self.encode(keys)

    def item_codes(self, seq: np.ndarray) -> set[bytes]:
        """The key tuples of token sequences, in the form :meth:`train_batch` excludes."""
        seq = np.asarray(seq, dtype=np.int64)
        keys = seq[:, 0::3] * self.symbols + seq[:, 1::3]
        return {k.tobytes() for k in keys}
