"""Signed-in sessions (`trialctl session`, ledger/session_agent.py) as a user runs them:
an agent started with the password signs `record` commands with one private component,
ends at its time-outs or when its user's authority goes, refuses other users' processes
and leaves no key on disk."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Result, assert_one_line_error, trialctl
from tests.ledgers import engine_for
from tests.nct_site import NCT
from tests.signed_site import PASSWORDS, SignedSite, staff_ledger
from tests.trial_helpers import day
from trialctl.ledger.keys import open_key_file
from trialctl.ledger.location import trialctl_home
from trialctl.ledger.lockout import queue_table
from trialctl.ledger.users import SecurityLog

NOBODY = 65534
PIN = "ivan-session-pin"


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in ("Z", "X")


class Sessions:
    """Agents started by one test; any still running at its end are stopped."""

    def __init__(self, site: SignedSite) -> None:
        self.site = site
        self.pids: list[int] = []

    def start(self, user: str, *flags: str, pin: str | None = None) -> dict[str, Any]:
        stdin = PASSWORDS[user] + "\n" + (f"{pin}\n" if pin else "")
        result = trialctl("session", "start", *flags, *(["--pin"] if pin else []), "--json",
                          "--ledger", self.site.url, "-u", user, "--password-stdin",
                          stdin=stdin)
        assert result.returncode == 0, result
        started: dict[str, Any] = json.loads(result.stdout)
        self.pids.append(started["pid"])
        return started

    def record(self, user: str, component: str, *args: str) -> Result:
        return trialctl("record", *args, "--ledger", self.site.url, "-u", user,
                        "--password-stdin", "--json", stdin=component + "\n")

    def wait_ended(self, pid: int, within: float = 60.0) -> None:
        deadline = time.monotonic() + within
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(pid), f"agent {pid} still running"

    def stop_all(self) -> None:
        for pid in self.pids:
            if _alive(pid):
                os.kill(pid, signal.SIGTERM)
                self.wait_ended(pid, 5.0)


@pytest.fixture
def sessions(ledger_url: str, home: Path, tmp_path: Path,
             monkeypatch: pytest.MonkeyPatch) -> Iterator[Sessions]:
    """A site with a registered trial; agents' sockets under the test's own runtime dir."""
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    staff_ledger(ledger_url, monitor=True)
    site = SignedSite(ledger_url)
    site.run("trial", "register", str(NCT), user="pat")
    started = Sessions(site)
    try:
        yield started
    finally:
        started.stop_all()


def _consent(patient: str) -> tuple[str, ...]:
    return ("consent", patient, "--consent-version", "1.0", "--date", day(0))


def _session_events(url: str, user: str) -> list[dict[str, Any]]:
    lines = trialctl("log", "--json", "--ledger", url).stdout.splitlines()
    return [e for e in map(json.loads, lines) if e["type"].startswith("trialctl.SecurityLog.")
            and e["type"] != SecurityLog.AttemptRefused.TOPIC and e["user_id"] == user]


def _queued(url: str, user: str) -> list[str]:
    engine = engine_for(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(queue_table.select().where(queue_table.c.user_id == user))
            return [f"{r.action}: {r.reason}" for r in rows]
    finally:
        engine.dispose()


def test_a_session_signs_with_its_component_until_the_key_is_revoked(
        sessions: Sessions, tmp_path: Path) -> None:
    started = sessions.start("mona", "--idle", "10m", "--max", "20m")
    assert started["component"] == "password"
    status = json.loads(trialctl("session", "status", "-u", "mona", "--json").stdout)
    assert status["dumpable"] is False and status["signings"] == 0

    recorded = sessions.record("mona", PASSWORDS["mona"], *_consent("P001"))
    assert recorded.returncode == 0, recorded
    entries = json.loads(recorded.stdout)["entries"]
    assert {e["actor"]["user_id"] for e in entries} == {"mona"}
    assert any(e["type"].endswith("ConsentSigned") for e in entries)

    wrong = sessions.record("mona", "not-the-password", *_consent("P002"))
    assert_one_line_error(wrong, "wrong password for mona", "1 of 5")
    assert SignedSite(sessions.site.url).entries() == entries[-1]["position"] + 1

    # The key is in the agent's memory only: no file anywhere holds it in any spelling.
    user = [u for u in json.loads(trialctl("user", "list", "--json", "--ledger",
                                           sessions.site.url).stdout) if u["user_id"] == "mona"]
    keys = open_key_file(trialctl_home() / "keys" / "mona" / f"{user[0]['key_id']}.json",
                         PASSWORDS["mona"])
    secret = keys.private_key.private_bytes_raw()
    spellings = (secret, secret.hex().encode(), base64.b64encode(secret))
    for path in [*tmp_path.rglob("*"), *Path("/tmp").glob("trialctl-*")]:
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            assert not any(s in data for s in spellings), path

    sessions.site.run("user", "revoke", "mona", "--reason", "left the site", user="alice")
    after = sessions.record("mona", PASSWORDS["mona"], *_consent("P003"))
    assert_one_line_error(after, "deactivated", "the session has ended")
    sessions.wait_ended(started["pid"])
    kinds = [(e["type"], e["meaning"]) for e in _session_events(sessions.site.url, "mona")]
    assert (SecurityLog.SessionStarted.TOPIC, "authored") in kinds
    # A revoked user can sign nothing: the end waits, queued, for an admin's unlock.
    assert any(q.startswith("session ended: ") and "(authority)" in q
               for q in _queued(sessions.site.url, "mona"))
    assert trialctl("session", "status", "-u", "mona").returncode == 1


def test_idle_and_absolute_time_outs_end_the_session_and_are_signed(
        sessions: Sessions) -> None:
    idle = sessions.start("ivan", "--idle", "2s", "--max", "60s", pin=PIN)
    sessions.wait_ended(idle["pid"])
    # The signing resets the idle clock past the absolute end, so --max ends it.
    longest = sessions.start("ivan", "--idle", "20s", "--max", "21s", pin=PIN)
    assert longest["component"] == "pin"
    time.sleep(2)  # so that idling from the signing below would end after --max
    # The password is not the session's component: refused as a wrong PIN, and counted.
    refused = sessions.record("ivan", PASSWORDS["ivan"], *_consent("P001"))
    assert_one_line_error(refused, "wrong pin for ivan", "1 of 5")
    recorded = sessions.record("ivan", PIN, *_consent("P001"))
    assert recorded.returncode == 0, recorded
    sessions.wait_ended(longest["pid"])
    ended = [e for e in _session_events(sessions.site.url, "ivan")
             if e["type"] == SecurityLog.SessionEnded.TOPIC]
    assert [e["position"] for e in ended] == sorted(e["position"] for e in ended)
    assert [("reason=idle" in e["what"], "signings=0" in e["what"]) for e in ended] == \
        [(True, True), (False, False)]
    assert "reason=max" in ended[1]["what"] and "signings=1" in ended[1]["what"]


def test_the_socket_refuses_another_users_process(sessions: Sessions, tmp_path: Path) -> None:
    if os.getuid() != 0:
        pytest.skip("needs root to run a process as another uid")
    started = sessions.start("mona", "--idle", "10m", "--max", "20m")
    path = Path(started["socket"])
    assert path.parent.stat().st_mode & 0o777 == 0o700 and path.stat().st_mode & 0o777 == 0o600
    # Opened up by hand, so only SO_PEERCRED stands between nobody and the key.
    path.parent.chmod(0o711)
    path.chmod(0o666)
    read, write = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            os.close(read)
            # From inside the directory: the test's own 0700 parents are not in the way.
            os.chdir(path.parent)
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            client = socket.socket(socket.AF_UNIX)
            client.connect(path.name)
            client.sendall(b'{"op": "status"}\n')
            os.write(write, client.recv(4096))
        except BaseException as e:  # whatever failed, the parent shows it
            os.write(write, json.dumps({"child": repr(e)}).encode())
        finally:
            os._exit(0)
    os.close(write)
    answer = json.loads(os.read(read, 4096))
    os.waitpid(child, 0)
    assert answer == {"ok": False, "kind": "refused",
                      "error": "refused: this session belongs to another user"}
    # Nor does the owner's own client trust a directory others may open.
    assert_one_line_error(trialctl("session", "status", "-u", "mona"), "open to others")
    path.parent.chmod(0o700)
    assert any("uid 65534" in q for q in _queued(sessions.site.url, "mona"))
    stopped = trialctl("session", "stop", "-u", "mona", "--json")
    assert json.loads(stopped.stdout)["ended"] == "stop"
    sessions.wait_ended(started["pid"])


def _imported(result: Result) -> set[str]:
    """The modules a process imported, from its PYTHONPROFILEIMPORTTIME lines."""
    return {line.split("|")[-1].strip() for line in result.stderr.splitlines()
            if line.startswith("import time:")}


def test_a_record_in_a_session_is_handed_over_before_anything_heavy_loads(
        sessions: Sessions) -> None:
    sessions.start("mona", "--idle", "10m", "--max", "20m")
    timed = {"PYTHONPROFILEIMPORTTIME": "1"}
    shown = trialctl("record", *_consent("P001"), "--ledger", sessions.site.url, "-u", "mona",
                     "--password-stdin", stdin=PASSWORDS["mona"] + "\n", env=timed)
    assert shown.returncode == 0, shown
    # The same lines the command prints without a session.
    assert shown.stdout.startswith("recorded #") and "Patient.ConsentSigned (recorded by " \
        "mona as " in shown.stdout
    loaded = _imported(shown)
    assert "trialctl.cli.session_client" in loaded
    assert not loaded & {"typer", "sqlalchemy", "eventsourcing", "trialctl.domain.patient"}

    # Anything but the plain case runs the ordinary way, which says what it always says
    # (and then still signs through the session).
    usage = trialctl("record", "consent", "P002", "--ledger", sessions.site.url, "-u", "mona",
                     "--password-stdin", stdin=PASSWORDS["mona"] + "\n", env=timed)
    assert usage.returncode == 2 and "typer" in _imported(usage)
    assert "Missing option '--consent-version'" in usage.stderr
    refused = sessions.record("mona", PASSWORDS["mona"], *_consent("P001"))
    assert_one_line_error(refused, "refused")
    no_password = trialctl("record", *_consent("P002"), "--ledger", sessions.site.url,
                           "-u", "mona", "--password-stdin")
    assert_one_line_error(no_password, "standard input ended before the password for mona")
    # The agent read the client's own ledger and user: another ledger is not its own.
    elsewhere = trialctl("record", *_consent("P002"), "-u", "mona", "--password-stdin",
                         stdin=PASSWORDS["mona"] + "\n", unset=("TRIALCTL_LEDGER",),
                         env={"TRIALCTL_LEDGER": sessions.site.url + "-not-this-one"
                              if "://" in sessions.site.url else
                              str(Path(sessions.site.url).with_name("other.sqlite"))})
    assert elsewhere.returncode != 0 and "Traceback" not in elsewhere.stderr
    json_shown = sessions.record("mona", PASSWORDS["mona"], *_consent("P002"))
    assert json_shown.returncode == 0, json_shown
    assert [e["actor"]["user_id"] for e in json.loads(json_shown.stdout)["entries"]] == ["mona"]
