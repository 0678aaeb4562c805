"""Discover a law's form: symbolic regression over float64 programs, NSGA-II on (cost, error).

Candidates are :class:`~pysearch.program.Program` objects in float64 whose inputs are the x
columns, built and varied by :mod:`pysearch.variation` over the ops in :data:`LAW_OPS`. Each
candidate's constants are fitted by Levenberg-Marquardt least squares on the residuals in the
fit space (log y for loss data) and written back into the program (Lamarckian), so children start
from fitted constants. The fitted program is then scored by the engine, ``pysearch.evaluate``
(the reference interpreter until the compiled core is present): error = RMSE of the residuals in
the fit space (or, with ``loss="huber"``, the mean Huber loss); complexity = ``Program.cost()``. DEAP's NSGA-II keeps the population; an archive
keeps the lowest-error program at each complexity, and its non-dominated members are the front.

Choice from the front uses training rows only (held-out rows are never seen), by one of two
stated rules (recorded in the result):

- ``"extrapolation"`` (default): the training rows at the largest values of the first input
  (as few values as cover 10% of the rows) are set aside, every front member's constants are refitted on the other training rows, and the
  member that predicts the set-aside rows best (RMSE in the fit space) is chosen; its constants
  are those fitted on all training rows. This backtests extrapolation inside the training data.
- ``"knee"``: sort the front by complexity and score each member by the drop in log error per
  unit of complexity from the previous member; among members whose error is within 2x the
  front's lowest, pick the highest score.

Constant fitting evaluates a whole batch of constant vectors at once with a small numpy kernel
(:class:`ConstKernel`); that kernel is used for fitting only, never for the reported errors.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
from deap import base, tools
from scipy import optimize

from pysearch import variation
from pysearch.laws.forms import SPACES, finite_clip, to_space
from pysearch.ops import OP_BY_NAME, ops_where
from pysearch.program import Instr, Program, Ref

#: Default op set for laws (float64 only; see docs/program-format.md).
LAW_OPS = ("add", "sub", "mul", "div", "pow", "exp", "log")

#: The front-choice rules, as stated in results.
SELECTION_RULES = {
    "knee": (
        "knee: among Pareto members with train error <= 2x the lowest, the one with the largest "
        "drop in log(train error) per unit of complexity from the next simpler member"
    ),
    "extrapolation": (
        "inner extrapolation: constants refitted without the training rows at the largest values of "
        "the first input (>= 10% of rows); the member that predicts those rows best is chosen (ties: simpler)"
    ),
}

#: Ops whose constants law fitting can fit: the registry's ``law_fit`` ops (evaluated by their ``fit`` hook).
_KERNEL_OPS = ops_where("law_fit")
_RESID_CAP = 1e6


class ConstKernel:
    """Evaluate one program structure for many constant vectors at once: ``(K, m) -> (K, n)``."""

    def __init__(self, program: Program):
        self.program = program
        self.steps: list[tuple[Callable, list[tuple[str, int]]]] = []
        for op, args in program.numbered_operands():
            fn = OP_BY_NAME[op].fit if op in _KERNEL_OPS else None
            if fn is None:
                raise ValueError(f"op {op!r} is not supported when fitting law constants; use {sorted(_KERNEL_OPS)}")
            self.steps.append((fn, args))
        self.n_consts = len(program.constants())

    def __call__(self, C: np.ndarray, cols: Sequence[np.ndarray]) -> np.ndarray:
        C = np.atleast_2d(C)
        vals: list[np.ndarray] = []
        with np.errstate(all="ignore"):
            for fn, args in self.steps:
                ops = []
                for kind, i in args:
                    if kind == "const":
                        ops.append(C[:, i : i + 1])
                    elif kind == "input":
                        ops.append(cols[i][None, :])
                    else:
                        ops.append(vals[i])
                vals.append(fn(*ops))
        out = vals[self.program.output]
        if out.shape != (C.shape[0], len(cols[0])):
            out = np.broadcast_to(out, (C.shape[0], len(cols[0])))
        return out


def engine_evaluate(programs: list[Program], X: np.ndarray) -> np.ndarray:
    """Predictions ``(P, n)`` from ``pysearch.evaluate``, or the reference interpreter without it."""
    X = np.ascontiguousarray(X, dtype=np.float64)
    try:
        from pysearch import evaluate  # the compiled engine
    except ImportError:
        evaluate = None
    with np.errstate(all="ignore"):
        if evaluate is not None:
            return np.asarray(evaluate(programs, X), dtype=np.float64).reshape(len(programs), -1)
        from pysearch import interpreter

        return np.array([interpreter.run(p, X) for p in programs], dtype=np.float64).reshape(len(programs), -1)


def search_error(pred: np.ndarray, t: np.ndarray, space: str, loss: str = "lsq", delta: float = 1e-3) -> np.ndarray:
    """Per row of ``pred``: RMSE of the residuals in ``space`` (``loss="lsq"``), or their mean
    Huber loss divided by ``delta`` (``"huber"``; about the mean absolute residual when residuals
    exceed delta). Inf where any prediction is unusable."""
    with np.errstate(all="ignore"):
        ps = to_space(pred, space)
        r = ps - t
        if loss == "huber":
            a = np.abs(r)
            e = np.mean(np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta)), axis=-1) / delta
        else:
            e = np.sqrt(np.mean(r * r, axis=-1))
        bad = ~np.all(np.isfinite(pred), axis=-1) | (np.max(np.abs(ps), axis=-1) >= 1e299)
        if space == "log":
            bad |= np.any(pred <= 0, axis=-1)
        elif space == "loglog":
            bad |= np.any((pred <= 0) | (pred >= 1), axis=-1)
    return np.where(bad | ~np.isfinite(e), np.inf, e)


def fit_constants(
    program: Program,
    cols: Sequence[np.ndarray],
    t: np.ndarray,
    space: str,
    max_nfev: int = 60,
    loss: str = "lsq",
    delta: float = 1e-3,
) -> Program:
    """Constants by least squares (Levenberg-Marquardt; trf when constants outnumber rows), or
    with ``loss="huber"`` by trf on scipy's Huber loss with scale ``delta``. Returns the program
    unchanged if the fit fails or does not lower the objective."""
    kern = ConstKernel(program)
    c0 = np.asarray(program.constants(), dtype=np.float64)
    m = len(c0)
    if m == 0:
        return program

    def resid_many(C: np.ndarray) -> np.ndarray:
        return finite_clip(to_space(kern(C, cols), space) - t, _RESID_CAP)

    def fun(c):
        return resid_many(c[None, :])[0]

    def jac(c):
        h = 1e-6 * np.maximum(np.abs(c), 1e-3)
        C = np.repeat(c[None, :], 2 * m, axis=0)
        idx = np.arange(m)
        C[idx, idx] += h
        C[m + idx, idx] -= h
        R = resid_many(C)
        return ((R[:m] - R[m:]) / (2 * h[:, None])).T

    def objective(c):
        return float(search_error(kern(c[None, :], cols), t, space, loss, delta)[0])

    if not np.all(np.isfinite(fun(c0))):
        return program
    if loss == "huber":
        kw = {"method": "trf", "loss": "huber", "f_scale": delta}
    else:
        kw = {"method": "lm" if len(t) >= m else "trf"}
    try:
        with np.errstate(all="ignore"):
            res = optimize.least_squares(fun, c0, jac=jac, max_nfev=max_nfev, **kw)
    except (ValueError, np.linalg.LinAlgError):
        return program
    c = res.x
    if not np.all(np.isfinite(c)) or not objective(c) <= objective(c0):
        return program
    return program.with_constants([float(v) for v in c])


class _LawFitness(base.Fitness):
    weights = (-1.0, -1.0)  # minimise (complexity, error)


@dataclass
class Candidate:
    """A program with fitted constants, its complexity (cost) and train error in the fit space."""

    program: Program
    complexity: float
    error: float
    fitness: _LawFitness = field(default_factory=_LawFitness, repr=False, compare=False)


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
    """The program as one infix expression, constants shown as ``consts`` (default: 6 digits)."""
    vals = program.constants()
    if consts is None:
        consts = [f"{v:.6g}" if v >= 0 else f"({v:.6g})" for v in vals]
    names = list(inputs or program.inputs)
    k = 0
    memo: list[str] = []
    sym = {"add": "+", "sub": "-", "mul": "*", "div": "/", "pow": "^"}
    for ins in program.instrs:
        args = []
        for a in ins.args:
            if a.kind == "const":
                args.append(consts[k])
                k += 1
            elif a.kind == "input":
                args.append(names[a.index])
            else:
                args.append(memo[a.index])
        if ins.op in sym:
            memo.append(f"({args[0]} {sym[ins.op]} {args[1]})")
        elif ins.op == "neg":
            memo.append(f"(-{args[0]})")
        else:
            memo.append(f"{ins.op}({', '.join(args)})")
    s = memo[program.output]
    return s[1:-1] if s.startswith("(") and s.endswith(")") else s


def pareto(cands: Sequence[Candidate]) -> list[Candidate]:
    """Non-dominated candidates (finite error), sorted by complexity."""
    best: dict[float, Candidate] = {}
    for c in cands:
        if math.isfinite(c.error) and (c.complexity not in best or c.error < best[c.complexity].error):
            best[c.complexity] = c
    front: list[Candidate] = []
    for cx in sorted(best):
        c = best[cx]
        if not front or c.error < front[-1].error:
            front.append(c)
    return front


def inner_holdout(x0: np.ndarray, frac: float = 0.1) -> np.ndarray:
    """Rows at the largest distinct values of ``x0``, as few values as cover ``frac`` of the rows."""
    need = max(1, math.ceil(frac * len(x0)))
    mask = np.zeros(len(x0), dtype=bool)
    for v in np.unique(x0)[::-1]:
        mask |= x0 == v
        if mask.sum() >= need:
            break
    return mask


def choose_by_extrapolation(
    front: Sequence[Candidate], X: np.ndarray, y: np.ndarray, space: str, loss: str = "lsq", delta: float = 1e-3
) -> tuple[Candidate, list[float]] | None:
    """The member that best predicts the training rows at the largest first input when refitted
    without them (see :func:`inner_holdout` and the module doc); ``None`` when there is no such
    split (one distinct value, or fewer than 3 rows left to fit). Also returns each member's
    inner-extrapolation error."""
    inner = inner_holdout(X[0])
    if inner.all() or (~inner).sum() < 3:
        return None
    cols = [np.ascontiguousarray(c[~inner]) for c in X]
    t_fit = to_space(y[~inner], space)
    errs = []
    for c in front:
        q = fit_constants(c.program, cols, t_fit, space, max_nfev=200, loss=loss, delta=delta)
        pred = ConstKernel(q)(np.array(q.constants()), [np.ascontiguousarray(col[inner]) for col in X])
        errs.append(float(search_error(pred, to_space(y[inner], space), space, loss, delta)[0]))
    best = min(range(len(front)), key=lambda i: (errs[i] if math.isfinite(errs[i]) else math.inf, front[i].complexity))
    if not math.isfinite(errs[best]):
        return None
    return front[best], errs


def choose(front: Sequence[Candidate]) -> Candidate:
    """The knee of the front by :data:`SELECTION_RULES` ``["knee"]`` (training errors only)."""
    if not front:
        raise ValueError("empty Pareto front")
    e_min = min(c.error for c in front)
    floor = 1e-300
    best, best_score = front[0], -math.inf
    for i, c in enumerate(front):
        if c.error > 2 * e_min:
            continue
        if i == 0:
            score = 0.0
        else:
            prev = front[i - 1]
            score = (math.log(max(prev.error, floor)) - math.log(max(c.error, floor))) / max(c.complexity - prev.complexity, 1e-9)
        if score > best_score:
            best, best_score = c, score
    return best


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
    unsupported = [o for o in ops if o not in _KERNEL_OPS]
    if unsupported:
        raise ValueError(f"op(s) {unsupported} are not available for law search; choose from {sorted(_KERNEL_OPS)}")
    if population < 4:
        raise ValueError(f"population must be at least 4, got {population}")
    if loss not in ("lsq", "huber"):
        raise ValueError(f"unknown loss {loss!r}; expected 'lsq' or 'huber'")
    if select not in SELECTION_RULES:
        raise ValueError(f"unknown selection rule {select!r}; expected one of {sorted(SELECTION_RULES)}")
    names = program_inputs(input_names)
    ops = variation.check_ops(ops, "float64")
    rng = np.random.default_rng(seed)
    scales = input_scales(X) if normalize else (1.0,) * X.shape[0]
    X = np.ascontiguousarray(X / np.array(scales)[:, None])
    cols = [np.ascontiguousarray(c) for c in X]
    t = to_space(y, space)
    t0 = time.monotonic()
    cache: dict[str, Candidate] = {}
    archive: dict[float, Candidate] = {}
    fitted = 0

    def out_of_time() -> bool:
        return time.monotonic() - t0 > budget_s

    def evaluate_batch(progs: list[Program]) -> list[Candidate]:
        """Fit constants (cached by program text), score with the engine, update the archive."""
        nonlocal fitted
        out: list[Candidate | None] = []
        pending: list[tuple[int, str, Program]] = []
        for p in progs:
            if out and out_of_time():
                break
            key = p.to_text()
            if key in cache:
                c = cache[key]
                out.append(Candidate(c.program, c.complexity, c.error))
                continue
            q = fit_constants(p, cols, t, space, loss=loss, delta=delta)
            fitted += 1
            pending.append((len(out), key, q))
            out.append(None)
        if pending:
            errs = search_error(engine_evaluate([q for _, _, q in pending], X), t, space, loss, delta)
            for (i, key, q), e in zip(pending, errs):
                c = Candidate(q, q.cost(), float(e))
                cache[key] = cache[q.to_text()] = c
                out[i] = Candidate(q, c.complexity, c.error)
        done = [c for c in out if c is not None]
        for c in done:
            if math.isfinite(c.error) and (c.complexity not in archive or c.error < archive[c.complexity].error):
                archive[c.complexity] = c
            c.fitness.values = (c.complexity, c.error if math.isfinite(c.error) else 1e300)
        return done

    for p in seeds:
        if p.inputs != names or p.dtype != "float64":
            raise ValueError(f"seed programs must be float64 over inputs {names}, got {p.inputs} ({p.dtype})")
    initial = [p.pruned() for p in seeds][:population]
    initial += [
        variation.random_program(rng, int(rng.integers(1, 5)), ops, names, "float64")
        for _ in range(population - len(initial))
    ]
    pop = evaluate_batch(initial)
    pop = tools.selNSGA2(pop, len(pop))
    gen = 0
    last_change, last_front = 0, None
    while (generations is None or gen < generations) and not out_of_time():
        if patience is not None and gen - last_change >= patience:
            break
        if target_error is not None and archive and min(c.error for c in archive.values()) <= target_error:
            break
        gen += 1
        children: list[Program] = []
        while len(children) < population:
            a, b = _tournament(rng, pop), _tournament(rng, pop)
            if rng.random() < 0.25:
                c1, c2 = variation.crossover(rng, a.program, b.program)
                for c in (c1, c2):
                    if len(c.instrs) > max_instrs:
                        c = variation.mutate(rng, a.program, ops, max_instrs)
                    children.append(c)
            else:
                children.append(variation.mutate(rng, a.program, ops, max_instrs))
        offspring = evaluate_batch(children[:population])
        pop = tools.selNSGA2(pop + offspring, population)
        signature = [(c.complexity, c.error) for c in pareto(archive.values())]
        if signature != last_front:
            last_change, last_front = gen, signature
        if log is not None and gen % 10 == 0:
            fr = pareto(archive.values())
            log(f"gen {gen}: {fitted} fitted, front {len(fr)}, best error {fr[-1].error:.4g}" if fr else f"gen {gen}")
    front = pareto(archive.values())
    if not front:
        raise ValueError("the search found no program with a finite error on the training data")
    rule, inner_errors = "knee", None
    chosen = None
    if select == "extrapolation":
        picked = choose_by_extrapolation(front, X, y, space, loss, delta)
        if picked is not None:
            chosen, inner_errors = picked
            rule = "extrapolation"
    if chosen is None:
        chosen = choose(front)
    return DiscoveryResult(
        front, chosen, SELECTION_RULES[rule], space, gen, fitted, time.monotonic() - t0, names, tuple(input_names),
        scales, inner_errors,
    )


def _tournament(rng: np.random.Generator, pop: Sequence[Candidate]) -> Candidate:
    """Binary tournament: Pareto dominance, then crowding distance, then a coin."""
    a, b = pop[int(rng.integers(len(pop)))], pop[int(rng.integers(len(pop)))]
    if a.fitness.dominates(b.fitness):
        return a
    if b.fitness.dominates(a.fitness):
        return b
    ca, cb = getattr(a.fitness, "crowding_dist", 0.0), getattr(b.fitness, "crowding_dist", 0.0)
    if ca != cb:
        return a if ca > cb else b
    return a if rng.random() < 0.5 else b


def bootstrap_constants(
    program: Program,
    X: np.ndarray,
    y: np.ndarray,
    space: str,
    n_boot: int = 200,
    seed: int = 0,
    level: float = 0.95,
    loss: str = "lsq",
    delta: float = 1e-3,
) -> tuple[dict[str, tuple[float, float]], int]:
    """Percentile intervals for the constants ``c1..cm``: resample rows, refit (same loss)."""
    m = len(program.constants())
    if m == 0 or n_boot < 2:
        return {}, 0
    X = np.atleast_2d(np.asarray(X, dtype=np.float64))
    y = np.asarray(y, dtype=np.float64)
    rng = np.random.default_rng(seed)
    samples, failed = [], 0
    for _ in range(n_boot):
        idx = rng.integers(0, len(y), len(y))
        cols = [np.ascontiguousarray(c[idx]) for c in X]
        q = fit_constants(program, cols, to_space(y[idx], space), space, max_nfev=200, loss=loss, delta=delta)
        c = np.asarray(q.constants())
        if np.all(np.isfinite(c)):
            samples.append(c)
        else:
            failed += 1
    if len(samples) < 2:
        return {}, failed
    S = np.array(samples)
    qlo = 100 * (1 - level) / 2
    lo, hi = np.percentile(S, qlo, axis=0), np.percentile(S, 100 - qlo, axis=0)
    return {f"c{i + 1}": (float(lo[i]), float(hi[i])) for i in range(m)}, failed
