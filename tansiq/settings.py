"""Every setting of a node, declared once, read in layers.

Layers, later wins: built-in defaults → ``DATA_DIR/tansiq.toml`` → ``TANSIQ_*`` environment
variables → command-line flags.  ``tansiq settings`` prints each value and its source; the CLI
derives its flags from :data:`SETTINGS` and ``docs/settings.md`` is checked against it by a test.
Each command takes as flags only the settings it reads (``Setting.commands``, :func:`read_by`);
the config file and the environment apply to every command.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

CONFIG_FILE = "tansiq.toml"
ENV_PREFIX = "TANSIQ_"


class SettingsError(ValueError):
    """A setting has a value that cannot be used."""


@dataclass(frozen=True)
class Setting:
    name: str
    type: type
    default: Any
    help: str
    secret: bool = False
    minimum: int | None = None  # int settings: the smallest and largest usable values
    maximum: int | None = None
    choices: tuple[str, ...] = ()  # str settings: the only values allowed (empty: any)
    commands: tuple[str, ...] = ()  # the commands that read it, and take it as a flag

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def cast(self, raw: Any, source: str) -> Any:
        """Convert *raw* from *source* to this setting's type, with an actionable error."""
        try:
            return self._check(self._convert(raw))
        except (TypeError, ValueError) as exc:
            raise SettingsError(f"setting {self.name} from {source}: {exc}") from None

    def _convert(self, raw: Any) -> Any:
        if self.type is bool:
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(f"expected true/false, got {raw!r}")
        if self.type is int:
            if isinstance(raw, bool | float):
                raise ValueError(f"expected an integer, got {raw!r}")
            try:
                return int(raw)
            except ValueError:  # int()'s own words: "invalid literal for int() with base 10"
                raise ValueError(f"expected an integer, got {raw!r}") from None
        if self.type is float:
            return float(raw)
        return str(raw).strip().lower() if self.choices else str(raw)

    def _check(self, value: Any) -> Any:
        if self.minimum is not None and value < self.minimum:
            raise ValueError(f"{value} is below the minimum, {self.minimum}")
        if self.maximum is not None and value > self.maximum:
            raise ValueError(f"{value} is above the maximum, {self.maximum}")
        if self.choices and value not in self.choices:
            raise ValueError(f"{value!r} is not one of {', '.join(self.choices)}")
        if self.name == "database_url" and value and not value.startswith(DATABASE_URL_SCHEMES):
            raise ValueError(
                f"unsupported database URL {value!r}: use postgresql://… "
                "(or sqlite:///PATH), or leave it empty for SQLite in the data dir"
            )
        if self.name == "public_url" and value:
            parts = urlsplit(value)
            if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
                raise ValueError(
                    f"{value!r} is not an http(s) URL with a host, e.g. https://node.example:8400"
                    " (partners' nodes pull from it)"
                )
        if self.name == "database_url" and value.rstrip("/") == "sqlite:":
            raise ValueError(
                f"database URL {value!r} names no file: use sqlite:///PATH (a relative PATH "
                "is in the data dir), or leave it empty for tansiq.db in the data dir"
            )
        return value


DATABASE_URL_SCHEMES = ("postgresql://", "postgres://", "sqlite:///")  # see store.dialect
CENTURY_DAYS = 36_525
"""The longest a duration setting may be.  Times are signed 64-bit microseconds in the store,
and a cut-off of "now less a duration" below their range failed every request on SQLite (an
integer too large to bind) while PostgreSQL compared it as a numeric: "keep for ever" as
999999999 days broke every TAXII POST on one engine only."""
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")  # uvicorn's

EVERY_SETTING = ("init", "settings")
"""Commands that take every setting as a flag: ``init`` keeps the ones given in the new node's
config file, ``settings`` shows what each resolves to."""
STORE = (
    "serve",
    "ingest",
    "export",
    "stats",
    "sync",
    "audit verify",
    "audit list",
    "partner invite",
    "partner add",
    "partner update",
    "partner suspend",
    "partner resume",
    "partner list",
    "group add",
    "group list",
    "account add",
    "account list",
    "account disable",
    "account enable",
    "account password",
    "account role",
    "token create",
    "token list",
    "token revoke",
)
"""Every command (``tansiq demo`` and those of :data:`EVERY_SETTING` aside) that opens the
node's store; each takes only the settings flags of the settings it reads (``commands``).
Settings from the config file and the environment apply to every command alike."""
SERVE = ("serve",)
SYNC = ("serve", "sync")  # `tansiq serve` pulls too, every sync_interval_seconds
NODE_URL = ("serve", "partner invite")  # the invitation carries the node's URL


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "data_dir",
        str,
        "./tansiq-data",
        "Directory holding the node's database, keys and config.",
        commands=STORE,
    ),
    Setting(
        "database_url",
        str,
        "",
        "Database URL: empty for SQLite (tansiq.db) in the data dir, or "
        "postgresql://user@host:port/db, or sqlite:///PATH for a SQLite file elsewhere "
        "(a relative PATH is taken from the data dir, not the current directory; "
        "sqlite:////abs/path is absolute).",
        commands=STORE,
    ),
    Setting(
        "sqlite_cache_mb",
        int,
        128,
        "SQLite page cache per connection, in MiB; raise it for stores of millions of objects.",
        minimum=1,
        commands=STORE,
    ),
    Setting("host", str, "127.0.0.1", "Address the web server listens on.", commands=NODE_URL),
    Setting(
        "port",
        int,
        8400,
        "Port the web server listens on.",
        minimum=1,
        maximum=65535,
        commands=NODE_URL,
    ),
    Setting(
        "public_url",
        str,
        "",
        "URL partners use to reach this node (default: http://host:port).",
        commands=NODE_URL,
    ),
    Setting(
        "certfile",
        str,
        "",
        "TLS certificate (PEM) for HTTPS; empty serves plain HTTP.",
        commands=NODE_URL,
    ),
    Setting("keyfile", str, "", "TLS private key (PEM) for HTTPS.", commands=SERVE),
    Setting(
        "max_body_bytes",
        int,
        64 * 1024 * 1024,
        "Largest accepted request body; 413 above.",
        minimum=1,
        commands=SERVE,
    ),
    Setting(
        "page_size",
        int,
        100,
        "Objects per page when a request gives no limit.",
        minimum=1,
        commands=SERVE,
    ),
    Setting(
        "max_page_size",
        int,
        10_000,
        "Largest page a request may ask for.",
        minimum=1,
        commands=SERVE,
    ),
    Setting(
        "ingest_batch",
        int,
        2_000,
        "Objects written per statement batch during ingest.",
        minimum=1,
        commands=("ingest", "serve"),
    ),
    Setting(
        "ingest_stall_seconds",
        int,
        60,
        "`tansiq ingest`: a worker process that reads and prepares no object for this long is"
        " taken as hung and stopped; the ingest fails and stores nothing.",
        minimum=1,
        commands=("ingest",),
    ),
    Setting(
        "session_minutes",
        int,
        480,
        "Lifetime of a web session (at most 100 years).",
        minimum=1,
        maximum=CENTURY_DAYS * 24 * 60,
        commands=SERVE,
    ),
    Setting(
        "session_idle_minutes",
        int,
        30,
        "A web session not used for this long ends (use is recorded at most once a minute, so"
        " it may end up to a minute sooner); at or above session_minutes only the lifetime"
        " counts.",
        minimum=2,
        maximum=10080,
        commands=SERVE,
    ),
    # (the maximum is tansiq.accounts.store.MAX_TOKEN_DAYS)
    Setting(
        "token_days",
        int,
        90,
        "Default lifetime of a new API token.",
        minimum=1,
        maximum=3650,
        commands=("serve", "token create"),
    ),
    Setting(
        "login_max_failures",
        int,
        5,
        "Failed logins allowed per account or address per window.",
        minimum=1,
        commands=SERVE,
    ),
    Setting(
        "login_window_seconds",
        int,
        900,
        "Window for counting failed logins (at most 100 years).",
        minimum=1,
        maximum=CENTURY_DAYS * 24 * 3600,
        commands=SERVE,
    ),
    Setting(
        "audit_rejected_tokens",
        int,
        100,
        "Rejected bearer tokens written to the audit log per login window; more are refused"
        " alike but not written (a flood of bad tokens cannot grow the log without bound)."
        " Refused requests of a suspended partner's accounts (access_refused) are limited"
        " alike, counted apart.",
        minimum=0,
        commands=SERVE,
    ),
    Setting(
        "taxii_status_days",
        int,
        30,
        "Days a TAXII status resource (of a POST) is kept; older ones are deleted and answer 404"
        " (at most 100 years).",
        minimum=1,
        maximum=CENTURY_DAYS,
        commands=SERVE,
    ),
    Setting(
        "sync_interval_seconds",
        int,
        30,
        "Seconds between scheduled pulls from partners by `tansiq serve`; 0 turns it off.",
        minimum=0,
        commands=SERVE,
    ),
    Setting(
        "allow_plain_http",
        bool,
        False,
        "Let sync send its token to a partner over plain HTTP on a non-loopback address.",
        commands=SYNC,
    ),
    Setting(
        "sync_connect_timeout_seconds",
        int,
        10,
        "Longest a pull waits to connect to a partner's node.",
        minimum=1,
        commands=SYNC,
    ),
    Setting(
        "sync_read_timeout_seconds",
        int,
        60,
        "Longest a pull waits for a partner's node to send more of an answer.",
        minimum=1,
        commands=SYNC,
    ),
    Setting(
        "sync_response_seconds",
        int,
        600,
        "Longest a partner's node may take over one whole answer to a pull (one trickling"
        " bytes would hold up every other partner's pull).",
        minimum=1,
        commands=SYNC,
    ),
    Setting(
        "sync_max_response_mb",
        int,
        512,
        "Largest answer, in MiB, read from a partner's node in a pull (`tansiq serve` pulls:"
        " a peer sending without end must not exhaust its memory).",
        minimum=1,
        commands=SYNC,
    ),
    Setting(
        "log_level",
        str,
        "info",
        "Log level of `tansiq serve`: " + ", ".join(LOG_LEVELS) + ".",
        choices=LOG_LEVELS,
        commands=SERVE,
    ),
)

BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}
COMMANDS = EVERY_SETTING + STORE  # the commands that take settings flags


def read_by(command: str) -> tuple[Setting, ...]:
    """The settings *command* (``"account add"``) reads, so takes as flags; a KeyError for a
    command not declared here (every command that opens the store must be)."""
    if command in EVERY_SETTING:
        return SETTINGS
    if command not in STORE:
        raise KeyError(f"command {command!r} is not declared in tansiq.settings.STORE")
    return tuple(s for s in SETTINGS if command in s.commands)


def commands_of(setting: Setting) -> tuple[str, ...]:
    """The commands that take *setting* as a flag."""
    return tuple(c for c in COMMANDS if setting in read_by(c))


class Settings:
    """Resolved settings: attribute access plus the source of each value."""

    def __init__(self, values: dict[str, Any], sources: dict[str, str]) -> None:
        self._values = values
        self._sources = sources

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    def source(self, name: str) -> str:
        return self._sources[name]

    @property
    def data_path(self) -> Path:
        return Path(self._values["data_dir"]).expanduser()

    def items(self) -> list[tuple[Setting, Any, str]]:
        return [(s, self._values[s.name], self._sources[s.name]) for s in SETTINGS]

    def with_overrides(self, **overrides: Any) -> Settings:
        values = dict(self._values)
        sources = dict(self._sources)
        for name, value in overrides.items():
            values[name] = BY_NAME[name].cast(value, "override")
            sources[name] = "override"
        return Settings(values, sources)


def load(flags: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Resolve settings from defaults, config file, environment and *flags* (None = not given)."""
    env = os.environ if env is None else env
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    values: dict[str, Any] = {s.name: s.default for s in SETTINGS}
    sources: dict[str, str] = {s.name: "default" for s in SETTINGS}

    def apply(name: str, raw: Any, source: str) -> None:
        values[name] = BY_NAME[name].cast(raw, source)
        sources[name] = source

    # data_dir decides where the config file is, so resolve it from env and flags first.
    if BY_NAME["data_dir"].env in env:
        apply("data_dir", env[BY_NAME["data_dir"].env], "env " + BY_NAME["data_dir"].env)
    if "data_dir" in flags:
        apply("data_dir", flags["data_dir"], "flag --data-dir")

    config = Path(values["data_dir"]).expanduser() / CONFIG_FILE
    if config.is_file():
        try:
            data = tomllib.loads(config.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise SettingsError(f"{config}: not valid TOML: {exc}") from None
        for key, raw in data.items():
            if key not in BY_NAME or key == "data_dir":
                raise SettingsError(f"{config}: unknown setting {key!r}")
            apply(key, raw, f"file {config}")

    for s in SETTINGS:
        if s.name != "data_dir" and s.env in env:
            apply(s.name, env[s.env], "env " + s.env)
    for name, raw in flags.items():
        if name != "data_dir":
            if name not in BY_NAME:
                raise SettingsError(f"unknown setting {name!r}")
            apply(name, raw, "flag " + BY_NAME[name].flag)
    return Settings(values, sources)


def init_config(settings: Settings) -> dict[str, Any]:
    """What ``tansiq init`` keeps in the new node's config file, so that later commands on the
    data dir use it: every setting given as a flag or read from the file already there, and
    ``database_url`` from the environment too (the node's database must be found without it).
    Never ``data_dir`` (it locates the file) nor a secret setting."""
    keep: dict[str, Any] = {}
    for s, value, source in settings.items():
        if s.name == "data_dir" or s.secret:
            continue
        given = source.startswith(("flag ", "file "))
        if given or (s.name == "database_url" and value and source.startswith("env ")):
            keep[s.name] = value
    return keep


def write_config(data_dir: Path, values: Mapping[str, Any]) -> Path:
    """Write *values* as the data dir's config file, readable by its owner only (a database
    URL may hold a password); used by ``tansiq init``."""
    lines = []
    for name, value in values.items():
        setting = BY_NAME[name]
        if setting.type is str:
            lines.append(f"{name} = {_toml_string(str(value))}")
        elif setting.type is bool:
            lines.append(f"{name} = {'true' if value else 'false'}")
        else:
            lines.append(f"{name} = {value}")
    path = data_dir / CONFIG_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # also when the file was there already
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return path


def _toml_string(text: str) -> str:
    """*text* as a TOML basic string: JSON's escapes are TOML's, and TOML escapes DEL too."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")
