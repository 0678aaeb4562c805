"""The search package's rooms: engine.py re-exports the split modules' own objects, and they import directly."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from pysearch.search import budget, config, engine, individual, loop

SEARCH = Path(__file__).resolve().parent.parent / "pysearch" / "search"


def test_engine_reexports_the_split_modules_objects():
    assert engine.Search is loop.Search and engine.GenerationInfo is loop.GenerationInfo
    assert engine.SearchConfig is config.SearchConfig and engine.MAX_EXTRA_POINTS is config.MAX_EXTRA_POINTS
    assert engine.BudgetPlan is budget.BudgetPlan and engine.FINAL_FRACTION is budget.FINAL_FRACTION
    assert engine.structure_key is individual.structure_key and engine.Individual is individual.Individual
    assert sorted(engine.__all__) == sorted(n for n in vars(engine) if not n.startswith("_"))


@pytest.mark.parametrize("name", ["config", "individual", "loop", "verify", "budget", "checkpoint", "engine"])
def test_search_module_imports_are_direct(name):
    """No module-hub ``import pysearch`` inside functions: each dependency is imported by name at the top."""
    tree = ast.parse((SEARCH / f"{name}.py").read_text())
    local = [node.lineno for fn in ast.walk(tree) if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef))
             for node in ast.walk(fn) if isinstance(node, (ast.Import, ast.ImportFrom))]
    assert not local, f"search/{name}.py imports inside functions at lines {local}"
