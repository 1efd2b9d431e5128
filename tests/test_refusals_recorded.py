"""Every refused attempt by an identified user is recorded: signed by the user into their
security log when they can sign (a signed-in admin's "role not held" and "last admin"
pre-checks), queued for the next signature when they cannot (revoked, no role, a forged
key file) and then signed by the admin's `user unlock`. Nothing else is written."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ledgers import PASSWORDS, Staff, make_staff
from trialctl.ledger.entry import parse_entry
from trialctl.ledger.errors import AuthorityError, KeyFileError, LedgerError
from trialctl.ledger.keys import KeyPair, seal_key_file
from trialctl.ledger.users import SecurityLog, User


def _refusals(staff: Staff, user_id: str) -> list[str]:
    """The reasons signed into the user's own security log, in order."""
    app = staff.reopen()
    return [parse_entry(row.state).statement["payload"]["reason"]
            for row in app.signed_recorder.select_notifications(
                start=None, limit=10_000, topics=[SecurityLog.AttemptRefused.TOPIC])
            if str(row.originator_id) == str(SecurityLog.create_id(user_id))]


@pytest.mark.parametrize(
    ("refusal", "fragment"),
    [
        (lambda s: s.app.revoke_role(s.alice, "bob", "admin"), "bob does not hold the role"),
        (lambda s: s.app.revoke_role(s.alice, "alice", "admin"), "last active admin"),
        (lambda s: s.app.revoke_user(s.alice, "alice", "leaving"), "last active admin"),
    ],
    ids=["role-not-held", "last-admin-role", "last-admin-revoke"],
)
def test_a_signed_in_admins_refused_pre_check_is_signed(
    ledger_url: str, home: Path, refusal: object, fragment: str
) -> None:
    staff = make_staff(ledger_url)
    before = staff.app.signed_recorder.tree_size()
    with pytest.raises(AuthorityError, match=fragment):
        refusal(staff)  # type: ignore[operator]
    assert staff.app.signed_recorder.tree_size() == before + 2  # log opened + the refusal
    assert any(fragment in reason for reason in _refusals(staff, "alice"))
    assert staff.app.get_user("alice").roles == ["admin"]


def _revoke_bob(staff: Staff) -> None:
    staff.app.revoke_user(staff.alice, "bob", "left the site")


def _strip_bobs_roles(staff: Staff) -> None:
    staff.app.revoke_role(staff.alice, "bob", "monitor")


def _forge_bobs_key_file(staff: Staff) -> None:
    path = staff.app.key_file("bob", staff.app.get_user("bob").key_id)
    path.unlink()
    seal_key_file(path, "bob", KeyPair.generate(), PASSWORDS["bob"])


@pytest.mark.parametrize(
    ("setup", "attempt", "error", "fragment"),
    [
        (_revoke_bob, lambda s: s.app.unlock("bob", PASSWORDS["bob"]), AuthorityError,
         "deactivated"),
        (_revoke_bob, lambda s: s.app.check_may_sign("bob", [User.RoleGranted.TOPIC]),
         AuthorityError, "deactivated"),
        (_strip_bobs_roles,
         lambda s: s.app.check_may_sign("bob", [SecurityLog.AttemptRefused.TOPIC]),
         AuthorityError, "none of bob's roles"),
        (_forge_bobs_key_file, lambda s: s.app.unlock("bob", PASSWORDS["bob"]), KeyFileError,
         "the ledger's current key for bob"),
    ],
    ids=["revoked-sign-in", "revoked-pre-check", "no-roles", "forged-key-file"],
)
def test_a_refusal_bob_cannot_sign_is_queued_and_signed_at_unlock(
    ledger_url: str, home: Path, setup: object, attempt: object, error: type[LedgerError],
    fragment: str,
) -> None:
    staff = make_staff(ledger_url)
    setup(staff)  # type: ignore[operator]
    app = staff.reopen()
    before = app.signed_recorder.tree_size()
    with pytest.raises(error, match=fragment):
        attempt(staff)  # type: ignore[operator]
    (queued,) = app.security_queue.events("bob")
    assert fragment in queued.reason and queued.reason.startswith("refused: ")
    assert app.signed_recorder.tree_size() == before

    alice = app.unlock("alice", PASSWORDS["alice"])
    _, count = app.unlock_user(alice, "bob")
    assert count == 1 and app.security_queue.events("bob") == []
    assert app.signed_recorder.tree_size() == before + 1
