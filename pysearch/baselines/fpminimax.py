"""Minimax polynomials with float32 coefficients, in the spirit of Sollya's ``fpminimax``.

Two stages:

1. Sequential rounding: starting from the real minimax polynomial, round the lowest-order free
   coefficient to nearest float32, then re-fit the higher-order ones to minimise the real max
   relative error with the rounded ones held fixed (a linear minimax problem on a dense grid,
   solved as a linear program with scipy's HiGHS in scaled correction variables), and repeat
   up the degrees.
2. Local search: steepest descent over neighbouring float32 values of each coefficient
   (1 to 32 representable values away), minimising the measured float32 max ULP error (then the
   mean ULP error) of the evaluated program on a sample: a stratified part plus the "hard"
   points of a large scan, where the program's error before its last rounding is largest (the
   only places the exhaustive maximum can be). After each search the scan is redone for the new
   coefficients and new hard points join the sample, a few times. On exp2 [0, 1] degree 6
   Horner-fma this reaches the exhaustive 0.8956 ULP of Sollya's coefficients, where a
   uniform 2^17-point sample stalls at 0.91-0.92.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Sequence

import mpmath
import numpy as np

from pysearch.domain import Domain
from pysearch.evaluation import evaluate, verify
from pysearch.ops import OP_BY_NAME
from pysearch.program import Program
from pysearch.ulp import neighbour, ulp32, ulp_errors

from . import float32 as f32
from .approximations import DPS, Approximation, max_error, minimax, poly_ascending
from .programs import to_program

STEPS = (-32, -16, -8, -4, -2, -1, 1, 2, 4, 8, 16, 32)


@dataclass(frozen=True)
class FloatMinimax:
    """A float32-coefficient polynomial, its program and its measured errors."""

    approximation: Approximation
    program: Program
    max_ulp: float  # float32 max ULP: over every float32 of the domain if verified == "exhaustive"
    verified: str  # "exhaustive" or "sampled" (the search and scan samples)
    real_error: mpmath.mpf  # real-number max error of the float32 coefficients
    rounded_max_ulp: float  # max ULP of the program right after sequential rounding (same measure)
    info: dict = field(default_factory=dict, compare=False)


def _lp_refit(c: list, free: list[int], ts, fs, relative: bool) -> list:
    """Re-fit coefficients ``c[free]`` to minimise max weighted error on the grid (in place copy)."""
    from scipy.optimize import linprog

    def resid(c):
        out = []
        for t, fv in zip(ts, fs):
            pv = poly_ascending(c, t)
            out.append(float((pv - fv) / fv) if relative else float(pv - fv))
        return np.array(out)

    r = resid(c)
    e0 = float(np.abs(r).max())
    if e0 == 0.0:
        return c
    phi = np.array([[float((t**j / fv) if relative else t**j) for j in free] for t, fv in zip(ts, fs)])
    scale = e0 / np.maximum(np.abs(phi).max(axis=0), 1e-300)
    a = phi * scale / e0
    rr = r / e0
    nv = len(free)
    ones = np.ones((len(rr), 1))
    A_ub = np.vstack([np.hstack([a, -ones]), np.hstack([-a, -ones])])
    b_ub = np.concatenate([-rr, rr])
    cost = np.zeros(nv + 1)
    cost[-1] = 1.0
    res = linprog(cost, A_ub=A_ub, b_ub=b_ub, bounds=[(None, None)] * nv + [(0, None)], method="highs")
    if not res.success:
        return c
    out = list(c)
    for j, d, s in zip(free, res.x[:nv], scale):
        out[j] = out[j] + mpmath.mpf(float(d)) * mpmath.mpf(float(s))
    return out


def round_sequentially(approx: Approximation, grid_size: int = 600, target: object = None) -> Approximation:
    """Stage 1: float32 coefficients by rounding one at a time and re-fitting the rest."""
    if approx.den is not None:
        raise ValueError("fpminimax rounds polynomial coefficients; got a rational approximation")
    from .approximations import resolve_target

    _, f = resolve_target(target if target is not None else approx.target)
    relative = approx.weight == "relative"
    with mpmath.workdps(DPS):
        ta, tb = mpmath.mpf(approx.domain[0]) - approx.shift, mpmath.mpf(approx.domain[1]) - approx.shift
        ts, fs = [], []
        for i in range(grid_size):
            t = (ta + tb) / 2 - (tb - ta) / 2 * mpmath.cos(mpmath.pi * (2 * i + 1) / (2 * grid_size))
            fv = f(t + approx.shift)
            if fv != 0:
                ts.append(t)
                fs.append(fv)
        c = list(approx.num)
        free = [j for j, v in enumerate(c) if v != 0]
        for pos, j in enumerate(free):
            c[j] = mpmath.mpf(float(np.float32(float(c[j]))))
            rest = free[pos + 1 :]
            if rest:
                c = _lp_refit(c, rest, ts, fs, relative)
    return replace(approx, kind="fpminimax", num=tuple(c), error=None)


def _coeff_program(coeffs: Sequence[float], approx: Approximation, order: str, fma: bool) -> Program:
    return to_program(replace(approx, num=tuple(mpmath.mpf(v) for v in coeffs)), order, fma, "float32")


def pre_rounding_errors(program: Program, x: np.ndarray, ref: np.ndarray) -> np.ndarray | None:
    """Per point: |last operation done exactly on its float32 operands - f(x)| in ULPs.

    None when the last operation is not add, sub, mul or fma. (Products are exact in float64;
    the final float64 addition's error is ~2^-29 ULP.) A point with a large pre-rounding error
    is where the last rounding can push the float32 result furthest: the candidates for the
    exhaustive maximum.
    """
    ins = program.instrs[program.output]
    if not OP_BY_NAME[ins.op].exact_before_rounding:  # registry: add, sub, mul, fma
        return None
    subs = [Program(program.instrs, program.inputs, program.dtype, a.index) for a in ins.args if a.kind == "value"]
    vals = iter(np.asarray(evaluate(subs, x)).astype(np.float64)) if subs else iter(())
    ops = [next(vals) if a.kind == "value" else x.astype(np.float64) if a.kind == "input" else np.float64(a.value)
           for a in ins.args]
    with np.errstate(all="ignore"):
        pre = OP_BY_NAME[ins.op].fit(*ops)
        e = np.abs(pre - ref) / ulp32(ref)
    return np.where(np.isfinite(e), e, np.inf)


def hard_points(program: Program, x: np.ndarray, target: object, k: int) -> np.ndarray:
    """The k points of ``x`` with the largest pre-rounding error (else the largest float32 error)."""
    ref = f32.reference(target, x)
    e = pre_rounding_errors(program, x, ref)
    if e is None:
        e = ulp_errors(np.asarray(evaluate(program, x)), ref)
    return x[np.argsort(e)[-k:]]


def local_search(
    approx: Approximation,
    x: np.ndarray,
    target: object,
    order: str = "horner",
    fma: bool = True,
    max_rounds: int = 300,
    steps: Sequence[int] = STEPS,
) -> tuple[list[float], tuple[float, float], int]:
    """Stage 2 on sample ``x``: steepest descent on (max ULP, mean ULP) of the float32 results.

    Returns (coefficients, score, rounds used).
    """
    coeffs = [float(v) for v in approx.num]
    free = [j for j, v in enumerate(coeffs) if v != 0]
    mx, mean = f32.max_ulp([_coeff_program(coeffs, approx, order, fma)], x, target)
    score = (float(mx[0]), float(mean[0]))
    rounds = 0
    for rounds in range(1, max_rounds + 1):
        cands = []
        for j in free:
            for s in steps:
                c = list(coeffs)
                c[j] = neighbour(c[j], s)
                if c[j] != 0 and np.isfinite(c[j]):
                    cands.append(c)
        mx, mean = f32.max_ulp([_coeff_program(c, approx, order, fma) for c in cands], x, target)
        i = min(range(len(cands)), key=lambda k: (mx[k], mean[k]))
        if (mx[i], mean[i]) >= score:
            break
        coeffs, score = cands[i], (float(mx[i]), float(mean[i]))
    return coeffs, score, rounds


def fpminimax(
    target: object,
    domain: Sequence[float],
    degree: int,
    order: str = "horner",
    fma: bool = True,
    n_sample: int = 1 << 14,
    n_hard: int = 1 << 14,
    n_scan: int = 1 << 22,
    refinements: int = 4,
    seed: int = 0,
    search: bool = True,
    exhaustive: bool | None = None,
) -> FloatMinimax:
    """float32-coefficient minimax polynomial of ``degree`` for ``order``/``fma`` evaluation.

    The local search measures float32 errors on a stratified sample of ``n_sample`` points plus
    the ``n_hard`` points of an ``n_scan``-point sample (every float32, for small domains) where
    the current program's error before its last rounding is largest; after each search the scan
    is redone and its new hard points join, up to ``refinements`` times. ``search=False`` stops
    after stage 1.

    A sampled maximum can improve while the true one gets worse, so with ``exhaustive`` (default:
    when ``pysearch.verify`` can check every float32 of the domain) both the stage-1 and the
    searched coefficients are verified on every float32 and the better is returned, with its
    verified max ULP. Otherwise ``max_ulp`` is the max over the search and scan samples.
    """
    real = minimax(target, domain, degree)
    rounded = round_sequentially(real, target=target)
    dom = Domain(*domain)
    scan = dom.all() if dom.count() <= n_scan else f32.sample(domain, n_scan, seed + 1)
    start = [float(v) for v in rounded.num]
    coeffs = start
    info: dict = {"real_minimax_error": real.error, "rounds": 0, "refinements": 0}
    x = f32.sample(domain, n_sample, seed)
    if search:
        x = np.union1d(x, hard_points(_coeff_program(start, rounded, order, fma), scan, target, n_hard))
        for _ in range(refinements + 1):
            approx = replace(rounded, num=tuple(mpmath.mpf(v) for v in coeffs))
            coeffs, _, rounds = local_search(approx, x, target, order, fma)
            info["rounds"] += rounds
            prog = _coeff_program(coeffs, rounded, order, fma)
            new = np.setdiff1d(hard_points(prog, scan, target, n_hard // 4), x)
            if rounds == 1 or len(new) == 0:
                break
            x = np.union1d(x, new)
            info["refinements"] += 1
    both = np.union1d(x, scan)
    cands = {"rounded": start, "searched": coeffs}
    sampled = {k: float(f32.max_ulp([_coeff_program(c, rounded, order, fma)], both, target)[0][0])
               for k, c in cands.items()}
    errors, how = sampled, "sampled"
    if exhaustive is None:
        exhaustive = dom.count() <= 1 << 31
    if exhaustive:
        try:
            errors = {k: float(verify(_coeff_program(c, rounded, order, fma), target, domain).max_ulp)
                      for k, c in cands.items()}
            how = "exhaustive"
        except ValueError:  # a custom target over a domain too large for mpmath at every point
            pass
    pick = "searched" if errors["searched"] <= errors["rounded"] else "rounded"
    final = replace(rounded, num=tuple(mpmath.mpf(v) for v in cands[pick]))
    final = replace(final, error=max_error(final, target, domain, weight=final.weight))
    info.update(order=order, fma=fma, n_sample=len(both), picked=pick, sampled_max_ulp=sampled[pick])
    prog = to_program(final, order, fma, "float32")
    return FloatMinimax(final, prog, errors[pick], how, final.error, errors["rounded"], info)
