"""Object writes run on threads of their own, a few at a time, not on the shared pool.

A write of objects (a bundle, a TAXII POST, a new distribution, a TAXII DELETE) waits for the
node write lock, which a long write holds for as long as it runs: a `tansiq ingest`, a pull, a
big bundle, in this process or another.  Run on the thread pool every request shares (40
threads), writers piling up behind it (clients that time out and send again) took every
thread, and reads and logins, which on PostgreSQL need no write lock, waited behind them.  So
writers take one of :data:`WRITER_THREADS` threads kept for them; the others wait without a
thread, at most the busy timeout (:data:`tansiq.store.dialect.SQLITE_BUSY_TIMEOUT_S`, as a
SQLite writer waits for the lock), and are then refused with 503 and ``Retry-After``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import anyio.to_thread
from starlette.requests import Request

from tansiq.store import dialect
from tansiq.store.database import STORE_BUSY, StoreBusy

T = TypeVar("T")
WRITER_THREADS = 4  # per process; the write lock lets one write at a time anyway


def gate_wait() -> float:
    """Seconds a write waits for a writer thread: the busy timeout, as for the lock itself."""
    return dialect.SQLITE_BUSY_TIMEOUT_S


async def run_write(request: Request, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``func(*args, **kwargs)`` on a writer thread; :class:`StoreBusy` if none is free in time."""
    state = request.app.state
    if getattr(state, "writers", None) is None:  # (made in the app's event loop)
        state.writers = anyio.CapacityLimiter(WRITER_THREADS), anyio.CapacityLimiter(WRITER_THREADS)
    gate, threads = state.writers
    waited = gate_wait()
    with anyio.move_on_after(waited) as scope:
        await gate.acquire()
    if scope.cancelled_caught:
        raise StoreBusy(STORE_BUSY.format(waited))
    try:
        return await anyio.to_thread.run_sync(
            functools.partial(func, *args, **kwargs), limiter=threads
        )
    finally:
        gate.release()
