"""Checking the versions of a pulled page: validation, signature, origin, replay.

Ed25519 verification dominates receiving (about 90 µs per object here), so large pages are
checked by worker processes, each taking a share of the page, while the parent stores the
previous page; small pages are checked in the calling process.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

import orjson

from tansiq.federation.signing import receive_hook
from tansiq.sharing import Partner
from tansiq.stix.validate import check_object
from tansiq.store.ingest import ObjectRejected

Hook = Callable[[dict[str, Any]], dict[str, Any]]
WORKERS = 2
PROCESS_PAGE_MIN = 200  # smaller pages are not worth a round trip to the workers


def check(obj: Any, hook: Hook) -> str | None:
    """Why *obj* must be rejected, or None."""
    problems = check_object(obj)
    if problems:
        return "; ".join(f"{p.property}: {p.reason}" for p in problems[:3])
    try:
        hook(obj)
    except ObjectRejected as exc:
        return f"{exc.prop}: {exc.reason}"
    return None


# -- worker processes ---------------------------------------------------------------------------
_held: dict[str, int] = {}
_hook: Hook | None = None


def _init(own_code: str, partner: tuple[str, str, str, str, str], others: frozenset[str]) -> None:
    global _hook
    _hook = receive_hook(own_code, Partner(*partner), _held.get, others)


def _check_share(page: bytes, start: int, stop: int, held: dict[str, int]) -> list[str | None]:
    assert _hook is not None
    _held.clear()
    _held.update(held)
    objects = orjson.loads(page)["objects"][start:stop]
    return [check(o, _hook) for o in objects]


class PageVerifier:
    """Checks pages from one peer; use as a context manager (it may own worker processes)."""

    def __init__(
        self, own_code: str, partner: Partner, others: frozenset[str] = frozenset()
    ) -> None:
        """*others*: the identity ids of this node and of the other partners (see
        :func:`~tansiq.federation.signing.receive_hook`)."""
        self.own_code = own_code
        self.partner = partner
        self.others = others
        self.held: dict[str, int] = {}
        self.hook = receive_hook(own_code, partner, self.held.get, others)
        self.pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> PageVerifier:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)

    def check_page(self, raw: bytes, objects: list[Any], held: dict[str, int]) -> list[str | None]:
        """One reason (or None) per object of the page whose bytes are *raw*."""
        return self.submit(raw, objects, held)()

    def submit(
        self, raw: bytes, objects: list[Any], held: dict[str, int]
    ) -> Callable[[], list[str | None]]:
        """Start checking a page; the returned function waits for and returns the reasons."""
        if len(objects) < PROCESS_PAGE_MIN:
            self.held.clear()
            self.held.update(held)
            done = [check(o, self.hook) for o in objects]
            return lambda: done
        if self.pool is None:
            p = self.partner
            self.pool = ProcessPoolExecutor(
                WORKERS,
                mp_context=multiprocessing.get_context("forkserver"),
                initializer=_init,
                initargs=(
                    self.own_code,
                    (p.code, p.name, p.identity_id, p.public_key, p.base_url),
                    self.others,
                ),
            )
        step = -(-len(objects) // WORKERS)
        futures: list[Future[list[str | None]]] = [
            self.pool.submit(_check_share, raw, start, start + step, held)
            for start in range(0, len(objects), step)
        ]

        def wait() -> list[str | None]:
            out: list[str | None] = []
            for f in futures:
                out += f.result()
            return out

        return wait
