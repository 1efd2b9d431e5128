"""`trialctl proof verify`: an outside party checks a proof it was sent, with no ledger.

Every probe in tests/vectors/merkle/ (the transparency-dev/merkle proofs and their named
mutations: wrong leaf, index ± 1, size times 2 and over 2, a flipped bit in each path hash, a hash
added or removed, garbage before or after, wrong or empty root) goes through the same
function the command calls; two whole probe files, one per proof kind, go through the
command itself. Then proofs from a real ledger are checked against a checkpoint note.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Result, assert_one_line_error, trialctl
from tests.ledgers import make_staff, write_file
from trialctl.ledger.checkpoint import (
    Checkpoint,
    CheckpointError,
    check_signed_by,
    sign_checkpoint,
)
from trialctl.ledger.keys import KeyPair
from trialctl.ledger.proofs import (
    ProofRejectedError,
    check_consistency_document,
    check_inclusion_document,
)
from trialctl.ledger.signed_note import (
    COSIGNATURE_V1,
    ED25519,
    Verifier,
    parse_vkey,
)
from trialctl.ledger.witness import log_key

VECTOR_DIR = Path(__file__).resolve().parent / "vectors" / "merkle"


def _probes(*names: str) -> list[tuple[str, dict[str, Any]]]:
    files = [VECTOR_DIR / n for n in names] if names else sorted(VECTOR_DIR.glob("*.json"))
    found = []
    for path in files:
        data = json.loads(path.read_text(encoding="utf-8"))
        found += [(f"{path.stem}: {p['desc']}", {"kind": data["kind"], **p})
                  for p in data["probes"]]
    return found


def _document(probe: dict[str, Any]) -> dict[str, Any]:
    """The probe as `proof inclusion|consistency --json` prints a proof."""
    if probe["kind"] == "inclusion":
        return {"position": probe["index"], "tree_size": probe["size"],
                "leaf_hash": probe["leafHash"], "proof": probe["proof"]}
    return {"old_size": probe["oldSize"], "new_size": probe["newSize"], "proof": probe["proof"]}


def _check(probe: dict[str, Any]) -> None:
    document = _document(probe)
    if probe["kind"] == "inclusion":
        check_inclusion_document(document, bytes.fromhex(probe["root"]))
    else:
        check_consistency_document(document, bytes.fromhex(probe["oldRoot"]),
                                   bytes.fromhex(probe["newRoot"]))


ALL = _probes()


def test_the_vectors_hold_every_named_mutation() -> None:
    descs = {probe["desc"] for _, probe in ALL}
    for wanted in ("wrong leaf", "index + 1", "index - 1", "size * 2", "size / 2",
                   "new_size * 2", "new_size / 2", "proof[0] bit 3 flipped",
                   "proof[0] bit 4 flipped", "removed last element", "inserted element",
                   "extra garbage element (preceding empty)",
                   "extra garbage element (trailing empty)", "random root",
                   "wrong old root", "wrong new root", "empty proof"):
        assert wanted in descs, wanted
    assert sum(1 for _, p in ALL if p["wantErr"]) > 450


@pytest.mark.parametrize("probe", [p for _, p in ALL], ids=[i for i, _ in ALL])
def test_every_probe_gets_its_verdict(probe: dict[str, Any]) -> None:
    if probe["wantErr"]:
        with pytest.raises(ProofRejectedError):
            _check(probe)
    else:
        _check(probe)


def _run(tmp_path: Path, probe: dict[str, Any], *extra: str) -> Result:
    proof = write_file(tmp_path / "proof.json", json.dumps(_document(probe)))
    if probe["kind"] == "inclusion":
        roots = ["--root", probe["root"]]
    else:
        roots = ["--old-root", probe["oldRoot"], "--root", probe["newRoot"]]
    return trialctl("proof", "verify", str(proof), *roots, *extra)


# Through the command: one probe of each mutation the issue names (the full sets above go
# through the same function in-process; a process per probe would cost minutes).
CLI_MUTATIONS = {
    "valid proof", "wrong leaf", "index + 1", "index - 1", "size * 2", "size / 2",
    "proof[0] bit 3 flipped", "proof[1] bit 4 flipped", "extra garbage element (preceding "
    "empty)", "extra garbage element (trailing empty)", "removed last element",
    "inserted element", "random root", "new_size * 2", "new_size / 2", "old_size + 1",
    "wrong old root", "extra proof element (preceding proof[0])", "removed first element",
}
CLI = [(i, p) for i, p in _probes("inclusion_6_in_13.json", "consistency_7_to_13.json")
       if p["desc"] in CLI_MUTATIONS]


@pytest.mark.parametrize("probe", [p for _, p in CLI], ids=[i for i, _ in CLI])
def test_the_command_rejects_every_bad_probe_in_one_line(
    tmp_path: Path, probe: dict[str, Any]
) -> None:
    result = _run(tmp_path, probe)
    if probe["wantErr"]:
        assert result.returncode == 1, result
        assert_one_line_error(result, "proof rejected")
        assert result.stdout == ""
    else:
        assert result.returncode == 0, result
        assert result.stdout.startswith("ok: ")


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "not JSON"), ("[1, 2]", "JSON object"), ("{}", "either 'position'"),
     ('{"position": true, "tree_size": 1, "leaf_hash": "00", "proof": []}', "integer"),
     ('{"position": 0, "tree_size": 1, "leaf_hash": "zz", "proof": []}', "not hex"),
     ('{"position": 0, "tree_size": 1, "proof": []}', "leaf_hash"),
     ("[" * 100_000, "not JSON")],
    ids=["empty", "array", "no-kind", "bool-index", "bad-hex", "no-leaf", "deep-nesting"],
)
def test_a_malformed_document_is_rejected_in_one_line(
    tmp_path: Path, text: str, message: str
) -> None:
    proof = write_file(tmp_path / "proof.json", text)
    result = trialctl("proof", "verify", str(proof), "--root", "00" * 32)
    assert result.returncode == 1
    assert_one_line_error(result, "proof rejected", message)


def test_an_empty_root_is_rejected(tmp_path: Path) -> None:
    probe = next(p for _, p in CLI if p["kind"] == "inclusion" and not p["wantErr"])
    proof = write_file(tmp_path / "proof.json", json.dumps(_document(probe)))
    result = trialctl("proof", "verify", str(proof), "--root", "")
    assert result.returncode == 1
    assert_one_line_error(result, "proof rejected", "root is 0 bytes")


def test_a_root_is_required(tmp_path: Path) -> None:
    probe = next(p for _, p in CLI if p["kind"] == "inclusion")
    proof = write_file(tmp_path / "proof.json", json.dumps(_document(probe)))
    assert_one_line_error(trialctl("proof", "verify", str(proof)), "hex root or")


def test_a_ledger_proof_verifies_against_its_checkpoint_with_no_ledger(
    ledger_url: str, home: Path, tmp_path: Path
) -> None:
    staff = make_staff(ledger_url)
    old_note = write_file(tmp_path / "old.txt",
                          staff.app.checkpoint(staff.alice, datetime.now(UTC)).to_text())
    staff.app.grant_role(staff.alice, "bob", "data-manager")
    note = write_file(tmp_path / "new.txt",
                      staff.app.checkpoint(staff.alice, datetime.now(UTC)).to_text())
    size = staff.app.signed_recorder.leaf_hashes().__len__() - 1  # the note's size
    inclusion = trialctl("proof", "inclusion", "2", "--size", str(size), "--ledger", staff.url,
                         "--json")
    consistency = trialctl("proof", "consistency", "4", "--size", str(size), "--ledger",
                           staff.url, "--json")
    assert inclusion.returncode == 0 and consistency.returncode == 0
    included = write_file(tmp_path / "inclusion.json", inclusion.stdout)
    consistent = write_file(tmp_path / "consistency.json", consistency.stdout)
    found = staff.app.signed_recorder.entry_at(2)
    assert found is not None
    alice_vkey = log_key(staff.app, "alice")[1]
    bob = parse_vkey(log_key(staff.app, "bob")[1])
    impostor = Verifier("alice", ED25519, bob.public_key).vkey()  # alice's name, bob's key
    entry = tmp_path / "entry.bin"
    entry.write_bytes(found[1].state)
    staff.app.close()
    Path(ledger_url).unlink(missing_ok=True)  # no ledger at hand (SQLite: the file is gone)

    ok = trialctl("proof", "verify", str(included), "--checkpoint", str(note),
                  "--entry", str(entry), "--json")
    assert ok.returncode == 0, ok
    assert json.loads(ok.stdout)["position"] == 2
    ok = trialctl("proof", "verify", str(consistent), "--old-checkpoint", str(old_note),
                  "--checkpoint", str(note))
    assert ok.returncode == 0, ok
    assert f"size {size}" in ok.stdout

    other = tmp_path / "other.bin"
    other.write_bytes(found[1].state + b" ")
    assert_one_line_error(
        trialctl("proof", "verify", str(included), "--checkpoint", str(note),
                 "--entry", str(other)), "proof rejected", "leaf hash")
    # The old note against the new proof: the sizes do not match what it signed.
    assert_one_line_error(
        trialctl("proof", "verify", str(included), "--checkpoint", str(old_note)),
        "proof rejected", "checkpoint signed size 4")
    assert_one_line_error(
        trialctl("proof", "verify", str(consistent), "--old-checkpoint", str(note),
                 "--checkpoint", str(note)), "proof rejected")

    # --key: both notes must be signed with the signer's verifier key given.
    ok = trialctl("proof", "verify", str(consistent), "--old-checkpoint", str(old_note),
                  "--checkpoint", str(note), "--key", alice_vkey)
    assert ok.returncode == 0, ok
    refused = trialctl("proof", "verify", str(included), "--checkpoint", str(note),
                       "--key", impostor)
    assert_one_line_error(refused, "proof rejected", "does not verify")
    assert refused.returncode == 1
    assert_one_line_error(
        trialctl("proof", "verify", str(consistent), "--old-checkpoint", str(old_note),
                 "--checkpoint", str(note), "--key", bob.vkey()),
        "proof rejected", "no Ed25519 verifier key of that name")
    usage = trialctl("proof", "verify", str(included), "--root", "00" * 32, "--key", alice_vkey)
    assert_one_line_error(usage, "--key")
    assert usage.returncode == 2


def test_a_checkpoint_is_signed_only_by_the_log_key_of_its_signer() -> None:
    """The rule behind `proof verify --key`, at its edges, with no ledger: the note's own
    signer line, checked only with Ed25519 keys of the signer's name."""
    log = KeyPair.generate()
    log_key_ = Verifier("alice", ED25519, bytes.fromhex(log.public_key_hex))
    signed = sign_checkpoint(
        Checkpoint("0b1e4c6e-7d39-4c43-9b1f-6f5d0a9a2f10", 3, bytes(32),
                   "2026-01-05T09:00:00.000000+00:00", "alice"), log)
    assert check_signed_by(signed, [log_key_]) == log_key_
    as_witness = Verifier("alice", COSIGNATURE_V1, log_key_.public_key)
    other = Verifier("alice", ED25519, bytes.fromhex(KeyPair.generate().public_key_hex))
    for keys, why in (([as_witness], "no Ed25519 verifier key"), ([other], "does not verify"),
                      ([], "given: none")):
        with pytest.raises(CheckpointError, match=why):
            check_signed_by(signed, keys)
    # Among several keys, the one that verifies is the one named.
    assert check_signed_by(signed, [other, as_witness, log_key_]) == log_key_
