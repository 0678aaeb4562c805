"""Constant fitting in the core (``_core.fit_constants``, ``_core.tune_constants``, rust/constfit.rs)
against the engine's own error measurement and the numpy implementation it replaces."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pysearch
from pysearch import _core
from pysearch.program import ProgramError, parse
from pysearch.search.constants import (
    FitSample,
    _tune_float32_python,
    optimize_constants,
    optimize_constants_batch,
    tune_float32,
)

from strategies import float32_values, programs

DOMAIN = (0.0, 0.99999994)  # [0, 1)
FLOAT32_OPS = ("add", "sub", "mul", "div", "fma", "neg", "abs", "sqrt", "min", "max", "rint", "floor")


@pytest.fixture(scope="module")
def sample() -> FitSample:
    x = pysearch.Domain(*DOMAIN).sample(512, seed=3)
    return FitSample.build("exp2", x, max_fit_points=128)


def _engine_max(p, sample: FitSample) -> float:
    m = float(pysearch.ulp_error(p, sample.x, "exp2").max_ulp)
    return math.inf if math.isnan(m) else m


@settings(max_examples=60, deadline=None)
@given(programs(dtype="float32", max_instrs=6, ops=FLOAT32_OPS), st.data())
def test_fit_reports_the_engines_error_and_never_worsens(sample, p, data):
    """For any float32 program (specials in the constants too): the reported max ULP is the
    engine's (JIT) figure for the returned program, bit for bit, and no worse than the program's own."""
    consts = [data.draw(float32_values()) for _ in p.constants()]
    p = p.with_constants(consts) if consts else p
    res = optimize_constants(p, sample, max_evals=30)
    assert res.max_ulp == _engine_max(res.program, sample)
    before = _engine_max(p, sample)
    assert res.max_ulp <= before or math.isnan(before)
    assert all(float(np.float32(c)) == c or not math.isfinite(c) for c in res.program.constants()) or res.program is p


def test_batch_equals_one_by_one(sample):
    """A batch gives each program what a call of its own gives (parallel over programs, deterministic)."""
    progs = [
        parse("v1 = fma x 0.5 0.5\nv2 = fma v1 x 0.5\nv3 = fma v2 x 0.5\n"),
        parse("v1 = fma x 0.1 0.3\nv2 = fma v1 x 1\nv3 = mul v2 v2\n"),
        parse("v1 = div 1 x\nv2 = fma v1 0.3 x\n"),
        parse("v1 = mul x x\n"),  # no constants
        parse("v1 = floor x\nv2 = fma v1 0.5 x\nv3 = fma v2 x 1\n"),  # no derivative: Nelder-Mead only
    ] * 3
    batch = optimize_constants_batch(progs, sample)
    for p, b in zip(progs, batch):
        one = optimize_constants(p, sample)
        assert (b.program.to_text(), b.affine, b.max_ulp) == (one.program.to_text(), one.affine, one.max_ulp)
    assert batch[0].affine and not batch[1].affine
    assert batch[3].program is progs[3] and not batch[3].affine


def test_core_tuning_matches_the_numpy_tuning(sample):
    """The same coordinate descent: the core's tuning lands on the numpy version's (max, mean) and
    reports the engine's error of what it returns."""
    for text in ("v1 = fma x 0.0801 0.2262\nv2 = fma v1 x 0.6958\nv3 = fma v2 x 1.0001\n",
                 "v1 = fma x 0.16 0.69\nv2 = fma v1 x 1.0001\n",
                 "v1 = mul x 0.3\nv2 = fma v1 v1 0.7\nv3 = fma v2 x 1\n"):
        p = parse(text)
        q, m, a = tune_float32(p, sample, rounds=6)
        r, m_ref, a_ref = _tune_float32_python(p, sample, rounds=6)
        assert m == m_ref and a == pytest.approx(a_ref, rel=1e-12)
        assert m == _engine_max(q, sample)


def test_tuning_moves_only_free_constants(sample):
    p = parse("v1 = fma x 0.0801 0.2262\nv2 = fma v1 x 0.6958\nv3 = fma v2 x 1.0001\n")
    q, _, _ = tune_float32(p, sample, rounds=6, free=[1, 3])
    assert [q.constants()[j] for j in (0, 2)] == [float(np.float32(c)) for c in (0.0801, 0.6958)]


def test_bad_arguments_are_named_errors(sample):
    raw = [parse("v1 = fma x 0.5 0.5\n").compile().as_tuple()]
    s = sample
    with pytest.raises(ValueError, match="x_fit, f_fit and scale_fit"):
        _core.fit_constants(raw, s.x_fit[0][:-1], s.f_fit, s.scale_fit, s.x, s.ref, s.rounded)
    with pytest.raises(ValueError, match="x, reference and rounded"):
        _core.tune_constants(raw, s.x[:-1], s.ref, s.rounded)
    with pytest.raises(ValueError, match="x, reference and rounded"):
        _core.tune_constants(raw, s.x[:0], s.ref[:0], s.rounded[:0])
    with pytest.raises(TypeError, match="x_fit"):
        _core.fit_constants(raw, s.x_fit, s.f_fit, s.scale_fit, s.x, s.ref, s.rounded)  # 2-D
    two = [parse("inputs x, y\nv1 = fma x y 0.5\n").compile().as_tuple()]
    with pytest.raises(ValueError, match="input"):
        _core.tune_constants(two, s.x, s.ref, s.rounded)
    f64 = [parse("dtype float64\nv1 = exp x\nv2 = mul v1 0.5\n").compile().as_tuple()]
    with pytest.raises(ProgramError):
        _core.fit_constants(f64, s.x_fit[0], s.f_fit, s.scale_fit, s.x, s.ref, s.rounded)
    assert optimize_constants_batch([], s) == []
