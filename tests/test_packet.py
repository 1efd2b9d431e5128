"""`trialctl packet`, `packet sign`, `packet verify` and `record decide --packet`, as real
processes on SQLite and PostgreSQL: a trial with cohort 1 evaluated and its decision due,
the committee's packet for it, countersignatures and their refusals, a tampered copy, and
the decision that cites the packet."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import assert_one_line_error, trialctl
from trialctl.domain.facts import Consent, CourseCompletion, Dose, Enrolment, Screening
from trialctl.ledger.application import TrialLedger
from trialctl.ledger.demo import DEMO_USERS, demo_password, screening_values, shipped_protocol
from trialctl.ledger.location import resolve_ledger
from trialctl.ledger.requests import PatientStep, Registration
from trialctl.ledger.trials import TrialActions

DAY_ZERO = date.today() - timedelta(days=60)


def _decision_due(url: str, home: Path) -> None:
    """The demo's users; cohort 1 (P001-P003) dosed and through course 1 without a DLT."""
    ledger = TrialLedger(resolve_ledger(url), create=True, keys_home=home / "keys")
    ledger.initialise("packet tests", "alice", DEMO_USERS["alice"][0], demo_password("alice"))
    actors = {"alice": ledger.unlock("alice", demo_password("alice"))}
    for user_id, (name, roles) in DEMO_USERS.items():
        if user_id != "alice":
            ledger.register_user(actors["alice"], user_id, name, roles, demo_password(user_id))
            actors[user_id] = ledger.unlock(user_id, demo_password(user_id))
    actions = TrialActions(ledger)
    protocol = shipped_protocol()
    actions.perform(Registration(protocol), actors["pat"], datetime.now(UTC))

    def day(offset: int) -> str:
        return (DAY_ZERO + timedelta(days=offset)).isoformat()

    level = protocol.level(1)
    for number in range(1, 4):
        patient = f"P{number:03d}"
        for actor, fact in (
            ("mona", Consent(consent_version="2.1", signed_on=day(0))),
            ("mona", Screening(values=screening_values(DAY_ZERO + timedelta(days=2)),
                               screened_on=day(2))),
            ("mona", Enrolment(enrolled_on=day(4))),
            ("ivan", Dose(agent=protocol.escalated_agent.name, dose=str(level.dose),
                          unit=level.unit, course=1, day=1, given_at=f"{day(6)}T09:30:00+00:00")),
            ("ivan", CourseCompletion(course=1, completed_on=day(27), not_evaluable_reason=None)),
        ):
            actions.perform(PatientStep(None, patient, fact), actors[actor], datetime.now(UTC))
    ledger.close()


def _signed(user: str, *args: str) -> tuple[int, str, str]:
    result = trialctl(*args, "-u", user, "--password-stdin", stdin=demo_password(user) + "\n")
    return result.returncode, result.stdout, result.stderr


def _tree_size(ledger_url: str) -> int:
    ledger = TrialLedger(resolve_ledger(ledger_url))
    try:
        return ledger.signed_recorder.tree_size()
    finally:
        ledger.close()


def test_a_packet_is_made_countersigned_verified_and_cited_by_the_decision(
    ledger_url: str, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    _decision_due(ledger_url, home)
    monkeypatch.setenv("TRIALCTL_LEDGER", ledger_url)
    packet = tmp_path / "cohort1.packet.json"
    before = _tree_size(ledger_url)

    page = tmp_path / "cohort1.packet.html"
    code, out, err = _signed("mona", "packet", "--cohort", "1", "-o", str(packet),
                             "--html", str(page), "--json")
    assert code == 0, err
    made = json.loads(out)
    sha = hashlib.sha256(packet.read_bytes()).hexdigest()
    assert made["sha256"] == sha and made["html"] == str(page)
    # The reading copy names the file it renders and shows the same content.
    html = page.read_text(encoding="utf-8")
    assert f"<code>{sha}</code>" in html and f"tree size {before}," in html
    assert "<td>P001, P002, P003</td>" in html
    assert "The 3+3 rules recommend: escalate → level 2." in html
    assert "Pathways unavailable" not in html and "<script" not in html
    assert made["tree_size"] == before  # pinned to the tree head when it was made
    assert made["recorded_at_position"] == before
    signed = json.loads(packet.read_bytes())["signed"]
    assert signed["author"]["user_id"] == "mona"
    assert signed["cohort_number"] == 1
    assert signed["recommendation"]["action"] == "escalate"
    assert signed["recommendation"]["next_level"] == 2
    assert [c["patients"] for c in signed["cohorts"]] == [["P001", "P002", "P003"]]
    assert signed["dlts"] == []  # no adverse event in cohort 1
    assert signed["pathways"]["unavailable"] is None and signed["pathways"]["rows"]
    pending = [p["what"] for p in signed["pending"]]
    assert "the cohort 1 decision" in pending

    # Countersignatures: a member once; never the author; never twice.
    code, out, err = _signed("pat", "packet", "sign", str(packet))
    assert code == 0, err
    assert "countersigned packet" in out
    after_pat = _tree_size(ledger_url)
    code, out, err = _signed("pat", "packet", "sign", str(packet))
    assert code == 1 and "pat already countersigned this packet" in err
    assert len(err.strip().splitlines()) == 1
    code, out, err = _signed("mona", "packet", "sign", str(packet))
    assert code == 1 and "its author cannot countersign it" in err
    assert _tree_size(ledger_url) == after_pat  # the refusals wrote nothing

    verified = trialctl("packet", "verify", str(packet), "--json")
    assert verified.returncode == 0, verified.stderr
    result = json.loads(verified.stdout)
    assert result["ok"] and result["findings"] == []
    assert [c["user_id"] for c in result["countersignatures"]] == ["pat"]
    assert result["countersignatures"][0]["meaning"] == "reviewed"
    shown = trialctl("packet", "verify", str(packet))
    assert shown.returncode == 0 and "countersigned by Dr Pat Park (PI)" in shown.stdout

    # One changed value, and the packet no longer verifies (nor can be countersigned).
    tampered = tmp_path / "tampered.json"
    tampered.write_text(packet.read_text().replace('"next_level": 2', '"next_level": 3'))
    failed = trialctl("packet", "verify", str(tampered))
    assert failed.returncode == 1
    assert "signature by key" in failed.stderr and "no PacketIssued entry" in failed.stderr
    code, out, err = _signed("ivan", "packet", "sign", str(tampered))
    assert code == 1 and "does not verify" in err

    # The decision cites the packet; an unknown or malformed hash is refused first.
    code, out, err = _signed("ivan", "record", "decide", "--action", "escalate",
                             "--next-level", "2", "--packet", "0" * 64)
    assert code == 1 and "was issued in this ledger" in err
    code, out, err = _signed("ivan", "record", "decide", "--action", "escalate",
                             "--next-level", "2", "--packet", "abc")
    assert code == 1 and "is not a SHA-256" in err
    code, out, err = _signed("ivan", "record", "decide", "--action", "escalate",
                             "--next-level", "2", "--packet", sha, "--json")
    assert code == 0, err
    decided = json.loads(out)
    types = [e["type"] for e in decided["entries"]]
    assert types == ["trialctl.Trial.CohortDecided", "trialctl.Ledger.PacketCited"]
    assert decided["entries"][1]["payload"]["packet_sha256"] == sha
    assert decided["summary"]["packet"] == sha
    cited = json.loads(trialctl("packet", "verify", str(packet), "--json").stdout)
    assert [c["user_id"] for c in cited["cited_by_decision"]] == ["ivan"]

    assert trialctl("verify").returncode == 0
    log = trialctl("log", "--type", "PacketCountersigned", "--json")
    assert [json.loads(line)["user_id"] for line in log.stdout.splitlines()] == ["pat"]


def test_a_packet_for_a_cohort_the_trial_does_not_have_is_refused(
    ledger_url: str, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    _decision_due(ledger_url, home)
    monkeypatch.setenv("TRIALCTL_LEDGER", ledger_url)
    target = tmp_path / "p.json"
    code, _out, err = _signed("mona", "packet", "--cohort", "2", "-o", str(target))
    assert code == 1 and "has cohorts 1 to 1" in err and not target.exists()
    missing = trialctl("packet", "--cohort", "1")
    assert_one_line_error(missing, "packet needs --cohort N and -o FILE")
    code, _out, err = _signed("alice", "packet", "--cohort", "1", "-o", str(target))
    assert code == 1 and "alice" in err and not target.exists()
    not_a_packet = tmp_path / "x.json"
    not_a_packet.write_text("{}")
    assert_one_line_error(trialctl("packet", "verify", str(not_a_packet)),
                          "is not a trialctl committee packet")
