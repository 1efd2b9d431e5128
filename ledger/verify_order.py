"""`verify`'s ordered checks: one pass over the entries in commit order, keeping what each
check needs from the past: the dense global sequence, each aggregate's hash chain, the
signer's authority as their user record stood just before the entry, and user identity."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from trialctl.ledger.authority import check_bootstrap, check_signature_authority
from trialctl.ledger.history import advanced
from trialctl.ledger.mapper import EntryMapper
from trialctl.ledger.users import USER_EVENT_PREFIX, LedgerRecord, User, user_aggregate_id
from trialctl.ledger.verify_entries import Checked, Row
from trialctl.ledger.verify_report import Finding, VerificationReport


class Auditor:
    """Walks entries in commit order, keeping what each check needs from the past."""

    def __init__(self, report: VerificationReport, first_position: int = 0) -> None:
        self.report = report
        self.expected_position = first_position
        self.chain: dict[str, tuple[int, str]] = {}
        # Where verification starts after a checkpoint, the entry before the first new one of
        # an aggregate is read from the store (it is committed to by the checkpoint's root).
        self.previous_entry: Callable[[str, int], tuple[int, str] | None] | None = None
        self.users: dict[str, User] = {}
        self.leaf_hashes: list[bytes] = []
        self.opening: dict[str, Any] | None = None
        self.mapper = EntryMapper(transcoder=None)  # type: ignore[arg-type]
        self.ledger_id: str | None = None
        self.recorded_checkpoints: list[tuple[Row, int, int, str]] = []

    def fail(self, row: Row, check: str, detail: str, position: int | None = None) -> None:
        self.report.findings.append(
            Finding(check, detail, position, row.notification_id, row.originator_id,
                    row.originator_version, row.topic)
        )

    def apply_user_event(self, row: Row, statement: dict[str, Any]) -> None:
        if not statement["type"].startswith(USER_EVENT_PREFIX):
            if statement["type"] == LedgerRecord.Initialised.TOPIC:
                self.ledger_id = str(statement["payload"].get("ledger_id"))
            return
        try:
            stored = StoredEvent(
                UUID(row.originator_id), row.originator_version, row.topic, row.state
            )
            updated = advanced(self.users.get(row.originator_id), [stored], self.mapper)
        except Exception as e:
            self.fail(row, "user-record", f"cannot apply user event: {e}")
            return
        if isinstance(updated, User):
            self.users[row.originator_id] = updated

    def user_named(self, user_id: str) -> User | None:
        for user in self.users.values():
            if user.user_id == user_id:
                return user
        return None

    def check(self, row: Row, checked: Checked) -> None:
        self.report.entries_checked += 1
        self.leaf_hashes.append(checked.leaf_hash)
        if checked.statement is None:
            self.fail(row, "entry-format", checked.problem or "unreadable")
            self.expected_position += 1
            return
        statement = checked.statement
        position = int(statement["position"])
        self._check_sequence(row, position)
        self._check_columns(row, statement, position)
        self._check_leaf(row, checked, position)
        self._check_chain(row, statement, checked, position)
        findings_before = len(self.report.findings)
        if checked.signature_problem:
            self.fail(row, "signature", checked.signature_problem, position)
        self._check_authority(row, statement, position)
        self._check_identity(row, statement, position)
        if len(self.report.findings) > findings_before:
            return  # an unsigned or unauthorised change to a user must not shape what follows
        if statement["type"] == LedgerRecord.CheckpointRecorded.TOPIC:
            payload = statement["payload"]
            self.recorded_checkpoints.append(
                (row, position, int(payload.get("tree_size", -1)), str(payload.get("root_hash")))
            )
        self.apply_user_event(row, statement)

    def _check_sequence(self, row: Row, position: int) -> None:
        if position > self.expected_position:
            missing = position - self.expected_position
            self.fail(row, "sequence", f"{missing} entr{'y' if missing == 1 else 'ies'} "
                      f"missing before this one (expected position {self.expected_position})",
                      position)
        elif position < self.expected_position:
            self.fail(row, "sequence", f"out of order: position {position} comes after "
                      f"{self.expected_position - 1}", position)
        self.expected_position = max(self.expected_position, position) + 1

    def _check_columns(self, row: Row, statement: dict[str, Any], position: int) -> None:
        if (
            statement["aggregate_id"] != row.originator_id
            or statement["aggregate_version"] != row.originator_version
            or statement["type"] != row.topic
        ):
            self.fail(row, "columns", "row's aggregate, version or type differ from what was "
                      "signed", position)

    def _check_leaf(self, row: Row, checked: Checked, position: int) -> None:
        if row.leaf_position is None:
            self.fail(row, "leaf", "entry has no Merkle leaf", position)
        elif row.leaf_position != position:
            self.fail(row, "leaf", f"Merkle leaf is numbered {row.leaf_position}", position)
        elif row.leaf_hash != checked.leaf_hash:
            self.fail(row, "leaf", "stored leaf hash does not match the entry", position)

    def _check_chain(
        self, row: Row, statement: dict[str, Any], checked: Checked, position: int
    ) -> None:
        version = int(statement["aggregate_version"])
        previous = self.chain.get(row.originator_id)
        if previous is None and version > 1 and self.previous_entry is not None:
            previous = self.previous_entry(row.originator_id, version)
        if previous is None:
            if version != 1:
                self.fail(row, "chain", f"aggregate starts at version {version}; versions "
                          f"1..{version - 1} are missing", position)
            elif statement["prev_hash"] is not None:
                self.fail(row, "chain", "first entry of its aggregate names a predecessor",
                          position)
        else:
            previous_version, previous_hash = previous
            if version != previous_version + 1:
                self.fail(row, "chain", f"version {version} follows version "
                          f"{previous_version}", position)
            elif statement["prev_hash"] != previous_hash:
                self.fail(row, "chain", f"prev_hash does not match the hash of version "
                          f"{previous_version}", position)
        self.chain[row.originator_id] = (version, checked.entry_hash)

    def _check_identity(self, row: Row, statement: dict[str, Any], position: int) -> None:
        """A user's record lives at the id derived from their user id, so nobody can be
        registered twice under two aggregates."""
        if statement["type"] == User.Registered.TOPIC:
            user_id = statement["payload"].get("user_id")
            if not isinstance(user_id, str) or statement["aggregate_id"] != str(
                user_aggregate_id(user_id)
            ):
                self.fail(row, "identity", f"user {user_id!r} registered under an aggregate id "
                          "not derived from it", position)

    def _check_authority(self, row: Row, statement: dict[str, Any], position: int) -> None:
        if position == 0:
            self.opening = statement
            return
        if position == 1 and self.opening is not None:
            reason = check_bootstrap(self.opening, statement)
            if reason is not None:
                self.fail(row, "authority", reason, position)
            return
        actor = statement["actor"]
        reason = check_signature_authority(
            self.user_named(actor["user_id"]), actor, statement["type"], statement["meaning"]
        )
        if reason is not None:
            self.fail(row, "authority", reason, position)

