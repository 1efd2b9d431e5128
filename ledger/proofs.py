"""Inclusion and consistency proofs served from the ledger's Merkle leaves."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from trialctl.ledger.entry import parse_entry
from trialctl.ledger.errors import LedgerError
from trialctl.ledger.merkle import (
    MerkleError,
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


# --------------------------------------------------------------------------- checking a proof
# The side an outside party runs on a proof it was sent: nothing here reads a ledger. The
# roots come from the caller (a root it trusts, or a checkpoint note), never from the
# document, which anyone could have written.


class ProofRejectedError(LedgerError):
    """A proof document that is malformed or does not lead to the trusted root."""


@dataclass(frozen=True)
class CheckedProof:
    """What a proof that held establishes, for rendering."""

    kind: str
    tree_size: int
    root_hash: bytes
    position: int | None = None
    leaf_hash: bytes | None = None
    old_size: int | None = None
    old_root: bytes | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"ok": True, "kind": self.kind, "tree_size": self.tree_size,
                                "root_hash": self.root_hash.hex()}
        if self.kind == "inclusion":
            assert self.leaf_hash is not None
            data.update(position=self.position, leaf_hash=self.leaf_hash.hex())
        else:
            assert self.old_root is not None
            data.update(old_size=self.old_size, old_root=self.old_root.hex())
        return data


def proof_kind(document: object) -> str:
    """"inclusion" or "consistency", read from the fields the producing commands print."""
    if not isinstance(document, dict):
        raise ProofRejectedError("a proof is a JSON object")
    if "position" in document and "old_size" not in document:
        return "inclusion"
    if "old_size" in document and "position" not in document:
        return "consistency"
    raise ProofRejectedError("a proof has either 'position' (inclusion) or 'old_size' "
                             "(consistency)")


def _count(document: dict[str, Any], field: str) -> int:
    value = document.get(field)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProofRejectedError(f"'{field}' must be an integer")
    if value < 0:
        raise ProofRejectedError(f"'{field}' must not be negative")
    return value


def parse_hash(text: object, what: str) -> bytes:
    """Hex as the producing commands print it; its length is checked with the proof's shape."""
    if not isinstance(text, str):
        raise ProofRejectedError(f"{what} must be a hex string")
    try:
        return bytes.fromhex(text)
    except ValueError as e:
        raise ProofRejectedError(f"{what} is not hex") from e


def _path(document: dict[str, Any]) -> list[bytes]:
    proof = document.get("proof")
    if not isinstance(proof, list):
        raise ProofRejectedError("'proof' must be a list of hex hashes")
    return [parse_hash(h, f"proof[{i}]") for i, h in enumerate(proof)]


def _merkle(error: MerkleError) -> ProofRejectedError:
    return ProofRejectedError(str(error))


def check_inclusion_document(
    document: object, root: bytes, tree_size: int | None = None, entry: bytes | None = None
) -> CheckedProof:
    """Check an inclusion proof against a trusted root (and the size it was signed with)."""
    if proof_kind(document) != "inclusion":
        raise ProofRejectedError("this is a consistency proof, not an inclusion proof")
    assert isinstance(document, dict)
    position = _count(document, "position")
    size = _count(document, "tree_size")
    if tree_size is not None and size != tree_size:
        raise ProofRejectedError(
            f"the proof is for a tree of size {size}, the checkpoint signed size {tree_size}")
    if entry is not None:
        leaf_hash = hash_leaf(entry)
        if "leaf_hash" in document and parse_hash(document["leaf_hash"], "leaf_hash") \
                != leaf_hash:
            raise ProofRejectedError("the entry's leaf hash is not the proof's 'leaf_hash'")
    elif "leaf_hash" in document:
        leaf_hash = parse_hash(document["leaf_hash"], "leaf_hash")
    else:
        raise ProofRejectedError("an inclusion proof needs 'leaf_hash' or the entry's bytes")
    try:
        verify_inclusion(position, size, leaf_hash, _path(document), root)
    except MerkleError as e:
        raise _merkle(e) from e
    return CheckedProof("inclusion", size, root, position=position, leaf_hash=leaf_hash)


def check_consistency_document(
    document: object, old_root: bytes, new_root: bytes,
    old_size: int | None = None, new_size: int | None = None,
) -> CheckedProof:
    """Check a consistency proof between two trusted roots (and the sizes they were signed
    with, when they come from checkpoints)."""
    if proof_kind(document) != "consistency":
        raise ProofRejectedError("this is an inclusion proof, not a consistency proof")
    assert isinstance(document, dict)
    old = _count(document, "old_size")
    new = _count(document, "new_size")
    for claimed, signed, name in ((old, old_size, "old"), (new, new_size, "new")):
        if signed is not None and claimed != signed:
            raise ProofRejectedError(f"the proof's {name} size is {claimed}, the checkpoint "
                                     f"signed size {signed}")
    try:
        verify_consistency(old, new, old_root, new_root, _path(document))
    except MerkleError as e:
        raise _merkle(e) from e
    return CheckedProof("consistency", new, new_root, old_size=old, old_root=old_root)
