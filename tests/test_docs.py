"""Docs that are checked against the code."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from tansiq.cli import main
from tansiq.docs_gen import settings_markdown

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


def test_every_source_folder_is_a_package() -> None:
    """Wheels built with setuptools' package discovery leave out folders without __init__.py."""
    for folder in (ROOT / "tansiq").rglob("*"):
        if folder.is_dir() and any(folder.glob("*.py")):
            assert (folder / "__init__.py").exists(), folder
