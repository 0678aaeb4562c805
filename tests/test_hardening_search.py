"""Search runs under stress: locked run directories, a front that only grows, SIGTERM, checked and
re-verified checkpoints and fronts, budgets that include verification, resume with the run's limits."""

from __future__ import annotations

import copy
import re
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pysearch
from pysearch.cli import main
from pysearch.search.checkpoint import CHECKPOINT_NAME, CheckpointError, read_checkpoint, validate_checkpoint
from pysearch.search.fitcache import FIT_CACHE_NAME
from pysearch.search.config import SearchConfig
from pysearch.search.fields import FieldError
from pysearch.search.front import read_front
from pysearch.search.loop import Search
from pysearch.search.rundir import LOCK_NAME, RunDirectoryBusy, RunLock

NARROW = ["--domain", "1", "1.0078125"]
NARROW_T = (1.0, 1.0078125)
FAST = ["--population", "16", "--sample-size", "256", "--max-instrs", "6", "--verify-every", "2",
        "--no-baselines", "--checkpoint-every", "0", "--no-plot"]
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}
#: A genuine one-op program for forged claims (its true error on NARROW is far above 0 ULP).
PLAIN = "v1 = fma x 0.6931472 1\n"


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def start_search(out: Path, *extra: str) -> subprocess.Popen:
    """A CLI search in a subprocess that would run for a long time (tests stop it)."""
    cmd = [sys.executable, "-m", "pysearch", "search", "exp2", *NARROW, "--generations", "1000000", "--out", str(out),
           *FAST, *extra]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)


def wait_for_checkpoint(proc: subprocess.Popen, out: Path, generation: int = 0, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ck = out / CHECKPOINT_NAME
        if ck.exists():
            try:
                if json.loads(ck.read_text()).get("generation", -1) >= generation:
                    return
            except ValueError:
                pass  # never half-written (atomic), but a rename can race with the read of a path
        if proc.poll() is not None:
            pytest.fail(f"the search ended early: {proc.communicate()[1]}")
        time.sleep(0.1)
    pytest.fail(f"the search never reached generation {generation}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.communicate(timeout=60)


def interrupt_at(monkeypatch, generation: int, exc: type[BaseException] = KeyboardInterrupt) -> None:
    """Make Search.step raise ``exc`` once the search has committed ``generation``."""
    original = Search.step

    def step(self):
        info = original(self)
        if self.generation >= generation:
            raise exc()
        return info

    monkeypatch.setattr(Search, "step", step)


def texts(front_json: Path) -> list[str]:
    return [e["text"] for e in json.loads(front_json.read_text())["programs"]]


def dominated_or_kept(entry: dict, programs: list[dict]) -> bool:
    """Whether ``entry`` of an earlier front is in ``programs`` or dominated by one of them."""
    for e in programs:
        if e["text"] == entry["text"]:
            return True
        if e["cost"] <= entry["cost"] and (e["max_ulp"] or 1e300) <= (entry["max_ulp"] or 1e300):
            return True
    return False


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A short finished exp2 search (3 generations) on a narrow domain; copy it before changing it."""
    out = tmp_path_factory.mktemp("finished") / "run"
    assert main(["search", "exp2", *NARROW, "--generations", "3", "--seed", "1", "--out", str(out), *FAST]) == 0
    return out


@pytest.fixture(scope="module")
def finished_late(tmp_path_factory) -> Path:
    """A finished run whose every verified program comes from the final round (no round during the run)."""
    out = tmp_path_factory.mktemp("late") / "run"
    assert main(["search", "exp2", *NARROW, "--generations", "3", "--seed", "1", "--out", str(out), *FAST,
                 "--verify-every", "100"]) == 0
    return out


def interrupt_now(monkeypatch) -> None:
    """Make the next generation of any search raise KeyboardInterrupt before it starts."""

    def step(self):
        raise KeyboardInterrupt()

    monkeypatch.setattr(Search, "step", step)


def copy_run(src: Path, dst: Path) -> Path:
    dst.mkdir(parents=True)
    for name in (CHECKPOINT_NAME, FIT_CACHE_NAME, "front.json"):
        (dst / name).write_bytes((src / name).read_bytes())
    return dst


# ------------------------------------------------------------------ item 1
class TestRunDirectoryLock:
    def test_second_run_refused_and_killed_holder_does_not_block(self, tmp_path, capsys):
        """A second run on a directory in use is refused naming the holder's pid; after SIGKILL it proceeds."""
        out = tmp_path / "run"
        proc = start_search(out)
        try:
            wait_for_checkpoint(proc, out, 1)
            for extra in (["--resume"], [*NARROW]):
                code, _, err = run_cli(["search", "exp2", "--out", str(out), "--generations", "1000", *extra], capsys)
                assert code == 2, err
                assert f"is in use by another pysearch run (pid {proc.pid})" in err
                assert len(err.strip().splitlines()) == 1
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=60)
        finally:
            stop(proc)
        assert (out / LOCK_NAME).exists()  # the stale lock file is still there...
        gen = json.loads((out / CHECKPOINT_NAME).read_text())["generation"]
        code, _, err = run_cli(["search", "exp2", "--out", str(out), "--resume", "--generations", str(gen + 1)],
                               capsys)
        assert code == 0, err  # ...and does not block
        assert json.loads((out / CHECKPOINT_NAME).read_text())["generation"] == gen + 1

    def test_lock_is_exclusive_and_released(self, tmp_path):
        """Within one process too, a held lock refuses a second holder until it is released."""
        with RunLock(tmp_path):
            with pytest.raises(RunDirectoryBusy, match=f"pid {os.getpid()}"):
                RunLock(tmp_path).acquire()
        with RunLock(tmp_path):
            pass

    def test_symlinked_lock_file_refused(self, tmp_path):
        """A lock file planted as a symbolic link is not followed."""
        victim = tmp_path / "victim"
        victim.write_text("keep")
        run = tmp_path / "run"
        run.mkdir()
        (run / LOCK_NAME).symlink_to(victim)
        with pytest.raises(RunDirectoryBusy, match="symbolic link"):
            RunLock(run).acquire()
        assert victim.read_text() == "keep"


# ------------------------------------------------------------------ item 2
class TestFrontOnlyGrows:
    def test_resumed_finished_run_interrupted_keeps_front(self, finished_late, tmp_path, capsys, monkeypatch):
        """Resuming a finished run and interrupting it keeps every program of its front (or a better one)."""
        run = copy_run(finished_late, tmp_path / "run")
        before = json.loads((run / "front.json").read_text())["programs"]
        assert before and not json.loads((run / CHECKPOINT_NAME).read_text())["front"]
        interrupt_now(monkeypatch)
        code, _, err = run_cli(["search", "exp2", "--out", str(run), "--resume", "--generations", "10"], capsys)
        assert code == 130, err
        after = json.loads((run / "front.json").read_text())["programs"]
        assert all(dominated_or_kept(e, after) for e in before), (before, after)

    def test_finished_front_survives_resume_without_front_json(self, finished_late, tmp_path, capsys, monkeypatch):
        """The finished front is kept in the checkpoint itself, so it survives a lost front.json."""
        run = copy_run(finished_late, tmp_path / "run")
        before = json.loads((run / "front.json").read_text())["programs"]
        (run / "front.json").unlink()
        interrupt_now(monkeypatch)
        assert run_cli(["search", "exp2", "--out", str(run), "--resume", "--generations", "10"], capsys)[0] == 130
        after = json.loads((run / "front.json").read_text())["programs"]
        assert all(dominated_or_kept(e, after) for e in before)

    def test_out_holding_front_json_refused(self, finished, tmp_path, capsys):
        """search --out DIR refuses a directory holding a front.json (no checkpoint) and leaves it alone."""
        run = tmp_path / "run"
        run.mkdir()
        data = (finished / "front.json").read_bytes()
        (run / "front.json").write_bytes(data)
        code, _, err = run_cli(["search", "exp2", *NARROW, "--generations", "1", "--out", str(run), *FAST], capsys)
        assert code == 2 and "already holds a run (front.json)" in err and "another --out" in err
        assert (run / "front.json").read_bytes() == data

    def test_resume_merges_front_json(self, finished, tmp_path, capsys):
        """On resume, verified programs found only in front.json are verified again and kept unless dominated."""
        run = copy_run(finished, tmp_path / "run")
        doc = json.loads((run / "front.json").read_text())
        st_ = pysearch.verify(PLAIN, "exp2", NARROW_T)
        extra = {"text": PLAIN, "max_ulp": st_.max_ulp, "verified": "exhaustive"}
        doc["programs"].append(extra)
        (run / "front.json").write_text(json.dumps(doc))
        code, _, err = run_cli(["search", "exp2", "--out", str(run), "--resume", "--generations", "4"], capsys)
        assert code == 0, err
        after = json.loads((run / "front.json").read_text())["programs"]
        extra["cost"] = pysearch.parse(PLAIN).cost()
        assert dominated_or_kept(extra, after)

    def test_resume_refuses_foreign_front_json(self, finished, tmp_path, capsys):
        """A front.json of another run in the directory stops the resume with one line instead of being mixed in."""
        run = copy_run(finished, tmp_path / "run")
        doc = json.loads((run / "front.json").read_text())
        doc["domain"] = [0.0, 1.0]
        (run / "front.json").write_text(json.dumps(doc))
        code, _, err = run_cli(["search", "exp2", "--out", str(run), "--resume", "--generations", "4"], capsys)
        assert code == 2 and "belongs to another run" in err and len(err.strip().splitlines()) == 1
        assert json.loads((run / "front.json").read_text()) == doc

    def test_adopted_program_enters_report(self):
        """Search.adopt_reported puts a verified program the evolution never saw into the reported front."""
        s = Search(SearchConfig(target="exp2", domain=NARROW_T, population=4, sample_size=64, seed=2))
        entry = pysearch.search.FrontEntry.from_json_obj({"text": PLAIN, "max_ulp": 0.0, "verified": "exhaustive"})
        s.adopt_reported([entry], "front.json")
        kept = [e for e in s.reported_front() if e.text == pysearch.parse(PLAIN).to_text()]
        assert kept and kept[0].max_ulp == pysearch.verify(PLAIN, "exp2", NARROW_T).max_ulp


# ------------------------------------------------------------------ item 3
class TestSigterm:
    def test_sigterm_saves_and_exits_143(self, tmp_path):
        """SIGTERM saves a checkpoint past the interval ones and the front, exits 143, prints the resume command."""
        out = tmp_path / "run"
        proc = start_search(out, "--checkpoint-every", "100000", "--budget", "2m")  # saves: at the start, on SIGTERM
        try:
            wait_for_checkpoint(proc, out, 0)
            time.sleep(3)  # let it run some generations past the first checkpoint
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=120)
        finally:
            stop(proc)
        assert proc.returncode == 143, err
        assert "Traceback" not in err and "terminated" in err
        assert json.loads((out / CHECKPOINT_NAME).read_text())["generation"] >= 1
        assert read_front(out / "front.json").target == "exp2"
        assert f"--out {out} --resume --budget 2m" in err


# ------------------------------------------------------------------ item 4
class TestLoadedClaimsVerified:
    def forged_entry(self) -> dict:
        return {"text": PLAIN, "cost": 1, "ops": 1, "latency": 4, "max_ulp": 0.0, "verified": "exhaustive"}

    def test_forged_checkpoint_entry_not_reported(self, finished, tmp_path, capsys):
        """A checkpoint front entry claiming 0 ULP is verified again; front.json holds the true figure."""
        run = copy_run(finished, tmp_path / "run")
        for key in ("front", "reported"):
            ck = json.loads((run / CHECKPOINT_NAME).read_text())
            ck[key] = [self.forged_entry()]
            (run / CHECKPOINT_NAME).write_text(json.dumps(ck))
            (run / "front.json").unlink(missing_ok=True)
            code, _, err = run_cli(["search", "exp2", "--out", str(run), "--resume", "--generations",
                                    str(ck["generation"] + 1)], capsys)
            assert code == 0, err
            assert "claimed max ULP 0" in err
            truth = pysearch.verify(PLAIN, "exp2", NARROW_T).max_ulp
            for e in json.loads((run / "front.json").read_text())["programs"]:
                if e["text"] == pysearch.parse(PLAIN).to_text():
                    assert e["max_ulp"] == truth

    def test_forged_front_json_entry_not_reported(self, finished, tmp_path, capsys):
        """A front.json entry claiming 0 ULP does not pass into the resumed run's front with that claim."""
        run = copy_run(finished, tmp_path / "run")
        doc = json.loads((run / "front.json").read_text())
        doc["programs"].append(self.forged_entry())
        (run / "front.json").write_text(json.dumps(doc))
        code, _, err = run_cli(["search", "exp2", "--out", str(run), "--resume", "--generations", "4"], capsys)
        assert code == 0 and "claimed max ULP 0" in err
        programs = json.loads((run / "front.json").read_text())["programs"]
        assert all(e["max_ulp"] > 0 for e in programs if e["text"] == pysearch.parse(PLAIN).to_text())

    def test_engine_reverifies_restored_front(self, finished):
        """Search.from_checkpoint replaces a forged claim by the verified figure and records a correction."""
        ck = read_checkpoint(finished)
        ck["front"] = [self.forged_entry()]
        s = Search.from_checkpoint(ck)
        assert [e.max_ulp for e in s.front] == [pysearch.verify(PLAIN, "exp2", NARROW_T).max_ulp]
        assert len(s.corrections) == 1

    def test_checkpoint_no_longer_carries_trusted_verification_cache(self, finished):
        """Checkpoints hold no verification results that would be trusted without verifying."""
        assert "verify_cache" not in json.loads((finished / CHECKPOINT_NAME).read_text())


# ------------------------------------------------------------------ item 5
BAD_CHECKPOINTS = [
    (lambda ck: ck["rng"]["state"].__setitem__("state", 2**200), "rng.state.state"),
    (lambda ck: ck.__setitem__("elapsed_s", -5.0), "elapsed_s"),
    (lambda ck: ck.__setitem__("generation", "3"), "generation"),
    (lambda ck: ck.__setitem__("generation", 10**40), "generation"),
    (lambda ck: ck.__setitem__("population", []), "population"),
    (lambda ck: ck.__setitem__("population", ["v1 = frob x\n"]), "population[0]"),
    (lambda ck: ck["config"].__setitem__("population", 10**12), "config.population"),
    (lambda ck: ck["config"].__setitem__("domain", [1, "2"]), "config.domain[1]"),
    (lambda ck: ck["config"].__setitem__("seed", -1), "config.seed"),
    (lambda ck: ck.__setitem__("extra_x", ["0x1p+100"]), "extra_x[0]"),
    (lambda ck: ck.__setitem__("front", [{"text": PLAIN, "max_ulp": -1, "verified": "exhaustive"}]),
     "front[0].max_ulp"),
    (lambda ck: ck.__setitem__("logbook", [{"gen": 0, "seconds": "fast"}]), "logbook[0].seconds"),
    (lambda ck: ck.__setitem__("limits", {"budget_s": 0}), "limits.budget_s"),
    (lambda ck: ck.__setitem__("surprise", 1), "surprise"),
]


@pytest.fixture(scope="module")
def checkpoint_doc(finished) -> dict:
    """The finished run's checkpoint as one self-contained document (its fit cache inline, as older versions
    wrote it, instead of in the journal): what the field checks read."""
    ck = json.loads((finished / CHECKPOINT_NAME).read_text())
    ck["cache"] = read_checkpoint(finished)["cache"]
    del ck["fit_cache"]
    return ck


@pytest.fixture(scope="module")
def front_doc(finished) -> dict:
    return json.loads((finished / "front.json").read_text())


class TestCheckedFiles:
    @pytest.mark.parametrize("mutate, field", BAD_CHECKPOINTS)
    def test_bad_checkpoint_field_named(self, checkpoint_doc, tmp_path, capsys, mutate, field):
        """A bad checkpoint field gives exit 2 and one line naming the file and the field."""
        ck = copy.deepcopy(checkpoint_doc)
        mutate(ck)
        (tmp_path / CHECKPOINT_NAME).write_text(json.dumps(ck))
        code, _, err = run_cli(["search", "exp2", "--out", str(tmp_path), "--resume", "--generations", "99"], capsys)
        assert code == 2
        assert f"checkpoint {tmp_path / CHECKPOINT_NAME}: field {field}" in err
        assert len(err.strip().splitlines()) == 1

    @pytest.mark.parametrize("text, needle", [
        ("[" * 200_000 + "]" * 200_000, "nested too deeply"),
        ('{"schema": 1, "generation": ' + "9" * 5000 + "}", "unreadable"),
        ('{"schema": 1, "generation": NaN}', "unreadable"),
    ])
    def test_unparseable_checkpoint(self, tmp_path, capsys, text, needle):
        """Deep nesting, over-long numbers and NaN literals are one-line errors, not crashes."""
        (tmp_path / CHECKPOINT_NAME).write_text(text)
        code, _, err = run_cli(["search", "exp2", "--out", str(tmp_path), "--resume"], capsys)
        assert code == 2 and needle in err and str(tmp_path) in err
        assert len(err.strip().splitlines()) == 1

    @pytest.mark.parametrize("mutate, field", [
        (lambda d: d["programs"][0].__setitem__("max_ulp", "tiny"), "programs[0].max_ulp"),
        (lambda d: d["programs"][0].__setitem__("text", 7), "programs[0].text"),
        (lambda d: d["programs"][0].__setitem__("n_points", -1), "programs[0].n_points"),
        (lambda d: d.__setitem__("domain", [2, 1]), "domain"),
        (lambda d: d.__setitem__("cost_weights", {"add": -1}), "cost_weights.add"),
        (lambda d: d.__setitem__("objective", "speed"), "objective"),
    ])
    def test_bad_front_field_named(self, front_doc, tmp_path, capsys, mutate, field):
        """show and read_front name the file and the bad field of a malformed front.json."""
        doc = copy.deepcopy(front_doc)
        mutate(doc)
        (tmp_path / "front.json").write_text(json.dumps(doc))
        with pytest.raises(ValueError, match=re.escape(f"field {field}:")):
            read_front(tmp_path / "front.json")
        code, _, err = run_cli(["show", str(tmp_path), "--no-plot"], capsys)
        assert code == 2 and str(tmp_path / "front.json") in err and len(err.strip().splitlines()) == 1

    @pytest.mark.parametrize("text", ["[1, 2]", "[" * 200_000 + "]" * 200_000])
    def test_show_with_broken_checkpoint(self, finished, tmp_path, capsys, text):
        """show still prints the front of a run whose checkpoint is not an object or nested too deeply."""
        run = copy_run(finished, tmp_path / "run")
        (run / CHECKPOINT_NAME).write_text(text)
        code, out, err = run_cli(["show", str(run), "--no-plot"], capsys)
        assert code == 0 and "checkpoint unreadable" in out and "exhaustive" in out


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def paths_of(doc, prefix=()):
    """Every (path) into a JSON document, containers included."""
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from paths_of(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc[:3]):
            yield from paths_of(v, (*prefix, i))


@st.composite
def mutated(draw, doc: dict, skip: tuple = ()):
    """``doc`` with one place replaced by a random JSON value, deleted, or wrapped in a list."""
    doc = copy.deepcopy(doc)
    paths = [p for p in paths_of(doc) if p and p[0] not in skip]
    path = draw(st.sampled_from(paths))
    parent = doc
    for k in path[:-1]:
        parent = parent[k]
    how = draw(st.sampled_from(["replace", "delete", "wrap"]))
    if how == "delete":
        del parent[path[-1]]
    elif how == "wrap":
        parent[path[-1]] = [parent[path[-1]]]
    else:
        parent[path[-1]] = draw(JSON_VALUES)
    return doc


class TestFuzzLoadedFiles:
    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(data=st.data())
    def test_mutated_checkpoint_loads_or_names_error(self, checkpoint_doc, tmp_path, data):
        """A mutated checkpoint either resumes or raises CheckpointError naming the file; nothing else."""
        doc = data.draw(mutated(checkpoint_doc, skip=("config",)))  # config values decide run time, not safety
        (tmp_path / CHECKPOINT_NAME).write_text(json.dumps(doc))
        try:
            ck = read_checkpoint(tmp_path)
        except CheckpointError as e:
            assert str(tmp_path / CHECKPOINT_NAME) in str(e) and "\n" not in str(e)
            return
        Search.from_checkpoint(ck)

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(data=st.data())
    def test_mutated_checkpoint_config_validated(self, checkpoint_doc, data):
        """A mutated checkpoint configuration is accepted or refused with a FieldError; nothing else."""
        doc = data.draw(mutated({"config": checkpoint_doc["config"]}))
        try:
            validate_checkpoint({**checkpoint_doc, **doc})
        except FieldError as e:
            assert e.field and "\n" not in str(e)

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(data=st.data())
    def test_mutated_front_loads_or_names_error(self, front_doc, tmp_path, data):
        """A mutated front.json either loads or raises a ValueError naming the file; nothing else."""
        path = tmp_path / "front.json"
        path.write_text(json.dumps(data.draw(mutated(front_doc))))
        try:
            read_front(path)
        except ValueError as e:
            assert str(path) in str(e) and "\n" not in str(e)


# ------------------------------------------------------------------ item 6
class TestBudgetIncludesVerification:
    def test_budget_too_short_refused_at_start(self, tmp_path, capsys):
        """A budget that cannot pay for one verification after a minimum of search is refused with what it needs."""
        out = tmp_path / "run"
        code, _, err = run_cli(["search", "tanh", "--budget", "1s", "--out", str(out), *FAST], capsys)
        assert code == 2 and "is too short for tanh" in err and "use --budget" in err
        assert len(err.strip().splitlines()) == 1
        assert not (out / CHECKPOINT_NAME).exists()  # nothing that would need --resume

    def test_final_check_scaled_to_budget(self):
        """When final verifications cost more than a third of the budget, fewer are planned."""
        s = Search(SearchConfig(target="exp2", domain=NARROW_T, population=4, sample_size=64, seed=2))
        s._calibrated_s = 10.0  # pretend one verification takes 10 s
        plan = s.budget_plan(60.0)
        assert plan.wanted > 2 and plan.final_verifications == 2 and s.final_verifications() == 2
        assert s.budget_plan(1e6).final_verifications == plan.wanted and s.final_limit is None

    def test_scaled_final_check_announced(self, tmp_path, capsys, monkeypatch):
        """The CLI says at the start when the budget verifies fewer front candidates than wanted."""
        monkeypatch.setattr(Search, "calibrate", lambda self, *a, **k: 2.0)
        code, _, err = run_cli(["search", "exp2", *NARROW, "--budget", "2m", "--generations", "2",
                                "--out", str(tmp_path / "r"), *FAST], capsys)
        assert code == 0 and "this budget pays for verifying" in err

    def test_zero_generation_front_flagged(self, tmp_path, capsys):
        """A front from zero generations is reported with a warning saying so."""
        code, _, err = run_cli(["search", "exp2", *NARROW, "--generations", "0", "--out", str(tmp_path / "r"),
                                *FAST], capsys)
        assert code == 0 and "no generation ran" in err

    def test_budget_keeps_the_outputs_seconds_and_what_was_spent(self, tmp_path):
        """The search gets the budget less the seconds already spent and those the outputs take; the plot's
        baselines are measured first (cached in the run directory), not guessed; at least half the budget."""
        import argparse

        from pysearch.commands.search import OUTPUT_SECONDS, OUTPUT_SECONDS_PLOT, search_budget
        from pysearch.search.classical import BASELINES_NAME

        cfg = SearchConfig(target="exp2", domain=NARROW_T, population=4, sample_size=64, seed=2)
        x = Search(cfg).screen_x
        plot = argparse.Namespace(no_plot=False, no_baselines=False)
        now = time.monotonic()
        run_budget, kept = search_budget(plot, tmp_path, cfg, x, 600.0, now - 30.0)
        assert (tmp_path / BASELINES_NAME).exists()
        assert OUTPUT_SECONDS_PLOT + 30.0 <= kept < OUTPUT_SECONDS_PLOT + 30.0 + (time.monotonic() - now) + 1e-6
        assert run_budget == 600.0 - kept
        bare = argparse.Namespace(no_plot=True, no_baselines=False)
        now = time.monotonic()
        run_budget, kept = search_budget(bare, tmp_path / "none", cfg, x, 600.0, now)
        assert OUTPUT_SECONDS <= kept <= OUTPUT_SECONDS + (time.monotonic() - now) and run_budget == 600.0 - kept
        assert not (tmp_path / "none").exists()  # no plot: no baselines measured
        unmeasured = argparse.Namespace(no_plot=False, no_baselines=True)
        assert search_budget(unmeasured, tmp_path / "none", cfg, x, 600.0, now)[1] >= OUTPUT_SECONDS_PLOT
        assert not (tmp_path / "none").exists()  # --no-baselines: none measured
        # a search clock that started 10 s after the command counts what followed: only those 10 s are kept
        assert search_budget(bare, tmp_path, cfg, x, 600.0, now - 30.0, now - 20.0) == pytest.approx(
            (600.0 - OUTPUT_SECONDS - 10.0, OUTPUT_SECONDS + 10.0))
        assert search_budget(bare, tmp_path, cfg, x, 8.0, time.monotonic() - 100.0)[0] == 4.0

    def test_calibration_scales_the_runs_not_a_fresh_process_start(self, monkeypatch):
        """A one-off cost of the first check (a fresh process starting the core's threads) is not scaled
        up to the whole domain: the estimate is the per-point cost of the timed runs (a clock that
        counts the checks' points, no real timing)."""
        from pysearch.search import budget

        clock = [0.0]
        calls = []

        def fake_verify(prog, target, span, exhaustive):
            calls.append(span)
            clock[0] += 1000.0 if len(calls) == 1 else 1e-9 * points(span)

        def points(span) -> int:  # float32 values in [a, b] (non-negative a and b)
            a, b = (np.float32(v).view(np.int32).item() for v in span)
            return b - a + 1

        monkeypatch.setattr(budget, "verify", fake_verify)
        monkeypatch.setattr(budget, "ulp_error", lambda *a, **k: None)
        s = Search(SearchConfig(target="exp2", domain=(0.0, 1.0), population=4, sample_size=64, seed=2))
        est = s.calibrate(clock=lambda: clock[0])
        count = s.domain.count()
        assert len(calls) == 17 and points(calls[0]) <= (1 << 12) + 1  # the untimed check, then 16 runs
        assert est == pytest.approx(1e-9 * count, rel=1e-9)

    def test_calibration_is_a_real_timing(self):
        """The verification estimate is measured (positive, finite) and leaves the random state alone."""
        a = Search(SearchConfig(target="exp2", domain=NARROW_T, population=4, sample_size=64, seed=2))
        b = Search(SearchConfig(target="exp2", domain=NARROW_T, population=4, sample_size=64, seed=2))
        assert 0 < a.calibrate() < 1e6
        a.run(generations=2)
        b.run(generations=2)
        assert a.checkpoint_state()["population"] == b.checkpoint_state()["population"]


# ------------------------------------------------------------------ item 7
class TestResumeLimits:
    def test_resume_uses_stored_budget_and_hint_works(self, tmp_path, capsys, monkeypatch):
        """--resume without --budget continues with the run's own budget; the interrupt hint is a working command."""
        out = tmp_path / "my run"
        interrupt_at(monkeypatch, 2)
        code, _, err = run_cli(["search", "exp2", *NARROW, "--budget", "1h", "--out", str(out), *FAST], capsys)
        assert code == 130
        hint = err.split("continue with: ")[1].strip()
        assert hint == f"pysearch search exp2 --out '{out}' --resume --budget 1h"
        budgets = []
        monkeypatch.setattr(Search, "run", lambda self, generations=None, budget_s=None, **k: budgets.append(budget_s))
        assert run_cli(["search", "exp2", "--out", str(out), "--resume"], capsys)[0] == 0
        assert run_cli(shlex.split(hint)[1:], capsys)[0] == 0
        assert len(budgets) == 2 and all(3600 - 45 <= b < 3600 for b in budgets)  # the hour less output slack

    @pytest.mark.parametrize("budget", ["9" * 400 + "h", "400000000m"])
    def test_absurd_budget_refused(self, tmp_path, capsys, budget):
        """A budget too long to store (even infinite after parsing) is one clear error, before anything is written."""
        code, _, err = run_cli(["search", "exp2", *NARROW, "--budget", budget, "--out", str(tmp_path / "r"), *FAST],
                               capsys)
        assert code == 2 and "longer than the most a run may have" in err and len(err.strip().splitlines()) == 1
        assert not (tmp_path / "r").exists()

    def test_resume_of_completed_run_needs_larger_limit(self, finished, tmp_path, capsys):
        """Resuming a run that reached its own limit without a new one says what to pass."""
        run = copy_run(finished, tmp_path / "run")
        code, _, err = run_cli(["search", "exp2", "--out", str(run), "--resume"], capsys)
        assert code == 2 and "has run its 3 generations" in err and "--generations 6" in err
        assert len(err.strip().splitlines()) == 1

    def test_sigterm_hint_keeps_generations(self, tmp_path, capsys, monkeypatch):
        """The hint after an interrupt carries the run's generation limit too."""
        from pysearch.commands.search import Terminated

        interrupt_at(monkeypatch, 1, Terminated)
        code, _, err = run_cli(["search", "exp2", *NARROW, "--generations", "50", "--out", str(tmp_path / "r"),
                                *FAST], capsys)
        assert code == 143
        assert err.strip().endswith("--resume --generations 50")


class TestStopSignalsNotLost:
    @pytest.mark.parametrize("sig, exc", [(signal.SIGTERM, "Terminated"), (signal.SIGINT, "KeyboardInterrupt")])
    def test_a_swallowed_signal_still_stops_the_search(self, sig, exc):
        """If the signal's exception is swallowed (it can land in a finalizer or a __str__ called from C),
        the run still stops at its next check, with the same exception."""
        import os

        from pysearch.commands import search as cmd

        want = cmd.Terminated if exc == "Terminated" else KeyboardInterrupt
        with cmd._stop_signals():
            try:
                os.kill(os.getpid(), sig)
                time.sleep(0.5)  # the handler runs here and raises
            except KeyboardInterrupt:
                pass  # what a finalizer would do with it: lose it
            with pytest.raises(want):
                cmd._stop_if_signalled()
        cmd._stop_if_signalled()  # the flag ends with the block: a later run is not stopped
