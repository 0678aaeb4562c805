"""A newcomer's first hour: ``show`` beside classical baselines, ``--version``, library calls on
plain Python numbers, and a library docstring that names what exists."""

from __future__ import annotations

import contextlib
import io
import json
import math
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import pysearch
from pysearch import library
from pysearch.cli import main
from pysearch.search.classical import BASELINES_NAME, BASELINES_SCHEMA, best_at_or_below
from pysearch.search.plot import BaselinePoint

ROOT = Path(__file__).resolve().parent.parent
DOMAIN = (0.0, float(np.nextafter(np.float32(1), np.float32(0))))  # [0, 1)
#: A degree-4 polynomial for exp2 written with mul and add instead of fma: cost 8, tens of ULP.
MUL_ADD_POLY = """v1 = mul 0.013534168 x
v2 = add v1 0.05201146
v3 = mul v2 x
v4 = add v3 0.24144275
v5 = mul v4 x
v6 = add v5 0.69300383
v7 = mul v6 x
v8 = add v7 1.0000026
"""


def _entry(text: str, max_ulp: float, verified: str) -> dict:
    p = pysearch.parse(text)
    return {"text": p.to_text(), "cost": p.cost(), "ops": p.ops, "latency": p.latency(), "max_ulp": max_ulp,
            "verified": verified}


def _write_front(d: Path, **extra) -> None:
    mul_add = pysearch.parse(MUL_ADD_POLY)
    sampled = float(pysearch.ulp_error(mul_add, pysearch.Domain(*DOMAIN).sample(1 << 16, 0), "exp2").max_ulp)
    shipped = library.get("exp2_reduced")  # the demo's 6-fma kernel, verified exhaustively
    doc = {"schema": 1, "target": "exp2", "domain": list(DOMAIN), "dtype": "float32", "max_ulp_constraint": None,
           "objective": "cost", **extra,
           "programs": [_entry(MUL_ADD_POLY, sampled, "sampled"),
                        _entry(shipped.program.to_text(), shipped.max_ulp, "exhaustive")]}
    d.mkdir(parents=True, exist_ok=True)
    (d / "front.json").write_text(json.dumps(doc), encoding="utf-8")


def _show(args: list[str], capsys, monkeypatch) -> tuple[int, str, str]:
    monkeypatch.setenv("COLUMNS", "240")  # one table row per line
    code = main(["show", *args])
    out, err = capsys.readouterr()
    return code, out, err


def _rows(out: str) -> dict[int, str]:
    """Table rows by front index (rows start with the index and a column separator)."""
    return {int(m.group(1)): line for line in out.splitlines() if (m := re.match(r"^(\d+) +│", line))}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A run directory with a front.json of two exp2 programs and no baselines.json yet."""
    d = tmp_path_factory.mktemp("show") / "exp2"
    _write_front(d)
    return d


@pytest.fixture(scope="module")
def shown(run_dir) -> tuple[int, str]:
    """(exit status, stdout) of ``pysearch show RUN --no-plot``, which computes and caches the baselines."""
    buf = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(buf):
        mp.setenv("COLUMNS", "240")  # one table row per line
        code = main(["show", str(run_dir), "--no-plot"])
    return code, buf.getvalue()


class TestShowClassicalBaselines:
    """Item 1: ``pysearch show`` puts the best classical baseline of equal or lower cost beside each entry."""

    def test_column_names_best_cheaper_baseline(self, run_dir, shown):
        """Each row names the most accurate cached baseline whose cost is at most the entry's."""
        code, out = shown
        assert code == 0
        assert "best classical at cost <= this" in out
        doc = json.loads((run_dir / BASELINES_NAME).read_text())
        front = json.loads((run_dir / "front.json").read_text())["programs"]
        rows = _rows(out)
        assert sorted(rows) == list(range(len(front)))
        for i, e in enumerate(front):
            cheaper = [b for b in doc["baselines"] if b["cost"] <= e["cost"] and b["max_ulp"] is not None]
            best = min(cheaper, key=lambda b: (b["max_ulp"], b["cost"]))
            assert f"{best['label']}: cost {best['cost']:g}," in rows[i]

    def test_dominated_entries_are_marked(self, run_dir, shown):
        """The mul/add polynomial (tens of ULP at cost 8) is marked dominated by a cheaper Horner baseline."""
        _, out = shown
        rows = _rows(out)
        front = json.loads((run_dir / "front.json").read_text())["programs"]
        assert front[0]["max_ulp"] > 10
        assert "YES" in rows[0]
        doc = json.loads((run_dir / BASELINES_NAME).read_text())
        for i, e in enumerate(front):
            beats = any(b["cost"] <= e["cost"] and b["max_ulp"] is not None and b["max_ulp"] <= e["max_ulp"]
                        and (b["cost"], b["max_ulp"]) != (e["cost"], e["max_ulp"]) for b in doc["baselines"])
            assert ("YES" in rows[i]) == beats

    def test_baselines_cached_with_program_text(self, run_dir, shown):
        """show computes the baselines once and caches them with each program's text and cost."""
        doc = json.loads((run_dir / BASELINES_NAME).read_text())
        assert doc["schema"] == BASELINES_SCHEMA and doc["target"] == "exp2"
        assert len(doc["baselines"]) >= 3
        for b in doc["baselines"]:
            assert pysearch.parse(b["text"]).cost() == b["cost"]

    def test_run_cost_weights_apply_to_baselines(self, run_dir, shown, tmp_path, capsys, monkeypatch):
        """With the run's op weights (fma = 2) the baselines are costed like the front: horner 6 costs 12."""
        d = tmp_path / "weighted"
        _write_front(d, cost_weights={"fma": 2.0})
        shutil.copy(run_dir / BASELINES_NAME, d / BASELINES_NAME)  # cached under the default weights
        code, out, _ = _show([str(d), "--no-plot"], capsys, monkeypatch)
        assert code == 0
        row = _rows(out)[1]  # the 6-fma kernel, cost 12 under these weights
        assert re.match(r"^1 +│ +12 │", row)
        assert "horner 6: cost 12," in row

    def test_stale_cache_is_recomputed(self, tmp_path, capsys, monkeypatch):
        """A baselines.json of the old schema (no program text) is recomputed, not trusted."""
        d = tmp_path / "stale"
        _write_front(d)
        (d / BASELINES_NAME).write_text(json.dumps({"schema": 1, "target": "exp2", "domain": list(DOMAIN),
                                                    "baselines": []}))
        code, out, _ = _show([str(d), "--no-plot"], capsys, monkeypatch)
        assert code == 0 and "horner" in out
        assert json.loads((d / BASELINES_NAME).read_text())["schema"] == BASELINES_SCHEMA

    def test_no_baselines_flag(self, tmp_path, capsys, monkeypatch):
        """--no-baselines leaves the column out and computes nothing."""
        d = tmp_path / "plain"
        _write_front(d)
        code, out, _ = _show([str(d), "--no-plot", "--no-baselines"], capsys, monkeypatch)
        assert code == 0 and "best classical" not in out and len(_rows(out)) == 2
        assert not (d / BASELINES_NAME).exists()

    def test_plot_with_dominated_entries(self, run_dir, shown, tmp_path, capsys, monkeypatch):
        """front.png is redrawn with the cached baselines (and the dominated entries crossed out)."""
        d = tmp_path / "plot"
        _write_front(d)
        shutil.copy(run_dir / BASELINES_NAME, d / BASELINES_NAME)
        code, _, _ = _show([str(d)], capsys, monkeypatch)
        assert code == 0
        assert (d / "front.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    def test_best_at_or_below(self):
        """The most accurate baseline at or below the cost wins; none when all cost more; latency works too."""
        pts = [BaselinePoint("a", 2, 8, 100.0, "sampled"), BaselinePoint("b", 4, 16, 3.0, "sampled"),
               BaselinePoint("c", 5, 20, 3.0, "sampled"), BaselinePoint("d", 6, 9, 0.5, "sampled")]
        assert best_at_or_below(pts, 1) is None
        assert best_at_or_below(pts, 3).label == "a"
        assert best_at_or_below(pts, 5).label == "b"  # ties on max ULP go to the cheaper
        assert best_at_or_below(pts, 6).label == "d"
        assert best_at_or_below(pts, 9, "latency").label == "d"
        assert best_at_or_below(pts, 16, "latency").label == "d"
        assert best_at_or_below(pts, 8.5, "latency").label == "a"


class TestVersion:
    """Item 2: ``pysearch --version`` prints the one package version."""

    def test_cli_version(self, capsys):
        """``pysearch --version`` prints 'pysearch VERSION' and exits 0."""
        with pytest.raises(SystemExit) as ex:
            main(["--version"])
        assert ex.value.code == 0
        assert capsys.readouterr().out == f"pysearch {pysearch.__version__}\n"

    def test_module_entry_point(self):
        """``python -m pysearch --version`` works as a subprocess too."""
        r = subprocess.run([sys.executable, "-m", "pysearch", "--version"], capture_output=True, text=True,
                           cwd=ROOT, timeout=120, check=False)
        assert r.returncode == 0 and r.stdout.strip() == f"pysearch {pysearch.__version__}"

    def test_sources_agree(self):
        """pyproject.toml's version, pysearch.__version__ and the installed metadata say the same."""
        tomllib = pytest.importorskip("tomllib")
        project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
        assert "version" in project, "pyproject.toml must state the version (the single source)"
        assert pysearch.__version__ == project["version"]
        try:
            installed = metadata.version("pysearch")
        except metadata.PackageNotFoundError:
            return  # running from a source tree that is not installed
        assert installed == pysearch.__version__, "the installed pysearch is stale: reinstall (pip install -e .)"


class TestLibraryInputs:
    """Item 3: library functions take Python numbers, lists and numpy scalars, and refuse the rest clearly."""

    def test_python_float_gives_float(self):
        """``exp2(0.5)`` returns a Python float equal to the float32 evaluation."""
        y = library.exp2(0.5)
        assert type(y) is float
        assert y == float(library.exp2(np.float32(0.5))) == float(np.float32(math.sqrt(2)))

    def test_int_and_unrepresentable_float(self):
        """Ints and floats not representable in float32 are rounded to nearest float32 first."""
        assert library.exp2(3) == 8.0 and type(library.exp2(3)) is float
        assert library.exp(0.1) == float(library.exp(np.float32(0.1)))
        assert library.exp2(1e39) == math.inf and library.exp2(-1e39) == 0.0  # beyond float32: +-inf

    def test_lists_give_arrays(self):
        """Lists and tuples (nested too) give float32 arrays of their shape."""
        y = library.exp2([[0, 1], [2, -1]])
        assert isinstance(y, np.ndarray) and y.dtype == np.float32 and y.shape == (2, 2)
        np.testing.assert_array_equal(y, np.float32([[1, 2], [4, 0.5]]))
        assert library.exp2((0.5,)).shape == (1,)
        assert library.exp2([]).shape == (0,)

    def test_numpy_scalars(self):
        """numpy scalars of other real dtypes give an np.float32."""
        for v in (np.float64(0.5), np.float16(0.5), np.int32(3), np.uint8(3), np.float32(3)):
            y = library.exp2(v)
            assert type(y) is np.float32 and y == library.exp2(np.float32(v))

    def test_arrays(self):
        """float32 arrays keep their shape; float16 arrays convert exactly; 0-d arrays give a scalar."""
        a = np.linspace(-2, 2, 12, dtype=np.float32).reshape(3, 4)
        assert library.exp2(a).shape == (3, 4)
        np.testing.assert_array_equal(library.exp2(a.astype(np.float16)), library.exp2(a.astype(np.float16).astype(np.float32)))
        assert type(library.exp2(np.array(2, dtype=np.float32))) is np.float32

    @pytest.mark.parametrize(
        "value, error, needle",
        [
            (True, TypeError, "not bool"),
            ("1.5", TypeError, "not str"),
            (None, TypeError, "not NoneType"),
            (1 + 2j, TypeError, "not complex"),
            ([1, None], TypeError, "list of object"),
            ([[1.0], [2.0, 3.0]], ValueError, "ragged"),
            (10 ** 400, ValueError, "beyond the float32 range"),
            (np.array([1.0]), TypeError, "astype"),
            (np.array([1]), TypeError, "float32 array"),
            (np.array(["a"]), TypeError, "array of <U1"),
        ],
    )
    def test_bad_input(self, value, error, needle):
        """Bad input raises a named error whose one-line message says what was wrong."""
        with pytest.raises(error, match=re.escape(needle)) as ex:
            library.exp2(value)
        assert "\n" not in str(ex.value)

    @given(st.floats(allow_nan=True, allow_infinity=True))
    def test_python_float_matches_float32_path(self, v):
        """For any Python float, the result is the float32 evaluation at the float32 nearest it, bit for bit."""
        with np.errstate(over="ignore"):
            x32 = np.float32(v)
        got = np.float32(library.exp(v))
        want = library.exp(x32)
        assert got.view(np.uint32) == want.view(np.uint32) or (np.isnan(got) and np.isnan(want))


class TestLibraryDocstring:
    """Item 4: the ``pysearch.library`` docstring names only functions and kernels that exist."""

    def test_named_things_exist(self):
        """Every ``library.NAME``, ``get("NAME")`` and quoted kernel name in the docstring exists."""
        doc = library.__doc__
        attrs = set(re.findall(r"library\.(\w+)", doc))
        assert attrs, "the docstring shows no library call"
        for name in attrs:
            assert hasattr(library, name), f"the docstring names library.{name}, which does not exist"
        quoted = set(re.findall(r"""get\(["'](\w+)["']\)""", doc))
        listed = re.search(r">>> library\.names\(\).*\n(.*)\n", doc)
        assert listed, "the docstring shows library.names()"
        quoted |= set(re.findall(r"'(\w+)'", listed.group(1)))
        assert quoted
        missing = quoted - set(library.names())
        assert not missing, f"the docstring names kernels that do not ship: {sorted(missing)}"


class TestCliErrorsAreOneLine:
    @pytest.mark.parametrize("exc", [NotADirectoryError(20, "Not a directory", "out/k.c"),
                                     OSError(28, "No space left on device"),
                                     MemoryError("cannot allocate 2**40 floats\n(16 TiB)")])
    def test_os_and_memory_errors_are_one_line_exit_2(self, monkeypatch, capsys, exc):
        """An OSError or MemoryError escaping a command is one line on stderr and exit status 2, no traceback."""
        import argparse

        from pysearch import cli

        def failing(args):
            raise exc

        parser = argparse.ArgumentParser(prog="pysearch")
        parser.set_defaults(func=failing, command="export")
        monkeypatch.setattr(cli, "build_parser", lambda only=None: parser)
        rc = cli.main([])
        err = capsys.readouterr().err
        assert rc == 2
        assert len(err.strip().splitlines()) == 1
        assert err.startswith("pysearch export: error: ") and "Traceback" not in err
