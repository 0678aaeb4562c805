"""Verification of a search's candidates: screening, polishing, the exhaustive check and the verified front.

Every few generations (and once more at the end) the archive's most promising programs have
their float32 constants polished, are screened on a large sample, and are verified on every
float32 of the domain (:func:`.front.verify_candidate`) before they enter the reported front;
the input where a verified program is worst joins the search sample. The exhaustive pass is
spent only on a candidate that could still enter the front after screening: one dominated on
the screening sample, or picked for meeting ``max_ulp`` and over it there, is not verified (its
worst screening input joins the search sample instead).
"""

from __future__ import annotations

import copy
import math
import time

import numpy as np

from ..domain import Domain
from ..evaluation import ErrorStats, evaluate, ulp_error, verify_many
from ..program import Program, parse
from ..targets import reference
from ..ulp import ulp_errors
from .config import MAX_EXTRA_POINTS, SearchConfig
from .constants import FitSample, tune_float32
from .front import MAX_EXHAUSTIVE, FrontEntry, is_dominated, pareto_insert, verify_candidate
from .individual import Individual


#: Screening-sample error arrays :meth:`Verification._screen_errors` keeps (8 bytes a point each).
SCREEN_ERRORS_KEPT = 4


class Verification:
    """The verification half of :class:`~.loop.Search` (a mixin: the state lives on the search).

    It uses the loop's ``measure``, ``_rebuild_sample`` and ``_rescore_all`` and the budget's
    ``estimated_verify_seconds``.
    """

    config: SearchConfig
    target: str
    domain: Domain
    generation: int
    x: np.ndarray
    extra_x: list[float]
    front: list[FrontEntry]
    reported: list[FrontEntry]
    rejected: set[str]
    corrections: list[str]
    final_limit: int | None
    final_skipped: int
    verify_cache: dict[str, dict]
    screen_cache: dict[str, float]
    _screen_errors_memo: dict[str, np.ndarray]
    verify_seconds: list[float]
    deadline: float | None
    _base_x: np.ndarray
    _screen_x: np.ndarray | None
    _screen_ref: np.ndarray | None
    _final_skipped: int

    @property
    def screen_x(self) -> np.ndarray:
        """A large sample used to screen candidates before exhaustive verification."""
        if self._screen_x is None:
            self._screen_x = np.ascontiguousarray(
                self.domain.sample(self.config.screen_size, self.config.seed + 1), dtype=np.float32
            )
        return self._screen_x

    def round_limit(self, points: float, cap: int = 16) -> int:
        """How many programs a verification round of ``points`` float32 evaluations may check."""
        return max(1, min(cap, int(points // max(self.domain.count(), 1))))

    def _candidates(self, front: list[FrontEntry], rejected: set[str], limit: int, final: bool) -> list[Individual]:
        """Archive programs that could still improve the verified front, most useful first.

        With ``max_ulp`` set: those meeting it on the sample, cheapest first (nothing at or above
        the cost of a verified program meeting it); programs missing the bound are verified only
        when a round has room for many (small domains), or, in the final round, the most accurate
        one when nothing verified meets the bound. A final round with nothing verified meeting the
        bound also takes again the programs an earlier round passed over (their screen showed them
        over the bound): the report then gets the most accurate programs found, not only those the
        screen had not seen. Without ``max_ulp``: most accurate first.
        """
        cfg = self.config
        in_front = {e.text for e in front}
        best_met = min((e.measure(cfg.objective) for e in front
                        if cfg.max_ulp is not None and e.max_ulp <= cfg.max_ulp), default=math.inf)
        retry = final and cfg.max_ulp is not None and best_met == math.inf
        pool = [
            ind for ind in self.archive
            if math.isfinite(ind.max_ulp) and (retry or ind.text not in rejected) and ind.text not in in_front
            and not is_dominated(front, self.measure(ind.program), ind.max_ulp, cfg.objective)
        ]
        if cfg.max_ulp is None:
            return sorted(pool, key=lambda i: (i.max_ulp, self.measure(i.program)))
        meet = sorted((i for i in pool if i.max_ulp <= cfg.max_ulp and self.measure(i.program) < best_met),
                      key=lambda i: (self.measure(i.program), i.max_ulp))
        rest = sorted((i for i in pool if i.max_ulp > cfg.max_ulp), key=lambda i: (i.max_ulp, self.measure(i.program)))
        if limit >= 8:
            return meet + rest
        if final and best_met == math.inf:
            return meet + rest[:1]
        return meet

    @property
    def screen_ref(self) -> np.ndarray:
        if self._screen_ref is None:
            self._screen_ref = np.asarray(reference(self.target, self.screen_x)[0], dtype=np.float64)
        return self._screen_ref

    def _screen_errors(self, p: Program) -> np.ndarray:
        """Per-point ULP errors on the screening sample (inf where the output is not finite).

        The last few are kept by program text (a polish measures the program it ends with, which
        a round may measure again); the arrays are read-only."""
        memo = self._screen_errors_memo
        text = p.to_text()
        err = memo.get(text)
        if err is None:
            err = ulp_errors(evaluate(p, self.screen_x), self.screen_ref)
            err.flags.writeable = False
            if len(memo) >= SCREEN_ERRORS_KEPT:
                memo.pop(next(iter(memo)))
            memo[text] = err
        return err

    def _screen(self, p: Program, text: str) -> float:
        """Max ULP error on the screening sample (cached by program text)."""
        if text not in self.screen_cache:
            m = float(ulp_error(p, self.screen_x, self.target).max_ulp)
            self.screen_cache[text] = m if not math.isnan(m) else math.inf
        return self.screen_cache[text]

    def polish(self, p: Program, rounds: int = 2, n_hard: int = 4096) -> Program:
        """Re-tune float32 constants on the search sample plus the screening sample's worst points."""
        if not p.constants():
            return p
        err = self._screen_errors(p)
        best, best_err = p, float(np.max(err))
        cur = p
        for _ in range(rounds):
            hard = self.screen_x[largest(err, n_hard)]
            sample = FitSample.build(self.target, np.unique(np.concatenate([self.x, hard])))
            cur, _, _ = tune_float32(cur, sample, rounds=12)
            err = self._screen_errors(cur)
            m = float(np.max(err))
            if m < best_err:
                best, best_err = cur, m
        return best

    def _verify(self, p: Program, text: str) -> dict:
        if text not in self.verify_cache:
            stats, kind, note = verify_candidate(p, self.target, self.config.domain)
            self.verify_cache[text] = _facts(stats, kind, note)
        return self.verify_cache[text]

    def _verify_batch(self, progs: list[Program]) -> None:
        """Verify programs not yet in ``verify_cache`` exhaustively in one pass over the domain
        (:func:`~pysearch.evaluation.verify_many`: the reference computed once for all of them);
        the figures are those :meth:`_verify` gives one at a time."""
        todo = {p.to_text(): p for p in progs if p.to_text() not in self.verify_cache}
        if len(todo) < 2 or self.domain.count() > MAX_EXHAUSTIVE:
            for text, p in todo.items():
                self._verify(p, text)
            return
        for text, stats in zip(todo, verify_many(list(todo.values()), self.target, self.config.domain)):
            self.verify_cache[text] = _facts(stats, "exhaustive", None)

    def _entry(self, p: Program, sample_max_ulp: float | None, facts: dict) -> FrontEntry:
        return FrontEntry(
            text=p.to_text(), cost=p.cost(self.config.cost_weights), ops=p.ops, latency=p.latency(),
            max_ulp=facts["max_ulp"],
            verified=facts["verified"], argmax_x=facts["argmax_x"], mean_ulp=facts["mean_ulp"],
            frac_correctly_rounded=facts["frac_correctly_rounded"], n_points=facts["n_points"],
            sample_max_ulp=sample_max_ulp, generation=self.generation, note=facts["note"],
        )

    def verify_round(self, limit: int) -> list[FrontEntry]:
        """Verify up to ``limit`` archive programs that could improve the front; update the state."""
        added, counterexamples = self._verify_into(self.front, self.rejected, limit, deadline=self.deadline)
        base = set(self._base_x.tolist())
        new = [x for x in dict.fromkeys(counterexamples) if x not in self.extra_x and x not in base]
        if new and len(self.extra_x) < MAX_EXTRA_POINTS:
            self.extra_x += new[: MAX_EXTRA_POINTS - len(self.extra_x)]
            self._rebuild_sample()
            self._rescore_all()
        return added

    def _verify_into(self, front: list[FrontEntry], rejected: set[str], limit: int, final: bool = False,
                     deadline: float | None = None) -> tuple[list[FrontEntry], list[float]]:
        """Polish, screen and verify candidates until ``limit`` verifications were spent."""
        cfg = self.config
        added: list[FrontEntry] = []
        counterexamples: list[float] = []
        spent = 0
        candidates = self._candidates(front, rejected, limit, final)
        self._final_skipped = 0
        polished, shares = self._prefetch(candidates, front, rejected, limit, final, deadline)
        for k, ind in enumerate(candidates):
            if spent >= limit:
                break
            if deadline is not None and front and time.monotonic() + self.estimated_verify_seconds() > deadline:
                self._final_skipped = min(limit - spent, len(candidates) - k)
                break
            measure = self.measure(ind.program)
            if is_dominated(front, measure, ind.max_ulp, cfg.objective):
                continue  # an earlier verification in this round covered it
            if cfg.max_ulp is not None and ind.max_ulp <= cfg.max_ulp:
                if any(e.max_ulp <= cfg.max_ulp and e.measure(cfg.objective) <= measure for e in front):
                    continue
            rejected.add(ind.text)
            t0 = time.perf_counter()
            p = polished.get(ind.text) or self.polish(ind.program)
            text = p.to_text()
            screened = self._screen(p, text)
            if is_dominated(front, measure, screened, cfg.objective):
                continue
            if self._fails_bound_on_screen(ind, screened, front, final):
                # the screen already shows it misses the bound it was picked for: no exhaustive
                # pass (seconds each on a large domain); its worst screen input joins the sample
                err = self._screen_errors(p)
                counterexamples.append(float(self.screen_x[int(np.argmax(np.where(np.isnan(err), np.inf, err)))]))
                continue
            facts = self._verify(p, text)
            # polish + screen + verify (a batched one's share of the batch)
            self.verify_seconds.append(shares.pop(text, 0.0) + time.perf_counter() - t0)
            spent += 1
            if facts["max_ulp"] > ind.max_ulp and math.isfinite(facts["argmax_x"]):
                counterexamples.append(float(np.float32(facts["argmax_x"])))
            entry = self._entry(p, ind.max_ulp, facts)
            if math.isfinite(entry.max_ulp) and pareto_insert(front, entry, cfg.objective):
                added.append(entry)
        return added, counterexamples

    def _prefetch(self, candidates: list[Individual], front: list[FrontEntry], rejected: set[str], limit: int,
                  final: bool, deadline: float | None) -> tuple[dict[str, Program], dict[str, float]]:
        """Verify in one pass the candidates :meth:`_verify_into` would verify against the front as it is.

        Walks ``candidates`` with the round's own tests (dominated, bound already met, polish,
        screen) without changing any state but the caches, picks the first ``limit`` that would
        be verified, and verifies them together (:meth:`_verify_batch`), so that the round finds
        their figures in ``verify_cache``. The round itself then runs as before: a candidate that
        an earlier one's entry dominates is still skipped, and one not picked here is verified
        alone, so the round's outcome is the same as without this step. Returns the polished
        programs (by the candidate's text) and each verified program's seconds (its polish and
        screen, plus its share of the batch). With a ``deadline``, the batch holds no more
        verifications than the time left pays for at the estimated seconds each.
        """
        cfg = self.config
        if limit < 2 or len(candidates) < 2 or self.domain.count() > MAX_EXHAUSTIVE:
            return {}, {}
        if deadline is not None and front:
            left = deadline - time.monotonic()
            limit = min(limit, int(left // max(self.estimated_verify_seconds(), 1e-9)))
            if limit < 2:
                return {}, {}
        polished: dict[str, Program] = {}
        own: dict[str, float] = {}
        picked: list[Program] = []
        for ind in candidates:
            if len(picked) >= limit:
                break
            if ind.text in rejected:
                continue
            measure = self.measure(ind.program)
            if is_dominated(front, measure, ind.max_ulp, cfg.objective):
                continue
            if cfg.max_ulp is not None and ind.max_ulp <= cfg.max_ulp:
                if any(e.max_ulp <= cfg.max_ulp and e.measure(cfg.objective) <= measure for e in front):
                    continue
            t0 = time.perf_counter()
            p = polished[ind.text] = self.polish(ind.program)
            text = p.to_text()
            screened = self._screen(p, text)
            own[text] = time.perf_counter() - t0
            if is_dominated(front, measure, screened, cfg.objective) or self._fails_bound_on_screen(
                    ind, screened, front, final):
                continue
            picked.append(p)
        if len(picked) < 2:
            return polished, {}
        t0 = time.perf_counter()
        self._verify_batch(picked)
        share = (time.perf_counter() - t0) / len(picked)
        return polished, {p.to_text(): own[p.to_text()] + share for p in picked}

    def _fails_bound_on_screen(self, ind: Individual, screened: float, front: list[FrontEntry], final: bool) -> bool:
        """Whether a candidate picked for meeting ``max_ulp`` on the search sample is over it on the
        screening sample, so that verifying it cannot add a program meeting the bound. Such a
        candidate is still verified in a final round whose front has nothing meeting the bound
        (the report gets the most accurate programs found)."""
        bound = self.config.max_ulp
        if bound is None or not ind.max_ulp <= bound < screened:
            return False
        return not final or any(e.max_ulp <= bound for e in front)

    def final_front(self, limit: int | None = None, deadline: float | None = None) -> list[FrontEntry]:
        """The front after one more verification round; the evolution state is left as it was.

        ``deadline`` (a ``time.monotonic()`` value) stops the round once another verification
        would likely end after it, except that a front with nothing verified gets one.
        """
        front = copy.deepcopy(self.front)
        rejected = set(self.rejected)
        if limit is None:
            limit = self.round_limit(self.config.final_points, 64)
            if self.final_limit is not None:
                limit = min(limit, self.final_limit)
        self._verify_into(front, rejected, limit, final=True, deadline=deadline)
        self.final_skipped = self._final_skipped
        for e in front:
            if not any(r.text == e.text for r in self.reported):
                pareto_insert(self.reported, copy.deepcopy(e), self.config.objective)
        return self.reported_front(front)

    def reported_front(self, front: list[FrontEntry] | None = None) -> list[FrontEntry]:
        """The non-dominated set of ``front`` (default: the evolution's) and every program reported before."""
        out: list[FrontEntry] = []
        for e in [*(self.front if front is None else front), *self.reported]:
            pareto_insert(out, e, self.config.objective)
        return out


    def reverify(self, entries: list[FrontEntry], source: str) -> list[FrontEntry]:
        """Verify loaded front entries again; return the non-dominated set with the figures found.

        A file's claims are not trusted: each program is verified (exhaustively, as in the run)
        before it is reported. An entry whose claimed max ULP does not hold is kept with the
        figure found, and a line describing it goes to :attr:`corrections`.
        """
        out: list[FrontEntry] = []
        for e in entries:
            p = parse(e.text)
            facts = self._verify(p, e.text)
            checked = self._entry(p, e.sample_max_ulp, facts)
            checked.generation = e.generation
            if (e.max_ulp, e.verified) != (checked.max_ulp, checked.verified):
                self.corrections.append(
                    f"a program in the {source} claimed max ULP {e.max_ulp:.6g} ({e.verified}); "
                    f"verified again: {checked.max_ulp:.6g} ({checked.verified})")
            if math.isfinite(checked.max_ulp):
                pareto_insert(out, checked, self.config.objective)
        return out

    def adopt_reported(self, entries: list[FrontEntry], source: str) -> None:
        """Add verified programs from elsewhere (an earlier front.json) to the report, after verifying them."""
        for e in self.reverify([e for e in entries if not any(r.text == e.text for r in self.reported)], source):
            pareto_insert(self.reported, e, self.config.objective)


def largest(err: np.ndarray, n: int) -> np.ndarray:
    """Indices of the ``n`` largest of ``err`` (no NaN), ties going to the later index: the set
    ``np.argsort(err, kind="stable")[-n:]`` holds, found by a partition instead of a sort (in
    increasing index order)."""
    if n <= 0:
        return np.empty(0, dtype=np.intp)
    if n >= len(err):
        return np.arange(len(err))
    t = np.partition(err, len(err) - n)[len(err) - n]  # the n-th largest value
    above = np.flatnonzero(err > t)
    ties = np.flatnonzero(err == t)
    return np.sort(np.concatenate([above, ties[len(ties) - (n - len(above)):]]))


def _facts(stats: ErrorStats, kind: str, note: str | None) -> dict:
    """A verification's figures as ``verify_cache`` holds them."""
    m = float(stats.max_ulp)
    return {
        "max_ulp": m if not math.isnan(m) else math.inf, "verified": kind, "note": note,
        "argmax_x": float(stats.argmax_x), "mean_ulp": float(stats.mean_ulp),
        "frac_correctly_rounded": float(stats.frac_correctly_rounded), "n_points": int(stats.n_points),
    }
