"""The signed ledger end to end: what is written verifies, in this process and another."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import sqlalchemy

from tests.conftest import trialctl
from tests.ledgers import PASSWORDS, engine_for, make_staff
from trialctl.ledger.application import open_ledger
from trialctl.ledger.entry import parse_entry
from trialctl.ledger.errors import AuthorityError
from trialctl.ledger.users import SecurityLog
from trialctl.ledger.verify import verify_ledger


def test_a_fresh_ledger_verifies_clean_in_another_process(ledger_url: str, home: object) -> None:
    staff = make_staff(ledger_url)
    staff.app.grant_role(staff.alice, "carol", "principal-investigator")
    staff.app.close()

    result = trialctl("verify", "--ledger", ledger_url, "--json")

    assert result.returncode == 0, result
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert report["entries_checked"] == 5
    assert report["findings"] == []


def test_entries_written_by_the_cli_verify_in_process(ledger_url: str, home: object) -> None:
    init = trialctl("init", "--admin", "alice", "--name", "Alice Adams", "--ledger", ledger_url,
                    "--password-stdin", stdin="alice-password\n")
    assert init.returncode == 0, init
    add = trialctl("user", "add", "bob", "--name", "Bob Brown", "--role", "monitor",
                   "--ledger", ledger_url, "-u", "alice", "--password-stdin",
                   stdin="alice-password\nbob-password\n")
    assert add.returncode == 0, add

    app = open_ledger(ledger_url)
    report = verify_ledger(app.signed_recorder, ledger_url)

    assert report.ok, report.findings
    assert report.entries_checked == 3
    assert [u.user_id for u in app.list_users()] == ["alice", "bob"]


def test_every_entry_carries_who_what_when_and_meaning(ledger_url: str, home: object) -> None:
    staff = make_staff(ledger_url)
    engine = engine_for(ledger_url)
    with engine.connect() as connection:
        states = [bytes(r[0]) for r in connection.execute(
            sqlalchemy.text("SELECT state FROM trialctl_events ORDER BY id"))]

    statement = parse_entry(states[2]).statement  # carol's registration, signed by alice

    assert statement["type"] == "trialctl.User.Registered"
    assert statement["actor"]["user_id"] == "alice"
    assert statement["actor"]["name"] == "Alice Adams"
    assert statement["actor"]["role"] == "admin"
    assert statement["actor"]["key_id"] == staff.alice.keys.key_id
    assert statement["meaning"] == "approved"
    assert statement["position"] == 2
    assert statement["aggregate_version"] == 1 and statement["prev_hash"] is None
    recorded = datetime.fromisoformat(statement["recorded_at"])
    assert recorded.utcoffset() is not None and recorded.utcoffset().total_seconds() == 0
    assert abs((datetime.now(UTC) - recorded).total_seconds()) < 600


def test_a_monitor_attempting_an_admin_action_is_refused_and_the_refusal_recorded(
    ledger_url: str, home: object
) -> None:
    staff = make_staff(ledger_url)
    before = staff.app.signed_recorder.tree_size()

    with pytest.raises(AuthorityError, match="bob's roles \\(monitor\\)"):
        staff.app.grant_role(staff.bob, "bob", "admin")

    app = staff.reopen()
    assert app.get_user("bob").roles == ["monitor"]  # nothing in the record changed
    log: SecurityLog = app.repository.get(SecurityLog.create_id("bob"))
    assert log.refusals == 1
    refusal = parse_entry(app.signed_recorder.entry_at(before + 1)[1].state).statement
    assert refusal["type"] == "trialctl.SecurityLog.AttemptRefused"
    assert refusal["actor"]["user_id"] == "bob"
    assert refusal["payload"]["action"] == "trialctl.User.RoleGranted"
    assert "admin" not in json.dumps(refusal["payload"]["reason"]).split("monitor")[0]
    assert verify_ledger(app.signed_recorder, ledger_url).ok


def test_a_monitor_is_refused_at_the_cli_with_one_line(ledger_url: str, home: object) -> None:
    make_staff(ledger_url).app.close()

    result = trialctl("user", "grant-role", "bob", "admin", "--ledger", ledger_url, "-u", "bob",
                      "--password-stdin", stdin=PASSWORDS["bob"] + "\n")

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "trialctl: refused: none of bob's roles (monitor) may record trialctl.User.RoleGranted"
    ]


def test_a_revoked_user_can_no_longer_sign(ledger_url: str, home: object) -> None:
    staff = make_staff(ledger_url)
    staff.app.revoke_user(staff.alice, "bob", "left the site")

    with pytest.raises(AuthorityError, match="deactivated"):
        staff.app.unlock("bob", PASSWORDS["bob"])
    assert verify_ledger(staff.app.signed_recorder, ledger_url).ok


def test_rotated_keys_keep_old_signatures_valid(ledger_url: str, home: object) -> None:
    staff = make_staff(ledger_url)
    staff.app.rotate_key(staff.alice, "carol", "carol-new-password")
    carol = staff.app.unlock("carol", "carol-new-password")
    staff.app.checkpoint(carol, datetime.now(UTC))

    assert verify_ledger(staff.app.signed_recorder, ledger_url).ok
    with pytest.raises(AuthorityError):
        staff.app.checkpoint(staff.carol, datetime.now(UTC))  # the old key


def test_update_and_delete_are_refused_by_the_database(ledger_url: str, home: object) -> None:
    make_staff(ledger_url).app.close()
    engine = engine_for(ledger_url)

    for statement in (
        "UPDATE trialctl_events SET topic = 'x'",
        "DELETE FROM trialctl_events",
        "UPDATE trialctl_leaves SET position = position + 1",
        "DELETE FROM trialctl_leaves",
    ):
        with pytest.raises(sqlalchemy.exc.DatabaseError, match="append-only"), \
                engine.begin() as connection:
            connection.execute(sqlalchemy.text(statement))
    assert verify_ledger(open_ledger(ledger_url).signed_recorder, ledger_url).ok


def test_a_batch_is_authorised_entry_by_entry_as_verify_checks_it(
    ledger_url: str, home: object
) -> None:
    staff = make_staff(ledger_url)
    alice = staff.app.get_user("alice")
    alice.revoke_role("admin")  # alice gives up admin first ...
    bob = staff.app.get_user("bob")
    bob.revoke_key(key_id=bob.key_id, reason="left")  # ... then acts as admin in the same batch
    before = staff.app.signed_recorder.tree_size()

    with pytest.raises(AuthorityError, match="alice does not hold the role 'admin'"):
        staff.app.record(staff.alice, alice, bob)

    app = staff.reopen()
    assert app.get_user("alice").roles == ["admin"] and app.get_user("bob").active
    assert app.signed_recorder.tree_size() == before + 2  # only the signed refusal was added
    assert verify_ledger(app.signed_recorder, ledger_url).ok


def test_the_last_active_admin_cannot_be_removed(ledger_url: str, home: object) -> None:
    staff = make_staff(ledger_url)
    before = staff.app.signed_recorder.tree_size()

    with pytest.raises(AuthorityError, match="last active admin"):
        staff.app.revoke_role(staff.alice, "alice", "admin")
    with pytest.raises(AuthorityError, match="last active admin"):
        staff.app.revoke_user(staff.alice, "alice", "leaving")

    # Only the two signed refusals (and the security log they open) were written.
    assert staff.app.signed_recorder.tree_size() == before + 3
    staff.app.grant_role(staff.alice, "carol", "admin")
    staff.app.revoke_role(staff.alice, "alice", "admin")  # now another admin remains
    assert staff.reopen().get_user("alice").roles == []
