"""Tests for ``ledger.merkle`` (RFC 6962 / RFC 9162 Merkle trees).

Every hard-coded hash below can be recomputed in a shell.  Paste these lines into bash
(they need ``xxd`` and ``sha256sum``), then run the line printed beside (or above) a
constant after ``$``::

    leaf() { printf '00%s' "$1" | xxd -r -p | sha256sum | cut -c1-64; }
    node() { printf '01%s%s' "$1" "$2" | xxd -r -p | sha256sum | cut -c1-64; }
    l0=$(leaf ''); l1=$(leaf 00); l2=$(leaf 10); l3=$(leaf 2021); l4=$(leaf 3031)
    l5=$(leaf 40414243); l6=$(leaf 5051525354555657)
    l7=$(leaf 606162636465666768696a6b6c6d6e6f)

The eight entries, roots and proofs are the classic Certificate Transparency vectors as
published in transparency-dev/merkle (``proof/verify_test.go``).

One module for the tree, both proof kinds and their vectors, hence its length.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import pickle
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trialctl.ledger import merkle
from trialctl.ledger.merkle import (
    HASH_SIZE,
    MerkleError,
    ProofShapeError,
    RootMismatchError,
    consistency_proof,
    empty_root,
    hash_children,
    hash_leaf,
    inclusion_proof,
    root_from_inclusion_proof,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)

VECTOR_DIR = Path(__file__).resolve().parent / "vectors" / "merkle"
GENERATOR = Path(__file__).resolve().parent / "vectors" / "make_merkle_vectors.py"


def h(hex_digest: str) -> bytes:
    """Decode a hex hash, insisting on exactly HASH_SIZE bytes."""
    raw = bytes.fromhex(hex_digest)
    assert len(raw) == HASH_SIZE, hex_digest
    return raw


# --------------------------------------------------------------------------- published vectors

ENTRIES = [
    bytes.fromhex(x)
    for x in (
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
LEAF_HASHES = [hash_leaf(e) for e in ENTRIES]

# $ printf '' | sha256sum
EMPTY_ROOT = h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
# $ echo $l0
L0 = h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")
# $ echo $l1
L1 = h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7")
# $ echo $l4
L4 = h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b")
# $ echo $l5
L5 = h("4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658")
# $ echo $l6
L6 = h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f")
# $ node $l2 $l3
N23 = h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e")
# $ node $l4 $l5
N45 = h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a")
# $ node $l6 $l7
N67 = h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0")
# $ node $(node $l4 $l5) $(node $l6 $l7)
N4567 = h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4")

# ROOTS[n - 1] is the root of the tree over the first n entries.
ROOTS = [
    # $ echo $l0
    h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
    # $ node $l0 $l1
    h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
    # $ node $(node $l0 $l1) $l2
    h("aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77"),
    # $ node $(node $l0 $l1) $(node $l2 $l3)
    h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
    # $ node $(node $(node $l0 $l1) $(node $l2 $l3)) $l4
    h("4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4"),
    # $ node $(node $(node $l0 $l1) $(node $l2 $l3)) $(node $l4 $l5)
    h("76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef"),
    # $ node $(node $(node $l0 $l1) $(node $l2 $l3)) $(node $(node $l4 $l5) $l6)
    h("ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c"),
    # $ node $(node $(node $l0 $l1) $(node $l2 $l3)) $(node $(node $l4 $l5) $(node $l6 $l7))
    h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"),
]
ROOT_2, ROOT_4 = ROOTS[1], ROOTS[3]

# transparency-dev `inclusionProofs` (their 1-based leaf numbers made 0-based indexes).
PUBLISHED_INCLUSION: list[tuple[int, int, list[bytes]]] = [
    (0, 8, [L1, N23, N4567]),
    (5, 8, [L4, N67, ROOT_4]),
    (2, 3, [ROOT_2]),
    (1, 5, [L0, N23, L4]),
    (0, 1, []),
]

# transparency-dev `consistencyProofs`.
PUBLISHED_CONSISTENCY: list[tuple[int, int, list[bytes]]] = [
    (1, 1, []),
    (1, 8, [L1, N23, N4567]),
    (6, 8, [N45, N67, ROOT_4]),
    (2, 5, [N23, L4]),
    (6, 7, [N45, L6, ROOT_4]),
]


def test_hash_constants() -> None:
    assert HASH_SIZE == 32
    assert empty_root() == EMPTY_ROOT == hashlib.sha256(b"").digest()
    assert hash_leaf(b"") == L0 == hashlib.sha256(b"\x00").digest()
    assert hash_leaf(b"\x00") == L1
    assert hash_children(LEAF_HASHES[2], LEAF_HASHES[3]) == N23
    assert hash_children(N45, N67) == N4567
    assert hash_children(L0, L1) == hashlib.sha256(b"\x01" + L0 + L1).digest()


def test_leaf_and_node_hashes_are_domain_separated() -> None:
    # A 64-byte entry made of two hashes must not hash like the node over them.
    assert hash_leaf(L0 + L1) != hash_children(L0, L1)


@pytest.mark.parametrize("size", range(1, 9))
def test_published_roots(size: int) -> None:
    assert root_from_leaf_hashes(LEAF_HASHES[:size]) == ROOTS[size - 1]
    assert root_from_leaf_hashes(tuple(LEAF_HASHES[:size])) == ROOTS[size - 1]


def test_empty_tree_root() -> None:
    assert root_from_leaf_hashes([]) == EMPTY_ROOT


@pytest.mark.parametrize(("index", "size", "proof"), PUBLISHED_INCLUSION)
def test_published_inclusion_proofs(index: int, size: int, proof: list[bytes]) -> None:
    assert inclusion_proof(index, LEAF_HASHES[:size]) == proof
    leaf = LEAF_HASHES[index]
    assert root_from_inclusion_proof(index, size, leaf, proof) == ROOTS[size - 1]
    verify_inclusion(index, size, leaf, proof, ROOTS[size - 1])


@pytest.mark.parametrize(("old_size", "new_size", "proof"), PUBLISHED_CONSISTENCY)
def test_published_consistency_proofs(old_size: int, new_size: int, proof: list[bytes]) -> None:
    assert consistency_proof(old_size, LEAF_HASHES[:new_size]) == proof
    verify_consistency(old_size, new_size, ROOTS[old_size - 1], ROOTS[new_size - 1], proof)


# --------------------------------------------------------------------------- RFC reference
# A literal, recursive transcription of RFC 6962 section 2.1, used as the oracle for the
# iterative implementation.  Fine for small trees only.


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(d: Sequence[bytes]) -> bytes:
    """MTH over leaf hashes."""
    if not d:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return d[0]
    k = _split(len(d))
    return hash_children(ref_mth(d[:k]), ref_mth(d[k:]))


def ref_path(m: int, d: Sequence[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = _split(len(d))
    if m < k:
        return [*ref_path(m, d[:k]), ref_mth(d[k:])]
    return [*ref_path(m - k, d[k:]), ref_mth(d[:k])]


def ref_subproof(m: int, d: Sequence[bytes], whole: bool) -> list[bytes]:
    if m == len(d):
        return [] if whole else [ref_mth(d)]
    k = _split(len(d))
    if m <= k:
        return [*ref_subproof(m, d[:k], whole), ref_mth(d[k:])]
    return [*ref_subproof(m - k, d[k:], False), ref_mth(d[:k])]


def ref_proof(m: int, d: Sequence[bytes]) -> list[bytes]:
    return [] if m in (0, len(d)) else ref_subproof(m, d, True)


def make_leaves(count: int, salt: int = 0) -> list[bytes]:
    return [hash_leaf(salt.to_bytes(8, "big") + i.to_bytes(8, "big")) for i in range(count)]


SWEEP_LEAVES = make_leaves(64)
SWEEP_ROOTS = [ref_mth(SWEEP_LEAVES[:n]) for n in range(65)]


@pytest.mark.parametrize("size", range(1, 65))
def test_sweep_inclusion(size: int) -> None:
    leaves = SWEEP_LEAVES[:size]
    root = SWEEP_ROOTS[size]
    assert root_from_leaf_hashes(leaves) == root
    for index in range(size):
        proof = inclusion_proof(index, leaves)
        assert proof == ref_path(index, leaves), index
        assert root_from_inclusion_proof(index, size, leaves[index], proof) == root
        verify_inclusion(index, size, leaves[index], proof, root)


@pytest.mark.parametrize("new_size", range(1, 65))
def test_sweep_consistency(new_size: int) -> None:
    leaves = SWEEP_LEAVES[:new_size]
    new_root = SWEEP_ROOTS[new_size]
    for old_size in range(0, new_size + 1):
        proof = consistency_proof(old_size, leaves)
        assert proof == ref_proof(old_size, leaves), old_size
        verify_consistency(old_size, new_size, SWEEP_ROOTS[old_size], new_root, proof)


def test_root_of_a_larger_tree_matches_the_reference() -> None:
    leaves = make_leaves(5003, salt=1)
    assert root_from_leaf_hashes(leaves) == ref_mth(leaves)
    proof = inclusion_proof(4097, leaves)
    assert proof == ref_path(4097, leaves)
    assert consistency_proof(3001, leaves) == ref_proof(3001, leaves)


def test_million_leaves_iteratively() -> None:
    # With every leaf equal, the root of a complete subtree of 2**k leaves is k hashes away
    # from the leaf, and MTH of n leaves folds the complete subtrees of n's binary
    # expansion from the right: an O(log n) oracle for an O(n) computation.
    size = 1_000_000
    leaf = hash_leaf(b"same")
    complete = [leaf]
    for _ in range(size.bit_length()):
        complete.append(hash_children(complete[-1], complete[-1]))
    expected: bytes | None = None
    for level in range(size.bit_length()):
        if size >> level & 1:
            expected = (
                complete[level] if expected is None else hash_children(complete[level], expected)
            )
    assert root_from_leaf_hashes([leaf] * size) == expected


def test_inputs_are_not_mutated() -> None:
    leaves = make_leaves(11)
    before = list(leaves)
    root_from_leaf_hashes(leaves)
    inclusion_proof(3, leaves)
    consistency_proof(5, leaves)
    assert leaves == before


def test_accepts_bytearray_hashes() -> None:
    def mutable(value: bytes) -> Any:  # typed as bytes, but bytearray works too
        return bytearray(value)

    leaves = make_leaves(6)
    proof = inclusion_proof(2, leaves)
    root = root_from_leaf_hashes(leaves)
    verify_inclusion(2, 6, mutable(leaves[2]), [mutable(p) for p in proof], mutable(root))


# --------------------------------------------------------------------------- probe files


def _vector_files() -> list[Path]:
    return sorted(VECTOR_DIR.glob("*.json"))


def _probe_params() -> list[Any]:
    params = []
    for path in _vector_files():
        content = json.loads(path.read_text())
        for probe in content["probes"]:
            params.append(pytest.param(content["kind"], probe, id=f"{path.stem}/{probe['desc']}"))
    return params


def _check_probe(kind: str, probe: dict[str, Any]) -> None:
    if kind == "inclusion":
        verify_inclusion(
            probe["index"],
            probe["size"],
            bytes.fromhex(probe["leafHash"]),
            [bytes.fromhex(p) for p in probe["proof"]],
            bytes.fromhex(probe["root"]),
        )
    elif kind == "consistency":
        verify_consistency(
            probe["oldSize"],
            probe["newSize"],
            bytes.fromhex(probe["oldRoot"]),
            bytes.fromhex(probe["newRoot"]),
            [bytes.fromhex(p) for p in probe["proof"]],
        )
    else:  # pragma: no cover - a malformed vector file
        pytest.fail(f"unknown probe kind {kind!r}")


@pytest.mark.parametrize(("kind", "probe"), _probe_params())
def test_vector_probe(kind: str, probe: dict[str, Any]) -> None:
    if not probe["wantErr"]:
        _check_probe(kind, probe)
        return
    want = {"ProofShapeError": ProofShapeError, "RootMismatchError": RootMismatchError}
    with pytest.raises(want[probe["wantErrType"]]):
        _check_probe(kind, probe)


def _load_generator() -> ModuleType:
    name = "_make_merkle_vectors_under_test"
    spec = importlib.util.spec_from_file_location(name, GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


def test_vector_files_are_up_to_date() -> None:
    generator = _load_generator()
    files = {name: generator.render(c) for name, c in generator.build_files().items()}
    on_disk = {p.name: p.read_text() for p in _vector_files()}
    assert files == on_disk, "run: .venv/bin/python tests/vectors/make_merkle_vectors.py"


def test_vector_files_cover_the_named_mutations() -> None:
    descs: dict[str, set[str]] = {"inclusion": set(), "consistency": set()}
    for path in _vector_files():
        content = json.loads(path.read_text())
        descs[content["kind"]].update(p["desc"] for p in content["probes"])
    common = {"valid proof", "empty proof", "proof[0] bit"}
    wanted = {
        "inclusion": common
        | {"index - 1", "index + 1", "size * 2", "garbage", "extra proof"}
        | {"wrong leaf", "swapped leaf and root"},
        "consistency": common
        | {"old_size - 1", "old_size + 1", "new_size * 2", "garbage"}
        | {"extra proof", "swapped roots", "wrong old root", "wrong new root"},
    }
    for kind, needles in wanted.items():
        for needle in needles:
            assert any(needle in d for d in descs[kind]), (kind, needle)


# --------------------------------------------------------------------------- properties


@st.composite
def trees(draw: st.DrawFn, max_size: int = 200) -> list[bytes]:
    size = draw(st.integers(min_value=1, max_value=max_size))
    salt = draw(st.integers(min_value=0, max_value=2**32))
    return make_leaves(size, salt)


def _corrupt(value: bytes, position: int, mask: int) -> bytes:
    out = bytearray(value)
    out[position % len(out)] ^= mask
    return bytes(out)


PROPERTY_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@PROPERTY_SETTINGS
@given(leaves=trees(), data=st.data())
def test_property_inclusion(leaves: list[bytes], data: st.DataObject) -> None:
    size = len(leaves)
    index = data.draw(st.integers(min_value=0, max_value=size - 1), label="index")
    root = root_from_leaf_hashes(leaves)
    proof = inclusion_proof(index, leaves)
    verify_inclusion(index, size, leaves[index], proof, root)

    targets = ["leaf", "root"] + [f"proof[{k}]" for k in range(len(proof))]
    target = data.draw(st.sampled_from(targets), label="target")
    position = data.draw(st.integers(min_value=0, max_value=HASH_SIZE - 1), label="byte")
    mask = data.draw(st.integers(min_value=1, max_value=255), label="xor mask")
    leaf, bad_proof = leaves[index], list(proof)
    if target == "leaf":
        leaf = _corrupt(leaf, position, mask)
    elif target == "root":
        root = _corrupt(root, position, mask)
    else:
        k = targets.index(target) - 2
        bad_proof[k] = _corrupt(bad_proof[k], position, mask)
    with pytest.raises(RootMismatchError):
        verify_inclusion(index, size, leaf, bad_proof, root)


@PROPERTY_SETTINGS
@given(leaves=trees(), data=st.data())
def test_property_consistency(leaves: list[bytes], data: st.DataObject) -> None:
    new_size = len(leaves)
    old_size = data.draw(st.integers(min_value=1, max_value=new_size), label="old_size")
    old_root = root_from_leaf_hashes(leaves[:old_size])
    new_root = root_from_leaf_hashes(leaves)
    proof = consistency_proof(old_size, leaves)
    verify_consistency(old_size, new_size, old_root, new_root, proof)

    targets = ["old root", "new root"] + [f"proof[{k}]" for k in range(len(proof))]
    target = data.draw(st.sampled_from(targets), label="target")
    position = data.draw(st.integers(min_value=0, max_value=HASH_SIZE - 1), label="byte")
    mask = data.draw(st.integers(min_value=1, max_value=255), label="xor mask")
    bad_proof = list(proof)
    if target == "old root":
        old_root = _corrupt(old_root, position, mask)
    elif target == "new root":
        new_root = _corrupt(new_root, position, mask)
    else:
        k = targets.index(target) - 2
        bad_proof[k] = _corrupt(bad_proof[k], position, mask)
    with pytest.raises(RootMismatchError):
        verify_consistency(old_size, new_size, old_root, new_root, bad_proof)


@PROPERTY_SETTINGS
@given(leaves=trees(max_size=64), data=st.data())
def test_property_consistency_then_inclusion(leaves: list[bytes], data: st.DataObject) -> None:
    # A leaf proven in an old tree is provable in every later tree, with the same leaf hash.
    new_size = len(leaves)
    old_size = data.draw(st.integers(min_value=1, max_value=new_size), label="old_size")
    index = data.draw(st.integers(min_value=0, max_value=old_size - 1), label="index")
    old_root = root_from_leaf_hashes(leaves[:old_size])
    new_root = root_from_leaf_hashes(leaves)
    verify_inclusion(
        index, old_size, leaves[index], inclusion_proof(index, leaves[:old_size]), old_root
    )
    verify_consistency(old_size, new_size, old_root, new_root, consistency_proof(old_size, leaves))
    verify_inclusion(index, new_size, leaves[index], inclusion_proof(index, leaves), new_root)


# --------------------------------------------------------------------------- shape errors

LEAVES_8 = LEAF_HASHES
GOOD_PROOF_5 = [L4, N67, ROOT_4]  # leaf index 5 (hash L5) of 8
GOOD_CONS_6_8 = [N45, N67, ROOT_4]
R6, R8 = ROOTS[5], ROOTS[7]

SHAPE_CASES: list[tuple[str, Callable[[], object]]] = [
    # verify_inclusion / root_from_inclusion_proof
    ("index = size", lambda: verify_inclusion(8, 8, L0, GOOD_PROOF_5, R8)),
    ("index > size", lambda: verify_inclusion(9, 8, L0, GOOD_PROOF_5, R8)),
    ("negative index", lambda: verify_inclusion(-1, 8, L0, GOOD_PROOF_5, R8)),
    ("size 0", lambda: verify_inclusion(0, 0, L0, [], EMPTY_ROOT)),
    ("bool index", lambda: verify_inclusion(True, 8, L0, GOOD_PROOF_5, R8)),
    ("float size", lambda: verify_inclusion(5, 8.0, L5, GOOD_PROOF_5, R8)),  # type: ignore[arg-type]
    ("31-byte leaf", lambda: verify_inclusion(5, 8, L5[:31], GOOD_PROOF_5, R8)),
    ("33-byte root", lambda: verify_inclusion(5, 8, L5, GOOD_PROOF_5, R8 + b"\x00")),
    ("str leaf", lambda: verify_inclusion(5, 8, "x" * 32, GOOD_PROOF_5, R8)),  # type: ignore[arg-type]
    ("empty proof hash", lambda: verify_inclusion(5, 8, L5, [L4, b"", ROOT_4], R8)),
    ("proof too long", lambda: verify_inclusion(5, 8, L5, [*GOOD_PROOF_5, R8], R8)),
    ("proof too short", lambda: verify_inclusion(5, 8, L5, GOOD_PROOF_5[:2], R8)),
    ("proof for size 1", lambda: verify_inclusion(0, 1, L0, [L0], L0)),
    ("root from proof, bad index", lambda: root_from_inclusion_proof(3, 3, L0, [L0])),
    # verify_consistency
    ("old > new", lambda: verify_consistency(8, 6, R8, R6, GOOD_CONS_6_8)),
    ("negative old", lambda: verify_consistency(-6, 8, R6, R8, GOOD_CONS_6_8)),
    ("short old root", lambda: verify_consistency(6, 8, R6[:-1], R8, GOOD_CONS_6_8)),
    ("long new root", lambda: verify_consistency(6, 8, R6, R8 * 2, GOOD_CONS_6_8)),
    ("bad proof hash", lambda: verify_consistency(6, 8, R6, R8, [N45, N67[1:], ROOT_4])),
    ("growth, empty proof", lambda: verify_consistency(6, 8, R6, R8, [])),
    ("proof too long", lambda: verify_consistency(6, 8, R6, R8, [*GOOD_CONS_6_8, R8])),
    ("same size, proof", lambda: verify_consistency(8, 8, R8, R8, [R8])),
    ("from empty, proof", lambda: verify_consistency(0, 8, EMPTY_ROOT, R8, [R8])),
    ("empty to empty, proof", lambda: verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [L0])),
    # building proofs and roots
    ("inclusion_proof index = n", lambda: inclusion_proof(8, LEAVES_8)),
    ("inclusion_proof negative", lambda: inclusion_proof(-1, LEAVES_8)),
    ("inclusion_proof empty tree", lambda: inclusion_proof(0, [])),
    ("inclusion_proof bad leaf", lambda: inclusion_proof(0, [*LEAVES_8[:7], b"short"])),
    ("consistency_proof old > n", lambda: consistency_proof(9, LEAVES_8)),
    ("consistency_proof negative", lambda: consistency_proof(-1, LEAVES_8)),
    ("consistency_proof bad leaf", lambda: consistency_proof(3, [L0, L1, b"", L0])),
    ("root of a bad leaf", lambda: root_from_leaf_hashes([L0, L1[:16]])),
]


@pytest.fixture
def no_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(data: bytes = b"") -> Any:
        raise AssertionError("hashed before the shape was checked")

    monkeypatch.setattr(merkle, "_sha256", refuse)


@pytest.mark.usefixtures("no_hashing")
@pytest.mark.parametrize("call", [c for _, c in SHAPE_CASES], ids=[d for d, _ in SHAPE_CASES])
def test_shape_errors_raise_before_hashing(call: Callable[[], object]) -> None:
    with pytest.raises(ProofShapeError):
        call()


@pytest.mark.usefixtures("no_hashing")
def test_no_hashing_fixture_is_effective() -> None:
    # The positive control: a well-shaped call does reach the hash function.
    with pytest.raises(AssertionError, match="hashed before"):
        verify_inclusion(5, 8, L5, GOOD_PROOF_5, R8)


def test_shape_error_is_a_merkle_error() -> None:
    assert issubclass(ProofShapeError, MerkleError)
    assert issubclass(RootMismatchError, MerkleError)
    assert not issubclass(ProofShapeError, RootMismatchError)


# --------------------------------------------------------------------------- mismatches


def test_inclusion_mismatch_carries_both_roots() -> None:
    wrong_root = ROOTS[6]
    with pytest.raises(RootMismatchError) as caught:
        verify_inclusion(5, 8, L5, GOOD_PROOF_5, wrong_root)
    err = caught.value
    assert err.expected == wrong_root
    assert err.computed == R8
    assert wrong_root.hex() in str(err)
    assert R8.hex() in str(err)


def test_inclusion_mismatch_for_wrong_leaf() -> None:
    wrong_leaf = hash_leaf(b"not leaf 5")
    with pytest.raises(RootMismatchError) as caught:
        verify_inclusion(5, 8, wrong_leaf, GOOD_PROOF_5, R8)
    assert caught.value.expected == R8
    assert caught.value.computed == root_from_inclusion_proof(5, 8, wrong_leaf, GOOD_PROOF_5)


def test_consistency_mismatch_on_old_root() -> None:
    with pytest.raises(RootMismatchError) as caught:
        verify_consistency(6, 8, ROOTS[4], R8, GOOD_CONS_6_8)
    assert caught.value.expected == ROOTS[4]
    assert caught.value.computed == R6
    assert "old root" in str(caught.value)


def test_consistency_mismatch_on_new_root() -> None:
    with pytest.raises(RootMismatchError) as caught:
        verify_consistency(6, 8, R6, ROOTS[6], GOOD_CONS_6_8)
    assert caught.value.expected == ROOTS[6]
    assert caught.value.computed == R8
    assert "new root" in str(caught.value)


def test_consistency_edge_sizes() -> None:
    verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    verify_consistency(0, 8, EMPTY_ROOT, R8, [])
    verify_consistency(8, 8, R8, R8, [])
    with pytest.raises(RootMismatchError) as caught:
        verify_consistency(0, 8, R6, R8, [])  # the empty tree has exactly one root
    assert caught.value.expected == R6
    assert caught.value.computed == EMPTY_ROOT
    with pytest.raises(RootMismatchError) as caught:
        verify_consistency(8, 8, R8, R6, [])
    assert (caught.value.expected, caught.value.computed) == (R6, R8)


def test_root_mismatch_error_pickles() -> None:
    err = RootMismatchError(R8, R6, "root")
    copy = pickle.loads(pickle.dumps(err))
    assert (copy.expected, copy.computed, str(copy)) == (R8, R6, str(err))
