"""Through the real `trialctl`: a patient held from course 1's day 2 without a DLT received
too little of course 1 and is shown replaced in `status`, `patient` and `replay` (tables
and JSON); an AE's serious flag missed at entry is corrected in, and the SAE report line
follows. The rule's boundaries are tested in-process (test_course1_dose.py,
test_sae_correction.py).

One ledger per backend, built once; each test reads it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import BACKENDS, new_ledger
from tests.dosing_site import open_site
from tests.trial_helpers import day

REPLACED = "received 4.7% of planned course-1 dose"  # 300 of 21 x 300 mg/day


@pytest.fixture(scope="module", params=BACKENDS)
def shown(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
          ) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("course1")
    databases = new_ledger(request.param, tmp / "ledger.sqlite")
    site = open_site(next(databases), tmp)
    site.enroll()
    site.imatinib(1, 1, 1, day(5))
    site.dose_change("hold", day(6), reason="other")
    site.record("ae", "P001", "--id", "AE1", "--term", "Diarrhea", "--grade", "3",
                "--attribution", "probable", "--onset", day(6))
    site.record("complete-course", "P001", "--course", "1", "--date", day(26))
    before = site.patient()
    (ae,) = before["patient"]["adverse_events"]
    site.record("correct", "P001", "--version", str(ae["version"]),
                "--set", "serious=hospitalisation", "--set", f"site_aware_on={day(7)}",
                "--reason", "source document: the patient was admitted")
    last = site.entries()
    yield {
        "before": before, "patient": site.patient(), "status": site.status(),
        "patient_table": site.run("patient", "P001"), "status_table": site.run("status"),
        "replay": json.loads(site.run("replay", "--upto", str(last), "--json").stdout),
        "replay_table": site.run("replay", "--upto", str(last)),
    }
    databases.close()  # drops a PostgreSQL database


def test_a_short_course_1_without_a_dlt_is_replaced_in_every_reading(
    shown: dict[str, Any],
) -> None:
    summary = shown["patient"]["patient"]
    assert (summary["outcome"], summary["evaluable"], summary["replaced_because"]) == (
        "replaced", False, REPLACED)
    dose = summary["course1_dose"]
    assert (dose["received"], dose["planned"], dose["days_recorded"], dose["days_missed"]) == (
        "300", "6300", 1, 20)
    (cohort,) = shown["status"]["cohorts"]
    assert (cohort["replaced"], cohort["evaluated"], cohort["replaced_because"]) == (
        ["P001"], 0, {"P001": REPLACED})
    (replayed,) = shown["replay"]["patients"]
    assert replayed["replaced_because"] == REPLACED
    assert shown["replay"]["status"]["cohorts"][0]["replaced_because"] == {"P001": REPLACED}
    for table in ("patient_table", "status_table", "replay_table"):
        result = shown[table]
        assert result.returncode == 0 and "Traceback" not in result.stderr, table
    assert f"P001 replaced: {REPLACED}" in shown["status_table"].stdout
    assert f"P001 replaced: {REPLACED}" in shown["replay_table"].stdout
    assert f"({REPLACED})" in shown["patient_table"].stdout
    assert "course 1 dose: 300 of 6300 mg/day planned (4.7%, protocol minimum 80%" \
        in shown["patient_table"].stdout


def test_a_corrected_serious_flag_gives_the_sae_report_line(shown: dict[str, Any]) -> None:
    assert shown["before"]["sae_reports"] == []
    (report,) = shown["status"]["sae_reports"]
    assert (report["patient_id"], report["ae_id"], report["serious"], report["report_due"]) == (
        "P001", "AE1", ["hospitalisation"], day(22))
    assert f"serious adverse event P001 AE1 (hospitalisation): site aware {day(7)}, " \
        f"report due {day(22)}" in shown["status_table"].stdout
