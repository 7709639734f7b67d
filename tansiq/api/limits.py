"""ASGI middleware that answers 413 to request bodies over the configured size."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tansiq.api.problems import problem_response
from tansiq.api.taxii_http import error_response


class BodyTooLarge(Exception):
    pass


class BodySizeLimit:
    """Reject by ``Content-Length`` up front, and count streamed bodies as they arrive."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.max_bytes
                except ValueError:
                    too_big = False
                if too_big:
                    await self._reject(scope, receive, send)
                    return
        seen = 0
        started = False
        overflowed = False

        async def limited_receive() -> Message:
            nonlocal seen, overflowed
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    overflowed = True
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if overflowed:
                # The app caught BodyTooLarge and answered itself (FastAPI turns any error while
                # reading a body into its model into 400 "error parsing the body"): 413 instead.
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await self._reject(scope, receive, send)
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._reject(scope, receive, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        detail = f"request body exceeds the limit of {self.max_bytes} bytes (max_body_bytes)"
        if str(scope.get("path", "")).startswith("/taxii2/"):  # TAXII's own error format
            await error_response(413, detail)(scope, receive, send)
            return
        response = problem_response(413, detail)
        await response(scope, receive, send)
