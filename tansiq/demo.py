"""``tansiq demo``: the DZ, EG and TN nodes on loopback, enrolled, loaded with the Libya scenario
at each originator, synced over TAXII 2.1, serving until Ctrl-C.

``DATA_DIR/demo.json`` lists, per node: ``code``, ``url``, ``data_dir``, ``taxii_discovery_url``,
an admin ``token`` and ``sync_tokens`` (partner code → the token that partner's node uses to read
this one), plus every demo login.
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import httpx
import uvicorn

from tansiq.accounts.store import create_account, create_token
from tansiq.federation.enrol import accept, invite
from tansiq.federation.sync import Scheduler, SyncReport, sync_all
from tansiq.node import Node, init_node
from tansiq.ports import listen_problem
from tansiq.scenario import (
    BORDER_REPORT_ID,
    DERNA_REPORT_ID,
    EG_ONLY_NOTE_ID,
    PARTNERS,
    scenario_items,
)
from tansiq.settings import load
from tansiq.sharing import add_group

CODES = ("DZ", "EG", "TN")
GROUPS = {
    "trilateral": ["DZ", "EG", "TN"],
    "dz-eg": ["DZ", "EG"],
    "dz-tn": ["DZ", "TN"],
    "eg-tn": ["EG", "TN"],
}
ROLES = ("admin", "editor", "reader")


@dataclass
class DemoNode:
    code: str
    port: int
    data_dir: Path
    node: Node
    accounts: dict[str, dict[str, str]] = field(default_factory=dict)
    sync_tokens: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def as_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "url": self.url,
            "data_dir": str(self.data_dir),
            "taxii_discovery_url": self.url + "/taxii2/",
            "token": self.accounts["admin"]["token"],
            "sync_tokens": self.sync_tokens,
            "accounts": self.accounts,
        }


def password(code: str, role: str) -> str:
    return f"{code.lower()}-{role}-demo"


def setup(root: Path, ports: list[int], sync_interval: int = 5) -> list[DemoNode]:
    """Create the three nodes, enrol them with each other and load each one's scenario part."""
    nodes = []
    for code, port in zip(CODES, ports, strict=True):
        data_dir = root / code.lower()
        settings = load(
            {
                "data_dir": str(data_dir),
                "port": port,
                "sync_interval_seconds": sync_interval,
            },
            env={},
        )
        info = init_node(settings, code, PARTNERS[code]["name"], password(code, "admin"))
        node = Node(settings)
        demo = DemoNode(code, port, data_dir, node)
        demo.accounts["admin"] = {
            "role": "admin",
            "password": password(code, "admin"),
            "token": info.admin_token,
        }
        for role in ROLES[1:]:
            user = f"{code.lower()}-{role}"
            create_account(node.db, user, password(code, role), role, code)
            demo.accounts[user] = {
                "role": role,
                "password": password(code, role),
                "token": create_token(node.db, user, "demo"),
            }
        nodes.append(demo)
    for a in nodes:
        for b in nodes:
            if a is not b:
                invitation = invite(a.node, b.code)
                a.sync_tokens[b.code] = invitation.token
                accept(b.node, invitation)
    for d in nodes:
        for name, members in GROUPS.items():
            if d.code in members:
                add_group(d.node.db, name, members, d.code)
        load_scenario(d.node)
    return nodes


def load_scenario(node: Node) -> None:
    """The scenario objects this node originates, each with its distribution and TLP."""
    for item in scenario_items():
        if item.originator not in (node.code, ""):
            continue
        dist = item.distribution
        spec = [dist] if isinstance(dist, str) else list(dist)
        if item.originator == "":  # public reference objects (TLP markings): held by each node
            spec = ["own"]
        tlp = None if item.obj["type"] == "marking-definition" else item.tlp
        node.ingest([item.obj], distribution=spec, tlp=tlp, actor="demo")


def serve(nodes: list[DemoNode]) -> list[tuple[uvicorn.Server, threading.Thread]]:
    from tansiq.api.app import create_app

    running = []
    for d in nodes:
        app = create_app(d.node.settings, d.node)
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=d.port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, name=f"serve-{d.code}", daemon=True)
        thread.start()
        running.append((server, thread))
    for (server, thread), d in zip(running, nodes, strict=True):
        while not server.started:
            if not thread.is_alive():
                raise click.ClickException(f"could not start {d.code} on port {d.port}")
            time.sleep(0.05)
    return running


def sync_everyone(nodes: list[DemoNode]) -> list[SyncReport]:
    reports = []
    for d in nodes:
        reports += sync_all(d.node)
    return reports


KEY_OBJECTS = (
    ("EG-only note", EG_ONLY_NOTE_ID),
    ("Derna report", DERNA_REPORT_ID),
    ("DZ–TN report", BORDER_REPORT_ID),
)


def visibility(nodes: list[DemoNode]) -> list[str]:
    """What every demo account, and every partner's sync account, sees through the REST API."""
    head = "  node account      objects  " + "  ".join(f"{n:<12}" for n, _ in KEY_OBJECTS)
    lines = [head]
    for d in nodes:
        who = [(user, acc["token"]) for user, acc in d.accounts.items()]
        who += [(f"sync:{code}", token) for code, token in d.sync_tokens.items()]
        for user, token in who:
            auth = {"Authorization": f"Bearer {token}"}
            stats = httpx.get(f"{d.url}/api/stats", headers=auth, timeout=30).json()
            seen = [
                httpx.get(f"{d.url}/api/objects/{oid}", headers=auth, timeout=30).status_code == 200
                for _, oid in KEY_OBJECTS
            ]
            marks = "  ".join(f"{'sees' if s else '-':<12}" for s in seen)
            lines.append(f"  {d.code:<4} {user:<12} {stats['total']:>7}  {marks}")
    return lines


def run_demo(data_dir: Path | None, base_port: int) -> None:
    for code, port in zip(CODES, range(base_port, base_port + len(CODES)), strict=True):
        problem = listen_problem("127.0.0.1", port, "--base-port", "--base-port")
        if problem is not None:  # before any node is made: the same --data-dir can be used again
            raise click.ClickException(f"{code}: {problem}")
    root = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="tansiq-demo-"))
    if root.exists() and not root.is_dir():
        raise click.ClickException(f"{root} is a file, not a directory: pass another --data-dir")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise click.ClickException(
            f"cannot create the demo directory {root}: {exc.strerror or exc}; pass another"
            " --data-dir"
        ) from None
    if any((root / c.lower()).exists() for c in CODES):
        raise click.ClickException(f"{root} already holds demo nodes: pass a new --data-dir")
    click.echo(f"setting up DZ, EG and TN in {root} ...")
    nodes = setup(root, [base_port, base_port + 1, base_port + 2])
    running = serve(nodes)
    for report in sync_everyone(nodes):
        click.echo(f"  sync {report}")
    schedulers = [Scheduler(d.node) for d in nodes]
    for s in schedulers:
        s.start()
    (root / "demo.json").write_text(
        json.dumps({"nodes": [d.as_json() for d in nodes]}, indent=2, ensure_ascii=False)
    )
    click.echo("")
    for d in nodes:
        click.echo(f"{d.code} node: {d.url}/docs   TAXII: {d.url}/taxii2/")
        for user, acc in d.accounts.items():
            click.echo(f"   {user:<10} password {acc['password']:<18} token {acc['token']}")
    click.echo("\nwhat each account sees through the REST API after sync:")
    for line in visibility(nodes):
        click.echo(line)
    click.echo(
        f"\ndetails in {root / 'demo.json'}; nodes pull from each other every 5 s; "
        "Ctrl-C stops all three."
    )
    try:
        while all(t.is_alive() for _, t in running):
            time.sleep(0.5)
    except KeyboardInterrupt:
        click.echo("stopping ...")
    finally:
        for s in schedulers:
            s.close()
        for server, _ in running:
            server.should_exit = True
        for _, thread in running:
            thread.join(10)
