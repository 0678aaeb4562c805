"""Metric ranges and the link functions that keep fitted laws inside them.

A bounded metric (an accuracy in [0, 1], a percentage or BLEU-like score in [0, 100]) is mapped
to the unit interval, z = (y - floor) / (hi - floor), where the floor is the metric's lower end
or, for multiple choice, its chance level (accuracy = chance + (1 - chance) * z). Laws are fitted
to a transform of z that spans the whole real line, logit(z) or log(-log z) (PassUntil), and their
predictions are mapped back through the inverse link, so they can never leave the range.

Values at or beyond the ends (an accuracy of exactly 0 or 1, or below chance) have no finite
transform: they are clipped to eps or 1 - eps in z, with eps = 1 / (2 * n_items) when the test-set
size is known (half the score step of one item) and :data:`DEFAULT_CLIP` otherwise, and the report
lists every clipped point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy.special import expit, logit

__all__ = [
    "DEFAULT_CLIP",
    "DEFAULT_CLIP_ITEMS",
    "PERCENT_HINTS",
    "MetricRangeError",
    "MetricScale",
    "clip_resolution",
    "parse_metric_range",
    "resolve_scale",
]

#: Without a known test-set size, clip as if the benchmark had this many items.
DEFAULT_CLIP_ITEMS = 1000
#: The default clipping resolution in unit scale, 1 / (2 * DEFAULT_CLIP_ITEMS).
DEFAULT_CLIP = 1.0 / (2 * DEFAULT_CLIP_ITEMS)
#: Column-name fragments that mark a 0-100 metric when its values exceed 1 (auto detection).
PERCENT_HINTS = ("bleu", "rouge", "chrf", "meteor", "percent", "pct", "%")


class MetricRangeError(ValueError):
    """A metric range or chance level that contradicts the data or itself."""


def clip_resolution(n_items: int | None = None) -> float:
    """Clipping resolution in unit scale: 1 / (2 * n_items), or :data:`DEFAULT_CLIP` without ``n_items``."""
    if n_items is None:
        return DEFAULT_CLIP
    if int(n_items) != n_items or n_items < 1:
        raise MetricRangeError(f"n_items must be a positive integer, got {n_items}")
    return 1.0 / (2 * int(n_items))


@dataclass(frozen=True)
class MetricScale:
    """The range [lo, hi] of a metric (infinite ends: unbounded), its chance level and clip resolution.

    ``source`` says where the range came from: ``declared``, ``detected`` (all values in [0, 1],
    or in [0, 100] with a name in :data:`PERCENT_HINTS`) or ``unbounded``.
    """

    lo: float = -math.inf
    hi: float = math.inf
    chance: float | None = None
    clip: float = DEFAULT_CLIP
    source: str = "unbounded"

    @property
    def bounded(self) -> bool:
        return math.isfinite(self.lo) and math.isfinite(self.hi)

    @property
    def floor(self) -> float:
        """The score that maps to z = 0: the chance level when given, else the lower end."""
        return self.lo if self.chance is None else self.chance

    def to_unit(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(z, mask of the clipped points): z <= 0 becomes ``clip``, z >= 1 becomes 1 - ``clip``.

        Values strictly inside (0, 1) are kept as measured, however small (a PassUntil estimate
        resolves pass rates far below one item); NaN stays NaN and is not clipped.
        """
        if not self.bounded:
            raise MetricRangeError("an unbounded metric has no unit scale")
        y = np.asarray(y, dtype=float)
        z = (y - self.floor) / (self.hi - self.floor)
        with np.errstate(invalid="ignore"):
            low, high = z <= 0.0, z >= 1.0
        return np.where(low, self.clip, np.where(high, 1.0 - self.clip, z)), low | high

    def from_unit(self, z: np.ndarray) -> np.ndarray:
        """Metric values for unit-scale z in [0, 1]; the result lies in [lo, hi] (rounding included)."""
        y = self.floor + (self.hi - self.floor) * np.asarray(z, dtype=float)
        return np.clip(y, self.lo, self.hi)

    def logit(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(logit of the clipped unit-scale values, clipped mask)."""
        z, clipped = self.to_unit(y)
        return logit(z), clipped

    def from_logit(self, t: np.ndarray) -> np.ndarray:
        """Metric values for logits t (any real, +-inf included): always within [lo, hi]."""
        return self.from_unit(expit(np.asarray(t, dtype=float)))

    def describe(self) -> dict:
        out = {"range": [self.lo, self.hi] if self.bounded else None, "source": self.source}
        if self.bounded:
            out["clip_resolution"] = self.clip
        if self.chance is not None:
            out["chance"] = self.chance
        return out


def parse_metric_range(words: Sequence[str] | str | None) -> tuple[float, float] | str:
    """``--metric-range`` words: ``auto`` (default), ``none`` (unbounded) or ``LO HI``."""
    if words is None:
        return "auto"
    if isinstance(words, str):
        words = words.split()
    words = list(words)
    if len(words) == 1 and words[0].strip().lower() in ("auto", "none"):
        return words[0].strip().lower()
    if len(words) != 2:
        raise MetricRangeError(f"--metric-range takes 'auto', 'none' or two numbers LO HI, got {' '.join(words)!r}")
    try:
        lo, hi = float(words[0]), float(words[1])
    except ValueError:
        raise MetricRangeError(f"--metric-range bounds must be numbers, got {' '.join(words)!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise MetricRangeError(f"--metric-range needs finite LO < HI, got {lo:g} {hi:g}")
    return lo, hi


def resolve_scale(
    name: str,
    y: np.ndarray,
    metric_range: tuple[float, float] | str | None = "auto",
    chance: float | None = None,
    n_items: int | None = None,
) -> MetricScale:
    """The :class:`MetricScale` of metric ``name`` with (non-missing) values ``y``.

    ``metric_range``: ``(lo, hi)`` declared (every value must lie inside it), ``'none'``
    (unbounded: identity link) or ``'auto'``: [0, 1] when every value does, [0, 100] when every
    value does, some exceed 1 and the name contains a :data:`PERCENT_HINTS` fragment (BLEU,
    ROUGE, percent ...), else unbounded. ``chance`` (same units as y) needs a bounded range.
    Contradictions raise :class:`MetricRangeError` with a one-line message naming the metric.
    """
    y = np.asarray(y, dtype=float)
    y = y[~np.isnan(y)]
    clip = clip_resolution(n_items)
    mr = "auto" if metric_range is None else metric_range
    if isinstance(mr, str):
        mr = parse_metric_range(mr)
    if isinstance(mr, tuple):
        lo, hi = mr
        out = (y < lo) | (y > hi)
        if out.any():
            raise MetricRangeError(
                f"metric {name!r} has value {y[out][0]:g} outside the declared range [{lo:g}, {hi:g}] (--metric-range)"
            )
        scale = MetricScale(lo, hi, None, clip, "declared")
    elif mr == "none":
        scale = MetricScale(clip=clip)
    elif y.size and y.min() >= 0.0 and y.max() <= 1.0:
        scale = MetricScale(0.0, 1.0, None, clip, "detected")
    elif y.size and y.min() >= 0.0 and y.max() <= 100.0 and any(h in name.lower() for h in PERCENT_HINTS):
        scale = MetricScale(0.0, 100.0, None, clip, "detected")
    else:
        scale = MetricScale(clip=clip)
    if chance is not None:
        chance = float(chance)
        if not scale.bounded:
            raise MetricRangeError(
                f"metric {name!r}: a chance level needs a bounded metric; give --metric-range LO HI"
            )
        if not (math.isfinite(chance) and scale.lo <= chance < scale.hi):
            raise MetricRangeError(
                f"metric {name!r}: chance level {chance:g} must lie in [{scale.lo:g}, {scale.hi:g})"
            )
        scale = MetricScale(scale.lo, scale.hi, chance, clip, scale.source)
    return scale
