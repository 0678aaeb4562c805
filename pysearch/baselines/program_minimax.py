"""Minimax constants for a fixed program structure, in high precision.

Given a program, its constants are re-fitted to minimise the real-number max relative (or
absolute) error against a target on an interval, keeping the program's own parameterisation
(its operation graph) fixed. Two evaluators serve the fit: mpmath (50 digits) with exact
derivatives in the constants (forward mode) for the small exact solves, and double-double
numpy (:mod:`pysearch.double_double`, about 32 digits, constants as double-double pairs)
for the error at many points, which is what costs time.

- :func:`affine_in_constants`: whether the output is affine in the constants (Horner and
  Estrin ``fma`` chains are; products of constants, divisions by constant-dependent values and
  square roots are not), decided from the operation graph.
- :func:`remez`: Remez exchange on the program's error. Each iteration solves, in mpmath on a
  reference of n + 1 points (n free constants), ``e(x_j) + J_j d = (-1)^j E`` for the constant
  update ``d`` and the level ``E``: for an affine program this is the classical linear Remez
  system and one solve is exact; otherwise it is a Newton step, repeated and halved while the
  distance from equioscillation on the reference drops. The reference is then exchanged for
  alternating extrema of the new error (dense sampling plus golden-section refinement).
- :func:`slp_minimax`: for nonlinear programs far from equioscillation, where Newton needs a
  better start: trust-region sequential linear programming on a dense grid.
- :func:`store_constants`: constants for the program's dtype, fpminimax-style: the constant
  whose rounding costs most is rounded (both neighbours tried for the costliest two), the
  remaining ones are re-fitted by linear programming on the linearised error, and so on; then
  coordinate moves to nearby representable values.
- :func:`polish`: all of the above. The result holds the exact (high-precision) constants with
  their error, and the stored program with its error measured by :func:`max_error` (mpmath);
  it is never worse than the program it started from.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import mpmath
import numpy as np

from ..program import Program, round_to_dtype
from ..double_double import DD_OPS, DDProgram, dd_add
from .approximations import DPS, _alternating, check_domain, max_error, resolve_target

#: Operations the evaluators handle (the registry's ``dd`` ops; a program with any other op comes back unchanged).
SUPPORTED_OPS = DD_OPS

_NONPOLY = math.inf


def constant_degree(program: Program) -> float:
    """Polynomial degree of the output in the constants (``inf`` if not a polynomial in them)."""
    program = program.pruned()
    deg: list[float] = []
    for ins in program.instrs:
        d = [1.0 if a.kind == "const" else 0.0 if a.kind == "input" else deg[a.index] for a in ins.args]
        if ins.op in ("add", "sub"):
            deg.append(max(d))
        elif ins.op == "mul":
            deg.append(d[0] + d[1])
        elif ins.op == "fma":
            deg.append(max(d[0] + d[1], d[2]))
        elif ins.op == "div":
            deg.append(d[0] if d[1] == 0 else _NONPOLY)
        elif ins.op == "neg":
            deg.append(d[0])
        else:
            deg.append(0.0 if max(d) == 0 else _NONPOLY)
    return deg[program.output]


def affine_in_constants(program: Program) -> bool:
    """True when the program's output is an affine function of its constants."""
    return constant_degree(program) <= 1


# ------------------------------------------------------------------------- evaluators
class MpModel:
    """A one-input program with free constants: mpmath value and gradient in the constants at a
    point, and a float64 Jacobian at many points."""

    def __init__(self, program: Program) -> None:
        program = program.pruned()
        bad = sorted({ins.op for ins in program.instrs} - set(SUPPORTED_OPS))
        if bad:
            raise ValueError(f"polish supports {', '.join(SUPPORTED_OPS)}; the program uses {', '.join(bad)}")
        if len(program.inputs) != 1:
            raise ValueError(f"polish takes one-input programs, got inputs {program.inputs}")
        self.program = program
        self.affine = affine_in_constants(program)
        self.code = program.numbered_operands()
        self.start = [mpmath.mpf(v) for v in program.constants()]
        self.n = len(self.start)

    def value_grad(self, x: mpmath.mpf, c: Sequence[mpmath.mpf]) -> tuple[mpmath.mpf, list[mpmath.mpf]]:
        """Output and its gradient in the constants at ``x`` (nan value where undefined)."""
        n = self.n
        zero = mpmath.mpf(0)
        vals: list[tuple[mpmath.mpf, list | None]] = []
        try:
            for op, args in self.code:
                a = []
                for kind, i in args:
                    if kind == "const":
                        g = [zero] * n
                        g[i] = mpmath.mpf(1)
                        a.append((c[i], g))
                    else:
                        a.append((x, None) if kind == "input" else vals[i])
                vals.append(_forward(op, a, n))
        except ZeroDivisionError:
            return mpmath.nan, [mpmath.nan] * n
        v, g = vals[self.program.output]
        return v, (g if g is not None else [zero] * n)

    def jacobian(self, xs: np.ndarray, c: Sequence) -> np.ndarray:
        """d output / d constants at the points ``xs`` in float64, shape (len(xs), n): for
        linearised steps, where float64 derivatives are plenty."""
        xs = np.asarray(xs, dtype=np.float64)
        cf = [float(v) for v in c]
        m = len(xs)
        vals: list = []
        with np.errstate(all="ignore"):
            for op, args in self.code:
                a = []
                for kind, i in args:
                    if kind == "const":
                        g = np.zeros((m, self.n))
                        g[:, i] = 1.0
                        a.append((np.full(m, cf[i]), g))
                    else:
                        a.append((xs, None) if kind == "input" else vals[i])
                vals.append(_forward_np(op, a))
        g = vals[self.program.output][1]
        return np.zeros((m, self.n)) if g is None else g


def _add(g1, g2, s=1):
    if g1 is None:
        return None if g2 is None else ([-v for v in g2] if s < 0 else g2)
    if g2 is None:
        return g1
    return [u + s * v for u, v in zip(g1, g2)]


def _scale(g, k):
    return None if g is None else [k * v for v in g]


def _forward(op: str, a: list, n: int):
    """One operation on (value, gradient) pairs; a gradient of None means 'does not depend on c'."""
    if op == "add":
        return a[0][0] + a[1][0], _add(a[0][1], a[1][1])
    if op == "sub":
        return a[0][0] - a[1][0], _add(a[0][1], a[1][1], -1)
    if op == "mul" or op == "fma":
        (u, gu), (w, gw) = a[0], a[1]
        g = _add(_scale(gu, w), _scale(gw, u))
        if op == "mul":
            return u * w, g
        return u * w + a[2][0], _add(g, a[2][1])
    if op == "div":
        (u, gu), (w, gw) = a
        v = u / w
        return v, _scale(_add(gu, _scale(gw, v), -1), 1 / w)
    if op == "neg":
        return -a[0][0], _scale(a[0][1], -1)
    u, gu = a[0]
    if u < 0:
        return mpmath.nan, None if gu is None else [mpmath.nan] * n
    v = mpmath.sqrt(u)
    return v, _scale(gu, 1 / (2 * v))


def _forward_np(op: str, a: list):
    """:func:`_forward` on numpy arrays (values (m,), gradients (m, n) or None)."""
    def add(g1, g2, s=1.0):
        if g1 is None:
            return None if g2 is None else s * g2
        return g1 if g2 is None else g1 + s * g2

    def scale(g, k):
        return None if g is None else g * k[:, None]

    if op in ("add", "sub"):
        s = 1.0 if op == "add" else -1.0
        return a[0][0] + s * a[1][0], add(a[0][1], a[1][1], s)
    if op in ("mul", "fma"):
        (u, gu), (w, gw) = a[0], a[1]
        g = add(scale(gu, w), scale(gw, u))
        if op == "mul":
            return u * w, g
        return u * w + a[2][0], add(g, a[2][1])
    if op == "div":
        (u, gu), (w, gw) = a
        v = u / w
        return v, scale(add(gu, scale(gw, v), -1.0), 1.0 / w)
    if op == "neg":
        return -a[0][0], None if a[0][1] is None else -a[0][1]
    u, gu = a[0]
    v = np.sqrt(u)
    return v, scale(gu, 0.5 / v)


def _cheb(a: float, b: float, n: int) -> np.ndarray:
    """n + 1 Chebyshev extrema (second kind) on [a, b], ascending."""
    return (a + b) / 2 - (b - a) / 2 * np.cos(np.pi * np.arange(n + 1) / n)


def _cheb_nodes(a: float, b: float, n: int) -> np.ndarray:
    """n Chebyshev points of the first kind on [a, b] (interior: safe where the error is pinned
    at an end point), ascending."""
    return (a + b) / 2 - (b - a) / 2 * np.cos(np.pi * (2 * np.arange(n) + 1) / (2 * n))


# ------------------------------------------------------------------------- the fit problem
class _Problem:
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
        xs = np.unique(np.concatenate([_cheb(self.a, self.b, n_sample), np.linspace(self.a, self.b, n_sample + 1),
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


# ------------------------------------------------------------------------- Remez exchange
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


def _solve_reference(pb: _Problem, c: list, free: list[int], ref: list, newton: int) -> tuple[list, float] | None:
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


def _ref_residual(pb: _Problem, c: list, ref: list):
    """(max |e_j - (-1)^j E|, E) on the reference with E the mean of (-1)^j e_j; None where the
    program is undefined."""
    es = pb.err(ref, c)
    if np.isinf(es).any():
        return None
    signs = (-1.0) ** np.arange(len(es))
    E = float(np.mean(signs * es))
    return float(np.abs(es - signs * E).max()), E


def remez(
    pb: _Problem,
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
        ref = [t for t, _ in alt] if alt is not None else list(_cheb_nodes(pb.a, pb.b, N))
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


def slp_minimax(pb: _Problem, c: Sequence, free: Sequence[int], iters: int = 40, n_grid: int = 200,
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
    cheb = _cheb(pb.a, pb.b, n_grid)
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
        step = _lp_step(r, J / colmax, rho)  # constant k changes by z_k / colmax_k
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


def _lp_step(r: np.ndarray, a: np.ndarray, rho: float) -> np.ndarray | None:
    """z with |z_k| <= rho minimising max |r + a z| (a linear program)."""
    from scipy.optimize import linprog

    m, n = a.shape
    ones = np.ones((m, 1))
    A_ub = np.vstack([np.hstack([a, -ones]), np.hstack([-a, -ones])])
    b_ub = np.concatenate([-r, r])
    cost = np.zeros(n + 1)
    cost[-1] = 1.0
    sol = linprog(cost, A_ub=A_ub, b_ub=b_ub, bounds=[(-rho, rho)] * n + [(0, None)], method="highs")
    return sol.x[:n] if sol.success else None


# ------------------------------------------------------------------------- storing in a dtype
def _to_dtype(v: mpmath.mpf, dtype: str) -> mpmath.mpf:
    return mpmath.mpf(round_to_dtype(float(v), dtype))


def _ulp(v: float, dtype: str) -> float:
    t = np.float32 if dtype == "float32" else np.float64
    return float(np.spacing(t(abs(v)))) if v != 0 else float(np.finfo(t).tiny)


def _neighbour(v: float, k: int, dtype: str) -> float:
    t = np.float32 if dtype == "float32" else np.float64
    x = t(v)
    direction = t(np.inf) if k > 0 else t(-np.inf)
    for _ in range(abs(k)):
        x = np.nextafter(x, direction)
    return float(x)


def store_constants(pb: _Problem, exact: list, free: list[int], dtype: str, n_grid: int = 300,
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
    grid = np.unique(np.concatenate([_cheb(pb.a, pb.b, n_grid), np.linspace(pb.a, pb.b, n_grid + 1),
                                     [t for t, _ in pb.extrema(c_exact, ns)]]))
    ulp = [mpmath.mpf(_ulp(float(v), dtype)) for v in c_exact]
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
            cands += [mpmath.mpf(_neighbour(float(near), s, dtype)) for s in steps]
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
                v = mpmath.mpf(_neighbour(float(vals[i]), step, dtype))
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
    from scipy.optimize import linprog

    base = r + np.delete(A, cols, axis=1) @ np.delete(u, cols)
    a = A[:, cols]
    scale = 1.0 / np.maximum(np.abs(a).max(axis=0), 1e-300)
    a = a * scale
    ones = np.ones((len(base), 1))
    A_ub = np.vstack([np.hstack([a, -ones]), np.hstack([-a, -ones])])
    b_ub = np.concatenate([-base, base])
    cost = np.zeros(len(cols) + 1)
    cost[-1] = 1.0
    sol = linprog(cost, A_ub=A_ub, b_ub=b_ub, bounds=[(None, None)] * len(cols) + [(0, None)], method="highs")
    out = u.copy()
    if sol.success:
        out[cols] = sol.x[:-1] * scale
    return out


# ------------------------------------------------------------------------- the entry point
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
    the best result is kept. Programs with ops outside :data:`SUPPORTED_OPS`, or several
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
            pb = _Problem(program, f, a, b, weight == "relative")
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
            fixed = _costliest(pb, best.constants, free, program.dtype, 2)
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


def _costliest(pb: _Problem, c: Sequence, free: list[int], dtype: str, k: int) -> list[int]:
    """The ``k`` free constants whose rounding to ``dtype`` can cost most (half an ulp times
    their largest effect on the error)."""
    xs = _cheb(pb.a, pb.b, 200)
    J = np.abs(pb.jac(xs, c, free)).max(axis=0)
    cost = J * np.array([_ulp(float(c[i]), dtype) for i in free])
    return [free[i] for i in np.argsort(-cost)[:k]]


def _independent(pb: _Problem) -> list[int]:
    """Constants whose effects on the error are linearly independent at the start (greedy QR on
    a point set, float64): the others are held fixed."""
    n = pb.model.n
    if n == 0:
        return []
    xs = _cheb(pb.a, pb.b, 3 * n + 4)
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
