"""Analysis of a trained ladder of tiny models, from its recorded CSV alone (no torch needed).

One row per model (smallest first; the last row is the held-out largest model). Columns are
listed in :data:`COLUMNS`. The analysis:

* the loss law ``L(N) = E + A N^-b`` with E >= 0 (E = 0 on principle for deterministic answers),
  its form chosen among :data:`LOSS_FORMS` by one-step-ahead extrapolation on the smaller models
  only (:func:`loss_cv`), with an interval from those out-of-sample errors, and its prediction for
  the largest model;
* the PassUntil task law ``PU(N) = exp(-c N^-alpha)`` (Hu et al. 2023) fitted on the smaller
  models' *sampled* PassUntil estimates: weighted least squares of log(-log PU) on log N, each
  point weighted by the variance its confidence interval implies plus a between-model scatter
  tau^2 chosen so the weighted residuals have chi^2 = degrees of freedom (Paule-Mandel); the 95%
  prediction interval at the new N has the coefficient covariance and tau^2 in it (t quantile);
* the Mirage side (Schaeffer et al. 2023): BIG-Bench emergence scores of exact match,
  multiple-choice grade, token edit distance, log-probability and Brier score over the ladder,
  and exact match on a test set 10x larger (the resolution effect).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

COLUMNS = [
    "model", "width", "depth", "params", "seed", "steps", "batch", "lr", "tokens", "flops",
    "train_seconds", "train_cpu_seconds",
    "per_token_loss", "exact_match", "exact_match_10x", "multiple_choice", "token_edit_distance", "seq_log_prob",
    "brier", "passuntil_exact", "passuntil_exact_pu_items", "passuntil_sampled", "passuntil_sampled_lo",
    "passuntil_sampled_hi", "pu_items", "pu_k", "pu_budget", "pu_samples", "pu_censored", "n_items", "n_items_10x",
    "answer_tokens",
]
INT_COLUMNS = {"width", "depth", "params", "seed", "steps", "batch", "tokens", "pu_items", "pu_k", "pu_budget",
               "pu_samples", "pu_censored", "n_items", "n_items_10x", "answer_tokens", "n_seeds"}
#: Columns a ladder may have (read when present, default when absent): ``n_seeds`` is how many
#: training seeds a row averages (:func:`combine_seeds`); 1 for a single-seed ladder.
OPTIONAL_COLUMNS = {"n_seeds": 1}
MIRAGE_METRICS = [
    ("exact_match", "exact match (greedy)"),
    ("multiple_choice", "multiple-choice grade (4 choices)"),
    ("token_edit_distance", "token edit distance (greedy)"),
    ("seq_log_prob", "log-probability of the answer"),
    ("brier", "Brier score per answer token"),
]


class LadderError(ValueError):
    """A recorded ladder that cannot be analysed (missing column, too few models, bad value)."""


def read_seed_ladders(path: str | Path) -> list[list[dict]]:
    """The per-seed ladders of a ``*_per_seed.csv`` (rows of several seeds, each seed's smallest first), by seed."""
    rows = read_ladder(path, check_order=False)
    seeds = list(dict.fromkeys(r["seed"] for r in rows))
    out = [[r for r in rows if r["seed"] == s] for s in seeds]
    for s, ladder_rows in zip(seeds, out):
        _check_order(ladder_rows, f"{path} (seed {s})")
    return out


def _check_order(rows: Sequence[dict], where: str) -> None:
    n = [r["params"] for r in rows]
    if any(b <= a for a, b in zip(n, n[1:])):
        raise LadderError(f"{where}: models must be listed smallest first with distinct parameter counts")


def read_ladder(path: str | Path, check_order: bool = True) -> list[dict]:
    """Rows of a recorded ladder CSV, numbers converted, checked for the columns the analysis needs."""
    path = Path(path)
    try:
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as e:
        raise LadderError(f"cannot read ladder {path}: {e.strerror}") from None
    if not rows:
        raise LadderError(f"{path}: no model rows")
    missing = [c for c in COLUMNS if c not in rows[0]]
    if missing:
        raise LadderError(f"{path}: missing column(s) {', '.join(missing)}")
    out = []
    for i, r in enumerate(rows, 2):
        row: dict = {"model": r["model"]}
        for c in COLUMNS[1:] + [c for c in OPTIONAL_COLUMNS if r.get(c) not in (None, "")]:
            try:
                row[c] = int(r[c]) if c in INT_COLUMNS else float(r[c])
            except ValueError:
                raise LadderError(f"{path} line {i}: column {c} is not a number: {r[c]!r}") from None
        for c, default in OPTIONAL_COLUMNS.items():
            row.setdefault(c, default)
        out.append(row)
    if check_order:
        _check_order(out, str(path))
    return out


def write_ladder(rows: Sequence[dict], path: str | Path) -> None:
    import os

    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as fh:
        extra = [c for c in OPTIONAL_COLUMNS if any(c in r for r in rows)]
        w = csv.DictWriter(fh, fieldnames=COLUMNS + extra, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, path)


#: Columns of a seed-averaged row that are the same for every seed (checked), summed over seeds, or
#: computed by :func:`combine_seeds` itself; every other numeric column is the mean over seeds (``tokens``
#: rounded: the items' lengths differ between the seeds' data streams).
_SAME_COLUMNS = ("width", "depth", "params", "steps", "batch", "lr", "n_items", "n_items_10x",
                 "answer_tokens", "pu_k", "pu_budget")
_SUM_COLUMNS = ("train_seconds", "train_cpu_seconds", "pu_items", "pu_samples", "pu_censored")
_POOLED_COLUMNS = ("passuntil_sampled", "passuntil_sampled_lo", "passuntil_sampled_hi", "seed", "n_seeds")


def combine_seeds(per_seed: Sequence[Sequence[dict]], confidence: float = 0.95) -> list[dict]:
    """One ladder from several training seeds of the same ladder: each row averages the seeds' models.

    ``per_seed[s]`` is seed s's rows (same widths, recipe and test set). Metrics are the means over
    seeds (every seed is measured on the same fixed test items, so a mean over seeds is the metric
    over the pooled (seed, item) pairs). The sampled PassUntil estimate is pooled exactly as
    :func:`pysearch.emergence.pass_until_score` pools items: the mean of the seeds' estimates, and
    the variance of the mean the sum of the seeds' variances over seeds^2, each seed's variance
    recovered from its lognormal interval (``lo = p exp(-z sqrt(var)/p)``); seeds with estimate 0
    add no variance; when every seed's estimate is 0 the bounds are the means of the seeds' bounds.
    ``seed`` is the first seed, ``n_seeds`` the number of seeds.
    """
    from scipy import stats

    if len(per_seed) < 1 or any(len(r) != len(per_seed[0]) for r in per_seed):
        raise LadderError("combine_seeds needs at least one seed and the same number of models for every seed")
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    out = []
    for models in zip(*per_seed):
        first = models[0]
        for c in _SAME_COLUMNS:
            if any(m[c] != first[c] for m in models):
                raise LadderError(f"model {first['model']}: seeds differ in {c} "
                                  f"({', '.join(str(m[c]) for m in models)})")
        if len({m["model"] for m in models}) != 1 or len({m["seed"] for m in models}) != len(models):
            raise LadderError(f"model {first['model']}: rows must be the same model under distinct seeds")
        row: dict = {"model": first["model"], "seed": first["seed"], "n_seeds": len(models)}
        for c in COLUMNS[1:]:
            if c in _SAME_COLUMNS:
                row[c] = first[c]
            elif c in _SUM_COLUMNS:
                row[c] = sum(m[c] for m in models)
            elif c not in _POOLED_COLUMNS:
                row[c] = float(np.mean([m[c] for m in models]))
                if c in INT_COLUMNS:
                    row[c] = int(round(row[c]))
        p = np.array([m["passuntil_sampled"] for m in models], float)
        lo = np.array([m["passuntil_sampled_lo"] for m in models], float)
        hi = np.array([m["passuntil_sampled_hi"] for m in models], float)
        s = len(models)
        pm = float(p.mean())
        sd = np.where((p > 0) & (lo > 0), p * np.log(np.where(p > 0, p, 1.0) / np.where(lo > 0, lo, 1.0)) / z, 0.0)
        var = float(np.sum(sd**2)) / (s * s)
        if pm > 0.0 and var > 0.0:
            rel = math.sqrt(var) / pm
            row.update(passuntil_sampled=pm, passuntil_sampled_lo=pm * math.exp(-z * rel),
                       passuntil_sampled_hi=min(1.0, pm * math.exp(z * rel)))
        else:
            row.update(passuntil_sampled=pm, passuntil_sampled_lo=float(lo.mean()),
                       passuntil_sampled_hi=float(hi.mean()))
        out.append(row)
    return out


@dataclass(frozen=True)
class Prediction:
    """A law's prediction at ``n`` with a 95% interval [lo, hi]."""

    law: str
    n: float
    pred: float
    lo: float
    hi: float
    detail: dict

    def as_dict(self) -> dict:
        return {"law": self.law, "n": self.n, "pred": self.pred, "ci": [self.lo, self.hi], **self.detail}


#: Candidate loss laws. The answer tokens are a deterministic function of the prompt (a fixed table),
#: so the irreducible loss is 0 on principle: every candidate has E >= 0 (``offset`` may fit E > 0,
#: e.g. a floor the recipe cannot get under; the first round's free fit took E < 0, which no loss
#: has). ``power`` and ``power_upper`` are L = A N^-b (E = 0) fitted by least squares in log-log
#: space, on all smaller models or on their larger half only (Kaplan et al.: the smallest models
#: sit off the asymptotic power law). One of them is chosen by :func:`loss_cv`.
LOSS_FORMS = ("power", "power_upper", "offset")


def _fit_loss_form(form: str, n: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """(E, A, b) of ``form`` fitted on (n, y)."""
    from scipy import optimize

    if form == "power_upper":
        keep = max(3, n.size // 2)
        n, y = n[-keep:], y[-keep:]
    if form in ("power", "power_upper"):
        slope, icept = np.polyfit(np.log(n), np.log(y), 1)
        return 0.0, math.exp(icept), -float(slope)
    if form != "offset":
        raise ValueError(f"unknown loss form {form!r}")
    # L = E + A N^-b with E >= 0, least squares in log L; started from the E = 0 fit and from E near min y
    u, ly = np.log(n), np.log(y)

    def resid(th):
        e, la, b = th
        return np.log(e + np.exp(la - b * u)) - ly

    best = None
    e0, a0, b0 = _fit_loss_form("power", n, y)
    for e_start in (0.0, 0.5 * y.min()):
        for b_start in (b0, 2 * b0 + 0.05):
            la_start = math.log(max(y[0] - e_start, 1e-12)) + b_start * u[0]
            try:
                r = optimize.least_squares(resid, [e_start, la_start, b_start],
                                           bounds=([0.0, -np.inf, 0.0], [np.inf, np.inf, np.inf]))
            except ValueError:
                continue
            if best is None or r.cost < best.cost:
                best = r
    if best is None:
        raise LadderError("the offset loss law did not fit")
    e, la, b = (float(v) for v in best.x)
    return e, math.exp(la), b


def _loss_law_value(th: tuple[float, float, float], n: float) -> float:
    e, a, b = th
    return e + a * float(n) ** -b


def loss_cv(n: Sequence[float], loss: Sequence[float]) -> dict:
    """One-step-ahead extrapolation errors of each form in :data:`LOSS_FORMS` on the given models.

    For every k from ceil(m/2) to m-1 (m models, smallest first) the form is fitted on models
    0..k-1 and predicts model k; the error is log(predicted / measured). This reproduces the real
    task (predict the next, larger model from the smaller ones) on the smaller models alone.
    Returns {form: [log errors]}.
    """
    n = np.asarray(n, float)
    y = np.asarray(loss, float)
    out = {}
    for form in LOSS_FORMS:
        errs = []
        for k in range(max(4, (n.size + 1) // 2), n.size):
            try:
                errs.append(math.log(_loss_law_value(_fit_loss_form(form, n[:k], y[:k]), n[k]) / y[k]))
            except (LadderError, ValueError, FloatingPointError):
                errs.append(math.inf)
        out[form] = errs
    return out


def predict_loss(n: Sequence[float], loss: Sequence[float], n_new: float, seed: int = 0) -> Prediction:
    """Predict the per-token loss at ``n_new`` from the smaller models (n, loss), smallest first.

    The form is the one of :data:`LOSS_FORMS` with the smallest mean |log error| in
    :func:`loss_cv` (ties: the earlier, simpler form), refitted on all given models. The 95%
    interval is empirical: prediction * exp(+-t s), s the RMS of that form's one-step-ahead log
    errors and t the Student quantile with (number of errors - 1) degrees of freedom, i.e. the
    law is trusted as far as it extrapolated one step on the smaller models, no further.
    ``seed`` is unused (kept for the callers; the fit is deterministic).
    """
    from scipy import stats

    n = np.asarray(n, float)
    y = np.asarray(loss, float)
    if n.size < 5 or np.any(y <= 0) or np.any(n <= 0):
        raise LadderError(f"the loss law needs at least 5 models with positive loss, got {n.size}")
    cv = loss_cv(n, y)
    score = {f: float(np.mean(np.abs(e))) for f, e in cv.items()}
    form = min(LOSS_FORMS, key=lambda f: (score[f], LOSS_FORMS.index(f)))
    th = _fit_loss_form(form, n, y)
    pred = _loss_law_value(th, n_new)
    errs = np.asarray(cv[form], float)
    s = float(np.sqrt(np.mean(errs**2)))
    t = float(stats.t.ppf(0.975, max(1, errs.size - 1)))
    e, a, b = th
    law = f"{a:.6g} * N^(-{b:.6g})" if e == 0.0 else f"{e:.6g} + {a:.6g} * N^(-{b:.6g})"
    return Prediction(law, float(n_new), pred, pred * math.exp(-t * s), pred * math.exp(t * s),
                      {"form": form, "E": e, "A": a, "b": b, "n_fit": int(n.size),
                       "cv_mean_abs_log_error": {f: v if math.isfinite(v) else None for f, v in score.items()},
                       "cv_log_errors": {f: [v if math.isfinite(v) else None for v in e] for f, e in cv.items()},
                       "cv_rms_log_error": s, "t": t})


def predict_loss_v1(n: Sequence[float], loss: Sequence[float], n_new: float, n_boot: int = 200,
                    seed: int = 0) -> Prediction:
    """The first round's loss law (analysis version 1), kept so its recorded run reruns to its numbers.

    ``loss = c + a N^-b`` with c free (it fitted c < 0 on the first run), least squares in log space,
    bootstrap interval. Superseded by :func:`predict_loss`.
    """
    from pysearch.laws import bootstrap, fit, make_form

    n = np.asarray(n, float)
    y = np.asarray(loss, float)
    form = make_form("power", ["params"])
    res = fit(form, n[None, :], y, space="log", loss="lsq")
    bootstrap(res, n[None, :], y, n_boot=n_boot, seed=seed)
    x0 = np.array([[float(n_new)]])
    boot = np.array([form.predict(th, x0)[0] for th in res.boot_samples])
    boot = boot[np.isfinite(boot)]
    lo, hi = (float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))) if boot.size else (math.nan, math.nan)
    return Prediction(res.expression(), float(n_new), float(res.predict(x0)[0]), lo, hi,
                      {"n_fit": int(n.size), "n_boot": int(boot.size)})


#: The analysis version this code writes; 1 = the first round (free-offset bootstrap loss law).
ANALYSIS_VERSION = 2


def analysis_version(meta: dict) -> int:
    """The analysis version a recorded run's prediction was made with (its JSON sidecar)."""
    if "analysis_version" in meta:
        return int(meta["analysis_version"])
    pre = meta.get("prediction_before_training", {})
    return 2 if "form" in pre.get("loss", {}) else 1


def _logneg(p: np.ndarray) -> np.ndarray:
    return np.log(-np.log(p))


def passuntil_points(pu: Sequence[float], lo: Sequence[float], hi: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """log(-log PU) and its standard error from a 95% interval on PU (normal on log PU, delta method)."""
    pu, lo, hi = (np.asarray(a, float) for a in (pu, lo, hi))
    if np.any(~((pu > 0) & (pu < 1))):
        raise LadderError(f"PassUntil estimates must lie strictly in (0, 1), got {pu.tolist()}")
    lo = np.clip(lo, 1e-300, pu)
    hi = np.clip(hi, pu, 1.0)
    se_logp = (np.log(hi) - np.log(lo)) / (2 * 1.959963984540054)
    return _logneg(pu), se_logp / np.abs(np.log(pu))


def predict_passuntil(n: Sequence[float], pu: Sequence[float], lo: Sequence[float], hi: Sequence[float],
                      n_new: float) -> Prediction:
    """Weighted fit of log(-log PU) = log c - alpha log N with the estimates' errors plus scatter tau^2."""
    from scipy import optimize, stats

    u = np.log(np.asarray(n, float))
    v, se = passuntil_points(pu, lo, hi)
    m = u.size
    if m < 3:
        raise LadderError(f"the PassUntil law needs at least 3 models with 0 < PU < 1, got {m}")
    design = np.column_stack([np.ones(m), u])
    dof = m - 2

    def wls(tau2: float):
        w = 1.0 / (se**2 + tau2)
        cov = np.linalg.inv(design.T @ (design * w[:, None]))
        beta = cov @ (design.T @ (w * v))
        r = v - design @ beta
        return beta, cov, float(np.sum(w * r * r))

    if wls(0.0)[2] <= dof:
        tau2 = 0.0
    else:
        top = max(float(np.var(v)) * 10 + 1.0, 1.0)
        tau2 = float(optimize.brentq(lambda t: wls(t)[2] - dof, 0.0, top))
    beta, cov, chi2 = wls(tau2)
    x0 = np.array([1.0, math.log(n_new)])
    v0 = float(x0 @ beta)
    se_pred = math.sqrt(float(x0 @ cov @ x0) + tau2)
    t = float(stats.t.ppf(0.975, dof))
    c, alpha = math.exp(beta[0]), -float(beta[1])
    return Prediction(
        f"exp(-{c:.6g} * N^(-{alpha:.6g}))", float(n_new), float(np.exp(-np.exp(v0))),
        float(np.exp(-np.exp(v0 + t * se_pred))), float(np.exp(-np.exp(v0 - t * se_pred))),
        {"c": c, "alpha": alpha, "alpha_stderr": float(math.sqrt(cov[1, 1])), "tau": math.sqrt(tau2),
         "chi2": chi2, "dof": dof, "n_fit": m, "se_loglog_pred": se_pred, "t": t},
    )


def passuntil_cv(rows: Sequence[dict]) -> list[dict]:
    """One-step-ahead check of :func:`predict_passuntil` on the given (smaller) models only.

    For each model k from the 7th on, the law fitted on the models before it (those with
    0 < PU < 1) predicts it: deviation, interval factor and whether the interval covers it.
    It says how far the law's interval can be trusted; the held-out model is never passed in.
    """
    out = []
    for k in range(6, len(rows)):
        ok = [r for r in rows[:k] if 0.0 < r["passuntil_sampled"] < 1.0]
        m = rows[k]["passuntil_sampled"]
        if len(ok) < 3 or not 0.0 < m < 1.0:
            continue
        p = predict_passuntil([r["params"] for r in ok], [r["passuntil_sampled"] for r in ok],
                              [r["passuntil_sampled_lo"] for r in ok], [r["passuntil_sampled_hi"] for r in ok],
                              rows[k]["params"])
        out.append({"model": rows[k]["model"], "n_fit": len(ok), "pred": p.pred, "measured": m,
                    "relative_deviation": (p.pred - m) / m, "ci_ratio": p.hi / p.lo, "inside_ci": p.lo <= m <= p.hi})
    return out


def half_max(values: Sequence[float]) -> float:
    """The largest value over the smaller half of the ladder (the first len // 2 models)."""
    v = list(values)
    return float(max(v[: len(v) // 2]))


def analyze(rows: Sequence[dict], seed: int = 0, version: int = ANALYSIS_VERSION) -> dict:
    """Predictions for the last (largest) model from the others, its measurements, and the Mirage scores.

    ``version`` 1 reruns a first-round record with its loss law (:func:`predict_loss_v1`).
    """
    from pysearch.emergence import emergence_score

    if len(rows) < 5:
        raise LadderError(f"a ladder needs at least 5 models, got {len(rows)}")
    small, big = list(rows[:-1]), rows[-1]
    n_small = np.array([r["params"] for r in small], float)
    n_big = float(big["params"])
    if version not in (1, 2):
        raise LadderError(f"unknown analysis version {version}")
    loss = (predict_loss_v1 if version == 1 else predict_loss)(n_small, [r["per_token_loss"] for r in small], n_big,
                                                                seed=seed)
    ok = [r for r in small if 0.0 < r["passuntil_sampled"] < 1.0]
    pu = predict_passuntil([r["params"] for r in ok], [r["passuntil_sampled"] for r in ok],
                           [r["passuntil_sampled_lo"] for r in ok], [r["passuntil_sampled_hi"] for r in ok], n_big)
    measured_pu = big["passuntil_sampled"]
    n_all = np.array([r["params"] for r in rows], float)
    scores = {col: emergence_score(n_all, [r[col] for r in rows]) for col, _ in MIRAGE_METRICS}
    scores["exact_match_10x"] = emergence_score(n_all, [r["exact_match_10x"] for r in rows])
    return {
        "loss": {**loss.as_dict(), "measured": big["per_token_loss"],
                 "relative_deviation": (loss.pred - big["per_token_loss"]) / big["per_token_loss"],
                 "inside_ci": bool(loss.lo <= big["per_token_loss"] <= loss.hi)},
        "passuntil": {**pu.as_dict(), "measured": measured_pu,
                      "measured_ci": [big["passuntil_sampled_lo"], big["passuntil_sampled_hi"]],
                      "measured_exact": big["passuntil_exact"],
                      "relative_deviation": (pu.pred - measured_pu) / measured_pu,
                      "relative_deviation_exact": (pu.pred - big["passuntil_exact"]) / big["passuntil_exact"],
                      "inside_ci": bool(pu.lo <= measured_pu <= pu.hi), "ci_ratio": pu.hi / pu.lo,
                      "models_fitted": [r["model"] for r in ok], "cv_smaller_models": passuntil_cv(small)},
        "analysis_version": version,
        "emergence_scores": scores,
        "small_half_max_exact_match": half_max([r["exact_match"] for r in rows]),
        "resolution": {"n_items": rows[0]["n_items"], "n_items_10x": rows[0]["n_items_10x"],
                       "zero_exact_match": sum(r["exact_match"] == 0 for r in rows),
                       "zero_exact_match_10x": sum(r["exact_match_10x"] == 0 for r in rows)},
    }


def jsonable(obj):
    """``obj`` (an analysis) with every non-finite float as None, for strict JSON; the RESULT line keeps them
    (an emergence score is +-inf when over half of the ladder's steps are flat, e.g. exact match at 0)."""
    if isinstance(obj, dict):
        return {k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def result_line(an: dict) -> str:
    s = an["emergence_scores"]
    return (f"RESULT passuntil_pred_rel_dev={an['passuntil']['relative_deviation']:.4f} "
            f"loss_pred_rel_dev={an['loss']['relative_deviation']:.4f} "
            f"small_half_max_exact_match={an['small_half_max_exact_match']:.4g} "
            f"exact_match_emergence_score={s['exact_match']:.4g} "
            f"edit_distance_emergence_score={s['token_edit_distance']:.4g}")


def goals(an: dict) -> dict:
    """The issue's goals, each True/False."""
    pu, s = an["passuntil"], an["emergence_scores"]
    return {
        "passuntil |d| <= 0.10": abs(pu["relative_deviation"]) <= 0.10,
        "passuntil measured inside the 95% interval": pu["inside_ci"],
        "passuntil interval within a factor of 3": pu["ci_ratio"] <= 3.0,
        "loss |l| <= 0.05": abs(an["loss"]["relative_deviation"]) <= 0.05,
        "small-half exact match <= 0.01": an["small_half_max_exact_match"] <= 0.01,
        "|exact-match score| > 5 |edit-distance score|": abs(s["exact_match"]) > 5 * abs(s["token_edit_distance"]),
    }


def format_table(rows: Sequence[dict]) -> str:
    head = (f"{'model':>9} {'params':>8} {'tokens':>8} {'loss/tok':>8} {'exact':>6} {'exact10x':>8} {'MC':>5} "
            f"{'edit d':>6} {'log p':>7} {'brier':>6} {'PU exact':>9} {'PU sampled [95% CI]':>30} {'samples':>9}")
    lines = [head]
    for r in rows:
        lines.append(
            f"{r['model']:>9} {r['params']:>8d} {r['tokens']:>8.2g} {r['per_token_loss']:>8.4f} {r['exact_match']:>6.3f} "
            f"{r['exact_match_10x']:>8.4f} {r['multiple_choice']:>5.3f} {r['token_edit_distance']:>6.3f} "
            f"{r['seq_log_prob']:>7.3f} {r['brier']:>6.3f} {r['passuntil_exact']:>9.3g} "
            f"{r['passuntil_sampled']:>9.3g} [{r['passuntil_sampled_lo']:>8.3g}, {r['passuntil_sampled_hi']:>8.3g}] "
            f"{r['pu_samples']:>9d}")
    return "\n".join(lines)


def format_analysis(an: dict) -> str:
    lo, pu = an["loss"], an["passuntil"]
    out = [
        f"loss law (form {lo.get('form', '?')} chosen by one-step-ahead extrapolation on the {lo['n_fit']} smaller "
        f"models, mean |log error| " + ", ".join(f"{k} {v:.3f}" if v is not None else f"{k} failed"
                                         for k, v in lo.get("cv_mean_abs_log_error", {}).items())
        + f"): {lo['law']}",
        f"  largest model, N = {lo['n']:.4g}: predicted {lo['pred']:.4g} (95% interval {lo['ci'][0]:.4g} .. "
        f"{lo['ci'][1]:.4g}), measured {lo['measured']:.4g}, relative deviation {100 * lo['relative_deviation']:+.2f}%",
        f"PassUntil law (weighted fit on {pu['n_fit']} sampled estimates, scatter tau = {pu['tau']:.3g}): {pu['law']}",
        f"  largest model: predicted {pu['pred']:.4g} (95% interval {pu['ci'][0]:.4g} .. {pu['ci'][1]:.4g}, "
        f"factor {pu['ci_ratio']:.2f}), measured {pu['measured']:.4g} (sampled, 95% CI {pu['measured_ci'][0]:.4g} .. "
        f"{pu['measured_ci'][1]:.4g}; exact {pu['measured_exact']:.4g}), relative deviation "
        f"{100 * pu['relative_deviation']:+.2f}% (vs exact {100 * pu['relative_deviation_exact']:+.2f}%), "
        f"{'inside' if pu['inside_ci'] else 'OUTSIDE'} the interval",
        "PassUntil law one step ahead on the smaller models: " + ", ".join(
            f"{c['model']} {100 * c['relative_deviation']:+.0f}% x{c['ci_ratio']:.3g}{'' if c['inside_ci'] else ' OUT'}"
            for c in pu.get("cv_smaller_models", [])),
        "emergence scores (BIG-Bench): " + ", ".join(f"{k} {v:.3g}" for k, v in an["emergence_scores"].items()),
        f"resolution: exact match is 0 for {an['resolution']['zero_exact_match']} models on "
        f"{an['resolution']['n_items']} items and for {an['resolution']['zero_exact_match_10x']} on "
        f"{an['resolution']['n_items_10x']} items",
    ]
    return "\n".join(out)


def plot(rows: Sequence[dict], an: dict, path: str | Path) -> None:
    """Metrics vs parameters (Mirage side) and the PassUntil law with its prediction (PNG)."""
    import os

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = np.array([r["params"] for r in rows], float)
    fig, axes = plt.subplots(2, 3, figsize=(14, 7.5), dpi=90)
    panels = [("exact_match", "exact match (greedy)"), ("multiple_choice", "multiple-choice grade (4 choices)"),
              ("token_edit_distance", "token edit distance (greedy)"), ("seq_log_prob", "log-probability of the answer"),
              ("brier", "Brier score per answer token")]
    for ax, (col, title) in zip(axes.flat, panels):
        y = np.array([r[col] for r in rows])
        ax.plot(n, y, "o-", color="tab:blue", label=f"{rows[0]['n_items']} test items")
        if col == "exact_match":
            ax.plot(n, [r["exact_match_10x"] for r in rows], "s--", color="tab:orange", ms=4,
                    label=f"{rows[0]['n_items_10x']} test items (10x)")
            ax.set_yscale("symlog", linthresh=1e-3)
        ax.set_xscale("log")
        ax.set_title(f"{title}\nemergence score {an['emergence_scores'][col]:.3g}", fontsize=9)
        ax.set_xlabel("parameters")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    ax = axes.flat[5]
    pu = an["passuntil"]
    y = np.array([r["passuntil_sampled"] for r in rows])
    lo = np.array([r["passuntil_sampled_lo"] for r in rows])
    hi = np.array([r["passuntil_sampled_hi"] for r in rows])
    ax.errorbar(n[:-1], y[:-1], yerr=[y[:-1] - lo[:-1], hi[:-1] - y[:-1]], fmt="o", color="tab:blue", capsize=3,
                label="PassUntil (sampled, 95% CI): fitted")
    ax.errorbar(n[-1:], y[-1:], yerr=[y[-1:] - lo[-1:], hi[-1:] - y[-1:]], fmt="o", mfc="none", mec="tab:red",
                color="tab:red", ms=9, capsize=3, label="largest model, measured after the prediction")
    ax.plot(n, [r["passuntil_exact"] for r in rows], "x", color="k", ms=5, label="exact (product of token probs)")
    grid = np.geomspace(n[0], n[-1] * 1.3, 200)
    ax.plot(grid, np.exp(-pu["c"] * grid ** (-pu["alpha"])), "-", color="tab:green", lw=1, label=f"law {pu['law']}")
    ax.errorbar([pu["n"]], [pu["pred"]], yerr=[[pu["pred"] - pu["ci"][0]], [pu["ci"][1] - pu["pred"]]], fmt="D",
                color="tab:green", capsize=5, label="prediction, 95% interval")
    ax.axhline(1.0 / rows[0]["n_items"], color="gray", ls=":", lw=1, label="1 / test items")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_title(f"PassUntil: predicted {pu['pred']:.3g}, measured {pu['measured']:.3g} "
                 f"({100 * pu['relative_deviation']:+.1f}%)", fontsize=9)
    ax.set_xlabel("parameters")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=6)
    fig.tight_layout()
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    fig.savefig(tmp, format="png")
    os.replace(tmp, path)
    plt.close(fig)


def markdown(rows: Sequence[dict], an: dict, meta: dict | None = None) -> str:
    """The ladder and its analysis as a Markdown table plus the prediction lines (for RESULTS.md)."""
    lines = ["| model | params | train tokens | loss/token | exact match | exact match, 10x items | MC grade | "
             "edit distance | log p | Brier | PassUntil exact | PassUntil sampled [95% CI] |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for i, r in enumerate(rows):
        name = r["model"] + (" (held out)" if i == len(rows) - 1 else "")
        lines.append(
            f"| {name} | {r['params']:,} | {r['tokens']:.3g} | {r['per_token_loss']:.4f} | {r['exact_match']:.3f} | "
            f"{r['exact_match_10x']:.4f} | {r['multiple_choice']:.3f} | {r['token_edit_distance']:.2f} | "
            f"{r['seq_log_prob']:.2f} | {r['brier']:.3f} | {r['passuntil_exact']:.3g} | "
            f"{r['passuntil_sampled']:.3g} [{r['passuntil_sampled_lo']:.3g}, {r['passuntil_sampled_hi']:.3g}] |")
    lines += ["", "```", format_analysis(an), result_line(an), "```", ""]
    lines += [f"- {'met' if ok else 'NOT met'}: {name}" for name, ok in goals(an).items()]
    return "\n".join(lines)
