"""What `tansiq sync` tells its operator while it runs and when it ends."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from click.testing import CliRunner
from sync_peers import OriginPeer

from tansiq.cli import main
from tansiq.federation.enrol import accept
from tansiq.node import Node


def run(node: Node, *args: str) -> tuple[int, str, str]:
    s = node.settings
    where = ["--data-dir", str(s.data_dir), "--database-url", s.database_url]
    result = CliRunner().invoke(main, [*args, *where], env={}, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def peer(node: Node) -> Iterator[OriginPeer]:
    p = OriginPeer()
    try:
        accept(node, p.invitation())
        yield p
    finally:
        p.stop()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_sync_asks_for_its_documented_page_size(node: Node, peer: OriginPeer) -> None:
    """`--limit` (default 1000) shared its name with the `page_size` setting every command
    takes as `--page-size` (the server's default page): without --limit the pull asked for
    `limit=` (nothing), which a tansiq peer reads as its own default (100) and another TAXII
    server may refuse, and `--page-size 7` set the pull's page size."""
    peer.store(peer.signed(1, "2016-01-01T00:00:00.000Z"))
    for args, asked in (((), "1000"), (("--limit", "50"), "50"), (("--page-size", "7"), "1000")):
        peer.requests.clear()
        status, out, err = run(node, "sync", "--from-start", "--partner", "LY", *args)
        assert status == 0, out + err
        assert [u.split("limit=")[1].split("&")[0] for u in peer.requests] == [asked], args
