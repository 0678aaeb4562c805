"""The fit problem: a program's signed error against a target on an interval, as a function of its constants.

Constants are mpmath numbers; points are float64. :meth:`Problem.err` measures many points in
double-double arithmetic (:class:`~pysearch.double_double.DDProgram`, about 1e-31
absolute in the error), :meth:`Problem.err_grad_mp` one point in mpmath with the gradient
(:class:`~.model.MpModel`), and :meth:`Problem.extrema` finds the error's local extrema.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import mpmath
import numpy as np

from ...program import Program
from ...double_double import DDProgram, dd_add
from .model import MpModel


def cheb_extrema(a: float, b: float, n: int) -> np.ndarray:
    """n + 1 Chebyshev extrema (second kind) on [a, b], ascending."""
    return (a + b) / 2 - (b - a) / 2 * np.cos(np.pi * np.arange(n + 1) / n)


def cheb_nodes(a: float, b: float, n: int) -> np.ndarray:
    """n Chebyshev points of the first kind on [a, b] (interior: safe where the error is pinned
    at an end point), ascending."""
    return (a + b) / 2 - (b - a) / 2 * np.cos(np.pi * (2 * np.arange(n) + 1) / (2 * n))


# ------------------------------------------------------------------------- the fit problem
class Problem:
    """Signed error e(x; c) of a program against f on [a, b] (relative or absolute).

    Constants ``c`` are mpmath numbers; points are float64. ``err`` evaluates many points in
    double-double (accurate to about 1e-31 absolute in e), ``err_grad_mp`` one point in mpmath.
    """

    def __init__(self, program: Program, f: Callable, a: float, b: float, relative: bool) -> None:
        self.model = MpModel(program)
        self.dd = DDProgram(program)
        self.f, self.relative = f, relative
        self.a, self.b = float(a), float(b)
        self._f: dict[float, tuple[float, float, mpmath.mpf]] = {}

    def _fval(self, x: float):
        v = self._f.get(x)
        if v is None:
            fx = self.f(mpmath.mpf(x))
            hi = float(fx)
            v = self._f[x] = (hi, float(fx - hi), fx)
        return v

    def f_dd(self, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        vals = [self._fval(float(x)) for x in xs]
        return np.array([v[0] for v in vals]), np.array([v[1] for v in vals])

    @staticmethod
    def split(c: Sequence) -> tuple[np.ndarray, np.ndarray]:
        """Constants as double-double pairs."""
        hi = np.array([float(v) for v in c])
        lo = np.array([float(mpmath.mpf(v) - mpmath.mpf(h)) for v, h in zip(c, hi)])
        return hi, lo

    def err(self, xs, c) -> np.ndarray:
        """Signed errors at ``xs`` (float64 values; +inf where the program is undefined)."""
        xs = np.asarray(xs, dtype=np.float64)
        chi, clo = self.split(c)
        yh, yl = self.dd(xs, chi, clo)
        fh, fl = self.f_dd(xs)
        with np.errstate(all="ignore"):
            d = dd_add((yh, yl), (-fh, -fl))
            e = d[0] / fh if self.relative else d[0]
        return np.where(np.isfinite(e), e, np.inf)

    def err_grad_mp(self, x: float, c) -> tuple[mpmath.mpf, list | None]:
        fx = self._fval(float(x))[2]
        y, g = self.model.value_grad(mpmath.mpf(x), c)
        if mpmath.isnan(y) or mpmath.isinf(y):
            return mpmath.inf, None
        if self.relative:
            return (y - fx) / fx, [v / fx for v in g]
        return y - fx, g

    def jac(self, xs: np.ndarray, c: Sequence, free: Sequence[int]) -> np.ndarray:
        """d e / d c[free] at ``xs`` (float64)."""
        J = self.model.jacobian(xs, c)[:, list(free)]
        if self.relative:
            J = J / self.f_dd(xs)[0][:, None]
        return J

    def extrema(self, c, n_sample: int, extra=(), iters: int = 48) -> list[tuple[float, float]]:
        """Local extrema (x, e(x)) of |e|, ascending in x: samples (Chebyshev extrema, uniform
        points and ``extra``), then golden-section refinement of every sampled local maximum,
        all brackets at once."""
        xs = np.unique(np.concatenate([cheb_extrema(self.a, self.b, n_sample), np.linspace(self.a, self.b, n_sample + 1),
                                       np.asarray(list(extra), dtype=np.float64)]))
        xs = xs[(xs >= self.a) & (xs <= self.b)]
        es = self.err(xs, c)
        if np.isinf(es).any():
            i = int(np.argmax(np.isinf(es)))
            return [(float(xs[i]), math.inf)]
        ab = np.abs(es)
        left = np.concatenate([[-1.0], ab[:-1]])
        right = np.concatenate([ab[1:], [-1.0]])
        idx = np.flatnonzero((ab >= left) & (ab >= right) & (es != 0))
        if idx.size == 0:
            return []
        s = np.sign(es[idx])
        lo = xs[np.maximum(idx - 1, 0)]
        hi = xs[np.minimum(idx + 1, len(xs) - 1)]
        best_x, best_v = xs[idx].copy(), ab[idx].copy()
        g = (math.sqrt(5) - 1) / 2
        c1, c2 = hi - g * (hi - lo), lo + g * (hi - lo)
        h1, h2 = s * self.err(c1, c), s * self.err(c2, c)
        for _ in range(iters):
            go_left = h1 > h2  # the maximum is in [lo, c2]
            hi = np.where(go_left, c2, hi)
            lo = np.where(go_left, lo, c1)
            new_c1 = np.where(go_left, hi - g * (hi - lo), c2)
            new_c2 = np.where(go_left, c1, lo + g * (hi - lo))
            fresh = np.where(go_left, new_c1, new_c2)
            hf = s * self.err(fresh, c)
            h1, h2 = np.where(go_left, hf, h2), np.where(go_left, h1, hf)
            c1, c2 = new_c1, new_c2
        for cx, hx in ((c1, h1), (c2, h2)):
            better = hx > best_v
            best_x, best_v = np.where(better, cx, best_x), np.where(better, hx, best_v)
        order = np.argsort(best_x)
        return [(float(best_x[i]), float(s[i] * best_v[i])) for i in order]

    def max_abs(self, c, n_sample: int = 200) -> float:
        ext = self.extrema(c, n_sample)
        return max((abs(v) for _, v in ext), default=0.0)
