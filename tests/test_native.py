"""The compiled hot path (setup.py, tansiq.native): there where CI requires it, never older than
its source, and giving the same answers as that source run as plain Python."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from conftest import SHARED_FILES
from hypothesis import given, settings
from hypothesis import strategies as st
from invalid_corpus import CASES, VALID, VALIDATOR_RAISES, mutate
from test_validate import JSON, PROPS, objects_of

from tansiq import native
from tansiq.stix import jsonstream, timestamps, validate

needs_compiled = pytest.mark.skipif(
    not native.compiled(), reason="the hot path is installed as plain Python: nothing to compare"
)


def test_compiled_where_required() -> None:
    """.ci/run sets TANSIQ_REQUIRE_COMPILED=1: a failed compile must not pass unnoticed."""
    if os.environ.get("TANSIQ_REQUIRE_COMPILED") != "1":
        pytest.skip("TANSIQ_REQUIRE_COMPILED is not set")
    assert native.compiled(), native.origins()
    assert native.describe() == "hot path compiled"


def test_no_compiled_module_is_older_than_its_source() -> None:
    assert native.stale() == [], "run `pip install -e .` again to rebuild"


def test_stale_names_a_compiled_module_edited_after_the_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = tmp_path / "validate.cpython-311-x86_64-linux-gnu.so"
    source = tmp_path / "validate.py"
    source.write_text("")
    built.write_bytes(b"")
    monkeypatch.setattr(native, "origins", lambda: {"tansiq.stix.validate": built})
    assert native.stale() == []
    later = time.time() + 10
    os.utime(source, (later, later))
    assert native.stale() == ["tansiq.stix.validate"]
    assert "STALE" in native.describe()


def _source_of(module: ModuleType) -> ModuleType:
    """*module*'s source file, run as plain Python under another name."""
    origin = Path(module.__file__ or "")
    path = origin.parent / (module.__name__.rsplit(".", 1)[1] + ".py")
    spec = importlib.util.spec_from_file_location(f"_plain_{module.__name__}", path)
    assert spec is not None and spec.loader is not None
    plain = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = plain  # (dataclasses look their module up there)
    spec.loader.exec_module(plain)
    return plain


_PLAIN_VALIDATE = _source_of(validate) if native.compiled() else validate


def _verdict(check: Any, obj: Any) -> list[tuple[str, str]]:
    return [(p.property, p.reason) for p in check(obj)]


@needs_compiled
def test_compiled_validation_agrees_with_its_source() -> None:
    plain = _PLAIN_VALIDATE
    assert not str(plain.__file__).endswith(".so")
    objects: list[Any] = [obj for _, obj in CASES + VALIDATOR_RAISES]
    objects += list(VALID.values())
    for path in SHARED_FILES:
        objects += objects_of(json.loads(path.read_bytes()))
    assert len(objects) > 1000
    for obj in objects:
        assert _verdict(validate.check_object, obj) == _verdict(plain.check_object, obj)


@needs_compiled
@settings(max_examples=300, deadline=None)
@given(
    base=st.sampled_from(sorted(VALID)),
    changes=st.dictionaries(st.sampled_from(PROPS) | st.text(max_size=5), JSON, max_size=4),
)
def test_compiled_validation_agrees_on_any_mutation(base: str, changes: dict[str, Any]) -> None:
    obj = mutate(base, changes)
    assert _verdict(validate.check_object, obj) == _verdict(_PLAIN_VALIDATE.check_object, obj)


@needs_compiled
@pytest.mark.parametrize(
    "value",
    [
        "2016-04-06T20:03:00.000Z",
        "2016-04-06T20:03:00Z",
        "1970-01-01T00:00:00.123456789Z",
        "9999-12-31T23:59:59.999999Z",
        "0001-01-01T00:00:00Z",
        "2016-02-30T00:00:00Z",
        "2016-04-06T24:00:00Z",
        "2016-04-06T20:03:60.000Z",
        "2016-04-06 20:03:00Z",
        "2016-04-06T20:03:00.000+00:00",
        "",
        None,
        17,
    ],
)
def test_compiled_timestamps_agree_with_their_source(value: object) -> None:
    plain = _source_of(timestamps)

    def outcome(mod: ModuleType) -> object:
        try:
            return mod.to_micros(value)
        except (ValueError, TypeError) as exc:
            return type(exc).__name__

    assert outcome(timestamps) == outcome(plain)
    assert timestamps.is_timestamp(value) == plain.is_timestamp(value)


@needs_compiled
def test_compiled_stream_reader_agrees_with_its_source() -> None:
    plain = _source_of(jsonstream)

    def outcome(mod: ModuleType, path: Path) -> object:
        with path.open("rb") as f:
            try:
                return list(mod.stream_objects(f))
            except ValueError as exc:  # StreamError: not a bundle or array
                return str(exc)

    for path in SHARED_FILES:
        assert outcome(jsonstream, path) == outcome(plain, path)


@needs_compiled
def test_compiled_rows_agree_with_their_source() -> None:
    """The ``objects`` row of every shared object (unstamped, and with a distribution), built by
    the compiled :mod:`tansiq.store.rows` and by its source."""
    from tansiq.stix.extensions import DISTRIBUTION_EXT, distribution_value
    from tansiq.store import rows

    plain = _source_of(rows)
    objects: list[Any] = list(VALID.values())
    for path in SHARED_FILES:
        objects += objects_of(json.loads(path.read_bytes()))
    objects = [o for o in objects if not validate.check_object(o)]
    assert len(objects) > 1000
    for obj in objects[:: max(1, len(objects) // 2000)]:
        released = {**obj, "extensions": {DISTRIBUTION_EXT: distribution_value("EG", ["TN", "EG"])}}
        for candidate in (obj, released):
            assert rows.build_row(candidate) == plain.build_row(candidate)
    assert plain.partner_codes(plain.partners_column(["DZ", "EG"])) == ["DZ", "EG"]
    assert rows.partners_column(["DZ", "EG"]) == plain.partners_column(["DZ", "EG"])
