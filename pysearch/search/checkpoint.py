"""Search checkpoints: one JSON document, written atomically, read back with clear errors.

The document holds everything the next generation depends on (configuration, population,
archive, constant-fit cache, verified front, RNG state as numpy's JSON-able ``bit_generator.state``),
so a resumed run continues exactly where the checkpoint left it. Never pickle.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..fileio import write_json_atomic

CHECKPOINT_SCHEMA = 1
CHECKPOINT_KIND = "pysearch-search-checkpoint"
CHECKPOINT_NAME = "checkpoint.json"


def save_checkpoint(directory: Path | str, state: dict) -> Path:
    """Write ``state`` (JSON-able) as the run directory's checkpoint; return its path."""
    path = Path(directory) / CHECKPOINT_NAME
    doc = {"schema": CHECKPOINT_SCHEMA, "kind": CHECKPOINT_KIND, **state}
    write_json_atomic(path, doc)
    return path


def load_checkpoint(directory: Path | str) -> dict:
    """Read a run directory's checkpoint; raise ``FileNotFoundError``/``ValueError`` naming the problem."""
    path = Path(directory) / CHECKPOINT_NAME
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint in {directory} (expected {path})")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"checkpoint {path} is unreadable: {e}") from None
    if not isinstance(doc, dict) or doc.get("kind") != CHECKPOINT_KIND:
        raise ValueError(f"{path} is not a pysearch search checkpoint")
    if doc.get("schema") != CHECKPOINT_SCHEMA:
        raise ValueError(
            f"checkpoint {path} has schema {doc.get('schema')!r}; this pysearch reads schema {CHECKPOINT_SCHEMA}"
        )
    for key in ("config", "generation", "rng", "population"):
        if key not in doc:
            raise ValueError(f"checkpoint {path} is incomplete: no {key!r}")
    return doc
