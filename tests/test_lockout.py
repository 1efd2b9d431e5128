"""Failed sign-ins are recorded and lock out: wrong passwords are queued as security events,
a user with TRIALCTL_LOCKOUT_AFTER (default 5) of them in a row is refused even with the
right password, and an admin's signed `user unlock` ends the lock-out, signing what was
queued. A successful sign-in signs the user's own queued failures into their security log."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import Result, assert_one_line_error, trialctl
from tests.ledgers import PASSWORDS, make_staff
from trialctl.ledger.application import open_ledger


def _checkpoint(url: str, user: str, password: str, out: Path,
                env: dict[str, str] | None = None) -> Result:
    return trialctl("checkpoint", "-o", str(out), "--ledger", url, "-u", user,
                    "--password-stdin", stdin=password + "\n", env=env)


def _log(url: str) -> list[dict[str, object]]:
    result = trialctl("log", "--json", "--ledger", url)
    assert result.returncode == 0, result
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_five_wrong_passwords_lock_until_an_admin_unlocks(
    ledger_url: str, home: Path, tmp_path: Path
) -> None:
    make_staff(ledger_url).app.close()
    for attempt in range(1, 5):
        assert_one_line_error(_checkpoint(ledger_url, "bob", "guess-123", tmp_path / "n"),
                              "wrong password for bob", f"{attempt} of 5 failed sign-ins")
    assert_one_line_error(_checkpoint(ledger_url, "bob", "guess-123", tmp_path / "n"),
                          "wrong password for bob", "bob is now locked")

    locked = _checkpoint(ledger_url, "bob", PASSWORDS["bob"], tmp_path / "n")
    assert_one_line_error(locked, "user bob is locked after 5 failed sign-ins",
                          "trialctl user unlock bob")
    assert not (tmp_path / "n").exists()

    unlock = trialctl("user", "unlock", "bob", "--ledger", ledger_url, "-u", "alice",
                      "--password-stdin", stdin=PASSWORDS["alice"] + "\n")
    assert unlock.returncode == 0, unlock
    assert "signed 6 queued security events" in unlock.stdout
    (entry,) = [e for e in _log(ledger_url) if e["type"] == "trialctl.User.Unlocked"]
    assert entry["user_id"] == "alice" and entry["meaning"] == "approved"
    assert str(entry["what"]).count("wrong password") == 5
    assert "refused: locked" in str(entry["what"])

    assert _checkpoint(ledger_url, "bob", PASSWORDS["bob"], tmp_path / "n").returncode == 0
    assert trialctl("verify", "--ledger", ledger_url).returncode == 0


def test_a_right_password_before_the_limit_signs_the_queued_failures(
    ledger_url: str, home: Path, tmp_path: Path
) -> None:
    make_staff(ledger_url).app.close()
    env = {"TRIALCTL_LOCKOUT_AFTER": "2"}
    assert_one_line_error(_checkpoint(ledger_url, "bob", "guess-123", tmp_path / "n", env),
                          "1 of 2 failed sign-ins")
    assert _checkpoint(ledger_url, "bob", PASSWORDS["bob"], tmp_path / "n", env).returncode == 0
    (refusal,) = [e for e in _log(ledger_url)
                  if e["type"] == "trialctl.SecurityLog.AttemptRefused"]
    assert refusal["user_id"] == "bob" and refusal["meaning"] == "attempted"
    assert "action=sign-in" in str(refusal["what"]) and "wrong password" in str(refusal["what"])
    # The count starts again: one more wrong password does not lock bob.
    assert_one_line_error(_checkpoint(ledger_url, "bob", "guess-123", tmp_path / "m", env),
                          "1 of 2 failed sign-ins")
    app = open_ledger(ledger_url)
    try:
        assert app.security_queue.failed_sign_ins("bob") == 1
    finally:
        app.close()


def test_unlocking_a_user_with_nothing_queued_records_that_nothing_was(
    ledger_url: str, home: Path
) -> None:
    make_staff(ledger_url).app.close()
    result = trialctl("user", "unlock", "bob", "--ledger", ledger_url, "-u", "alice",
                      "--password-stdin", "--json", stdin=PASSWORDS["alice"] + "\n")
    assert result.returncode == 0, result
    assert json.loads(result.stdout)["signed_attempts"] == 0
    (entry,) = [e for e in _log(ledger_url) if e["type"] == "trialctl.User.Unlocked"]
    assert "failed_attempts=[]" in str(entry["what"])


def test_a_bad_lockout_setting_is_one_line(ledger_url: str, home: Path, tmp_path: Path) -> None:
    make_staff(ledger_url).app.close()
    result = _checkpoint(ledger_url, "bob", PASSWORDS["bob"], tmp_path / "n",
                         {"TRIALCTL_LOCKOUT_AFTER": "many"})
    assert_one_line_error(result, "TRIALCTL_LOCKOUT_AFTER must be a whole number")
