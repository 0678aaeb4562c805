"""The one engine: the problem interface, and the float32 kernel problem's behaviour pinned across the refactor."""

from __future__ import annotations

import hashlib
import json

from pysearch.search.config import SearchConfig
from pysearch.search.loop import Search

NARROW = (1.0, 1.0078125)  # 2^16 + 1 float32 values

#: A 4-generation exp2 run (seed 3) recorded with the float32 loop as it was before the search
#: became generic over problems (commit 3f32a3d): its verified front and a digest of the whole
#: checkpointed state (population, archive, constant cache, RNG, rejected, extra points). The
#: float32 problem must reproduce it bit for bit. If a deliberate change to constant fitting or
#: verification moves it, record the new figures from the old and the new code in the same commit.
PINNED_FRONT = [
    (1.0, "dtype float32\ninputs x\nv1 = fma x 1.3900561 0.6099402\n"),
    (2.0, "dtype float32\ninputs x\nv1 = fma x x x\nv2 = fma v1 0.46214804 1.0757037\n"),
]
PINNED_STATE_SHA256 = "4c9eb859f097cb7547c9eeb908c94b7fcd9dc481a69200ae4e6e202b5e388457"


def pinned_config() -> SearchConfig:
    return SearchConfig(target="exp2", domain=NARROW, population=16, sample_size=256, opt_per_generation=8,
                        verify_every=2, max_instrs=6, seed=3, max_ulp=1.0)


def state_digest(s: Search) -> str:
    st = s.checkpoint_state()
    snap = {k: st[k] for k in ("generation", "population", "archive", "front", "rng", "rejected", "extra_x", "cache")}
    return hashlib.sha256(json.dumps(snap, sort_keys=True).encode()).hexdigest()


def test_float32_problem_reproduces_the_pinned_run():
    """The float32 kernel problem on the generic engine gives the recorded front and state, bit for bit."""
    s = Search(pinned_config())
    s.run(generations=4)
    assert [(e.cost, e.text) for e in s.front] == PINNED_FRONT
    assert state_digest(s) == PINNED_STATE_SHA256
