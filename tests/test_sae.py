"""Serious adverse events: criteria and the site-aware date give the report-due date by the
protocol's expedited-reporting rule; a death ends treatment and the patient's status says so."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import assert_one_line_error
from tests.dosing_site import open_site
from tests.trial_helpers import day

# A fatal infection, by its CTCAE v3.0 term.
INFECTION = "Infection with normal ANC or Grade 1 or 2 neutrophils"

def test_an_sae_is_due_by_the_protocol_rule_and_a_death_ends_treatment(
    ledger_url: str, home: Path, tmp_path: Path
) -> None:
    site = open_site(ledger_url, tmp_path)
    site.enroll()
    site.imatinib(1, 1, 1, day(5))
    site.record("ae", "P001", "--id", "AE1", "--term", "Diarrhea", "--grade", "3",
                "--attribution", "probable", "--onset", day(6), "--serious", "hospitalisation",
                "--site-aware-on", day(7))
    no_date = site.record("ae", "P001", "--id", "AE2", "--term", "Diarrhea", "--grade", "3",
                          "--attribution", "probable", "--onset", day(6), "--serious",
                          "hospitalisation", check=False)
    assert_one_line_error(no_date, "[rule: sae-aware]")
    not_death = site.record("ae", "P001", "--id", "AE2", "--term", INFECTION, "--grade", "5",
                            "--attribution", "possible", "--onset", day(9), check=False)
    assert_one_line_error(not_death, "[rule: sae-death]")
    site.record("ae", "P001", "--id", "AE2", "--term", INFECTION, "--grade", "5",
                "--attribution", "possible", "--onset", day(9), "--serious", "death",
                "--site-aware-on", day(9))

    shown = site.patient()["patient"]
    assert [ae["report_due"] for ae in shown["adverse_events"]] == ["2026-01-27", "2026-01-21"]
    assert (shown["status"], shown["died_on"]) == ("died", day(9))
    later = site.imatinib(1, 1, 6, day(10), check=False)
    assert_one_line_error(later, "died on 2026-01-14", "[rule: patient-died]")
    table = site.run("patient", "P001").stdout
    assert "P001: died on 2026-01-14" in table and "report due 2026-01-27" in table
