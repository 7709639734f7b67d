"""Streaming reader for large STIX bundles: one object at a time, in bounded memory.

The top level (a bundle's keys, or a JSON array) is walked by hand over a sliding text buffer.
Array elements are decoded in runs: the buffer's last ``},{"type":`` (any whitespace) ends a
run of whole elements, which orjson decodes in one call (about 1.6x faster than the standard
library).  That separator only occurs between list elements, so a cut at a nested list cannot
decode as an array and the run falls back to element-by-element decoding by the standard
library's C decoder (``raw_decode``), which also reports errors with their exact position.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from typing import IO, Any

import orjson

CHUNK = 1 << 20
MAX_OBJECT_CHARS = 64 << 20  # larger single objects are refused, not buffered without end
_WS = re.compile(r"[ \t\n\r]*")
# The end of a STIX object in a list and the start of the next (which starts with "type").
_SEP = re.compile(r'\}[ \t\n\r]*,[ \t\n\r]*(?=\{[ \t\n\r]*"type"[ \t\n\r]*:)')
SEP_WINDOW = 1 << 16  # the tail of the buffer searched for a separator
SLOW_AFTER_MISS = 64  # elements decoded one by one after a run could not be cut or decoded


class StreamError(ValueError):
    """The stream is not valid JSON, or not a bundle / array of objects."""


def _no_constants(name: str) -> Any:
    raise StreamError(f"{name} is not valid JSON")


class _Reader:
    def __init__(self, f: IO[bytes]) -> None:
        self.f = f
        self.buf = ""
        self.pos = 0
        self.eof = False
        self.utf8 = codecs.getincrementaldecoder("utf-8")()
        self.decoder = json.JSONDecoder(parse_constant=_no_constants)
        self.consumed = 0  # characters dropped from the front of the buffer
        self.slow_left = 0  # elements to decode one by one before trying a run again

    def fill(self) -> bool:
        """Append the next chunk; False at end of input."""
        if self.eof:
            return False
        data = self.f.read(CHUNK)
        try:
            text = self.utf8.decode(data, final=not data)
        except UnicodeDecodeError as exc:
            raise StreamError(f"not UTF-8: {exc.reason}") from None
        if not data:
            self.eof = True
        self.consumed += self.pos
        self.buf = self.buf[self.pos :] + text
        self.pos = 0
        return bool(data) or bool(text)

    def peek(self) -> str:
        while True:
            self.pos = _WS.match(self.buf, self.pos).end()  # type: ignore[union-attr]
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self.fill():
                return ""

    def expect(self, char: str) -> None:
        got = self.peek()
        if got != char:
            raise StreamError(f"expected {char!r} at character {self.where()}, found {got!r}")
        self.pos += 1

    def where(self) -> int:
        return self.consumed + self.pos

    def value(self) -> Any:
        self.peek()
        while True:
            try:
                obj, end = self.decoder.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                if len(self.buf) - self.pos < MAX_OBJECT_CHARS and self.fill():
                    continue  # the value may just be cut by the buffer's end
                raise StreamError(f"{exc.msg} at character {self.consumed + exc.pos}") from None
            if end >= len(self.buf) and not self.eof and self.fill():
                continue  # a number or literal could go on in the next chunk
            self.pos = end
            return obj

    def run(self) -> list[Any] | None:
        """Whole elements from the current one to the buffer's last separator, decoded at once
        (the position moves to the element after them), or None: decode one by one."""
        if self.slow_left:
            self.slow_left -= 1
            return None
        self.peek()
        while len(self.buf) - self.pos < CHUNK and self.fill():
            pass
        start = self.pos
        cuts = list(_SEP.finditer(self.buf, max(start, len(self.buf) - SEP_WINDOW)))
        if cuts:
            cut = cuts[-1]
            try:
                items: list[Any] = orjson.loads("[" + self.buf[start : cut.start() + 1] + "]")
            except orjson.JSONDecodeError:
                pass  # a nested list, or not JSON: the standard decoder says which
            else:
                self.pos = cut.end()
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
                raise StreamError(f"expected ',' or ']' at character {self.where() - 1}")


def stream_objects(f: IO[bytes]) -> Iterator[Any]:
    """The objects of a bundle (``{"type": "bundle", ..., "objects": [...]}``) or a JSON array."""
    r = _Reader(f)
    first = r.peek()
    if first == "[":
        r.pos += 1
        yield from r.items()
    elif first == "{":
        r.pos += 1
        found = False
        if r.peek() == "}":
            r.pos += 1
        else:
            while True:
                key = r.value()
                if not isinstance(key, str):
                    raise StreamError(f"object key expected at character {r.where()}")
                r.expect(":")
                if key == "objects":
                    r.expect("[")
                    found = True
                    yield from r.items()
                else:
                    value = r.value()
                    if key == "type" and value != "bundle":
                        raise StreamError("a large file must be a STIX bundle or a JSON array")
                c = r.peek()
                r.pos += 1
                if c == "}":
                    break
                if c != ",":
                    raise StreamError(f"expected ',' or '}}' at character {r.where() - 1}")
        if not found:
            raise StreamError("no 'objects' list in the bundle")
    else:
        raise StreamError("expected a STIX bundle or a JSON array of objects")
    if r.peek() != "":
        raise StreamError(f"unexpected data after the end at character {r.where()}")
