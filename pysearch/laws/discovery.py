"""Discover a law's form: symbolic regression over float64 programs, NSGA-II on (error, cost).

:func:`discover` runs the law problem (:class:`~pysearch.search.law_problem.LawProblem`) on the
one search engine (:class:`pysearch.search.loop.Search`): candidates are
:class:`~pysearch.program.Program` objects in float64 whose inputs are the (scaled) x columns,
built and varied by :mod:`pysearch.variation` over the ops in :data:`LAW_OPS`. Each new
structure's constants are fitted (:mod:`pysearch.laws.constant_fit`: Levenberg-Marquardt on exact
Jacobians, on the residuals in the fit space, log y for loss data) and written back into the
program (Lamarckian), so children start from fitted constants. The fitted programs are then
scored by the engine, ``pysearch.evaluate``: error = RMSE of the residuals in the fit space (or,
with ``loss="huber"``, the mean Huber loss / delta); complexity = ``Program.cost()``. The
engine's NSGA-II keeps the population and its Pareto archive the best seen; the archive's
non-dominated members are the front, from which one law is chosen by a stated rule
(:func:`choose_law`, over :mod:`pysearch.laws.front`).

This module holds that wrapper and the program plumbing around it (input scales, input names,
display); it re-exports the names of :mod:`~pysearch.laws.constant_fit` and
:mod:`~pysearch.laws.front` that callers import from here.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from pysearch import variation
from pysearch.laws.constant_fit import (
    KERNEL_OPS,
    ConstKernel,
    bootstrap_constants,
    engine_evaluate,
    fit_constants,
    search_error,
)
from pysearch.laws.forms import SPACES
from pysearch.laws.selection import choose_by_cv_extrapolation
from pysearch.laws.front import SELECTION_RULES, Candidate, choose, choose_by_extrapolation, inner_holdout, pareto
from pysearch.ops import OP_BY_NAME
from pysearch.program import Instr, Program, Ref

if TYPE_CHECKING:  # imported where used: pysearch.search.law_problem imports pysearch.laws
    from pysearch.search.loop import Search

__all__ = [
    "LAW_OPS",
    "SELECTION_RULES",
    "Candidate",
    "ConstKernel",
    "DiscoveryResult",
    "bootstrap_constants",
    "choose",
    "choose_by_extrapolation",
    "choose_law",
    "discover",
    "engine_evaluate",
    "fit_constants",
    "infix",
    "law_front",
    "inner_holdout",
    "input_scales",
    "pareto",
    "program_inputs",
    "search_error",
    "with_input_scales",
]

#: Default op set for laws (float64 only; see docs/program-format.md).
LAW_OPS = ("add", "sub", "mul", "div", "pow", "exp", "log")


@dataclass
class DiscoveryResult:
    """The Pareto front (by complexity), the chosen law, and how the search went.

    Front programs read the inputs divided by ``scales`` (see :func:`discover`);
    :meth:`raw_program` gives the same law over the raw columns.
    """

    front: list[Candidate]
    chosen: Candidate
    rule: str
    space: str
    generations: int
    fitted: int
    elapsed_s: float
    input_names: tuple[str, ...]
    display_names: tuple[str, ...]
    scales: tuple[float, ...]
    inner_errors: list[float] | None = None  # per front member, with the "extrapolation" rule
    #: of ``fitted``, programs given the earlier fit of the same start (``LawProblem.fit_constants``)
    fits_reused: int = 0

    def raw_program(self, program: Program) -> Program:
        """``program`` over raw inputs: each input is first multiplied by ``1/scale``."""
        return with_input_scales(program, self.scales)

    def scaled_names(self) -> list[str]:
        """Display names of the scaled inputs, e.g. ``(N / 1.2e+09)``."""
        return [n if s == 1.0 else f"({n} / {s:.4g})" for n, s in zip(self.display_names, self.scales)]


def input_scales(X: np.ndarray) -> tuple[float, ...]:
    """Per input: the geometric mean of a positive column, else its largest magnitude (or 1)."""
    out = []
    for col in np.atleast_2d(X):
        if np.all(col > 0):
            out.append(float(np.exp(np.mean(np.log(col)))))
        else:
            m = float(np.max(np.abs(col)))
            out.append(m if m > 0 and math.isfinite(m) else 1.0)
    return tuple(out)


def with_input_scales(program: Program, scales: Sequence[float]) -> Program:
    """A program over raw inputs equal to ``program`` over inputs divided by ``scales``."""
    k = len(program.inputs)
    pre = [Instr("mul", (Ref.input(i), Ref.const(1.0 / s))) for i, s in enumerate(scales)]

    def shift(a: Ref) -> Ref:
        if a.kind == "input":
            return Ref.val(a.index)
        if a.kind == "value":
            return Ref.val(a.index + k)
        return a

    body = [Instr(ins.op, tuple(shift(a) for a in ins.args)) for ins in program.instrs]
    return Program(pre + body, program.inputs, program.dtype, program.output + k).pruned()


def program_inputs(names: Sequence[str]) -> tuple[str, ...]:
    """Program input names for columns: the column name when it is a usable identifier, else x1..."""
    out = []
    for i, n in enumerate(names):
        ok = re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", n) and n not in ("dtype", "inputs", "return", "inf", "nan")
        out.append(n if ok and n not in OP_BY_NAME else f"x{i + 1}")
    if len(set(out)) != len(out):
        out = [f"x{i + 1}" for i in range(len(names))]
    return tuple(out)


def infix(program: Program, consts: Sequence[str] | None = None, inputs: Sequence[str] | None = None) -> str:
    """The program as one infix expression (:meth:`Program.expression`, ``pow`` written ``^``),
    constants shown as ``consts`` (default: 6 digits, negative ones in parentheses)."""
    if consts is None:
        consts = [f"{v:.6g}" if v >= 0 else f"({v:.6g})" for v in program.constants()]
    return program.expression(consts=consts, inputs=inputs or program.inputs, infix_ops={"pow": "^"})


def discover(
    X: np.ndarray,
    y: np.ndarray,
    input_names: Sequence[str],
    space: str = "log",
    ops: Sequence[str] = LAW_OPS,
    max_instrs: int = 8,
    population: int = 64,
    generations: int | None = None,
    budget_s: float = 60.0,
    seed: int = 0,
    patience: int | None = 40,
    target_error: float | None = None,
    normalize: bool = True,
    seeds: Sequence[Program] = (),
    select: str = "extrapolation",
    loss: str = "lsq",
    delta: float = 1e-3,
    log: Callable[[str], None] | None = None,
    axis: int = 0,
) -> DiscoveryResult:
    """Search for a law ``y = f(x)``.

    With ``normalize`` the programs read each input divided by a fixed scale (the geometric
    mean of a positive column), so that constants are of order one whether N is 1e7 or 1e11.
    ``seeds`` (float64 programs over the same input names, reading the scaled inputs; their
    constants are refitted) join the random initial population, e.g. a known law to improve on.

    ``loss``: ``"lsq"`` (least squares; error = RMSE in the fit space) or ``"huber"`` (Huber with
    ``delta``, robust to outlying runs; error = mean Huber loss / delta).

    Stops after ``generations``, after ``budget_s`` seconds, when the front has not changed for
    ``patience`` generations (``None``: never), or once a program's train error is at most
    ``target_error`` (``None``: never), whichever comes first.
    """
    X = np.atleast_2d(np.asarray(X, dtype=np.float64))
    y = np.asarray(y, dtype=np.float64)
    if space not in SPACES:
        raise ValueError(f"unknown residual space {space!r}; expected one of {SPACES}")
    if X.shape[0] != len(input_names):
        raise ValueError(f"{len(input_names)} input names for {X.shape[0]} input rows")
    if len(y) < 3:
        raise ValueError(f"too few points for a search: {len(y)} training rows (need at least 3)")
    unsupported = [o for o in ops if o not in KERNEL_OPS]
    if unsupported:
        raise ValueError(f"op(s) {unsupported} are not available for law search; choose from {sorted(KERNEL_OPS)}")
    if population < 4:
        raise ValueError(f"population must be at least 4, got {population}")
    if loss not in ("lsq", "huber"):
        raise ValueError(f"unknown loss {loss!r}; expected 'lsq' or 'huber'")
    if select not in SELECTION_RULES:
        raise ValueError(f"unknown selection rule {select!r}; expected one of {sorted(SELECTION_RULES)}")
    names = program_inputs(input_names)
    ops = variation.check_ops(ops, "float64")
    scales = input_scales(X) if normalize else (1.0,) * X.shape[0]
    X = np.ascontiguousarray(X / np.array(scales)[:, None])
    for p in seeds:
        if p.inputs != names or p.dtype != "float64":
            raise ValueError(f"seed programs must be float64 over inputs {names}, got {p.inputs} ({p.dtype})")
    from pysearch.search.law_problem import LawConfig, LawProblem
    from pysearch.search.loop import Search

    t0 = time.monotonic()
    problem = LawProblem(LawConfig(
        X=X, y=y, inputs=names, space=space, loss=loss, delta=delta, ops=ops, max_instrs=max_instrs,
        population=population, seed=seed, patience=patience, target_error=target_error,
        seed_programs=tuple(p.to_text() for p in seeds),
    ))
    search = Search(problem)  # the engine: the first population is fitted and scored here

    def progress(s: Search, info) -> None:
        if log is not None and s.generation % 10 == 0:
            fr = law_front(s)
            log(f"gen {s.generation}: {s.optimisations} fitted, front {len(fr)}, best error {fr[-1].error:.4g}"
                if fr else f"gen {s.generation}")

    search.run(generations=generations, budget_s=max(budget_s - (time.monotonic() - t0), 0.0),
               on_generation=progress)
    front = law_front(search)
    if not front:
        raise ValueError("the search found no program with a finite error on the training data")
    chosen, rule, inner_errors = choose_law(front, X, y, space, select, loss, delta, axis)
    return DiscoveryResult(
        front, chosen, SELECTION_RULES[rule], space, search.generation, search.optimisations,
        time.monotonic() - t0, names, tuple(input_names), scales, inner_errors, problem.fits_reused,
    )


def law_front(search: Search) -> list[Candidate]:
    """The engine archive's non-dominated programs as law candidates, sorted by complexity."""
    return pareto([Candidate(ind.program, search.measure(ind.program), ind.max_ulp) for ind in search.archive])


def choose_law(
    front: list[Candidate], X: np.ndarray, y: np.ndarray, space: str, select: str, loss: str, delta: float,
    axis: int = 0,
) -> tuple[Candidate, str, list[float] | None]:
    """The one place a law is chosen from the front: ``(chosen, rule, inner errors)`` by ``select``
    (extrapolation backtests cross-validated over cut points along input ``axis``, the ``--holdout``
    column, falling back to the knee where there is no split)."""
    rule, inner_errors = "knee", None
    chosen = None
    if select == "extrapolation":
        picked = choose_by_cv_extrapolation(front, X, y, space, loss, delta, axis)  # axis: the --holdout column
        if picked is not None:
            chosen, inner_errors = picked
            rule = "extrapolation"
    if chosen is None:
        chosen = choose(front)
    return chosen, rule, inner_errors
