"""The authority check travels to the recorder as a value with each save: built from the
recorder, the repository and the mapper alone, it refuses inside the append's transaction,
so a refused batch leaves no entry and no leaf behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ledgers import make_staff
from trialctl.ledger.application import UnlockedUser
from trialctl.ledger.authority import choose_meaning
from trialctl.ledger.batch_authority import BatchAuthority
from trialctl.ledger.errors import AuthorityError
from trialctl.ledger.keys import KeyPair
from trialctl.ledger.recorder import Signer
from trialctl.ledger.roles import Role
from trialctl.ledger.users import User
from trialctl.ledger.verified_users import VerifiedUsers


def _signer(staff_member: UnlockedUser, role: Role, *event_types: str) -> Signer:
    user = staff_member.user
    meaning = choose_meaning(list(event_types)).value
    return Signer(user.user_id, user.name, role.value, meaning, staff_member.keys)


def _new_user(user_id: str) -> User:
    keys = KeyPair.generate()
    return User(user_id=user_id, name=user_id.title(), roles=[Role.MONITOR.value],
                public_key=keys.public_key_hex, key_id=keys.key_id)


def test_a_refused_batch_writes_nothing(ledger_url: str, home: Path) -> None:
    staff = make_staff(ledger_url)
    app = staff.app
    authority = BatchAuthority(VerifiedUsers(app.signed_recorder, app.mapper), app.mapper)
    signer = _signer(staff.bob, Role.MONITOR, User.Registered.TOPIC)  # may not register
    size = app.signed_recorder.tree_size()
    leaves = app.signed_recorder.leaf_hashes()

    with pytest.raises(AuthorityError, match=r"monitor.* may not record .*User\.Registered"):
        app.save(_new_user("dave"), signer=signer, authorize=authority)

    assert app.signed_recorder.tree_size() == size
    assert app.signed_recorder.leaf_hashes() == leaves
    app.close()


def test_a_user_change_early_in_a_batch_counts_for_the_rest_and_is_undone_when_refused(
    ledger_url: str, home: Path
) -> None:
    staff = make_staff(ledger_url)
    app = staff.app
    authority = BatchAuthority(VerifiedUsers(app.signed_recorder, app.mapper), app.mapper)
    size = app.signed_recorder.tree_size()
    alice, bob = app.get_user("alice"), app.get_user("bob")
    alice.revoke_role(Role.ADMIN.value)  # first she gives up admin ...
    bob.revoke_role(Role.MONITOR.value)  # ... so she may no longer do this
    revoking = _signer(staff.alice, Role.ADMIN, User.RoleRevoked.TOPIC)

    with pytest.raises(AuthorityError, match="admin"):
        app.save(alice, bob, signer=revoking, authorize=authority)
    assert app.signed_recorder.tree_size() == size

    # The refused batch moved nothing: alice is still admin to the same check object.
    app.save(_new_user("erin"), authorize=authority,
             signer=_signer(staff.alice, Role.ADMIN, User.Registered.TOPIC))
    assert app.signed_recorder.tree_size() == size + 1
    assert app.get_user("erin").roles == [Role.MONITOR.value]
    app.close()
