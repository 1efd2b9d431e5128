"""A corrected screening value that makes an enrolled patient ineligible is a protocol
deviation, shown where people look: `trialctl status` and `trialctl patient` (table and
--json) and the replay, naming the failed criterion and the correction."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.nct_site import Site, nct_site


@pytest.fixture
def site(home: Path, tmp_path: Path) -> Site:
    """P001 eligible throughout; P002 enrolled, then its ANC corrected below 1,500/mm^3."""
    site = nct_site(tmp_path)
    site.screen_and_enroll("P002", offset=1)
    # P001's correction keeps the patient eligible: no deviation.
    site.run("record", "correct", "P001", "--version", "2", "--set", "anc_per_mm3=1600",
             "--reason", "lab report re-read", user="ivan")
    site.run("record", "correct", "P002", "--version", "2", "--set", "anc_per_mm3=1200",
             "--reason", "lab report re-read", user="ivan")
    return site


# Consent is version 1, screening 2, enrolment 3: the correction is version 4.
EXPECTED = ("P002 enrolled but no longer eligible: failed anc "
            "(corrected anc_per_mm3 = 1200, record version 4)")


def test_status_names_the_deviation(site: Site) -> None:
    table = site.run("status").stdout
    assert f"deviation: {EXPECTED}" in table.splitlines()
    assert "P001 enrolled but no longer eligible" not in table

    status = json.loads(site.run("status", "--json").stdout)
    assert status["eligibility_deviations"] == [{
        "patient_id": "P002", "failed": ["anc"], "corrected": {"anc_per_mm3": 1200},
        "corrected_version": 4, "text": EXPECTED,
    }]


def test_patient_shows_its_deviation_in_the_table_and_json(site: Site) -> None:
    table = site.run("patient", "P002").stdout
    assert f"deviation: {EXPECTED}" in table.splitlines()
    deviation = site.patient("P002")["eligibility_deviation"]
    assert isinstance(deviation, dict)
    assert (deviation["failed"], deviation["text"]) == (["anc"], EXPECTED)

    assert "deviation" not in site.run("patient", "P001").stdout.split("Timeline")[0]
    assert site.patient("P001")["eligibility_deviation"] is None


def test_the_replay_shows_the_deviation_only_from_the_correction_on(site: Site) -> None:
    log = json.loads("[" + ",".join(site.run("log", "--json").stdout.splitlines()) + "]")
    correction = max(r["position"] for r in log if r["type"] == "trialctl.Patient.Corrected")
    before = json.loads(site.run("replay", "--upto", str(correction - 1), "--json").stdout)
    after = json.loads(site.run("replay", "--upto", str(correction), "--json").stdout)
    assert before["status"]["eligibility_deviations"] == []
    assert [d["text"] for d in after["status"]["eligibility_deviations"]] == [EXPECTED]
    assert f"deviation: {EXPECTED}" in site.run("replay", "--upto", str(correction)).stdout
