"""`trialctl verify`: check a ledger without trusting the database that holds it.

Every entry: its stored form, its signature against the key valid at its position, the
signer's authority, its link to the previous entry of its aggregate, its place in the dense
global sequence and its Merkle leaf. Then the Merkle root against each checkpoint given, and
consistency between those checkpoints. Findings are collected, never raised: one run lists
every failing entry with its position, aggregate and reason.

The checks live where they divide: `verify_entries` (each entry on its own, in worker
processes), `verify_order` (one ordered pass: sequence, chain, authority) and
`verify_checkpoints`. This module is the public entry point; the per-entry names it
re-exports are for measuring that part alone (benchmarks/).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar

from eventsourcing.persistence import PersistenceError
from sqlalchemy.exc import SQLAlchemyError

from trialctl.ledger.checkpoint import SignedCheckpoint
from trialctl.ledger.errors import VerificationIncompleteError, first_line
from trialctl.ledger.merkle_frontier import PrefixTrees
from trialctl.ledger.recorder import SignedRecorder
from trialctl.ledger.trust import TrustRoots, check_pins
from trialctl.ledger.verify_checkpoints import (
    check_checkpoints,
    check_extends,
    check_recorded_checkpoints,
    check_stored_frontiers,
    frontier_sizes,
    read_old_leaves,
    sizes_named,
    start_after_checkpoint,
    tree_roots,
    tree_sizes_needed,
)
from trialctl.ledger.verify_decisions import check_decisions, check_decisions_along
from trialctl.ledger.verify_entries import (
    BATCH_SIZE,
    PARALLEL_THRESHOLD,
    Checked,
    Row,
    check_entry,
    check_orphan_leaves,
    checked_in_order,
    key_directory,
    read_rows,
    row_count,
)
from trialctl.ledger.verify_order import Auditor
from trialctl.ledger.verify_report import (
    CheckpointResult,
    Finding,
    Override,
    Progress,
    VerificationReport,
)

__all__ = [
    "BATCH_SIZE",
    "PARALLEL_THRESHOLD",
    "CheckpointResult",
    "Finding",
    "Override",
    "Progress",
    "VerificationReport",
    "check_entry",
    "key_directory",
    "read_rows",
    "verify_ledger",
]

T = TypeVar("T")


def verify_ledger(
    recorder: SignedRecorder,
    location: str,
    checkpoints: Sequence[tuple[str, SignedCheckpoint]] = (),
    progress: Progress | None = None,
    workers: int | None = None,
    since: tuple[str, SignedCheckpoint] | None = None,
    batch_size: int = BATCH_SIZE,
    pins: TrustRoots | None = None,
) -> VerificationReport:
    """Check every entry of the ledger, then each checkpoint against it.

    With `since` (a checkpoint verified before), only the entries appended after it are
    checked in full; the older ones are covered by proving, RFC 6962 style, that the tree
    the checkpoint signed is a prefix of today's. The cost follows the new entries.
    `batch_size` caps the entries sent to a worker at once (the benchmark varies it).

    With `pins` (an auditor's trust roots), a genesis or history other than the pinned one
    is a finding too.

    A hostile row is a finding; a database that fails mid-read leaves no verdict, and
    raises VerificationIncompleteError saying why.
    """
    try:
        return _verify(recorder, location, checkpoints, progress, workers, since, batch_size,
                       pins)
    except (SQLAlchemyError, PersistenceError) as e:
        raise VerificationIncompleteError(
            f"verification could not finish: the database failed: {first_line(e)}"
        ) from e


def _verify(
    recorder: SignedRecorder,
    location: str,
    checkpoints: Sequence[tuple[str, SignedCheckpoint]],
    progress: Progress | None,
    workers: int | None,
    since: tuple[str, SignedCheckpoint] | None,
    batch_size: int,
    pins: TrustRoots | None = None,
) -> VerificationReport:
    report = VerificationReport(location)
    # A full verify holds every stored frontier to the leaves; it never relies on one.
    stored = recorder.stored_frontiers() if since is None else []
    pinned = [] if pins is None or pins.last_seen is None else [pins.last_seen.tree_size]
    prefixes = None
    if since is None:
        # The sizes whose trees a check compares, known before the pass so it can keep
        # each tree as it passes, not every leaf.
        prefixes = PrefixTrees({*sizes_named(recorder), *frontier_sizes(stored), *pinned,
                                *(c.checkpoint.tree_size for _, c in checkpoints)})
    auditor = Auditor(report, prefixes=prefixes)
    first_position = 0
    if since is not None:
        first_position = start_after_checkpoint(recorder, auditor, since)
    keys = key_directory(recorder)
    total = row_count(recorder, first_position)
    joined = 0  # rows read with a Merkle leaf
    checked_rows = checked_in_order(
        recorder, first_position, keys, workers or os.cpu_count() or 1, total, batch_size
    )

    def entry_checks() -> Iterator[tuple[Row, dict[str, Any] | None]]:
        """The ordered checks, handing on each row and its whole statement."""
        nonlocal joined
        for done, ((row, checked, statement), following) in enumerate(
                _with_next(checked_rows), start=1):
            next_position = None if following is None else _position_of(*following[:2])
            auditor.check(row, checked, next_position)
            if row.leaf_position is not None:
                joined += 1
            if progress is not None and (done % 500 == 0 or done == total):
                progress(done, total)
            yield row, statement

    # A full verify's decision pass rides along on the entry checks' reading of the
    # ledger; its findings join the report where the pass's own would (below).
    decisions = VerificationReport(location)
    if since is None:
        decisions_done = check_decisions_along(recorder, entry_checks(), decisions)
        auditor.finish()
    else:
        decisions_done = False  # only the trials touched since: their own pass (below)
        for _ in entry_checks():
            pass
    check_orphan_leaves(recorder, joined, report, first_position)
    if since is not None and auditor.base.size and (
            checkpoints or pins or _below(auditor, auditor.base.size)):
        # A tree smaller than the trusted frontier's, or the consistency of other
        # checkpoints, needs the old leaves themselves.
        read_old_leaves(recorder, auditor, since)
    if since is not None:
        check_extends(since, auditor, report)
    trees = tree_roots(recorder, auditor, tree_sizes_needed(
        auditor, checkpoints, [*frontier_sizes(stored), *pinned]))
    report.tree_size = auditor.tree_size
    report.root_hash = trees[auditor.tree_size].root().hex()
    check_recorded_checkpoints(auditor, trees, report)
    check_stored_frontiers(stored, trees, auditor.tree_size, report)
    check_checkpoints(auditor, checkpoints, trees, report)
    # Its own pass: each trial re-checked over its whole history, whatever part was checked
    # entry by entry; after a checkpoint, only the trials touched since.
    if decisions_done:
        report.findings.extend(decisions.findings)
        report.overrides.extend(decisions.overrides)
        report.decisions_checked += decisions.decisions_checked
    else:
        check_decisions(recorder, report,
                        None if since is None else since[1].checkpoint.tree_size)
    if pins is not None:
        check_pins(recorder, auditor.tree_size, lambda size: trees[size].root(), pins,
                   report)
    return report


def _below(auditor: Auditor, size: int) -> bool:
    """Whether a recorded checkpoint or stated tree head names a tree smaller than `size`."""
    return any(s < size for _, _, s, _ in auditor.recorded_checkpoints) or \
        any(s < size for _, _, s, _, _ in auditor.stated_heads)


def _with_next(items: Iterable[T]) -> Iterator[tuple[T, T | None]]:
    """Each item with the one after it (None after the last): the sequence check looks one
    entry ahead to tell an entry stored early from entries gone missing."""
    iterator = iter(items)
    previous = next(iterator, None)
    for item in iterator:
        assert previous is not None
        yield previous, item
        previous = item
    if previous is not None:
        yield previous, None


def _position_of(row: Row, checked: Checked) -> int | None:
    if checked.statement is not None:
        return int(checked.statement["position"])
    return row.leaf_position
