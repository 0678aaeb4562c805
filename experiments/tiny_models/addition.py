"""Multi-digit addition as token sequences: ``a + b =`` followed by the sum's digits, reversed.

Operands are zero-padded to ``digits`` digits; the answer has ``digits + 1`` digits, least
significant first (the order in which a causal model can carry). Vocabulary: 0-9, '+', '='.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PLUS, EQUALS = 10, 11
VOCAB_SIZE = 12


@dataclass(frozen=True)
class AdditionTask:
    """Fixed-width addition; ``prompt_len`` tokens of question, ``answer_len`` of answer."""

    digits: int = 3

    @property
    def prompt_len(self) -> int:
        return 2 * self.digits + 2

    @property
    def answer_len(self) -> int:
        return self.digits + 1

    @property
    def seq_len(self) -> int:
        return self.prompt_len + self.answer_len

    @property
    def vocab(self) -> int:
        return VOCAB_SIZE

    @property
    def answer_positions(self) -> np.ndarray:
        """Sequence positions of the answer tokens (the last ``answer_len``)."""
        return np.arange(self.prompt_len, self.seq_len)

    def _digits(self, v: np.ndarray, width: int) -> np.ndarray:
        """Most-significant-first digits of each value, shape (n, width)."""
        powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
        return (v[:, None] // powers[None, :]) % 10

    def encode(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Token sequences (n, seq_len) for the operand pairs."""
        a = np.asarray(a, dtype=np.int64)
        b = np.asarray(b, dtype=np.int64)
        n = a.size
        ans = self._digits(a + b, self.answer_len)[:, ::-1]
        return np.concatenate(
            [
                self._digits(a, self.digits),
                np.full((n, 1), PLUS),
                self._digits(b, self.digits),
                np.full((n, 1), EQUALS),
                ans,
            ],
            axis=1,
        ).astype(np.int64)

    def sample_pairs(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        hi = 10**self.digits
        return rng.integers(0, hi, n), rng.integers(0, hi, n)

    def test_set(self, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """A fixed set of ``n`` distinct operand pairs."""
        rng = np.random.default_rng(seed)
        hi = 10**self.digits
        codes = rng.choice(hi * hi, size=n, replace=False)
        return codes // hi, codes % hi

    def train_batch(self, n: int, rng: np.random.Generator, exclude: set[int]) -> np.ndarray:
        """``n`` random sequences whose operand pairs are not in ``exclude`` (codes a * 10^d + b)."""
        a, b = self.sample_pairs(n, rng)
        hi = 10**self.digits
        if exclude:
            keep = np.fromiter(((int(x) * hi + int(y)) not in exclude for x, y in zip(a, b)), bool, n)
            a, b = a[keep], b[keep]
        return self.encode(a, b)
