"""File ingest with worker processes: file order kept, errors found in any chunk, all or nothing."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
from test_store import indicator

from tansiq.node import Node, partner_identity_id
from tansiq.sharing import add_partner
from tansiq.store.ingest import MAX_ERRORS, IngestError, ingest
from tansiq.store.parallel import WorkerFailed, file_batches


def write(path: Path, objects: list[dict]) -> Path:  # type: ignore[type-arg]
    path.write_text(
        json.dumps(
            {
                "type": "bundle",
                "id": "bundle--6f1c9a64-5b0e-4d2a-9f43-2c7d1e8b0a51",
                "objects": objects,
            }
        )
    )
    return path


@pytest.fixture(params=[0, 2], ids=["in-process", "2-workers"])
def small_batches(
    node: Node, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Node:
    """Batches of 7, parsed and validated in the calling process or in two workers (as on a
    machine with three cores or more)."""
    monkeypatch.setattr("tansiq.node.WORKERS", request.param)
    node.settings = node.settings.with_overrides(ingest_batch=7)
    return node


def test_file_order_and_every_object(small_batches: Node, tmp_path: Path) -> None:
    objs = [indicator(i) for i in range(50)]
    result = small_batches.ingest_files([write(tmp_path / "b.json", objs)])
    assert (result.total, result.stored) == (50, 50)
    rows = small_batches.db.fetchall(
        "SELECT json FROM objects WHERE type = 'indicator' ORDER BY added"
    )
    assert [orjson.loads(r[0])["id"] for r in rows] == [o["id"] for o in objs]


@pytest.mark.parametrize("bad_index", [0, 6, 7, 33, 49])
def test_error_in_any_chunk_rejects_all(
    small_batches: Node, tmp_path: Path, bad_index: int
) -> None:
    objs = [indicator(i) for i in range(50)]
    del objs[bad_index]["pattern"]
    before = small_batches.db.fetchone("SELECT COUNT(*) FROM objects")
    with pytest.raises(IngestError) as exc:
        small_batches.ingest_files([write(tmp_path / "b.json", objs)])
    assert [(e.index, e.property) for e in exc.value.errors] == [(bad_index, "pattern")]
    assert small_batches.db.fetchone("SELECT COUNT(*) FROM objects") == before


def test_errors_past_the_limit_are_cut_on_either_path(small_batches: Node, tmp_path: Path) -> None:
    """More invalid objects than MAX_ERRORS: the first MAX_ERRORS are listed and the error says
    more were not, whether the objects were checked here or in workers (where each chunk
    holds fewer than MAX_ERRORS)."""
    objs = [indicator(i) for i in range(MAX_ERRORS + 500)]
    for obj in objs:
        del obj["pattern"]
    with pytest.raises(IngestError) as exc:
        small_batches.ingest_files([write(tmp_path / "b.json", objs)])
    assert [e.index for e in exc.value.errors] == list(range(MAX_ERRORS))
    assert exc.value.truncated and "(more not listed)" in str(exc.value)


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_batches_cover_each_object_once(tmp_path: Path, workers: int) -> None:
    objs = [indicator(i) for i in range(23)]
    batches = list(file_batches([write(tmp_path / "b.json", objs)], None, 5, workers))
    indexes = [i for b in batches for i in b[1]]
    assert indexes == list(range(23)) and batches[-1][3] == 23


def test_file_starts_come_from_the_workers(tmp_path: Path) -> None:
    """The index of each file's first object, as the workers found it (the parent does not
    read the files); a file without objects starts where the next one does."""
    sizes = [3, 0, 12, 1]
    paths = [
        write(tmp_path / f"{k}.json", [indicator(100 * k + i) for i in range(n)])
        for k, n in enumerate(sizes)
    ]
    starts: list[int] = []
    batches = list(file_batches(paths, None, 5, 2, file_starts=starts))
    assert batches[-1][3] == sum(sizes) and starts == [0, 3, 3, 15]


def test_workers_end_when_the_caller_stops_early(tmp_path: Path) -> None:
    """Errors cut at MAX_ERRORS in the first chunk: the caller reads no more batches, and the
    workers, which would block sending batches no one reads, are gone at once (not after a
    grace period each)."""
    path = write(tmp_path / "b.json", [{"type": "indicator"}] * 20_000)
    started = time.monotonic()
    batches = list(file_batches([path], None, 2000, 2))
    assert batches[-1][4] and sum(len(b[2]) for b in batches) >= MAX_ERRORS
    assert time.monotonic() - started < 4
    assert multiprocessing.active_children() == []


@contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """Fail with TimeoutError instead of hanging (the parent waits on its workers' pipes)."""

    def expired(signum: int, frame: Any) -> None:
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@contextmanager
def lock_held_elsewhere(lock: Any) -> Iterator[None]:
    """*lock* held by another thread of this process until the block ends."""
    held, done = threading.Event(), threading.Event()

    def hold() -> None:
        with lock:
            held.set()
            done.wait()

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    held.wait()
    try:
        yield
    finally:
        done.set()
        thread.join()


def test_workers_use_no_lock_or_connection_of_the_parent(
    node: Node, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The workers are forked while another thread may hold ``Database._lock`` (a server
    thread opening its connection, say).  A worker that asks the database (the stamp refuses a
    partner's object: is it stored exactly so?) opens its own connection and must not wait on
    that lock, which no thread of the child would ever release."""
    monkeypatch.setattr("tansiq.node.WORKERS", 2)
    node.settings = node.settings.with_overrides(ingest_batch=7)
    add_partner(node.db, "DZ", "DZ", partner_identity_id("DZ"))
    theirs = indicator(10, created_by_ref=partner_identity_id("DZ"))
    ingest(node.db, [theirs])  # as sync stores it
    objs = [indicator(i) for i in range(20)]
    objs[10] = theirs  # posted back unchanged: counted, not refused
    objs[15] = indicator(15, created_by_ref=partner_identity_id("DZ"))  # refused
    path = write(tmp_path / "b.json", objs)
    node.db.reader()  # this thread's connections are open: it needs no lock either
    with lock_held_elsewhere(node.db._lock), deadline(20), pytest.raises(IngestError) as exc:
        node.ingest_files([path])
    assert [(e.index, e.property) for e in exc.value.errors] == [(15, "created_by_ref")]
    del objs[15]
    with lock_held_elsewhere(node.db._lock), deadline(20):
        result = node.ingest_files([write(tmp_path / "c.json", objs)])
    assert (result.total, result.stored, result.unchanged) == (19, 18, 1)


@pytest.mark.parametrize("how", ["killed", "exception"])
@pytest.mark.parametrize("at", [0, 10, 49])
def test_a_failed_worker_fails_the_ingest(
    node: Node, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, how: str, at: int
) -> None:
    """A worker killed (the OOM killer, say) or failing on an object of any chunk: the ingest
    raises, stores nothing, leaves no process behind and the node writes again."""
    monkeypatch.setattr("tansiq.node.WORKERS", 2)
    node.settings = node.settings.with_overrides(ingest_batch=7)
    objs = [indicator(i) for i in range(50)]
    stamp = node.publisher()

    def fail_at(obj: dict[str, Any]) -> dict[str, Any]:
        if obj["id"] == objs[at]["id"]:
            if how == "killed":
                os.kill(os.getpid(), signal.SIGKILL)
            raise RuntimeError("boom")
        return stamp(obj)

    monkeypatch.setattr(node, "publisher", lambda *args: fail_at)
    before = node.db.fetchone("SELECT COUNT(*) FROM objects")
    expected = r"died \(killed by SIGKILL" if how == "killed" else "failed: RuntimeError.'boom'"
    with deadline(20), pytest.raises(RuntimeError, match=expected):
        node.ingest_files([write(tmp_path / "b.json", objs)])
    assert node.db.fetchone("SELECT COUNT(*) FROM objects") == before
    assert multiprocessing.active_children() == []
    monkeypatch.undo()
    assert node.ingest([indicator(77)]).stored == 1


@pytest.mark.parametrize("how", ["waiting", "stopped"])
@pytest.mark.parametrize("at", [0, 30])
def test_a_hung_worker_fails_the_ingest(
    node: Node, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, how: str, at: int
) -> None:
    """A worker that stops making progress without dying (waiting on a lock no one releases,
    or stopped): after ingest_stall_seconds the ingest raises, saying so, stores nothing,
    leaves no process behind and the node writes again."""
    monkeypatch.setattr("tansiq.node.WORKERS", 2)
    node.settings = node.settings.with_overrides(ingest_batch=7, ingest_stall_seconds=1)
    objs = [indicator(i) for i in range(50)]
    stamp = node.publisher()

    def hang_at(obj: dict[str, Any]) -> dict[str, Any]:
        if obj["id"] == objs[at]["id"]:
            if how == "stopped":
                os.kill(os.getpid(), signal.SIGSTOP)
            threading.Event().wait()
        return stamp(obj)

    monkeypatch.setattr(node, "publisher", lambda *args: hang_at)
    before = node.db.fetchone("SELECT COUNT(*) FROM objects")
    started = time.monotonic()
    with deadline(20), pytest.raises(WorkerFailed, match="no progress for 1 s"):
        node.ingest_files([write(tmp_path / "b.json", objs)])
    assert time.monotonic() - started < 5
    assert node.db.fetchone("SELECT COUNT(*) FROM objects") == before
    assert multiprocessing.active_children() == []
    monkeypatch.undo()
    assert node.ingest([indicator(77)]).stored == 1


@pytest.mark.parametrize("refused", [0, 1])
def test_a_worker_that_cannot_start_fails_the_ingest(
    node: Node, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, refused: int
) -> None:
    """fork() refused (the process limit, no memory) for the first worker or a later one: the
    ingest fails saying so, stores nothing, and leaves no process behind."""
    import errno

    monkeypatch.setattr("tansiq.node.WORKERS", 2)
    node.settings = node.settings.with_overrides(ingest_batch=7)
    path = write(tmp_path / "b.json", [indicator(i) for i in range(50)])
    fork, forks = os.fork, []

    def fork_unless_refused() -> int:
        forks.append(1)
        if len(forks) > refused:
            raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")
        return fork()

    monkeypatch.setattr(os, "fork", fork_unless_refused)
    before = node.db.fetchone("SELECT COUNT(*) FROM objects")
    with deadline(20), pytest.raises(WorkerFailed, match=r"cannot start .*temporarily"):
        node.ingest_files([path])
    assert multiprocessing.active_children() == []
    monkeypatch.undo()
    assert node.db.fetchone("SELECT COUNT(*) FROM objects") == before
