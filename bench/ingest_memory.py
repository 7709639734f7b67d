"""Peak memory of `tansiq ingest` on one large bundle file (target: 500k objects under 400 MB RSS).

Writes a bundle of N re-issued ICS ATT&CK objects to a temporary file, runs the real CLI on it
in a child process, and reports the child's peak RSS and throughput.  The baseline printed
alongside is the RSS of the same child process merely importing tansiq (`tansiq --version`).

Usage: python bench/ingest_memory.py [--objects 500000] [--database-url URL]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus import reissued


def child_peak_rss_mb(cmd: list[str]) -> tuple[float, float, int]:
    """Run *cmd* in a fresh child (via a wrapper so peaks don't accumulate); MB, seconds, rc."""
    wrapper = (
        "import resource, subprocess, sys, time;"
        "t = time.perf_counter(); rc = subprocess.call(sys.argv[1:]);"
        "dt = time.perf_counter() - t;"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, dt, rc)"
    )
    out = subprocess.run(
        [sys.executable, "-c", wrapper, *cmd], capture_output=True, text=True, check=True
    )
    kb, dt, rc = out.stdout.split()[-3:]
    return int(kb) / 1024, float(dt), int(rc)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--objects", type=int, default=500_000)
    ap.add_argument("--database-url", default="")
    args = ap.parse_args()
    tansiq = [sys.executable, "-m", "tansiq"]
    with tempfile.TemporaryDirectory(prefix="tansiq-mem-") as tmpdir:
        tmp = Path(tmpdir)
        bundle = tmp / "big.json"
        with bundle.open("wb") as f:
            f.write(
                b'{"type":"bundle","id":"bundle--' + str(uuid.uuid4()).encode() + b'","objects":['
            )
            for i, text in enumerate(reissued(args.objects)):
                f.write(text if i == 0 else b"," + text)
            f.write(b"]}")
        size = bundle.stat().st_size / 2**20
        print(f"bundle: {args.objects:,} objects, {size:,.0f} MiB")
        data = tmp / "node"
        subprocess.run(
            [
                *tansiq,
                "init",
                "--data-dir",
                str(data),
                "--partner",
                "EG",
                "--name",
                "Egypt",
                "--database-url",
                args.database_url,
            ],
            check=True,
            capture_output=True,
        )
        base, _, _ = child_peak_rss_mb([*tansiq, "--version"])
        env_note = os.environ.get("TANSIQ_DATABASE_URL", "")
        peak, dt, rc = child_peak_rss_mb([*tansiq, "ingest", "--data-dir", str(data), str(bundle)])
        if rc != 0:
            sys.exit(f"ingest failed with exit code {rc}")
        print(f"baseline (tansiq --version) peak RSS {base:8.0f} MB")
        print(
            f"tansiq ingest             peak RSS {peak:8.0f} MB  ({args.objects / dt:,.0f} obj/s, {dt:.1f} s)"
        )
        print(
            f"ratio to baseline {peak / base:.1f}×; target < 400 MB: {'meets' if peak < 400 else 'MISSES'}"
            + (f" [{env_note}]" if env_note else "")
        )


if __name__ == "__main__":
    main()
