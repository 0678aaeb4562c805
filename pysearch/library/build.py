"""Build the shipped library (a maintainer's tool): ``python -m pysearch.library.build``.

Reduced-domain functions come from search runs (``--from-run NAME=RUN_DIR``: the run's best
verified program and how it was found). Full-range functions are written here as one program
each: a range reduction with ``rint``/``ldexp``/``getexp``/``getmant`` around a polynomial
kernel whose constants are fitted by Lawson minimax and tuned in float32 inside the whole
program, then verified on every float32 (all 2^32 patterns but NaNs).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

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


def _c(v: float) -> str:
    return float(F32(v)).hex()


def _horner(var: str, coeffs: list[float], out: str) -> list[str]:
    """Lines computing sum coeffs[j] * var**j by Horner with fma (highest degree first)."""
    c = coeffs
    lines = [f"k{len(c) - 2} = fma {var} {_c(c[-1])} {_c(c[-2])}"]
    for j in range(len(c) - 3, -1, -1):
        lines.append(f"k{j} = fma k{j + 1} {var} {_c(c[j])}")
    lines[-1] = lines[-1].replace("k0 =", f"{out} =", 1)
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


def _log_reduction() -> list[str]:
    """x = 2^e' * m', m' in [1/sqrt2, sqrt2), r = m' - 1 (exact); NaN for x < 0 handled after.

    The halving of m >= sqrt2 is a multiplication by s = 1 - g/2 in {1, 1/2} with g = floor(m / sqrt2)
    in {0, 1}: exact, and cheaper in vector code than getexp/ldexp (the same values as
    ``g = getexp u; mm = ldexp m (-1 - g)``, which earlier library versions used)."""
    return [
        "inputs x",
        "m0 = getmant x",
        "m = min m0 2",  # +inf -> 2, so log(inf) = e' = inf
        "e = getexp x",
        f"u = mul m {_c(INV_SQRT2)}",
        "g = floor u",  # 1 when m >= sqrt2 (as rounded), else 0
        "s = fma g -0.5 1",  # 1/2 or 1
        "mm = mul m s",
        "ee = add e g",
        "r = sub mm 1",
    ]


def log2_program(coeffs: list[float]) -> Program:
    """log2(x) = e' + (r L_hi + (r L_lo + r^2 q(r))), L_hi + L_lo = 1/ln2, q(r) the kernel.

    The leading term r L_hi is added last in one fma, so near x = 1 the result has the
    accuracy of a single rounding; e' is added in a final exact-ish add (|z| < |y| there).
    """
    body = [
        *_log_reduction(), "r2 = mul r r", *_horner("r", coeffs, "q"),
        f"lo = mul r {_c(INV_LN2_LO)}",
        "inner = fma r2 q lo",
        f"z = fma r {_c(INV_LN2_HI)} inner",
        "res = add ee z",
        *_negative_is_nan("res"),
    ]
    return parse("\n".join(body) + "\n")


def log_program(coeffs: list[float]) -> Program:
    """log(x) = e' ln2_hi + (e' ln2_lo + (r + r^2 q(r))), q(r) the kernel."""
    body = [
        *_log_reduction(), "r2 = mul r r", *_horner("r", coeffs, "q"),
        "w = fma r2 q r",
        f"lo = fma ee {_c(LN2_LO)} w",
        f"res = fma ee {_c(LN2_HI)} lo",
        *_negative_is_nan("res"),
    ]
    return parse("\n".join(body) + "\n")


def _negative_is_nan(res: str) -> list[str]:
    """NaN for x < 0 (including -inf): min(x, 0) * 2^300 is -inf there, 0 elsewhere; times 0."""
    return ["sneg = min x 0", "big = ldexp sneg 300", f"y = fma big 0 {res}"]


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


FULL = {
    # name: (target, program builder, kernel builder, degree, tuning domain)
    "exp2": ("exp2", exp2_program, exp2_kernel, 6, (-152.0, 130.0)),
    "exp": ("exp", exp_program, exp_kernel, 6, (-105.0, 90.0)),
    "log2": ("log2", log2_program, lambda d: log_kernel(d, True), 9, (0.25, 8.0)),
    "log": ("log", log_program, lambda d: log_kernel(d, False), 9, (0.25, 8.0)),
    "log1p": ("log1p", log1p_program, log1p_kernel, 9, (-0.8, 3.0)),
}


def build_full(name: str, degree: int | None = None) -> dict:
    target, make, kernel, default_degree, (a, b) = FULL[name]
    d = degree or default_degree
    coeffs = kernel(d)
    program = make(coeffs)
    slots = _kernel_slots(program, d, "k")
    x = np.concatenate([hard_sample(target, a, b, 1 << 16, 1), hard_sample(target, 0.5, 2.0, 1 << 14, 2)])
    program = tune_kernel(program, target, x, slots)
    found = (f"range reduction written by hand (pysearch.library.build); degree-{d} Horner kernel fitted by "
             f"Lawson minimax, its float32 constants tuned inside the whole program")
    desc = {"exp2": "2^n * p(x - n), n = rint(x)",
            "exp": "2^n * p(f), n = rint(x/ln2), f = x - n ln2 (Cody-Waite, fma)",
            "log2": "e + r q(r), x = 2^e (1 + r), 1 + r in [1/sqrt2, sqrt2)",
            "log": "e ln2 + r q(r), x = 2^e (1 + r), 1 + r in [1/sqrt2, sqrt2)",
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
