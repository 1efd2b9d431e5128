"""The clinical facts of a patient's record, each declared once.

A fact class is what a person states (its given fields, typed), what the rules add to it
(its derived fields), the stored event that carries it, and the checks its values must pass.
Recording, correcting, reading the record back, the request a command builds and the
FORMAT.md payload table all read these classes; none keeps its own field list.

Stored names are permanent: `EVENT` and the field names are exactly what old ledgers hold.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar, Protocol, Self

from trialctl.domain.protocol import Protocol as TrialProtocol
from trialctl.domain.recist import TargetLesion
from trialctl.domain.rules import (
    ATTRIBUTIONS,
    TrialRuleError,
    not_before,
    not_in_future,
    parse_day,
    parse_moment,
)

_ABOUT = "trialctl.fact"


@dataclass(frozen=True)
class About:
    """How a given field is stored and documented."""

    shown: str  # its type as FORMAT.md names it
    text: str
    correctable: bool = False
    stored: bool = True  # False: it steers the rules but is not part of the payload


def given(shown: str, text: str = "", *, correctable: bool = False, stored: bool = True) -> Any:
    """A field the person recording states: a `dataclasses.field` with no default (ruff's
    RUF009 cannot tell, hence its `noqa` on mutable-typed fields)."""
    return dataclasses.field(metadata={_ABOUT: About(shown, text, correctable, stored)})


@dataclass(frozen=True)
class Derived:
    """A payload field the rules compute; never typed in."""

    name: str
    shown: str
    text: str
    kept: bool = True  # False: held elsewhere on the patient, not with the fact's values


@dataclass(frozen=True)
class Column:
    """One payload field of a stored event."""

    name: str
    shown: str
    text: str
    derived: bool
    correctable: bool


def decimal_text(value: object, field: str, *, positive: bool = True) -> str:
    """An exact decimal written as text: clinical values never pass through floats."""
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError) as e:
        raise TrialRuleError("valid-number", f"{field} {value!r} is not a number") from e
    if not number.is_finite() or (positive and number <= 0):
        raise TrialRuleError("valid-number", f"{field} must be a positive number, not {value!r}")
    return str(number)


class Record(Protocol):
    """What a fact's checks read of the patient's record."""

    patient_id: str
    level: int | None
    enrolled_on: str | None
    completed_courses: list[int]

    def may_record(self, kind: str, day: date, now: datetime, what: str) -> None: ...


@dataclass(frozen=True, kw_only=True)
class Fact:
    """Base of every fact: its declaration, read by the patient, the ledger and the docs."""

    KIND: ClassVar[str]  # the record's name for it, e.g. "dose"
    EVENT: ClassVar[str]  # the stored event class, topic trialctl.Patient.<EVENT>
    TEXT: ClassVar[str]
    ON_RECORD: ClassVar[bool] = True  # kept by version: read back, corrected
    LISTED_AS: ClassVar[str | None] = None  # its list in the patient's state
    DERIVED: ClassVar[tuple[Derived, ...]] = ()

    @classmethod
    def _given(cls) -> list[tuple[str, About]]:
        return [(f.name, f.metadata[_ABOUT]) for f in dataclasses.fields(cls)]

    @classmethod
    def columns(cls) -> tuple[Column, ...]:
        given_columns = [
            Column(name, about.shown, about.text, False, about.correctable)
            for name, about in cls._given()
            if about.stored
        ]
        derived = [Column(d.name, d.shown, d.text, True, False) for d in cls.DERIVED]
        return (*given_columns, *derived)

    @classmethod
    def event_fields(cls) -> dict[str, Any]:
        """The stored event's annotations: its payload, one attribute per column."""
        return {c.name: "Any" for c in cls.columns()}

    @classmethod
    def correctable(cls) -> frozenset[str]:
        return frozenset(c.name for c in cls.columns() if c.correctable)

    @classmethod
    def kept(cls) -> tuple[str, ...]:
        """The payload fields kept with the fact on the record."""
        held_elsewhere = {d.name for d in cls.DERIVED if not d.kept}
        return tuple(c.name for c in cls.columns() if c.name not in held_elsewhere)

    @classmethod
    def from_record(cls, values: dict[str, Any]) -> Self:
        return cls(**{name: values[name] for name, _ in cls._given()})

    def payload(self, **derived: Any) -> dict[str, Any]:
        """The stored event's payload: the given fields, then what the rules derived."""
        stored = {name: getattr(self, name) for name, about in self._given() if about.stored}
        return {**stored, **derived}

    def check(self, record: Record, protocol: TrialProtocol, now: datetime) -> Self:
        """Refuse values the rules forbid; returns the values as they are stored."""
        return self


@dataclass(frozen=True, kw_only=True)
class Consent(Fact):
    KIND = "consent"
    EVENT = "ConsentSigned"
    TEXT = "informed consent signed"
    DERIVED = (
        Derived("trial_id", "uuid", "the trial's aggregate id", kept=False),
        Derived("patient_id", "text", "the patient's study id", kept=False),
    )
    consent_version: str = given("text", "the informed-consent form version")
    signed_on: str = given("date")


@dataclass(frozen=True, kw_only=True)
class Screening(Fact):
    KIND = "screening"
    EVENT = "ScreeningRecorded"
    TEXT = "screening values; eligibility is evaluated from them"
    DERIVED = (
        Derived(
            "eligibility",
            "object",
            "`eligible`, `failed` codes, and each criterion's `code`, `status`, `reason`",
            kept=False,
        ),
    )
    values: dict[str, Any] = given("object", "the values", correctable=True)  # noqa: RUF009
    screened_on: str = given("date")

    def check(self, record: Record, protocol: TrialProtocol, now: datetime) -> Self:
        if not isinstance(self.values, dict):
            raise TrialRuleError("correctable", "screening values must be an object")
        return self


@dataclass(frozen=True, kw_only=True)
class Enrolment(Fact):
    KIND = "enrollment"
    EVENT = "Enrolled"
    TEXT = "enrolled into the open cohort at its level"
    ON_RECORD = False
    DERIVED = (
        Derived("level", "integer", "the cohort's dose level", kept=False),
        Derived("cohort_number", "integer", "", kept=False),
    )
    enrolled_on: str = given("date")


@dataclass(frozen=True, kw_only=True)
class Dose(Fact):
    KIND = "dose"
    EVENT = "DoseGiven"
    TEXT = "a dose given"
    LISTED_AS = "doses"
    agent: str = given("text", "as named in the protocol")
    dose: str = given("decimal", correctable=True)
    unit: str = given("text", correctable=True)
    course: int = given("integer")
    day: int = given("integer", "day of the course")
    given_at: str = given("date-time", correctable=True)

    def check(self, record: Record, protocol: TrialProtocol, now: datetime) -> Self:
        moment = parse_moment(self.given_at, "given_at")
        record.may_record(self.KIND, moment.date(), now, "dose time")
        if record.enrolled_on is None or record.level is None:
            raise TrialRuleError("enrolled-first", f"patient {record.patient_id} is not enrolled")
        not_before(
            moment.date(), parse_day(record.enrolled_on, "enrollment"), "dose date", "enrollment"
        )
        agents = {a.name: a for a in protocol.agents}
        agent = agents.get(self.agent)
        if agent is None:
            raise TrialRuleError(
                "protocol-agent",
                f"agent {self.agent!r} is not in the protocol ({', '.join(agents)})",
            )
        completed = record.completed_courses
        if self.course < 1 or self.course > len(completed) + 1:
            raise TrialRuleError(
                "course-order",
                f"course {self.course} cannot be dosed: courses "
                f"completed so far {completed or 'none'}",
            )
        if self.day not in agent.days:
            raise TrialRuleError(
                "protocol-schedule", f"{agent.name} is not given on day {self.day} of a course"
            )
        dose = Decimal(decimal_text(self.dose, "dose"))
        if agent.is_escalated:
            own = protocol.level(record.level)
            expected, unit, rule = own.dose, own.unit, "own-dose-level"
        else:
            fixed = agent.dose_for_course(self.course)
            expected, unit, rule = fixed.dose, fixed.unit, "protocol-dose"
        if dose != expected or self.unit != unit:
            raise TrialRuleError(
                rule,
                f"{agent.name} dose {dose} {self.unit} is not the "
                f"{expected} {unit} due at level {record.level}, course {self.course}",
            )
        return replace(self, dose=str(dose))


@dataclass(frozen=True, kw_only=True)
class AdverseEvent(Fact):
    KIND = "adverse-event"
    EVENT = "AdverseEventReported"
    TEXT = "an adverse event"
    LISTED_AS = "adverse_events"
    ae_id: str = given("text", "the site's id for it, e.g. AE1")
    term: str = given("text", "CTCAE term", correctable=True)
    grade: int = given("integer", "CTCAE grade 1-5", correctable=True)
    attribution: str = given("text", ", ".join(ATTRIBUTIONS), correctable=True)
    onset: str = given("date", correctable=True)
    resolved_on: str | None = given("date or null", correctable=True)

    def check(self, record: Record, protocol: TrialProtocol, now: datetime) -> Self:
        if not str(self.term).strip():
            raise TrialRuleError("ctcae-term", "the CTCAE term is required")
        if not isinstance(self.grade, int) or not 1 <= self.grade <= 5:
            raise TrialRuleError("ctcae-grade", f"grade {self.grade!r} is not a CTCAE grade 1-5")
        if self.attribution not in ATTRIBUTIONS:
            raise TrialRuleError(
                "attribution",
                f"attribution {self.attribution!r} is not one of {', '.join(ATTRIBUTIONS)}",
            )
        onset = parse_day(self.onset, "onset")
        record.may_record(self.KIND, onset, now, "onset")
        if self.resolved_on is not None:
            resolved = parse_day(self.resolved_on, "resolution date")
            not_in_future(resolved, now.date(), "resolution date")
            not_before(resolved, onset, "resolution date", "onset")
        return replace(self, term=str(self.term).strip())


@dataclass(frozen=True, kw_only=True)
class DltAdjudication(Fact):
    KIND = "dlt-adjudication"
    EVENT = "DltAdjudicated"
    TEXT = "an adverse event adjudicated as a DLT or not"
    LISTED_AS = "dlt_adjudications"
    DERIVED = (
        Derived("counts", "boolean", "a DLT inside the DLT window: counts toward decisions"),
        Derived("window", "text", "the DLT window, first..last day"),
    )
    ae_id: str = given("text", "the adverse event adjudicated")
    is_dlt: bool = given("boolean")
    rule_code: str | None = given("text or null", "the protocol's DLT rule it meets")
    decided_on: str = given("date", stored=False)


@dataclass(frozen=True, kw_only=True)
class CourseCompletion(Fact):
    KIND = "course"
    EVENT = "CourseCompleted"
    TEXT = "a course completed; course 1 makes the patient DLT-evaluable, or not"
    ON_RECORD = False
    course: int = given("integer")
    completed_on: str = given("date")
    evaluable: bool = given("boolean")
    reason: str | None = given("text or null", "why not evaluable")


@dataclass(frozen=True, kw_only=True)
class Response(Fact):
    KIND = "response"
    EVENT = "ResponseAssessed"
    TEXT = (
        "target-lesion measurements; the response is computed by the RECIST version the "
        "protocol names (1.0 or 1.1, stored with it)"
    )
    LISTED_AS = "responses"
    DERIVED = (
        Derived("category", "text or null", "CR, PR, SD or PD; null at baseline"),
        Derived("recist_version", "text", "the RECIST version that computed it: 1.0 or 1.1"),
        Derived("sum_mm", "decimal", "sum of diameters under that version"),
        Derived(
            "scheduled_week",
            "integer or null",
            "the protocol's re-assessment this one stands for, in weeks after baseline; "
            "null at baseline",
        ),
        Derived(
            "off_schedule",
            "boolean",
            "outside that re-assessment's window (accepted, and flagged)",
        ),
        Derived("next_due", "date", "when the next re-assessment is due"),
        Derived("details", "object or null", "how the category was reached", kept=False),
    )
    assessed_on: str = given("date")
    baseline: bool = given("boolean")
    lesions: tuple[TargetLesion, ...] = given("list", "target lesions")
    new_lesions: bool = given("boolean")
    non_target_progression: bool = given("boolean")

    def payload(self, **derived: Any) -> dict[str, Any]:
        stored = super().payload(**derived)
        return {**stored, "lesions": [lesion.to_dict() for lesion in self.lesions]}


@dataclass(frozen=True, kw_only=True)
class Observation(Fact):
    KIND = "observation"
    EVENT = "ObservationRecorded"
    TEXT = "a secondary observation named by the protocol"
    LISTED_AS = "observations"
    kind: str = given("text", "the protocol's observation code")
    value: str = given("text", correctable=True)
    observed_on: str = given("date", correctable=True)

    def check(self, record: Record, protocol: TrialProtocol, now: datetime) -> Self:
        day = parse_day(self.observed_on, "observation date")
        record.may_record(self.KIND, day, now, "observation date")
        try:
            value = protocol.observation(self.kind).parse_value(self.value)
        except (KeyError, ValueError) as e:
            raise TrialRuleError("protocol-observation", str(e).strip("'\"")) from e
        return replace(self, value=str(value))


@dataclass(frozen=True, kw_only=True)
class Withdrawal(Fact):
    KIND = "withdrawal"
    EVENT = "ConsentWithdrawn"
    TEXT = "consent withdrawn; afterwards only safety follow-up"
    ON_RECORD = False
    withdrawn_on: str = given("date")
    reason: str = given("text")


@dataclass(frozen=True, kw_only=True)
class OffStudy(Fact):
    KIND = "off-study"
    EVENT = "WentOffStudy"
    TEXT = "the patient went off study"
    ON_RECORD = False
    off_on: str = given("date")
    reason: str = given("text")


@dataclass(frozen=True, kw_only=True)
class Correction(Fact):
    KIND = "correction"
    EVENT = "Corrected"
    TEXT = "a recorded fact corrected; the original stays"
    ON_RECORD = False
    DERIVED = (
        Derived("kind", "text", "the corrected fact's kind"),
        Derived("old_values", "object", "the fields changed, as they were"),
        Derived("new_values", "object", "the same fields, corrected"),
    )
    target_version: int = given("integer", "the patient record version corrected")
    changes: dict[str, Any] = given("object", stored=False)  # noqa: RUF009
    reason: str = given("text", "reason for change")


# Every fact, in the order of a patient's journey.
FACTS: tuple[type[Fact], ...] = (
    Consent,
    Screening,
    Enrolment,
    Dose,
    AdverseEvent,
    DltAdjudication,
    CourseCompletion,
    Response,
    Observation,
    Withdrawal,
    OffStudy,
    Correction,
)
KEPT: dict[str, type[Fact]] = {fact.KIND: fact for fact in FACTS if fact.ON_RECORD}
CORRECTABLE: dict[str, frozenset[str]] = {
    fact.KIND: fact.correctable() for fact in FACTS if fact.correctable()
}
# What may still be recorded after consent is withdrawn: safety follow-up of adverse events.
ALLOWED_AFTER_WITHDRAWAL = frozenset({AdverseEvent.KIND, DltAdjudication.KIND, Correction.KIND})


def payload_table() -> str:
    """FORMAT.md's table of patient payloads, written from the declarations."""
    lines = ["| type | payload |", "| --- | --- |"]
    for fact in FACTS:
        fields = []
        for column in fact.columns():
            notes = [column.shown, *([column.text] if column.text else [])]
            if column.derived:
                notes.append("computed")
            if column.correctable:
                notes.append("correctable")
            fields.append(f"`{column.name}` ({'; '.join(notes)})")
        lines.append(f"| `trialctl.Patient.{fact.EVENT}` | {fact.TEXT}: {', '.join(fields)} |")
    return "\n".join(lines) + "\n"
