"""Ledger records about people and the ledger itself: users, roles, keys, checkpoints, refusals.

These are event-sourced aggregates like the trial's own; every change is a signed event.
Stored topics are explicit and permanent: renaming a class must not orphan old rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.application import project_aggregate
from eventsourcing.domain import Aggregate, DomainEventProtocol, event

# The namespace for every trialctl id derived with uuid5, so a re-registration of the same
# user or trial lands on the same aggregate id and is refused by the unique version index.
from trialctl.domain.ids import TRIALCTL_NAMESPACE


def user_aggregate_id(user_id: str) -> UUID:
    return uuid5(TRIALCTL_NAMESPACE, f"user:{user_id}")


def security_log_id(user_id: str) -> UUID:
    return uuid5(TRIALCTL_NAMESPACE, f"security-log:{user_id}")


LEDGER_AGGREGATE_ID = uuid5(TRIALCTL_NAMESPACE, "ledger")
USER_EVENT_PREFIX = "trialctl.User."
SECURITY_LOG_PREFIX = "trialctl.SecurityLog."


class LedgerRecord(Aggregate):
    """The ledger's own identity, made at `init`, and the checkpoints recorded in it."""

    TOPIC = "trialctl.Ledger"

    class Created(Aggregate.Created):
        TOPIC = "trialctl.Ledger.Created"  # a base the library requires; never emitted

    class Initialised(Created):
        TOPIC = "trialctl.Ledger.Initialised"
        ledger_id: str
        name: str

    @event(Initialised)
    def __init__(self, ledger_id: str, name: str) -> None:
        self.ledger_id = ledger_id
        self.name = name
        self.checkpoints: list[dict[str, Any]] = []
        self.exports: list[dict[str, Any]] = []

    @staticmethod
    def create_id() -> UUID:
        return LEDGER_AGGREGATE_ID

    class CheckpointRecorded(Aggregate.Event):
        TOPIC = "trialctl.Ledger.CheckpointRecorded"
        tree_size: int
        root_hash: str

    @event(CheckpointRecorded)
    def record_checkpoint(self, tree_size: int, root_hash: str) -> None:
        self.checkpoints.append({"tree_size": tree_size, "root_hash": root_hash})

    class Exported(Aggregate.Event):
        """An export written: which, of which trial, at which tree head, and the hash of
        its signed manifest (which names every file's hash)."""

        TOPIC = "trialctl.Ledger.Exported"
        kind: str
        trial: str
        tree_size: int
        root_hash: str
        manifest_sha256: str
        files: list[dict[str, Any]]

    @event(Exported)
    def record_export(
        self, kind: str, trial: str, tree_size: int, root_hash: str, manifest_sha256: str,
        files: list[dict[str, Any]],
    ) -> None:
        self.exports.append({"kind": kind, "trial": trial, "tree_size": tree_size,
                             "root_hash": root_hash, "manifest_sha256": manifest_sha256})

    # The committee packet and the audit-trail review (ledger/packet.py,
    # ledger/audit_review.py). Their state is read from the entries themselves, so these
    # handlers only let the events replay.
    class PacketIssued(Aggregate.Event):
        """A dose-escalation committee packet written and signed by its author."""

        TOPIC = "trialctl.Ledger.PacketIssued"
        trial: str
        cohort_number: int
        tree_size: int
        root_hash: str
        packet_sha256: str

    @event(PacketIssued)
    def record_packet(
        self, trial: str, cohort_number: int, tree_size: int, root_hash: str,
        packet_sha256: str,
    ) -> None:
        pass

    class PacketCountersigned(Aggregate.Event):
        """A committee member's countersignature of a packet, named by its SHA-256."""

        TOPIC = "trialctl.Ledger.PacketCountersigned"
        trial: str
        cohort_number: int
        packet_sha256: str

    @event(PacketCountersigned)
    def countersign_packet(self, trial: str, cohort_number: int, packet_sha256: str) -> None:
        pass

    class PacketCited(Aggregate.Event):
        """A cohort decision's citation of the packet it was made on, signed in the same
        batch as the decision."""

        TOPIC = "trialctl.Ledger.PacketCited"
        trial: str
        cohort_number: int
        packet_sha256: str

    @event(PacketCited)
    def cite_packet(self, trial: str, cohort_number: int, packet_sha256: str) -> None:
        pass

    class AuditReviewed(Aggregate.Event):
        """An audit-trail review performed: the tree head reviewed and the review's hash."""

        TOPIC = "trialctl.Ledger.AuditReviewed"
        since: str | None
        tree_size: int
        root_hash: str
        review_sha256: str
        output_format: str
        counts: dict[str, int]

    @event(AuditReviewed)
    def record_audit_review(
        self, since: str | None, tree_size: int, root_hash: str, review_sha256: str,
        output_format: str, counts: dict[str, int],
    ) -> None:
        pass


class User(Aggregate):
    """A person who signs: their printed name, roles and the history of their keys."""

    TOPIC = "trialctl.User"

    class Created(Aggregate.Created):
        TOPIC = "trialctl.User.Created"  # a base the library requires; never emitted

    class Registered(Created):
        TOPIC = "trialctl.User.Registered"
        user_id: str
        name: str
        roles: list[str]
        public_key: str
        key_id: str

    @event(Registered)
    def __init__(
        self, user_id: str, name: str, roles: list[str], public_key: str, key_id: str
    ) -> None:
        self.user_id = user_id
        self.name = name
        self.roles = sorted(set(roles))
        self.public_key = public_key
        self.key_id = key_id
        self.past_keys: dict[str, str] = {}
        self.revoked_keys: set[str] = set()
        self.active = True

    @staticmethod
    def create_id(user_id: str) -> UUID:
        return user_aggregate_id(user_id)

    @property
    def current_key_usable(self) -> bool:
        return self.active and self.key_id not in self.revoked_keys

    def public_key_for(self, key_id: str) -> str | None:
        """The public key with this id, current or past, if the user ever held it."""
        if key_id == self.key_id:
            return self.public_key
        return self.past_keys.get(key_id)

    class RoleGranted(Aggregate.Event):
        TOPIC = "trialctl.User.RoleGranted"
        role: str

    @event(RoleGranted)
    def grant_role(self, role: str) -> None:
        self.roles = sorted({*self.roles, role})

    class RoleRevoked(Aggregate.Event):
        TOPIC = "trialctl.User.RoleRevoked"
        role: str

    @event(RoleRevoked)
    def revoke_role(self, role: str) -> None:
        self.roles = [r for r in self.roles if r != role]

    class KeyRotated(Aggregate.Event):
        TOPIC = "trialctl.User.KeyRotated"
        public_key: str
        key_id: str

    @event(KeyRotated)
    def rotate_key(self, public_key: str, key_id: str) -> None:
        self.past_keys[self.key_id] = self.public_key
        self.public_key = public_key
        self.key_id = key_id

    class KeyRevoked(Aggregate.Event):
        """The key may sign nothing from here on; the user is deactivated with it."""

        TOPIC = "trialctl.User.KeyRevoked"
        key_id: str
        reason: str

    @event(KeyRevoked)
    def revoke_key(self, key_id: str, reason: str) -> None:
        self.revoked_keys = {*self.revoked_keys, key_id}
        self.active = False


    class Unlocked(Aggregate.Event):
        """An admin ends a lock-out, signing the security events queued for the user that
        nobody could sign when they happened: each {at, action, reason}."""

        TOPIC = "trialctl.User.Unlocked"
        failed_attempts: list[dict[str, str]]

    @event(Unlocked)
    def unlock(self, failed_attempts: list[dict[str, str]]) -> None:
        pass  # the lock-out itself lives in the queue (ledger/lockout.py), which this empties


# Every event type a user record holds (verify and the authority checks read these rows).
USER_TOPICS = (
    User.Registered.TOPIC, User.RoleGranted.TOPIC, User.RoleRevoked.TOPIC,
    User.KeyRotated.TOPIC, User.KeyRevoked.TOPIC, User.Unlocked.TOPIC,
)


def is_user_event(domain_event: DomainEventProtocol[UUID]) -> bool:
    return str(getattr(type(domain_event), "TOPIC", "")).startswith(USER_EVENT_PREFIX)


def project_user(
    user: User | None, domain_events: Iterable[DomainEventProtocol[UUID]]
) -> User | None:
    """A user record's state, leaving out any planted event that is not a user event.

    `verify` reports such an entry (a user record holds only user events) and does not
    apply it; reading the record here passes over it the same way, keeping its version so
    that the next change is written after it. Pass as `projector_func` to `Repository.get`.
    """
    for domain_event in domain_events:
        if is_user_event(domain_event):
            user = project_aggregate(user, [domain_event])
        elif user is not None:
            user.version = domain_event.originator_version
    return user


class SecurityLog(Aggregate):
    """Refused attempts of one user, signed by that user: who tried what, and when."""

    TOPIC = "trialctl.SecurityLog"

    class Created(Aggregate.Created):
        TOPIC = "trialctl.SecurityLog.Created"  # a base the library requires; never emitted

    class Opened(Created):
        TOPIC = "trialctl.SecurityLog.Opened"
        user_id: str

    @event(Opened)
    def __init__(self, user_id: str) -> None:
        self.user_id = user_id
        self.refusals = 0
        self.sessions_started = 0
        self.sessions_ended = 0

    @staticmethod
    def create_id(user_id: str) -> UUID:
        return security_log_id(user_id)

    class AttemptRefused(Aggregate.Event):
        TOPIC = "trialctl.SecurityLog.AttemptRefused"
        action: str
        reason: str

    @event(AttemptRefused)
    def refuse_attempt(self, action: str, reason: str) -> None:
        self.refusals += 1

    # A signed-in session (ledger/session_agent.py): the continuous period of controlled
    # access that 21 CFR 11.200(a)(1)(i) speaks of, opened and closed in the user's own log.
    class SessionStarted(Aggregate.Event):
        TOPIC = "trialctl.SecurityLog.SessionStarted"
        session_id: str
        idle_seconds: int
        max_seconds: int
        component: str  # what each signing in the session asks for: password or pin

    @event(SessionStarted)
    def start_session(
        self, session_id: str, idle_seconds: int, max_seconds: int, component: str
    ) -> None:
        self.sessions_started += 1

    class SessionEnded(Aggregate.Event):
        TOPIC = "trialctl.SecurityLog.SessionEnded"
        session_id: str
        reason: str  # idle, max, stop or authority
        signings: int

    @event(SessionEnded)
    def end_session(self, session_id: str, reason: str, signings: int) -> None:
        self.sessions_ended += 1
