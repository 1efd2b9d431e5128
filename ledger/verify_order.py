"""`verify`'s ordered checks: one pass over the entries in commit order, keeping what each
check needs from the past: the global sequence, each aggregate's hash chain and kind, the
signer's authority as their user record stood just before the entry, and user identity."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.domain import OriginatorIDError, OriginatorVersionError
from eventsourcing.persistence import StoredEvent

from trialctl.ledger.aggregate_kinds import AggregateKind, later_problem, opening_problem
from trialctl.ledger.authority import check_bootstrap, check_signature_authority
from trialctl.ledger.entry import HEX_DIGEST
from trialctl.ledger.history import advanced
from trialctl.ledger.mapper import EntryMapper
from trialctl.ledger.merkle_frontier import Frontier, PrefixTrees
from trialctl.ledger.user_rules import security_log_problem, user_event_problem
from trialctl.ledger.users import (
    SECURITY_LOG_PREFIX,
    USER_EVENT_PREFIX,
    LedgerRecord,
    User,
)
from trialctl.ledger.verify_entries import Checked, Row
from trialctl.ledger.verify_report import Finding, VerificationReport
from trialctl.ledger.verify_sequence import SequenceCheck

# The entries, besides a recorded checkpoint, that state a tree head: what each is called in
# a finding.
STATED_HEADS = {
    LedgerRecord.Exported.TOPIC: "export",
    LedgerRecord.PacketIssued.TOPIC: "committee packet",
    LedgerRecord.AuditReviewed.TOPIC: "audit review",
}

@dataclass(frozen=True)
class Head:
    """What the ordered pass remembers of an aggregate: its last entry and its kind."""

    version: int
    entry_hash: str
    kind: AggregateKind | None = None
    owner: str | None = None  # whose record it is (a user's record or security log)


class Auditor:
    """Walks entries in commit order, keeping what each check needs from the past."""

    def __init__(
        self, report: VerificationReport, first_position: int = 0,
        prefixes: PrefixTrees | None = None,
    ) -> None:
        self.report = report
        self.sequence = SequenceCheck(first_position)
        self.chain: dict[str, Head] = {}
        # Where verification starts after a checkpoint, the entry before the first new one of
        # an aggregate is read from the store (it is committed to by the checkpoint's root).
        self.previous_entry: Callable[[str, int], Head | None] | None = None
        self.users: dict[str, User] = {}
        # The leaves checked, after `base`: the trusted frontier of a checkpoint's tree when
        # `--since-checkpoint` need not read the older leaves, else the empty tree.
        self.base = Frontier()
        # A full verify folds each leaf into `prefixes` and keeps none: memory stays flat
        # in the ledger's size. `--since-checkpoint` keeps the leaves it checks in
        # `leaf_hashes` (a consistency proof may need them with the older ones).
        self.prefixes = prefixes
        self.leaf_hashes: list[bytes] = []
        self.opening: tuple[Row, dict[str, Any]] | None = None
        self.mapper = EntryMapper(transcoder=None)  # type: ignore[arg-type]
        self.ledger_id: str | None = None
        self.recorded_checkpoints: list[tuple[Row, int, int, str]] = []
        # Exports, packets and audit reviews name the tree head they were cut at: each is
        # held to the ledger's own tree at that size, as a recorded checkpoint is.
        self.stated_heads: list[tuple[Row, int, int, str, str]] = []
        self.highest_position = -1
        # Findings about an earlier entry, learnt from a later one: added once the later
        # entry's own fate is decided, so they do not count against it.
        self.deferred: list[Finding] = []

    @property
    def tree_size(self) -> int:
        if self.prefixes is not None:
            return self.prefixes.size
        return self.base.size + len(self.leaf_hashes)

    @property
    def expected_position(self) -> int:
        return self.sequence.expected

    @expected_position.setter
    def expected_position(self, position: int) -> None:
        self.sequence = SequenceCheck(position)

    def fail(self, row: Row, check: str, detail: str, position: int | None = None) -> None:
        self.report.findings.append(
            Finding(check, detail, position, row.notification_id, row.originator_id,
                    row.originator_version, row.topic)
        )

    def apply_user_event(self, row: Row, statement: dict[str, Any]) -> None:
        """Move the signer directory on by one entry that passed every check."""
        if not statement["type"].startswith(USER_EVENT_PREFIX):
            if statement["type"] == LedgerRecord.Initialised.TOPIC:
                self.ledger_id = str(statement["payload"].get("ledger_id"))
            return
        user = self.users.get(statement["aggregate_id"])
        if user is not None:
            # Versions are the chain check's business; entries left out for their findings
            # must not stop the user's later, valid entries from applying.
            user.version = statement["aggregate_version"] - 1
        try:
            stored = StoredEvent(
                UUID(statement["aggregate_id"]), statement["aggregate_version"],
                statement["type"], row.state,
            )
            updated = advanced(user, [stored], self.mapper)
        except (OriginatorIDError, OriginatorVersionError, TypeError, ValueError) as e:
            self.fail(row, "user-record", f"cannot apply user event: {type(e).__name__}: {e}",
                      statement["position"])
            return
        if isinstance(updated, User):
            self.users[statement["aggregate_id"]] = updated

    def user_named(self, user_id: str) -> User | None:
        for user in self.users.values():
            if user.user_id == user_id:
                return user
        return None

    def check(self, row: Row, checked: Checked, next_position: int | None = None) -> None:
        self.report.entries_checked += 1
        if self.prefixes is not None:
            self.prefixes.append(checked.leaf_hash)
        else:
            self.leaf_hashes.append(checked.leaf_hash)
        if checked.statement is None:
            taken = self.sequence.take()
            position = taken if row.leaf_position is None else row.leaf_position
            self._check_column_types(row, position)
            self.fail(row, "entry-format", checked.problem or "unreadable", position)
            self.highest_position = max(self.highest_position, position)
            return
        statement = checked.statement
        position = int(statement["position"])
        self.highest_position = max(self.highest_position, position)
        problem = self.sequence.check(position, next_position)
        if problem is not None:
            self.fail(row, "sequence", problem, position)
        self._check_columns(row, statement, position)
        self._check_leaf(row, checked, position)
        head = self._check_chain(row, statement, checked, position)
        findings_before = len(self.report.findings)
        if checked.signature_problem:
            self.fail(row, "signature", checked.signature_problem, position)
        self._check_authority(row, statement, position, head)
        self._check_record(row, statement, position, head)
        if len(self.report.findings) == findings_before:
            # An unsigned, unauthorised or misplaced entry must not shape what follows.
            if statement["type"] == LedgerRecord.CheckpointRecorded.TOPIC:
                self._remember_checkpoint(row, statement, position)
            elif statement["type"] in STATED_HEADS:
                self._remember_stated_head(row, statement, position)
            self.apply_user_event(row, statement)
        self.report.findings.extend(self.deferred)
        self.deferred.clear()

    def finish(self) -> None:
        """What only the whole ledger shows: whether it opens at all."""
        if self.report.entries_checked == 0:
            self.report.findings.append(Finding(
                "bootstrap", "the ledger holds no entries: a ledger opens with its identity at "
                "position 0 and its first admin at position 1"))
        elif self.highest_position < 1:
            self.report.findings.append(Finding(
                "bootstrap", "the ledger has no first admin registered at position 1",
                position=1))

    def _check_column_types(self, row: Row, position: int) -> bool:
        if row.column_problems:
            self.fail(row, "columns", "; ".join(row.column_problems), position)
        return bool(row.column_problems)

    def _check_columns(self, row: Row, statement: dict[str, Any], position: int) -> None:
        if self._check_column_types(row, position):
            return  # the values of wrong-typed columns would only repeat the finding
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
    ) -> Head:
        aggregate_id = statement["aggregate_id"]
        version = int(statement["aggregate_version"])
        previous = self.chain.get(aggregate_id)
        if previous is None and version > 1 and self.previous_entry is not None:
            previous = self.previous_entry(aggregate_id, version)
        kind, owner = None, None
        if previous is None:
            if version != 1:
                self.fail(row, "chain", f"aggregate starts at version {version}; versions "
                          f"1..{version - 1} are missing", position)
            elif statement["prev_hash"] is not None:
                self.fail(row, "chain", "first entry of its aggregate names a predecessor",
                          position)
        else:
            kind, owner = previous.kind, previous.owner
            if version != previous.version + 1:
                self.fail(row, "chain", f"version {version} follows version "
                          f"{previous.version}", position)
            elif statement["prev_hash"] != previous.entry_hash:
                self.fail(row, "chain", f"prev_hash does not match the hash of version "
                          f"{previous.version}", position)
        if version == 1:
            kind, _ = opening_problem(statement)
            if kind is not None and kind.owner_field is not None:
                owner = statement["payload"].get(kind.owner_field)
        head = Head(version, checked.entry_hash, kind, owner if isinstance(owner, str) else None)
        self.chain[aggregate_id] = head
        return head

    def _check_record(
        self, row: Row, statement: dict[str, Any], position: int, head: Head
    ) -> None:
        """An aggregate holds only its own kind of events, at the id its kind derives, and
        a user's record only changes it as the user-record rules allow."""
        if statement["aggregate_version"] == 1:
            kind, problem = opening_problem(statement)
            if problem is not None:
                self.fail(row, "identity" if kind is not None else "aggregate", problem,
                          position)
                return
        else:
            problem = later_problem(head.kind, statement)
            if problem is not None:
                self.fail(row, "aggregate", problem, position)
                return
        if statement["type"].startswith(USER_EVENT_PREFIX):
            problem = user_event_problem(statement, self.users.get(statement["aggregate_id"]))
            if problem is not None:
                self.fail(row, "user-record", problem, position)

    def _check_authority(
        self, row: Row, statement: dict[str, Any], position: int, head: Head
    ) -> None:
        if position == 0:
            self.opening = (row, statement)
            if statement["type"] != LedgerRecord.Initialised.TOPIC:
                self.fail(row, "authority", "a ledger must open with its identity at "
                          "position 0", position)
            return
        if position == 1:
            self._check_first_admin(row, statement)
            return
        actor = statement["actor"]
        reason = check_signature_authority(
            self.user_named(actor["user_id"]), actor, statement["type"], statement["meaning"],
            statement["payload"],
        )
        if reason is None and statement["type"].startswith(SECURITY_LOG_PREFIX):
            reason = security_log_problem(statement, head.owner)
        if reason is not None:
            self.fail(row, "authority", reason, position)

    def _check_first_admin(self, row: Row, statement: dict[str, Any]) -> None:
        """Position 1 is judged on its own; what is wrong only with position 0 is reported
        there, so a bad opening does not make every later entry an authority finding."""
        stand_in = {
            "type": LedgerRecord.Initialised.TOPIC, "position": 0,
            "actor": statement["actor"], "meaning": statement["meaning"],
        }
        reason = check_bootstrap(stand_in, statement)
        if reason is not None:
            self.fail(row, "authority", reason, 1)
            return
        if self.opening is not None:
            opening_row, opening = self.opening
            if opening["type"] == LedgerRecord.Initialised.TOPIC:
                reason = check_bootstrap(opening, statement)
                if reason is not None:
                    self.deferred.append(Finding(
                        "authority", reason, 0, opening_row.notification_id,
                        opening_row.originator_id, opening_row.originator_version,
                        opening_row.topic))

    def _remember_stated_head(self, row: Row, statement: dict[str, Any], position: int) -> None:
        what = STATED_HEADS[statement["type"]]
        payload = statement["payload"]
        size, root = payload.get("tree_size"), payload.get("root_hash")
        if not isinstance(size, int) or isinstance(size, bool) or not isinstance(root, str) \
                or HEX_DIGEST.fullmatch(root) is None:
            self.fail(row, "tree-head", f"{what} entry does not state a tree_size (integer) "
                      "and a root_hash (64 hex)", position)
            return
        self.stated_heads.append((row, position, size, root, what))

    def _remember_checkpoint(self, row: Row, statement: dict[str, Any], position: int) -> None:
        payload = statement["payload"]
        size, root = payload.get("tree_size"), payload.get("root_hash")
        if set(payload) != {"tree_size", "root_hash"} or not isinstance(size, int) \
                or isinstance(size, bool) or not isinstance(root, str) \
                or HEX_DIGEST.fullmatch(root) is None:
            self.fail(row, "checkpoint", "recorded checkpoint payload is not a tree_size "
                      "(integer) and a root_hash (64 hex)", position)
            return
        self.recorded_checkpoints.append((row, position, size, root))
