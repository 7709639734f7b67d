"""TAXII 2.1 throughput: tansiq against medallion (the OASIS reference server) and the raw limit.

One run, the same objects (MITRE ICS ATT&CK re-issued with fresh ids), the same clients for
both servers (POST: httpx; paged GET: stdlib http.client; keep-alive, Basic auth), pages of
``limit=1000`` and envelopes of 1000 objects:

(a) medallion 3.0.0, memory backend, its own server (``python -m medallion.scripts.run``,
    started by ``start_medallion`` of tests/test_taxii_blackbox.py).  Its reads are quadratic in
    the collection size (~70 obj/s at 2k) and so, more mildly, are its writes (each new object
    is compared with every stored one), so it gets only the first ``--medallion-objects``
    (default 2,000) objects: its rates at that size are upper bounds for larger collections.
(b) tansiq: ``tansiq serve`` (a subprocess, SQLite, default settings), the ``shared``
    collection, an editor account (Basic); ``--objects`` (default 100,000) objects.
(c) the limit of a paged read: in process, no HTTP server: stdlib ``sqlite3`` on (b)'s database
    file, keyset pages ``SELECT added, CAST(json AS BLOB) FROM objects WHERE added > ? ORDER BY
    added LIMIT 1001`` concatenated into TAXII envelope bytes.  No HTTP, policy or audit.
(d) tansiq POST as the store grows: two nodes pre-filled to ``--small-store`` (10k) and
    ``--big-store`` (1M) objects, both served at once; the same ``--batch`` (10k) objects are
    POSTed to both, envelope by envelope in turn, so both see the same machine load.

Paged GET rates are given with and without the client's own decoding of the pages (orjson, about
half the wall time for tansiq on loopback); the targets use the rate without it, the server's
share, as the raw read (c) does no decoding either.

Targets (printed with meets/MISSES):
    tansiq paged GET over HTTP    ≥ 25% of the raw paged read (c)
    tansiq POST                   ≥ 10× medallion POST
    tansiq POST stays flat        (d): big-store rate / small-store rate ≥ 0.8

Stores are pre-filled with ``Node.ingest_files`` on a bundle file, before the server starts;
each server then gets one authenticated request (tansiq's first Basic login runs argon2) and, in
(d), one untimed envelope of other objects, so that no figure includes process start-up.

Usage: python bench/taxii.py [--objects 100000] [--medallion-objects 2000]
                             [--big-store 1000000] [--small-store 10000] [--batch 10000]
Quick check (~30 s): python bench/taxii.py --objects 10000 --big-store 100000
"""

from __future__ import annotations

import argparse
import base64
import http.client
import os
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from urllib.parse import quote, urlencode, urlsplit

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from corpus import reissued
from servers import Server
from test_taxii_blackbox import PASSWORD, USER, Taxii, start_medallion

from tansiq.accounts.store import create_account
from tansiq.api.taxii import SHARED_ID
from tansiq.node import Node, init_node
from tansiq.settings import load

TAXII = "application/taxii+json;version=2.1"
PAGE = 1000
FIXED = ("identity", "marking-definition")  # re-issued with the same ids by every seed


def rate_line(label: str, n: int, seconds: float) -> float:
    rate = n / seconds
    print(f"  {label:<52} {n:>9,} obj {seconds:8.2f} s {rate:>10,.0f} obj/s", flush=True)
    return rate


def client(t: Taxii) -> httpx.Client:
    return httpx.Client(auth=t.auth, headers={"Accept": TAXII}, timeout=None)


def warm_up(t: Taxii) -> None:
    """One authenticated request, so that no timing includes tansiq's first (argon2) login."""
    with client(t) as c:
        c.get(t.api_root).raise_for_status()


def envelopes(texts: list[bytes]) -> list[tuple[int, bytes]]:
    return [
        (len(texts[i : i + PAGE]), b'{"objects":[' + b",".join(texts[i : i + PAGE]) + b"]}")
        for i in range(0, len(texts), PAGE)
    ]


def post(c: httpx.Client, t: Taxii, count: int, body: bytes) -> float:
    """POST one envelope of *count* objects; the seconds until the status arrived."""
    t0 = time.perf_counter()
    r = c.post(t.objects, content=body, headers={"Content-Type": TAXII})
    seconds = time.perf_counter() - t0
    if r.status_code != 202 or r.json().get("success_count") != count:
        sys.exit(f"POST failed: {r.status_code} {r.text[:500]}")
    return seconds


def post_all(t: Taxii, texts: list[bytes]) -> list[float]:
    """POST *texts* in envelopes of PAGE objects; the seconds each envelope took."""
    with client(t) as c:
        return [post(c, t, count, body) for count, body in envelopes(texts)]


def get_all(t: Taxii, at_most: int | None = None) -> tuple[int, float, float]:
    """Page through the collection with limit=PAGE (all of it, or the first *at_most* objects):
    (objects, seconds, of which the client spent decoding the pages with orjson).

    The client is stdlib ``http.client`` on one keep-alive connection: it reads a 1.3 MiB page
    in about a third of the time httpx takes, so less of the figure is the client's own cost."""
    url = urlsplit(t.objects)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port)
    basic = base64.b64encode(":".join(t.auth).encode()).decode()
    headers = {"Accept": TAXII, "Authorization": f"Basic {basic}"}
    n, decoding = 0, 0.0
    try:
        t0 = time.perf_counter()
        params: dict[str, str] = {"limit": str(PAGE)}
        while True:
            conn.request("GET", f"{url.path}?{urlencode(params)}", headers=headers)
            r = conn.getresponse()
            body = r.read()
            if r.status != 200:
                sys.exit(f"GET failed: {r.status} {body[:500]!r}")
            t1 = time.perf_counter()
            page = orjson.loads(body)
            decoding += time.perf_counter() - t1
            n += len(page.get("objects", []))
            if not page.get("more") or (at_most is not None and n >= at_most):
                return n, time.perf_counter() - t0, decoding
            params = {"limit": str(PAGE), "next": page["next"]}
    finally:
        conn.close()


def report_get(label: str, t: Taxii, runs: int, at_most: int | None = None) -> tuple[int, float]:
    """The paged GET rate without the client's decoding (the server's share, what the
    targets compare); the rate with it is printed too."""
    n, seconds, decoding = min(
        (get_all(t, at_most) for _ in range(runs)), key=lambda r: r[1] - r[2]
    )
    rate_line(f"{label}, client decode included", n, seconds)
    return n, rate_line(f"{label}, client decode excluded", n, seconds - decoding)


def raw_read(db: Path) -> tuple[int, float]:
    """The limit: keyset pages of the stored JSON as TAXII envelope bytes, in process."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    conn.execute("PRAGMA cache_size=-131072")  # as tansiq's connections
    n, after = 0, -1
    t0 = time.perf_counter()
    while True:
        rows = conn.execute(
            "SELECT added, CAST(json AS BLOB) FROM objects WHERE added > ? ORDER BY added LIMIT ?",
            (after, PAGE + 1),
        ).fetchall()
        page, more = rows[:PAGE], len(rows) > PAGE
        body = b'{"more":' + (b"true" if more else b"false")
        if more:
            body += b',"next":"' + str(page[-1][0]).encode() + b'"'
        body += b',"objects":[' + b",".join(r[1] for r in page) + b"]}"
        n += len(page)
        if not more:
            conn.close()
            return n, time.perf_counter() - t0
        after = page[-1][0]


class TansiqServer:
    """A fresh node (editor account), optionally pre-filled, served by `tansiq serve`."""

    def __init__(
        self, root: Path, name: str, prefill: Iterable[bytes] = (), database_url: str = ""
    ) -> None:
        self.settings = load({"data_dir": str(root / name), "database_url": database_url}, env={})
        init_node(self.settings, "EG", "Egypt", admin_password="bench-password")
        node = Node(self.settings)
        try:
            create_account(node.db, USER, PASSWORD, "editor", "EG")
            bundle = root / f"{name}-prefill.json"
            count = write_bundle(bundle, prefill)
            if count:
                t0 = time.perf_counter()
                node.ingest_files([bundle])
                rate_line(f"pre-fill {name} (Node.ingest_files)", count, time.perf_counter() - t0)
            bundle.unlink()
            self.db_path: Path | None = node.db.path
        finally:
            node.close()
        self.server = Server(self.settings.data_path)
        url = self.server.url
        self.taxii = Taxii(f"{url}/taxii2/", f"{url}/taxii2/api/", SHARED_ID, (USER, PASSWORD))
        warm_up(self.taxii)

    def stop(self) -> None:
        self.server.stop()


def write_bundle(path: Path, texts: Iterable[bytes]) -> int:
    """Stream *texts* into a bundle file; how many objects it holds."""
    n = 0
    with path.open("wb") as f:
        f.write(b'{"type":"bundle","id":"bundle--' + str(uuid.uuid4()).encode() + b'","objects":[')
        for text in texts:
            f.write(b"," + text if n else text)
            n += 1
        f.write(b"]}")
    return n


def target(label: str, value: float, goal: float, unit: str = "×") -> None:
    verdict = "meets" if value >= goal else "MISSES"
    print(f"  {label:<52} {value:8.2f}{unit}  target ≥ {goal:g}{unit}  {verdict}")


def best(runs: int, fn: Callable[[], tuple[int, float]]) -> tuple[int, float]:
    results = [fn() for _ in range(runs)]
    return min(results, key=lambda r: r[1])


def store_growth(
    root: Path, args: argparse.Namespace, batch: list[bytes], warm: list[bytes], url: str
) -> dict[str, float]:
    """POST *batch* envelope by envelope, in turn, onto a small and a big pre-filled store."""
    engine = "PostgreSQL" if url else "SQLite"
    schemas: list[str] = []

    def db_url(name: str) -> str:
        if not url:
            return ""
        import psycopg

        schema = f"bench_{name}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        schemas.append(schema)
        return url + ("&" if "?" in url else "?") + "options=" + quote(f"-csearch_path={schema}")

    stores = {
        "small": TansiqServer(
            root, f"small-{engine}", reissued(args.small_store, seed=11), db_url("small")
        ),
        "big": TansiqServer(
            root, f"big-{engine}", reissued(args.big_store, seed=12), db_url("big")
        ),
    }
    os.sync()  # let the pre-fills' dirty pages reach the disk before timing
    time.sleep(2)
    seconds = {label: 0.0 for label in stores}
    try:
        clients = {label: client(s.taxii) for label, s in stores.items()}
        for s in stores.values():  # untimed
            post_all(s.taxii, warm)
        for count, body in envelopes(batch):  # interleaved: both see the same machine load
            for label, s in stores.items():
                seconds[label] += post(clients[label], s.taxii, count, body)
        for c in clients.values():
            c.close()
    finally:
        for s in stores.values():
            s.stop()
        if schemas:
            import psycopg

            with psycopg.connect(url, autocommit=True) as conn:
                for schema in schemas:
                    conn.execute(f"DROP SCHEMA {schema} CASCADE")
    return {
        label: rate_line(f"{engine}: POST onto the {count:,} store", len(batch), seconds[label])
        for label, count in (("small", args.small_store), ("big", args.big_store))
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--objects", type=int, default=10_000, help="objects POSTed to both servers")
    ap.add_argument("--get-objects", type=int, default=100_000, help="objects tansiq pages through")
    ap.add_argument(
        "--medallion-get", type=int, default=2_000, help="objects of medallion's paged GET"
    )
    ap.add_argument("--big-store", type=int, default=1_000_000)
    ap.add_argument("--small-store", type=int, default=10_000)
    ap.add_argument("--batch", type=int, default=10_000)
    ap.add_argument(
        "--database-url",
        default="",
        help="run (d) on PostgreSQL too, e.g. postgresql://postgres@127.0.0.1:5432/test",
    )
    args = ap.parse_args()

    texts = list(reissued(max(args.objects, args.get_objects)))
    size = sum(map(len, texts)) / 2**20
    print(f"corpus: ICS ATT&CK re-issued, {len(texts):,} objects, {size:.0f} MiB of JSON")
    load_avg = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"pages of limit={PAGE}, envelopes of {PAGE} objects; load average {load_avg}")
    with tempfile.TemporaryDirectory(prefix="tansiq-taxii-bench-") as tmpdir:
        root = Path(tmpdir)

        m = min(args.medallion_get, args.objects)
        post_n = args.objects
        print(
            f"(a) medallion 3.0.0, memory backend: POST of {post_n:,} objects, paged GET of the"
            f" first {m:,} (it serves ~70-600 obj/s)"
        )
        (root / "medallion").mkdir()
        medallion, stop_medallion = start_medallion(root / "medallion", PAGE)
        try:
            warm_up(medallion)
            # GET while the collection is small: medallion's paged GET slows as it grows
            times = post_all(medallion, texts[:m])
            med_get = report_get("paged GET", medallion, 1, at_most=m)[1]
            times += post_all(medallion, texts[m:post_n])
            med_post = rate_line("POST", post_n, sum(times))
            if len(times) > 1:  # medallion compares each new object with every stored one
                last = (post_n - 1) % PAGE + 1
                print(
                    f"    first envelope {PAGE / times[0]:,.0f} obj/s, last envelope"
                    f" {last / times[-1]:,.0f} obj/s: medallion POST slows as its collection grows"
                )
        finally:
            stop_medallion()

        print(f"(b) tansiq serve (SQLite), shared collection: {len(texts):,} objects")
        main_node = TansiqServer(root, "main")
        try:
            tq_post = rate_line(
                f"POST (the same {post_n:,} as medallion)",
                post_n,
                sum(post_all(main_node.taxii, texts[:post_n])),
            )
            if len(texts) > post_n:
                post_all(main_node.taxii, texts[post_n:])  # the rest, for the paged GET
            n, tq_get = report_get("paged GET (best of 2)", main_node.taxii, 2)
        finally:
            main_node.stop()
        print("(c) the limit: in-process stdlib sqlite3 keyset pages -> envelope bytes, no HTTP")
        assert main_node.db_path is not None
        db_path = main_node.db_path
        n_raw, dt = best(2, lambda: raw_read(db_path))
        raw_get = rate_line("raw paged read of (b)'s rows (best of 2)", n_raw, dt)
        if n_raw != n:
            print(f"  note: raw read {n_raw:,} rows, tansiq served {n:,} (node's own objects)")

        print(
            f"(d) POST of {args.batch:,} objects onto stores pre-filled to "
            f"{args.small_store:,} and {args.big_store:,}, envelope by envelope in turn"
        )
        new = reissued(args.batch + PAGE + 10, seed=13)
        batch = [t for t in new if orjson.loads(t)["type"] not in FIXED]  # in the pre-fills
        batch, warm = batch[: args.batch], batch[args.batch : args.batch + PAGE]
        flat = store_growth(root, args, batch, warm, "")
        pg_flat = (
            store_growth(root, args, batch, warm, args.database_url) if args.database_url else None
        )

    print("ratios")
    print(f"  tansiq / medallion paged GET: {tq_get / med_get:,.0f}× (medallion at {m:,} objects)")
    print(f"  tansiq / medallion POST:      {tq_post / med_post:,.1f}×")
    print("targets")
    target("tansiq paged GET / raw paged read", 100 * tq_get / raw_get, 25, "%")
    target("tansiq POST / medallion POST", tq_post / med_post, 10)
    target(
        f"SQLite: POST rate on {args.big_store:,} store / on {args.small_store:,} store",
        flat["big"] / flat["small"],
        0.8,
    )
    if pg_flat is not None:
        target(
            f"PostgreSQL: POST rate on {args.big_store:,} / on {args.small_store:,} store",
            pg_flat["big"] / pg_flat["small"],
            0.8,
        )


if __name__ == "__main__":
    main()
