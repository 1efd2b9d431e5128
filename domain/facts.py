"""The clinical facts of a patient's record, each declared once.

A fact class is what a person states (its given fields, typed), what the rules add to it
(its derived fields), the stored event that carries it, and the checks its values must pass.
Recording, correcting, reading the record back, the request a command builds and the
FORMAT.md payload table all read these classes; none keeps its own field list.

Stored names are permanent: `EVENT` and the field names are exactly what old ledgers hold.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar, Protocol, Self

from trialctl.domain import dose_modifications
from trialctl.domain.ctcae_terms import terms_for
from trialctl.domain.dlt_rules import DltContext, describe_unmet, unmet_conditions
from trialctl.domain.end_of_study import check_follow_up_status
from trialctl.domain.forms import FormError
from trialctl.domain.lab_grading import grade_value, lab_grading, patient_limit
from trialctl.domain.protocol import SERIOUS_CRITERIA
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
from trialctl.domain.visits import check_visit

_ABOUT = "trialctl.fact"


@dataclass(frozen=True)
class About:
    """How a given field is stored and documented."""

    shown: str  # its type as FORMAT.md names it
    text: str
    correctable: bool = False
    stored: bool = True  # False: it steers the rules but is not part of the payload


def given(
    shown: str,
    text: str = "",
    *,
    correctable: bool = False,
    stored: bool = True,
    default: Any = dataclasses.MISSING,
) -> Any:
    """A field the person recording states: a `dataclasses.field`, with no default unless
    it is optional (ruff's RUF009 cannot tell, hence its `noqa` on mutable-typed fields)."""
    return dataclasses.field(
        default=default, metadata={_ABOUT: About(shown, text, correctable, stored)}
    )


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

    @property
    def enrolled_on(self) -> str | None: ...

    @property
    def consent_date(self) -> str: ...

    @property
    def completed_courses(self) -> list[int]: ...

    def may_record(self, kind: str, day: date, now: datetime, what: str) -> None: ...

    def adverse_event(self, ae_id: str) -> dict[str, Any]: ...

    def dlt_window(self, protocol: TrialProtocol) -> tuple[date, date] | None: ...

    def labs(self) -> list[dict[str, Any]]: ...

    @property
    def died_on(self) -> str | None: ...

    def doses(self) -> list[dict[str, Any]]: ...

    def dose_changes(self) -> list[dict[str, Any]]: ...


def visit_field() -> Any:
    """The optional visit a scheduled assessment's record states it belongs to."""
    return given("text or null",
                 "the schedule's visit it belongs to (`week 9`, `course 2`), checked against "
                 "the protocol's schedule; null: placed by its date",
                 correctable=True, default=None)


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
    @functools.cache  # fixed per class, and read for each fact a patient's state grades
    def _given(cls) -> tuple[tuple[str, About], ...]:
        return tuple((f.name, f.metadata[_ABOUT]) for f in dataclasses.fields(cls))

    @classmethod
    @functools.cache  # fixed per class, and read each time an event is applied
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
    @functools.cache  # fixed per class, and read each time an event is applied
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
    DERIVED: ClassVar[tuple[Derived, ...]] = (
        Derived("trial_id", "uuid", "the trial's aggregate id", kept=False),
        Derived("patient_id", "text", "the patient's study id", kept=False),
    )
    consent_version: str = given(
        "text", "the informed-consent form version", correctable=True
    )
    signed_on: str = given("date", correctable=True)

    def check(self, record: Record, protocol: TrialProtocol, now: datetime) -> Self:
        version = self.consent_version.strip()
        if not version:
            raise TrialRuleError("consent-version", "the informed-consent version is required")
        signed = parse_day(self.signed_on, "consent date")
        not_in_future(signed, now.date(), "consent date")
        if protocol.consent is not None:  # a protocol listing its forms: one of those
            protocol.consent.check_signed(version, signed)
        return replace(self, consent_version=version)


@dataclass(frozen=True, kw_only=True)
class Reconsent(Consent):
    """A later signature, to an amended form: kept and corrected as a consent."""

    EVENT = "Reconsented"
    TEXT = "informed consent signed again, to an amended form version"
    DERIVED: ClassVar[tuple[Derived, ...]] = ()


@dataclass(frozen=True, kw_only=True)
class Screening(Fact):
    KIND = "screening"
    EVENT = "ScreeningRecorded"
    TEXT = "screening values; eligibility is evaluated from them"
    DERIVED = (
        Derived(
            "eligibility",
            "object",
            "`eligible`, `failed` codes, `not_assessed` fields (required or needed, not "
            "given), and each criterion's `code`, `status`, `reason`",
            kept=False,
        ),
    )
    values: dict[str, Any] = given("object", "the values", correctable=True)  # noqa: RUF009
    screened_on: str = given("date")

    def check(self, record: Record, protocol: TrialProtocol, now: datetime) -> Self:
        if not isinstance(self.values, dict):
            raise TrialRuleError("correctable", "screening values must be an object")
        form = protocol.screening_form
        if form is None:  # a protocol registered before protocols declared their forms
            return self
        try:
            values = form.check(self.values, parse_day(self.screened_on, "screening date"))
        except FormError as e:
            raise TrialRuleError("screening-form", str(e)) from e
        return replace(self, values=values)


@dataclass(frozen=True, kw_only=True)
class Enrolment(Fact):
    KIND = "enrollment"
    EVENT = "Enrolled"
    TEXT = "enrolled into the open cohort at its level"
    DERIVED = (
        Derived("level", "integer", "the cohort's dose level", kept=False),
        Derived("cohort_number", "integer", "", kept=False),
    )
    enrolled_on: str = given("date", correctable=True)

    def check(self, record: Record, protocol: TrialProtocol, now: datetime) -> Self:
        day = parse_day(self.enrolled_on, "enrollment date")
        not_in_future(day, now.date(), "enrollment date")
        not_before(day, parse_day(record.consent_date, "consent"), "enrollment date", "consent")
        return self


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
        on = moment.date()
        if record.died_on is not None and on > parse_day(record.died_on, "date of death"):
            raise TrialRuleError(
                "patient-died", f"patient {record.patient_id} died on {record.died_on}"
            )
        doses = record.doses()
        dose_modifications.check_dose_schedule(
            doses, agent, self.course, self.day, on, protocol.course_length_days
        )
        treatment = dose_modifications.treatment_on(on, record.level, record.dose_changes())
        dose_modifications.check_dose_allowed(treatment, self.course, on, record.patient_id)
        dose = Decimal(decimal_text(self.dose, "dose"))
        if agent.is_escalated:
            own = protocol.level(treatment.level)
            expected, unit, rule = own.dose, own.unit, "own-dose-level"
        else:
            fixed = agent.dose_for_course(self.course)
            expected, unit, rule = fixed.dose, fixed.unit, "protocol-dose"
        if dose != expected or self.unit != unit:
            reduced = f" (reduced from {record.level})" if treatment.level != record.level else ""
            raise TrialRuleError(
                rule,
                f"{agent.name} dose {dose} {self.unit} is not the "
                f"{expected} {unit} due at level {treatment.level}{reduced}, "
                f"course {self.course}",
            )
        return replace(self, dose=str(dose))


@dataclass(frozen=True, kw_only=True)
class AdverseEvent(Fact):
    KIND = "adverse-event"
    EVENT = "AdverseEventReported"
    TEXT = "an adverse event"
    LISTED_AS = "adverse_events"
    DERIVED = (
        Derived(
            "report_due", "date or null",
            "a serious event's expedited-report date as recorded; state derives it again "
            "from the current `serious` and `site_aware_on` and ignores this one",
            kept=False,
        ),
    )
    ae_id: str = given("text", "the site's id for it, e.g. AE1")
    term: str = given("text", "CTCAE term", correctable=True)
    grade: int = given("integer", "CTCAE grade 1-5", correctable=True)
    attribution: str = given("text", ", ".join(ATTRIBUTIONS), correctable=True)
    onset: str = given("date", correctable=True)
    resolved_on: str | None = given("date or null", correctable=True)
    coded: bool = given(
        "boolean", "false: a term outside the protocol's CTCAE term list, recorded --uncoded",
        correctable=True, default=True,
    )
    serious: list[str] | None = given(  # noqa: RUF009
        "list or null",
        "why it is serious: " + ", ".join(SERIOUS_CRITERIA)
        + "; corrected as text (`serious=hospitalisation,death`, `serious=none`)",
        correctable=True, default=None,
    )
    site_aware_on: str | None = given(
        "date or null", "when the site learned of a serious event", correctable=True,
        default=None,
    )
    reported_on: str | None = given(
        "date or null",
        "when the expedited report of a serious event went to the sponsor and IRB; null: "
        "not yet (set by a correction once sent)",
        correctable=True, default=None,
    )

    def check(self, record: Record, protocol: TrialProtocol, now: datetime) -> Self:
        return self._from_text()._checked(record, protocol, now)

    def _checked(self, record: Record, protocol: TrialProtocol, now: datetime) -> Self:
        if not isinstance(self.ae_id, str) or not self.ae_id.strip():
            raise TrialRuleError("ae-id", "the adverse event's id is required, e.g. AE1")
        if not str(self.term).strip():
            raise TrialRuleError("ctcae-term", "the CTCAE term is required")
        if self.coded:
            terms_for(protocol.dlt.ctcae_version).check(str(self.term).strip())
        # A boolean is an int to Python: `--set grade=true` would pass as grade 1.
        if isinstance(self.grade, bool) or not isinstance(self.grade, int) \
                or not 1 <= self.grade <= 5:
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
        serious = self._check_serious(onset, now)
        return replace(self, term=str(self.term).strip(), serious=serious)

    def _from_text(self) -> Self:
        """A correction's `--set` gives text: `serious` as comma-separated criteria, and
        `none` (or nothing) for a flag or date entered in error."""
        serious: Any = self.serious
        if isinstance(serious, str):
            serious = None if _is_none(serious) else [c.strip() for c in serious.split(",")]
        elif serious is not None and (
                not isinstance(serious, list) or not all(isinstance(c, str) for c in serious)):
            raise TrialRuleError("sae-criteria", f"serious criteria {serious!r} are not a list")
        return replace(self, serious=serious, site_aware_on=_none_or(self.site_aware_on),
                       reported_on=_none_or(self.reported_on))

    def _check_serious(self, onset: date, now: datetime) -> list[str] | None:
        """Serious criteria are the regulatory ones; a death is a grade 5 event and the
        reverse; a serious event says when the site learned of it, which dates its report."""
        serious = list(self.serious or [])
        for criterion in serious:
            if criterion not in SERIOUS_CRITERIA:
                raise TrialRuleError(
                    "sae-criteria",
                    f"{criterion!r} is not a serious criterion ({', '.join(SERIOUS_CRITERIA)})",
                )
        if len(set(serious)) != len(serious):
            raise TrialRuleError("sae-criteria", "a serious criterion is named twice")
        if (self.grade == 5) != ("death" in serious):
            raise TrialRuleError(
                "sae-death",
                "a grade 5 adverse event is a death: flag it serious with 'death' "
                "(and only a grade 5 event is)",
            )
        if not serious:
            if self.site_aware_on is not None or self.reported_on is not None:
                raise TrialRuleError(
                    "sae-aware",
                    "the site-aware and report dates are for a serious adverse event",
                )
            return None
        if self.site_aware_on is None:
            raise TrialRuleError(
                "sae-aware", "a serious adverse event needs the date the site learned of it"
            )
        aware = parse_day(self.site_aware_on, "site-aware date")
        not_in_future(aware, now.date(), "site-aware date")
        not_before(aware, onset, "site-aware date", "onset")
        if self.reported_on is not None:
            reported = parse_day(self.reported_on, "report date")
            not_in_future(reported, now.date(), "report date")
            not_before(reported, aware, "report date", "site-aware date")
        return serious

    @classmethod
    def report_due(cls, values: dict[str, Any], protocol: TrialProtocol) -> str | None:
        """When a serious event's expedited report is due, by the protocol's rule."""
        rule = protocol.expedited_reporting
        if not values.get("serious") or rule is None or values.get("site_aware_on") is None:
            return None
        aware = parse_day(values["site_aware_on"], "site-aware date")
        return (aware + timedelta(days=rule.days_for(values["serious"]))).isoformat()



def _is_none(text: str) -> bool:
    return text.strip().lower() in ("", "none", "null")


def _none_or(value: str | None) -> str | None:
    return None if isinstance(value, str) and _is_none(value) else value


def report_state(report_due: str, reported_on: str | None, on: date) -> str:
    """A serious event's expedited report as it stood on `on`: reported, reported late,
    due, or overdue (due before `on` and not sent by then)."""
    due = parse_day(report_due, "report-due date")
    if reported_on is not None and parse_day(reported_on, "report date") <= on:
        return "reported late" if parse_day(reported_on, "report date") > due else "reported"
    return "overdue" if due < on else "due"


@dataclass(frozen=True, kw_only=True)
class DltAdjudication(Fact):
    """An investigator's judgement that an AE is a DLT under a protocol rule, or is not.
    Whether it counts toward cohort decisions is never stored: it is derived from the AE
    as corrected, the rule and the DLT window each time state is computed."""

    KIND = "dlt-adjudication"
    EVENT = "DltAdjudicated"
    TEXT = "an adverse event adjudicated as a DLT or not; its AE must meet the rule named"
    LISTED_AS = "dlt_adjudications"
    ae_id: str = given("text", "the adverse event adjudicated")
    is_dlt: bool = given("boolean", correctable=True)
    rule_code: str | None = given(
        "text or null", "the protocol's DLT rule it meets", correctable=True
    )
    decided_on: str = given(
        "date", "the assessment date; an unresolved AE's duration runs to it", correctable=True
    )
    override_reason: str | None = given(
        "text or null", "set only on `DltRuleOverridden`: why it is a DLT although its AE "
        "does not meet the rule",
    )

    def check(self, record: Record, protocol: TrialProtocol, now: datetime) -> Self:
        ae = record.adverse_event(self.ae_id)
        day = parse_day(self.decided_on, "adjudication date")
        record.may_record(self.KIND, day, now, "adjudication date")
        not_before(day, parse_day(ae["onset"], "onset"), "adjudication date", "the onset")
        override = None if self.override_reason is None else self.override_reason.strip()
        if override == "":
            raise TrialRuleError("reason-required", "an override needs a reason")
        if not self.is_dlt:
            if self.rule_code is not None:
                raise TrialRuleError("dlt-definition", "only a DLT names a DLT rule")
            if override is not None:
                raise TrialRuleError("dlt-override", "only a DLT may be declared by override")
            return self
        codes = [r.code for r in protocol.dlt.rules]
        if self.rule_code not in codes:
            raise TrialRuleError(
                "dlt-definition",
                f"a DLT must name the protocol rule it meets ({', '.join(codes)})",
            )
        context = DltContext(
            record.dlt_window(protocol), day, terms_for(protocol.dlt.ctcae_version),
            record.labs(), record.dose_changes(),
        )
        unmet = unmet_conditions(protocol.dlt.rule(self.rule_code), ae, context)
        if unmet and override is None:
            raise TrialRuleError(
                "dlt-rule",
                describe_unmet(self.ae_id, self.rule_code, unmet)
                + " (a principal investigator may declare it with --override-reason)",
            )
        return replace(self, override_reason=override)


@dataclass(frozen=True, kw_only=True)
class DltOverride(DltAdjudication):
    """The same record, signed as its own event type so only a principal investigator may
    sign it: a DLT declared although its AE does not meet the rule it names."""

    EVENT = "DltRuleOverridden"
    TEXT = (
        "a DLT declared by a principal investigator although its AE does not meet the rule; "
        "the same payload as `DltAdjudicated`, `override_reason` set"
    )


@dataclass(frozen=True, kw_only=True)
class CourseCompletion(Fact):
    """That a course was completed. It does not say "no DLT": DLT-evaluability is derived
    from the adjudications and the DLT window."""

    KIND = "course"
    EVENT = "CourseCompleted"
    TEXT = "a course completed (DLT-evaluability is derived, never stated)"
    LISTED_AS = "course_completions"
    course: int = given("integer")
    completed_on: str = given("date", correctable=True)
    not_evaluable_reason: str | None = given(
        "text or null",
        "a non-toxic reason course 1 does not count (e.g. missed doses): replaced",
        correctable=True,
    )

    def check(self, record: Record, protocol: TrialProtocol, now: datetime) -> Self:
        day = parse_day(self.completed_on, "completion date")
        record.may_record(self.KIND, day, now, "completion date")
        reason = None if self.not_evaluable_reason is None else self.not_evaluable_reason.strip()
        if reason == "":
            raise TrialRuleError("reason-required", "a not-evaluable course needs a reason")
        window = record.dlt_window(protocol)
        if self.course == 1 and reason is None and window is not None and day < window[1]:
            raise TrialRuleError(
                "dlt-window",
                f"course 1 ends its DLT window on {window[1]}; it cannot be complete on {day}",
            )
        return replace(self, not_evaluable_reason=reason)


def lesion_from_record(data: dict[str, Any]) -> TargetLesion:
    """A target lesion as its payload stores it."""
    short_axis = data.get("short_axis_mm")
    return TargetLesion(
        lesion_id=data["lesion_id"],
        site=data["site"],
        longest_diameter_mm=Decimal(data["longest_diameter_mm"]),
        is_lymph_node=bool(data["is_lymph_node"]),
        short_axis_mm=None if short_axis is None else Decimal(short_axis),
    )


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
            "null at baseline; as recorded, state places the current dates again",
            kept=False,
        ),
        Derived(
            "off_schedule",
            "boolean",
            "outside that re-assessment's window (accepted, and flagged); as recorded",
            kept=False,
        ),
        Derived(
            "next_due", "date",
            "when the next re-assessment is due, as recorded; state derives it again from "
            "the current dates and the protocol's interval",
            kept=False,
        ),
        Derived("details", "object or null", "how the category was reached", kept=False),
    )
    assessed_on: str = given("date", correctable=True)
    baseline: bool = given("boolean")
    lesions: tuple[TargetLesion, ...] = given("list", "target lesions", correctable=True)
    new_lesions: bool = given("boolean", correctable=True)
    non_target_progression: bool = given("boolean", correctable=True)
    visit: str | None = visit_field()

    def check(self, record: Record, protocol: TrialProtocol, now: datetime) -> Self:
        return replace(self, visit=check_visit(protocol.schedule, "response", None, self.visit))

    @classmethod
    def from_record(cls, values: dict[str, Any]) -> Self:
        lesions = tuple(
            lesion if isinstance(lesion, TargetLesion) else lesion_from_record(lesion)
            for lesion in values["lesions"]
        )
        return super().from_record({**values, "lesions": lesions})

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
    visit: str | None = visit_field()

    def check(self, record: Record, protocol: TrialProtocol, now: datetime) -> Self:
        day = parse_day(self.observed_on, "observation date")
        record.may_record(self.KIND, day, now, "observation date")
        try:
            value = protocol.observation(self.kind).parse_value(self.value)
        except (KeyError, ValueError) as e:
            raise TrialRuleError("protocol-observation", str(e).strip("'\"")) from e
        visit = check_visit(protocol.schedule, "observation", self.kind, self.visit)
        return replace(self, value=str(value), visit=visit)


@dataclass(frozen=True, kw_only=True)
class Withdrawal(Fact):
    KIND = "withdrawal"
    EVENT = "ConsentWithdrawn"
    TEXT = "consent withdrawn; afterwards only safety follow-up"
    withdrawn_on: str = given("date", correctable=True)
    reason: str = given("text", correctable=True)

    def check(self, record: Record, protocol: TrialProtocol, now: datetime) -> Self:
        _left_on(self.withdrawn_on, "withdrawal date", record, now)
        return replace(self, reason=self.reason.strip() or "not given")


@dataclass(frozen=True, kw_only=True)
class TreatmentWithdrawal(Fact):
    """Withdrawn from treatment, not from the study: no further doses, follow-up goes on
    (labs, assessments, observations), unlike `Withdrawal` of all consent."""

    KIND = "treatment-withdrawal"
    EVENT = "WithdrewFromTreatment"
    TEXT = "withdrawn from treatment, staying in follow-up; afterwards no doses"
    withdrawn_on: str = given("date", correctable=True)
    reason: str = given("text", correctable=True)

    def check(self, record: Record, protocol: TrialProtocol, now: datetime) -> Self:
        _left_on(self.withdrawn_on, "withdrawal date", record, now)
        return replace(self, reason=self.reason.strip() or "not given")


@dataclass(frozen=True, kw_only=True)
class OffStudy(Fact):
    KIND = "off-study"
    EVENT = "WentOffStudy"
    TEXT = ("the patient went off study, for a reason (one of the protocol's "
            "`[end_of_study]` reasons, when it lists them); follow-up contacts come after")
    off_on: str = given("date", correctable=True)
    reason: str = given("text", correctable=True)

    def check(self, record: Record, protocol: TrialProtocol, now: datetime) -> Self:
        _left_on(self.off_on, "off-study date", record, now)
        if not self.reason.strip():
            raise TrialRuleError("reason-required", "going off study needs a reason")
        listed = protocol.end_of_study
        reason = self.reason.strip() if listed is None else listed.check_reason(self.reason)
        return replace(self, reason=reason)


@dataclass(frozen=True, kw_only=True)
class FollowUp(Fact):
    """A contact after the patient went off study: their vital status on that day."""

    KIND = "follow-up"
    EVENT = "FollowUpRecorded"
    TEXT = ("a follow-up contact after off study: the patient alive, died, or lost to "
            "follow-up (the day of the last attempt); nothing follows a death")
    LISTED_AS = "follow_up"
    contacted_on: str = given("date", correctable=True)
    status: str = given("text", "alive, died or lost-to-follow-up", correctable=True)
    text: str | None = given("text or null", "what was learnt, and from whom",
                             correctable=True)

    def check(self, record: Record, protocol: TrialProtocol, now: datetime) -> Self:
        check_follow_up_status(self.status)
        day = parse_day(self.contacted_on, "contact date")
        not_in_future(day, now.date(), "contact date")
        text = None if self.text is None or not self.text.strip() else self.text.strip()
        return replace(self, text=text)


def _left_on(text: str, what: str, record: Record, now: datetime) -> None:
    day = parse_day(text, what)
    not_in_future(day, now.date(), what)
    not_before(day, parse_day(record.consent_date, "consent"), what, "consent")


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
    query: str | None = given(
        "text or null", "the open query on that record this correction answers (Q1, …)",
        default=None,
    )


@dataclass(frozen=True, kw_only=True)
class DoseChange(Fact):
    KIND = "dose-change"
    EVENT = "DoseChanged"
    TEXT = "a dose modification, by the protocol's [dose_modification] rules"
    LISTED_AS = "dose_changes"
    course: int = given("integer", "the course it is made in")
    action: str = given("text", "reduce, hold, skip, resume or discontinue")
    to_level: int | None = given("integer or null", "the dose level from then on")
    reason: str = given("text", ", ".join(dose_modifications.REASONS))
    text: str = given("text", "what happened")
    effective_on: str = given("date", "from when (skip: the day skipped)")

    def check(self, record: Record, protocol: TrialProtocol, now: datetime) -> Self:
        effective = parse_day(self.effective_on, "effective date")
        record.may_record(self.KIND, effective, now, "effective date")
        if record.enrolled_on is None or record.level is None:
            raise TrialRuleError("enrolled-first", f"patient {record.patient_id} is not enrolled")
        not_before(effective, parse_day(record.enrolled_on, "enrollment"), "effective date",
                   "enrollment")
        if record.died_on is not None:
            raise TrialRuleError(
                "patient-died", f"patient {record.patient_id} died on {record.died_on}"
            )
        proposed = dose_modifications.ProposedChange(
            course=self.course, action=self.action, to_level=self.to_level,
            reason=self.reason, text=self.text, effective_on=effective,
        )
        dose_modifications.check_change(proposed, record, protocol, record.completed_courses)
        return replace(self, text=self.text.strip())


# Every fact, in the order of a patient's journey.
FACTS: tuple[type[Fact], ...] = (
    Consent,
    Reconsent,
    Screening,
    Enrolment,
    Dose,
    DoseChange,
    AdverseEvent,
    DltAdjudication,
    DltOverride,
    CourseCompletion,
    Response,
    Observation,
    Withdrawal,
    TreatmentWithdrawal,
    OffStudy,
    FollowUp,
    Correction,
)
# A kind's first declaration: an override is kept, read and corrected as the adjudication.
KEPT: dict[str, type[Fact]] = {}
for _fact in FACTS:
    if _fact.ON_RECORD:
        KEPT.setdefault(_fact.KIND, _fact)
CORRECTABLE: dict[str, frozenset[str]] = {
    fact.KIND: fact.correctable() for fact in FACTS if fact.correctable()
}
# What may still be recorded after consent is withdrawn: safety data only (adverse events,
# serious ones followed up, a death as a grade 5 event), corrections, and going off study.
ALLOWED_AFTER_WITHDRAWAL = frozenset(
    {AdverseEvent.KIND, DltAdjudication.KIND, Correction.KIND, OffStudy.KIND}
)
# What a patient withdrawn from treatment (still in follow-up) may no longer have recorded.
TREATMENT_KINDS = frozenset({Dose.KIND, DoseChange.KIND})


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


# -- labs ----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Lab(Fact):
    KIND = "lab"
    EVENT = "LabRecorded"
    TEXT = "a laboratory value; its CTCAE v3.0 grade is computed (protocols/ctcae_v3_labs.toml)"
    LISTED_AS = "labs"
    DERIVED = (
        Derived("grade", "integer or null",
                "CTCAE v3.0 grade 0-4 as recorded; null when not gradable. State grades the "
                "current values again against the current limits of normal", kept=False),
        Derived("grading", "text", "how the grade was reached, or why it could not be",
                kept=False),
        Derived("canonical_value", "decimal", "the value in the lab's canonical unit",
                kept=False),
        Derived("canonical_unit", "text", "the unit the CTCAE thresholds are written in",
                kept=False),
    )
    test: str = given("text", "anc, platelets, haemoglobin, alt, ast, alp, bilirubin, creatinine")
    value: str = given("decimal", correctable=True)
    unit: str = given("text", "a unit the grading table converts", correctable=True)
    collected_on: str = given("date", correctable=True)
    course: int | None = given("integer or null")
    day: int | None = given("integer or null", "day of the course")
    uln: str | None = given("decimal or null", "upper limit of normal, in `unit`",
                            correctable=True)
    lln: str | None = given("decimal or null", "lower limit of normal, in `unit`",
                            correctable=True)
    visit: str | None = visit_field()

    def check(self, record: Record, protocol: TrialProtocol, now: datetime) -> Self:
        grading = lab_grading(self.test)
        collected = parse_day(self.collected_on, "collection date")
        record.may_record(self.KIND, collected, now, "collection date")
        value = decimal_text(self.value, "lab value", positive=False)
        if Decimal(value) < 0:
            raise TrialRuleError("valid-number", f"lab value must not be negative, not {value}")
        grading.conversion(self.unit)
        if self.day is not None and self.course is None:
            raise TrialRuleError("lab-day", "a day of the course needs its course")
        for number, what in ((self.course, "course"), (self.day, "day")):
            if number is not None and (not isinstance(number, int) or number < 1):
                raise TrialRuleError("lab-day", f"{what} must be a whole number from 1")
        wrong = "uln" if grading.direction == "below" else "lln"
        if getattr(self, wrong) is not None:
            raise TrialRuleError(
                "lab-limit",
                f"{self.test} is graded against its {grading.limit_name}, not its "
                f"{wrong.upper()}",
            )
        uln = None if self.uln is None else decimal_text(self.uln, "ULN")
        lln = None if self.lln is None else decimal_text(self.lln, "LLN")
        unit = grading.conversion(self.unit).unit
        visit = check_visit(protocol.schedule, "lab", None, self.visit)
        return replace(self, value=value, unit=unit, uln=uln, lln=lln, visit=visit)

    def derive(self, screening: dict[str, Any]) -> dict[str, Any]:
        """The grade and canonical value of checked values; the limit of normal is the
        record's own, else the patient's screening value."""
        grading = lab_grading(self.test)
        own = self.lln if grading.direction == "below" else self.uln
        limit, source = patient_limit(grading, own, self.unit, screening)
        graded = grade_value(grading, Decimal(self.value), self.unit, limit, source)
        return {
            "grade": graded.grade,
            "grading": graded.grading,
            "canonical_value": graded.canonical_text,
            "canonical_unit": graded.canonical_unit,
        }


FACTS = (*FACTS, Lab)
KEPT[Lab.KIND] = Lab
CORRECTABLE[Lab.KIND] = Lab.correctable()
# Assessments made while the patient still consented (dated on or before the withdrawal
# day) stay part of the trial's data and may still be entered from the source afterwards;
# nothing dated after the withdrawal (FDA, "Data Retention When Subjects Withdraw", 2008).
COLLECTED_BEFORE_WITHDRAWAL = frozenset({Response.KIND, Observation.KIND, Lab.KIND})


# -- protocol deviations and concomitant medications ---------------------------------------

# A deviation's category: a fixed list, the same for every protocol.
DEVIATION_CATEGORIES = (
    "eligibility", "consent", "dosing", "schedule", "prohibited-medication", "procedure",
    "other",
)
DEVIATION_SEVERITIES = ("major", "minor")


@dataclass(frozen=True, kw_only=True)
class Deviation(Fact):
    KIND = "deviation"
    EVENT = "DeviationRecorded"
    TEXT = (
        "a protocol deviation recorded by the site or a monitor; one citing a record "
        "acknowledges the deviation trialctl detects on it"
    )
    LISTED_AS = "recorded_deviations"
    category: str = given("text", ", ".join(DEVIATION_CATEGORIES), correctable=True)
    severity: str = given("text", "major or minor", correctable=True)
    text: str = given("text", "what happened", correctable=True)
    record: int | None = given(
        "integer or null", "the ledger position of the patient's entry it concerns",
        default=None,
    )
    record_version: int | None = given(
        "integer or null",
        "that entry's patient record version, filled in by trialctl from the entry",
        default=None,
    )

    def check(self, record: Record, protocol: TrialProtocol, now: datetime) -> Self:
        if self.category not in DEVIATION_CATEGORIES:
            raise TrialRuleError(
                "deviation-category",
                f"category {self.category!r} is not one of {', '.join(DEVIATION_CATEGORIES)}",
            )
        if self.severity not in DEVIATION_SEVERITIES:
            raise TrialRuleError(
                "deviation-severity", f"severity {self.severity!r} is not major or minor"
            )
        if not self.text.strip():
            raise TrialRuleError("deviation-text", "a deviation needs a description (--text)")
        if self.record is not None and self.record_version is None:
            raise TrialRuleError(
                "deviation-record", f"#{self.record} is not an entry of {record.patient_id}"
            )
        return replace(self, text=self.text.strip())


@dataclass(frozen=True, kw_only=True)
class Conmed(Fact):
    KIND = "conmed"
    EVENT = "ConmedRecorded"
    TEXT = (
        "a concomitant medication; one the protocol's [[concomitant_medications]] prohibit "
        "while on study is a detected deviation"
    )
    LISTED_AS = "conmeds"
    drug: str = given("text", "its name as the site knows it", correctable=True)
    start: str = given("date", correctable=True)
    stop: str | None = given("date or null", "null: ongoing", correctable=True)
    dose: str | None = given("decimal or null", correctable=True)
    unit: str | None = given("text or null", "the dose's unit, e.g. mg/day", correctable=True)
    route: str | None = given("text or null", "e.g. oral, IV, IM, SC", correctable=True)
    indication: str | None = given("text or null", correctable=True)

    def check(self, record: Record, protocol: TrialProtocol, now: datetime) -> Self:
        if not self.drug.strip():
            raise TrialRuleError("conmed-drug", "a con-med needs its drug name (--drug)")
        # A con-med may have started long before consent: only the future is refused.
        start = parse_day(self.start, "con-med start")
        not_in_future(start, now.date(), "con-med start")
        if self.stop is not None:
            stop = parse_day(self.stop, "con-med stop")
            not_in_future(stop, now.date(), "con-med stop")
            not_before(stop, start, "con-med stop", "its start")
        if (self.dose is None) != (self.unit is None or not self.unit.strip()):
            raise TrialRuleError(
                "conmed-dose", "a con-med dose needs its unit, and a unit its dose"
            )
        dose = None if self.dose is None else decimal_text(self.dose, "con-med dose")

        def cleaned(text: str | None) -> str | None:
            return None if text is None or not text.strip() else text.strip()

        return replace(self, drug=self.drug.strip(), dose=dose, unit=cleaned(self.unit),
                       route=cleaned(self.route), indication=cleaned(self.indication))


FACTS = (*FACTS, Deviation, Conmed)
KEPT[Deviation.KIND] = Deviation
KEPT[Conmed.KIND] = Conmed
CORRECTABLE[Deviation.KIND] = Deviation.correctable()
CORRECTABLE[Conmed.KIND] = Conmed.correctable()
