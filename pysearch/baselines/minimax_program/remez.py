"""Minimax constants on the real numbers: Remez exchange (linear or Newton) and trust-region
sequential linear programming.

- :func:`remez`: each iteration solves, in mpmath on a reference of n + 1 points (n free
  constants), ``e(x_j) + J_j d = (-1)^j E`` for the constant update ``d`` and the level ``E``:
  for an affine program this is the classical linear Remez system and one solve is exact;
  otherwise it is a Newton step, repeated and halved while the distance from equioscillation on
  the reference drops. The reference is then exchanged for alternating extrema of the new error.
- :func:`slp_minimax`: for nonlinear programs far from equioscillation, where Newton needs a
  better start.
- :func:`linf_lp`: the linear program both this and the storing step solve (min max |r + a z|).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Sequence

import mpmath
import numpy as np

from ..approximations import _alternating
from .problem import Problem, cheb_extrema, cheb_nodes


@dataclass
class RemezResult:
    """Constants from :func:`remez` or :func:`slp_minimax`: max error over the interval, the
    level on the reference (0 if none), the reference, iterations, and whether it converged."""

    constants: list
    error: float
    level: float
    reference: list
    iterations: int
    converged: bool


def _solve_reference(pb: Problem, c: list, free: list[int], ref: list, newton: int) -> tuple[list, float] | None:
    """Constants with e(x_j) = (-1)^j E on the reference: one linear solve (mpmath) for an affine
    program, else Newton steps, halved until the distance from equioscillation drops."""
    N = len(free) + 1
    c = list(c)
    E = None
    tiny = mpmath.mpf(10) ** (-(mpmath.mp.dps - 8))
    for _ in range(newton):
        A = mpmath.matrix(N, N)
        rhs = mpmath.matrix(N, 1)
        for j, x in enumerate(ref):
            e, g = pb.err_grad_mp(x, c)
            if g is None:
                return None if E is None else (c, E)
            for col, k in enumerate(free):
                A[j, col] = g[k]
            A[j, N - 1] = -((-1) ** j)
            rhs[j] = -e
        try:
            sol = mpmath.lu_solve(A, rhs)
        except ZeroDivisionError:
            return None if E is None else (c, E)
        d = [sol[i] for i in range(N - 1)]
        trial = list(c)
        for i, k in enumerate(free):
            trial[k] = c[k] + d[i]
        if pb.model.affine:
            return trial, float(sol[N - 1])
        now = _ref_residual(pb, c, ref)
        step = mpmath.mpf(1)
        while True:
            r = _ref_residual(pb, trial, ref)
            if r is not None and (now is None or r[0] < now[0]):
                break
            step /= 2
            if step < mpmath.mpf(2) ** -20:
                return None if E is None else (c, E)
            trial = list(c)
            for i, k in enumerate(free):
                trial[k] = c[k] + step * d[i]
        c, E = trial, r[1]
        if r[0] <= 1e-12 * abs(E) or max(abs(v) for v in d) * step <= (max(abs(v) for v in c) or 1) * tiny:
            break
    return None if E is None else (c, E)


def _ref_residual(pb: Problem, c: list, ref: list):
    """(max |e_j - (-1)^j E|, E) on the reference with E the mean of (-1)^j e_j; None where the
    program is undefined."""
    es = pb.err(ref, c)
    if np.isinf(es).any():
        return None
    signs = (-1.0) ** np.arange(len(es))
    E = float(np.mean(signs * es))
    return float(np.abs(es - signs * E).max()), E


def remez(
    pb: Problem,
    c: Sequence,
    free: Sequence[int],
    ref: Sequence | None = None,
    max_iter: int = 30,
    tol: float = 1e-9,
    n_sample: int | None = None,
    newton: int = 4,
    deadline: float = math.inf,
) -> RemezResult:
    """Minimax exchange over the constants ``free`` (indices), the others held at ``c``.

    ``newton``: Newton steps per reference for nonlinear programs (the exchange goes on from
    where they leave off). Stops after ``max_iter`` exchanges or at ``deadline``
    (``time.monotonic()``). Returns the best constants seen, by the max error over the interval.
    """
    free = list(free)
    c = [mpmath.mpf(v) for v in c]
    N = len(free) + 1
    n_sample = n_sample or max(64, 12 * N)
    ext = pb.extrema(c, n_sample)
    best = RemezResult(c, max((abs(v) for _, v in ext), default=0.0), 0.0, [], 0, False)
    if not free or math.isinf(best.error):
        return best
    if ref is None or len(ref) != N:
        alt = _alternating(ext, N)
        ref = [t for t, _ in alt] if alt is not None else list(cheb_nodes(pb.a, pb.b, N))
    ref = list(ref)
    for it in range(1, max_iter + 1):
        if time.monotonic() > deadline:
            break
        solved = _solve_reference(pb, c, free, ref, newton)
        if solved is None:
            break
        c_new, E = solved
        ext = pb.extrema(c_new, n_sample, extra=ref)
        if not ext:
            break
        emax = max(abs(v) for _, v in ext)
        if math.isinf(emax) or math.isnan(emax):
            break
        done = emax - abs(E) <= tol * emax
        if emax < best.error or (done and emax <= best.error * (1 + 1e-12)):
            best = RemezResult(c_new, emax, abs(E), list(ref), it, done)
        if done:
            break
        alt = _alternating(ext, N)
        if alt is None:
            break
        c = c_new
        ref = [t for t, _ in alt]
    return best


def slp_minimax(pb: Problem, c: Sequence, free: Sequence[int], iters: int = 40, n_grid: int = 200,
                stall: float = 1e-3, deadline: float = math.inf) -> RemezResult:
    """Minimax by sequential linear programming with a trust region, for nonlinear programs far
    from equioscillation.

    Each step linearises the error on a grid (Chebyshev points plus the current error's
    extrema), minimises the linearised max error with every constant's change bounded (in units
    where a unit change moves the error by about its current size) and keeps the step when the
    error on the grid falls; the trust region grows after a success and shrinks after a failure.
    """
    free = list(free)
    c = [mpmath.mpf(v) for v in c]
    ns = max(64, 12 * (len(free) + 1))
    cheb = cheb_extrema(pb.a, pb.b, n_grid)
    ext = pb.extrema(c, ns)
    start_err = max((abs(v) for _, v in ext), default=0.0)
    start = RemezResult(c, start_err, 0.0, [], 0, False)
    if not free or start_err == 0 or math.isinf(start_err):
        return start
    grid = np.unique(np.concatenate([cheb, [t for t, _ in ext]]))
    rho = 1.0
    cur = float(np.abs(pb.err(grid, c)).max())
    done = 0
    history = [cur]
    for _ in range(iters):
        if time.monotonic() > deadline:
            break
        r = pb.err(grid, c) / cur
        J = pb.jac(grid, c, free) / cur
        colmax = np.maximum(np.abs(J).max(axis=0), 1e-300)
        step = linf_lp(r, J / colmax, rho)  # constant k changes by z_k / colmax_k
        if step is None:
            break
        trial = list(c)
        for i, k in enumerate(free):
            trial[k] = c[k] + mpmath.mpf(float(step[i] / colmax[i]))
        new = float(np.abs(pb.err(grid, trial)).max())
        if new < cur:
            c, cur = trial, new
            rho = min(rho * 2, 1e3)
            done += 1
            if done % 3 == 0:  # refresh the grid with the new error's extrema
                ext = pb.extrema(c, ns)
                grid = np.unique(np.concatenate([cheb, [t for t, _ in ext]]))
                cur = float(np.abs(pb.err(grid, c)).max())
            history.append(cur)
            if len(history) > 6 and cur > (1 - stall) * history[-7]:
                break  # six successful steps gained less than ``stall``
        else:
            rho /= 4
            if rho < 1e-7:
                break
    err = pb.max_abs(c, ns)
    return RemezResult(c, err, 0.0, [], done, False) if err < start_err else start


def linf_lp(r: np.ndarray, a: np.ndarray, bound: float | None) -> np.ndarray | None:
    """z minimising max |r + a z| over the rows, each |z_k| <= ``bound`` (``None``: unbounded),
    by linear programming (HiGHS); ``None`` when the solver fails."""
    from scipy.optimize import linprog  # scipy loads only when a program is polished

    m, n = a.shape
    ones = np.ones((m, 1))
    A_ub = np.vstack([np.hstack([a, -ones]), np.hstack([-a, -ones])])
    b_ub = np.concatenate([-r, r])
    cost = np.zeros(n + 1)
    cost[-1] = 1.0
    box = (None, None) if bound is None else (-bound, bound)
    sol = linprog(cost, A_ub=A_ub, b_ub=b_ub, bounds=[box] * n + [(0, None)], method="highs")
    return sol.x[:n] if sol.success else None
