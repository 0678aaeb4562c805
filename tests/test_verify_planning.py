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
