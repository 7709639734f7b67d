"""Sync throughput: one origin node, two receivers, over real TAXII on loopback.

1. The origin (EG, a `tansiq serve` process) holds N objects (default 100k, re-issued ICS ATT&CK)
   released to DZ and TN; DZ and TN each pull them all.  Receiving rate is compared with the raw
   Ed25519 verify rate on the same objects, measured in this run (target ≥ 70%).
2. The origin adds 1k objects; they are synced onto (a) a receiver with an empty store and (b) a
   receiver whose store already holds M objects (default 1M); twice, (a) first then (b) first,
   and the times of each receiver are summed.  Target: (b) ≤ 2× (a).

Usage: python bench/sync.py [--objects 100000] [--big-store 1000000] [--new 1000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from corpus import reissued
from servers import Server

from tansiq.federation.enrol import accept, invite
from tansiq.federation.sync import sync_partner
from tansiq.node import Node, init_node
from tansiq.settings import load
from tansiq.stix.extensions import strip_distribution


def make_node(root: Path, code: str) -> Node:
    settings = load({"data_dir": str(root / code.lower())}, env={})
    init_node(settings, code, f"{code} node", admin_password="bench-password")
    node = Node(settings)
    node.db.checkpoint_in_background()  # as in `tansiq serve` and `tansiq sync`
    return node


def as_origin(objs: list[bytes], origin: Node) -> list[dict]:  # type: ignore[type-arg]
    out = []
    for t in objs:
        o = orjson.loads(t)
        o["created_by_ref"] = origin.identity_id
        out.append(o)
    return out


def enrol(origin: Node, url: str, receiver: Node) -> None:
    """Both directions: the receiver pulls from the origin; the origin knows the receiver."""
    invitation = invite(origin, receiver.code)
    invitation = type(invitation)(**{**invitation.__dict__, "url": url})
    accept(receiver, invitation)
    accept(origin, invite(receiver, origin.code))


def timed_sync(receiver: Node, origin_code: str) -> tuple[int, float]:
    t0 = time.perf_counter()
    report = sync_partner(receiver, origin_code)
    dt = time.perf_counter() - t0
    if report.rejected:
        sys.exit(f"unexpected rejections: {report.rejections[:3]}")
    return report.stored, dt


def raw_verify_rate(origin: Node, sample: int = 5000) -> float:
    """Ed25519 verify alone, over canonical bytes precomputed from the stored signed versions."""
    import base64

    from tansiq.federation.signing import canonical_bytes, signature_of

    key = origin.public_key()
    rows = origin.db.fetchall(
        "SELECT json FROM objects WHERE partners LIKE '%,DZ,%' LIMIT ?", (sample,)
    )
    items = []
    for (text,) in rows:
        obj = orjson.loads(text)
        sig = signature_of(obj)
        assert sig is not None
        raw = base64.urlsafe_b64decode(sig["signature"] + "==")
        items.append((raw, canonical_bytes(obj)))
    t0 = time.perf_counter()
    for raw, data in items:
        key.verify(raw, data)
    return len(items) / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--objects", type=int, default=100_000)
    ap.add_argument("--big-store", type=int, default=1_000_000)
    ap.add_argument("--new", type=int, default=1_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="tansiq-sync-bench-") as tmpdir:
        root = Path(tmpdir)
        origin = make_node(root, "EG")
        texts = list(reissued(args.objects + 2 * args.new, seed=7))
        receivers = {c: make_node(root, c) for c in ("DZ", "TN", "LY", "MA")}
        server = Server(origin.data_dir, "--sync-interval-seconds", "0")
        try:
            for r in receivers.values():
                enrol(origin, server.url, r)
            print(f"origin EG: ingesting and signing {args.objects:,} objects for DZ and TN")
            t0 = time.perf_counter()
            origin.ingest(as_origin(texts[: args.objects], origin), distribution=["DZ", "TN"])
            print(f"  {args.objects / (time.perf_counter() - t0):,.0f} obj/s (stamp+sign+store)")
            raw = raw_verify_rate(origin)
            print(
                f"raw Ed25519 verify (same objects, precomputed canonical bytes): {raw:,.0f} obj/s"
            )
            print("1. full sync of the origin's objects")
            rates = []
            for code in ("DZ", "TN"):
                n, dt = timed_sync(receivers[code], "EG")
                rates.append(n / dt)
                print(f"  {code}: {n:,} objects in {dt:6.1f} s  {n / dt:8,.0f} obj/s")
            print(
                f"  receiving / raw verify: {min(rates) / raw:.2f}×  target ≥ 0.70×  "
                f"{'meets' if min(rates) / raw >= 0.7 else 'MISSES'}"
            )

            print(
                f"2. {args.new:,} new objects onto an empty store and onto a {args.big_store:,} store"
            )
            big = receivers["MA"]
            filler = root / "filler.json"
            with filler.open("wb") as f:
                f.write(
                    b'{"type":"bundle","id":"bundle--'
                    + str(uuid.uuid4()).encode()
                    + b'","objects":['
                )
                f.write(b",".join(reissued(args.big_store, seed=99)))
                f.write(b"]}")
            t0 = time.perf_counter()
            big.ingest_files([filler])
            print(
                f"  filled MA with {args.big_store:,} objects in {time.perf_counter() - t0:.0f} s"
            )
            # bring LY (empty) and MA (big) up to date with the origin's first objects
            for code in ("LY", "MA"):
                timed_sync(receivers[code], "EG")
            # Two rounds of new objects, the receivers' order swapped in the second: the first
            # sync after the origin stores new objects also pays for the origin's first reads
            # of them, which would otherwise always fall on the same receiver.
            fresh = [strip_distribution(o) for o in as_origin(texts[args.objects :], origin)]
            seconds = {"LY": 0.0, "MA": 0.0}
            counts = {"LY": 0, "MA": 0}
            for round_, order in enumerate((("LY", "MA"), ("MA", "LY"))):
                origin.ingest(
                    fresh[round_ * args.new : (round_ + 1) * args.new], distribution=["LY", "MA"]
                )
                for code in order:
                    n, dt = timed_sync(receivers[code], "EG")
                    seconds[code] += dt
                    counts[code] += n
                    print(f"  round {round_ + 1}, {code}: {n:,} objects in {dt:.2f} s")
            print(
                f"  onto the small store (LY):  {counts['LY']:,} objects in {seconds['LY']:.2f} s"
            )
            print(
                f"  onto the {args.big_store:,} store (MA): {counts['MA']:,} objects in"
                f" {seconds['MA']:.2f} s"
            )
            ratio = seconds["MA"] / seconds["LY"]
            print(
                f"  big / small: {ratio:.2f}×  target ≤ 2×  {'meets' if ratio <= 2 else 'MISSES'}"
            )
        finally:
            server.stop()


if __name__ == "__main__":
    main()
