"""The demo trial as a test fixture: built once per test run on SQLite and copied for each
test (it takes a while on a busy machine); built afresh on PostgreSQL."""

from __future__ import annotations

import shutil
import tempfile
from functools import cache
from pathlib import Path

from tests.conftest import Result, trialctl
from trialctl.ledger.demo import demo_password, run_demo


@cache
def _built_on_sqlite() -> Path:
    directory = Path(tempfile.mkdtemp(prefix="trialctl-demo-"))
    run_demo(directory)
    return directory


def demo_ledger(url: str, tmp_path: Path) -> Path:
    """The demo trial at `url`; returns the directory holding its users' `home`."""
    target = tmp_path / "demo"
    if url.endswith(".sqlite"):
        built = _built_on_sqlite()
        shutil.copytree(built / "home", target / "home")
        shutil.copyfile(built / "demo.sqlite", url)
    else:
        run_demo(target, ledger=url)
    return target


def demo_environment(url: str, tmp_path: Path) -> dict[str, str]:
    """The environment a demo user works in: the demo's key files and its ledger."""
    return {"TRIALCTL_HOME": str(demo_ledger(url, tmp_path) / "home"), "TRIALCTL_LEDGER": url}


def signed(env: dict[str, str], user: str, *args: str) -> Result:
    """`trialctl ARGS` signed by a demo user, their password on standard input."""
    return trialctl(*args, "-u", user, "--password-stdin", stdin=demo_password(user) + "\n",
                    env=env)
