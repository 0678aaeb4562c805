"""Our minimax baselines against Sollya's ``remez`` and ``fpminimax`` on the same problems.

For exp2 on [0, 1] and log2 on [1, 2] (degrees 4-7 by default) it prints, per degree:

- the real-number max relative error of our Remez polynomial and of Sollya's ``remez`` (both
  measured by Sollya's ``dirtyinfnorm`` and by our ``max_error``) and the largest relative
  difference between the two coefficient sets;
- the same for float32 coefficients: ours (pysearch.baselines.fpminimax, tuned for the evaluation
  order) and Sollya's ``fpminimax(f, n, [|single...|], I, floating, relative)``;
- the float32 max ULP of both coefficient sets evaluated as Horner with fma and with mul-then-add,
  over every float32 of the domain (``--sampled N`` checks N sampled points instead).

log2 is fitted in t = x - 1 with no constant term on both sides (Sollya: monomials 1..n of
log2(1 + t) on [0, 1]; its ``remez`` fits log2(1 + t) / t on [2^-60, 1]). Sollya is Debian's
``sollya`` package: when it is missing, the script tries ``apt-get install -y sollya`` (as root),
and if that fails prints a SKIP line and exits 0. Results go to standard output only.

Usage: python experiments/sollya_compare.py [--degrees 4 5 6 7] [--targets exp2 log2]
       [--sampled N] [--no-install]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time

import mpmath

import pysearch
from pysearch.baselines import Approximation, fpminimax, max_error, minimax, to_program

PROBLEMS = {
    # name: (domain, shift, Sollya function of t, Sollya interval of t)
    "exp2": ((0.0, 1.0), 0.0, "2^x", "[0;1]"),
    "log2": ((1.0, 2.0), 1.0, "log2(1+x)", "[0;1]"),
}


def ensure_sollya(allow_install: bool) -> str | None:
    """Path of the sollya binary, installing the Debian package if allowed; None if unavailable."""
    path = shutil.which("sollya")
    if path or not allow_install:
        return path
    if not shutil.which("apt-get") or os.geteuid() != 0:
        return None
    try:
        for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "sollya"]):
            subprocess.run(cmd, check=True, capture_output=True, timeout=900)
    except (subprocess.SubprocessError, OSError):
        return None
    return shutil.which("sollya")


def run_sollya(binary: str, script: str) -> dict[str, list[str]]:
    """Run a Sollya script; return its '@KEY value...' output lines as {KEY: [value, ...]}."""
    r = subprocess.run([binary, "--warnonstderr"], input=script, capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise RuntimeError(f"sollya failed: {r.stderr[-2000:]}")
    out: dict[str, list[str]] = {}
    for line in r.stdout.splitlines():
        m = re.match(r"@(\w+)\s+(.*)", line.strip())
        if m:
            out.setdefault(m.group(1), []).append(m.group(2))
    return out


def hex_to_mpf(text: str) -> mpmath.mpf:
    """A Sollya hexadecimal number (C99 hex float, arbitrary length) as an exact mpf."""
    text = text.strip()
    if re.fullmatch(r"-?\d+", text):
        return mpmath.mpf(int(text))
    m = re.fullmatch(r"(-?)0x([0-9a-fA-F]+)(?:\.([0-9a-fA-F]*))?p([+-]?\d+)", text)
    if not m:
        raise ValueError(f"cannot parse Sollya number {text!r}")
    sign, whole, frac, exp = m.group(1), m.group(2), m.group(3) or "", int(m.group(4))
    mant = int(whole + frac, 16)
    with mpmath.workprec(max(64, 4 * len(whole + frac) + 8)):
        v = mpmath.ldexp(mpmath.mpf(mant), exp - 4 * len(frac))
    return -v if sign else v


def sollya_fits(binary: str, name: str, n: int) -> dict:
    """Sollya's relative remez and single-precision fpminimax coefficients (in t) and errors."""
    _, shift, f, interval = PROBLEMS[name]
    lines = ["prec = 300;", "verbosity = 0;", f"f = {f};"]
    if shift:  # f(0) = 0: fit f(t)/t by remez, use monomials 1..n for fpminimax
        lines += [
            "J = [2^-60;1];",
            f"q = remez(1, {n - 1}, J, x/f);",
            "p = x * q;",
            "display = decimal;",
            'print("@remez_err", dirtyinfnorm(p/f - 1, J));',
            f"r = fpminimax(f, [|{','.join(str(k) for k in range(1, n + 1))}|], [|single...|], {interval}, "
            "floating, relative);",
            'print("@fp_err", dirtyinfnorm(r/f - 1, J));',
        ]
    else:
        lines += [
            f"p = remez(1, {n}, {interval}, 1/f);",
            "display = decimal;",
            f'print("@remez_err", dirtyinfnorm(p/f - 1, {interval}));',
            f"r = fpminimax(f, {n}, [|single...|], {interval}, floating, relative);",
            f'print("@fp_err", dirtyinfnorm(r/f - 1, {interval}));',
        ]
    lines += ["display = hexadecimal;"]
    lines += [f'print("@remez", coeff(p, {k}));' for k in range(n + 1)]
    lines += [f'print("@fp", coeff(r, {k}));' for k in range(n + 1)]
    out = run_sollya(binary, "\n".join(lines) + "\nquit;\n")
    return {
        "remez": [hex_to_mpf(v) for v in out["remez"]],
        "fp": [hex_to_mpf(v) for v in out["fp"]],
        "remez_err": mpmath.mpf(out["remez_err"][0]),
        "fp_err": mpmath.mpf(out["fp_err"][0]),
    }


def f32_max_ulp(program, name: str, sampled: int | None) -> float:
    domain = PROBLEMS[name][0]
    if sampled:
        return float(pysearch.verify(program, name, domain, exhaustive=False, n_sample=sampled).max_ulp)
    return float(pysearch.verify(program, name, domain).max_ulp)


def compare(binary: str, name: str, n: int, sampled: int | None) -> dict:
    domain, shift, _, _ = PROBLEMS[name]
    s = sollya_fits(binary, name, n)
    ours = minimax(name, domain, n)
    rel_diff = max(
        (abs(a - b) / abs(b) for a, b in zip(ours.num, s["remez"]) if b != 0), default=mpmath.mpf(0)
    )

    def approx(coeffs) -> Approximation:
        return Approximation("sollya", name, domain, tuple(coeffs), None, shift, "relative")

    row = {
        "target": name, "deg": n,
        "remez_ours": float(ours.error), "remez_sollya": float(s["remez_err"]),
        "remez_sollya_by_us": float(max_error(approx(s["remez"]), name, domain)),
        "coef_rel_diff": float(rel_diff),
        "fp_sollya": float(s["fp_err"]),
    }
    for fma in (True, False):
        tag = "fma" if fma else "muladd"
        fm = fpminimax(name, domain, n, "horner", fma, exhaustive=not sampled)
        row[f"fp_ours_{tag}"] = float(fm.real_error)
        row[f"ulp_ours_{tag}"] = fm.max_ulp if fm.verified == "exhaustive" else f32_max_ulp(fm.program, name, sampled)
        row[f"ulp_sollya_{tag}"] = f32_max_ulp(to_program(approx(s["fp"]), "horner", fma, "float32"), name, sampled)
    return row


COLUMNS = [
    ("target", "target"), ("deg", "deg"),
    ("remez_ours", "remez rel.err ours"), ("remez_sollya", "sollya"), ("remez_sollya_by_us", "sollya (our measure)"),
    ("coef_rel_diff", "max coef rel.diff"),
    ("fp_ours_fma", "f32 coefs rel.err ours"), ("fp_sollya", "sollya"),
    ("ulp_ours_fma", "ULP fma ours"), ("ulp_sollya_fma", "sollya"),
    ("ulp_ours_muladd", "ULP mul+add ours"), ("ulp_sollya_muladd", "sollya"),
]


def print_table(rows: list[dict]) -> None:
    def fmt(v):
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    heads = [h for _, h in COLUMNS]
    cells = [[fmt(r[k]) for k, _ in COLUMNS] for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(heads)]
    print("  ".join(h.rjust(w) for h, w in zip(heads, widths)))
    for c in cells:
        print("  ".join(v.rjust(w) for v, w in zip(c, widths)))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--targets", nargs="+", default=list(PROBLEMS), choices=list(PROBLEMS))
    ap.add_argument("--degrees", nargs="+", type=int, default=[4, 5, 6, 7])
    ap.add_argument("--sampled", type=int, metavar="N", help="check N sampled float32 points, not all")
    ap.add_argument("--no-install", action="store_true", help="do not try to apt-get install sollya")
    args = ap.parse_args(argv)
    binary = ensure_sollya(not args.no_install)
    if binary is None:
        print("SKIP: Sollya is not installed and could not be installed (apt-get install -y sollya failed "
              "or is not permitted); nothing to compare.")
        return 0
    version = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.strip().splitlines()
    print(f"Sollya: {version[0] if version else binary}")
    how = f"{args.sampled} sampled float32 inputs" if args.sampled else "every float32 of the domain"
    print(f"float32 max ULP over {how}; Horner evaluation; relative error everywhere.\n")
    rows = []
    t0 = time.time()
    for name in args.targets:
        for n in args.degrees:
            rows.append(compare(binary, name, n, args.sampled))
            print(f"  done {name} degree {n} ({time.time() - t0:.0f} s)", file=sys.stderr, flush=True)
    print_table(rows)
    worse = [r for r in rows if r["ulp_ours_fma"] > r["ulp_sollya_fma"] + 1e-9]
    print(f"\nours <= Sollya (fma, max ULP) in {len(rows) - len(worse)} of {len(rows)} cases"
          + (": worse in " + ", ".join(f"{r['target']} degree {r['deg']}" for r in worse) if worse else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
