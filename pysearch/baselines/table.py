"""Tables of baseline errors: real-number max error per method and degree, float32 max ULP."""

from __future__ import annotations

from typing import Iterable, Sequence

from ..evaluation import verify
from .approximations import Approximation, chebyshev, minimax, pade, rational_minimax, taylor
from .programs import to_program


def _ops(approx: Approximation, order: str, fma: bool) -> int:
    return to_program(approx, order, fma, "float64").ops


def _deg(approx: Approximation) -> str:
    d = approx.degree
    return str(d) if isinstance(d, int) else f"({d[0]},{d[1]})"


def real_rows(
    target: str,
    domain: Sequence[float],
    degrees: Iterable[int] = range(2, 9),
    rational_types: Iterable[tuple[int, int]] = ((1, 1), (2, 2), (3, 3), (4, 4)),
) -> list[dict]:
    """One row per approximation: method, degree, op counts and max error.

    Taylor polynomials are taken at the domain's left end and at the default centre (the
    target's zero, else the midpoint); Padé approximants at the default centre.
    """
    a = float(domain[0])
    rows = []

    def add(approx: Approximation, method: str) -> None:
        if "center" in approx.info:
            method = f"{method}@{approx.info['center']:g}"
        if any(r["method"] == method and r["degree"] == _deg(approx) for r in rows):
            return  # e.g. the Taylor polynomial at the domain's end and at the target's zero
        rows.append({
            "target": target, "method": method, "degree": _deg(approx),
            "ops_fma": _ops(approx, "horner", True), "ops_muladd": _ops(approx, "horner", False),
            "ops_estrin_fma": _ops(approx, "estrin", True), "weight": approx.weight,
            "error": float(approx.error),
        })

    for n in degrees:
        add(taylor(target, domain, n, center=a), "taylor")
        add(taylor(target, domain, n), "taylor")
        add(chebyshev(target, domain, n), "chebyshev")
        add(minimax(target, domain, n), "minimax")
    for m, n in rational_types:
        add(pade(target, domain, m, n), "pade")
        add(rational_minimax(target, domain, m, n), "rational minimax")
    return rows


def float32_rows(
    target: str,
    domain: Sequence[float],
    degrees: Iterable[int] = (5, 6, 7),
    exhaustive: bool = False,
    variants: Iterable[tuple[str, bool]] = (("horner", True), ("horner", False), ("estrin", True)),
) -> list[dict]:
    """float32 rows: fpminimax-style coefficients per degree and evaluation order, max ULP.

    Each row also gives the max ULP of the real minimax coefficients rounded to nearest float32.
    ``exhaustive`` verifies every float32 of the domain (else the search's scan sample).
    """
    from .fpminimax import fpminimax

    rows = []
    for n in degrees:
        real = minimax(target, domain, n)
        for order, fma in variants:
            fm = fpminimax(target, domain, n, order=order, fma=fma, exhaustive=exhaustive)
            naive = to_program(real.float_coefficients(), order, fma, "float32")
            if fm.verified == "exhaustive":
                rounded = verify(naive, target, domain).max_ulp
            else:
                rounded = verify(naive, target, domain, exhaustive=False).max_ulp
            ours, how = fm.max_ulp, fm.verified
            rows.append({
                "target": target, "degree": n, "order": order, "fma": fma, "ops": fm.program.ops,
                "latency": fm.program.latency(), "max_ulp": float(ours), "rounded_max_ulp": float(rounded),
                "real_error": float(fm.real_error), "verified": how, "program": fm.program.to_text(),
            })
    return rows


def format_rows(rows: list[dict], columns: Sequence[str]) -> str:
    """A plain-text table of ``rows`` restricted to ``columns``."""

    def fmt(v: object) -> str:
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    cells = [[fmt(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)
