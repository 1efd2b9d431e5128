"""Checkpoint notes kept outside the database: written by policy after each signed write or
by `checkpoint --dir --every N|--auto`, read by `verify --checkpoint-dir`, which catches a
rewrite with a stolen key and the cut of the trailing checkpoint entry, and warns when the
newest note is stale."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import assert_one_line_error, trialctl
from tests.ledgers import (
    PASSWORDS,
    Staff,
    drop_append_only_triggers,
    engine_for,
    make_staff,
    rows,
    sql,
)
from trialctl.ledger.checkpoint_dir import newest_note
from trialctl.ledger.entry import parse_entry, seal
from trialctl.ledger.merkle import hash_leaf


def notes(directory: Path) -> list[str]:
    return sorted(path.name.rsplit("-", 1)[1] for path in directory.glob("*.txt"))


def verify(staff: Staff, *args: str) -> tuple[int, dict[str, object]]:
    result = trialctl("verify", "--ledger", staff.url, "--json", *args)
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, json.loads(result.stdout)


@pytest.fixture
def policy_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "kept"
    monkeypatch.setenv("TRIALCTL_CHECKPOINT_DIR", str(directory))
    monkeypatch.setenv("TRIALCTL_CHECKPOINT_EVERY", "auto")
    return directory


def test_a_stolen_key_rewrite_and_a_cut_checkpoint_entry_are_caught_by_the_kept_note(
    ledger_url: str, home: Path, policy_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    staff = make_staff(ledger_url)  # 0 ledger, 1 alice, 2 bob, 3 note, 4 carol, 5 note
    assert notes(policy_dir) == ["000000000003.txt", "000000000005.txt"]
    staff.app.close()
    monkeypatch.delenv("TRIALCTL_CHECKPOINT_DIR")
    engine = engine_for(staff.url)
    drop_append_only_triggers(engine)
    all_rows = rows(engine)
    notification_id, _, position, state = all_rows[4]
    statement = parse_entry(state).statement
    statement["payload"]["name"] = "Carol Forged"
    forged = seal(statement, staff.alice.keys)  # the admin's key, stolen
    sql(engine, "UPDATE trialctl_events SET state = :s WHERE id = :i", s=forged,
        i=notification_id)
    sql(engine, "UPDATE trialctl_leaves SET leaf_hash = :h WHERE position = :p",
        h=hash_leaf(forged), p=position)
    # The trailing checkpoint entry would give the rewrite away: cut it, and the frontiers
    # kept beside the checkpoints (the one at size 5 disagrees with the rewritten leaf).
    sql(engine, "DELETE FROM trialctl_leaves WHERE position = 5")
    sql(engine, "DELETE FROM trialctl_events WHERE id = :i", i=all_rows[5][0])
    sql(engine, "DELETE FROM trialctl_frontiers")
    engine.dispose()

    assert verify(staff)[0] == 0  # nothing in the database alone shows it
    code, report = verify(staff, "--checkpoint-dir", str(policy_dir))

    assert code == 1
    findings = [f["check"] + " " + f["detail"] for f in report["findings"]]  # type: ignore[index, union-attr]
    assert any(f.startswith("checkpoint ") and "history rewritten" in f for f in findings), \
        findings


def test_every_n_writes_a_note_once_n_entries_are_uncovered(
    tmp_path: Path, home: Path, policy_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRIALCTL_CHECKPOINT_EVERY", "3")
    staff = make_staff(str(tmp_path / "ledger.sqlite"))  # no note: the first write makes one
    for role in ("data-manager", "auditor", "investigator", "principal-investigator"):
        staff.app.grant_role(staff.alice, "bob", role)
    # A note at size 3, then carol (4) and two grants (5, 6) make 3: a note at 7; two more
    # grants (8, 9) are not yet 3.
    assert notes(policy_dir) == ["000000000003.txt", "000000000007.txt"]
    newest = newest_note(policy_dir, staff.app.ledger_record().ledger_id)
    assert newest is not None and newest.name.endswith("000000000007.txt")


def test_a_checkpoint_under_the_policy_is_one_checkpoint_and_one_note(
    tmp_path: Path, home: Path, policy_dir: Path
) -> None:
    staff = make_staff(str(tmp_path / "ledger.sqlite"))  # notes at 3 and 5
    app, before = staff.app, sorted(policy_dir.glob("*.txt"))
    size = app.signed_recorder.tree_size()
    elsewhere = tmp_path / "elsewhere"
    app.checkpoint_to(staff.alice, elsewhere, datetime.now(UTC))  # `checkpoint --dir`
    signed = app.checkpoint(staff.alice, datetime.now(UTC))  # `checkpoint -o FILE`
    # Two commands, two CheckpointRecorded entries and two notes, none in the policy's.
    assert app.signed_recorder.tree_size() == size + 2
    assert signed.checkpoint.tree_size == size + 1
    assert notes(elsewhere) == [f"{size:012d}.txt"]
    assert sorted(policy_dir.glob("*.txt")) == before
    # The next other signed write finds the policy's note stale and writes one.
    app.grant_role(staff.alice, "bob", "auditor")
    assert notes(policy_dir)[-1] == f"{size + 3:012d}.txt"


def test_checkpoint_dir_command_and_the_stale_warning(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    staff = make_staff(str(tmp_path / "ledger.sqlite"))
    kept = tmp_path / "kept"
    password = PASSWORDS["alice"] + "\n"
    common = ("checkpoint", "--ledger", staff.url, "-u", "alice", "--password-stdin", "--json")

    first = trialctl(*common, "--dir", str(kept), "--every", "2", stdin=password)
    not_due = trialctl(*common, "--dir", str(kept), "--auto", stdin=password)
    staff.app.grant_role(staff.alice, "bob", "auditor")
    _, clean = verify(staff, "--checkpoint-dir", str(kept))
    code, stale = verify(staff, "--checkpoint-dir", str(kept), "--stale-after", "0")
    _, none_kept = verify(staff, "--checkpoint-dir", str(tmp_path / "empty"))

    assert first.returncode == 0 and json.loads(first.stdout)["tree_size"] == 4, first
    assert json.loads(not_due.stdout)["file"] is None, not_due
    assert notes(kept) == ["000000000004.txt"]
    assert clean["warnings"] == [] and clean["checkpoints"][0]["status"] == "ok"  # type: ignore[index]
    assert code == 0
    assert stale["warnings"] == [  # the grant after the note's own record
        f"newest checkpoint {kept}/{staff.app.ledger_record().ledger_id}-000000000004.txt is "
        "1 entries old (more than 0): those entries are covered by no note kept outside the "
        "database"]
    assert "no checkpoint of ledger" in none_kept["warnings"][0]  # type: ignore[index]


@pytest.mark.parametrize(("env", "message"), [
    ({"TRIALCTL_CHECKPOINT_EVERY": "often", "TRIALCTL_CHECKPOINT_DIR": "kept"},
     "TRIALCTL_CHECKPOINT_EVERY must be a whole number"),
    ({"TRIALCTL_CHECKPOINT_EVERY": "2"}, "TRIALCTL_CHECKPOINT_EVERY needs"),
], ids=["not-a-number", "no-directory"])
def test_a_bad_policy_is_refused_before_anything_is_signed(
    tmp_path: Path, home: Path, env: dict[str, str], message: str
) -> None:
    staff = make_staff(str(tmp_path / "ledger.sqlite"))
    before = len(staff.app.signed_recorder.leaf_hashes())

    result = trialctl("user", "grant-role", "bob", "auditor", "--ledger", staff.url,
                      "-u", "alice", "--password-stdin", stdin=PASSWORDS["alice"] + "\n",
                      env={**env, "TRIALCTL_CHECKPOINT_DIR": str(tmp_path / "kept")}
                      if "TRIALCTL_CHECKPOINT_DIR" in env else env)

    assert_one_line_error(result, message)
    assert len(staff.reopen().signed_recorder.leaf_hashes()) == before
