"""Islands (``pysearch search --workers N`` / ``--ray``): runs, migration, determinism, resume, lost workers,
Ctrl-C, bad input, and a 2-island run through a local Ray instance."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
from deap import tools

import pysearch
from pysearch.cli import main
from pysearch.search.checkpoint import CHECKPOINT_NAME, read_checkpoint
from pysearch.search.classical import seed_programs
from pysearch.search.config import SearchConfig
from pysearch.search.islands import (ISLANDS_NAME, IslandRun, IslandWorker, LocalTransport, island_config,
                                     island_seed, read_islands, save_islands)

NARROW = ["--domain", "1", "1.0078125"]
DOMAIN = (1.0, 1.0078125)
FAST = ["--population", "16", "--sample-size", "256", "--max-instrs", "6", "--verify-every", "2",
        "--no-baselines", "--no-plot", "--checkpoint-every", "0"]
ISLANDS = ["--workers", "2", "--migrate-every", "2", "--migrants", "3"]


def import_ray_or_skip():
    """``ray``, or skip the test: ray cannot be imported here (the 'test' extra installs it)."""
    try:
        with warnings.catch_warnings():
            # importing ray may warn about its vendored dependencies (DeprecationWarning and the like);
            # only the import is exempt from filterwarnings=error
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", PendingDeprecationWarning)
            import ray
    except ImportError as e:
        pytest.skip(f"ray cannot be imported here ({e}); the 'test' extra installs it")
    return ray


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def fast_config(seed: int = 5) -> SearchConfig:
    return SearchConfig(target="exp2", domain=DOMAIN, population=16, sample_size=256, max_instrs=6, verify_every=2,
                        seed=seed)


@pytest.fixture(scope="module")
def two_islands(tmp_path_factory) -> Path:
    """A finished 2-island run of 4 generations (migrations after generations 2 and 4)."""
    out = tmp_path_factory.mktemp("islands") / "exp2"
    assert main(["search", "exp2", *NARROW, "--generations", "4", "--seed", "7", "--out", str(out), *FAST,
                 *ISLANDS]) == 0
    return out


class TestTwoIslands:
    def test_writes_a_verified_front(self, two_islands):
        """--workers 2 writes one front.json whose every program holds its claimed, exhaustive max ULP."""
        doc = json.loads((two_islands / "front.json").read_text())
        assert doc["target"] == "exp2" and doc["programs"]
        assert doc["found_by"].startswith("pysearch search exp2 ") and "--workers 2" in doc["found_by"]
        for e in doc["programs"]:
            assert e["verified"] == "exhaustive"
            assert pysearch.verify(e["text"], "exp2", DOMAIN).max_ulp == pytest.approx(e["max_ulp"], rel=1e-12)

    def test_checkpoint_holds_every_island(self, two_islands):
        """islands.json holds both islands at the last generation, with seeds derived from the run's seed."""
        doc = read_islands(two_islands)
        assert doc["workers"] == 2 and doc["restarts"] == 0
        assert [ck["generation"] for ck in doc["islands"]] == [4, 4]
        assert [ck["config"]["seed"] for ck in doc["islands"]] == [7, island_seed(7, 1)]
        assert not (two_islands / CHECKPOINT_NAME).exists()

    def test_front_is_the_merge_of_the_islands(self, two_islands):
        """front.json is the non-dominated set of the programs the islands verified: nothing else, nothing lost."""
        doc = read_islands(two_islands)
        verified = {e["text"]: (e["cost"], e["max_ulp"]) for ck in doc["islands"]
                    for e in [*ck.get("front", []), *ck.get("reported", [])]}
        front = json.loads((two_islands / "front.json").read_text())["programs"]
        assert {e["text"] for e in front} <= set(verified)
        for text, (cost, ulp) in verified.items():  # every verified program is in the front or dominated by it
            assert any(e["cost"] <= cost and e["max_ulp"] <= ulp for e in front), text

    def test_resume_continues(self, two_islands, tmp_path, capsys):
        """A 2-island run stopped after generation 2 and resumed to 4 is the uninterrupted run: same populations."""
        out = tmp_path / "r"
        base = ["search", "exp2", *NARROW, "--seed", "7", "--out", str(out), *FAST, *ISLANDS]
        assert run_cli([*base, "--generations", "2"], capsys)[0] == 0
        assert [ck["generation"] for ck in read_islands(out)["islands"]] == [2, 2]
        code, _, err = run_cli(["search", "exp2", "--out", str(out), "--resume", "--generations", "4"], capsys)
        assert code == 0, err
        assert "resuming the 2-island run" in err
        resumed, whole = read_islands(out), read_islands(two_islands)
        for a, b in zip(resumed["islands"], whole["islands"]):
            for key in ("generation", "population", "rng", "front"):
                assert a[key] == b[key], key

    def test_existing_islands_run_needs_resume(self, two_islands, capsys):
        """A new run (with or without --workers) in a directory holding an island run is refused."""
        for extra in ([], ["--workers", "2"]):
            code, _, err = run_cli(["search", "exp2", *NARROW, "--generations", "1", "--out", str(two_islands),
                                    *extra], capsys)
            assert code == 2 and "already holds a run" in err and "--resume" in err

    def test_resume_keeps_the_islands(self, two_islands, capsys):
        """A resumed run keeps its number of islands; a finished one asks for a larger total."""
        code, _, err = run_cli(["search", "exp2", "--out", str(two_islands), "--resume", "--workers", "3",
                                "--generations", "9"], capsys)
        assert code == 2 and "--workers 3 differs" in err and len(err.strip().splitlines()) == 1
        code, _, err = run_cli(["search", "exp2", "--out", str(two_islands), "--resume"], capsys)
        assert code == 2 and "--generations" in err
        code, _, err = run_cli(["search", "exp2", "--out", str(two_islands), "--resume", "--migrate-seconds", "7",
                                "--generations", "9"], capsys)
        assert code == 2 and "--migrate-seconds 7.0 differs from the checkpointed run (5.0)" in err

    def test_checkpoint_without_migrate_seconds(self, two_islands, tmp_path, capsys):
        """An islands.json written before rounds by time (no migrate_seconds) resumes with the default."""
        out = tmp_path / "old"
        out.mkdir()
        for f in two_islands.iterdir():
            (out / f.name).write_bytes(f.read_bytes())
        doc = json.loads((out / ISLANDS_NAME).read_text())
        assert doc.pop("migrate_seconds") == 5.0
        (out / ISLANDS_NAME).write_text(json.dumps(doc))
        code, _, err = run_cli(["search", "exp2", "--out", str(out), "--resume", "--generations", "5"], capsys)
        assert code == 0, err
        assert read_islands(out)["migrate_seconds"] == 5.0


def test_island_run_keeps_only_the_outputs_and_what_preceded_its_clock(tmp_path, capsys, monkeypatch):
    """The islands' clock counts from their start (their start-up and the baselines included), so the budget
    keeps only the outputs' seconds and what preceded that clock: the search ends by the command's start
    plus the budget less the outputs (the islands' start is not taken off twice)."""
    from pysearch.commands.search import OUTPUT_SECONDS

    seen = {}

    def rounds(self, generations, run_budget, **kw):  # where the search would stop, then no generation
        seen["deadline"] = self.clock_started + run_budget - self.elapsed0
        seen["clock_started"] = self.clock_started

    monkeypatch.setattr(IslandRun, "run_rounds", rounds)
    before = time.monotonic()
    code, _, err = run_cli(["search", "exp2", *NARROW, "--budget", "1h", "--no-plot", "--out", str(tmp_path / "r"),
                            *FAST, "--workers", "2", "--migrants", "3"], capsys)
    assert code == 0, err
    assert before + 3600 - OUTPUT_SECONDS <= seen["deadline"] <= seen["clock_started"] + 3600 - OUTPUT_SECONDS


def test_one_worker_is_the_single_process_run(tmp_path, capsys):
    """--workers 1 with a seed is the same run as the single-process search: state and front."""
    args = ["search", "exp2", *NARROW, "--generations", "5", "--seed", "3", *FAST]
    assert run_cli([*args, "--out", str(tmp_path / "single")], capsys)[0] == 0
    assert run_cli([*args, "--out", str(tmp_path / "one"), "--workers", "1", "--migrate-every", "2"], capsys)[0] == 0
    single = read_checkpoint(tmp_path / "single")
    island = read_islands(tmp_path / "one")["islands"][0]
    for key in ("generation", "rng", "population", "archive", "front", "reported", "cache"):
        assert single[key] == island[key], key
    fa = json.loads((tmp_path / "single" / "front.json").read_text())["programs"]
    fb = json.loads((tmp_path / "one" / "front.json").read_text())["programs"]
    assert fa == fb and fa


def test_island_seeds():
    """Island 0 runs with the run's seed; the others with distinct seeds in [0, 2**64) that depend on both."""
    seeds = [island_seed(11, i) for i in range(8)]
    assert seeds[0] == 11 and len(set(seeds)) == 8 and all(0 <= s < 1 << 64 for s in seeds)
    assert island_seed(12, 1) != seeds[1] and island_seed(11, 1) == seeds[1]
    cfg = fast_config(11)
    assert island_config(cfg, 0) == cfg and island_config(cfg, 3).seed == seeds[3]


def test_migrants_enter_through_selection():
    """immigrants(k) sends at most k programs of the first front; a program better than the whole population
    (a minimax polynomial into a random first population) enters it through scoring and NSGA-II selection."""
    cfg = fast_config()
    worker = IslandWorker()
    worker.start(0, cfg.to_json_obj())
    sent = worker.immigrants(3)
    assert 1 <= len(sent) <= 3
    pop = worker.search.population
    for text in sent:
        ind = next(i for i in pop if i.text == text)
        assert not any(o.fitness.dominates(ind.fitness) for o in pop)
    strong = min(seed_programs("exp2", DOMAIN, cfg.max_instrs), key=lambda p: -p.cost())  # the most accurate
    assert strong.to_text() not in {i.text for i in pop}
    assert worker.immigrate([strong.to_text()]) == 1
    texts = [i.text for i in worker.search.population]
    assert strong.to_text() in texts and len(texts) == cfg.population
    first = tools.sortLogNondominated(worker.search.population, cfg.population, first_front_only=True)
    assert strong.to_text() in {i.text for i in first}
    assert worker.checkpoint_state()["population"] == texts  # committed: a checkpoint now holds the immigrant


def test_step_ends_a_round_by_time():
    """A step with ``round_s`` ends after the first generation that ends that long after the call began:
    one generation for 0 s, neither stopped nor out of budget; without a generation target it runs on
    until the budget (out of budget)."""
    worker = IslandWorker()
    worker.start(0, fast_config().to_json_obj())
    r = worker.step(None, 60.0, 0.0)  # (a budget: a broken round end fails the test instead of hanging it)
    assert r["generations"] == 1 and r["generation"] == 1
    assert not r["stopped"] and not r["out_of_budget"]
    r = worker.step(5, None, 0.0)  # a generation target too: whichever comes first
    assert r["generations"] == 1 and not r["out_of_budget"]
    r = worker.step(None, 0.3, 1e6)
    assert r["out_of_budget"] and not r["stopped"] and r["generations"] >= 0


def test_time_rounds_do_not_wait_for_generations():
    """A run limited by time (no generation limit) runs rounds of ``migrate_seconds``: each island steps with
    no generation target for that long, and migrants go round the ring after every round; a run limited by
    generations steps to the next multiple of ``migrate_every`` (lockstep)."""

    def spied(run: IslandRun) -> tuple[list[str], list[tuple]]:
        calls: list[str] = []
        steps: list[tuple] = []
        real = run.call_all

        def spy(method, args=()):
            calls.append(method)
            if method == "step":  # the arguments each island gets (a function of the island index)
                steps.extend(args(i) if callable(args) else args for i in range(run.workers))
            return real(method, args)

        run.call_all = spy
        return calls, steps

    run = IslandRun(LocalTransport(2, threads=1), fast_config(), workers=2, migrate_every=3, migrants=2,
                    migrate_seconds=0.2)
    calls, steps = spied(run)
    infos = []

    def on_round(r: IslandRun, info) -> None:
        infos.append(info)
        if len(infos) == 3:
            r.request_stop()  # the next round's steps end after their first generation, stopped

    try:
        run.start()
        run.run_rounds(None, None, on_round=on_round)
        state = run.state()
    finally:
        run.close()
    assert len(infos) == 3 and len(steps) == 4 * 2
    assert all(a == (None, None, 0.2) for a in steps)
    assert calls.count("immigrate") == 3  # after each of the 3 rounds, none after the stopped one
    assert state["migrate_seconds"] == 0.2

    run = IslandRun(LocalTransport(2, threads=1), fast_config(), workers=2, migrate_every=3, migrants=2,
                    migrate_seconds=0.2)
    calls, steps = spied(run)
    try:
        run.start()
        run.run_rounds(4, None)
    finally:
        run.close()
    assert steps == [(3, None), (3, None), (4, None), (4, None)]
    assert run.generations == [4, 4] and calls.count("immigrate") == 2
    with pytest.raises(ValueError, match="migrate_seconds must be in"):
        IslandRun(LocalTransport(2, threads=1), fast_config(), workers=2, migrate_seconds=0.0)


def test_killed_worker_is_restarted(tmp_path):
    """A worker process killed mid-run is restarted from its island's last checkpoint and the run completes."""
    cfg = fast_config()
    run = IslandRun(LocalTransport(2, threads=1), cfg, workers=2, migrate_every=1, migrants=2)
    killed: list[int] = []

    def on_round(r: IslandRun, info) -> None:
        if info.round == 1:
            r.collect()  # island 1's last checkpoint: generation 1
            save_islands(tmp_path, r.state())
            pid = r.pids()[1]
            killed.append(pid)
            os.kill(pid, signal.SIGKILL)

    try:
        run.start()
        run.set_limits(None, 3)
        run.run_rounds(3, None, on_round=on_round)
        front, _, _ = run.final(None)
        run.collect()
        pids = run.pids()
    finally:
        run.close()
    assert killed and pids[1] != killed[0]
    assert run.restarts == 1
    assert run.generations == [3, 3]
    assert front and all(e.verified == "exhaustive" for e in front)
    assert [ck["generation"] for ck in run.state()["islands"]] == [3, 3]


def test_sigterm_stops_every_island_and_resumes(tmp_path):
    """SIGTERM to an island run: every island stops after its generation, all are saved in islands.json
    (exit 143, no traceback), and the run resumes from there."""
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "pysearch", "search", "exp2", *NARROW, "--generations", "100000",
           "--out", str(out), *FAST, *ISLANDS]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if (out / ISLANDS_NAME).exists():
                if min(ck["generation"] for ck in json.loads((out / ISLANDS_NAME).read_text())["islands"]) >= 2:
                    break
            time.sleep(0.2)
        else:
            pytest.fail("the islands never reached generation 2")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()  # reap it and close its pipes (no ResourceWarning in a later test)
    assert proc.returncode == 143, err
    assert "Traceback" not in err and "terminated: checkpoint of 2 islands" in err and "--resume" in err
    gens = [ck["generation"] for ck in read_islands(out)["islands"]]
    assert min(gens) >= 2
    assert main(["search", "exp2", "--out", str(out), "--resume", "--generations", str(max(gens) + 1)]) == 0
    assert [ck["generation"] for ck in read_islands(out)["islands"]] == [max(gens) + 1] * 2


class TestBadInput:
    @pytest.mark.parametrize("args, needle", [
        (["--workers", "0"], "--workers must be an integer in [1,"),
        (["--workers", "-2"], "--workers must be"),
        (["--workers", "2", "--migrate-every", "0"], "--migrate-every must be at least 1"),
        (["--workers", "2", "--migrants", "-1"], "--migrants must be non-negative"),
        (["--migrants", "2"], "add --workers N or --ray"),
        (["--migrate-seconds", "5"], "add --workers N or --ray"),
        (["--workers", "2", "--migrate-seconds", "0"], "--migrate-seconds must be in [0.01,"),
        (["--workers", "2", "--migrate-seconds", "nan"], "--migrate-seconds must be in"),
        (["--workers", "2", "--migrate-seconds", "5"], "--migrate-seconds applies to runs without --generations"),
        (["--ray", " "], "--ray needs 'auto' or the address"),
    ])
    def test_one_line_error(self, args, needle, capsys, tmp_path):
        """Bad island settings give exit status 2 and one line naming the problem."""
        code, _, err = run_cli(["search", "exp2", *NARROW, "--generations", "1", "--out", str(tmp_path / "r"),
                                *args], capsys)
        assert code == 2 and needle in err and len(err.strip().splitlines()) == 1
        assert not (tmp_path / "r").exists()

    def test_migrate_every_needs_generations(self, capsys, tmp_path):
        """--migrate-every in a run limited by time (it migrates by --migrate-seconds): one line, exit 2."""
        code, _, err = run_cli(["search", "exp2", *NARROW, "--budget", "1m", "--out", str(tmp_path / "r"),
                                "--workers", "2", "--migrate-every", "3"], capsys)
        assert code == 2 and "--migrate-every applies to runs with --generations" in err
        assert len(err.strip().splitlines()) == 1 and not (tmp_path / "r" / ISLANDS_NAME).exists()

    def test_ray_missing(self, capsys, tmp_path, monkeypatch):
        """--ray where ray cannot be imported: one line saying how to install it, exit 2."""
        monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
        code, _, err = run_cli(["search", "exp2", *NARROW, "--generations", "1", "--out", str(tmp_path / "r"),
                                "--ray", "auto", "--workers", "2"], capsys)
        assert code == 2 and "pysearch[ray]" in err and len(err.strip().splitlines()) == 1

    def test_ray_address_unreachable(self, capsys, tmp_path):
        """--ray HOST:PORT where no cluster answers: one line at once (not Ray's minutes of retries), exit 2."""
        import_ray_or_skip()
        import socket

        with socket.socket() as s:  # a port nothing listens on: bound, never listening
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
            code, _, err = run_cli(["search", "exp2", *NARROW, "--generations", "1", "--out", str(tmp_path / "r"),
                                    "--ray", f"127.0.0.1:{port}", "--workers", "2"], capsys)
        assert code == 2 and f"cannot reach the Ray cluster at 127.0.0.1:{port}" in err
        assert len(err.strip().splitlines()) == 1

    def test_resume_single_process_run_as_islands(self, tmp_path, capsys):
        """--workers on a single-process run directory is refused in one line."""
        out = tmp_path / "single"
        assert run_cli(["search", "exp2", *NARROW, "--generations", "1", "--out", str(out), *FAST], capsys)[0] == 0
        code, _, err = run_cli(["search", "exp2", "--out", str(out), "--resume", "--workers", "2",
                                "--generations", "2"], capsys)
        assert code == 2 and "single-process run" in err and len(err.strip().splitlines()) == 1

    @pytest.mark.parametrize("edit, needle", [
        (lambda d: d.update(workers=3), "islands: holds 2 islands; workers is 3"),
        (lambda d: d["islands"][1]["config"].update(seed=7), "islands[1].config"),
        (lambda d: d["islands"][0].update(population=[]), "islands[0].population"),
        (lambda d: d.update(migrate_every=0), "migrate_every"),
        (lambda d: d.update(migrate_seconds=-1.0), "migrate_seconds"),
        (lambda d: d.update(schema=99), "schema 99"),
    ])
    def test_bad_checkpoint(self, two_islands, tmp_path, capsys, edit, needle):
        """A damaged islands.json is refused with one line naming the file and the field."""
        out = tmp_path / "r"
        out.mkdir()
        doc = json.loads((two_islands / ISLANDS_NAME).read_text())
        edit(doc)
        (out / ISLANDS_NAME).write_text(json.dumps(doc))
        code, _, err = run_cli(["search", "exp2", "--out", str(out), "--resume", "--generations", "9"], capsys)
        assert code == 2 and needle in err and ISLANDS_NAME in err and len(err.strip().splitlines()) == 1


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray instance for this module's Ray tests (2 CPUs, no dashboard, worker logs not forwarded)."""
    ray = import_ray_or_skip()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_ray_two_islands(local_ray, two_islands, tmp_path, capsys):
    """A 2-island run through a local Ray instance (--ray auto uses it): the same run as with local processes."""
    out = tmp_path / "ray"
    code, stdout, err = run_cli(["search", "exp2", *NARROW, "--generations", "4", "--seed", "7",
                                 "--out", str(out), *FAST, *ISLANDS, "--ray", "auto"], capsys)
    assert code == 0, err
    assert "2 islands (Ray actors)" in err
    assert stdout.strip() == str(out / "front.json")
    a, b = read_islands(out), read_islands(two_islands)
    for x, y in zip(a["islands"], b["islands"]):
        assert x["population"] == y["population"] and x["rng"] == y["rng"]
    assert json.loads((out / "front.json").read_text())["programs"] == \
        json.loads((two_islands / "front.json").read_text())["programs"]
    assert local_ray.is_initialized()  # a Ray the command did not start is left running


def test_ray_lost_actor_is_restarted(local_ray):
    """A Ray actor killed mid-run is replaced by a new one from its island's last checkpoint; the run completes."""
    from pysearch.search.islands import RayTransport

    run = IslandRun(RayTransport("auto"), fast_config(), workers=2, migrate_every=1, migrants=2)
    killed = []

    def on_round(r: IslandRun, info) -> None:
        if info.round == 1:
            r.collect()
            killed.append(r.islands[1].actor)
            local_ray.kill(r.islands[1].actor, no_restart=True)

    try:
        run.start()
        run.run_rounds(3, None, on_round=on_round)
        front, _, _ = run.final(None)
    finally:
        run.close()
    assert killed and run.restarts == 1 and run.generations == [3, 3]
    assert front and all(e.verified == "exhaustive" for e in front)


class _CutConn:
    """A worker's pipe whose next send (or recv, after the reply arrived) is cut short by a signal."""

    def __init__(self, conn, where: str):
        self.conn, self.where = conn, where

    def __getattr__(self, name):
        return getattr(self.conn, name)

    def send(self, obj):
        if self.where == "send":
            self.where = None
            raise KeyboardInterrupt()
        return self.conn.send(obj)

    def recv(self):
        reply = self.conn.recv()
        if self.where == "recv":
            self.where = None
            raise KeyboardInterrupt()
        return reply


@pytest.mark.parametrize("where", ["send", "recv"])
def test_signal_in_the_pipe_does_not_hang_the_run(where):
    """A signal while a call is sent to a local island, or just after its reply is read: the island is
    treated as lost (the message may be cut, the reply is gone), so waiting for the calls in flight ends
    and the next call restarts it from its last state instead of waiting forever for a reply."""
    run = IslandRun(LocalTransport(2, threads=1), fast_config(), workers=2, migrate_every=1, migrants=2)
    previous = signal.signal(signal.SIGALRM, lambda *a: pytest.fail("the island run hung"))
    try:
        run.start()
        run.run_rounds(2, None)
        run.collect()
        run.islands[0].conn = _CutConn(run.islands[0].conn, where)
        with pytest.raises(KeyboardInterrupt):
            run.collect()
        signal.alarm(60)
        run.request_stop()
        run.finish_outstanding()
        run.collect()
        signal.alarm(0)
        assert run.restarts == 1 and run.generations == [2, 2]
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
        run.close()
