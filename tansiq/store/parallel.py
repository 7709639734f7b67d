"""Ingest of files with parsing and validation in child processes.

Objects are dealt out to the workers (:data:`WORKERS`) in contiguous chunks of one batch each,
round robin: every worker reads the whole stream (parsing is the cheap part) and validates and
prepares only its own chunks, and the parent stores the batches in their original order.  While
the parent's database work runs, the workers prepare what comes next, so the CPU-bound half of
ingest spreads over the machine's cores.  Memory stays bounded: each pipe holds at most about
one batch in flight.

The workers are forked (they inherit the *prepare* hook, a closure), at the first batch asked
for, that is inside the caller's write transaction.  What a child inherits and what it uses:

* The caller's connections, one of them inside that transaction: never used in the child.
  A worker asks the database only when the stamp refuses an object (is it a version stored
  exactly so?), through :meth:`~tansiq.store.database.Database.reader`, and every
  ``Database`` starts over in a forked child (no connection, a new ``_lock``): see
  :class:`~tansiq.store.database.Database`.  So it opens a connection of its own, which reads
  committed data as the caller's reader would.
* Locks held by other threads at the moment of the fork stay held in the child for ever.  The
  child takes none of the database's (above) nor of the ingest's (``_switching_lock`` is the
  writer's); ``logging`` and the import lock are re-initialised by Python itself.
  When ``tansiq ingest`` forks, its only other thread is tqdm's monitor, which touches
  neither the database nor anything a worker uses (no checkpointer, no scheduler: those run in
  ``tansiq serve`` and ``tansiq sync``, which do not ingest files).  A caller forking
  while other threads are inside SQLite or libpq could still leave the library's own mutexes
  held in a child that then opens a connection: call :func:`file_batches` from a process
  whose other threads leave the database alone.
* File descriptors: a child closes the read ends of the pipes it inherits (its own and its
  elder siblings'), so that a write to a pipe the parent has closed fails at once (``EPIPE``)
  and the worker ends, rather than blocking on a pipe no process will read.
* A worker that dies (killed) closes its pipe: the caller raises :class:`WorkerFailed` and
  its transaction rolls back; one that fails reports the exception, raised likewise.  One
  that hangs (a deadlock, a stopped process, a query that never returns) is killed when it
  has read, prepared and sent nothing for *stall_seconds* while the caller waits on it
  (each worker counts the objects it reads and prepares in memory shared with the caller),
  and the caller raises :class:`WorkerFailed` likewise.  When the caller stops reading
  before the workers are done (an error, a list of errors cut at
  :data:`~tansiq.store.ingest.MAX_ERRORS`), the workers still running are killed: nothing
  they would prepare is needed any more.
* Ctrl-C: a terminal sends SIGINT to the whole process group.  Workers ignore it; the
  parent, interrupted, rolls back and kills them.
"""

from __future__ import annotations

import gc
import mmap
import multiprocessing
import os
import pickle
import select
import signal
import struct
import time
from collections.abc import Generator, Iterable, Iterator, Sequence
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from tansiq.settings import BY_NAME
from tansiq.stix.bundles import InputError, iter_files
from tansiq.store.ingest import Batch, Prepare, prepare_batches

STALL_SECONDS: int = BY_NAME["ingest_stall_seconds"].default
POLL_SECONDS = 0.25  # how often the caller looks at the progress of a worker it waits on
_HEADER = struct.Struct("<Q")  # each message: its length, then the pickled message


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # (not on every platform)
        return os.cpu_count() or 1


# One core stays with the parent (the writer and, on one machine, the database).  Each worker
# parses the whole stream, so workers beyond the spare cores only add work; with fewer than two
# spare cores files are parsed and validated in the calling process (0).  Measured on 2 cores,
# 200k ICS ATT&CK objects: in the calling process 38k objects/s on PostgreSQL and 26-30k on
# SQLite; one worker 31-33k and 26-30k; two workers 32-33k and 27-29k.  (Machines with more
# cores were not measured.)
_CORES = _usable_cores()
WORKERS = 0 if _CORES <= 2 else min(4, _CORES - 1)


class WorkerFailed(RuntimeError):
    """A worker process died, failed or hung; the ingest stored nothing."""


def file_batches(
    paths: Sequence[Path],
    prepare: Prepare | None,
    batch_size: int,
    workers: int,
    stall_seconds: float = STALL_SECONDS,
    file_starts: list[int] | None = None,
) -> Generator[Batch, None, None]:
    """:func:`prepare_batches` over the objects of *paths*, computed in *workers* child
    processes; a worker that makes no progress for *stall_seconds* fails the ingest.

    *file_starts*, if given, receives the index of each file's first object, as
    :func:`~tansiq.stix.bundles.iter_files` gives it, for every file begun by the objects of
    the batches yielded so far (and perhaps a few more)."""
    starts = [] if file_starts is None else file_starts
    if workers < 1:
        raise ValueError("file_batches needs at least one worker")
    ctx = multiprocessing.get_context("fork")  # the children inherit *prepare* (a closure)
    beats = memoryview(mmap.mmap(-1, 8 * workers)).cast("Q")  # shared: objects handled by each
    children: list[_Worker] = []
    done = False
    try:
        for k in range(workers):
            read_end, write_end = os.pipe()
            inherited = [w.fd for w in children] + [read_end]
            process = ctx.Process(
                target=_work,
                args=(list(paths), prepare, batch_size, write_end, inherited, beats, k, workers),
                name=f"tansiq-ingest-{k}",
                daemon=True,  # (not left running should the parent exit without closing us)
            )
            try:
                process.start()
            except OSError as exc:  # (fork: EAGAIN at the process limit, ENOMEM)
                os.close(read_end)
                raise WorkerFailed(
                    f"cannot start an ingest worker process: {exc.strerror or exc}"
                    " (--workers 0 reads the files in this process)"
                ) from None
            finally:
                os.close(write_end)
            children.append(_Worker(process, read_end, beats, k))
        chunk = 0
        while True:
            message = children[chunk % workers].receive(stall_seconds, starts)
            if message is None:
                done = True
                return
            yield message
            if message[4]:  # error list truncated: the rest is not needed
                return
            chunk += 1
    finally:
        for child in children:
            os.close(child.fd)
        for child in children:
            if done:  # every worker has read the whole stream: it is ending by itself
                child.process.join(5)
            if child.process.is_alive():
                child.process.kill()  # SIGKILL: a stopped process ignores SIGTERM until resumed
            child.process.join()


class _Worker:
    """The caller's side of one worker: its process, its pipe's read end, its progress."""

    def __init__(self, process: BaseProcess, fd: int, beats: memoryview, slot: int) -> None:
        self.process = process
        self.fd = fd
        self.beats = beats
        self.slot = slot

    def receive(self, stall_seconds: float, file_starts: list[int]) -> Batch | None:
        """The worker's next batch (None: it has no more); raise what it reports.  The file
        starts it has found since its last message are added to *file_starts*, unless another
        worker (which reads the same stream) gave them already."""
        (size,) = _HEADER.unpack(self._read(_HEADER.size, stall_seconds))
        message: tuple[Any, ...] = pickle.loads(self._read(size, stall_seconds))
        if message[0] == "input-error":
            raise InputError(message[1])
        if message[0] == "crash":
            raise WorkerFailed(f"an ingest worker failed: {message[1]}")
        offset, found = message[-2:]
        file_starts += found[len(file_starts) - offset :]
        if message[0] == "end":
            return None
        batch: Batch = message[1]
        return batch

    def _read(self, size: int, stall_seconds: float) -> bytearray:
        """*size* bytes from the worker, waiting while it makes progress."""
        data = bytearray(size)
        view = memoryview(data)
        got = 0
        beat, since = self.beats[self.slot], time.monotonic()
        while got < size:
            ready, _, _ = select.select([self.fd], [], [], min(POLL_SECONDS, stall_seconds))
            if ready:
                n = os.readv(self.fd, [view[got : got + (1 << 20)]])
                if n == 0:
                    raise WorkerFailed(f"an ingest worker process died{self._how()}")
                got += n
                since = time.monotonic()
            elif self.beats[self.slot] != beat:
                beat, since = self.beats[self.slot], time.monotonic()
            elif time.monotonic() - since >= stall_seconds:
                raise WorkerFailed(
                    f"an ingest worker process made no progress for {stall_seconds:g} s (hung?);"
                    " it was stopped"
                )
        return data

    def _how(self) -> str:
        """How the worker, which closed its pipe untold, ended, as far as one can say."""
        self.process.join(1)
        code = self.process.exitcode
        if code is None or code == 0:
            return ""
        if code > 0:
            return f" (exit status {code})"
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f" (killed by {name}{': out of memory?' if name == 'SIGKILL' else ''})"


def _send(fd: int, message: Any) -> None:
    data = pickle.dumps(message, pickle.HIGHEST_PROTOCOL)
    for part in (_HEADER.pack(len(data)), data):
        view = memoryview(part)
        while view:
            view = view[os.write(fd, view) :]


def _counted(objects: Iterable[Any], beats: memoryview, slot: int) -> Iterator[Any]:
    for obj in objects:
        beats[slot] += 1
        yield obj


def _work(
    paths: list[Path],
    prepare: Prepare | None,
    batch_size: int,
    out: int,
    inherited: list[int],
    beats: memoryview,
    worker: int,
    workers: int,
) -> None:
    gc.disable()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it ends us
    for fd in inherited:  # read ends: the parent's alone (see the module's doc)
        os.close(fd)
    hook = prepare
    if prepare is not None:

        def hook(obj: dict[str, Any]) -> dict[str, Any]:
            beats[worker] += 1
            return prepare(obj)

    starts: list[int] = []
    sent = 0  # of *starts*

    def news() -> tuple[int, list[int]]:
        nonlocal sent
        offset, sent = sent, len(starts)
        return offset, starts[offset:]

    try:
        try:
            objects = _counted(iter_files(paths, starts), beats, worker)
            for batch in prepare_batches(objects, hook, batch_size, share=(worker, workers)):
                _send(out, ("batch", batch, *news()))
                if batch[4]:
                    return  # the parent reads no more
            _send(out, ("end", *news()))
        except InputError as exc:
            _send(out, ("input-error", str(exc)))
        except BrokenPipeError:
            raise
        except BaseException as exc:  # reported to the parent, which raises it
            _send(out, ("crash", repr(exc)))
    except BrokenPipeError:
        pass  # the parent stopped reading: nothing to tell it
    finally:
        os.close(out)
