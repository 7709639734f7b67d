"""``tansiq ingest``: all or nothing, workers, interruption, and every kind of bad input."""

from __future__ import annotations

import bz2
import gzip
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import STIX_DIR
from test_cli import run
from test_store import indicator


def test_ingest_invalid_exits_nonzero_and_stores_nothing(data_dir: Path, tmp_path: Path) -> None:
    bad = indicator(2)
    del bad["pattern_type"]
    f = tmp_path / "b.json"
    f.write_text(
        json.dumps(
            {
                "type": "bundle",
                "id": "bundle--6f1c9a64-5b0e-4d2a-9f43-2c7d1e8b0a51",
                "objects": [indicator(1), bad],
            }
        )
    )
    code, _, err = run(
        "ingest", "--data-dir", str(data_dir), str(STIX_DIR / "poisonivy.json"), str(f)
    )
    assert code == 1
    assert "object 1" in err and "pattern_type" in err and "nothing stored" in err
    _, out, _ = run("stats", "--data-dir", str(data_dir), "--json")
    assert json.loads(out) == {"identity": 2, "extension-definition": 2}


def test_ingest_not_json_is_clear(data_dir: Path, tmp_path: Path) -> None:
    f = tmp_path / "junk.json"
    f.write_text("{oops")
    code, _, err = run("ingest", "--data-dir", str(data_dir), str(f))
    assert code == 1 and "not valid JSON" in err
    code, _, err = run("ingest", "--data-dir", str(data_dir), str(tmp_path / "missing.json"))
    assert code == 1 and "no such file" in err


def test_ingest_streams_a_large_bundle_in_bounded_memory(tmp_path: Path) -> None:
    """A bundle file over the streaming threshold is read object by object: the ``tansiq
    ingest`` process stays far below what holding the parsed bundle takes.

    52 MiB of 60k indicators: peak RSS about 100 MB streamed, 255 MB when the same file is
    parsed whole (measured with ``STREAM_ABOVE_BYTES`` raised); the bound sits between them.
    """
    import uuid

    from tansiq.stix.bundles import STREAM_ABOVE_BYTES

    d = tmp_path / "eg"
    code, out, err = run("init", "--data-dir", str(d), "--partner", "EG", "--name", "Egypt")
    assert code == 0, out + err
    bundle = tmp_path / "large.json"
    n = 60_000
    with bundle.open("wb") as f:
        f.write(b'{"type":"bundle","id":"bundle--' + str(uuid.uuid4()).encode() + b'","objects":[')
        for i in range(n):
            obj = indicator(i, description=f"{i} " + "x" * 600)
            obj["id"] = f"indicator--{uuid.UUID(int=i, version=4)}"
            f.write((b"," if i else b"") + orjson.dumps(obj))
        f.write(b"]}")
    assert bundle.stat().st_size > STREAM_ABOVE_BYTES
    ingest = (
        f"from tansiq.cli import main; main(['ingest', '--data-dir', {str(d)!r}, {str(bundle)!r}])"
    )
    probe = (
        "import resource, subprocess, sys;"
        "rc = subprocess.call([sys.executable, '-c', sys.argv[1]]);"
        "print(rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    env = {**os.environ, "TANSIQ_SQLITE_CACHE_MB": "8"}
    r = subprocess.run(
        [sys.executable, "-c", probe, ingest], capture_output=True, text=True, env=env, check=True
    )
    rc, peak_kb = r.stdout.split()[-2:]
    assert rc == "0", r.stderr
    assert int(peak_kb) / 1024 < 160, f"peak RSS {int(peak_kb) / 1024:.0f} MB"
    code, out, _ = run("stats", "--data-dir", str(d), "--json")
    assert json.loads(out)["indicator"] == n


def test_ingest_a_directory_reads_its_json_files(data_dir: Path, tmp_path: Path) -> None:
    """A directory argument stands for the ``*.json`` files in it, in name order."""
    src = tmp_path / "in"
    src.mkdir()
    for name in ("apt1.json", "poisonivy.json"):
        (src / name).write_bytes((STIX_DIR / name).read_bytes())
    (src / "README.txt").write_text("not STIX")
    code, out, err = run("ingest", "--data-dir", str(data_dir), str(src))
    assert code == 0, err
    n = sum(
        len(orjson.loads((src / f).read_bytes())["objects"])
        for f in ("apt1.json", "poisonivy.json")
    )
    assert f"{n} objects read: {n} stored" in out
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run("ingest", "--data-dir", str(data_dir), str(empty))
    assert code == 1 and "no .json or .json.gz files" in err
    assert "subdirectories" not in err, err
    # files only in subdirectories (a tree such as the CTI repository's): said, not just "none"
    (empty / "attack-pattern").mkdir()
    (empty / "attack-pattern" / "apt1.json").write_bytes((STIX_DIR / "apt1.json").read_bytes())
    code, _, err = run("ingest", "--data-dir", str(data_dir), str(empty))
    assert code == 1 and "no .json or .json.gz files" in err
    said = f"its subdirectories are not read: name them, e.g. {empty / 'attack-pattern'}"
    assert said in err, err


def spy_workers(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The worker counts file ingests are run with, as they run (a spy on file_batches)."""
    import tansiq.node

    asked: list[int] = []
    real = tansiq.node.file_batches

    def spy(*args: Any) -> Any:
        asked.append(args[3])
        return real(*args)

    monkeypatch.setattr(tansiq.node, "file_batches", spy)
    return asked


@pytest.mark.parametrize("workers", [0, 2])
def test_ingest_workers_option_chooses_the_path(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    """--workers N parses and validates in N worker processes (0: in this one), whatever the
    machine's default would be."""
    import tansiq.node

    asked = spy_workers(monkeypatch)
    monkeypatch.setattr(tansiq.node, "WORKERS", 0 if workers else 2)  # the default: the other
    src = STIX_DIR / "apt1.json"
    code, out, err = run("ingest", "--data-dir", str(data_dir), "--workers", str(workers), str(src))
    assert code == 0, err
    n = len(orjson.loads(src.read_bytes())["objects"])
    assert f"{n} objects read: {n} stored" in out
    assert asked == ([workers] if workers else [])
    code, _, err = run("ingest", "--data-dir", str(data_dir), "--workers", "-1", str(src))
    assert code == 2 and "--workers" in err


@pytest.mark.parametrize("how", ["killed", "hung"])
def test_ingest_with_a_failed_worker_says_so(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """A worker process killed (the OOM killer, say) or hung: a message and exit 1, no
    traceback, nothing stored."""
    import signal

    from tansiq.node import Node

    stamp = Node.publisher
    src = STIX_DIR / "apt1.json"
    victim = orjson.loads(src.read_bytes())["objects"][5]["id"]

    def publisher(self: Node, *args: Any) -> Any:
        hook = stamp(self, *args)

        def fail(obj: dict[str, Any]) -> dict[str, Any]:
            if obj["id"] == victim:
                os.kill(os.getpid(), signal.SIGKILL if how == "killed" else signal.SIGSTOP)
            return hook(obj)

        return fail

    monkeypatch.setattr(Node, "publisher", publisher)
    code, _, err = run(
        "ingest", "--data-dir", str(data_dir), "--workers", "2", "--ingest-stall-seconds", "1",
        str(src),
    )  # fmt: skip
    assert code == 1 and "Traceback" not in err
    expected = "process died" if how == "killed" else "made no progress for 1 s"
    assert expected in err and "nothing stored" in err
    monkeypatch.undo()
    _, out, _ = run("stats", "--data-dir", str(data_dir), "--json")
    assert json.loads(out) == {"identity": 2, "extension-definition": 2}


_SLOW_WRITES = """
import sys, time
from pathlib import Path
from tansiq.store import ingest
flush = ingest._Writer.flush
def flush_slowly(self, *args):
    Path(sys.argv[1]).touch()
    time.sleep(0.2)
    flush(self, *args)
ingest._Writer.flush = flush_slowly
from tansiq.cli import main
main(sys.argv[2:])
"""


@pytest.mark.parametrize("workers", [0, 2])
def test_ingest_interrupted_stores_nothing_and_says_so(
    data_dir: Path, tmp_path: Path, workers: int
) -> None:
    """Ctrl-C in the middle of an ingest (SIGINT to the process group, as a terminal sends
    it, so to the workers too): a message, exit 130, nothing stored, no process left behind."""
    import signal
    import time

    bundle = tmp_path / "b.json"
    bundle.write_text(json.dumps([indicator(i) for i in range(4000)]))
    writing = tmp_path / "writing"
    args = ["ingest", "--data-dir", str(data_dir), "--workers", str(workers)]
    proc = subprocess.Popen(
        [sys.executable, "-c", _SLOW_WRITES, str(writing), *args, "--ingest-batch", "100",
         str(bundle)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        waited = 0.0
        while not writing.exists() and proc.poll() is None and waited < 60:
            time.sleep(0.05)
            waited += 0.05
        os.killpg(proc.pid, signal.SIGINT)  # 40 batches to write, 0.2 s each: mid-ingest
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted; nothing stored" in err and "Traceback" not in err
    with pytest.raises(ProcessLookupError):
        os.killpg(proc.pid, 0)  # no worker left
    _, out, _ = run("stats", "--data-dir", str(data_dir), "--json")
    assert json.loads(out) == {"identity": 2, "extension-definition": 2}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_ingest_interrupted_as_it_commits_completes_and_says_so(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C once the ingest is committing: the commit is not cut short, and the command
    says the ingest is complete rather than that nothing was stored."""
    import signal

    from tansiq.store import database

    commit = database.commit_sqlite

    def interrupted(conn: Any) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        commit(conn)

    monkeypatch.setattr(database, "commit_sqlite", interrupted)
    src = STIX_DIR / "apt1.json"
    code, out, err = run("ingest", "--data-dir", str(data_dir), "--workers", "0", str(src))
    monkeypatch.undo()
    assert code == 0, err
    n = len(orjson.loads(src.read_bytes())["objects"])
    assert f"{n} objects read: {n} stored" in out and "it is complete" in err
    _, out, _ = run("stats", "--data-dir", str(data_dir), "--json")
    assert sum(json.loads(out).values()) == n + 4


def _unreadable(path: Path) -> None:
    """A file that fails to read with an I/O error, even for root (procfs: reading a process's
    memory at address 0)."""
    path.symlink_to("/proc/self/mem")


APT1 = (STIX_DIR / "apt1.json").read_bytes()


BAD_FILES = {
    "empty": (lambda p: p.write_bytes(b""), "empty file"),
    "truncated": (lambda p: p.write_bytes(APT1[: len(APT1) // 2]), "not valid JSON"),
    "not a bundle": (lambda p: p.write_bytes(b'"hello"'), "expected a STIX bundle"),
    "bzip2": (lambda p: p.write_bytes(bz2.compress(APT1)), "bzip2-compressed"),
    "bad gzip": (lambda p: p.write_bytes(gzip.compress(APT1)[:-40]), "not valid gzip"),
    "utf-16": (lambda p: p.write_bytes(APT1.decode().encode("utf-16")), "UTF-16"),
    "utf-8 bom": (lambda p: p.write_bytes(b"\xef\xbb\xbf" + APT1), "byte order mark"),
    "latin-1": (lambda p: p.write_bytes(APT1.replace(b"APT1", b"APT1 caf\xe9", 1)), "not UTF-8"),
    "i/o error": (_unreadable, "cannot read it: Input/output error"),
}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("size", ["small", "streamed"])
@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("case", BAD_FILES)
def test_ingest_of_a_bad_file_says_what_it_is(
    data_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    case: str,
    workers: int,
    size: str,
) -> None:
    """A file that is empty, cut short, not a bundle, compressed, not UTF-8 or unreadable,
    after a good one, read whole or streamed, in this process or in workers: a message naming
    it and what is wrong, exit 1, no traceback, nothing stored."""
    if size == "streamed":
        monkeypatch.setattr("tansiq.stix.bundles.STREAM_ABOVE_BYTES", 0)
    make, expected = BAD_FILES[case]
    bad = tmp_path / "bad.json"
    make(bad)
    args = ["ingest", "--data-dir", str(data_dir), "--workers", str(workers)]
    code, _, err = run(*args, str(STIX_DIR / "poisonivy.json"), str(bad))
    assert code == 1 and "Traceback" not in err
    assert f"{bad}: " in err and expected in err and "nothing stored" in err
    _, out, _ = run("stats", "--data-dir", str(data_dir), "--json")
    assert json.loads(out) == {"identity": 2, "extension-definition": 2}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_ingest_of_what_is_not_a_file_says_so(data_dir: Path, tmp_path: Path) -> None:
    """A device or a pipe is not a file (and is not 'missing'); a directory's unreadable
    .json file is named."""
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    for what in ("/dev/null", str(fifo)):
        code, _, err = run("ingest", "--data-dir", str(data_dir), what)
        assert code == 1 and f"{what}: not a regular file" in err
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.json").write_bytes(APT1)
    _unreadable(folder / "b.json")
    code, _, err = run("ingest", "--data-dir", str(data_dir), str(folder))
    assert code == 1 and f"{folder / 'b.json'}: cannot read it" in err and "Traceback" not in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_ingest_of_a_file_without_read_permission_says_so(data_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.json").write_bytes(APT1)
    (folder / "a.json").chmod(0)
    code, _, err = run("ingest", "--data-dir", str(data_dir), str(folder))
    assert code == 1 and "Permission denied" in err and "Traceback" not in err
    folder.chmod(0o400)  # names listed, but not their files (mode 0 is a usage error)
    try:
        code, _, err = run("ingest", "--data-dir", str(data_dir), str(folder))
    finally:
        folder.chmod(0o700)
    assert code == 1 and "Permission denied" in err and "Traceback" not in err


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("workers", [0, 2])
def test_ingest_of_files_without_objects_warns(
    data_dir: Path, tmp_path: Path, workers: int
) -> None:
    """A bundle with no objects, or an empty list, is valid and stores nothing: exit 0, and a
    warning names each such file (a wrong file given, perhaps)."""
    empty_bundle = tmp_path / "a.json"
    empty_bundle.write_text(
        json.dumps({"type": "bundle", "id": "bundle--6f1c9a64-5b0e-4d2a-9f43-2c7d1e8b0a51"})
    )
    empty_list = tmp_path / "c.json"
    empty_list.write_text("[]")
    args = ["ingest", "--data-dir", str(data_dir), "--workers", str(workers)]
    code, out, err = run(
        *args, str(empty_bundle), str(STIX_DIR / "poisonivy.json"), str(empty_list)
    )
    assert code == 0, err
    warned = [x for x in err.splitlines() if x.startswith("warning:")]
    assert warned == [f"warning: {empty_bundle}: no objects in it",
                      f"warning: {empty_list}: no objects in it"]  # fmt: skip
    code, out, err = run(*args, str(empty_list))
    assert code == 0 and "0 objects read: 0 stored" in out and "no objects in it" in err


def test_ingest_errors_name_the_file_and_the_index_in_it(data_dir: Path, tmp_path: Path) -> None:
    bad = indicator(2)
    del bad["pattern_type"]
    f = tmp_path / "second.json"
    f.write_text(json.dumps([indicator(1), bad]))
    first = STIX_DIR / "apt1.json"
    code, _, err = run("ingest", "--data-dir", str(data_dir), str(first), str(f))
    assert code == 1
    line = next(x for x in err.splitlines() if "pattern_type" in x)
    assert f"{f}: object 1 " in line, line


@pytest.mark.parametrize("workers", [0, 2])
def test_ingest_errors_name_their_file_without_reading_it_again(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    """Which file an invalid object is in, and its index there, are known from the ingest
    itself: no file is read a second time to count its objects (a cost on big files), on
    either path, and a file without objects counts for none."""
    import tansiq.stix.bundles as bundles

    read: list[str] = []
    real = bundles.iter_file

    def iter_file(path: Path) -> Any:
        read.append(path.name)
        return real(path)

    monkeypatch.setattr(bundles, "iter_file", iter_file)
    objs = [indicator(i) for i in range(35)]
    for bad in (13, 27, 34):
        del objs[bad]["pattern_type"]
    files = []
    for name, part in (("a", objs[:10]), ("b", []), ("c", objs[10:30]), ("d", objs[30:])):
        files.append(tmp_path / f"{name}.json")
        files[-1].write_text(json.dumps(part))
    code, _, err = run(
        "ingest", "--data-dir", str(data_dir), "--workers", str(workers), "--ingest-batch", "4",
        *map(str, files),
    )  # fmt: skip
    assert code == 1 and "3 invalid object(s)" in err
    lines = [x.split(" (")[0] for x in err.splitlines() if x.startswith("error:")]
    assert lines == [f"error: {files[2]}: object 3", f"error: {files[2]}: object 17",
                     f"error: {files[3]}: object 4"]  # fmt: skip
    assert read == ([f.name for f in files] if workers == 0 else [])  # (workers: not here)


def test_ingest_tlp_ignores_case(data_dir: Path, tmp_path: Path) -> None:
    f = tmp_path / "one.json"
    f.write_text(
        json.dumps(
            {
                "type": "bundle",
                "id": "bundle--6f1c9a64-5b0e-4d2a-9f43-2c7d1e8b0a52",
                "objects": [indicator(7)],
            }
        )
    )
    code, _, err = run("ingest", "--data-dir", str(data_dir), "--tlp", "TLP:RED", str(f))
    assert code == 0, err
    from tansiq.stix.markings import TLP_IDS

    code, out, _ = run("export", "--data-dir", str(data_dir))
    exported = {o["id"]: o for o in json.loads(out)["objects"]}
    assert exported[indicator(7)["id"]]["object_marking_refs"] == [TLP_IDS["red"]]
    code, _, err = run("ingest", "--data-dir", str(data_dir), "--tlp", "Purple", str(f))
    assert code == 2
    assert "--tlp" in err and "clear, green, amber, amber+strict, red" in err
