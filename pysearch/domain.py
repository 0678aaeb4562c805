"""Float32 domains: every float32 in a closed interval, or a stratified sample of it."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pysearch import _core
from pysearch._core import DomainError

#: Largest domain `Domain.all()` materialises as an array (larger ones are streamed in Rust).
MAX_MATERIALISED = 1 << 26


@dataclass(frozen=True)
class Domain:
    """The closed interval [a, b] of float32 values (bounds are rounded to float32).

    NaN or reversed bounds raise :class:`DomainError` (a ``ValueError``).
    """

    a: float
    b: float

    def __post_init__(self) -> None:
        for name, v in (("lower", self.a), ("upper", self.b)):
            if not isinstance(v, (int, float, np.floating, np.integer)):
                raise TypeError(f"domain {name} bound must be a number, not {type(v).__name__}")
            if math.isnan(v):
                raise DomainError(f"domain {name} bound is NaN")
        a32, b32 = np.float32(self.a), np.float32(self.b)
        if a32 > b32:
            raise DomainError(f"empty domain: lower bound {self.a} > upper bound {self.b}")
        object.__setattr__(self, "a", float(a32))
        object.__setattr__(self, "b", float(b32))

    @property
    def keys(self) -> tuple[int, int]:
        """First and last key (float32 values in value order, -0 before +0)."""
        return _core.float32_key_range(self.a, self.b)

    def count(self) -> int:
        """Number of float32 values in the domain."""
        lo, hi = self.keys
        return hi - lo + 1

    def all(self) -> np.ndarray:
        """Every float32 in the domain, ascending (only for domains up to 2^26 values)."""
        n = self.count()
        if n > MAX_MATERIALISED:
            raise ValueError(
                f"domain [{self.a}, {self.b}] holds {n} float32 values; too many to materialise "
                "(use pysearch.verify, which streams them)"
            )
        return _core.float32_from_keys(self.keys[0], n)

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        """A stratified sample for search-time fitness, sorted and without duplicates.

        Half the points are uniform in bit pattern (every binade, subnormals included, weighs
        the same), half uniform in value; the edges, their neighbours and every binade boundary
        inside the domain are always included.
        """
        if n < 1:
            raise ValueError(f"sample size must be positive, got {n}")
        total = self.count()
        if total <= n:
            return self.all()
        rng = np.random.default_rng(seed)
        lo, hi = self.keys
        by_bits = rng.integers(lo, hi + 1, size=n // 2)
        x_bits = _keys_to_float32(by_bits)
        a, b = np.float64(self.a), np.float64(self.b)
        if np.isfinite(a) and np.isfinite(b):
            x_val = rng.uniform(a, b, size=n - n // 2).astype(np.float32)
        else:
            x_val = _keys_to_float32(rng.integers(lo, hi + 1, size=n - n // 2))
        edges = [_core.float32_from_keys(lo, min(4, total)), _core.float32_from_keys(max(lo, hi - 3), min(4, total))]
        x = np.concatenate([x_bits, x_val, *edges, self._binade_edges()])
        x = x[(x >= np.float32(self.a)) & (x <= np.float32(self.b))]
        return np.unique(x)

    def _binade_edges(self) -> np.ndarray:
        """Powers of two inside the domain (both signs) and their float32 neighbours."""
        out = []
        for e in range(-149, 128):
            p = np.float32(2.0**e)
            for s in (p, -p):
                if self.a <= s <= self.b:
                    out += [np.nextafter(s, np.float32(-np.inf)), s, np.nextafter(s, np.float32(np.inf))]
        return np.asarray(out, dtype=np.float32)

    def __str__(self) -> str:
        return f"[{self.a!r}, {self.b!r}]"


def _keys_to_float32(keys: np.ndarray) -> np.ndarray:
    """Vectorised inverse of the Rust `key` map (-0 is key -1)."""
    keys = np.asarray(keys, dtype=np.int64)
    bits = np.where(keys >= 0, keys, (-1 - keys) | 0x80000000).astype(np.uint32)
    return bits.view(np.float32)


def as_domain(domain: "Domain | tuple[float, float] | list[float]") -> Domain:
    """Accept a Domain or an (a, b) pair."""
    if isinstance(domain, Domain):
        return domain
    try:
        a, b = domain
    except (TypeError, ValueError):
        raise TypeError(f"a domain is a Domain or a pair (a, b), not {domain!r}") from None
    return Domain(a, b)
