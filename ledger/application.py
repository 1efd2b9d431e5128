"""The trialctl ledger: a thin eventsourcing application.

Each method loads what it needs, calls one aggregate method, saves with a signer and
returns plain values. Signing, chaining and numbering happen in the recorder; who may sign
what is decided by `authority`, inside the same transaction as the write.
"""

from __future__ import annotations

import contextlib
import copy
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

import sqlalchemy
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import (
    IntegrityError,
    JSONTranscoder,
    Mapper,
    OperationalError,
    PersistenceError,
    StoredEvent,
)
from eventsourcing.utils import get_topic

from trialctl.ledger.authority import action_of, choose_meaning, choose_role
from trialctl.ledger.batch_authority import BatchAuthority
from trialctl.ledger.checkpoint_dir import (
    CheckpointPolicy,
    configured_policy,
    note_path,
    usable_directory,
    write_note,
)
from trialctl.ledger.db_privilege import warn_if_privileged
from trialctl.ledger.entry import EVIDENCE_TYPES
from trialctl.ledger.errors import (
    AuthorityError,
    DatabaseUnavailableError,
    KeyFileError,
    LedgerExistsError,
    NotALedgerError,
    RecordingError,
    SchemaVersionError,
    UnknownUserError,
    WrongPasswordError,
    first_line,
)
from trialctl.ledger.factory import LedgerFactory
from trialctl.ledger.keys import KeyPair, open_key_file, seal_key_file
from trialctl.ledger.location import LedgerLocation, check_user_id, keys_dir
from trialctl.ledger.lockout import SIGN_IN, SecurityQueue, lockout_after
from trialctl.ledger.mapper import EntryMapper, format_time
from trialctl.ledger.recorder import (
    ENTRIES_TABLE,
    LEAVES_TABLE,
    SCHEMA_TABLE,
    SCHEMA_VERSION,
    Claims,
    Evidence,
    SignedRecorder,
    Signer,
)
from trialctl.ledger.roles import Meaning, Role
from trialctl.ledger.snapshots import Snapshots
from trialctl.ledger.users import (
    LEDGER_AGGREGATE_ID,
    LedgerRecord,
    SecurityLog,
    User,
    project_user,
    user_aggregate_id,
)
from trialctl.ledger.verified_users import VerifiedUsers

if TYPE_CHECKING:
    from trialctl.ledger.checkpoint import SignedCheckpoint


@dataclass(frozen=True)
class UnlockedUser:
    """A registered user whose key has been unlocked with their password."""

    user: User
    keys: KeyPair


@dataclass(frozen=True)
class UserSummary:
    user_id: str
    name: str
    roles: list[str]
    key_id: str
    active: bool


@contextlib.contextmanager
def _write_errors() -> Iterator[None]:
    """A write the database refused, as the ledger's own errors: a concurrent writer took
    the next position first (nothing written), or the database could not be reached."""
    try:
        yield
    except IntegrityError as e:
        raise RecordingError(
            "another change was recorded at the same moment; nothing was written, try again"
        ) from e
    except OperationalError as e:
        raise DatabaseUnavailableError(f"could not write: {first_line(e)}") from e


class TrialLedger(Application[UUID]):
    name = "trialctl"  # table names follow it: trialctl_events

    def __init__(
        self, location: LedgerLocation, create: bool = False, keys_home: Path | None = None
    ) -> None:
        self.location = location
        self.keys_home = keys_home or keys_dir()
        if location.sqlite_path is not None:
            _check_sqlite_file(location.sqlite_path, create)
        env = {
            "SQLALCHEMY_URL": location.url,
            "CREATE_TABLE": "y" if create else "n",
        }
        try:
            super().__init__(env=env)
        except (PersistenceError, sqlalchemy.exc.SQLAlchemyError) as e:
            raise DatabaseUnavailableError(
                f"cannot open the ledger at {location.display()}: {first_line(e)}"
            ) from e
        self.signed_recorder: SignedRecorder = self.recorder  # type: ignore[assignment]
        # Users as their verified, signed entries leave them: what every authority check reads.
        self.users = VerifiedUsers(self.signed_recorder, self.mapper)
        # Handed to the recorder with each save, so the recorder never calls back up here.
        self.authority = BatchAuthority(self.users, self.mapper)
        # Patient records as they stood at a signed entry, so a load need not replay it all.
        self.patient_snapshots = Snapshots(self.signed_recorder, self.users, self.mapper)
        # Security events nobody could sign yet: failed sign-ins and unsignable refusals.
        engine = self.signed_recorder.datastore.engine
        assert isinstance(engine, sqlalchemy.engine.Engine)
        self.security_queue = SecurityQueue(engine)
        # Read at the first sign-in (TRIALCTL_CHECKPOINT_EVERY), so reading needs no directory.
        self.checkpoint_policy: CheckpointPolicy | None = None
        if not create:
            self._check_is_ledger()
            try:
                warn_if_privileged(engine)
            except sqlalchemy.exc.SQLAlchemyError as e:
                raise _unavailable(location, e) from e

    def construct_factory(self, env: Any) -> LedgerFactory:  # type: ignore[override]
        return LedgerFactory(env)

    def construct_mapper(self) -> Mapper[UUID]:
        return EntryMapper(transcoder=JSONTranscoder())

    # -- opening -------------------------------------------------------------------------

    def _check_is_ledger(self) -> None:
        engine = self.signed_recorder.datastore.engine
        assert engine is not None
        try:
            tables = set(sqlalchemy.inspect(engine).get_table_names())
        except sqlalchemy.exc.DatabaseError as e:
            if self.location.sqlite_path is not None and "not a database" in str(e):
                raise NotALedgerError(
                    f"{self.location.display()} is not a trialctl ledger (not a SQLite database)"
                ) from e
            raise _unavailable(self.location, e) from e
        except sqlalchemy.exc.SQLAlchemyError as e:
            raise _unavailable(self.location, e) from e
        if not {ENTRIES_TABLE, LEAVES_TABLE} <= tables:
            raise NotALedgerError(
                f"{self.location.display()} is not a trialctl ledger (run 'trialctl init')"
            )
        # A ledger made before the schema table existed has exactly schema 1's tables.
        versions = self.signed_recorder.schema_versions() if SCHEMA_TABLE in tables else [1]
        if versions != [SCHEMA_VERSION]:
            raise SchemaVersionError(_schema_mismatch(self.location, versions))

    def ledger_record(self) -> LedgerRecord:
        try:
            record: LedgerRecord = self.repository.get(LEDGER_AGGREGATE_ID)
        except AggregateNotFoundError as e:
            raise NotALedgerError(f"{self.location.display()} has no ledger identity") from e
        return record

    # -- signing -------------------------------------------------------------------------

    def key_file(self, user_id: str, key_id: str) -> Path:
        """Where a user's key file lives: one file per key, so rotation keeps the old."""
        return self.keys_home / user_id / f"{key_id}.json"

    def get_user(self, user_id: str) -> User:
        """The user as their verified, signed entries leave them: a copy, to change and save."""
        user = self.users.current(user_aggregate_id(user_id))
        if user is None:
            raise UnknownUserError(f"unknown user {user_id!r}")
        return copy.deepcopy(user)

    def unlock(self, user_id: str, password: str) -> UnlockedUser:
        """Open the user's current key with their password.

        A wrong password, a locked or revoked user and an unusable key file are queued as
        security events (`ledger/lockout.py`); a successful sign-in first signs the user's
        queued events into their security log."""
        user = self.get_user(user_id)
        limit = lockout_after()
        failures = self.security_queue.failed_sign_ins(user_id)
        if failures >= limit:
            self.security_queue.add(user_id, "sign-in while locked", "refused: locked")
            raise AuthorityError(
                f"user {user_id} is locked after {failures} failed sign-ins; an admin must "
                f"run 'trialctl user unlock {user_id}'"
            )
        if not user.current_key_usable:
            reason = f"user {user_id} is deactivated; their key was revoked"
            self.security_queue.add(user_id, "sign-in", f"refused: {reason}")
            raise AuthorityError(reason)
        try:
            keys = open_key_file(self.key_file(user_id, user.key_id), password, user.key_id)
        except WrongPasswordError as e:
            self.security_queue.add(user_id, SIGN_IN, "wrong password")
            now_locked = failures + 1 >= limit
            raise WrongPasswordError(
                f"{e}; {user_id} is now locked" if now_locked
                else f"{e}; {failures + 1} of {limit} failed sign-ins before lock-out"
            ) from e
        except KeyFileError as e:
            self.security_queue.add(user_id, "sign-in with a key file", f"refused: {e}")
            raise
        actor = UnlockedUser(user, keys)
        self.checkpoint_policy = configured_policy()
        if self.checkpoint_policy is not None:
            usable_directory(self.checkpoint_policy.directory)  # refused before any signing
        queued = self.security_queue.events(user_id)
        if queued and self._sign_refusals(
            actor, [(q.action, f"{q.reason} (at {q.at})") for q in queued]
        ):
            self.security_queue.remove(queued)
        return actor

    def check_may_sign(self, user_id: str, event_types: Sequence[str]) -> None:
        """Refuse, before anyone is asked for a password, a signer who could not sign these
        event types anyway: unknown, deactivated, or holding no role that may. Nobody has
        proved who they are yet, so the refusal is queued, not signed (`ledger/lockout.py`)."""
        user = self.get_user(user_id)
        action = ", ".join(dict.fromkeys(event_types))
        if not user.current_key_usable:
            reason = f"user {user_id} is deactivated; their key was revoked"
            self.security_queue.add(user_id, action, f"refused: {reason}")
            raise AuthorityError(reason)
        if choose_role(user, list(event_types)) is None:
            reason = _no_role(user, event_types)
            self.security_queue.add(user_id, action, f"refused: {reason}")
            raise AuthorityError(f"refused: {reason}")

    def unlock_user(self, actor: UnlockedUser, user_id: str) -> tuple[UserSummary, int]:
        """End a lock-out: the admin signs the user's queued security events into the
        user's record (`User.Unlocked`), and the queue forgets them. Returns how many."""
        user = self.get_user(user_id)
        # With nothing queued the entry still says so: an admin checked and found no lock.
        queued = self.security_queue.events(user_id)
        user.unlock(failed_attempts=[q.as_payload() for q in queued])
        self.record(actor, user)
        self.security_queue.remove(queued)
        return _summary(user), len(queued)

    def _refuse(self, actor: UnlockedUser, action: str, reason: str) -> None:
        """Refuse a signed-in user's request before anything is written, and record it."""
        self._record_refusal(actor, action, reason)
        raise AuthorityError(f"refused: {reason}")

    def check_may_record(self, user_id: str, *aggregates: Aggregate) -> None:
        """`check_may_sign` for the pending events of `aggregates`."""
        self.check_may_sign(user_id, pending_actions(aggregates))

    def record(
        self,
        actor: UnlockedUser,
        *aggregates: Aggregate,
        meaning: str | None = None,
        evidence: dict[str, Any] | None = None,
        role: str | None = None,
        policy: bool = True,
        claims: Claims = (),
    ) -> list[int]:
        """Sign and append the pending events of `aggregates`; returns their positions.
        `evidence` goes into the signed statement of the batch's cohort decision. `role`,
        when the entry needs one role in particular (a co-signature), is the signer's if
        they hold it and it may sign them; otherwise the first of theirs that may.
        `policy`: whether TRIALCTL_CHECKPOINT_EVERY may follow the write with a note.
        `claims`: ids the entries take (a query's number), refused if already taken."""
        event_types = pending_actions(aggregates)
        action = ", ".join(dict.fromkeys(event_types))
        role = choose_role(actor.user, event_types, prefer=role)
        if role is None:
            reason = _no_role(actor.user, event_types)
            self._record_refusal(actor, action, reason)
            raise AuthorityError(f"refused: {reason}")
        signer = Signer(
            user_id=actor.user.user_id,
            name=actor.user.name,
            role=role,
            meaning=meaning or choose_meaning(event_types),
            keys=actor.keys,
        )
        try:
            positions = self._save_signed(
                signer, aggregates, _decision_evidence(aggregates, evidence), claims)
        except AuthorityError as e:
            for aggregate in aggregates:
                aggregate.pending_events.clear()
            self._record_refusal(actor, action, str(e))
            raise AuthorityError(f"refused: {e}") from e
        if policy:
            self._checkpoint_if_due(actor)
        return positions

    def record_groups(
        self, actor: UnlockedUser, groups: Sequence[tuple[Sequence[Any], str | None]]
    ) -> list[list[int]]:
        """Sign and append several groups of collected events, each `(events, meaning)`
        signed as `record` would sign it alone, all in one transaction (batch entry).
        Returns each group's notification ids."""
        signed: list[tuple[list[StoredEvent], Signer]] = []
        # One actor signs every group, and a file's lines are of a few kinds: the signer
        # of each kind of group (its event types and meaning) is chosen once.
        signers: dict[tuple[tuple[str, ...], str | None], Signer] = {}
        for events, meaning in groups:
            event_types = [action_of(get_topic(type(e)), vars(e)) for e in events]
            signer = signers.get((tuple(event_types), meaning))
            if signer is None:
                role = choose_role(actor.user, event_types)
                if role is None:
                    reason = _no_role(actor.user, event_types)
                    self._record_refusal(actor, ", ".join(dict.fromkeys(event_types)), reason)
                    raise AuthorityError(f"refused: {reason}")
                signer = Signer(actor.user.user_id, actor.user.name, role,
                                meaning or choose_meaning(event_types), actor.keys)
                signers[(tuple(event_types), meaning)] = signer
            signed.append(([self.mapper.to_stored_event(e) for e in events], signer))
        try:
            with _write_errors():
                written = self.signed_recorder.insert_signed_groups(signed, self.authority)
        except AuthorityError as e:
            self._record_refusal(actor, "batch entry", str(e))
            raise AuthorityError(f"refused: {e}") from e
        self._checkpoint_if_due(actor)
        return [list(ids) for ids in written]

    def _save_signed(
        self, signer: Signer, aggregates: Sequence[Aggregate], evidence: Evidence | None = None,
        claims: Claims = (),
    ) -> list[int]:
        with _write_errors():
            recordings = self.save(
                *aggregates, signer=signer, authorize=self.authority, evidence=evidence,
                claims=claims,
            )
        return [r.notification.id for r in recordings]

    def _record_refusal(self, actor: UnlockedUser, action: str, reason: str) -> None:
        """Sign the refusal with the refused user's own key: who tried what, and when.
        One that the user cannot sign (no role, deactivated) is queued instead."""
        if not self._sign_refusals(actor, [(action, reason)]):
            self.security_queue.add(actor.user.user_id, action, f"refused: {reason}")

    def _sign_refusals(self, actor: UnlockedUser, refusals: Sequence[tuple[str, str]]) -> bool:
        """Sign (action, reason) refusals into the user's own security log; False when the
        user can sign nothing."""
        def refuse(log: SecurityLog) -> None:
            for action, reason in refusals:
                log.refuse_attempt(action=action, reason=reason)

        return self.sign_own_log(actor, refuse, Meaning.ATTEMPTED)

    def sign_own_log(
        self, actor: UnlockedUser, change: Callable[[SecurityLog], None], meaning: Meaning
    ) -> bool:
        """Apply `change` to the user's own security log and sign it with their key; False
        (nothing written) when the user can sign nothing: revoked, or holding no role."""
        try:
            log: SecurityLog = self.repository.get(SecurityLog.create_id(actor.user.user_id))
        except AggregateNotFoundError:
            log = SecurityLog(user_id=actor.user.user_id)
        change(log)
        role = actor.user.roles[0] if actor.user.roles else Role.AUDITOR.value
        signer = Signer(actor.user.user_id, actor.user.name, role, meaning, actor.keys)
        try:
            self._save_signed(signer, [log])
        except AuthorityError:
            return False
        return True

    def check_session_authority(self, user_id: str, key_id: str) -> User:
        """The user as they stand now, if the session holding key `key_id` may still sign
        for them: not locked, not revoked, the key still their current one, some role left.
        Read afresh at every signing, so a change made elsewhere ends the session there."""
        user = self.get_user(user_id)
        failures = self.security_queue.failed_sign_ins(user_id)
        if failures >= lockout_after():
            raise AuthorityError(f"user {user_id} is locked after {failures} failed sign-ins")
        if not user.current_key_usable:
            raise AuthorityError(f"user {user_id} is deactivated; their key was revoked")
        if user.key_id != key_id:
            raise AuthorityError(f"the key of {user_id} was rotated since the session started")
        if not user.roles:
            raise AuthorityError(f"user {user_id} holds no role any more")
        return user

    # -- users ---------------------------------------------------------------------------

    def initialise(
        self, ledger_name: str, admin_id: str, admin_name: str, password: str
    ) -> UserSummary:
        """Create the ledger's identity and its first admin (self-signed)."""
        if self.signed_recorder.tree_size() > 0:
            raise LedgerExistsError(f"{self.location.display()} already holds a ledger")
        check_user_id(admin_id)
        keys = KeyPair.generate()
        identity = LedgerRecord(ledger_id=str(uuid.uuid4()), name=ledger_name)
        admin = User(
            user_id=admin_id,
            name=_printed_name(admin_name),
            roles=[Role.ADMIN.value],
            public_key=keys.public_key_hex,
            key_id=keys.key_id,
        )
        with _key_file_kept_only_if_recorded(self.key_file(admin_id, keys.key_id)) as path:
            seal_key_file(path, admin_id, keys, password)
            signer = Signer(admin_id, admin.name, Role.ADMIN, Meaning.AUTHORED, keys)
            self._save_signed(signer, [identity, admin])
        return _summary(admin)

    def register_user(
        self, actor: UnlockedUser, user_id: str, name: str, roles: list[str], password: str
    ) -> UserSummary:
        check_user_id(user_id)
        roles = [Role(r).value for r in roles]
        with contextlib.suppress(UnknownUserError):
            self.get_user(user_id)
            raise LedgerExistsError(f"user {user_id!r} is already registered")
        keys = KeyPair.generate()
        user = User(
            user_id=user_id,
            name=_printed_name(name),
            roles=roles,
            public_key=keys.public_key_hex,
            key_id=keys.key_id,
        )
        with _key_file_kept_only_if_recorded(self.key_file(user_id, keys.key_id)) as path:
            seal_key_file(path, user_id, keys, password)
            self.record(actor, user)
        return _summary(user)

    def grant_role(self, actor: UnlockedUser, user_id: str, role: str) -> UserSummary:
        user = self.get_user(user_id)
        user.grant_role(Role(role).value)
        self.record(actor, user)
        return _summary(user)

    def revoke_role(self, actor: UnlockedUser, user_id: str, role: str) -> UserSummary:
        user = self.get_user(user_id)
        if role not in user.roles:
            self._refuse(actor, User.RoleRevoked.TOPIC,
                         f"{user_id} does not hold the role {role!r}")
        if role == Role.ADMIN:
            self._keep_an_admin(actor, User.RoleRevoked.TOPIC, user_id)
        user.revoke_role(Role(role).value)
        self.record(actor, user)
        return _summary(user)

    def rotate_key(self, actor: UnlockedUser, user_id: str, password: str) -> UserSummary:
        """Give the user a new key; entries signed with the old one stay valid."""
        user = self.get_user(user_id)
        if not user.active:
            self._refuse(actor, User.KeyRotated.TOPIC, f"user {user_id} is deactivated")
        keys = KeyPair.generate()
        user.rotate_key(public_key=keys.public_key_hex, key_id=keys.key_id)
        with _key_file_kept_only_if_recorded(self.key_file(user_id, keys.key_id)) as path:
            seal_key_file(path, user_id, keys, password)
            self.record(actor, user)
        return _summary(user)

    def revoke_user(self, actor: UnlockedUser, user_id: str, reason: str) -> UserSummary:
        """Revoke the user's key: nothing signed with it after this position counts."""
        user = self.get_user(user_id)
        if not user.active:
            self._refuse(actor, User.KeyRevoked.TOPIC, f"user {user_id} is already revoked")
        if Role.ADMIN in user.roles:
            self._keep_an_admin(actor, User.KeyRevoked.TOPIC, user_id)
        user.revoke_key(key_id=user.key_id, reason=reason)
        self.record(actor, user)
        return _summary(user)

    def _keep_an_admin(self, actor: UnlockedUser, action: str, leaving: str) -> None:
        """Nobody could register, rotate or revoke again once no active admin is left."""
        if not any(
            u.active and Role.ADMIN in u.roles and u.user_id != leaving
            for u in self.users.every_user()
        ):
            self._refuse(actor, action, f"{leaving} is the last active admin; grant another first")

    def list_users(self) -> list[UserSummary]:
        ids = [
            UUID(str(n.originator_id))
            for n in self.signed_recorder.select_notifications(
                start=None, limit=1_000_000, topics=[User.Registered.TOPIC]
            )
        ]
        return sorted(
            (_summary(self.repository.get(i, projector_func=project_user)) for i in ids),
            key=lambda s: s.user_id,
        )

    # -- checkpoints and proofs -----------------------------------------------------------

    def checkpoint(self, actor: UnlockedUser, now: datetime) -> SignedCheckpoint:
        """Record a signed tree head over every entry so far, and return it as a note."""
        # Loaded here, not with the ledger: most commands that open one sign no checkpoint.
        from trialctl.ledger.checkpoint import Checkpoint, sign_checkpoint
        from trialctl.ledger.merkle_frontier import frontier_of

        leaf_hashes = self.signed_recorder.leaf_hashes()
        frontier = frontier_of(leaf_hashes)
        root = frontier.root()
        # Kept so that `verify --since-checkpoint` need not read every leaf it covers.
        self.signed_recorder.store_frontier(frontier.size, frontier.to_bytes())
        record = self.ledger_record()
        record.record_checkpoint(tree_size=len(leaf_hashes), root_hash=root.hex())
        # A checkpoint is itself the note its command writes (to -o FILE or --dir): the
        # policy must not follow it with a second checkpoint and a second note.
        self.record(actor, record, policy=False)
        checkpoint = Checkpoint(
            ledger_id=record.ledger_id,
            tree_size=len(leaf_hashes),
            root_hash=root,
            time=format_time(now),
            signer=actor.user.user_id,
        )
        return sign_checkpoint(checkpoint, actor.keys)

    def checkpoint_to(
        self, actor: UnlockedUser, directory: Path, now: datetime
    ) -> tuple[Path, SignedCheckpoint]:
        """`checkpoint` with its note written to `directory` as `<ledger id>-<size>.txt`."""
        size = len(self.signed_recorder.leaf_hashes())
        path = note_path(usable_directory(directory), self.ledger_record().ledger_id, size)
        if path.exists():
            raise RecordingError(f"{path} exists; a checkpoint file is never overwritten")
        signed = self.checkpoint(actor, now)
        # After the commit, whole or not at all: a process killed in between leaves a
        # recorded checkpoint without its note (the next note covers it), never half a note.
        write_note(path, signed.to_text())
        return path, signed

    def _checkpoint_if_due(self, actor: UnlockedUser) -> None:
        """The configured policy: a note outside the database after a signed write."""
        policy = self.checkpoint_policy
        if policy is None:
            return
        record = self.ledger_record()
        if policy.due(record.ledger_id, len(self.signed_recorder.leaf_hashes())):
            self.checkpoint_to(actor, policy.directory, datetime.now(UTC))

    def close(self) -> None:
        engine = self.signed_recorder.datastore.engine
        if isinstance(engine, sqlalchemy.engine.Engine):
            engine.dispose()


def pending_actions(aggregates: Sequence[Aggregate]) -> list[str]:
    """What each pending event asks its signer's authority for (`authority.action_of`)."""
    return [action_of(get_topic(type(e)), vars(e)) for a in aggregates for e in a.pending_events]


def _decision_evidence(
    aggregates: Sequence[Aggregate], evidence: dict[str, Any] | None
) -> Evidence | None:
    """The evidence keyed by the pending cohort decision it belongs to."""
    if evidence is None:
        return None
    return {
        (UUID(str(e.originator_id)), e.originator_version): evidence
        for a in aggregates
        for e in a.pending_events
        if get_topic(type(e)) in EVIDENCE_TYPES
    }


def _no_role(user: User, event_types: Sequence[str]) -> str:
    action = ", ".join(dict.fromkeys(event_types))
    return f"none of {user.user_id}'s roles ({', '.join(user.roles)}) may record {action}"


def _summary(user: User) -> UserSummary:
    return UserSummary(user.user_id, user.name, list(user.roles), user.key_id, user.active)


def _printed_name(name: str) -> str:
    cleaned = " ".join(name.split())
    if not cleaned or len(cleaned) > 200:
        raise KeyFileError("a printed name is 1-200 characters")
    return cleaned


@contextlib.contextmanager
def _key_file_kept_only_if_recorded(path: Path) -> Iterator[Path]:
    """A key file whose registration failed to record is removed again."""
    try:
        yield path
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def _check_sqlite_file(path: Path, create: bool) -> None:
    if path.is_dir():
        raise NotALedgerError(f"{path} is a directory, not a ledger file")
    if create:
        path.parent.mkdir(parents=True, exist_ok=True)
        return
    if not path.exists():
        raise NotALedgerError(f"no ledger at {path} (run 'trialctl init' to make one)")
    # The header is left to SQLite to check (_check_is_ledger): opening and closing the
    # file here would drop every POSIX lock this process holds on it (close() releases them
    # all), and another connection of this process would then write unguarded, which can
    # corrupt the file while other processes write.


def _schema_mismatch(location: LedgerLocation, versions: list[int]) -> str:
    where = location.display()
    if len(versions) != 1:
        return (f"{where} records {len(versions)} schema versions, not one; this trialctl "
                f"reads schema {SCHEMA_VERSION}")
    found = versions[0]
    if found > SCHEMA_VERSION:
        return (f"{where} holds ledger schema {found}, newer than schema {SCHEMA_VERSION} "
                "that this trialctl reads: upgrade trialctl")
    return (f"{where} holds ledger schema {found}, older than schema {SCHEMA_VERSION} that "
            "this trialctl reads: open it with the trialctl that wrote it")


def _unavailable(location: LedgerLocation, error: BaseException) -> DatabaseUnavailableError:
    return DatabaseUnavailableError(
        f"cannot reach the ledger at {location.display()}: {first_line(error)}"
    )


def open_ledger(given: str | None, create: bool = False) -> TrialLedger:
    """Resolve `--ledger` / TRIALCTL_LEDGER / the default and open it."""
    from trialctl.ledger.location import resolve_ledger

    return TrialLedger(resolve_ledger(given), create=create)
