"""The ASGI application of one node."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable

from fastapi import FastAPI

from tansiq import __version__
from tansiq.api import auth, docs, objects, openapi, problems, sync, taxii
from tansiq.api.head import answer_head
from tansiq.api.headers import SecurityHeaders
from tansiq.api.limits import BodySizeLimit
from tansiq.api.nul import ReplaceNul
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
        description=(
            "REST API of a tansiq node, and its TAXII 2.1 server under `/taxii2/`. Authenticate"
            ' with `Authorization: Bearer TOKEN` (TAXII: or HTTP Basic). On this page, "Try it'
            ' out" acts as the account you logged in with at [/login](/login) (REST routes'
            " only: TAXII takes no web session)."
        ),
        docs_url=None,
        redoc_url=None,
        redirect_slashes=False,  # answered by problems.slash_redirect: a relative Location
    )
    docs.install(app)
    app.state.node = node
    app.state.settings = settings  # may differ from node.settings (overrides)
    problems.install(app)
    answer_head(app.router)
    rest = (objects.router, auth.router, sync.router)
    for router in rest:
        answer_head(router)
        app.include_router(router)
    app.state.routes = [r for router in (app.router, *rest) for r in router.routes]  # for Allow
    taxii.install(app)  # /taxii2/: TAXII 2.1, errors as TAXII error messages (HEAD too)
    openapi.install(app)  # /openapi.json says what the app answers (errors, media types)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(ReplaceNul)  # PostgreSQL text holds no NUL: U+FFFD before any route
    app.add_middleware(SecurityHeaders)  # added last: outermost, so on every response
    return app
