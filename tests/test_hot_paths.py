"""Issue 12's hot paths: the cached text of programs and constants, and verification of many programs in one pass.

Each cache is checked against the computation it replaces (same text bit for bit, the same
verified figures), including the values a cache keyed by ``==`` would confuse (0.0 and -0.0).
"""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pysearch
from pysearch import program as program_module
from pysearch.evaluation import verify, verify_many
from pysearch.program import Instr, Program, Ref, format_const, parse, parse_literal

NARROW = (0.5, 0.5001)


def _f32(bits: int) -> float:
    return struct.unpack("<f", struct.pack("<I", bits))[0]


SPECIAL32 = [0.0, -0.0, math.inf, -math.inf, math.nan, _f32(1), _f32(0x807FFFFF), _f32(0x00800000),
             _f32(0x7F7FFFFF), 1.0, -1.0, 0.1, 1e-7, 1.2345678e-7, 1e20, 16777217.0]


@settings(max_examples=300, deadline=None)
@given(bits=st.integers(0, 2**32 - 1), repeat=st.booleans())
def test_cached_float32_text_is_the_computed_text(bits, repeat):
    v = _f32(bits)
    if not math.isnan(v):
        v = float(np.float32(v))
    first = format_const(v, "float32")
    again = format_const(v, "float32")  # a cache hit when v is cacheable
    assert first == again == program_module._format_const(v, "float32")
    back = parse_literal(first, "float32")
    assert (math.isnan(back) and math.isnan(v)) or struct.pack("<d", back) == struct.pack("<d", v)


@settings(max_examples=200, deadline=None)
@given(v=st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True))
def test_cached_float64_text_is_the_computed_text(v):
    assert format_const(v, "float64") == format_const(v, "float64") == program_module._format_const(v, "float64")


def test_signed_zeros_and_specials_keep_their_text():
    for v in SPECIAL32 + SPECIAL32:  # twice: the second pass reads the cache
        for dtype in ("float32", "float64"):
            w = float(np.float32(v)) if dtype == "float32" else v
            assert format_const(w, dtype) == program_module._format_const(w, dtype)
    assert format_const(-0.0, "float32") == "-0" and format_const(0.0, "float32") == "0"
    assert format_const(0.0, "float32") == "0" and format_const(-0.0, "float32") == "-0"


def test_program_text_is_cached_until_the_program_changes():
    p = parse("dtype float32\ninputs x\nv1 = fma x 0.5 0.25\nv2 = mul v1 x\n")
    text = p.to_text()
    assert p.to_text() is text  # kept
    assert p.to_text("a comment").startswith("# a comment\n")
    p.instrs[1] = Instr("add", (Ref.val(0), Ref.input(0)))
    assert p.to_text() == text.replace("mul", "add")
    p.output = 0
    assert p.to_text().endswith("return v1\n")
    p.instrs = [Instr("fma", (Ref.input(0), Ref.const(-0.0), Ref.const(0.25))), p.instrs[1]]
    assert "fma x -0 0.25" in p.to_text()
    q = parse(p.to_text())
    assert q == p and q.to_text() == p.to_text()


def test_validate_still_checks_types_on_construction():
    with pytest.raises(pysearch.ProgramError, match="is not a float"):
        Program([Instr("neg", (Ref("const", 0, 1),))])
    with pytest.raises(pysearch.ProgramError, match="not an int"):
        Program([Instr("neg", (Ref.input(0),))], output=0.0)


#: 30 values alive at once: more than the JIT's registers hold, so the interpreter runs it
WIDE = "dtype float32\ninputs x\n" + "".join(f"a{i} = fma x {i + 1}.5 0.25\n" for i in range(30)) + \
    "s1 = add a0 a1\n" + "".join(f"s{i} = add s{i - 1} a{i}\n" for i in range(2, 30))
PROGRAMS = [
    "dtype float32\ninputs x\nv1 = fma x 1.3900561 0.6099402\n",
    "dtype float32\ninputs x\nv1 = fma x x x\nv2 = fma v1 0.46214804 1.0757037\n",
    "dtype float32\ninputs x\nv1 = getexp x\nv2 = add v1 x\n",
    "dtype float32\ninputs x\nv1 = div x 0\n",  # inf and NaN outputs
    WIDE,
]


def _same(a, b):
    da, db = a.to_dict(), b.to_dict()
    for k in da:
        x, y = da[k], db[k]
        if isinstance(x, float) and math.isnan(x):
            assert isinstance(y, float) and math.isnan(y), k
        elif k == "mean_ulp" and math.isfinite(x):
            assert y == pytest.approx(x, rel=1e-12), k  # a sum in a different order
        else:
            assert x == y, k


@pytest.mark.parametrize("target,domain", [("exp2", NARROW), ("log2", (1.0, 1.0005)), ("sin(x)/x", (0.5, 0.5002)),
                                           ("sigmoid", (-0.5001, -0.5))])
def test_one_pass_over_many_programs_gives_each_programs_figures(target, domain):
    progs = [parse(t) for t in PROGRAMS]
    many = verify_many(progs, target, domain)
    assert len(many) == len(progs)
    for p, got in zip(progs, many):
        _same(verify(p, target, domain), got)
        assert got.mode == "exhaustive"
    assert many[0].max_ulp != many[1].max_ulp


def test_one_pass_settles_undecided_inputs_for_every_program():
    # the correctly rounded exp2 on [1, 1.01]: its undecided inputs settle to distance 0 for every copy
    progs = [parse("dtype float32\ninputs x\nv1 = fma x 1.3900561 0.6099402\n"),
             parse("dtype float32\ninputs x\nv1 = mul x 1\n")]
    raw = [p.compile().as_tuple() for p in progs]
    cols, argmax_x, undecided = pysearch._core.exhaustive_ulp_errors(raw, "exp2", 1.0, 1.01)
    assert len(cols["n"]) == 2 and len(argmax_x) == 2
    assert list(cols["n_undecided"]) == [len(undecided)] * 2
    many = verify_many(progs, "exp2", (1.0, 1.01))
    for p, got in zip(progs, many):
        _same(verify(p, "exp2", (1.0, 1.01)), got)


def test_custom_target_and_bad_input():
    import mpmath

    progs = [parse(PROGRAMS[0]), parse(PROGRAMS[1])]
    many = verify_many(progs, mpmath.exp, (1.0, 1.0002))
    for p, got in zip(progs, many):
        _same(verify(p, mpmath.exp, (1.0, 1.0002)), got)
    with pytest.raises(ValueError, match="no programs"):
        verify_many([], "exp2", NARROW)
    with pytest.raises(ValueError, match="no programs"):
        pysearch._core.exhaustive_ulp_errors([], "exp2", 0.0, 1.0)
    with pytest.raises(TypeError, match="single-input float32"):
        verify_many([parse("dtype float64\ninputs x\nv1 = mul x 1\n")], "exp2", NARROW)
    with pytest.raises(ValueError, match="unknown target"):
        verify_many(progs, "nope", NARROW)
    with pytest.raises(pysearch.UnknownTarget):
        pysearch._core.exhaustive_ulp_errors([p.compile().as_tuple() for p in progs], "nope", 0.0, 1.0)


def test_a_round_verifies_its_candidates_in_one_pass_with_the_same_outcome(monkeypatch):
    """The pinned exp2 run (tests/test_search_problem.py) batches its verification rounds and
    still reaches the recorded state; the same run verifying one candidate at a time does too."""
    from test_search_problem import PINNED_STATE_CORE_FIT_SHA256, pinned_config, state_digest

    from pysearch.search import verify as verify_module
    from pysearch.search.loop import Search

    batches: list[int] = []
    one_pass = verify_module.Verification._verify_batch

    def counted(self, progs):
        batches.append(len(progs))
        return one_pass(self, progs)

    monkeypatch.setattr(verify_module.Verification, "_verify_batch", counted)
    s = Search(pinned_config())
    s.run(generations=4)
    assert batches and max(batches) >= 2
    assert state_digest(s) == PINNED_STATE_CORE_FIT_SHA256
    assert all(v > 0 for v in s.verify_seconds)
    monkeypatch.setattr(verify_module.Verification, "_prefetch", lambda self, *a, **k: ({}, {}))
    alone = Search(pinned_config())
    alone.run(generations=4)
    assert state_digest(alone) == state_digest(s)
    assert [e.text for e in alone.front] == [e.text for e in s.front]


@settings(max_examples=300, deadline=None)
@given(v=st.one_of(st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True),
                   st.floats(width=32, allow_nan=True, allow_infinity=True, allow_subnormal=True)))
def test_is_float32_agrees_with_a_numpy_round_trip(v):
    want = math.isnan(v) or math.isinf(v) or (abs(v) <= float(np.finfo(np.float32).max) and float(np.float32(v)) == v)
    assert program_module._is_float32(v) == want


def test_pruned_keeps_the_function_and_drops_dead_code():
    p = parse("dtype float32\ninputs x\nv1 = mul x 3\nv2 = add x 1.5\nreturn v2\n")
    q = p.pruned()
    assert q.to_text() == "dtype float32\ninputs x\nv1 = add x 1.5\n"
    live = parse("dtype float32\ninputs x\nv1 = mul x 3\nv2 = add v1 1.5\n")
    r = live.pruned()
    assert r == live and r is not live and r.instrs is not live.instrs
