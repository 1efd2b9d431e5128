"""Property: the derived cohort state depends only on the facts as they finally stand. A
random history of doses, AEs and adjudications written wrongly first and then put right by
corrections gives the same cohort counts, next step and per-patient DLT outcome as the same
history written correctly in the first place."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.trial_helpers import (
    NEUTROPENIA,
    NOW,
    START,
    adjudication,
    adverse_event,
    at,
    day,
    enrolled_patient,
    nct_protocol,
    roster,
)
from trialctl.domain.ctcae_terms import terms_for
from trialctl.domain.dlt_rules import DltContext, unmet_conditions
from trialctl.domain.facts import Correction, CourseCompletion, Dose
from trialctl.domain.patient import Patient, dlt_window
from trialctl.domain.rules import ATTRIBUTIONS
from trialctl.domain.trial import Trial

PROTOCOL = nct_protocol()
TERMS = terms_for(PROTOCOL.dlt.ctcae_version)
RULES = [r.code for r in PROTOCOL.dlt.rules]
TERM_CHOICES = [NEUTROPENIA, "Platelets", "Fatigue (asthenia, lethargy, malaise)", "Nausea"]


@dataclass(frozen=True)
class Facts:
    """One patient's course 1 facts, as they should finally stand."""

    dose_offset: int
    term: str
    grade: int
    attribution: str
    onset_offset: int
    duration: int | None  # None: unresolved
    assessed_after: int  # the adjudication's date, days after onset
    is_dlt: bool
    rule: str | None

    @property
    def window(self) -> tuple[Any, Any]:
        return dlt_window(START + timedelta(days=self.dose_offset), PROTOCOL)

    def ae_values(self) -> dict[str, Any]:
        resolved = None if self.duration is None else day(self.onset_offset + self.duration)
        return {"term": self.term, "grade": self.grade, "attribution": self.attribution,
                "onset": day(self.onset_offset), "resolved_on": resolved, "coded": True}

    def meets(self, rule: str) -> bool:
        context = DltContext(self.window, START + timedelta(days=self.decided_offset), TERMS)
        return not unmet_conditions(PROTOCOL.dlt.rule(rule), self.ae_values(), context)

    @property
    def decided_offset(self) -> int:
        return self.onset_offset + self.assessed_after


@st.composite
def facts(draw: st.DrawFn) -> Facts:
    drawn = Facts(
        dose_offset=draw(st.integers(3, 6)),
        term=draw(st.sampled_from(TERM_CHOICES)),
        grade=draw(st.integers(1, 4)),
        attribution=draw(st.sampled_from(ATTRIBUTIONS)),
        onset_offset=draw(st.integers(3, 30)),
        duration=draw(st.none() | st.integers(0, 10)),
        assessed_after=draw(st.integers(0, 10)),
        is_dlt=False,
        rule=None,
    )
    met = [rule for rule in RULES if drawn.meets(rule)]
    if met and draw(st.booleans()):
        # Only an adjudication the rules accept can be recorded without an override.
        return Facts(**{**drawn.__dict__, "is_dlt": True, "rule": draw(st.sampled_from(met))})
    return drawn


def written(trial: Trial, patient: Patient, f: Facts) -> None:
    """Record the facts as they are."""
    patient.give_dose(Dose(agent=PROTOCOL.escalated_agent.name, dose="300", unit="mg/day",
                           course=1, day=1, given_at=at(f.dose_offset)), PROTOCOL, NOW)
    values = f.ae_values()
    patient.report_adverse_event(adverse_event(
        values["term"], values["grade"], values["onset"], attribution=values["attribution"],
        resolved_on=values["resolved_on"]), PROTOCOL, NOW)
    patient.adjudicate_dlt(adjudication(day(f.decided_offset), f.rule, is_dlt=f.is_dlt),
                           PROTOCOL, NOW)


def corrected(trial: Trial, patient: Patient, wrong: Facts, right: Facts) -> None:
    """Record `wrong`, then correct every differing input to `right`: dose date first (it
    moves the window), then the AE, then the adjudication, as a site would."""
    written(trial, patient, wrong)

    def correct(kind: str, changes: dict[str, Any]) -> None:
        version = next(v for v, f in patient.facts.items() if f["kind"] == kind)
        current = patient.facts[version]["values"]
        changes = {k: v for k, v in changes.items() if current[k] != v}
        if changes:
            patient.correct(Correction(target_version=version, changes=changes,
                                       reason="source document verification"), PROTOCOL, NOW)

    correct("dose", {"given_at": at(right.dose_offset)})
    correct("adverse-event", right.ae_values())
    correct("dlt-adjudication", {"is_dlt": right.is_dlt, "rule_code": right.rule,
                                 "decided_on": day(right.decided_offset)})


def derived(trial: Trial) -> dict[str, Any]:
    status = trial.status(roster(trial))
    patients = {
        pid: {k: v for k, v in p.summary(PROTOCOL).items() if k != "corrections"}
        for pid, p in roster(trial).items()
    }
    judged = {pid: [{k: d[k] for k in ("ae_id", "is_dlt", "rule_code", "counts", "unmet")}
                    for d in p.judged_dlts(PROTOCOL)] for pid, p in roster(trial).items()}
    return {"cohorts": status["cohorts"], "next": status["next"], "patients": patients,
            "judged": judged}


def build(histories: list[tuple[Facts, Facts]], with_corrections: bool) -> dict[str, Any]:
    trial = Trial.register(PROTOCOL, NOW)
    for number, (wrong, right) in enumerate(histories, start=1):
        patient = enrolled_patient(trial, f"P{number:03d}")
        if with_corrections:
            corrected(trial, patient, wrong, right)
        else:
            written(trial, patient, right)
        patient.complete_course(CourseCompletion(course=1, completed_on=day(40),
                                                 not_evaluable_reason=None), PROTOCOL, NOW)
    return derived(trial)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(facts(), facts()), min_size=1, max_size=3))
def test_corrections_give_the_state_of_the_history_written_right(
    histories: list[tuple[Facts, Facts]],
) -> None:
    assert build(histories, with_corrections=True) == build(histories, with_corrections=False)
