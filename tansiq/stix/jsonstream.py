"""Streaming reader for large STIX bundles: one object at a time, in bounded memory.

The top level (a bundle's keys, or a JSON array) is walked by hand over a sliding window of the
input's bytes.  Array elements are decoded in runs: the last ``},{"type":`` (any whitespace)
within :data:`RUN_BYTES` ends a run of whole elements, which orjson decodes from the bytes in one
call (3.2 us per ICS ATT&CK object, against 7.9 for the standard library element by element).
That separator is found from the end, by ``bytes.rfind`` of ``"type"`` and a check of the bytes
around it (:func:`_last_cut`), rather than by a regular expression searched forwards through the
run's last 64 KiB (reading 200k ICS ATT&CK objects, plain Python: 0.56-0.60 -> 0.50-0.54 s).  In
valid JSON the separator only occurs between list elements (inside a string its quotes would be
escaped), so a cut at a nested list cannot decode as an array and the run falls back to
element-by-element decoding by the standard library's C decoder (``raw_decode``) over a window
of the bytes, which also reports errors with their position.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from typing import IO, Any

import orjson

CHUNK = 1 << 20
MAX_OBJECT_BYTES = 64 << 20  # larger single objects are refused, not buffered without end
FIRST_WINDOW = 4096  # bytes decoded for one value at first (doubled while the value is cut)
_WS = re.compile(rb"[ \t\n\r]*")
# Bytes decoded per run, about.  Runs of the whole 1 MiB buffer (~700 objects) made a 200k-object
# Node.ingest of a file 30.8-31.7k objects/s on PostgreSQL, against 35.9-39.1k in 32 KiB runs
# and 41-43k for the same objects decoded one by one: objects decoded long before they are
# validated and stored have left the CPU caches, and orjson holds the GIL while it decodes.
RUN_BYTES = 1 << 17
SLOW_AFTER_MISS = 64  # elements decoded one by one after a run could not be cut or decoded


class StreamError(ValueError):
    """The stream is not valid JSON, or not a bundle / array of objects."""


# orjson reads an integer beyond 64 bits as a float, silently rounding it (a custom property
# 123456789012345678901234567890 would be stored as 1.2345678901234568e+29): such integers are
# refused.  Only a text with a run of 19 or more digits after ``:``, ``,`` or ``[`` can hold one
# (found by bytes methods: a regular expression costs 3x orjson's parse of ICS ATT&CK); the
# standard library's decoder then looks at its numbers (not its strings).
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_RUN = b"0" * 19
_BEFORE_NUMBER = frozenset(b":,[")
_INT_MIN, _INT_MAX = -(1 << 63), (1 << 64) - 1


def _may_hold_big_integer(data: bytes) -> bool:
    zeros = data.translate(_DIGITS_AS_ZERO)
    at = zeros.find(_LONG_RUN)
    while at >= 0:
        k = at - 1
        if k >= 0 and data[k] == 0x2D:  # '-'
            k -= 1
        while k >= 0 and data[k] in _BLANK:
            k -= 1
        if k < 0 or data[k] in _BEFORE_NUMBER:
            return True
        at = zeros.find(_LONG_RUN, at + 1)
    return False


class BigInteger(StreamError):
    """An integer beyond 64 bits (the exception's text is its digits)."""


def _exact_int(text: str) -> int:
    value = int(text)
    if not _INT_MIN <= value <= _INT_MAX:
        raise BigInteger(text)
    return value


def big_integer_message(number: str) -> str:
    shown = number if len(number) <= 30 else number[:30] + "..."
    return f"the integer {shown} is beyond 64 bits: it would not be kept exactly"


TOO_DEEP = "arrays and objects nested too deeply"


def loads(data: bytes) -> Any:
    """``orjson.loads``, but an integer beyond 64 bits raises ``orjson.JSONDecodeError``."""
    value = orjson.loads(data)
    if _may_hold_big_integer(data):
        try:
            json.loads(data, parse_int=_exact_int)
        except BigInteger as exc:
            number = str(exc)
            text = data.decode()
            raise orjson.JSONDecodeError(
                big_integer_message(number), text, max(text.find(number), 0)
            ) from None
        except RecursionError:  # (the standard decoder's limit is below orjson's)
            raise orjson.JSONDecodeError(TOO_DEEP, data.decode(), 0) from None
    return value


def _no_constants(name: str) -> Any:
    raise StreamError(f"{name} is not valid JSON")


_BLANK = frozenset(b" \t\n\r")


def _last_cut(buf: bytes, lo: int, hi: int) -> tuple[int, int] | None:
    """The last ``}`` ``,`` ``{"type":`` (any whitespace between) wholly inside ``buf[lo:hi]``:
    (the position of its ``}``, the position of its ``{``), or None."""
    p = hi
    while True:
        p = buf.rfind(b'"type"', lo, p)
        if p < 0:
            return None
        q = p + 6
        while q < hi and buf[q] in _BLANK:
            q += 1
        if q >= hi or buf[q] != 0x3A:  # ':'
            continue
        k, opening = p, -1
        for want in b"{,}":  # backwards from "type": '{', ',', '}', blanks between
            k -= 1
            while k >= lo and buf[k] in _BLANK:
                k -= 1
            if k < lo or buf[k] != want:
                break
            if opening < 0:
                opening = k
        else:
            return k, opening


class _Reader:
    """A sliding window of the input's bytes; positions are byte offsets."""

    def __init__(self, f: IO[bytes]) -> None:
        self.f = f
        self.buf = b""
        self.pos = 0
        self.eof = False
        self.decoder = json.JSONDecoder(parse_constant=_no_constants, parse_int=_exact_int)
        self.consumed = 0  # bytes dropped from the front of the buffer
        self.slow_left = 0  # elements to decode one by one before trying a run again

    def fill(self) -> bool:
        """Append the next chunk; False at end of input."""
        if self.eof:
            return False
        data = self.f.read(CHUNK)
        if not data:
            self.eof = True
            return False
        self.consumed += self.pos
        self.buf = self.buf[self.pos :] + data
        self.pos = 0
        return True

    def peek(self) -> str:
        """The next non-blank character ("" at the end); the position moves to it."""
        while True:
            self.pos = _WS.match(self.buf, self.pos).end()  # type: ignore[union-attr]
            if self.pos < len(self.buf):
                return chr(self.buf[self.pos])
            if not self.fill():
                return ""

    def expect(self, char: str) -> None:
        got = self.peek()
        if got != char:
            raise StreamError(f"expected {char!r} at byte {self.where()}, found {got!r}")
        self.pos += 1

    def where(self) -> int:
        return self.consumed + self.pos

    def value(self) -> Any:
        """One JSON value, decoded by the standard library from a window of the buffer."""
        self.peek()
        size = FIRST_WINDOW
        while True:
            end = min(len(self.buf), self.pos + size)
            try:
                text, _ = codecs.utf_8_decode(self.buf[self.pos : end], "strict", False)
            except UnicodeDecodeError as exc:
                raise StreamError(f"not UTF-8 at byte {self.where() + exc.start}") from None
            more = end < len(self.buf) or not self.eof  # could the value go on?
            try:
                _, stop = self.decoder.raw_decode(text)
            except BigInteger as exc:
                message = big_integer_message(str(exc))
                raise StreamError(f"{message} in the value at byte {self.where()}") from None
            except RecursionError:
                raise StreamError(f"{TOO_DEEP} in the value at byte {self.where()}") from None
            except json.JSONDecodeError as exc:
                if not more:
                    at = self.where() + len(text[: exc.pos].encode())
                    raise StreamError(f"{exc.msg} at byte {at}") from None
                stop = -1  # perhaps only cut by the window
            if stop >= 0 and (stop < len(text) or not more):
                # The standard decoder found where the value ends; orjson decodes it, so that
                # what it refuses (1e400, a lone surrogate) is refused here too, not stored
                # altered (inf as null) or failing later.
                length = stop if text.isascii() else len(text[:stop].encode())
                try:
                    obj = orjson.loads(self.buf[self.pos : self.pos + length])
                except orjson.JSONDecodeError as exc:
                    at = self.where() + len(text[: exc.pos].encode())
                    raise StreamError(f"{exc.msg} at byte {at}") from None
                self.pos += length
                return obj
            # cut by the window (or a number that could go on): a wider one
            if end - self.pos >= MAX_OBJECT_BYTES:
                raise StreamError(f"a value over {MAX_OBJECT_BYTES} bytes at byte {self.where()}")
            if end == len(self.buf):
                self.fill()
            else:
                size *= 2

    def run(self) -> list[Any] | None:
        """Whole elements from the current one to the buffer's last separator, decoded at once
        (the position moves to the element after them), or None: decode one by one."""
        if self.slow_left:
            self.slow_left -= 1
            return None
        self.peek()
        while len(self.buf) - self.pos < RUN_BYTES and self.fill():
            pass
        start = self.pos
        end = min(len(self.buf), start + RUN_BYTES)
        cut = _last_cut(self.buf, start, end)
        if cut is None and end < len(self.buf):  # elements over RUN_BYTES: as much as there is
            cut = _last_cut(self.buf, start, len(self.buf))
        if cut is not None:
            close, following = cut
            try:
                items: list[Any] = loads(b"[" + self.buf[start : close + 1] + b"]")
            except orjson.JSONDecodeError:
                pass  # a nested list, or not JSON: the standard decoder says which
            else:
                self.pos = following
                return items
        self.slow_left = SLOW_AFTER_MISS
        return None

    def items(self) -> Iterator[Any]:
        """Elements of the array whose '[' was just consumed."""
        if self.peek() == "]":
            self.pos += 1
            return
        while True:
            run = self.run()
            if run is not None:
                yield from run
                continue
            yield self.value()
            c = self.peek()
            self.pos += 1
            if c == "]":
                return
            if c != ",":
                raise StreamError(f"expected ',' or ']' at byte {self.where() - 1}")


BUNDLE_ID = re.compile(r"bundle--[0-9a-fA-F-]{36}\Z")
BAD_BUNDLE_ID = "bundle: id must be 'bundle--' followed by a UUID"


class ObjectsTwice(StreamError):
    """A bundle giving ``objects`` twice."""


def stream_objects(f: IO[bytes]) -> Iterator[Any]:
    """The objects of a bundle (``{"type": "bundle", "id": "bundle--…", ..., "objects": [...]}``)
    or a JSON array.

    A bundle is held to what reading the file whole holds it to
    (:func:`tansiq.stix.bundles.objects_of`), so that a file reads alike whatever its size: its
    last ``type`` and ``id`` count (orjson keeps the last of a key given twice), checked at its
    end, and ``objects`` given twice is refused (the first list is streamed before the second
    is seen, where orjson keeps the second alone: :func:`tansiq.stix.bundles.parse_bytes`
    refuses it too)."""
    r = _Reader(f)
    first = r.peek()
    if first == "[":
        r.pos += 1
        yield from r.items()
    elif first == "{":
        r.pos += 1
        found = False
        kind: Any = None
        bid: Any = None
        if r.peek() == "}":
            r.pos += 1
        else:
            while True:
                key = r.value()
                if not isinstance(key, str):
                    raise StreamError(f"object key expected at byte {r.where()}")
                r.expect(":")
                if key == "objects":
                    if found:
                        raise ObjectsTwice("bundle: 'objects' is given twice: which list is meant?")
                    r.expect("[")
                    found = True
                    yield from r.items()
                else:
                    value = r.value()
                    if key == "type":
                        kind = value
                    elif key == "id":
                        bid = value
                c = r.peek()
                r.pos += 1
                if c == "}":
                    break
                if c != ",":
                    raise StreamError(f"expected ',' or '}}' at byte {r.where() - 1}")
        if kind != "bundle":
            raise StreamError("a large file must be a STIX bundle or a JSON array")
        if not found:
            raise StreamError("no 'objects' list in the bundle")
        if not isinstance(bid, str) or not BUNDLE_ID.match(bid):
            raise StreamError(BAD_BUNDLE_ID)
    else:
        raise StreamError("expected a STIX bundle or a JSON array of objects")
    if r.peek() != "":
        raise StreamError(f"unexpected data after the end at byte {r.where()}")
