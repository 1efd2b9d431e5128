"""docs/examples/independent_verify.py, the auditor's verifier written from docs/FORMAT.md
alone, agrees with `ledger.verify` on real ledgers: clean ones, tampered ones, truncated ones
and rewritten ones; and its canonical JSON and proof checks agree with trialctl's own."""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.co_signed_site import pending_adjudication
from tests.ledgers import (
    PASSWORDS,
    Staff,
    actor,
    drop_append_only_triggers,
    engine_for,
    make_staff,
    plant,
    rows,
    sql,
    swap_rows,
    write_file,
)
from tests.signed_site import PASSWORDS as SITE_PASSWORDS
from trialctl.ledger.application import open_ledger
from trialctl.ledger.authority import PERMISSIONS
from trialctl.ledger.checkpoint import parse_checkpoint
from trialctl.ledger.co_signing import CoSign, CoSignActions
from trialctl.ledger.entry import entry_hash, parse_entry
from trialctl.ledger.merkle import (
    consistency_proof,
    hash_leaf,
    inclusion_proof,
    root_from_leaf_hashes,
)
from trialctl.ledger.proofs import prove_consistency, prove_inclusion
from trialctl.ledger.users import security_log_id, user_aggregate_id
from trialctl.ledger.verify import VerificationReport, verify_ledger

VERIFIER = Path(__file__).resolve().parents[1] / "docs" / "examples" / "independent_verify.py"


def independent(ledger: Path, *args: str) -> tuple[int, dict[str, Any]]:
    """Run the independent verifier as an auditor would: its own process, JSON out."""
    completed = subprocess.run(
        [sys.executable, str(VERIFIER), str(ledger), "--json", *args],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert completed.returncode in (0, 1), completed.stderr
    return completed.returncode, json.loads(completed.stdout)


def trialctl_verify(ledger: Path, *checkpoint_files: Path) -> VerificationReport:
    app = open_ledger(str(ledger))
    try:
        checkpoints = [
            (str(p), parse_checkpoint(p.read_text(encoding="utf-8"))) for p in checkpoint_files
        ]
        return verify_ledger(app.signed_recorder, str(ledger), checkpoints, workers=1)
    finally:
        app.close()


def positions(findings: list[Any]) -> set[int]:
    found = (f["position"] if isinstance(f, dict) else f.position for f in findings)
    return {p for p in found if p is not None}


@functools.cache
def load_verifier_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("independent_verify", VERIFIER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["independent_verify"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def ledger(tmp_path: Path, home: Path) -> tuple[Path, Path]:
    """A SQLite ledger with every kind of user event and a checkpoint note beside it.

    Positions: 0 identity, 1-3 alice, bob, carol registered, 4 carol's role granted,
    5 carol's key rotated, 6 checkpoint recorded by carol (over 0-5), 7 bob revoked.
    """
    path = tmp_path / "ledger.sqlite"
    staff = make_staff(str(path))
    staff.app.grant_role(staff.alice, "carol", "principal-investigator")
    staff.app.rotate_key(staff.alice, "carol", "carol-new-password")
    carol = staff.app.unlock("carol", "carol-new-password")
    signed = staff.app.checkpoint(carol, datetime.now(UTC))
    staff.app.revoke_user(staff.alice, "bob", "left the site")
    staff.app.close()
    return path, write_file(tmp_path / "checkpoint.txt", signed.to_text())


def test_the_verifier_uses_only_the_standard_library_and_cryptography() -> None:
    tree = ast.parse(VERIFIER.read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module.split(".")[0])

    assert imported - set(sys.stdlib_module_names) == {"cryptography"}
    own = {"trialctl", "ledger", "domain", "cli"}
    assert not imported & (own | {"rfc8785", "eventsourcing", "sqlalchemy"})


def test_a_clean_ledger_and_its_checkpoint_verify_with_the_same_root(
    ledger: tuple[Path, Path],
) -> None:
    path, checkpoint = ledger

    code, report = independent(path, "--checkpoint", str(checkpoint))
    ours = trialctl_verify(path, checkpoint)

    assert ours.ok, ours.findings
    assert code == 0, report["findings"]
    assert report["findings"] == []
    assert report["entries_checked"] == ours.entries_checked == 8
    assert report["tree_size"] == ours.tree_size == 8
    assert report["root_hash"] == ours.root_hash
    assert report["checkpoints"] == [
        {"source": str(checkpoint), "tree_size": 6, "signer": "carol", "status": "ok"}
    ]


def test_the_human_readable_report_ends_with_the_root(ledger: tuple[Path, Path]) -> None:
    path, _ = ledger
    completed = subprocess.run([sys.executable, str(VERIFIER), str(path)],
                               capture_output=True, text=True, timeout=120, check=False)

    assert completed.returncode == 0, completed.stdout + completed.stderr
    root = trialctl_verify(path).root_hash
    assert completed.stdout.strip().endswith(f"root {root}: clean")


def test_a_flipped_payload_byte_fails_both_verifiers_at_the_same_position(
    ledger: tuple[Path, Path],
) -> None:
    path, checkpoint = ledger
    engine = engine_for(str(path))
    drop_append_only_triggers(engine)
    row_id, _, position, state = next(r for r in rows(engine) if b'"Bob Brown"' in r[3]
                                      and r[1] == "trialctl.User.Registered")
    sql(engine, "UPDATE trialctl_events SET state = :state WHERE id = :id",
        state=state.replace(b'"Bob Brown"', b'"Bob Browm"', 1), id=row_id)
    engine.dispose()

    code, report = independent(path, "--checkpoint", str(checkpoint))
    ours = trialctl_verify(path, checkpoint)

    assert not ours.ok
    assert code == 1
    assert position == 2
    assert min(positions(report["findings"])) == min(positions(ours.findings)) == position
    checks_at = {(f["check"], f["position"]) for f in report["findings"]}
    assert {("signature", 2), ("leaf", 2), ("chain", 7)} <= checks_at  # bob's revocation
    assert report["root_hash"] == ours.root_hash  # both hash what is there now
    assert "history rewritten" in report["checkpoints"][0]["status"]
    assert "history rewritten" in ours.checkpoints[0].status


def test_a_deleted_entry_fails_both_verifiers_at_the_same_position(
    ledger: tuple[Path, Path],
) -> None:
    path, _ = ledger
    engine = engine_for(str(path))
    drop_append_only_triggers(engine)
    row_id = next(r[0] for r in rows(engine) if r[2] == 4)  # carol's role grant
    sql(engine, "DELETE FROM trialctl_leaves WHERE notification_id = :id", id=row_id)
    sql(engine, "DELETE FROM trialctl_events WHERE id = :id", id=row_id)
    engine.dispose()

    code, report = independent(path)
    ours = trialctl_verify(path)

    assert code == 1 and not ours.ok
    assert min(positions(report["findings"])) == min(positions(ours.findings)) == 5
    assert {f["check"] for f in report["findings"] if f["position"] == 5} >= {
        "sequence", "chain"
    }


def test_a_truncated_tail_is_caught_only_by_a_checkpoint(
    ledger: tuple[Path, Path], tmp_path: Path
) -> None:
    path, _ = ledger
    app = open_ledger(str(path))
    alice = app.unlock("alice", PASSWORDS["alice"])
    latest = write_file(tmp_path / "latest.txt",
                        app.checkpoint(alice, datetime.now(UTC)).to_text())  # over 0-7
    app.close()
    engine = engine_for(str(path))
    drop_append_only_triggers(engine)
    sql(engine, "DELETE FROM trialctl_leaves WHERE position >= 6")
    sql(engine, "DELETE FROM trialctl_events WHERE id NOT IN "
                "(SELECT notification_id FROM trialctl_leaves)")
    # trialctl's stored frontiers (FORMAT.md section 1) would give the cut away: gone too.
    sql(engine, "DELETE FROM trialctl_frontiers")
    engine.dispose()

    code, report = independent(path)
    assert code == 0 and trialctl_verify(path).ok  # a clean-looking shorter ledger

    code, report = independent(path, "--checkpoint", str(latest))
    ours = trialctl_verify(path, latest)
    assert code == 1 and not ours.ok
    status = "ledger truncated: the checkpoint covers 8 entries, the ledger holds 6"
    assert report["checkpoints"][0]["status"] == ours.checkpoints[0].status == status


def test_a_rewritten_ledger_is_caught_by_the_checkpoint_of_the_real_one(
    ledger: tuple[Path, Path], tmp_path: Path
) -> None:
    _, checkpoint = ledger
    forged = tmp_path / "forged.sqlite"
    make_staff(str(forged)).app.close()  # same user ids, new keys: a self-consistent forgery

    code, report = independent(forged)
    assert code == 0 and trialctl_verify(forged).ok

    code, report = independent(forged, "--checkpoint", str(checkpoint))
    ours = trialctl_verify(forged, checkpoint)
    assert code == 1 and not ours.ok
    status = "signature does not verify with any key of its signer"
    assert report["checkpoints"][0]["status"] == ours.checkpoints[0].status == status


def test_a_pinned_first_admin_key_catches_a_rewritten_ledger(
    ledger: tuple[Path, Path], tmp_path: Path
) -> None:
    path, _ = ledger
    app = open_ledger(str(path))
    alice_key = app.get_user("alice").key_id
    app.close()
    forged = tmp_path / "forged.sqlite"
    make_staff(str(forged)).app.close()

    assert independent(path, "--first-admin-key", alice_key)[0] == 0
    code, report = independent(forged, "--first-admin-key", alice_key)
    assert code == 1
    assert [(f["check"], f["position"]) for f in report["findings"]] == [("authority", 1)]


def test_an_edited_checkpoint_note_is_refused_by_both(ledger: tuple[Path, Path]) -> None:
    path, checkpoint = ledger
    text = checkpoint.read_text(encoding="utf-8")
    edited = write_file(checkpoint.with_name("edited.txt"), text.replace("\n6\n", "\n5\n", 1))

    code, report = independent(path, "--checkpoint", str(edited))
    ours = trialctl_verify(path, edited)

    assert code == 1 and not ours.ok
    assert report["checkpoints"][0]["status"] == ours.checkpoints[0].status == (
        "signature does not verify with any key of its signer"
    )


def test_saved_proofs_from_trialctl_verify_and_forged_ones_do_not(
    ledger: tuple[Path, Path], tmp_path: Path
) -> None:
    path, _ = ledger
    app = open_ledger(str(path))
    documents = [prove_inclusion(app.signed_recorder, p).to_dict() for p in (0, 3, 7)]
    documents.append(prove_inclusion(app.signed_recorder, 5, tree_size=6).to_dict())
    documents += [prove_consistency(app.signed_recorder, n).to_dict() for n in range(1, 9)]
    app.close()
    files = [write_file(tmp_path / f"proof{i}.json", json.dumps(d))
             for i, d in enumerate(documents)]

    code, report = independent(path, *(arg for f in files for arg in ("--proof", str(f))))
    assert code == 0, report["proofs"]
    assert [p["status"] for p in report["proofs"]] == ["ok"] * len(files)

    forged = dict(documents[1], position=2)
    code, report = independent(path, "--proof", str(write_file(tmp_path / "f.json",
                                                               json.dumps(forged))))
    assert code == 1
    assert report["proofs"][0]["status"].startswith("inclusion proof fails")


def test_proof_checking_agrees_with_trialctl_merkle_for_every_small_tree() -> None:
    verifier = load_verifier_module()
    leaves = [hash_leaf(bytes([i])) for i in range(40)]
    for size in range(1, len(leaves) + 1):
        tree = leaves[:size]
        root = root_from_leaf_hashes(tree)
        assert verifier.merkle_root(tree) == root
        for index in range(size):
            proof = inclusion_proof(index, tree)
            assert verifier.root_from_inclusion(index, size, tree[index], proof) == root
        for old in range(1, size):
            old_root = root_from_leaf_hashes(leaves[:old])
            proof = consistency_proof(old, tree)
            assert verifier.roots_from_consistency(old, size, old_root, proof) == (old_root,
                                                                                   root)
    assert verifier.merkle_root([]) == hashlib.sha256(b"").digest()


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53 - 1), 2**53 - 1)
    | st.text(st.characters(exclude_categories=["Cs"])),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(st.characters(exclude_categories=["Cs"]), max_size=6), inner,
                      max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(JSON_VALUES)
def test_the_verifiers_canonical_json_is_rfc8785(value: Any) -> None:
    assert load_verifier_module().canonical(value) == rfc8785.dumps(value)


# -- exact findings: both verifiers give the same positions --------------------------------


def agreeing_positions(path: Path) -> tuple[set[int], set[int]]:
    code, report = independent(path)
    ours = trialctl_verify(path)
    assert code == 1 and not ours.ok
    return positions(report["findings"]), positions(ours.findings)


def test_a_swap_gives_both_verifiers_findings_only_at_the_swapped_positions(
    ledger: tuple[Path, Path],
) -> None:
    path, _ = ledger
    engine = engine_for(str(path))
    drop_append_only_triggers(engine)
    swap_rows(engine, 2, 3)
    engine.dispose()

    theirs, ours = agreeing_positions(path)
    # and the checkpoint recorded at 6, whose root covers the entries in their true order
    assert theirs == ours == {2, 3, 6}


def test_a_patient_event_in_a_users_record_is_found_by_both(
    tmp_path: Path, home: Path,
) -> None:
    staff = make_staff(str(tmp_path / "ledger.sqlite"))
    staff.app.close()
    position = plant(staff, staff.bob.keys, aggregate_id=user_aggregate_id("bob"),
                     type="trialctl.Patient.WentOffStudy", meaning="recorded",
                     payload={"off_on": "2026-01-01", "reason": "planted"},
                     actor=actor(staff, "bob", "monitor"))

    _, report = independent(tmp_path / "ledger.sqlite")
    ours = trialctl_verify(tmp_path / "ledger.sqlite")
    assert [(f.position, f.check) for f in ours.findings] == [(position, "aggregate")]
    # The example verifier knows no Patient permission unless given --permissions, so it
    # also reports the signer's authority; the record's kind it reports as trialctl does.
    assert (position, "aggregate") in {(f["position"], f["check"]) for f in report["findings"]}
    assert positions(report["findings"]) == {position}


@pytest.mark.parametrize(
    ("kind", "payload"),
    [("trialctl.User.RoleGranted", {"role": "monitor"}),
     ("trialctl.User.KeyRevoked", {"key_id": "ab" * 32, "reason": "x"})],
    ids=["role-already-held", "key-not-held"],
)
def test_a_user_change_the_rules_forbid_is_found_by_both(
    tmp_path: Path, home: Path, kind: str, payload: dict[str, str],
) -> None:
    staff = make_staff(str(tmp_path / "ledger.sqlite"))
    staff.app.close()
    position = plant(staff, staff.alice.keys, aggregate_id=user_aggregate_id("bob"),
                     type=kind, payload=payload, actor=actor(staff, "alice", "admin"),
                     meaning="revoked" if "Revoked" in kind else "approved")

    theirs, ours = agreeing_positions(tmp_path / "ledger.sqlite")
    assert theirs == ours == {position}


def test_a_state_stored_as_text_is_a_finding_for_both(ledger: tuple[Path, Path]) -> None:
    path, _ = ledger
    engine = engine_for(str(path))
    drop_append_only_triggers(engine)
    sql(engine, "UPDATE trialctl_events SET state = CAST(state AS TEXT) WHERE id = 3")
    engine.dispose()

    theirs, ours = agreeing_positions(path)
    assert theirs == ours == {2}


def test_an_empty_ledger_is_a_finding_for_both(ledger: tuple[Path, Path]) -> None:
    path, _ = ledger
    engine = engine_for(str(path))
    drop_append_only_triggers(engine)
    sql(engine, "DELETE FROM trialctl_leaves")
    sql(engine, "DELETE FROM trialctl_events")
    sql(engine, "DELETE FROM trialctl_frontiers")
    engine.dispose()

    code, report = independent(path)
    ours = trialctl_verify(path)
    assert code == 1
    assert [f["check"] for f in report["findings"]] == [f.check for f in ours.findings] == [
        "bootstrap"
    ]


@pytest.mark.parametrize("value", [2**53, -(2**53)], ids=["2^53", "-2^53"])
def test_an_unsafe_integer_is_found_by_both(tmp_path: Path, home: Path, value: int) -> None:
    staff = make_staff(str(tmp_path / "ledger.sqlite"))
    staff.app.close()
    position = plant(staff, staff.bob.keys, aggregate_id=security_log_id("bob"),
                     type="trialctl.SecurityLog.Opened", actor=actor(staff, "bob", "monitor"),
                     payload={"originator_topic": "trialctl.SecurityLog", "user_id": "bob",
                              "n": value})

    theirs, ours = agreeing_positions(tmp_path / "ledger.sqlite")
    assert theirs == ours == {position}


def test_forged_co_signatures_are_found_by_both(tmp_path: Path, home: Path) -> None:
    """A DLT adjudication co-signed properly, then two forged co-signatures: one by the
    adjudicator (in a role the protocol does not name), one citing an entry that is no
    adjudication. Both verifiers find exactly those two, and nothing on the clean part."""
    path = tmp_path / "ledger.sqlite"
    position, actors = pending_adjudication(str(path))
    app = open_ledger(str(path))
    try:
        ivan = app.unlock("ivan", SITE_PASSWORDS["ivan"])
        CoSignActions(app).perform(CoSign(None, position, "ivan"), ivan, datetime.now(UTC))
        found = app.signed_recorder.entry_at(position)
        assert found is not None
        adjudication = parse_entry(found[1].state).statement
        digest = entry_hash(found[1].state)
    finally:
        app.close()
    staff = Staff(None, None, None, None, str(path))  # type: ignore[arg-type]

    def forge(user: str, role: str, cited: int) -> int:
        unlocked = actors[user]
        return plant(staff, unlocked.keys, aggregate_id=adjudication["aggregate_id"],
                     type="trialctl.Patient.AdjudicationCoSigned", meaning="approved",
                     payload={"record_version": adjudication["aggregate_version"],
                              "position": cited, "entry_hash": digest},
                     actor={"user_id": user, "name": unlocked.user.name, "role": role,
                            "key_id": unlocked.keys.key_id})

    by_author = forge("pat", "principal-investigator", position)
    not_an_adjudication = forge("ivan", "investigator", position - 1)
    permissions = write_file(tmp_path / "permissions.json", json.dumps({
        event_type: {"roles": sorted(p.roles), "meanings": sorted(p.meanings)}
        for event_type, p in PERMISSIONS.items()}))

    _, report = independent(path, "--permissions", str(permissions))
    ours = trialctl_verify(path)
    expected = {by_author, not_an_adjudication}
    assert positions(report["findings"]) == positions(ours.findings) == expected
    details = " ".join(f["detail"] for f in report["findings"])
    assert "nobody co-signs their own entry" in details
    assert "signed as 'principal-investigator'" in details
    assert "no co-signable entry" in details
