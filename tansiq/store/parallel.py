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
  its transaction rolls back; one that fails reports the exception, raised likewise.  When
  the caller stops reading before the workers are done (an error, a list of errors cut at
  :data:`~tansiq.store.ingest.MAX_ERRORS`), the workers still running are killed: nothing
  they would prepare is needed any more.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
from collections.abc import Iterator, Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from tansiq.stix.bundles import InputError, iter_files
from tansiq.store.ingest import Batch, Prepare, prepare_batches


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
    """A worker process died or failed; the ingest stored nothing."""


def file_batches(
    paths: Sequence[Path], prepare: Prepare | None, batch_size: int, workers: int
) -> Iterator[Batch]:
    """:func:`prepare_batches` over the objects of *paths*, computed in *workers* child
    processes."""
    if workers < 1:
        raise ValueError("file_batches needs at least one worker")
    ctx = multiprocessing.get_context("fork")  # the children inherit *prepare* (a closure)
    pipes: list[Connection] = []
    children = []
    for k in range(workers):
        receiver, sender = ctx.Pipe(duplex=False)
        child = ctx.Process(
            target=_work,
            args=(list(paths), prepare, batch_size, sender, [*pipes, receiver], k, workers),
            name=f"tansiq-ingest-{k}",
        )
        child.start()
        sender.close()
        pipes.append(receiver)
        children.append(child)
    done = False
    try:
        chunk = 0
        while True:
            message = _receive(pipes[chunk % workers])
            if message is None:
                done = True
                return
            yield message
            if message[4]:  # error list truncated: the rest is not needed
                return
            chunk += 1
    finally:
        for pipe in pipes:
            pipe.close()
        for child in children:
            if done:  # every worker has read the whole stream: it is ending by itself
                child.join(5)
            if child.is_alive():
                child.kill()  # (SIGKILL: a stopped process ignores SIGTERM until it resumes)
            child.join()


def _receive(pipe: Connection) -> Batch | None:
    try:
        message: tuple[str, Any] | None = pipe.recv()
    except EOFError:
        raise WorkerFailed("an ingest worker process died") from None
    if message is None:
        return None
    if message[0] == "input-error":
        raise InputError(message[1])
    if message[0] == "crash":
        raise WorkerFailed(f"an ingest worker failed: {message[1]}")
    batch: Batch = message[1]
    return batch


def _work(
    paths: list[Path],
    prepare: Prepare | None,
    batch_size: int,
    out: Connection,
    inherited: list[Connection],
    worker: int,
    workers: int,
) -> None:
    gc.disable()
    for pipe in inherited:  # read ends: the parent's alone (see the module's doc)
        pipe.close()
    try:
        try:
            objects = iter_files(paths)
            for batch in prepare_batches(objects, prepare, batch_size, share=(worker, workers)):
                out.send(("batch", batch))
                if batch[4]:
                    return  # the parent reads no more
            out.send(None)
        except InputError as exc:
            out.send(("input-error", str(exc)))
        except BrokenPipeError:
            raise
        except BaseException as exc:  # reported to the parent, which raises it
            out.send(("crash", repr(exc)))
    except BrokenPipeError:
        pass  # the parent stopped reading: nothing to tell it
    finally:
        out.close()
