"""The Rust/Python boundary: array layouts, key ranges, allocation, Ctrl-C, named exceptions."""

from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import pysearch as ps
from pysearch import _core

ROOT = Path(__file__).resolve().parent.parent
SUB2 = ps.parse("inputs x, y\nv1 = sub x y\n")  # x - y: any misread of rows or columns shows
EXP2_DEG2 = ps.parse("v1 = fma x 0.3371894 0.6576363\nv2 = fma v1 x 1.0017247\n")
KEY_MIN, KEY_MAX = -2139095041, 2139095040  # keys of -inf and +inf


def _layouts(a: np.ndarray) -> dict[str, np.ndarray]:
    """The same 2-D values in layouts other than C order (each holds exactly a's values)."""
    wide = np.zeros((a.shape[0], 2 * a.shape[1]), a.dtype)
    wide[:, ::2] = a
    rev = np.ascontiguousarray(a[:, ::-1])
    return {
        "fortran": np.asfortranarray(a),
        "strided": wide[:, ::2],
        "reversed": rev[:, ::-1],
        "rows reversed": np.ascontiguousarray(a[::-1])[::-1],
    }


def _run_child(code: str, timeout: float = 120, preexec=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=ROOT, preexec_fn=preexec)


class TestArrayLayouts:
    """Item 1: every array `_core` takes is read in C order or refused, never misread."""

    @pytest.mark.parametrize("layout", ["fortran", "strided", "reversed", "rows reversed"])
    def test_non_c_order_inputs_are_refused(self, layout):
        """A 2-input x in Fortran order, strided or reversed is a TypeError, not wrong values."""
        x = np.array([[1, 2, 3], [10, 20, 30]], np.float32)
        with pytest.raises(TypeError, match="C-contiguous"):
            _core.evaluate([SUB2.compile().as_tuple()], _layouts(x)[layout])

    @given(
        rows=st.integers(2, 3),
        cols=st.integers(2, 9),
        layout=st.sampled_from(["fortran", "strided", "reversed", "rows reversed", "int32", "float16"]),
        seed=st.integers(0, 2**32 - 1),
    )
    def test_fuzz_layouts_read_right_or_refused(self, rows, cols, layout, seed):
        """Any layout or dtype either gives the C-order result bit for bit or raises TypeError."""
        prog = ps.parse(f"inputs {', '.join(f'x{i}' for i in range(rows))}\nv1 = fma x0 x1 x{rows - 1}\n")
        x = np.random.default_rng(seed).standard_normal((rows, cols)).astype(np.float32)
        want = _core.evaluate([prog.compile().as_tuple()], x)
        odd = x.astype(layout) if layout in ("int32", "float16") else _layouts(x)[layout]
        try:
            got = _core.evaluate([prog.compile().as_tuple()], odd)
        except TypeError:
            return
        assert got.tobytes() == want.tobytes()

    def test_fortran_out_is_refused(self):
        """A Fortran-order `out` of the right shape is refused instead of being filled in the wrong order."""
        x = np.arange(6, dtype=np.float32).reshape(1, 6)
        out = np.zeros((6, 2), np.float32).T  # shape (2, 6), Fortran order
        with pytest.raises(TypeError, match="out is not C-contiguous"):
            _core.evaluate([EXP2_DEG2.compile().as_tuple()] * 2, x, out)

    def test_out_sharing_memory_with_x_is_refused(self):
        """`out` that is x itself is refused with a ValueError, not overwritten while read."""
        x = np.arange(6, dtype=np.float32).reshape(1, 6)
        with pytest.raises(ValueError, match="shares no memory with x"):
            _core.evaluate([EXP2_DEG2.compile().as_tuple()], x, x)

    def test_program_arrays_in_fortran_order_are_refused(self):
        """A program whose args array is in Fortran order is refused (it would decode other operands)."""
        ops, args, consts, n_in, out = SUB2.compile().as_tuple()
        args = np.asfortranarray(np.vstack([args, args]))
        ops = np.concatenate([ops, ops])
        with pytest.raises(TypeError, match="C-contiguous"):
            _core.evaluate([(ops, args, consts, n_in, out + 1)], np.zeros((2, 3), np.float32))
        with pytest.raises(TypeError, match="C-contiguous"):
            _core.jit_compiled([(ops, args, consts, n_in, out + 1)])

    @pytest.mark.parametrize("which", ["x", "reference", "rounded"])
    def test_sample_errors_refuse_reversed_arrays(self, which):
        """Each 1-D array of sample_ulp_errors is refused when reversed, naming it."""
        x = np.linspace(0.5, 1, 16, dtype=np.float32)
        ref, rounded, _ = _core.reference("exp2", x)
        arrays = {"x": x, "reference": ref, "rounded": rounded}
        arrays[which] = np.ascontiguousarray(arrays[which][::-1])[::-1]
        with pytest.raises(TypeError, match=f"{which} is not C-contiguous"):
            _core.sample_ulp_errors([EXP2_DEG2.compile().as_tuple()], arrays["x"], arrays["reference"],
                                    arrays["rounded"])

    def test_wrong_dtype_is_named(self):
        """A float64 x for reference() is a TypeError naming the argument and both dtypes."""
        with pytest.raises(TypeError, match="x must be a 1-D numpy array of float32, not an array of float64"):
            _core.reference("exp2", np.zeros(4))
        with pytest.raises(TypeError, match="x must be a 2-D float32 or float64"):
            _core.evaluate([EXP2_DEG2.compile().as_tuple()], np.zeros((1, 4), np.int64))


class TestFloat32FromKeys:
    """Item 2: keys outside -inf..inf are refused, not wrapped."""

    @pytest.mark.parametrize("start,count", [(2**31, 3), (-(2**33), 2), (KEY_MAX, 2), (KEY_MIN - 1, 1),
                                             (0, 2**40), (2**100, 1), (0, -1)])
    def test_out_of_range_keys_raise(self, start, count):
        """Keys past either end (or a negative count) raise a DomainError naming the range."""
        with pytest.raises(ps.DomainError, match=r"outside .*\[") as e:
            _core.float32_from_keys(start, count)
        assert isinstance(e.value, ValueError)

    def test_ends_of_the_range_are_the_infinities(self):
        """The first and last keys are -inf and +inf, and keys around zero give -0 and +0."""
        assert _core.float32_from_keys(KEY_MIN, 1)[0] == -np.inf
        assert _core.float32_from_keys(KEY_MAX, 1)[0] == np.inf
        z = _core.float32_from_keys(-1, 2)
        assert np.signbit(z).tolist() == [True, False] and (z == 0).all()
        assert len(_core.float32_from_keys(KEY_MAX, 0)) == 0

    def test_non_integers_are_type_errors(self):
        """A float key is a TypeError, not truncated."""
        with pytest.raises(TypeError, match="must be an integer"):
            _core.float32_from_keys(1.5, 2)


_MEMORY_CHILD = """
    import resource, numpy as np, pysearch as ps
    from pysearch import _core
    vm = next(int(l.split()[1]) << 10 for l in open("/proc/self/status") if l.startswith("VmSize:"))
    resource.setrlimit(resource.RLIMIT_AS, (vm + (2 << 30), vm + (2 << 30)))  # 2 GiB more than now
    p = ps.parse("v1 = mul x x\\n")
    for call in (lambda: ps.evaluate([p] * 10000, np.zeros(10**6, np.float32)),
                 lambda: _core.float32_from_keys({kmin}, {count}),
                 lambda: _core.evaluate([p.compile().as_tuple()] * 10000, np.zeros((1, 10**6), np.float32))):
        try:
            call()
            print("allocated")
        except MemoryError as e:
            print(type(e).__name__, e)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="address-space limit via resource.RLIMIT_AS")
class TestAllocation:
    """Item 3: outputs too big to allocate are a MemoryError naming the size, never an abort or panic."""

    def test_huge_outputs_raise_memory_error(self):
        """With 2 GiB of address space to spare, a 37 GiB evaluation and a 16 GiB key range raise MemoryError."""
        r = _run_child(_MEMORY_CHILD.format(kmin=KEY_MIN, count=KEY_MAX - KEY_MIN + 1))
        assert r.returncode == 0, r.stderr
        lines = r.stdout.splitlines()
        # the user path allocates the output with numpy (or the recycled-output pool): its MemoryError names the size
        assert lines[0].startswith("MemoryError ") and "37.3 GiB" in lines[0], lines[0]
        assert lines[1] == "MemoryError cannot allocate the float32 values: 4278190082 float32 values (15.9 GiB)"
        assert lines[2] == "MemoryError cannot allocate the evaluation's output: 10000000000 float32 values (37.3 GiB)"
        assert "PanicException" not in r.stderr


_INTERRUPT_CHILD = """
    import signal, sys, numpy as np, pysearch as ps
    # Ctrl-C raises KeyboardInterrupt even where the test runs under a parent that ignores SIGINT
    # (a job started in the background by a non-interactive shell): Python then leaves it ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    kind = sys.argv[1] if len(sys.argv) > 1 else "{kind}"
    L = 20000
    text = "v1 = fma x 0.5 0.5\\n" + "".join(f"v{{i}} = fma v{{i-1}} x 0.5\\n" for i in range(2, L + 1))
    p = ps.parse(text)
    x = np.linspace(0.5, 1, 1 << 21, dtype=np.float32)
    out = np.full((16, len(x)), np.nan, np.float32)
    print("started", flush=True)
    try:
        if kind == "evaluate":
            ps.evaluate([p] * 16, x, out=out)
        elif kind == "ulp_error":
            ps.ulp_error([p] * 16, x, "exp2")
        else:
            ps.verify(p, "exp2", (0.5, 1.0))
    except KeyboardInterrupt:
        print("interrupted", int(np.isnan(out).sum()), out.size, flush=True)
        sys.exit(3)
    print("finished", flush=True)
"""


@pytest.mark.skipif(os.name != "posix", reason="sends SIGINT")
class TestInterrupt:
    """Item 4: Ctrl-C stops a long evaluation, error measurement or verification promptly."""

    @pytest.mark.parametrize("kind", ["evaluate", "ulp_error", "verify"])
    def test_sigint_stops_a_long_call(self, kind):
        """SIGINT during hours of work ends the call with KeyboardInterrupt (evaluate: with output left unwritten)."""
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(_INTERRUPT_CHILD.format(kind=kind))],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
        try:
            assert proc.stdout.readline().strip() == "started"
            try:
                proc.wait(timeout=0.5)  # let the call get going
            except subprocess.TimeoutExpired:
                pass
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=90)  # generous: a step is well under a second
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        assert proc.returncode == 3, err
        word, n_nan, size = out.split()
        assert word == "interrupted"
        if kind == "evaluate":
            assert 0 < int(n_nan) <= int(size)  # stopped inside the call, not after it


_FORK_CHILD = """
    import os, warnings, numpy as np, pysearch as ps
    warnings.simplefilter("ignore", DeprecationWarning)  # Python 3.12+ warns about fork with threads
    p = ps.parse("v1 = fma x 0.3371894 0.6576363\\nv2 = fma v1 x 1.0017247\\n")
    x = np.linspace(-1, 1, 1 << 18, dtype=np.float32)
    want = ps.evaluate([p] * 8, x)  # starts the global worker pool, which a fork does not copy
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        got = ps.evaluate([p] * 8, x)
        os.write(w, b"same" if got.tobytes() == want.tobytes() else b"diff")
        os._exit(0)
    os.waitpid(pid, 0)
    print(os.read(r, 4).decode())
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
class TestForkedChild:
    """Item 4: the chokepoint runs work on a fresh worker pool in a forked child (DEAP users fork)."""

    def test_evaluate_after_fork(self):
        """A forked child evaluates the same values as its parent instead of hanging on a dead pool."""
        r = _run_child(_FORK_CHILD, timeout=120)
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == "same"


class TestNamedErrors:
    """Item 5: core errors are named ValueError subclasses exported from pysearch."""

    @pytest.mark.parametrize("name", ["ProgramError", "DomainError", "UnknownTarget", "WorkerPoolError"])
    def test_exported_and_value_errors(self, name):
        """Each named exception is in pysearch.__all__ and subclasses ValueError."""
        assert name in ps.__all__
        assert issubclass(getattr(ps, name), ValueError)

    def test_domain_errors(self):
        """NaN or reversed bounds raise DomainError from Python and from Rust alike."""
        with pytest.raises(ps.DomainError, match="empty domain"):
            ps.Domain(2.0, 1.0)
        with pytest.raises(ps.DomainError, match="NaN"):
            ps.Domain(float("nan"), 1.0)
        with pytest.raises(ps.DomainError, match="empty domain"):
            _core.float32_key_range(2.0, 1.0)
        with pytest.raises(ps.DomainError, match="NaN"):
            _core.exhaustive_ulp_error(EXP2_DEG2.compile().as_tuple(), "exp2", float("nan"), 1.0)

    def test_invalid_core_programs_are_program_errors(self):
        """A raw program the core rejects raises pysearch.ProgramError naming the problem."""
        ops, args, consts, n_in, out = EXP2_DEG2.compile().as_tuple()
        bad = [(np.array([99], np.uint8), args[:1], consts, n_in, out - 1),  # unknown opcode
               (ops, args, consts, n_in, 0),  # output is not an instruction
               (ops, args.reshape(-1)[:, None].copy(), consts, n_in, out),  # args not (n, 3)
               (ops, args, consts, 2**62, out)]  # slot count overflows
        for raw in bad:
            with pytest.raises(ps.ProgramError, match="program 0: "):
                _core.evaluate([raw], np.zeros((1, 4), np.float32))

    def test_unknown_target_is_named(self):
        """An unknown built-in target name raises _core.UnknownTarget listing the names."""
        with pytest.raises(_core.UnknownTarget, match="built-in targets: "):
            _core.reference("nope", np.zeros(2, np.float32))


class TestStub:
    """Item 6: _core.pyi declares exactly what the compiled module exports."""

    def test_stub_names_match_the_module(self):
        """Every public name of _core is in the stub and every name in the stub is in _core."""
        tree = ast.parse((ROOT / "pysearch" / "_core.pyi").read_text())
        declared = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        exported = {n for n in dir(_core) if not n.startswith("_")}
        assert declared == exported
