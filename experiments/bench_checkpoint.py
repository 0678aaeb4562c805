"""What a checkpoint costs as the constant-fit cache grows: the cache in the checkpoint document
(how checkpoints were written before the journal, and how a document held in memory still holds
it) against the append-only journal beside it (``pysearch/search/fitcache.py``), in the same run.

    python experiments/bench_checkpoint.py [--sizes 25000 100000 400000] [--new 5000] [--target tanh]

A real search (tanh on [0, 1] by default: its programs are longer than exp2's, as a long run's
are) gives the population, archive and fitted program texts; its cache is then
filled to each size with those texts under distinct keys (a long run's cache: one entry per
structure fitted). Each size is written both ways into its own run directory; both are measured
at ``--reps`` checkpoints (median), each after ``--new`` more fits (about 30 s of fitting on 2
cores early in an exp2 run: ~400 fits/s), the cost every checkpoint of a run with that cache pays. Reading back is
``read_checkpoint`` (every cached text parsed again), the cost of ``--resume``. Prints a table and

    RESULT checkpoint_write_speedup=<x> checkpoint_bytes_per_fit=<b> inline_checkpoint_unreadable_after_fits=<n>

(the speedup at the largest size; the last figure is the cache size at which a checkpoint document
holding its cache passes the largest document a search reads back, ``fields.MAX_DOCUMENT_BYTES``).
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import tempfile
import time
from pathlib import Path

from pysearch.search import Search, SearchConfig
from pysearch.search.checkpoint import CHECKPOINT_NAME, read_checkpoint, save_checkpoint
from pysearch.search.fields import MAX_DOCUMENT_BYTES
from pysearch.search.fitcache import FIT_CACHE_NAME, FitCacheJournal


def grown_search(target: str, seed: int, generations: int) -> Search:
    s = Search(SearchConfig(target=target, domain=(0.0, 1.0), seed=seed, population=64))
    s.run(generations=generations)
    return s


def fill(s: Search, n: int, pool: list[tuple[str, str]], start: int = 0) -> None:
    """``n`` more cache entries with texts from ``pool`` under distinct keys, set as the search sets
    its fits (``_cache_put``); commit them."""
    for i in range(start, start + n):
        key, text = pool[i % len(pool)]
        s._cache_put(f"{key}#{i}", text)
    s._commit()


def timed(f) -> tuple[float, object]:
    gc.collect()  # (the other way's search, freed by the cycle collector, is not this one's cost)
    t = time.perf_counter()
    r = f()
    return time.perf_counter() - t, r


def checkpoints(s: Search, pool, size: int, new: int, reps: int, save) -> float:
    """The median time of ``reps`` checkpoints, each after ``new`` more fits."""
    times = []
    for r in range(reps):
        fill(s, new, pool, start=size + r * new)
        times.append(timed(lambda: save(s))[0])
    return statistics.median(times)


def measure(size: int, new: int, pool: list[tuple[str, str]], args, root: Path) -> dict:
    # the cache in the document: every checkpoint writes all of it
    s = grown_search(args.target, args.seed, args.generations)
    fill(s, size - len(s.cache), pool)
    inline = root / f"inline-{size}"
    inline.mkdir()
    save_checkpoint(inline, s.checkpoint_state())  # the first checkpoint at this size
    w_inline = checkpoints(s, pool, size, new, args.reps, lambda s: save_checkpoint(inline, s.checkpoint_state()))
    r_inline, ck = timed(lambda: read_checkpoint(inline))
    assert len(ck["cache"]) == len(s.cache)
    # the journal: the first checkpoint writes the cache, later ones what was fitted since
    s = grown_search(args.target, args.seed, args.generations)
    journal_dir = root / f"journal-{size}"
    journal_dir.mkdir()
    journal = FitCacheJournal.create(journal_dir)
    s.note_cache_assignments(pending=True)
    fill(s, size - len(s.cache), pool)

    def save(s: Search) -> None:  # as the search command saves
        state = s.checkpoint_state(cache_delta=True)
        save_checkpoint(journal_dir, state, journal)
        s.drop_cache_new(state["cache_new_from"] + len(state["cache_new"]))

    save(s)
    w_journal = checkpoints(s, pool, size, new, args.reps, save)
    r_journal, ck2 = timed(lambda: read_checkpoint(journal_dir))
    assert list(ck2["cache"].items()) == list(ck["cache"].items()), "the two ways must hold the same cache"
    return {"size": len(s.cache), "w_inline": w_inline, "w_journal": w_journal, "r_inline": r_inline,
            "r_journal": r_journal, "doc_inline": os.path.getsize(inline / CHECKPOINT_NAME),
            "doc_journal": os.path.getsize(journal_dir / CHECKPOINT_NAME),
            "journal_bytes": os.path.getsize(journal_dir / FIT_CACHE_NAME)}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[25_000, 100_000, 400_000],
                    help="cache entries (fits) at which to checkpoint (default 25000 100000 400000)")
    ap.add_argument("--new", type=int, default=5_000, help="fits between the two checkpoints measured (default 5000)")
    ap.add_argument("--target", default="tanh", help="the search whose texts fill the cache, on [0, 1] (default tanh)")
    ap.add_argument("--reps", type=int, default=3, help="checkpoints timed per size and way (median; default 3)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--generations", type=int, default=10, help="generations of the search that gives the texts")
    args = ap.parse_args(argv)
    base = grown_search(args.target, args.seed, args.generations)
    pool = list(base.cache.items())
    print(f"# checkpoint cost against cache size ({args.target} [0, 1], population 64, {len(pool)} real fitted texts "
          f"reused under distinct keys; {args.new} new fits between checkpoints)")
    print("| cache entries | write: cache in document (s) | write: journal (s) | ratio | document MB "
          "(cache in it) | document MB (journal) | journal MB | read back: in document (s) | read back: journal (s) |")
    print("|---|---|---|---|---|---|---|---|---|")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            r = measure(size, args.new, pool, args, Path(tmp))
            rows.append(r)
            print(f"| {r['size']:,} | {r['w_inline']:.3f} | {r['w_journal']:.3f} | {r['w_inline'] / r['w_journal']:.1f}x "
                  f"| {r['doc_inline'] / 1e6:.2f} | {r['doc_journal'] / 1e6:.3f} | {r['journal_bytes'] / 1e6:.2f} "
                  f"| {r['r_inline']:.2f} | {r['r_journal']:.2f} |")
    last = rows[-1]
    per_fit = last["doc_inline"] / last["size"]
    print(f"\na checkpoint document holding its cache takes {per_fit:.0f} bytes per fit with these texts (a run's "
          f"first generations; later programs are longer: the checkpoint of a 10-minute tanh run on one core held "
          f"120,069 fits in 49 MB, 409 bytes a fit); a search reads back documents of at most "
          f"{MAX_DOCUMENT_BYTES / 2**20:.0f} MiB, so it could not resume after about {MAX_DOCUMENT_BYTES / per_fit:,.0f} "
          f"fits of these")
    print(f"RESULT checkpoint_write_speedup={last['w_inline'] / last['w_journal']:.1f} "
          f"checkpoint_bytes_per_fit={per_fit:.0f} inline_checkpoint_unreadable_after_fits={MAX_DOCUMENT_BYTES / per_fit:.0f}")


if __name__ == "__main__":
    main()
