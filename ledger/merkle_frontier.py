"""Compact ranges of the RFC 6962 tree: the "frontier" of a tree of size n.

A tree of n leaves is made of one perfect subtree per bit set in n, largest (leftmost)
first; their roots, O(log n) hashes, are its frontier (transparency-dev's compact range
[0, n)). From a frontier alone the tree's root is recomputed, and new leaves are folded in
to give the root of every larger tree, without reading or hashing any older leaf. Pure
functions over bytes; no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from trialctl.ledger.merkle import HASH_SIZE, empty_root, hash_children


class FrontierError(ValueError):
    """Stored bytes that cannot be the frontier of a tree of the size they claim."""


@dataclass
class Frontier:
    """The roots of the perfect subtrees a tree of `size` leaves is made of."""

    size: int = 0
    hashes: list[bytes] = field(default_factory=list)

    @classmethod
    def from_bytes(cls, size: object, packed: object) -> Frontier:
        """A frontier as stored (its hashes concatenated); anything else is refused."""
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise FrontierError(f"tree size {size!r} is not a count of leaves")
        if isinstance(packed, memoryview):
            packed = bytes(packed)
        if not isinstance(packed, bytes):
            raise FrontierError(f"hashes hold a {type(packed).__name__} value, not bytes")
        want = size.bit_count() * HASH_SIZE
        if len(packed) != want:
            raise FrontierError(f"{len(packed)} bytes of hashes; a tree of size {size} has "
                                f"{size.bit_count()} subtrees ({want} bytes)")
        return cls(size, [packed[i:i + HASH_SIZE] for i in range(0, want, HASH_SIZE)])

    def to_bytes(self) -> bytes:
        return b"".join(self.hashes)

    def copy(self) -> Frontier:
        return Frontier(self.size, list(self.hashes))

    def append(self, leaf_hash: bytes) -> None:
        """Fold in the next leaf: it merges with one subtree per trailing 1 bit of size."""
        hashes = self.hashes
        hashes.append(leaf_hash)
        merges = self.size
        while merges & 1:
            right = hashes.pop()
            hashes[-1] = hash_children(hashes[-1], right)
            merges >>= 1
        self.size += 1

    def root(self) -> bytes:
        """RFC 6962 MTH of the tree: the subtree roots folded from the right."""
        if not self.hashes:
            return empty_root()
        node = self.hashes[-1]
        for left in reversed(self.hashes[:-1]):
            node = hash_children(left, node)
        return node


def frontier_of(leaf_hashes: Iterable[bytes]) -> Frontier:
    frontier = Frontier()
    for leaf in leaf_hashes:
        frontier.append(leaf)
    return frontier


def frontiers_at(
    base: Frontier, leaf_hashes: Iterable[bytes], sizes: Iterable[int]
) -> dict[int, Frontier]:
    """The frontier at each of `sizes` (from `base.size` up to base.size + the leaves),
    in one pass over the leaves: each prefix tree is read off as the pass reaches it, so k
    sizes cost O(n + k log n), not k passes. The pass stops at the largest size asked."""
    trees = PrefixTrees(sizes, base)
    for leaf in leaf_hashes:
        if not trees.pending:
            break
        trees.append(leaf)
    return trees.found


class PrefixTrees:
    """Leaves folded in one at a time, a copy of the frontier kept as the fold reaches each
    size asked for up front: the roots of those prefix trees, and of the whole tree, in
    O(k log n) memory for k sizes instead of a hash per leaf."""

    def __init__(self, sizes: Iterable[int], base: Frontier | None = None) -> None:
        self.frontier = Frontier() if base is None else base.copy()
        # Largest first, so the next size due is popped off the end.
        self._due = sorted({s for s in sizes if s >= self.frontier.size}, reverse=True)
        self.found: dict[int, Frontier] = {}
        self._take()

    @property
    def size(self) -> int:
        return self.frontier.size

    @property
    def pending(self) -> bool:
        """Whether a size asked for is still ahead of the fold."""
        return bool(self._due)

    def append(self, leaf_hash: bytes) -> None:
        self.frontier.append(leaf_hash)
        if self._due and self._due[-1] == self.frontier.size:
            self._take()

    def _take(self) -> None:
        while self._due and self._due[-1] <= self.frontier.size:
            if self._due.pop() == self.frontier.size:
                self.found[self.frontier.size] = self.frontier.copy()

    def at(self, size: int) -> Frontier | None:
        """The tree of `size` leaves, if it was asked for (or is the whole tree so far)."""
        if size == self.frontier.size:
            return self.frontier
        return self.found.get(size)
