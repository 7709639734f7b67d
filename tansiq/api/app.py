"""The ASGI application of one node."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute

from tansiq import __version__
from tansiq.api import auth, docs, objects, problems, sync, taxii
from tansiq.api.headers import SecurityHeaders
from tansiq.api.limits import BodySizeLimit
from tansiq.node import Node
from tansiq.settings import Settings


def create_app(
    settings: Settings, node: Node | None = None, on_shutdown: Callable[[], None] | None = None
) -> FastAPI:
    """Build the app for the node in ``settings.data_dir`` (opened now: fail fast).

    *on_shutdown* runs when the server stops serving, before uvicorn re-raises the SIGTERM or
    SIGINT that stopped it (which ends the process: code after ``uvicorn.run`` never runs)."""
    node = node or Node(settings)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        if on_shutdown is not None:
            on_shutdown()

    app = FastAPI(
        lifespan=lifespan,
        title=f"tansiq node {node.code}",
        version=__version__,
        description="REST API of a tansiq node. Authenticate with `Authorization: Bearer TOKEN`.",
        docs_url=None,
        redoc_url=None,
    )
    docs.install(app)
    app.state.node = node
    app.state.settings = settings  # may differ from node.settings (overrides)
    problems.install(app)
    _answer_head(app.router)
    for router in (objects.router, auth.router, sync.router):
        _answer_head(router)
        app.include_router(router)
    taxii.install(app)  # /taxii2/: TAXII 2.1, errors as TAXII error messages (HEAD too)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(SecurityHeaders)  # added last: outermost, so on every response
    return app


def _answer_head(router: APIRouter) -> None:
    """HTTP (RFC 9110 9.1): every resource that answers GET answers HEAD, as TAXII's do (the
    same endpoint; the server sends no body).  FastAPI's GET routes answer only GET.  Adds the
    HEAD routes *router* still lacks (so at most once however many apps are built)."""
    routes = [r for r in router.routes if isinstance(r, APIRoute)]
    heads = {r.path for r in routes if "HEAD" in (r.methods or ())}
    for route in routes:
        if "GET" in (route.methods or ()) and route.path not in heads:
            router.add_api_route(
                route.path.removeprefix(router.prefix),
                route.endpoint,
                methods=["HEAD"],
                response_class=route.response_class,
                include_in_schema=False,
            )
