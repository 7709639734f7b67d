"""What `tansiq sync` tells its operator while it runs and when it ends."""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest
from click.testing import CliRunner
from starlette.requests import Request
from starlette.responses import Response
from sync_peers import TAXII, OriginPeer, enrolled

from tansiq.cli import main
from tansiq.node import Node


def run(node: Node, *args: str) -> tuple[int, str, str]:
    s = node.settings
    where = ["--data-dir", str(s.data_dir), "--database-url", s.database_url]
    result = CliRunner().invoke(main, [*args, *where], env={}, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def peer(node: Node) -> Iterator[OriginPeer]:
    with enrolled(node, OriginPeer()) as p:
        yield p


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_progress_counts_the_pages_stored_once_each_then_the_feed(
    node: Node, peer: OriginPeer
) -> None:
    """Pages are fetched one ahead of the one being stored: progress counted the fetched one,
    so it said "page 2" when page 1 was stored, and the last page twice; the withdrawal feed,
    however long, said nothing."""
    versions = [peer.signed(n, "2016-01-01T00:00:00.000Z") for n in (1, 2, 3)]
    peer.store(*versions)
    status, out, err = run(node, "sync", "--limit", "1")
    assert status == 0, out + err
    assert err.splitlines() == [f"  LY: page {n}, {n} received" for n in (1, 2, 3)], err
    peer.delete(versions[0])
    status, out, err = run(node, "sync")
    assert status == 0, out + err
    assert err.splitlines() == ["  LY: page 0, 0 received, 1 withdrawn or deleted"], err
    assert "LY: 0 received, 0 stored, 0 unchanged, 0 rejected, 0 withdrawn, 1 deleted" in out


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_rejections_beyond_the_first_twenty_are_counted(node: Node, peer: OriginPeer) -> None:
    """Only the first 20 rejections are listed: the rest were dropped without a word."""
    peer.store(peer.signed(1, "2016-01-01T00:00:00.000Z"))
    peer.store(*({**peer.signed(n, "2016-01-01T00:00:00.000Z"), "name": "x"} for n in range(2, 27)))
    status, out, err = run(node, "sync")
    assert status == 3, out + err  # versions were rejected
    listed = [line for line in err.splitlines() if line.startswith("  rejected ")]
    assert len(listed) == 20, err
    assert "  ... and 5 more rejected (all in `tansiq audit list`: sync_rejected)" in err, err


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_pull_keeps_the_first_rejections_only_each_cut_short(
    node: Node, peer: OriginPeer
) -> None:
    """A pull kept every rejection's line, whole, until it ended: a peer sending rejected
    versions page after page, with ids of any length, grew the pull's memory without bound
    (`tansiq serve` too: its scheduler pulls).  The report keeps the first KEPT, cut at LINE;
    `tansiq sync` still counts the rest, and the audit log has each."""
    from tansiq.federation import received
    from tansiq.federation.sync import sync_partner

    peer.store(peer.signed(1, "2016-01-01T00:00:00.000Z"))
    bad = [{"type": "indicator", "id": f"indicator--{n}{'x' * 5000}"} for n in range(150)]
    peer.store(*bad)
    report = sync_partner(node, "LY", page_size=50)
    assert report.rejected == 150
    assert len(report.rejections) == received.KEPT, len(report.rejections)
    assert max(len(line) for line in report.rejections) == received.LINE
    status, out, err = run(node, "sync", "--from-start", "--partner", "LY")
    assert status == 3, out + err
    assert "  ... and 130 more rejected (all in `tansiq audit list`: sync_rejected)" in err
    rows = node.db.fetchall("SELECT target FROM audit WHERE action = 'sync_rejected'")
    assert len(rows) == 300 and len(rows[0][0]) > 5000


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_sync_asks_for_its_documented_page_size(node: Node, peer: OriginPeer) -> None:
    """`--limit` (default 1000) shared its name with the `page_size` setting every command
    takes as `--page-size` (the server's default page): without --limit the pull asked for
    `limit=` (nothing), which a tansiq peer reads as its own default (100) and another TAXII
    server may refuse, and `--page-size 7` set the pull's page size."""
    peer.store(peer.signed(1, "2016-01-01T00:00:00.000Z"))
    for args, asked in (((), "1000"), (("--limit", "50"), "50")):
        peer.requests.clear()
        status, out, err = run(node, "sync", "--from-start", "--partner", "LY", *args)
        assert status == 0, out + err
        assert [u.split("limit=")[1].split("&")[0] for u in peer.requests] == [asked], args
    peer.requests.clear()  # the server's page_size is not sync's: its flag is refused here
    status, out, err = run(node, "sync", "--from-start", "--partner", "LY", "--page-size", "7")
    assert status == 2 and "--page-size" in err and "serve" in err and not peer.requests, err


def _stored(node: Node, oid: str) -> bool:
    return node.db.fetchone("SELECT 1 FROM objects WHERE id = ?", (oid,)) is not None


@pytest.mark.parametrize("one", [False, True], ids=["all", "partner"])
def test_a_rejected_version_makes_sync_exit_3_with_the_good_ones_stored(
    node: Node, peer: OriginPeer, one: bool
) -> None:
    """A forged version from a partner was rejected and audited, but `tansiq sync` exited 0: a
    cron job could not tell.  Now it exits 3, with a line per partner on stderr; the good
    versions are stored all the same, and the next run, with nothing rejected, exits 0."""
    good = peer.signed(1, "2016-01-01T00:00:00.000Z")
    forged = {**peer.signed(2, "2016-01-01T00:00:00.000Z"), "name": "forged"}
    peer.store(good, forged)
    args = ["sync", "--partner", "LY"] if one else ["sync"]
    status, out, err = run(node, *args)
    assert status == 3, out + err
    assert _stored(node, good["id"]) and not _stored(node, forged["id"])
    assert "LY: 1 version rejected (sync_rejected); 1 stored" in err.splitlines(), err
    assert "Error: versions from LY were rejected" in err, err
    assert "LY: 2 received, 1 stored, 0 unchanged, 1 rejected" in out, out
    status, out, err = run(node, *args)
    assert status == 0, out + err


@pytest.mark.parametrize("one", [False, True], ids=["all", "partner"])
def test_a_page_refused_for_its_signatures_makes_sync_exit_3(
    node: Node, peer: OriginPeer, one: bool
) -> None:
    """A page none of whose versions verifies is refused whole (the pull stops there): that
    was exit 1, like a partner that could not be reached.  It is exit 3, and says what was
    stored before the page."""
    good = peer.signed(1, "2016-01-01T00:00:00.000Z")
    forged = {**peer.signed(2, "2016-01-01T00:00:00.000Z"), "name": "forged"}
    peer.store(good, forged)
    args = ["sync", "--limit", "1", *(["--partner", "LY"] if one else [])]
    status, out, err = run(node, *args)
    assert status == 3, out + err
    assert _stored(node, good["id"]) and not _stored(node, forged["id"])
    summary = "LY: a page of 1 refused: none verifies under LY's enrolled key (sync_refused)"
    assert f"{summary}; 1 stored, then the pull failed" in err.splitlines(), err
    assert "LY: sync failed: none of the 1 versions" in out, out


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_pull_that_fails_with_nothing_rejected_is_still_exit_1(node: Node) -> None:
    from tansiq.federation.enrol import accept

    peer = OriginPeer()
    accept(node, peer.invitation())
    peer.stop()  # enrolled, but its node is gone
    for args in (["sync"], ["sync", "--partner", "LY"]):
        status, out, err = run(node, *args)
        assert status == 1 and "cannot reach" in out + err and "rejected" not in err, out + err


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_each_rejection_is_said_once_and_the_list_capped(
    node: Node, peer: OriginPeer, caplog: pytest.LogCaptureFixture
) -> None:
    """With no logging set up, Python prints warnings on stderr: each rejected version was
    said twice by `tansiq sync` (its log line, then its own list), and past the first 20 the
    log went on listing every one.  The command's own list is all it says; a server's
    scheduler, whose log is all its operator sees, still logs each."""
    import logging

    from tansiq.federation.sync import sync_partner

    peer.store(peer.signed(1, "2016-01-01T00:00:00.000Z"))
    peer.store(*({**peer.signed(n, "2016-01-01T00:00:00.000Z"), "name": "x"} for n in range(2, 5)))
    with caplog.at_level(logging.INFO):
        status, out, err = run(node, "sync")
    assert status == 3, out + err
    assert [r.getMessage() for r in caplog.records if "rejected" in r.getMessage()] == []
    assert len([x for x in err.splitlines() if x.startswith("  rejected ")]) == 3, err
    with caplog.at_level(logging.INFO):
        sync_partner(node, "LY", from_start=True)  # as the scheduler pulls
    logged = [r for r in caplog.records if r.getMessage().startswith("rejected ")]
    assert len(logged) == 3 and logged[0].levelno == logging.WARNING


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_rejection_shows_what_the_peer_sent_escaped(node: Node, peer: OriginPeer) -> None:
    """A rejection names the property at fault, which the peer chose: with a line break and a
    terminal escape in its name, `tansiq sync` printed them as is (a forged line in the
    operator's terminal, or the screen cleared).  Shown escaped, as `tansiq audit list` does."""
    forged = "x_\x1b[2J\r\nLY: 9 received, 9 stored\x9b"
    peer.store({**peer.signed(1, "2016-01-01T00:00:00.000Z"), forged: 1})
    status, out, err = run(node, "sync")
    assert status == 3, out + err
    rejected = [line for line in err.splitlines() if line.startswith("  rejected ")]
    assert len(rejected) == 1 and "x_\\x1b[2J\\r\\nLY: 9 received" in rejected[0], err
    assert not any(ch in out + err for ch in "\x1b\r\x9b"), out + err


class TellingPeer(OriginPeer):
    """A peer whose refusal's description holds a line break and terminal escapes."""

    async def envelope(self, request: Request) -> Response:
        told = "no\x1b[2J\r\nLY: 9 received, 9 stored\x9b"
        body = {"title": "Forbidden", "description": told, "http_status": "403"}
        return Response(orjson.dumps(body), 403, media_type=TAXII)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_peers_refusal_is_shown_escaped(node: Node) -> None:
    """A peer's error description was said as is by `tansiq sync --partner` (a forged line in
    the operator's terminal, or the screen cleared) and in the error the scheduler of `tansiq
    serve` logs (a forged log line); `tansiq sync` without --partner escaped it.  It is
    escaped wherever it is said."""
    from tansiq.federation.sync import sync_all

    with enrolled(node, TellingPeer()):
        status, out, err = run(node, "sync", "--partner", "LY")
        (report,) = sync_all(node)
    assert status == 1, out + err
    assert "answered 403: no\\x1b[2J\\r\\nLY: 9 received" in err, err
    assert not any(ch in out + err for ch in "\x1b\r\x9b"), out + err
    assert not any(ch in report.error for ch in "\x1b\r\n\x9b"), report.error
