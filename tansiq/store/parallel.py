"""Ingest of files with parsing and validation in a child process.

The parent stores while the child parses (ijson/orjson), validates and prepares the next batch,
so on two or more cores the CPU-bound Python half of ingest overlaps the database half.  Memory
stays bounded: the pipe holds at most one batch in flight.
"""

from __future__ import annotations

import gc
import multiprocessing
from collections.abc import Iterator, Sequence
from itertools import chain
from multiprocessing.connection import Connection
from pathlib import Path

from tansiq.stix.bundles import InputError, iter_file
from tansiq.store.ingest import Batch, Prepare, prepare_batches


def file_batches(
    paths: Sequence[Path], prepare: Prepare | None, batch_size: int
) -> Iterator[Batch]:
    """:func:`prepare_batches` over the objects of *paths*, computed in a child process."""
    ctx = multiprocessing.get_context("fork")  # the child inherits *prepare* (a closure)
    receiver, sender = ctx.Pipe(duplex=False)
    child = ctx.Process(
        target=_work, args=(list(paths), prepare, batch_size, sender), name="tansiq-ingest-parse"
    )
    child.start()
    sender.close()
    try:
        while True:
            try:
                message = receiver.recv()
            except EOFError:
                raise RuntimeError("the ingest worker process died") from None
            if message is None:
                return
            if message[0] == "input-error":
                raise InputError(message[1])
            if message[0] == "crash":
                raise RuntimeError(f"the ingest worker failed: {message[1]}")
            yield message[1]
    finally:
        receiver.close()
        child.join(5)
        if child.is_alive():
            child.terminate()
            child.join()


def _work(paths: list[Path], prepare: Prepare | None, batch_size: int, out: Connection) -> None:
    gc.disable()
    try:
        objects = chain.from_iterable(iter_file(p) for p in paths)
        for batch in prepare_batches(objects, prepare, batch_size):
            out.send(("batch", batch))
        out.send(None)
    except InputError as exc:
        out.send(("input-error", str(exc)))
    except BaseException as exc:  # reported to the parent, which raises it
        out.send(("crash", repr(exc)))
    finally:
        out.close()
