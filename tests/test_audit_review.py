"""`trialctl audit review` on the demo, as real processes on SQLite and PostgreSQL: the
review lists the demo's corrections (with their reasons), overrides and refused attempts
with the counts the trail itself gives, in --json and --html, and each review is a signed
`AuditReviewed` entry naming the tree head and the SHA-256 of its output. The rules over
dates and hours are tested in-process at their boundaries."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import assert_one_line_error, trialctl
from tests.demo_ledgers import demo_ledger
from trialctl.domain.facts import Correction
from trialctl.ledger.application import TrialLedger
from trialctl.ledger.audit_review import (
    ReviewError,
    Scope,
    Settings,
    clinical_date,
    parse_hours,
    review_html,
)
from trialctl.ledger.demo import demo_password
from trialctl.ledger.errors import AuthorityError, WrongPasswordError
from trialctl.ledger.export_pages import LedgerEntry
from trialctl.ledger.location import resolve_ledger

SECTION_KEYS = ["corrections", "refused_attempts", "overrides", "out_of_hours", "back_dated",
                "late_entries", "revoked_users", "sign_ins", "invalidated_reviews"]


def _log(*args: str) -> list[dict[str, Any]]:
    result = trialctl("log", *args, "--json")
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def _review(*args: str, user: str = "mona") -> tuple[int, str, str]:
    result = trialctl("audit", "review", *args, "-u", user, "--password-stdin",
                      stdin=demo_password(user) + "\n")
    return result.returncode, result.stdout, result.stderr


def _refuse_an_attempt(url: str, home: Path) -> None:
    """Mona (a monitor) tries to sign a decision's packet citation: refused and recorded in
    her security log, signed with her own key."""
    ledger = TrialLedger(resolve_ledger(url), keys_home=home / "keys")
    record = ledger.ledger_record()
    record.cite_packet(trial="NCT00084513", cohort_number=4, packet_sha256="0" * 64)
    with pytest.raises(AuthorityError):
        ledger.record(ledger.unlock("mona", demo_password("mona")), record)
    ledger.close()


def test_the_review_of_the_demo_lists_its_corrections_overrides_and_refusals(
    ledger_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    directory = demo_ledger(ledger_url, tmp_path)
    monkeypatch.setenv("TRIALCTL_HOME", str(directory / "home"))
    monkeypatch.setenv("TRIALCTL_LEDGER", ledger_url)
    corrections = _log("--type", "Corrected")
    overrides = [r for r in _log() if r["type"].endswith(("Overridden",))]
    # The demo's P006 dose time, P007 AE grade and P008 AE resolution date.
    assert len(corrections) == 3

    code, out, err = _review("--json")
    assert code == 0, err
    review = json.loads(out)
    assert [s["key"] for s in review["sections"]] == SECTION_KEYS
    assert review["counts"]["corrections"] == len(corrections)
    assert review["counts"]["overrides"] == len(overrides)
    assert review["counts"]["refused_attempts"] == 0
    assert review["counts"]["revoked_users"] == 0
    assert review["counts"]["sign_ins"] == 0
    assert review["counts"]["invalidated_reviews"] == 1  # the demo's P008 AE1 resolution
    listed = review["sections"][0]["rows"]
    assert [(r["position"], r["reason"], r["old_value"], r["new_value"]) for r in listed] == [
        (c["position"], c["reason_for_change"], c["old_value"], c["new_value"])
        for c in corrections]
    assert {r["patient"] for r in listed} == {"P006", "P007", "P008"}
    reviewed = _log("--type", "AuditReviewed")
    assert len(reviewed) == 1
    assert hashlib.sha256(out.encode()).hexdigest() in reviewed[0]["what"]
    assert f"tree_size={review['tree_size']}" in reviewed[0]["what"]
    assert reviewed[0]["meaning"] == "reviewed" and reviewed[0]["user_id"] == "mona"

    _refuse_an_attempt(ledger_url, directory / "home")
    page = tmp_path / "review.html"
    code, out, err = _review("--html", str(page))
    assert code == 0, err
    assert "refused attempts 1" in out and "corrections 3" in out
    html = page.read_text(encoding="utf-8")
    for correction in corrections:
        assert correction["reason_for_change"] in html
    assert "Refused attempts (1)" in html and "trialctl.Ledger.PacketCited" in html
    assert "<script" not in html and "http" not in html.replace("http-equiv", "")
    reviewed = _log("--type", "AuditReviewed")
    assert len(reviewed) == 2
    assert hashlib.sha256(page.read_bytes()).hexdigest() in reviewed[1]["what"]

    # --since lists only what was recorded from then.
    code, out, err = _review("--json", "--since", reviewed[1]["recorded_at"])
    assert code == 0, err
    assert json.loads(out)["entries_reviewed"] == 1  # the HTML review's own entry
    assert_one_line_error(trialctl("audit", "review", "--json", "--html", "x.html", "-u",
                                   "mona"), "give one of --html FILE or --json")
    code, out, err = _review("--json", user="ivan")
    assert code == 1 and "none of ivan's roles" in err
    assert len(_log("--type", "AuditReviewed")) == 3  # the --since review one, ivan's refusal none


def _entry(position: int, recorded_at: str, event: str, payload: dict[str, Any],
           aggregate: str = "a") -> LedgerEntry:
    statement = {"position": position, "recorded_at": recorded_at, "type": event,
                 "payload": payload, "aggregate_id": aggregate, "meaning": "recorded",
                 "actor": {"user_id": "mona", "role": "monitor", "key_id": "k"}}
    return LedgerEntry(statement, "h", ())


def _rows(section: str, entries: list[LedgerEntry], **settings: Any) -> list[dict[str, Any]]:
    from trialctl.ledger.audit_review import SECTIONS

    scope = Scope(entries, {}, {}, {}, None, Settings(**settings))
    return SECTIONS[section].rows(scope)


AE = "trialctl.Patient.AdverseEventReported"


def test_late_entries_count_from_the_day_after_the_allowed_delay() -> None:
    on_time = _entry(1, "2026-03-08T10:00:00+00:00", AE, {"onset": "2026-03-01"})
    late = _entry(2, "2026-03-09T10:00:00+00:00", AE, {"onset": "2026-03-01"})
    assert [r["position"] for r in _rows("late_entries", [on_time, late])] == [2]
    assert _rows("late_entries", [late], late_days=8) == []
    assert clinical_date(late.statement) == date(2026, 3, 1)


def test_a_back_dated_entry_is_one_dated_before_a_record_already_entered() -> None:
    first = _entry(1, "2026-03-10T10:00:00+00:00", AE, {"onset": "2026-03-05"})
    same_day = _entry(2, "2026-03-10T11:00:00+00:00", AE, {"onset": "2026-03-05"})
    earlier = _entry(3, "2026-03-10T12:00:00+00:00", AE, {"onset": "2026-03-04"})
    other_patient = _entry(4, "2026-03-10T12:00:00+00:00", AE, {"onset": "2026-03-01"}, "b")
    rows = _rows("back_dated", [first, same_day, earlier, other_patient])
    assert [(r["position"], r["already_recorded"]) for r in rows] == [(3, "#1 dated 2026-03-05")]


def test_out_of_hours_is_before_the_start_or_from_the_end_or_at_a_weekend() -> None:
    times = ["2026-03-10T06:59:59+00:00", "2026-03-10T07:00:00+00:00",
             "2026-03-10T18:59:59+00:00", "2026-03-10T19:00:00+00:00",
             "2026-03-14T12:00:00+00:00"]  # four on a Tuesday, one on a Saturday
    entries = [_entry(i, t, AE, {}) for i, t in enumerate(times)]
    assert [r["position"] for r in _rows("out_of_hours", entries)] == [0, 3, 4]
    assert [r["position"] for r in _rows("out_of_hours", entries,
                                         weekends_out_of_hours=False)] == [0, 3]
    # 07:30 UTC is 08:30 in Berlin (CET): inside 08:00-18:00 there, outside 08:00 in UTC.
    berlin = [_entry(0, "2026-03-10T07:30:00+00:00", AE, {})]
    hours = {"day_starts": time(8), "day_ends": time(18)}
    assert _rows("out_of_hours", berlin, zone="Europe/Berlin", **hours) == []
    assert len(_rows("out_of_hours", berlin, **hours)) == 1


def test_hours_and_zones_are_checked() -> None:
    assert parse_hours("08:00-18:30") == (time(8), time(18, 30))
    for bad in ("18:00-08:00", "8-18", "08:00"):
        with pytest.raises(ReviewError):
            parse_hours(bad)
    with pytest.raises(ReviewError, match="IANA"):
        Settings(zone="Mars/Olympus").tz()
    assert Settings().tz() is UTC
    assert datetime(2026, 1, 1, tzinfo=Settings(zone="Europe/Berlin").tz()).utcoffset()


def test_the_review_lists_an_invalidated_review_a_failed_sign_in_and_a_lock_out(
    ledger_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On a small ledger built here: ivan's consent record verified by mona and then
    corrected; one wrong password of mona's, signed at her next sign-in; pat locked out by
    wrong passwords and unlocked by alice. Each appears once, in its own section."""
    from trialctl.domain.facts import Consent
    from trialctl.ledger.audit_review import build_review
    from trialctl.ledger.demo import DEMO_USERS, shipped_protocol
    from trialctl.ledger.requests import PatientStep, Registration
    from trialctl.ledger.reviews import Review, ReviewActions

    monkeypatch.setenv("TRIALCTL_LOCKOUT_AFTER", "2")
    app = TrialLedger(resolve_ledger(ledger_url), create=True,
                      keys_home=tmp_path / "keys")
    app.initialise("small", "alice", DEMO_USERS["alice"][0], demo_password("alice"))
    actors = {"alice": app.unlock("alice", demo_password("alice"))}
    for user_id in ("pat", "ivan", "mona"):
        name, roles = DEMO_USERS[user_id]
        app.register_user(actors["alice"], user_id, name, roles, demo_password(user_id))
        actors[user_id] = app.unlock(user_id, demo_password(user_id))
    now = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    records = ReviewActions(app)
    records.perform(Registration(shipped_protocol()), actors["pat"], now)
    records.perform(PatientStep(None, "P001", Consent(consent_version="2.1",
                                                      signed_on="2026-03-01")),
                    actors["ivan"], now)
    consent = records.review_rows(records.patient(records.trial(None), "P001"))[0]["position"]
    records.perform(Review(None, "P001", (consent,), "mona"), actors["mona"], now)
    records.perform(PatientStep(None, "P001", Correction(
        target_version=1, changes={"signed_on": "2026-02-28"}, reason="signed the day before")),
        actors["ivan"], now)
    with pytest.raises(WrongPasswordError):
        app.unlock("mona", "not her password")
    app.unlock("mona", demo_password("mona"))  # signs the queued failure into her log
    for _ in range(2):
        with pytest.raises(WrongPasswordError):
            app.unlock("pat", "a guess")
    app.unlock_user(actors["alice"], "pat")

    review = build_review(app, None, Settings(), "mona", now)
    sections = {s["key"]: s["rows"] for s in review["sections"]}
    assert list(sections) == SECTION_KEYS
    (invalidated,) = sections["invalidated_reviews"]
    correction = records.review_rows(records.patient(records.trial(None), "P001"))[0]
    assert invalidated["position"] == correction["invalidated_by"]
    assert (invalidated["record"], invalidated["review"]) == (
        f"#{consent}", f"#{correction['review']}")
    assert (invalidated["user_id"], invalidated["reviewed_by"]) == ("ivan", "mona")
    assert invalidated["reason"] == "signed the day before"
    failed, ended = sections["sign_ins"]
    assert (failed["event"], failed["user"], failed["attempts"]) == ("failed sign-in", "mona", 1)
    assert "wrong password" in failed["detail"]
    assert (ended["event"], ended["user"], ended["user_id"]) == ("lock-out ended", "pat", "alice")
    assert ended["attempts"] == 2 and ended["detail"].count("wrong password") == 2
    page = review_html(review).decode("utf-8")
    assert "Reviews invalidated by corrections (1)" in page
    assert "Failed sign-ins and lock-outs (2)" in page
    app.close()
