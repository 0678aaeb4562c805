"""``pysearch demo``: a one-minute tour on a built-in default (exp2 on [0, 1] in float32)."""

from __future__ import annotations

import time

import numpy as np

from pysearch.domain import Domain
from pysearch.evaluation import evaluate, verify
from pysearch.program import Instr, Program, Ref


def register(sub) -> None:
    p = sub.add_parser("demo", help="a short tour: evaluate and exhaustively verify exp2 kernels")
    p.set_defaults(func=run)


def horner(coeffs: list[float]) -> Program:
    """c[n] x^n + ... + c[0] as a chain of fma (highest degree first)."""
    instrs = [Instr("fma", (Ref.const(coeffs[-1]), Ref.input(0), Ref.const(coeffs[-2])))]
    for c in reversed(coeffs[:-2]):
        instrs.append(Instr("fma", (Ref.val(len(instrs) - 1), Ref.input(0), Ref.const(c))))
    return Program(instrs)


def least_squares_exp2(degree: int) -> list[float]:
    """Relative-error least-squares fit of 2^x on [0, 1] at Chebyshev nodes, rounded to float32."""
    k = np.arange(4 * degree + 8)
    x = 0.5 - 0.5 * np.cos(np.pi * (k + 0.5) / len(k))
    y = np.exp2(x)
    a = np.vander(x, degree + 1, increasing=True) / y[:, None]
    c = np.linalg.lstsq(a, np.ones_like(x), rcond=None)[0]
    return [float(np.float32(v)) for v in c]


def run(args) -> int:
    dom = Domain(0.0, 1.0)
    print(f"pysearch demo: float32 kernels for 2^x on {dom}, checked on all {dom.count():,} float32 inputs\n")
    print(f"{'program':34} {'ops':>4} {'max ULP':>9} {'correctly rounded':>18} {'seconds':>8}")
    for degree in (4, 5, 6):
        p = horner(least_squares_exp2(degree))
        t0 = time.perf_counter()
        st = verify(p, "exp2", dom)
        dt = time.perf_counter() - t0
        print(f"{f'degree-{degree} Horner, fma (least squares)':34} {p.ops:4d} {st.max_ulp:9.3f} "
              f"{100 * st.frac_correctly_rounded:17.2f}% {dt:8.2f}")
    x = np.linspace(0, 1, 5, dtype=np.float32)
    print("\nexample values of the degree-6 kernel:", evaluate(horner(least_squares_exp2(6)), x))
    print("\nNext: `pysearch search exp2 --domain 0 1 --max-ulp 1` evolves kernels from scratch.")
    return 0
