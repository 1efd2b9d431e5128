"""A kept demo ledger for the export tests, and `trialctl export …` run as a user would."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import Result, trialctl
from trialctl.ledger.demo import demo_password


@dataclass(frozen=True)
class Demo:
    """The demo's key files and ledger, and the environment that names them."""

    home: Path
    ledger: Path

    @property
    def env(self) -> dict[str, str]:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("TRIALCTL_")}
        return {**clean, "TRIALCTL_HOME": str(self.home), "TRIALCTL_LEDGER": str(self.ledger)}

    def run(self, *args: str, stdin: str = "") -> Result:
        return trialctl(*args, stdin=stdin, env=self.env)

    def signed(self, *args: str, user: str = "mona") -> Result:
        """A signing command, with the demo user's password on stdin."""
        return self.run(*args, "-u", user, "--password-stdin",
                        stdin=demo_password(user) + "\n")

    def copy(self, into: Path) -> Demo:
        into.mkdir(parents=True)
        shutil.copytree(self.home, into / "home")
        shutil.copyfile(self.ledger, into / "demo.sqlite")
        return Demo(into / "home", into / "demo.sqlite")

    def log(self, event_type: str) -> list[dict[str, Any]]:
        result = self.run("log", "--type", event_type, "--json")
        assert result.returncode == 0, result.stderr
        return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def build_demo(directory: Path) -> Demo:
    result = trialctl("demo", "--dir", str(directory), "--json",
                      env={k: v for k, v in os.environ.items() if not k.startswith("TRIALCTL_")})
    assert result.returncode == 0, result.stderr
    built = json.loads(result.stdout)
    return Demo(Path(built["home"]), Path(built["ledger"]))
