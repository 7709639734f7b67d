"""The ASGI application of one node."""

from __future__ import annotations

from fastapi import FastAPI

from tansiq import __version__
from tansiq.api import auth, docs, objects, problems, sync, taxii
from tansiq.api.headers import SecurityHeaders
from tansiq.api.limits import BodySizeLimit
from tansiq.node import Node
from tansiq.settings import Settings


def create_app(settings: Settings, node: Node | None = None) -> FastAPI:
    """Build the app for the node in ``settings.data_dir`` (opened now: fail fast)."""
    node = node or Node(settings)
    app = FastAPI(
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
    app.include_router(objects.router)
    app.include_router(auth.router)
    app.include_router(sync.router)
    taxii.install(app)  # /taxii2/: TAXII 2.1, errors as TAXII error messages
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(SecurityHeaders)  # added last: outermost, so on every response
    return app
