"""Shared fixtures: every store-backed test runs on SQLite and, when a URL is given, PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from tansiq.node import InitResult, Node, init_node
from tansiq.settings import Settings, load

PG_URL = os.environ.get("TANSIQ_TEST_DATABASE_URL", "")
PG_SKIP_REASON = "PostgreSQL tests skipped: TANSIQ_TEST_DATABASE_URL is not set"
BACKENDS = [
    "sqlite",
    pytest.param("postgresql", marks=pytest.mark.skipif(not PG_URL, reason=PG_SKIP_REASON)),
]


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("TANSIQ_REQUIRE_POSTGRES") and not PG_URL:
        raise pytest.UsageError(
            "TANSIQ_REQUIRE_POSTGRES is set but TANSIQ_TEST_DATABASE_URL is not"
        )


def shared_dir() -> Path:
    env = os.environ.get("TANSIQ_SHARED_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "shared"


STIX_DIR = shared_dir() / "data" / "stix"
SHARED_FILES = sorted(STIX_DIR.glob("*.json"))


class PgSchema:
    """A throw-away schema in the test database, so tests never see each other's rows."""

    def __init__(self) -> None:
        import psycopg

        self.name = "t_" + uuid.uuid4().hex[:12]
        self._psycopg = psycopg
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {self.name}")
        sep = "&" if "?" in PG_URL else "?"
        self.url = PG_URL + sep + "options=" + quote(f"-csearch_path={self.name}")

    def drop(self) -> None:
        with self._psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {self.name} CASCADE")


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "sqlite":
        yield ""
        return
    schema = PgSchema()
    try:
        yield schema.url
    finally:
        schema.drop()


def make_settings(data_dir: Path, database_url: str = "", **extra: object) -> Settings:
    flags: dict[str, object] = {"data_dir": str(data_dir), "database_url": database_url, **extra}
    return load(flags, env={})


@pytest.fixture
def initialised(tmp_path: Path, database_url: str) -> tuple[Settings, InitResult]:
    s = make_settings(tmp_path / "node", database_url)
    r = init_node(s, "EG", "Egypt security and defence liaison", admin_password="admin-password-1")
    return s, r


@pytest.fixture
def data_dir(tmp_path: Path, database_url: str) -> Path:
    """A node's data dir, made by ``tansiq init`` (on each backend)."""
    from click.testing import CliRunner

    from tansiq.cli import main

    d = tmp_path / "eg"
    args = ["init", "--data-dir", str(d), "--partner", "EG", "--name", "Egypt"]
    result = CliRunner().invoke(
        main, [*args, "--database-url", database_url], env={}, catch_exceptions=False
    )
    assert result.exit_code == 0, result.stdout + result.stderr
    assert all(x in result.stdout for x in ("login:", "API token:", "tansiq serve"))
    return d


@pytest.fixture
def settings(initialised: tuple[Settings, InitResult]) -> Settings:
    return initialised[0]


@pytest.fixture
def admin_token(initialised: tuple[Settings, InitResult]) -> str:
    return initialised[1].admin_token


@pytest.fixture
def client(node: Node, admin_token: str) -> Iterator[TestClient]:
    from tansiq.api.app import create_app

    app = create_app(node.settings, node)
    with TestClient(app, headers={"Authorization": f"Bearer {admin_token}"}) as c:
        yield c


@pytest.fixture
def node(settings: Settings) -> Iterator[Node]:
    n = Node(settings)
    try:
        yield n
    finally:
        n.close()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    try:
        from test_leak import CASES
    except ImportError:
        return
    if CASES["count"]:
        terminalreporter.write_line(
            f"leak property test: {CASES['count']} generated cases checked"
            " (example × principal × read path)"
        )
