"""How a search spends a time budget: the seconds a verification and a generation take, and the split
between search and the final verification round."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .. import _core
from ..domain import Domain
from ..evaluation import ulp_error, verify
from ..program import parse
from .config import SearchConfig
from .front import MAX_EXHAUSTIVE

#: Most of a budget the final verification round may take (beyond one verification).
FINAL_FRACTION = 1 / 3


@dataclass
class BudgetPlan:
    """How a budget splits between search and the final verification round (seconds)."""

    verify_s: float  # one verification, estimated
    wanted: int  # verifications the final round would like
    final_verifications: int  # verifications the budget pays for
    min_search_s: float  # verify_every generations
    needed_s: float  # least budget for one verification after a minimum of search


class BudgetPlanning:
    """The budget half of :class:`~.loop.Search` (a mixin: the state lives on the search).

    It uses :meth:`~.verify.Verification.round_limit` and ``screen_x`` and the loop's ``logbook``.
    """

    config: SearchConfig
    target: str
    domain: Domain
    elapsed: float
    final_limit: int | None
    verify_seconds: list[float]
    _calibrated_s: float | None
    _init_seconds: float
    logbook: list[dict]

    def final_verifications(self) -> int:
        """Verifications to reserve time for at the end: with ``max_ulp`` the first success usually ends it."""
        limit = self.round_limit(self.config.final_points, 64)
        if self.final_limit is not None:
            limit = min(limit, self.final_limit)
        return min(limit, 2) if self.config.max_ulp is not None else limit

    def step_seconds(self) -> float:
        """Seconds a generation takes: the mean of the last five, else the first population's time."""
        recent = [r["seconds"] for r in self.logbook[-5:] if r.get("seconds")]
        return float(np.mean(recent)) if recent else self._init_seconds

    def budget_plan(self, budget_s: float) -> BudgetPlan:
        """How a total budget of ``budget_s`` seconds splits between search and the final verification.

        The final round may take at most a third of the budget; when the front candidates it would
        verify cost more, it verifies fewer (``final_limit``). ``needed_s`` is the least budget that
        pays for one verification and ``verify_every`` generations of search.
        """
        self.final_limit = None
        wanted = self.final_verifications()
        verify_s = self.estimated_verify_seconds()
        affordable = max(1, int(budget_s * FINAL_FRACTION // verify_s)) if verify_s > 0 else wanted
        if affordable < wanted:
            self.final_limit = affordable
        min_search_s = self.config.verify_every * self.step_seconds()
        needed_s = self.elapsed + min_search_s + verify_s
        return BudgetPlan(verify_s, wanted, min(wanted, affordable), min_search_s, needed_s)

    def estimated_verify_seconds(self) -> float:
        """Seconds one verification takes: measured on real ones, else by :meth:`calibrate`."""
        if self.verify_seconds:
            return float(np.mean(self.verify_seconds))
        return self.calibrate()

    def calibrate(self, chunks: int = 16, chunk_points: int = 1 << 20, clock=time.perf_counter) -> float:
        """Estimate the seconds one verification (polish, screen, exhaustive check) takes, by timing.

        The exhaustive check of a ``max_instrs``-long program is timed on ``chunks`` runs of
        ``chunk_points`` consecutive float32 values spread over the domain (the cost per point
        differs between regions), after one untimed run (a fresh process's first check pays for
        starting the core's threads), and scaled to the whole domain. The runs are long enough that
        a call's fixed cost, which the scaling would multiply, is a small part of them: with 64 runs
        of 2^15 values the estimate for exp2 on [0, 1) was 3x the real check, and 8x in an island's
        fresh process. Polishing and screening are timed as five evaluations of the screening
        sample, all by ``clock`` (seconds). Timing only: the search state is untouched.
        """
        if self._calibrated_s is None:
            cfg = self.config
            prog = parse("".join(f"v{i + 1} = fma {'x' if i == 0 else f'v{i}'} x 0.5\n" for i in range(cfg.max_instrs)))
            lo, hi = self.domain.keys
            count = hi - lo + 1
            if count <= chunks * chunk_points:
                spans = [(lo, hi)]
            else:
                step = (count - chunk_points) // (chunks - 1)
                spans = [(lo + i * step, lo + i * step + chunk_points - 1) for i in range(chunks)]

            def check(a: int, b: int) -> None:
                xa, xb = float(_core.float32_from_keys(a, 1)[0]), float(_core.float32_from_keys(b, 1)[0])
                verify(prog, self.target, (xa, xb), exhaustive=True)

            check(spans[0][0], min(spans[0][1], spans[0][0] + (1 << 12)))  # untimed
            timed = 0
            t0 = clock()
            for a, b in spans:
                check(a, b)
                timed += b - a + 1
            checked = count if count <= MAX_EXHAUSTIVE else 1 << 22  # verify_candidate samples huge domains
            verify_s = (clock() - t0) * checked / timed
            t0 = clock()
            ulp_error(prog, self.screen_x, self.target)
            self._calibrated_s = verify_s + 5 * (clock() - t0)
        return self._calibrated_s
