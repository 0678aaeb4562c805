"""The hand-kept stub pysearch/_core.pyi matches the compiled extension (mypy.stubtest).

stubtest imports ``pysearch._core`` and compares every name, signature, default, class base and
runtime type with the stub; any difference is an error. No allowlist: the stub says exactly what
the module has. mypy is in the ``test`` extra, so ``pip install -e '.[test]'`` brings it.
"""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_stub_matches_the_compiled_module(tmp_path):
    """``python -m mypy.stubtest pysearch._core`` reports nothing and exits 0."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MYPY_CACHE_DIR": str(tmp_path / "mypy-cache")}
    r = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "pysearch._core", "--mypy-config-file", os.devnull],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, f"stubtest found differences:\n{r.stdout}\n{r.stderr}"
