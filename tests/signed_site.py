"""A site's signed ledger driven through `trialctl` as real processes: an admin (alice), a
principal investigator (pat), an investigator (ivan) and, where asked, a monitor (mona), each
signing with their password on standard input, as a script would."""

from __future__ import annotations

import json
import shutil
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

from tests.conftest import Result, reseal_at_test_cost, trialctl
from tests.ledgers import stored_entries
from trialctl.ledger.location import keys_dir

PASSWORDS = {"alice": "alice-password", "pat": "pat-password", "ivan": "ivan-password",
             "mona": "mona-password"}
INVESTIGATORS = (("pat", "Dr Pat Park", "principal-investigator"),
                 ("ivan", "Dr Ivan Ito", "investigator"))
MONITOR = ("mona", "Mona Moss", "monitor")


class SignedSite:
    """`trialctl` against one ledger; `user` signs with their password."""

    def __init__(self, url: str) -> None:
        self.url = url

    def run(self, *args: str, user: str | None = None, check: bool = True) -> Result:
        extra = ["--ledger", self.url]
        stdin = ""
        if user is not None:
            extra += ["-u", user, "--password-stdin"]
            stdin = PASSWORDS[user] + "\n"
        result = trialctl(*args, *extra, stdin=stdin)
        if check:
            assert result.returncode == 0, (args, result)
        return result

    def record(self, *args: str, user: str = "ivan", check: bool = True) -> Result:
        return self.run("record", *args, "--json", user=user, check=check)

    def patient(self, patient: str = "P001") -> dict[str, Any]:
        shown: dict[str, Any] = json.loads(self.run("patient", patient, "--json").stdout)
        return shown

    def status(self) -> dict[str, Any]:
        shown: dict[str, Any] = json.loads(self.run("status", "--json").stdout)
        return shown

    def entries(self) -> int:
        return stored_entries(self.url)


def _build_staff_ledger(url: str, monitor: bool, env: dict[str, str] | None = None) -> None:
    result = trialctl("init", "--admin", "alice", "--name", "Alice Adams", "--ledger", url,
                      "--password-stdin", stdin=PASSWORDS["alice"] + "\n", env=env)
    assert result.returncode == 0, result
    for user, name, role in (*INVESTIGATORS, *((MONITOR,) if monitor else ())):
        added = trialctl("user", "add", user, "--name", name, "--role", role, "--ledger", url,
                         "-u", "alice", "--password-stdin",
                         stdin=f"{PASSWORDS['alice']}\n{PASSWORDS[user]}\n", env=env)
        assert added.returncode == 0, added


@cache
def _staff_on_sqlite(monitor: bool) -> Path:
    """Built once per test run by `trialctl` itself; each test gets a copy."""
    directory = Path(tempfile.mkdtemp(prefix="trialctl-staff-"))
    _build_staff_ledger(str(directory / "ledger.sqlite"), monitor,
                        {"TRIALCTL_HOME": str(directory / "home")})
    reseal_at_test_cost(directory / "home" / "keys", PASSWORDS)
    return directory


def staff_ledger(url: str, monitor: bool = False) -> None:
    """A new ledger at `url` with alice as admin and the investigators (and mona) added,
    their key files in $TRIALCTL_HOME; on SQLite a copy of one built for the whole run."""
    if url.endswith(".sqlite") and "://" not in url:
        built = _staff_on_sqlite(monitor)
        shutil.copytree(built / "home" / "keys", keys_dir(), dirs_exist_ok=True)
        shutil.copyfile(built / "ledger.sqlite", url)
        return
    _build_staff_ledger(url, monitor)
    reseal_at_test_cost(keys_dir(), PASSWORDS)
