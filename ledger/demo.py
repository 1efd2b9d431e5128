"""`trialctl demo`: a complete, realistic trial of the shipped protocol on a fresh ledger,
recorded through the same `TrialActions` requests as `trialctl record`, then verified.

The story (de-escalation on, four imatinib levels): cohort 1 at level 1 — one patient
withdraws before course 1 ends and is replaced, none of three has a DLT → escalate; level 2
sees one DLT in three → expand; the expansion has none (1 of 6) → escalate; level 3 sees two
DLTs → level 2 already holds six patients with one DLT, so the MTD is level 2. Along the way:
one screened patient is ineligible and refused enrollment, every AE term is coded against
CTCAE v3.0 but one recorded uncoded, a dose is corrected, responses are assessed by RECIST
and circulating tumour cells are counted. Last, source verification finds that the level 2
DLT's neutropenia was grade 3, not 4: the correction makes that DLT stop counting (it no
longer meets neutropenia_g4), so the decisions that counted it show as made on data since
corrected. Then the monitor's work (a review voided by a correction, a query, a re-consent,
con-meds and deviations, a visit entered as one batch file), and the site's catch-up from its
source documents, one batch file a cohort: every assessment the protocol's schedule asks
until each patient left the study (level 1 progressed at week 9; level 2 responded, then
progressed at week 18; the serious diarrhoea and the level 3 DLTs ended treatment). One
patient, P010, is still on study, and the schedule shows exactly one assessment overdue: P010's
week 27 tumour assessment, whose visit file held the CTC count and ANC but no scan.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

from trialctl.domain.facts import (
    AdverseEvent,
    Conmed,
    Consent,
    Correction,
    CourseCompletion,
    Deviation,
    DltAdjudication,
    Dose,
    DoseChange,
    Enrolment,
    Fact,
    Lab,
    Observation,
    Response,
    Screening,
    Withdrawal,
)
from trialctl.domain.protocol import Protocol
from trialctl.domain.protocol_file import load_protocol
from trialctl.domain.recist import TargetLesion
from trialctl.domain.rules import TrialRuleError
from trialctl.ledger.application import TrialLedger, UnlockedUser
from trialctl.ledger.batch import record_batch
from trialctl.ledger.batch_lines import read_lines
from trialctl.ledger.co_signing import CoSign, CoSignActions
from trialctl.ledger.location import resolve_ledger
from trialctl.ledger.requests import CohortDecision, PatientStep, Registration
from trialctl.ledger.schedule import schedule_rows
from trialctl.ledger.trials import Recorded, TrialActions
from trialctl.ledger.verify import VerificationReport, verify_ledger

DEMO_PROTOCOL = "NCT00084513.toml"
DEMO_USERS = {
    "alice": ("Alice Adams (admin)", ["admin"]),
    "pat": ("Dr Pat Park (PI)", ["principal-investigator"]),
    "ivan": ("Dr Ivan Ito", ["investigator"]),
    "mona": ("Mona Moss, RN (monitor)", ["monitor"]),
}


def demo_password(user_id: str) -> str:
    return f"demo-{user_id}-password"


def shipped_protocol(name: str = DEMO_PROTOCOL) -> Protocol:
    text = resources.files("trialctl.protocols").joinpath(name).read_text(encoding="utf-8")
    return load_protocol(text)


def screening_values(screened_on: date, **changes: Any) -> dict[str, Any]:
    """Screening values of a patient who meets every NCT00084513 criterion."""
    values: dict[str, Any] = {
        "her2_ihc_score": "3+", "her2_fish_positive": False, "histologic_confirmation": True,
        "recurrent_or_metastatic": True, "disease_assessable": "measurable",
        "carcinomatous_meningitis": False, "uncontrolled_brain_metastases": False,
        "prior_brain_metastases": False, "age_years": 57, "ecog": 1, "anc_per_mm3": 2400,
        "platelets_per_mm3": 215000, "alt_u_l": 31, "alt_uln_u_l": 40, "ast_u_l": 28,
        "ast_uln_u_l": 40, "alkaline_phosphatase_u_l": 110,
        "alkaline_phosphatase_uln_u_l": 120, "bilirubin_mg_dl": "0.7",
        "chronic_liver_disease": False, "creatinine_mg_dl": "0.9", "lvef_percent": 61,
        "lvef_lln_percent": 50, "uncontrolled_cardiovascular_disease": False,
        "last_myocardial_infarction_date": "never",
        "ischemic_heart_disease_on_medication": False, "congestive_heart_failure": False,
        "uncontrolled_pulmonary_disease": False, "pregnant_or_nursing": False,
        "childbearing_potential": False, "pregnancy_test": "not done", "fertile": False,
        "barrier_contraception_agreed": True, "active_infection": False,
        "concurrent_growth_factors": False, "concurrent_other_biologics": False,
        "last_chemotherapy_date": (screened_on - timedelta(days=45)).isoformat(),
        "last_nitrosourea_date": "never", "concurrent_chemotherapy": False,
        "recovered_from_prior_therapy": True,
        "last_radiotherapy_date": (screened_on - timedelta(days=120)).isoformat(),
        "last_major_surgery_date": "never",
        "last_antibiotic_date": (screened_on - timedelta(days=30)).isoformat(),
        "concurrent_parenteral_antibiotics": False, "concurrent_other_anticancer_agents": False,
        "concurrent_investigational_drugs": False, "therapeutic_warfarin": False,
    }
    values.update(changes)
    return values


@dataclass(frozen=True)
class DemoUser:
    user_id: str
    name: str
    roles: list[str]
    password: str  # a demo's passwords are no secret: they are printed for the user to try


@dataclass
class DemoResult:
    ledger: str
    home: str
    status: dict[str, Any]
    report: VerificationReport
    entries: int
    users: list[DemoUser]


class _Story:
    def __init__(self, records: TrialActions, actors: dict[str, UnlockedUser],
                 protocol: Protocol, start: date, say: Callable[[str], None]) -> None:
        self.records = records
        self.actors = actors
        self.protocol = protocol
        self.start = start
        self.say = say
        self.next_number = 1

    @property
    def now(self) -> datetime:
        """Each action is recorded at the moment it is taken, as at a real site."""
        return datetime.now(UTC)

    def record(self, user: str, patient: str, fact: Fact) -> Recorded:
        return self.records.perform(PatientStep(None, patient, fact), self.actors[user], self.now)

    def day(self, offset: int) -> str:
        return (self.start + timedelta(days=offset)).isoformat()

    def at(self, offset: int) -> str:
        return f"{self.day(offset)}T09:30:00+00:00"

    def new_patient(self, offset: int, **screening: Any) -> str:
        patient = f"P{self.next_number:03d}"
        self.next_number += 1
        self.record("mona", patient, Consent(consent_version="2.1", signed_on=self.day(offset)))
        screened = self.start + timedelta(days=offset + 2)
        values = screening_values(screened, **screening)
        result = self.record("mona", patient,
                             Screening(values=values, screened_on=self.day(offset + 2)))
        eligibility = result.summary["eligibility"]
        if not eligibility["eligible"]:
            self.say(f"{patient} screened: NOT eligible ({', '.join(eligibility['failed'])})")
            return patient
        self.record("mona", patient, Enrolment(enrolled_on=self.day(offset + 4)))
        return patient

    def dose_course(self, patient: str, level: int, course: int, offset: int) -> None:
        imatinib = self.protocol.escalated_agent
        own = self.protocol.level(level)
        trastuzumab = next(a for a in self.protocol.agents if not a.is_escalated)
        fixed = trastuzumab.dose_for_course(course)
        self.record("ivan", patient, Dose(agent=trastuzumab.name, dose=str(fixed.dose),
                                          unit=fixed.unit, course=course, day=1,
                                          given_at=self.at(offset)))
        for day in (1, 8, 15):
            self.record("ivan", patient, Dose(agent=imatinib.name, dose=str(own.dose),
                                              unit=own.unit, course=course, day=day,
                                              given_at=self.at(offset + day - 1)))

    def treat(self, patient: str, level: int, offset: int, dlt: bool) -> None:
        """Course 1: doses, then a DLT inside the window or an uneventful completion."""
        self.dose_course(patient, level, 1, offset)
        if dlt:
            self.record("ivan", patient, AdverseEvent(
                ae_id="AE1", term="Neutrophils/granulocytes (ANC/AGC)", grade=4,
                attribution="probable", onset=self.day(offset + 10),
                resolved_on=self.day(offset + 17), coded=True))
            self.record("pat", patient, DltAdjudication(
                ae_id="AE1", is_dlt=True, rule_code="neutropenia_g4",
                decided_on=self.day(offset + 17), override_reason=None))
        else:
            self.record("ivan", patient, AdverseEvent(
                ae_id="AE1", term="Fatigue (asthenia, lethargy, malaise)", grade=1,
                attribution="possible", onset=self.day(offset + 5),
                resolved_on=self.day(offset + 12), coded=True))
        self.record("ivan", patient, CourseCompletion(
            course=1, completed_on=self.day(offset + 21), not_evaluable_reason=None))

    def decide(self) -> dict[str, Any]:
        trial = self.records.trial(None)
        step = trial.expected_step(self.records.roster(trial))
        assert step is not None
        decision = CohortDecision(None, step.action, step.next_level, step.mtd_level, None)
        recorded = self.records.perform(decision, self.actors["pat"], self.now)
        self.say(f"cohort {recorded.summary['cohort_number']}: {step.reason}")
        # The protocol's [[co_signatures]]: the monitor's second signature opens the next
        # cohort.
        if self.records.trial(None).awaiting_co_signature():
            position = int(recorded.entries[0]["position"])
            CoSignActions(self.records.ledger).perform(
                CoSign(None, position, "mona"), self.actors["mona"], self.now)
            self.say(f"cohort {recorded.summary['cohort_number']}: decision #{position} "
                     "co-signed by mona (monitor)")
        return recorded.summary


def dose_reduction(story: _Story, patient: str, offset: int) -> None:
    """Course 2 at level 2: a serious diarrhoea (hospitalised), the imatinib dose reduced to
    level 1 by the protocol's rules, and the later doses given at the reduced level."""
    imatinib, trastuzumab = story.protocol.escalated_agent, story.protocol.fixed_agents[0]
    maintenance = trastuzumab.dose_for_course(2)
    story.record("ivan", patient, Dose(agent=trastuzumab.name, dose=str(maintenance.dose),
                                       unit=maintenance.unit, course=2, day=1,
                                       given_at=story.at(offset)))
    own, reduced = story.protocol.level(2), story.protocol.level(1)
    story.record("ivan", patient, Dose(agent=imatinib.name, dose=str(own.dose), unit=own.unit,
                                       course=2, day=1, given_at=story.at(offset)))
    story.record("ivan", patient, AdverseEvent(
        ae_id="AE2", term="Diarrhea", grade=3, attribution="probable",
        onset=story.day(offset + 2), resolved_on=story.day(offset + 5),
        serious=["hospitalisation"], site_aware_on=story.day(offset + 3)))
    story.record("ivan", patient, DoseChange(
        course=2, action="reduce", to_level=1, reason="toxicity",
        text="grade 3 diarrhoea, hospitalised", effective_on=story.day(offset + 5)))
    for day in (8, 15):
        story.record("ivan", patient, Dose(agent=imatinib.name, dose=str(reduced.dose),
                                           unit=reduced.unit, course=2, day=day,
                                           given_at=story.at(offset + day - 1)))
    story.say(f"{patient}: serious diarrhoea in course 2 (hospitalised); imatinib reduced "
              f"to {reduced.dose} {reduced.unit}, later doses at the reduced level")


def review_scene(story: _Story, patient: str) -> None:
    """Source data verification: the monitor verifies the site's course 1 records of one
    patient; a correction then voids the review of the one it changes, and a query on the
    response assessment is raised, answered and closed."""
    from trialctl.ledger.reviews import QueryOpen, QueryStep, Review, ReviewActions

    actions = ReviewActions(story.records.ledger)
    found = actions.patient(actions.trial(None), patient)
    entries = actions.record_entries(found)
    course = [entries[d["version"]].position for d in found.doses() if d["course"] == 1]
    (ae,) = [a for a in found.adverse_events() if a["ae_id"] == "AE1"]
    cited = (*course, entries[ae["version"]].position)
    actions.perform(Review(None, patient, cited, "mona"), story.actors["mona"], story.now)
    story.record("ivan", patient, Correction(
        target_version=ae["version"], changes={"resolved_on": story.day(57)},
        reason="source document verification: fatigue resolved a day earlier"))
    (line,) = actions.review_status(None, patient)[0]["invalidations"]
    story.say(f"{patient}: {len(cited)} records verified against source by mona; {line}")
    response = entries[found.responses()[-1]["version"]].position
    opened = actions.perform(
        QueryOpen(None, patient, response, "Week 9 lung lesion: please confirm 12 mm on the "
                  "radiology report", "mona"), story.actors["mona"], story.now)
    query_id = opened.summary["query"]
    actions.perform(QueryStep(None, query_id, "answer", "Radiology report checked: 12 mm",
                              "ivan"), story.actors["ivan"], story.now)
    actions.perform(QueryStep(None, query_id, "close", None, "mona"), story.actors["mona"],
                    story.now)
    story.say(f"{patient}: query {query_id} on #{response} raised by mona, answered by ivan, "
              "closed")


def consent_scene(story: _Story, patient: str, offset: int) -> None:
    """The ethics committee approved consent form 2.2 (new safety information): a patient
    still in follow-up re-consents to it at their next visit; a second signature of the
    same version would be refused. Then their assessment schedule, with what is overdue."""
    story.record("mona", patient, Consent(consent_version="2.2", signed_on=story.day(offset)))
    story.say(f"{patient}: re-consented to the amended consent form 2.2")
    # The schedule is read from the facts: the first circulating tumour cell count missing.
    rows = schedule_rows(story.records, None, patient, story.now.date())
    missed = next(r for r in rows if r["state"] == "overdue" and r["assessment"] == "ctc")
    story.say(f"{patient}: schedule shows {missed['name'].lower()} (due {missed['due_on']}) "
              "overdue")


def deviations_scene(story: _Story, prohibited: str, allowed: str) -> None:
    """Con-meds and deviations: G-CSF given on study (prohibited: a detected deviation),
    mini-dose warfarin (allowed), and a deviation a monitor records on that warfarin."""
    story.record("ivan", prohibited, Conmed(
        drug="filgrastim", start=story.day(95), stop=story.day(99), dose="300",
        unit="mcg/day", route="SC", indication="neutropenia"))
    warfarin = story.record("ivan", allowed, Conmed(
        drug="warfarin", start=story.day(90), stop=None, dose="1", unit="mg/day",
        route="oral", indication="central venous catheter prophylaxis"))
    story.record("mona", allowed, Deviation(
        category="procedure", severity="minor",
        text="warfarin started without the baseline INR the protocol's procedures require",
        record=int(warfarin.entries[0]["position"])))
    story.say(f"{prohibited}: filgrastim on study, flagged as a prohibited con-med; "
              f"{allowed}: mini-dose warfarin allowed, a deviation recorded on it")


def batch_scene(story: _Story, directory: Path, patient: str) -> str:
    """A visit entered as a batch file in one command (`trialctl record --from FILE`): the
    latest circulating tumour cell count the schedule found overdue, drawn on its due day,
    with that day's ANC; one unlock, every line through its single command's checks."""
    rows = schedule_rows(story.records, None, patient, story.now.date())
    visit = [r for r in rows if r["state"] == "overdue" and r["assessment"] == "ctc"][-1]
    lines = [
        {"command": "observe", "patient": patient, "kind": "ctc_count", "value": "4",
         "date": visit["due_on"]},
        {"command": "lab", "patient": patient, "test": "anc", "value": "1900",
         "unit": "/mm3", "date": visit["due_on"]},
    ]
    path = directory / f"visit-{patient}.jsonl"
    written = _enter_batch_file(story, path, lines, "mona")
    story.say(f"{patient}: the visit of {visit['due_on']} entered from {path.name} in one "
              f"batch ({written} entries, one signer)")
    return str(visit["due_on"])


@dataclass(frozen=True)
class Followed:
    """What a patient's source documents hold after their first course: the day (story
    offset) they went off study and why, or None while on study; and each tumour
    re-assessment's target lesions (liver, lung, mm) by scheduled week."""

    off_on: int | None = None
    reason: str | None = None
    scans: tuple[tuple[int, str, str], ...] = ()


PROGRESSION, TOXICITY = "disease progression", "unacceptable toxicity"
BASELINE_LESIONS = ["T1:liver:42", "T2:lung:21"]
MARKERS = {1: "moderate", 2: "weak"}  # phosphorylation at baseline, then at week 9


def _enter_batch_file(story: _Story, path: Path, lines: list[dict[str, Any]],
                      user: str) -> int:
    """Write `lines` as a JSON-lines batch file and enter it as `record --from` does, signed
    by `user`; the number of entries written."""
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    outcome = record_batch(story.records.ledger, read_lines(path.read_bytes(), path.name),
                           None, user, lambda: story.actors[user], story.now)
    assert not outcome.refused, outcome.shown()  # the demo's own lines are valid
    return outcome.written


def _week_zero(story: _Story, patient: str) -> date:
    """The patient's first dose day, from which the schedule counts its weeks."""
    found = story.records.patient(story.records.trial(None), patient)
    first = found.first_dose_day(1)
    assert first is not None  # every cohort patient was dosed
    return first


def _week_of(on: str, week_zero: date) -> int:
    return (date.fromisoformat(on) - week_zero).days // 7


def _visit_line(story: _Story, row: dict[str, Any], week_zero: date,
                followed: Followed) -> dict[str, Any]:
    """The record that does one scheduled occurrence, dated its due day."""
    patient, on, number = row["patient_id"], row["due_on"], int(row["occurrence"])
    code = row["assessment"]
    if code == "recist":
        if number == 1:
            return {"command": "response", "patient": patient, "date": on, "baseline": True,
                    "lesion": BASELINE_LESIONS}
        week = _week_of(on, week_zero)
        liver, lung = next((lv, lg) for w, lv, lg in followed.scans if w == week)
        return {"command": "response", "patient": patient, "date": on,
                "lesion": [f"T1:liver:{liver}", f"T2:lung:{lung}"]}
    if code == "labs":
        # Haemoglobin: an ANC sample would become the lab series a neutropenia DLT's
        # duration is read from, and these day-1 counts say nothing of the nadir.
        return {"command": "lab", "patient": patient, "test": "haemoglobin", "value": "12.8",
                "unit": "g/dL", "lln": "12.0", "date": on, "course": number, "day": 1}
    assessment = next(a for a in story.protocol.schedule if a.code == code)
    value = str(max(2, 8 - number)) if code == "ctc" else MARKERS[number]
    return {"command": "observe", "patient": patient, "kind": assessment.observation,
            "value": value, "date": on}


def source_visits_scene(story: _Story, directory: Path, cohorts: list[list[str]],
                        followed: dict[str, Followed], chased: tuple[str, str]) -> None:
    """The site enters each cohort's visits from its source documents, one batch file a
    cohort signed by the investigator: every assessment the protocol's schedule asks of
    each patient until they left the study (baseline, circulating tumour cells, AKT, ERK
    and KIT phosphorylation, labs each course, RECIST), and the day they went off study.
    One is left out on purpose: `chased` (patient, due day), the tumour assessment of a
    visit whose batch file held no scan, the one overdue assessment a monitor chases."""
    today = story.now.date()
    for number, patients in enumerate(cohorts, start=1):
        lines: list[dict[str, Any]] = []
        for patient in patients:
            plan = followed.get(patient, Followed())
            week_zero = _week_zero(story, patient)
            last = None if plan.off_on is None else story.start + timedelta(days=plan.off_on)
            for row in schedule_rows(story.records, None, patient, today):
                left_out = (patient, row["due_on"]) == chased and row["assessment"] == "recist"
                if row["state"] != "overdue" or left_out:
                    continue
                if last is None or date.fromisoformat(row["due_on"]) <= last:
                    lines.append(_visit_line(story, row, week_zero, plan))
            if plan.off_on is not None:
                lines.append({"command": "off-study", "patient": patient,
                              "date": story.day(plan.off_on), "reason": plan.reason})
        path = directory / f"visits-cohort-{number}.jsonl"
        written = _enter_batch_file(story, path, lines, "ivan")
        story.say(f"cohort {number}: visits entered from source in {path.name} "
                  f"({written} entries, one batch)")
    overdue = [r for r in schedule_rows(story.records, None, None, today)
               if r["state"] == "overdue"]
    assert len(overdue) == 1, overdue  # the story's one deliberate gap
    (gap,) = overdue
    week = _week_of(gap["due_on"], _week_zero(story, gap["patient_id"]))
    story.say(f"{gap['patient_id']}: one assessment overdue on the schedule, the week {week} "
              f"{gap['name']} due {gap['due_on']}: the visit entered from "
              f"visit-{gap['patient_id']}.jsonl held no scan")


def run_demo(
    directory: Path, ledger: str | None = None, say: Callable[[str], None] = lambda _: None
) -> DemoResult:
    """Build the demo ledger at `ledger` (default: `directory`/demo.sqlite), which must not
    hold one yet; the demo users' key files go to `directory`/home."""
    home = directory / "home"
    location = resolve_ledger(ledger or str(directory / "demo.sqlite"))
    # The demo users' key files stay with the demo, never in the user's own TRIALCTL_HOME.
    app = TrialLedger(location, create=True, keys_home=home / "keys")
    app.initialise("trialctl demo", "alice", DEMO_USERS["alice"][0], demo_password("alice"))
    actors = {"alice": app.unlock("alice", demo_password("alice"))}
    for user_id, (name, roles) in DEMO_USERS.items():
        if user_id != "alice":
            app.register_user(actors["alice"], user_id, name, roles, demo_password(user_id))
            actors[user_id] = app.unlock(user_id, demo_password(user_id))
    say("ledger, admin and three staff created; each has a sealed Ed25519 key")

    protocol = shipped_protocol()
    records = TrialActions(app)
    records.perform(Registration(protocol), actors["pat"], datetime.now(UTC))
    say(f"trial {protocol.id} registered from its protocol ({protocol.num_levels} levels)")
    story = _Story(records, actors, protocol, date.today() - timedelta(days=330), say)

    # Cohort 1, level 1: one patient is ineligible, one withdraws and is replaced.
    story.new_patient(0, anc_per_mm3=1200, bilirubin_mg_dl="1.6")
    try:
        story.record("mona", "P001", Enrolment(enrolled_on=story.day(4)))
    except TrialRuleError as refusal:
        say(f"P001 enrollment refused: {refusal}")
    cohort = [story.new_patient(1) for _ in range(3)]
    story.dose_course(cohort[0], 1, 1, 6)
    story.record("mona", cohort[0], Withdrawal(withdrawn_on=story.day(12),
                                                reason="moved out of state"))
    say(f"{cohort[0]} withdrew consent before course 1 ended: replaced in cohort 1")
    cohort.append(story.new_patient(5))
    for patient in cohort[1:]:
        story.treat(patient, 1, 10, dlt=False)
    story.decide()

    # Cohort 2, level 2: one DLT in three → expansion.
    second = [story.new_patient(40 + i) for i in range(3)]
    for index, patient in enumerate(second):
        story.treat(patient, 2, 46, dlt=index == 1)
    story.decide()
    third = [story.new_patient(80 + i) for i in range(3)]
    for patient in third:
        story.treat(patient, 2, 86, dlt=False)
    story.decide()

    # Cohort 4, level 3: two DLTs → MTD level 2 (six patients, one DLT, behind it).
    fourth = [story.new_patient(120 + i) for i in range(3)]
    for index, patient in enumerate(fourth):
        story.treat(patient, 3, 126, dlt=index < 2)
    final = story.decide()

    # A correction, responses and secondary observations.
    wrong = records.patient(records.trial(None), second[0]).doses()[1]
    # The day stays (day 1 is the course's first dose); the diary had the wrong hour.
    story.record("ivan", second[0], Correction(
        target_version=wrong["version"], changes={"given_at": f"{story.day(46)}T14:00:00+00:00"},
        reason="dosing diary: taken after lunch, not at 09:30"))
    say(f"{second[0]}: dose time corrected (version {wrong['version']} kept, correction signed)")
    week_nine = {second[0]: ("25", "17"), second[1]: ("38", "20"), second[2]: ("24", "12")}
    for pid, (liver, lung) in week_nine.items():
        story.record("ivan", pid, Response(
            assessed_on=story.day(44), baseline=True, new_lesions=False,
            non_target_progression=False,
            lesions=(TargetLesion("T1", "liver", Decimal("42")),
                     TargetLesion("T2", "lung", Decimal("21")))))
        followed = story.record("ivan", pid, Response(
            assessed_on=story.day(44 + 63), baseline=False, new_lesions=False,
            non_target_progression=False,
            lesions=(TargetLesion("T1", "liver", Decimal(liver)),
                     TargetLesion("T2", "lung", Decimal(lung)))))
        story.record("mona", pid, Observation(kind="ctc_count", value="7",
                                              observed_on=story.day(44)))
        say(f"{pid}: RECIST response at week 9 = {followed.summary['response']}")

    # A lab series that grades the level 2 DLT: ANC falls to grade 4 for 7 days.
    neutropenic = second[1]
    for offset, anc in ((53, "1200"), (56, "400"), (59, "300"), (63, "1100")):
        graded = story.record("ivan", neutropenic, Lab(
            test="anc", value=anc, unit="/mm3", collected_on=story.day(offset), course=1,
            day=offset - 45, uln=None, lln=None))
    say(f"{neutropenic}: ANC series graded by CTCAE v3.0 (last: {graded.summary['grading']})")
    dose_reduction(story, third[0], offset=107)
    say(f"MTD declared: level {final['mtd_level']}")

    # An AE term outside the CTCAE list, recorded uncoded: shown as such in every listing.
    story.record("ivan", third[0], AdverseEvent(
        ae_id="AE3", term="Periorbital oedema", grade=1, attribution="probable",
        onset=story.day(100), resolved_on=story.day(110), coded=False))
    say(f"{third[0]}: AE3 'Periorbital oedema' recorded uncoded")
    # Source-document verification: the level 2 DLT was grade 3 neutropenia.
    dlt_patient = second[1]
    (ae,) = records.patient(records.trial(None), dlt_patient).adverse_events()
    story.record("ivan", dlt_patient, Correction(
        target_version=ae["version"], changes={"grade": 3},
        reason="source document verification: ANC nadir was grade 3"))
    say(f"{dlt_patient}: AE1 corrected to grade 3; its DLT no longer meets neutropenia_g4, "
        "so the decisions that counted it are shown as made on data since corrected")

    review_scene(story, second[2])
    consent_scene(story, third[1], offset=150)
    deviations_scene(story, third[2], third[1])
    visit = batch_scene(story, directory, third[1])
    # After course 1: who progressed at which scan, who stopped for toxicity, who is still
    # on study. Level 1 progressed at week 9; level 2 responded, then progressed at week
    # 18 (P010 responds still); the serious diarrhoea and the level 3 DLTs ended treatment.
    source = {
        **{p: Followed(73, PROGRESSION, ((9, "50", "27"),)) for p in cohort[1:]},
        second[0]: Followed(172, PROGRESSION, ((18, "32", "20"),)),
        second[1]: Followed(172, PROGRESSION, ((18, "45", "26"),)),
        second[2]: Followed(172, PROGRESSION, ((18, "30", "15"),)),
        third[0]: Followed(127, TOXICITY),
        third[1]: Followed(scans=((9, "28", "14"), (18, "26", "13"))),
        third[2]: Followed(149, PROGRESSION, ((9, "50", "27"),)),
        fourth[0]: Followed(147, TOXICITY),
        fourth[1]: Followed(147, TOXICITY),
        fourth[2]: Followed(189, PROGRESSION, ((9, "50", "27"),)),
    }
    source_visits_scene(story, directory, [cohort, second, third, fourth], source,
                        (third[1], visit))
    status = records.status(None)
    report = verify_ledger(app.signed_recorder, location.display())
    entries = app.signed_recorder.tree_size()
    app.close()
    users = [DemoUser(user_id, name, roles, demo_password(user_id))
             for user_id, (name, roles) in DEMO_USERS.items()]
    return DemoResult(location.display(), str(home), status, report, entries, users)
