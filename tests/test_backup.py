"""`trialctl backup` and `restore`: a restored ledger verifies clean, also against a
checkpoint note taken before the backup, and restoring over a ledger is refused."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import _fresh_postgres_database, assert_one_line_error, trialctl
from tests.ledgers import make_staff, write_file


@pytest.fixture
def second_url(ledger_url: str, tmp_path: Path) -> Iterator[str]:
    """An empty place of the same kind as `ledger_url` to restore into."""
    if "://" not in ledger_url:
        yield str(tmp_path / "restored.sqlite")
    else:
        yield from _fresh_postgres_database()


def test_a_restored_ledger_verifies_against_a_note_from_before_the_backup(
    ledger_url: str, second_url: str, home: Path, tmp_path: Path
) -> None:
    staff = make_staff(ledger_url)
    note = write_file(tmp_path / "cp.txt",
                      staff.app.checkpoint(staff.alice, datetime.now(UTC)).to_text())
    staff.app.grant_role(staff.alice, "bob", "auditor")
    size = len(staff.app.signed_recorder.leaf_hashes())
    backup_file = tmp_path / "ledger.backup"

    made = trialctl("backup", str(backup_file), "--ledger", staff.url, "--json")
    again = trialctl("backup", str(backup_file), "--ledger", staff.url)
    restored = trialctl("restore", str(backup_file), "--ledger", second_url, "--json")
    checked = trialctl("verify", "--ledger", second_url, "--checkpoint", str(note), "--json")
    over = trialctl("restore", str(backup_file), "--ledger", second_url)
    over_original = trialctl("restore", str(backup_file), "--ledger", staff.url)

    assert made.returncode == 0 and json.loads(made.stdout)["tree_size"] == size, made
    assert_one_line_error(again, "exists; a backup is never written over a file")
    assert restored.returncode == 0 and json.loads(restored.stdout)["tree_size"] == size, \
        restored
    report = json.loads(checked.stdout)
    assert checked.returncode == 0, report
    assert report["tree_size"] == size
    assert [c["status"] for c in report["checkpoints"]] == ["ok"]
    assert_one_line_error(over, "restore is never done over a ledger")
    assert_one_line_error(over_original, "restore is never done over a ledger")
    assert len(staff.reopen().signed_recorder.leaf_hashes()) == size


def test_a_backup_of_the_wrong_kind_is_refused(
    ledger_url: str, second_url: str, home: Path, tmp_path: Path
) -> None:
    staff = make_staff(ledger_url)
    other = write_file(tmp_path / "not-a-backup", "neither SQLite nor a pg_dump archive\n")
    postgres = "://" in ledger_url

    wrong = trialctl("restore", str(other), "--ledger", second_url)
    missing = trialctl("restore", str(tmp_path / "absent"), "--ledger", second_url)
    no_tool = trialctl("backup", str(tmp_path / "b"), "--ledger", staff.url,
                       env={"PATH": str(tmp_path)})

    assert_one_line_error(wrong, "is not a pg_dump backup" if postgres
                          else "is not a SQLite backup")
    assert_one_line_error(missing, "cannot read backup")
    if postgres:
        assert_one_line_error(no_tool, "pg_dump is not on PATH")
    else:  # SQLite needs no outside tool
        assert no_tool.returncode == 0, no_tool
    assert not (tmp_path / "restored.sqlite").exists()
