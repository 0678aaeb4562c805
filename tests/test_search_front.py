"""front.json: the Pareto front, its file format, picking the best program, checkpoints."""

from __future__ import annotations

import json

import pytest

from pysearch.search.checkpoint import load_checkpoint, save_checkpoint
from pysearch.search.front import FrontEntry, FrontFile, pareto_insert, read_front, write_front

P1 = "v1 = fma x 0.6931472 1\n"
P2 = "v1 = fma x 0.24 0.69\nv2 = fma v1 x 1\n"
P3 = "v1 = fma x 0.05 0.24\nv2 = fma v1 x 0.69\nv3 = fma v2 x 1\n"


def entry(text: str, max_ulp: float) -> FrontEntry:
    from pysearch.program import parse

    p = parse(text)
    return FrontEntry(p.to_text(), p.cost(), p.ops, p.latency(), max_ulp, "exhaustive", n_points=10)


def test_pareto_insert_keeps_nondominated():
    """Dominated entries are refused or removed; the front stays sorted by cost."""
    front: list[FrontEntry] = []
    assert pareto_insert(front, entry(P2, 10.0), "cost")
    assert pareto_insert(front, entry(P1, 100.0), "cost")
    assert not pareto_insert(front, entry(P3, 20.0), "cost")  # costlier and less accurate than P2
    assert pareto_insert(front, entry(P2.replace("0.24", "0.2401"), 5.0), "cost")  # same cost, better
    assert [(e.cost, e.max_ulp) for e in front] == [(1.0, 100.0), (2.0, 5.0)]


def test_best_pick():
    """best() is the cheapest program meeting the constraint, else the most accurate."""
    progs = [entry(P1, 3.0), entry(P2, 0.9), entry(P3, 0.6)]
    assert FrontFile("exp2", (0.0, 1.0), "float32", 1.0, progs).best().cost == 2.0
    assert FrontFile("exp2", (0.0, 1.0), "float32", None, progs).best().max_ulp == 0.6
    with pytest.raises(ValueError, match="no verified program meets"):
        FrontFile("exp2", (0.0, 1.0), "float32", 0.1, progs).best()


def test_front_file_round_trip(tmp_path):
    """write_front/read_front preserve the contract fields, and the file is strict JSON."""
    ff = FrontFile("exp2", (0.0, 0.99999994), "float32", 1.0, [entry(P2, 0.9)])
    path = tmp_path / "front.json"
    write_front(path, ff)
    doc = json.loads(path.read_text())
    assert doc["schema"] == 1 and doc["max_ulp_constraint"] == 1.0
    assert set(doc["programs"][0]) >= {"text", "cost", "ops", "latency", "max_ulp", "verified"}
    back = read_front(path)
    assert back.programs[0].text == ff.programs[0].text and back.domain == ff.domain
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize(
    "content, match",
    [
        ("not json", "not a readable front.json"),
        (json.dumps({"schema": 2, "programs": []}), "schema 2"),
        (json.dumps({"schema": 1, "programs": [{"text": P1}], "target": "exp2", "domain": [0, 1]}), "verified"),
        (json.dumps({"schema": 1, "programs": [], "target": "exp2", "domain": [0]}), "malformed"),
    ],
)
def test_bad_front_files(tmp_path, content, match):
    """Unreadable or malformed front files raise ValueError naming the problem."""
    path = tmp_path / "front.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=match):
        read_front(path)


def test_checkpoint_atomic_and_versioned(tmp_path):
    """Checkpoints round-trip; other kinds and versions are refused by name."""
    state = {"config": {}, "generation": 3, "rng": {"state": 1}, "population": ["x"]}
    save_checkpoint(tmp_path, state)
    assert load_checkpoint(tmp_path)["generation"] == 3
    doc = json.loads((tmp_path / "checkpoint.json").read_text())
    doc["schema"] = 7
    (tmp_path / "checkpoint.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="schema 7"):
        load_checkpoint(tmp_path)
    (tmp_path / "checkpoint.json").write_text(json.dumps({"schema": 1, "kind": "other"}))
    with pytest.raises(ValueError, match="not a pysearch search checkpoint"):
        load_checkpoint(tmp_path)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing")
