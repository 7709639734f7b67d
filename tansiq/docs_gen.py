"""Generate docs/settings.md from the settings table (checked by tests/test_docs.py)."""

from __future__ import annotations

from tansiq.settings import EVERY_SETTING, SETTINGS, STORE, Setting


def settings_markdown() -> str:
    lines = [
        "# Settings",
        "",
        "Generated from `tansiq/settings.py` by `python -m tansiq.docs_gen > docs/settings.md`;",
        "a test fails when this page and the code disagree.",
        "",
        "Each setting is read, later wins, from: its default → `DATA_DIR/tansiq.toml` →",
        "the environment variable → the command-line flag. `tansiq settings` shows each value",
        "and where it came from.",
        "",
        "The file and the environment apply to every command but `tansiq demo`, whose nodes",
        "read no settings (its own options: `--data-dir`, `--base-port`). A command takes as",
        "flags only",
        "the settings it reads (column *commands*), and "
        + " and ".join(f"`tansiq {c}`" for c in EVERY_SETTING),
        "take every one (`init` keeps those given in the new node's `tansiq.toml`); a setting's",
        "flag given to another command is a usage error (exit 2).",
        "",
        "| setting | flag | environment | default | commands | meaning |",
        "|---|---|---|---|---|---|",
    ]
    for s in SETTINGS:
        default = "(empty)" if s.default == "" else f"`{s.default}`"
        lines.append(
            f"| `{s.name}` | `{s.flag}` | `{s.env}` | {default} | {_commands(s)} | {s.help} |"
        )
    return "\n".join(lines) + "\n"


def _commands(s: Setting) -> str:
    if s.commands == STORE:
        return "all but `demo`"
    return ", ".join(f"`{c}`" for c in s.commands)


if __name__ == "__main__":
    print(settings_markdown(), end="")
