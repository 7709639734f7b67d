"""Reading STIX input: a bundle, a JSON list of objects or one object; large files stream."""

from __future__ import annotations

import bisect
import gzip
import io
import os
import re
import sys
import uuid
import zlib
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path, PosixPath
from typing import IO, Any, cast

import orjson

from tansiq.stix.jsonstream import (
    BAD_BUNDLE_ID,
    BUNDLE_ID,
    ObjectsTwice,
    StreamError,
    loads,
    stream_objects,
)

STREAM_ABOVE_BYTES = 32 * 1024 * 1024
_ESCAPED_ASCII = re.compile(rb"\\u00[4-7][0-9a-fA-F]")  # a letter written as an escape


class InputError(ValueError):
    """The input is not JSON, or not a bundle / list / object of STIX."""


def objects_of(document: Any) -> list[Any]:
    """The objects of a parsed document: a bundle, a list of objects, or one object."""
    if isinstance(document, list):
        return document
    if isinstance(document, dict):
        if document.get("type") == "bundle":
            bid = document.get("id")
            if not isinstance(bid, str) or not BUNDLE_ID.match(bid):
                raise InputError(BAD_BUNDLE_ID)
            objects = document.get("objects", [])
            if not isinstance(objects, list):
                raise InputError("bundle: 'objects' must be a list")
            return objects
        return [document]
    raise InputError("expected a STIX bundle, a JSON list of objects, or one object")


def parse_bytes(data: bytes) -> list[Any]:
    """The objects of *data*, read whole (:func:`objects_of`).

    A bundle giving ``objects`` twice is refused, as the streaming reader refuses it: orjson
    keeps the last list, the stream had read the first.  Only a text holding ``"objects"``
    twice (a bundle with observed-data's ``objects``, say), or an ASCII character written as
    an escape (``"\u006fbjects"``: JSON writers escape none), can: that is read again,
    streamed."""
    try:
        document = loads(data)
    except orjson.JSONDecodeError as exc:
        raise InputError(_not_utf8(data) or f"not valid JSON: {exc}") from None
    objects = objects_of(document)
    bundle = isinstance(document, dict) and document.get("type") == "bundle"
    if bundle and (data.count(b'"objects"') > 1 or _ESCAPED_ASCII.search(data)):
        try:
            deque(stream_objects(io.BytesIO(data)), 0)
        except ObjectsTwice as exc:
            raise InputError(str(exc)) from None
        except StreamError:
            pass  # (what else the stream refuses, a whole-file read is held to already)
    return objects


def _not_utf8(data: bytes) -> str | None:
    """Where *data* is not UTF-8, in words (orjson says "str is not valid UTF-8: surrogates
    not allowed: line 1 column 1 (char 0)" wherever the byte is); None when it is UTF-8."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        return (
            f"not UTF-8 text: byte 0x{data[exc.start]:02x} at line {line}, column {column}"
            f" (byte offset {exc.start}); JSON files are UTF-8: convert it (e.g. with iconv)"
        )
    return None


# What a file that is not JSON text in UTF-8 often is, by its first bytes (none can begin JSON).
_NOT_JSON = (
    (b"BZh", "bzip2-compressed: decompress it first (bunzip2)"),
    (b"\xfd7zXZ\x00", "xz-compressed: decompress it first (unxz)"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed: decompress it first (unzstd)"),
    (b"PK\x03\x04", "a zip archive: extract its files first (unzip)"),
    (b"\xef\xbb\xbf", "UTF-8 with a byte order mark, which JSON does not allow: remove it"),
    (b"\xff\xfe", "UTF-16 or UTF-32 text: JSON files are UTF-8"),
    (b"\xfe\xff", "UTF-16 text: JSON files are UTF-8"),
)


_GZIP = b"\x1f\x8b"


class StdinPath(PosixPath):
    """Standard input, among the paths given to :func:`iter_files` (``-`` on the command
    line); named ``<stdin>`` in messages.  Read once, in the calling process."""

    def __str__(self) -> str:
        return "<stdin>"


STDIN = StdinPath("-")


class _Rejoined:
    """*head* then the rest of *f*: bytes read ahead, put back in front of the stream."""

    def __init__(self, head: bytes, f: IO[bytes]) -> None:
        self.head: bytes | None = head
        self.at = 0
        self.f = f

    def read(self, size: int = -1) -> bytes:
        if self.head is None:
            return self.f.read(size)
        end = len(self.head) if size < 0 else self.at + size
        data = self.head[self.at : end]
        self.at = end
        if self.at >= len(self.head):
            self.head = None  # (not held any longer than it is read)
            if size < 0:
                data += self.f.read()
        return data


def _sniff(path: Path, head: bytes) -> None:
    if not head:
        raise InputError(f"{path}: empty file, not a STIX bundle")
    for magic, what in _NOT_JSON:
        if head.startswith(magic):
            raise InputError(f"{path}: {what}")


def iter_file(path: Path) -> Iterator[Any]:
    """Objects of the file at *path*; files over 32 MiB are streamed with constant memory.

    The file is opened and read once; what cannot be read, or is not JSON, raises
    :class:`InputError` naming the file and what it is instead (empty, compressed, ...).
    A gzip-compressed file (by its first bytes) is decompressed as it is read, and
    :data:`STDIN` is standard input: both are read ahead up to 32 MiB, then streamed."""
    if isinstance(path, StdinPath):
        yield from _iter_stream(path, sys.stdin.buffer)
        return
    try:
        f = path.open("rb")
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror or exc}") from None
    with f:
        try:
            head = f.read(2)
        except OSError as exc:
            raise InputError(f"{path}: cannot read it: {exc.strerror or exc}") from None
        f.seek(0)
        if head == _GZIP:
            yield from _iter_stream(path, f)
        else:
            yield from _iter_plain(path, f)


def _iter_stream(path: Path, raw: IO[bytes]) -> Iterator[Any]:
    """The objects of *raw*, which cannot seek (a pipe) or may be gzip-compressed."""
    count = 0
    try:
        head = raw.read(2)
        f: Any = _Rejoined(head, raw)
        if head == _GZIP:
            f = gzip.GzipFile(fileobj=f, mode="rb")
        head = f.read(8)
        _sniff(path, head)
        data = head + f.read(max(0, STREAM_ABOVE_BYTES + 1 - len(head)))
        if len(data) <= STREAM_ABOVE_BYTES:
            try:
                objects = parse_bytes(data)
            except InputError as exc:
                raise InputError(f"{path}: {exc}") from None
            yield from objects
            return
        for obj in stream_objects(cast(IO[bytes], _Rejoined(data, f))):
            count += 1
            yield obj
    except StreamError as exc:
        raise InputError(f"{path}: not valid JSON after {count} objects: {exc}") from None
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise InputError(f"{path}: not valid gzip after {count} objects: {exc}") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read it: {exc.strerror or exc}") from None


def _iter_plain(path: Path, f: IO[bytes]) -> Iterator[Any]:
    """The objects of *f*, an uncompressed file read whole up to 32 MiB, else streamed."""
    count = 0
    try:
        size = os.fstat(f.fileno()).st_size
        head = f.read(8)
        _sniff(path, head)
        f.seek(0)
        if size <= STREAM_ABOVE_BYTES:
            try:
                objects = parse_bytes(f.read())
            except InputError as exc:
                raise InputError(f"{path}: {exc}") from None
            yield from objects
            return
        for obj in stream_objects(f):
            count += 1
            yield obj
    except StreamError as exc:
        raise InputError(f"{path}: not valid JSON after {count} objects: {exc}") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read it: {exc.strerror or exc}") from None


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
