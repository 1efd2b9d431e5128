"""`verify --since-checkpoint`: routine verification checks only what came after a
checkpoint verified before, and proves the older entries unchanged by consistency."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import trialctl
from tests.ledgers import (
    Staff,
    drop_append_only_triggers,
    engine_for,
    make_staff,
    rows,
    sql,
    write_file,
)
from trialctl.ledger.entry import parse_entry, seal
from trialctl.ledger.merkle import hash_leaf


def since(staff: Staff, note: Path) -> tuple[int, dict[str, object]]:
    result = trialctl("verify", "--ledger", staff.url, "--since-checkpoint", str(note), "--json")
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, json.loads(result.stdout)


def checkpointed(ledger_url: str, tmp_path: Path) -> tuple[Staff, Path]:
    staff = make_staff(ledger_url)
    note = write_file(
        tmp_path / "cp.txt", staff.app.checkpoint(staff.alice, datetime.now(UTC)).to_text()
    )
    staff.app.grant_role(staff.alice, "bob", "data-manager")
    staff.app.grant_role(staff.alice, "carol", "monitor")
    return staff, note


def test_only_new_entries_are_checked(ledger_url: str, home: Path, tmp_path: Path) -> None:
    staff, note = checkpointed(ledger_url, tmp_path)

    code, report = since(staff, note)

    assert code == 0, report
    assert report["since_tree_size"] == 4
    assert report["entries_checked"] == 3  # the checkpoint's own record and two grants
    assert report["tree_size"] == 7
    full = json.loads(trialctl("verify", "--ledger", staff.url, "--json").stdout)
    assert full["root_hash"] == report["root_hash"]


def test_a_tampered_new_entry_is_named(ledger_url: str, home: Path, tmp_path: Path) -> None:
    staff, note = checkpointed(ledger_url, tmp_path)
    engine = engine_for(staff.url)
    drop_append_only_triggers(engine)
    notification_id, _, _, state = rows(engine)[6]
    sql(
        engine,
        "UPDATE trialctl_events SET state = :s WHERE id = :i",
        s=state.replace(b'"monitor"', b'"admin"'),
        i=notification_id,
    )

    code, report = since(staff, note)

    assert code == 1
    assert (6, "signature") in [(f["position"], f["check"]) for f in report["findings"]]  # type: ignore[index, union-attr]


def test_a_rewritten_old_entry_breaks_consistency(
    ledger_url: str, home: Path, tmp_path: Path
) -> None:
    staff, note = checkpointed(ledger_url, tmp_path)
    engine = engine_for(staff.url)
    drop_append_only_triggers(engine)
    notification_id, _, position, state = rows(engine)[3]
    statement = parse_entry(state).statement
    statement["payload"]["name"] = "Carol Forged"
    forged = seal(statement, staff.alice.keys)  # signed with a stolen admin key
    sql(engine, "UPDATE trialctl_events SET state = :s WHERE id = :i", s=forged, i=notification_id)
    sql(
        engine,
        "UPDATE trialctl_leaves SET leaf_hash = :h WHERE position = :p",
        h=hash_leaf(forged),
        p=position,
    )

    # The checkpoint's frontier stands for its leaves: with it removed, every old leaf is
    # read, and the rewritten one breaks the proof that today's tree extends the signed one.
    sql(engine, "DELETE FROM trialctl_frontiers")

    code, report = since(staff, note)

    assert code == 1
    checks = [f["check"] for f in report["findings"]]  # type: ignore[union-attr]
    assert "consistency" in checks
    assert report["notes"] == [f"{note}: no frontier is stored for tree size 4: every leaf "
                               "before tree size 4 was read instead"]


@pytest.mark.parametrize("position", [4, 5, 6])  # the first, a middle and the last new entry
def test_a_new_entry_without_its_leaf_is_named(
    ledger_url: str, home: Path, tmp_path: Path, position: int
) -> None:
    staff, note = checkpointed(ledger_url, tmp_path)
    engine = engine_for(staff.url)
    drop_append_only_triggers(engine)
    notification_id = rows(engine)[position][0]
    sql(engine, "DELETE FROM trialctl_leaves WHERE notification_id = :i", i=notification_id)

    code, report = since(staff, note)

    assert code == 1
    assert (position, "leaf", "entry has no Merkle leaf") in [
        (f["position"], f["check"], f["detail"]) for f in report["findings"]]  # type: ignore[index, union-attr]


def test_an_old_entry_without_its_leaf_is_the_full_verifys_to_find(
    ledger_url: str, home: Path, tmp_path: Path
) -> None:
    staff, _ = checkpointed(ledger_url, tmp_path)
    engine = engine_for(staff.url)
    drop_append_only_triggers(engine)
    sql(engine, "DELETE FROM trialctl_leaves WHERE notification_id = :i", i=rows(engine)[2][0])

    full = json.loads(trialctl("verify", "--ledger", staff.url, "--json").stdout)

    assert (2, "leaf") in [(f["position"], f["check"]) for f in full["findings"]]
