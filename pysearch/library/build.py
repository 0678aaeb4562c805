"""Build the shipped library (a maintainer's tool): ``python -m pysearch.library.build``.

Reduced-domain functions come from search runs (``--from-run NAME=RUN_DIR``: the run's best
verified program and how it was found). Full-range functions are written here as one program
each: a range reduction with ``rint``/``ldexp``/``getexp``/``getmant`` around a polynomial
kernel whose constants are fitted by Lawson minimax and tuned in float32 inside the whole
program, then verified on every float32 (all 2^32 patterns but NaNs). erf has no range reduction:
three polynomial pieces are blended without branches (:func:`erf_program`).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import special

from ..domain import Domain
from ..evaluation import evaluate, verify
from ..fileio import read_json, write_json_atomic
from ..program import Program, parse
from ..search.constants import ConstantBatch, FitSample, lawson, tune_float32
from ..ulp import ulp32
from ..search.front import read_front

DATA = Path(__file__).parent / "data"
F32 = np.float32
LN2 = math.log(2.0)
#: ln 2 split so that n * LN2_HI is exact for |n| < 2^8 (16 significant bits).
LN2_HI = math.floor(LN2 * 2**16) / 2**16
LN2_LO = float(F32(LN2 - LN2_HI))
INV_SQRT2 = float(F32(1 / math.sqrt(2.0)))
INV_LN2_HI = float(F32(1 / LN2))
INV_LN2_LO = float(F32(1 / LN2 - INV_LN2_HI))
INV_2SQRT2 = float(F32(0.5 / math.sqrt(2.0)))
#: 1.5 * 2^23: adding it to a float32 |v| < 2^22 rounds v to an integer (round to nearest even).
ROUND_MAGIC = 1.5 * 2**23


def _c(v: float) -> str:
    return float(F32(v)).hex()


def _horner(var: str, coeffs: list[float], out: str, prefix: str = "k") -> list[str]:
    """Lines computing sum coeffs[j] * var**j by Horner with fma (highest degree first).

    The steps are named ``{prefix}{j}`` (a program with several polynomials gives each its own
    prefix); the last one is named ``out``."""
    c = coeffs
    lines = [f"{prefix}{len(c) - 2} = fma {var} {_c(c[-1])} {_c(c[-2])}"]
    for j in range(len(c) - 3, -1, -1):
        lines.append(f"{prefix}{j} = fma {prefix}{j + 1} {var} {_c(c[j])}")
    lines[-1] = lines[-1].replace(f"{prefix}0 =", f"{out} =", 1)
    return lines


def exp2_program(coeffs: list[float]) -> Program:
    """exp2(x) = 2^n * p(f), n = rint(x), f = x - n in [-1/2, 1/2] (exact)."""
    body = [
        "inputs x",
        "xc = max x -151",  # below: 0; NaN stays NaN (max/min propagate NaN)
        "xd = min xc 129",  # above: inf
        "n = rint xd",
        "f = sub xd n",
        *_horner("f", coeffs, "p"),
        "y = ldexp p n",
    ]
    return parse("\n".join(body) + "\n")


def exp_program(coeffs: list[float]) -> Program:
    """exp(x) = 2^n * p(f), n = rint(x / ln2), f = (x - n ln2_hi) - n ln2_lo (Cody-Waite)."""
    body = [
        "inputs x",
        "xc = max x -104",
        "xd = min xc 89",
        f"s = mul xd {_c(1 / LN2)}",
        "n = rint s",
        f"t = fma n {_c(-LN2_HI)} xd",  # exact: n * LN2_HI has at most 24 bits
        f"f = fma n {_c(-LN2_LO)} t",
        *_horner("f", coeffs, "p"),
        "y = ldexp p n",
    ]
    return parse("\n".join(body) + "\n")


#: both log reductions start here: x = 2^e * m, m in [1, 2) (+inf: m = 2, so that log(inf) = e = inf)
_LOG_HEAD = ["inputs x", "m0 = getmant x", "m = min m0 2", "e = getexp x"]


def _log_reduction() -> list[str]:
    """x = 2^e' * m', m' in [1/sqrt2, sqrt2), r = m' - 1 (exact); NaN for x < 0 handled after.

    The halving of m >= sqrt2 is a multiplication by s = 1 - g/2 in {1, 1/2} with g = floor(m / sqrt2)
    in {0, 1}: exact, and cheaper in vector code than getexp/ldexp (the same values as
    ``g = getexp u; mm = ldexp m (-1 - g)``, which earlier library versions used)."""
    return [
        *_LOG_HEAD,
        f"u = mul m {_c(INV_SQRT2)}",
        "g = floor u",  # 1 when m >= sqrt2 (as rounded), else 0
        "s = fma g -0.5 1",  # 1/2 or 1
        "mm = mul m s",
        "ee = add e g",
        "r = sub mm 1",
    ]


def _log_reduction_fused() -> list[str]:
    """The reduction of :func:`_log_reduction` in two ops fewer (the same e' and m', r = m' - 1 exact).

    g = rint(m / (2 sqrt2)) in {0, 1} by the add-and-subtract rounding trick: the fma rounds
    m * INV_2SQRT2 + 1.5 * 2^23 to an integer, so g is 1 when m >= sqrt2 (as rounded; a tie goes to
    the even 1.5 * 2^23, i.e. g = 0), 0 below (one fma and a sub, cheaper than mul and floor in vector
    code); r = fma(m, s, -1) is m' - 1 in one rounding (m' = m s is exact, and so is m' - 1)."""
    return [
        *_LOG_HEAD,
        f"gm = fma m {_c(INV_2SQRT2)} {_c(ROUND_MAGIC)}",
        f"g = sub gm {_c(ROUND_MAGIC)}",  # 1 when m >= sqrt2 (as rounded), else 0
        "s = fma g -0.5 1",  # 1/2 or 1
        "ee = add e g",
        "r = fma m s -1",
    ]


def log_program(coeffs: list[float]) -> Program:
    """log(x) = e' ln2 + (r + r^2 q(r)), the reduction of :func:`_log_reduction_fused`.

    e' ln2 enters in one fma with ln2 rounded to float32: its error |e'| 1.9e-9 is at most 0.07 ULP
    of the result (|log x| >= ln2 / 2 wherever e' != 0), and the fma rounds once."""
    body = [
        *_log_reduction_fused(), "r2 = mul r r", *_horner("r", coeffs, "q"),
        "w = fma r2 q r",
        f"res = fma ee {_c(LN2)} w",
        *_negative_is_nan("res"),
    ]
    return parse("\n".join(body) + "\n")


def log2_program(coeffs: list[float]) -> Program:
    """log2(x) = e' + (r L_hi + r t(r)), t(r) ~ (log2(1 + r) - r L_hi) / r the kernel, the reduction of
    :func:`_log_reduction_fused`.

    The leading term r L_hi (L_hi = 1/ln2 in float32) enters last in one fma, so near x = 1 the result has
    the accuracy of a single rounding; e' is added in a final add (|z| < |res| there). The kernel's
    constant term (~ 1/ln2 - L_hi) carries the rest of 1/ln2, so r L_lo + r^2 q(r) costs one mul."""
    body = [
        *_log_reduction_fused(), *_horner("r", coeffs, "q"),
        "t = mul r q",
        f"z = fma r {_c(INV_LN2_HI)} t",
        "res = add ee z",
        *_negative_is_nan("res"),
    ]
    return parse("\n".join(body) + "\n")


def _negative_is_nan(res: str) -> list[str]:
    """NaN for x < 0 (including -inf): min(x, 0) * 2^300 is -inf there, 0 elsewhere; times 0."""
    return ["sneg = min x 0", "big = ldexp sneg 300", f"y = fma big 0 {res}"]


# ------------------------------------------------------------------ expm1 (full range)
#: expm1's reduction n = floor(x/ln2 + EXPM1_SHIFT) keeps n = 0 on [-0.43 ln2, 0.57 ln2): the
#: cancellation of s e^f - 1 at n = +-1 is then balanced between the two sides (the shift is
#: positive so that x = -0 gives n = +0, which keeps t = -0).
EXPM1_SHIFT = 0.43
#: the kernel's interval: f in [-(1 - shift) ln2, (shift) ln2], and up to 88.73 - 127 ln2 where n is
#: held at 127 (so 2^n stays finite; the largest finite expm1 is at x = 88.72283...)
EXPM1_F = (-(1 - EXPM1_SHIFT) * LN2, 88.73 - 127 * LN2)


def expm1_program(coeffs: list[float]) -> Program:
    """expm1(x) = s (1 + t + L) - 1, s = 2^n, summed so that nothing cancels.

    n = min(floor(x/ln2 + shift), 127), t = x - n ln2_hi (exact), r = t - c with c = n ln2_lo, and
    L = expm1(r) - t = -c (1 + t) + c^2/2 + t^2/2 + r^3 P(r), the kernel q = -P evaluated at
    f = r rounded (only the small r^3 term sees that rounding); -L = ``ln`` is formed with -t^2/2
    exact in its last fma and g (1 + t) - c^2/2 as fma(c, t, g), g = c - c^2/2 from n alone.
    The sum s(1 + t) - 1 is rounded once (``a``); its rounding error (``ae``, exact by an fma) and
    the low part of 1 - s (``hl``, a TwoSum: 1 - s is not a float for |n| > 24) go with s L into
    ``mn``, so the result a - mn rounds twice only where mn is small beside a. For n = 0, a = t = x:
    tiny x give x, subnormals included; -0 gives -0 (a = -0 and mn = +0). x is clamped to
    [-18, 88.73]: below, the result is -1 (e^x < 2^-25), above, inf; NaN stays NaN.
    """
    body = [
        "inputs x",
        "xc = max x -18",
        "xd = min xc 88.73",
        f"s0 = fma xd {_c(1 / LN2)} {_c(EXPM1_SHIFT)}",
        "nf = floor s0",
        "n = min nf 127",
        f"t = fma n {_c(-LN2_HI)} xd",  # exact
        f"c = mul n {_c(LN2_LO)}",
        f"gk = fma n {_c(-LN2_LO ** 2 / 2)} {_c(LN2_LO)}",
        "g = mul n gk",  # c - c^2/2
        "f = sub t g",
        *_horner("f", coeffs, "q"),  # q(f) ~ -(expm1(f) - f - f^2/2) / f^3
        "pn = mul q f",
        "f2 = mul f f",
        "u = fma c t g",  # c (1 + t) - c^2/2
        "w = fma f2 pn u",
        "hnt = mul t -0.5",
        "ln = fma hnt t w",  # -L
        "s = ldexp 1 n",
        "hh = sub 1 s",  # TwoSum: 1 - s = hh + hl exactly
        "bv = sub hh 1",
        "av = sub hh bv",
        "brn = add s bv",
        "ar = sub 1 av",
        "hl = sub ar brn",
        "sm1 = neg hh",  # s - 1, and -0 for s = 1
        "a = fma s t sm1",  # s (1 + t) - 1, rounded once
        "da = sub sm1 a",
        "ae = fma s t da",  # the rounding error of a, exact
        "kan = sub hl ae",
        "mn = fma s ln kan",
        "y = sub a mn",
    ]
    return parse("\n".join(body) + "\n")


def expm1_kernel(degree: int) -> list[float]:
    """q of ``degree`` with t^3 q(t) ~ -(expm1(t) - t - t^2/2) on EXPM1_F.

    An error e in t^3 q(t) is an error s e in the result 2^n e^t - 1 (s = 2^n); it is weighed
    against the smallest ulp(2^n e^t - 1) / 2^n over the n that reach t (n = -2..2 on the
    interval of n = 0, and a large n everywhere: 127 reaches up to its end)."""
    t = _grid(EXPM1_F[0] - 1e-3, EXPM1_F[1] + 1e-3)
    t = t[np.abs(t) > 1e-6]
    v = np.expm1(t) - t - t * t / 2
    inner = t < EXPM1_SHIFT * LN2 + 1e-3
    scale = ulp32(np.exp(t)) * 2.0**-100  # 2^100 e^t - 1: a large n
    for n in range(-2, 3):
        s = 2.0**n
        scale = np.where(inner, np.minimum(scale, ulp32(s * np.exp(t) - 1) / s), scale)
    A = np.stack([t ** (j + 3) for j in range(degree + 1)], axis=1)
    c, _ = lawson(A, -v, scale * 2.0**100, iters=200)
    return [float(x) for x in c]


#: intervals where a full-range function's tuning sample is made denser (its hard regions)
#: extra tuning points per function: (a, b, how many) intervals where its error peaks
TUNE_EXTRA: dict[str, list[tuple[float, float, int]]] = {}
#: expm1: the cancellation of s e^f - 1 at n = +-1, and n held at 127 before overflow
TUNE_EXTRA["expm1"] = [(-1.2, 1.2, 1 << 15), (88.0, 88.73, 1 << 15)]


# ------------------------------------------------------------------ kernel fits
def _fit_poly(t: np.ndarray, target: np.ndarray, scale: np.ndarray, degree: int, times_t: bool) -> list[float]:
    """Lawson minimax fit of sum c_j t^j (times t if ``times_t``) to target, errors / scale."""
    A = np.stack([t ** (j + (1 if times_t else 0)) for j in range(degree + 1)], axis=1)
    c, _ = lawson(A, target, scale, iters=200)
    return [float(v) for v in c]


def _grid(a: float, b: float, n: int = 4000) -> np.ndarray:
    k = np.arange(n)
    return 0.5 * (a + b) + 0.5 * (b - a) * np.cos(np.pi * (k + 0.5) / n)


def exp2_kernel(degree: int) -> list[float]:
    f = _grid(-0.5, 0.5)
    v = np.exp2(f)
    return _fit_poly(f, v, ulp32(v), degree, False)


def exp_kernel(degree: int) -> list[float]:
    f = _grid(-0.35, 0.35)
    v = np.exp(f)
    return _fit_poly(f, v, ulp32(v), degree, False)


def log_kernel(degree: int, base2: bool) -> list[float]:
    """q with r^2 q(r) ~ log(1 + r) - r (or log2(1 + r) - r/ln2) on [1/sqrt2 - 1, sqrt2 - 1]."""
    r = _grid(INV_SQRT2 - 1 - 1e-3, math.sqrt(2) - 1 + 1e-3)
    r = r[np.abs(r) > 1e-12]
    if base2:
        v = np.log1p(r) / LN2
        lead = r * (INV_LN2_HI + INV_LN2_LO)
    else:
        v = np.log1p(r)
        lead = r
    A = np.stack([r ** (j + 2) for j in range(degree + 1)], axis=1)
    c, _ = lawson(A, v - lead, ulp32(v), iters=200)
    return [float(t) for t in c]


def log2_kernel(degree: int) -> list[float]:
    """t with r t(r) ~ log2(1 + r) - r L_hi on [1/sqrt2 - 1, sqrt2 - 1], degree + 1 coefficients."""
    r = _grid(INV_SQRT2 - 1 - 1e-3, math.sqrt(2) - 1 + 1e-3)
    r = r[np.abs(r) > 1e-12]
    v = np.log1p(r) / LN2
    A = np.stack([r ** (j + 1) for j in range(degree + 1)], axis=1)
    # ask for less error towards the ends, where the evaluation's roundings (of t, r t and z) grow
    taper = 1 - 0.8 * (r / (math.sqrt(2) - 1)) ** 2
    c, _ = lawson(A, v - r * INV_LN2_HI, ulp32(v) * taper, iters=200)
    return [float(t) for t in c]


# ------------------------------------------------------------------ erf (full range)
#: |x| is clamped here: erf(3.96) = 1 - 2.1e-8 rounds to 1, as erf does from 3.9192 on (erfc < 2^-25).
ERF_CLAMP = 3.96
#: r = rint(x_c * ERF_SELECT) is in {-2, ..., 2} (|x_c| <= ERF_CLAMP keeps |x_c * ERF_SELECT| < 2.5); |r| picks
#: the piece: 0 (inner) below ERF_T1 = 0.8, 1 (middle) up to ERF_T2 = 2.4, 2 (outer) beyond.
ERF_SELECT = 0.625
ERF_T1 = 0.5 / ERF_SELECT
ERF_T2 = 1.5 / ERF_SELECT
#: the middle piece's expansion point (a float32 near it whose erf is nearly a float32)
ERF_CENTER = 1.4
#: where the pieces meet, the tuning sample is denser (see build_full)
TUNE_EXTRA["erf"] = [(0.75, 1.0, 1 << 14), (2.1, 2.45, 1 << 14)]


@dataclass(frozen=True)
class ErfKernel:
    """The fitted polynomials of the full-range erf (see :func:`erf_program`)."""

    inner: list[float]  # q: erf(x) = x + x q(x^2) on |x| <= ERF_T1
    center: float  # c: erf(a) = A0 + t R(t), t = a - c, A0 = erf(c) rounded to float32
    middle: list[float]  # R, on ERF_T1 <= a <= ERF_T2
    outer: list[float]  # P: P(a)^8 ~ erfc(a) on ERF_T2 <= a <= ERF_CLAMP

    def __len__(self) -> int:
        return len(self.inner) + len(self.middle) + len(self.outer)

    @property
    def a0(self) -> float:
        return float(F32(special.erf(self.center)))

    def summary(self) -> str:
        return (f"three Horner kernels (degree {len(self.inner) - 1} in x^2, {len(self.middle) - 1} in |x| - c, "
                f"{len(self.outer) - 1} in |x|)")


def erf_program(k: ErfKernel) -> Program:
    """erf(x), three pieces blended without branches by r = rint(x_c ERF_SELECT) in {-2..2}, x_c = clamp(x):

    - inner (r = 0, |x| < 0.8): x + x q(x^2), one final rounding, exact for subnormals and +-0;
    - middle (|r| = 1, to 2.4): -(A0 + t R(t)), t = a - c exact, a = max(|x_c|, 0.8);
    - outer (|r| = 2): P(a)^8 - 1 = erfc(a) - 1 (two squarings and an fma).

    The middle and outer values are -erf(a) and are weighted by -sign(x) (s1, s2), the inner by 1 - |clamp(r)|;
    each weight is 0 or +-1 so the blend adds exact zeros to one rounded piece. At x = -0 both signed weights
    are +0 and both pieces negative (a = 0.8 there), so every term is -0 and erf(-0) = -0.
    """
    body = [
        "inputs x",
        f"xa = max x {_c(-ERF_CLAMP)}",  # NaN stays NaN; +-inf become +-ERF_CLAMP
        f"xc = min xa {_c(ERF_CLAMP)}",
        "ab = abs xc",
        f"a = max ab {_c(ERF_T1)}",
        f"u = mul xc {_c(ERF_SELECT)}",
        "r = rint u",
        "rb = max r -1",
        "cr = min rb 1",  # sign(x) where |r| >= 1, else a zero
        "s2 = sub cr r",  # -sign(x) on the outer piece, else 0
        "s1 = fma cr -2 r",  # -sign(x) on the middle piece, else 0
        "acr = abs cr",
        "wi = sub 1 acr",  # 1 on the inner piece, else 0
        "s = mul xc xc",
        *_horner("s", k.inner, "q", "ki"),
        "inn = fma xc q xc",
        f"t = sub a {_c(k.center)}",
        *_horner("t", [-v for v in k.middle], "kr", "km"),
        f"mid = fma t kr {_c(-k.a0)}",
        *_horner("a", k.outer, "kp", "ko"),
        "sq1 = mul kp kp",
        "sq2 = mul sq1 sq1",
        "o = fma sq2 sq2 -1",
        "po = mul s2 o",
        "rm = fma s1 mid po",
        "y = fma wi inn rm",
    ]
    return parse("\n".join(body) + "\n")


# ------------------------------------------------------------------ log1p (full range)
#: 2/3 rounded to float32 (2/3 (1 + 2^-25)); (1 + x) * 2/3 in [1/2, 1) puts 1 + x in [3/4, 3/2).
LOG1P_SCALE = float(F32(2 / 3))


def _log1p_reduction() -> list[str]:
    """1 + x = 2^k (1 + f) with f = x 2^-k + (2^-k - 1) in [-1/4, 1/2], exact but at one input (no rounding
    error of 1 + x to carry).

    k - 1 = getexp(v), v = (1 + x) c rounded once (an fma of x, so the window is decided on the exact
    1 + x, not on its rounding), c = LOG1P_SCALE. f is x itself for k = 0 and exact by Sterbenz for
    k != 0 when the k = 0 window holds all of (3/4, 3/2): k = 1 only for x >= 1/2, k = -1 only for
    x <= -1/4. With c = fl(2/3) the second holds and the first fails at two inputs, x = 1/2 - 2^-24
    (k = 1, f = -1/4 - 2^-25 still exact) and x = 1/2 - 2^-25 (k = 1, f = -1/4 - 2^-26 rounds to -1/4);
    the float32 below 2/3 fails at x = -1/4 + 2^-26 instead, and no constant avoids both (a c(x) one
    float32 lower near x = 1/2 than near -1/4 does, for two ops more). The one rounded f's result is
    checked with all others by the exhaustive verification.
    v is 0 exactly at x = -1 (k = -inf), negative below, +inf at x = +inf.

    s = 2^-k with -k clamped to [-149, 64] (at x = -1: s finite and f = 0; at x = +inf: s = 2^-149, not 0,
    so that f = +inf, not inf * 0; the bounds also spare the vector export's ldexp its exponent clamp);
    -k itself (unclamped) carries the infinities to the result. 2^-k - 1 is -(1 - s), -0 for k = 0, so
    that f = x s + (2^-k - 1) keeps the sign of x = -0. For k >= 25, 2^-k - 1 rounds to -1: an error of
    2^-k in f, far below an ulp of log1p(x) > 17."""
    return [
        "inputs x",
        f"v = fma x {_c(LOG1P_SCALE)} {_c(LOG1P_SCALE)}",
        "ge = getexp v",  # k - 1
        "nk = sub -1 ge",  # -k
        "nkc = min nk 64",
        "nkb = max nkc -149",
        "s = ldexp 1 nkb",  # 2^-k
        "oms = sub 1 s",
        "sm1 = neg oms",  # 2^-k - 1, -0 for k = 0
        "f = fma x s sm1",
    ]


def log1p_program(coeffs: list[float]) -> Program:
    """log1p(x) = k ln2 + (f + f^2 q(f)), the reduction of :func:`_log1p_reduction`, q(f) the kernel.

    k ln2 enters in one fma with ln2 rounded to float32 (error |k| 1.9e-9, at most 0.07 ULP of the result).
    Special values: x < -1 (v < 0) and -inf give NaN (min(v, 0) 2^300 is -inf there, times -0); x = -1 gives
    -inf (k = -inf, f = 0); +inf gives +inf (k = +inf, f = +inf: the Horner steps stay +inf when the
    kernel's leading coefficient is positive, as the fit's is; tests/test_library.py checks log1p(inf));
    +-0 give +-0 (f = x, q(0) < 0)."""
    if not coeffs[-1] > 0:
        raise ValueError(f"log1p kernel: leading coefficient {coeffs[-1]!r} is not positive (log1p(+inf) needs it)")
    body = [
        *_log1p_reduction(), "f2 = mul f f", *_horner("f", coeffs, "q"),
        "w = fma f2 q f",
        f"res = fma nk {_c(-LN2)} w",
        "sneg = min v 0",
        "big = ldexp sneg 300",
        "y = fma big -0 res",
    ]
    return parse("\n".join(body) + "\n")


def _erf_center(c0: float) -> float:
    """The float32 within 2^15 ulps of c0 whose erf is nearest (in its ulps) to a float32."""
    c = (np.array([c0], dtype=F32).view(np.uint32) + np.arange(-(1 << 15), 1 << 15)).astype(np.uint32)
    c = c.view(F32).astype(np.float64)
    v = special.erf(c)
    return float(c[np.argmin(np.abs(v - v.astype(F32)) / ulp32(v))])


def erf_kernel(degree: int) -> ErfKernel:
    """Minimax fits (errors in ulps of erf) of the three pieces; ``degree`` is the middle one's."""
    x = _grid(1e-4, ERF_T1 * 1.015)
    v = special.erf(x)
    inner = _fit_poly(x * x, (v - x) / x, ulp32(v) / x, 6, False)
    c = _erf_center(ERF_CENTER)
    a0 = float(F32(special.erf(c)))
    a = _grid(ERF_T1 * 0.985, ERF_T2 * 1.01)
    a = a[np.abs(a - c) > 1e-6]
    v = special.erf(a)
    middle = _fit_poly(a - c, (v - a0) / (a - c), ulp32(v) / np.abs(a - c), degree, False)
    a = _grid(ERF_T2 * 0.99, ERF_CLAMP)
    e = special.erfc(a)
    p = e ** (1 / 8)
    outer = _fit_poly(a, p, ulp32(special.erf(a)) * p / (8 * e), 4, False)
    return ErfKernel(inner, c, middle, outer)


def log1p_kernel(degree: int) -> list[float]:
    """q with f^2 q(f) ~ log1p(f) - f on [-1/4, 1/2], degree + 1 coefficients, errors in ulps of log1p(f)."""
    f = _grid(-0.25 - 1e-3, 0.5 + 1e-3)
    f = f[np.abs(f) > 1e-12]
    v = np.log1p(f)
    A = np.stack([f ** (j + 2) for j in range(degree + 1)], axis=1)
    c, _ = lawson(A, v - f, ulp32(v), iters=200)
    return [float(t) for t in c]


# ------------------------------------------------------------------ tuning + verification
def tune_kernel(program: Program, target: str, x: np.ndarray, kernel_slots: list[int], rounds: int = 30) -> Program:
    """Tune the kernel constants (positions in ``program.constants()``) against the whole program."""
    sample = FitSample.build(target, np.unique(x))
    best, _, _ = tune_float32(program, sample, rounds=rounds, batch=ConstantBatch(program), free=kernel_slots)
    return best


def _kernel_slots(program: Program, n_kernel: int, first_line: str) -> list[int]:
    """Positions of the kernel's constants: those of the instructions named k*/p/q, in order."""
    slots, k = [], 0
    names = program.names or []
    for name, ins in zip(names, program.instrs):
        for a in ins.args:
            if a.kind == "const":
                if name.startswith("k") or name in ("p", "q"):
                    slots.append(k)
                k += 1
    assert len(slots) == n_kernel + 1, (len(slots), n_kernel)
    return slots


def hard_sample(target: str, a: float, b: float, n: int, seed: int) -> np.ndarray:
    return np.ascontiguousarray(Domain(a, b).sample(n, seed))


def _json_bound(v: float) -> float | str:
    """Domain bounds as JSON: infinities as the strings "-inf"/"inf" (JSON has no infinity)."""
    return v if math.isfinite(v) else ("inf" if v > 0 else "-inf")


def _verification(command: str, seconds: float) -> dict:
    """How and when an exhaustive check was run (stored in the entry's ``verification``)."""
    return {"call": "pysearch.verify(program, target, domain, exhaustive=True)", "command": command,
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "seconds": round(seconds, 1)}


def verify_entry(name: str, target: str, domain: tuple[float, float], program: Program, found: str,
                 description: str) -> dict:
    t0 = time.time()
    st = verify(program, target, domain, exhaustive=True)
    seconds = time.time() - t0
    print(f"{name}: max ULP {st.max_ulp:.4f} at {st.argmax_x!r} over {st.n_points} points "
          f"({seconds:.0f} s)", file=sys.stderr)
    if math.isfinite(st.max_ulp):
        nan_in = np.array([np.nan], dtype=np.float32)
        y = evaluate(program, nan_in)
        if not np.isnan(y[0]):
            raise RuntimeError(f"{name}: NaN input does not give NaN")
    return {
        "schema": 1, "name": name, "target": target, "domain": [_json_bound(v) for v in domain],
        "text": program.to_text(),
        "max_ulp": st.max_ulp, "verified": "exhaustive", "n_points": st.n_points, "cost": program.cost(),
        "ops": program.ops, "latency": program.latency(), "found": found, "description": description,
        "verification": _verification(f"python -m pysearch.library.build --full {name}", seconds),
    }


def reverify(name: str) -> dict:
    """The shipped entry ``name`` checked again on every float32 of its domain; its bound must not change.

    Returns the entry with a fresh ``verification`` record (command, date, seconds)."""
    path = DATA / f"{name}.json"
    doc = read_json(path)
    fn_domain = tuple(float(v) for v in doc["domain"])
    program = parse(doc["text"])
    t0 = time.time()
    st = verify(program, doc["target"], fn_domain, exhaustive=True)
    seconds = time.time() - t0
    print(f"{name}: max ULP {st.max_ulp!r} over {st.n_points} points ({seconds:.0f} s); stored {doc['max_ulp']!r}",
          file=sys.stderr)
    if st.max_ulp != doc["max_ulp"] or st.n_points != doc["n_points"]:
        raise RuntimeError(f"{name}: exhaustive check gives {st.max_ulp!r} over {st.n_points} points, the entry "
                           f"says {doc['max_ulp']!r} over {doc['n_points']}")
    doc["verification"] = _verification(f"python -m pysearch.library.build --reverify {name}", seconds)
    return doc


# ------------------------------------------------------------------ tanh (full range)
#: |x| is clamped here for the exp form: 2^n + 1 stays exact (n = rint(2a/ln2) <= 24) and D = exp(2a) + 1 below
#: 2^25, so D - 2 is exact; tanh(8.49) already rounds to 1 - 2^-24, as tanh does up to |x| = 9.01.
TANH_CLAMP = 8.49
#: ln2/2 as a float32: f = a - n ln2/2 in one fma; its error (1e-9) costs at most ~0.02 ULP.
TANH_HALF_LN2 = float(F32(LN2 / 2))
#: the polynomial serves |x| below TANH_SPLIT, the exp form above: the blend weight is
#: m = rint(TANH_M_B - k B), B the exp form's value in [0, 1]: 1 where B < tanh(TANH_SPLIT), else 0
#: (k = (TANH_M_B - 1/2)/tanh(TANH_SPLIT) < TANH_M_B + 1/2, so m is 0 or 1 for every B in [0, 1]).
TANH_SPLIT = 0.78
TANH_M_B = 1.25
#: from |x| = 9 on tanh rounds to 1 (error <= 0.51 ULP at 9, the exp form gives 1 - 2^-24 there):
#: h = clamp(1 + (|x| - 9) 2^-16, 1, 1 + 2^-23) scales the exp form by 1 + 2^-23 there, which rounds to 1.
TANH_ONE = 9.0


def tanh_program(coeffs: list[float]) -> Program:
    """tanh(x) = sign(x) r(a), a = |x|: r = A = a + a^3 P(a^2) below TANH_SPLIT, else B = (D - 2)/D.

    ``coeffs``: P's coefficients (in z = a^2, lowest first), then the 6 of e^{2f} - 1 = sum c_j f^j
    (j = 1..6). D = exp(2a) + 1 with exp(2a) = 2^n e^{2f}, n = rint(2a/ln2), f = a - n ln2/2, is one
    rounding, D = (2^n f) q(f) + (2^n + 1) with q(f) = (e^{2f} - 1)/f (2^n f and 2^n + 1 are exact);
    D - 2 is exact, so B errs by 0.5 ULP + (2/D) * D's rounding, where 1 - 2/D would add the rounding
    of 2/D. Blend, exact: m = 1 for A, 0 for B, from B itself; r = m A + (h - m) B, h = 1 + 2^-23 from
    |x| ~ 9 on (B is 1 - 2^-24 there; (1 - 2^-24)(1 + 2^-23) rounds to 1), else 1. The sign is put
    back by a multiplication with clamp(x 2^300, -1, 1): +-1, or the zero's sign at +-0."""
    p, e = coeffs[:-6], coeffs[-6:]
    k = (TANH_M_B - 0.5) / math.tanh(TANH_SPLIT)
    body = [
        "inputs x",
        "a = abs x",
        f"ac = min a {TANH_CLAMP}",
        "z = mul ac ac",
        *_horner("z", p, "p"),
        "x3 = mul ac z",
        "sm = fma x3 p ac",
        f"sn = mul ac {_c(2 / LN2)}",
        "n = rint sn",
        f"f = fma n {_c(-TANH_HALF_LN2)} ac",
        *[ln.replace("k", "ke") for ln in _horner("f", e, "q")],
        "s = ldexp 1 n",
        "sf = mul s f",
        "s1 = add s 1",
        "d = fma sf q s1",
        "nm = sub d 2",
        "b = div nm d",
        f"mk = fma b {_c(-k)} {TANH_M_B}",
        "m = rint mk",
        f"h0 = fma a {2.0 ** -16!r} {1 - TANH_ONE * 2.0 ** -16!r}",
        "h1 = max h0 1",
        f"h = min h1 {1 + 2.0 ** -23!r}",
        "u = sub h m",
        "bu = mul b u",
        "r = fma m sm bu",
        "g0 = ldexp x 300",
        "g1 = min g0 1",
        "g = max g1 -1",
        "y = mul r g",
    ]
    return parse("\n".join(body) + "\n")


# ------------------------------------------------------------------ sigmoid (full range)
#: sigmoid is 0 below ln(2^-150) ~ -103.97 and 1 above 25 ln2 ~ 17.33 (e^-x < 2^-25 rounds 1 - e^-x to 1);
#: x is clamped just outside both, so n = rint(x / ln2) stays in [-151, 25] and NaN stays NaN.
SIGMOID_LO, SIGMOID_HI = -105.0, 17.5


def sigmoid_program(coeffs: list[float]) -> Program:
    """sigmoid(x) = 2^n / D, D = 2^n + P, P = e^-g = 1 + g q(g), x = n ln2 + g (Cody-Waite), n = rint(x / ln2).

    ``coeffs`` are c_1..c_d of e^-g ~ 1 + sum c_j g^j (the 1 is built in). D is never rounded: -D is
    carried as nd + ndl, nd = fma(k1, g, -RN(1 + 2^n)) the last Horner step and ndl its rounding error
    (recovered by a second fma) less c_l = (1 + 2^n) - RN(1 + 2^n). c_l is exact for n <= 24: a fast
    two-sum for n <= 0, 0 for 0 < n < 24, and RN(2^24 + 1) - 1 = 2^24 - 1 is exact. One division
    w = 1/|nd|, then a Newton step with the exact residual e = 1 - D w: y = 2^n (w + w e), one rounding
    (two for a subnormal result). So the error is that of P alone, as in an exp kernel: no 1 + e^-x is
    ever rounded, and x very negative (D ~ P, y ~ 2^n / P = e^x) and x large (y ~ 1 - P 2^-n) need no
    separate path. The one shortcut: for n = 25 (x in [16.98, 17.5]) c_l misses the 1 (2^25 + 1 rounds
    to even); y then rounds to 1 where 1 - 2^-24 is right (x < 25 ln2), an error below 0.71 ULP.
    All values are positive or NaN; +-inf and huge |x| are clamped (1 and 0), NaN passes the clamps.
    """
    d = [-v for v in coeffs]  # the Horner chain computes k1 = -(P - 1)/g, so nd = -(2^n + P)
    body = [
        "inputs x",
        f"xc = max x {SIGMOID_LO!r}",
        f"xd = min xc {SIGMOID_HI!r}",
        f"s = mul xd {_c(1 / LN2)}",
        "n = rint s",
        f"t = fma n {_c(-LN2_HI)} xd",  # exact: n * LN2_HI has at most 24 bits
        f"g = fma n {_c(-LN2_LO)} t",
        "u = ldexp 1 n",
        "nc = sub -1 u",  # -RN(1 + 2^n)
        "nc1 = add nc 1",  # -(RN(1 + 2^n) - 1), exact
        "cl = add u nc1",  # (1 + 2^n) - RN(1 + 2^n), exact for n <= 24
        *_horner("g", [0.0, *d], "k0")[:-1],  # k_{d-1} .. k1 (the constant 0 is never used)
        "nd = fma k1 g nc",  # -(2^n + P), rounded once
        "cm = sub nc nd",  # exact (Sterbenz, or both multiples of ulp(nd))
        "er = fma k1 g cm",  # (k1 g + nc) - nd: nd's rounding error
        "ndl = sub er cl",  # -D = nd + ndl (-(1 + 2^n) = nc - c_l, -P = k1 g - 1)
        "w = div -1 nd",  # 1 / |nd|
        "e0 = fma nd w 1",  # 1 - |nd| w, exact
        "e = fma ndl w e0",  # 1 - D w
        "r = fma w e w",  # 1 / D, one rounding
        "y = ldexp r n",
    ]
    return parse("\n".join(body) + "\n")


TANH_DESCRIPTION = ("sign(x) r(|x|): r = a + a^3 P(a^2) below |x| = 0.78, (D - 2)/D above, D = exp(2a) + 1 "
                    "(a = min(|x|, 8.49), exp(2a) = 2^n e^{2f}, n = rint(2a/ln2), degree-6 e^{2f} - 1), exact "
                    "branch-free blend; 1 from |x| ~ 9 on")


def tanh_kernel(degree: int) -> list[float]:
    """P of degree ``degree`` with a + a^3 P(a^2) ~ tanh(a) on [0, TANH_SPLIT] (errors / ulp of tanh), then
    the degree-6 fit of e^{2f} - 1 on |f| <= ln2/4 (errors / ulp of e^{2f})."""
    a = _grid(0.0, TANH_SPLIT + 0.02)
    a = a[a > 1e-4]
    v = np.tanh(a)
    A = np.stack([a ** (2 * j + 3) for j in range(degree + 1)], axis=1)
    c, _ = lawson(A, v - a, ulp32(v), iters=200)
    f = _grid(-0.18, 0.18)
    w = np.exp(2 * f)
    e = _fit_poly(f, w - 1, ulp32(w), 5, True)
    return [float(t) for t in c] + e


def sigmoid_kernel(degree: int) -> list[float]:
    """c_1..c_d with e^-g ~ 1 + sum c_j g^j on [-ln2/2, ln2/2], relative minimax, float32 coefficients.

    The coefficients are rounded to float32 one at a time from c_1 up, the higher ones refitted after
    each rounding (the float32 neighbour that refits best is kept): rounding a Lawson fit at once costs
    a factor ~8 in accuracy at degree 6 (c_1 = -0.99999997 rounds to -1)."""
    g = _grid(-LN2 / 2 - 1e-4, LN2 / 2 + 1e-4, 6000)
    v = np.exp(-g)
    fixed: list[float] = []

    def residual_fit(head: list[float]) -> tuple[list[float], float]:
        base = 1 + sum(cj * g ** (j + 1) for j, cj in enumerate(head))
        k = len(head) + 1
        if k > degree:
            return [], float(np.max(np.abs(base - v) / v))
        A = np.stack([g ** j for j in range(k, degree + 1)], axis=1)
        c, err = lawson(A, v - base, v, iters=300)
        return [float(t) for t in c], err

    while len(fixed) < degree:
        nxt = F32(residual_fit(fixed)[0][0])
        options = (np.nextafter(nxt, F32(-np.inf)), nxt, np.nextafter(nxt, F32(np.inf)))
        fixed.append(float(min(options, key=lambda c: residual_fit(fixed + [float(c)])[1])))
    return fixed


FULL = {
    # name: (target, program builder, kernel builder, degree, tuning domain)
    "exp2": ("exp2", exp2_program, exp2_kernel, 6, (-152.0, 130.0)),
    "exp": ("exp", exp_program, exp_kernel, 6, (-105.0, 90.0)),
    "log2": ("log2", log2_program, log2_kernel, 9, (0.25, 8.0)),
    "log": ("log", log_program, lambda d: log_kernel(d, False), 8, (0.25, 8.0)),
    "expm1": ("expm1", expm1_program, expm1_kernel, 5, (-18.0, 89.0)),
    "erf": ("erf", erf_program, erf_kernel, 11, (-4.2, 4.2)),
    "tanh": ("tanh", tanh_program, tanh_kernel, 5, (-10.0, 10.0)),
    "sigmoid": ("sigmoid", sigmoid_program, sigmoid_kernel, 6, (SIGMOID_LO, SIGMOID_HI)),  # not tuned: KEEP_FITTED
    "log1p": ("log1p", log1p_program, log1p_kernel, 9, (-0.8, 3.0)),
}
#: full-range kernels built as fitted, with no tuning of their constants in the program: how they were fitted
#: and why not tuned
KEEP_FITTED = {
    "sigmoid": "its float32 coefficients rounded one at a time with the higher ones refitted; not tuned in the "
               "program afterwards (its error is rounding noise of the reduction: tuning on a sample fitted "
               "that sample's worst points and made the error on fresh points larger)",
}


def build_full(name: str, degree: int | None = None) -> dict:
    target, make, kernel, default_degree, (a, b) = FULL[name]
    d = degree or default_degree
    coeffs = kernel(d)
    program = make(coeffs)
    if isinstance(coeffs, ErfKernel):
        kernel_text = coeffs.summary()
    else:
        kernel_text = {"tanh": f"degree-{d} (in x^2) and degree-6 (exp) Horner kernels"}.get(
            name, f"degree-{d} Horner kernel")
    if name in KEEP_FITTED:
        how = KEEP_FITTED[name]
    else:
        slots = _kernel_slots(program, len(coeffs) - 1, "k")
        extra = [hard_sample(target, lo, hi, n, 3 + i) for i, (lo, hi, n) in enumerate(TUNE_EXTRA.get(name, ()))]
        x = np.concatenate([hard_sample(target, a, b, 1 << 16, 1), hard_sample(target, 0.5, 2.0, 1 << 14, 2), *extra])
        program = tune_kernel(program, target, x, slots)
        how = "its float32 constants tuned inside the whole program"
    found = f"range reduction written by hand (pysearch.library.build); {kernel_text} fitted by Lawson minimax, {how}"
    desc = {"exp2": "2^n * p(x - n), n = rint(x)",
            "exp": "2^n * p(f), n = rint(x/ln2), f = x - n ln2 (Cody-Waite, fma)",
            "log2": "e + r q(r), x = 2^e (1 + r), 1 + r in [1/sqrt2, sqrt2)",
            "log": "e ln2 + r q(r), x = 2^e (1 + r), 1 + r in [1/sqrt2, sqrt2)",
            "expm1": "2^n (1 + t + L) - 1 summed without cancellation, n = floor(x/ln2 + 0.43), t = x - n ln2_hi",
            "erf": ("x + x q(x^2) for |x| < 0.8, A0 + t R(t) (t = |x| - c) to 2.4, 1 - P(|x|)^8 beyond "
                    "(|x| clamped to 3.96), blended without branches by rint(0.625 x)"),
            "tanh": TANH_DESCRIPTION,
            "sigmoid": "2^n / (2^n + e^-g), x = n ln2 + g, n = rint(x/ln2); the division refined by one Newton "
                       "step on the unrounded denominator",
            "log1p": "k ln2 + f + f^2 q(f), 1 + x = 2^k (1 + f), f = x 2^-k + (2^-k - 1) exact in [-1/4, 1/2]"}[name]
    return verify_entry(name, target, (-math.inf, math.inf), program, found, f"full-range float32 {name}: {desc}")


def from_run(name: str, run_dir: Path, command: str | None) -> dict:
    """The best verified program of a search run, with how it was found."""
    front = read_front(run_dir / "front.json")
    try:
        e = front.best()
    except ValueError:  # nothing met the run's bound: ship the most accurate program
        e = min(front.programs, key=lambda p: (p.max_ulp, p.cost))
    ck = read_json(run_dir / "checkpoint.json")
    cfg = ck["config"]
    how = command or (
        f"pysearch search {cfg['target']} --domain {cfg['domain'][0]!r} {cfg['domain'][1]!r}"
        + (f" --max-ulp {cfg['max_ulp']:g}" if cfg.get("max_ulp") is not None else "")
        + f" --seed {cfg['seed']}" + (" --seed-baselines" if cfg.get("seed_baselines") else "")
    )
    if cfg.get("seed_programs"):
        how += " --seed-program FILE" * len(cfg["seed_programs"])
    seeded = cfg.get("seed_baselines") or cfg.get("seed_programs")
    found = f"evolved by `{how}`" if seeded else f"evolved from scratch by `{how}`"
    found += f" (generation {e.generation}, run stopped at generation {ck['generation']}, {ck['elapsed_s']:.0f} s)"
    if e.verified != "exhaustive":
        raise ValueError(f"{run_dir}: best program is not exhaustively verified")
    return {
        "schema": 1, "name": name, "target": front.target, "domain": list(front.domain), "text": e.text,
        "max_ulp": e.max_ulp, "verified": e.verified, "n_points": e.n_points, "cost": e.cost, "ops": e.ops,
        "latency": e.latency, "found": found,
        "description": f"{front.target} on [{front.domain[0]!r}, {front.domain[1]!r}] (reduced domain)",
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pysearch.library.build", description=__doc__)
    ap.add_argument("--full", nargs="*", default=[], help=f"full-range functions to build ({', '.join(FULL)})")
    ap.add_argument("--degree", type=int, default=None, help="kernel degree (with one --full name)")
    ap.add_argument("--from-run", nargs="*", default=[], metavar="NAME=DIR", help="reduced functions from runs")
    ap.add_argument("--reverify", nargs="*", default=[], metavar="NAME",
                    help="check shipped functions again on every float32 of their domain and record when")
    args = ap.parse_args(argv)
    DATA.mkdir(exist_ok=True)
    for spec in args.from_run:
        name, _, d = spec.partition("=")
        doc = from_run(name, Path(d), None)
        write_json_atomic(DATA / f"{name}.json", doc)
        print(f"{name}: {doc['max_ulp']:.4f} ULP, cost {doc['cost']:g}", file=sys.stderr)
    for name in args.full:
        write_json_atomic(DATA / f"{name}.json", build_full(name, args.degree))
    for name in args.reverify:
        write_json_atomic(DATA / f"{name}.json", reverify(name))
    return 0


if __name__ == "__main__":
    sys.exit(main())

