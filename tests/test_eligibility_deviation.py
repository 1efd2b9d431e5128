"""A corrected screening value that makes an enrolled patient ineligible is a protocol
deviation, shown where people look, and once in each: `trialctl status` (with the other
deviations' counts), `trialctl patient` (in its deviations table; and --json) and the
replay, naming the failed criterion and the correction."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.nct_site import Site, nct_site


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """P001 eligible throughout; P002 enrolled, then its ANC corrected below 1,500/mm^3.
    One ledger for the module: the tests only read it."""
    tmp_path = tmp_path_factory.mktemp("eligibility-deviation")
    (tmp_path / "home").mkdir()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("TRIALCTL_HOME", str(tmp_path / "home"))
        env.delenv("TRIALCTL_LEDGER", raising=False)
        env.delenv("TRIALCTL_USER", raising=False)
        yield _built(tmp_path)


def _built(tmp_path: Path) -> Site:
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


def test_status_names_the_deviation_once(site: Site) -> None:
    table = site.run("status").stdout
    assert "deviations of P002: 1 (0 recorded, 1 detected)" in table.splitlines()
    assert f"  major: {EXPECTED}" in table.splitlines()
    assert table.count("P002 enrolled but no longer eligible") == 1
    assert "P001 enrolled but no longer eligible" not in table

    status = json.loads(site.run("status", "--json").stdout)
    assert status["eligibility_deviations"] == [{
        "patient_id": "P002", "failed": ["anc"], "corrected": {"anc_per_mm3": 1200},
        "corrected_version": 4, "text": EXPECTED,
    }]


def test_patient_shows_its_deviation_once_in_the_table_and_in_json(site: Site) -> None:
    table = site.run("patient", "P002").stdout
    row = next(line for line in table.splitlines() if EXPECTED in line)
    assert "detected" in row and "eligibility" in row and "major" in row
    assert table.count("P002 enrolled but no longer eligible") == 1
    shown = site.patient("P002")
    deviation = shown["eligibility_deviation"]
    assert isinstance(deviation, dict)
    assert (deviation["failed"], deviation["text"]) == (["anc"], EXPECTED)
    assert [d["text"] for d in shown["deviations"]] == [EXPECTED]

    assert "deviation" not in site.run("patient", "P001").stdout.split("Timeline")[0]
    assert site.patient("P001")["eligibility_deviation"] is None


def test_the_replay_shows_the_deviation_only_from_the_correction_on(site: Site) -> None:
    log = json.loads("[" + ",".join(site.run("log", "--json").stdout.splitlines()) + "]")
    correction = max(r["position"] for r in log if r["type"] == "trialctl.Patient.Corrected")
    before = json.loads(site.run("replay", "--upto", str(correction - 1), "--json").stdout)
    after = json.loads(site.run("replay", "--upto", str(correction), "--json").stdout)
    assert before["status"]["eligibility_deviations"] == []
    assert [d["text"] for d in after["status"]["eligibility_deviations"]] == [EXPECTED]
    replayed = site.run("replay", "--upto", str(correction)).stdout
    assert f"  major: {EXPECTED}" in replayed.splitlines()
    assert replayed.count("P002 enrolled but no longer eligible") == 1
