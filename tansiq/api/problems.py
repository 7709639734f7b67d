"""Errors as RFC 9457 ``application/problem+json``, each with a human-readable ``detail``."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match

from tansiq.accounts.store import PartnerSuspended
from tansiq.stix.bundles import InputError
from tansiq.store.database import StoreUnavailable
from tansiq.store.ingest import IngestError
from tansiq.store.query import BadCursor

PROBLEM = "application/problem+json"
TITLES = {
    400: "Bad request",
    401: "Authentication required",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Invalid STIX content",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}


class Problem(Exception):
    """Raise to answer with a problem document."""

    def __init__(
        self, status: int, detail: str, headers: dict[str, str] | None = None, **extra: Any
    ):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra


def retry_after(exc: StoreUnavailable) -> dict[str, str] | None:
    """The ``Retry-After`` header of a 503 for *exc*, when it suggests one."""
    return None if exc.retry_after is None else {"Retry-After": str(exc.retry_after)}


def problem_response(
    status: int, detail: str, headers: dict[str, str] | None = None, **extra: Any
) -> Response:
    body = {
        "type": "about:blank",
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        **extra,
    }
    return Response(orjson.dumps(body), status_code=status, media_type=PROBLEM, headers=headers)


def allowed_methods(request: Request) -> set[str]:
    """The methods of every route whose path matches *request*'s (for a 405's ``Allow``), of
    the routes in ``app.state.routes`` (FastAPI includes routers lazily: ``app.router.routes``
    holds one opaque entry per included router, not its routes)."""
    allowed: set[str] = set()
    for route in getattr(request.app.state, "routes", ()):
        if route.matches(request.scope)[0] is not Match.NONE:
            allowed |= getattr(route, "methods", None) or set()
    return allowed


PATH_SAFE = "/:@!$&'()*+,;=-._~"  # RFC 3986 pchar (and "/") but "%": a literal one is "%25"


def slash_redirect(request: Request) -> str | None:
    """Where a request for an unknown path is sent when the same path with its trailing "/"
    added or removed is a route: relative (a Location built from the ``Host`` header, as
    Starlette's own redirect is, names whatever host the client said, and ``http`` behind a TLS
    proxy), and the path percent-encoded again (decoded, it could not be a header)."""
    path = str(request.scope.get("path", ""))
    if path in ("", "/"):
        return None
    other = path[:-1] if path.endswith("/") else path + "/"
    scope = {**request.scope, "path": other}
    routes = [*getattr(request.app.state, "routes", ()), *request.app.router.routes]
    if not any(route.matches(scope)[0] is Match.FULL for route in routes):
        return None
    query = request.url.query
    return quote(other, safe=PATH_SAFE) + (f"?{query}" if query else "")


def install(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> Response:
        return problem_response(exc.status, exc.detail, exc.headers, **exc.extra)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        detail = exc.detail if isinstance(exc.detail, str) else TITLES.get(exc.status_code, "Error")
        if exc.status_code == 404 and (location := slash_redirect(request)) is not None:
            return Response(status_code=307, headers={"Location": location})
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no such resource: {request.url.path}"
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            detail = f"{request.method} is not allowed on {request.url.path}"
            allowed = allowed_methods(request)
            if allowed:  # Starlette's names only the first route's on the path
                headers["Allow"] = ", ".join(sorted(allowed))
        return problem_response(exc.status_code, detail, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        parts = []
        for err in exc.errors():
            loc = ".".join(str(x) for x in err.get("loc", ()) if x not in ("query", "path", "body"))
            where = "request body" if err.get("loc", ())[:1] == ("body",) else "request"
            parts.append(f"{loc or where}: {err.get('msg', 'invalid')}")
        return problem_response(400, "; ".join(parts) or "invalid request")

    @app.exception_handler(IngestError)
    async def _ingest(request: Request, exc: IngestError) -> Response:
        status = 409 if exc.only_conflicts else 422
        return problem_response(
            status,
            f"{exc}: " + "; ".join(str(e) for e in exc.errors[:5]),
            errors=[e.as_dict() for e in exc.errors],
            truncated=exc.truncated,
        )

    @app.exception_handler(InputError)
    async def _input(request: Request, exc: InputError) -> Response:
        return problem_response(400, str(exc))

    @app.exception_handler(StoreUnavailable)
    async def _full(request: Request, exc: StoreUnavailable) -> Response:
        # A full store, or SQLite busy past its timeout.  (TAXII paths: tansiq.api.taxii.install)
        return problem_response(503, str(exc), retry_after(exc))

    @app.exception_handler(PartnerSuspended)
    async def _suspended(request: Request, exc: PartnerSuspended) -> Response:
        # Raised where a credential resolves to its account (tansiq.accounts.store.admit):
        # right credentials, refused.  (TAXII paths: tansiq.api.taxii.install)
        return problem_response(403, str(exc))

    @app.exception_handler(BadCursor)
    async def _cursor(request: Request, exc: BadCursor) -> Response:
        return problem_response(400, str(exc))
