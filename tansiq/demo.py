"""``tansiq demo``: Egypt's node with the Libya scenario, its accounts, and who sees what.

The federation (DZ and TN nodes, sync) comes with the TAXII issue; until then the objects that
DZ and TN release to EG are loaded at EG as received copies (origin DZ/TN, their distribution
kept), exactly as sync would store them, and the DZ–TN bilateral report is not loaded at all.
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import click
import httpx
import uvicorn

from tansiq.accounts.store import create_account, create_token
from tansiq.node import Node, init_node, partner_identity_id
from tansiq.scenario import PARTNERS, scenario_items
from tansiq.settings import load
from tansiq.sharing import add_group, add_partner
from tansiq.stix.extensions import distribution_of, set_distribution
from tansiq.stix.markings import TLP_IDS
from tansiq.store.ingest import ingest

NODE = "EG"
GROUPS = {
    "trilateral": ["DZ", "EG", "TN"],
    "dz-eg": ["DZ", "EG"],
    "eg-tn": ["EG", "TN"],
    "dz-tn": ["DZ", "TN"],
}
PASSWORDS = {"admin": "eg-admin-demo", "editor": "eg-editor-demo", "reader": "eg-reader-demo"}


def setup(data_dir: Path, port: int) -> dict[str, Any]:
    """Create and load the EG node; return what to print (accounts, tokens, URLs)."""
    settings = load({"data_dir": str(data_dir / "eg"), "port": port}, env={})
    info = init_node(settings, NODE, PARTNERS[NODE]["name"], admin_password=PASSWORDS["admin"])
    node = Node(settings)
    try:
        db = node.db
        for code in ("DZ", "TN"):
            add_partner(db, code, PARTNERS[code]["name"], partner_identity_id(code))
        for name, members in GROUPS.items():
            add_group(db, name, members, NODE)
        accounts: dict[str, dict[str, str]] = {
            "admin": {"role": "admin", "password": PASSWORDS["admin"], "token": info.admin_token}
        }
        for role in ("editor", "reader"):
            user = f"eg-{role}"
            create_account(db, user, PASSWORDS[role], role, NODE)
            accounts[user] = {
                "role": role,
                "password": PASSWORDS[role],
                "token": create_token(db, user, "demo"),
            }
        for code in ("DZ", "TN"):
            user = f"sync-{code.lower()}"
            create_account(db, user, f"{user}-unused-password", "sync", code)
            accounts[user] = {
                "role": f"sync account of {code}",
                "password": "",
                "token": create_token(db, user, "demo sync", scopes="sync api"),
            }
        load_scenario(node)
    finally:
        node.close()
    return {
        "code": NODE,
        "url": f"http://127.0.0.1:{port}",
        "data_dir": str(settings.data_path),
        "accounts": accounts,
    }


def load_scenario(node: Node) -> None:
    own: list[Any] = []
    for item in scenario_items():
        dist = item.distribution
        if item.originator in ("", NODE):
            spec = ["own"] if dist == "own" else ["all"] if dist == "all" else list(dist)
            own.append(
                (item.obj, spec, item.tlp if item.obj.get("type") != "marking-definition" else None)
            )
            continue
        partners = (
            sorted(PARTNERS)
            if dist == "all"
            else [item.originator]
            if dist == "own"
            else list(dist)
        )
        if NODE not in partners:
            continue  # never reaches Egypt's node
        received = set_distribution(item.obj, item.originator, partners)
        ingest(node.db, [received], prepare=lambda o: o)
    # Markings first, then the rest in scenario order, one version each.
    for obj, spec, tlp in own:
        node.ingest(
            [obj], distribution=spec, tlp=tlp if obj.get("id") not in TLP_IDS.values() else None
        )


def visibility(url: str, accounts: dict[str, dict[str, str]]) -> list[str]:
    """One line per account: what the REST API lets it see."""
    lines = []
    for user, acc in accounts.items():
        r = httpx.get(url + "/api/stats", headers={"Authorization": f"Bearer {acc['token']}"})
        total = r.json()["total"] if r.status_code == 200 else 0
        r = httpx.get(
            url + "/api/objects",
            params={"type": "report,note", "limit": 1000},
            headers={"Authorization": f"Bearer {acc['token']}"},
        )
        names = sorted(
            (o.get("name") or o.get("abstract") or o["id"])[:48]
            for o in (r.json()["objects"] if r.status_code == 200 else [])
            if (distribution_of(o) or {}).get("partners") != ["DZ", "EG", "TN"]
        )
        lines.append(
            f"  {user:<11} {acc['role']:<20} sees {total:>3} objects; restricted ones: "
            + ("; ".join(names) or "none")
        )
    return lines


def run_demo(data_dir: Path | None, base_port: int) -> None:
    root = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="tansiq-demo-"))
    root.mkdir(parents=True, exist_ok=True)
    if (root / "eg").exists():
        raise click.ClickException(f"{root / 'eg'} exists: pass a new --data-dir")
    click.echo(f"setting up the demo in {root} ...")
    info = setup(root, base_port)
    from tansiq.api.app import create_app

    settings = load({"data_dir": info["data_dir"], "port": base_port}, env={})
    app = create_app(settings)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=base_port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise click.ClickException(f"could not start the server on port {base_port}")
        time.sleep(0.05)
    (root / "demo.json").write_text(json.dumps({"nodes": [info]}, indent=2))
    click.echo(f"\nEG node: {info['url']}/docs   (data in {info['data_dir']})")
    click.echo("logins (user / password / API token):")
    for user, acc in info["accounts"].items():
        click.echo(f"  {user:<11} {acc['password'] or '-':<16} {acc['token']}")
    click.echo("\nwhat each account can see through the API:")
    for line in visibility(info["url"], info["accounts"]):
        click.echo(line)
    click.echo(f"\ndetails in {root / 'demo.json'}; Ctrl-C stops the demo.")
    try:
        while thread.is_alive():
            time.sleep(0.5)
    except KeyboardInterrupt:
        server.should_exit = True
        thread.join(10)
