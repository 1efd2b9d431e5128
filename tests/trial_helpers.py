"""Pure-domain helpers: a trial and its patients built in memory, dates relative to a fixed
day, for tests of the trial rules."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from trialctl.domain import journey
from trialctl.domain.ctcae_terms import terms_for
from trialctl.domain.facts import (
    AdverseEvent,
    Consent,
    CourseCompletion,
    DltAdjudication,
    Dose,
    Enrolment,
    Screening,
)
from trialctl.domain.patient import Patient
from trialctl.domain.protocol import Protocol
from trialctl.domain.protocol_file import load_protocol
from trialctl.domain.trial import Trial
from trialctl.ledger.demo import screening_values

ROOT = Path(__file__).resolve().parent.parent
START = date(2026, 1, 5)
NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)


def nct_protocol() -> Protocol:
    return load_protocol((ROOT / "protocols" / "NCT00084513.toml").read_text(encoding="utf-8"))


def second_protocol() -> Protocol:
    path = ROOT / "tests" / "data" / "protocols" / "second_protocol.toml"
    return load_protocol(path.read_text(encoding="utf-8"))


def second_screening(screened_on: date, **changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "age_years": 40, "ecog": 1, "anc_10e9_l": "1.8", "platelets_10e9_l": 160,
        "haemoglobin_g_dl": "11.2", "bilirubin_umol_l": "12", "alt_u_l": 30,
        "creatinine_clearance_ml_min": 80, "qtcf_ms": 420, "childbearing_potential": False,
        "last_anticancer_therapy_date": (screened_on - timedelta(days=40)).isoformat(),
        "symptomatic_brain_metastases": False,
    }
    values.update(changes)
    return values


def day(offset: int) -> str:
    return (START + timedelta(days=offset)).isoformat()


def at(offset: int) -> str:
    return f"{day(offset)}T09:00:00+00:00"


def screening_for(protocol: Protocol, offset: int, **changes: Any) -> dict[str, Any]:
    screened = START + timedelta(days=offset)
    if protocol.id == "TEST-0002":
        return second_screening(screened, **changes)
    return screening_values(screened, **changes)


# Each in-memory trial's patients: the trial's counts are derived from them.
_ROSTERS: dict[int, tuple[Trial, dict[str, Patient]]] = {}


def roster(trial: Trial) -> dict[str, Patient]:
    """The patients consented to `trial` in this test, by study id."""
    entry = _ROSTERS.get(id(trial))
    if entry is None or entry[0] is not trial:
        entry = (trial, {})
        _ROSTERS[id(trial)] = entry
    return entry[1]


def consented(trial: Trial, patient_id: str, offset: int = 0) -> Patient:
    patient = Patient.consent(trial.id, patient_id, Consent(consent_version="1.0",
                                                            signed_on=day(offset)), NOW)
    roster(trial)[patient_id] = patient
    return patient


def screening(protocol: Protocol, offset: int, **changes: Any) -> Screening:
    return Screening(values=screening_for(protocol, offset, **changes), screened_on=day(offset))


def dose(agent: str, amount: str, unit: str, given_at: str, *, course: int = 1,
         day_of_course: int = 1) -> Dose:
    return Dose(agent=agent, dose=amount, unit=unit, course=course, day=day_of_course,
                given_at=given_at)


NEUTROPENIA = "Neutrophils/granulocytes (ANC/AGC)"  # the CTCAE v3.0 term


def term_for(protocol: Protocol, toxicity: str) -> str:
    """The protocol's CTCAE version's term for a specific toxicity."""
    terms = terms_for(protocol.dlt.ctcae_version).terms.values()
    return next(t.term for t in terms if t.toxicity == toxicity)


def adverse_event(term: str, grade: int, onset: str, *, ae_id: str = "AE1",
                  attribution: str = "probable", resolved_on: str | None = None,
                  coded: bool = True) -> AdverseEvent:
    return AdverseEvent(ae_id=ae_id, term=term, grade=grade, attribution=attribution,
                        onset=onset, resolved_on=resolved_on, coded=coded)


def adjudication(decided_on: str, rule_code: str | None = "neutropenia_g4", *,
                 ae_id: str = "AE1", is_dlt: bool = True,
                 override_reason: str | None = None) -> DltAdjudication:
    return DltAdjudication(ae_id=ae_id, is_dlt=is_dlt, rule_code=rule_code,
                           decided_on=decided_on, override_reason=override_reason)


def enrolled_patient(trial: Trial, patient_id: str, offset: int = 0) -> Patient:
    patient = consented(trial, patient_id, offset)
    patient.screen(screening(trial.protocol, offset + 1), trial.protocol, NOW)
    journey.enroll(trial, patient, Enrolment(enrolled_on=day(offset + 2)), roster(trial), NOW)
    return patient


def dose_escalated(patient: Patient, trial: Trial, offset: int, course: int = 1) -> None:
    protocol = trial.protocol
    assert patient.level is not None
    level = protocol.level(patient.level)
    patient.give_dose(dose(protocol.escalated_agent.name, str(level.dose), level.unit,
                           at(offset), course=course), protocol, NOW)


def run_cohort(trial: Trial, outcomes: str, first_number: int, offset: int) -> list[Patient]:
    """Enroll one patient per letter (N no DLT, T DLT) and evaluate each for course 1."""
    patients = []
    window = trial.protocol.dlt_window_days
    for index, letter in enumerate(outcomes):
        patient = enrolled_patient(trial, f"P{first_number + index:03d}", offset)
        dose_escalated(patient, trial, offset + 3)
        if letter == "T":
            # Grade 4 neutropenia unresolved for 10 days when adjudicated: more than 5 (or 7).
            term = term_for(trial.protocol, "neutropenia")
            patient.report_adverse_event(adverse_event(term, 4, day(offset + 8)),
                                         trial.protocol, NOW)
            patient.adjudicate_dlt(adjudication(day(offset + 18)), trial.protocol, NOW)
        patient.complete_course(CourseCompletion(
            course=1, completed_on=day(offset + 3 + window), not_evaluable_reason=None),
            trial.protocol, NOW)
        patients.append(patient)
    return patients


def follow_the_engine(trial: Trial) -> None:
    step = trial.expected_step(roster(trial))
    assert step is not None
    trial.decide(step.action, step.next_level, step.mtd_level, roster(trial), NOW)
    co_sign_pending(trial)


def co_sign_pending(trial: Trial) -> None:
    """Give the co-signatures the protocol asks for (a domain test has no ledger: the cited
    position and hash stand for the decision's entry)."""
    for waiting in trial.awaiting_co_signature():
        number = waiting["cohort_number"]
        trial.co_sign(number, 1000 + number, f"{number:064x}", NOW)
