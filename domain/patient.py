"""The patient aggregate: one person's journey through one trial.

consent signed → screening recorded (eligibility evaluated criterion by criterion) →
enrolled (assigned to the open cohort at its level) → doses given → adverse events →
DLTs adjudicated → course 1 completed (DLT-evaluable, or not and replaced) → response
assessments (RECIST 1.0 or 1.1 as the protocol says, computed) → off study, or consent withdrawn.

Each recorded fact is kept by the aggregate version that recorded it. A correction never
edits a fact: it is its own event naming the fact's version, the new values and the reason;
state reads the corrected values, and the audit trail shows both.

What each fact holds, and the checks its values pass, is declared once in `facts`: the
events here take their payload fields from those declarations, and keep the fact on the
record when they are applied. This module holds the rules that read the whole record
(order of steps, the DLT window, RECIST against the baseline), hence its length.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from trialctl.domain.eligibility import evaluate_eligibility
from trialctl.domain.facts import (
    ALLOWED_AFTER_WITHDRAWAL,
    CORRECTABLE,
    FACTS,
    KEPT,
    AdverseEvent,
    Consent,
    Correction,
    CourseCompletion,
    DltAdjudication,
    Dose,
    Enrolment,
    Fact,
    Observation,
    OffStudy,
    Response,
    Screening,
    Withdrawal,
)
from trialctl.domain.ids import TRIALCTL_NAMESPACE
from trialctl.domain.protocol import Protocol
from trialctl.domain.recist import (
    TargetLesion,
    assess_response,
    sum_of_diameters,
    validate_baseline,
)
from trialctl.domain.rules import TrialRuleError, not_before, not_in_future, parse_day, parse_moment

PATIENT_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")


def patient_aggregate_id(trial_id: UUID, patient_id: str) -> UUID:
    return uuid5(TRIALCTL_NAMESPACE, f"patient:{trial_id}:{patient_id}")


def check_patient_id(patient_id: str) -> str:
    if not PATIENT_ID_PATTERN.match(patient_id):
        raise TrialRuleError(
            "patient-id", f"patient id {patient_id!r} must be 1-32 letters, digits, '-' or '_'"
        )
    return patient_id


def dlt_window(first_dose: date, protocol: Protocol) -> tuple[date, date]:
    """The DLT evaluation window: from the first course 1 dose, `dlt_window_days` long."""
    return first_dose, first_dose + timedelta(days=protocol.dlt_window_days - 1)


class FactEvent(Aggregate.Event):
    """An event whose payload is one declared fact; applying it keeps the fact's values on
    the record under the version that recorded it. Subclasses add what else changes."""

    FACT: ClassVar[type[Fact]]

    def payload(self) -> dict[str, Any]:
        return {column.name: getattr(self, column.name) for column in self.FACT.columns()}

    def apply(self, aggregate: Any) -> None:
        if self.FACT.ON_RECORD:
            values = self.payload()
            aggregate.facts[self.originator_version] = {
                "kind": self.FACT.KIND,
                "values": {name: values[name] for name in self.FACT.kept()},
            }


class Patient(Aggregate):
    TOPIC = "trialctl.Patient"

    class Created(Aggregate.Created):
        TOPIC = "trialctl.Patient.Created"  # a base the library requires; never emitted

    class ConsentSigned(Created):
        TOPIC = "trialctl.Patient.ConsentSigned"
        __annotations__ = Consent.event_fields()

    @event(ConsentSigned)
    def __init__(
        self,
        trial_id: str,
        patient_id: str,
        consent_version: str,
        signed_on: str,
        timestamp: datetime,
    ) -> None:
        self.trial_id = trial_id
        self.patient_id = patient_id
        self.consent_version = consent_version
        self.consent_date = signed_on
        self.status = "consented"
        consent = Consent(consent_version=consent_version, signed_on=signed_on)
        self.facts: dict[int, dict[str, Any]] = {
            1: {"kind": Consent.KIND, "values": consent.payload()}
        }
        self.corrections: list[dict[str, Any]] = []
        self.eligibility: dict[str, Any] | None = None
        self.level: int | None = None
        self.cohort_number: int | None = None
        self.enrolled_on: str | None = None
        self.completed_courses: list[int] = []
        self.evaluable: bool | None = None
        self.withdrawn_on: str | None = None

    @staticmethod
    def create_id(trial_id: str, patient_id: str) -> UUID:
        return patient_aggregate_id(UUID(trial_id), patient_id)

    @classmethod
    def consent(cls, trial_id: UUID, patient_id: str, consent: Consent, now: datetime) -> Patient:
        check_patient_id(patient_id)
        if not consent.consent_version.strip():
            raise TrialRuleError("consent-version", "the informed-consent version is required")
        not_in_future(parse_day(consent.signed_on, "consent date"), now.date(), "consent date")
        return cls(
            trial_id=str(trial_id),
            patient_id=patient_id,
            consent_version=consent.consent_version.strip(),
            signed_on=consent.signed_on,
            timestamp=now,
        )

    # -- reading -------------------------------------------------------------------------

    def kept(self, fact: type[Fact]) -> list[dict[str, Any]]:
        """Every fact of one kind on the record, corrections applied, with its version."""
        return [
            {"version": v, **f["values"]}
            for v, f in sorted(self.facts.items())
            if f["kind"] == fact.KIND
        ]

    @property
    def screening_values(self) -> dict[str, Any]:
        screenings = self.kept(Screening)
        return dict(screenings[-1]["values"]) if screenings else {}

    @property
    def screened_on(self) -> str | None:
        screenings = self.kept(Screening)
        return str(screenings[-1]["screened_on"]) if screenings else None

    def doses(self) -> list[dict[str, Any]]:
        return self.kept(Dose)

    def adverse_events(self) -> list[dict[str, Any]]:
        return self.kept(AdverseEvent)

    def adverse_event(self, ae_id: str) -> dict[str, Any]:
        for ae in self.adverse_events():
            if ae["ae_id"] == ae_id:
                return ae
        raise TrialRuleError(
            "known-adverse-event", f"patient {self.patient_id} has no adverse event {ae_id!r}"
        )

    def dlts(self) -> list[dict[str, Any]]:
        return self.kept(DltAdjudication)

    def responses(self) -> list[dict[str, Any]]:
        return self.kept(Response)

    def observations(self) -> list[dict[str, Any]]:
        return self.kept(Observation)

    def first_dose_day(self, course: int = 1) -> date | None:
        days = [
            parse_moment(d["given_at"], "given_at").date()
            for d in self.doses()
            if d["course"] == course
        ]
        return min(days) if days else None

    @property
    def is_enrolled(self) -> bool:
        return self.level is not None

    def summary(self) -> dict[str, Any]:
        return {
            "patient_id": self.patient_id,
            "status": self.status,
            "consent_version": self.consent_version,
            "consent_date": self.consent_date,
            "eligible": None if self.eligibility is None else self.eligibility["eligible"],
            "eligibility_deviation": self.eligibility_deviation(),
            "level": self.level,
            "cohort": self.cohort_number,
            "enrolled_on": self.enrolled_on,
            "doses": len(self.doses()),
            "adverse_events": len(self.adverse_events()),
            "dlts": sum(1 for d in self.dlts() if d["is_dlt"] and d["counts"]),
            "evaluable": self.evaluable,
            "courses_completed": list(self.completed_courses),
            "responses": [r["category"] for r in self.responses()],
            "assessments": self.assessment_schedule(),
            "next_assessment_due": self.next_assessment_due(),
            "corrections": len(self.corrections),
        }

    def eligibility_deviation(self) -> dict[str, Any] | None:
        """Enrolled, then found ineligible by a corrected screening value: a protocol
        deviation to show wherever the patient is, naming the criteria and the correction."""
        if not self.is_enrolled or self.eligibility is None or self.eligibility["eligible"]:
            return None
        failed = list(self.eligibility["failed"])
        correction = [c for c in self.corrections if c["kind"] == Screening.KIND][-1]
        old, new = correction["old_values"]["values"], correction["new_values"]["values"]
        changed = {k: v for k, v in new.items() if old.get(k) != v}
        values = ", ".join(f"{k} = {v}" for k, v in sorted(changed.items()))
        return {
            "failed": failed,
            "corrected": changed,
            "corrected_version": correction["version"],
            "text": f"{self.patient_id} enrolled but no longer eligible: failed "
            f"{', '.join(failed)} (corrected {values}, record version {correction['version']})",
        }

    def assessment_schedule(self) -> list[dict[str, Any]]:
        """Each response assessment with its place on the protocol's schedule."""
        return [
            {
                "version": r["version"],
                "assessed_on": r["assessed_on"],
                "category": r["category"],
                "recist_version": r["recist_version"],
                "scheduled_week": r["scheduled_week"],
                "off_schedule": r["off_schedule"],
            }
            for r in self.responses()
        ]

    def next_assessment_due(self) -> str | None:
        """When the next re-assessment is due; none once the patient has left the study."""
        responses = self.responses()
        if not responses or self.status in ("off-study", "consent-withdrawn"):
            return None
        due = responses[-1]["next_due"]
        return None if due is None else str(due)

    def state(self) -> dict[str, Any]:
        """Everything the patient's record says now, corrections applied."""
        listed = {fact.LISTED_AS: self.kept(fact) for fact in FACTS if fact.LISTED_AS}
        return {
            **self.summary(),
            "eligibility": self.eligibility,
            "screening": self.screening_values,
            **listed,
            "corrections": list(self.corrections),
            "withdrawn_on": self.withdrawn_on,
        }

    # -- guards --------------------------------------------------------------------------

    def may_record(self, kind: str, day: date, now: datetime, what: str) -> None:
        if self.withdrawn_on is not None and kind not in ALLOWED_AFTER_WITHDRAWAL:
            raise TrialRuleError(
                "after-withdrawal",
                f"consent of {self.patient_id} was withdrawn on {self.withdrawn_on}: only "
                "safety follow-up (adverse events, DLT adjudication) may be recorded",
            )
        not_in_future(day, now.date(), what)
        not_before(day, parse_day(self.consent_date, "consent date"), what, "consent")

    def _require_enrolled(self) -> None:
        if not self.is_enrolled:
            raise TrialRuleError("enrolled-first", f"patient {self.patient_id} is not enrolled")

    # -- screening and eligibility -------------------------------------------------------

    class ScreeningRecorded(FactEvent):
        TOPIC = "trialctl.Patient.ScreeningRecorded"
        FACT = Screening
        __annotations__ = Screening.event_fields()

        def apply(self, aggregate: Any) -> None:
            super().apply(aggregate)
            eligibility = self.payload()["eligibility"]
            aggregate.eligibility = eligibility
            aggregate.status = (
                "screened-eligible" if eligibility["eligible"] else "screened-ineligible"
            )

    def screen(self, screening: Screening, protocol: Protocol, now: datetime) -> dict[str, Any]:
        """Record screening values; eligibility is evaluated from them, never typed in."""
        day = parse_day(screening.screened_on, "screening date")
        self.may_record(Screening.KIND, day, now, "screening date")
        if self.is_enrolled:
            raise TrialRuleError(
                "screen-before-enrollment", f"patient {self.patient_id} is already enrolled"
            )
        checked = screening.check(self, protocol, now)
        eligibility = _evaluate(protocol, checked.values, day)
        self._record(self.ScreeningRecorded, checked, now, eligibility=eligibility)
        return eligibility

    # -- enrollment ----------------------------------------------------------------------

    class Enrolled(FactEvent):
        TOPIC = "trialctl.Patient.Enrolled"
        FACT = Enrolment
        __annotations__ = Enrolment.event_fields()

        def apply(self, aggregate: Any) -> None:
            values = self.payload()
            aggregate.level = values["level"]
            aggregate.cohort_number = values["cohort_number"]
            aggregate.enrolled_on = values["enrolled_on"]
            aggregate.status = "on-study"

    def check_can_enroll(self, enrolment: Enrolment, now: datetime) -> None:
        day = parse_day(enrolment.enrolled_on, "enrollment date")
        self.may_record(Enrolment.KIND, day, now, "enrollment date")
        if self.is_enrolled:
            raise TrialRuleError("enroll-once", f"patient {self.patient_id} is already enrolled")
        if self.eligibility is None or self.screened_on is None:
            raise TrialRuleError("screen-first", f"patient {self.patient_id} has not been screened")
        if not self.eligibility["eligible"]:
            failed = ", ".join(self.eligibility["failed"])
            raise TrialRuleError(
                "eligible-only", f"patient {self.patient_id} is not eligible (failed: {failed})"
            )
        not_before(
            day, parse_day(self.screened_on, "screening date"), "enrollment date", "screening"
        )

    def enroll(self, enrolment: Enrolment, level: int, cohort_number: int, now: datetime) -> None:
        self.check_can_enroll(enrolment, now)
        self._record(self.Enrolled, enrolment, now, level=level, cohort_number=cohort_number)

    # -- dosing --------------------------------------------------------------------------

    class DoseGiven(FactEvent):
        TOPIC = "trialctl.Patient.DoseGiven"
        FACT = Dose
        __annotations__ = Dose.event_fields()

    def give_dose(self, dose: Dose, protocol: Protocol, now: datetime) -> None:
        self._require_enrolled()
        self._record(self.DoseGiven, dose.check(self, protocol, now), now)

    # -- adverse events and DLTs ---------------------------------------------------------

    class AdverseEventReported(FactEvent):
        TOPIC = "trialctl.Patient.AdverseEventReported"
        FACT = AdverseEvent
        __annotations__ = AdverseEvent.event_fields()

    def report_adverse_event(
        self, adverse_event: AdverseEvent, protocol: Protocol, now: datetime
    ) -> None:
        if any(ae["ae_id"] == adverse_event.ae_id for ae in self.adverse_events()):
            raise TrialRuleError(
                "unique-adverse-event",
                f"adverse event {adverse_event.ae_id!r} is already recorded; correct it instead",
            )
        self._record(self.AdverseEventReported, adverse_event.check(self, protocol, now), now)

    class DltAdjudicated(FactEvent):
        TOPIC = "trialctl.Patient.DltAdjudicated"
        FACT = DltAdjudication
        __annotations__ = DltAdjudication.event_fields()

        def apply(self, aggregate: Any) -> None:
            super().apply(aggregate)
            if self.payload()["counts"]:
                aggregate.evaluable = True

    def adjudicate_dlt(
        self, adjudication: DltAdjudication, protocol: Protocol, now: datetime
    ) -> bool:
        """Adjudicate an adverse event; returns whether it counts toward cohort decisions:
        only a DLT with onset inside the protocol's evaluation window does."""
        self._require_enrolled()
        ae_id, is_dlt, rule_code = adjudication.ae_id, adjudication.is_dlt, adjudication.rule_code
        ae = self.adverse_event(ae_id)
        day = parse_day(adjudication.decided_on, "adjudication date")
        self.may_record(DltAdjudication.KIND, day, now, "adjudication date")
        not_before(day, parse_day(ae["onset"], "onset"), "adjudication date", "the onset")
        if any(d["ae_id"] == ae_id for d in self.dlts()):
            raise TrialRuleError(
                "adjudicate-once",
                f"adverse event {ae_id} is already adjudicated; correct it instead",
            )
        if is_dlt:
            codes = [r.code for r in protocol.dlt.rules]
            if rule_code not in codes:
                raise TrialRuleError(
                    "dlt-definition",
                    f"a DLT must name the protocol rule it meets ({', '.join(codes)})",
                )
        elif rule_code is not None:
            raise TrialRuleError("dlt-definition", "only a DLT names a DLT rule")
        first = self.first_dose_day(1)
        if first is None:
            window, counts = "no course 1 dose before onset", False
        else:
            start, end = dlt_window(first, protocol)
            onset = parse_day(ae["onset"], "onset")
            counts = is_dlt and start <= onset <= end
            window = f"{start}..{end}"
        self._record(self.DltAdjudicated, adjudication, now, counts=counts, window=window)
        return counts

    # -- courses -------------------------------------------------------------------------

    class CourseCompleted(FactEvent):
        TOPIC = "trialctl.Patient.CourseCompleted"
        FACT = CourseCompletion
        __annotations__ = CourseCompletion.event_fields()

        def apply(self, aggregate: Any) -> None:
            values = self.payload()
            aggregate.completed_courses.append(values["course"])
            if values["course"] == 1 and aggregate.evaluable is None:
                aggregate.evaluable = values["evaluable"]

    def complete_course(
        self, completion: CourseCompletion, protocol: Protocol, now: datetime
    ) -> None:
        self._require_enrolled()
        course = completion.course
        day = parse_day(completion.completed_on, "completion date")
        self.may_record(CourseCompletion.KIND, day, now, "completion date")
        if course != len(self.completed_courses) + 1:
            raise TrialRuleError(
                "course-order",
                f"course {course} is not the next course "
                f"(completed: {self.completed_courses or 'none'})",
            )
        first = self.first_dose_day(course)
        if first is None:
            raise TrialRuleError("dose-first", f"no dose was given in course {course}")
        if course == 1 and completion.evaluable:
            _, end = dlt_window(first, protocol)
            if day < end:
                raise TrialRuleError(
                    "dlt-window",
                    f"course 1 ends its DLT window on {end}; it cannot be complete on {day}",
                )
        if not completion.evaluable and not (completion.reason and completion.reason.strip()):
            raise TrialRuleError("reason-required", "a course that is not evaluable needs a reason")
        self._record(self.CourseCompleted, completion, now)

    # -- response ------------------------------------------------------------------------

    class ResponseAssessed(FactEvent):
        TOPIC = "trialctl.Patient.ResponseAssessed"
        FACT = Response
        __annotations__ = Response.event_fields()
        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            # Before RECIST versions and schedules: computed by 1.1, with no schedule kept.
            state["recist_version"] = "1.1"
            state["scheduled_week"] = None
            state["off_schedule"] = False
            state["next_due"] = None

    def assess_response(
        self, assessment: Response, protocol: Protocol, now: datetime
    ) -> str | None:
        """Record target-lesion measurements; CR/PR/SD/PD is computed by the protocol's
        RECIST version, and the visit is placed on the protocol's assessment schedule."""
        schedule = protocol.response
        rules = schedule.rules
        lesions = list(assessment.lesions)
        day = parse_day(assessment.assessed_on, "assessment date")
        self.may_record(Response.KIND, day, now, "assessment date")
        previous = self.responses()
        sum_mm = str(sum_of_diameters(lesions, rules))
        if assessment.baseline:
            if previous:
                raise TrialRuleError("baseline-once", "a baseline assessment is already recorded")
            try:
                validate_baseline(lesions, rules)
            except ValueError as e:
                raise TrialRuleError("recist-baseline", str(e)) from e
            # A baseline carries no progression findings: they are read against it later.
            baseline = replace(assessment, new_lesions=False, non_target_progression=False)
            self._record(
                self.ResponseAssessed, baseline, now, category=None,
                recist_version=rules.version, sum_mm=sum_mm, scheduled_week=None,
                off_schedule=False, next_due=str(schedule.due(day, 1)), details=None,
            )
            return None
        self._require_enrolled()
        if not previous:
            raise TrialRuleError("baseline-first", "record the baseline assessment first")
        not_before(
            day,
            parse_day(previous[-1]["assessed_on"], "assessment"),
            "assessment date",
            "the previous assessment",
        )
        base = [_lesion(x) for x in previous[0]["lesions"]]
        nadir = min(Decimal(r["sum_mm"]) for r in previous)
        try:
            response = assess_response(
                base,
                lesions,
                nadir_sum_mm=nadir,
                new_lesions=assessment.new_lesions,
                non_target_progression=assessment.non_target_progression,
                rules=rules,
            )
        except ValueError as e:
            raise TrialRuleError("recist", str(e)) from e
        baseline_day = parse_day(previous[0]["assessed_on"], "baseline assessment")
        number, off_schedule = schedule.place(baseline_day, day)
        category = str(response.category)
        details = dict(response.to_dict())
        self._record(
            self.ResponseAssessed, assessment, now, category=category,
            recist_version=rules.version, sum_mm=sum_mm,
            scheduled_week=number * schedule.assessment_interval_weeks,
            off_schedule=off_schedule, next_due=str(schedule.due(baseline_day, number + 1)),
            details=details,
        )
        return category

    # -- secondary observations ----------------------------------------------------------

    class ObservationRecorded(FactEvent):
        TOPIC = "trialctl.Patient.ObservationRecorded"
        FACT = Observation
        __annotations__ = Observation.event_fields()

    def observe(self, observation: Observation, protocol: Protocol, now: datetime) -> None:
        self._record(self.ObservationRecorded, observation.check(self, protocol, now), now)

    # -- leaving the study ---------------------------------------------------------------

    class ConsentWithdrawn(FactEvent):
        TOPIC = "trialctl.Patient.ConsentWithdrawn"
        FACT = Withdrawal
        __annotations__ = Withdrawal.event_fields()

        def apply(self, aggregate: Any) -> None:
            aggregate.withdrawn_on = self.payload()["withdrawn_on"]
            aggregate.status = "consent-withdrawn"

    def withdraw(self, withdrawal: Withdrawal, now: datetime) -> None:
        day = parse_day(withdrawal.withdrawn_on, "withdrawal date")
        self.may_record(Withdrawal.KIND, day, now, "withdrawal date")
        reason = withdrawal.reason.strip() or "not given"
        self._record(self.ConsentWithdrawn, replace(withdrawal, reason=reason), now)

    class WentOffStudy(FactEvent):
        TOPIC = "trialctl.Patient.WentOffStudy"
        FACT = OffStudy
        __annotations__ = OffStudy.event_fields()

        def apply(self, aggregate: Any) -> None:
            aggregate.status = "off-study"

    def go_off_study(self, off_study: OffStudy, now: datetime) -> None:
        self._require_enrolled()
        if self.status == "off-study":
            raise TrialRuleError(
                "off-study-once", f"patient {self.patient_id} is already off study"
            )
        if not off_study.reason.strip():
            raise TrialRuleError("reason-required", "going off study needs a reason")
        day = parse_day(off_study.off_on, "off-study date")
        self.may_record(OffStudy.KIND, day, now, "off-study date")
        self._record(self.WentOffStudy, replace(off_study, reason=off_study.reason.strip()), now)

    # -- corrections ---------------------------------------------------------------------

    class Corrected(FactEvent):
        TOPIC = "trialctl.Patient.Corrected"
        FACT = Correction
        __annotations__ = Correction.event_fields()

        def apply(self, aggregate: Any) -> None:
            values = self.payload()
            target = aggregate.facts[values["target_version"]]["values"]
            target.update(values["new_values"])
            aggregate.corrections.append({"version": self.originator_version, **values})
            if values["kind"] == Screening.KIND:
                target.pop("eligibility", None)
                aggregate.eligibility = values["new_values"]["eligibility"]

    def correct(self, correction: Correction, protocol: Protocol, now: datetime) -> dict[str, Any]:
        """Correct the fact recorded at `target_version`; returns the corrected values."""
        target_version, changes = correction.target_version, dict(correction.changes)
        if not correction.reason.strip():
            raise TrialRuleError("reason-for-change", "a correction needs a reason for change")
        fact = self.facts.get(target_version)
        if fact is None or fact["kind"] not in CORRECTABLE:
            correctable = [
                f"{v} ({f['kind']})"
                for v, f in sorted(self.facts.items())
                if f["kind"] in CORRECTABLE
            ]
            raise TrialRuleError(
                "correctable",
                f"version {target_version} of {self.patient_id} "
                f"is not a correctable record; correctable: {correctable}",
            )
        kind = fact["kind"]
        if kind == Screening.KIND and set(changes) != {"values"}:
            changes = {"values": changes}  # screening fields are corrected one by one
        allowed = CORRECTABLE[kind]
        unknown = set(changes) - allowed
        if not changes or unknown:
            raise TrialRuleError(
                "correctable",
                f"a {kind} correction may change "
                f"{sorted(allowed)}, not {sorted(unknown) or 'nothing'}",
            )
        old = {k: fact["values"][k] for k in changes}
        if kind == Screening.KIND and isinstance(changes["values"], dict):
            changes = {"values": {**fact["values"]["values"], **changes["values"]}}
        declared = KEPT[kind]
        corrected = declared.from_record({**fact["values"], **changes})
        stored = corrected.check(self, protocol, now).payload()
        new_values = {k: stored[k] for k in changes}
        if kind == Screening.KIND:
            # Eligibility follows the corrected values: evaluated again, never typed in.
            screened_on = parse_day(fact["values"]["screened_on"], "screening date")
            old["eligibility"] = self.eligibility
            new_values["eligibility"] = _evaluate(protocol, new_values["values"], screened_on)
        reason = correction.reason.strip()
        self._record(
            self.Corrected, replace(correction, reason=reason), now,
            kind=kind, old_values=old, new_values=new_values,
        )
        return new_values

    # -- recording -----------------------------------------------------------------------

    def _record(
        self, event_class: type[FactEvent], fact: Fact, now: datetime, **derived: Any
    ) -> None:
        """Trigger the fact's event: its payload is the fact's stored fields and what the
        rules derived from them."""
        self.trigger_event(event_class, timestamp=now, **fact.payload(**derived))


def eligibility_deviations(summaries: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The trial's eligibility deviations, by patient id, from the patients' summaries:
    what `status` shows beside the cohorts."""
    found = [
        {"patient_id": s["patient_id"], **s["eligibility_deviation"]}
        for s in summaries
        if s["eligibility_deviation"] is not None
    ]
    return sorted(found, key=lambda d: str(d["patient_id"]))


def _evaluate(protocol: Protocol, values: dict[str, Any], day: date) -> dict[str, Any]:
    try:
        result = evaluate_eligibility(protocol.eligibility_criteria, values, day)
    except ValueError as e:
        raise TrialRuleError("screening-values", str(e)) from e
    return {
        "eligible": result.eligible,
        "failed": [r.code for r in result.failures],
        "criteria": [
            {"code": r.code, "status": str(r.status), "reason": r.reason} for r in result.results
        ],
    }


def _lesion(data: dict[str, Any]) -> TargetLesion:
    return TargetLesion(
        lesion_id=data["lesion_id"],
        site=data["site"],
        longest_diameter_mm=Decimal(data["longest_diameter_mm"]),
        is_lymph_node=bool(data["is_lymph_node"]),
        short_axis_mm=None if data.get("short_axis_mm") is None else Decimal(data["short_axis_mm"]),
    )
