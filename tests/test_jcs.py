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
