"""RFC 6962 / RFC 9162 Merkle tree hashing, proof building and proof checking.

Pure functions over bytes; no I/O.  The tree is the one defined in RFC 6962 section 2.1
(RFC 9162 section 2.1 is the same tree):

* a leaf hash is ``SHA-256(0x00 || entry)`` and an interior node is
  ``SHA-256(0x01 || left || right)``;
* the tree over ``n`` leaves splits at ``k``, the largest power of two below ``n``;
* the root of the empty tree is ``SHA-256("")``.

Proofs are lists of 32-byte hashes ordered from the leaves upwards, exactly as RFC 6962's
``PATH(m, D[n])`` and ``PROOF(m, D[n])`` produce them, and as Certificate Transparency and
``transparency-dev/merkle`` exchange them.

Checking follows the shape of ``transparency-dev/merkle``'s ``proof/verify.go``: every
argument's shape (index within size, every hash exactly :data:`HASH_SIZE` bytes, proof length
exactly what the sizes call for) is checked first, and only then is anything hashed.  A proof
is split into an *inner* part (below the level where the paths to the leaf and to the last
leaf meet, where the proof hash may sit on either side) and a *border* part (along the
tree's right border, where every proof hash is a left sibling).  The root is recomputed from
the proof and then compared with the one given.

Building proofs first picks the nodes a proof needs, as ranges of leaves, and only then
hashes those ranges, so the choice of nodes can be read (and tested) apart from the hashing.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from typing import Final

__all__ = [
    "HASH_SIZE",
    "MerkleError",
    "ProofShapeError",
    "RootMismatchError",
    "consistency_proof",
    "empty_root",
    "hash_children",
    "hash_leaf",
    "inclusion_proof",
    "root_from_inclusion_proof",
    "root_from_leaf_hashes",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE: Final = 32
"""Length in bytes of every hash in the tree (SHA-256)."""

_LEAF_PREFIX: Final = b"\x00"
_NODE_PREFIX: Final = b"\x01"

# The one place the hash function is named; tests replace it to prove that shape checks
# come before any hashing.
_sha256 = hashlib.sha256


# --------------------------------------------------------------------------- errors


class MerkleError(Exception):
    """Base for every failure this module reports."""


class ProofShapeError(MerkleError):
    """An index, size, hash length or proof length is impossible; nothing was hashed."""


class RootMismatchError(MerkleError):
    """The root recomputed from a proof differs from the root it was checked against.

    ``expected`` is the root the caller supplied; ``computed`` is the root the proof leads to.
    """

    def __init__(self, expected: bytes, computed: bytes, what: str = "root") -> None:
        super().__init__(expected, computed, what)
        self.expected = bytes(expected)
        self.computed = bytes(computed)
        self.what = what

    def __str__(self) -> str:
        return (
            f"{self.what} mismatch: computed {self.computed.hex()} "
            f"but expected {self.expected.hex()}"
        )


# --------------------------------------------------------------------------- hashing


def hash_leaf(entry: bytes) -> bytes:
    """Return the leaf hash ``SHA-256(0x00 || entry)`` (RFC 6962 ``MTH({d(0)})``)."""
    return _sha256(_LEAF_PREFIX + entry).digest()


def hash_children(left: bytes, right: bytes) -> bytes:
    """Return the interior node hash ``SHA-256(0x01 || left || right)``."""
    return _sha256(_NODE_PREFIX + left + right).digest()


def empty_root() -> bytes:
    """Return the root of the empty tree, ``SHA-256("")``."""
    return _sha256(b"").digest()


def root_from_leaf_hashes(leaf_hashes: Sequence[bytes]) -> bytes:
    """Return RFC 6962 ``MTH`` over already-hashed leaves.

    Works level by level: adjacent pairs are hashed and an unpaired last node moves up a
    level unchanged.  That builds exactly the RFC tree (left subtrees are the largest power
    of two), hashes ``n - 1`` nodes for ``n`` leaves and never recurses.
    """
    _check_hash_list(leaf_hashes, "leaf hash")
    return _mth(leaf_hashes)


def _mth(leaf_hashes: Sequence[bytes]) -> bytes:
    """``MTH`` over leaf hashes whose lengths are already checked."""
    if not leaf_hashes:
        return empty_root()
    sha = _sha256
    node = _NODE_PREFIX
    level: Sequence[bytes] = leaf_hashes
    while len(level) > 1:
        count = len(level)
        paired = [sha(node + level[i] + level[i + 1]).digest() for i in range(0, count - 1, 2)]
        if count % 2:
            paired.append(level[-1])
        level = paired
    return bytes(level[0])


# --------------------------------------------------------------------------- shape checks


def _check_count(value: int, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProofShapeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 0:
        raise ProofShapeError(f"{name} must not be negative, got {value}")


def _check_hash(value: bytes, name: str) -> None:
    if not isinstance(value, bytes | bytearray):
        raise ProofShapeError(f"{name} must be bytes, got {type(value).__name__}")
    if len(value) != HASH_SIZE:
        raise ProofShapeError(f"{name} is {len(value)} bytes, want {HASH_SIZE}")


def _check_hash_list(values: Sequence[bytes], name: str) -> None:
    for i, value in enumerate(values):
        _check_hash(value, f"{name} [{i}]")


def _check_proof_length(proof: Sequence[bytes], want: int) -> None:
    if len(proof) != want:
        raise ProofShapeError(f"proof has {len(proof)} hashes, want {want}")


# --------------------------------------------------------------------------- proof layout


def _inner_proof_size(index: int, size: int) -> int:
    """Levels below the point where the paths to ``index`` and ``size - 1`` meet."""
    return (index ^ (size - 1)).bit_length()


def _decomp_incl_proof(index: int, size: int) -> tuple[int, int]:
    """Split an inclusion proof for ``index`` in a tree of ``size`` into (inner, border).

    The inner hashes sit below the level where the paths to ``index`` and to ``size - 1``
    meet; the border hashes are the left siblings along the right border above it.  Their
    sum is the proof length.  Requires ``0 <= index < size``.
    """
    inner = _inner_proof_size(index, size)
    border = (index >> inner).bit_count()
    return inner, border


def _consistency_layout(old_size: int, new_size: int) -> tuple[bool, int, int]:
    """Shape of a consistency proof for ``0 < old_size < new_size``.

    Returns ``(has_seed, inner, border)``: whether the proof starts with the hash of the
    largest complete subtree ending at ``old_size`` (omitted when that subtree is the whole
    old tree, whose root the verifier already holds), then the inner and border counts of
    the rest, which is the upper part of the inclusion proof of leaf ``old_size - 1``.
    """
    inner, border = _decomp_incl_proof(old_size - 1, new_size)
    shift = _trailing_zeros(old_size)
    return old_size != 1 << shift, inner - shift, border


def _trailing_zeros(value: int) -> int:
    """Count of trailing zero bits of a positive int."""
    return (value & -value).bit_length() - 1


# --------------------------------------------------------------------------- node choice

_Range = tuple[int, int]
"""A subtree named by its leaves ``[start, end)``; its hash is ``MTH(D[start:end])``."""


def _inclusion_ranges(index: int, size: int) -> list[_Range]:
    """Leaf ranges whose hashes form ``PATH(index, D[size])``, lowest level first."""
    inner, _ = _decomp_incl_proof(index, size)
    ranges = [_sibling_range(index, level, size) for level in range(inner)]
    ranges.extend(_border_ranges(index, inner))
    return ranges


def _consistency_ranges(old_size: int, new_size: int) -> list[_Range]:
    """Leaf ranges whose hashes form ``PROOF(old_size, D[new_size])``, lowest level first."""
    if old_size in (0, new_size):
        return []
    last = old_size - 1
    shift = _trailing_zeros(old_size)
    inner, _ = _decomp_incl_proof(last, new_size)
    ranges: list[_Range] = []
    if old_size != 1 << shift:
        ranges.append((old_size - (1 << shift), old_size))
    ranges.extend(_sibling_range(last, level, new_size) for level in range(shift, inner))
    ranges.extend(_border_ranges(last, inner))
    return ranges


def _sibling_range(index: int, level: int, size: int) -> _Range:
    """Leaves under the sibling of ``index``'s ancestor at ``level``, cut off at ``size``.

    Only the highest inner sibling can be cut off (it holds the last leaf); the rest are
    complete subtrees.
    """
    start = ((index >> level) ^ 1) << level
    return start, min(start + (1 << level), size)


def _border_ranges(index: int, inner: int) -> list[_Range]:
    """Left siblings on ``index``'s path at levels ``inner`` and up, where it is a right child."""
    ranges: list[_Range] = []
    level = inner
    while index >> level:
        node = index >> level
        if node & 1:
            ranges.append(((node - 1) << level, node << level))
        level += 1
    return ranges


# --------------------------------------------------------------------------- proof building


def inclusion_proof(index: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """Return RFC 6962 ``PATH(index, D[n])`` for ``n = len(leaf_hashes)``.

    Raises :class:`ProofShapeError` unless ``0 <= index < n`` and every leaf hash is
    :data:`HASH_SIZE` bytes.
    """
    _check_count(index, "index")
    size = len(leaf_hashes)
    if index >= size:
        raise ProofShapeError(f"index {index} is beyond tree size {size}")
    _check_hash_list(leaf_hashes, "leaf hash")
    return [_mth(leaf_hashes[start:end]) for start, end in _inclusion_ranges(index, size)]


def consistency_proof(old_size: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """Return RFC 6962 ``PROOF(old_size, D[n])`` for ``n = len(leaf_hashes)``.

    The proof is empty when ``old_size`` is 0 or ``n``.  Raises :class:`ProofShapeError`
    unless ``0 <= old_size <= n`` and every leaf hash is :data:`HASH_SIZE` bytes.
    """
    _check_count(old_size, "old_size")
    new_size = len(leaf_hashes)
    if old_size > new_size:
        raise ProofShapeError(f"old_size {old_size} is beyond tree size {new_size}")
    _check_hash_list(leaf_hashes, "leaf hash")
    ranges = _consistency_ranges(old_size, new_size)
    return [_mth(leaf_hashes[start:end]) for start, end in ranges]


# --------------------------------------------------------------------------- chaining


def _chain_inner(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    """Hash ``seed`` up through inner proof hashes; bit ``i`` of ``index`` picks the side."""
    for i, sibling in enumerate(proof):
        seed_is_right = (index >> i) & 1
        seed = hash_children(sibling, seed) if seed_is_right else hash_children(seed, sibling)
    return seed


def _chain_inner_right(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    """Like :func:`_chain_inner`, but only through left siblings.

    Skipping the right siblings gives the hash the same subtree had before anything was
    appended to its right, i.e. its hash within the older, smaller tree.
    """
    for i, sibling in enumerate(proof):
        if (index >> i) & 1:
            seed = hash_children(sibling, seed)
    return seed


def _chain_border_right(seed: bytes, proof: Sequence[bytes]) -> bytes:
    """Hash ``seed`` up the right border, where every proof hash is a left sibling."""
    for sibling in proof:
        seed = hash_children(sibling, seed)
    return seed


def _require_match(expected: bytes, computed: bytes, what: str) -> None:
    if not hmac.compare_digest(expected, computed):
        raise RootMismatchError(expected, computed, what)


# --------------------------------------------------------------------------- verification


def root_from_inclusion_proof(
    index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes]
) -> bytes:
    """Return the root of a tree of ``size`` leaves implied by ``leaf_hash`` at ``index``.

    Raises :class:`ProofShapeError`, before hashing anything, unless ``0 <= index < size``,
    ``leaf_hash`` and every proof hash are :data:`HASH_SIZE` bytes, and the proof has exactly
    the length a leaf at ``index`` in a tree of ``size`` calls for.
    """
    _check_count(index, "index")
    _check_count(size, "size")
    if index >= size:
        raise ProofShapeError(f"index {index} is beyond tree size {size}")
    _check_hash(leaf_hash, "leaf hash")
    _check_hash_list(proof, "proof hash")
    inner, border = _decomp_incl_proof(index, size)
    _check_proof_length(proof, inner + border)

    root = _chain_inner(bytes(leaf_hash), proof[:inner], index)
    return _chain_border_right(root, proof[inner:])


def verify_inclusion(
    index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf_hash`` is leaf ``index`` of the tree of ``size`` leaves with ``root``.

    Returns ``None`` on success.  Raises :class:`ProofShapeError` for impossible inputs
    (checked before hashing) and :class:`RootMismatchError` when the proof leads elsewhere.
    """
    _check_hash(root, "root")
    computed = root_from_inclusion_proof(index, size, leaf_hash, proof)
    _require_match(root, computed, "root")


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree of ``new_size`` with ``new_root`` extends the one of ``old_size``.

    Returns ``None`` on success.  Raises :class:`ProofShapeError`, before hashing anything,
    unless ``0 <= old_size <= new_size``, both roots and every proof hash are
    :data:`HASH_SIZE` bytes, and the proof has exactly the length the sizes call for: empty
    when ``old_size`` is 0 or equals ``new_size``.  Raises :class:`RootMismatchError` when
    the proof does not lead to both roots; in particular an ``old_size`` of 0 needs
    ``old_root == empty_root()`` and equal sizes need equal roots.
    """
    _check_count(old_size, "old_size")
    _check_count(new_size, "new_size")
    if old_size > new_size:
        raise ProofShapeError(f"old_size {old_size} is beyond new_size {new_size}")
    _check_hash(old_root, "old root")
    _check_hash(new_root, "new root")
    _check_hash_list(proof, "proof hash")

    if old_size == 0 or old_size == new_size:
        _check_proof_length(proof, 0)
        if old_size == 0:
            _require_match(old_root, empty_root(), "old root")
        if old_size == new_size:
            _require_match(new_root, old_root, "new root")
        return

    has_seed, inner, border = _consistency_layout(old_size, new_size)
    start = 1 if has_seed else 0
    _check_proof_length(proof, start + inner + border)

    # The seed is the largest complete subtree ending at old_size; when that subtree is the
    # whole old tree the proof leaves it out and the old root stands in for it.
    seed = bytes(proof[0]) if has_seed else bytes(old_root)
    inner_hashes = proof[start : start + inner]
    border_hashes = proof[start + inner :]
    # Position of the seed on its own level: start chaining at level `shift`.
    mask = (old_size - 1) >> _trailing_zeros(old_size)

    old_computed = _chain_inner_right(seed, inner_hashes, mask)
    old_computed = _chain_border_right(old_computed, border_hashes)
    _require_match(old_root, old_computed, "old root")

    new_computed = _chain_inner(seed, inner_hashes, mask)
    new_computed = _chain_border_right(new_computed, border_hashes)
    _require_match(new_root, new_computed, "new root")
