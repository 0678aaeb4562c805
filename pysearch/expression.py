"""Target expressions in x: a safe whitelist parsed with :mod:`ast`, never ``eval``.

``parse_expression('sin(x)/x')`` checks the text against the grammar below and returns an
:class:`Expression` with two evaluators of the same tree:

* :meth:`Expression.mp` -- mpmath at the caller's working precision (the exact truth);
* :meth:`Expression.f64` -- vectorised float64 (numpy, scipy.special) over float32 points,
  returning each value with a bound on its absolute error.

Grammar: numbers (decimal or hex integers, decimal floats), the variable ``x``, the constants
``pi`` and ``e``, ``+ - * / **``, unary ``-`` and ``+``, and calls of one argument to the
functions in :data:`FUNCTIONS`. Anything else -- attribute access, other names, keyword
arguments, lambdas, comprehensions, subscripts, strings, comparisons -- is an
:class:`ExpressionError` naming the problem. A constant exponent above
:data:`MAX_CONSTANT_EXPONENT` in magnitude is refused (``2**2**100`` is a typo, not a target).

The error bound of :meth:`Expression.f64` is a first-order running error analysis: each exact
IEEE operation adds half an ulp of its result, each library function adds
``LIBM_ULPS`` float64 ulps of its result plus the argument's error times the function's
derivative, and products and quotients propagate relative errors. The caller doubles the bound
and only trusts a point whose bound is tiny relative to its value; everything else is
recomputed with mpmath (see :func:`pysearch.targets.reference`).
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable

import mpmath
import numpy as np
from scipy import special

#: Longest expression text accepted.
MAX_LENGTH = 1000
#: Largest |p| of a constant exponent in ``a ** p``.
MAX_CONSTANT_EXPONENT = 1024
#: Assumed worst error of a float64 library function (numpy, scipy.special), in float64 ulps of
#: its result; checked against mpmath in tests/test_targets_custom.py.
LIBM_ULPS = 16.0
#: scipy's erfc, gamma and log-gamma (measured up to ~15 ulps): ulps of the result, plus an
#: absolute error for lgamma near its zeros.
SPECIAL_ULPS = 64.0
LGAMMA_ABS = 2.0**-50
#: A function argument whose relative error bound exceeds this makes the value untrusted
#: (the first-order bound needs the argument's uncertainty far below any singularity's distance).
ARG_REL_LIMIT = 2.0**-30

#: mpmath values of magnitude 2^MAX_MAG_BITS or more become +-inf: beyond float32 by far, and
#: feeding them to exp or sin would need that many bits of working precision.
MAX_MAG_BITS = 16384


class ExpressionError(ValueError):
    """A target expression that is not in the whitelist grammar, or cannot be parsed."""


def _ulp(v: np.ndarray) -> np.ndarray:
    return np.spacing(np.abs(v))


def _digamma(a):
    return special.psi(a)


def _real_cbrt(v):
    return mpmath.sign(v) * mpmath.cbrt(abs(v))


def _lgamma_mp(v):
    return mpmath.re(mpmath.loggamma(v))


@dataclass(frozen=True)
class Function:
    """One whitelisted function: its mpmath and float64 forms and its derivative in float64."""

    mp: Callable
    f64: Callable[[np.ndarray], np.ndarray]
    #: f'(a) from the argument a and the value v = f(a), in float64
    deriv: Callable[[np.ndarray, np.ndarray], np.ndarray]
    ulps: float = LIBM_ULPS
    abs_err: float = 0.0


_LN2, _LN10 = math.log(2), math.log(10)
_TWO_OVER_SQRTPI = 2 / math.sqrt(math.pi)

FUNCTIONS: dict[str, Function] = {
    "exp": Function(mpmath.exp, np.exp, lambda a, v: v),
    "exp2": Function(lambda v: mpmath.power(2, v), np.exp2, lambda a, v: v * _LN2),
    "expm1": Function(mpmath.expm1, np.expm1, lambda a, v: v + 1),
    "log": Function(mpmath.log, np.log, lambda a, v: 1 / a),
    "log2": Function(lambda v: mpmath.log(v, 2), np.log2, lambda a, v: 1 / (a * _LN2)),
    "log10": Function(mpmath.log10, np.log10, lambda a, v: 1 / (a * _LN10)),
    "log1p": Function(mpmath.log1p, np.log1p, lambda a, v: 1 / (1 + a)),
    "sqrt": Function(mpmath.sqrt, np.sqrt, lambda a, v: 0.5 / v, ulps=0.5),
    "cbrt": Function(_real_cbrt, np.cbrt, lambda a, v: 1 / (3 * v * v)),
    "sin": Function(mpmath.sin, np.sin, lambda a, v: np.cos(a)),
    "cos": Function(mpmath.cos, np.cos, lambda a, v: np.sin(a)),
    "tan": Function(mpmath.tan, np.tan, lambda a, v: 1 + v * v),
    "asin": Function(mpmath.asin, np.arcsin, lambda a, v: 1 / np.sqrt(1 - a * a)),
    "acos": Function(mpmath.acos, np.arccos, lambda a, v: 1 / np.sqrt(1 - a * a)),
    "atan": Function(mpmath.atan, np.arctan, lambda a, v: 1 / (1 + a * a)),
    "sinh": Function(mpmath.sinh, np.sinh, lambda a, v: np.cosh(a)),
    "cosh": Function(mpmath.cosh, np.cosh, lambda a, v: np.sinh(a)),
    "tanh": Function(mpmath.tanh, np.tanh, lambda a, v: 1 - v * v),
    "asinh": Function(mpmath.asinh, np.arcsinh, lambda a, v: 1 / np.sqrt(a * a + 1)),
    "acosh": Function(mpmath.acosh, np.arccosh, lambda a, v: 1 / np.sqrt(a * a - 1)),
    "atanh": Function(mpmath.atanh, np.arctanh, lambda a, v: 1 / (1 - a * a)),
    "erf": Function(mpmath.erf, special.erf, lambda a, v: _TWO_OVER_SQRTPI * np.exp(-a * a)),
    "erfc": Function(mpmath.erfc, special.erfc, lambda a, v: _TWO_OVER_SQRTPI * np.exp(-a * a),
                     ulps=SPECIAL_ULPS),
    "gamma": Function(mpmath.gamma, special.gamma, lambda a, v: v * _digamma(a), ulps=SPECIAL_ULPS),
    "lgamma": Function(_lgamma_mp, special.gammaln, lambda a, v: _digamma(a), ulps=SPECIAL_ULPS,
                       abs_err=LGAMMA_ABS),
    "abs": Function(mpmath.fabs, np.abs, lambda a, v: np.ones_like(a), ulps=0.0),
}

#: Named constants: (mpmath value at the current precision, float64 value).
CONSTANTS: dict[str, tuple[Callable[[], mpmath.mpf], float]] = {
    "pi": (lambda: +mpmath.pi, math.pi),
    "e": (lambda: +mpmath.e, math.e),
}

_BINOPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}


def _grammar_hint() -> str:
    return (f"the variable is x; functions: {', '.join(FUNCTIONS)}; constants: {', '.join(CONSTANTS)}; "
            "operators: + - * / **")


# A checked tree is made of tuples:
#   ("x",) | ("num", float64 value, mpmath decimal text, exact) | ("const", name)
#   ("neg", a) | ("bin", op, a, b) | ("call", name, a)
Node = tuple


def _check(text: str, node: ast.AST) -> Node:
    """The checked tree of one ast node, or ExpressionError."""
    if isinstance(node, ast.Expression):
        return _check(text, node.body)
    if isinstance(node, ast.Constant):
        v = node.value
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ExpressionError(f"{type(v).__name__} constant {ast.get_source_segment(text, node)!r} "
                                  "is not a number")
        try:
            f = float(v)
        except OverflowError:
            f = math.inf
        if not math.isfinite(f):
            raise ExpressionError(f"number {ast.get_source_segment(text, node)!r} is too large")
        # mpmath reads the decimal as written; float64 holds its rounding (exact or half an ulp off)
        decimal = str(v) if isinstance(v, int) else (ast.get_source_segment(text, node) or repr(v)).replace("_", "")
        exact = Fraction(decimal) == Fraction(f)
        return ("num", f, decimal, exact)
    if isinstance(node, ast.Name):
        if node.id == "x":
            return ("x",)
        if node.id in CONSTANTS:
            return ("const", node.id)
        if node.id in FUNCTIONS:
            raise ExpressionError(f"function {node.id!r} must be called, e.g. {node.id}(x)")
        raise ExpressionError(f"unknown name {node.id!r}; {_grammar_hint()}")
    if isinstance(node, ast.UnaryOp):
        if isinstance(node.op, ast.USub):
            return ("neg", _check(text, node.operand))
        if isinstance(node.op, ast.UAdd):
            return _check(text, node.operand)
        raise ExpressionError(f"operator {type(node.op).__name__} is not allowed; {_grammar_hint()}")
    if isinstance(node, ast.BinOp):
        op = _BINOPS.get(type(node.op))
        if op is None:
            raise ExpressionError(f"operator {type(node.op).__name__} is not allowed; {_grammar_hint()}")
        a, b = _check(text, node.left), _check(text, node.right)
        if op == "**" and not _has_x(b):
            with mpmath.workprec(64):
                try:
                    p = _mp_eval(b, mpmath.mpf(0))
                except (ZeroDivisionError, ValueError):
                    p = mpmath.mpf("nan")
                if isinstance(p, mpmath.mpc) or not mpmath.isfinite(p) or abs(p) > MAX_CONSTANT_EXPONENT:
                    raise ExpressionError(
                        f"exponent {ast.get_source_segment(text, node.right)!r} is not a number of "
                        f"magnitude at most {MAX_CONSTANT_EXPONENT}")
        return ("bin", op, a, b)
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name):
            raise ExpressionError(f"only named functions may be called, not "
                                  f"{ast.get_source_segment(text, node.func)!r}; {_grammar_hint()}")
        name = node.func.id
        if name not in FUNCTIONS:
            raise ExpressionError(f"unknown function {name!r}; {_grammar_hint()}")
        if node.keywords or len(node.args) != 1 or isinstance(node.args[0], ast.Starred):
            raise ExpressionError(f"{name} takes exactly one argument, e.g. {name}(x)")
        return ("call", name, _check(text, node.args[0]))
    what = {ast.Attribute: "attribute access", ast.Lambda: "lambda", ast.Subscript: "subscripts",
            ast.ListComp: "comprehensions", ast.GeneratorExp: "comprehensions", ast.SetComp: "comprehensions",
            ast.DictComp: "comprehensions", ast.Compare: "comparisons", ast.BoolOp: "and/or",
            ast.IfExp: "if-else"}.get(type(node), type(node).__name__)
    raise ExpressionError(f"{what} is not allowed in a target expression; {_grammar_hint()}")


def _has_x(n: Node) -> bool:
    return n[0] == "x" or any(_has_x(c) for c in n[1:] if isinstance(c, tuple))


class NotRealError(ValueError):
    """A subexpression has no real value (log of a negative, asin(2), ...)."""


def _mp_eval(n: Node, x):
    v = _mp_node(n, x)
    if isinstance(v, mpmath.mpc):
        if v.imag != 0:
            raise NotRealError("the value is not real")  # even if later operations would make it real
        v = v.real
    if isinstance(v, mpmath.mpf) and mpmath.isfinite(v) and v != 0 and mpmath.mag(v) > MAX_MAG_BITS:
        return mpmath.mpf("inf") if v > 0 else mpmath.mpf("-inf")
    return v


def _mp_node(n: Node, x):
    kind = n[0]
    if kind == "x":
        return x
    if kind == "num":
        return mpmath.mpf(n[2])
    if kind == "const":
        return CONSTANTS[n[1]][0]()
    if kind == "neg":
        return -_mp_eval(n[1], x)
    if kind == "call":
        return FUNCTIONS[n[1]].mp(_mp_eval(n[2], x))
    a, b = _mp_eval(n[2], x), _mp_eval(n[3], x)
    op = n[1]
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        return a / b
    return mpmath.power(a, b)


def _f64_eval(n: Node, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(values, absolute error bounds) in float64; called under np.errstate(all='ignore')."""
    kind = n[0]
    if kind == "x":
        return x, np.zeros_like(x)
    if kind in ("num", "const"):
        v = n[1] if kind == "num" else CONSTANTS[n[1]][1]
        exact = kind == "num" and n[3]
        err = 0.0 if exact else math.ulp(v) / 2
        return np.full_like(x, v), np.full_like(x, err)
    if kind == "neg":
        v, e = _f64_eval(n[1], x)
        return -v, e
    if kind == "call":
        f = FUNCTIONS[n[1]]
        a, ea = _f64_eval(n[2], x)
        v = np.asarray(f.f64(a), dtype=np.float64)
        d = np.abs(f.deriv(a, v))
        prop = np.where(ea == 0, 0.0, d * ea)
        # an argument known only roughly leaves the first-order bound meaningless
        prop = np.where(ea > ARG_REL_LIMIT * np.abs(a), np.inf, prop)
        return v, prop + f.ulps * _ulp(v) + f.abs_err
    op = n[1]
    a, ea = _f64_eval(n[2], x)
    b, eb = _f64_eval(n[3], x)
    if op == "+":
        v = a + b
        return v, ea + eb + _ulp(v) / 2
    if op == "-":
        v = a - b
        return v, ea + eb + _ulp(v) / 2
    if op == "*":
        v = a * b
        return v, np.abs(b) * ea + np.abs(a) * eb + ea * eb + _ulp(v) / 2
    if op == "/":
        v = a / b
        e = (ea + np.abs(v) * eb) / np.abs(b)
        e = np.where(eb > ARG_REL_LIMIT * np.abs(b), np.inf, np.where((ea == 0) & (eb == 0), 0.0, e))
        return v, e + _ulp(v) / 2
    v = np.power(a, b)
    rel = np.where(ea == 0, 0.0, np.abs(b) * ea / np.abs(a)) + np.where(eb == 0, 0.0, np.abs(np.log(np.abs(a))) * eb)
    e = np.abs(v) * rel
    e = np.where((ea > ARG_REL_LIMIT * np.abs(a)) | (eb > ARG_REL_LIMIT * np.abs(b)), np.inf, e)
    return v, e + LIBM_ULPS * _ulp(v)


@dataclass(frozen=True, eq=False)
class Expression:
    """A checked target expression in x; ``text`` is its canonical form (``ast.unparse``)."""

    text: str
    tree: Node

    def mp(self, x: mpmath.mpf) -> mpmath.mpf:
        """The value at ``x`` at mpmath's current working precision.

        Raises NotRealError where a subexpression is not real, ZeroDivisionError on division
        by zero, ValueError at a pole (mpmath's own errors).
        """
        return _mp_eval(self.tree, x)

    def f64(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(float64 values, bounds on their absolute error) at float32 points ``x``.

        The bound is first order (see the module docstring); NaN or inf values or bounds mean
        "not decided in float64".
        """
        xs = np.asarray(x, dtype=np.float32).astype(np.float64)
        with np.errstate(all="ignore"):
            v, e = _f64_eval(self.tree, xs)
            v = np.broadcast_to(v, xs.shape).astype(np.float64)
            e = np.broadcast_to(e, xs.shape).astype(np.float64)
            e[np.isnan(e)] = np.inf
        return v, e


def parse_expression(text: str) -> Expression:
    """Check ``text`` against the target grammar; ExpressionError names what is wrong."""
    if not isinstance(text, str):
        raise ExpressionError(f"a target expression is a string, not {type(text).__name__}")
    src = text.strip()
    if not src:
        raise ExpressionError("empty target expression")
    if len(src) > MAX_LENGTH:
        raise ExpressionError(f"target expression is {len(src)} characters long; the limit is {MAX_LENGTH}")
    try:
        tree = ast.parse(src, mode="eval")
    except SyntaxError as e:
        raise ExpressionError(f"syntax error in target expression {src!r}: {e.msg}") from None
    except (RecursionError, MemoryError):
        raise ExpressionError(f"target expression {src[:40]!r}... is nested too deeply") from None
    except ValueError as e:  # e.g. a null byte, on Pythons that do not call it a SyntaxError
        raise ExpressionError(f"cannot parse target expression {src[:40]!r}: {e}") from None
    try:
        checked = _check(src, tree)
        canonical = ast.unparse(tree)
    except RecursionError:
        raise ExpressionError(f"target expression {src[:40]!r}... is nested too deeply") from None
    return Expression(canonical, checked)


__all__ = ["Expression", "ExpressionError", "NotRealError", "parse_expression", "FUNCTIONS", "CONSTANTS"]
