"""The streaming bundle reader: same objects as a full parse, clear errors, bounded buffering."""

from __future__ import annotations

import io
import json

import orjson
import pytest
from conftest import SHARED_FILES

from tansiq.stix import jsonstream
from tansiq.stix.jsonstream import StreamError, stream_objects

BUNDLE_ID = "bundle--00000000-0000-4000-8000-000000000000"


def objects(data: bytes) -> list[object]:
    return list(stream_objects(io.BytesIO(data)))


@pytest.mark.parametrize("path", SHARED_FILES, ids=lambda p: p.name)
def test_shared_files_stream_like_full_parse(path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(jsonstream, "CHUNK", 97)  # values cut at every possible place
    monkeypatch.setattr(jsonstream, "RUN_BYTES", 97)
    monkeypatch.setattr(jsonstream, "FIRST_WINDOW", 5)  # and decoded through growing windows
    data = path.read_bytes()
    doc = json.loads(data)
    if doc.get("type") != "bundle":  # one bare object: only small files may be that
        with pytest.raises(StreamError):
            objects(data)
        return
    assert objects(data) == doc["objects"]


def test_shapes_and_splits(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(jsonstream, "CHUNK", 3)
    monkeypatch.setattr(jsonstream, "RUN_BYTES", 3)
    monkeypatch.setattr(jsonstream, "FIRST_WINDOW", 2)
    doc = {
        "objects": [{"a": "درنة", "n": 12345678901234567890, "f": 1.5e-7}, {"b": [True, None]}],
        "id": BUNDLE_ID,
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


DEEP = b"[" * 5000 + b"]" * 5000


@pytest.mark.parametrize(
    "data",
    [
        b"[" + DEEP + b"]",  # an element
        b'[{"type": "x", "a": ' + DEEP + b'}, {"type": "y"}]',  # the first of a run
        b'{"type": "bundle", "x": ' + DEEP + b', "objects": []}',  # a bundle's property
    ],
    ids=["element", "run", "bundle"],
)
def test_nesting_too_deep_is_an_error_not_a_crash(data: bytes) -> None:
    """The standard library's decoder, which finds where a value ends, recurses: a value
    nested thousands deep is refused as such (a RecursionError went up before)."""
    with pytest.raises(StreamError, match="nested too deeply"):
        objects(data)


def test_loads_refuses_nesting_its_integer_check_cannot_follow() -> None:
    """orjson accepts nesting a little deeper than the standard decoder that checks for
    integers beyond 64 bits can follow: refused, with orjson's error type."""
    data = b"[" * 1000 + b"123456789012345678901234567890" + b"]" * 1000
    with pytest.raises(orjson.JSONDecodeError, match="nested too deeply"):
        jsonstream.loads(data)


def test_runs_are_decoded_at_once_and_nested_cuts_fall_back(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Whole elements up to the last ``},{"type":`` are decoded in one call; a cut that falls
    inside a nested list of typed objects cannot decode and the elements come one by one."""
    monkeypatch.setattr(jsonstream, "CHUNK", 4096)
    monkeypatch.setattr(jsonstream, "RUN_BYTES", 4096)
    calls = []
    real = jsonstream.orjson.loads

    def loads(text):  # type: ignore[no-untyped-def]
        out = real(text)
        calls.append(len(out))  # elements decoded in one run
        return out

    monkeypatch.setattr(jsonstream.orjson, "loads", loads)
    nested = {"type": "note", "content": "x" * 50, "parts": [{"type": "a"}, {"type": "b"}] * 20}
    flat = [
        {"type": "indicator", "id": f"indicator--{i}", "name": '}, {"type": ,'} for i in range(300)
    ]
    for doc_objects in (flat, [nested] * 60, flat[:50] + [nested] * 10 + flat[50:]):
        for indent in (None, 2):
            data = json.dumps(
                {"type": "bundle", "id": BUNDLE_ID, "objects": doc_objects}, indent=indent
            ).encode()
            calls.clear()
            assert objects(data) == doc_objects
            if doc_objects is flat:
                assert sum(calls) > len(flat) // 2  # most of them came in runs


def test_an_invalid_element_inside_a_run_is_reported_where_it_is(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(jsonstream, "CHUNK", 4096)
    monkeypatch.setattr(jsonstream, "RUN_BYTES", 4096)
    good = json.dumps({"type": "indicator", "name": "n"})
    items = [good] * 200
    items[120] = '{"type": "indicator", "value": NaN}'
    data = ('{"type": "bundle", "objects": [' + ", ".join(items) + "]}").encode()
    with pytest.raises(StreamError, match="NaN is not valid JSON"):
        objects(data)


@pytest.mark.parametrize("chunk", [3, 4096])
def test_invalid_utf8_anywhere_is_an_error(monkeypatch, chunk: int) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(jsonstream, "CHUNK", chunk)
    monkeypatch.setattr(jsonstream, "RUN_BYTES", chunk)
    good = b'{"type": "note", "content": "\xd8\xaf\xd8\xb1\xd9\x86\xd8\xa9"}'  # Derna
    bad = b'{"type": "note", "content": "\xd8"}'  # a lone lead byte
    for items in ([good] * 100 + [bad] + [good] * 100, [bad], [good, bad]):
        data = b'{"type": "bundle", "objects": [' + b", ".join(items) + b"]}"
        with pytest.raises(StreamError):
            objects(data)
    assert objects(b"[" + b", ".join([good] * 300) + b"]")[0]["content"] == "درنة"


def test_runs_are_bounded(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """One decoding call covers about RUN_BYTES of input, however much is buffered."""
    monkeypatch.setattr(jsonstream, "CHUNK", 1 << 16)
    monkeypatch.setattr(jsonstream, "RUN_BYTES", 2048)
    sizes = []
    real = jsonstream.orjson.loads

    def loads(text):  # type: ignore[no-untyped-def]
        sizes.append(len(text))
        return real(text)

    monkeypatch.setattr(jsonstream.orjson, "loads", loads)
    flat = [{"type": "indicator", "id": f"indicator--{i}", "name": "n" * 40} for i in range(2000)]
    data = json.dumps({"type": "bundle", "id": BUNDLE_ID, "objects": flat}).encode()
    assert objects(data) == flat
    assert len(sizes) > len(data) // 2048 and max(sizes) <= 2048 + 2


@pytest.mark.parametrize(
    ("buf", "lo", "hi", "cut"),
    [
        (b'{"a":1},{"type":"x"}', 0, 20, (6, 8)),
        (b'{"a":1} ,\r\n\t{ "type" :"x"}', 0, 26, (6, 12)),
        (b'{"a":1},{"type":"x"},{"type":"y"}', 0, 33, (19, 21)),  # the last one
        (b'{"a":1},{"type":"x"},{"type":"y"}', 0, 28, (6, 8)),  # ':' beyond hi: not whole
        (b'{"a":1},{"type":"x"}', 7, 20, None),  # '}' before lo
        (b'{"a":"},{\\"type\\":"}', 0, 20, None),  # inside a string the quotes are escaped
        (b'{"a":1},{"kind":"type"}', 0, 23, None),  # "type" as a value
        (b'{"a":1}{"type":"x"}', 0, 19, None),  # no comma
    ],
)
def test_last_cut(buf: bytes, lo: int, hi: int, cut: tuple[int, int] | None) -> None:
    assert jsonstream._last_cut(buf, lo, hi) == cut


@pytest.mark.parametrize(
    "value", [b"1e400", b'"\\ud800"', b"123456789012345678901234567890", b"NaN"]
)
def test_element_by_element_decoding_refuses_what_orjson_refuses(value: bytes) -> None:
    """Elements a run could not decode go through the standard library's decoder, which read
    1e400 as inf (stored as null), a lone surrogate (which the store could not write) and an
    integer beyond 64 bits exactly (likewise): refused there as orjson refuses them."""
    element = b'{"type":"x","a":' + value + b"}"
    for data in (b"[" + element + b"]", b'[{"type":"x"},' + element + b',{"type":"x"}]'):
        with pytest.raises(StreamError):
            objects(data)


@pytest.mark.parametrize(
    ("data", "said"),
    [
        (
            b'{"type": "bundle", "id": "' + BUNDLE_ID.encode() + b'",'
            b' "objects": [{"type": "x", "n": 1}], "objects": [{"type": "x", "n": 2}]}',
            "'objects' is given twice",
        ),
        (
            b'{"type": "bundle", "id": "' + BUNDLE_ID.encode() + b'",'
            b' "objects": [{"type": "x", "n": 1}], "\\u006fbjects": [{"type": "x", "n": 2}]}',
            "'objects' is given twice",
        ),
        (b'{"type": "bundle", "objects": [{"type": "x"}]}', "id must be 'bundle--'"),
        (
            b'{"type": "bundle", "id": "bundle--x", "objects": [{"type": "x"}]}',
            "id must be 'bundle--'",
        ),
    ],
    ids=["objects twice", "objects twice, escaped", "no id", "bad id"],
)
def test_a_streamed_bundle_is_refused_where_a_whole_read_refuses_it(
    data: bytes,
    said: str,
    tmp_path,  # type: ignore[no-untyped-def]
    monkeypatch,
) -> None:
    """A file over the streaming threshold was read otherwise than the same file read whole:
    'objects' given twice streamed both lists, where orjson keeps the last alone (objects
    stored that a smaller file of the same text would not hold), and a bundle without an id,
    or with a bad one, was taken where reading it whole refuses it."""
    from tansiq.stix import bundles

    with pytest.raises(StreamError, match=said):
        objects(data)
    path = tmp_path / "b.json"
    path.write_bytes(data)
    for threshold in (0, bundles.STREAM_ABOVE_BYTES):
        monkeypatch.setattr(bundles, "STREAM_ABOVE_BYTES", threshold)
        with pytest.raises(bundles.InputError, match=said):
            list(bundles.iter_file(path))


@pytest.mark.parametrize(
    "data",
    [
        b'{"id": "' + BUNDLE_ID.encode() + b'", "objects": [{"type": "x"}]}',
        b'{"type": "bundle", "id": "' + BUNDLE_ID.encode() + b'",'
        b' "objects": [{"type": "x"}], "type": "indicator"}',
    ],
    ids=["no type", "last type not bundle"],
)
def test_no_bundle_by_its_last_type_is_no_bundle_streamed_either(data: bytes) -> None:
    """Read whole, such a document is one object (which validation refuses); streamed, its
    'objects' were taken as a bundle's."""
    with pytest.raises(StreamError, match="must be a STIX bundle"):
        objects(data)


def test_a_streamed_bundle_reads_its_last_type_and_id_as_a_whole_read_does(
    tmp_path,
    monkeypatch,  # type: ignore[no-untyped-def]
) -> None:
    """A key given twice counts as its last value, streamed or not (orjson's rule); an
    observed-data's own ``objects`` is no second list of the bundle's."""
    from tansiq.stix import bundles

    data = (
        b'{"type": "indicator", "id": "bundle--x", "objects": [{"type": "x", "objects": {"0": 1}},'
        b' {"type": "y", "objects": {"0": 2}, "objects": {"0": 3}}],'
        b' "type": "bundle", "id": "' + BUNDLE_ID.encode() + b'"}'
    )
    want = [{"type": "x", "objects": {"0": 1}}, {"type": "y", "objects": {"0": 3}}]
    path = tmp_path / "b.json"
    path.write_bytes(data)
    for threshold in (0, bundles.STREAM_ABOVE_BYTES):
        monkeypatch.setattr(bundles, "STREAM_ABOVE_BYTES", threshold)
        assert list(bundles.iter_file(path)) == want
