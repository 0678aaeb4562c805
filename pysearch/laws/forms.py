"""Known scaling-law forms: parameter names, bounds, vectorised predictions and starting grids.

Every form predicts ``y`` from a stack of inputs ``X`` (shape ``(k, n)``, one row per input column,
in the form's role order) and a parameter array ``theta`` of shape ``(..., P)`` in the order of
:attr:`LawForm.params`; leading axes of ``theta`` broadcast, so one call evaluates a whole grid of
starting points or the perturbed copies a finite-difference Jacobian needs.

Forms (``make_form(name, inputs)``):

- ``chinchilla`` (inputs N, D): ``E + A/N^alpha + B/D^beta`` (Hoffmann et al. 2022).
- ``kaplan`` (N, or N and D): ``(N_c/N)^alpha_N``; ``[(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D``
  (Kaplan et al. 2020).
- ``power`` (one or more inputs): ``c + sum_i a_i x_i^(-b_i)``.
- ``bnsl`` (one input): ``a + b x^(-c0) prod_i (1 + (x/d_i)^(1/f_i))^(-c_i f_i)``, one break by
  default (Caballero et al., broken neural scaling laws).
- ``passuntil`` (N): ``PU = exp(-c N^(-alpha))``, so ``log(-log PU)`` is linear in ``log N``
  (Hu et al. 2023).
- ``muennighoff`` (N, D, U): Chinchilla over the effective parameters N' and data D' of
  data-constrained training, D the tokens trained on and U the unique tokens (Muennighoff et al.
  2023; see :class:`Muennighoff`).

- ``rectified`` (D, fine-tuning examples): ``B/(D_l + D^beta) + E`` (Lin et al. 2024, the
  rectified scaling law for fine-tuning; D_l is the pre-learned data size).
- ``lr_bsz`` (lr, bsz, D, N): Chinchilla in N and D plus penalties quadratic in log learning rate
  and log batch size around optima that move as powers of N and D (the optimal learning rate and
  batch size scale as powers of model and data size: DeepSeek LLM 2024, Li et al. 2025).
- ``moe`` (N, E: dense parameters, experts): ``log L = d + a log N + b log E + c log N log E``
  (Clark et al. 2022, unified scaling laws for routed language models; ``c`` is the N x E
  interaction: experts help less as models grow).
- ``moe_offset`` (N, E): the same with an irreducible loss: ``L0 + exp(d + a log N + b log E +
  c log N log E)``.

Positive parameters are optimised as their logarithm (see :mod:`pysearch.laws.fitting`).

Adding a form
-------------
Most forms need no class: one :class:`FormSpec` entry, registered with :func:`register`, gives
a form that ``pysearch fit --form NAME`` and :func:`make_form` know (the entries at the end of
this module are examples). For instance::

    from pysearch.laws.forms import FormSpec, Param, register
    register(FormSpec(
        name="saturating", roles=("N",), formula="E + A / (1 + (N / N0)**alpha)",
        params=(Param("E", positive=True), Param("A", positive=True), Param("N0", positive=True),
                Param("alpha", 0.0, 5.0)),
        starts={"N0": lambda X: np.exp(np.mean(np.log(X[0]))) * 10.0 ** np.arange(-3, 4),
                "alpha": (0.1, 0.3, 1.0)},
        linear=("E", "A")))

``formula`` is sympy syntax (``**``, ``exp``, ``log``, ``sqrt``) over the ``roles`` (the input
columns, in ``--x`` order) and the parameter names. ``starts`` gives start values per nonlinear
parameter (a sequence, or a function of the input stack ``X``); the ``linear`` parameters, which
must enter the formula linearly, are solved by weighted least squares at every start.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np

#: Spaces a fit can measure residuals in: y itself, log y, or log(-log y) (PassUntil).
SPACES = ("linear", "log", "loglog")

#: Names accepted by :func:`make_form` (the class-based forms; :func:`register` adds declared ones).
FORM_NAMES: tuple[str, ...] = ("chinchilla", "kaplan", "power", "bnsl", "passuntil", "muennighoff")

_TINY = 1e-300


@dataclass(frozen=True)
class Param:
    """One constant of a form: its name, natural-space bounds, and whether it is kept positive."""

    name: str
    lo: float = -math.inf
    hi: float = math.inf
    positive: bool = False

    def __post_init__(self) -> None:
        if self.positive and not self.lo > 0:
            object.__setattr__(self, "lo", 1e-30)
        if self.positive and not math.isfinite(self.hi):
            object.__setattr__(self, "hi", 1e60)


def _col(theta: np.ndarray, i: int) -> np.ndarray:
    """Parameter ``i`` with a trailing axis, so it broadcasts against data of shape ``(n,)``."""
    return theta[..., i, None]


def to_space(v: np.ndarray, space: str) -> np.ndarray:
    """Map values into a residual space; values outside its domain map to large finite numbers."""
    v = np.asarray(v, dtype=np.float64)
    with np.errstate(all="ignore"):
        if space == "linear":
            out = v
        elif space == "log":
            out = np.log(np.maximum(v, _TINY))
        elif space == "loglog":
            out = np.log(np.maximum(-np.log(np.clip(v, _TINY, 1.0)), _TINY))
        else:
            raise ValueError(f"unknown residual space {space!r}; expected one of {SPACES}")
    return finite_clip(out, 1e300)


def finite_clip(v: np.ndarray, cap: float) -> np.ndarray:
    """``v`` clipped to [-cap, cap], NaN mapped to +cap (cheaper than ``nan_to_num`` + ``clip``)."""
    return np.clip(np.where(np.isnan(v), cap, v), -cap, cap)


def _fmt(v: float) -> str:
    s = f"{v:.6g}"
    return f"({s})" if s.startswith("-") else s


class LawForm:
    """A parametric law ``y = f(x; theta)``; subclasses define the parameters and the formula."""

    name: str = ""
    default_space: str = "log"
    template: str = ""  # params as {name}, inputs as {x0}, {x1}, ...
    roles: tuple[str, ...] = ()

    def __init__(self, inputs: Sequence[str], params: Sequence[Param]):
        self.inputs = tuple(inputs)
        self.params = tuple(params)

    # ------------------------------------------------------------ facts
    @property
    def param_names(self) -> list[str]:
        return [p.name for p in self.params]

    @property
    def n_params(self) -> int:
        return len(self.params)

    def expression(self, values: Mapping[str, float] | None = None) -> str:
        """The formula with input column names, and parameter names or (given ``values``) numbers."""
        subs = {f"x{i}": name for i, name in enumerate(self.inputs)}
        for p in self.params:
            subs[p.name] = p.name if values is None else _fmt(float(values[p.name]))
        return self.template.format(**subs)

    # ------------------------------------------------------------ model
    def predict(self, theta: np.ndarray, X: np.ndarray) -> np.ndarray:
        """``y`` for each parameter vector in ``theta`` (shape ``(..., P)``) -> ``(..., n)``."""
        raise NotImplementedError

    def transformed(self, theta: np.ndarray, X: np.ndarray, space: str) -> np.ndarray:
        """Predictions mapped into ``space`` (overridden where a direct formula is more accurate)."""
        with np.errstate(all="ignore"):
            return to_space(self.predict(theta, X), space)

    def init_grid(self, X: np.ndarray, y: np.ndarray, space: str) -> np.ndarray:
        """Starting points, shape ``(G, P)`` in natural units (data-adaptive where useful)."""
        raise NotImplementedError

    def check_domain(self, X: np.ndarray, y: np.ndarray, space: str) -> None:
        """Raise ``ValueError`` naming the input that a log or power of this form cannot take."""
        for name, col in zip(self.inputs, X):
            if np.any(col <= 0):
                bad = float(col[col <= 0][0])
                raise ValueError(
                    f"column {name!r} has a non-positive value ({bad:g}); form {self.name!r} takes "
                    "powers and logs of its inputs, which need values > 0"
                )
        _check_y_domain(y, space)


def _check_y_domain(y: np.ndarray, space: str) -> None:
    if space == "log" and np.any(y <= 0):
        raise ValueError(
            f"y has a non-positive value ({float(y[y <= 0][0]):g}) but the fit takes log y; "
            "use --transform none or fix the data"
        )
    if space == "loglog" and np.any((y <= 0) | (y >= 1)):
        bad = float(y[(y <= 0) | (y >= 1)][0])
        raise ValueError(
            f"y has a value outside (0, 1) ({bad:g}) but the fit takes log(-log y), which needs "
            "pass rates strictly between 0 and 1"
        )


def _weights(y: np.ndarray, space: str) -> np.ndarray:
    """Row weights that make linear least squares approximate residuals in ``space``."""
    if space == "linear":
        return np.ones_like(y)
    return 1.0 / np.maximum(np.abs(y), _TINY)


def solve_linear(basis: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted least-squares coefficients for each grid point: basis ``(G, m, n)`` -> ``(G, m)``.

    Columns are scaled to unit norm first so that terms of very different size (``1`` next to
    ``N^-alpha`` with ``N ~ 1e9``) stay well conditioned.
    """
    A = np.transpose(basis, (0, 2, 1)) * w[None, :, None]  # (G, n, m)
    with np.errstate(all="ignore"):
        scale = np.linalg.norm(A, axis=1, keepdims=True)  # (G, 1, m)
        scale = np.where((scale > 0) & np.isfinite(scale), scale, 1.0)
        A = np.nan_to_num(A / scale)
        coef = np.linalg.pinv(A) @ (y * w)[:, None]  # (G, m, 1)
        return coef[..., 0] / scale[:, 0, :]


def _product_grid(axes: Sequence[Sequence[float]], limit: int = 6000) -> np.ndarray:
    """Cartesian product of value lists, thinned deterministically to at most ``limit`` rows."""
    grid = np.array(list(itertools.product(*axes)), dtype=np.float64)
    if len(grid) > limit:
        idx = np.random.default_rng(12345).choice(len(grid), size=limit, replace=False)
        grid = grid[np.sort(idx)]
    return grid


def _positive(v: np.ndarray, floor: float = 1e-12) -> np.ndarray:
    """Clip solved coefficients into a positive parameter's domain (a worse start, never invalid)."""
    return np.where(np.isfinite(v) & (v > floor), v, floor)


# ---------------------------------------------------------------- Chinchilla
class Chinchilla(LawForm):
    """``L = E + A/N^alpha + B/D^beta`` with E, A, B > 0 (optimised in log), alpha, beta in [0, 5]."""

    name = "chinchilla"
    template = "{E} + {A} / {x0}^{alpha} + {B} / {x1}^{beta}"
    roles = ("N", "D")

    def __init__(self, inputs: Sequence[str]):
        super().__init__(
            inputs,
            [
                Param("E", positive=True),
                Param("A", positive=True),
                Param("B", positive=True),
                Param("alpha", 0.0, 5.0),
                Param("beta", 0.0, 5.0),
            ],
        )

    def predict(self, theta, X):
        E, A, B, al, be = (_col(theta, i) for i in range(5))
        with np.errstate(all="ignore"):
            return E + A * X[0] ** (-al) + B * X[1] ** (-be)

    def init_grid(self, X, y, space):
        # The grid of the Chinchilla replication (Besiroglu et al. 2024), in log A, log B, log E ...
        e, a, b = np.arange(-1.0, 2.0, 0.5), np.arange(0.0, 30.0, 5.0), np.arange(0.0, 30.0, 5.0)
        al = be = np.arange(0.0, 2.5, 0.5)
        g = _product_grid([e, a, b, al, be])
        replication = np.column_stack([np.exp(g[:, 0]), np.exp(g[:, 1]), np.exp(g[:, 2]), g[:, 3], g[:, 4]])
        # ... plus exponent pairs whose E, A, B come from weighted linear least squares.
        exps = _product_grid([[0.05, 0.1, 0.2, 0.3, 0.4, 0.6, 0.8, 1.2]] * 2)
        ones = np.ones((len(exps), X.shape[1]))
        basis = np.stack([ones, X[0] ** -exps[:, :1], X[1] ** -exps[:, 1:]], axis=1)
        coef = _positive(solve_linear(basis, y, _weights(y, space)))
        projected = np.column_stack([coef, exps])
        return np.vstack([replication, projected])


# ---------------------------------------------------------------- Muennighoff
class Muennighoff(LawForm):
    """Data-constrained scaling (Muennighoff et al. 2023): Chinchilla over effective N' and D'.

    ``L = E + A/N'^alpha + B/D'^beta`` with ``D' = U + U R_D (1 - exp(-(D/U - 1)/R_D))`` (repeated
    epochs are worth exponentially less) and ``N' = U_N + U_N R_N (1 - exp(-(N/U_N - 1)/R_N))``,
    ``U_N = min(N, U / tokens_per_param)`` (parameters beyond what the unique data supports are
    worth exponentially less). The paper takes U_N from its compute-optimal allocation; here it is
    ``U / 20`` (Chinchilla's ~20 tokens per parameter), a fixed setting of the form. With
    ``excess_params=False`` the N' term is dropped (N' = N; no R_N).
    """

    name = "muennighoff"
    template = (
        "{E} + {A} / N'^{alpha} + {B} / D'^{beta},  "
        "D' = {x2} + {x2} * {R_D} * (1 - exp(-({x1} / {x2} - 1) / {R_D})),  "
        "N' = U_N + U_N * {R_N} * (1 - exp(-({x0} / U_N - 1) / {R_N})),  U_N = min({x0}, {x2} / {ratio})"
    )
    roles = ("N", "D", "U")

    def __init__(self, inputs: Sequence[str], tokens_per_param: float = 20.0, excess_params: bool = True):
        if not tokens_per_param > 0:
            raise ValueError(f"tokens_per_param must be > 0, got {tokens_per_param}")
        self.tokens_per_param = float(tokens_per_param)
        self.excess_params = bool(excess_params)
        params = [
            Param("E", positive=True),
            Param("A", positive=True),
            Param("B", positive=True),
            Param("alpha", 0.0, 5.0),
            Param("beta", 0.0, 5.0),
            Param("R_D", 1e-3, 1e6, positive=True),
        ]
        if self.excess_params:
            params.append(Param("R_N", 1e-3, 1e6, positive=True))
            self.template = self.template.replace("{ratio}", f"{self.tokens_per_param:g}")
        else:
            self.template = self.template.split(",  N' =")[0].replace("N'", "{x0}")
        super().__init__(inputs, params)

    @staticmethod
    def effective(total: np.ndarray, unique: np.ndarray, R: np.ndarray) -> np.ndarray:
        """``unique + unique R (1 - exp(-(total/unique - 1)/R))``: repeats decay in value."""
        with np.errstate(all="ignore"):
            return unique + unique * R * (-np.expm1(-(total / unique - 1.0) / R))

    def effective_inputs(self, theta: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N', D') for each parameter vector."""
        N, D, U = X
        Dp = self.effective(D, U, _col(theta, 5))
        if not self.excess_params:
            return np.broadcast_to(N, Dp.shape), Dp
        UN = np.minimum(N, U / self.tokens_per_param)
        return self.effective(N, UN, _col(theta, 6)), Dp

    def predict(self, theta, X):
        E, A, B, al, be = (_col(theta, i) for i in range(5))
        Np, Dp = self.effective_inputs(theta, X)
        with np.errstate(all="ignore"):
            return E + A * np.maximum(Np, _TINY) ** (-al) + B * np.maximum(Dp, _TINY) ** (-be)

    def init_grid(self, X, y, space):
        exps = [0.1, 0.2, 0.3, 0.4, 0.6]
        rs = [1.0, 3.0, 10.0, 30.0, 100.0]
        nl = _product_grid([exps, exps] + [rs] * (self.n_params - 5))
        theta = np.zeros((len(nl), self.n_params))
        theta[:, 3:] = nl
        Np, Dp = self.effective_inputs(theta, X)
        with np.errstate(all="ignore"):
            basis = np.stack([np.ones_like(Np), Np ** -nl[:, :1], Dp ** -nl[:, 1:2]], axis=1)
        theta[:, :3] = _positive(solve_linear(basis, y, _weights(y, space)))
        return theta

    def check_domain(self, X, y, space):
        super().check_domain(X, y, space)
        if np.any(X[1] < X[2] * (1 - 1e-9)):
            i = int(np.argmax(X[1] < X[2] * (1 - 1e-9)))
            raise ValueError(
                f"row {i + 1}: tokens trained on ({self.inputs[1]} = {X[1][i]:g}) are fewer than the "
                f"unique tokens ({self.inputs[2]} = {X[2][i]:g}); muennighoff takes --x N,D,U with D >= U"
            )


# ---------------------------------------------------------------- Kaplan
class Kaplan(LawForm):
    """``(N_c/N)^alpha_N`` (one input) or ``[(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D`` (two)."""

    name = "kaplan"

    def __init__(self, inputs: Sequence[str]):
        params = [Param("N_c", positive=True), Param("alpha_N", 1e-4, 10.0, positive=True)]
        if len(inputs) == 2:
            params = [params[0], Param("D_c", positive=True), params[1], Param("alpha_D", 1e-4, 10.0, positive=True)]
            self.template = "(({N_c} / {x0})^({alpha_N} / {alpha_D}) + {D_c} / {x1})^{alpha_D}"
            self.roles = ("N", "D")
        else:
            self.template = "({N_c} / {x0})^{alpha_N}"
            self.roles = ("N",)
        super().__init__(inputs, params)

    def log_predict(self, theta, X):
        with np.errstate(all="ignore"):
            if len(self.inputs) == 1:
                Nc, aN = _col(theta, 0), _col(theta, 1)
                return aN * (np.log(Nc) - np.log(X[0]))
            Nc, Dc, aN, aD = (_col(theta, i) for i in range(4))
            t1 = (aN / aD) * (np.log(Nc) - np.log(X[0]))
            t2 = np.log(Dc) - np.log(X[1])
            return aD * np.logaddexp(t1, t2)

    def predict(self, theta, X):
        with np.errstate(all="ignore"):
            return np.exp(self.log_predict(theta, X))

    def transformed(self, theta, X, space):
        if space == "log":
            return finite_clip(self.log_predict(theta, X), 1e300)
        return super().transformed(theta, X, space)

    def init_grid(self, X, y, space):
        exps = [0.03, 0.06, 0.1, 0.2, 0.4, 0.8]
        # Scale constants around the data's geometric mean; (N_c/N)^alpha must reach y's size.
        cN = np.exp(np.mean(np.log(X[0]))) * 10.0 ** np.arange(-6.0, 14.0, 2.0)
        if len(self.inputs) == 1:
            return _product_grid([cN, exps])
        cD = np.exp(np.mean(np.log(X[1]))) * 10.0 ** np.arange(-6.0, 14.0, 2.0)
        return _product_grid([cN, cD, exps, exps])


# ---------------------------------------------------------------- power
class Power(LawForm):
    """``y = c + sum_i a_i x_i^(-b_i)``; a_i and c free, b_i in [-5, 10]."""

    name = "power"
    default_space = "log"

    def __init__(self, inputs: Sequence[str]):
        self.roles = tuple(inputs)
        if len(inputs) == 1:
            params = [Param("a"), Param("b", -5.0, 10.0), Param("c")]
            self.template = "{c} + {a} * {x0}^(-{b})"
        else:
            params = []
            terms = []
            for i, name in enumerate(inputs):
                params += [Param(f"a_{name}"), Param(f"b_{name}", -5.0, 10.0)]
                terms.append(f"{{a_{name}}} * {{x{i}}}^(-{{b_{name}}})")
            params.append(Param("c"))
            self.template = "{c} + " + " + ".join(terms)
        super().__init__(inputs, params)

    def predict(self, theta, X):
        k = len(self.inputs)
        out = _col(theta, 2 * k)
        with np.errstate(all="ignore"):
            for i in range(k):
                out = out + _col(theta, 2 * i) * X[i] ** (-_col(theta, 2 * i + 1))
        return out

    def init_grid(self, X, y, space):
        k = len(self.inputs)
        bs = _product_grid([[0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0]] * k, limit=4000)
        ones = np.ones((len(bs), X.shape[1]))
        basis = np.stack([X[i] ** -bs[:, i : i + 1] for i in range(k)] + [ones], axis=1)
        coef = solve_linear(basis, y, _weights(y, space))
        out = np.empty((len(bs), 2 * k + 1))
        out[:, 0 : 2 * k : 2] = coef[:, :k]
        out[:, 1 : 2 * k : 2] = bs
        out[:, 2 * k] = coef[:, k]
        return out


# ---------------------------------------------------------------- BNSL
class BNSL(LawForm):
    """Broken neural scaling law with ``n_breaks`` breaks (one input)."""

    name = "bnsl"
    roles = ("x",)

    def __init__(self, inputs: Sequence[str], n_breaks: int = 1):
        if n_breaks < 1:
            raise ValueError(f"bnsl needs at least one break, got {n_breaks}")
        self.n_breaks = n_breaks
        params = [Param("a", positive=True), Param("b", positive=True), Param("c0", -5.0, 10.0)]
        factors = []
        for i in range(1, n_breaks + 1):
            params += [Param(f"c{i}", -20.0, 50.0), Param(f"d{i}", positive=True), Param(f"f{i}", 1e-4, 1e3, positive=True)]
            factors.append(f" * (1 + ({{x0}} / {{d{i}}})^(1 / {{f{i}}}))^(-{{c{i}}} * {{f{i}}})")
        self.template = "{a} + {b} * {x0}^(-{c0})" + "".join(factors)
        super().__init__(inputs, params)

    def _log_shape(self, theta, X):
        """log of ``x^(-c0) prod (1 + (x/d)^(1/f))^(-c f)``, computed with a stable softplus."""
        lx = np.log(X[0])
        with np.errstate(all="ignore"):
            out = -_col(theta, 2) * lx
            for i in range(self.n_breaks):
                c, d, f = (_col(theta, 3 + 3 * i + j) for j in range(3))
                out = out - c * f * np.logaddexp(0.0, (lx - np.log(d)) / f)
        return out

    def predict(self, theta, X):
        a, b = _col(theta, 0), _col(theta, 1)
        with np.errstate(all="ignore"):
            return a + np.exp(np.log(b) + self._log_shape(theta, X))

    def init_grid(self, X, y, space):
        lo, hi = np.log(X[0].min()), np.log(X[0].max())
        ds = np.exp(np.linspace(lo, hi + 0.5 * (hi - lo), 7))
        per_break = [[-1.0, 0.3, 1.0, 3.0, 10.0], ds, [0.02, 0.1, 0.3, 1.0]]
        nl = _product_grid([[0.0, 0.1, 0.4]] + per_break * self.n_breaks, limit=5000)
        theta = np.zeros((len(nl), self.n_params))
        theta[:, 1] = 1.0
        theta[:, 2:] = nl
        shape = np.exp(self._log_shape(theta, X))
        basis = np.stack([np.ones_like(shape), shape], axis=1)
        coef = _positive(solve_linear(basis, y, _weights(y, space)))
        theta[:, 0:2] = coef
        return theta


# ---------------------------------------------------------------- PassUntil
class PassUntil(LawForm):
    """``PU(N) = exp(-c N^(-alpha))``; in log(-log PU) space it is the line ``log c - alpha log N``."""

    name = "passuntil"
    default_space = "loglog"
    template = "exp(-{c} * {x0}^(-{alpha}))"
    roles = ("N",)

    def __init__(self, inputs: Sequence[str]):
        super().__init__(inputs, [Param("c", positive=True), Param("alpha", -10.0, 10.0)])

    def predict(self, theta, X):
        with np.errstate(all="ignore"):
            return np.exp(-_col(theta, 0) * X[0] ** (-_col(theta, 1)))

    def transformed(self, theta, X, space):
        if space == "loglog":
            with np.errstate(all="ignore"):
                v = np.log(_col(theta, 0)) - _col(theta, 1) * np.log(X[0])
            return finite_clip(v, 1e300)
        return super().transformed(theta, X, space)

    def init_grid(self, X, y, space):
        # The exact line fit in log(-log y) plus a small grid around it.
        lx, t = np.log(X[0]), np.log(-np.log(np.clip(y, 1e-300, 1 - 1e-16)))
        slope, icpt = np.polyfit(lx, t, 1) if len(lx) > 1 and np.ptp(lx) > 0 else (0.0, float(np.mean(t)))
        alphas = [-slope] + [0.1, 0.3, 1.0]
        rows = [[math.exp(min(icpt, 700.0)), -slope]]
        for al in alphas[1:]:
            rows.append([float(np.exp(np.clip(np.mean(t + al * lx), -700, 700))), al])
        return np.array(rows)


_FACTORIES: dict[str, Callable[..., LawForm]] = {
    "chinchilla": Chinchilla,
    "kaplan": Kaplan,
    "power": Power,
    "bnsl": BNSL,
    "passuntil": PassUntil,
    "muennighoff": Muennighoff,
}
_ARITY = {
    "chinchilla": (2, 2),
    "kaplan": (1, 2),
    "power": (1, 16),
    "bnsl": (1, 1),
    "passuntil": (1, 1),
    "muennighoff": (3, 3),
}


def make_form(name: str, inputs: Sequence[str], n_breaks: int = 1) -> LawForm:
    """The form ``name`` over the input columns ``inputs`` (in the form's role order)."""
    if name in DECLARED:
        spec = DECLARED[name]
        if len(inputs) != len(spec.roles):
            raise ValueError(
                f"form {name!r} takes {len(spec.roles)} --x column(s) ({','.join(spec.roles)}), "
                f"got {len(inputs)}: {','.join(inputs)}"
            )
        return FormulaForm(spec, inputs)
    if name not in _FACTORIES:
        raise ValueError(f"unknown form {name!r}; known forms: {', '.join(FORM_NAMES)}, auto")
    lo, hi = _ARITY[name]
    if not lo <= len(inputs) <= hi:
        want = str(lo) if lo == hi else f"{lo} to {hi}"
        roles = {"chinchilla": " (N,D)", "muennighoff": " (N,D,U: params, tokens trained, unique tokens)"}.get(name, "")
        raise ValueError(f"form {name!r} takes {want} --x column(s){roles}, got {len(inputs)}: {','.join(inputs)}")
    if name == "bnsl":
        return BNSL(inputs, n_breaks)
    return _FACTORIES[name](inputs)


# ---------------------------------------------------------------- declared forms
Starts = Sequence[float] | Callable[[np.ndarray], Sequence[float]]


@dataclass(frozen=True)
class FormSpec:
    """A form declared by its formula (see "Adding a form" in the module doc)."""

    name: str
    roles: tuple[str, ...]
    formula: str
    params: tuple[Param, ...]
    starts: Mapping[str, Starts] = field(default_factory=dict)
    linear: tuple[str, ...] = ()
    space: str = "log"
    inputs_domain: str = "positive"  # "positive", "nonnegative" or "any"
    reference: str = ""


DECLARED: dict[str, FormSpec] = {}


def register(spec: FormSpec) -> FormSpec:
    """Add a declared form (replacing one of the same name); it is checked by compiling it once."""
    global FORM_NAMES
    if spec.name in _FACTORIES or spec.name == "auto":
        raise ValueError(f"form name {spec.name!r} is taken by a built-in form")
    if spec.inputs_domain not in ("positive", "nonnegative", "any"):
        raise ValueError(f"form {spec.name!r}: inputs_domain must be positive, nonnegative or any")
    names = [p.name for p in spec.params]
    for n in list(spec.linear) + list(spec.starts):
        if n not in names:
            raise ValueError(f"form {spec.name!r}: {n!r} is not one of its parameters {names}")
    _compile(spec)
    DECLARED[spec.name] = spec
    if spec.name not in FORM_NAMES:
        FORM_NAMES = FORM_NAMES + (spec.name,)
    return spec


def _compile(spec: FormSpec):
    """The formula as a numpy function of (params..., inputs...), and as a sympy expression."""
    import sympy

    syms = {n: sympy.Symbol(n, real=True) for n in [p.name for p in spec.params] + list(spec.roles)}
    try:
        expr = sympy.parse_expr(spec.formula, local_dict=dict(syms))
    except (SyntaxError, TypeError, ValueError, sympy.SympifyError) as e:
        raise ValueError(f"form {spec.name!r}: cannot read formula {spec.formula!r}: {e}") from None
    unknown = sorted(str(s) for s in expr.free_symbols if str(s) not in syms)
    if unknown:
        raise ValueError(f"form {spec.name!r}: formula uses unknown name(s) {unknown}")
    args = [syms[p.name] for p in spec.params] + [syms[r] for r in spec.roles]
    return sympy.lambdify(args, expr, modules="numpy"), expr


class FormulaForm(LawForm):
    """A :class:`FormSpec` as a :class:`LawForm`."""

    def __init__(self, spec: FormSpec, inputs: Sequence[str]):
        self.spec = spec
        self.name = spec.name
        self.roles = spec.roles
        self.default_space = spec.space
        self._f, self.sympy_expr = _compile(spec)
        text = spec.formula
        for i, r in enumerate(spec.roles):
            text = _replace_name(text, r, f"{{x{i}}}")
        for p in spec.params:
            text = _replace_name(text, p.name, f"{{{p.name}}}")
        self.template = text.replace("**", "^")
        super().__init__(inputs, spec.params)

    def predict(self, theta, X):
        theta = np.asarray(theta, dtype=np.float64)
        X = np.asarray(X, dtype=np.float64)
        with np.errstate(all="ignore"):
            out = self._f(*[_col(theta, i) for i in range(self.n_params)], *X)
        return np.broadcast_to(np.asarray(out, dtype=np.float64), theta.shape[:-1] + X.shape[1:])

    def init_grid(self, X, y, space):
        lin = [self.param_names.index(n) for n in self.spec.linear]
        axes = []
        for i, p in enumerate(self.params):
            if i in lin:
                axes.append([0.0])
                continue
            st = self.spec.starts.get(p.name)
            vals = st(X) if callable(st) else st
            if vals is None:
                vals = [1.0] if p.positive else [0.0] if p.lo <= 0 <= p.hi else [p.lo]
            axes.append([float(v) for v in vals])
        theta = _product_grid(axes, limit=3000)
        if lin:
            base = self.predict(theta, X)  # (G, n) with every linear parameter 0
            cols = []
            for i in lin:
                t1 = theta.copy()
                t1[:, i] = 1.0
                cols.append(self.predict(t1, X) - base)
            basis = np.stack(cols + [np.ones_like(base)], axis=1)
            w = _weights(y, space)
            coef = np.stack([solve_linear(basis[g : g + 1], y - base[g], w)[0] for g in range(len(theta))])
            for j, i in enumerate(lin):
                v = coef[:, j]
                theta[:, i] = _positive(v) if self.params[i].positive else np.nan_to_num(v)
        return theta

    def check_domain(self, X, y, space):
        dom = self.spec.inputs_domain
        for name, col in zip(self.inputs, X):
            bad = (col <= 0) if dom == "positive" else (col < 0) if dom == "nonnegative" else ~np.isfinite(col)
            if np.any(bad):
                v = float(col[bad][0])
                need = {"positive": "> 0", "nonnegative": ">= 0", "any": "finite"}[dom]
                raise ValueError(f"column {name!r} has the value {v:g}; form {self.name!r} needs inputs {need}")
        _check_y_domain(y, space)


def _replace_name(text: str, name: str, new: str) -> str:
    import re

    return re.sub(rf"(?<![A-Za-z0-9_{{]){re.escape(name)}(?![A-Za-z0-9_}}])", new, text)


def _geo(X: np.ndarray, i: int) -> float:
    return float(np.exp(np.mean(np.log(np.maximum(X[i], 1e-300)))))


register(FormSpec(
    name="rectified",
    roles=("D",),
    formula="B / (D_l + D**beta) + E",
    params=(Param("B", positive=True), Param("D_l", positive=True), Param("beta", 0.0, 5.0), Param("E", positive=True)),
    starts={"D_l": lambda X: (max(float(np.max(X[0])), 1.0) ** b for b in (0.1, 0.3, 0.5, 0.8)),
            "beta": (0.1, 0.2, 0.3, 0.5, 0.8)},
    linear=("B", "E"),
    inputs_domain="nonnegative",
    reference="Lin et al. 2024, Selecting LLM to fine-tune via rectified scaling law",
))
register(FormSpec(
    name="lr_bsz",
    roles=("lr", "bsz", "D", "N"),
    formula=(
        "E + A / (N / 1e9)**alpha + B / (D / 1e11)**beta"
        " + C * (log(lr) - l0 - a * log(N / 1e9) - b * log(D / 1e11))**2"
        " + F * (log(bsz) - b0 - g * log(D / 1e11))**2"
    ),
    params=(
        Param("E", positive=True), Param("A", positive=True), Param("alpha", 0.0, 3.0),
        Param("B", positive=True), Param("beta", 0.0, 3.0), Param("C", positive=True),
        Param("l0", -30.0, 10.0), Param("a", -3.0, 3.0), Param("b", -3.0, 3.0),
        Param("F", positive=True), Param("b0", -10.0, 30.0), Param("g", -3.0, 3.0),
    ),
    starts={"alpha": (0.2, 0.4), "beta": (0.2, 0.4),
            "l0": lambda X: float(np.median(np.log(X[0]))) + np.array([-1.0, 0.0, 1.0]),
            "a": (-0.3, 0.0), "b": (-0.1, 0.1),
            "b0": lambda X: float(np.median(np.log(X[1]))) + np.array([-1.0, 0.0, 1.0]), "g": (0.0, 0.3)},
    linear=("E", "A", "B", "C", "F"),
    reference="loss quadratic in log lr and log batch size around optima scaling as powers of N, D",
))
register(FormSpec(
    name="moe",
    roles=("N", "E"),
    formula="exp(d + a * log(N) + b * log(E) + c * log(N) * log(E))",
    params=(Param("d", -50.0, 50.0), Param("a", -3.0, 3.0), Param("b", -3.0, 3.0), Param("c", -1.0, 1.0)),
    starts={"d": (0.5, 1.5, 3.0), "a": (-0.1, -0.05, 0.0), "b": (-0.05, 0.0), "c": (-0.002, 0.0, 0.002)},
    reference="Clark et al. 2022, unified scaling laws for routed language models",
))
register(FormSpec(
    name="moe_offset",
    roles=("N", "E"),
    formula="L0 + exp(d + a * log(N) + b * log(E) + c * log(N) * log(E))",
    params=(Param("L0", positive=True), Param("d", -50.0, 50.0), Param("a", -3.0, 3.0), Param("b", -3.0, 3.0),
            Param("c", -1.0, 1.0)),
    starts={"L0": (0.5, 1.0, 1.5), "d": (0.0, 2.0, 4.0), "a": (-0.3, -0.1), "b": (-0.2, 0.0), "c": (-0.01, 0.0, 0.01)},
    reference="Clark et al. 2022 with an irreducible loss L0",
))


# ---------------------------------------------------------------- seeds for discovery
def power_seed_programs(names: Sequence[str], max_instrs: int = 8):
    """Float64 programs of the power family over inputs ``names``, to start ``--form auto`` from
    (``discover(seeds=...)``; their constants are refitted): ``c + a x_i^(-b)`` for each input,
    and ``c + sum_i a_i x_i^(-b_i)`` over all inputs when it fits in ``max_instrs``."""
    from pysearch.program import Instr, Program, Ref

    names = tuple(names)
    out = []

    def additive(cols: Sequence[int]) -> Program:
        instrs: list[Instr] = []
        total = None
        for i in cols:
            instrs.append(Instr("pow", (Ref.input(i), Ref.const(-0.3))))
            instrs.append(Instr("mul", (Ref.val(len(instrs) - 1), Ref.const(1.0))))
            if total is not None:
                instrs.append(Instr("add", (Ref.val(total), Ref.val(len(instrs) - 1))))
            total = len(instrs) - 1
        instrs.append(Instr("add", (Ref.val(total), Ref.const(1.0))))
        return Program(instrs, names, "float64")

    for i in range(len(names)):
        out.append(additive([i]))
    if len(names) > 1 and 3 * len(names) <= max_instrs:
        out.append(additive(range(len(names))))
    return out
