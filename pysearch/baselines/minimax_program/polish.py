"""The entry point :func:`polish`: minimax constants for a program's structure, then stored in its dtype.

Starts from the program's own constants (and any given starts): Remez exchange, with trust-region
linear programming first for nonlinear programs far from equioscillation, over the constants
whose effects are independent; the best result is stored fpminimax-style and measured by
:func:`~pysearch.baselines.approximations.max_error` (mpmath). Never worse than the start.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Sequence

import mpmath
import numpy as np

from ...program import Program
from ..approximations import DPS, check_domain, max_error, resolve_target
from .problem import Problem, cheb_extrema
from .remez import remez, slp_minimax
from .rounding import costliest, store_constants


@dataclass(frozen=True)
class Polished:
    """Outcome of :func:`polish`.

    ``program`` holds constants stored in its dtype and ``stored_error`` is its max error by
    :func:`max_error` (mpmath). ``exact_constants``/``exact_error`` are the high-precision
    minimax constants before storing (not representable in the program) and their max error;
    ``start_error`` is the input program's. Those two are measured by the module's dense search
    in double-double arithmetic, which agrees with :func:`max_error` to about 1e-31 absolute.
    For an affine program whose storing cost more than 1%, ``info['two_costliest_stored_rest_exact']``
    is the minimax error with the two costliest constants as stored and all others exact: what
    those two roundings alone force on any choice of the rest.
    """

    program: Program
    stored_error: float
    exact_constants: tuple
    exact_error: float
    start_error: float
    affine: bool
    converged: bool
    info: dict = field(default_factory=dict, compare=False)


def polish(
    program: Program,
    target: object,
    domain: Sequence[float],
    weight: str = "relative",
    starts: Sequence[Sequence[float]] = (),
    max_iter: int = 30,
    store: bool = True,
    time_limit: float | None = None,
) -> Polished:
    """High-precision minimax constants for ``program``'s structure on ``domain``.

    ``starts``: extra constant vectors (operand order) to start from besides the program's own;
    the best result is kept. Programs with ops outside :data:`~.model.SUPPORTED_OPS`, or several
    inputs, come back unchanged (``info['skipped']`` says why). The stored program is never
    worse than ``program`` (if storing loses to the start, the start comes back).
    ``time_limit`` (seconds) bounds the fitting; storing and measuring come after it.
    """
    if weight not in ("relative", "absolute"):
        raise ValueError(f"weight must be 'relative' or 'absolute', got {weight!r}")
    a, b = check_domain(domain)
    _, f = resolve_target(target)
    program = program.pruned()
    with mpmath.workdps(DPS):
        try:
            pb = Problem(program, f, a, b, weight == "relative")
        except ValueError as e:
            err = float(max_error(program, target, (a, b), weight=weight))
            return Polished(program, err, tuple(mpmath.mpf(v) for v in program.constants()), err, err, False, False,
                            {"skipped": str(e)})
        model = pb.model
        starts = [[mpmath.mpf(float(v)) for v in s] for s in starts]
        for s in starts:
            if len(s) != model.n:
                raise ValueError(f"a start has {len(s)} constants, the program has {model.n}")
        free = _independent(pb)
        best = None
        start_error = None
        deadline = math.inf if time_limit is None else time.monotonic() + time_limit
        iters = max_iter if model.affine else min(max_iter, 15)
        for s in [model.start, *starts]:
            r = remez(pb, s, free, max_iter=iters, deadline=deadline)
            if start_error is None:
                start_error = pb.max_abs(model.start, max(64, 12 * (len(free) + 1)))
            if not model.affine and not r.converged:
                # far from equioscillation: linear programming steps, then the exchange again
                q = slp_minimax(pb, r.constants, free, deadline=deadline)
                if q.error < r.error:
                    r2 = remez(pb, q.constants, free, max_iter=iters, deadline=deadline)
                    r = r2 if r2.error < q.error else q
            if best is None or r.error < best.error:
                best = r
        info = {"free": len(free), "constants": model.n, "iterations": best.iterations}
        if store:
            stored_c, fit_err = store_constants(pb, best.constants, free, program.dtype)
        else:
            stored_c, fit_err = best.constants, best.error
        info["stored_error_estimate"] = fit_err
        if store and model.affine and len(free) > 2 and fit_err > best.error * 1.01:
            # how much of the loss the two costliest roundings alone force: the others exact
            fixed = costliest(pb, best.constants, free, program.dtype, 2)
            c = list(best.constants)
            for k in fixed:
                c[k] = stored_c[k]
            r = remez(pb, c, [k for k in free if k not in fixed], max_iter=max_iter)
            info["two_costliest_stored_rest_exact"] = r.error
        if fit_err <= start_error:
            cand = program.with_constants([float(v) for v in stored_c])
        else:
            cand = program
            info["kept_start"] = True
        stored_error = float(max_error(cand, target, (a, b), weight=weight))
        return Polished(cand, stored_error, tuple(best.constants), best.error, start_error, model.affine,
                        best.converged, info)


def _independent(pb: Problem) -> list[int]:
    """Constants whose effects on the error are linearly independent at the start (greedy QR on
    a point set, float64): the others are held fixed."""
    n = pb.model.n
    if n == 0:
        return []
    xs = cheb_extrema(pb.a, pb.b, 3 * n + 4)
    J = pb.jac(xs, pb.model.start, range(n))
    J = J[np.isfinite(J).all(axis=1)]
    keep: list[int] = []
    basis: list[np.ndarray] = []
    for k in range(n):
        col = J[:, k]
        norm0 = float(np.linalg.norm(col))
        if norm0 == 0:
            continue
        w = col.copy()
        for _ in range(2):  # twice for orthogonality in floating point
            for q in basis:
                w = w - (q @ w) * q
        nw = float(np.linalg.norm(w))
        if nw > 1e-9 * norm0:
            basis.append(w / nw)
            keep.append(k)
    return keep
