"""Classical approximations of a target on an interval, computed in high precision with mpmath.

Every approximation is a polynomial or rational function of ``t = x - shift``. When the target
has a simple zero ``z`` in the domain that is exactly representable in float32 (``log2`` on
[1, 2], ``erf`` on [0, 1], ``log`` on [0.5, 1]), relative error stays finite only if the
approximation vanishes at ``z`` too: then ``shift = z`` and the numerator's constant term is
exactly 0 (the fit is of ``f(x)/t``, whose relative error equals that of ``t * q(t)`` against
``f``). Where the target has any other zero in the domain, fits use absolute error and say so in
``Approximation.weight``.

Methods:

- :func:`taylor`, :func:`pade`: from Taylor coefficients at a point (the zero if there is one,
  else the domain midpoint).
- :func:`chebyshev`: interpolation at the Chebyshev points of the first kind.
- :func:`minimax`: Remez exchange for the best polynomial in max relative (or absolute) error.
- :func:`rational_minimax`: Remez exchange for rationals. The reference equations
  ``p(t_i) - (g_i + s_i E / w_i) q(t_i) = 0`` are solved as the eigenproblem ``A v = E B v``;
  the eigenvalue whose denominator keeps one sign on the domain with the smallest ``|E|`` is
  taken (the approach of Chebfun's ``remez``).
- :func:`max_error`: the real-number max error of an approximation, a program or a callable:
  dense sampling (Chebyshev-distributed plus uniform points) followed by golden-section
  refinement of every local maximum of the error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Callable, Sequence

import mpmath
import numpy as np

from ..targets import get_target

#: Working precision (decimal digits) of every fit.
DPS = 50

MpFunc = Callable[[mpmath.mpf], mpmath.mpf]


def resolve_target(target: object) -> tuple[str, MpFunc]:
    """(name, mpmath function) for a target name or expression (:func:`pysearch.targets.get_target`,
    which names the built-in targets when it does not know one), a ``Target`` or a callable."""
    if isinstance(target, str):
        return target, get_target(target).fn
    fn = _target_mp_function(target)
    if fn is not None:
        return str(getattr(target, "name", "custom")), fn
    if callable(target):
        return getattr(target, "__name__", "custom"), target  # type: ignore[return-value]
    raise TypeError(f"target must be a name, a Target or an mpmath-callable, not {type(target).__name__}")


def _target_mp_function(t: object) -> MpFunc | None:
    for attr in ("mp", "mpmath", "mp_function", "function", "fn"):
        fn = getattr(t, attr, None)
        if callable(fn):
            return fn
    return None


def check_domain(domain: Sequence[float]) -> tuple[float, float]:
    """``(a, b)`` as floats with ``a < b``, both finite; else ``ValueError``."""
    try:
        a, b = (float(v) for v in domain)
    except (TypeError, ValueError):
        raise ValueError(f"domain must be two numbers (a, b), got {domain!r}") from None
    if not (math.isfinite(a) and math.isfinite(b) and a < b):
        raise ValueError(f"domain must be finite with a < b, got [{a}, {b}]")
    return a, b


def _check_degree(name: str, n: object, low: int = 0) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {n!r}")
    return int(n)


def poly_ascending(coefficients: Sequence, t: object) -> mpmath.mpf:
    """c0 + c1 t + c2 t^2 + ... in mpmath, coefficients in ascending order (any mpmath version)."""
    acc = mpmath.mpf(0)
    for c in reversed(coefficients):
        acc = acc * t + c
    return acc


# ------------------------------------------------------------------------- result type
@dataclass(frozen=True)
class Approximation:
    """``num(t) / den(t)`` with ``t = x - shift``; coefficients lowest power first.

    ``den`` is None for polynomials. ``weight`` is ``'relative'`` or ``'absolute'``: the error
    measure the fit minimised and :func:`max_error` reports. ``error`` is that max error over the
    domain as measured when the approximation was made (None if not measured).
    """

    kind: str
    target: str
    domain: tuple[float, float]
    num: tuple[mpmath.mpf, ...]
    den: tuple[mpmath.mpf, ...] | None = None
    shift: float = 0.0
    weight: str = "relative"
    error: mpmath.mpf | None = None
    info: dict = field(default_factory=dict, compare=False)

    @property
    def degree(self) -> tuple[int, int] | int:
        """Polynomial degree, or (m, n) for a rational."""
        m = len(self.num) - 1
        return m if self.den is None else (m, len(self.den) - 1)

    def __call__(self, x: object) -> mpmath.mpf:
        """Value at ``x`` in mpmath (at the caller's precision)."""
        t = mpmath.mpf(x) - self.shift
        v = poly_ascending(self.num, t)
        if self.den is not None:
            v = v / poly_ascending(self.den, t)
        return v

    def float_coefficients(self, dtype: str = "float32") -> "Approximation":
        """The same approximation with every coefficient rounded to nearest in ``dtype``."""
        cast = np.float32 if dtype == "float32" else np.float64
        rnd = lambda cs: tuple(mpmath.mpf(float(cast(float(c)))) for c in cs)  # noqa: E731
        den = None if self.den is None else rnd(self.den)
        return replace(self, num=rnd(self.num), den=den, error=None, kind=f"{self.kind}-rounded")

    def describe(self) -> str:
        d = self.degree
        deg = f"[{d[0]}/{d[1]}]" if isinstance(d, tuple) else f"degree {d}"
        shift = f", t = x - {self.shift:g}" if self.shift else ""
        return f"{self.kind} {deg} for {self.target} on [{self.domain[0]:g}, {self.domain[1]:g}]{shift}"


# ------------------------------------------------------------------------- the problem
@dataclass
class _Problem:
    """A fit problem in t-space: approximate ``g(t) = f(shift + t) / t**k`` with weight ``w``."""

    name: str
    f: MpFunc
    domain: tuple[float, float]
    shift: float
    k: int
    weight: str
    ta: mpmath.mpf = mpmath.mpf(0)
    tb: mpmath.mpf = mpmath.mpf(0)
    g0: mpmath.mpf | None = None  # g(0) when k > 0

    def g(self, t: mpmath.mpf) -> mpmath.mpf:
        if self.k == 0:
            return self.f(self.shift + t)
        if t == 0:
            return self.g0
        return self.f(self.shift + t) / t**self.k

    def inv_w(self, t: mpmath.mpf, gt: mpmath.mpf) -> mpmath.mpf:
        """1 / weight at t, so that err = (approx - g) / inv_w."""
        return abs(gt) if self.weight == "relative" else mpmath.mpf(1)


def _zero_in_domain(f: MpFunc, a: float, b: float) -> list[mpmath.mpf]:
    """Zeros of f on [a, b] found by sign changes on a grid (plus exact zeros at grid points)."""
    grid = [mpmath.mpf(a) + (mpmath.mpf(b) - a) * i / 256 for i in range(257)]
    vals = [f(x) for x in grid]
    zeros: list[mpmath.mpf] = []
    for i, (x, v) in enumerate(zip(grid, vals)):
        if v == 0:
            zeros.append(x)
        elif i and vals[i - 1] != 0 and (vals[i - 1] < 0) != (v < 0):
            zeros.append(mpmath.findroot(f, (grid[i - 1], x), solver="anderson"))
    return zeros


def _problem(target: object, domain: Sequence[float], weight: str | None, shift: float | None) -> _Problem:
    name, f = resolve_target(target)
    a, b = check_domain(domain)
    if weight not in (None, "relative", "absolute"):
        raise ValueError(f"weight must be 'relative' or 'absolute', got {weight!r}")
    k = 0
    if weight != "absolute":
        zeros = _zero_in_domain(f, a, b)
        if len(zeros) == 1:
            z32 = float(np.float32(float(zeros[0])))
            simple = abs(mpmath.diff(f, z32)) > mpmath.mpf(10) ** (-DPS // 2)
            if f(mpmath.mpf(z32)) == 0 and simple and (shift is None or shift == z32):
                k, shift = 1, z32
            else:
                weight = "absolute"
        elif zeros:
            weight = "absolute"
    if weight is None and k == 0:
        weight = "relative"
    p = _Problem(name, f, (a, b), float(np.float32(shift or 0.0)), k, weight or "relative")
    p.ta, p.tb = mpmath.mpf(a) - p.shift, mpmath.mpf(b) - p.shift
    if k:
        p.g0 = mpmath.diff(f, mpmath.mpf(p.shift))
    return p


def _to_num(p: _Problem, q: Sequence[mpmath.mpf]) -> tuple[mpmath.mpf, ...]:
    return tuple([mpmath.mpf(0)] * p.k + list(q))


# ------------------------------------------------------------------------- Taylor / Padé
def _default_center(p: _Problem, center: float | None) -> float:
    if center is not None:
        return float(center)
    if p.k:
        return p.shift
    return float(np.float32((p.domain[0] + p.domain[1]) / 2))


def taylor(target: object, domain: Sequence[float], degree: int, center: float | None = None) -> Approximation:
    """Degree-``degree`` Taylor polynomial at ``center`` (default: the target's zero, else the midpoint)."""
    degree = _check_degree("degree", degree)
    with mpmath.workdps(DPS):
        p = _problem(target, domain, None, None)
        c = _default_center(p, center)
        coeffs = mpmath.taylor(p.f, mpmath.mpf(c), degree)
        if p.k and c == p.shift:
            coeffs[0] = mpmath.mpf(0)
        approx = Approximation("taylor", p.name, p.domain, tuple(coeffs), None, c, p.weight)
        return replace(approx, error=max_error(approx, target, domain, weight=p.weight), info={"center": c})


def pade(target: object, domain: Sequence[float], m: int, n: int, center: float | None = None) -> Approximation:
    """Padé approximant [m/n] at ``center`` (default: the target's zero, else the midpoint)."""
    m, n = _check_degree("m", m), _check_degree("n", n)
    with mpmath.workdps(DPS):
        p = _problem(target, domain, None, None)
        c = _default_center(p, center)
        coeffs = mpmath.taylor(p.f, mpmath.mpf(c), m + n)
        if p.k and c == p.shift:
            coeffs[0] = mpmath.mpf(0)
        num, den = mpmath.pade(coeffs, m, n)
        approx = Approximation("pade", p.name, p.domain, tuple(num), tuple(den), c, p.weight)
        return replace(approx, error=max_error(approx, target, domain, weight=p.weight), info={"center": c})


# ------------------------------------------------------------------------- Chebyshev
def _cheb_extrema(ta: mpmath.mpf, tb: mpmath.mpf, n: int) -> list[mpmath.mpf]:
    """n + 1 Chebyshev extrema (second kind) mapped to [ta, tb], ascending."""
    return [(ta + tb) / 2 - (tb - ta) / 2 * mpmath.cos(mpmath.pi * i / n) for i in range(n + 1)] if n else [(ta + tb) / 2]


def _solve_monomial(ts: Sequence[mpmath.mpf], ys: Sequence[mpmath.mpf]) -> list[mpmath.mpf]:
    n = len(ts)
    A = mpmath.matrix(n, n)
    for i, t in enumerate(ts):
        for j in range(n):
            A[i, j] = t**j
    sol = mpmath.lu_solve(A, mpmath.matrix(list(ys)))
    return [sol[j] for j in range(n)]


def chebyshev(target: object, domain: Sequence[float], degree: int) -> Approximation:
    """Interpolant at the degree + 1 Chebyshev points of the first kind (of ``f / t`` for a zero)."""
    degree = _check_degree("degree", degree, 1)
    with mpmath.workdps(DPS):
        p = _problem(target, domain, None, None)
        d = degree - p.k
        ts = [
            (p.ta + p.tb) / 2 - (p.tb - p.ta) / 2 * mpmath.cos(mpmath.pi * (2 * i + 1) / (2 * (d + 1)))
            for i in range(d + 1)
        ]
        q = _solve_monomial(ts, [p.g(t) for t in ts])
        approx = Approximation("chebyshev", p.name, p.domain, _to_num(p, q), None, p.shift, p.weight)
        return replace(approx, error=max_error(approx, target, domain, weight=p.weight))


# ------------------------------------------------------------------------- error search
def _golden_max(h: Callable[[mpmath.mpf], mpmath.mpf], lo: mpmath.mpf, hi: mpmath.mpf, iters: int = 48):
    """Maximise h on [lo, hi] by golden-section search; returns (t, h(t)), endpoints included."""
    r = (mpmath.sqrt(5) - 1) / 2
    c, d = hi - r * (hi - lo), lo + r * (hi - lo)
    hc, hd = h(c), h(d)
    for _ in range(iters):
        if hc > hd:
            hi, d, hd = d, c, hc
            c = hi - r * (hi - lo)
            hc = h(c)
        else:
            lo, c, hc = c, d, hd
            d = lo + r * (hi - lo)
            hd = h(d)
    best = max([(hc, c), (hd, d), (h(lo), lo), (h(hi), hi)], key=lambda p: p[0])
    return best[1], best[0]


def _sample_points(ta: mpmath.mpf, tb: mpmath.mpf, n: int) -> list[mpmath.mpf]:
    cheb = _cheb_extrema(ta, tb, n)
    unif = [ta + (tb - ta) * i / n for i in range(n + 1)]
    return sorted(set(cheb + unif))


def _local_extrema(e: Callable[[mpmath.mpf], mpmath.mpf], ta, tb, n_sample: int, extra=()):
    """Refined local extrema (t, e(t)) of the signed error e on [ta, tb], ascending in t."""
    ts = sorted(set(_sample_points(ta, tb, n_sample)) | set(extra))
    es = [e(t) for t in ts]
    out = []
    for i in range(len(ts)):
        left = abs(es[i - 1]) if i else mpmath.mpf(-1)
        right = abs(es[i + 1]) if i + 1 < len(ts) else mpmath.mpf(-1)
        if abs(es[i]) >= left and abs(es[i]) >= right and es[i] != 0:
            s = 1 if es[i] > 0 else -1
            lo, hi = ts[max(i - 1, 0)], ts[min(i + 1, len(ts) - 1)]
            t, v = _golden_max(lambda u: s * e(u), lo, hi)
            out.append((t, s * v))
    out.sort(key=lambda p: p[0])
    return out


def _alternating(extrema: list, n_ref: int) -> list | None:
    """Pick n_ref extrema alternating in sign, keeping the largest; None if fewer alternate."""
    pts = list(extrema)

    def merge(pts):
        out = []
        for p in pts:
            if out and (out[-1][1] > 0) == (p[1] > 0):
                if abs(p[1]) > abs(out[-1][1]):
                    out[-1] = p
            else:
                out.append(p)
        return out

    pts = merge(pts)
    while len(pts) > n_ref:
        if len(pts) - n_ref == 1:
            pts.pop(0 if abs(pts[0][1]) < abs(pts[-1][1]) else -1)
        else:
            i = min(range(len(pts)), key=lambda j: abs(pts[j][1]))
            pts.pop(i)
            pts = merge(pts)
    return pts if len(pts) == n_ref else None


# ------------------------------------------------------------------------- Remez
def _poly_eval(c: Sequence[mpmath.mpf], t: mpmath.mpf) -> mpmath.mpf:
    v = mpmath.mpf(0)
    for ck in reversed(c):
        v = v * t + ck
    return v


def _remez_poly(p: _Problem, d: int, max_iter: int = 40, tol: float = 1e-8):
    """Best degree-d polynomial q for g in weighted max norm; returns (q, max_err, iterations)."""
    n_ref = d + 2
    ref = _cheb_extrema(p.ta, p.tb, d + 1)
    best = None
    for it in range(1, max_iter + 1):
        A = mpmath.matrix(n_ref, n_ref)
        rhs = []
        for i, t in enumerate(ref):
            gt = p.g(t)
            for j in range(d + 1):
                A[i, j] = t**j
            A[i, d + 1] = (-1) ** i * p.inv_w(t, gt)
            rhs.append(gt)
        sol = mpmath.lu_solve(A, mpmath.matrix(rhs))
        q = [sol[j] for j in range(d + 1)]
        level = abs(sol[d + 1])

        def err(t, q=q):
            gt = p.g(t)
            return (_poly_eval(q, t) - gt) / p.inv_w(t, gt)

        ext = _local_extrema(err, p.ta, p.tb, max(64, 12 * n_ref), extra=ref)
        emax = max(abs(v) for _, v in ext)
        if best is None or emax < best[1]:
            best = (q, emax, it, False)
        if emax - level <= tol * emax:
            return q, emax, it, True
        new = _alternating(ext, n_ref)
        if new is None:
            break
        ref = [t for t, _ in new]
    return best


def minimax(
    target: object,
    domain: Sequence[float],
    degree: int,
    weight: str | None = None,
) -> Approximation:
    """Best polynomial of ``degree`` in max relative error (Remez exchange, mpmath at 50 digits).

    ``weight='absolute'`` minimises max absolute error instead; by default relative error is
    used, with the target's zero factored out (see the module docstring), or absolute error when
    the target has a zero that cannot be factored out.
    """
    degree = _check_degree("degree", degree, 1)
    with mpmath.workdps(DPS):
        p = _problem(target, domain, weight, None)
        q, emax, iters, converged = _remez_poly(p, degree - p.k)
        return Approximation(
            "minimax", p.name, p.domain, _to_num(p, q), None, p.shift, p.weight, +emax,
            {"iterations": iters, "converged": converged},
        )


def _q_one_sign(q: Sequence[mpmath.mpf], ta, tb, n: int = 200) -> bool:
    vals = [_poly_eval(q, ta + (tb - ta) * i / n) for i in range(n + 1)]
    return all(v > 0 for v in vals) or all(v < 0 for v in vals)


def _remez_rational(p: _Problem, m: int, n: int, max_iter: int = 60, tol: float = 1e-8):
    """Best rational p_m / q_n for g in weighted max norm (eigenvalue Remez)."""
    N = m + n + 2
    ref = _cheb_extrema(p.ta, p.tb, N - 1)
    best = None
    for it in range(1, max_iter + 1):
        A = mpmath.matrix(N, N)
        B = mpmath.matrix(N, N)
        for i, t in enumerate(ref):
            gt = p.g(t)
            s = (-1) ** i * p.inv_w(t, gt)
            for j in range(m + 1):
                A[i, j] = t**j
            for j in range(n + 1):
                A[i, m + 1 + j] = -gt * t**j
                B[i, m + 1 + j] = s * t**j
        try:
            M = mpmath.inverse(A) * B
        except ZeroDivisionError:
            break
        lam, vecs = mpmath.eig(M)
        cands = []
        for idx, lv in enumerate(lam):
            if abs(mpmath.im(lv)) > 1e-20 * (1 + abs(lv)) or abs(lv) == 0:
                continue
            v = [mpmath.re(vecs[r, idx]) for r in range(N)]
            num, den = v[: m + 1], v[m + 1 :]
            if not _q_one_sign(den, p.ta, p.tb):
                continue
            cands.append((abs(1 / mpmath.re(lv)), num, den))
        if not cands:
            break
        level, num, den = min(cands, key=lambda c: c[0])
        scale = den[0] if abs(den[0]) > 1e-30 * max(abs(c) for c in den) else _poly_eval(den, (p.ta + p.tb) / 2)
        num, den = [c / scale for c in num], [c / scale for c in den]

        def err(t, num=num, den=den):
            gt = p.g(t)
            return (_poly_eval(num, t) / _poly_eval(den, t) - gt) / p.inv_w(t, gt)

        ext = _local_extrema(err, p.ta, p.tb, max(64, 12 * N), extra=ref)
        emax = max(abs(v) for _, v in ext)
        if best is None or emax < best[2]:
            best = (num, den, emax, it, False)
        if emax - level <= tol * emax:
            return num, den, emax, it, True
        new = _alternating(ext, N)
        if new is None:
            break
        ref = [t for t, _ in new]
    if best is None:
        raise ArithmeticError(f"rational Remez found no pole-free approximant of type ({m}, {n}) for {p.name}")
    return best


def rational_minimax(
    target: object,
    domain: Sequence[float],
    m: int,
    n: int,
    weight: str | None = None,
) -> Approximation:
    """Best rational function of type (m, n) in max relative error (rational Remez exchange).

    ``m`` counts the numerator's full degree (including the factored-out zero, if any).
    """
    m, n = _check_degree("m", m), _check_degree("n", n)
    with mpmath.workdps(DPS):
        p = _problem(target, domain, weight, None)
        if m < p.k:
            raise ValueError(f"{p.name} vanishes at {p.shift:g}: the numerator needs degree >= {p.k}, got {m}")
        num, den, emax, iters, converged = _remez_rational(p, m - p.k, n)
        return Approximation(
            "rational_minimax", p.name, p.domain, _to_num(p, num), tuple(den), p.shift, p.weight, +emax,
            {"iterations": iters, "converged": converged},
        )


# ------------------------------------------------------------------------- error measure
def _as_mp_callable(approx: object) -> Callable[[mpmath.mpf], mpmath.mpf]:
    from pysearch.program import Program

    if isinstance(approx, Approximation):
        return approx
    if isinstance(approx, (Program, str)):
        from pysearch.interpreter import run_mpmath

        return lambda x: run_mpmath(approx, [x], dps=DPS)[0]
    if callable(approx):
        return approx
    if isinstance(approx, (list, tuple, np.ndarray)) and len(approx) and all(
        isinstance(c, (int, float, np.floating, mpmath.mpf)) for c in approx
    ):
        coeffs = [mpmath.mpf(float(c)) if not isinstance(c, mpmath.mpf) else c for c in approx]
        return lambda x: _poly_eval(coeffs, x)
    raise TypeError(
        "expected an Approximation, a Program, a callable or polynomial coefficients (lowest power first), "
        f"not {type(approx).__name__}"
    )


def max_error(
    approx: object,
    target: object,
    domain: Sequence[float],
    weight: str = "relative",
    n_sample: int = 400,
) -> mpmath.mpf:
    """Max relative (or absolute) error over [a, b] of an approximation, a program, a callable,
    or polynomial coefficients in x (lowest power first).

    Real-number error: a program's operations are evaluated in 50-digit arithmetic with its
    constants as stored. Method: ``n_sample`` Chebyshev-distributed plus ``n_sample`` uniform
    points, then golden-section refinement around every local maximum. At a zero of the target
    the relative error is the limit (inf if the approximation does not vanish there).
    """
    if weight not in ("relative", "absolute"):
        raise ValueError(f"weight must be 'relative' or 'absolute', got {weight!r}")
    _, f = resolve_target(target)
    a, b = check_domain(domain)
    r = _as_mp_callable(approx)
    with mpmath.workdps(DPS):
        eps = (mpmath.mpf(b) - a) * mpmath.mpf(10) ** (-DPS // 3)

        def err(x):
            fx = f(x)
            if weight == "absolute":
                return r(x) - fx
            if fx == 0:
                if r(x) != 0:
                    return mpmath.inf
                x = x + eps if x < b else x - eps  # the limit, at a nearby point
                fx = f(x)
            return (r(x) - fx) / fx

        ext = _local_extrema(err, mpmath.mpf(a), mpmath.mpf(b), n_sample)
        return +max(abs(v) for _, v in ext) if ext else mpmath.mpf(0)
