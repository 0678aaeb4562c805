"""Verification is planned: a candidate the screening sample shows over the run's bound gets no
exhaustive pass (search/verify.py), except in a final round that has nothing verified."""

from __future__ import annotations

import numpy as np
import pytest

from pysearch.program import parse
from pysearch.search.config import SearchConfig
from pysearch.search.individual import Individual
from pysearch.search.loop import Search


class _Verified(Exception):
    """Raised by the stand-in for the exhaustive check."""


@pytest.fixture(scope="module")
def search() -> Search:
    cfg = SearchConfig(target="exp2", domain=(1.0, 1.0625), max_ulp=1.0, population=8, sample_size=64,
                       screen_size=4096, seed=0)
    return Search(cfg)


def _claiming(text: str, sample_max_ulp: float) -> Individual:
    return Individual(parse(text), sample_max_ulp, sample_max_ulp / 2, (0.0, 1.0))


def test_candidate_over_the_bound_on_screen_is_not_verified(search, monkeypatch):
    p = "v1 = fma x 0.7 0.3\n"  # far from exp2, but claims to meet the bound on the search sample
    monkeypatch.setattr(search, "_candidates", lambda *a, **k: [_claiming(p, 0.5)])

    def exhaustive(*a):
        raise _Verified

    monkeypatch.setattr(search, "_verify", exhaustive)
    added, counterexamples = search._verify_into([], set(), limit=1)
    assert added == [] and len(counterexamples) == 1
    # the counterexample is the screening input where the (polished) program is worst
    err = search._screen_errors(search.polish(parse(p)))
    assert counterexamples[0] == float(search.screen_x[int(np.argmax(err))])
    # a final round with nothing verified still verifies it (the report gets something)
    with pytest.raises(_Verified):
        search._verify_into([], set(), limit=1, final=True)


def test_candidate_meeting_the_bound_on_screen_is_verified(search, monkeypatch):
    # a degree-4 polynomial for exp2 on [1, 1.0625]: well under 1 ULP on any sample after polishing
    good = "v1 = fma x 0.0131 0.0452\nv2 = fma v1 x 0.2404\nv3 = fma v2 x 0.6932\nv4 = fma v3 x 1\n"
    ind = _claiming(good, 0.5)
    monkeypatch.setattr(search, "_candidates", lambda *a, **k: [ind])
    monkeypatch.setattr(search, "_screen", lambda p, text: 0.5)

    def exhaustive(*a):
        raise _Verified

    monkeypatch.setattr(search, "_verify", exhaustive)
    with pytest.raises(_Verified):
        search._verify_into([], set(), limit=1)


def test_final_round_with_nothing_meeting_the_bound_takes_back_what_the_screen_passed_over(search, monkeypatch):
    """A program an earlier round passed over (its screen was over the bound) is a candidate again
    in a final round where nothing verified meets the bound, and is verified there even beside a
    verified program over the bound: the report gets the most accurate programs found."""
    ind = _claiming("v1 = fma x 0.7 0.3\n", 0.5)
    monkeypatch.setattr(search, "archive", [ind])
    rejected = {ind.text}
    assert search._candidates([], rejected, 1, final=False) == []
    assert search._candidates([], rejected, 1, final=True) == [ind]
    over = search._entry(parse("v1 = mul x 2.0\nv2 = mul v1 v1\nv3 = mul v2 v2\n"), 9.0,
                         {"max_ulp": 50.0, "verified": "exhaustive", "argmax_x": 1.0, "mean_ulp": 1.0,
                          "frac_correctly_rounded": 0.0, "n_points": 1, "note": None})
    assert over.cost > 1 and search._candidates([over], rejected, 1, final=True) == [ind]

    def exhaustive(*a):
        raise _Verified

    monkeypatch.setattr(search, "_verify", exhaustive)
    with pytest.raises(_Verified):
        search._verify_into([over], set(rejected), limit=1, final=True)
    # a verified program meeting the bound ends it: nothing passed over is taken back
    met = search._entry(parse("v1 = mul x 2.0\nv2 = mul v1 v1\nv3 = mul v2 v2\n"), 0.5,
                        {"max_ulp": 0.9, "verified": "exhaustive", "argmax_x": 1.0, "mean_ulp": 0.1,
                         "frac_correctly_rounded": 0.9, "n_points": 1, "note": None})
    assert search._candidates([met], rejected, 1, final=True) == []


@pytest.mark.parametrize("seed", range(6))
def test_largest_is_the_stable_sorts_last_n(seed):
    """The polish's hard points (``largest``) are the indices a stable argsort puts last, ties included."""
    from pysearch.search.verify import largest

    rng = np.random.default_rng(seed)
    for _ in range(40):
        m = int(rng.integers(1, 2000))
        err = rng.integers(0, 5, m).astype(np.float64) if seed % 2 else rng.random(m)
        err[rng.random(m) < 0.05] = np.inf
        n = int(rng.integers(1, m + 3))
        np.testing.assert_array_equal(largest(err, n), np.sort(np.argsort(err, kind="stable")[-n:]))


def test_polish_measures_each_program_once(search, monkeypatch):
    """A polish evaluates each program it measures on the screening sample once (the errors are kept)."""
    from pysearch.search import verify

    seen: list[str] = []
    real = verify.evaluate

    def counting(p, x):
        seen.append(p.to_text())
        return real(p, x)

    monkeypatch.setattr(verify, "evaluate", counting)
    search._screen_errors_memo.clear()
    p = parse("v1 = fma x 0.2402265 0.6931472\nv2 = fma v1 x 1.0\n")
    best = search.polish(p)
    assert seen and len(seen) == len(set(seen))
    assert search._screen_errors(best) is search._screen_errors(best)  # kept, not measured again
    assert len(seen) == len(set(seen))
