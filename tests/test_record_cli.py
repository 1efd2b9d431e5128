"""A trial run from first consent to a declared MTD with `trialctl record` alone, as real
processes, on SQLite and PostgreSQL; refusals are one line and change nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import assert_one_line_error, trialctl
from tests.signed_site import SignedSite, staff_ledger
from tests.trial_helpers import ROOT, at, day, screening_for, second_protocol

SECOND_PROTOCOL = ROOT / "tests" / "data" / "protocols" / "second_protocol.toml"


class Site(SignedSite):
    def __init__(self, url: str, tmp_path: Path) -> None:
        super().__init__(url)
        self.tmp_path = tmp_path


@pytest.fixture
def site(ledger_url: str, home: Path, tmp_path: Path) -> Site:
    site = Site(ledger_url, tmp_path)
    staff_ledger(ledger_url)
    site.run("trial", "register", str(SECOND_PROTOCOL), user="pat")
    return site


def enroll(site: Site, patient: str, offset: int) -> None:
    values = site.tmp_path / f"{patient}.json"
    values.write_text(json.dumps(screening_for(second_protocol(), offset + 1)))
    site.record("consent", patient, "--consent-version", "1.0", "--date", day(offset))
    screened = json.loads(site.record("screen", patient, "--date", day(offset + 1),
                                      "--values-file", str(values)).stdout)
    assert screened["summary"]["eligibility"]["eligible"] is True
    site.record("enroll", patient, "--date", day(offset + 2))


def treat(site: Site, patient: str, dose: str, offset: int, dlt: bool) -> None:
    site.record("dose", patient, "--agent", "examplinib", "--dose", dose, "--unit", "mg",
                "--course", "1", "--day", "1", "--at", at(offset))
    if dlt:
        site.record("ae", patient, "--id", "AE1", "--term", "Febrile neutropenia", "--grade", "3",
                    "--attribution", "probable", "--onset", day(offset + 6))
        adjudicated = json.loads(site.record(
            "dlt", patient, "--ae", "AE1", "--dlt", "--rule", "febrile_neutropenia", "--date",
            day(offset + 7)).stdout)
        assert adjudicated["summary"]["counts_toward_decision"] is True
    else:
        site.record("complete-course", patient, "--course", "1", "--date", day(offset + 28))


def test_a_trial_runs_from_first_consent_to_mtd_with_record_alone(site: Site) -> None:
    for index, patient in enumerate(("P001", "P002", "P003")):
        enroll(site, patient, index)
        treat(site, patient, "25", 5, dlt=False)
    decision = json.loads(site.record("decide", "--action", "escalate", "--next-level", "2",
                                      user="pat").stdout)
    assert decision["entries"][0]["type"] == "trialctl.Trial.CohortDecided"
    assert decision["entries"][0]["actor"]["role"] == "principal-investigator"
    assert decision["entries"][0]["meaning"] == "approved"

    for index, patient in enumerate(("P004", "P005", "P006")):
        enroll(site, patient, 40 + index)
        treat(site, patient, "50", 45, dlt=index < 2)
    assert site.status()["next"]["code"] == "decision-due"  # type: ignore[index]
    site.record("decide", "--action", "stop", "--mtd-level", "1", user="ivan")

    status = site.status()
    assert status["stopped"] is True
    assert status["mtd"] == {"level": 1, "dose": "25", "unit": "mg"}
    assert [c["dlts"] for c in status["cohorts"]] == [0, 2]  # type: ignore[index, union-attr]
    signers = [(d["signed_by"]["user_id"], d["signed_by"]["role"], d["signed_by"]["meaning"])
               for d in status["decisions"]]  # type: ignore[union-attr]
    assert signers == [("pat", "principal-investigator", "approved"),
                       ("ivan", "investigator", "approved")]
    verified = site.run("verify", "--json")
    assert json.loads(verified.stdout)["ok"] is True


def test_every_record_command_shows_the_signed_entry(site: Site) -> None:
    written = json.loads(site.record("consent", "P001", "--consent-version", "1.0", "--date",
                                     day(0)).stdout)
    (entry,) = written["entries"]
    assert entry["type"] == "trialctl.Patient.ConsentSigned"
    assert entry["actor"] == {"key_id": entry["actor"]["key_id"], "name": "Dr Ivan Ito",
                              "role": "investigator", "user_id": "ivan"}
    assert entry["payload"]["consent_version"] == "1.0"


def test_a_refused_action_is_one_line_and_changes_nothing(site: Site) -> None:
    before = site.status()
    site.record("consent", "P001", "--consent-version", "1.0", "--date", day(0))
    result = site.record("enroll", "P001", "--date", day(1), check=False)

    assert_one_line_error(result, "refused:", "has not been screened", "[rule: screen-first]")
    after = site.status()
    assert after["cohorts"] == before["cohorts"]


def test_an_override_by_an_investigator_is_refused_and_recorded(site: Site) -> None:
    for index, patient in enumerate(("P001", "P002", "P003")):
        enroll(site, patient, index)
        treat(site, patient, "25", 5, dlt=False)
    without_reason = site.record("decide", "--action", "escalate", "--next-level", "3",
                                 check=False)
    assert_one_line_error(without_reason, "'escalate' to level 2", "--override-reason")

    by_investigator = site.record("decide", "--action", "escalate", "--next-level", "3",
                                  "--override-reason", "skip level 2", check=False)
    assert_one_line_error(by_investigator, "refused", "CohortDecisionOverridden")

    log = json.loads(site.run("verify", "--json").stdout)
    assert log["ok"] is True
    by_pi = site.record("decide", "--action", "escalate", "--next-level", "3",
                        "--override-reason", "skip level 2", user="pat")
    assert json.loads(by_pi.stdout)["entries"][0]["type"] == \
        "trialctl.Trial.CohortDecisionOverridden"
    assert site.status()["current_level"] == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("dose", "P404", "--agent", "examplinib", "--dose", "25", "--unit", "mg", "--course",
          "1", "--day", "1", "--at", "2026-01-10T09:00:00+00:00"), "no patient 'P404'"),
        (("consent", "P001", "--consent-version", "1.0", "--date", "01/05/2026"),
         "is not a date"),
        (("consent", "bad id!", "--consent-version", "1.0", "--date", "2026-01-05"),
         "patient id"),
        (("decide", "--action", "escalate", "--next-level", "9"), "no decision is due"),
        (("screen", "P001", "--date", "2026-01-05", "--value", "noequals"), "KEY=VALUE"),
    ],
    ids=["unknown-patient", "bad-date", "bad-patient-id", "decision-not-due", "bad-value"],
)
def test_bad_record_input(site: Site, args: tuple[str, ...], message: str) -> None:
    assert_one_line_error(site.record(*args, check=False), message)


def test_escalation_path_json() -> None:
    result = trialctl("escalation", "path", "1NNN 2NTN 2NNN 3TTN", "--doses", "4",
                      "--allow-deescalation", "--json")
    assert result.returncode == 0, result
    data = json.loads(result.stdout)
    assert data["recommended_dose"] == 2 and data["continue"] is False
    assert data["next_dose"] is None
    assert [c["action"] for c in data["cohorts"]] == ["escalate", "expand", "escalate", "stop"]


def test_escalation_path_while_going_on() -> None:
    data = json.loads(trialctl("escalation", "path", "1NNN 2NT", "--doses", "4",
                               "--json").stdout)
    assert data["recommended_dose"] == 2 and data["continue"] is True and data["next_dose"] == 2


@pytest.mark.parametrize(
    ("path", "message"),
    [("1NXN", "X"), ("5NNN", "level"), ("1NNN 1NNN", "level 2")],
    ids=["bad-letter", "level-out-of-range", "out-of-rule"],
)
def test_escalation_path_refusals(path: str, message: str) -> None:
    result = trialctl("escalation", "path", path, "--doses", "4")
    assert_one_line_error(result, message)


def test_escalation_paths_table() -> None:
    result = trialctl("escalation", "paths", "--cohorts", "2", "--from", "1NNN", "--doses", "4",
                      "--json")
    assert result.returncode == 0, result
    rows = json.loads(result.stdout)
    # From "1NNN" the next cohort is at level 2 with four outcome classes; each of those that
    # does not stop is followed by four more.
    assert rows[0]["depth"] == 0
    assert sum(1 for r in rows if r["depth"] == 1) == 4


def entries(site: Site) -> int:
    verified = json.loads(site.run("verify", "--json").stdout)
    return int(verified["entries_checked"])


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("dose", "P001", "--agent", "examplinib", "--dose", "25", "--unit", "mg", "--course",
          "1", "--day", "1", "--at", "2026-01-08 09:00"), "needs a UTC offset"),
        (("dose", "P404", "--agent", "examplinib", "--dose", "25", "--unit", "mg", "--course",
          "1", "--day", "1", "--at", at(3)), "no patient 'P404'"),
        (("dose", "P001", "--agent", "examplinib", "--dose", "900", "--unit", "mg", "--course",
          "1", "--day", "1", "--at", at(3)), "[rule: own-dose-level]"),
        (("enroll", "P001", "--date", "01/09/2026", "--trial", "TEST-0002"), "is not a date"),
        (("consent", "P009", "--consent-version", "1.0", "--date", day(0), "--trial", "NCT404"),
         "no trial 'NCT404'"),
        (("decide", "--action", "escalate", "--next-level", "2"), "[rule: decision-due]"),
        # Consent is correctable now; the patient's study id is not.
        (("correct", "P001", "--version", "1", "--set", "patient_id=P002", "--reason",
          "x"), "[rule: correctable]"),
    ],
    ids=["bad-time", "unknown-patient", "dose-refused", "bad-date", "unknown-trial",
         "no-decision-due", "not-correctable"],
)
def test_a_refusal_comes_before_any_password_prompt(
    site: Site, args: tuple[str, ...], expected: str
) -> None:
    enroll(site, "P001", 0)
    before = entries(site)

    # No --password-stdin and nothing on stdin: a prompt would fail differently.
    result = trialctl("record", *args, "--ledger", site.url, "-u", "ivan")

    assert_one_line_error(result, expected)
    assert "Password" not in result.stdout + result.stderr
    assert entries(site) == before


def test_a_request_the_rules_accept_still_asks_for_the_password(site: Site) -> None:
    enroll(site, "P001", 0)
    result = trialctl("record", "dose", "P001", "--agent", "examplinib", "--dose", "25",
                      "--unit", "mg", "--course", "1", "--day", "1", "--at", at(3),
                      "--ledger", site.url, "-u", "ivan", "--password-stdin", stdin="wrong\n")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert site.status()["cohorts"][0]["patients"] == ["P001"]  # type: ignore[index]
    assert json.loads(site.run("patient", "P001", "--json").stdout)["patient"]["doses"] == []


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("user", "add", "mallory", "--name", "Mallory", "--role", "admin"),
         "none of ivan's roles (investigator) may record trialctl.User.Registered"),
        (("user", "revoke", "alice", "--reason", "gone"), "may record trialctl.User.KeyRevoked"),
        (("trial", "register", str(ROOT / "protocols" / "NCT00084513.toml")),
         "may record trialctl.Trial.Registered"),
        (("user", "grant-role", "ivan", "admin", "-u", "nobody"), "unknown user 'nobody'"),
    ],
    ids=["user-add", "user-revoke", "trial-register", "unknown-signer"],
)
def test_a_signer_without_authority_is_refused_before_any_password_prompt(
    site: Site, args: tuple[str, ...], expected: str
) -> None:
    before = entries(site)
    signer = [] if "-u" in args else ["-u", "ivan"]
    result = trialctl(*args, "--ledger", site.url, *signer)

    assert_one_line_error(result, expected)
    assert "Password" not in result.stdout + result.stderr
    assert entries(site) == before
