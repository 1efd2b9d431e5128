"""Bad input from outside: each is one line on stderr, a non-zero exit, no traceback, and
nothing already recorded is lost or changed."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.conftest import TEST_SCRYPT_N, assert_one_line_error, trialctl
from tests.ledgers import PASSWORDS, make_staff
from trialctl.ledger.application import open_ledger


def tree_size(url: str) -> int:
    app = open_ledger(url)
    try:
        return app.signed_recorder.tree_size()
    finally:
        app.close()


@pytest.fixture
def url(ledger_url: str, home: Path) -> str:
    make_staff(ledger_url).app.close()
    return ledger_url


def grant(url: str, signer: str, stdin: str) -> object:
    return trialctl("user", "grant-role", "bob", "investigator", "--ledger", url, "-u", signer,
                    "--password-stdin", stdin=stdin)


def test_unknown_user(url: str) -> None:
    before = tree_size(url)
    assert_one_line_error(grant(url, "mallory", "whatever-pw\n"), "unknown user 'mallory'")
    assert tree_size(url) == before


def test_wrong_password_writes_nothing(url: str) -> None:
    before = tree_size(url)
    assert_one_line_error(grant(url, "alice", "not-her-password\n"), "wrong password for alice")
    assert tree_size(url) == before


def test_corrupt_key_file(url: str, home: Path) -> None:
    before = tree_size(url)
    (key_file,) = (home / "keys" / "alice").iterdir()
    key_file.write_text(key_file.read_text()[:-40] + "garbage", encoding="utf-8")
    assert_one_line_error(grant(url, "alice", PASSWORDS["alice"] + "\n"), "corrupt")
    assert tree_size(url) == before


def test_key_file_with_an_edited_header_does_not_open(url: str, home: Path) -> None:
    (key_file,) = (home / "keys" / "alice").iterdir()
    text = key_file.read_text()
    assert f'"n": {TEST_SCRYPT_N}' in text
    key_file.write_text(text.replace(f'"n": {TEST_SCRYPT_N}', f'"n": {2 * TEST_SCRYPT_N}'),
                        encoding="utf-8")
    assert_one_line_error(grant(url, "alice", PASSWORDS["alice"] + "\n"), "wrong password")


def test_missing_key_file(url: str, home: Path) -> None:
    (key_file,) = (home / "keys" / "alice").iterdir()
    key_file.unlink()
    assert_one_line_error(grant(url, "alice", PASSWORDS["alice"] + "\n"), "no key file")


def test_no_password_on_stdin(url: str) -> None:
    assert_one_line_error(grant(url, "alice", ""), "standard input ended")


def test_no_terminal_and_no_password_stdin(url: str) -> None:
    result = trialctl("user", "grant-role", "bob", "investigator", "--ledger", url, "-u", "alice")
    assert_one_line_error(result, "--password-stdin")
    assert result.returncode == 2


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: p.write_text("not a database at all, just words\n"), "not a trialctl ledger"),
        (lambda p: sqlite3.connect(p).execute("CREATE TABLE t (x)").connection.commit(),
         "not a trialctl ledger"),
        (lambda p: p.mkdir(), "is a directory"),
        (lambda p: None, "no ledger at"),
    ],
    ids=["text-file", "other-sqlite-database", "directory", "missing"],
)
def test_a_path_that_is_not_a_ledger(tmp_path: Path, home: Path, setup: object,
                                     message: str) -> None:
    path = tmp_path / "thing"
    setup(path)  # type: ignore[operator]
    before = path.read_bytes() if path.is_file() else None
    assert_one_line_error(trialctl("verify", "--ledger", str(path)), message)
    assert_one_line_error(trialctl("user", "list", "--ledger", str(path)), message)
    assert (path.read_bytes() if path.is_file() else None) == before


def test_an_unreachable_database_url(home: Path) -> None:
    result = trialctl("verify", "--ledger", "postgresql://nobody@127.0.0.1:9/nowhere")
    assert_one_line_error(result, "cannot", "127.0.0.1")


def test_an_unsupported_url(home: Path) -> None:
    assert_one_line_error(trialctl("verify", "--ledger", "mysql://x@y/z"), "unsupported database")


def test_init_refuses_an_existing_ledger(url: str) -> None:
    before = tree_size(url)
    result = trialctl("init", "--admin", "eve", "--name", "Eve", "--ledger", url,
                      "--password-stdin", stdin="eve-password\n")
    assert_one_line_error(result, "already holds a ledger")
    assert tree_size(url) == before


@pytest.mark.parametrize("user_id", ["Bob", "b", "bob smith", "9bob", "x" * 70])
def test_bad_user_ids_are_refused(url: str, user_id: str) -> None:
    before = tree_size(url)
    result = trialctl("user", "add", user_id, "--name", "B", "--role", "monitor", "--ledger", url,
                      "-u", "alice", "--password-stdin", stdin=f"{PASSWORDS['alice']}\npw-123456\n")
    assert_one_line_error(result, "user id")
    assert tree_size(url) == before


def test_unknown_role_is_a_usage_error(url: str) -> None:
    result = trialctl("user", "add", "dave", "--name", "D", "--role", "janitor", "--ledger", url,
                      "-u", "alice", "--password-stdin", stdin="x\ny\n")
    assert_one_line_error(result, "unknown role 'janitor'")
    assert result.returncode == 2


def test_a_short_new_password_is_refused(url: str) -> None:
    before = tree_size(url)
    result = trialctl("user", "add", "dave", "--name", "D", "--role", "monitor", "--ledger", url,
                      "-u", "alice", "--password-stdin", stdin=f"{PASSWORDS['alice']}\nshort\n")
    assert_one_line_error(result, "at least 8 characters")
    assert tree_size(url) == before


def test_a_missing_checkpoint_file_is_a_usage_error(url: str, tmp_path: Path) -> None:
    result = trialctl("verify", "--ledger", url, "--checkpoint", str(tmp_path / "nope.txt"))
    assert_one_line_error(result, "cannot read checkpoint")
    assert result.returncode == 2


def test_a_checkpoint_that_cannot_be_written_is_not_recorded(url: str, tmp_path: Path) -> None:
    before = tree_size(url)
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the note's folder should be")
    result = trialctl("checkpoint", "-o", str(blocker / "note.txt"), "--ledger", url, "-u",
                      "alice", "--password-stdin", stdin=PASSWORDS["alice"] + "\n")
    assert_one_line_error(result, "not-a-directory")
    assert tree_size(url) == before


def test_an_existing_checkpoint_file_is_never_overwritten(url: str, tmp_path: Path) -> None:
    note = tmp_path / "note.txt"
    note.write_text("kept")
    result = trialctl("checkpoint", "-o", str(note), "--ledger", url, "-u", "alice",
                      "--password-stdin", stdin=PASSWORDS["alice"] + "\n")
    assert_one_line_error(result, "never overwritten")
    assert note.read_text() == "kept"


def test_a_key_file_others_can_read_is_refused(url: str, home: Path) -> None:
    (key_file,) = (home / "keys" / "alice").iterdir()
    key_file.chmod(0o644)
    before = tree_size(url)
    assert_one_line_error(grant(url, "alice", PASSWORDS["alice"] + "\n"), "chmod 600")
    assert tree_size(url) == before
