"""The command reference is generated from the commands: it cannot drift from `--help`."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from tests.conftest import trialctl

ROOT = Path(__file__).resolve().parent.parent


def test_docs_cli_md_is_current() -> None:
    spec = importlib.util.spec_from_file_location("cli_reference",
                                                  ROOT / "scripts" / "cli_reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (ROOT / "docs" / "CLI.md").read_text(encoding="utf-8") == module.render(), (
        "docs/CLI.md is out of date: run python scripts/cli_reference.py"
    )


def test_every_command_documents_a_worked_example() -> None:
    text = (ROOT / "docs" / "CLI.md").read_text(encoding="utf-8")
    sections = text.split("\n## ")[1:]
    missing = [s.splitlines()[0] for s in sections if "Example: trialctl" not in s]
    assert missing == []


def test_help_runs_for_every_command() -> None:
    text = (ROOT / "docs" / "CLI.md").read_text(encoding="utf-8")
    for heading in [line for line in text.splitlines() if line.startswith("## `trialctl")]:
        words = heading.strip("#` ").split()[1:]
        result = trialctl(*words, "--help")
        assert result.returncode == 0, (words, result.stderr)
        assert "Traceback" not in result.stderr
    assert trialctl("--help").returncode == 0
