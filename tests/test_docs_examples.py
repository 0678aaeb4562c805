"""Every example a newcomer reads runs: README.md's python blocks and command lines, and the
package's docstring examples (``>>>``).

README.md is read when the tests run, so the examples stay checked as the README changes. The
quick-start commands (install, ``pysearch demo``, the test suite) are run by ``.ci/run`` instead.

How the command lines run: each line of the README's "Command line" block that starts with
``pysearch`` runs, in order, as ``python -m pysearch ...`` in a scratch directory whose ``data``
links to the repository's ``data/``, with the arguments exactly as written except:

* ``pysearch search``: ``--generations 1`` is appended (the README's ``--budget 10m`` stays; the
  search stops at whichever comes first), so the search, its verification and its outputs run
  in seconds; the commands after it then read that short run's ``runs/exp2``.
* ``pysearch fit``: ``--budget 3s`` is appended (for a known form the budget caps the bootstrap).
"""

from __future__ import annotations

import doctest
import importlib
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PACKAGE = ROOT / "pysearch"
#: Appended to a README command (by sub-command) to shorten it; see the module docstring.
SHORTEN = {"search": ["--generations", "1"], "fit": ["--budget", "3s"]}


def readme_python_blocks() -> list[str]:
    """The fenced ```python blocks of README.md."""
    text = README.read_text(encoding="utf-8")
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE)


def readme_commands() -> list[list[str]]:
    """The ``pysearch ...`` lines of README.md's "Command line" section, split as a shell would."""
    text = README.read_text(encoding="utf-8")
    section = re.search(r"^## Command line\n(.*?)(?=^## )", text, flags=re.DOTALL | re.MULTILINE)
    assert section, "README.md has no '## Command line' section"
    blocks = re.findall(r"^```\n(.*?)^```", section.group(1), flags=re.DOTALL | re.MULTILINE)
    return [shlex.split(line, comments=True) for block in blocks for line in block.splitlines()
            if line.startswith("pysearch")]


def doctest_modules() -> list[str]:
    """Dotted names of the package's modules whose source holds a ``>>>`` example."""
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if ">>>" in path.read_text(encoding="utf-8"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


class TestReadmePython:
    """README python code blocks run as they are."""

    def test_blocks_found(self):
        """The README shows at least one python block (so the check below checks something)."""
        assert readme_python_blocks()

    @pytest.mark.parametrize("index", range(len(readme_python_blocks())))
    def test_block_runs(self, index, tmp_path, monkeypatch):
        """README python block number ``index`` runs without an error, in a scratch directory."""
        monkeypatch.chdir(tmp_path)
        code = readme_python_blocks()[index]
        exec(compile(code, f"README.md python block {index}", "exec"), {"__name__": "__readme__"})


@pytest.fixture(scope="module")
def readme_runs(tmp_path_factory) -> tuple[Path, list[tuple[list[str], subprocess.CompletedProcess]]]:
    """The scratch directory, and each README command with its completed process, run there in order."""
    work = tmp_path_factory.mktemp("readme-cli")
    (work / "data").symlink_to(ROOT / "data", target_is_directory=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "COLUMNS": "200"}
    out = []
    for argv in readme_commands():
        extra = SHORTEN.get(argv[1], []) if len(argv) > 1 else []
        cmd = [sys.executable, "-W", "error", "-m", "pysearch", *argv[1:], *extra]
        r = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=600, check=False)
        out.append((argv, r))
    return work, out


class TestReadmeCommandLine:
    """The README's command lines run with the repository's data (long ones shortened, see above)."""

    def test_commands_found(self):
        """The README shows the search, show, verify, export, fit and emergence commands."""
        subs = {argv[1] for argv in readme_commands() if len(argv) > 1}
        assert {"search", "show", "verify", "export", "fit", "emergence"} <= subs

    def test_fit_column_exists(self):
        """The fit example's --x and --y columns are in the CSV it names."""
        for argv in readme_commands():
            if argv[1:2] == ["fit"]:
                header = (ROOT / argv[2]).read_text(encoding="utf-8").splitlines()[0].split(",")
                for opt in ("--x", "--y"):
                    for col in argv[argv.index(opt) + 1].split(","):
                        assert col in header, f"README fit example: no column {col!r} in {argv[2]}"

    def test_each_command_succeeds(self, readme_runs):
        """Every README command exits 0 with no traceback."""
        for argv, r in readme_runs[1]:
            assert "Traceback" not in r.stderr, f"{shlex.join(argv)}:\n{r.stderr}"
            assert r.returncode == 0, f"{shlex.join(argv)} exited {r.returncode}:\n{r.stderr[-2000:]}"

    def test_outputs_written(self, readme_runs):
        """Each command leaves what the README says: its --out directory, the table, the exported kernel."""
        work, runs = readme_runs
        for argv, r in runs:
            if "--out" in argv:
                out = work / argv[argv.index("--out") + 1]
                assert out.is_dir() and any(out.iterdir()), f"{shlex.join(argv)} wrote nothing to {out}"
            if argv[1:2] == ["show"]:
                assert "best classical at cost <= this" in r.stdout and (work / argv[2] / "front.png").exists()
            if argv[1:2] == ["export"]:
                assert "fmaf" in r.stdout
            if argv[1:2] == ["--version"]:
                assert r.stdout.startswith("pysearch ")


class TestDocstringExamples:
    """The package's docstring examples run as doctests."""

    def test_modules_found(self):
        """Some modules carry examples (so the check below checks something)."""
        assert "pysearch.library" in doctest_modules()

    @pytest.mark.parametrize("name", doctest_modules())
    def test_examples_pass(self, name):
        """Every ``>>>`` example of the module runs and prints what it shows; none is skipped."""
        module = importlib.import_module(name)
        tests = doctest.DocTestFinder().find(module)
        examples = [ex for t in tests for ex in t.examples]
        assert examples, f"{name}: '>>>' in the source but no doctest found"
        skipped = [ex.source.strip() for ex in examples if ex.options.get(doctest.SKIP)]
        assert not skipped, f"{name}: skipped examples do not run: {skipped}"
        report: list[str] = []
        runner = doctest.DocTestRunner()
        for t in tests:
            runner.run(t, out=report.append)
        assert runner.failures == 0, f"{name}: {runner.failures} example(s) failed:\n{''.join(report)}"
