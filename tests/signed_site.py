"""A site's signed ledger driven through `trialctl` as real processes: an admin (alice), a
principal investigator (pat), an investigator (ivan) and, where asked, a monitor (mona), each
signing with their password on standard input, as a script would."""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import Result, trialctl

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
        return len(self.run("log", "--json").stdout.splitlines())


def staff_ledger(url: str, monitor: bool = False) -> None:
    """A new ledger at `url` with alice as admin and the investigators (and mona) added."""
    result = trialctl("init", "--admin", "alice", "--name", "Alice Adams", "--ledger", url,
                      "--password-stdin", stdin=PASSWORDS["alice"] + "\n")
    assert result.returncode == 0, result
    for user, name, role in (*INVESTIGATORS, *((MONITOR,) if monitor else ())):
        added = trialctl("user", "add", user, "--name", name, "--role", role, "--ledger", url,
                         "-u", "alice", "--password-stdin",
                         stdin=f"{PASSWORDS['alice']}\n{PASSWORDS[user]}\n")
        assert added.returncode == 0, added
