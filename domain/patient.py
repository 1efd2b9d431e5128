"""The patient aggregate: one person's journey through one trial.

consent signed → screening recorded (eligibility evaluated criterion by criterion) →
enrolled (assigned to the open cohort at its level) → doses given → adverse events →
DLTs adjudicated → course 1 completed (DLT-evaluable, or not and replaced) → response
assessments (RECIST 1.1, computed) → off study, or consent withdrawn.

Each recorded fact is kept by the aggregate version that recorded it. A correction never
edits a fact: it is its own event naming the fact's version, the new values and the reason;
state reads the corrected values, and the audit trail shows both.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from trialctl.domain.eligibility import evaluate_eligibility
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
ATTRIBUTIONS = ("unrelated", "unlikely", "possible", "probable", "definite")
# What may still be recorded after consent is withdrawn: safety follow-up of adverse events.
ALLOWED_AFTER_WITHDRAWAL = frozenset({"adverse-event", "dlt-adjudication", "correction"})

# Facts that may be corrected, and the fields a correction may change.
CORRECTABLE: dict[str, frozenset[str]] = {
    "screening": frozenset({"values"}),
    "dose": frozenset({"dose", "unit", "given_at"}),
    "adverse-event": frozenset({"term", "grade", "attribution", "onset", "resolved_on"}),
    "observation": frozenset({"value", "observed_on"}),
}


def patient_aggregate_id(trial_id: UUID, patient_id: str) -> UUID:
    return uuid5(TRIALCTL_NAMESPACE, f"patient:{trial_id}:{patient_id}")


def check_patient_id(patient_id: str) -> str:
    if not PATIENT_ID_PATTERN.match(patient_id):
        raise TrialRuleError(
            "patient-id", f"patient id {patient_id!r} must be 1-32 letters, digits, '-' or '_'"
        )
    return patient_id


def decimal_text(value: object, field: str, *, positive: bool = True) -> str:
    """An exact decimal written as text: clinical values never pass through floats."""
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError) as e:
        raise TrialRuleError("valid-number", f"{field} {value!r} is not a number") from e
    if not number.is_finite() or (positive and number <= 0):
        raise TrialRuleError("valid-number", f"{field} must be a positive number, not {value!r}")
    return str(number)


class Patient(Aggregate):
    TOPIC = "trialctl.Patient"

    class Created(Aggregate.Created):
        TOPIC = "trialctl.Patient.Created"  # a base the library requires; never emitted

    class ConsentSigned(Created):
        TOPIC = "trialctl.Patient.ConsentSigned"
        trial_id: str
        patient_id: str
        consent_version: str
        signed_on: str

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
        self.facts: dict[int, dict[str, Any]] = {
            1: {
                "kind": "consent",
                "values": {"consent_version": consent_version, "signed_on": signed_on},
            }
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
    def consent(
        cls, trial_id: UUID, patient_id: str, consent_version: str, signed_on: str, now: datetime
    ) -> Patient:
        check_patient_id(patient_id)
        if not consent_version.strip():
            raise TrialRuleError("consent-version", "the informed-consent version is required")
        not_in_future(parse_day(signed_on, "consent date"), now.date(), "consent date")
        return cls(
            trial_id=str(trial_id),
            patient_id=patient_id,
            consent_version=consent_version.strip(),
            signed_on=signed_on,
            timestamp=now,
        )

    # -- reading -------------------------------------------------------------------------

    def _facts(self, kind: str) -> list[tuple[int, dict[str, Any]]]:
        return [(v, f["values"]) for v, f in sorted(self.facts.items()) if f["kind"] == kind]

    @property
    def screening_values(self) -> dict[str, Any]:
        screenings = self._facts("screening")
        return dict(screenings[-1][1]["values"]) if screenings else {}

    @property
    def screened_on(self) -> str | None:
        screenings = self._facts("screening")
        return str(screenings[-1][1]["screened_on"]) if screenings else None

    def doses(self) -> list[dict[str, Any]]:
        return [{"version": v, **values} for v, values in self._facts("dose")]

    def adverse_events(self) -> list[dict[str, Any]]:
        return [{"version": v, **values} for v, values in self._facts("adverse-event")]

    def adverse_event(self, ae_id: str) -> dict[str, Any]:
        for ae in self.adverse_events():
            if ae["ae_id"] == ae_id:
                return ae
        raise TrialRuleError(
            "known-adverse-event", f"patient {self.patient_id} has no adverse event {ae_id!r}"
        )

    def dlts(self) -> list[dict[str, Any]]:
        return [{"version": v, **values} for v, values in self._facts("dlt-adjudication")]

    def responses(self) -> list[dict[str, Any]]:
        return [{"version": v, **values} for v, values in self._facts("response")]

    def observations(self) -> list[dict[str, Any]]:
        return [{"version": v, **values} for v, values in self._facts("observation")]

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
            # Enrolled, then found ineligible by a corrected screening value: a deviation.
            "eligibility_deviation": self.is_enrolled
            and self.eligibility is not None
            and not self.eligibility["eligible"],
            "level": self.level,
            "cohort": self.cohort_number,
            "enrolled_on": self.enrolled_on,
            "doses": len(self.doses()),
            "adverse_events": len(self.adverse_events()),
            "dlts": sum(1 for d in self.dlts() if d["is_dlt"] and d["counts"]),
            "evaluable": self.evaluable,
            "courses_completed": list(self.completed_courses),
            "responses": [r["category"] for r in self.responses()],
            "corrections": len(self.corrections),
        }

    def state(self) -> dict[str, Any]:
        """Everything the patient's record says now, corrections applied."""
        return {
            **self.summary(),
            "eligibility": self.eligibility,
            "screening": self.screening_values,
            "doses": self.doses(),
            "adverse_events": self.adverse_events(),
            "dlt_adjudications": self.dlts(),
            "responses": self.responses(),
            "observations": self.observations(),
            "corrections": list(self.corrections),
            "withdrawn_on": self.withdrawn_on,
        }

    # -- guards --------------------------------------------------------------------------

    def _may_record(self, kind: str, day: date, now: datetime, what: str) -> None:
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

    class ScreeningRecorded(Aggregate.Event):
        TOPIC = "trialctl.Patient.ScreeningRecorded"
        values: dict[str, Any]
        screened_on: str
        eligibility: dict[str, Any]

    def screen(
        self, values: dict[str, Any], screened_on: str, protocol: Protocol, now: datetime
    ) -> dict[str, Any]:
        """Record screening values; eligibility is evaluated from them, never typed in."""
        day = parse_day(screened_on, "screening date")
        self._may_record("screening", day, now, "screening date")
        if self.is_enrolled:
            raise TrialRuleError(
                "screen-before-enrollment", f"patient {self.patient_id} is already enrolled"
            )
        eligibility = _evaluate(protocol, values, day)
        self._screened(values, screened_on, eligibility, timestamp=now)
        return eligibility

    @event(ScreeningRecorded)
    def _screened(
        self,
        values: dict[str, Any],
        screened_on: str,
        eligibility: dict[str, Any],
        timestamp: datetime,
    ) -> None:
        self.facts[self.version + 1] = {
            "kind": "screening",
            "values": {"values": values, "screened_on": screened_on},
        }
        self.eligibility = eligibility
        self.status = "screened-eligible" if eligibility["eligible"] else "screened-ineligible"

    # -- enrollment ----------------------------------------------------------------------

    class Enrolled(Aggregate.Event):
        TOPIC = "trialctl.Patient.Enrolled"
        level: int
        cohort_number: int
        enrolled_on: str

    def check_can_enroll(self, enrolled_on: str, now: datetime) -> None:
        day = parse_day(enrolled_on, "enrollment date")
        self._may_record("enrollment", day, now, "enrollment date")
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

    def enroll(self, level: int, cohort_number: int, enrolled_on: str, now: datetime) -> None:
        self.check_can_enroll(enrolled_on, now)
        self._enrolled(level, cohort_number, enrolled_on, timestamp=now)

    @event(Enrolled)
    def _enrolled(
        self, level: int, cohort_number: int, enrolled_on: str, timestamp: datetime
    ) -> None:
        self.level = level
        self.cohort_number = cohort_number
        self.enrolled_on = enrolled_on
        self.status = "on-study"

    # -- dosing --------------------------------------------------------------------------

    class DoseGiven(Aggregate.Event):
        TOPIC = "trialctl.Patient.DoseGiven"
        agent: str
        dose: str
        unit: str
        course: int
        day: int
        given_at: str

    def give_dose(
        self,
        agent: str,
        dose: str,
        unit: str,
        course: int,
        day: int,
        given_at: str,
        protocol: Protocol,
        now: datetime,
    ) -> None:
        self._require_enrolled()
        values = {
            "agent": agent,
            "dose": dose,
            "unit": unit,
            "course": course,
            "day": day,
            "given_at": given_at,
        }
        self._check_dose(values, protocol, now)
        self._dose_given(
            agent, decimal_text(dose, "dose"), unit, course, day, given_at, timestamp=now
        )

    def _check_dose(self, values: dict[str, Any], protocol: Protocol, now: datetime) -> None:
        moment = parse_moment(values["given_at"], "given_at")
        self._may_record("dose", moment.date(), now, "dose time")
        assert self.enrolled_on is not None and self.level is not None
        not_before(
            moment.date(), parse_day(self.enrolled_on, "enrollment"), "dose date", "enrollment"
        )
        agents = {a.name: a for a in protocol.agents}
        agent = agents.get(values["agent"])
        if agent is None:
            raise TrialRuleError(
                "protocol-agent",
                f"agent {values['agent']!r} is not in the protocol ({', '.join(agents)})",
            )
        course, day = values["course"], values["day"]
        if course < 1 or course > len(self.completed_courses) + 1:
            raise TrialRuleError(
                "course-order",
                f"course {course} cannot be dosed: courses "
                f"completed so far {self.completed_courses or 'none'}",
            )
        if day not in agent.days:
            raise TrialRuleError(
                "protocol-schedule", f"{agent.name} is not given on day {day} of a course"
            )
        dose = Decimal(decimal_text(values["dose"], "dose"))
        if agent.is_escalated:
            own = protocol.level(self.level)
            expected, unit = own.dose, own.unit
            rule = "own-dose-level"
        else:
            fixed = agent.dose_for_course(course)
            expected, unit = fixed.dose, fixed.unit
            rule = "protocol-dose"
        if dose != expected or values["unit"] != unit:
            raise TrialRuleError(
                rule,
                f"{agent.name} dose {dose} {values['unit']} is not the "
                f"{expected} {unit} due at level {self.level}, course {course}",
            )

    @event(DoseGiven)
    def _dose_given(
        self,
        agent: str,
        dose: str,
        unit: str,
        course: int,
        day: int,
        given_at: str,
        timestamp: datetime,
    ) -> None:
        self.facts[self.version + 1] = {
            "kind": "dose",
            "values": {
                "agent": agent,
                "dose": dose,
                "unit": unit,
                "course": course,
                "day": day,
                "given_at": given_at,
            },
        }

    # -- adverse events and DLTs ---------------------------------------------------------

    class AdverseEventReported(Aggregate.Event):
        TOPIC = "trialctl.Patient.AdverseEventReported"
        ae_id: str
        term: str
        grade: int
        attribution: str
        onset: str
        resolved_on: str | None

    def report_adverse_event(
        self,
        ae_id: str,
        term: str,
        grade: int,
        attribution: str,
        onset: str,
        resolved_on: str | None,
        now: datetime,
    ) -> None:
        if any(ae["ae_id"] == ae_id for ae in self.adverse_events()):
            raise TrialRuleError(
                "unique-adverse-event",
                f"adverse event {ae_id!r} is already recorded; correct it instead",
            )
        values = {
            "ae_id": ae_id,
            "term": term,
            "grade": grade,
            "attribution": attribution,
            "onset": onset,
            "resolved_on": resolved_on,
        }
        self._check_adverse_event(values, now)
        self._adverse_event(
            ae_id, term.strip(), grade, attribution, onset, resolved_on, timestamp=now
        )

    def _check_adverse_event(self, values: dict[str, Any], now: datetime) -> None:
        if not str(values["term"]).strip():
            raise TrialRuleError("ctcae-term", "the CTCAE term is required")
        if not isinstance(values["grade"], int) or not 1 <= values["grade"] <= 5:
            raise TrialRuleError(
                "ctcae-grade", f"grade {values['grade']!r} is not a CTCAE grade 1-5"
            )
        if values["attribution"] not in ATTRIBUTIONS:
            raise TrialRuleError(
                "attribution",
                f"attribution {values['attribution']!r} is not one of {', '.join(ATTRIBUTIONS)}",
            )
        onset = parse_day(values["onset"], "onset")
        self._may_record("adverse-event", onset, now, "onset")
        if values["resolved_on"] is not None:
            resolved = parse_day(values["resolved_on"], "resolution date")
            not_in_future(resolved, now.date(), "resolution date")
            not_before(resolved, onset, "resolution date", "onset")

    @event(AdverseEventReported)
    def _adverse_event(
        self,
        ae_id: str,
        term: str,
        grade: int,
        attribution: str,
        onset: str,
        resolved_on: str | None,
        timestamp: datetime,
    ) -> None:
        self.facts[self.version + 1] = {
            "kind": "adverse-event",
            "values": {
                "ae_id": ae_id,
                "term": term,
                "grade": grade,
                "attribution": attribution,
                "onset": onset,
                "resolved_on": resolved_on,
            },
        }

    class DltAdjudicated(Aggregate.Event):
        TOPIC = "trialctl.Patient.DltAdjudicated"
        ae_id: str
        is_dlt: bool
        rule_code: str | None
        counts: bool
        window: str

    def adjudicate_dlt(
        self,
        ae_id: str,
        is_dlt: bool,
        rule_code: str | None,
        decided_on: str,
        protocol: Protocol,
        now: datetime,
    ) -> bool:
        """Adjudicate an adverse event; returns whether it counts toward cohort decisions:
        only a DLT with onset inside the protocol's evaluation window does."""
        self._require_enrolled()
        ae = self.adverse_event(ae_id)
        day = parse_day(decided_on, "adjudication date")
        self._may_record("dlt-adjudication", day, now, "adjudication date")
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
            end = first + timedelta(days=protocol.dlt_window_days - 1)
            onset = parse_day(ae["onset"], "onset")
            counts = is_dlt and first <= onset <= end
            window = f"{first}..{end}"
        self._dlt_adjudicated(ae_id, is_dlt, rule_code, counts, window, timestamp=now)
        return counts

    @event(DltAdjudicated)
    def _dlt_adjudicated(
        self,
        ae_id: str,
        is_dlt: bool,
        rule_code: str | None,
        counts: bool,
        window: str,
        timestamp: datetime,
    ) -> None:
        self.facts[self.version + 1] = {
            "kind": "dlt-adjudication",
            "values": {
                "ae_id": ae_id,
                "is_dlt": is_dlt,
                "rule_code": rule_code,
                "counts": counts,
                "window": window,
            },
        }
        if counts:
            self.evaluable = True

    # -- courses -------------------------------------------------------------------------

    class CourseCompleted(Aggregate.Event):
        TOPIC = "trialctl.Patient.CourseCompleted"
        course: int
        completed_on: str
        evaluable: bool
        reason: str | None

    def complete_course(
        self,
        course: int,
        completed_on: str,
        evaluable: bool,
        reason: str | None,
        protocol: Protocol,
        now: datetime,
    ) -> None:
        self._require_enrolled()
        day = parse_day(completed_on, "completion date")
        self._may_record("course", day, now, "completion date")
        if course != len(self.completed_courses) + 1:
            raise TrialRuleError(
                "course-order",
                f"course {course} is not the next course "
                f"(completed: {self.completed_courses or 'none'})",
            )
        first = self.first_dose_day(course)
        if first is None:
            raise TrialRuleError("dose-first", f"no dose was given in course {course}")
        if course == 1 and evaluable:
            end = first + timedelta(days=protocol.dlt_window_days - 1)
            if day < end:
                raise TrialRuleError(
                    "dlt-window",
                    f"course 1 ends its DLT window on {end}; it cannot be complete on {day}",
                )
        if not evaluable and not (reason and reason.strip()):
            raise TrialRuleError("reason-required", "a course that is not evaluable needs a reason")
        self._course_completed(course, completed_on, evaluable, reason, timestamp=now)

    @event(CourseCompleted)
    def _course_completed(
        self,
        course: int,
        completed_on: str,
        evaluable: bool,
        reason: str | None,
        timestamp: datetime,
    ) -> None:
        self.completed_courses.append(course)
        if course == 1 and self.evaluable is None:
            self.evaluable = evaluable

    # -- response ------------------------------------------------------------------------

    class ResponseAssessed(Aggregate.Event):
        TOPIC = "trialctl.Patient.ResponseAssessed"
        assessed_on: str
        baseline: bool
        lesions: list[dict[str, Any]]
        new_lesions: bool
        non_target_progression: bool
        category: str | None
        sum_mm: str
        details: dict[str, Any] | None

    def assess_response(
        self,
        assessed_on: str,
        lesions: list[TargetLesion],
        new_lesions: bool,
        non_target_progression: bool,
        baseline: bool,
        now: datetime,
    ) -> str | None:
        """Record target-lesion measurements; CR/PR/SD/PD is computed (RECIST 1.1)."""
        day = parse_day(assessed_on, "assessment date")
        self._may_record("response", day, now, "assessment date")
        previous = self.responses()
        if baseline:
            if previous:
                raise TrialRuleError("baseline-once", "a baseline assessment is already recorded")
            try:
                validate_baseline(lesions)
            except ValueError as e:
                raise TrialRuleError("recist-baseline", str(e)) from e
            self._response(
                assessed_on,
                True,
                [x.to_dict() for x in lesions],
                False,
                False,
                None,
                str(sum_of_diameters(lesions)),
                None,
                timestamp=now,
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
                new_lesions=new_lesions,
                non_target_progression=non_target_progression,
            )
        except ValueError as e:
            raise TrialRuleError("recist", str(e)) from e
        self._response(
            assessed_on,
            False,
            [x.to_dict() for x in lesions],
            new_lesions,
            non_target_progression,
            str(response.category),
            str(sum_of_diameters(lesions)),
            dict(response.to_dict()),
            timestamp=now,
        )
        return str(response.category)

    @event(ResponseAssessed)
    def _response(
        self,
        assessed_on: str,
        baseline: bool,
        lesions: list[dict[str, Any]],
        new_lesions: bool,
        non_target_progression: bool,
        category: str | None,
        sum_mm: str,
        details: dict[str, Any] | None,
        timestamp: datetime,
    ) -> None:
        self.facts[self.version + 1] = {
            "kind": "response",
            "values": {
                "assessed_on": assessed_on,
                "baseline": baseline,
                "lesions": lesions,
                "new_lesions": new_lesions,
                "non_target_progression": non_target_progression,
                "category": category,
                "sum_mm": sum_mm,
            },
        }

    # -- secondary observations ----------------------------------------------------------

    class ObservationRecorded(Aggregate.Event):
        TOPIC = "trialctl.Patient.ObservationRecorded"
        kind: str
        value: str
        observed_on: str

    def observe(
        self, kind: str, value: str, observed_on: str, protocol: Protocol, now: datetime
    ) -> None:
        values = {"kind": kind, "value": value, "observed_on": observed_on}
        self._check_observation(values, protocol, now)
        self._observed(
            kind, str(protocol.observation(kind).parse_value(value)), observed_on, timestamp=now
        )

    def _check_observation(self, values: dict[str, Any], protocol: Protocol, now: datetime) -> None:
        day = parse_day(values["observed_on"], "observation date")
        self._may_record("observation", day, now, "observation date")
        try:
            protocol.observation(values["kind"]).parse_value(values["value"])
        except (KeyError, ValueError) as e:
            raise TrialRuleError("protocol-observation", str(e).strip("'\"")) from e

    @event(ObservationRecorded)
    def _observed(self, kind: str, value: str, observed_on: str, timestamp: datetime) -> None:
        self.facts[self.version + 1] = {
            "kind": "observation",
            "values": {"kind": kind, "value": value, "observed_on": observed_on},
        }

    # -- leaving the study ---------------------------------------------------------------

    class ConsentWithdrawn(Aggregate.Event):
        TOPIC = "trialctl.Patient.ConsentWithdrawn"
        withdrawn_on: str
        reason: str

    def withdraw(self, withdrawn_on: str, reason: str, now: datetime) -> None:
        day = parse_day(withdrawn_on, "withdrawal date")
        self._may_record("withdrawal", day, now, "withdrawal date")
        self._withdrawn(withdrawn_on, reason.strip() or "not given", timestamp=now)

    @event(ConsentWithdrawn)
    def _withdrawn(self, withdrawn_on: str, reason: str, timestamp: datetime) -> None:
        self.withdrawn_on = withdrawn_on
        self.status = "consent-withdrawn"

    class WentOffStudy(Aggregate.Event):
        TOPIC = "trialctl.Patient.WentOffStudy"
        off_on: str
        reason: str

    def go_off_study(self, off_on: str, reason: str, now: datetime) -> None:
        self._require_enrolled()
        if self.status == "off-study":
            raise TrialRuleError(
                "off-study-once", f"patient {self.patient_id} is already off study"
            )
        if not reason.strip():
            raise TrialRuleError("reason-required", "going off study needs a reason")
        day = parse_day(off_on, "off-study date")
        self._may_record("off-study", day, now, "off-study date")
        self._off_study(off_on, reason.strip(), timestamp=now)

    @event(WentOffStudy)
    def _off_study(self, off_on: str, reason: str, timestamp: datetime) -> None:
        self.status = "off-study"

    # -- corrections ---------------------------------------------------------------------

    class Corrected(Aggregate.Event):
        TOPIC = "trialctl.Patient.Corrected"
        target_version: int
        kind: str
        old_values: dict[str, Any]
        new_values: dict[str, Any]
        reason: str

    def correct(
        self,
        target_version: int,
        changes: dict[str, Any],
        reason: str,
        protocol: Protocol,
        now: datetime,
    ) -> dict[str, Any]:
        """Correct the fact recorded at `target_version`; returns the corrected values."""
        if not reason.strip():
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
        if fact["kind"] == "screening" and set(changes) != {"values"}:
            changes = {"values": changes}  # screening fields are corrected one by one
        allowed = CORRECTABLE[fact["kind"]]
        unknown = set(changes) - allowed
        if not changes or unknown:
            raise TrialRuleError(
                "correctable",
                f"a {fact['kind']} correction may change "
                f"{sorted(allowed)}, not {sorted(unknown) or 'nothing'}",
            )
        old = {k: fact["values"][k] for k in changes}
        new_values = dict(fact["values"])
        if fact["kind"] == "screening":
            changes = {"values": {**fact["values"]["values"], **changes["values"]}}
        new_values.update(changes)
        self._check_correction(fact["kind"], new_values, protocol, now)
        if fact["kind"] == "dose" and "dose" in changes:
            changes["dose"] = decimal_text(changes["dose"], "dose")
        if fact["kind"] == "screening":
            # Eligibility follows the corrected values: evaluated again, never typed in.
            screened_on = parse_day(fact["values"]["screened_on"], "screening date")
            old["eligibility"] = self.eligibility
            changes["eligibility"] = _evaluate(protocol, changes["values"], screened_on)
        self._corrected(target_version, fact["kind"], old, changes, reason.strip(), timestamp=now)
        return changes

    def _check_correction(
        self, kind: str, values: dict[str, Any], protocol: Protocol, now: datetime
    ) -> None:
        if kind == "dose":
            self._check_dose(values, protocol, now)
        elif kind == "adverse-event":
            self._check_adverse_event(values, now)
        elif kind == "observation":
            self._check_observation(values, protocol, now)
        elif kind == "screening" and not isinstance(values["values"], dict):
            raise TrialRuleError("correctable", "screening values must be an object")

    @event(Corrected)
    def _corrected(
        self,
        target_version: int,
        kind: str,
        old_values: dict[str, Any],
        new_values: dict[str, Any],
        reason: str,
        timestamp: datetime,
    ) -> None:
        self.facts[target_version]["values"].update(new_values)
        self.corrections.append(
            {
                "version": self.version + 1,
                "target_version": target_version,
                "kind": kind,
                "old_values": old_values,
                "new_values": new_values,
                "reason": reason,
            }
        )
        if kind == "screening":
            self.facts[target_version]["values"].pop("eligibility", None)
            self.eligibility = new_values["eligibility"]


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
