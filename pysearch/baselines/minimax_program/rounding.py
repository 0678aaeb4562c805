"""Storing minimax constants in the program's dtype, fpminimax-style.

:func:`store_constants`: the constant whose rounding costs most is rounded (both neighbours
tried for the costliest two), the remaining ones are re-fitted by linear programming on the
linearised error, and so on; then coordinate moves to nearby representable values.
"""

from __future__ import annotations

from typing import Sequence

import mpmath
import numpy as np

from ...program import round_to_dtype
from ...ulp import neighbour
from .problem import Problem, cheb_extrema
from .remez import linf_lp


def _to_dtype(v: mpmath.mpf, dtype: str) -> mpmath.mpf:
    return mpmath.mpf(round_to_dtype(float(v), dtype))


def spacing(v: float, dtype: str) -> float:
    """The gap above the ``dtype`` value nearest ``|v|`` (the least normal for ``v == 0``): the
    unit in which constants are stored and moved.

    Not :func:`pysearch.ulp.ulp32`, which is the ulp of the real value ``v`` (its binade, not
    that of its rounding: the two differ just below a power of two) with 2^-149 at zero; this
    helper also serves float64.
    """
    t = np.float32 if dtype == "float32" else np.float64
    return float(np.spacing(t(abs(v)))) if v != 0 else float(np.finfo(t).tiny)


def dtype_neighbour(v: float, k: int, dtype: str) -> float:
    """The ``dtype`` value ``k`` representable values above ``v`` (below when negative).

    float32: :func:`pysearch.ulp.neighbour`; float64: ``k`` steps of :func:`numpy.nextafter`.
    Both count -0 and +0 as one place (callers take the result as an mpmath number, which has
    one zero).
    """
    if dtype == "float32":
        return neighbour(v, k)
    x = np.float64(v)
    direction = np.float64(np.inf) if k > 0 else np.float64(-np.inf)
    for _ in range(abs(k)):
        x = np.nextafter(x, direction)
    return float(x)


def store_constants(pb: Problem, exact: list, free: list[int], dtype: str, n_grid: int = 300,
                    rounds: int = 6, branch: int = 2) -> tuple[list, float]:
    """Constants representable in ``dtype`` close to the minimax ones ``exact``.

    fpminimax-style: linearise the error around ``exact`` on a dense grid (Chebyshev and uniform
    points plus the exact solution's extrema); round the constant whose rounding can cost most,
    re-fit the remaining ones to the smallest max error on the grid (a linear program in ulp
    units), and repeat; the ``branch`` costliest constants also try the dtype values around;
    then coordinate moves of +-1, 2, 4, 8 ulps while the grid error drops.
    Returns the constants and their max error over the interval.
    """
    c_exact = [mpmath.mpf(v) for v in exact]
    naive = [_to_dtype(v, dtype) for v in c_exact]
    ns = max(64, 12 * (len(free) + 1))
    exact_err = pb.max_abs(c_exact, ns)
    naive_err = pb.max_abs(naive, ns)
    if not free or exact_err == 0 or naive_err <= exact_err * (1 + 1e-6):
        return naive, naive_err
    grid = np.unique(np.concatenate([cheb_extrema(pb.a, pb.b, n_grid), np.linspace(pb.a, pb.b, n_grid + 1),
                                     [t for t, _ in pb.extrema(c_exact, ns)]]))
    ulp = [mpmath.mpf(spacing(float(v), dtype)) for v in c_exact]
    r = pb.err(grid, c_exact) / exact_err
    ok = np.isfinite(r)
    grid, r = grid[ok], r[ok]
    # error change (units of the exact error) per ulp of each free constant
    A = pb.jac(grid, c_exact, free) / exact_err * np.array([float(ulp[k]) for k in free])

    def offset(k: int, v: mpmath.mpf) -> float:
        """v - exact value, in ulps."""
        return float((v - c_exact[k]) / ulp[k])

    sens = np.abs(A).max(axis=0) / 2
    order = [int(i) for i in np.argsort(-sens)]

    def grid_err(u: np.ndarray) -> float:
        return float(np.abs(r + A @ u).max())

    def descend(u: np.ndarray, rest: list[int]) -> np.ndarray:
        """Round ``rest`` in order, re-fitting the later ones; the first ``branch`` try both sides."""
        if not rest:
            return u
        i, rest = rest[0], rest[1:]
        k = free[i]
        v = c_exact[k] + mpmath.mpf(u[i]) * ulp[k]
        near = _to_dtype(v, dtype)
        cands = [near]
        depth = len(order) - len(rest)
        if depth <= branch:  # also the dtype value on the other side (the first: two each side)
            side = 1 if near < v else -1
            steps = (side, -side, 2 * side) if depth == 1 else (side,)
            cands += [mpmath.mpf(dtype_neighbour(float(near), s, dtype)) for s in steps]
        best = None
        for cv in cands:
            w = u.copy()
            w[i] = offset(k, cv)
            if rest and sens[rest].max() > 1e-6:
                w = _lp_refit(r, A, w, rest)
            w = descend(w, rest)
            if best is None or grid_err(w) < grid_err(best):
                best = w
        return best

    u = descend(np.zeros(len(free)), order)
    vals = [_to_dtype(c_exact[k] + mpmath.mpf(u[i]) * ulp[k], dtype) for i, k in enumerate(free)]
    u = np.array([offset(k, v) for k, v in zip(free, vals)])
    cur = grid_err(u)
    for _ in range(rounds):
        best_move = None
        for i, k in enumerate(free):
            for step in (1, -1, 2, -2, 4, -4, 8, -8):
                v = mpmath.mpf(dtype_neighbour(float(vals[i]), step, dtype))
                du = offset(k, v) - u[i]
                e = float(np.abs(r + A @ u + A[:, i] * du).max())
                if e < cur and (best_move is None or e < best_move[0]):
                    best_move = (e, i, v)
        if best_move is None:
            break
        cur, i, v = best_move
        vals[i] = v
        u[i] = offset(free[i], v)
    c = list(naive)  # constants outside ``free`` were never changed: already dtype values
    for i, k in enumerate(free):
        c[k] = vals[i]
    err = pb.max_abs(c, ns)
    return (c, err) if err < naive_err else (naive, naive_err)


def _lp_refit(r: np.ndarray, A: np.ndarray, u: np.ndarray, cols: list[int]) -> np.ndarray:
    """Offsets ``u[cols]`` minimising max |r + A u| on the grid (others fixed), by linear programming."""
    base = r + np.delete(A, cols, axis=1) @ np.delete(u, cols)
    a = A[:, cols]
    scale = 1.0 / np.maximum(np.abs(a).max(axis=0), 1e-300)
    z = linf_lp(base, a * scale, None)
    out = u.copy()
    if z is not None:
        out[cols] = z * scale
    return out


def costliest(pb: Problem, c: Sequence, free: list[int], dtype: str, k: int) -> list[int]:
    """The ``k`` free constants whose rounding to ``dtype`` can cost most (half an ulp times
    their largest effect on the error)."""
    xs = cheb_extrema(pb.a, pb.b, 200)
    J = np.abs(pb.jac(xs, c, free)).max(axis=0)
    cost = J * np.array([spacing(float(c[i]), dtype) for i in free])
    return [free[i] for i in np.argsort(-cost)[:k]]
