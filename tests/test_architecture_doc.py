"""docs/architecture.md names every room it describes: each rust/ module and each pysearch/
sub-package exists and is named there (so a module added or removed shows up here)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "architecture.md").read_text()


def test_every_rust_module_is_in_the_doc():
    """Every rust/*.rs file has a row in the core's table (`name.rs`)."""
    modules = sorted(p.name for p in (ROOT / "rust").glob("*.rs") if p.name != "lib.rs")
    missing = [m for m in modules if f"`{m}`" not in DOC]
    assert not missing, f"docs/architecture.md does not name {missing}"


def test_every_python_subpackage_is_in_the_doc():
    """Every sub-package of pysearch/ (a folder with __init__.py) is named as `name/`."""
    packages = sorted(p.parent.name for p in (ROOT / "pysearch").glob("*/__init__.py"))
    missing = [p for p in packages if f"`{p}/`" not in DOC]
    assert not missing, f"docs/architecture.md does not name {missing}"
