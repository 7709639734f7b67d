"""Bad input from a user or client answers a clear error: never a 500 or a traceback."""

from __future__ import annotations

import base64

import pytest
from fastapi.testclient import TestClient

SHARED = "/taxii2/api/collections/shared/objects/"
TAXII_ACCEPT = {"Accept": "application/taxii+json;version=2.1"}


def _cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize("raw", ["a" + "9" * 30, "a-" + "9" * 30, "a-5"])
def test_out_of_range_cursor_is_a_bad_request(client: TestClient, raw: str) -> None:
    r = client.get("/api/objects", params={"cursor": _cursor(raw)})
    assert r.status_code == 400, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert "invalid cursor" in r.json()["detail"]
    r = client.get(SHARED, params={"next": _cursor(raw)}, headers=TAXII_ACCEPT)
    assert r.status_code == 400, r.text
    assert r.json()["http_status"] == "400" and "next" in r.json()["description"]
