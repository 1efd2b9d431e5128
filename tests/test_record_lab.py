"""`trialctl record lab` as a real process: the CTCAE grade is computed and shown by
`trialctl patient` (table and JSON); a corrected value is graded again; a unit with no
defined conversion is one line, a non-zero exit, and writes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import Result, assert_one_line_error
from tests.signed_site import SignedSite, staff_ledger
from tests.trial_helpers import ROOT, day, screening_for
from tests.trial_helpers import nct_protocol as protocol


class Site(SignedSite):
    def size(self) -> int:
        return self.entries()


@pytest.fixture
def site(ledger_url: str, home: Path, tmp_path: Path) -> Site:
    site = Site(ledger_url)
    staff_ledger(ledger_url)
    site.run("trial", "register", str(ROOT / "protocols" / "NCT00084513.toml"), user="pat")
    values = tmp_path / "P001.json"
    # Screening states the patient's ALT ULN (40 U/L) but no bilirubin ULN.
    values.write_text(json.dumps(screening_for(protocol(), 1)))
    site.record("consent", "P001", "--consent-version", "1.0", "--date", day(0))
    site.record("screen", "P001", "--date", day(1), "--values-file", str(values))
    return site


def lab(site: Site, *args: str, check: bool = True) -> Result:
    return site.record("lab", "P001", *args, check=check)


def test_a_recorded_lab_is_graded_and_shown_by_patient(site: Site) -> None:
    written = json.loads(lab(site, "--test", "anc", "--value", "800", "--unit", "/mm3",
                             "--date", day(10), "--course", "1", "--day", "8").stdout)
    (entry,) = written["entries"]
    assert entry["type"] == "trialctl.Patient.LabRecorded"
    assert entry["meaning"] == "recorded"
    assert entry["payload"]["grade"] == 3
    assert written["summary"]["grading"] == "grade 3: 800 /mm3 < 1000 /mm3"
    lab(site, "--test", "alt", "--value", "150", "--unit", "IU/L", "--date", day(10))
    lab(site, "--test", "bilirubin", "--value", "30", "--unit", "umol/L", "--date", day(10))

    labs = site.patient("P001")["patient"]["labs"]
    assert [(x["test"], x["grade"], x["canonical_value"], x["canonical_unit"]) for x in labs] == [
        ("anc", 3, "800", "/mm3"), ("alt", 2, "150", "U/L"), ("bilirubin", None, "1.7544", "mg/dL")]
    assert "ULN from screening alt_uln_u_l" in labs[1]["grading"]
    assert labs[2]["grading"] == "not gradable: no ULN"

    table = site.run("patient", "P001").stdout
    anc_row = next(line for line in table.splitlines() if "800 /mm3" in line)
    assert "│ 3 " in anc_row and "1/8" in anc_row
    assert "not gradable" in table


def test_a_corrected_lab_value_is_graded_again(site: Site) -> None:
    written = json.loads(lab(site, "--test", "anc", "--value", "800", "--unit", "/mm3",
                             "--date", day(10)).stdout)
    version = written["entries"][0]["aggregate_version"]
    corrected = json.loads(site.record("correct", "P001", "--version", str(version), "--set",
                                       "value=400", "--reason", "transcription error").stdout)
    assert corrected["summary"]["corrected"]["grade"] == 4
    payload = corrected["entries"][0]["payload"]
    assert payload["old_values"]["grade"] == 3 and payload["new_values"]["grade"] == 4

    (shown,) = site.patient("P001")["patient"]["labs"]
    assert (shown["value"], shown["grade"], shown["version"]) == ("400", 4, version)
    assert site.run("verify", "--json").returncode == 0


# Each refusal, named; run on one ledger, since each must leave it exactly as it was.
BAD_LABS: dict[str, tuple[tuple[str, ...], str, str]] = {
    "unit-of-another-lab": (("--test", "anc", "--value", "8", "--unit", "g/dL"),
                            "lab-unit", "10^9/L"),
    "undefined-conversion": (("--test", "creatinine", "--value", "80", "--unit", "mmol/L"),
                             "lab-unit", "umol/L"),
    "unknown-test": (("--test", "sodium", "--value", "140", "--unit", "mmol/L"),
                     "lab-test", "creatinine"),
    "negative-value": (("--test", "anc", "--value", "-1", "--unit", "/mm3"),
                       "valid-number", "negative"),
    "uln-for-a-below-normal-lab": (("--test", "anc", "--value", "900", "--unit", "/mm3",
                                    "--uln", "7000"), "lab-limit", "LLN"),
    "day-without-course": (("--test", "alt", "--value", "90", "--unit", "U/L", "--day", "8"),
                           "lab-day", "course"),
}


def test_a_bad_lab_is_one_line_and_writes_nothing(site: Site) -> None:
    before = site.size()
    for name, (args, rule, named) in BAD_LABS.items():
        refused = lab(site, *args, "--date", day(10), check=False)
        assert refused.returncode == 1, name
        assert_one_line_error(refused, f"[rule: {rule}]", named)
    assert site.size() == before
    assert site.patient("P001")["patient"]["labs"] == []


def test_the_demo_holds_a_lab_series_grading_a_neutropenia_beyond_five_days(
    tmp_path: Path, home: Path
) -> None:
    from trialctl.domain.lab_grading import grade_duration_days
    from trialctl.domain.patient import dlt_window
    from trialctl.ledger.application import open_ledger
    from trialctl.ledger.demo import run_demo
    from trialctl.ledger.trials import TrialActions

    result = run_demo(tmp_path)
    assert result.report.ok
    records = TrialActions(open_ledger(result.ledger))
    trial = records.trial(None)
    patient = records.patient(trial, "P007")
    first = patient.first_dose_day(1)
    assert first is not None
    start, end = dlt_window(first, trial.protocol)
    assert [lab["grade"] for lab in patient.labs() if lab["test"] == "anc"] == [2, 4, 4, 2]
    # Grade 4 from the day-11 sample to the day-18 recovery: the rule's "more than 5 days".
    assert grade_duration_days(patient.labs(), "anc", 4, start, end) == 7
    records.ledger.close()
