"""Straight-line programs: the representation every part of pysearch shares.

A :class:`Program` is a list of SSA instructions over named inputs and constants, in one
floating-point dtype. This module parses and prints the text form, reads and writes the JSON
form, measures op count, cost and critical-path latency, and compiles a program to the flat
arrays the Rust evaluator takes. Semantics are specified in ``docs/program-format.md``.
"""

from __future__ import annotations

import decimal
import functools
import json
import math
import operator
import re
import reprlib
import struct
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Iterable, Mapping, Sequence, Union

import numpy as np

from pysearch import _core
from pysearch.fileio import JSONFileError, loads_json
from pysearch.ops import DTYPES, OP_BY_NAME, OPCODE, OPS, OpInfo  # noqa: F401  (the op table lives in ops.py)

SCHEMA_VERSION = 1

_KEYWORDS = frozenset({"dtype", "inputs", "return", "inf", "nan"})
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
#: Tokens on a line are separated by ASCII spaces and tabs only.
_BLANKS = re.compile(r"[ \t]+")
#: Outside comments a program is printable ASCII, spaces and tabs; this finds anything else.
_NOT_ASCII_CODE = re.compile(r"[^\t\x20-\x7e]")
#: Numeric literals are ASCII only (Python's float() would also take Unicode digits such as '٣').
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_HEXFLOAT = re.compile(r"[+-]?0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP][+-]?[0-9]+)?")
#: Every NaN literal gives the one canonical (positive, quiet) NaN, so printing and parsing agree bit for bit.
_SPECIALS = {"inf": math.inf, "+inf": math.inf, "-inf": -math.inf, "nan": math.nan, "+nan": math.nan,
             "-nan": math.nan}

#: Largest JSON document (in characters) :meth:`Program.from_json` reads; a program is far smaller.
MAX_JSON_CHARS = 1_000_000

#: Longest infix form :meth:`Program.expression` builds (sharing can double it with each op).
MAX_EXPRESSION_CHARS = 100_000

_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 60
_SHORT.maxlevel = 3


def _show(value: object) -> str:
    """A short ``repr`` of a user's value for one-line error messages (long or deep values elided)."""
    try:
        return _SHORT.repr(value)
    except ValueError:  # an int beyond sys.get_int_max_str_digits()
        return f"<an integer of {value.bit_length()} bits>" if isinstance(value, int) else f"<a {type(value).__name__}>"


class ProgramError(ValueError):
    """A program text, JSON document or structure is invalid; the message says where and why."""


#: The registry's cost and latency of every op (read-only use: :func:`_per_op` hands it out).
_DEFAULT_PER_OP = {f: {op.name: getattr(op, f) for op in OPS} for f in ("cost", "latency")}


def _per_op(field: str, overrides: Mapping[str, float] | None, what: str, unit: str) -> dict[str, float]:
    """The registry's ``field`` (``'cost'`` or ``'latency'``) of every op, with ``overrides`` (op
    name -> non-negative number) applied; ``ProgramError`` names ``what`` for anything else."""
    if overrides is None or (isinstance(overrides, Mapping) and not overrides):
        return _DEFAULT_PER_OP[field]
    table = {op.name: getattr(op, field) for op in OPS}
    if overrides is not None and not isinstance(overrides, Mapping):
        raise ProgramError(f"{what} must be a mapping of op name to {unit}, not {_show(overrides)}")
    if overrides:
        unknown = set(overrides) - set(table)
        if unknown:
            raise ProgramError(f"unknown op(s) in {what}: {sorted(unknown)}")
        bad = {k: v for k, v in overrides.items() if not (isinstance(v, (int, float)) and v >= 0)}
        if bad:
            raise ProgramError(f"{what} must be non-negative numbers: {_show(bad)}")
        table.update(overrides)
    return table


@dataclass(frozen=True)
class Ref:
    """An operand: an input (``kind='input'``), an earlier instruction (``'value'``) or a constant.

    For inputs and values ``index`` is the input number or instruction number; for constants
    ``value`` holds the constant, already rounded to the program's dtype (stored as a Python float).
    """

    kind: str
    index: int = 0
    value: float = 0.0

    @staticmethod
    def input(i: int) -> "Ref":
        return Ref("input", i)

    @staticmethod
    def val(i: int) -> "Ref":
        return Ref("value", i)

    @staticmethod
    def const(v: float) -> "Ref":
        return Ref("const", 0, float(v))

    def same(self, other: "Ref") -> bool:
        """Equality that compares constants by bits (so -0.0 != 0.0 and NaN == NaN)."""
        if self.kind != other.kind:
            return False
        if self.kind == "const":
            if math.isnan(self.value) or math.isnan(other.value):
                return math.isnan(self.value) and math.isnan(other.value)  # NaN payloads are unspecified
            return _bits64(self.value) == _bits64(other.value)
        return self.index == other.index


@dataclass(frozen=True)
class Instr:
    """One instruction: ``op`` applied to ``args`` (``Ref`` operands)."""

    op: str
    args: tuple[Ref, ...]


def _bits64(v: float) -> int:
    return struct.unpack("<Q", struct.pack("<d", v))[0]


_FLT_MAX = float(np.finfo(np.float32).max)


_F32 = struct.Struct("<f")


def _is_float32(v: float) -> bool:
    """True when ``v`` is exactly a float32 value (NaN and infinities included).

    A float32 value converts to float32 and back unchanged in any rounding mode; in a
    flush-to-zero mode a subnormal one reads as not float32 and is then rounded in IEEE mode
    (:func:`round_to_dtype`) to itself, so the answer never changes a program.
    """
    if v != v or v in (math.inf, -math.inf):
        return True
    if not abs(v) <= _FLT_MAX:
        return False
    return _F32.unpack(_F32.pack(v))[0] == v


def round_to_dtype(v: float, dtype: str) -> float:
    """Round a Python float once to ``dtype`` and return it as a Python float (to nearest even,
    subnormals kept, whatever floating-point mode the process set: ``_core.ieee_mode``)."""
    if dtype == "float32":
        with np.errstate(over="ignore"), _core.ieee_mode():
            return float(np.float32(v))
    return float(v)


#: Texts :func:`format_const` made, by (value, dtype): a search prints the same constants again and
#: again (children copy their parents'). Keys are nonzero, non-NaN floats, the only ones whose
#: ``==`` is bit equality (0.0 == -0.0); the cache is emptied when it reaches its size.
_CONST_TEXT: dict[tuple[float, str], str] = {}
_CONST_TEXT_SIZE = 1 << 16


def format_const(v: float, dtype: str) -> str:
    """Shortest decimal that parses back to the same ``dtype`` bits, else a hex-float."""
    if v:  # not 0.0 or -0.0 (NaN is truthy: it is never stored, NaN != NaN)
        text = _CONST_TEXT.get((v, dtype))
        if text is not None:
            return text
    text = _format_const(v, dtype)
    if v and not math.isnan(v):
        if len(_CONST_TEXT) >= _CONST_TEXT_SIZE:
            _CONST_TEXT.clear()
        _CONST_TEXT[(v, dtype)] = text
    return text


def _format_const(v: float, dtype: str) -> str:
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if dtype == "float32":
        text = np.format_float_positional(np.float32(v), unique=True, trim="-")
        if "e" not in text and len(text) > 14:
            text = np.format_float_scientific(np.float32(v), unique=True, trim="-")
    else:  # Python's repr of a float is the shortest text that reads back as it: nothing to check
        return repr(float(v))
    if text.endswith("."):
        text = text[:-1]
    if _bits64(parse_literal(text, dtype)) == _bits64(v):
        return text
    return float(v).hex()


def parse_literal(token: str, dtype: str) -> float:
    """Parse a numeric literal token and round it once to ``dtype``; raise ``ProgramError``.

    Literals are ASCII: decimal, hex-float, ``inf`` and ``nan`` (with an optional sign). The
    result is the literal's exact value rounded once (IEEE round-to-nearest-even) to ``dtype``:
    a magnitude past the largest finite value rounds to ±inf, a tiny one to ±0 or a subnormal.
    """
    with _core.ieee_mode():  # float() of a decimal computes in the thread's mode too
        return _parse_literal(token, dtype)


def _parse_literal(token: str, dtype: str) -> float:
    t = token.strip(" \t")
    if t in _SPECIALS:
        return round_to_dtype(_SPECIALS[t], dtype)
    if _DECIMAL.fullmatch(t):
        v = float(t)  # correctly rounded to float64; overflow gives ±inf, underflow ±0
    elif _HEXFLOAT.fullmatch(t):
        try:
            v = float.fromhex(t)  # correctly rounded to float64
        except OverflowError:  # fromhex raises where float() of a decimal gives ±inf
            v = -math.inf if t.startswith("-") else math.inf
    else:
        raise ProgramError(f"not a name or a number: {_show(token)}")
    if dtype == "float32" and _is_float32_midpoint(v):
        # Rounding to float64 then to float32 errs only when the first rounding lands exactly on a
        # float32 midpoint: then the literal's exact value decides. Moving v one float64 step
        # toward it (off the midpoint) makes the float32 rounding the once-rounded result; an
        # exact midpoint stays and ties to even.
        side = _exact_side(t, v)
        if side:
            v = math.nextafter(v, math.inf if side > 0 else -math.inf)
    return round_to_dtype(v, dtype)


def _is_float32_midpoint(v: float) -> bool:
    """True when the float64 ``v`` lies exactly halfway between two adjacent float32 values."""
    a = abs(v)
    if not a < 2.0**128:  # past the last float32 binade (or NaN): rounds to inf regardless
        return False
    if a >= 2.0**-126:  # float32 normal: 24 of float64's 53 bits kept; the 29 dropped are exactly 1000...
        return _bits64(v) & 0x1FFFFFFF == 0x10000000
    m = a * 2.0**150  # float32 subnormal: an odd multiple of half the smallest subnormal (exact scaling)
    return m == math.floor(m) and int(m) % 2 == 1


def _exact_side(literal: str, v: float) -> int:
    """Sign of (exact value of the decimal or hex-float ``literal``) - ``v``, for finite ``v``."""
    if _HEXFLOAT.fullmatch(literal):
        sign = -1 if literal.startswith("-") else 1
        body = literal.lstrip("+-")[2:]
        mant, _, exp = body.replace("P", "p").partition("p")
        whole, _, frac = mant.partition(".")
        digits = (whole + frac).lstrip("0")
        e2 = int(exp.lstrip("+-").lstrip("0") or "0") * (-1 if exp.startswith("-") else 1) - 4 * len(frac)
        m = int(digits or "0", 16)  # base 16: no limit on the number of digits
        exact = sign * (Fraction(m) * 2**e2 if e2 >= 0 else Fraction(m, 2**-e2))
        approx = Fraction(v)
    else:  # Decimal(str) and Decimal(float) are exact, and so is comparing two Decimals
        exact, approx = decimal.Decimal(literal), decimal.Decimal(v)
    return (exact > approx) - (exact < approx)


@dataclass
class Program:
    """A straight-line program over named inputs in one dtype.

    ``instrs[i]`` computes value ``i``; ``output`` is the index of the returned instruction.
    Build one with :func:`parse`, :meth:`from_json`, or directly and call :meth:`validate`.
    """

    instrs: list[Instr]
    inputs: tuple[str, ...] = ("x",)
    dtype: str = "float32"
    output: int | None = None
    names: list[str] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        # (a tuple of inputs and a list of instructions, as every program of a search has, need no
        # look-up of the Iterable ABC)
        if type(self.inputs) is not tuple and (isinstance(self.inputs, str) or not isinstance(self.inputs, Iterable)):
            raise ProgramError(f"inputs must be a sequence of names, not {_show(self.inputs)}")
        if type(self.instrs) is not list and not isinstance(self.instrs, Iterable):
            raise ProgramError(f"instrs must be a sequence of Instr, not {type(self.instrs).__name__}")
        self.inputs = tuple(self.inputs)
        self.instrs = instrs = list(self.instrs)  # the program's own list
        self._check_types()
        if self.dtype == "float32":  # constants hold dtype values: round any that are not
            for i, ins in enumerate(instrs):
                if any(a.kind == "const" and not _is_float32(a.value) for a in ins.args):
                    instrs[i] = Instr(ins.op, tuple(Ref.const(round_to_dtype(a.value, "float32"))
                                                    if a.kind == "const" else a for a in ins.args))
        if self.output is None:
            self.output = len(self.instrs) - 1
        self._validate_structure()  # the types were checked above (validate() checks both)
        self._remember("_valid", True)

    # ----------------------------------------------------------------- checks
    def _check_types(self) -> None:
        """Raise ``ProgramError`` unless the fields hold the types the other checks assume."""
        if not isinstance(self.inputs, tuple) or not all(isinstance(n, str) for n in self.inputs):
            raise ProgramError(f"inputs must be a tuple of str names, not {_show(self.inputs)}")
        if not isinstance(self.dtype, str):
            raise ProgramError(f"unknown dtype {_show(self.dtype)}; expected one of {DTYPES}")
        for i, ins in enumerate(self.instrs):
            if not isinstance(ins, Instr) or not isinstance(ins.op, str) or not isinstance(ins.args, tuple):
                raise ProgramError(f"instruction {i + 1}: {_show(ins)} is not an Instr(op: str, args: tuple)")
            for a in ins.args:
                if not isinstance(a, Ref):
                    raise ProgramError(f"instruction {i + 1}: operand {_show(a)} is not a Ref")
                if a.kind == "const" and not isinstance(a.value, float):
                    raise ProgramError(f"instruction {i + 1}: constant {_show(a.value)} is not a float")
                if a.kind != "const" and (type(a.index) is not int):
                    raise ProgramError(f"instruction {i + 1}: operand index {_show(a.index)} is not an int")
        if self.output is not None and type(self.output) is not int:
            raise ProgramError(f"output index {_show(self.output)} is not an int")

    def validate(self) -> None:
        """Raise ``ProgramError`` unless every instruction is well formed and acyclic."""
        self._check_types()
        self._validate_structure()

    def _validate_structure(self) -> None:
        """:meth:`validate` after :meth:`_check_types`."""
        if self.dtype not in DTYPES:
            raise ProgramError(f"unknown dtype {self.dtype!r}; expected one of {DTYPES}")
        if not self.inputs:
            raise ProgramError("a program needs at least one input")
        for name in self.inputs:
            if not _IDENT.match(name) or name in _KEYWORDS or name in OP_BY_NAME:
                raise ProgramError(f"bad input name {name!r}")
        if len(set(self.inputs)) != len(self.inputs):
            raise ProgramError(f"duplicate input names in {self.inputs}")
        if not self.instrs:
            raise ProgramError("a program needs at least one instruction")
        for i, ins in enumerate(self.instrs):
            info = OP_BY_NAME.get(ins.op)
            if info is None:
                raise ProgramError(f"instruction {i + 1}: unknown op {ins.op!r}")
            if info.float64_only and self.dtype != "float64":
                raise ProgramError(f"instruction {i + 1}: op {ins.op!r} is only for float64 programs")
            if len(ins.args) != info.arity:
                raise ProgramError(
                    f"instruction {i + 1}: {ins.op} takes {info.arity} operand(s), got {len(ins.args)}"
                )
            for a in ins.args:
                if a.kind == "input":
                    if not 0 <= a.index < len(self.inputs):
                        raise ProgramError(f"instruction {i + 1}: input index {a.index} out of range")
                elif a.kind == "value":
                    if not 0 <= a.index < i:
                        raise ProgramError(
                            f"instruction {i + 1}: operand refers to value {a.index + 1}, which is "
                            "not an earlier instruction (programs are straight-line, no cycles)"
                        )
                elif a.kind == "const":
                    if not isinstance(a.value, float):
                        raise ProgramError(f"instruction {i + 1}: constant {a.value!r} is not a float")
                else:
                    raise ProgramError(f"instruction {i + 1}: unknown operand kind {a.kind!r}")
        if not isinstance(self.output, int) or not 0 <= self.output < len(self.instrs):
            raise ProgramError(f"output index {self.output} out of range")

    # ------------------------------------------------------------- measures
    def live(self) -> list[bool]:
        """Which instructions the output depends on."""
        return list(self._live())

    def _live(self) -> tuple[bool, ...]:
        """:meth:`live`, kept while the program is unchanged (a search asks for it again and again)."""
        return self._memo("_live_flags", self._find_live)

    def _find_live(self) -> tuple[bool, ...]:
        live = [False] * len(self.instrs)
        live[self.output] = True
        for i in range(self.output, -1, -1):
            if live[i]:
                for a in self.instrs[i].args:
                    if a.kind == "value":
                        live[a.index] = True
        return tuple(live)

    @property
    def ops(self) -> int:
        """Number of live instructions."""
        return sum(self._live())

    def cost(self, weights: Mapping[str, float] | None = None) -> float:
        """Sum of op weights over live instructions (default weights from :data:`OPS`)."""
        w = _per_op("cost", weights, "cost weights", "weight")
        return float(sum(w[ins.op] for ins, lv in zip(self.instrs, self._live()) if lv))

    def latency(self, latencies: Mapping[str, float] | None = None) -> float:
        """Critical-path latency (cycles) from inputs/constants to the output."""
        lat = _per_op("latency", latencies, "latencies", "cycles")
        ready: list[float] = []
        for ins in self.instrs:
            start = max((ready[a.index] for a in ins.args if a.kind == "value"), default=0.0)
            ready.append(start + lat[ins.op])
        return float(ready[self.output])

    def depends_on_input(self) -> list[bool]:
        """Which instructions depend (transitively) on some input."""
        dep: list[bool] = []
        for ins in self.instrs:
            dep.append(any(a.kind == "input" or (a.kind == "value" and dep[a.index]) for a in ins.args))
        return dep

    # --------------------------------------------------------- transforms
    def pruned(self) -> "Program":
        """The same function with dead instructions removed."""
        live = self._live()
        remap: dict[int, int] = {}
        out: list[Instr] = []
        if all(live):  # nothing to remove: a copy sharing the (immutable) instructions
            return self._copy()
        for i, (ins, lv) in enumerate(zip(self.instrs, live)):
            if lv:
                remap[i] = len(out)
                out.append(Instr(ins.op, tuple(_remap(a, remap) for a in ins.args)))
        self._ensure_valid()  # the live part of a valid program is valid
        return self._derived(out, remap[self.output])

    def constants(self) -> list[float]:
        """Constants in operand order (the order :meth:`with_constants` expects)."""
        return [a.value for ins in self.instrs for a in ins.args if a.kind == "const"]

    def numbered_operands(self) -> list[tuple[str, list[tuple[str, int]]]]:
        """Instructions as ``(op, [(kind, index), ...])`` for evaluators that take constants as a
        vector: ``kind`` is ``'input'``, ``'value'`` or ``'const'``, and a constant's ``index`` is
        its position in :meth:`constants`."""
        code, k = [], 0
        for ins in self.instrs:
            args = []
            for a in ins.args:
                if a.kind == "const":
                    args.append(("const", k))
                    k += 1
                else:
                    args.append((a.kind, a.index))
            code.append((ins.op, args))
        return code

    def with_constants(self, values: Sequence[float]) -> "Program":
        """A copy with the constants replaced, in :meth:`constants` order (rounded to dtype)."""
        values = list(values)
        n_const, slots = self._memo("_const_slots", self._find_const_slots)
        if len(values) != n_const:
            which = "too few" if len(values) < n_const else "too many"
            raise ProgramError(f"with_constants: {which} values (the program has {n_const} constants, got {len(values)})")
        try:
            values = [float(v) for v in values]
        except (TypeError, ValueError) as e:
            raise ProgramError(f"with_constants: a value is not a number ({e})") from None
        if self.dtype == "float32":  # a float32 value already (not NaN: rounding picks its payload) stays
            values = [v if v == v and _is_float32(v) else round_to_dtype(v, "float32") for v in values]
        new = list(self.instrs)
        k = 0
        for i, positions in slots:
            args = list(new[i].args)
            for j in positions:
                args[j] = Ref("const", 0, values[k])
                k += 1
            new[i] = Instr(new[i].op, tuple(args))
        # the structure is this program's and every constant a float of the dtype: valid when this
        # program is (checked again here if it changed since), so it is not checked once more, and
        # its compiled arrays are this program's with the new constants
        self._ensure_valid()
        q = self._derived(new, self.output)
        for slot in ("_live_flags", "_const_slots"):
            kept = self._kept(slot)
            if kept is not None:
                q._remember(slot, kept)
        compiled = self._kept("_compiled")
        if compiled is not None:
            consts = np.array(values, dtype=np.float64)
            consts.flags.writeable = False
            q._remember("_compiled", CompiledProgram(compiled.opcodes, compiled.args, consts, compiled.n_inputs,
                                                     compiled.output, compiled.dtype))
        return q

    def _find_const_slots(self) -> tuple[int, tuple[tuple[int, tuple[int, ...]], ...]]:
        """The number of constants and where they are: (instruction, its constant operands' positions)."""
        slots = tuple((i, tuple(j for j, a in enumerate(ins.args) if a.kind == "const"))
                      for i, ins in enumerate(self.instrs) if any(a.kind == "const" for a in ins.args))
        return sum(len(pos) for _, pos in slots), slots

    def astype(self, dtype: str) -> "Program":
        """The same program in another dtype (constants rounded to it)."""
        instrs = [
            Instr(i.op, tuple(Ref.const(round_to_dtype(a.value, dtype)) if a.kind == "const" else a for a in i.args))
            for i in self.instrs
        ]
        return Program(instrs, self.inputs, dtype, self.output)

    # ------------------------------------------------------------- text
    def to_text(self, comment: str | None = None) -> str:
        """Canonical text form; ``parse(p.to_text())`` equals ``p`` bit for bit.

        The text (without a comment) is kept on the program and returned again while it is
        unchanged (the same instruction objects, which are immutable, and the same inputs,
        dtype and output), as :meth:`compile` does: a search asks for it many times.
        """
        if comment:
            return self._to_text(comment)
        return self._memo("_text", lambda: self._to_text(None))

    def _ensure_valid(self) -> None:
        """:meth:`validate`, unless the program as it is now was checked (raise ``ProgramError``)."""
        self._memo("_valid", lambda: (self.validate(), True)[1])

    def _derived(self, instrs: list[Instr], output: int) -> "Program":
        """A program of this one's inputs and dtype over ``instrs`` (its own list), which the caller
        built from valid programs' parts by rules that keep a program valid (the variation
        operators, pruning), with constants that are values of the dtype: not checked again
        (``tests/test_variation.py`` checks the operators' results with :meth:`validate`)."""
        q = object.__new__(Program)
        q.instrs, q.inputs, q.dtype, q.output, q.names = instrs, self.inputs, self.dtype, output, None
        q._remember("_valid", True)
        return q

    def _copy(self) -> "Program":
        """A copy sharing the instructions (immutable) and what is kept about them (text, compiled
        arrays, validity): a search copies programs often, and checking or printing the same
        instructions again would give the same answers."""
        self._ensure_valid()
        q = self._derived(list(self.instrs), self.output)
        for slot in ("_text", "_compiled", "_live_flags"):
            if slot in self.__dict__:
                q.__dict__[slot] = self.__dict__[slot]
        return q

    def _remember(self, slot: str, value) -> None:
        """Keep ``value`` in ``slot`` for the program as it is now (see :meth:`_memo`)."""
        self.__dict__[slot] = (tuple(self.instrs), self.inputs, self.dtype, self.output, value)

    def _kept(self, slot: str):
        """What ``slot`` keeps for the program as it is now, or ``None`` (see :meth:`_memo`)."""
        cached = self.__dict__.get(slot)
        if cached is not None:
            snap, inputs, dtype, output, value = cached
            instrs = self.instrs
            if (
                output == self.output
                and dtype == self.dtype
                and inputs == self.inputs
                and len(snap) == len(instrs)
                and all(map(operator.is_, snap, instrs))
            ):
                return value
        return None

    def _memo(self, slot: str, make):
        """``make()`` (never ``None``), kept in ``slot`` while the program is unchanged (the same
        instruction objects, which are immutable, and the same inputs, dtype and output)."""
        value = self._kept(slot)
        if value is None:
            value = make()
            self._remember(slot, value)
        return value

    def _to_text(self, comment: str | None) -> str:
        lines = []
        if comment:
            lines += [f"# {line}" if line else "#" for line in comment.splitlines()]
        lines.append(f"dtype {self.dtype}")
        lines.append("inputs " + ",".join(self.inputs))
        pre = self._value_prefix()
        key = (pre, self.inputs, self.dtype)
        for i, ins in enumerate(self.instrs):
            # an instruction's operand text depends only on it and on `key`: kept on the (immutable)
            # instruction, which children share with their parents, so a search prints each once
            kept = ins.__dict__.get("_operand_text")
            if kept is not None and kept[0] == key:
                args = kept[1]
            else:
                args = " ".join(self._fmt_ref(a, pre) for a in ins.args)
                ins.__dict__["_operand_text"] = (key, args)
            lines.append(f"{pre}{i + 1} = {ins.op} {args}")
        if self.output != len(self.instrs) - 1:
            lines.append(f"return {pre}{self.output + 1}")
        return "\n".join(lines) + "\n"

    def _value_prefix(self) -> str:
        """`v`, unless an input name looks like a value name (then the first free prefix)."""
        return _value_prefix(tuple(self.inputs))

    def _fmt_ref(self, a: Ref, pre: str = "v") -> str:
        if a.kind == "input":
            return self.inputs[a.index]
        if a.kind == "value":
            return f"{pre}{a.index + 1}"
        return format_const(a.value, self.dtype)

    def __str__(self) -> str:
        return self.to_text()

    def expression(
        self,
        consts: Sequence[str] | None = None,
        inputs: Sequence[str] | None = None,
        infix_ops: Mapping[str, str] | None = None,
    ) -> str:
        """The program as one infix expression (shared values repeated), for display; raise
        ``ProgramError`` beyond :data:`MAX_EXPRESSION_CHARS` characters.

        ``consts``: the text of each constant, in :meth:`constants` order (default: its exact
        text form); ``inputs``: the names to show for the inputs; ``infix_ops``: ops written as
        infix operators besides ``+ - * /`` (e.g. ``{"pow": "^"}``); other ops are calls.
        """
        memo: dict[int, str] = {}
        infix = {"add": "+", "sub": "-", "mul": "*", "div": "/", **(infix_ops or {})}
        names = self.inputs if inputs is None else tuple(inputs)
        k = 0  # constants numbered over every instruction, as in constants()

        for i, (ins, live) in enumerate(zip(self.instrs, self.live())):
            if not live:
                k += sum(a.kind == "const" for a in ins.args)
                continue
            args = []
            for a in ins.args:
                if a.kind == "input":
                    args.append(names[a.index])
                elif a.kind == "const":
                    args.append(format_const(a.value, self.dtype) if consts is None else consts[k])
                    k += 1
                else:
                    args.append(memo[a.index])
            if sum(map(len, args)) > MAX_EXPRESSION_CHARS:  # shared values repeat: length can double per op
                raise ProgramError(
                    f"the program is too large to show as one expression (over {MAX_EXPRESSION_CHARS} "
                    "characters); show its text form instead"
                )
            if ins.op in infix:
                memo[i] = f"({args[0]} {infix[ins.op]} {args[1]})"
            elif ins.op == "neg":
                memo[i] = f"(-{args[0]})"
            else:
                memo[i] = f"{ins.op}({', '.join(args)})"
        s = memo[self.output]
        return s[1:-1] if s.startswith("(") and s.endswith(")") else s

    # ------------------------------------------------------------- JSON
    def to_json_obj(self) -> dict:
        """The JSON form as a dict (``text`` is authoritative)."""
        return {
            "schema": SCHEMA_VERSION,
            "dtype": self.dtype,
            "inputs": list(self.inputs),
            "text": self.to_text(),
            "ops": self.ops,
            "cost": self.cost(),
            "latency": self.latency(),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_json_obj(), indent=2)

    @staticmethod
    def from_json(doc: Union[str, bytes, Mapping]) -> "Program":
        """Read the JSON form (a string, UTF-8 bytes or a parsed dict).

        Any malformed or inconsistent document raises ``ProgramError`` (a ``ValueError``) with a
        one-line message: bad JSON, documents over :data:`MAX_JSON_CHARS`, deep nesting,
        ``NaN``/``Infinity`` tokens, duplicate keys, huge integers, wrong field types, a bad text.
        """
        if isinstance(doc, (bytes, bytearray)):
            if len(doc) > MAX_JSON_CHARS:
                raise ProgramError(f"program JSON is {len(doc)} bytes; the limit is {MAX_JSON_CHARS}")
            try:
                doc = bytes(doc).decode("utf-8")
            except UnicodeDecodeError as e:
                raise ProgramError(f"program JSON is not UTF-8: {e}") from None
        if isinstance(doc, str):
            doc = load_json_text(doc, "program JSON")
        if not isinstance(doc, Mapping):
            raise ProgramError(f"program JSON must be an object, not {_json_type(doc)}")
        schema = doc.get("schema")
        if type(schema) is not int or schema != SCHEMA_VERSION:  # not True, 1.0 or "1"
            raise ProgramError(f"program JSON has schema {_show(schema)}; this pysearch reads schema {SCHEMA_VERSION}")
        if not isinstance(doc.get("text"), str):
            raise ProgramError("program JSON lacks a 'text' string")
        for key in ("ops", "cost", "latency"):  # informational, recomputed; but numbers if present
            v = doc.get(key, 0)
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ProgramError(f"program JSON {key!r} must be a number, not {_json_type(v)}")
        inputs, dtype = doc.get("inputs"), doc.get("dtype")
        if "inputs" in doc and not (isinstance(inputs, (list, tuple)) and all(isinstance(n, str) for n in inputs)):
            raise ProgramError(f"program JSON 'inputs' must be a list of names, not {_show(inputs)}")
        if "dtype" in doc and not isinstance(dtype, str):
            raise ProgramError(f"program JSON 'dtype' must be a string, not {_show(dtype)}")
        try:
            p = parse(doc["text"])
        except ProgramError as e:
            raise ProgramError(f"program JSON 'text': {e}") from None
        if "inputs" in doc and tuple(inputs) != p.inputs:
            raise ProgramError(f"program JSON inputs {_show(list(inputs))} disagree with its text ({list(p.inputs)!r})")
        if "dtype" in doc and dtype != p.dtype:
            raise ProgramError(f"program JSON dtype {_show(dtype)} disagrees with its text ({p.dtype!r})")
        return p

    # --------------------------------------------------------- compile
    def compile(self) -> "CompiledProgram":
        """Flat arrays for the Rust evaluator (slot layout in ``docs/program-format.md``).

        The arrays are read-only and kept on the program: compiling it again returns them
        while it is unchanged (the same instruction objects, which are immutable, and the
        same inputs, dtype and output), so evaluating one population many times converts
        each program once.
        """
        return self._memo("_compiled", self._compile)

    def _compile(self) -> "CompiledProgram":
        n_in = len(self.inputs)
        consts = [a.value for ins in self.instrs for a in ins.args if a.kind == "const"]
        base = n_in + len(consts)
        opcodes = np.empty(len(self.instrs), dtype=np.uint8)
        args = np.zeros((len(self.instrs), 3), dtype=np.int32)
        k = 0
        for i, ins in enumerate(self.instrs):
            opcodes[i] = OPCODE[ins.op]
            for j, a in enumerate(ins.args):
                if a.kind == "input":
                    args[i, j] = a.index
                elif a.kind == "value":
                    args[i, j] = base + a.index
                else:
                    args[i, j] = n_in + k
                    k += 1
        const_arr = np.asarray(consts, dtype=np.float64)
        for arr in (opcodes, args, const_arr):
            arr.flags.writeable = False  # shared by every later compile() of this program
        return CompiledProgram(opcodes, args, const_arr, n_in, base + self.output, self.dtype)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Program):
            return NotImplemented
        return (
            self.inputs == other.inputs
            and self.dtype == other.dtype
            and self.output == other.output
            and len(self.instrs) == len(other.instrs)
            and all(
                a.op == b.op and len(a.args) == len(b.args) and all(x.same(y) for x, y in zip(a.args, b.args))
                for a, b in zip(self.instrs, other.instrs)
            )
        )

    def __hash__(self) -> int:
        return hash(self.to_text())


@dataclass(frozen=True)
class CompiledProgram:
    """What crosses to Rust: opcodes, slot-index operands, constants, input count, output slot."""

    opcodes: np.ndarray
    args: np.ndarray
    consts: np.ndarray
    n_inputs: int
    output: int
    dtype: str

    def as_tuple(self) -> tuple:
        return (self.opcodes, self.args, self.consts, self.n_inputs, self.output)


@functools.lru_cache(maxsize=256)
def _value_prefix(inputs: tuple[str, ...]) -> str:
    """:meth:`Program._value_prefix` of a program with these inputs."""
    for pre in ("v", "t", "u", "w", "tmp"):
        if not any(re.fullmatch(pre + r"\d+", n) for n in inputs):
            return pre
    return "value_"


def _remap(a: Ref, remap: Mapping[int, int]) -> Ref:
    return Ref.val(remap[a.index]) if a.kind == "value" else a


def _json_type(value: object) -> str:
    """How a JSON value's type reads in an error message."""
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null",
             int: "a number", float: "a number"}
    return names.get(type(value), f"a {type(value).__name__}")


def load_json_text(text: str, what: str = "JSON") -> object:
    """Strict JSON (:func:`pysearch.fileio.loads_json`) of at most :data:`MAX_JSON_CHARS` characters;
    any problem raises ``ProgramError`` whose one-line message starts with ``what``."""
    try:
        return loads_json(text, what, max_chars=MAX_JSON_CHARS)
    except JSONFileError as e:
        raise ProgramError(str(e)) from None


def parse(text: str) -> Program:
    """Parse the text form; raise ``ProgramError`` naming the line and the problem."""
    if not isinstance(text, str):
        raise ProgramError(f"program text must be a str, not {type(text).__name__}")
    dtype = "float32"
    inputs: tuple[str, ...] = ("x",)
    header_done = False
    names: dict[str, Ref] = {}
    instrs: list[Instr] = []
    output: int | None = None
    seen_dtype = seen_inputs = False

    # Lines end at "\n" only (str.splitlines would also split at U+2028, U+0085, "\r", ... even
    # inside a comment); a "\r" just before the "\n" is dropped, so CRLF files read the same.
    for lineno, raw in enumerate(text.split("\n"), 1):
        code = raw.removesuffix("\r").split("#", 1)[0]
        line = code.strip(" \t")
        if not line:
            continue
        where = f"line {lineno}"
        bad = _NOT_ASCII_CODE.search(code)
        if bad:
            ch = bad.group()
            raise ProgramError(
                f"{where}, column {bad.start() + 1}: character {ch!r} (U+{ord(ch):04X}) is not allowed; "
                "outside comments a program is ASCII"
            )
        toks = _BLANKS.split(line.replace("=", " = ").strip(" \t"))
        if output is not None:
            raise ProgramError(f"{where}: nothing may follow 'return'")
        if toks[0] == "dtype" and "=" not in toks:
            if header_done or seen_dtype:
                raise ProgramError(f"{where}: 'dtype' must come once, before the first instruction")
            if len(toks) != 2 or toks[1] not in DTYPES:
                raise ProgramError(f"{where}: expected 'dtype float32' or 'dtype float64'")
            dtype, seen_dtype = toks[1], True
            continue
        if toks[0] == "inputs" and "=" not in toks:
            if header_done or seen_inputs:
                raise ProgramError(f"{where}: 'inputs' must come once, before the first instruction")
            inputs = tuple(n.strip(" \t") for n in line[len("inputs"):].split(","))
            for n in inputs:
                if not _IDENT.match(n) or n in _KEYWORDS or n in OP_BY_NAME:
                    raise ProgramError(f"{where}: bad input name {_show(n)}")
            if len(set(inputs)) != len(inputs):
                raise ProgramError(f"{where}: duplicate input names")
            seen_inputs = True
            continue
        if not header_done:
            header_done = True
            names = {n: Ref.input(i) for i, n in enumerate(inputs)}
        if toks[0] == "return":
            if len(toks) != 2:
                raise ProgramError(f"{where}: expected 'return NAME'")
            ref = names.get(toks[1])
            if ref is None or ref.kind != "value":
                raise ProgramError(f"{where}: 'return {_show(toks[1])[1:-1]}' names no instruction defined above")
            output = ref.index
            continue
        if len(toks) < 3 or toks[1] != "=":
            raise ProgramError(f"{where}: expected 'NAME = OP ARG...', got {_show(line)}")
        name, op, arg_toks = toks[0], toks[2], toks[3:]
        if not _IDENT.match(name) or name in _KEYWORDS or name in OP_BY_NAME:
            raise ProgramError(f"{where}: {_show(name)} cannot name a value")
        if name in names:
            raise ProgramError(f"{where}: {_show(name)} is already defined (programs are single-assignment)")
        info = OP_BY_NAME.get(op)
        if info is None:
            raise ProgramError(f"{where}: unknown op {_show(op)}; known ops: {', '.join(OP_BY_NAME)}")
        if info.float64_only and dtype != "float64":
            raise ProgramError(f"{where}: op {op!r} is only for float64 programs")
        if len(arg_toks) != info.arity:
            raise ProgramError(f"{where}: {op} takes {info.arity} operand(s), got {len(arg_toks)}")
        args = []
        for t in arg_toks:
            if t in names:
                args.append(names[t])
            elif _IDENT.match(t) and t not in ("inf", "nan"):
                raise ProgramError(f"{where}: {_show(t)} is not defined above (no forward references)")
            else:
                try:
                    args.append(Ref.const(parse_literal(t, dtype)))
                except ProgramError as e:
                    raise ProgramError(f"{where}: {e}") from None
        names[name] = Ref.val(len(instrs))
        instrs.append(Instr(op, tuple(args)))
    if not instrs:
        raise ProgramError("program has no instructions")
    p = Program(instrs, inputs, dtype, output)
    p.names = [n for n, r in names.items() if r.kind == "value"]
    return p


def as_program(p: Union[Program, str]) -> Program:
    """Accept a Program or its text form."""
    if isinstance(p, Program):
        return p
    if isinstance(p, str):
        return parse(p)
    raise TypeError(f"expected a Program or program text, not {type(p).__name__}")


def as_programs(ps: Union[Program, str, Iterable[Union[Program, str]]]) -> tuple[list[Program], bool]:
    """Normalise one program or many; return (list, was_single)."""
    if isinstance(ps, (Program, str)):
        return [as_program(ps)], True
    out = [as_program(p) for p in ps]
    return out, False
