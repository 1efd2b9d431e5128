"""Authority at write time rests on signed, verified user entries only. Someone with write
access to the database who edits a user's stored row (their own, to make themselves admin)
is refused at the next write with one line naming the tampered record, and nothing is
written."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy

from tests.conftest import assert_one_line_error, trialctl
from tests.ledgers import (
    PASSWORDS,
    Staff,
    drop_append_only_triggers,
    engine_for,
    make_staff,
    rows,
    sql,
)
from trialctl.ledger.application import open_ledger
from trialctl.ledger.entry import parse_entry, seal
from trialctl.ledger.merkle import hash_leaf
from trialctl.ledger.verified_users import TamperedUserRecordError, VerifiedUsers

ELEVATED = b'"roles":["admin","monitor","principal-investigator"]'


def _entry_count(url: str) -> int:
    engine = engine_for(url)
    try:
        return len(rows(engine))
    finally:
        engine.dispose()


def _replace_state(engine: sqlalchemy.Engine, position: int, state: bytes,
                   *, with_leaf: bool) -> None:
    notification_id = next(r[0] for r in rows(engine) if r[2] == position)
    sql(engine, "UPDATE trialctl_events SET state = :s WHERE id = :i", s=state, i=notification_id)
    if with_leaf:
        sql(engine, "UPDATE trialctl_leaves SET leaf_hash = :h WHERE position = :p",
            h=hash_leaf(state), p=position)


def test_a_monitor_who_makes_their_stored_row_admin_is_refused_by_the_cli(
    ledger_url: str, home: Path
) -> None:
    init = trialctl("init", "--admin", "alice", "--name", "Alice Adams", "--ledger", ledger_url,
                    "--password-stdin", stdin="alice-password\n")
    assert init.returncode == 0, init
    add = trialctl("user", "add", "mona", "--name", "Mona Moss", "--role", "monitor",
                   "--ledger", ledger_url, "-u", "alice", "--password-stdin",
                   stdin="alice-password\nmona-password\n")
    assert add.returncode == 0, add
    engine = engine_for(ledger_url)
    drop_append_only_triggers(engine)
    _, _, position, state = rows(engine)[2]  # mona's User.Registered
    assert b'"roles":["monitor"]' in state
    _replace_state(engine, position, state.replace(b'"roles":["monitor"]', ELEVATED),
                   with_leaf=True)
    engine.dispose()
    before = _entry_count(ledger_url)

    result = trialctl("user", "add", "mallory", "--name", "Mallory", "--role", "admin",
                      "--ledger", ledger_url, "-u", "mona", "--password-stdin",
                      stdin="mona-password\nmallory-password\n")

    assert_one_line_error(result, "record of user mona", "position 2",
                          "trialctl.User.Registered", "signature does not verify")
    assert _entry_count(ledger_url) == before
    assert not (home / "keys" / "mallory").exists()


def _elevate_bobs_row(staff: Staff, engine: sqlalchemy.Engine) -> None:
    """bob's registration with the admin role, the leaf hash fixed to match."""
    _, _, position, state = rows(engine)[2]
    _replace_state(engine, position, state.replace(b'"roles":["monitor"]', ELEVATED),
                   with_leaf=True)


def _resign_bobs_row_with_his_own_key(staff: Staff, engine: sqlalchemy.Engine) -> None:
    """A valid signature, but by bob, who was not registered yet, let alone an admin."""
    _, _, position, state = rows(engine)[2]
    statement = parse_entry(state).statement
    statement["payload"]["roles"] = ["admin", "monitor"]
    statement["actor"] = {"user_id": "bob", "name": "Bob Brown", "role": "admin",
                          "key_id": staff.bob.keys.key_id}
    _replace_state(engine, position, seal(statement, staff.bob.keys), with_leaf=True)


def _hide_bobs_revocation(staff: Staff, engine: sqlalchemy.Engine) -> None:
    """The row revoking bob's admin role relabelled, so a scan by type would miss it."""
    revoked = next(r for r in rows(engine) if r[1] == "trialctl.User.RoleRevoked")
    sql(engine, "UPDATE trialctl_events SET topic = :t WHERE id = :i",
        t="trialctl.Ledger.CheckpointRecorded", i=revoked[0])


def _drop_a_middle_entry_of_bobs_record(staff: Staff, engine: sqlalchemy.Engine) -> None:
    """bob's record loses the grant before the revocation: the chain no longer links."""
    granted = next(r for r in rows(engine) if r[1] == "trialctl.User.RoleGranted")
    sql(engine, "DELETE FROM trialctl_leaves WHERE notification_id = :i", i=granted[0])
    sql(engine, "DELETE FROM trialctl_events WHERE id = :i", i=granted[0])


def _edit_without_fixing_the_leaf(staff: Staff, engine: sqlalchemy.Engine) -> None:
    _, _, position, state = rows(engine)[2]
    _replace_state(engine, position, state.replace(b'"roles":["monitor"]', ELEVATED),
                   with_leaf=False)


TAMPERINGS: list[tuple[str, Callable[[Staff, sqlalchemy.Engine], None], str]] = [
    ("roles-edited", _elevate_bobs_row, "signature does not verify"),
    ("resigned-by-self", _resign_bobs_row_with_his_own_key, "'bob' is not registered"),
    ("revocation-relabelled", _hide_bobs_revocation, "not a signed user entry"),
    ("middle-entry-deleted", _drop_a_middle_entry_of_bobs_record, "has no version 2"),
    ("leaf-not-fixed", _edit_without_fixing_the_leaf, "Merkle leaf"),
]


@pytest.mark.parametrize(("tamper", "problem"), [(t, p) for _, t, p in TAMPERINGS],
                         ids=[name for name, _, _ in TAMPERINGS])
def test_a_tampered_user_record_refuses_the_write_and_names_the_record(
    ledger_url: str, home: Path, tamper: Callable[[Staff, sqlalchemy.Engine], None],
    problem: str,
) -> None:
    staff = make_staff(ledger_url)
    staff.app.grant_role(staff.alice, "bob", "admin")   # position 4
    staff.app.revoke_role(staff.alice, "bob", "admin")  # position 5
    engine = engine_for(ledger_url)
    drop_append_only_triggers(engine)
    tamper(staff, engine)
    engine.dispose()
    app = staff.reopen()  # a new process's view: nothing verified yet
    before = _entry_count(ledger_url)

    with pytest.raises(TamperedUserRecordError, match="record of user bob") as refused:
        bob = app.unlock("bob", PASSWORDS["bob"])
        app.register_user(bob, "mallory", "Mallory", ["admin"], "mallory-password")

    assert problem in str(refused.value)
    assert "\n" not in str(refused.value)
    assert _entry_count(ledger_url) == before
    app.close()


def test_user_entries_appended_by_another_process_count_at_once(
    ledger_url: str, home: Path
) -> None:
    staff = make_staff(ledger_url)
    users = VerifiedUsers(staff.app.signed_recorder, staff.app.mapper)
    bob_id = staff.bob.user.id
    first = users.current(bob_id)
    assert first is not None and first.roles == ["monitor"]

    other = open_ledger(ledger_url)  # another writer grants bob a role
    other.grant_role(other.unlock("alice", PASSWORDS["alice"]), "bob", "data-manager")
    other.close()

    again = users.current(bob_id)
    assert again is not None and again.roles == ["data-manager", "monitor"]
    assert users.current(staff.app.get_user("alice").id) is not None
    staff.app.close()


def test_an_untouched_ledger_gives_the_same_users_as_the_repository(
    ledger_url: str, home: Path
) -> None:
    staff = make_staff(ledger_url)
    app = staff.app
    app.grant_role(staff.alice, "carol", "principal-investigator")
    app.rotate_key(staff.alice, "bob", "bob-new-password")
    app.revoke_user(staff.alice, "carol", "left the site")
    users = VerifiedUsers(app.signed_recorder, app.mapper)

    for verified in users.every_user():
        stored = app.repository.get(verified.id)
        assert (verified.version, verified.roles, verified.key_id, verified.past_keys,
                verified.active) == (stored.version, stored.roles, stored.key_id,
                                     stored.past_keys, stored.active)
    assert sorted(u.user_id for u in users.every_user()) == ["alice", "bob", "carol"]
    app.close()
