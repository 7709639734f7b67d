"""The streaming bundle reader: same objects as a full parse, clear errors, bounded buffering."""

from __future__ import annotations

import io
import json

import pytest
from conftest import SHARED_FILES

from tansiq.stix import jsonstream
from tansiq.stix.jsonstream import StreamError, stream_objects


def objects(data: bytes) -> list[object]:
    return list(stream_objects(io.BytesIO(data)))


@pytest.mark.parametrize("path", SHARED_FILES, ids=lambda p: p.name)
def test_shared_files_stream_like_full_parse(path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(jsonstream, "CHUNK", 97)  # values cut at every possible place
    data = path.read_bytes()
    doc = json.loads(data)
    if doc.get("type") != "bundle":  # one bare object: only small files may be that
        with pytest.raises(StreamError):
            objects(data)
        return
    assert objects(data) == doc["objects"]


def test_shapes_and_splits(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(jsonstream, "CHUNK", 3)
    doc = {
        "objects": [{"a": "درنة", "n": 12345678901234567890, "f": 1.5e-7}, {"b": [True, None]}],
        "id": "bundle--x",
        "type": "bundle",
        "spec": {"nested": "}]"},
    }
    assert objects(json.dumps(doc, ensure_ascii=False).encode()) == doc["objects"]
    assert objects(b' [ {"x": 1} , {"y": 2} ] ') == [{"x": 1}, {"y": 2}]
    assert objects(b"[]") == []


@pytest.mark.parametrize(
    "bad",
    [
        b'{"objects": [{"a": 1}',
        b'{"objects": [{"a": 1},]}',
        b"[1, 2] extra",
        b'{"type": "indicator"}',
        b'{"objects": [NaN]}',
        b"\xff\xfe",
        b"",
        b'{"x": 1}',
    ],
)
def test_errors(bad: bytes) -> None:
    with pytest.raises(StreamError):
        objects(bad)
