"""`verify`'s checkpoint checks: the Merkle root against each checkpoint given and each one
the ledger recorded, RFC 6962 consistency between checkpoints, and, for `--since`, bringing
the ordered checks to a verified checkpoint's tree size without re-checking older entries."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from uuid import UUID

from trialctl.ledger.aggregate_kinds import opening_problem
from trialctl.ledger.checkpoint import SignedCheckpoint
from trialctl.ledger.entry import MalformedEntryError, entry_hash, parse_entry
from trialctl.ledger.errors import LedgerError
from trialctl.ledger.merkle import (
    MerkleError,
    consistency_proof,
    hash_leaf,
    root_from_leaf_hashes,
    verify_consistency,
)
from trialctl.ledger.merkle_frontier import Frontier, FrontierError, frontiers_at
from trialctl.ledger.recorder import SignedRecorder
from trialctl.ledger.users import USER_TOPICS, LedgerRecord
from trialctl.ledger.verify_entries import read_rows
from trialctl.ledger.verify_order import STATED_HEADS, Auditor, Head
from trialctl.ledger.verify_report import CheckpointResult, Finding, VerificationReport


def start_after_checkpoint(
    recorder: SignedRecorder, auditor: Auditor, since: tuple[str, SignedCheckpoint]
) -> int:
    """Bring the auditor to the checkpoint's tree size without re-checking old entries:
    the users and keys as they stood there, and the old leaves as the store holds them."""
    source, signed = since
    size = signed.checkpoint.tree_size
    auditor.report.since_tree_size = size
    auditor.expected_position = size
    for row in read_rows(recorder, topics=(*USER_TOPICS, LedgerRecord.Initialised.TOPIC)):
        try:
            entry = parse_entry(row.state)
        except MalformedEntryError:
            continue
        if entry.position < size:
            auditor.apply_user_event(row, entry.statement)
    problem = checkpoint_signer_ok(auditor, signed)
    if problem is not None:
        auditor.report.findings.append(Finding("checkpoint", f"{source}: {problem}"))
    base, why_not = trusted_frontier(recorder, signed)
    if base is not None:
        auditor.base = base
    else:
        auditor.report.notes.append(
            f"{source}: {why_not}: every leaf before tree size {size} was read instead")
        read_old_leaves(recorder, auditor, since)

    def previous_entry(aggregate_id: str, version: int) -> Head | None:
        """The aggregate's entry before `version`, with its kind read from its version 1."""
        found = recorder.select_events(UUID(aggregate_id), lte=version - 1, desc=True, limit=1)
        first = recorder.select_events(UUID(aggregate_id), lte=1, limit=1)
        if not found or found[0].originator_version != version - 1 or not first:
            return None
        try:
            opening = parse_entry(first[0].state).statement
        except MalformedEntryError:
            return Head(version - 1, entry_hash(found[0].state))
        kind, _ = opening_problem(opening)
        owner = opening["payload"].get(kind.owner_field) if kind and kind.owner_field else None
        return Head(version - 1, entry_hash(found[0].state), kind,
                    owner if isinstance(owner, str) else None)

    auditor.previous_entry = previous_entry
    return size


def trusted_frontier(
    recorder: SignedRecorder, signed: SignedCheckpoint
) -> tuple[Frontier | None, str]:
    """The frontier stored for the checkpoint's tree size, if it reproduces the root the
    checkpoint signed (else None, and why not). Only then may the leaves it stands for go
    unread: the signed root commits to those hashes, whoever stored them."""
    size = signed.checkpoint.tree_size
    rows = recorder.stored_frontiers(size)
    if not rows:
        return None, f"no frontier is stored for tree size {size}"
    try:
        frontier = Frontier.from_bytes(*rows[0])
    except FrontierError as e:
        return None, f"the frontier stored for tree size {size} is malformed ({e})"
    if frontier.root() != signed.checkpoint.root_hash:
        return None, (f"the frontier stored for tree size {size} does not reproduce the "
                      "signed root")
    if recorder.tree_size() < size:
        return None, f"the ledger holds fewer leaves than the checkpoint's {size}"
    return frontier, ""


def read_old_leaves(
    recorder: SignedRecorder, auditor: Auditor, since: tuple[str, SignedCheckpoint]
) -> None:
    """Every leaf before the checkpoint after all: a check needs a tree smaller than the
    checkpoint's, or no stored frontier could be trusted. The consistency proof then holds
    those leaves to the signed root."""
    source, signed = since
    size = signed.checkpoint.tree_size
    old: list[bytes] = []
    try:
        old = recorder.leaf_hashes(upto=size)
    except LedgerError as e:
        auditor.report.findings.append(Finding("leaf", f"{e} (before {source})"))
    if len(old) < size:
        auditor.report.findings.append(Finding(
            "checkpoint", f"{source}: ledger truncated: the checkpoint covers {size} entries, "
            f"the ledger holds {len(old)}"))
    auditor.leaf_hashes = [*old, *auditor.leaf_hashes]
    auditor.base = Frontier()


def check_extends(
    since: tuple[str, SignedCheckpoint], auditor: Auditor, report: VerificationReport,
) -> None:
    source, signed = since
    old_size = signed.checkpoint.tree_size
    if auditor.base.size:
        # Today's tree was built on the trusted frontier of the signed one: it extends it.
        report.checkpoints.append(CheckpointResult(source, old_size, signed.checkpoint.signer,
                                                   "ok"))
        return
    leaf_hashes = auditor.leaf_hashes
    if len(leaf_hashes) < old_size or not old_size:
        return
    try:
        proof = consistency_proof(old_size, list(leaf_hashes))
        verify_consistency(old_size, len(leaf_hashes), signed.checkpoint.root_hash,
                           root_from_leaf_hashes(leaf_hashes), proof)
    except MerkleError as e:
        report.findings.append(Finding(
            "consistency", f"history rewritten before {source}: today's tree does not extend "
            f"the one it signed ({e})"))
    report.checkpoints.append(CheckpointResult(
        source, old_size, signed.checkpoint.signer,
        "ok" if not any(f.check == "consistency" for f in report.findings) else "inconsistent"))



def tree_sizes_needed(
    auditor: Auditor, checkpoints: Sequence[tuple[str, SignedCheckpoint]],
    extra: Sequence[int] = (),
) -> set[int]:
    """Every tree size whose root a check compares: today's, each recorded checkpoint's and
    stated tree head's (as much of it as the ledger holds), each checkpoint given."""
    size = auditor.tree_size
    stated = [s for _, _, s, _ in auditor.recorded_checkpoints] + \
        [s for _, _, s, _, _ in auditor.stated_heads]
    return {size, *(min(s, size) for s in stated if s >= 0),
            *(c.checkpoint.tree_size for _, c in checkpoints if c.checkpoint.tree_size <= size),
            *(s for s in extra if 0 <= s <= size)}


def sizes_named(recorder: SignedRecorder) -> set[int]:
    """The tree sizes the ledger's recorded checkpoints and stated tree heads name, read up
    front (few rows) so a full verify can keep the tree at each size as its pass reaches
    it, instead of every leaf. Only which sizes to keep: the checks read the entries in
    the pass, and a size missed here is recomputed (`tree_roots`)."""
    topics = (LedgerRecord.CheckpointRecorded.TOPIC, *STATED_HEADS)
    sizes: set[int] = set()
    for row in read_rows(recorder, topics=topics):
        try:
            size = parse_entry(row.state).statement["payload"].get("tree_size")
        except (MalformedEntryError, AttributeError, KeyError):
            continue
        if isinstance(size, int) and not isinstance(size, bool) and size >= 0:
            sizes.add(size)
    return sizes


def tree_roots(
    recorder: SignedRecorder, auditor: Auditor, sizes: set[int]
) -> dict[int, Frontier]:
    """The tree at each size: kept by the full verify's fold, else in one pass over the
    leaves the auditor holds."""
    prefixes = auditor.prefixes
    if prefixes is None:
        return frontiers_at(auditor.base, auditor.leaf_hashes, sizes)
    trees: dict[int, Frontier] = {}
    for size in sizes:
        tree = prefixes.at(size)
        if tree is not None:
            trees[size] = tree
    missing = sizes - set(trees)
    if missing:
        # A size the reading up front did not see (an entry written meanwhile): hash the
        # leaves again, as the pass did, from the rows in the same order.
        leaves = (hash_leaf(row.state) for row in read_rows(recorder))
        trees.update(frontiers_at(Frontier(), leaves, missing))
    return trees


def check_recorded_checkpoints(
    auditor: Auditor, trees: Mapping[int, Frontier], report: VerificationReport
) -> None:
    def root_at(size: int) -> str:
        return trees[min(size, auditor.tree_size)].root().hex()

    for row, position, size, root in auditor.recorded_checkpoints:
        if not 0 <= size <= position:
            # A recorded checkpoint covers entries all earlier than itself (FORMAT.md 11).
            auditor.fail(row, "checkpoint", f"recorded checkpoint of size {size} covers "
                         "entries that are not all earlier than it", position)
        elif root_at(size) != root:
            auditor.fail(row, "checkpoint", f"recorded checkpoint root for size {size} does "
                         "not match the entries", position)
    for row, position, size, root, what in auditor.stated_heads:
        if not 0 <= size <= position:
            auditor.fail(row, "tree-head", f"{what} states tree size {size}, which does not "
                         "end before its own entry", position)
            continue
        actual = root_at(size)
        if actual != root:
            auditor.fail(row, "tree-head", f"{what} states root {root[:16]}… for tree size "
                         f"{size}; the ledger's first {size} entries hash to {actual[:16]}…",
                         position)


def checkpoint_signer_ok(auditor: Auditor, signed: SignedCheckpoint) -> str | None:
    user = auditor.user_named(signed.checkpoint.signer)
    if user is None:
        return f"signed by {signed.checkpoint.signer!r}, who is not a user of this ledger"
    for key_id in [user.key_id, *user.past_keys]:
        if key_id in user.revoked_keys:
            continue  # a revoked key vouches for nothing
        public_key = user.public_key_for(key_id)
        if public_key and signed.signature_valid_for(public_key, key_id):
            return None
    return "signature does not verify with any key of its signer"


def check_stored_frontiers(
    rows: Sequence[tuple[object, object]], trees: Mapping[int, Frontier], tree_size: int,
    report: VerificationReport,
) -> None:
    """A full verify trusts no stored frontier, yet holds each to the leaves: one that
    disagrees with them (or cannot be a frontier at all) is a finding."""
    for size, packed in rows:
        try:
            stored = Frontier.from_bytes(size, packed)
        except FrontierError as e:
            report.findings.append(Finding("frontier", f"stored frontier row for tree size "
                                           f"{size!r} is malformed: {e}"))
            continue
        if stored.size > tree_size:
            report.findings.append(Finding(
                "frontier", f"a frontier is stored for tree size {stored.size}; the ledger "
                f"holds {tree_size} entries"))
        elif stored.hashes != trees[stored.size].hashes:
            report.findings.append(Finding(
                "frontier", f"the frontier stored for tree size {stored.size} disagrees with "
                f"the ledger's first {stored.size} leaves (root "
                f"{stored.root().hex()[:16]}…, the leaves hash to "
                f"{trees[stored.size].root().hex()[:16]}…)"))


def frontier_sizes(rows: Sequence[tuple[object, object]]) -> list[int]:
    return [size for size, _ in rows if isinstance(size, int) and not isinstance(size, bool)]


def check_checkpoints(
    auditor: Auditor,
    checkpoints: Sequence[tuple[str, SignedCheckpoint]],
    trees: Mapping[int, Frontier],
    report: VerificationReport,
) -> None:
    tree_size = auditor.tree_size
    for source, signed in checkpoints:
        checkpoint = signed.checkpoint
        problem = checkpoint_signer_ok(auditor, signed)
        if problem is None and auditor.ledger_id and checkpoint.ledger_id != auditor.ledger_id:
            problem = f"checkpoint is for ledger {checkpoint.ledger_id}, not {auditor.ledger_id}"
        if problem is None and checkpoint.tree_size > tree_size:
            problem = (
                f"ledger truncated: the checkpoint covers {checkpoint.tree_size} entries, "
                f"the ledger holds {tree_size}"
            )
        if problem is None:
            root = trees[checkpoint.tree_size].root()
            if root != checkpoint.root_hash:
                problem = (
                    f"history rewritten: the first {checkpoint.tree_size} entries hash to "
                    f"{root.hex()[:16]}…, the checkpoint says {checkpoint.root_hash.hex()[:16]}…"
                )
        if problem is not None:
            report.findings.append(Finding("checkpoint", f"{source}: {problem}"))
        report.checkpoints.append(
            CheckpointResult(source, checkpoint.tree_size, checkpoint.signer,
                             "ok" if problem is None else problem)
        )
    # No consistency proof between the checkpoints that pass is needed: the root of each is
    # the ledger's own tree at its size, so the smaller is a prefix of the larger by
    # construction (an RFC 6962 proof cut from those leaves could not fail).
