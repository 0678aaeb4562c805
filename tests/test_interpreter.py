"""Tests of the reference interpreter against independent exact arithmetic (fractions, math, mpmath)."""

from __future__ import annotations

import math
from fractions import Fraction

import mpmath
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pysearch.interpreter import fma64_scalar, round_scaled_int, run, run_mpmath
from pysearch.program import parse
from strategies import float32_values, float64_values, float_values

FORMATS = {"float32": (24, -149, 128), "float64": (53, -1074, 1024)}
F32_MAX = float(np.finfo(np.float32).max)


# --------------------------------------------------------------------------- oracles
def round_fraction(q: Fraction, dtype: str, zero_sign: float = 1.0) -> float:
    """Round the exact rational ``q`` once to ``dtype`` (nearest, ties to even) with Python's round().

    ``zero_sign`` gives the sign of an exact zero (IEEE: depends on the operation).
    """
    prec, min_exp, max_exp = FORMATS[dtype]
    if q == 0:
        return math.copysign(0.0, zero_sign)
    sign = -1.0 if q < 0 else 1.0
    a = abs(q)
    e = a.numerator.bit_length() - a.denominator.bit_length()
    if Fraction(2) ** e > a:
        e -= 1
    ulp = Fraction(2) ** max(e - prec + 1, min_exp)
    m = round(a / ulp)  # round() on a Fraction rounds half to even
    v = m * ulp
    if v >= Fraction(2) ** max_exp:
        return sign * math.inf
    return math.copysign(float(v), sign)


def fma_oracle(a: float, b: float, c: float, dtype: str) -> float:
    """IEEE fma from its definition: exact a*b+c rounded once; specials by the standard's rules."""
    if math.isnan(a) or math.isnan(b) or math.isnan(c):
        return math.nan
    if math.isinf(a) or math.isinf(b):
        if a == 0 or b == 0:
            return math.nan
        prod = math.copysign(math.inf, math.copysign(1, a) * math.copysign(1, b))
        return math.nan if math.isinf(c) and c != prod else prod
    if math.isinf(c):
        return c
    q = Fraction(a) * Fraction(b) + Fraction(c)
    product_sign = math.copysign(1, a) * math.copysign(1, b)
    both_negative_zeros = a * b == 0 and c == 0 and product_sign < 0 and math.copysign(1, c) < 0
    exact_product_zero = a == 0 or b == 0
    zero_sign = -1.0 if both_negative_zeros and exact_product_zero else 1.0
    return round_fraction(q, dtype, zero_sign)


def bits(values, dtype: str) -> np.ndarray:
    """Bit patterns of float values in ``dtype``; every NaN maps to one canonical pattern."""
    a = np.array(values, dtype=dtype)
    u = np.uint32 if dtype == "float32" else np.uint64
    out = a.view(u).copy()
    out[np.isnan(a)] = np.array(np.nan, dtype=dtype).view(u)
    return out


def assert_bits_equal(got, expected, dtype: str, context=None) -> None:
    """Equal bit for bit, except that any NaN equals any NaN."""
    g, e = bits(got, dtype), bits(expected, dtype)
    bad = np.flatnonzero(g != e)
    if len(bad):
        i = bad[0]
        where = f" at {context[i]!r}" if context is not None else ""
        raise AssertionError(
            f"{len(bad)} mismatches; first{where}: got {np.asarray(got, dtype=dtype)[i]!r} "
            f"(0x{int(g[i]):x}), expected {np.asarray(expected, dtype=dtype)[i]!r} (0x{int(e[i]):x})"
        )


def bf16_floats() -> np.ndarray:
    """All 65,536 float32 values whose low 16 bits are zero."""
    return (np.arange(65536, dtype=np.uint32) << np.uint32(16)).view(np.float32)


def fma_program(dtype: str):
    return parse(f"dtype {dtype}\ninputs a, b, c\nv = fma a b c\n")


def binary_program(op: str, dtype: str):
    return parse(f"dtype {dtype}\ninputs a, b\nv = {op} a b\n")


def unary(op: str, values, dtype: str = "float32") -> np.ndarray:
    return run(parse(f"dtype {dtype}\nv = {op} x\n"), np.array(values, dtype=dtype))


def triples(values_strategy):
    return st.lists(st.tuples(values_strategy, values_strategy, values_strategy), min_size=1, max_size=12)


# --------------------------------------------------------------------------- oracle self-checks
class TestOracles:
    @given(st.fractions(), st.integers(-1100, 1100))
    def test_round_fraction_matches_python_float(self, q, shift):
        """The float64 rounding oracle agrees with CPython's correctly rounded Fraction -> float."""
        q = q * Fraction(2) ** shift
        try:
            expected = float(q)
        except OverflowError:
            expected = math.inf if q > 0 else -math.inf
        got = round_fraction(q, "float64")
        assert got == expected and math.copysign(1, got) == math.copysign(1, expected)

    @given(float64_values())
    def test_round_fraction_float32_matches_numpy_cast(self, v):
        """Rounding a float64's exact value to float32 agrees with numpy's float64 -> float32 cast."""
        if math.isfinite(v):
            with np.errstate(over="ignore"):
                expected = float(np.float32(v))
            assert bits([round_fraction(Fraction(v), "float32", v)], "float32") == bits([expected], "float32")


# --------------------------------------------------------------------------- fma
class TestFma:
    @pytest.mark.parametrize("dtype", ["float32", "float64"])
    @given(data=st.data())
    def test_against_exact_fractions(self, dtype, data):
        """fma equals the exact a*b+c rounded once, for random operands weighted to special values."""
        ts = data.draw(triples(float_values(dtype)))
        a, b, c = (np.array(col, dtype=dtype) for col in zip(*ts))
        expected = [fma_oracle(float(x), float(y), float(z), dtype) for x, y, z in zip(a, b, c)]
        assert_bits_equal(run(fma_program(dtype), {"a": a, "b": b, "c": c}), expected, dtype, ts)

    @given(triples(st.floats(-(2.0**-60), 2.0**-60, width=32)))
    def test_float32_subnormal_results(self, ts):
        """Products deep in the subnormal range round once (no double rounding, no flush to zero)."""
        a, b, c = (np.array(col, dtype=np.float32) for col in zip(*ts))
        c = c * np.float32(2.0**-70)
        expected = [fma_oracle(float(x), float(y), float(z), "float32") for x, y, z in zip(a, b, c)]
        assert_bits_equal(run(fma_program("float32"), {"a": a, "b": b, "c": c}), expected, "float32", ts)

    @given(triples(st.floats(-(2.0**-520), 2.0**-520)))
    def test_float64_subnormal_results(self, ts):
        """float64 fma results in the subnormal range are rounded once."""
        a, b, c = (np.array(col) for col in zip(*ts))
        c = c * 2.0**-500
        expected = [fma_oracle(x, y, z, "float64") for x, y, z in zip(a.tolist(), b.tolist(), c.tolist())]
        assert_bits_equal(run(fma_program("float64"), {"a": a, "b": b, "c": c}), expected, "float64", ts)

    @pytest.mark.parametrize(
        "a, b, c, expected",
        [
            # exact = 1 + 2^-23 + 2^-24 - 2^-70: a float64 intermediate would round to the midpoint
            # and then, ties to even, up to 1 + 2^-22; the fused result is 1 + 2^-23.
            (2.0**-24 * (1 + 2.0**-23), 1 - 2.0**-23, 1 + 2.0**-23, 1 + 2.0**-23),
            (1 + 2.0**-23, 1 - 2.0**-23, -1.0, -(2.0**-46)),
            (F32_MAX, 2.0, -F32_MAX, F32_MAX),
            (F32_MAX, F32_MAX, -math.inf, -math.inf),
            (F32_MAX, 1 + 2.0**-23, 0.0, math.inf),
            (2.0**-100, -(2.0**-100), 0.0, -0.0),
            (2.0**-75, 2.0**-75, -0.0, 2.0**-150 * 0),
            (2.0**-75, 2.0**-74 * 1.5, 0.0, 2.0**-148),
            (-0.0, 1.0, -0.0, -0.0),
            (-0.0, 1.0, 0.0, 0.0),
            (0.0, -1.0, -0.0, -0.0),
            (1.0, -1.0, 1.0, 0.0),
            (-1.0, 1.0, 1.0, 0.0),
            (math.inf, 0.0, 1.0, math.nan),
            (math.inf, 1.0, -math.inf, math.nan),
            (math.inf, -2.0, 5.0, -math.inf),
            (1.0, 1.0, math.nan, math.nan),
        ],
    )
    def test_float32_hand_cases(self, a, b, c, expected):
        """Double-rounding traps, overflow, underflow and the IEEE sign of zero results."""
        got = run(fma_program("float32"), {k: np.array([v], dtype=np.float32) for k, v in zip("abc", (a, b, c))})
        assert_bits_equal(got, [expected], "float32")
        assert_bits_equal(got, [fma_oracle(a, b, c, "float32")], "float32")

    @pytest.mark.parametrize(
        "a, b, c, expected",
        [
            (1 + 2.0**-52, 1 - 2.0**-52, -1.0, -(2.0**-104)),
            (2.0**1023, 2.0, -(2.0**1023), 2.0**1023),
            (1e308, 10.0, 0.0, math.inf),
            (2.0**-600, -(2.0**-600), 0.0, -0.0),
            (2.0**-537, 2.0**-537, 0.0, 5e-324),  # exactly 2^-1074
            (2.0**-538, 2.0**-537, 0.0, 0.0),  # 2^-1075: tie, to even (zero)
            (2.0**-538 * 3, 2.0**-537, 0.0, 2 * 5e-324),  # 1.5 ulp: tie, to even (2 ulp)
            (-0.0, 3.0, -0.0, -0.0),
            (2.0, 3.0, -6.0, 0.0),
            (math.inf, 0.0, 1.0, math.nan),
            (1e308, 1e308, -math.inf, -math.inf),  # a*b overflows float64, but the fma is exact
            (-1e308, 1e308, math.inf, math.inf),
        ],
    )
    def test_float64_hand_cases(self, a, b, c, expected):
        """float64 fma: exactness, overflow, subnormal ties and zero signs."""
        got = run(fma_program("float64"), {k: np.array([v]) for k, v in zip("abc", (a, b, c))})
        assert_bits_equal(got, [expected], "float64")
        assert_bits_equal([fma64_scalar(a, b, c)], [fma_oracle(a, b, c, "float64")], "float64")

    @pytest.mark.parametrize(
        "b, c",
        [
            (1.0 + 2.0**-23, -1.0),
            (-0.33333334, 2.0**-140),
            pytest.param(3.0, -F32_MAX, marks=pytest.mark.slow),
            pytest.param(0.1, 2.0**-126, marks=pytest.mark.slow),
        ],
    )
    def test_float32_bf16_exhaustive(self, b, c):
        """fma(x, b, c) for all 65,536 bf16-pattern float32 x matches the exact oracle."""
        x = bf16_floats()
        b, c = float(np.float32(b)), float(np.float32(c))
        got = run(parse(f"v = fma x {b!r} {c!r}"), x)
        expected = [fma_oracle(v, b, c, "float32") for v in x.tolist()]
        assert_bits_equal(got, expected, "float32", x)

    def test_round_scaled_int_overflow_boundary(self):
        """The rounding helper sends values at or past max + half an ulp to infinity, not below."""
        max_m = (1 << 53) - 1
        assert round_scaled_int(max_m, 971) == np.finfo(np.float64).max
        assert round_scaled_int(2 * max_m + 1, 970) == math.inf  # exactly max + half ulp: tie to even
        assert round_scaled_int(4 * max_m + 1, 969) == np.finfo(np.float64).max
        assert round_scaled_int(-(2 * max_m + 1), 970) == -math.inf


# --------------------------------------------------------------------------- arithmetic
ARITH = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
}


def exact_arith(op: str, a: float, b: float, dtype: str) -> float | None:
    """Exact result of a finite operation rounded once, or None when the oracle does not apply."""
    if not (math.isfinite(a) and math.isfinite(b)) or (op == "div" and b == 0):
        return None
    q = ARITH[op](Fraction(a), Fraction(b))
    if q != 0:
        return round_fraction(q, dtype)
    sa, sb = math.copysign(1, a), math.copysign(1, b)
    if op in ("mul", "div"):
        return math.copysign(0.0, sa * sb)
    if op == "sub":
        sb = -sb
    both_zero = a == 0 and b == 0
    return -0.0 if both_zero and sa < 0 and sb < 0 else 0.0


class TestArithmetic:
    @pytest.mark.parametrize("dtype", ["float32", "float64"])
    @given(data=st.data())
    def test_against_exact_fractions(self, dtype, data):
        """add/sub/mul/div of finite operands equal the exact result rounded once (zero signs too)."""
        pairs = data.draw(st.lists(st.tuples(float_values(dtype), float_values(dtype)), min_size=1, max_size=12))
        a, b = (np.array(col, dtype=dtype) for col in zip(*pairs))
        for op in ARITH:
            got = run(binary_program(op, dtype), {"a": a, "b": b})
            expected = [exact_arith(op, x, y, dtype) for x, y in zip(a.tolist(), b.tolist())]
            keep = [i for i, e in enumerate(expected) if e is not None]
            assert_bits_equal(got[keep], [expected[i] for i in keep], dtype, [(op, *pairs[i]) for i in keep])

    @given(pairs=st.lists(st.tuples(float32_values(), float32_values()), min_size=1, max_size=12))
    def test_float32_against_numpy_float64(self, pairs):
        """float32 add/sub/mul/div equal numpy's float64 result cast to float32 (exact double rounding)."""
        a, b = (np.array(col, dtype=np.float32) for col in zip(*pairs))
        for op, f in ARITH.items():
            with np.errstate(all="ignore"):
                expected = f(a.astype(np.float64), b.astype(np.float64)).astype(np.float32)
            got = run(binary_program(op, "float32"), {"a": a, "b": b})
            assert_bits_equal(got, expected, "float32", [(op, *pr) for pr in pairs])

    @given(st.lists(float32_values(), min_size=1, max_size=16))
    def test_float32_sqrt(self, xs):
        """float32 sqrt equals math.sqrt in float64 cast once to float32 (innocuous double rounding)."""
        expected = [
            math.nan if math.isnan(v) or v < 0 else math.copysign(math.sqrt(abs(v)), v) if v == 0 else math.sqrt(v)
            for v in xs
        ]
        assert_bits_equal(unary("sqrt", xs), np.array(expected, dtype=np.float64).astype(np.float32), "float32", xs)

    @given(st.lists(float64_values(), min_size=1, max_size=16))
    def test_float64_sqrt_brackets(self, xs):
        """float64 sqrt r of positive finite a satisfies (r - ulp/2)^2 < a < (r + ulp/2)^2 exactly."""
        got = unary("sqrt", xs, "float64")
        for v, r in zip(xs, got.tolist()):
            if math.isnan(v) or v < 0:
                assert math.isnan(r)
            elif v == 0 or math.isinf(v):
                assert r == v and math.copysign(1, r) == math.copysign(1, v)
            else:
                half = Fraction(math.ulp(r)) / 2
                assert (Fraction(r) - half) ** 2 < Fraction(v) < (Fraction(r) + half) ** 2, v

    def test_no_flush_to_zero(self):
        """Subnormal operands and results are kept, not flushed to zero."""
        tiny = np.array([2.0**-149], dtype=np.float32)
        assert run(parse("v = mul x 0.5"), tiny * 3)[0] == np.float32(2.0**-148)  # 1.5 ulp -> tie to even
        assert run(parse("v = add x x"), tiny)[0] == np.float32(2.0**-148)
        assert run(parse("v = div x 2"), np.array([2.0**-126], dtype=np.float32))[0] == np.float32(2.0**-127)


# --------------------------------------------------------------------------- other ops
NAN = math.nan
INF = math.inf


class TestMinMax:
    CASES = [
        # a, b, min, max
        (1.0, 2.0, 1.0, 2.0),
        (2.0, 1.0, 1.0, 2.0),
        (-INF, INF, -INF, INF),
        (0.0, -0.0, -0.0, 0.0),
        (-0.0, 0.0, -0.0, 0.0),
        (0.0, 0.0, 0.0, 0.0),
        (-0.0, -0.0, -0.0, -0.0),
        (NAN, 1.0, NAN, NAN),
        (1.0, NAN, NAN, NAN),
        (NAN, NAN, NAN, NAN),
        (-INF, NAN, NAN, NAN),
        (2.0**-149, -(2.0**-149), -(2.0**-149), 2.0**-149),
    ]

    @pytest.mark.parametrize("dtype", ["float32", "float64"])
    def test_special_values(self, dtype):
        """NaN propagates from either side; -0 is below +0; otherwise the smaller/larger value."""
        a, b, mins, maxs = (np.array(col, dtype=dtype) for col in zip(*self.CASES))
        assert_bits_equal(run(binary_program("min", dtype), {"a": a, "b": b}), mins, dtype, self.CASES)
        assert_bits_equal(run(binary_program("max", dtype), {"a": a, "b": b}), maxs, dtype, self.CASES)


class TestSignOps:
    def test_neg_abs_flip_and_clear_the_sign_bit(self):
        """neg flips and abs clears the sign bit of every value, NaN included."""
        x = np.array([0.0, -0.0, 1.5, -2.0**-149, INF, -INF, NAN, -NAN], dtype=np.float32)
        u = x.view(np.uint32)
        np.testing.assert_array_equal(unary("neg", x).view(np.uint32), u ^ np.uint32(0x80000000))
        np.testing.assert_array_equal(unary("abs", x).view(np.uint32), u & np.uint32(0x7FFFFFFF))
        x64 = x.astype(np.float64)
        u64 = x64.view(np.uint64)
        np.testing.assert_array_equal(unary("neg", x64, "float64").view(np.uint64), u64 ^ np.uint64(1 << 63))
        np.testing.assert_array_equal(unary("abs", x64, "float64").view(np.uint64), u64 & np.uint64((1 << 63) - 1))


def python_rint(v: float) -> float:
    """Round half to even with Python's round(), keeping the sign of zero and specials."""
    return v if not math.isfinite(v) else math.copysign(float(round(v)), v)


def python_floor(v: float) -> float:
    return v if not math.isfinite(v) else math.copysign(float(math.floor(v)), v)


class TestRounding:
    @pytest.mark.parametrize(
        "x, expected",
        [
            (0.5, 0.0), (1.5, 2.0), (2.5, 2.0), (3.5, 4.0), (-0.5, -0.0), (-1.5, -2.0), (-2.5, -2.0),
            (0.49999997, 0.0), (-0.3, -0.0), (8388607.5, 8388608.0), (2.0**23 + 1, 2.0**23 + 1),
            (-0.0, -0.0), (INF, INF), (-INF, -INF), (NAN, NAN), (2.0**-149, 0.0),
        ],
    )
    def test_rint_hand_cases(self, x, expected):
        """rint rounds to the nearest integer with ties to even and keeps the sign of zero."""
        assert_bits_equal(unary("rint", [x]), [expected], "float32")
        assert_bits_equal(unary("rint", [x], "float64"), [expected], "float64")

    @pytest.mark.parametrize(
        "x, expected",
        [(0.5, 0.0), (-0.5, -1.0), (-0.0, -0.0), (-(2.0**-149), -1.0), (2.5, 2.0), (-2.5, -3.0), (INF, INF), (NAN, NAN)],
    )
    def test_floor_hand_cases(self, x, expected):
        """floor rounds toward -inf and keeps -0."""
        assert_bits_equal(unary("floor", [x]), [expected], "float32")

    @pytest.mark.parametrize("op, oracle", [("rint", python_rint), ("floor", python_floor)])
    def test_bf16_exhaustive(self, op, oracle):
        """rint and floor of all 65,536 bf16-pattern float32 values agree with Python's round/floor."""
        x = bf16_floats()
        assert_bits_equal(unary(op, x), [oracle(v) for v in x.tolist()], "float32", x)

    @given(st.lists(float64_values(), min_size=1, max_size=16))
    def test_float64_random(self, xs):
        """float64 rint and floor agree with Python's round/floor."""
        assert_bits_equal(unary("rint", xs, "float64"), [python_rint(v) for v in xs], "float64", xs)
        assert_bits_equal(unary("floor", xs, "float64"), [python_floor(v) for v in xs], "float64", xs)


class TestLdexp:
    @pytest.mark.parametrize(
        "a, b, expected",
        [
            (1.0, 3.9, 8.0),
            (1.0, -3.9, 0.125),
            (1.0, -0.5, 1.0),
            (1.0, NAN, NAN),
            (NAN, 1.0, NAN),
            (0.0, NAN, NAN),
            (1.0, INF, INF),  # k clamped to 300, still overflows float32
            (1.0, -INF, 0.0),
            (2.0**127, -300.0, 0.0),  # 2^-173 underflows
            (2.0**127, -276.0, 2.0**-149),
            (1.5, -149.0, 2.0**-148),  # 1.5 subnormal ulps: tie to even
            (2.5, -149.0, 2.0**-148),  # 2.5 ulps: tie to even (2)
            (2.0**-149, 276.0, 2.0**127),
            (2.0**-149, 1e9, INF),
            (-0.0, 5.0, -0.0),
            (INF, -1000.0, INF),
            (-3.0, 1.0, -6.0),
        ],
    )
    def test_float32_hand_cases(self, a, b, expected):
        """ldexp truncates and clamps the exponent, handles NaN exponents and rounds once."""
        a32, e32 = np.float32(a), np.float32(expected)
        got = run(binary_program("ldexp", "float32"), {"a": np.array([a32]), "b": np.array([b], dtype=np.float32)})
        assert_bits_equal(got, [e32], "float32")

    @pytest.mark.parametrize(
        "a, b, expected",
        [
            (1.0, 2200.5, INF),
            (1.0, 1e6, INF),
            (1.0, -1e6, 0.0),
            (2.0**1023, -2097.0, 5e-324),
            (2.0**1023, -2098.0, 0.0),  # 2^-1075: tie to even
            (3.0 * 2.0**1022, -2097.0, 2 * 5e-324),  # 1.5 ulps: tie to even
            (5e-324, 2097.0, 2.0**1023),
            (5e-324, 2098.0, INF),
            (1.0, NAN, NAN),
            (-0.0, -7.0, -0.0),
        ],
    )
    def test_float64_hand_cases(self, a, b, expected):
        """float64 ldexp with K = 2200 and correctly rounded subnormal results."""
        got = run(binary_program("ldexp", "float64"), {"a": np.array([a]), "b": np.array([b])})
        assert_bits_equal(got, [expected], "float64")

    @given(st.lists(st.tuples(float32_values(), st.integers(-400, 400)), min_size=1, max_size=16))
    def test_float32_against_fractions(self, pairs):
        """float32 ldexp(a, k) equals a * 2^k rounded once (exact rationals)."""
        a = np.array([p[0] for p in pairs], dtype=np.float32)
        k = np.array([p[1] for p in pairs], dtype=np.float32)
        got = run(binary_program("ldexp", "float32"), {"a": a, "b": k})
        keep = [i for i, (v, _) in enumerate(pairs) if math.isfinite(v)]
        expected = [
            round_fraction(Fraction(v) * Fraction(2) ** max(-300, min(300, e)), "float32", v)
            for v, e in (pairs[i] for i in keep)
        ]
        assert_bits_equal(got[keep], expected, "float32", [pairs[i] for i in keep])


class TestGetexpGetmant:
    CASES32 = [
        # x, getexp, getmant
        (1.0, 0.0, 1.0),
        (1.5, 0.0, 1.5),
        (2.0, 1.0, 1.0),
        (0.75, -1.0, 1.5),
        (-3.0, 1.0, -1.5),
        (2.0**-149, -149.0, 1.0),
        (2.0**-126 - 2.0**-149, -127.0, 2.0 - 2.0**-22),
        (3.0 * 2.0**-149, -148.0, 1.5),
        (2.0**-126, -126.0, 1.0),
        (F32_MAX, 127.0, 2.0 - 2.0**-23),
        (0.0, -INF, 0.0),
        (-0.0, -INF, -0.0),
        (INF, INF, INF),
        (-INF, INF, -INF),
        (NAN, NAN, NAN),
    ]

    def test_float32_special_values(self):
        """getexp is floor(log2|x|) (subnormals included); getmant keeps the sign, |m| in [1, 2)."""
        x, e, m = (np.array(col, dtype=np.float32) for col in zip(*self.CASES32))
        assert_bits_equal(unary("getexp", x), e, "float32", x)
        assert_bits_equal(unary("getmant", x), m, "float32", x)

    def test_float64_subnormals(self):
        """float64 getexp/getmant of the smallest subnormal and the largest finite value."""
        x = [5e-324, -3 * 5e-324, float(np.finfo(np.float64).max)]
        assert_bits_equal(unary("getexp", x, "float64"), [-1074.0, -1073.0, 1023.0], "float64")
        assert_bits_equal(unary("getmant", x, "float64"), [1.0, -1.5, 2.0 - 2.0**-52], "float64")

    @pytest.mark.parametrize("dtype", ["float32", "float64"])
    @given(data=st.data())
    def test_against_frexp(self, dtype, data):
        """For finite nonzero x, getexp and getmant follow math.frexp and x == getmant * 2^getexp."""
        xs = [v for v in data.draw(st.lists(float_values(dtype), min_size=1, max_size=16)) if math.isfinite(v) and v]
        if not xs:
            return
        e = unary("getexp", xs, dtype).tolist()
        m = unary("getmant", xs, dtype).tolist()
        for v, ev, mv in zip(xs, e, m):
            fm, fe = math.frexp(v)
            assert (ev, mv) == (fe - 1, 2 * fm)
            assert Fraction(mv) * Fraction(2) ** int(ev) == Fraction(v)

    def test_bf16_exhaustive(self):
        """getexp and getmant of all 65,536 bf16-pattern float32 values agree with math.frexp."""
        x = bf16_floats()
        exp_expected, mant_expected = [], []
        for v in x.tolist():
            if not math.isfinite(v) or v == 0:
                exp_expected.append(NAN if math.isnan(v) else INF if math.isinf(v) else -INF)
                mant_expected.append(v)
            else:
                fm, fe = math.frexp(v)
                exp_expected.append(float(fe - 1))
                mant_expected.append(2 * fm)
        assert_bits_equal(unary("getexp", x), exp_expected, "float32", x)
        assert_bits_equal(unary("getmant", x), mant_expected, "float32", x)


class TestLibmOps:
    @given(st.lists(st.floats(-700, 700), min_size=1, max_size=16))
    def test_exp_log_pow_float64(self, xs):
        """exp, log and pow (float64 only) agree with Python's math module to 1 ulp."""
        x = np.array(xs)
        for op, f in [("exp", math.exp), ("log", math.log)]:
            got = unary(op, np.abs(x) if op == "log" else x, "float64")
            for v, r in zip(np.abs(x) if op == "log" else x, got.tolist()):
                want = f(v) if (op != "log" or v > 0) else -math.inf
                assert r == want or abs(r - want) <= math.ulp(want), (op, v, r, want)
        got = run(binary_program("pow", "float64"), {"a": np.abs(x) / 100, "b": np.full(len(x), 1.5)})
        for v, r in zip((np.abs(x) / 100).tolist(), got.tolist()):
            want = math.pow(v, 1.5)
            assert abs(r - want) <= math.ulp(want), (v, r, want)


# --------------------------------------------------------------------------- run()
class TestRunInputs:
    def test_accepts_text_and_shapes(self):
        """run accepts program text, a 2-D (n_inputs, n) array and a dict, with the same result."""
        x = np.array([1.0, 2.0, -3.0], dtype=np.float32)
        y = np.array([0.5, -1.0, 4.0], dtype=np.float32)
        text = "inputs x, y\nv = mul x y\nw = add v 1\n"
        a = run(text, np.stack([x, y]))
        b = run(parse(text), {"y": y, "x": x})
        np.testing.assert_array_equal(a, [1.5, -1.0, -11.0])
        np.testing.assert_array_equal(a, b)
        assert a.dtype == np.float32 and a.shape == (3,)

    def test_non_contiguous_input(self):
        """A strided input array gives the same values as a contiguous copy."""
        x = np.arange(10, dtype=np.float32)[::2]
        np.testing.assert_array_equal(run("v = mul x x", x), np.ascontiguousarray(x) ** 2)

    def test_constant_only_program(self):
        """A program that ignores its input still returns one value per point."""
        got = run("v = add 1 2", np.zeros(4, dtype=np.float32))
        np.testing.assert_array_equal(got, [3, 3, 3, 3])

    def test_empty_input(self):
        """Zero points give an empty result of the program's dtype."""
        got = run("dtype float64\nv = fma x x 1", np.zeros(0))
        assert got.shape == (0,) and got.dtype == np.float64

    @pytest.mark.parametrize(
        "x, exc, fragment",
        [
            (np.zeros(3, dtype=np.float64), TypeError, "dtype float64, but the program's dtype is float32"),
            (np.zeros(3, dtype=np.int32), TypeError, "dtype int32"),
            ([1.0, 2.0], TypeError, "numpy array or a dict"),
            (np.zeros((2, 3), dtype=np.float32), ValueError, "expected (1, n)"),
            (np.zeros((1, 1, 3), dtype=np.float32), ValueError, "1-D or 2-D"),
            ({"y": np.zeros(3, dtype=np.float32)}, ValueError, "missing ['x'], unknown ['y']"),
            ({"x": np.zeros((3, 1), dtype=np.float32)}, ValueError, "must be 1-D"),
            ({"x": [1.0]}, TypeError, "must be a numpy array"),
        ],
    )
    def test_bad_inputs(self, x, exc, fragment):
        """Wrong types, dtypes, shapes and names raise TypeError/ValueError naming the problem."""
        with pytest.raises(exc) as info:
            run("v = neg x", x)
        assert fragment in str(info.value)

    def test_multi_input_errors(self):
        """A 1-D array for a two-input program, or inputs of different lengths, are rejected."""
        with pytest.raises(ValueError, match="2 inputs"):
            run("inputs x, y\nv = add x y", np.zeros(3, dtype=np.float32))
        with pytest.raises(ValueError, match="different lengths"):
            run("inputs x, y\nv = add x y", {"x": np.zeros(3, np.float32), "y": np.zeros(2, np.float32)})

    def test_no_warnings_on_specials(self):
        """Overflow, 0/0 and sqrt(-1) produce IEEE results without numpy warnings."""
        x = np.array([-1.0, 0.0, 1e38], dtype=np.float32)
        got = run("a = div x 0\nb = sqrt x\nc = mul x x\nd = add a b\ne = add d c", x)
        np.testing.assert_array_equal(got, [np.nan, np.nan, np.inf])
        assert run("v = mul x x", x)[2] == np.inf


# --------------------------------------------------------------------------- run_mpmath
class TestRunMpmath:
    def test_horner_is_real_arithmetic(self):
        """The doc's Horner example evaluates exactly over the reals, not in float32."""
        p = parse("c = fma x 0.24022651 0.6931472\np = fma c x 1\n")
        k1, k2 = (mpmath.mpf(v) for v in p.constants()[:2])
        with mpmath.workdps(60):
            xs = [mpmath.mpf(0.5), mpmath.mpf(1) / 3]
            got = run_mpmath(p, xs, dps=60)
            for x, r in zip(xs, got):
                assert mpmath.almosteq(r, (x * k1 + k2) * x + 1, rel_eps=mpmath.mpf(2) ** -190)

    def test_no_float_rounding(self):
        """1 + 2^-30 is kept exactly, where float32 would round it to 1."""
        (r,) = run_mpmath("v = add x 1", [2.0**-30])
        assert r == 1 + mpmath.mpf(2) ** -30
        assert run("v = add x 1", np.array([2.0**-30], dtype=np.float32))[0] == 1.0

    def test_precision_follows_dps(self):
        """1/3 is computed to about dps digits."""
        with mpmath.workdps(100):
            (r,) = run_mpmath("v = div 1 x", [3.0], dps=80)
            assert abs(r - mpmath.mpf(1) / 3) < mpmath.mpf(10) ** -79

    def test_ops_over_reals(self):
        """rint (ties to even), floor, ldexp, getexp, getmant, min, max and fma over the reals."""
        with mpmath.workdps(50):
            cases = {
                "v = rint x": ([2.5, 3.5, -2.5, 0.4], [2, 4, -2, 0]),
                "v = floor x": ([-0.5, 2.0, 2.9], [-1, 2, 2]),
                "v = ldexp x 3.9": ([1.5], [12]),
                "v = ldexp x 1e9": ([1.0], [mpmath.mpf(2) ** 300]),
                "v = getexp x": ([0.75, 2.0**-149, 0.0], [-1, -149, -mpmath.inf]),
                "v = getmant x": ([-0.75, 12.0], [-1.5, 1.5]),
                "v = min x 2": ([1.0, 3.0], [1, 2]),
                "v = max x 2": ([1.0, 3.0], [2, 3]),
                "v = fma x x -1": ([1 + 2.0**-23], [2 * mpmath.mpf(2) ** -23 + mpmath.mpf(2) ** -46]),
                "v = abs x": ([-2.0], [2]),
                "v = neg x": ([2.0], [-2]),
                "v = sqrt x": ([2.0], [mpmath.sqrt(2)]),
            }
            for text, (xs, want) in cases.items():
                got = run_mpmath(text, xs)
                assert all(mpmath.almosteq(g, w, rel_eps=mpmath.mpf(10) ** -45) or g == w for g, w in zip(got, want)), (
                    text, got, want,
                )

    def test_undefined_points_are_nan(self):
        """x/0, sqrt of a negative, log of a negative and NaN operands give nan; log(0) is -inf."""
        assert mpmath.isnan(run_mpmath("v = div 1 x", [0.0])[0])
        assert mpmath.isnan(run_mpmath("v = sqrt x", [-1.0])[0])
        assert mpmath.isnan(run_mpmath("dtype float64\nv = log x", [-1.0])[0])
        assert run_mpmath("dtype float64\nv = log x", [0.0])[0] == -mpmath.inf
        assert mpmath.isnan(run_mpmath("dtype float64\nv = pow x 0.5", [-4.0])[0])
        assert mpmath.isnan(run_mpmath("v = min x nan", [1.0])[0])

    def test_float64_libm_ops(self):
        """exp, log and pow are the real functions."""
        with mpmath.workdps(50):
            (r,) = run_mpmath("dtype float64\na = exp x\nb = log a\nc = pow b 2\n", [1.5])
            assert mpmath.almosteq(r, mpmath.mpf(2.25), rel_eps=mpmath.mpf(10) ** -45)

    def test_inputs(self):
        """Multiple inputs come as rows or a dict; numpy values and mpf values are accepted."""
        text = "inputs x, y\nv = sub x y\n"
        a = run_mpmath(text, [[1.0, 2.0], [0.25, 0.5]])
        b = run_mpmath(text, {"y": np.array([0.25, 0.5]), "x": [mpmath.mpf(1), np.float32(2.0)]})
        assert a == b == [mpmath.mpf(0.75), mpmath.mpf(1.5)]

    def test_agrees_with_float_run_where_exact(self):
        """Where every float32 operation is exact, run and run_mpmath agree."""
        x = np.array([0.5, 1.0, 1.5, 2.0, -4.0], dtype=np.float32)
        text = "a = mul x x\nb = fma a 2 x\nc = sub b 0.25\n"
        assert [float(r) for r in run_mpmath(text, x)] == run(text, x).tolist()

    @pytest.mark.parametrize(
        "kwargs, exc, fragment",
        [
            (dict(xs=[1.0], dps=10), ValueError, "dps must be an integer >= 16"),
            (dict(xs=["1.0"]), TypeError, "must be numbers"),
            (dict(xs=[True]), TypeError, "not booleans"),
            (dict(xs="1.0"), TypeError, "sequence of numbers"),
        ],
    )
    def test_bad_arguments(self, kwargs, exc, fragment):
        """Bad dps or non-numeric inputs raise a clear error."""
        with pytest.raises(exc, match=fragment):
            run_mpmath("v = neg x", **kwargs)

    def test_multi_input_errors(self):
        """Too few rows or a dict with other names are rejected."""
        with pytest.raises(ValueError, match="2 inputs"):
            run_mpmath("inputs x, y\nv = add x y", [1.0, 2.0])
        with pytest.raises(ValueError, match="differ from the program's inputs"):
            run_mpmath("inputs x, y\nv = add x y", {"x": [1.0]})
