"""The Rust evaluator (pysearch.evaluate) against the Python reference interpreter, bit for bit."""

from __future__ import annotations

import contextlib
import os

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pysearch import _core, evaluate
from pysearch.interpreter import run
from pysearch.program import parse
from strategies import EXACT_OPS, arrays, float64_values, programs

JIT_OPS = ("add", "sub", "mul", "div", "fma", "neg", "abs", "sqrt", "min", "max", "rint", "floor", "ldexp",
           "getexp", "getmant")
#: Live values (besides x) a JIT kernel can hold in registers, by instruction set.
JIT_VALUES = {"avx512": 27, "avx2": 11}
#: How the bit-exactness tests run float32 programs: the best JIT of this CPU (AVX-512 where
#: it has it), the AVX2 JIT forced on it, and the interpreter alone.
EVALUATORS = ["native", "avx2", "interpreter"]


@contextlib.contextmanager
def evaluator(kind: str):
    """Run the body with the evaluator ``kind`` (the switches are read at every call); yields the
    JIT instruction set in force, None for the interpreter."""
    saved = {k: os.environ.get(k) for k in ("PYSEARCH_JIT_ISA", "PYSEARCH_NO_JIT")}
    if kind == "avx2":
        os.environ["PYSEARCH_JIT_ISA"] = "avx2"
    elif kind == "interpreter":
        os.environ["PYSEARCH_NO_JIT"] = "1"
    try:
        yield _core.jit_isa()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v

SPECIALS = [0.0, -0.0, np.inf, -np.inf, np.nan, 2.0**-149, -(2.0**-149), 2.0**-126, 3.4028234663852886e38,
            1.0, -1.0, 0.5, 2.5, -1.5, 8388607.5, 5e-324, 1e300]


def with_specials(x: np.ndarray) -> np.ndarray:
    """``x`` followed by the special values (each rounded to x's dtype)."""
    with np.errstate(over="ignore"):
        return np.concatenate([x, np.array(SPECIALS, dtype=x.dtype)])


def canonical_bits(a: np.ndarray) -> np.ndarray:
    """Bit patterns with every NaN replaced by one canonical NaN pattern."""
    u = np.uint32 if a.dtype == np.float32 else np.uint64
    out = a.view(u).copy()
    out[np.isnan(a)] = np.array(np.nan, dtype=a.dtype).view(u)
    return out


def assert_bit_exact(rust: np.ndarray, python: np.ndarray, program=None, x=None) -> None:
    """Same dtype and shape, and equal bits except that any NaN equals any NaN."""
    assert rust.dtype == python.dtype and rust.shape == python.shape
    bad = np.flatnonzero((canonical_bits(rust) != canonical_bits(python)).ravel())
    if len(bad):
        i = bad[0]
        where = ""
        if x is not None:
            cols = x if isinstance(x, dict) else {"x": x} if x.ndim == 1 else dict(enumerate(x))
            where = " at " + ", ".join(f"{k}={np.ravel(v)[i % np.ravel(v).size]!r}" for k, v in cols.items())
        raise AssertionError(
            f"{len(bad)} of {rust.size} values differ; first (flat index {i}){where}: "
            f"rust {rust.ravel()[i]!r} vs python {python.ravel()[i]!r}\n{program}"
        )


def ordered(a: np.ndarray) -> np.ndarray:
    """Map float64 values to integers whose differences count ulps across zero."""
    i = a.view(np.int64)
    return np.where(i < 0, -(i & np.int64(0x7FFFFFFFFFFFFFFF)), i)


def bf16_floats() -> np.ndarray:
    """All 65,536 float32 values whose low 16 bits are zero."""
    return (np.arange(65536, dtype=np.uint32) << np.uint32(16)).view(np.float32)


def cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


@pytest.mark.skipif(not cpu_flags() or os.environ.get("PYSEARCH_NO_JIT") is not None,
                    reason="needs /proc/cpuinfo, and the JIT on")
def test_jit_isa_follows_the_cpu_and_the_switches():
    """The JIT uses AVX-512 where the CPU has AVX-512 F and DQ, else AVX2+FMA; PYSEARCH_JIT_ISA=avx2
    caps it at AVX2 and PYSEARCH_NO_JIT turns it off."""
    flags = cpu_flags()
    avx2 = {"avx2", "fma"} <= flags
    with evaluator("native") as isa:
        assert isa == ("avx512" if avx2 and {"avx512f", "avx512dq"} <= flags else "avx2" if avx2 else None)
    with evaluator("avx2") as isa:
        assert isa == ("avx2" if avx2 else None)
    with evaluator("interpreter") as isa:
        assert isa is None


class TestRandomPrograms:
    @given(programs("float32", ops=EXACT_OPS), arrays("float32"))
    def test_float32(self, p, x):
        """Random float32 programs agree bit for bit on random and special inputs."""
        x = with_specials(x)
        assert_bit_exact(evaluate(p, x), run(p, x), p, x)

    @pytest.mark.parametrize("kind", EVALUATORS)
    @given(programs("float32", ops=JIT_OPS, max_instrs=32), arrays("float32", min_size=9, max_size=80))
    def test_float32_jit(self, kind, p, x):
        """Programs of the JIT's ops run as machine code (AVX-512 or AVX2 kernels, where the CPU
        has them) and agree, with full vectors and tails."""
        with evaluator(kind) as isa:
            if isa and p.pruned().ops <= JIT_VALUES[isa]:  # few enough live values for the registers
                assert _core.jit_compiled([p.compile().as_tuple()]) == [True]
            x = with_specials(x)
            assert_bit_exact(evaluate(p, x), run(p, x), p, x)

    @given(programs("float64", ops=EXACT_OPS, max_instrs=8), arrays("float64", max_size=20))
    def test_float64(self, p, x):
        """Random float64 programs (without exp/log/pow) agree bit for bit."""
        x = with_specials(x)
        assert_bit_exact(evaluate(p, x), run(p, x), p, x)

    @given(
        st.sampled_from(["float32", "float64"]).flatmap(
            lambda dt: st.tuples(
                st.integers(2, 3).flatmap(lambda n: programs(dt, n_inputs=n, ops=EXACT_OPS, max_instrs=8)),
                st.lists(arrays(dt, 1, 8), min_size=3, max_size=3),
            )
        ),
        st.booleans(),
    )
    def test_multiple_inputs(self, case, as_dict):
        """Programs of two or three inputs agree, with inputs as a 2-D array or a dict."""
        p, cols = case
        n = min(len(c) for c in cols)
        cols = [c[:n] for c in cols[: len(p.inputs)]]
        x = dict(zip(p.inputs, cols)) if as_dict else np.stack(cols)
        assert_bit_exact(evaluate(p, x), run(p, x), p, x)

    @given(
        st.sampled_from(["float32", "float64"]).flatmap(
            lambda dt: st.tuples(
                st.lists(programs(dt, ops=EXACT_OPS, max_instrs=6), min_size=1, max_size=4), arrays(dt, 1, 12)
            )
        )
    )
    def test_batch(self, case):
        """A batch of programs gives shape (P, n) and each row equals the interpreter's result."""
        ps, x = case
        x = with_specials(x)
        out = evaluate(ps, x)
        assert out.shape == (len(ps), len(x))
        for i, p in enumerate(ps):
            assert_bit_exact(out[i], run(p, x), p, x)

    def test_doc_example(self):
        """The documented exp2 example agrees on 10,001 points of [0, 1]."""
        p = parse("c = fma x 0.24022651 0.6931472\np = fma c x 1\n")
        x = np.linspace(0, 1, 10001, dtype=np.float32)
        assert_bit_exact(evaluate(p, x), run(p, x), p, x)


class TestLibmOps:
    @pytest.mark.parametrize("op", ["exp", "log", "pow"])
    @given(data=st.data())
    def test_within_two_ulps(self, op, data):
        """exp, log and pow (float64 only) agree within 2 ulps; non-finite results match exactly."""
        values = st.one_of(st.floats(-750, 750), float64_values())
        pairs = data.draw(st.lists(st.tuples(values, values), min_size=1, max_size=12))
        x, y = (with_specials(np.array(col)) for col in zip(*pairs))
        y = y[::-1].copy()
        if op == "pow":
            p, inp = parse("dtype float64\ninputs x, y\nv = pow x y\n"), np.stack([x, y])
        else:
            p, inp = parse(f"dtype float64\nv = {op} x\n"), x
        rust, py = evaluate(p, inp), run(p, inp)
        finite = np.isfinite(py)
        assert_bit_exact(rust[~finite], py[~finite], p)
        assert np.all(np.isfinite(rust[finite]))
        assert np.abs(ordered(rust[finite]) - ordered(py[finite])).max(initial=0) <= 2, p


UNARY = ["neg", "abs", "sqrt", "rint", "floor", "getexp", "getmant"]
FIXED = ["0", "-0", "1", "-1.5", "0.1", "3", "1e-40", "-1e30", "inf", "nan", "0x1.fffffep+127", "0x1p-149"]


class TestBf16Exhaustive:
    @pytest.mark.parametrize("dtype", ["float32", "float64"])
    @pytest.mark.parametrize("op", UNARY)
    def test_unary(self, op, dtype):
        """Every unary op agrees on all 65,536 bf16-pattern values (also widened to float64)."""
        with np.errstate(invalid="ignore"):  # signalling NaN patterns
            x = bf16_floats().astype(dtype)
        p = parse(f"dtype {dtype}\nv = {op} x\n")
        assert_bit_exact(evaluate(p, x), run(p, x), p, x)

    @pytest.mark.parametrize("kind", EVALUATORS)
    def test_jit_ops_each_evaluator(self, kind):
        """The JIT's ops, with a fixed operand on either side and with x twice (ldexp also with
        exponents that clamp, truncate and over/underflow), agree on all 65,536 bf16-pattern
        float32 values (±0, subnormals, ±inf, NaNs) under each evaluator;
        results land at an offset of one float in a reused output (streaming-store peel)."""
        x = bf16_floats()
        texts = [f"v = {op} x" for op in ("neg", "abs", "sqrt", "rint", "floor", "getexp", "getmant")]
        for op in ("add", "sub", "mul", "div", "min", "max", "ldexp"):
            texts.append(f"v = {op} x x")
            for c in ("-0", "0", "0x1p-149", "-inf", "nan", "1.5"):
                texts += [f"v = {op} x {c}", f"v = {op} {c} x"]
        # ldexp: exponents that clamp, truncate, overflow and underflow, and from a value
        texts += [f"v = ldexp x {c}" for c in ("-300", "-278.5", "-149", "-126", "-0.5", "127", "254", "300", "1e30")]
        texts += ["e = getexp x\nm = getmant x\nv = ldexp m e", "k = mul x 0x1p-120\nv = ldexp 1.5 k"]
        texts += ["v = fma x x x", "v = fma x -0 0", "v = fma x inf -inf", "v = fma 0x1p-140 x 0x1p-149",
                  "a = min x -0\nb = max a 0\nv = fma a b x"]
        progs = [parse(t) for t in texts]
        buf = np.empty(len(progs) * len(x) + 1, dtype=np.float32)
        out = buf[1:].reshape(len(progs), len(x))
        with evaluator(kind) as isa:
            if isa is not None:
                assert isa == "avx2" or kind == "native"
                assert all(_core.jit_compiled([p.compile().as_tuple() for p in progs]))
            evaluate(progs, x, out=out)
        for p, y in zip(progs, out):
            assert_bit_exact(y, run(p, x), p, x)

    @pytest.mark.parametrize("kind", EVALUATORS)
    def test_library_kernels_each_evaluator(self, kind):
        """Every shipped float32 kernel agrees with the reference interpreter on all 65,536
        bf16-pattern values and the special values, through ``pysearch.library``, under each
        evaluator; the full-range exp, exp2, log and log2 (rint, floor, ldexp, getexp, getmant)
        are compiled by the JIT in force."""
        from pysearch import library

        x = with_specials(bf16_floats())
        fns = [f for f in library.functions() if f.program.dtype == "float32" and len(f.program.inputs) == 1]
        full = [f for f in fns if f.name in ("exp", "exp2", "log", "log2")]
        assert len(full) == 4
        with evaluator(kind) as isa:
            if isa is not None:
                assert all(_core.jit_compiled([f.program.compile().as_tuple() for f in full]))
            for f in fns:
                with np.errstate(all="ignore"):
                    assert_bit_exact(f(x), run(f.program, x), f.program, x)

    @pytest.mark.parametrize(
        "b, c",
        [("1.0000001", "-1"), ("-0.33333334", "0x1p-140"), ("3", "-0x1.fffffep+127"), ("0x1p-100", "0x1p-149"),
         ("0.1", "-0.1"), ("-0", "-0"), ("inf", "1"), ("1e-30", "nan")],
    )
    def test_fma_fixed_operands(self, b, c):
        """fma(x, b, c) and fma(b, x, c) agree on all 65,536 bf16-pattern float32 x."""
        x = bf16_floats()
        for text in (f"v = fma x {b} {c}", f"v = fma {b} x {c}", f"v = fma {b} {c} x"):
            p = parse(text)
            assert_bit_exact(evaluate(p, x), run(p, x), p, x)

    def test_fma_float64_fixed_operands(self):
        """float64 fma(x, b, c) agrees on the bf16-pattern values widened to float64."""
        with np.errstate(invalid="ignore"):
            x = bf16_floats().astype(np.float64)
        for b, c in [("0x1.0000000000001p0", "-1"), ("-0.1", "0x1p-1070"), ("1e300", "-1e308")]:
            p = parse(f"dtype float64\nv = fma x {b} {c}\n")
            assert_bit_exact(evaluate(p, x), run(p, x), p, x)

    @pytest.mark.parametrize("dtype", ["float32", "float64"])
    @pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "min", "max", "ldexp"])
    def test_binary_fixed_operand(self, op, dtype):
        """Binary ops with a fixed operand on either side agree on all bf16-pattern x."""
        with np.errstate(invalid="ignore"):
            x = bf16_floats().astype(dtype)
        extra = ["-160.5", "300", "-301", "40.9", "-1100", "2000.7", "2201"] if op == "ldexp" else []
        for c in FIXED + extra:
            for text in (f"v = {op} x {c}", f"v = {op} {c} x"):
                p = parse(f"dtype {dtype}\n{text}\n")
                assert_bit_exact(evaluate(p, x), run(p, x), p, x)

    def test_binary_all_pairs_of_a_subset(self):
        """Binary ops agree on all pairs of 512 bf16-pattern values (every 128th pattern)."""
        v = bf16_floats()[::128]
        a, b = (g.ravel() for g in np.meshgrid(v, v))
        x = np.stack([a, b])
        for op in ["add", "sub", "mul", "div", "min", "max", "ldexp"]:
            p = parse(f"inputs a, b\nv = {op} a b\n")
            assert_bit_exact(evaluate(p, x), run(p, x), p, x)
