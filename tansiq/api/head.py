"""HEAD wherever GET: RFC 9110 (9.1) asks every resource that answers GET to answer HEAD too."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.routing import APIRoute


def answer_head(router: APIRouter) -> None:
    """Give *router* a HEAD route for each GET route it lacks one for (the same endpoint; the
    server sends no body), out of the OpenAPI schema.  At most once however often it runs.

    Call it before adding a catch-all route, and before ``include_router`` (FastAPI includes
    routers lazily: the app's own route list does not show theirs)."""
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
