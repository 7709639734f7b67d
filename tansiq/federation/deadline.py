"""An HTTP transport for pull sync whose every wait on the network ends at the answer's
deadline (setting ``sync_response_seconds``).

httpx bounds each wait for bytes (the read timeout), never a whole answer: a peer sending its
status line and headers a few bytes at a time, or ``100 Continue`` answers without end, kept a
pull (and the pull lock every other partner's pull waits for) for as long as it liked, since
the body is where :func:`tansiq.federation.peer.get` counts time.  Here each connect, read
and write waits at most until the deadline :func:`until` sets for the thread, and one begun
after it fails at once, as a timeout.  (A TLS handshake is begun only before it; each of its
own reads waits at most the time that was left then.)
"""

from __future__ import annotations

import contextlib
import contextvars
import ssl
import time
from collections.abc import Iterable, Iterator
from typing import Any

import httpcore
import httpx

_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "tansiq_sync_deadline", default=None
)


@contextlib.contextmanager
def until(deadline: float) -> Iterator[None]:
    """Within the block, this thread's network waits end at *deadline* (``time.monotonic``)."""
    token = _DEADLINE.set(deadline)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def _left(timeout: float | None, late: type[Exception]) -> float | None:
    """*timeout*, shortened to the time left before the deadline; *late* once it passed."""
    deadline = _DEADLINE.get()
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise late("the answer's deadline (sync_response_seconds) passed")
    return left if timeout is None else min(timeout, left)


class _Stream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self.inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self.inner.read(max_bytes, _left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.inner.write(buffer, _left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self.inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        left = _left(timeout, httpcore.ConnectTimeout)
        return _Stream(self.inner.start_tls(ssl_context, server_hostname, left))

    def get_extra_info(self, info: str) -> Any:
        return self.inner.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    def __init__(self) -> None:
        self.inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        left = _left(timeout, httpcore.ConnectTimeout)
        return _Stream(self.inner.connect_tcp(host, port, left, local_address, socket_options))

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        left = _left(timeout, httpcore.ConnectTimeout)
        return _Stream(self.inner.connect_unix_socket(path, left, socket_options))

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)


class Transport(httpx.HTTPTransport):
    """httpx's transport (certificates verified as by default, ``SSL_CERT_FILE`` honoured),
    over the network backend above.  (A proxy from the environment is mounted by httpx apart,
    without it.)"""

    def __init__(self) -> None:
        super().__init__()
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            keepalive_expiry=5.0,
            network_backend=_Backend(),
        )
