"""Reading STIX input: a bundle, a JSON list of objects or one object; large files stream."""

from __future__ import annotations

import bisect
import re
import uuid
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson

from tansiq.stix.jsonstream import StreamError, loads, stream_objects

STREAM_ABOVE_BYTES = 32 * 1024 * 1024
_BUNDLE_ID = re.compile(r"bundle--[0-9a-fA-F-]{36}\Z")


class InputError(ValueError):
    """The input is not JSON, or not a bundle / list / object of STIX."""


def objects_of(document: Any) -> list[Any]:
    """The objects of a parsed document: a bundle, a list of objects, or one object."""
    if isinstance(document, list):
        return document
    if isinstance(document, dict):
        if document.get("type") == "bundle":
            bid = document.get("id")
            if not isinstance(bid, str) or not _BUNDLE_ID.match(bid):
                raise InputError("bundle: id must be 'bundle--' followed by a UUID")
            objects = document.get("objects", [])
            if not isinstance(objects, list):
                raise InputError("bundle: 'objects' must be a list")
            return objects
        return [document]
    raise InputError("expected a STIX bundle, a JSON list of objects, or one object")


def parse_bytes(data: bytes) -> list[Any]:
    try:
        document = loads(data)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"not valid JSON: {exc}") from None
    return objects_of(document)


def iter_file(path: Path) -> Iterator[Any]:
    """Objects of the file at *path*; files over 32 MiB are streamed with constant memory."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror}") from None
    if size <= STREAM_ABOVE_BYTES:
        try:
            yield from parse_bytes(path.read_bytes())
        except InputError as exc:
            raise InputError(f"{path}: {exc}") from None
        return
    with path.open("rb") as f:
        count = 0
        try:
            for obj in stream_objects(f):
                count += 1
                yield obj
        except StreamError as exc:
            raise InputError(f"{path}: not valid JSON after {count} objects: {exc}") from None


def iter_files(paths: Iterable[Path], starts: list[int] | None = None) -> Iterator[Any]:
    """The objects of each file in turn (see :func:`iter_file`).  *starts*, if given, receives
    the index of each file's first object as the file is begun (the files read so far: an
    error's object index tells its file without reading them again, :func:`file_of`)."""
    if starts is None:
        for path in paths:
            yield from iter_file(path)
        return
    count = 0
    for path in paths:
        starts.append(count)
        for obj in iter_file(path):
            count += 1
            yield obj


def file_of(starts: Sequence[int], index: int) -> tuple[int, int] | None:
    """(the file, the index in it) of the object at *index* across files whose first objects
    are at *starts* (:func:`iter_files`); None if no file begun holds it."""
    file = bisect.bisect_right(starts, index) - 1
    return None if file < 0 else (file, index - starts[file])


def bundle_header() -> bytes:
    return b'{"type":"bundle","id":"bundle--' + str(uuid.uuid4()).encode() + b'","objects":['


def stream_bundle(texts: Iterator[str]) -> Iterator[bytes]:
    """A STIX bundle, produced piece by piece from stored JSON texts."""
    yield bundle_header()
    first = True
    for text in texts:
        yield text.encode() if first else b"," + text.encode()
        first = False
    yield b"]}"
