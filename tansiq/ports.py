"""Where the web server listens: whether it can (checked before anything starts, so that a port
in use is one clear message rather than uvicorn's log line and exit code 3), and its URL."""

from __future__ import annotations

import errno
import socket


def listen_problem(
    host: str, port: int, port_flag: str = "--port", host_flag: str = "--host"
) -> str | None:
    """Why a server could not listen on *host*:*port* now, naming the flags that change them,
    or None when it could."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return f"cannot resolve host {host!r}: {exc.strerror}; check {host_flag}"
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            s.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return (
                    f"port {port} on {host} is already in use: stop what uses it, "
                    f"or choose another {port_flag}"
                )
            reason = exc.strerror or exc
            return f"cannot listen on {host}:{port}: {reason}; check {host_flag} and {port_flag}"
    return None


def listen_url(host: str, port: int, tls: bool) -> str:
    """The base URL of a server listening on *host*:*port* (an IPv6 address in brackets, as a
    URL needs it: ``http://::1:8400`` is no URL), ``https`` with *tls*."""
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"{'https' if tls else 'http'}://{shown}:{port}"
