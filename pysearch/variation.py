"""Variation operators on straight-line programs: random programs, mutation, crossover.

Generic over dtype, op set and number of inputs. Every operator takes a ``numpy.random.Generator``
and uses nothing else for randomness, so a seed fixes the result. Results are pruned (dead
instructions removed) and always valid :class:`~pysearch.program.Program` objects.
"""

from __future__ import annotations

import bisect
import math
from typing import Callable, Mapping, Sequence

import numpy as np

from . import structural as _structural
from .program import OP_BY_NAME, Instr, Program, Ref, round_to_dtype

ConstSampler = Callable[[np.random.Generator], float]

#: Relative weights of the mutation kinds ``mutate`` draws by default (constant changes are light:
#: searches refit constants). The default stays the single-instruction kinds, so seeded runs
#: recorded before the structural kinds existed reproduce bit for bit.
MUTATION_WEIGHTS: dict[str, float] = {
    "insert": 3.0,
    "delete": 1.5,
    "replace_op": 1.5,
    "rewire": 2.0,
    "perturb_const": 1.5,
    "reset_const": 0.5,
}
#: The default kinds plus AutoNumerics-Zero's "randomise an instruction" and the structural
#: rewrites of :mod:`pysearch.structural` (each skipped where its ops are not allowed):
#: ``mutate(..., weights=STRUCTURAL_MUTATION_WEIGHTS)``.
STRUCTURAL_MUTATION_WEIGHTS: dict[str, float] = {
    **MUTATION_WEIGHTS,
    "randomize_instr": 1.0,
    "affine_input": 0.3,
    "repeated_squaring": 0.2,
    "rational": 0.15,
    "continued_fraction": 0.15,
    "regroup_estrin": 0.1,
    "regroup_even_odd": 0.1,
    "regroup_paterson_stockmeyer": 0.05,
    "regroup_knuth4": 0.05,
    "regroup_horner": 0.05,
}
#: AutoNumerics-Zero's mutation set and weights (their released exp2 configuration: insert a
#: vertex 1, remove one 2, switch an edge 3, randomise a vertex's op 3), in our kinds.
AUTONUMERICS_MUTATION_WEIGHTS: dict[str, float] = {
    "insert": 1.0,
    "delete": 2.0,
    "rewire": 3.0,
    "randomize_instr": 3.0,
}
#: Named mutation sets (a problem's ``mutation`` setting): ``engine`` (the default),
#: ``structural`` (plus the rewrites of :mod:`pysearch.structural`) and ``autonumerics``.
MUTATION_SETS: dict[str, dict[str, float]] = {
    "engine": MUTATION_WEIGHTS,
    "structural": STRUCTURAL_MUTATION_WEIGHTS,
    "autonumerics": AUTONUMERICS_MUTATION_WEIGHTS,
}
#: The mutation kinds that apply a whole-program rewrite.
STRUCTURAL_KINDS = tuple(k for k in STRUCTURAL_MUTATION_WEIGHTS if k in _structural.STRUCTURAL_OPERATORS)
#: Probability that an insertion goes on top of the output (growing the program outward, as
#: a Horner step does) rather than into a randomly chosen edge.
P_INSERT_ON_TOP = 0.35

_SMALL_CONSTANTS = (0.0, 1.0, -1.0, 2.0, 0.5, -0.5, 3.0, 0.25)


def default_const_sampler(rng: np.random.Generator) -> float:
    """A small integer or simple fraction a third of the time, else sign * 10^U(-3, 1)."""
    if rng.random() < 0.3:
        return float(_SMALL_CONSTANTS[rng.integers(len(_SMALL_CONSTANTS))])
    sign = -1.0 if rng.random() < 0.3 else 1.0
    return sign * float(10.0 ** rng.uniform(-3.0, 1.0))


def check_ops(ops: Sequence[str], dtype: str) -> tuple[str, ...]:
    """Validate an op set for ``dtype``; return it as a tuple of names.

    Ops are drawn uniformly from the sequence, so repeating a name weights it.
    """
    if isinstance(ops, str):
        raise TypeError("ops must be a sequence of op names, not a single string")
    names = tuple(ops)
    if not names:
        raise ValueError("ops must name at least one operation")
    for name in names:
        info = OP_BY_NAME.get(name)
        if info is None:
            raise ValueError(f"unknown op {name!r}; known ops: {', '.join(OP_BY_NAME)}")
        if info.float64_only and dtype != "float64":
            raise ValueError(f"op {name!r} is only available in float64 programs, not {dtype}")
    return names


def _const(rng: np.random.Generator, dtype: str, sampler: ConstSampler | None) -> Ref:
    v = (sampler or default_const_sampler)(rng)
    return Ref.const(round_to_dtype(float(v), dtype))


def _operand(rng: np.random.Generator, n_inputs: int, n_values: int, dtype: str,
             sampler: ConstSampler | None, p_const: float = 1 / 3) -> Ref:
    """An operand for an instruction preceded by ``n_values`` values, recent values favoured.

    A constant with probability ``p_const``; otherwise an input or an earlier value, evenly.
    """
    u = rng.random()
    if u < p_const:
        return _const(rng, dtype, sampler)
    if n_values == 0 or u < p_const + (1.0 - p_const) * 0.5:
        return Ref.input(int(rng.integers(n_inputs)))
    # geometric preference for recent values
    back = min(int(rng.geometric(0.5)), n_values)
    return Ref.val(n_values - back)


def _random_instr(rng: np.random.Generator, ops: Sequence[str], n_inputs: int, n_values: int,
                  dtype: str, sampler: ConstSampler | None, must_use: Ref | None = None) -> Instr:
    """A random instruction with at least one non-constant operand (``must_use`` if given)."""
    op = ops[int(rng.integers(len(ops)))]
    arity = OP_BY_NAME[op].arity
    args = [_operand(rng, n_inputs, n_values, dtype, sampler) for _ in range(arity)]
    if must_use is not None:
        args[int(rng.integers(arity))] = must_use
    elif all(a.kind == "const" for a in args):
        slot = int(rng.integers(arity))
        args[slot] = Ref.val(n_values - 1) if n_values and rng.random() < 0.7 else Ref.input(
            int(rng.integers(n_inputs)))
    return Instr(op, tuple(args))


def random_program(rng: np.random.Generator, n_instr: int, ops: Sequence[str],
                   inputs: Sequence[str] = ("x",), dtype: str = "float32",
                   const_sampler: ConstSampler | None = None) -> Program:
    """A random program of ``n_instr`` instructions (before pruning) whose output uses the last one."""
    if n_instr < 1:
        raise ValueError(f"n_instr must be at least 1, got {n_instr}")
    ops = check_ops(ops, dtype)
    inputs = tuple(inputs)
    instrs: list[Instr] = []
    for i in range(n_instr):
        # chain: each instruction after the first uses the previous one, so all are live
        must = Ref.val(i - 1) if i > 0 else None
        instrs.append(_random_instr(rng, ops, len(inputs), i, dtype, const_sampler, must))
    return Program(instrs, inputs, dtype).pruned()


# ------------------------------------------------------------------ mutation
def _remap_ref(a: Ref, f: Callable[[int], Ref]) -> Ref:
    return f(a.index) if a.kind == "value" else a


def _insert(rng, p: Program, ops, sampler) -> Program | None:
    """Splice a new instruction into a live edge (or on top of the output)."""
    n = len(p.instrs)
    n_in = len(p.inputs)
    # candidate edges: (consumer j, slot s); j == n means "new output on top"
    edges = [(j, s) for j, ins in enumerate(p.instrs) for s, a in enumerate(ins.args) if a.kind != "const"]
    if not edges or rng.random() < P_INSERT_ON_TOP:
        j, s = n, -1
    else:
        j, s = edges[int(rng.integers(len(edges)))]
    if j == n:
        carried = Ref.val(p.output)
        pos = n
    else:
        carried = p.instrs[j].args[s]
        pos = j
    # new instruction sits at index pos; earlier values keep their indices
    new = _random_instr(rng, ops, n_in, pos, p.dtype, sampler, must_use=carried)

    def shift(i: int) -> Ref:
        return Ref.val(i + 1 if i >= pos else i)

    instrs = list(p.instrs[:pos]) + [new]
    for k in range(pos, n):
        ins = p.instrs[k]
        args = [_remap_ref(a, shift) for a in ins.args]
        if k == j:
            args[s] = Ref.val(pos)
        instrs.append(Instr(ins.op, tuple(args)))
    out = pos if j == n else (p.output + 1 if p.output >= pos else p.output)
    return p._derived(instrs, out)


def _delete(rng, p: Program) -> Program | None:
    """Remove an instruction; its users take one of its operands instead."""
    n = len(p.instrs)
    if n <= 1:
        return None
    i = int(rng.integers(n))
    victim = p.instrs[i]
    nonconst = [a for a in victim.args if a.kind != "const"]
    repl = nonconst[int(rng.integers(len(nonconst)))] if nonconst else victim.args[0]

    def fix(k: int) -> Ref:
        if k == i:
            return repl
        return Ref.val(k - 1 if k > i else k)

    instrs = [Instr(ins.op, tuple(_remap_ref(a, fix) for a in ins.args))
              for k, ins in enumerate(p.instrs) if k != i]
    if p.output == i:
        if repl.kind != "value":
            return None  # output would become an input or a constant
        out = repl.index
    else:
        out = p.output - 1 if p.output > i else p.output
    return p._derived(instrs, out)


def _replace_op(rng, p: Program, ops, sampler) -> Program | None:
    """Change one instruction's op, keeping its operands where the arity allows."""
    i = int(rng.integers(len(p.instrs)))
    ins = p.instrs[i]
    choices = [o for o in ops if o != ins.op]
    if not choices:
        return None
    op = choices[int(rng.integers(len(choices)))]
    arity = OP_BY_NAME[op].arity
    old = list(ins.args)
    if len(old) > 1 and rng.random() < 0.3:
        rng.shuffle(old)
    args = old[:arity]
    while len(args) < arity:
        args.append(_operand(rng, len(p.inputs), i, p.dtype, sampler))
    if all(a.kind == "const" for a in args):
        args[0] = Ref.val(i - 1) if i > 0 else Ref.input(0)
    instrs = list(p.instrs)
    instrs[i] = Instr(op, tuple(args))
    return p._derived(instrs, p.output)


def _rewire(rng, p: Program, sampler) -> Program | None:
    """Point one operand at another earlier value, an input or a fresh constant."""
    i = int(rng.integers(len(p.instrs)))
    ins = p.instrs[i]
    s = int(rng.integers(len(ins.args)))
    args = list(ins.args)
    args[s] = _operand(rng, len(p.inputs), i, p.dtype, sampler, p_const=0.15)
    if all(a.kind == "const" for a in args):
        return None
    instrs = list(p.instrs)
    instrs[i] = Instr(ins.op, tuple(args))
    return p._derived(instrs, p.output)


def _randomize_instr(rng, p: Program, ops, sampler) -> Program | None:
    """Replace one instruction by a random one (op and operands drawn afresh, an earlier value or
    input among them)."""
    i = int(rng.integers(len(p.instrs)))
    instrs = list(p.instrs)
    instrs[i] = _random_instr(rng, ops, len(p.inputs), i, p.dtype, sampler)
    return p._derived(instrs, p.output)


def _const_slots(p: Program) -> list[tuple[int, int]]:
    return [(i, s) for i, ins in enumerate(p.instrs) for s, a in enumerate(ins.args) if a.kind == "const"]


def _set_const(p: Program, i: int, s: int, v: float) -> Program:
    ins = p.instrs[i]
    args = list(ins.args)
    args[s] = Ref.const(round_to_dtype(v, p.dtype))
    instrs = list(p.instrs)
    instrs[i] = Instr(ins.op, tuple(args))
    return p._derived(instrs, p.output)


def _perturb_const(rng, p: Program) -> Program | None:
    """Multiply a constant by (1 + sigma * N(0, 1)), sigma log-uniform in [1e-6, 0.5]."""
    slots = _const_slots(p)
    if not slots:
        return None
    i, s = slots[int(rng.integers(len(slots)))]
    v = p.instrs[i].args[s].value
    if not math.isfinite(v):
        return None
    sigma = 10.0 ** rng.uniform(-6.0, math.log10(0.5))
    new = v * (1.0 + sigma * rng.standard_normal()) if v != 0.0 else sigma * rng.standard_normal()
    return _set_const(p, i, s, new)


def _reset_const(rng, p: Program, sampler) -> Program | None:
    slots = _const_slots(p)
    if not slots:
        return None
    i, s = slots[int(rng.integers(len(slots)))]
    return _set_const(p, i, s, (sampler or default_const_sampler)(rng))


#: (mutation kinds, cumulative probabilities) by weight table (its items): :func:`mutate` draws a
#: kind for every try, and the tables are few.
_KIND_TABLES: dict[tuple, tuple[list[str], list[float]]] = {}


def _kind_table(table: Mapping[str, float]) -> tuple[list[str], list[float]]:
    """The kinds of a weight table with a positive weight and their cumulative probabilities, as
    ``Generator.choice(len(kinds), p=w)`` computes them (``w`` the weights over their sum); checked."""
    try:
        key = tuple(table.items())
        hit = _KIND_TABLES.get(key)
    except TypeError:  # an unhashable weight: checked below like any other
        key, hit = None, None
    if hit is not None:
        return hit
    unknown = sorted(set(table) - set(STRUCTURAL_MUTATION_WEIGHTS))
    if unknown:
        raise ValueError(f"unknown mutation kind(s) {unknown}; known: {', '.join(STRUCTURAL_MUTATION_WEIGHTS)}")
    kinds = [k for k in table if table[k] > 0]
    w = np.array([float(table[k]) for k in kinds])
    if not kinds or not np.all(np.isfinite(w)):
        raise ValueError("mutation weights must be finite, with at least one positive")
    w = w / w.sum()
    cdf = w.cumsum()
    cdf /= cdf[-1]
    out = (kinds, cdf.tolist())
    if key is not None and len(_KIND_TABLES) < 64:
        _KIND_TABLES[key] = out
    return out


def _draw(rng: np.random.Generator, cdf: list[float]) -> int:
    """An index drawn with the probabilities whose running sums are ``cdf``: the draw, and the
    generator's next state, of ``rng.choice(len(cdf), p=p)`` (one ``random()``, then the first
    running sum above it), without its per-call checks of ``p``."""
    return bisect.bisect_right(cdf, rng.random())


def mutate(rng: np.random.Generator, program: Program, ops: Sequence[str], max_instrs: int,
           const_sampler: ConstSampler | None = None, max_tries: int = 50,
           weights: Mapping[str, float] | None = None) -> Program:
    """One random mutation (insert, delete, replace op, rewire, perturb or reset a constant,
    randomise an instruction, or a structural rewrite of :mod:`pysearch.structural`).

    ``weights`` (mutation kind -> relative weight, default :data:`MUTATION_WEIGHTS`, the
    single-instruction kinds) picks the kinds; a kind left out is never drawn.
    :data:`STRUCTURAL_MUTATION_WEIGHTS` adds randomize_instr and the structural rewrites.

    Retried until the pruned program's text differs from the input's; programs never grow
    beyond ``max_instrs`` instructions. If ``max_tries`` attempts all fail to change it, a fresh
    random program is tried instead; only when the search space holds no other program (say one
    unary op and ``max_instrs=1``) is the pruned input returned unchanged.
    """
    ops = check_ops(ops, program.dtype)
    if max_instrs < 1:
        raise ValueError(f"max_instrs must be at least 1, got {max_instrs}")
    base = program.pruned()
    before = base.to_text()
    kinds, cdf = _kind_table(MUTATION_WEIGHTS if weights is None else weights)
    for _ in range(max_tries):
        kind = kinds[_draw(rng, cdf)]
        if kind == "insert":
            child = _insert(rng, base, ops, const_sampler) if len(base.instrs) < max_instrs else None
        elif kind == "delete":
            child = _delete(rng, base)
        elif kind == "replace_op":
            child = _replace_op(rng, base, ops, const_sampler)
        elif kind == "rewire":
            child = _rewire(rng, base, const_sampler)
        elif kind == "perturb_const":
            child = _perturb_const(rng, base)
        elif kind == "reset_const":
            child = _reset_const(rng, base, const_sampler)
        elif kind == "randomize_instr":
            child = _randomize_instr(rng, base, ops, const_sampler)
        else:
            child = _structural.STRUCTURAL_OPERATORS[kind](rng, base, ops, max_instrs)
        if child is None:
            continue
        child = child.pruned()
        if len(child.instrs) <= max_instrs and child.to_text() != before:
            return child
    for _ in range(max_tries):
        child = random_program(rng, int(rng.integers(1, max_instrs + 1)), ops, base.inputs, base.dtype,
                               const_sampler)
        if child.to_text() != before:
            return child
    return base


# ----------------------------------------------------------------- crossover
def _graft(head: Program, cut_head: int, tail: Program, cut_tail: int) -> Program:
    """``head.instrs[:cut_head]`` followed by ``tail.instrs[cut_tail:]``, references re-aligned.

    A tail reference to a value before its cut point is mapped to the head value at the same
    distance back from the junction (or to the first input when there is none).
    """
    prefix = list(head.instrs[:cut_head])
    shift = cut_head - cut_tail

    def fix(k: int) -> Ref:
        m = k + shift
        if m >= 0:
            return Ref.val(m)
        return Ref.input(0)

    suffix = [Instr(ins.op, tuple(_remap_ref(a, fix) for a in ins.args)) for ins in tail.instrs[cut_tail:]]
    instrs = prefix + suffix
    return head._derived(instrs, len(instrs) - 1).pruned()


def crossover(rng: np.random.Generator, p1: Program, p2: Program) -> tuple[Program, Program]:
    """One-point crossover of instruction blocks: a prefix of one parent, a suffix of the other."""
    if p1.inputs != p2.inputs or p1.dtype != p2.dtype:
        raise ValueError(
            f"crossover needs parents with the same inputs and dtype, got {p1.inputs}/{p1.dtype} "
            f"and {p2.inputs}/{p2.dtype}"
        )
    a, b = p1.pruned(), p2.pruned()
    # cut points: a keeps instrs[:i] (i >= 0), the suffix b[j:] is non-empty (j < len(b))
    i = int(rng.integers(0, len(a.instrs) + 1))
    j = int(rng.integers(0, len(b.instrs)))
    c1 = _graft(a, i, b, j)
    i2 = int(rng.integers(0, len(a.instrs)))
    j2 = int(rng.integers(0, len(b.instrs) + 1))
    c2 = _graft(b, j2, a, i2)
    return c1, c2
