"""A partner's node: its data directory, database, STIX identity and signing key."""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from tansiq import audit
from tansiq.accounts.store import (
    check_password_rules,
    create_account,
    create_token,
    new_password,
    token_id,
)
from tansiq.federation.signing import sign_hook, unsigned
from tansiq.settings import CONFIG_FILE, Settings, init_config, write_config
from tansiq.sharing import PARTNER_CODE, local_stamp, tlp_level
from tansiq.stix.bundles import StdinPath, iter_files
from tansiq.stix.extensions import (
    DISTRIBUTION_DEFINITION,
    SIGNATURE_DEFINITION,
    TANSIQ_IDENTITY,
    distribution_of,
)
from tansiq.stix.timestamps import from_micros
from tansiq.store.database import Database
from tansiq.store.ingest import (
    IngestResult,
    ObjectRejected,
    ingest,
    same_json,
    store_batches,
)
from tansiq.store.migrations import all_or_nothing, holds_schema, migrate
from tansiq.store.parallel import WORKERS, file_batches
from tansiq.store.rows import version_of

TANSIQ_NAMESPACE = uuid.UUID("6f1c9a64-5b0e-4d2a-9f43-2c7d1e8b0a51")
KEY_FILE = "node_ed25519.pem"
PUBLIC_KEY_FILE = "node_ed25519.pub.pem"
IDENTITY_CREATED = "2015-01-01T00:00:00.000Z"


class NodeError(RuntimeError):
    """The node cannot be initialised or opened as asked; the message says what to do."""


def partner_identity_id(code: str) -> str:
    """The STIX identity id of a partner agency: the same on every node."""
    return f"identity--{uuid.uuid5(TANSIQ_NAMESPACE, 'partner:' + code)}"


def identity_object(code: str, name: str) -> dict[str, Any]:
    oid = partner_identity_id(code)
    return {
        "type": "identity",
        "spec_version": "2.1",
        "id": oid,
        "created": IDENTITY_CREATED,
        "modified": IDENTITY_CREATED,
        "created_by_ref": oid,
        "name": name,
        "identity_class": "organization",
        "sectors": ["government-national", "defense"],
        "x_tansiq_partner": code,
    }


def open_database(settings: Settings) -> Database:
    return Database(settings.database_url, settings.data_path, settings.sqlite_cache_mb)


@dataclass(frozen=True)
class InitResult:
    data_dir: Path
    code: str
    identity_id: str
    admin_username: str
    admin_password: str
    admin_token: str
    database: str
    config: Path | None = None  # the config file init wrote, if any
    saved: dict[str, Any] = field(default_factory=dict)  # the settings it holds


def init_node(
    settings: Settings, code: str, name: str, admin_password: str | None = None
) -> InitResult:
    """Create the data dir, schema, identity, key pair and first admin account."""
    code = code.upper()
    if not PARTNER_CODE.match(code):
        raise NodeError(f"partner code {code!r}: use 2–8 capital letters, e.g. EG")
    if not name.strip():
        raise NodeError("--name must not be empty")
    password = admin_password or new_password()
    check_password_rules(
        password, "admin"
    )  # before anything is written: a refusal leaves no node behind
    data_dir = settings.data_path
    undo = _Undo()
    try:
        undo.make_dirs(data_dir)
    except FileExistsError:
        undo.run()
        raise NodeError(
            f"{data_dir} is a file, not a directory; choose another --data-dir"
        ) from None
    except OSError as exc:
        undo.run()
        raise NodeError(
            f"cannot create the data directory {data_dir}: {exc.strerror or exc}; "
            "choose another --data-dir"
        ) from None
    with _init_lock(data_dir):  # another init here waits for this one, then finds its node
        key_path = data_dir / KEY_FILE
        if key_path.exists():
            undo.run()  # (nothing made: the directory was there)
            if not _holds_node(settings):
                raise NodeError(half_made(data_dir, open_database(settings).describe()))
            raise NodeError(
                f"{data_dir} already holds a node (found {KEY_FILE}); choose another --data-dir"
            )
        try:
            return _init_in(settings, data_dir, code, name, password, undo)
        except BaseException:
            undo.run()  # all or nothing: a failed init leaves the data dir as it found it
            raise


@contextlib.contextmanager
def _init_lock(data_dir: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on *data_dir* (released when the process ends, killed or
    not).  Two inits on one data dir at once each took the other's files, found missing
    when it began, for its own, and the one that failed removed them: the other's node."""
    fd = os.open(data_dir, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _init_running(data_dir: Path) -> bool:
    """Is a ``tansiq init`` making a node in *data_dir* now (holding :func:`_init_lock`)?"""
    fd = os.open(data_dir, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def half_made(data_dir: Path, database: str) -> str:
    """What to do with a data dir holding a node's key whose *database* holds no node."""
    return (
        f"{data_dir} holds a node's key ({KEY_FILE}), but {database} holds no node:"
        f" either a `tansiq init` there was interrupted (then delete {data_dir} and run init"
        f" again), or the database URL is not this node's (then give its own: --database-url,"
        f" TANSIQ_DATABASE_URL or {CONFIG_FILE} in {data_dir})"
    )


def _holds_node(settings: Settings) -> bool:
    """Does the database of *settings* hold a node (``meta`` naming its partner)?  Reads
    only: no database file or table is made."""
    db = open_database(settings)
    try:
        if db.path is not None and not db.path.exists():
            return False
        return holds_schema(db) and bool(
            db.fetchone("SELECT value FROM meta WHERE key = 'partner'")
        )
    finally:
        db.close()


class _Undo:
    """What a failed ``tansiq init`` takes back: the files it made, the config file it
    replaced (restored as it was), the directories it created (removed once empty)."""

    def __init__(self) -> None:
        self._dirs: list[Path] = []  # deepest first
        self._files: list[Path] = []
        self._restore: list[tuple[Path, bytes | None, int]] = []

    def make_dirs(self, path: Path) -> None:
        missing = []
        for p in (path, *path.parents):
            if p.exists() or p.is_symlink():
                break
            missing.append(p)
        self._dirs = missing
        path.mkdir(parents=True, exist_ok=True)

    def new_files(self, *paths: Path) -> None:
        """Remove each of *paths* that is not there yet, should init fail."""
        self._files += [p for p in paths if not p.exists()]

    def keep_contents(self, path: Path) -> None:
        """Should init fail, put *path* back as it is now, contents and mode (or remove it if
        absent): ``write_config`` makes the file its owner's alone."""
        if path.exists():
            self._restore.append((path, path.read_bytes(), stat.S_IMODE(path.stat().st_mode)))
        else:
            self._restore.append((path, None, 0))

    def run(self) -> None:
        for path, before, mode in self._restore:
            with contextlib.suppress(OSError):
                if before is None:
                    path.unlink(missing_ok=True)
                else:
                    path.write_bytes(before)
                    path.chmod(mode)
        for f in self._files:
            with contextlib.suppress(OSError):
                f.unlink(missing_ok=True)
        for d in self._dirs:
            with contextlib.suppress(OSError):  # not empty: something else is in it
                d.rmdir()


def _init_in(
    settings: Settings, data_dir: Path, code: str, name: str, password: str, undo: _Undo
) -> InitResult:
    key_path = data_dir / KEY_FILE
    keep = init_config(settings)  # the settings given to init, for every later command
    config = None
    if any(not settings.source(name).startswith("file ") for name in keep):
        undo.keep_contents(data_dir / CONFIG_FILE)
        config = write_config(data_dir, keep)
    db = open_database(settings)
    if db.path is not None and not db.path.exists():  # one init creates goes too
        # (Never the -wal of a database found there: another process may have it open.)
        undo.new_files(*(Path(f"{db.path}{end}") for end in ("", "-wal", "-shm", "-journal")))
    try:
        with all_or_nothing(db):  # PostgreSQL: a failure leaves no schema or row
            migrate(db)
            if db.fetchone("SELECT value FROM meta WHERE key = 'partner'") is not None:
                raise NodeError(f"the database {db.describe()} already belongs to a node")
            if any(db.fetchone(f"SELECT 1 FROM {t} LIMIT 1") for t in ("objects", "accounts")):
                raise NodeError(
                    f"the database {db.describe()} holds objects or accounts but no node (left,"
                    " say, by a failed init of an earlier tansiq): give init an empty database"
                    " (or schema), or empty this one first"
                )
            undo.new_files(key_path, data_dir / PUBLIC_KEY_FILE)
            key = Ed25519PrivateKey.generate()
            _write_private_key(key_path, key)
            (data_dir / PUBLIC_KEY_FILE).write_bytes(
                key.public_key().public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
                )
            )
            identity = identity_object(code, name)
            ingest(
                db,
                [identity, TANSIQ_IDENTITY, DISTRIBUTION_DEFINITION, SIGNATURE_DEFINITION],
                prepare=local_stamp(db, code, identity["id"]),
            )
            # The node exists once ``meta`` names it: in one transaction with its first admin
            # and the audit entry that opens its log.
            with db.write():
                for k, v in (("partner", code), ("name", name), ("identity_id", identity["id"])):
                    db.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (k, v))
                create_account(db, "admin", password, "admin", code)
                token = create_token(
                    db, "admin", "created by tansiq init", "api admin", settings.token_days
                )
                detail = {"name": name, "admin": "admin", "token": token_id(token)}
                audit.record_in(db, "cli", "node_initialised", code, detail)
        return InitResult(
            data_dir, code, identity["id"], "admin", password, token, db.describe(), config, keep
        )
    finally:
        db.close()  # (before a failed init removes the database file)


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """The node's Ed25519 private key in *path*; raise :class:`NodeError` saying what to do when
    it is missing, unreadable, readable or writable by others than its owner (as ssh, the key is
    not used then: it signs this node's objects and seals its stored peer tokens), or not an
    Ed25519 private key in PEM.  The messages never quote the file's contents."""
    try:
        with open(path, "rb") as f:
            mode = stat.S_IMODE(os.fstat(f.fileno()).st_mode)
            data = f.read()
    except FileNotFoundError:
        raise NodeError(
            f"the node's private key {path} is missing: restore it from a backup of the data"
            " directory (a new key would not open the stored peer tokens, and partners would"
            " refuse what it signs)"
        ) from None
    except OSError as exc:
        raise NodeError(f"cannot read the node's private key {path}: {exc.strerror}") from None
    if os.name == "posix" and mode & 0o077:
        raise NodeError(
            f"the node's private key {path} has mode {mode:04o}: others than its owner can read"
            f" or change it; make it its owner's alone with `chmod 600 {path}` (and consider"
            " whether it was copied)"
        )
    try:
        key = serialization.load_pem_private_key(data, None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise NodeError(
            f"{path} is not a readable PEM private key (damaged, truncated, or protected by a"
            " password?): restore it from a backup of the data directory"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise NodeError(f"{path} is not an Ed25519 private key")
    return key


def _write_private_key(path: Path, key: Ed25519PrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)


class Node:
    """An opened node: settings, database and identity.  Holds no other state."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        data_dir = settings.data_path
        no_node = (
            f"no node in {data_dir}: run "
            f"`tansiq init --data-dir {data_dir} --partner CODE --name NAME`"
        )
        if settings.source("data_dir") == "default":  # no --data-dir, no TANSIQ_DATA_DIR
            no_node = (
                f"no node in {data_dir} (the data directory used when neither --data-dir nor"
                f" TANSIQ_DATA_DIR is given): name your node's with --data-dir DIR or"
                f" TANSIQ_DATA_DIR=DIR, or create a node there with"
                f" `tansiq init --data-dir {data_dir} --partner CODE --name NAME`"
            )
        if data_dir.exists() and not data_dir.is_dir():
            raise NodeError(f"{data_dir} is a file, not a node's data directory (--data-dir)")
        if not data_dir.is_dir():
            raise NodeError(no_node)
        self.db = open_database(settings)
        try:
            keyed = (data_dir / KEY_FILE).exists()
            made = self.db.path is None or self.db.path.exists()  # (opening would make it)
            meta: dict[str, str] = {}
            if made and holds_schema(self.db):  # (migrating would make tansiq's tables in it)
                migrate(self.db)
                meta = dict(self.db.fetchall("SELECT key, value FROM meta"))
            if "partner" not in meta:
                # With the node's key here, `tansiq init` (which a bare no-node message names)
                # refuses the data dir: say what to do instead.
                if _init_running(data_dir):
                    no_node = f"a `tansiq init` is making the node in {data_dir} now: try again"
                elif keyed and not made:  # the SQLite file deleted, or a restore without it
                    no_node = (
                        f"the database {self.db.path} is missing, but {data_dir} holds a node's"
                        f" key ({KEY_FILE}): restore the database from a backup, or give its"
                        f" --database-url; if a `tansiq init` there was interrupted, delete"
                        f" {data_dir} and run init again"
                    )
                elif keyed:  # an init that made the key and stopped, or a URL not this node's
                    no_node = half_made(data_dir, self.db.describe())
                elif made:
                    no_node = f"{self.db.describe()} holds no node; run `tansiq init` first"
                raise NodeError(no_node)
            if keyed:  # (missing: said when it is needed)
                load_private_key(data_dir / KEY_FILE)  # refuse one others can read, now
        except BaseException:
            self.db.close()  # nobody else can: the caller gets no Node
            raise
        self.code: str = meta["partner"]
        self.name: str = meta["name"]
        self.identity_id: str = meta["identity_id"]

    @property
    def data_dir(self) -> Path:
        return self.settings.data_path

    def private_key(self) -> Ed25519PrivateKey:
        """This node's signing key; raise :class:`NodeError` (see :func:`load_private_key`)."""
        return load_private_key(self.data_dir / KEY_FILE)

    def public_key(self) -> Ed25519PublicKey:
        return self.private_key().public_key()

    def ingest(
        self,
        objects: Iterable[Any],
        *,
        distribution: Sequence[str] | None = None,
        tlp: str | None = None,
        progress: Callable[[int], None] | None = None,
        actor: str = "cli",
        before_commit: Callable[[IngestResult], None] | None = None,
    ) -> IngestResult:
        """Store objects entering through this node's own CLI or API (stamped, all or nothing).

        *tlp* is a TLP 2.0 level in any case, with or without ``TLP:``.  *before_commit* is
        called in the ingest's transaction, after its audit entry, just before it commits."""
        tlp = None if tlp is None else tlp_level(tlp)  # (as audited, too)
        prepare = self.publisher(distribution, tlp)
        return ingest(
            self.db,
            objects,
            prepare=prepare,
            batch_size=self.settings.ingest_batch,
            progress=progress,
            before_commit=self._audit_write(actor, distribution, tlp, before_commit),
        )

    def ingest_files(
        self,
        paths: Sequence[Path],
        *,
        distribution: Sequence[str] | None = None,
        tlp: str | None = None,
        progress: Callable[[int], None] | None = None,
        actor: str = "cli",
        workers: int | None = None,
        file_starts: list[int] | None = None,
        before_commit: Callable[[IngestResult], None] | None = None,
    ) -> IngestResult:
        """Like :meth:`ingest` for bundle files, parsed and validated in *workers* worker
        processes (0: in this one; None: as many as the machine has cores to spare for,
        :data:`tansiq.store.parallel.WORKERS`).  *file_starts*, if given, receives the index
        of each file's first object, to tell which file an error's object is in
        (:func:`tansiq.stix.bundles.file_of`).  Standard input among *paths*
        (:data:`tansiq.stix.bundles.STDIN`) can be read only once: all is then read in this
        process, whatever *workers* says."""
        tlp = None if tlp is None else tlp_level(tlp)
        if workers is None:
            workers = WORKERS
        if any(isinstance(p, StdinPath) for p in paths):
            workers = 0
        if not workers:
            return self.ingest(
                iter_files(paths, file_starts),
                distribution=distribution,
                tlp=tlp,
                progress=progress,
                actor=actor,
                before_commit=before_commit,
            )
        batches = file_batches(
            paths,
            self.publisher(distribution, tlp),
            self.settings.ingest_batch,
            workers,
            self.settings.ingest_stall_seconds,
            file_starts,
        )
        with contextlib.closing(batches):  # the workers end with the ingest, however it ends
            return store_batches(
                self.db,
                batches,
                progress=progress,
                before_commit=self._audit_write(actor, distribution, tlp, before_commit),
            )

    def publisher(
        self, distribution: Sequence[str] | None = None, tlp: str | None = None
    ) -> Callable[[dict[str, Any]], dict[str, Any]]:
        """The write-path hook for this node's own objects: stamp, then sign what is shared.

        Versions released to no one but this node never leave it, so they are not signed, and
        carry no signature (one kept from the version they were made from would be over another
        ``modified`` and distribution; one given with them was never checked); every version
        released to a partner carries this node's Ed25519 signature.
        """
        stamp = local_stamp(self.db, self.code, self.identity_id, distribution, tlp)
        seal = sign_hook(self.code, self.private_key())
        own = [self.code]

        def publish(obj: dict[str, Any]) -> dict[str, Any]:
            try:
                obj = stamp(obj)
            except ObjectRejected:
                if self._stored_as_is(obj):
                    return obj  # the store counts it unchanged
                raise
            dist = distribution_of(obj)
            if dist is not None and dist.get("partners") != own:
                return seal(obj)
            out = unsigned(obj)
            if out is not obj and self._stored_as_is(obj):
                return obj  # held so (stored before such versions lost it): unchanged
            return out

        return publish

    def _stored_as_is(self, obj: dict[str, Any]) -> bool:
        """Is *obj* exactly a version this node holds (a partner's object, say, fetched here and
        posted back)?  Then it is no error but a no-op, as TAXII 2.1 5.5 requires of an exact
        duplicate.  Asked only of objects the stamp refuses, and of versions kept to this node
        given with a signature (a store written before they lost it holds some so), on committed
        versions."""
        version, _, _ = version_of(obj)
        row = (
            self.db.reader()
            .execute(
                self.db.dialect.sql("SELECT json FROM objects WHERE id = ? AND version = ?"),
                (obj["id"], version),
            )
            .fetchone()
        )
        return row is not None and same_json(orjson.loads(row[0]), obj)

    def _audit_write(
        self,
        actor: str,
        distribution: Sequence[str] | None,
        tlp: str | None,
        then: Callable[[IngestResult], None] | None = None,
    ) -> Callable[[IngestResult], None]:
        def audit_write(result: IngestResult) -> None:
            detail = {
                **result.as_dict(),
                "distribution": list(distribution or []),
                "tlp": tlp or "",
            }
            if result.first_added is not None and result.last_added is not None:
                # which versions: exactly those with a date_added in this range (assigned under
                # the write lock, in commit order), too many to name one by one
                detail["added"] = [from_micros(result.first_added), from_micros(result.last_added)]
            audit.record_in(self.db, actor, "objects_written", "", detail)
            if then is not None:
                then(result)

        return audit_write

    def close(self) -> None:
        self.db.close()
