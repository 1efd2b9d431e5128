"""Values derived from other facts follow their corrections: a lab's CTCAE grade (the
screening ULN corrected), a serious event's report-due date (its site-aware date corrected)
and its report state (overdue until reported), the next response assessment (the baseline
date corrected), and the treatment-delay DLT rule, met by a recorded dose hold for toxicity.

One ledger per backend, built once through the real `trialctl`; each test reads it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BACKENDS, assert_one_line_error, new_ledger
from tests.dosing_site import DosingSite, open_site
from tests.trial_helpers import day
from trialctl.domain.facts import report_state

SAE = ("--id", "AE1", "--term", "Diarrhea", "--grade", "3", "--attribution", "probable",
       "--onset", day(6), "--serious", "hospitalisation", "--site-aware-on", day(7))


# P001's record versions: consent 1, screening 2, enrolment 3, baseline 4, dose 5, lab 6,
# AE1 7, the hold 8, the adjudication 9 (the refused one wrote nothing).
VERSION = {"screening": 2, "response": 4, "ae": 7}


@pytest.fixture(scope="module", params=BACKENDS)
def built(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
          ) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("derived")
    databases = new_ledger(request.param, tmp / "ledger.sqlite")
    site = open_site(next(databases), tmp)
    site.enroll()
    site.record("response", "P001", "--baseline", "--date", day(2),
                "--lesion", "T1:liver:40")
    site.imatinib(1, 1, 1, day(5))
    site.record("lab", "P001", "--test", "alt", "--value", "150", "--unit", "U/L",
                "--date", day(6))
    site.record("ae", "P001", *SAE)
    site.dose_change("hold", day(7))
    short = site.record("dlt", "P001", "--ae", "AE1", "--rule", "treatment_delay",
                        "--date", day(12), user="pat", check=False)
    site.record("dlt", "P001", "--ae", "AE1", "--rule", "treatment_delay", "--date", day(22),
                user="pat")
    before = site.patient()
    status_before = site.status()
    for kind, change in (("screening", "alt_uln_u_l=20"), ("ae", f"site_aware_on={day(8)}"),
                         ("response", f"assessed_on={day(3)}")):
        site.record("correct", "P001", "--version", str(VERSION[kind]),
                    "--set", change, "--reason", "source document verification")
    after = site.patient()
    status_after = site.status()
    site.record("correct", "P001", "--version", str(VERSION["ae"]),
                "--set", f"reported_on={day(20)}", "--reason", "report sent")
    yield {"site": site, "short": short, "before": before, "after": after,
            "status_before": status_before, "status_after": status_after,
            "reported": site.status(), "table": site.run("patient", "P001").stdout}
    databases.close()  # drops a PostgreSQL database


def test_a_corrected_screening_uln_regrades_an_earlier_lab(built: dict[str, Any]) -> None:
    (lab_before,) = built["before"]["patient"]["labs"]
    (lab_after,) = built["after"]["patient"]["labs"]
    assert lab_before["grade"] == 2  # 150 U/L is 3.75 x the ULN of 40
    assert lab_after["grade"] == 3  # and 7.5 x the corrected 20
    assert "20" in lab_after["grading"]


def test_the_report_due_date_follows_the_site_aware_date(built: dict[str, Any]) -> None:
    (ae_before,) = built["before"]["patient"]["adverse_events"]
    (ae_after,) = built["after"]["patient"]["adverse_events"]
    assert (ae_before["report_due"], ae_after["report_due"]) == (day(22), day(23))
    (report,) = built["status_after"]["sae_reports"]
    assert (report["patient_id"], report["report_due"], report["report"]) == (
        "P001", day(23), "overdue")
    (reported,) = built["reported"]["sae_reports"]
    assert (reported["reported_on"], reported["report"]) == (day(20), "reported")
    # Before the due date passed: due, not yet overdue; sent after it: reported late.
    assert report_state(day(23), None, date.fromisoformat(day(22))) == "due"
    assert report_state(day(23), day(25), date.fromisoformat(day(30))) == "reported late"
    assert report_state(day(23), day(25), date.fromisoformat(day(24))) == "overdue"
    assert f"report due {day(23)}, reported {day(20)}: reported" in built["table"]


def test_an_unreported_sae_past_its_date_is_flagged_in_the_tables(
    built: dict[str, Any],
) -> None:
    site: DosingSite = built["site"]
    assert [r["report"] for r in built["status_before"]["sae_reports"]] == ["overdue"]
    assert site.run("status").returncode == 0
    assert "report due" in site.run("status").stdout


def test_the_next_assessment_follows_the_corrected_baseline(built: dict[str, Any]) -> None:
    # Every 9 weeks from the baseline: day 2 + 63, then day 3 + 63 once corrected.
    assert built["before"]["patient"]["next_assessment_due"] == day(65)
    assert built["after"]["patient"]["next_assessment_due"] == day(66)
    (response,) = built["after"]["patient"]["responses"]
    assert response["next_due"] == day(66)


def test_a_dose_hold_for_toxicity_beyond_the_rule_meets_treatment_delay(
    built: dict[str, Any],
) -> None:
    assert_one_line_error(built["short"], "[rule: dlt-rule]",
                          "duration more than 14 days: 5 days held for toxicity")
    (judged,) = built["after"]["patient"]["dlt_adjudications"]
    assert (judged["rule_code"], judged["unmet"], judged["counts"]) == (
        "treatment_delay", [], True)
    assert built["after"]["patient"]["dlts"] == 1


def test_a_hold_resumed_does_not_count_from_the_resume(tmp_path: Path) -> None:
    """The hold ends at its resume: a later adjudication reads the days actually held."""
    site = open_site(str(tmp_path / "ledger.sqlite"), tmp_path)
    site.enroll()
    site.imatinib(1, 1, 1, day(5))
    site.record("ae", "P001", *SAE)
    site.dose_change("hold", day(7))
    site.dose_change("resume", day(17))
    refused = site.record("dlt", "P001", "--ae", "AE1", "--rule", "treatment_delay",
                          "--date", day(30), user="pat", check=False)
    assert_one_line_error(refused, "10 days held for toxicity", "to the resume on")
