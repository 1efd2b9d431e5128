"""Inclusion and consistency proofs served from the ledger's Merkle leaves."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from trialctl.ledger.entry import parse_entry
from trialctl.ledger.errors import LedgerError
from trialctl.ledger.merkle import (
    consistency_proof,
    hash_leaf,
    inclusion_proof,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)
from trialctl.ledger.recorder import SignedRecorder


@dataclass(frozen=True)
class InclusionProof:
    position: int
    tree_size: int
    leaf_hash: bytes
    root_hash: bytes
    proof: list[bytes]
    statement: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "tree_size": self.tree_size,
            "leaf_hash": self.leaf_hash.hex(),
            "root_hash": self.root_hash.hex(),
            "proof": [h.hex() for h in self.proof],
            "aggregate_id": self.statement["aggregate_id"],
            "aggregate_version": self.statement["aggregate_version"],
            "type": self.statement["type"],
        }


@dataclass(frozen=True)
class ConsistencyProof:
    old_size: int
    new_size: int
    old_root: bytes
    new_root: bytes
    proof: list[bytes]

    def to_dict(self) -> dict[str, Any]:
        return {
            "old_size": self.old_size,
            "new_size": self.new_size,
            "old_root": self.old_root.hex(),
            "new_root": self.new_root.hex(),
            "proof": [h.hex() for h in self.proof],
        }


def _tree(recorder: SignedRecorder, size: int | None) -> list[bytes]:
    leaf_hashes = recorder.leaf_hashes()
    if size is None:
        return leaf_hashes
    if not 0 < size <= len(leaf_hashes):
        raise LedgerError(f"tree size {size} is outside 1..{len(leaf_hashes)}")
    return leaf_hashes[:size]


def prove_inclusion(
    recorder: SignedRecorder, position: int, tree_size: int | None = None
) -> InclusionProof:
    leaf_hashes = _tree(recorder, tree_size)
    if not 0 <= position < len(leaf_hashes):
        raise LedgerError(f"position {position} is outside 0..{len(leaf_hashes) - 1}")
    found = recorder.entry_at(position)
    if found is None:
        raise LedgerError(f"no entry at position {position}")
    entry = found[1].state
    leaf_hash = hash_leaf(entry)
    proof = inclusion_proof(position, leaf_hashes)
    root = root_from_leaf_hashes(leaf_hashes)
    verify_inclusion(position, len(leaf_hashes), leaf_hash, proof, root)
    return InclusionProof(
        position, len(leaf_hashes), leaf_hash, root, proof, parse_entry(entry).statement
    )


def prove_consistency(
    recorder: SignedRecorder, old_size: int, new_size: int | None = None
) -> ConsistencyProof:
    leaf_hashes = _tree(recorder, new_size)
    if not 0 < old_size <= len(leaf_hashes):
        raise LedgerError(f"old size {old_size} is outside 1..{len(leaf_hashes)}")
    proof = consistency_proof(old_size, leaf_hashes)
    old_root = root_from_leaf_hashes(leaf_hashes[:old_size])
    new_root = root_from_leaf_hashes(leaf_hashes)
    verify_consistency(old_size, len(leaf_hashes), old_root, new_root, proof)
    return ConsistencyProof(old_size, len(leaf_hashes), old_root, new_root, proof)
