"""The op registry (pysearch.ops) is the one op table: the Rust core, every evaluator, every
exporter and the documentation agree with it. Cases are generated from the registry, so a new op
is covered without editing this file. (The compiled C and Rust exports are checked bit for bit
per registered op in tests/test_export.py, whose programs are generated from the same registry:
compiling them once there is the slow part.)"""

from __future__ import annotations

import re
from pathlib import Path

import mpmath
import numpy as np
import pytest

from pysearch import _core
from pysearch.evaluation import evaluate
from pysearch.export import _C_HELPERS, _PY_HELPERS, _RUST_HELPERS, to_python
from pysearch.interpreter import run, run_mpmath
from pysearch.laws.discovery import ConstKernel
from pysearch.ops import DTYPES, OP_BY_NAME, OPCODE, OPS, OpInfo, ops_where
from pysearch.program import Instr, Program, Ref
from pysearch.search.constants import _eval_real
from pysearch.double_double import DDProgram

from strategies import F32_SPECIALS, F64_SPECIALS

DOC = Path(__file__).resolve().parent.parent / "docs" / "program-format.md"
#: float64-only ops call libm (exp, log, pow): documented as not bit-exact across implementations.
LIBM_RTOL = 1e-13

CASES = [(op, dt) for op in OPS for dt in op.dtypes]
CASE_IDS = [f"{op.name}-{dt}" for op, dt in CASES]


def _one_op(op: OpInfo, dtype: str) -> Program:
    """``v1 = op x y z`` over as many inputs as the op takes."""
    return Program([Instr(op.name, tuple(Ref.input(i) for i in range(op.arity)))], ("x", "y", "z")[: op.arity], dtype)


def _inputs(op: OpInfo, dtype: str) -> np.ndarray:
    """(arity, n): every combination of special values (for arity <= 2) plus random moderate values."""
    specials = np.array(F32_SPECIALS if dtype == "float32" else F64_SPECIALS, dtype=dtype)
    rng = np.random.default_rng(OPCODE[op.name])
    moderate = rng.uniform(-40, 40, (op.arity, 200)).astype(dtype)
    if op.arity == 1:
        grid = specials[None, :]
    elif op.arity == 2:
        grid = np.stack([np.repeat(specials, specials.size), np.tile(specials, specials.size)])
    else:
        grid = np.stack([rng.permutation(specials) for _ in range(op.arity)])
    return np.ascontiguousarray(np.concatenate([grid, moderate], axis=1))


def _bits(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    u = np.uint32 if a.dtype == np.float32 else np.uint64
    return np.where(np.isnan(a), np.array(np.nan, dtype=a.dtype).view(u), a.view(u))


def _assert_agree(op: OpInfo, got: np.ndarray, want: np.ndarray, what: str) -> None:
    assert got.dtype == want.dtype and got.shape == want.shape, what
    same = _bits(got) == _bits(want)
    if op.float64_only:
        with np.errstate(all="ignore"):
            same |= np.isclose(got, want, rtol=LIBM_RTOL, atol=0)
    assert same.all(), f"{op.name}: {what} differs at {np.nonzero(~same)[0][:5]}"


# ----------------------------------------------------------------------------- Python vs Rust
def test_core_op_table_agrees_with_registry():
    """Names, opcodes (order), arity and dtype support are the same in Rust and in pysearch.ops."""
    core = _core.op_table()
    assert [row[0] for row in core] == [op.name for op in OPS]
    for code, (name, arity, f32, f64, jit) in enumerate(core):
        op = OP_BY_NAME[name]
        assert OPCODE[name] == code
        assert arity == op.arity, name
        assert (f32, f64) == ("float32" in op.dtypes, "float64" in op.dtypes), name
        assert isinstance(jit, bool)


def test_registry_is_well_formed():
    """Unique names, known dtypes, and every hook and template present."""
    assert len(OP_BY_NAME) == len(OPS)
    for op in OPS:
        assert op.dtypes and set(op.dtypes) <= set(DTYPES), op.name
        assert op.arity in (1, 2, 3) and op.cost > 0 and op.latency > 0, op.name
        assert op.exact is not None and op.real is not None and op.fit is not None, op.name
        for lang, helpers in (("python", _PY_HELPERS), ("c", _C_HELPERS), ("rust", _RUST_HELPERS)):
            emit = op.emit(lang)
            for dt in op.dtypes:
                args = [f"a{i}" for i in range(op.arity)]
                text = emit.expr(dt, args)
                assert all(a in text for a in args), (op.name, lang, dt, text)
                assert set(emit.helpers(dt)) <= set(helpers), (op.name, lang, dt)


def test_jit_flag_matches_what_the_jit_compiles():
    """Where the JIT runs, a one-op float32 program is compiled exactly when op_table says so."""
    if not _core.jit_compiled([_one_op(OP_BY_NAME["neg"], "float32").compile().as_tuple()])[0]:
        pytest.skip("no JIT on this machine")
    for name, arity, f32, _f64, jit in _core.op_table():
        if f32:
            p = Program([Instr(name, (Ref.input(0),) * arity)], ("x",), "float32")
            assert _core.jit_compiled([p.compile().as_tuple()]) == [jit], name


# ----------------------------------------------------------------------------- every evaluator
@pytest.mark.parametrize(("op", "dtype"), CASES, ids=CASE_IDS)
def test_rust_evaluate_agrees_with_interpreter(op, dtype):
    """The Rust evaluator and the reference interpreter (the registry's ``exact`` hook) agree."""
    p, x = _one_op(op, dtype), _inputs(op, dtype)
    _assert_agree(op, evaluate(p, x), run(p, x), "Rust evaluate vs interpreter")


@pytest.mark.parametrize(("op", "dtype"), CASES, ids=CASE_IDS)
def test_python_export_agrees_with_interpreter(op, dtype):
    """The numpy export (the registry's ``python`` template and its helpers) is bit-exact."""
    p, x = _one_op(op, dtype), _inputs(op, dtype)
    namespace: dict = {}
    exec(compile(to_python(p, "f"), f"<export {op.name}>", "exec"), namespace)  # noqa: S102 - our own export
    _assert_agree(op, np.asarray(namespace["f"](*x)), run(p, x), "Python export vs interpreter")


@pytest.mark.parametrize(("op", "dtype"), CASES, ids=CASE_IDS)
def test_run_mpmath_is_the_real_value_the_op_rounds(op, dtype):
    """The ``real`` hook: rounding the real-number result once to the dtype gives the op's result
    (every op rounds once), on finite moderate inputs (libm ops to LIBM_RTOL; -0 equals +0)."""
    x = _inputs(op, dtype)[:, -40:]
    p = _one_op(op, dtype)
    want = run(p, x)
    prec = 24 if dtype == "float32" else 53
    got = []
    for v in run_mpmath(p, [list(map(float, c)) for c in x] if op.arity > 1 else list(map(float, x[0])), dps=40):
        with mpmath.workprec(prec):
            got.append(float(+v))
    got = np.array(got, dtype=dtype)
    with np.errstate(all="ignore"):  # the reals have no signed zero: compare values, not bits
        same = (got == want) | (np.isnan(got) & np.isnan(want))
        if op.float64_only:
            same |= np.isclose(got, want, rtol=LIBM_RTOL, atol=0)
    assert same.all(), f"{op.name}: run_mpmath rounded vs interpreter differs at {np.nonzero(~same)[0][:5]}"


@pytest.mark.parametrize("op", OPS, ids=[op.name for op in OPS])
def test_constant_fitting_evaluates_every_op(op):
    """The ``fit`` hook (search/constants.py's float64 evaluator) on a program with one constant:
    the float64 result, except that fma is unfused there."""
    args = (Ref.input(0),) + (Ref.const(0.75),) * (op.arity - 1)
    p = Program([Instr(op.name, args)], ("x",), "float64")
    x = np.random.default_rng(1).uniform(0.25, 8, 50)
    got = _eval_real(p, np.full((2, op.arity - 1), 0.75), x[None, :])
    want = run(p, x)
    assert got.shape == (2, 50)
    np.testing.assert_allclose(got[0], want, rtol=1e-15 if op.name == "fma" or op.float64_only else 0)


@pytest.mark.parametrize("op", OPS, ids=[op.name for op in OPS])
def test_law_fitting_takes_exactly_the_law_fit_ops(op):
    """laws/discovery.py fits constants of the registry's ``law_fit`` ops and names the rest."""
    p = Program([Instr(op.name, (Ref.input(0),) * op.arity)], ("x",), "float64")
    if op.law_fit:
        x = np.linspace(0.5, 4, 20)
        np.testing.assert_allclose(ConstKernel(p)(np.zeros((1, 0)), [x])[0], run(p, x), rtol=1e-15)
    else:
        with pytest.raises(ValueError, match=f"op {op.name!r} is not supported when fitting law constants"):
            ConstKernel(p)


@pytest.mark.parametrize("op", OPS, ids=[op.name for op in OPS])
def test_double_double_takes_exactly_the_dd_ops(op):
    """pysearch/double_double.py (and the program minimax polish) evaluates the ``dd`` ops, refuses others."""
    p = Program([Instr(op.name, (Ref.input(0),) * op.arity)], ("x",), "float64")
    x = np.linspace(0.5, 4, 20)
    if op.dd:
        hi, lo = DDProgram(p)(x)
        np.testing.assert_allclose(hi, run(p, x), rtol=1e-15)
    else:
        with pytest.raises(ValueError, match="using only " + ", ".join(ops_where("dd"))):
            DDProgram(p)


# ----------------------------------------------------------------------------- documentation
def _doc_table() -> dict[str, tuple[int, float, float, bool]]:
    """docs/program-format.md's Operations table: name -> (arity, cost, latency, float64 only)."""
    text = DOC.read_text()
    section = text.split("## Operations", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        if len(cells) != 5 or cells[0] in ("op", "---"):
            continue
        names, arity, result, cost, latency = cells
        for name in names.split(", "):
            assert name not in rows, f"{name} listed twice in {DOC.name}"
            rows[name] = (int(arity), float(cost), float(latency), "float64" in result)
    return rows


def test_doc_op_table_agrees_with_registry():
    """Every registered op has its row in docs/program-format.md, with the same arity, cost,
    latency and dtype restriction, and the doc lists no other op."""
    assert _doc_table() == {op.name: (op.arity, op.cost, op.latency, op.float64_only) for op in OPS}
