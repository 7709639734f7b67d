"""Security headers on every response: pages, API answers, errors and static files.

Every answer but the vendored static files also gets ``Cache-Control: no-store`` unless its
route set a ``Cache-Control`` of its own: objects, TAXII pages, tokens and sessions must not be
kept by a shared browser's cache or a proxy.

Pure ASGI middleware, added last so it wraps everything else (the body-size limit's 413 too); an
unhandled exception is answered here with a 500 problem that also carries the headers.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tansiq.api.problems import problem_response
from tansiq.api.taxii_http import error_response

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
"""No ``'unsafe-inline'`` and no ``'unsafe-eval'`` anywhere: pages load only the node's own files.

Swagger UI on /docs works under this policy: its script is the vendored bundle plus
``/static/docs-init.js``, its styles are ``swagger-ui.css``, its icons are ``data:`` images, and
React applies element styles through the CSSOM, which CSP does not restrict.
"""

HSTS = "max-age=31536000"
STATIC_PREFIX = "/static/"  # the vendored Swagger UI and docs files: public, may be cached

BASE_HEADERS: tuple[tuple[str, str], ...] = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
)


class SecurityHeaders:
    """Add CSP, nosniff, no-referrer, DENY framing, no-store (but on static files) and (on
    HTTPS) HSTS to each response."""

    def __init__(self, app: ASGIApp, csp: str = CSP) -> None:
        self.app = app
        self.csp = csp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = scope.get("scheme") == "https"
        cacheable = str(scope.get("path", "")).startswith(STATIC_PREFIX)
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = MutableHeaders(scope=message)
                headers["Content-Security-Policy"] = self.csp
                for name, value in BASE_HEADERS:
                    headers[name] = value
                if not cacheable and "cache-control" not in headers:
                    headers["Cache-Control"] = "no-store"
                if https:
                    headers["Strict-Transport-Security"] = HSTS
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            if not started:
                detail = "internal server error; see the server log"
                if str(scope.get("path", "")).startswith("/taxii2/"):  # TAXII's error format
                    response = error_response(500, detail)
                else:
                    response = problem_response(500, detail)
                await response(scope, receive, send_with_headers)
            raise  # still logged by the server (and raised in tests)
