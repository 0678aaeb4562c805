"""Tests of pysearch.program: text and JSON forms, validation, measures, compiled layout."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pysearch.interpreter import run
from pysearch.program import (
    OPCODE,
    OPS,
    Instr,
    Program,
    ProgramError,
    Ref,
    parse,
)
from strategies import float_values, programs


def const_bits(p: Program) -> list[int | str]:
    """Bits of every constant (float64 view), with any NaN mapped to 'nan'."""
    return [
        "nan" if math.isnan(v) else int(np.array(v, dtype=np.float64).view(np.uint64)) for v in p.constants()
    ]


def assert_same_up_to_nan(a: Program, b: Program) -> None:
    """Programs are equal in structure and constant bits, treating any NaN as equal to any NaN."""
    assert (a.inputs, a.dtype, a.output) == (b.inputs, b.dtype, b.output)
    assert [i.op for i in a.instrs] == [i.op for i in b.instrs]
    assert [[(r.kind, r.index) for r in i.args] for i in a.instrs] == [
        [(r.kind, r.index) for r in i.args] for i in b.instrs
    ]
    assert const_bits(a) == const_bits(b)


any_program = st.sampled_from(["float32", "float64"]).flatmap(
    lambda dt: st.integers(1, 3).flatmap(lambda n: programs(dt, n_inputs=n))
)

DOC_EXAMPLE = """\
# exp2 on [0, 1): degree-2 Horner, for illustration
dtype float32
inputs x
c = fma x 0.24022651 0.6931472
p = fma c x 1
return p
"""


class TestParse:
    @given(any_program)
    def test_text_round_trip(self, p):
        """parse(p.to_text()) reproduces every random program, constants bit for bit."""
        q = parse(p.to_text())
        assert_same_up_to_nan(p, q)
        assert q.to_text() == p.to_text()

    @given(any_program)
    def test_text_round_trip_without_nan_is_equality(self, p):
        """Without NaN constants the round trip gives an equal Program (== compares bits)."""
        if any(math.isnan(v) for v in p.constants()):
            p = p.with_constants([1.0 if math.isnan(v) else v for v in p.constants()])
        assert parse(p.to_text()) == p

    @pytest.mark.parametrize("dtype", ["float32", "float64"])
    def test_special_constants_round_trip(self, dtype):
        """-0, ±inf, NaN, subnormals and the largest finite value survive printing and parsing."""
        tiny = 2.0**-149 if dtype == "float32" else 5e-324
        big = float(np.finfo(dtype).max)
        consts = [-0.0, 0.0, math.inf, -math.inf, math.nan, tiny, -3 * tiny, big, -big, 0.1, 1 / 3]
        instrs = [Instr("add", (Ref.input(0), Ref.const(float(np.dtype(dtype).type(c))))) for c in consts]
        p = Program(instrs, ("x",), dtype, 4)
        q = parse(p.to_text())
        assert_same_up_to_nan(p, q)
        assert math.copysign(1.0, q.constants()[0]) == -1.0

    def test_negative_nan_round_trip_is_equality(self):
        """A -nan constant round-trips to an equal Program (spec: the same program, bit for bit)."""
        p = parse("v = add x -nan")
        assert parse(p.to_text()) == p

    def test_input_named_like_a_canonical_value(self):
        """A program whose input is named 'v1' still round-trips through its canonical text."""
        p = Program([Instr("add", (Ref.input(0), Ref.const(1.0)))], inputs=("v1",))
        assert parse(p.to_text()) == p

    def test_doc_example(self):
        """The example of docs/program-format.md parses with constants rounded to float32."""
        p = parse(DOC_EXAMPLE)
        assert p.dtype == "float32" and p.inputs == ("x",) and p.output == 1
        assert [i.op for i in p.instrs] == ["fma", "fma"]
        assert p.constants() == [float(np.float32(0.24022651)), float(np.float32(0.6931472)), 1.0]
        assert p.names == ["c", "p"]

    def test_defaults(self):
        """Without header lines the dtype is float32, the input is x, the output the last value."""
        p = parse("a = mul x x\nb = add a 1\n")
        assert (p.dtype, p.inputs, p.output) == ("float32", ("x",), 1)

    def test_return_earlier_value(self):
        """'return NAME' selects an earlier instruction as the output and is printed back."""
        p = parse("a = mul x x\nb = add a 1\nreturn a\n")
        assert p.output == 0
        assert "return v1" in p.to_text()
        assert parse(p.to_text()).output == 0

    @pytest.mark.parametrize(
        "literal, expected",
        [
            ("0.5", 0.5),
            ("-1e-3", float(np.float32(-1e-3))),
            ("1.", 1.0),
            (".25", 0.25),
            ("+2", 2.0),
            ("0x1.8p+1", 3.0),
            ("-0x1p-149", -(2.0**-149)),
            ("inf", math.inf),
            ("-inf", -math.inf),
            ("0.1", float(np.float32(0.1))),
            ("1e39", math.inf),
            ("1e-46", 0.0),
        ],
    )
    def test_literals_round_once_to_float32(self, literal, expected):
        """Decimal, hex-float and inf literals are parsed as float64 and rounded once to float32."""
        (v,) = parse(f"v = add x {literal}").constants()
        assert v == expected and math.copysign(1, v) == math.copysign(1, expected)

    def test_nan_literal(self):
        """The literal 'nan' gives a NaN constant."""
        assert math.isnan(parse("v = mul x nan").constants()[0])

    def test_float64_literal_keeps_precision(self):
        """In a float64 program 0.1 stays the float64 nearest 0.1."""
        assert parse("dtype float64\nv = add x 0.1").constants() == [0.1]

    def test_comments_and_blank_lines(self):
        """Comments (whole-line and trailing) and blank lines are ignored."""
        p = parse("\n# header\n\ninputs x, y  # two inputs\n\nv = add x y # sum\n\n")
        assert p.inputs == ("x", "y") and len(p.instrs) == 1

    @pytest.mark.parametrize(
        "text, fragment",
        [
            ("v = foo x", "unknown op 'foo'"),
            ("v = add x", "add takes 2 operand(s), got 1"),
            ("v = neg x 1", "neg takes 1 operand(s), got 2"),
            ("v = fma x x", "fma takes 3 operand(s), got 2"),
            ("v = add x y", "'y' is not defined above"),
            ("a = add b 1\nb = add x 1", "'b' is not defined above"),
            ("a = add x 1\na = add x 2", "'a' is already defined"),
            ("x = add x 1", "'x' is already defined"),
            ("v = exp x", "only for float64"),
            ("dtype float32\nv = pow x 2", "only for float64"),
            ("v = add x 1.2.3", "not a name or a number: '1.2.3'"),
            ("v = add x 0x", "not a name or a number: '0x'"),
            ("v = add x 1e", "not a name or a number: '1e'"),
            ("v = add x --1", "not a name or a number"),
            ("", "no instructions"),
            ("# only a comment\n\n", "no instructions"),
            ("dtype float32\ninputs x\n", "no instructions"),
            ("dtype float16\nv = add x 1", "expected 'dtype float32' or 'dtype float64'"),
            ("dtype\nv = add x 1", "expected 'dtype float32' or 'dtype float64'"),
            ("v = add x 1\nreturn w", "'return w' names no instruction"),
            ("v = add x 1\nreturn x", "'return x' names no instruction"),
            ("v = add x 1\nreturn v\nw = add v 1", "nothing may follow 'return'"),
            ("v = add x 1\ndtype float64", "'dtype' must come once"),
            ("dtype float32\ndtype float32\nv = add x 1", "'dtype' must come once"),
            ("inputs x\ninputs y\nv = add x 1", "'inputs' must come once"),
            ("inputs x, 2y\nv = add x 1", "bad input name '2y'"),
            ("inputs x, x\nv = add x 1", "duplicate input names"),
            ("inputs nan\nv = add nan 1", "bad input name 'nan'"),
            ("nan = add x 1", "'nan' cannot name a value"),
            ("add = add x 1", "'add' cannot name a value"),
            ("2v = add x 1", "'2v' cannot name a value"),
            ("v add x 1", "expected 'NAME = OP ARG...'"),
            ("return", "expected 'return NAME'"),
        ],
    )
    def test_bad_text_raises_program_error(self, text, fragment):
        """Each kind of bad text raises ProgramError with a message naming the problem."""
        with pytest.raises(ProgramError) as info:
            parse(text)
        assert fragment in str(info.value)

    def test_inputs_separated_by_spaces_rejected(self):
        """'inputs x y' (no comma) is an error, not a single input named 'xy'."""
        with pytest.raises(ProgramError, match="line 1"):
            parse("inputs x y\nv = add xy 1\n")

    def test_error_names_the_line(self):
        """Errors in an instruction name its line number."""
        with pytest.raises(ProgramError, match=r"^line 3: "):
            parse("# c\na = add x 1\nb = sub a\n")

    def test_program_error_is_value_error(self):
        """ProgramError subclasses ValueError, so the CLI reports it as a user error."""
        assert issubclass(ProgramError, ValueError)

    def test_non_string_rejected(self):
        """Parsing something that is not a str raises ProgramError naming the type."""
        with pytest.raises(ProgramError, match="bytes"):
            parse(b"v = add x 1")  # type: ignore[arg-type]


class TestProgramValidate:
    @pytest.mark.parametrize(
        "kwargs, fragment",
        [
            (dict(instrs=[]), "at least one instruction"),
            (dict(dtype="float16"), "unknown dtype 'float16'"),
            (dict(inputs=()), "at least one input"),
            (dict(inputs=("x", "x")), "duplicate input names"),
            (dict(inputs=("in",)), None),
            (dict(inputs=("dtype",)), "bad input name 'dtype'"),
            (dict(instrs=[Instr("add", (Ref.input(0), Ref.val(0)))]), "not an earlier instruction"),
            (dict(instrs=[Instr("add", (Ref.input(0), Ref.input(1)))]), "input index 1 out of range"),
            (dict(instrs=[Instr("exp", (Ref.input(0),))]), "only for float64"),
            (dict(instrs=[Instr("tan", (Ref.input(0),))]), "unknown op 'tan'"),
            (dict(instrs=[Instr("sqrt", (Ref.input(0), Ref.input(0)))]), "sqrt takes 1 operand(s), got 2"),
            (dict(output=1), "output index 1 out of range"),
            (dict(instrs=[Instr("neg", (Ref("slot", 0),))]), "unknown operand kind 'slot'"),
        ],
    )
    def test_direct_construction_is_validated(self, kwargs, fragment):
        """Building a Program directly checks ops, arity, references, dtype, inputs and output."""
        args = dict(instrs=[Instr("neg", (Ref.input(0),))], inputs=("x",), dtype="float32", output=None)
        args.update(kwargs)
        if fragment is None:
            Program(**args)  # "in" is a valid identifier; no error
            return
        with pytest.raises(ProgramError) as info:
            Program(**args)
        assert fragment in str(info.value)

    def test_unrounded_constant_rejected_or_rounded(self):
        """A float32 program built with the float64 constant 0.1 holds a float32 constant (or is rejected)."""
        try:
            p = Program([Instr("add", (Ref.input(0), Ref.const(0.1)))])
        except ProgramError:
            return
        assert p.constants() == [float(np.float32(0.1))]


class TestJson:
    @given(any_program)
    def test_json_round_trip(self, p):
        """Program.from_json(p.to_json()) reproduces the program, constants bit for bit."""
        q = Program.from_json(p.to_json())
        assert_same_up_to_nan(p, q)

    def test_json_fields(self):
        """The JSON object has schema 1, dtype, inputs, canonical text, ops, cost and latency."""
        p = parse(DOC_EXAMPLE)
        obj = p.to_json_obj()
        assert obj == {
            "schema": 1,
            "dtype": "float32",
            "inputs": ["x"],
            "text": p.to_text(),
            "ops": 2,
            "cost": 2.0,
            "latency": 8.0,
        }
        assert json.loads(p.to_json()) == obj

    def test_informational_fields_recomputed(self):
        """Stale ops/cost/latency fields are ignored: the text is authoritative."""
        obj = parse(DOC_EXAMPLE).to_json_obj()
        obj.update(ops=99, cost=99, latency=99)
        p = Program.from_json(obj)
        assert (p.ops, p.cost(), p.latency()) == (2, 2.0, 8.0)

    @pytest.mark.parametrize("schema", [2, 0, "1", None])
    def test_other_schema_rejected(self, schema):
        """A document with another schema value is rejected with a ValueError naming the version."""
        obj = parse(DOC_EXAMPLE).to_json_obj()
        obj["schema"] = schema
        with pytest.raises(ValueError, match=f"schema {schema!r}"):
            Program.from_json(obj)

    def test_missing_schema_rejected(self):
        """A document without a schema field is rejected."""
        obj = parse(DOC_EXAMPLE).to_json_obj()
        del obj["schema"]
        with pytest.raises(ProgramError, match="schema None"):
            Program.from_json(obj)

    @pytest.mark.parametrize(
        "doc, fragment",
        [
            ("{not json", "malformed"),
            ("[1, 2]", "must be an object"),
            ('{"schema": 1}', "lacks a 'text' string"),
            ('{"schema": 1, "text": 3}', "lacks a 'text' string"),
            ('{"schema": 1, "dtype": "float64", "text": "v = add x 1"}', "disagrees with its text"),
            ('{"schema": 1, "text": "v = foo x"}', "unknown op 'foo'"),
        ],
    )
    def test_bad_documents_rejected(self, doc, fragment):
        """Malformed or inconsistent JSON documents raise ProgramError naming the problem."""
        with pytest.raises(ProgramError) as info:
            Program.from_json(doc)
        assert fragment in str(info.value)


HAND = """\
inputs x
a = mul x x
dead = div x 3
b = fma a 0.5 x
c = sqrt b
d = add c a
return d
"""


class TestMeasures:
    def test_ops_cost_latency(self):
        """Op count, cost and latency count only live instructions and follow the doc's table."""
        p = parse(HAND)
        assert p.live() == [True, False, True, True, True]
        assert p.ops == 4
        assert p.cost() == 1 + 1 + 4 + 1
        # mul 3 -> fma 4 -> sqrt 13 -> add 3 (the add also waits for mul, which is earlier)
        assert p.latency() == 3 + 4 + 13 + 3

    def test_latency_takes_longest_path(self):
        """Latency is the longest input-to-output path, not the sum over instructions."""
        p = parse("a = div x 3\nb = mul x x\nc = add a b\n")
        assert p.latency() == 11 + 3
        assert p.cost() == 4 + 1 + 1

    def test_cost_weights_override(self):
        """cost(weights=...) overrides single ops and rejects unknown op names."""
        p = parse(HAND)
        assert p.cost(weights={"sqrt": 10}) == 1 + 1 + 10 + 1
        with pytest.raises(ProgramError, match="tan"):
            p.cost(weights={"tan": 1})

    def test_latency_override(self):
        """latency(latencies=...) overrides single ops."""
        assert parse(HAND).latency({"sqrt": 1}) == 3 + 4 + 1 + 3

    def test_table_matches_doc(self):
        """OPS holds the arity, cost and latency of the documented table, in opcode order."""
        table = {op.name: (op.arity, op.cost, op.latency, op.float64_only) for op in OPS}
        assert list(table) == [
            "add", "sub", "mul", "div", "fma", "neg", "abs", "sqrt", "min", "max",
            "rint", "floor", "ldexp", "getexp", "getmant", "exp", "log", "pow",
        ]
        assert table["div"] == (2, 4, 11, False)
        assert table["fma"] == (3, 1, 4, False)
        assert table["sqrt"] == (1, 4, 13, False)
        assert table["ldexp"] == (2, 1, 2, False)
        assert table["pow"] == (2, 8, 20, True)
        assert OPCODE["add"] == 0 and OPCODE["pow"] == 17

    def test_pruned_drops_dead_code(self):
        """pruned() removes dead instructions and keeps the function, cost and latency."""
        p = parse(HAND)
        q = p.pruned()
        assert len(q.instrs) == 4 and q.ops == 4 and q.output == 3
        assert (q.cost(), q.latency()) == (p.cost(), p.latency())
        x = np.linspace(-2, 2, 101, dtype=np.float32)
        np.testing.assert_array_equal(run(p, x), run(q, x))

    @given(programs("float32"))
    def test_pruned_random(self, p):
        """pruned() of a random program has no dead code and computes the same values."""
        q = p.pruned()
        assert len(q.instrs) == q.ops == p.ops and q.cost() == p.cost() and q.latency() == p.latency()
        x = np.array([-1.5, -0.0, 0.0, 0.75, 3.0, np.inf, np.nan], dtype=np.float32)
        np.testing.assert_array_equal(run(p, x), run(q, x))

    def test_pruned_copy_shares_text_and_checks_changes(self):
        """pruned() of a program without dead code is an equal copy (its text kept), and a program
        changed after it was built is checked again (the copy of a checked program is not)."""
        p = parse("v1 = fma x 0.5 1\nv2 = mul v1 x\n")
        text = p.to_text()
        q = p.pruned()
        assert q == p and q is not p and q.instrs is not p.instrs
        assert q.to_text() is text  # kept, not printed again
        q.instrs[0] = Instr("mul", (Ref.input(0),))  # the copy's list is its own
        assert p.instrs[0].op == "fma"
        with pytest.raises(ProgramError, match="takes 2 operand"):
            q.pruned()
        p.instrs[1] = Instr("mul", (Ref.val(1), Ref.input(0)))  # now refers to itself
        with pytest.raises(ProgramError, match="not an earlier instruction"):
            p.pruned()

    def test_with_constants_keeps_float32_values_bit_for_bit(self):
        """with_constants keeps float32 values (signed zeros, infinities, subnormals) and rounds the rest once."""
        p = parse("v1 = fma x 0.5 1\nv2 = add v1 2\n")
        sub = float(np.float32(1e-45))
        q = p.with_constants([-0.0, math.inf, sub])
        assert [math.copysign(1.0, v) for v in q.constants()[:1]] == [-1.0]
        assert q.constants()[1:] == [math.inf, sub]
        assert p.with_constants([0.1, 1e39, 1e-46]).constants() == [float(np.float32(0.1)), math.inf, 0.0]

    @pytest.mark.parametrize("text", [
        "v1 = fma x 0.5 1\nv2 = add v1 2\nv3 = mul v2 v2\n",
        "dtype float64\ninputs n,d\nv1 = pow n -0.3\nv2 = fma v1 400 1.7\nv3 = pow d -0.28\nv4 = fma v3 410 v2\n",
    ])
    def test_with_constants_copies_what_a_fresh_program_has(self, text):
        """with_constants builds its result unchecked from a checked program: it is valid, its compiled
        arrays (made from the original's) and its text are those of the same program parsed afresh,
        and instructions without constants are shared."""
        p = parse(text)
        p.compile()
        values = [v * 1.1 + 0.3 for v in p.constants()]
        q = p.with_constants(values)
        q.validate()
        fresh = parse(q.to_text())
        assert fresh == q and fresh.to_text() == q.to_text()
        a, b = q.compile(), fresh._compile()
        for name in ("opcodes", "args", "consts"):
            assert np.array_equal(getattr(a, name), getattr(b, name)) and getattr(a, name).dtype == getattr(b, name).dtype
            assert not getattr(a, name).flags.writeable
        assert (a.n_inputs, a.output, a.dtype) == (b.n_inputs, b.output, b.dtype)
        shared = [x is y for x, y in zip(p.instrs, q.instrs)]
        assert shared == [not any(r.kind == "const" for r in ins.args) for ins in p.instrs]
        p.instrs[0] = Instr("neg", (Ref.input(0),))  # a changed program is checked again
        with pytest.raises(ProgramError, match="too many values"):
            p.with_constants(values)

    def test_constants_and_with_constants(self):
        """constants() lists constants in operand order; with_constants replaces and rounds them."""
        p = parse(HAND)
        assert p.constants() == [3.0, 0.5]
        q = p.with_constants([7.0, 0.1])
        assert q.constants() == [7.0, float(np.float32(0.1))]
        with pytest.raises(ProgramError, match="too many"):
            p.with_constants([1.0, 2.0, 3.0])

    def test_with_too_few_constants(self):
        """with_constants with too few values raises ProgramError saying so."""
        with pytest.raises(ProgramError, match="too few"):
            parse(HAND).with_constants([1.0])

    def test_astype(self):
        """astype changes the dtype and rounds constants; float64-only ops cannot go to float32."""
        p = parse("dtype float64\nv = add x 0.1\n")
        assert p.astype("float32").constants() == [float(np.float32(0.1))]
        with pytest.raises(ProgramError, match="only for float64"):
            parse("dtype float64\nv = exp x\n").astype("float32")

    def test_expression(self):
        """expression() renders the program as one infix expression."""
        assert parse("a = mul x x\nb = add a 1\nc = neg b\n").expression() == "-((x * x) + 1)"


class TestCompile:
    def test_slot_layout(self):
        """Slots are inputs, then constants in operand order, then instruction results."""
        p = parse("inputs x, y\na = fma x 2 y\nb = mul a 3\nc = add b x\nreturn b\n")
        c = p.compile()
        assert c.dtype == "float32" and c.n_inputs == 2
        np.testing.assert_array_equal(c.consts, [2.0, 3.0])
        assert c.consts.dtype == np.float64
        assert c.opcodes.dtype == np.uint8 and c.opcodes.tolist() == [OPCODE["fma"], OPCODE["mul"], OPCODE["add"]]
        assert c.args.dtype == np.int32 and c.args.shape == (3, 3)
        assert c.args.tolist() == [[0, 2, 1], [4, 3, 0], [5, 0, 0]]
        assert c.output == 2 + 2 + 1
        assert c.as_tuple()[4] == c.output

    def test_cached_while_unchanged(self):
        """compile() returns the same read-only arrays until the program changes."""
        p = parse("a = fma x 2 x\nb = mul a 3\n")
        c = p.compile()
        assert p.compile() is c
        assert not (c.opcodes.flags.writeable or c.args.flags.writeable or c.consts.flags.writeable)
        p.instrs[1] = Instr("add", p.instrs[1].args)  # same length, new instruction object
        c2 = p.compile()
        assert c2 is not c and c2.opcodes.tolist() == [OPCODE["fma"], OPCODE["add"]]
        p.output = 0
        assert p.compile().output == c2.output - 1
        p.instrs.append(Instr("neg", (Ref.val(1),)))
        assert p.compile().opcodes.tolist()[-1] == OPCODE["neg"]
        p.instrs = [Instr("sub", (Ref.input(0), Ref.const(-0.0)))]
        p.output = 0
        c3 = p.compile()
        assert c3.opcodes.tolist() == [OPCODE["sub"]] and np.signbit(c3.consts[0])

    @given(programs("float64", n_inputs=2))
    def test_slots_in_range(self, p):
        """Every used operand slot of a random program points before the instruction's own slot."""
        c = p.compile()
        base = c.n_inputs + len(c.consts)
        for i, ins in enumerate(p.instrs):
            for j in range(len(ins.args)):
                assert 0 <= c.args[i, j] < base + i
        assert c.output == base + p.output
        np.testing.assert_array_equal(
            c.consts.view(np.uint64), np.array(p.constants(), dtype=np.float64).view(np.uint64)
        )


@given(float_values("float32"))
def test_float32_strategy_gives_float32_values(v):
    """The float32 value strategy only yields values exactly representable in float32."""
    assert math.isnan(v) or float(np.float32(v)) == v


def test_numbered_operands_number_constants_in_constants_order():
    p = parse("dtype float32\ninputs x\nv1 = fma x 2.0 3.0\nv2 = mul v1 0.5\nv3 = add v2 x\n")
    assert p.numbered_operands() == [
        ("fma", [("input", 0), ("const", 0), ("const", 1)]),
        ("mul", [("value", 0), ("const", 2)]),
        ("add", [("value", 1), ("input", 0)]),
    ]
    assert p.constants() == [2.0, 3.0, 0.5]
