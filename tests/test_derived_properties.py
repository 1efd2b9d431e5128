"""Property: the derived cohort state depends only on the facts as they finally stand. A
random history of doses, AEs and adjudications written wrongly first and then put right by
corrections gives the same cohort counts, next step and per-patient DLT outcome as the same
history written correctly in the first place: on the aggregates alone, and signed into a
ledger, where after every entry the read models also equal a replay up to that position."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.trial_helpers import (
    NEUTROPENIA,
    NOW,
    ROOT,
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
from trialctl.domain.facts import (
    Consent,
    Correction,
    CourseCompletion,
    Dose,
    Enrolment,
    Fact,
    Screening,
)
from trialctl.domain.patient import Patient, dlt_window
from trialctl.domain.protocol_file import load_protocol
from trialctl.domain.rules import ATTRIBUTIONS
from trialctl.domain.trial import Trial
from trialctl.ledger.application import TrialLedger, UnlockedUser
from trialctl.ledger.demo import screening_values
from trialctl.ledger.location import resolve_ledger
from trialctl.ledger.replay import replay_trial
from trialctl.ledger.requests import PatientStep, Registration
from trialctl.ledger.trials import TrialActions

PROTOCOL = nct_protocol()
PROTOCOL_TEXT = (ROOT / "protocols" / "NCT00084513.toml").read_text(encoding="utf-8")
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


# -- the same properties through the ledger: signed entries, read models and replay -----

@dataclass
class _Site:
    records: TrialActions
    staff: dict[str, UnlockedUser]
    trials: int = 0


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Site]:
    """One ledger for the module (keys are costly to seal); each example its own trial."""
    directory = tmp_path_factory.mktemp("derived")
    app = TrialLedger(resolve_ledger(str(directory / "ledger.sqlite")), create=True,
                      keys_home=directory / "keys")
    app.initialise("properties", "alice", "Alice Adams", "alice-password")
    alice = app.unlock("alice", "alice-password")
    for user, role in (("pat", "principal-investigator"), ("ivan", "investigator"),
                       ("mona", "monitor")):
        app.register_user(alice, user, user.title(), [role], f"{user}-password")
    staff = {u: app.unlock(u, f"{u}-password") for u in ("pat", "ivan", "mona")}
    yield _Site(TrialActions(app), staff)
    app.close()


def _new_trial(site: _Site) -> str:
    """A trial of the shipped protocol under a protocol id of its own."""
    site.trials += 1
    protocol_id = f"{PROTOCOL.id}-{site.trials}"
    text = PROTOCOL_TEXT.replace(f'id = "{PROTOCOL.id}"', f'id = "{protocol_id}"', 1)
    site.records.perform(Registration(load_protocol(text)), site.staff["pat"], NOW)
    return protocol_id


def _record(site: _Site, trial: str, patient: str, user: str, fact: Fact) -> None:
    site.records.perform(PatientStep(trial, patient, fact), site.staff[user], NOW)


def _write_history(site: _Site, trial: str, histories: list[tuple[Facts, Facts]],
                   with_corrections: bool, after_each: Callable[[], None]) -> None:
    """The histories as a site records them, signed; `after_each` runs after every entry."""
    def record(patient: str, user: str, fact: Fact) -> None:
        _record(site, trial, patient, user, fact)
        after_each()

    for number, (wrong, right) in enumerate(histories, start=1):
        pid = f"P{number:03d}"
        record(pid, "mona", Consent(consent_version="2.1", signed_on=day(0)))
        record(pid, "mona", Screening(values=screening_values(START + timedelta(days=2)),
                                      screened_on=day(2)))
        record(pid, "mona", Enrolment(enrolled_on=day(2)))
        first = wrong if with_corrections else right
        values = first.ae_values()
        record(pid, "ivan", Dose(agent=PROTOCOL.escalated_agent.name, dose="300",
                                 unit="mg/day", course=1, day=1, given_at=at(first.dose_offset)))
        record(pid, "ivan", adverse_event(values["term"], values["grade"], values["onset"],
                                          attribution=values["attribution"],
                                          resolved_on=values["resolved_on"]))
        record(pid, "ivan", adjudication(day(first.decided_offset), first.rule,
                                         is_dlt=first.is_dlt))
        if with_corrections:
            for kind, changes in (
                ("dose", {"given_at": at(right.dose_offset)}),
                ("adverse-event", right.ae_values()),
                ("dlt-adjudication", {"is_dlt": right.is_dlt, "rule_code": right.rule,
                                      "decided_on": day(right.decided_offset)}),
            ):
                patient = site.records.patient(site.records.trial(trial), pid)
                version = next(v for v, f in patient.facts.items() if f["kind"] == kind)
                current = patient.facts[version]["values"]
                differing = {k: v for k, v in changes.items() if current[k] != v}
                if differing:
                    record(pid, "ivan", Correction(target_version=version, changes=differing,
                                                   reason="source document verification"))
        record(pid, "ivan", CourseCompletion(course=1, completed_on=day(40),
                                             not_evaluable_reason=None))


def _ledger_derived(site: _Site, trial: str) -> dict[str, Any]:
    status = site.records.status(trial)
    found = site.records.trial(trial)
    patients = {pid: {k: v for k, v in p.summary(found.protocol).items()
                      if k not in ("corrections", "trial_id")}
                for pid, p in site.records.roster(found).items()}
    return {"cohorts": status["cohorts"], "next": status["next"], "patients": patients}


@settings(max_examples=4, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(facts(), facts()), min_size=1, max_size=2))
def test_signed_corrections_give_the_state_written_right_and_replay_equals_read_models(
    site: _Site, histories: list[tuple[Facts, Facts]],
) -> None:
    """(a) the signed, corrected history derives what the history written right derives;
    (b) after every entry, `status` from the read models equals a replay of the entries up
    to that position."""
    recorder = site.records.ledger.signed_recorder
    corrected_trial = _new_trial(site)

    def replay_equals_read_model() -> None:
        upto = recorder.tree_size() - 1
        replayed = replay_trial(site.records, corrected_trial, upto, None)["status"]
        assert site.records.status(corrected_trial) == replayed, upto

    _write_history(site, corrected_trial, histories, True, replay_equals_read_model)
    right_trial = _new_trial(site)
    _write_history(site, right_trial, histories, False, lambda: None)
    assert _ledger_derived(site, corrected_trial) == _ledger_derived(site, right_trial)
