"""Generate docs/settings.md from the settings table (checked by tests/test_docs.py)."""

from __future__ import annotations

from tansiq.settings import SETTINGS


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
        "| setting | flag | environment | default | meaning |",
        "|---|---|---|---|---|",
    ]
    for s in SETTINGS:
        default = "(empty)" if s.default == "" else f"`{s.default}`"
        lines.append(f"| `{s.name}` | `{s.flag}` | `{s.env}` | {default} | {s.help} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(settings_markdown(), end="")
