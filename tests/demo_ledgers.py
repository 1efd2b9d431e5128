"""The demo trial as a test fixture: built once per test run on SQLite and copied for each
test (it takes a while on a busy machine); built afresh on PostgreSQL."""

from __future__ import annotations

import shutil
import tempfile
from functools import cache
from pathlib import Path

from trialctl.ledger.demo import run_demo


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
