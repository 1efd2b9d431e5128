"""A checkpoint keeps its tree's frontier (the O(log n) roots of the perfect subtrees the
tree is made of): `verify --since-checkpoint` trusts it only when it reproduces the root
the checkpoint signed, and then reads no older leaf; a full verify trusts none and holds
every stored frontier to the leaves. On SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest

from tests.ledgers import Staff, drop_append_only_triggers, engine_for, make_staff, rows, sql
from trialctl.ledger.checkpoint import SignedCheckpoint
from trialctl.ledger.entry import parse_entry, seal
from trialctl.ledger.merkle import hash_leaf, root_from_leaf_hashes
from trialctl.ledger.merkle_frontier import Frontier, FrontierError, frontier_of, frontiers_at
from trialctl.ledger.recorder import SignedRecorder
from trialctl.ledger.verify import VerificationReport, verify_ledger

SIZE = 4  # the checkpoint covers: 0 ledger, 1 alice, 2 bob, 3 carol


def test_a_frontier_gives_the_root_of_every_tree_size() -> None:
    leaves = [hashlib.sha256(bytes([i])).digest() for i in range(70)]
    for size in range(71):
        frontier = frontier_of(leaves[:size])
        assert frontier.root() == root_from_leaf_hashes(leaves[:size])
        assert Frontier.from_bytes(size, frontier.to_bytes()) == frontier
    # Folding in from a frontier: each prefix root in one pass.
    sizes = [13, 14, 32, 33, 70]
    found = frontiers_at(frontier_of(leaves[:13]), leaves[13:], sizes)
    assert {s: f.root() for s, f in found.items()} == {
        s: root_from_leaf_hashes(leaves[:s]) for s in sizes}
    for size, packed in [(-1, b""), (True, b""), ("3", b""), (3, b"x" * 32), (3, "hex")]:
        with pytest.raises(FrontierError):
            Frontier.from_bytes(size, packed)


def _checkpointed(url: str) -> tuple[Staff, tuple[str, SignedCheckpoint]]:
    staff = make_staff(url)
    signed = staff.app.checkpoint(staff.alice, datetime.now(UTC))
    staff.app.grant_role(staff.alice, "bob", "data-manager")
    staff.app.grant_role(staff.alice, "carol", "monitor")
    return staff, ("cp.txt", signed)


def _verify(staff: Staff, since: tuple[str, SignedCheckpoint] | None = None
            ) -> VerificationReport:
    return verify_ledger(staff.app.signed_recorder, staff.url, workers=1, since=since)


def test_a_frontier_that_reproduces_the_signed_root_stands_for_the_old_leaves(
    ledger_url: str, home: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    staff, since = _checkpointed(ledger_url)
    full = _verify(staff)
    assert full.findings == []

    def no_old_leaf(self: SignedRecorder, upto: int | None = None) -> list[bytes]:
        raise AssertionError("an old leaf was read")

    monkeypatch.setattr(SignedRecorder, "leaf_hashes", no_old_leaf)
    report = _verify(staff, since)

    assert report.findings == [] and report.notes == []
    assert (report.entries_checked, report.tree_size, report.root_hash) == (
        3, 7, full.root_hash)
    assert [(c.tree_size, c.status) for c in report.checkpoints] == [(SIZE, "ok")]
    staff.app.close()


def _rewrite_bob(staff: Staff) -> list[bytes]:
    """Bob's registration (position 2) re-signed with the admin's stolen key, its leaf
    with it; returns the leaves as they now stand."""
    engine = engine_for(staff.url)
    try:
        drop_append_only_triggers(engine)
        notification_id, _, position, state = rows(engine)[2]
        statement = parse_entry(state).statement
        statement["payload"]["name"] = "Bob Forged"
        forged = seal(statement, staff.alice.keys)
        sql(engine, "UPDATE trialctl_events SET state = :s WHERE id = :i", s=forged,
            i=notification_id)
        sql(engine, "UPDATE trialctl_leaves SET leaf_hash = :h WHERE position = :p",
            h=hash_leaf(forged), p=position)
    finally:
        engine.dispose()
    return staff.app.signed_recorder.leaf_hashes()


def _set_frontier(staff: Staff, size: object, packed: bytes) -> None:
    engine = engine_for(staff.url)
    try:
        sql(engine, "DELETE FROM trialctl_frontiers WHERE tree_size = :n", n=size)
        sql(engine, "INSERT INTO trialctl_frontiers (tree_size, hashes) VALUES (:n, :h)",
            n=size, h=packed)
    finally:
        engine.dispose()


def test_an_old_rewrite_with_a_forged_frontier_is_caught(ledger_url: str, home: object) -> None:
    staff, since = _checkpointed(ledger_url)
    leaves = _rewrite_bob(staff)
    # The frontier recomputed from the rewritten leaves: it no longer gives the signed root.
    _set_frontier(staff, SIZE, frontier_of(leaves[:SIZE]).to_bytes())

    incremental = _verify(staff, since)
    assert incremental.notes == [
        f"cp.txt: the frontier stored for tree size {SIZE} does not reproduce the signed "
        f"root: every leaf before tree size {SIZE} was read instead"]
    assert "consistency" in [f.check for f in incremental.findings]

    # A full verify relies on no frontier: the checkpoint recorded at position 4 names the
    # root the first four entries had.
    full = _verify(staff)
    assert ("checkpoint", SIZE) in [(f.check, f.position) for f in full.findings]
    staff.app.close()


def test_hostile_frontier_rows_are_findings_of_a_full_verify_and_ignored_after_a_checkpoint(
    ledger_url: str, home: object
) -> None:
    staff, since = _checkpointed(ledger_url)
    leaves = staff.app.signed_recorder.leaf_hashes()
    _set_frontier(staff, 3, b"short")
    _set_frontier(staff, 99, b"\0" * 32 * (99).bit_count())
    wrong = frontier_of(reversed(leaves[:SIZE]))  # the right shape, the wrong hashes
    _set_frontier(staff, SIZE, wrong.to_bytes())

    details = sorted(f.detail for f in _verify(staff).findings if f.check == "frontier")
    assert details == [
        "a frontier is stored for tree size 99; the ledger holds 7 entries",
        "stored frontier row for tree size 3 is malformed: 5 bytes of hashes; a tree of size "
        "3 has 2 subtrees (64 bytes)",
        f"the frontier stored for tree size {SIZE} disagrees with the ledger's first {SIZE} "
        f"leaves (root {wrong.root().hex()[:16]}…, the leaves hash to "
        f"{root_from_leaf_hashes(leaves[:SIZE]).hex()[:16]}…)",
    ]
    # After a checkpoint the untrusted frontier is set aside for the leaves, which hold.
    incremental = _verify(staff, since)
    assert incremental.findings == []
    assert incremental.notes == [
        f"cp.txt: the frontier stored for tree size {SIZE} does not reproduce the signed "
        f"root: every leaf before tree size {SIZE} was read instead"]
    staff.app.close()
