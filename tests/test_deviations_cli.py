"""`trialctl record deviation` and `record conmed` as a site uses them, on SQLite and
PostgreSQL: a prohibited con-med is flagged in `status` and `patient` (table and --json),
a monitor's deviation citing its entry acknowledges it, `log` lists it, a correction of
the con-med clears the flag, and bad input is refused in one line with nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.dosing_site import DosingSite, open_site
from tests.trial_helpers import day


@pytest.fixture
def site(ledger_url: str, home: Path, tmp_path: Path) -> DosingSite:
    site = open_site(ledger_url, tmp_path)
    site.enroll("P001")
    site.enroll("P002", offset=1)
    return site


def conmed(site: DosingSite, drug: str, *extra: str, patient: str = "P001") -> int:
    recorded = json.loads(site.record("conmed", patient, "--drug", drug, "--start", day(5),
                                      *extra).stdout)
    return int(recorded["entries"][0]["position"])


def deviations(site: DosingSite, patient: str = "P001") -> list[dict[str, object]]:
    listed = site.patient(patient)["patient"]["deviations"]
    assert isinstance(listed, list)
    return listed


def test_a_prohibited_conmed_is_flagged_then_acknowledged(site: DosingSite) -> None:
    position = conmed(site, "Neupogen", "--route", "SC", "--indication", "neutropenia")
    conmed(site, "warfarin", "--dose", "1", "--unit", "mg/day", "--route", "oral")

    (flagged,) = deviations(site)
    assert (flagged["source"], flagged["category"], flagged["severity"], flagged["record"]) \
        == ("detected", "prohibited-medication", "major", position)
    status = site.run("status").stdout
    assert "deviations of P001: 1 (0 recorded, 1 detected)" in status
    assert "major: Neupogen" in status
    counts = json.loads(site.run("status", "--json").stdout)["deviations"]
    assert [(c["patient_id"], c["detected"]) for c in counts] == [("P001", 1)]
    table = site.run("patient", "P001").stdout
    assert "Protocol deviations" in table and f"#{position}" in table
    assert "Concomitant medications" in table and "1 mg/day" in table

    site.record("deviation", "P001", "--category", "prohibited-medication", "--severity",
                "major", "--text", "G-CSF given by the ward", "--record", str(position),
                user="mona")
    (acknowledged,) = deviations(site)
    assert (acknowledged["source"], acknowledged["record"]) == ("recorded", position)
    assert "Neupogen" in str(acknowledged["acknowledges"])
    assert "deviations of P001: 1 (1 recorded, 0 detected)" in site.run("status").stdout
    logged = site.run("log", "--type", "DeviationRecorded", "--json").stdout.splitlines()
    assert len(logged) == 1 and json.loads(logged[0])["role"] == "monitor"
    assert "Patient.DeviationRecorded" in site.run("patient", "P001", "--csv").stdout


def test_a_corrected_dose_clears_the_flag(site: DosingSite) -> None:
    conmed(site, "warfarin", "--dose", "2", "--unit", "mg/day", "--route", "oral")
    assert len(deviations(site)) == 1
    version = site.patient()["patient"]["conmeds"][0]["version"]
    site.record("correct", "P001", "--version", str(version), "--set", "dose=1", "--reason",
                "prescription re-read")
    assert deviations(site) == []


# (what is typed, by whom, what the one line of refusal says); OTHER: P002's entry.
REFUSED = [
    (("deviation", "P001", "--category", "paperwork", "--severity", "minor", "--text", "x"),
     "mona", "category 'paperwork' is not one of"),
    (("deviation", "P001", "--category", "other", "--severity", "minor", "--text", "x",
      "--record", "OTHER"), "mona", "is not an entry of P001"),
    (("deviation", "P001", "--category", "other", "--severity", "minor", "--text", "x",
      "--record", "99999"), "mona", "#99999 is not an entry of P001"),
    (("conmed", "P001", "--drug", "warfarin", "--start", day(5), "--dose", "1"),
     "ivan", "needs its unit"),
    (("conmed", "P001", "--drug", "warfarin", "--start", "2026-13-01"), "ivan", "date"),
    (("conmed", "P001", "--drug", "warfarin", "--start", day(5)), "alice",
     "roles (admin) may record trialctl.Patient.ConmedRecorded"),
]


def test_bad_input_is_refused_in_one_line(site: DosingSite) -> None:
    """One site for every case (each a new ledger would be slow): nothing is written."""
    other = str(conmed(site, "ondansetron", patient="P002"))
    before = site.entries()
    for args, user, message in REFUSED:
        typed = tuple(other if a == "OTHER" else a for a in args)
        result = site.record(*typed, user=user, check=False)
        assert result.returncode == 1, (typed, result)
        assert message in result.stderr, (typed, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "Traceback" not in result.stderr
    assert site.entries() == before
