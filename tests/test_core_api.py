"""The Rust-backed API: evaluation inputs, error statistics, references, domains."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import pysearch as ps
from pysearch import _core
from pysearch.program import OPCODE
from pysearch.targets import BUILTIN, round_exact_to_float32
from strategies import EXACT_OPS, arrays, programs

EXP2_DEG2 = "v1 = fma x 0.3371894 0.6576363\nv2 = fma v1 x 1.0017247\n"


def exact_ulp_error(y: np.float32, fx: mpmath.mpf) -> float:
    """|y - f(x)| / ulp(f(x)) in high precision, ulp per the libm definition."""
    e = max(int(mpmath.floor(mpmath.log(abs(fx), 2))), -126) if fx != 0 else -126
    return float(abs(mpmath.mpf(float(y)) - fx) / mpmath.ldexp(1, e - 23))


class TestEvaluateInputs:
    def test_wrong_dtype_is_a_type_error(self):
        """A float64 array for a float32 program is refused, naming both dtypes."""
        with pytest.raises(TypeError, match="float64.*float32"):
            ps.evaluate(EXP2_DEG2, np.zeros(4))

    def test_non_contiguous_is_a_type_error(self):
        """A strided view is refused rather than silently copied."""
        with pytest.raises(TypeError, match="contiguous"):
            ps.evaluate(EXP2_DEG2, np.zeros(8, np.float32)[::2])

    def test_empty_is_a_value_error(self):
        """An empty input array is refused."""
        with pytest.raises(ValueError, match="empty"):
            ps.evaluate(EXP2_DEG2, np.zeros(0, np.float32))

    def test_not_an_array_is_a_type_error(self):
        """A list is not silently converted."""
        with pytest.raises(TypeError, match="numpy array"):
            ps.evaluate(EXP2_DEG2, [0.5, 1.0])

    def test_multi_input_by_name_and_matrix_agree(self):
        """Inputs given as a dict by name or as an (n_inputs, n) matrix give the same result."""
        p = ps.parse("dtype float64\ninputs N,D\na = pow N -0.34\nb = pow D -0.28\nc = fma a 406.4 1.69\nd = fma b 410.7 c\n")
        n = np.array([1e8, 1e9, 1e10])
        d = np.array([1e9, 2e10, 3e11])
        y1 = ps.evaluate(p, {"N": n, "D": d})
        y2 = ps.evaluate(p, np.stack([n, d]))
        np.testing.assert_array_equal(y1, y2)
        np.testing.assert_allclose(y1, 1.69 + 406.4 * n**-0.34 + 410.7 * d**-0.28, rtol=1e-14)
        with pytest.raises(ValueError, match="missing"):
            ps.evaluate(p, {"N": n})

    def test_batch_shape_and_rows(self):
        """A list of programs gives one row per program, each equal to a single evaluation."""
        progs = [ps.parse(EXP2_DEG2), ps.parse("v = mul x x\n"), ps.parse("v = sqrt x\n")]
        x = np.linspace(0, 3, 1001, dtype=np.float32)
        out = ps.evaluate(progs, x)
        assert out.shape == (3, 1001)
        for p, row in zip(progs, out):
            np.testing.assert_array_equal(row, ps.evaluate(p, x))

    def test_invalid_compiled_program_rejected_in_rust(self):
        """A hand-made compiled program with a forward reference raises a ValueError, not a panic."""
        bad = (np.array([0], np.uint8), np.array([[0, 1, 0]], np.int32), np.zeros(0), 1, 1)
        with pytest.raises(ValueError, match="refers to slot 1"):
            _core.evaluate([bad], np.zeros((1, 4), np.float32))


class TestEvaluateOutputs:
    """Large results are written into recycled arrays: never into one a live result uses."""

    def test_live_results_are_never_overwritten(self):
        x = np.linspace(-3, 3, 1 << 17, dtype=np.float32)
        square, triple = ps.program.parse("v = mul x x\n"), ps.program.parse("v = mul x 3\n")
        want_sq, want_tr = x * x, x * np.float32(3)
        kept = [ps.evaluate([square, triple], x)]
        kept.append(ps.evaluate([triple, square], x)[0][5:])  # a slice keeps its array alive
        kept.append(ps.evaluate(square, x))
        view = memoryview(ps.evaluate([square, square], x))  # so does an exported buffer
        for _ in range(4):
            ps.evaluate([triple, triple], x)  # results dropped at once: their arrays are reused
        np.testing.assert_array_equal(kept[0], [want_sq, want_tr])
        np.testing.assert_array_equal(kept[1], want_tr[5:])
        np.testing.assert_array_equal(kept[2], want_sq)
        np.testing.assert_array_equal(np.asarray(view), [want_sq, want_sq])

    def test_dropped_results_are_recycled(self):
        x = np.ones(1 << 18, dtype=np.float32)
        p = ps.program.parse("v = add x 1\n")
        first = ps.evaluate([p, p], x)
        addr = first.__array_interface__["data"][0]
        del first
        again = ps.evaluate([p, p], x)
        assert again.__array_interface__["data"][0] == addr
        np.testing.assert_array_equal(again, 2.0)
        other = ps.evaluate([p, p], x)  # `again` is alive: a different array
        assert other.__array_interface__["data"][0] != addr


class TestProgramObjects:
    """_core.evaluate_programs reads Program objects into the same slots as Program.compile()."""

    @given(st.sampled_from(["float32", "float64"]).flatmap(lambda d: st.tuples(
        programs(d, n_inputs=2, ops=EXACT_OPS), arrays(d, min_size=2, max_size=2))))
    def test_same_results_as_compiled_arrays(self, case):
        p, x = case
        mat = np.ascontiguousarray(np.stack([x, x[::-1]]))
        fresh = ps.program.Program(list(p.instrs), p.inputs, p.dtype, p.output)
        a = _core.evaluate_programs([fresh, fresh], OPCODE, mat)
        b = _core.evaluate([p.compile().as_tuple()] * 2, mat)
        assert a.dtype == b.dtype and np.array_equal(a.view(np.uint8), b.view(np.uint8))

    def test_bad_programs_are_refused(self):
        p = ps.program.parse("a = mul x 2\nb = add a x\n")
        p.instrs[1] = ps.program.Instr("nope", p.instrs[1].args)
        with pytest.raises(ps.ProgramError, match="program 0: unknown op"):
            _core.evaluate_programs([p], OPCODE, np.ones((1, 4), np.float32))
        q = ps.program.parse("a = mul x 2\n")
        q.instrs[0] = ps.program.Instr("mul", (ps.program.Ref.input(1), ps.program.Ref.const(2.0)))
        with pytest.raises(ps.ProgramError, match="input index 1 out of range"):
            _core.evaluate_programs([q], OPCODE, np.ones((1, 4), np.float32))


class TestUlpError:
    def test_matches_mpmath_on_every_point(self):
        """max/mean ULP error, argmax and correct-rounding fraction agree with an mpmath recomputation."""
        p = ps.parse(EXP2_DEG2)
        x = ps.Domain(0, 1).sample(2000, seed=3)
        st = ps.ulp_error(p, x, "exp2")
        y = ps.evaluate(p, x)
        errs, correct = [], 0
        with mpmath.workprec(120):
            for xi, yi in zip(x, y):
                fx = mpmath.power(2, mpmath.mpf(float(xi)))
                errs.append(exact_ulp_error(yi, fx))
                correct += round_exact_to_float32(fx) == yi
        assert st.max_ulp == pytest.approx(max(errs), rel=1e-9)
        assert st.argmax_x == x[int(np.argmax(errs))]
        assert st.mean_ulp == pytest.approx(np.mean(errs), rel=1e-9)
        assert st.frac_correctly_rounded == correct / len(x)
        assert not st.nonfinite

    def test_nan_output_gives_infinite_error(self):
        """A program that returns NaN where f is finite has infinite error and is flagged."""
        p = ps.parse("v = sqrt x\n")  # NaN for x < 0, where exp2 is finite
        st = ps.ulp_error(p, np.array([-1.0, 0.25], np.float32), "exp2")
        assert math.isinf(st.max_ulp) and st.nonfinite and st.argmax_x == -1.0
        assert math.isinf(st.max_ulp_distance)

    def test_nan_where_f_undefined_is_exact(self):
        """log(-1) is NaN: a NaN output there is no error."""
        p = ps.parse("v = sqrt x\nw = sub v v\nr = div w w\n")  # NaN everywhere
        st = ps.ulp_error(p, np.array([-1.0, -2.0], np.float32), "log")
        assert st.max_ulp == 0.0 and st.frac_correctly_rounded == 1.0

    def test_custom_target_equals_builtin(self):
        """A custom mpmath target gives the same statistics as the built-in one."""
        p = ps.parse(EXP2_DEG2)
        x = ps.Domain(0, 1).sample(500)
        a = ps.ulp_error(p, x, "exp2")
        b = ps.ulp_error(p, x, lambda t: mpmath.power(2, t))
        assert a.max_ulp == pytest.approx(b.max_ulp, rel=1e-12)
        assert a.frac_correctly_rounded == b.frac_correctly_rounded

    def test_unknown_target(self):
        """An unknown target name raises a ValueError listing the built-in ones."""
        with pytest.raises(ValueError, match="unknown target 'exq'.*exp2"):
            ps.ulp_error(EXP2_DEG2, np.ones(2, np.float32), "exq")

    def test_float64_program_refused(self):
        """ULP error is a float32 measure; float64 programs are refused."""
        with pytest.raises(TypeError, match="float32"):
            ps.ulp_error("dtype float64\nv = mul x x\n", np.ones(2, np.float32), "exp2")


class TestVerify:
    def test_exhaustive_equals_sample_of_all_points(self):
        """Streaming every float32 of a domain in Rust equals measuring the materialised domain."""
        p = ps.parse(EXP2_DEG2)
        dom = ps.Domain(0.5, 0.5078125)
        ex = ps.verify(p, "exp2", dom)
        sm = ps.ulp_error(p, dom.all(), "exp2")
        assert ex.mode == "exhaustive" and ex.n_points == dom.count() == 2**17 + 1
        assert ex.max_ulp == sm.max_ulp and ex.argmax_x == sm.argmax_x
        assert ex.frac_correctly_rounded == sm.frac_correctly_rounded
        assert ex.mean_ulp == pytest.approx(sm.mean_ulp, rel=1e-12)

    def test_correctly_rounded_op_verifies_at_half_ulp(self):
        """sqrt computed by the sqrt op is correctly rounded over a whole binade."""
        st = ps.verify("v = sqrt x\n", "sqrt", (1.0, 2.0))
        assert st.max_ulp <= 0.5 and st.frac_correctly_rounded == 1.0 and st.max_ulp_distance == 0
        assert st.n_points == 2**23 + 1

    def test_bad_domains(self):
        """Reversed or NaN bounds raise a ValueError naming the problem."""
        with pytest.raises(ValueError, match="empty domain"):
            ps.verify(EXP2_DEG2, "exp2", (1.0, 0.0))
        with pytest.raises(ValueError, match="NaN"):
            ps.verify(EXP2_DEG2, "exp2", (float("nan"), 1.0))

    def test_custom_target_too_large_for_exhaustive(self):
        """A custom target over a large domain asks for sampling instead of running for hours."""
        with pytest.raises(ValueError, match="exhaustive=False"):
            ps.verify(EXP2_DEG2, lambda t: mpmath.power(2, t), (0.0, 1.0))


class TestReference:
    @pytest.mark.parametrize("name", sorted(BUILTIN))
    def test_float64_reference_within_few_ulps_of_mpmath(self, name):
        """Each built-in float64 reference is within 4 float64 ulps of mpmath on a domain sample."""
        t = BUILTIN[name]
        lo, hi = t.domain
        x = np.concatenate([ps.Domain(lo, hi).sample(300, seed=1), ps.Domain(-3.0, 3.0).sample(200, seed=2)])
        if name in ("log", "log2", "sqrt", "rsqrt"):
            x = x[x > 0]
        if name == "log1p":
            x = x[x > -1]
        ref, rounded = ps.reference(name, x)
        for xi, r, c in zip(x, ref, rounded):
            v = t.exact(xi)
            assert abs(mpmath.mpf(float(r)) - v) <= 4 * abs(v) * mpmath.ldexp(1, -52) + mpmath.ldexp(1, -1074), (name, xi)
            assert c == round_exact_to_float32(v), (name, xi)

    def test_round_exact_ties_to_even_and_overflow(self):
        """Exact float32 rounding: ties go to the even mantissa; beyond the range, to infinity."""
        one_plus_half_ulp = mpmath.mpf(1) + mpmath.ldexp(1, -24)
        assert round_exact_to_float32(one_plus_half_ulp) == np.float32(1.0)
        three_halves_ulp = mpmath.mpf(1) + 3 * mpmath.ldexp(1, -24)
        assert round_exact_to_float32(three_halves_ulp) == np.float32(1 + 2**-22)
        assert np.isinf(round_exact_to_float32(mpmath.mpf(2) ** 129))
        assert round_exact_to_float32(mpmath.ldexp(3, -151)) == np.float32(2**-149)


class TestDomain:
    def test_counts(self):
        """[0, 1] holds 0x3f800000 + 1 float32 values; [-0, +0] holds two."""
        assert ps.Domain(0, 1).count() == 0x3F800000 + 1
        assert ps.Domain(-0.0, 0.0).count() == 2

    def test_sample_is_inside_sorted_and_has_edges(self):
        """A stratified sample stays in the domain, is sorted and unique, and contains both edges."""
        dom = ps.Domain(-2.0, 3.0)
        x = dom.sample(5000, seed=7)
        assert x.dtype == np.float32 and np.all(np.diff(x) > 0)
        assert x[0] == -2.0 and x[-1] == 3.0
        assert np.float32(2**-149) in x  # subnormals are weighted in by bit pattern
        assert np.all((x >= -2) & (x <= 3))

    def test_all_refuses_huge_domains(self):
        """Materialising a billion values is refused with a pointer to verify()."""
        with pytest.raises(ValueError, match="verify"):
            ps.Domain(0, 1).all()

    def test_all_matches_numpy_enumeration(self):
        """Enumerating [1, 1.0001] by key equals numpy's bit-pattern enumeration."""
        x = ps.Domain(1.0, 1.0001).all()
        lo, hi = np.array([1.0, 1.0001], np.float32).view(np.uint32)
        np.testing.assert_array_equal(x, np.arange(lo, hi + 1, dtype=np.uint32).view(np.float32))
