"""Users as their signed entries leave them, and as nothing else: what authority at write
time stands on.

Someone with write access to the database can edit a stored row, but cannot sign one. So a
user entry counts here only once it is checked as `verify` checks it: well formed and
canonical, its row's columns those of its statement, the owner of its Merkle leaf, chained
to the entry before it in its record, and signed by a key its signer held, in a role that
may sign it, at its position. User entries are replayed in commit order, so a signer's
record is always checked up to the entry it signs. What is checked is kept by position: a
process checks each user entry once, and later reads only what was appended since.

(Kept apart from `users`, which the authority rules import: these checks apply them.)
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.persistence import Mapper, Notification
from sqlalchemy import select

from trialctl.ledger.authority import check_bootstrap, check_signature_authority
from trialctl.ledger.canonical import is_canonical
from trialctl.ledger.entry import Entry, MalformedEntryError, entry_hash, parse_entry
from trialctl.ledger.errors import AuthorityError
from trialctl.ledger.history import advanced
from trialctl.ledger.keys import key_id_of, load_public_key, signature_is_valid
from trialctl.ledger.merkle import hash_leaf
from trialctl.ledger.recorder import SignedRecorder
from trialctl.ledger.users import USER_TOPICS, User, user_aggregate_id

BATCH = 1000


class TamperedUserRecordError(AuthorityError):
    """A stored user entry does not verify, so no authority may rest on that record."""


class VerifiedUsers:
    """The committed user records, each entry checked before it counts."""

    def __init__(self, recorder: SignedRecorder, mapper: Mapper[UUID]) -> None:
        self.recorder = recorder
        self.mapper = mapper
        self._users: dict[UUID, User] = {}
        self._heads: dict[UUID, str] = {}  # entry hash of each record's last checked entry
        self._last_notification: int | None = None
        self._last_position = -1

    def current(self, aggregate_id: UUID) -> User | None:
        """The user as their committed entries leave them, or None if never registered.

        The object is shared: change a copy."""
        version = self.recorder.latest_version(aggregate_id)
        if version is None:
            return None
        user = self._users.get(aggregate_id)
        if user is None or user.version < version:
            self._catch_up()
            user = self._users.get(aggregate_id)
        if user is None or user.version < version:
            # A row of the record that is not a user entry: its topic column was changed.
            raise TamperedUserRecordError(
                f"the record of user {_name(user, aggregate_id)} has a version {version} row "
                "that is not a signed user entry; run 'trialctl verify'"
            )
        return user

    def every_user(self) -> list[User]:
        """Every registered user as their committed entries leave them (shared objects)."""
        self._catch_up()
        return list(self._users.values())

    def _catch_up(self) -> None:
        while True:
            batch = self.recorder.select_notifications(
                start=self._last_notification, limit=BATCH, topics=list(USER_TOPICS),
                inclusive_of_start=self._last_notification is None,
            )
            if not batch:
                return
            leaves = self._leaves_of([n.id for n in batch])
            for notification in batch:
                self._admit(notification, leaves.get(notification.id))
                self._last_notification = notification.id

    def _leaves_of(self, notification_ids: list[int]) -> dict[int, tuple[int, bytes]]:
        """(position, leaf hash) of the leaf that names each notification."""
        leaves = self.recorder.leaves
        with self.recorder.transaction(commit=False) as session:
            found = session.execute(
                select(leaves.c.notification_id, leaves.c.position, leaves.c.leaf_hash)
                .where(leaves.c.notification_id.in_(notification_ids))
            )
            return {int(nid): (int(position), bytes(leaf)) for nid, position, leaf in found}

    def _admit(self, notification: Notification, leaf: tuple[int, bytes] | None) -> None:
        """Check one user entry, then let it move its record on."""
        aggregate_id = UUID(str(notification.originator_id))
        user = self._users.get(aggregate_id)
        try:
            entry = parse_entry(notification.state)
        except MalformedEntryError as e:
            raise self._tampered(notification, user, None, f"not a well-formed entry: {e}") from e
        problem = self._problem(notification, entry, user, leaf)
        if problem is not None:
            raise self._tampered(notification, user, entry.statement, problem)
        self._users[aggregate_id] = advanced(user, [notification], self.mapper)
        self._heads[aggregate_id] = entry_hash(notification.state)
        self._last_position = entry.position

    def _problem(
        self, notification: Notification, entry: Entry, user: User | None,
        leaf: tuple[int, bytes] | None,
    ) -> str | None:
        statement = entry.statement
        aggregate_id = UUID(str(notification.originator_id))
        if not is_canonical(statement, entry.statement_bytes):
            return "its statement is not RFC 8785 canonical JSON"
        if (statement["aggregate_id"], statement["aggregate_version"], statement["type"]) != (
            str(aggregate_id), notification.originator_version, notification.topic
        ):
            return "its row's id, version or type differ from the signed statement's"
        if leaf is None or leaf != (statement["position"], hash_leaf(notification.state)):
            return "it does not own the Merkle leaf at its position"
        if statement["position"] <= self._last_position:
            return "it is out of commit order"
        if (statement["aggregate_version"] == 1) != (statement["type"] == User.Registered.TOPIC):
            return "a user record opens with its registration, and only there"
        expected_version = 1 if user is None else user.version + 1
        if statement["aggregate_version"] != expected_version:
            return f"its record has no version {statement['aggregate_version'] - 1} before it"
        if statement["prev_hash"] != self._heads.get(aggregate_id):
            return "its prev_hash does not name the entry before it (the chain is broken)"
        return self._signature_problem(entry)

    def _signature_problem(self, entry: Entry) -> str | None:
        statement = entry.statement
        actor = statement["actor"]
        if [s.key_id for s in entry.signatures] != [actor["key_id"]]:
            return "it must carry exactly one signature, by the actor's key"
        signed = [entry]
        if statement["position"] == 1:
            # The first admin: self-signed with the ledger's identity, at positions 0 and 1.
            identity = self._identity_entry()
            if identity is None:
                return "the ledger identity at position 0 is not a well-formed entry"
            reason = check_bootstrap(identity.statement, statement)
            public_key = str(statement["payload"].get("public_key", ""))
            if reason is None and _key_id(public_key) != actor["key_id"]:
                reason = "the first admin's public key is not the key it names"
            signed.append(identity)
        else:
            signer = self._users.get(user_aggregate_id(actor["user_id"]))
            reason = check_signature_authority(
                signer, actor, statement["type"], statement["meaning"]
            )
            public_key = "" if signer is None else signer.public_key
        if reason is not None:
            return reason
        try:
            key = load_public_key(public_key)
        except ValueError:
            return f"key {actor['key_id'][:16]}… is not an Ed25519 public key"
        for each in signed:
            if not signature_is_valid(key, each.signatures[0].signature, each.statement_bytes):
                return f"its signature does not verify with key {actor['key_id'][:16]}…"
        return None

    def _identity_entry(self) -> Entry | None:
        found = self.recorder.entry_at(0)
        if found is None:
            return None
        try:
            identity = parse_entry(found[1].state)
        except MalformedEntryError:
            return None
        return identity if len(identity.signatures) == 1 else None

    def _tampered(
        self, notification: Notification, user: User | None,
        statement: dict[str, Any] | None, problem: str,
    ) -> TamperedUserRecordError:
        aggregate_id = UUID(str(notification.originator_id))
        name = _name(user, aggregate_id)
        if user is None and statement is not None:
            claimed = statement["payload"].get("user_id")
            name = str(claimed) if isinstance(claimed, str) else name
        position = "" if statement is None else f" at position {statement['position']}"
        return TamperedUserRecordError(
            f"the record of user {name} fails verification{position} "
            f"({notification.topic} v{notification.originator_version}): {problem}; "
            "no authority rests on it (run 'trialctl verify')"
        )


def _name(user: User | None, aggregate_id: UUID) -> str:
    return user.user_id if user is not None else str(aggregate_id)


def _key_id(public_key_hex: str) -> str | None:
    try:
        return key_id_of(bytes.fromhex(public_key_hex))
    except ValueError:
        return None
