"""The fast canonical JSON path gives exactly the bytes of the rfc8785 reference."""

from __future__ import annotations

import json

import pytest
import rfc8785
from conftest import SHARED_FILES
from hypothesis import given, settings
from hypothesis import strategies as st

from tansiq.federation import jcs

keys = st.text(min_size=0, max_size=8)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.text()
    | st.floats(allow_nan=False, allow_infinity=False)
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=30,
)


@settings(max_examples=2000, deadline=None)
@given(values)
def test_same_bytes_as_reference(value: object) -> None:
    try:
        want = rfc8785.dumps(value)
    except rfc8785.CanonicalizationError:
        with pytest.raises(rfc8785.CanonicalizationError):
            jcs.dumps(value)
        return
    assert jcs.dumps(value) == want


@pytest.mark.parametrize("path", SHARED_FILES, ids=lambda p: p.name)
def test_shared_objects(path) -> None:  # type: ignore[no-untyped-def]
    doc = json.loads(path.read_bytes())
    for obj in doc.get("objects", [doc]):
        assert jcs.dumps(obj) == rfc8785.dumps(obj)


def test_control_characters_and_escapes() -> None:
    s = "".join(chr(i) for i in range(0x20)) + '"\\/\u007f\u2028\u2029é\U0001f600'
    assert jcs.dumps({"a": s, "z": [s]}) == rfc8785.dumps({"a": s, "z": [s]})


# RFC 8785 appendix B: IEEE 754 doubles (as bit patterns) and their canonical spelling.
NUMBERS = [
    ("0000000000000000", "0"),
    ("8000000000000000", "0"),  # -0
    ("0000000000000001", "5e-324"),
    ("8000000000000001", "-5e-324"),
    ("7fefffffffffffff", "1.7976931348623157e+308"),
    ("ffefffffffffffff", "-1.7976931348623157e+308"),
    ("4340000000000000", "9007199254740992"),
    ("c340000000000000", "-9007199254740992"),
    ("4430000000000000", "295147905179352830000"),
    ("44b52d02c7e14af5", "9.999999999999997e+22"),
    ("44b52d02c7e14af6", "1e+23"),
    ("44b52d02c7e14af7", "1.0000000000000001e+23"),
    ("444b1ae4d6e2ef4e", "999999999999999700000"),
    ("444b1ae4d6e2ef4f", "999999999999999900000"),
    ("444b1ae4d6e2ef50", "1e+21"),
    ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
    ("3eb0c6f7a0b5ed8d", "0.000001"),
    ("41b3de4355555553", "333333333.3333332"),
    ("41b3de4355555554", "333333333.33333325"),
    ("41b3de4355555555", "333333333.3333333"),
    ("41b3de4355555556", "333333333.3333334"),
    ("41b3de4355555557", "333333333.33333343"),
    ("becbf647612f3696", "-0.0000033333333333333333"),
    ("43143ff3c1cb0959", "1424953923781206.2"),
]


@pytest.mark.parametrize(("bits", "want"), NUMBERS)
def test_rfc8785_number_vectors(bits: str, want: str) -> None:
    import struct

    (f,) = struct.unpack(">d", bytes.fromhex(bits))
    assert jcs.dumps({"n": f}) == b'{"n":' + want.encode() + b"}"
    assert jcs.dumps({"n": [f, 1.0, 1]}) == b'{"n":[' + want.encode() + b",1,1]}"


def test_rfc8785_key_order_is_by_utf16_code_units() -> None:
    # RFC 8785 3.2.3's example: U+1F600 (surrogates D83D DE00) sorts before U+FB33, though
    # its code point (and UTF-8) is larger.
    value = {
        "\u20ac": "Euro Sign",
        "\r": "Carriage Return",
        "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\U0001f600": "Emoji: Grinning Face",
        "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis",
    }
    want = (
        '{"\\r":"Carriage Return","1":"One","\u0080":"Control",'
        '"\u00f6":"Latin Small Letter O With Diaeresis","\u20ac":"Euro Sign",'
        '"\U0001f600":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}'
    )
    assert jcs.dumps(value) == want.encode()
    assert jcs.dumps({"\ue000": 1, "\U0001f600": 2}) == '{"\U0001f600":2,"\ue000":1}'.encode()


def test_rfc8785_string_escapes() -> None:
    s = '\b\t\n\f\r\x00\x1f\x7f"\\/\u2028\U0001f600'
    want = '"\\b\\t\\n\\f\\r\\u0000\\u001f\x7f\\"\\\\/\u2028\U0001f600"'
    assert jcs.dumps(s) == want.encode()
    assert jcs.dumps({"a": s}) == b'{"a":' + want.encode() + b"}"


@pytest.mark.parametrize(
    ("value", "want"),
    [
        (1e-7, "1e-7"),  # ECMAScript: exponent without a leading zero (Python: 1e-07)
        (1e21, "1e+21"),
        (1e20, "100000000000000000000"),
        (1e-6, "0.000001"),
        (-0.0, "0"),
        (1.0, "1"),
        (0.1 + 0.2, "0.30000000000000004"),
        (2**53 - 1, "9007199254740991"),
        (float(2**53 + 2), "9007199254740994"),  # a double, not an integer beyond 2**53 - 1
    ],
    ids=repr,
)
def test_numbers_beside_the_appendix(value: object, want: str) -> None:
    assert jcs.dumps(value) == want.encode()
    assert jcs.dumps({"é": [value]}) == '{"é":['.encode() + want.encode() + b"]}"


@pytest.mark.parametrize(
    "value",
    [
        2**53,
        -(2**53),
        2**53 + 1,
        2**64,  # beyond 64 bits: the readers refuse it (jsonstream.loads), as this does
        -(2**63) - 1,
        float("nan"),
        float("inf"),
        "\ud800",
        {"a": "\udc00"},
        {"\ud800": 1},  # a lone surrogate in a key, not only in a value
        {"é\udfff": 1, "b": 2},
    ],
    ids=repr,
)
def test_unrepresentable_values_raise_canonicalization_error(value: object) -> None:
    with pytest.raises(jcs.CanonicalizationError):
        jcs.dumps(value)


@pytest.mark.parametrize("depth", [600, 1000])
def test_values_nested_too_deeply_raise_canonicalization_error(depth: int) -> None:
    # orjson parses up to 1024 levels; the canonical form's recursion gives up before.
    value: object = 1
    for i in range(depth):
        value = [value] if i % 2 else {"a": value}
    with pytest.raises(jcs.CanonicalizationError, match="nested too deeply"):
        jcs.dumps({"x_deep": value})
