"""Write the Merkle proof probe files in ``tests/vectors/merkle/``.

Usage (from the project root)::

    .venv/bin/python tests/vectors/make_merkle_vectors.py          # rewrite the JSON files
    .venv/bin/python tests/vectors/make_merkle_vectors.py --check  # exit 1 if they are stale

Each file holds one known-good proof and a list of *probes*: the good proof itself and named
mutations of it (a flipped bit in a proof hash, index +/- 1, size * 2, a hash of the wrong
length, an empty proof, an extra proof hash, a wrong leaf, swapped roots, ...).  Every probe
has ``desc``, its inputs (hashes in hex), ``wantErr`` and ``wantErrType``
(``"ProofShapeError"``, ``"RootMismatchError"`` or ``null``).

This script deliberately does not import ``trialctl.ledger.merkle`` (and is one long file for
that reason: it carries its own transcription of RFC 6962); it is an independent oracle:

* the good proofs are the published ones from transparency-dev/merkle
  (``proof/verify_test.go``: ``inclusionProofs``, ``consistencyProofs``, ``roots``,
  ``leaves``) plus a few more built here by a literal, recursive transcription of RFC 6962
  section 2.1 (``MTH``, ``PATH``, ``SUBPROOF``), which is also checked against the published
  roots and proofs before anything is written;
* a probe's verdict comes from two more independent transcriptions: a probe whose sizes,
  hash lengths or proof length are impossible by the recursive definitions must fail with
  ``ProofShapeError``; any other probe is run through the verification algorithms printed
  in RFC 9162 (sections 2.1.3.2 and 2.1.4.2), and must fail with ``RootMismatchError``
  exactly when those reject it.

Not every mutation is invalid.  A proof binds a leaf to a root, and the sizes only steer
the left/right order of the hashing, so e.g. the inclusion proof of leaf 0 in a 13-leaf tree
also proves leaf 0 in a claimed 12-leaf tree with the same root (``size - 1`` below):
the hashing order is the same.  Such probes are written with ``wantErr: false`` and a
``desc`` that says so; what binds the size is the signed tree head, not the proof.

Two further files, ``inclusion_edge.json`` and ``consistency_edge.json``, are hand-written
tables of degenerate sizes (empty tree, single leaf, equal sizes, sizes going backwards).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OUT_DIR = Path(__file__).resolve().parent / "merkle"
HASH_SIZE = 32
SHAPE = "ProofShapeError"
MISMATCH = "RootMismatchError"

# --------------------------------------------------------------------------- RFC 6962, literally


def _leaf(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (``n >= 2``)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(entries: Sequence[bytes]) -> bytes:
    """RFC 6962 ``MTH(D[n])`` over raw entries."""
    n = len(entries)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return _leaf(entries[0])
    k = _split(n)
    return _node(mth(entries[:k]), mth(entries[k:]))


def path(m: int, entries: Sequence[bytes]) -> list[bytes]:
    """RFC 6962 ``PATH(m, D[n])``."""
    n = len(entries)
    if n == 1:
        return []
    k = _split(n)
    if m < k:
        return [*path(m, entries[:k]), mth(entries[k:])]
    return [*path(m - k, entries[k:]), mth(entries[:k])]


def subproof(m: int, entries: Sequence[bytes], whole: bool) -> list[bytes]:
    """RFC 6962 ``SUBPROOF(m, D[n], b)``."""
    n = len(entries)
    if m == n:
        return [] if whole else [mth(entries)]
    k = _split(n)
    if m <= k:
        return [*subproof(m, entries[:k], whole), mth(entries[k:])]
    return [*subproof(m - k, entries[k:], False), mth(entries[:k])]


def consistency(m: int, entries: Sequence[bytes]) -> list[bytes]:
    """RFC 6962 ``PROOF(m, D[n])``; empty for ``m`` of 0 or ``n``."""
    return [] if m in (0, len(entries)) else subproof(m, entries, True)


def path_len(m: int, n: int) -> int:
    """``len(PATH(m, D[n]))``, by the same recursion without hashing."""
    if n == 1:
        return 0
    k = _split(n)
    return 1 + (path_len(m, k) if m < k else path_len(m - k, n - k))


def subproof_len(m: int, n: int, whole: bool) -> int:
    """``len(SUBPROOF(m, D[n], b))``, by the same recursion without hashing."""
    if m == n:
        return 0 if whole else 1
    k = _split(n)
    return 1 + (subproof_len(m, k, whole) if m <= k else subproof_len(m - k, n - k, False))


def rfc9162_verify_inclusion(
    index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 section 2.1.3.2, step by step."""
    if index >= size:
        return False
    fn, sn = index, size - 1
    r = leaf_hash
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = _node(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = _node(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def rfc9162_verify_consistency(
    first: int, second: int, first_hash: bytes, second_hash: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 section 2.1.4.2, step by step, plus the trivial sizes it leaves out."""
    if not 0 <= first <= second:
        return False
    if first == second:
        return not proof and first_hash == second_hash and (first > 0 or first_hash == mth([]))
    if first == 0:
        return not proof and first_hash == mth([])
    if not proof:
        return False
    path = list(proof)
    if first & (first - 1) == 0:  # an exact power of 2
        path.insert(0, first_hash)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = _node(c, fr)
            sr = _node(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = _node(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == first_hash and sr == second_hash and sn == 0


# --------------------------------------------------------------------------- published vectors

# transparency-dev/merkle proof/verify_test.go `leaves` (hex entries).
LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]

# `roots`: ROOTS[n - 1] is the root of the tree over LEAVES[:n].
ROOTS = [
    bytes.fromhex(h)
    for h in (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    )
]

# `inclusionProofs`, with the 1-based leaf numbers there turned into 0-based indexes.
PUBLISHED_INCLUSION: list[tuple[int, int, list[str]]] = [
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]

# `consistencyProofs` (old size, new size, proof).
PUBLISHED_CONSISTENCY: list[tuple[int, int, list[str]]] = [
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]

# Extra good proofs, built here, over a 13-leaf tree (13 = 8 + 4 + 1 exercises every part
# of the proof layout): entry i is the single byte i.
EXTRA_ENTRIES = [bytes([i]) for i in range(13)]
EXTRA_INCLUSION = [(0, 13), (6, 13), (11, 13), (12, 13)]
EXTRA_CONSISTENCY = [(1, 13), (4, 13), (7, 13), (12, 13), (3, 4)]

# `sha256SomeHash` and `sha256EmptyTreeHash` from verify_test.go.
SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")
EMPTY_ROOT = hashlib.sha256(b"").digest()


def _self_check() -> None:
    """Refuse to write anything unless the RFC transcription reproduces the published data."""
    for n, root in enumerate(ROOTS, start=1):
        assert mth(LEAVES[:n]) == root, f"root of size {n}"
    for index, size, proof in PUBLISHED_INCLUSION:
        assert path(index, LEAVES[:size]) == [bytes.fromhex(h) for h in proof], (index, size)
        assert path_len(index, size) == len(proof)
        leaf_hash, want = _leaf(LEAVES[index]), [bytes.fromhex(h) for h in proof]
        assert rfc9162_verify_inclusion(index, size, leaf_hash, want, ROOTS[size - 1])
    for old, new, proof in PUBLISHED_CONSISTENCY:
        assert consistency(old, LEAVES[:new]) == [bytes.fromhex(h) for h in proof], (old, new)
        assert subproof_len(old, new, True) == len(proof)
        want = [bytes.fromhex(h) for h in proof]
        assert rfc9162_verify_consistency(old, new, ROOTS[old - 1], ROOTS[new - 1], want)


# --------------------------------------------------------------------------- probes


@dataclass(frozen=True)
class InclusionCase:
    index: int
    size: int
    leaf_hash: bytes
    proof: tuple[bytes, ...]
    root: bytes

    def shape_ok(self) -> bool:
        return (
            0 <= self.index < self.size
            and len(self.leaf_hash) == HASH_SIZE
            and len(self.root) == HASH_SIZE
            and all(len(h) == HASH_SIZE for h in self.proof)
            and len(self.proof) == path_len(self.index, self.size)
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "size": self.size,
            "leafHash": self.leaf_hash.hex(),
            "proof": [h.hex() for h in self.proof],
            "root": self.root.hex(),
        }

    def verdict(self) -> str | None:
        """The error a verifier must raise, or None if it must accept."""
        if not self.shape_ok():
            return SHAPE
        args = (self.index, self.size, self.leaf_hash, self.proof, self.root)
        return None if rfc9162_verify_inclusion(*args) else MISMATCH


@dataclass(frozen=True)
class ConsistencyCase:
    old_size: int
    new_size: int
    old_root: bytes
    new_root: bytes
    proof: tuple[bytes, ...]

    def shape_ok(self) -> bool:
        if not 0 <= self.old_size <= self.new_size:
            return False
        if self.old_size in (0, self.new_size):
            want = 0
        else:
            want = subproof_len(self.old_size, self.new_size, True)
        return (
            len(self.old_root) == HASH_SIZE
            and len(self.new_root) == HASH_SIZE
            and all(len(h) == HASH_SIZE for h in self.proof)
            and len(self.proof) == want
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "oldSize": self.old_size,
            "newSize": self.new_size,
            "oldRoot": self.old_root.hex(),
            "newRoot": self.new_root.hex(),
            "proof": [h.hex() for h in self.proof],
        }

    def verdict(self) -> str | None:
        """The error a verifier must raise, or None if it must accept."""
        if not self.shape_ok():
            return SHAPE
        args = (self.old_size, self.new_size, self.old_root, self.new_root, self.proof)
        return None if rfc9162_verify_consistency(*args) else MISMATCH


Case = InclusionCase | ConsistencyCase


def _flip(value: bytes, byte: int, bit: int) -> bytes:
    out = bytearray(value)
    out[byte] ^= 1 << bit
    return bytes(out)


def _replace(proof: tuple[bytes, ...], i: int, value: bytes) -> tuple[bytes, ...]:
    return (*proof[:i], value, *proof[i + 1 :])


def _probe(desc: str, case: Case, want: str | None) -> dict[str, Any]:
    return {"desc": desc, **case.to_json(), "wantErr": want is not None, "wantErrType": want}


def _probes(good: Case, mutations: Sequence[tuple[str, Case]]) -> list[dict[str, Any]]:
    """The good case, then every mutation that really changes it, each with its verdict."""
    assert good.verdict() is None
    probes = [_probe("valid proof", good, None)]
    seen = {good}
    for desc, case in mutations:
        if case in seen:
            continue  # e.g. "empty proof" of a proof that is already empty
        seen.add(case)
        verdict = case.verdict()
        if verdict is None:
            desc += " (same hashing order: still valid)"
        probes.append(_probe(desc, case, verdict))
    descs = [p["desc"] for p in probes]
    assert len(descs) == len(set(descs)), descs
    return probes


def inclusion_mutations(good: InclusionCase) -> list[tuple[str, InclusionCase]]:
    i, n, leaf, proof, root = good.index, good.size, good.leaf_hash, good.proof, good.root
    c = InclusionCase
    out: list[tuple[str, InclusionCase]] = [
        ("index - 1", c(i - 1, n, leaf, proof, root)),
        ("index + 1", c(i + 1, n, leaf, proof, root)),
        ("index ^ 2", c(i ^ 2, n, leaf, proof, root)),
        ("index = size", c(n, n, leaf, proof, root)),
        ("size * 2", c(i, n * 2, leaf, proof, root)),
        ("size / 2", c(i, n // 2, leaf, proof, root)),
        ("size + 1", c(i, n + 1, leaf, proof, root)),
        ("size - 1", c(i, n - 1, leaf, proof, root)),
        ("wrong leaf", c(i, n, _leaf(b"wrong leaf"), proof, root)),
        ("garbage leaf hash (9 bytes)", c(i, n, b"WrongLeaf", proof, root)),
        ("garbage leaf hash (33 bytes)", c(i, n, leaf + b"\x00", proof, root)),
        ("leaf hash bit 0 flipped", c(i, n, _flip(leaf, 31, 0), proof, root)),
        ("swapped leaf and root", c(i, n, root, proof, leaf)),
        ("empty-tree root", c(i, n, leaf, proof, EMPTY_ROOT)),
        ("random root", c(i, n, leaf, proof, SOME_HASH)),
        ("garbage root (31 bytes)", c(i, n, leaf, proof, root[:-1])),
        ("root bit 7 flipped", c(i, n, leaf, proof, _flip(root, 0, 7))),
        ("empty proof", c(i, n, leaf, (), root)),
        ("extra proof element (trailing root)", c(i, n, leaf, (*proof, root), root)),
        ("extra proof element (preceding root)", c(i, n, leaf, (root, *proof), root)),
        ("extra garbage element (trailing empty)", c(i, n, leaf, (*proof, b""), root)),
        ("extra garbage element (preceding empty)", c(i, n, leaf, (b"", *proof), root)),
    ]
    if proof:
        out += [
            ("removed last element", c(i, n, leaf, proof[:-1], root)),
            ("removed first element", c(i, n, leaf, proof[1:], root)),
            ("garbage proof[0] (31 bytes)", c(i, n, leaf, _replace(proof, 0, proof[0][:-1]), root)),
            (
                "garbage proof[-1] (64 bytes)",
                c(i, n, leaf, _replace(proof, -1, proof[-1] * 2), root),
            ),
            ("reversed proof", c(i, n, leaf, proof[::-1], root)),
        ]
    if len(proof) > 1:
        inserted = (proof[0], SOME_HASH, *proof[1:])
        out.append(("inserted element", c(i, n, leaf, inserted, root)))
    for k, h in enumerate(proof):
        out.append(
            (f"proof[{k}] bit 3 flipped", c(i, n, leaf, _replace(proof, k, _flip(h, 0, 3)), root))
        )
    return out


def consistency_mutations(good: ConsistencyCase) -> list[tuple[str, ConsistencyCase]]:
    m, n, r1, r2, proof = good.old_size, good.new_size, good.old_root, good.new_root, good.proof
    c = ConsistencyCase
    out: list[tuple[str, ConsistencyCase]] = [
        ("old_size - 1", c(m - 1, n, r1, r2, proof)),
        ("old_size + 1", c(m + 1, n, r1, r2, proof)),
        ("old_size ^ 2", c(m ^ 2, n, r1, r2, proof)),
        ("old_size = 0", c(0, n, r1, r2, proof)),
        ("old_size = new_size", c(n, n, r1, r2, proof)),
        ("new_size * 2", c(m, n * 2, r1, r2, proof)),
        ("new_size / 2", c(m, n // 2, r1, r2, proof)),
        ("new_size + 1", c(m, n + 1, r1, r2, proof)),
        ("new_size - 1", c(m, n - 1, r1, r2, proof)),
        ("sizes swapped", c(n, m, r1, r2, proof)),
        ("swapped roots", c(m, n, r2, r1, proof)),
        ("wrong old root", c(m, n, SOME_HASH, r2, proof)),
        ("wrong new root", c(m, n, r1, SOME_HASH, proof)),
        ("empty-tree old root", c(m, n, EMPTY_ROOT, r2, proof)),
        ("old root bit 0 flipped", c(m, n, _flip(r1, 31, 0), r2, proof)),
        ("new root bit 0 flipped", c(m, n, r1, _flip(r2, 31, 0), proof)),
        ("garbage old root (9 bytes)", c(m, n, b"WrongRoot", r2, proof)),
        ("garbage new root (9 bytes)", c(m, n, r1, b"WrongRoot", proof)),
        ("empty proof", c(m, n, r1, r2, ())),
        ("extra proof element (trailing old root)", c(m, n, r1, r2, (*proof, r1))),
        ("extra proof element (trailing new root)", c(m, n, r1, r2, (*proof, r2))),
        ("extra proof element (preceding old root)", c(m, n, r1, r2, (r1, *proof))),
        ("extra proof element (preceding new root)", c(m, n, r1, r2, (r2, *proof))),
        ("extra garbage element (trailing empty)", c(m, n, r1, r2, (*proof, b""))),
        ("extra garbage element (preceding empty)", c(m, n, r1, r2, (b"", *proof))),
    ]
    if proof:
        out += [
            ("extra proof element (preceding proof[0])", c(m, n, r1, r2, (proof[0], *proof))),
            ("removed last element", c(m, n, r1, r2, proof[:-1])),
            ("removed first element", c(m, n, r1, r2, proof[1:])),
            ("garbage proof[0] (31 bytes)", c(m, n, r1, r2, _replace(proof, 0, proof[0][:-1]))),
            ("reversed proof", c(m, n, r1, r2, proof[::-1])),
        ]
    for k, h in enumerate(proof):
        out.append(
            (f"proof[{k}] bit 4 flipped", c(m, n, r1, r2, _replace(proof, k, _flip(h, 0, 4))))
        )
    return out


# --------------------------------------------------------------------------- hand-written edges


def _edge_inclusion() -> list[dict[str, Any]]:
    one = _leaf(LEAVES[0])  # the root of a one-leaf tree is its leaf hash
    c = InclusionCase
    table: list[tuple[str, InclusionCase, str | None]] = [
        ("size 1: leaf is root, empty proof", c(0, 1, one, (), one), None),
        ("size 1: root differs from leaf", c(0, 1, one, (), ROOTS[1]), MISMATCH),
        ("size 1: non-empty proof", c(0, 1, one, (one,), one), SHAPE),
        ("size 1: empty leaf hash", c(0, 1, b"", (), one), SHAPE),
        ("size 1: empty root", c(0, 1, one, (), b""), SHAPE),
        ("size 1: empty leaf hash and root", c(0, 1, b"", (), b""), SHAPE),
        ("index 0, size 0", c(0, 0, SOME_HASH, (), EMPTY_ROOT), SHAPE),
        ("index 1, size 0", c(1, 0, SOME_HASH, (), EMPTY_ROOT), SHAPE),
        ("index 1, size 1", c(1, 1, one, (), one), SHAPE),
        ("index 2, size 1", c(2, 1, one, (), one), SHAPE),
        ("negative index", c(-1, 1, one, (), one), SHAPE),
        ("last leaf of 8", c(7, 8, _leaf(LEAVES[7]), tuple(path(7, LEAVES)), ROOTS[7]), None),
    ]
    return _table(table)


def _edge_consistency() -> list[dict[str, Any]]:
    c = ConsistencyCase
    r1, r2, r8 = ROOTS[0], ROOTS[1], ROOTS[7]
    table: list[tuple[str, ConsistencyCase, str | None]] = [
        # Sizes that are always consistent, given the right roots and an empty proof.
        ("0 -> 0 with empty-tree roots", c(0, 0, EMPTY_ROOT, EMPTY_ROOT, ()), None),
        ("0 -> 1, empty proof", c(0, 1, EMPTY_ROOT, r1, ()), None),
        ("0 -> 8, empty proof", c(0, 8, EMPTY_ROOT, r8, ()), None),
        ("1 -> 1, equal roots", c(1, 1, r1, r1, ()), None),
        ("8 -> 8, equal roots", c(8, 8, r8, r8, ()), None),
        # The tree of size 0 has exactly one root, SHA-256("").  (transparency-dev accepts
        # any old root here; this module is stricter.)
        ("0 -> 0 with some other equal roots", c(0, 0, r1, r1, ()), MISMATCH),
        ("0 -> 0 with different roots", c(0, 0, EMPTY_ROOT, r1, ()), MISMATCH),
        ("0 -> 1 with a non-empty old root", c(0, 1, r1, r1, ()), MISMATCH),
        # Equal sizes need equal roots and an empty proof.
        ("1 -> 1, different roots", c(1, 1, r1, r2, ()), MISMATCH),
        ("1 -> 1, empty-tree old root", c(1, 1, EMPTY_ROOT, r2, ()), MISMATCH),
        ("0 -> 0, non-empty proof", c(0, 0, EMPTY_ROOT, EMPTY_ROOT, (EMPTY_ROOT,)), SHAPE),
        ("0 -> 1, non-empty proof", c(0, 1, EMPTY_ROOT, r1, (EMPTY_ROOT,)), SHAPE),
        ("1 -> 1, non-empty proof", c(1, 1, r1, r1, (EMPTY_ROOT,)), SHAPE),
        # Time travel to the past.
        ("1 -> 0", c(1, 0, r1, EMPTY_ROOT, ()), SHAPE),
        ("2 -> 1", c(2, 1, r2, r1, ()), SHAPE),
        ("negative old size", c(-1, 1, EMPTY_ROOT, r1, ()), SHAPE),
        # Growth needs a proof.
        ("1 -> 2, empty proof", c(1, 2, r1, r2, ()), SHAPE),
        ("1 -> 2, good proof", c(1, 2, r1, r2, tuple(consistency(1, LEAVES[:2]))), None),
        # Roots of the wrong length ("don't care" in transparency-dev's table).
        ("0 -> 0, 12-byte roots", c(0, 0, b"don't care 1", b"don't care 1", ()), SHAPE),
        ("0 -> 1, 12-byte roots", c(0, 1, b"don't care 1", b"don't care 2", ()), SHAPE),
        ("1 -> 1, 12-byte roots", c(1, 1, b"don't care 2", b"don't care 2", ()), SHAPE),
    ]
    return _table(table)


def _table(rows: Sequence[tuple[str, Case, str | None]]) -> list[dict[str, Any]]:
    probes = []
    for desc, case, want in rows:
        # The hand-written verdicts must agree with the oracles.
        assert want == case.verdict(), desc
        probes.append(_probe(desc, case, want))
    return probes


# --------------------------------------------------------------------------- files


def build_files() -> dict[str, dict[str, Any]]:
    """Return every probe file as ``{file name: content}``."""
    _self_check()
    tdev = "transparency-dev/merkle proof/verify_test.go"
    files: dict[str, dict[str, Any]] = {}

    def add_inclusion(entries: Sequence[bytes], index: int, size: int, source: str) -> None:
        proof = tuple(path(index, entries[:size]))
        good = InclusionCase(index, size, _leaf(entries[index]), proof, mth(entries[:size]))
        files[f"inclusion_{index}_in_{size}.json"] = {
            "kind": "inclusion",
            "source": source,
            "probes": _probes(good, inclusion_mutations(good)),
        }

    def add_consistency(entries: Sequence[bytes], old: int, new: int, source: str) -> None:
        proof = tuple(consistency(old, entries[:new]))
        good = ConsistencyCase(old, new, mth(entries[:old]), mth(entries[:new]), proof)
        files[f"consistency_{old}_to_{new}.json"] = {
            "kind": "consistency",
            "source": source,
            "probes": _probes(good, consistency_mutations(good)),
        }

    for index, size, _ in PUBLISHED_INCLUSION:
        add_inclusion(LEAVES, index, size, f"{tdev} inclusionProofs")
    for old, new, _ in PUBLISHED_CONSISTENCY:
        add_consistency(LEAVES, old, new, f"{tdev} consistencyProofs")
    extra = "RFC 6962 PATH/PROOF over 13 entries, entry i = bytes([i])"
    for index, size in EXTRA_INCLUSION:
        add_inclusion(EXTRA_ENTRIES, index, size, extra)
    for old, new in EXTRA_CONSISTENCY:
        add_consistency(EXTRA_ENTRIES, old, new, extra)

    edges = "hand-written degenerate cases, after " + tdev
    files["inclusion_edge.json"] = {
        "kind": "inclusion",
        "source": edges,
        "probes": _edge_inclusion(),
    }
    files["consistency_edge.json"] = {
        "kind": "consistency",
        "source": edges,
        "probes": _edge_consistency(),
    }
    return files


def render(content: dict[str, Any]) -> str:
    return json.dumps(content, indent=2) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--check", action="store_true", help="only report stale files")
    args = parser.parse_args(argv)
    files = {name: render(content) for name, content in build_files().items()}
    on_disk = {p.name: p.read_text() for p in sorted(OUT_DIR.glob("*.json"))}
    stale = sorted(n for n in files.keys() | on_disk.keys() if files.get(n) != on_disk.get(n))
    if args.check:
        for name in stale:
            print(f"stale: {name}", file=sys.stderr)
        return 1 if stale else 0
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for name in on_disk.keys() - files.keys():
        (OUT_DIR / name).unlink()
    for name in sorted(files):
        (OUT_DIR / name).write_text(files[name])
    print(f"wrote {len(files)} files to {OUT_DIR}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
