"""The fit cache's journal beside a run's checkpoint (pysearch/search/fitcache.py): written
incrementally, read back exactly, damage named in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pysearch.cli import main
from pysearch.search.checkpoint import CHECKPOINT_NAME, read_checkpoint
from pysearch.search.fitcache import (FIT_CACHE_NAME, FitCacheError, FitCacheJournal, check_ref,
                                      island_fit_cache_name, read_fit_cache)
from pysearch.search.islands import ISLANDS_NAME, read_islands

NARROW = ["--domain", "1", "1.0078125"]
FAST = ["--population", "16", "--sample-size", "256", "--max-instrs", "6", "--verify-every", "2",
        "--no-baselines", "--no-plot", "--checkpoint-every", "0"]


def journal_with(tmp_path: Path, *batches) -> FitCacheJournal:
    j = FitCacheJournal.create(tmp_path)
    for batch in batches:
        j.append(batch)
    return j


def test_journal_round_trip_last_assignment_holds(tmp_path):
    """Appends in batches read back as the cache: in order, a key assigned again holds its last text."""
    j = journal_with(tmp_path, [("a", "t1"), ("b", "t2")], [], [("a", "t3"), ("c", "t\u00e9")])
    ref = check_ref(j.ref(), "fit_cache", (FIT_CACHE_NAME,))
    assert ref["entries"] == 4 and ref["bytes"] == (tmp_path / FIT_CACHE_NAME).stat().st_size
    assert read_fit_cache(tmp_path, ref) == {"a": "t3", "b": "t2", "c": "t\u00e9"}
    assert list(read_fit_cache(tmp_path, ref)) == ["a", "b", "c"]


def test_lines_past_the_checkpoint_are_ignored_then_overwritten(tmp_path):
    """Bytes after the checkpoint's count (an append whose checkpoint never landed, half a line) are not
    read, and the next append of the resumed journal replaces them."""
    j = journal_with(tmp_path, [("a", "t1")])
    ref = j.ref()
    with open(tmp_path / FIT_CACHE_NAME, "ab") as fh:
        fh.write(b'["b", "never committed"]\n["c", "half a li')
    assert read_fit_cache(tmp_path, ref) == {"a": "t1"}
    again = FitCacheJournal.resume(tmp_path, ref)
    again.append([("d", "t4")])
    assert read_fit_cache(tmp_path, again.ref()) == {"a": "t1", "d": "t4"}
    assert (tmp_path / FIT_CACHE_NAME).stat().st_size == again.ref()["bytes"]


@pytest.mark.parametrize("damage, needle", [
    (lambda p, ref: p.write_bytes(p.read_bytes()[:-5]), "holds"),
    (lambda p, ref: p.unlink(), "cannot be read"),
    (lambda p, ref: ref.__setitem__("run", "0" * 32), "belongs to another run"),
    (lambda p, ref: ref.__setitem__("entries", 1), "holds 2 entries"),
    (lambda p, ref: p.write_bytes(p.read_bytes().replace(b'["b"', b'{"b"')), "line 3: not a JSON line"),
    (lambda p, ref: p.write_bytes(p.read_bytes().replace(b'"t2"', b'7   ')), "line 3: not a [key, program text]"),
    (lambda p, ref: p.write_bytes(b"x" * ref["bytes"]), "end a line"),
    (lambda p, ref: p.write_bytes(b"{}" + b"\n" * (ref["bytes"] - 2)), "header"),
    (lambda p, ref: ref.__setitem__("bytes", 1 << 62), "the checkpoint needs its first"),
])
def test_damaged_journal_is_one_line_naming_the_file(tmp_path, damage, needle):
    """A journal that does not match its checkpoint raises FitCacheError naming the file (and the line)."""
    j = journal_with(tmp_path, [("a", "t1"), ("b", "t2")])
    ref = dict(j.ref())
    damage(tmp_path / FIT_CACHE_NAME, ref)
    with pytest.raises(FitCacheError) as e:
        read_fit_cache(tmp_path, ref)
    assert str(tmp_path / FIT_CACHE_NAME) in str(e.value) and needle in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("line", [b"[" * 200_000 + b"]" * 200_000, b'["\xff\xfe", "t"]', b'["a", "t\\ud800"]x'])
def test_hostile_journal_line_is_one_line(tmp_path, line):
    """Nesting too deep for the parser, bytes that are not UTF-8, trailing junk: FitCacheError, no traceback."""
    j = journal_with(tmp_path, [("a", "t1")])
    path = tmp_path / FIT_CACHE_NAME
    path.write_bytes(path.read_bytes() + line + b"\n")
    ref = {**j.ref(), "entries": 2, "bytes": path.stat().st_size}
    with pytest.raises(FitCacheError, match="line 3: not a JSON line"):
        read_fit_cache(tmp_path, ref)


def test_any_key_or_text_round_trips(tmp_path):
    """Keys and texts are written as escaped JSON: non-ASCII and lone surrogates read back as they were."""
    entries = [("k\u00e9", "t\u2028x"), ("k\ud800", "t\udfff"), ('k"\n', "t\\")]
    j = journal_with(tmp_path, entries)
    assert read_fit_cache(tmp_path, j.ref()) == dict(entries)


@pytest.mark.parametrize("ref, field", [
    ({"file": "../checkpoint.json", "run": "ab", "entries": 0, "bytes": 1}, "fit_cache.file"),
    ({"file": FIT_CACHE_NAME, "run": "not hex", "entries": 0, "bytes": 1}, "fit_cache.run"),
    ({"file": FIT_CACHE_NAME, "run": "ab", "entries": -1, "bytes": 1}, "fit_cache.entries"),
    ({"file": FIT_CACHE_NAME, "run": "ab", "entries": 0}, "fit_cache.bytes"),
])
def test_bad_reference_is_a_field_error(ref, field):
    """The checkpoint's reference is checked before any file is opened: only the run's journal names."""
    with pytest.raises(ValueError, match=f"field {field}:"):
        check_ref(ref, "fit_cache", (FIT_CACHE_NAME,))


def test_checkpoint_holds_the_journal_not_the_cache(tmp_path):
    """A run's checkpoint names its journal instead of holding the cache; a resume appends to the journal
    (the first run's bytes stay as they were) and ends like the uninterrupted run, cache included."""
    args = ["search", "exp2", *NARROW, "--seed", "5", *FAST]
    assert main([*args, "--generations", "6", "--out", str(tmp_path / "a")]) == 0
    assert main([*args, "--generations", "3", "--out", str(tmp_path / "b")]) == 0
    doc = json.loads((tmp_path / "b" / CHECKPOINT_NAME).read_text())
    assert "cache" not in doc and doc["fit_cache"]["file"] == FIT_CACHE_NAME and doc["fit_cache"]["entries"] > 0
    first = (tmp_path / "b" / FIT_CACHE_NAME).read_bytes()
    assert len(first) == doc["fit_cache"]["bytes"]
    assert main(["search", "exp2", "--out", str(tmp_path / "b"), "--resume", "--generations", "6"]) == 0
    after = json.loads((tmp_path / "b" / CHECKPOINT_NAME).read_text())["fit_cache"]
    journal = (tmp_path / "b" / FIT_CACHE_NAME).read_bytes()
    assert journal.startswith(first) and len(journal) == after["bytes"] > len(first)
    assert after["run"] == doc["fit_cache"]["run"]
    a, b = read_checkpoint(tmp_path / "a"), read_checkpoint(tmp_path / "b")
    for key in ("generation", "population", "archive", "rng", "cache"):
        assert a[key] == b[key], key


def test_older_checkpoint_with_its_cache_inline_resumes(tmp_path):
    """A checkpoint that holds its cache (as older versions wrote) resumes like the journal's, and the
    resumed run moves the cache into a new journal."""
    args = ["search", "exp2", *NARROW, "--seed", "5", *FAST]
    assert main([*args, "--generations", "2", "--out", str(tmp_path / "a")]) == 0
    assert main(["search", "exp2", "--out", str(tmp_path / "a"), "--resume", "--generations", "4"]) == 0
    assert main([*args, "--generations", "2", "--out", str(tmp_path / "b")]) == 0
    ck = read_checkpoint(tmp_path / "b")
    del ck["fit_cache"]
    (tmp_path / "b" / CHECKPOINT_NAME).write_text(json.dumps(ck))
    (tmp_path / "b" / FIT_CACHE_NAME).unlink()
    assert main(["search", "exp2", "--out", str(tmp_path / "b"), "--resume", "--generations", "4"]) == 0
    assert "cache" not in json.loads((tmp_path / "b" / CHECKPOINT_NAME).read_text())
    a, b = read_checkpoint(tmp_path / "a"), read_checkpoint(tmp_path / "b")
    for key in ("generation", "population", "archive", "rng", "cache"):
        assert a[key] == b[key], key


def test_missing_journal_is_exit_2_naming_it(tmp_path, capsys):
    """Resuming a run whose journal is gone: exit 2 and one line naming the journal, no traceback."""
    out = tmp_path / "run"
    assert main(["search", "exp2", *NARROW, "--generations", "2", "--out", str(out), *FAST]) == 0
    (out / FIT_CACHE_NAME).unlink()
    capsys.readouterr()
    assert main(["search", "exp2", "--out", str(out), "--resume", "--generations", "3"]) == 2
    err = capsys.readouterr().err
    assert str(out / FIT_CACHE_NAME) in err and len(err.strip().splitlines()) == 1


def test_islands_keep_one_journal_each(tmp_path):
    """An island run writes each island's cache to its own journal, and resumes from them."""
    out = tmp_path / "run"
    args = ["search", "exp2", *NARROW, "--seed", "2", *FAST, "--workers", "2", "--migrate-every", "2"]
    assert main([*args, "--generations", "2", "--out", str(out)]) == 0
    doc = json.loads((out / ISLANDS_NAME).read_text())
    for i, st in enumerate(doc["islands"]):
        assert "cache" not in st and st["fit_cache"]["file"] == island_fit_cache_name(i)
        assert (out / island_fit_cache_name(i)).stat().st_size == st["fit_cache"]["bytes"]
    caches = [st["cache"] for st in read_islands(out)["islands"]]
    assert all(caches) and caches[0] != caches[1]
    assert main(["search", "exp2", "--out", str(out), "--resume", "--generations", "4"]) == 0
    again = read_islands(out)["islands"]
    assert [st["generation"] for st in again] == [4, 4]
    for old, st in zip(caches, again):
        assert set(old) < set(st["cache"])  # (a refit may replace a text; keys stay)


def test_assignments_are_noted_only_when_asked_and_handed_over_until_dropped():
    """A search notes cache assignments only for a journal (an API run keeps no second copy), hands the
    committed ones over until the caller drops them (a save cut short hands them over again), and keeps
    those of a generation not yet committed for a later state."""
    from pysearch.search import Search, SearchConfig

    s = Search(SearchConfig(target="exp2", domain=(1.0, 1.0078125), population=16, sample_size=256, max_instrs=6,
                            seed=3))
    s.run(generations=1)
    assert s.cache and s.cache_new is None
    with pytest.raises(ValueError, match="note_cache_assignments"):
        s.checkpoint_state(cache_delta=True)
    s.note_cache_assignments(pending=True)
    first = s.checkpoint_state(cache_delta=True)
    assert "cache" not in first and dict(first["cache_new"]) == s.cache and first["cache_new_from"] == 0
    assert s.checkpoint_state(cache_delta=True)["cache_new"] == first["cache_new"]  # not dropped yet
    n = len(first["cache_new"])
    s.drop_cache_new(n)
    s.drop_cache_new(n)  # (repeating it drops nothing more)
    assert s.checkpoint_state(cache_delta=True)["cache_new"] == [] and s.cache_new_from == n
    s.run(generations=3)
    later = s.checkpoint_state(cache_delta=True)
    assert later["cache_new_from"] == n and later["cache_new"]
    assert {**dict(first["cache_new"]), **dict(later["cache_new"])} == s.cache
    s.drop_cache_new(n + len(later["cache_new"]))
    s.cache_new.append(("uncommitted", "text"))  # as a generation cut short would leave it
    assert s.checkpoint_state(cache_delta=True)["cache_new"] == [] and s.cache_new == [("uncommitted", "text")]


@pytest.mark.parametrize("cut", [3, 4])
def test_signal_during_a_save_loses_no_fit(tmp_path, monkeypatch, cut):
    """Ctrl-C while a checkpoint's journal lines are written (before or after the write completes, the
    checkpoint not yet renamed): the interrupted run's own save holds every committed fit, and the resumed
    run ends like the uninterrupted one."""
    args = ["search", "exp2", *NARROW, "--seed", "5", *FAST]
    real = FitCacheJournal._write_at
    calls = [0]

    def write_at(self, offset, data):
        calls[0] += 1
        if calls[0] == cut:
            if cut == 4:
                real(self, offset, data)  # written, but the checkpoint naming it never lands
                self.position = (self.bytes + len(data), self.entries + data.count(b"\n"))
            raise KeyboardInterrupt()
        return real(self, offset, data)

    monkeypatch.setattr(FitCacheJournal, "_write_at", write_at)
    assert main([*args, "--generations", "6", "--out", str(tmp_path / "b")]) == 130
    monkeypatch.setattr(FitCacheJournal, "_write_at", real)
    cut_short = read_checkpoint(tmp_path / "b")
    g = cut_short["generation"]
    assert 0 < g < 6
    assert main([*args, "--generations", str(g), "--out", str(tmp_path / "a")]) == 0
    assert list(read_checkpoint(tmp_path / "a")["cache"].items()) == list(cut_short["cache"].items())
    assert main(["search", "exp2", "--out", str(tmp_path / "b"), "--resume", "--generations", "6"]) == 0
    assert main(["search", "exp2", "--out", str(tmp_path / "a"), "--resume", "--generations", "6"]) == 0
    a, b = read_checkpoint(tmp_path / "a"), read_checkpoint(tmp_path / "b")
    for key in ("generation", "population", "archive", "rng", "cache", "optimisations"):
        assert a[key] == b[key], key
    assert list(a["cache"].items()) == list(b["cache"].items())  # the order too


def test_signal_while_the_islands_hand_over_their_states_loses_no_fit(tmp_path, monkeypatch):
    """Ctrl-C while the driver waits for the islands' checkpoint states: the replies in flight are dropped,
    but the islands hand their fits over again, so the saved caches are the uninterrupted run's."""
    from pysearch.search import islands as islands_mod

    real = islands_mod.IslandRun.call_all
    asked = [0]

    def call_all(self, method, a=()):
        if method == "checkpoint_state":
            asked[0] += 1
            if asked[0] == 2:  # the states are asked for, then the signal comes
                for i, isl in enumerate(self.islands):
                    isl.submit(method, *(a(i) if callable(a) else a))
                raise KeyboardInterrupt()
        return real(self, method, a)

    monkeypatch.setattr(islands_mod.IslandRun, "call_all", call_all)
    assert_island_run_cut_short_keeps_every_fit(tmp_path, monkeypatch, (islands_mod.IslandRun, "call_all", real))


ISLAND_ARGS = ["search", "exp2", *NARROW, "--seed", "2", *FAST, "--workers", "2", "--migrate-every", "2"]


def assert_island_run_cut_short_keeps_every_fit(tmp_path, monkeypatch, restore) -> None:
    """Run the islands with the signal planted (exit 130), undo it (``restore``: the patched attribute),
    then check that the saved islands are the uninterrupted run's at their generation: caches in order,
    populations."""
    assert main([*ISLAND_ARGS, "--generations", "8", "--out", str(tmp_path / "b")]) == 130
    monkeypatch.setattr(*restore)
    cut_short = read_islands(tmp_path / "b")["islands"]
    gens = [st["generation"] for st in cut_short]
    assert len(set(gens)) == 1 and 0 < gens[0] < 8
    assert main([*ISLAND_ARGS, "--generations", str(gens[0]), "--out", str(tmp_path / "a")]) == 0
    whole = read_islands(tmp_path / "a")["islands"]
    for st, ref in zip(cut_short, whole):
        assert list(st["cache"].items()) == list(ref["cache"].items()) and st["population"] == ref["population"]


def test_signal_between_the_islands_journals_loses_no_fit(tmp_path, monkeypatch):
    """Ctrl-C after island 0's journal lines are written and before island 1's (islands.json not yet
    renamed): the driver still holds both islands' assignments, so the interrupted run's own save holds
    every fit of the uninterrupted run at that generation, in order."""
    real = FitCacheJournal._write_at
    calls = []

    def write_at(self, offset, data):
        calls.append(self.path.name)
        # the headers, the first checkpoint's two appends, then the second checkpoint: island 0, then 1
        if len(calls) == 6:
            assert calls[-2:] == [island_fit_cache_name(0), island_fit_cache_name(1)]
            raise KeyboardInterrupt()
        return real(self, offset, data)

    monkeypatch.setattr(FitCacheJournal, "_write_at", write_at)
    assert_island_run_cut_short_keeps_every_fit(tmp_path, monkeypatch, (FitCacheJournal, "_write_at", real))
