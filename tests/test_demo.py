"""The demo node: scenario loaded with its distributions; each account sees what it should."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from servers import free_port

from tansiq.api.app import create_app
from tansiq.demo import setup
from tansiq.scenario import BORDER_REPORT_ID, DERNA_REPORT_ID, EG_ONLY_NOTE_ID, SIRTE_INCIDENT_ID
from tansiq.settings import load


def test_demo_accounts_see_their_share(tmp_path: Path) -> None:
    info = setup(tmp_path, free_port())
    app = create_app(load({"data_dir": info["data_dir"]}, env={}))
    expect = {
        "admin": {EG_ONLY_NOTE_ID: 200, DERNA_REPORT_ID: 200, SIRTE_INCIDENT_ID: 200},
        "eg-reader": {EG_ONLY_NOTE_ID: 200, DERNA_REPORT_ID: 200},
        "sync-dz": {EG_ONLY_NOTE_ID: 404, DERNA_REPORT_ID: 200, SIRTE_INCIDENT_ID: 200},
        "sync-tn": {EG_ONLY_NOTE_ID: 404, DERNA_REPORT_ID: 200},
    }
    with TestClient(app) as client:
        for user, wanted in expect.items():
            auth = {"Authorization": f"Bearer {info['accounts'][user]['token']}"}
            for oid, status in wanted.items():
                assert client.get(f"/api/objects/{oid}", headers=auth).status_code == status, (
                    user,
                    oid,
                )
            # the DZ–TN bilateral report never reaches Egypt's node
            assert client.get(f"/api/objects/{BORDER_REPORT_ID}", headers=auth).status_code == 404
