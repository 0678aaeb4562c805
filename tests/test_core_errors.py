"""Each kind of core error (``CoreError`` in rust/errors.rs) arrives in Python as its one named
exception, re-exported from :mod:`pysearch` (the conversion is ``From<CoreError> for PyErr`` in
rust/python.rs). Allocation failures and pool failures are covered in test_hardening_core.py."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import pysearch as ps
from pysearch import _core

EXP2_DEG2 = ps.parse("v1 = fma x 0.3371894 0.6576363\nv2 = fma v1 x 1.0017247\n")
SUB2 = ps.parse("inputs x, y\nv1 = sub x y\n")
NAMED = (ps.ProgramError, ps.DomainError, ps.UnknownTarget, ps.WorkerPoolError)


def test_the_named_exceptions_are_the_core_ones():
    """pysearch re-exports the very classes the extension raises, all ValueError subclasses."""
    assert ps.DomainError is _core.DomainError
    assert ps.UnknownTarget is _core.UnknownTarget
    assert ps.WorkerPoolError is _core.WorkerPoolError
    assert all(issubclass(e, ValueError) for e in NAMED)
    assert {"DomainError", "ProgramError", "UnknownTarget", "WorkerPoolError"} <= set(ps.__all__)


def test_invalid_program_is_a_program_error():
    """CoreError::InvalidProgram -> pysearch.ProgramError, naming the program of the batch."""
    ops, args, consts, n_in, out = EXP2_DEG2.compile().as_tuple()
    good = (ops, args, consts, n_in, out)
    with pytest.raises(ps.ProgramError, match=r"^program 1: instruction 1: unknown opcode 99$"):
        _core.evaluate([good, (np.array([99, 0], np.uint8), args, consts, n_in, out)], np.zeros((1, 4), np.float32))


def test_domain_errors_from_each_core_entry():
    """CoreError::Domain -> pysearch.DomainError: reversed bounds, NaN, keys past +inf."""
    raw = EXP2_DEG2.compile().as_tuple()
    with pytest.raises(ps.DomainError, match="^empty domain: lower bound 2 > upper bound 1$"):
        _core.exhaustive_ulp_error(raw, "exp2", 2.0, 1.0)
    with pytest.raises(ps.DomainError, match="NaN"):
        _core.float32_key_range(0.0, float("nan"))
    kmax = _core.float32_key_range(float("inf"), float("inf"))[0]
    with pytest.raises(ps.DomainError, match=r"^keys 2139095040\.\.2139095041 are outside the float32 keys"):
        _core.float32_from_keys(kmax, 2)


def test_unknown_target_lists_the_built_in_names():
    """CoreError::UnknownTarget -> pysearch.UnknownTarget, from reference and exhaustive_ulp_error."""
    with pytest.raises(ps.UnknownTarget, match='^unknown target "nope"; built-in targets: exp, '):
        _core.reference("nope", np.zeros(2, np.float32))
    with pytest.raises(ps.UnknownTarget, match="built-in targets: "):
        _core.exhaustive_ulp_error(EXP2_DEG2.compile().as_tuple(), "nope", 0.0, 1.0)


def test_mismatched_arguments_are_plain_value_errors():
    """CoreError::Mismatch -> ValueError that is none of the named classes."""
    raw = EXP2_DEG2.compile().as_tuple()
    x = np.linspace(0, 1, 8, dtype=np.float32)
    cases = [
        (lambda: _core.evaluate([raw], np.zeros((2, 4), np.float32)), "program 0 takes 1 input"),
        (lambda: _core.sample_ulp_errors([SUB2.compile().as_tuple()], x, x.astype(np.float64), x),
         "program 0 takes 2 input"),
        (lambda: _core.sample_ulp_errors([raw], x, x[:3].astype(np.float64), x), "differ in length"),
        (lambda: _core.sample_ulp_errors([raw], x[:0], x[:0].astype(np.float64), x[:0]), "no points"),
        (lambda: _core.exhaustive_ulp_error(SUB2.compile().as_tuple(), "exp2", 0.0, 1.0), "takes 2 input"),
    ]
    for call, message in cases:
        with pytest.raises(ValueError, match=message) as e:
            call()
        assert type(e.value) is ValueError, type(e.value)


def test_every_variant_is_converted_and_documented():
    """Each CoreError variant has an arm in python.rs's one From and a row in docs/architecture.md."""
    root = Path(__file__).resolve().parent.parent
    enum = re.search(r"pub enum CoreError \{(.*?)\n\}", (root / "rust" / "errors.rs").read_text(), re.S)
    variants = re.findall(r"^\s{4}([A-Z]\w*)\(", enum.group(1), re.M)
    assert len(variants) >= 7, variants
    binding = (root / "rust" / "python.rs").read_text()
    conversion = re.search(r"impl From<CoreError> for PyErr \{(.*?)\n\}", binding, re.S).group(1)
    doc = (root / "docs" / "architecture.md").read_text()
    for v in variants:
        assert f"CoreError::{v}(" in conversion, v
        assert f"| `{v}` |" in doc, v
    assert binding.count("impl From<CoreError> for PyErr") == 1
