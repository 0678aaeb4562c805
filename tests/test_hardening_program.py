"""Hardening of program parsing and JSON loading: whatever text or JSON a user gives, pysearch
returns a Program that round-trips bit for bit or raises ProgramError with a one-line message."""

from __future__ import annotations

import json
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from pysearch.cli import UserError, main
from pysearch.commands.search import read_seed_programs
from pysearch.program import (
    MAX_JSON_CHARS,
    OPS,
    Instr,
    Program,
    ProgramError,
    Ref,
    load_json_text,
    parse,
    parse_literal,
)
from strategies import programs

F32_MAX = float(np.finfo(np.float32).max)
F64_MAX = float(np.finfo(np.float64).max)
GOOD_JSON = parse("inputs x, y\nv = fma x y 0.5\n").to_json_obj()


def bits(v: float) -> int:
    return int(np.array(v, dtype=np.float64).view(np.uint64))


def assert_one_line_error(excinfo: pytest.ExceptionInfo) -> str:
    """The exception is a ProgramError with a short one-line message; return the message."""
    assert type(excinfo.value) is ProgramError
    msg = str(excinfo.value)
    assert msg and "\n" not in msg and len(msg) < 400
    return msg


def assert_round_trips_bitwise(p: Program) -> None:
    """text -> program -> text -> program gives the same program, every constant bit for bit."""
    text = p.to_text()
    q = parse(text)
    assert q == p
    assert [bits(v) for v in q.constants()] == [bits(v) for v in p.constants()]
    assert q.to_text() == text
    r = Program.from_json(p.to_json())
    assert r == p and [bits(v) for v in r.constants()] == [bits(v) for v in p.constants()]


def parse_or_program_error(text: str) -> Program | None:
    """parse(text), or None after checking that it raised a one-line ProgramError (and nothing else)."""
    try:
        p = parse(text)
    except ProgramError as e:
        assert type(e) is ProgramError and "\n" not in str(e)
        return None
    assert_round_trips_bitwise(p)
    return p


def from_json_or_program_error(doc) -> Program | None:
    """Program.from_json(doc), or None after checking that it raised a one-line ProgramError."""
    try:
        p = Program.from_json(doc)
    except ProgramError as e:
        assert type(e) is ProgramError and "\n" not in str(e)
        return None
    assert_round_trips_bitwise(p)
    return p


# ---------------------------------------------------------------- item 1: literal range
class TestLiteralsOutOfRange:
    @pytest.mark.parametrize(
        "literal, dtype, expected",
        [
            ("0x1p1024", "float32", math.inf),
            ("0x1p1024", "float64", math.inf),
            ("-0x1p1024", "float64", -math.inf),
            ("0x1p99999999999999999999", "float64", math.inf),
            ("0x" + "f" * 5000, "float64", math.inf),
            ("-0x" + "f" * 5000, "float32", -math.inf),
            ("1e400", "float64", math.inf),
            ("-" + "9" * 5000, "float64", -math.inf),
            ("1e" + "9" * 5000, "float32", math.inf),
            ("1e39", "float32", math.inf),
            ("0x1p128", "float32", math.inf),
            ("0x1.ffffffp127", "float32", math.inf),  # halfway past the largest float32: ties to even, 2^128
            ("0x1.fffffefffp127", "float32", F32_MAX),  # less than halfway: the largest float32
            ("0x1.fffffffffffff7p1023", "float64", F64_MAX),
            ("0x1.fffffffffffff8p1023", "float64", math.inf),
            ("0x1p-99999999999999999999", "float64", 0.0),
            ("-0x1p-99999", "float32", -0.0),
            ("-1e-400", "float64", -0.0),
            ("0x1p-150", "float32", 0.0),  # exactly half the smallest subnormal: ties to even, 0
            ("0x1.000001p-150", "float32", 2.0**-149),
            ("0x0p99999999999999999999", "float32", 0.0),
            ("0e99999999999999999999", "float64", 0.0),
        ],
    )
    def test_out_of_range_literal_rounds_like_ieee(self, literal, dtype, expected):
        """A literal beyond the dtype's range rounds to ±inf or ±0 (the documented rule), never OverflowError."""
        (v,) = parse(f"dtype {dtype}\nv1 = add x {literal}").constants()
        assert bits(v) == bits(expected)

    @pytest.mark.parametrize("literal", ["0x1p1024", "1e39", "-0x" + "1" * 300 + "p0", "1e-400"])
    def test_out_of_range_literal_round_trips(self, literal):
        """A program with an overflowing or underflowing literal prints inf or 0 and reparses to the same bits."""
        assert_round_trips_bitwise(parse(f"v1 = mul x {literal}\nv2 = add v1 {literal}"))

    def test_cli_verify_reads_overflowing_literal(self, capsys):
        """`pysearch verify` on inline text with 0x1p1024 (an OverflowError traceback before) runs and exits 0."""
        assert main(["verify", "v1 = add x 0x1p1024", "--target", "exp2", "--samples", "10", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["results"][0]["max_ulp"] is None  # inf error: printed as null


class TestLiteralsRoundOnce:
    def test_decimal_just_above_a_float32_midpoint(self):
        """A decimal whose float64 rounding lands on a float32 midpoint still rounds up, as its exact value says."""
        assert parse_literal("1.00000005960464477539062500000000001", "float32") == 1 + 2.0**-23
        assert parse_literal("1.00000005960464477539062499999999999", "float32") == 1.0
        assert parse_literal("1.000000059604644775390625", "float32") == 1.0  # the exact midpoint: to even

    def test_hex_float_just_above_a_float32_midpoint(self):
        """A long hex-float literal is rounded once to float32, not through float64."""
        assert parse_literal("0x1.000001000000000001p0", "float32") == 1 + 2.0**-23
        assert parse_literal("-0x1.000001000000000001p0", "float32") == -(1 + 2.0**-23)

    @given(
        st.floats(width=32, allow_nan=False, allow_infinity=False),
        st.integers(-1, 1),
        st.integers(30, 90),
        st.booleans(),
    )
    def test_near_midpoint_literals_round_once(self, x, direction, k, as_hex):
        """Literals a hair off (or exactly at) a float32 midpoint give the correctly rounded float32."""
        assume(x != F32_MAX)  # its successor is inf
        nxt = float(np.nextafter(np.float32(x), np.float32(np.inf)))
        mid = (Fraction(x) + Fraction(nxt)) / 2
        exact = mid + direction * (Fraction(nxt) - Fraction(x)) / 2**k
        num, den = exact.numerator, exact.denominator  # den is a power of two
        e2 = den.bit_length() - 1
        sign = "-" if num < 0 else ""
        literal = f"{sign}0x{abs(num):x}p-{e2}" if as_hex else f"{sign}{abs(num) * 5**e2}e-{e2}"
        # reference: the nearer of the float32 neighbours of the exact value, ties to the even one
        lo, hi = x, nxt
        d_lo, d_hi = abs(exact - Fraction(lo)), abs(exact - Fraction(hi))
        even_lo = not int(np.array(lo, dtype=np.float32).view(np.uint32)) & 1
        want = lo if d_lo < d_hi or (d_lo == d_hi and even_lo) else hi
        got = parse_literal(literal, "float32")
        assert bits(got) == bits(want) or (got == want == 0.0)


# ---------------------------------------------------------------- item 2: malformed JSON
class TestMalformedJson:
    @pytest.mark.parametrize(
        "doc, fragment",
        [
            ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
            ('{"a": ' * 50_000 + "1" + "}" * 50_000, "nested too deeply"),
            ('{"schema": 1, "text": "v = add x 1", "inputs": ' + "[" * 100_000 + "]" * 100_000 + "}",
             "nested too deeply"),
            ('{"schema": ' + "9" * 5000 + ', "text": "v = add x 1"}', "integer of 5000 digits"),
            ('{"schema": 1, "text": "v = add x 1", "cost": -' + "1" * 5000 + "}", "integer of 5000 digits"),
            ('{"schema": NaN, "text": "v = add x 1"}', "NaN is not a JSON value"),
            ('{"schema": 1, "text": "v = add x 1", "cost": Infinity}', "Infinity is not a JSON value"),
            ('{"schema": 1, "text": "v = add x 1", "ops": -Infinity}', "-Infinity is not a JSON value"),
            ('{"schema": 1, "text": "v = add x 1", "text": "v = mul x 2"}', "key 'text' appears twice"),
            ('{"schema": 1, "schema": 1, "text": "v = add x 1"}', "key 'schema' appears twice"),
            ("[1, 2]", "must be an object, not an array"),
            ("null", "must be an object, not null"),
            ('"text"', "must be an object, not a string"),
            ("3", "must be an object, not a number"),
            ("", "malformed"),
            ("{", "malformed"),
            ('{"schema": 1, "text": "v = add x 1"} {}', "malformed: Extra data"),
            ("\ufeff{}", "malformed"),
            ('{"text": "v = add x 1"}', "schema None"),
            ('{"schema": true, "text": "v = add x 1"}', "schema True"),
            ('{"schema": 1.0, "text": "v = add x 1"}', "schema 1.0"),
            ('{"schema": [1], "text": "v = add x 1"}', "schema [1]"),
            ('{"schema": 1}', "lacks a 'text' string"),
            ('{"schema": 1, "text": null}', "lacks a 'text' string"),
            ('{"schema": 1, "text": ["v = add x 1"]}', "lacks a 'text' string"),
            ('{"schema": 1, "text": "v = add x 1", "inputs": "x"}', "'inputs' must be a list of names"),
            ('{"schema": 1, "text": "inputs x,y\\nv = add x y", "inputs": "xy"}', "'inputs' must be a list"),
            ('{"schema": 1, "text": "v = add x 1", "inputs": 5}', "'inputs' must be a list of names"),
            ('{"schema": 1, "text": "v = add x 1", "inputs": null}', "'inputs' must be a list of names"),
            ('{"schema": 1, "text": "v = add x 1", "inputs": [1]}', "'inputs' must be a list of names"),
            ('{"schema": 1, "text": "v = add x 1", "inputs": ["y"]}', "disagree with its text"),
            ('{"schema": 1, "text": "v = add x 1", "dtype": 32}', "'dtype' must be a string"),
            ('{"schema": 1, "text": "v = add x 1", "dtype": "float64"}', "disagrees with its text"),
            ('{"schema": 1, "text": "v = add x 1", "ops": "three"}', "'ops' must be a number"),
            ('{"schema": 1, "text": "v = add x 1", "latency": true}', "'latency' must be a number"),
            ('{"schema": 1, "text": "v = add x 0x1p1 \\u0663"}', "program JSON 'text': line 1, column 17"),
            ('{"schema": 1, "text": "v = add x \\ud800"}', "U+D800"),
            ('{"schema": 1, "text": ""}', "program JSON 'text': program has no instructions"),
        ],
    )
    def test_malformed_document_raises_program_error(self, doc, fragment):
        """Each kind of malformed document raises ProgramError with a one-line message naming the problem."""
        with pytest.raises(ProgramError) as info:
            Program.from_json(doc)
        assert fragment in assert_one_line_error(info)

    def test_document_over_the_size_limit(self):
        """A document longer than MAX_JSON_CHARS is refused before decoding, naming the limit."""
        doc = json.dumps({**GOOD_JSON, "note": "x" * MAX_JSON_CHARS})
        with pytest.raises(ProgramError) as info:
            Program.from_json(doc)
        assert f"the limit is {MAX_JSON_CHARS}" in assert_one_line_error(info)
        with pytest.raises(ProgramError, match="bytes; the limit"):
            Program.from_json(doc.encode())

    def test_bytes_are_read_as_utf8(self):
        """UTF-8 bytes are read like the str; other bytes raise ProgramError saying the document is not UTF-8."""
        assert Program.from_json(json.dumps(GOOD_JSON).encode()) == Program.from_json(GOOD_JSON)
        with pytest.raises(ProgramError) as info:
            Program.from_json(b'{"schema": 1, "text": "\xff"}')
        assert "not UTF-8" in assert_one_line_error(info)

    @pytest.mark.parametrize(
        "change, fragment",
        [
            ({"inputs": ("x", "y")}, None),
            ({"inputs": "xy"}, "'inputs' must be a list of names"),
            ({"inputs": 5}, "'inputs' must be a list of names"),
            ({"inputs": [["x"] * 3] * 3}, "'inputs' must be a list of names"),
            ({"dtype": {}}, "'dtype' must be a string"),
            ({"schema": 10**5000}, "schema <an integer of 16610 bits>"),
            ({"schema": float("nan")}, "schema nan"),
            ({"text": 5}, "lacks a 'text' string"),
            ({"cost": None}, "'cost' must be a number"),
        ],
    )
    def test_malformed_mapping_raises_program_error(self, change, fragment):
        """A parsed dict with wrong field types raises ProgramError, not TypeError (tuples of names are fine)."""
        doc = {**GOOD_JSON, **change}
        if fragment is None:
            assert Program.from_json(doc) == Program.from_json(GOOD_JSON)
            return
        with pytest.raises(ProgramError) as info:
            Program.from_json(doc)
        assert fragment in assert_one_line_error(info)

    def test_load_json_text_names_what_it_reads(self):
        """load_json_text starts its messages with the caller's name for the document."""
        with pytest.raises(ProgramError, match=r"^front\.json is nested too deeply$"):
            load_json_text("[" * 100_000, "front.json")
        assert load_json_text('{"a": [1, 2.5, "x", null, true]}') == {"a": [1, 2.5, "x", None, True]}

    def test_cli_seed_program_reports_one_line(self, tmp_path):
        """A deeply nested JSON seed program is a one-line UserError from the search command, not a traceback."""
        path = tmp_path / "seed.json"
        path.write_text("{" + '"a": {' * 50_000 + "}" * 50_001)
        with pytest.raises(UserError) as info:
            read_seed_programs([str(path)])
        msg = str(info.value)
        assert msg == f"seed program {path}: program JSON is nested too deeply"

    def test_cli_verify_exits_2_on_bad_program_json(self, tmp_path, capsys):
        """`pysearch verify` on a program JSON with schema true prints one error line and exits 2."""
        path = tmp_path / "p.json"
        path.write_text(json.dumps({**GOOD_JSON, "schema": True}))
        assert main(["verify", str(path), "--target", "exp2", "--samples", "10"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "schema True" in err


# ---------------------------------------------------------------- item 3: ASCII and line ends
class TestAsciiTextAndLineEnds:
    @pytest.mark.parametrize(
        "literal, column, codepoint",
        [("٣", 11, "U+0663"), ("１", 11, "U+FF11"), ("1.٥", 13, "U+0665"), ("𝟏", 11, "U+1D7CF"),
         ("1\u00a0", 12, "U+00A0"), ("0x1p1\u2009", 16, "U+2009")],
    )
    def test_non_ascii_in_a_number_is_an_error(self, literal, column, codepoint):
        """Unicode digits and spaces that float() would take are rejected, naming the line, column and code point."""
        with pytest.raises(ProgramError) as info:
            parse(f"# header\nv = add x {literal}")
        msg = assert_one_line_error(info)
        assert msg.startswith(f"line 2, column {column}: character ") and codepoint in msg

    @pytest.mark.parametrize("sep", ["\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c", "\x1e", "\r"])
    def test_only_newline_ends_a_comment(self, sep):
        """A line separator other than \\n inside a comment does not end the line; the rest stays comment."""
        p = parse(f"v1 = add x 1  # note{sep}v2 = add v1 1\nv3 = mul v1 2")
        assert [i.op for i in p.instrs] == ["add", "mul"]

    @pytest.mark.parametrize("sep", ["\u2028", "\x85", "\r", "\x0b", "\x0c"])
    def test_other_line_separators_outside_comments_are_errors(self, sep):
        """A line separator other than \\n between instructions is an error naming line 1, not a second line."""
        with pytest.raises(ProgramError) as info:
            parse(f"v1 = add x 1{sep}v2 = add v1 1")
        assert assert_one_line_error(info).startswith("line 1, column 13: character ")

    def test_line_numbers_count_newlines_only(self):
        """Error line numbers count \\n only, whatever other separators the comments hold."""
        with pytest.raises(ProgramError, match=r"^line 3: unknown op 'foo'"):
            parse("# a\u2028b\x85c\rd\nv = add x 1\nw = foo v\n")

    def test_crlf_reads_like_lf(self):
        """A CRLF file parses to the same program as its LF form (one \\r before each \\n is dropped)."""
        lf = "# c\ndtype float64\ninputs x, y\na = fma x y 0.5 # t\nreturn a\n"
        assert parse(lf.replace("\n", "\r\n")) == parse(lf)

    def test_unicode_in_comments_is_fine(self):
        """Any characters, non-ASCII digits included, may appear in a comment."""
        assert parse("# ٣ １ \u2028 \ud800\nv = add x 3 # ٣\n").constants() == [3.0]

    def test_cli_reports_non_ascii_digit_in_one_line(self, capsys):
        """`pysearch verify` on inline text with an Arabic-Indic digit exits 2 with one line naming the character."""
        assert main(["verify", "v1 = add x \u0663", "--target", "exp2", "--samples", "10"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "line 1, column 12: character '\u0663' (U+0663)" in err

    def test_tabs_separate_tokens(self):
        """Tabs separate tokens like spaces do."""
        assert parse("inputs\tx,\ty\nv\t=\tadd\tx\ty") == parse("inputs x, y\nv = add x y")


# ---------------------------------------------------------------- item 4: fuzz targets
#: Literals that parse: edge cases of sign, NaN, overflow to inf, underflow to 0, long digit strings.
GOOD_LITERALS = ["1", "-0.0", ".5", "1.", "+2", "nan", "-nan", "+inf", "-inf", "1e39", "1e400", "-1e-400",
                 "0x1p1024", "-0x1p1024", "0x1p-99999", "0x1.8p+1", "0x" + "f" * 300, "9" * 400,
                 "1.00000005960464477539062500000000001", "0x1.000001000000000001p0"]
#: Tokens that look like numbers but are not (Unicode digits, separators, other spellings).
BAD_LITERALS = ["٣", "１", "1_0", "0x_1", "infinity", "NaN", "1e", "0x", "1.2.3", "1\u00a0"]
LITERALS = GOOD_LITERALS + BAD_LITERALS
NAMES = ["x", "y", "v1", "v2", "v3", "a", "return", "nan", "add", "2v", "ä"]
OPS_AND_JUNK = ["add", "mul", "fma", "neg", "sqrt", "min", "ldexp", "exp", "pow", "foo", "="]
operands = st.one_of(st.sampled_from(NAMES + LITERALS), st.text(max_size=3),
                     st.floats().map(repr), st.floats().map(float.hex))
instruction_lines = st.builds(lambda n, op, args: f"{n} = {op} {' '.join(args)}", st.sampled_from(NAMES),
                              st.sampled_from(OPS_AND_JUNK), st.lists(operands, min_size=1, max_size=3))
header_lines = st.sampled_from(["dtype float32", "dtype float64", "dtype", "inputs x,y", "inputs x", "inputs",
                                "return v1", "return", "# c ٣ \u2028 \x85 x", "", "   ", "\t"])
junk_lines = st.lists(st.one_of(st.sampled_from(NAMES + LITERALS + OPS_AND_JUNK + ["#", "\r", "\u3000"]),
                                st.text(max_size=4)), max_size=5).map(" ".join)
SEPARATORS = ["\n"] * 24 + ["\r\n", "\r", "\u2028", "\x85", " # \u2028 "]


@st.composite
def program_texts(draw) -> str:
    """Texts near the grammar: mostly well-formed headers and instructions over edge-case operands,
    with some junk lines and odd line separators mixed in."""
    dtype = draw(st.sampled_from(["float32", "float64"]))
    lines = [f"dtype {dtype}", "inputs x,y"] if draw(st.integers(0, 3)) else [draw(header_lines)]
    allowed = [op for op in OPS if dtype == "float64" or not op.float64_only]
    for i in range(draw(st.integers(1, 6))):
        if draw(st.integers(0, 9)):
            op = draw(st.sampled_from(allowed))
            defined = ["x", "y"] + [f"v{j}" for j in range(1, i + 1)]
            args = [draw(st.sampled_from(defined) | st.sampled_from(GOOD_LITERALS) | st.sampled_from(GOOD_LITERALS)
                         | operands) for _ in range(op.arity)]
            lines.append(f"v{i + 1} = {op.name} {' '.join(args)}")
        else:
            lines.append(draw(st.one_of(instruction_lines, header_lines, junk_lines)))
    return "".join(line + draw(st.sampled_from(SEPARATORS)) for line in lines)


INSERTS = ["\u2028", "\x85", "\r", "\ud800", "\u00a0", "#", "=", "\n", ",", "\x00", "{", "}", "\\", '"',
           "[" * 3000, " 0x1p99999", " 1e999999", " 9" + "9" * 400] + LITERALS

json_scalars = st.one_of(st.integers(), st.floats(), st.booleans(), st.text(max_size=10),
                         st.sampled_from(["float32", "float64", "x", "v = add x 1", "inputs x,y\nv = add x y"]),
                         st.none())
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=6), inner, max_size=4), max_leaves=12)
#: Fields of the JSON form, those whose type checks matter first (hypothesis favours early entries).
REMOVED = object()
KEYS = ["inputs", "dtype", "ops", "cost", "latency", "schema", "text", "note"]
json_objects = st.dictionaries(st.sampled_from(KEYS), st.one_of(json_values, st.just(1), st.just(["x"])))

any_program = st.sampled_from(["float32", "float64"]).flatmap(
    lambda dt: st.integers(1, 3).flatmap(lambda n: programs(dt, n_inputs=n, max_instrs=6))
)


class TestFuzz:
    @settings(max_examples=200)
    @given(program_texts())
    def test_arbitrary_text(self, text):
        """(a) Arbitrary text either parses to a program that round-trips bit for bit or raises ProgramError."""
        parse_or_program_error(text)

    @given(st.one_of(json_values, json_objects))
    def test_arbitrary_json_values(self, value):
        """(b) Arbitrary JSON-ish values, as objects and as JSON text (NaN tokens included), load or raise ProgramError."""
        from_json_or_program_error(value)
        from_json_or_program_error(json.dumps(value))

    @settings(max_examples=100)
    @given(any_program, st.dictionaries(st.sampled_from(KEYS), st.one_of(json_values, st.just(REMOVED)),
                                        min_size=1, max_size=3))
    def test_valid_json_with_fields_replaced(self, p, changes):
        """(b) A valid program JSON with fields replaced by arbitrary values, or removed, loads or raises ProgramError."""
        doc = p.to_json_obj()
        for key, value in changes.items():
            if value is REMOVED:
                doc.pop(key, None)
            else:
                doc[key] = value
        from_json_or_program_error(doc)
        from_json_or_program_error(json.dumps(doc))

    @given(st.text(max_size=60))
    def test_arbitrary_json_strings(self, text):
        """(b) Arbitrary strings given as JSON documents load or raise ProgramError."""
        from_json_or_program_error(text)

    @given(any_program, st.sampled_from(INSERTS), st.data())
    def test_mutated_program_text(self, p, insert, data):
        """(c) A valid program text with unicode, huge numbers or brackets inserted parses or raises ProgramError."""
        text = p.to_text()
        at = data.draw(st.integers(0, len(text)))
        parse_or_program_error(text[:at] + insert + text[at:])

    @settings(max_examples=100)
    @given(any_program, st.sampled_from(LITERALS), st.data())
    def test_operand_replaced_by_edge_literal(self, p, literal, data):
        """(c) A valid program text with one operand replaced by an edge-case literal parses or raises ProgramError."""
        lines = p.to_text().split("\n")
        i = data.draw(st.sampled_from([k for k, line in enumerate(lines) if " = " in line]))
        tokens = lines[i].split(" ")  # NAME = OP ARG...
        tokens[data.draw(st.integers(3, len(tokens) - 1))] = literal
        lines[i] = " ".join(tokens)
        parse_or_program_error("\n".join(lines))

    @given(any_program, st.sampled_from(INSERTS), st.data())
    def test_mutated_program_json(self, p, insert, data):
        """(c) A valid program JSON with a piece inserted anywhere loads or raises ProgramError."""
        doc = p.to_json()
        at = data.draw(st.integers(0, len(doc)))
        from_json_or_program_error(doc[:at] + insert + doc[at:])

    @given(any_program, st.integers(1, 5000), st.sampled_from(["[", '{"k": ']))
    def test_deeply_nested_program_json(self, p, depth, opener):
        """(c) A valid program JSON whose fields are wrapped in deep nesting raises ProgramError, never RecursionError."""
        closer = "]" if opener == "[" else "}"
        doc = json.dumps({**p.to_json_obj(), "inputs": None})
        doc = doc.replace("null", opener * depth + "1" + closer * depth)
        with pytest.raises(ProgramError) as info:
            Program.from_json(doc)
        assert_one_line_error(info)

    @given(any_program, st.sampled_from(["e99999", "e-99999", "0" * 300, "p99999"]), st.data())
    def test_constants_with_huge_exponents(self, p, suffix, data):
        """(c) A constant given a huge exponent or many digits still parses (to ±inf, ±0) or raises ProgramError."""
        lines = p.to_text().split("\n")
        i = data.draw(st.integers(0, len(lines) - 1))
        parse_or_program_error("\n".join(lines[:i] + [lines[i] + suffix] + lines[i + 1:]))


# ---------------------------------------------------------------- other inputs of program.py
class TestProgramStructure:
    @pytest.mark.parametrize(
        "kwargs, fragment",
        [
            ({"inputs": "xy"}, "inputs must be a sequence of names"),
            ({"inputs": 5}, "inputs must be a sequence of names"),
            ({"inputs": (1,)}, "inputs must be a tuple of str names"),
            ({"instrs": 5}, "instrs must be a sequence of Instr"),
            ({"instrs": [5]}, "instruction 1: 5 is not an Instr"),
            ({"instrs": [Instr("add", [Ref.input(0), Ref.input(0)])]}, "is not an Instr(op: str, args: tuple)"),
            ({"instrs": [Instr("add", (Ref.input(0), 1.0))]}, "operand 1.0 is not a Ref"),
            ({"instrs": [Instr("add", (Ref.input(0), Ref("const", 0, "1")))]}, "constant '1' is not a float"),
            ({"instrs": [Instr("add", (Ref.input(0), Ref("input", "0")))]}, "operand index '0' is not an int"),
            ({"output": True}, "output index True is not an int"),
            ({"dtype": None}, "unknown dtype None"),
        ],
    )
    def test_bad_structure_raises_program_error(self, kwargs, fragment):
        """A Program built directly with wrong field types raises ProgramError, not TypeError or AttributeError."""
        fields = {"instrs": [Instr("add", (Ref.input(0), Ref.const(1.0)))], **kwargs}
        with pytest.raises(ProgramError) as info:
            Program(**fields)
        assert fragment in assert_one_line_error(info)

    def test_bad_latencies_and_constants(self):
        """Non-numeric latencies and constants, and weights that are not mappings, raise ProgramError."""
        p = parse("v = add x 1")
        with pytest.raises(ProgramError, match="latencies must be non-negative numbers"):
            p.latency({"add": "3"})
        with pytest.raises(ProgramError, match="latencies must be a mapping"):
            p.latency(["add"])
        with pytest.raises(ProgramError, match="cost weights must be a mapping"):
            p.cost(["add"])
        with pytest.raises(ProgramError, match="with_constants: a value is not a number"):
            p.with_constants(["one"])

    @pytest.mark.parametrize(
        "text",
        ["v = add x " + "q" * 100_000, "v = add x 1" + "." * 100_000, "9" * 100_000 + " = add x 1",
         "a" * 100_000 + " = add x 1\n" + "a" * 100_000 + " = add x 2",
         "v = " + "a" * 100_000 + " x 1", "inputs x," + "y" * 100_000 + "-\nv = add x 1", "x" * 100_000],
    )
    def test_long_tokens_give_short_messages(self, text):
        """An error about a 100,000-character token quotes it elided, so the message stays one short line."""
        with pytest.raises(ProgramError) as info:
            parse(text)
        assert "..." in assert_one_line_error(info)

    def test_large_program_parses(self):
        """A 20,000-instruction program parses and round-trips (size alone is no error)."""
        text = "v0 = add x 1\n" + "".join(f"v{i} = mul v{i - 1} 1.5\n" for i in range(1, 20_000))
        p = parse(text)
        assert len(p.instrs) == 20_000 and p.ops == 20_000
        assert parse(p.to_text()) == p

    def test_expression_of_a_doubling_program_is_refused(self):
        """expression() of 60 ops that each use the previous value twice (2^60 characters) raises ProgramError."""
        text = "v0 = add x x\n" + "".join(f"v{i} = mul v{i - 1} v{i - 1}\n" for i in range(1, 60))
        with pytest.raises(ProgramError) as info:
            parse(text).expression()
        assert "too large to show as one expression" in assert_one_line_error(info)

    def test_expression_skips_dead_instructions(self):
        """A huge dead sub-computation does not stop expression() of a small live one."""
        text = "v0 = add x x\n" + "".join(f"v{i} = mul v{i - 1} v{i - 1}\n" for i in range(1, 60))
        assert parse(text + "out = sqrt x\n").expression() == "sqrt(x)"


class TestJsonFilesThroughTheCli:
    @pytest.mark.parametrize("text", ["[" * 100_000 + "]" * 100_000, '{"a": 1, "a": 2}', '{"x": NaN}',
                                      '{"n": ' + "9" * 5000 + "}"])
    def test_verify_and_export_refuse_bad_json_files_in_one_line(self, tmp_path, capsys, text):
        """A malformed JSON file given to verify or export is one line naming the file, exit 2, never a traceback."""
        path = tmp_path / "bad.json"
        path.write_text("{" + text[1:] if text.startswith("{") else "{\"p\": " + text + "}", encoding="utf-8")
        for argv in (["verify", str(path), "--target", "exp2", "--domain", "0", "1"],
                     ["export", str(path), "--lang", "c"]):
            rc = main(argv)
            err = capsys.readouterr().err
            assert rc == 2, argv
            assert len(err.strip().splitlines()) == 1 and str(path) in err, err
