"""Versions the node makes itself (a new distribution or TLP, PUT /api/objects/{id}/distribution)
are dated strictly after the latest stored version, inside the transaction that stores them:
changes in one millisecond, at once, or after a version dated in the future all succeed."""

from __future__ import annotations

import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient
from test_api import bundle
from test_distribution import ext, fed
from test_store import indicator

from tansiq import audit
from tansiq.api import objects
from tansiq.node import Node
from tansiq.stix.timestamps import to_micros

__all__ = ["fed"]
FROZEN = to_micros("2020-06-01T12:00:00.000Z") + 400  # µs inside one millisecond


def put(client: TestClient, oid: str, spec: str) -> Any:
    return client.put(f"/api/objects/{oid}/distribution", params={"distribution": spec})


def versions(client: TestClient, oid: str) -> list[dict[str, Any]]:
    r = client.get(f"/api/objects/{oid}", params={"versions": "all"})
    return r.json()["versions"]  # type: ignore[no-any-return]


def concurrently(client: TestClient, oid: str, specs: list[str]) -> list[Any]:
    with ThreadPoolExecutor(len(specs)) as pool:
        return list(pool.map(lambda s: put(client, oid, s), specs))


def check_serialised(client: TestClient, fed: Node, oid: str, answers: list[Any]) -> None:
    """Every PUT made a new version, 1 ms after the one before; the latest holds the
    distribution of the PUT that committed last (its audit entry is the last)."""
    assert [r.status_code for r in answers] == [200] * len(answers), [r.text for r in answers]
    held = versions(client, oid)
    stamps = [to_micros(v["modified"]) for v in held]
    assert len(held) == len(answers) + 1
    assert stamps[2:] == [stamps[1] + 1000 * k for k in range(1, len(answers))]
    assert sorted(r.json()["modified"] for r in answers) == [v["modified"] for v in held[1:]]
    last = max(answers, key=lambda r: r.json()["modified"])
    assert ext(held[-1]) == ext(last.json())
    changes = [e for e in audit.page(fed.db, None, 1000) if e["action"] == "distribution_changed"]
    assert changes[-1]["detail"]["to"] == ext(held[-1])["partners"]


def test_two_puts_in_one_millisecond_both_read_before_either_writes(
    fed: Node, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both PUTs read the clock (the same millisecond) once both are under way: were the latest
    version read, and the new one dated, before the write lock, both would make the same
    ``modified`` and the second would fail as a conflict."""
    client.post("/api/bundles", params={"distribution": "DZ"}, json=bundle(indicator(50)))
    meet = threading.Barrier(2)

    def frozen() -> int:
        # (inside the write lock one PUT at a time gets here: the first waits 0.5 s, alone)
        with contextlib.suppress(threading.BrokenBarrierError):
            meet.wait(timeout=0.5)
        return FROZEN

    monkeypatch.setattr(objects, "now_micros", frozen)
    oid = indicator(50)["id"]
    check_serialised(client, fed, oid, concurrently(client, oid, ["TN", "LY"]))


def test_many_puts_at_once_with_a_frozen_clock(
    fed: Node, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    client.post("/api/bundles", params={"distribution": "DZ"}, json=bundle(indicator(51)))
    monkeypatch.setattr(objects, "now_micros", lambda: FROZEN)
    oid = indicator(51)["id"]
    answers = concurrently(client, oid, ["TN", "LY", "DZ,TN", "own", "all", "trilateral"])
    check_serialised(client, fed, oid, answers)
    assert versions(client, oid)[1]["modified"] == "2020-06-01T12:00:00.000Z"


def test_latest_version_dated_in_the_future(fed: Node, client: TestClient) -> None:
    """A latest version dated after now (the originator's clock ahead, say): the new version is
    1 ms after it, not now, which would be older than the latest."""
    future = "2999-01-01T00:00:00.000Z"
    client.post("/api/bundles", json=bundle(indicator(52, future)))
    oid = indicator(52)["id"]
    answers = [put(client, oid, "TN"), put(client, oid, "DZ")]
    assert [r.json()["modified"] for r in answers] == [
        "2999-01-01T00:00:00.001Z",
        "2999-01-01T00:00:00.002Z",
    ]
    assert ext(versions(client, oid)[-1])["partners"] == ["DZ", "EG"]


def test_latest_version_at_the_last_timestamp(fed: Node, client: TestClient) -> None:
    """No STIX timestamp follows 9999-12-31T23:59:59.999Z: a 409 that says so, not a 500."""
    last = "9999-12-31T23:59:59.999Z"
    client.post("/api/bundles", json=bundle(indicator(53, last)))
    oid = indicator(53)["id"]
    r = put(client, oid, "TN")
    assert r.status_code == 409 and "none later" in r.text, r.text
    assert [v["modified"] for v in versions(client, oid)] == [last]
