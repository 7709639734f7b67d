"""Ingest throughput: tansiq against its limit (raw inserts) and against stix2.parse.

One process, one run, the same objects for every contestant (ICS ATT&CK re-issued with fresh
ids).  Prints objects/s and the ratios the targets are stated in:

    tansiq SQLite ingest      ≥ 50% of raw SQLite executemany into a one-index table
    tansiq ingest             ≥ 7× stix2.parse
    tansiq PostgreSQL ingest  ≥ 50% of raw psycopg COPY into a one-index table

Usage: python bench/ingest.py [--objects 200000] [--stix2-objects N] [--database-url URL]
(the PostgreSQL part runs when a URL is given or TANSIQ_TEST_DATABASE_URL is set).
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus import reissued

from tansiq.node import Node, init_node
from tansiq.settings import load
from tansiq.store.dialect import connect_sqlite


def timed(label: str, n: int, fn: Callable[[], object]) -> float:
    gc.collect()
    t0 = time.perf_counter()
    fn()
    dt = time.perf_counter() - t0
    rate = n / dt
    print(f"  {label:<44} {n:>8} objects {dt:8.2f} s {rate:>10,.0f} obj/s", flush=True)
    return rate


def raw_sqlite(texts: list[bytes], path: Path) -> None:
    conn = connect_sqlite(path)
    conn.execute("CREATE TABLE raw (id TEXT NOT NULL, json TEXT NOT NULL)")
    conn.execute("CREATE INDEX raw_id ON raw (id)")
    rows = [(orjson.loads(t)["id"], t.decode()) for t in texts]  # ids extracted beforehand
    t0 = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany("INSERT INTO raw (id, json) VALUES (?, ?)", rows)
    conn.execute("COMMIT")
    raw_sqlite.seconds = time.perf_counter() - t0  # type: ignore[attr-defined]
    conn.close()


def raw_copy(texts: list[bytes], url: str) -> None:
    import psycopg

    rows = [(orjson.loads(t)["id"], t.decode()) for t in texts]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE raw (id TEXT NOT NULL, json TEXT NOT NULL)")
        conn.execute("CREATE INDEX raw_id ON raw (id)")
        t0 = time.perf_counter()
        with (
            conn.transaction(),
            conn.cursor() as cur,
            cur.copy("COPY raw (id, json) FROM STDIN") as cp,
        ):
            for row in rows:
                cp.write_row(row)
        raw_copy.seconds = time.perf_counter() - t0  # type: ignore[attr-defined]


def tansiq_node(tmp: Path, name: str, url: str = "") -> Node:
    settings = load({"data_dir": str(tmp / name), "database_url": url}, env={})
    init_node(settings, "EG", "Egypt", admin_password="bench-password")
    return Node(settings)


def pg_schema(base: str) -> tuple[str, Callable[[], None]]:
    from urllib.parse import quote

    import psycopg

    name = "bench_" + uuid.uuid4().hex[:10]
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")

    def drop() -> None:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {name} CASCADE")

    sep = "&" if "?" in base else "?"
    return base + sep + "options=" + quote(f"-csearch_path={name}"), drop


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--objects", type=int, default=200_000)
    ap.add_argument(
        "--stix2-objects", type=int, default=0, help="objects for stix2.parse (default: all)"
    )
    ap.add_argument("--database-url", default=os.environ.get("TANSIQ_TEST_DATABASE_URL", ""))
    args = ap.parse_args()

    print(f"corpus: ICS ATT&CK 18.1 re-issued to {args.objects:,} objects", flush=True)
    texts = list(reissued(args.objects))
    n = len(texts)
    print(
        f"  {sum(map(len, texts)) / 2**20:.0f} MiB of JSON, {sum(map(len, texts)) / n:.0f} bytes/object"
    )
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="tansiq-bench-") as tmpdir:
        tmp = Path(tmpdir)
        print("SQLite")
        raw_sqlite(texts, tmp / "raw.db")
        results["raw"] = n / raw_sqlite.seconds  # type: ignore[attr-defined]
        print(
            f"  {'raw executemany (id, json), one index':<44} {n:>8} objects "
            f"{raw_sqlite.seconds:8.2f} s {results['raw']:>10,.0f} obj/s"
        )  # type: ignore[attr-defined]
        node = tansiq_node(tmp, "node")
        results["tansiq"] = timed(
            "tansiq ingest (parse+validate+stamp+store)",
            n,
            lambda: node.ingest(orjson.loads(t) for t in texts),
        )
        node.close()
        bundle = tmp / "bundle.json"
        with bundle.open("wb") as f:
            f.write(
                b'{"type":"bundle","id":"bundle--' + str(uuid.uuid4()).encode() + b'","objects":['
            )
            f.write(b",".join(texts))
            f.write(b"]}")
        node = tansiq_node(tmp, "node-file")
        results["tansiq_file"] = timed(
            "tansiq ingest of the bundle file (CLI path)",
            n,
            lambda: node.ingest_files([bundle]),
        )
        node.close()

        m = args.stix2_objects or n
        import stix2

        sample = texts[:m]
        results["stix2"] = timed(
            "stix2.parse(allow_custom=True)",
            m,
            lambda: [stix2.parse(t.decode(), allow_custom=True) for t in sample],
        )

        if args.database_url:
            print("PostgreSQL")
            url, drop = pg_schema(args.database_url)
            try:
                raw_copy(texts, url)
                results["pg_raw"] = n / raw_copy.seconds  # type: ignore[attr-defined]
                print(
                    f"  {'raw COPY (id, json), one index':<44} {n:>8} objects "
                    f"{raw_copy.seconds:8.2f} s {results['pg_raw']:>10,.0f} obj/s"
                )  # type: ignore[attr-defined]
            finally:
                drop()
            url, drop = pg_schema(args.database_url)
            try:
                pnode = tansiq_node(tmp, "pgnode", url)
                results["pg_tansiq"] = timed(
                    "tansiq ingest (parse+validate+stamp+store)",
                    n,
                    lambda: pnode.ingest(orjson.loads(t) for t in texts),
                )
                pnode.close()
            finally:
                drop()
            url, drop = pg_schema(args.database_url)
            try:
                pnode = tansiq_node(tmp, "pgnode-file", url)
                results["pg_tansiq_file"] = timed(
                    "tansiq ingest of the bundle file (CLI path)",
                    n,
                    lambda: pnode.ingest_files([bundle]),
                )
                pnode.close()
            finally:
                drop()

    print("ratios")
    lines = []
    for key, label in (("tansiq", "objects"), ("tansiq_file", "file")):
        lines.append((f"SQLite {label} / raw executemany", results[key] / results["raw"], 0.5))
        lines.append((f"SQLite {label} / stix2.parse", results[key] / results["stix2"], 7.0))
    if "pg_raw" in results:
        for key, label in (("pg_tansiq", "objects"), ("pg_tansiq_file", "file")):
            lines.append((f"PostgreSQL {label} / raw COPY", results[key] / results["pg_raw"], 0.5))
            lines.append(
                (f"PostgreSQL {label} / stix2.parse", results[key] / results["stix2"], 7.0)
            )
    for label, ratio, target in lines:
        verdict = "meets" if ratio >= target else "MISSES"
        print(f"  {label:<36} {ratio:6.2f}×   target ≥ {target:g}×  {verdict}")


if __name__ == "__main__":
    main()
