"""Two kinds of withdrawal: from treatment (no more doses, follow-up goes on) and of all
consent (afterwards only safety data); off study may follow either. Domain rules
in-process, the command as real processes on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from tests.conftest import assert_one_line_error
from tests.nct_site import Site
from tests.test_consent import site  # noqa: F401  (the fixture: the shipped protocol)
from tests.trial_helpers import (
    NEUTROPENIA,
    NOW,
    adverse_event,
    at,
    day,
    dose,
    dose_escalated,
    enrolled_patient,
    nct_protocol,
)
from trialctl.domain import journey
from trialctl.domain.facts import (
    Lab,
    Observation,
    OffStudy,
    TreatmentWithdrawal,
    Withdrawal,
)
from trialctl.domain.patient import Patient
from trialctl.domain.rules import TrialRuleError
from trialctl.domain.trial import Trial


def _on_treatment() -> tuple[Trial, Patient]:
    trial = Trial.register(nct_protocol(), NOW)
    patient = enrolled_patient(trial, "P001")
    dose_escalated(patient, trial, 3)
    return trial, patient


def _take(trial: Trial, patient: Patient, fact: object) -> None:
    journey.take(trial, patient, fact, {"P001": patient}, NOW)  # type: ignore[arg-type]


def test_withdrawn_from_treatment_no_doses_but_follow_up_goes_on() -> None:
    trial, patient = _on_treatment()
    _take(trial, patient, TreatmentWithdrawal(withdrawn_on=day(5), reason="patient's wish"))
    assert patient.status == "off-treatment"
    assert patient.outcome(trial.protocol).reason == "withdrawn from treatment: patient's wish"
    level = trial.protocol.level(1)
    with pytest.raises(TrialRuleError, match=r"from treatment on .*\[rule: off-treatment\]"):
        patient.give_dose(dose(trial.protocol.escalated_agent.name, str(level.dose), level.unit,
                               at(6)), trial.protocol, NOW)
    # Follow-up: labs and observations are still recorded.
    _take(trial, patient, Lab(test="anc", value="1500", unit="/mm3", collected_on=day(8),
                              course=None, day=None, uln=None, lln=None))
    _take(trial, patient, Observation(kind="ctc_count", value="4", observed_on=day(8)))
    with pytest.raises(TrialRuleError, match=r"\[rule: on-treatment\]"):
        _take(trial, patient, TreatmentWithdrawal(withdrawn_on=day(9), reason="again"))
    _take(trial, patient, OffStudy(off_on=day(30), reason="follow-up completed"))
    assert patient.status == "off-study"


def test_after_withdrawal_of_all_consent_only_safety_data_then_off_study() -> None:
    trial, patient = _on_treatment()
    _take(trial, patient, Withdrawal(withdrawn_on=day(5), reason="moved away"))
    for fact in (
        Lab(test="anc", value="1500", unit="/mm3", collected_on=day(8), course=None, day=None,
            uln=None, lln=None),
        Observation(kind="ctc_count", value="4", observed_on=day(8)),
        TreatmentWithdrawal(withdrawn_on=day(8), reason="x"),
    ):
        with pytest.raises(TrialRuleError, match=r"\[rule: (after-withdrawal|on-treatment)\]"):
            _take(trial, patient, fact)
    # What was assessed while the patient still consented is entered from the source
    # afterwards; the day after the withdrawal it is refused.
    _take(trial, patient, Observation(kind="ctc_count", value="4", observed_on=day(5)))
    _take(trial, patient, Lab(test="anc", value="1500", unit="/mm3", collected_on=day(4),
                              course=None, day=None, uln=None, lln=None))
    with pytest.raises(TrialRuleError, match=r"assessments made by that day.*after-withdrawal"):
        _take(trial, patient, Observation(kind="ctc_count", value="4", observed_on=day(6)))
    death = replace(adverse_event(NEUTROPENIA, 5, day(9)), serious=["death"],
                    site_aware_on=day(9))
    _take(trial, patient, death)  # a death is safety data
    assert patient.died_on == day(9)
    _take(trial, patient, OffStudy(off_on=day(10), reason="died"))  # refused before
    assert patient.status == "off-study"


def test_withdraw_from_treatment_on_the_command_line(site: Site) -> None:  # noqa: F811
    site.screen_and_enroll("P001")
    withdrawn = site.run("record", "withdraw", "P001", "--from", "treatment", "--date", day(4),
                         "--reason", "patient's wish", "--json", user="ivan")
    [entry] = json.loads(withdrawn.stdout)["entries"]
    assert entry["type"] == "trialctl.Patient.WithdrewFromTreatment"
    assert site.patient("P001")["status"] == "off-treatment"
    refused = site.run("record", "dose", "P001", "--agent", "imatinib mesylate", "--dose", "400",
                       "--unit", "mg/day", "--course", "1", "--day", "1", "--at", at(5),
                       user="ivan", check=False)
    assert_one_line_error(refused, "off-treatment")
    assert_one_line_error(site.run("record", "withdraw", "P001", "--from", "study", "--date",
                                   day(5), user="ivan", check=False), "--from must be")
    off = site.run("record", "off-study", "P001", "--date", day(6), "--reason",
                   "follow-up completed", user="ivan")
    assert off.returncode == 0
    assert site.patient("P001")["status"] == "off-study"

