"""The toy model in which emergence is a property of the metric, not of the model.

Per-token cross-entropy falls as a power law of scale, L_CE(N) = (N / c)^alpha with alpha < 0,
so the probability of each correct token is p(N) = exp(-L_CE(N)). For an answer of ``n_tokens``
tokens, exact-match accuracy is p^n_tokens (a sharp, "emergent" rise), while the expected token
edit distance n_tokens * (1 - p) and the sequence log-probability -n_tokens * L_CE fall smoothly.
Defaults follow Kaplan et al.'s language-model fit (c = 8.8e13 parameters, alpha = -0.076).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["ToyModel", "resolution_limit"]


def resolution_limit(n_items: int, n_tokens: int = 1) -> float:
    """Smallest non-zero score a test set of ``n_items`` answers of ``n_tokens`` tokens can show: 1/(n_items*n_tokens)."""
    if int(n_items) < 1 or int(n_tokens) < 1:
        raise ValueError(f"n_items and n_tokens must be >= 1 (got {n_items}, {n_tokens})")
    return 1.0 / (int(n_items) * int(n_tokens))


@dataclass(frozen=True)
class ToyModel:
    """Power-law per-token loss and the task metrics it implies; N is the parameter count."""

    c: float = 8.8e13
    alpha: float = -0.076
    n_tokens: int = 5

    def __post_init__(self) -> None:
        if not (math.isfinite(self.c) and self.c > 0):
            raise ValueError(f"c must be finite and > 0, got {self.c}")
        if not (math.isfinite(self.alpha) and self.alpha < 0):
            raise ValueError(f"alpha must be finite and < 0 (loss falls with scale), got {self.alpha}")
        if int(self.n_tokens) != self.n_tokens or self.n_tokens < 1:
            raise ValueError(f"n_tokens must be a positive integer, got {self.n_tokens}")

    @staticmethod
    def _n(n: float | np.ndarray) -> np.ndarray:
        a = np.asarray(n, dtype=float)
        if np.any(~np.isfinite(a)) or np.any(a <= 0):
            raise ValueError("scale N must be finite and > 0")
        return a

    def per_token_loss(self, n: float | np.ndarray) -> np.ndarray:
        """Per-token cross-entropy (nats) (N / c)^alpha."""
        return (self._n(n) / self.c) ** self.alpha

    def token_prob(self, n: float | np.ndarray) -> np.ndarray:
        """Probability of each correct token, exp(-L_CE)."""
        return np.exp(-self.per_token_loss(n))

    def exact_match(self, n: float | np.ndarray) -> np.ndarray:
        """Expected exact-match accuracy p^n_tokens."""
        return self.token_prob(n) ** self.n_tokens

    def edit_distance(self, n: float | np.ndarray) -> np.ndarray:
        """Expected token edit distance n_tokens * (1 - p) (each wrong token one substitution)."""
        return self.n_tokens * (1.0 - self.token_prob(n))

    def sequence_log_prob(self, n: float | np.ndarray) -> np.ndarray:
        """Log-probability of the whole correct answer, -n_tokens * L_CE."""
        return -self.n_tokens * self.per_token_loss(n)

    def simulate(self, n: float | np.ndarray, n_items: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Measured task scores on a finite test set of ``n_items`` answers (tokens correct independently).

        Returns arrays over N of ``exact_match`` (fraction of items fully correct) and
        ``edit_distance`` (mean count of wrong tokens); exact match reads 0 well above the
        true value whenever p^n_tokens is below about 1/n_items.
        """
        if int(n_items) < 1:
            raise ValueError(f"n_items must be >= 1, got {n_items}")
        p = np.atleast_1d(self.token_prob(n))
        correct = rng.random((p.size, int(n_items), self.n_tokens)) < p[:, None, None]
        return {
            "exact_match": correct.all(axis=2).mean(axis=1),
            "edit_distance": (~correct).sum(axis=2).mean(axis=1),
        }
