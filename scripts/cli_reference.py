"""Write docs/CLI.md from the `trialctl` commands themselves, so the reference cannot drift
from `--help` (tests/test_cli_reference.py fails when the file is out of date).

    python scripts/cli_reference.py          # rewrite docs/CLI.md
    python scripts/cli_reference.py --check  # exit 1 if docs/CLI.md is out of date
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path
from typing import Any

import typer

from trialctl.cli.main import app

REFERENCE = Path(__file__).resolve().parent.parent / "docs" / "CLI.md"


def _option_line(param: Any) -> str:
    names = ", ".join(f"`{name}`" for name in (*param.opts, *param.secondary_opts))
    help_text = getattr(param, "help", None) or ""
    if param.param_type_name == "argument":
        return f"- argument {names.strip('`').upper()}: {help_text}".rstrip()
    return f"- {names}: {help_text}".rstrip()


def _command_section(path: str, command: Any) -> list[str]:
    lines = [f"## `{path}`", ""]
    if command.help:
        # "\b" only tells click not to rewrap the paragraph that follows (the example).
        text = inspect.cleandoc(command.help).replace("\b\n", "")
        lines += [text, ""]
    params = [p for p in command.params if p.name != "help"]
    lines += [_option_line(p) for p in params]
    return [*lines, ""]


def _walk(path: str, command: Any) -> list[str]:
    if hasattr(command, "commands"):  # a group
        # A group whose callback takes options (`packet --cohort N -o FILE`) is a command
        # too. The root's own options (--version, shell completion) are only `--help`'s.
        own = [p for p in command.params if p.name != "help"] if " " in path else []
        lines: list[str] = _command_section(path, command) if own else []
        for name in sorted(command.commands):
            lines += _walk(f"{path} {name}", command.commands[name])
        return lines
    return _command_section(path, command)


def render() -> str:
    root = typer.main.get_command(app)
    header = [
        "# trialctl command reference",
        "",
        "Generated from the commands by `python scripts/cli_reference.py`; do not edit.",
        "",
    ]
    return "\n".join([*header, *_walk("trialctl", root)]).rstrip() + "\n"


def main() -> int:
    text = render()
    if "--check" in sys.argv:
        current = REFERENCE.read_text(encoding="utf-8") if REFERENCE.exists() else ""
        if current != text:
            print("docs/CLI.md is out of date: run python scripts/cli_reference.py")
            return 1
        return 0
    REFERENCE.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
