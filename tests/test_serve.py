"""``tansiq serve`` is stateless: several processes serve one database."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
from servers import Server
from test_store import indicator

from tansiq.settings import Settings


def test_two_server_processes_share_one_database(settings: Settings, admin_token: str) -> None:
    servers = [Server(settings.data_path), Server(settings.data_path)]
    auth = {"Authorization": f"Bearer {admin_token}"}
    try:

        def post(i: int) -> int:
            server = servers[i % 2]
            body = {
                "type": "bundle",
                "id": f"bundle--{uuid.uuid4()}",
                "objects": [indicator(1000 + i * 10 + k) for k in range(10)],
            }
            return httpx.post(
                server.url + "/api/bundles", json=body, headers=auth, timeout=60
            ).status_code

        with ThreadPoolExecutor(8) as pool:
            assert set(pool.map(post, range(40))) == {201}
        for server in servers:  # each process sees every write, whichever process made it
            r = httpx.get(server.url + "/api/stats", headers=auth, timeout=30)
            assert r.json()["by_type"]["indicator"] == 400
            r = httpx.get(server.url + "/api/objects/" + indicator(1005)["id"], headers=auth)
            assert r.status_code == 200
    finally:
        for server in servers:
            server.stop()
