"""The tamper matrix: an attacker with database access drops the triggers and edits rows.
`trialctl verify` must detect each change and name the entry and the failed check."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import pytest
import sqlalchemy

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
from trialctl.ledger.entry import entry_hash, parse_entry, seal
from trialctl.ledger.merkle import hash_leaf
from trialctl.ledger.users import security_log_id


def verify(url: str, *checkpoints: Path) -> tuple[int, dict[str, object]]:
    args = ["verify", "--ledger", url, "--json"]
    for checkpoint in checkpoints:
        args += ["--checkpoint", str(checkpoint)]
    result = trialctl(*args)
    assert "Traceback" not in result.stderr
    return result.returncode, json.loads(result.stdout)


def stored_id(engine: sqlalchemy.Engine, aggregate_id: UUID) -> object:
    """An aggregate id as the column holds it: 16 bytes on SQLite, a uuid on PostgreSQL."""
    return str(aggregate_id) if engine.dialect.name == "postgresql" else aggregate_id.bytes


def findings(report: dict[str, object]) -> list[tuple[object, str]]:
    return [(f["position"], f["check"]) for f in report["findings"]]  # type: ignore[index, union-attr]


@pytest.fixture
def staff(ledger_url: str, home: Path) -> Staff:
    staff = make_staff(ledger_url)
    staff.app.grant_role(staff.alice, "bob", "data-manager")       # position 4
    staff.app.grant_role(staff.alice, "carol", "monitor")          # position 5
    staff.app.revoke_role(staff.alice, "bob", "data-manager")      # position 6
    return staff


def test_untouched_ledger_is_clean(staff: Staff) -> None:
    code, report = verify(staff.url)
    assert code == 0 and report["ok"] is True and report["entries_checked"] == 7


def test_a_changed_payload_byte_is_named(staff: Staff) -> None:
    engine = engine_for(staff.url)
    drop_append_only_triggers(engine)
    notification_id, _, _position, state = rows(engine)[4]
    forged = state.replace(b'"role":"data-manager"', b'"role":"principal-investigator"')
    assert forged != state
    sql(engine, "UPDATE trialctl_events SET state = :s WHERE id = :i", s=forged, i=notification_id)

    code, report = verify(staff.url)

    assert code == 1
    assert (4, "signature") in findings(report)
    assert (4, "leaf") in findings(report)
    assert (6, "chain") in findings(report)  # bob's next entry no longer links


def test_a_deleted_entry_is_named(staff: Staff) -> None:
    engine = engine_for(staff.url)
    drop_append_only_triggers(engine)
    notification_id = rows(engine)[5][0]
    sql(engine, "DELETE FROM trialctl_leaves WHERE notification_id = :i", i=notification_id)
    sql(engine, "DELETE FROM trialctl_events WHERE id = :i", i=notification_id)

    code, report = verify(staff.url)

    assert code == 1
    sequence = [f for f in report["findings"] if f["check"] == "sequence"]  # type: ignore[union-attr]
    assert len(sequence) == 1
    assert sequence[0]["position"] == 6
    detail = sequence[0]["detail"]
    assert "1 entry missing" in detail and "expected position 5" in detail


def test_two_swapped_entries_are_named(staff: Staff) -> None:
    engine = engine_for(staff.url)
    drop_append_only_triggers(engine)
    with engine.connect() as connection:
        stored = list(connection.execute(sqlalchemy.text(
            "SELECT id, originator_id, originator_version, topic, state FROM trialctl_events "
            "ORDER BY id")))
    row_a, row_b = stored[4], stored[5]
    # Move every stored value of each row into the other: ids keep their order, contents swap.
    sql(engine, "DELETE FROM trialctl_events WHERE id IN (:a, :b)", a=row_a[0], b=row_b[0])
    for target, source in ((row_a[0], row_b), (row_b[0], row_a)):
        sql(engine, "INSERT INTO trialctl_events (id, originator_id, originator_version, topic, "
            "state) VALUES (:i, :o, :v, :t, :s)", i=target, o=source[1], v=source[2],
            t=source[3], s=source[4])

    code, report = verify(staff.url)

    assert code == 1
    assert (4, "sequence") in findings(report)  # position 5 stored first, then 4
    assert (5, "leaf") in findings(report) and (4, "leaf") in findings(report)


def test_a_truncated_tail_is_caught_against_an_older_checkpoint(
    staff: Staff, tmp_path: Path
) -> None:
    checkpoint = staff.app.checkpoint(staff.alice, datetime.now(UTC))  # covers 7
    note = write_file(tmp_path / "checkpoint.txt", checkpoint.to_text())
    staff.app.grant_role(staff.alice, "carol", "data-manager")
    engine = engine_for(staff.url)
    drop_append_only_triggers(engine)
    for notification_id, *_ in rows(engine)[5:]:
        sql(engine, "DELETE FROM trialctl_leaves WHERE notification_id = :i", i=notification_id)
        sql(engine, "DELETE FROM trialctl_events WHERE id = :i", i=notification_id)
    # The checkpoint's frontier (for 7 entries) would contradict the cut: a clean one goes too.
    sql(engine, "DELETE FROM trialctl_frontiers")

    code_without, _ = verify(staff.url)
    code, report = verify(staff.url, note)

    assert code_without == 0  # a clean cut leaves nothing inside the ledger to contradict it
    assert code == 1
    detail = report["findings"][0]["detail"]  # type: ignore[index]
    assert "ledger truncated: the checkpoint covers 7 entries, the ledger holds 5" in detail


def test_a_rewritten_history_is_caught_against_a_checkpoint(staff: Staff, tmp_path: Path) -> None:
    note = write_file(
        tmp_path / "checkpoint.txt",
        staff.app.checkpoint(staff.alice, datetime.now(UTC)).to_text(),
    )
    engine = engine_for(staff.url)
    drop_append_only_triggers(engine)
    # Re-sign carol's role grant as alice (the attacker stole her key) and fix every hash:
    # a grant the rules allow, so only the checkpoints can tell.
    notification_id, _topic, position, state = rows(engine)[5]
    statement = parse_entry(state).statement
    statement["payload"]["role"] = "data-manager"
    forged = seal(statement, staff.alice.keys)
    sql(engine, "UPDATE trialctl_events SET state = :s WHERE id = :i", s=forged, i=notification_id)
    sql(engine, "UPDATE trialctl_leaves SET leaf_hash = :h WHERE position = :p",
        h=hash_leaf(forged), p=position)

    code, report = verify(staff.url, note)

    assert code == 1
    # The checkpoint recorded inside the ledger, the frontier kept with it and the file kept
    # outside it all disagree.
    assert findings(report) == [(7, "checkpoint"), (None, "frontier"), (None, "checkpoint")]
    assert "history rewritten" in report["findings"][2]["detail"]  # type: ignore[index]


def test_an_entry_resigned_with_another_users_key_is_named(staff: Staff) -> None:
    engine = engine_for(staff.url)
    drop_append_only_triggers(engine)
    notification_id, _, position, state = rows(engine)[5]
    statement = parse_entry(state).statement
    statement["actor"] = {"user_id": "carol", "name": "Carol Chen", "role": "investigator",
                          "key_id": staff.carol.keys.key_id}
    forged = seal(statement, staff.carol.keys)
    sql(engine, "UPDATE trialctl_events SET state = :s WHERE id = :i", s=forged, i=notification_id)
    sql(engine, "UPDATE trialctl_leaves SET leaf_hash = :h WHERE position = :p",
        h=hash_leaf(forged), p=position)

    code, report = verify(staff.url)

    assert code == 1
    authority = [f for f in report["findings"] if f["check"] == "authority"]  # type: ignore[union-attr]
    assert [(f["position"], f["detail"]) for f in authority] == [
        (5, "role 'investigator' may not record trialctl.User.RoleGranted")
    ]


def test_a_signature_swapped_for_another_users_is_named(staff: Staff) -> None:
    engine = engine_for(staff.url)
    drop_append_only_triggers(engine)
    notification_id, _, _position, state = rows(engine)[3]
    statement_bytes = parse_entry(state).statement_bytes
    signature = base64.b64encode(staff.carol.keys.sign(statement_bytes)).decode()
    forged = statement_bytes + f"\n{staff.carol.keys.key_id} {signature}\n".encode()
    sql(engine, "UPDATE trialctl_events SET state = :s WHERE id = :i", s=forged, i=notification_id)

    code, report = verify(staff.url)

    assert code == 1
    assert (3, "signature") in findings(report)


def test_an_entry_signed_after_its_keys_revocation_is_named(staff: Staff) -> None:
    staff.app.revoke_user(staff.alice, "bob", "laptop stolen")  # position 7
    engine = engine_for(staff.url)
    drop_append_only_triggers(engine)
    # The thief holds bob's key and password and appends to bob's security log directly.
    *_, (last_id, _, last_position, _) = rows(engine)
    log_rows = [r for r in rows(engine) if r[1].startswith("trialctl.SecurityLog")]
    statement = {
        "format": "trialctl-event/v1",
        "position": last_position + 1,
        "aggregate_id": str(security_log_id("bob")),
        "aggregate_version": 1,
        "type": "trialctl.SecurityLog.Opened",
        "payload": {"originator_topic": "trialctl.SecurityLog", "user_id": "bob"},
        "recorded_at": datetime.now(UTC).isoformat(),
        "actor": {"user_id": "bob", "name": "Bob Brown", "role": "monitor",
                  "key_id": staff.bob.keys.key_id},
        "meaning": "attempted",
        "prev_hash": None,
    }
    forged = seal(statement, staff.bob.keys)
    assert log_rows == []
    sql(engine, "INSERT INTO trialctl_events (id, originator_id, originator_version, topic, state)"
        " VALUES (:i, :o, 1, :t, :s)", i=last_id + 1, o=stored_id(engine, security_log_id("bob")),
        t=statement["type"], s=forged)
    sql(engine, "INSERT INTO trialctl_leaves (position, notification_id, leaf_hash) "
        "VALUES (:p, :i, :h)", p=last_position + 1, i=last_id + 1, h=hash_leaf(forged))

    code, report = verify(staff.url)

    assert code == 1
    assert [(f["position"], f["check"], f["detail"]) for f in report["findings"]] == [  # type: ignore[union-attr]
        (8, "authority", f"key {staff.bob.keys.key_id[:16]}… of bob was revoked")
    ]
    assert entry_hash(forged)  # the forgery itself is well-formed; only authority fails


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda text: text.replace("\n7\n", "\n6\n", 1), "signature does not verify"),
        (lambda text: text.replace("signer alice", "signer carol", 1), "signed by someone"),
        (lambda text: text.replace("\n\n", "\n", 1), "no blank line"),
    ],
    ids=["size-edited", "signer-edited", "structure-broken"],
)
def test_an_edited_checkpoint_file_is_caught(
    staff: Staff, tmp_path: Path, edit: object, message: str
) -> None:
    text = staff.app.checkpoint(staff.alice, datetime.now(UTC)).to_text()
    note = write_file(tmp_path / "checkpoint.txt", edit(text))  # type: ignore[operator]

    result = trialctl("verify", "--ledger", staff.url, "--checkpoint", str(note))

    assert result.returncode == 1
    assert message in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_parallel_and_single_process_verification_agree(ledger_url: str, home: Path) -> None:
    """Past the parallel threshold, signature checks run in worker processes: the findings
    and the root must be exactly those of checking everything in one process."""
    from trialctl.ledger.users import SecurityLog
    from trialctl.ledger.verify import PARALLEL_THRESHOLD, verify_ledger

    staff = make_staff(ledger_url)
    log = SecurityLog(user_id="bob")
    while staff.app.signed_recorder.tree_size() < PARALLEL_THRESHOLD + 500:
        for _ in range(100):
            log.refuse_attempt(action="benchmark", reason="bulk entries for the test")
        staff.app.record(staff.bob, log)
    engine = engine_for(staff.url)
    drop_append_only_triggers(engine)
    notification_id, _, _, state = rows(engine)[1234]
    sql(engine, "UPDATE trialctl_events SET state = :s WHERE id = :i",
        s=state.replace(b"bulk", b"BULK"), i=notification_id)

    parallel = verify_ledger(staff.app.signed_recorder, staff.url, workers=2)
    single = verify_ledger(staff.app.signed_recorder, staff.url, workers=1)

    assert parallel.findings == single.findings
    assert parallel.root_hash == single.root_hash
    assert (1234, "signature") in [(f.position, f.check) for f in parallel.findings]


def test_an_entry_deleted_without_its_leaf_is_named_by_the_leaf(staff: Staff) -> None:
    engine = engine_for(staff.url)
    drop_append_only_triggers(engine)
    notification_id = rows(engine)[5][0]
    sql(engine, "DELETE FROM trialctl_events WHERE id = :i", i=notification_id)

    code, report = verify(staff.url)

    assert code == 1
    assert (5, "leaf") in findings(report)
    assert (6, "sequence") in findings(report)
    detail = next(f["detail"] for f in report["findings"] if f["position"] == 5)  # type: ignore[union-attr]
    assert detail == "Merkle leaf points at an entry that is gone"
