"""A serious flag entered in error, or missed, is corrected like any other AE field: a
signed correction with a reason. The SAE reporting lines follow the corrected criteria
(the report-due date is derived again), and a correction is checked as a new record is."""

from __future__ import annotations

from typing import Any

import pytest

from tests.trial_helpers import NOW, adverse_event, at, day, enrolled_patient, nct_protocol
from trialctl.domain.facts import Correction, Dose
from trialctl.domain.patient import Patient
from trialctl.domain.rules import TrialRuleError
from trialctl.domain.trial import Trial


@pytest.fixture
def reported() -> tuple[Trial, Patient, int]:
    """P001 with a grade 3 diarrhoea recorded as not serious; its record version."""
    trial = Trial.register(nct_protocol(), NOW)
    patient = enrolled_patient(trial, "P001")
    protocol = trial.protocol
    level = protocol.level(1)
    patient.give_dose(Dose(agent=protocol.escalated_agent.name, dose=str(level.dose),
                           unit=level.unit, course=1, day=1, given_at=at(3)), protocol, NOW)
    patient.report_adverse_event(adverse_event("Diarrhea", 3, day(6)), protocol, NOW)
    (ae,) = patient.adverse_events()
    return trial, patient, int(ae["version"])


def correct(trial: Trial, patient: Patient, version: int, **changes: Any) -> dict[str, Any]:
    return patient.correct(Correction(target_version=version, changes=changes,
                                      reason="source document: the discharge letter"),
                           trial.protocol, NOW)


def test_a_missed_serious_flag_is_corrected_in_and_then_out(
    reported: tuple[Trial, Patient, int],
) -> None:
    trial, patient, version = reported
    assert patient.sae_reports(trial.protocol) == []

    # As `--set serious=hospitalisation,… --set site_aware_on=…` gives it: text.
    both = "hospitalisation, other_important_medical_event"
    new = correct(trial, patient, version, serious=both, site_aware_on=day(7))
    assert new == {"serious": ["hospitalisation", "other_important_medical_event"],
                   "site_aware_on": day(7)}
    (report,) = patient.sae_reports(trial.protocol)
    # The shipped protocol's 15 days for a serious event that is neither fatal nor
    # life-threatening, from the day the site learned of it.
    assert (report["serious"], report["report_due"]) == (
        ["hospitalisation", "other_important_medical_event"], day(22))
    assert patient.summary(trial.protocol)["serious_adverse_events"] == 1

    correct(trial, patient, version, serious="life_threatening")
    (report,) = patient.sae_reports(trial.protocol)
    assert report["report_due"] == day(14)  # 7 days for a life-threatening one

    correct(trial, patient, version, serious="none", site_aware_on="none")
    assert patient.sae_reports(trial.protocol) == []
    assert patient.summary(trial.protocol)["serious_adverse_events"] == 0
    assert [c["kind"] for c in patient.corrections] == ["adverse-event"] * 3


@pytest.mark.parametrize(("changes", "rule"), [
    ({"serious": "hospitalisation"}, "sae-aware"),  # no site-aware date
    ({"serious": "hospitalised", "site_aware_on": day(7)}, "sae-criteria"),
    ({"serious": "death", "site_aware_on": day(7)}, "sae-death"),  # grade 3 is no death
    ({"site_aware_on": day(7)}, "sae-aware"),  # a date without the flag
], ids=["no-aware-date", "unknown-criterion", "death-not-grade-5", "date-not-serious"])
def test_a_serious_correction_is_checked_as_a_new_record_is(
    reported: tuple[Trial, Patient, int], changes: dict[str, Any], rule: str,
) -> None:
    trial, patient, version = reported
    with pytest.raises(TrialRuleError) as refused:
        correct(trial, patient, version, **changes)
    assert refused.value.rule == rule
    assert patient.corrections == []
