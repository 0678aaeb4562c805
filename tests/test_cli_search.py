"""The search, verify and show commands: outputs, contract, Ctrl-C, resume, and bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pysearch.cli import main
from pysearch.program import parse
from pysearch.search.checkpoint import CHECKPOINT_NAME

NARROW = ["--domain", "1", "1.0078125"]
FAST = ["--population", "16", "--sample-size", "256", "--max-instrs", "6", "--verify-every", "2",
        "--no-baselines", "--checkpoint-every", "0"]
FRONT_KEYS = {"text", "cost", "ops", "latency", "max_ulp", "verified"}


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A short finished search on a narrow exp2 domain."""
    out = tmp_path_factory.mktemp("run") / "exp2"
    code = main(["search", "exp2", *NARROW, "--generations", "3", "--seed", "1", "--out", str(out), *FAST])
    assert code == 0
    return out


class TestSearchOutputs:
    def test_front_json_contract(self, finished_run):
        """front.json has the documented fields, and each max_ulp is an exhaustive figure."""
        doc = json.loads((finished_run / "front.json").read_text())
        assert doc["schema"] == 1
        assert doc["target"] == "exp2"
        assert doc["domain"] == [1.0, 1.0078125]
        assert doc["dtype"] == "float32"
        assert doc["max_ulp_constraint"] is None
        assert doc["programs"]
        for e in doc["programs"]:
            assert FRONT_KEYS <= set(e)
            assert e["verified"] == "exhaustive"
            p = parse(e["text"])
            assert (p.cost(), p.ops, p.latency()) == (e["cost"], e["ops"], e["latency"])

    def test_claimed_bounds_hold(self, finished_run):
        """Re-verifying every program of the front confirms each claimed max ULP."""
        import pysearch

        doc = json.loads((finished_run / "front.json").read_text())
        for e in doc["programs"]:
            st = pysearch.verify(e["text"], "exp2", (1.0, 1.0078125))
            assert st.max_ulp == pytest.approx(e["max_ulp"], rel=1e-12)

    def test_run_directory_contents(self, finished_run):
        """The run directory holds a JSON checkpoint, front.json and a PNG plot."""
        ck = json.loads((finished_run / CHECKPOINT_NAME).read_text())
        assert ck["schema"] == 1 and ck["generation"] == 3
        assert isinstance(ck["rng"]["state"]["state"], int)
        assert (finished_run / "front.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    def test_existing_run_needs_resume(self, finished_run, capsys):
        """Starting a new run in a directory that holds one is refused."""
        code, _, err = run_cli(["search", "exp2", *NARROW, "--out", str(finished_run), "--generations", "1"], capsys)
        assert code == 2 and "--resume" in err

    def test_resume_changing_settings_refused(self, finished_run, capsys):
        """A resumed run keeps its settings: a different seed is an error."""
        code, _, err = run_cli(["search", "exp2", "--out", str(finished_run), "--resume", "--seed", "9"], capsys)
        assert code == 2 and "seed" in err

    def test_verify_front(self, finished_run, capsys):
        """verify re-checks a front exhaustively and reports success."""
        code, out, _ = run_cli(["verify", str(finished_run / "front.json"), "--exhaustive", "--json"], capsys)
        assert code == 0
        res = json.loads(out)["results"]
        assert res and all(r["claim_holds"] for r in res)

    def test_verify_detects_false_claim(self, finished_run, tmp_path, capsys):
        """A front whose claimed bound is too low makes verify exit 1."""
        doc = json.loads((finished_run / "front.json").read_text())
        doc["programs"][-1]["max_ulp"] = doc["programs"][-1]["max_ulp"] / 4
        bad = tmp_path / "front.json"
        bad.write_text(json.dumps(doc))
        code, _, _ = run_cli(["verify", str(bad), "--exhaustive"], capsys)
        assert code == 1

    def test_show(self, finished_run, capsys):
        """show prints the front as a table and redraws the plot."""
        (finished_run / "front.png").unlink()
        code, out, _ = run_cli(["show", str(finished_run), "--programs"], capsys)
        assert code == 0
        assert "exhaustive" in out and "fma" in out
        assert (finished_run / "front.png").exists()


def test_verify_inline_program(capsys):
    """verify takes program text and a target, printing max ULP and where it occurs."""
    code, out, _ = run_cli(["verify", "v1 = fma x 1.3862944 2", "--target", "exp2", "--domain", "1", "0x1.02p0",
                            "--exhaustive", "--json"], capsys)
    assert code == 0
    r = json.loads(out)["results"][0]
    assert r["mode"] == "exhaustive" and r["n_points"] == 2**16 + 1
    assert r["max_ulp"] > 0 and 1 <= r["argmax_x"] <= 1.0078125


def test_resume_after_kill_matches_uninterrupted(tmp_path, capsys):
    """A run stopped after 2 generations and resumed to 4 ends like a run of 4."""
    args = ["search", "exp2", *NARROW, "--seed", "5", *FAST, "--no-plot"]
    assert main([*args, "--generations", "4", "--out", str(tmp_path / "a")]) == 0
    assert main([*args, "--generations", "2", "--out", str(tmp_path / "b")]) == 0
    assert main(["search", "exp2", "--out", str(tmp_path / "b"), "--resume", "--generations", "4", "--no-plot"]) == 0
    capsys.readouterr()
    a = json.loads((tmp_path / "a" / CHECKPOINT_NAME).read_text())
    b = json.loads((tmp_path / "b" / CHECKPOINT_NAME).read_text())
    for key in ("generation", "population", "archive", "front", "rng"):
        assert a[key] == b[key], key
    fa = json.loads((tmp_path / "a" / "front.json").read_text())
    fb = json.loads((tmp_path / "b" / "front.json").read_text())
    assert [e["text"] for e in fa["programs"]] == [e["text"] for e in fb["programs"]]
    # front.json says which command started the run; a resume keeps it
    import shlex

    assert fa["found_by"] == shlex.join(["pysearch", *args, "--generations", "4", "--out", str(tmp_path / "a")])
    assert fb["found_by"] == shlex.join(["pysearch", *args, "--generations", "2", "--out", str(tmp_path / "b")])


def test_front_found_by_is_checked_and_optional(tmp_path, finished_run):
    """found_by is optional (older front files lack it) and must be a string where present."""
    from pysearch.search.front import read_front

    doc = json.loads((finished_run / "front.json").read_text())
    assert read_front(finished_run / "front.json").found_by == doc["found_by"]
    for value, ok in ((None, True), ("x" * 100, True), (3, False), (["pysearch"], False)):
        d = dict(doc, found_by=value)
        (tmp_path / "f.json").write_text(json.dumps(d))
        if ok:
            assert read_front(tmp_path / "f.json").found_by == value
        else:
            with pytest.raises(ValueError, match="found_by: expected a string"):
                read_front(tmp_path / "f.json")
    del doc["found_by"]
    (tmp_path / "old.json").write_text(json.dumps(doc))
    assert read_front(tmp_path / "old.json").found_by is None


def test_restart_after_from_the_cli(tmp_path, capsys):
    """--restart-after G: the run says how often its population started again, the count is in the
    checkpoint, and a resume with another G is refused in one line (a resumed run keeps its settings)."""
    out = tmp_path / "r"
    args = ["search", "exp2", *NARROW, "--seed", "2", *FAST, "--no-plot", "--out", str(out)]
    code, out_text, err_text = run_cli([*args, "--generations", "10", "--restart-after", "1"], capsys)
    text = " ".join((out_text + err_text).split())  # the console may wrap lines
    assert code == 0
    ck = json.loads((out / CHECKPOINT_NAME).read_text())
    n = ck["problem_state"]["population_restarts"]
    assert n >= 1 and f"population restarted {n} time(s) (after 1 generations" in text
    code, _, err = run_cli(["search", "exp2", "--out", str(out), "--resume", "--generations", "12",
                            "--restart-after", "5"], capsys)
    assert code == 2 and "--restart-after 5 differs from the checkpointed run (1)" in err
    code, _, err = run_cli([*args[:-1], str(tmp_path / "bad"), "--generations", "2", "--restart-after", "-1"], capsys)
    assert code == 2 and "restart_after" in err and "Traceback" not in err


def test_max_per_structure_from_the_cli(tmp_path, capsys):
    """--max-per-structure K goes into the run's configuration (checkpointed; a resume with another K is
    refused in one line), and a negative K is exit 2 naming the setting."""
    out = tmp_path / "r"
    args = ["search", "exp2", *NARROW, "--seed", "2", *FAST, "--no-plot", "--out", str(out)]
    code, _, _ = run_cli([*args, "--generations", "3", "--max-per-structure", "2"], capsys)
    assert code == 0
    assert json.loads((out / CHECKPOINT_NAME).read_text())["config"]["max_per_structure"] == 2
    code, _, err = run_cli(["search", "exp2", "--out", str(out), "--resume", "--generations", "4",
                            "--max-per-structure", "3"], capsys)
    assert code == 2 and "--max-per-structure 3 differs from the checkpointed run (2)" in err
    code, _, err = run_cli([*args[:-1], str(tmp_path / "bad"), "--generations", "2", "--max-per-structure", "-1"],
                           capsys)
    assert code == 2 and "max_per_structure" in err and "Traceback" not in err


def test_ctrl_c_saves_checkpoint(tmp_path):
    """SIGINT during a search saves a loadable checkpoint and exits 130 without a traceback."""
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "pysearch", "search", "exp2", *NARROW, "--generations", "100000",
           "--out", str(out), *FAST, "--no-plot"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ck = out / CHECKPOINT_NAME
            if ck.exists() and json.loads(ck.read_text()).get("generation", 0) >= 2:
                break
            time.sleep(0.2)
        else:
            pytest.fail("the search never reached generation 2")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()  # reap it and close its pipes (no ResourceWarning in a later test)
    assert proc.returncode == 130
    assert "Traceback" not in err and "interrupted" in err
    ck = json.loads((out / CHECKPOINT_NAME).read_text())
    assert ck["generation"] >= 2
    assert json.loads((out / "front.json").read_text())["schema"] == 1


class TestBadInput:
    @pytest.mark.parametrize(
        "args, needle",
        [
            (["search", "cube", "--generations", "1"], "unknown target"),
            (["search", "exp2", "--domain", "1", "0", "--generations", "1"], "bad domain"),
            (["search", "exp2", "--domain", "0", "abc", "--generations", "1"], "bad domain bound"),
            (["search", "exp2", "--domain", "0", "inf", "--generations", "1"], "finite"),
            (["search", "exp2", "--budget", "soon"], "bad duration"),
            (["search", "exp2", "--ops", "add,cube", "--generations", "1"], "unknown op"),
            (["search", "exp2", "--cost-weights", "cube=1", "--generations", "1"], "unknown op"),
            (["search", "exp2", "--cost-weights", "add", "--generations", "1"], "OP=WEIGHT"),
            (["search", "exp2", "--cost-weights", "add=-1", "--generations", "1"], ">= 0"),
            (["search", "exp2", "--seed-program", "/nonexistent/p.txt", "--generations", "1"], "cannot read"),
            (["verify", "v1 = fma x 0.5 1"], "--target"),
            (["verify", "/nonexistent/front.json"], "no such file"),
            (["show", "/nonexistent/dir"], "not a directory"),
        ],
    )
    def test_one_line_error(self, args, needle, capsys, tmp_path):
        """User mistakes give exit status 2 and one clear line on stderr."""
        if args[0] == "search":
            args = [*args, "--out", str(tmp_path / "r")]
        code, _, err = run_cli(args, capsys)
        assert code == 2
        assert needle in err
        assert len(err.strip().splitlines()) == 1

    def test_resume_without_checkpoint(self, tmp_path, capsys):
        """--resume on a directory without a checkpoint is one clear error."""
        code, _, err = run_cli(["search", "exp2", "--out", str(tmp_path), "--resume"], capsys)
        assert code == 2 and "no checkpoint" in err

    def test_unreadable_checkpoint(self, tmp_path, capsys):
        """A corrupt checkpoint is reported, not a traceback."""
        (tmp_path / CHECKPOINT_NAME).write_text("{not json")
        code, _, err = run_cli(["search", "exp2", "--out", str(tmp_path), "--resume"], capsys)
        assert code == 2 and "unreadable" in err

    def test_wrong_version_checkpoint(self, tmp_path, capsys):
        """A checkpoint of another schema version names both versions."""
        (tmp_path / CHECKPOINT_NAME).write_text(json.dumps(
            {"schema": 99, "kind": "pysearch-search-checkpoint", "config": {}, "generation": 0, "rng": {},
             "population": []}))
        code, _, err = run_cli(["search", "exp2", "--out", str(tmp_path), "--resume"], capsys)
        assert code == 2 and "schema 99" in err

    def test_unreadable_front(self, tmp_path, capsys):
        """verify and show report a malformed front.json in one line."""
        (tmp_path / "front.json").write_text(json.dumps({"schema": 2, "programs": []}))
        code, _, err = run_cli(["show", str(tmp_path)], capsys)
        assert code == 2 and "schema 2" in err


def test_cost_weights_and_seed_program(tmp_path, capsys):
    """--cost-weights weights the front's cost (recorded in front.json); --seed-program is accepted."""
    seed = tmp_path / "seed.txt"
    seed.write_text("v1 = fma x 0.24022651 0.6931472\nv2 = fma v1 x 1\n")
    out = tmp_path / "r"
    code, _, _ = run_cli(["search", "exp2", *NARROW, "--generations", "2", "--out", str(out), *FAST,
                          "--cost-weights", "add=0.25,sub=0.25", "--seed-program", str(seed)], capsys)
    assert code == 0
    doc = json.loads((out / "front.json").read_text())
    assert doc["cost_weights"] == {"add": 0.25, "sub": 0.25}
    assert doc["programs"]
    for e in doc["programs"]:
        assert e["cost"] == parse(e["text"]).cost({"add": 0.25, "sub": 0.25})
    code, _, err = run_cli(["search", "exp2", *NARROW, "--generations", "3", "--out", str(out), "--resume",
                            "--cost-weights", "add=0.5"], capsys)
    assert code == 2 and "differs" in err
