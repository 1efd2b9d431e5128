"""Hostile input never gives a traceback: each kind is one line on stderr, a non-zero exit,
and nothing is written; text shown on a terminal cannot drive it."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import assert_one_line_error, trialctl
from tests.ledgers import PASSWORDS, make_staff
from trialctl.cli.render import terminal_safe
from trialctl.domain.rules import TrialRuleError, parse_day
from trialctl.ledger import keys
from trialctl.ledger.application import open_ledger
from trialctl.ledger.errors import KeyFileError


def _tree_size(url: str) -> int:
    app = open_ledger(url)
    try:
        return app.signed_recorder.tree_size()
    finally:
        app.close()


def _edit(field: str, value: object) -> Callable[[Path], None]:
    def edit(key_file: Path) -> None:
        document = json.loads(key_file.read_text())
        target = document["kdf"] if field in ("r", "p", "n") else document
        target[field] = value
        key_file.write_text(json.dumps(document))
    return edit


def _fifo(key_file: Path) -> None:
    key_file.unlink()
    os.mkfifo(key_file, 0o600)


@pytest.mark.parametrize(
    ("spoil", "message"),
    [
        (_edit("r", -1), "out-of-range scrypt parameters"),
        (_edit("p", -8), "out-of-range scrypt parameters"),
        (_edit("aead", "ChaCha20-Poly1305"), "field 'aead'"),
        (_fifo, "not a regular file"),
    ],
    ids=["negative-r", "negative-p", "edited-aead", "fifo"],
)
def test_a_hostile_key_file_is_refused_in_one_line(
    ledger_url: str, home: Path, spoil: Callable[[Path], None], message: str
) -> None:
    make_staff(ledger_url).app.close()
    (key_file,) = (home / "keys" / "alice").iterdir()
    spoil(key_file)
    before = _tree_size(ledger_url)
    result = trialctl("user", "grant-role", "bob", "investigator", "--ledger", ledger_url,
                      "-u", "alice", "--password-stdin", stdin=PASSWORDS["alice"] + "\n")
    assert_one_line_error(result, message)
    assert _tree_size(ledger_url) <= before + 2  # at most the queued refusal, never a grant


def test_a_key_file_asking_scrypt_for_over_a_gibibyte_is_refused_unrun(tmp_path: Path) -> None:
    """n and r each within their bounds, together 16 GiB: refused before any derivation."""
    path = tmp_path / "key.json"
    keys.seal_key_file(path, "alice", keys.KeyPair.generate(), PASSWORDS["alice"])
    _edit("n", 2**22)(path)
    _edit("r", 32)(path)
    with pytest.raises(KeyFileError, match="out-of-range scrypt parameters"):
        keys.open_key_file(path, PASSWORDS["alice"])


@pytest.mark.parametrize("text", ["2026-W02-1", "2026-005", "0001-01-01", "9999-12-31",
                                  "20260105", "2026-1-5"])
def test_only_calendar_dates_in_range_are_dates(text: str) -> None:
    with pytest.raises(TrialRuleError, match="valid-date"):
        parse_day(text, "onset")


@pytest.mark.parametrize("text", ["1900-01-01", "2199-12-31", "2026-10-05"])
def test_dates_at_the_ends_of_the_range_are_accepted(text: str) -> None:
    assert parse_day(text, "onset").isoformat() == text


def test_control_characters_are_escaped_for_the_terminal() -> None:
    assert terminal_safe("a\x1b[2Jb\x07\x9b\r") == "a\\x1b[2Jb\\x07\\x9b\\x0d"
    assert terminal_safe("tab\tand\nnewline stay") == "tab\tand\nnewline stay"


def test_log_does_not_echo_an_escape_sequence_someone_signed(
    ledger_url: str, home: Path
) -> None:
    staff = make_staff(ledger_url)
    staff.app.revoke_user(staff.alice, "bob", "left\x1b]0;pwned\x07\x1b[2J [bold]x[/bold]")
    staff.app.close()
    result = trialctl("log", "--ledger", ledger_url)
    assert result.returncode == 0, result
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert "left\\x1b]0;pwned\\x07\\x1b[2J [bold]x[/bold]" in result.stdout.replace("\n", "")
