"""``/docs``: Swagger UI served from vendored static files, so it works with no internet.

Above it, ``docs-init.js`` fills the session bar from ``GET /api/session``: "signed in as USER"
with a Log out button (a form posting to ``/logout`` with the session's CSRF token), or a link
to log in."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse

STATIC = Path(__file__).resolve().parent.parent / "static"

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{title} — API docs</title>
<link rel="icon" href="/static/vendor/swagger-ui/favicon-32x32.png">
<link rel="stylesheet" href="/static/vendor/swagger-ui/swagger-ui.css">
<link rel="stylesheet" href="/static/docs.css">
</head><body>
<nav id="session-bar" aria-label="Session" hidden></nav>
<div id="swagger-ui"></div>
<script src="/static/vendor/swagger-ui/swagger-ui-bundle.js"></script>
<script src="/static/docs-init.js"></script>
</body></html>
"""


def install(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(PAGE.format(title=app.title))
