"""Docs that are checked against the code."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tansiq.cli import main
from tansiq.docs_gen import settings_markdown
from tansiq.node import Node

ROOT = Path(__file__).resolve().parents[1]


def test_settings_page_matches_code() -> None:
    assert (ROOT / "docs" / "settings.md").read_text() == settings_markdown(), (
        "regenerate: python -m tansiq.docs_gen > docs/settings.md"
    )


def test_readme_commands_exist() -> None:
    readme = (ROOT / "README.md").read_text()
    first_screen = "\n".join(readme.splitlines()[:30])
    assert "scripts/demo" in first_screen and "scripts/test" in first_screen
    assert (ROOT / "scripts" / "demo").exists() and (ROOT / "scripts" / "test").exists()
    assert "scripts/test" in (ROOT / ".ci" / "run").read_text()
    # every `tansiq <command>` the README mentions is a real command
    commands = set(main.commands)
    for name in re.findall(r"`tansiq ([a-z]+)", readme):
        assert name in commands, name
        assert CliRunner().invoke(main, [name, "--help"]).exit_code == 0


def test_readme_names_every_ingest_option() -> None:
    """The README's row for `tansiq ingest` names each option of its own (settings aside)."""
    import click

    from tansiq.settings import SETTINGS

    readme = (ROOT / "README.md").read_text()
    row = next(x for x in readme.splitlines() if x.startswith("| `tansiq ingest`"))
    settings = {s.flag for s in SETTINGS}
    own = [
        p.opts[0]
        for p in main.commands["ingest"].params
        if isinstance(p, click.Option) and p.opts[0] not in settings
    ]
    assert "--workers" in own
    assert [o for o in own if f"`{o}`" not in row] == []


def test_every_source_folder_is_a_package() -> None:
    """Wheels built with setuptools' package discovery leave out folders without __init__.py."""
    for folder in (ROOT / "tansiq").rglob("*"):
        if folder.is_dir() and any(folder.glob("*.py")):
            assert (folder / "__init__.py").exists(), folder


def _routes(routes: list[Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    """(method, path) of every route, through included routers (wrapped in newer FastAPI)."""
    for r in routes:
        inner = getattr(r, "original_router", None)
        if inner is not None:
            context = getattr(r, "include_context", None)
            yield from _routes(inner.routes, prefix + (getattr(context, "prefix", "") or ""))
            continue
        path = prefix + r.path
        for method in getattr(r, "methods", None) or ["*"]:
            yield method, path


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_readme_names_every_route(node: Node) -> None:
    """Each route of the app is in README's API section as `METHOD /path` (a mount as
    `/path/…`); HEAD beside GET and the TAXII catch-all for unknown paths aside."""
    from tansiq.api.app import create_app

    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## REST API") : readme.index("## Layout")]
    named = {re.sub(r"\{[^}]*\}", "{}", m) for m in re.findall(r"`([A-Z]+ /[^`?]*)", section)}
    missing = []
    routes = list(_routes(create_app(node.settings, node).routes))
    assert ("GET", "/api/node") in routes and len(routes) > 40  # the walk reached them all
    for method, path in routes:
        if method == "HEAD" or path.endswith("{rest:path}"):
            continue
        if method == "*":  # a mount (the docs page's files)
            if f"`{path}/…`" not in section:
                missing.append(path)
            continue
        if f"{method} {re.sub(r'{[^}]*}', '{}', path)}" not in named:
            missing.append(f"{method} {path}")
    assert missing == [], "add to README's API section: " + ", ".join(missing)


def _leaf_commands(group: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            yield from _leaf_commands(command, f"{prefix}{name} ")
        else:
            yield prefix + name, command


def test_readme_names_the_commands_without_settings_flags() -> None:
    """README: every command takes the setting `--data-dir` (and the flags of the other
    settings it reads), but those it names as the exception (`tansiq demo`, whose own
    `--data-dir` means something else)."""
    from tansiq.settings import BY_NAME

    readme = (ROOT / "README.md").read_text()
    sentence = readme[readme.index("Every command but") :].split("takes `--data-dir`")[0]
    excepted = set(re.findall(r"`tansiq ([a-z ]+)`", sentence))
    setting = BY_NAME["data_dir"].help
    without = set()
    for name, command in _leaf_commands(main):
        if not any(p.name == "data_dir" and p.help == setting for p in command.params):
            without.add(name)
    assert without == excepted, f"README's 'Every command but ...' should name {without}"
    demo = {p.name: p.default for p in main.commands["demo"].params}
    assert demo["base_port"] == 8400 and "(default 8400)" in readme


TAXII_LIST_PARAMETERS = (
    "added_after",
    "limit",
    "next",
    "match[id]",
    "match[type]",
    "match[version]",
    "match[spec_version]",
)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_openapi_gives_each_taxii_operation_the_query_parameters_it_reads(
    node: Node, admin_token: str
) -> None:
    """/openapi.json (and so /docs) lists the query parameters each TAXII operation reads, and
    no other: a documented one given twice is a 400 naming it (TAXII allows each once), an
    undocumented one is ignored, or on DELETE refused (400) with nothing deleted.  The objects
    list takes them all, as README says."""
    from fastapi.testclient import TestClient
    from test_store import indicator

    from tansiq.api.app import create_app

    obj = indicator(1)
    node.ingest([obj])
    headers = {
        "Authorization": f"Bearer {admin_token}",
        "Accept": "application/taxii+json;version=2.1",
    }
    with TestClient(create_app(node.settings, node), headers=headers) as c:
        paths = c.get("/openapi.json").json()["paths"]
        documented: dict[tuple[str, str], list[str]] = {}
        for path, ops in paths.items():
            for method, op in ops.items():
                if path.startswith("/taxii2/") and method in ("get", "delete"):
                    names = [p["name"] for p in op.get("parameters", []) if p["in"] == "query"]
                    documented[(method, path)] = names
        objects = "/taxii2/api/collections/{collection_id}/objects/"
        assert sorted(documented[("get", objects)]) == sorted(TAXII_LIST_PARAMETERS)
        for (method, template), names in documented.items():
            url = template.replace("{collection_id}", "shared").replace("{object_id}", obj["id"])
            url = url.replace("{status_id}", "00000000-0000-4000-8000-000000000000")
            baseline = c.request(method, url).status_code if method == "get" else 200
            for name in TAXII_LIST_PARAMETERS:
                r = c.request(method, url, params=[(name, "x"), (name, "x")])
                said = r.json()["description"] if r.status_code == 400 else ""
                if name in names:
                    assert r.status_code == 400 and f"{name}: given 2 times" in said, (url, name)
                elif method == "delete":
                    assert r.status_code == 400 and "not a parameter of DELETE" in said, name
                else:
                    assert r.status_code == baseline, (method, url, name, r.text)
        versions = c.get(f"/taxii2/api/collections/shared/objects/{obj['id']}/versions/")
        assert versions.json()["versions"] == [obj["modified"]]  # DELETE deleted nothing


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_openapi_gives_the_shape_of_the_object_routes_answers(node: Node, admin_token: str) -> None:
    """GET /api/objects answers {"objects", "next"}; GET /api/objects/{id} a STIX object, or
    with versions=all (limit, cursor) a page {"versions", "next"}: real answers match the
    schemas /openapi.json gives, and the other shape does not."""
    import jsonschema
    from fastapi.testclient import TestClient
    from test_store import indicator

    from tansiq.api.app import create_app

    first, second = indicator(1), indicator(1, "2015-02-21T10:00:00.000Z")
    node.ingest([first, second, indicator(2)])
    headers = {"Authorization": f"Bearer {admin_token}"}
    with TestClient(create_app(node.settings, node), headers=headers) as c:
        doc = c.get("/openapi.json").json()

        def schema(path: str) -> dict[str, Any]:
            op = doc["paths"][path]["get"]
            body = op["responses"]["200"]["content"]["application/json"]["schema"]
            return {**body, "components": doc["components"]}

        def valid(path: str, answer: Any) -> bool:
            return jsonschema.Draft202012Validator(schema(path)).is_valid(answer)

        listed = c.get("/api/objects", params={"limit": 1}).json()
        assert listed["next"] and valid("/api/objects", listed)
        assert not valid("/api/objects", first)
        one = "/api/objects/{object_id}"
        latest = c.get(f"/api/objects/{first['id']}").json()
        assert latest["modified"] == second["modified"] and valid(one, latest)
        params = {"versions": "all", "limit": 1}
        page = c.get(f"/api/objects/{first['id']}", params=params).json()
        assert page["versions"][0]["modified"] == first["modified"] and valid(one, page)
        rest = c.get(f"/api/objects/{first['id']}", params={**params, "cursor": page["next"]})
        assert rest.json()["versions"][0]["modified"] == second["modified"]
        assert valid(one, rest.json()) and not valid(one, {"versions": []})
        names = {p["name"] for p in doc["paths"][one]["get"]["parameters"]}
        assert names == {"object_id", "versions", "limit", "cursor"}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_readme_names_the_query_parameters_of_each_taxii_route(node: Node) -> None:
    """README's TAXII list names, for each route, the query parameters /openapi.json gives it
    (`match[…]` standing for every match[...])."""
    from fastapi.testclient import TestClient

    from tansiq.api.app import create_app

    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("TAXII 2.1 (Basic") : readme.index("## Layout")]
    with TestClient(create_app(node.settings, node)) as c:
        paths = c.get("/openapi.json").json()["paths"]
    for bullet in re.split(r"\n- ", section)[1:]:
        route = re.match(r"`([A-Z]+) (/[^`]*)`", bullet)
        assert route is not None, bullet
        method, path = route.groups()
        path = path.replace("{id}", "{collection_id}")
        op = paths[path][method.lower()]
        documented = {p["name"] for p in op.get("parameters", []) if p["in"] == "query"}
        named = set(re.findall(r"`(added_after|limit|next|match\[[a-z_…]+\])`", bullet))
        if "match[…]" in named:
            named = (named - {"match[…]"}) | {n for n in TAXII_LIST_PARAMETERS if "[" in n}
        assert named == documented, (method, path, sorted(named), sorted(documented))


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_openapi_description_says_how_the_docs_page_authenticates(node: Node) -> None:
    """/docs has no place for a token: its "Try it out" sends the browser's session, which the
    REST routes take and TAXII does not.  The description at the top of the page says so."""
    from fastapi.testclient import TestClient
    from test_auth import login

    from tansiq.api.app import create_app

    with TestClient(create_app(node.settings, node), base_url="http://127.0.0.1") as c:
        info = c.get("/openapi.json").json()["info"]["description"]
        assert "/login" in info and "/taxii2/" in info and "TAXII takes no web session" in info
        assert login(c, "admin", "admin-password-1").status_code == 200
        assert c.get("/api/session").json()["via"] == "session"
        taxii = {"Accept": "application/taxii+json;version=2.1"}
        assert c.get("/taxii2/", headers=taxii).status_code == 401


def test_readme_names_settings_that_exist() -> None:
    """Each `snake_case` name README gives is a setting (docs/settings.md), or one of the few
    STIX and TAXII property names it mentions."""
    from tansiq.settings import BY_NAME

    others = {"added_after", "date_added", "object_marking_refs"}
    named = set(re.findall(r"`([a-z]+(?:_[a-z]+)+)`", (ROOT / "README.md").read_text()))
    assert named - others <= set(BY_NAME), sorted(named - others - set(BY_NAME))


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_readme_names_the_query_parameters_of_each_rest_route(node: Node) -> None:
    """README's REST list gives each /api route's query parameters (`?a=&b=`), as /openapi.json
    does: e.g. `versions`, `limit` and `cursor` of GET /api/objects/{id}."""
    from fastapi.testclient import TestClient

    from tansiq.api.app import create_app

    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## REST API") : readme.index("Errors are")]
    with TestClient(create_app(node.settings, node)) as c:
        paths = c.get("/openapi.json").json()["paths"]
    checked = 0
    for bullet in re.split(r"\n- ", section)[1:]:
        route = re.match(r"`([A-Z]+) (/[^`?]*)", bullet)
        assert route is not None, bullet
        method, path = route.groups()
        if not path.startswith("/api/"):
            continue
        path = path.replace("{id}", "{object_id}")
        op = paths[path][method.lower()]
        documented = {p["name"] for p in op.get("parameters", []) if p["in"] == "query"}
        named = {
            pair.split("=")[0]
            for query in re.findall(r"`[^`]*\?([^`]+)`", bullet)
            for pair in query.split("&")
        }
        assert named == documented, (method, path, sorted(named), sorted(documented))
        checked += 1
    assert checked >= 10


def _options(command: Any) -> set[str]:
    """Every option of *command*, and of its subcommands when it is a group."""
    import click

    found = {o for p in command.params if isinstance(p, click.Option) for o in p.opts}
    for sub in getattr(command, "commands", {}).values():
        found |= _options(sub)
    return found


def _flags_not_on_their_command(text: str) -> list[str]:
    """Each `--flag` of a `[tansiq] COMMAND ... --flag ...` snippet of *text* that COMMAND
    (as far as its words name subcommands) does not take, and each other `--flag` that no
    command takes."""
    every, wrong = _options(main), []
    text = re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)  # code blocks
    for snippet in re.findall(r"`([^`]+)`", text):
        words = snippet.split()
        words = words[1:] if words[:1] == ["tansiq"] else words
        command: Any = main if words[:1] and words[0] in main.commands else None
        for word in words:
            if command is None or word not in getattr(command, "commands", {}):
                break
            command = command.commands[word]
        known = every if command is None else _options(command)
        flags = re.findall(r"(?<![\w-])--[a-z][a-z-]*", snippet)
        wrong += [f"{f} in `{snippet}`" for f in flags if f not in known]
    return wrong


def test_every_flag_the_docs_and_help_show_is_an_option_of_that_command() -> None:
    """`tansiq sync --partner CODE`, `init --admin-password -`, a row of README's table of
    commands (`| `tansiq sync` | ... `--from-start` ...`): each flag is the command's; and so
    in each command's --help."""
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    wrong = {str(p.relative_to(ROOT)): _flags_not_on_their_command(p.read_text()) for p in docs}
    for line in (ROOT / "README.md").read_text().splitlines():
        row = re.match(r"\| `tansiq ([a-z]+)` \|(.*)", line)
        if row:
            flags = re.findall(r"`(--[a-z][a-z-]*)", row.group(2))
            name = row.group(1)
            wrong[f"README row {name}"] = sorted(set(flags) - _options(main.commands[name]))
    for name, command in _leaf_commands(main):
        said = " ".join(
            [command.help or "", *(getattr(p, "help", "") or "" for p in command.params)]
        )
        wrong[f"tansiq {name} --help"] = _flags_not_on_their_command(said)
    assert {k: v for k, v in wrong.items() if v} == {}


def test_readme_table_of_commands_names_every_command_and_subcommand() -> None:
    """Each command has a row in README's table of commands, and a group's row names each of
    its subcommands (`tansiq partner`: `invite` / `add` / ... / `list`)."""
    rows = {
        m.group(1): m.group(2)
        for m in re.finditer(
            r"^\| `tansiq ([a-z]+)` \|(.*)$", (ROOT / "README.md").read_text(), re.M
        )
    }
    assert set(rows) == set(main.commands), sorted(set(main.commands) ^ set(rows))
    unnamed = {
        name: sorted(set(command.commands) - set(re.findall(r"`([a-z]+)`", rows[name])))
        for name, command in main.commands.items()
        if hasattr(command, "commands")
    }
    assert {k: v for k, v in unnamed.items() if v} == {}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_every_route_the_docs_name_exists(node: Node) -> None:
    """Each `METHOD /path` of README and docs/*.md is a route of the app (the other way
    round: test_readme_names_every_route)."""
    from tansiq.api.app import create_app

    def shape(path: str) -> str:
        return re.sub(r"\{[^}]*\}", "{}", path)

    routes = {(m, shape(p)) for m, p in _routes(create_app(node.settings, node).routes)}
    named = {
        (method, shape(path), doc.name)
        for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
        for method, path in re.findall(r"`(GET|POST|PUT|DELETE|PATCH) (/[^`?]*)", doc.read_text())
    }
    assert len(named) > 30
    assert sorted(n for n in named if n[:2] not in routes) == []
