"""High-precision minimax constants for a fixed program structure (pysearch.baselines.program_minimax)."""

import mpmath
import numpy as np
import pytest

from pysearch.baselines import max_error, minimax, rational_minimax
from pysearch.baselines.program_minimax import affine_in_constants, constant_degree, polish
from pysearch.baselines.minimax_program.rounding import dtype_neighbour
from pysearch.baselines.program_minimax import SUPPORTED_OPS, MpModel
from pysearch.interpreter import run_mpmath
from pysearch.ops import OPS
from pysearch.program import Instr, Program, Ref, parse

HORNER4 = """dtype float64
inputs x
v1 = fma x 0.0135 0.052
v2 = fma v1 x 0.2414
v3 = fma v2 x 0.693
v4 = fma v3 x 1.00001
"""

# e + g / (x + c): a general rational of type (1, 1), nonlinear in c
RATIONAL11 = """dtype float64
inputs x
v1 = add x -3.5
v2 = div -8.0 v1
v3 = add v2 -1.3
"""


def test_affine_detection():
    """Horner fma chains are affine in their constants; products of constants and divisions are not."""
    assert affine_in_constants(parse(HORNER4))
    assert not affine_in_constants(parse(RATIONAL11))
    squared = parse("dtype float64\nv1 = fma x 0.5 1\nv2 = mul v1 v1\n")
    assert constant_degree(squared) == 2
    assert constant_degree(parse("dtype float64\nv1 = mul x x\n")) == 0


def test_horner_reaches_polynomial_minimax():
    """A degree-4 Horner chain with rough constants gets the degree-4 minimax error, to 1e-7 relative."""
    prog = parse(HORNER4)
    r = polish(prog, "exp2", (0, 1))
    target = minimax("exp2", (0, 1), 4).error
    assert r.affine and r.converged
    assert float(r.exact_error) == pytest.approx(float(target), rel=1e-7)
    assert float(r.stored_error) == pytest.approx(float(target), rel=1e-6)
    assert r.stored_error <= r.start_error
    # the stored program's error is what max_error measures on it
    assert float(max_error(r.program, "exp2", (0, 1))) == pytest.approx(float(r.stored_error), rel=1e-12)


def test_polish_never_worse_than_start():
    """Polishing an already minimax program keeps its error (or lowers it), never raises it."""
    first = polish(parse(HORNER4), "exp2", (0, 1)).program
    again = polish(first, "exp2", (0, 1))
    # stored_error is max_error's (mpmath), start_error the module's double-double search: they
    # agree to far better than 1e-9 relative
    assert again.stored_error <= again.start_error * (1 + 1e-9)
    assert float(again.stored_error) == pytest.approx(float(again.start_error), rel=1e-6)


def test_nonlinear_structure_reaches_rational_minimax():
    """e + g/(x + c), nonlinear in c, reaches the (1, 1) rational minimax error by Newton-Remez exchange."""
    r = polish(parse(RATIONAL11), "exp2", (0, 1))
    target = rational_minimax("exp2", (0, 1), 1, 1).error
    assert not r.affine and r.converged
    assert float(r.exact_error) == pytest.approx(float(target), rel=1e-6)
    assert r.stored_error < r.start_error


def test_unsupported_program_is_returned_unchanged():
    """A program with an op the model does not evaluate (floor) is left as it was."""
    prog = parse("dtype float64\nv1 = floor x\nv2 = fma x 0.7 v1\nv3 = add v2 1\n")
    r = polish(prog, "exp2", (0, 1))
    assert "skipped" in r.info
    assert r.program == prog.pruned()
    assert r.stored_error == r.start_error


def test_bad_arguments():
    """A bad weight or a start of the wrong length is a ValueError naming the problem."""
    with pytest.raises(ValueError, match="weight"):
        polish(parse(HORNER4), "exp2", (0, 1), weight="ulp")
    with pytest.raises(ValueError, match="constants"):
        polish(parse(HORNER4), "exp2", (0, 1), starts=[[1.0, 2.0]])


def test_exact_constants_are_high_precision():
    """The exact constants are kept beyond float64: they are mpf values, not all float64-representable."""
    r = polish(parse(HORNER4), "exp2", (0, 1))
    assert all(isinstance(c, mpmath.mpf) for c in r.exact_constants)
    assert any(mpmath.mpf(float(c)) != c for c in r.exact_constants)


@pytest.mark.parametrize("op", [o for o in OPS if o.dd], ids=lambda o: o.name)
def test_model_follows_the_registry_for_every_dd_op(op):
    """Each registry dd op: the mpmath value is run_mpmath's, the gradient in a constant matches a
    central difference, and the float64 Jacobian matches the mpmath gradient."""
    args = (Ref.const(1.25),) + (Ref.input(0),) * (op.arity - 1)
    p = Program([Instr(op.name, args)], ("x",), "float64")
    model = MpModel(p)
    with mpmath.workdps(50):
        x = mpmath.mpf("0.75")
        v, g = model.value_grad(x, [mpmath.mpf("1.25")])
        assert v == run_mpmath(p, [x])[0]
        h = mpmath.mpf(10) ** -20
        num = (model.value_grad(x, [1.25 + h])[0] - model.value_grad(x, [1.25 - h])[0]) / (2 * h)
        assert abs(g[0] - num) <= mpmath.mpf(10) ** -30 * (1 + abs(num))
        J = model.jacobian(np.array([0.75]), [1.25])
        assert float(J[0, 0]) == pytest.approx(float(g[0]), rel=1e-14)


@pytest.mark.parametrize("op", [o for o in OPS if not o.dd], ids=lambda o: o.name)
def test_model_refuses_other_ops_by_name(op):
    """An op outside the registry's dd ops is a ValueError naming it and the supported ops."""
    p = Program([Instr(op.name, (Ref.input(0),) * op.arity)], ("x",), "float64")
    with pytest.raises(ValueError, match=f"supports {', '.join(SUPPORTED_OPS)}; the program uses {op.name}"):
        MpModel(p)


def test_float32_neighbours_step_as_nextafter():
    """float32 neighbours come from pysearch.ulp and step as numpy's nextafter (one zero, as in mpmath)."""
    for v in (1.0, -1.0, 0.0, 2.0**-149, -(2.0**-149), 3.4e38, 0.1):
        for k in (1, -1, 2, -2, 8, -8):
            x = np.float32(v)
            for _ in range(abs(k)):
                x = np.nextafter(x, np.float32(np.inf if k > 0 else -np.inf))
            assert mpmath.mpf(dtype_neighbour(v, k, "float32")) == mpmath.mpf(float(x))
