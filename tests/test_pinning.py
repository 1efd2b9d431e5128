"""Pinned trust roots: `verify --ledger-id/--first-admin-key/--trust` and `ledger trust`.

A ledger rewritten from its first entry with the attacker's own keys is consistent in
itself and verifies clean; the auditor's pins are what tell it from the real one.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Result, _fresh_postgres_database, assert_one_line_error, trialctl
from tests.ledgers import PASSWORDS, make_staff, write_file
from trialctl.ledger.application import TrialLedger
from trialctl.ledger.location import resolve_ledger


def verify(url: str, *args: str) -> tuple[Result, dict[str, Any]]:
    result = trialctl("verify", "--ledger", url, "--json", *args)
    assert "Traceback" not in result.stderr, result.stderr
    return result, json.loads(result.stdout) if result.stdout else {}


def pin_findings(report: dict[str, Any]) -> list[tuple[int | None, str]]:
    return [(f["position"], f["detail"]) for f in report["findings"] if f["check"] == "pin"]


def trust_of(url: str, path: Path) -> dict[str, Any]:
    result = trialctl("ledger", "trust", "-o", str(path), "--ledger", url)
    assert result.returncode == 0, result
    assert "first admin alice" in result.stdout
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def test_the_real_ledger_passes_its_pins(ledger_url: str, home: Path, tmp_path: Path) -> None:
    staff = make_staff(ledger_url)
    trust = trust_of(staff.url, tmp_path / "trust.json")
    assert trust["first_admin_key"] == staff.alice.keys.key_id
    assert trust["last_seen"]["tree_size"] == 4
    staff.app.grant_role(staff.alice, "bob", "data-manager")  # the ledger grows: still ok

    result, report = verify(staff.url, "--trust", str(tmp_path / "trust.json"))
    assert result.returncode == 0, report
    result, report = verify(staff.url, "--ledger-id", trust["ledger_id"],
                            "--first-admin-key", trust["first_admin_key"])
    assert result.returncode == 0, report


def test_a_substitute_ledger_with_the_same_id_and_new_keys_fails_its_pins(
    ledger_url: str, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    staff = make_staff(ledger_url)
    trust_path = tmp_path / "trust.json"
    trust = trust_of(staff.url, trust_path)
    staff.app.close()
    # The attacker rewrites the ledger from its first entry: same ledger id, same admin
    # name, a key of their own, in a database of the same kind.
    if ledger_url.startswith("postgresql"):
        database = _fresh_postgres_database()
        substitute_url = next(database)
        request.addfinalizer(lambda: next(database, None))
    else:
        substitute_url = str(tmp_path / "substitute.sqlite")
    monkeypatch.setattr("trialctl.ledger.application.uuid.uuid4",
                        lambda: uuid.UUID(trust["ledger_id"]))
    substitute = TrialLedger(resolve_ledger(substitute_url), create=True,
                             keys_home=tmp_path / "attacker")
    substitute.initialise("test ledger", "alice", "Alice Adams", PASSWORDS["alice"])
    mallory = substitute.unlock("alice", PASSWORDS["alice"])
    substitute.register_user(mallory, "bob", "Bob Brown", ["monitor"], PASSWORDS["bob"])
    substitute.register_user(mallory, "carol", "Carol Chen", ["investigator"],
                             PASSWORDS["carol"])
    substitute.close()

    result, report = verify(substitute_url)
    assert result.returncode == 0, report  # without a pin it is a clean ledger
    result, report = verify(substitute_url, "--ledger-id", trust["ledger_id"])
    assert result.returncode == 0, report  # the id alone is copied easily

    result, report = verify(substitute_url, "--first-admin-key", trust["first_admin_key"])
    assert result.returncode == 1
    assert [p for p, _ in pin_findings(report)] == [1]
    assert "not the pinned key" in pin_findings(report)[0][1]

    result, report = verify(substitute_url, "--trust", str(trust_path))
    assert result.returncode == 1
    findings = pin_findings(report)
    assert [p for p, _ in findings] == [1, None]
    assert "history rewritten: the first 4 entries" in findings[1][1]


def test_another_ledger_fails_the_ledger_id_pin(
    ledger_url: str, home: Path, tmp_path: Path
) -> None:
    staff = make_staff(ledger_url)
    other = str(uuid.uuid4())
    result, report = verify(staff.url, "--ledger-id", other)
    assert result.returncode == 1
    assert pin_findings(report) == [(0, pin_findings(report)[0][1])]
    assert f"not the pinned ledger {other}: a substitute ledger" in pin_findings(report)[0][1]


def test_a_ledger_cut_below_the_trusted_tree_head_is_a_finding(
    ledger_url: str, home: Path, tmp_path: Path
) -> None:
    staff = make_staff(ledger_url)
    trust = trust_of(staff.url, tmp_path / "trust.json")
    trust["last_seen"]["tree_size"] = 9
    edited = write_file(tmp_path / "edited.json", json.dumps(trust))
    result, report = verify(staff.url, "--trust", str(edited))
    assert result.returncode == 1
    assert any("ledger truncated: the trusted tree head covers 9" in d
               for _, d in pin_findings(report))


def test_a_trust_file_in_toml_is_read(ledger_url: str, home: Path, tmp_path: Path) -> None:
    staff = make_staff(ledger_url)
    trust = trust_of(staff.url, tmp_path / "trust.json")
    toml = write_file(tmp_path / "trust.toml", (
        "trialctl_trust = 1\n"
        f'ledger_id = "{trust["ledger_id"]}"\n'
        f'first_admin_key = "{trust["first_admin_key"]}"\n'))
    result, report = verify(staff.url, "--trust", str(toml))
    assert result.returncode == 0, report


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--ledger-id", "not-a-uuid"], "not a lowercase UUID"),
     (["--first-admin-key", "ab" * 31], "not 64 lowercase hex"),
     (["--trust", "missing.json"], "cannot read trust file"),
     (["--trust", "{bad"], "neither JSON nor TOML"),
     (["--trust", '{"trialctl_trust": 2}'], "not a trialctl trust file"),
     (["--trust", '{"trialctl_trust": 1, "ledger_id": "x", "extra": 1}'], "unknown fields"),
     (["--trust", "GOOD", "--ledger-id", "00000000-0000-0000-0000-000000000000"], "differs")],
    ids=["bad-id", "bad-key", "missing", "garbage", "version", "unknown-field", "conflict"],
)
def test_bad_pins_are_usage_errors_in_one_line(
    tmp_path: Path, home: Path, args: list[str], message: str
) -> None:
    url = str(tmp_path / "ledger.sqlite")
    staff = make_staff(url)
    trust_of(staff.url, tmp_path / "GOOD")
    resolved = []
    for arg in args:
        if arg.startswith("{"):
            arg = str(write_file(tmp_path / "trust.json", arg))
        elif arg in ("GOOD", "missing.json"):
            arg = str(tmp_path / arg)
        resolved.append(arg)
    result = trialctl("verify", "--ledger", url, *resolved)
    assert result.returncode == 2
    assert_one_line_error(result, message)


def test_ledger_trust_never_overwrites(tmp_path: Path, home: Path) -> None:
    url = str(tmp_path / "ledger.sqlite")
    make_staff(url)
    existing = write_file(tmp_path / "trust.json", "kept")
    assert_one_line_error(trialctl("ledger", "trust", "-o", str(existing), "--ledger", url),
                          "never overwritten")
    assert existing.read_text(encoding="utf-8") == "kept"
