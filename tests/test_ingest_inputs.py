"""``tansiq ingest -`` (standard input) and gzip-compressed files."""

from __future__ import annotations

import fcntl
import gzip
import io
import json
import os
import random
import signal
import subprocess
import sys
import termios
import time
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner
from conftest import STIX_DIR
from test_cli import run
from test_cli_ingest import spy_workers
from test_store import indicator

from tansiq.cli import main

APT1 = (STIX_DIR / "apt1.json").read_bytes()
POISONIVY = (STIX_DIR / "poisonivy.json").read_bytes()
N_APT1 = len(orjson.loads(APT1)["objects"])
N_POISONIVY = len(orjson.loads(POISONIVY)["objects"])
EMPTY = {"identity": 2, "extension-definition": 2}


def run_stdin(data: bytes, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), input=data, env={}, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def stats(data_dir: Path) -> dict[str, int]:
    _, out, _ = run("stats", "--data-dir", str(data_dir), "--json")
    counts: dict[str, int] = json.loads(out)
    return counts


@pytest.mark.parametrize("gzipped", [False, True])
@pytest.mark.parametrize("workers", ["0", "2"])
def test_ingest_reads_standard_input_with_the_files_in_this_process(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, workers: str, gzipped: bool
) -> None:
    """``-`` reads a bundle from standard input (gzip-compressed or not), stored with the other
    files in one ingest, parsed in this process whatever --workers says."""
    asked = spy_workers(monkeypatch)
    data = gzip.compress(APT1) if gzipped else APT1
    args = ("ingest", "--data-dir", str(data_dir), "--workers", workers)
    code, out, err = run_stdin(data, *args, str(STIX_DIR / "poisonivy.json"), "-")
    assert code == 0, err
    n = N_APT1 + N_POISONIVY
    assert f"{n} objects read: {n} stored" in out
    assert asked == []
    assert sum(stats(data_dir).values()) == n + 4


def test_ingest_reads_an_object_list_from_standard_input(data_dir: Path) -> None:
    data = orjson.dumps([indicator(i) for i in range(3)])
    code, out, err = run_stdin(data, "ingest", "--data-dir", str(data_dir), "-")
    assert code == 0, err
    assert "3 objects read: 3 stored" in out


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_ingest_of_bad_standard_input_names_it_and_stores_nothing(data_dir: Path) -> None:
    """Standard input is named <stdin> in errors, and its errors undo the other files; it can
    be given only once."""
    good = str(STIX_DIR / "poisonivy.json")
    base = ("ingest", "--data-dir", str(data_dir))
    code, _, err = run_stdin(b"not json", *base, good, "-")
    assert code == 1 and "<stdin>: not valid JSON" in err and "nothing stored" in err
    code, _, err = run_stdin(b"", *base, good, "-")
    assert code == 1 and "<stdin>: empty file" in err
    bad = indicator(1)
    del bad["pattern"]
    code, _, err = run_stdin(orjson.dumps([indicator(0), bad]), *base, good, "-")
    assert code == 1 and "error: <stdin>: object 1" in err, err
    code, _, err = run_stdin(APT1, *base, "-", "-")
    assert code == 2 and "only once" in err
    assert stats(data_dir) == EMPTY


@pytest.mark.parametrize("size", ["small", "streamed"])
@pytest.mark.parametrize("workers", ["0", "2"])
def test_ingest_decompresses_gzip_files_and_directories_of_them(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: str, size: str
) -> None:
    """A gzip-compressed file, *.json.gz or not by name, is read as its decompressed bundle, in
    workers or not, whole or streamed; a directory stands for its *.json.gz files too."""
    if size == "streamed":
        monkeypatch.setattr("tansiq.stix.bundles.STREAM_ABOVE_BYTES", 0)
    src = tmp_path / "in"
    src.mkdir()
    (src / "apt1.json.gz").write_bytes(gzip.compress(APT1))
    (src / "notes.gz").write_bytes(gzip.compress(b"not STIX"))
    other = tmp_path / "poisonivy.json"  # gzip, whatever its name says
    other.write_bytes(gzip.compress(POISONIVY))
    args = ("ingest", "--data-dir", str(data_dir), "--workers", workers)
    code, out, err = run(*args, str(src), str(other))
    assert code == 0, err
    n = N_APT1 + N_POISONIVY
    assert f"{n} objects read: {n} stored" in out
    assert sum(stats(data_dir).values()) == n + 4


@pytest.mark.parametrize("source", ["stdin", "gzip stdin", "gzip file"])
def test_gzip_and_standard_input_stream(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    """Over the streaming threshold, gzip and standard input are read as the objects are asked
    for, not whole (memory stays bounded)."""
    from tansiq.stix import bundles

    monkeypatch.setattr(bundles, "STREAM_ABOVE_BYTES", 4096)
    # Incompressible-ish and the same every run: the reader's first reads (~370 KiB of gzip)
    # stay far below a quarter of the input (a 5,000-object input of os.urandom() came within
    # 7 bytes of it once).
    noise = random.Random(5000)
    objects = [indicator(i, description=noise.randbytes(250).hex()) for i in range(20000)]
    bundle_id = "bundle--00000000-0000-4000-8000-000000000000"
    raw = orjson.dumps({"type": "bundle", "id": bundle_id, "objects": objects})
    data = raw if source == "stdin" else gzip.compress(raw)
    path: Path = bundles.STDIN
    with io.BytesIO(data) if "stdin" in source else (tmp_path / "b.gz").open("w+b") as f:
        if "stdin" in source:
            monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(f))
        else:
            f.write(data)
            f.flush()
            path = tmp_path / "b.gz"
        found = bundles.iter_file(path)
        assert next(found) == objects[0]
        if "stdin" in source:
            assert f.tell() < len(data) // 4, (f.tell(), len(data))
        assert sum(1 for _ in found) == len(objects) - 1


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_ingest_of_standard_input_interrupted_stores_nothing(data_dir: Path) -> None:
    """Ctrl-C while reading standard input (a pipe not yet at its end): exit 130, nothing
    stored."""
    code = f"from tansiq.cli import main; main(['ingest', '--data-dir', {str(data_dir)!r}, '-'])"
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True,
    )  # fmt: skip
    assert proc.stdin is not None
    try:
        proc.stdin.write(APT1[:1000])
        proc.stdin.flush()
        pending = bytearray(4)
        for _ in range(600):  # until the ingest has read what was written: it is reading
            fcntl.ioctl(proc.stdin.fileno(), termios.FIONREAD, pending)
            if int.from_bytes(pending, sys.byteorder) == 0:
                break
            time.sleep(0.05)
        time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert b"interrupted; nothing stored" in err and b"Traceback" not in err
    assert stats(data_dir) == EMPTY


def test_ingest_help_tells_of_standard_input_and_gzip() -> None:
    code, out, _ = run("ingest", "--help")
    text = " ".join(out.split())
    assert code == 0
    assert "*.json.gz" in text and "- for standard input" in text and "gzip" in text
    assert "as an ingest reading standard input (-) always does" in text
