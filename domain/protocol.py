"""The trial protocol as data: a frozen model, built once and never changed.

Nothing here knows any particular trial, and nothing here reads files: the TOML loader and
its validation live in :mod:`trialctl.domain.protocol_file` (``load_protocol``,
``protocol_from_dict``, ``ProtocolError``), which is also where the file's schema is
described.  Clinical numbers are :class:`~decimal.Decimal`, never floats.

:meth:`Protocol.to_dict` gives the protocol-file schema with JSON-native values (Decimals as
strings), so a protocol can travel in events and be read back by ``protocol_from_dict``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING

from trialctl.domain.co_signatures import CoSignature
from trialctl.domain.conmeds import ConmedRule
from trialctl.domain.eligibility_criteria import Criterion
from trialctl.domain.end_of_study import EndOfStudy
from trialctl.domain.forms import SCREENING, Form
from trialctl.domain.recist import RECIST_VERSIONS, RecistRules, recist_rules
from trialctl.domain.rules import ATTRIBUTIONS

if TYPE_CHECKING:  # the consent module reads protocol files, which import this one
    from trialctl.domain.consent import ConsentForms
    from trialctl.domain.schedule import ScheduledAssessment

__all__ = [
    "ATTRIBUTIONS",
    "DOSE_ACTIONS",
    "KNOWN_DESIGNS",
    "NUMBER_TEXT",
    "RECIST_VERSIONS",
    "SERIOUS_CRITERIA",
    "Agent",
    "AgentRole",
    "Design",
    "DltDefinition",
    "DltRule",
    "DoseLevel",
    "DoseModificationRules",
    "ExpeditedReporting",
    "FixedDose",
    "ObservationKind",
    "ObservationValueType",
    "Protocol",
    "ResponseSchedule",
]

KNOWN_DESIGNS: frozenset[str] = frozenset({"3+3"})
DOSE_ACTIONS: tuple[str, ...] = ("reduce", "hold", "skip", "resume", "discontinue")
SERIOUS_CRITERIA: tuple[str, ...] = (
    "death",
    "life_threatening",
    "hospitalisation",
    "disability",
    "congenital_anomaly",
    "other_important_medical_event",
)

NUMBER_TEXT = re.compile(r"^-?\d+(\.\d+)?$")
"""A clinical number written as text: digits, an optional fraction, no exponent."""


class AgentRole(StrEnum):
    ESCALATED = "escalated"
    FIXED = "fixed"


class ObservationValueType(StrEnum):
    COUNT = "count"  # non-negative whole number, with a unit
    DECIMAL = "decimal"  # non-negative Decimal, with a unit
    CATEGORICAL = "categorical"  # one of allowed_values


@dataclass(frozen=True)
class FixedDose:
    """A dose of a fixed (non-escalated) agent, given in courses first..last (None = on)."""

    name: str
    dose: Decimal
    unit: str
    first_course: int
    last_course: int | None = None

    def covers(self, course: int) -> bool:
        return course >= self.first_course and (
            self.last_course is None or course <= self.last_course
        )

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "name": self.name,
            "dose": str(self.dose),
            "first_course": self.first_course,
        }
        if self.last_course is not None:
            out["last_course"] = self.last_course
        return out


@dataclass(frozen=True)
class Agent:
    name: str
    role: AgentRole
    route: str
    schedule: str
    days: tuple[int, ...]
    frequency: str
    unit: str
    doses: tuple[FixedDose, ...] = ()

    @property
    def is_escalated(self) -> bool:
        return self.role is AgentRole.ESCALATED

    def dose_for_course(self, course: int) -> FixedDose:
        """The fixed dose given in ``course`` (1-based); ValueError for an escalated agent."""
        if course < 1:
            raise ValueError(f"course numbers start at 1 (got {course})")
        for d in self.doses:
            if d.covers(course):
                return d
        raise ValueError(f"agent {self.name!r} has no fixed dose for course {course}")

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "name": self.name,
            "role": str(self.role),
            "route": self.route,
            "schedule": self.schedule,
            "days": list(self.days),
            "frequency": self.frequency,
            "unit": self.unit,
        }
        if self.doses:
            out["doses"] = [d.to_dict() for d in self.doses]
        return out


@dataclass(frozen=True)
class DoseLevel:
    level: int
    dose: Decimal
    unit: str
    label: str | None = None
    frequency: str | None = None

    def describe(self) -> str:
        """Human wording, e.g. ``level 4: 800 mg/day (400 mg twice daily)``."""
        extra = self.label or self.frequency
        return f"level {self.level}: {self.dose} {self.unit}" + (f" ({extra})" if extra else "")

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"level": self.level, "dose": str(self.dose), "unit": self.unit}
        if self.label is not None:
            out["label"] = self.label
        if self.frequency is not None:
            out["frequency"] = self.frequency
        return out


@dataclass(frozen=True)
class Design:
    """Escalation design; exactly one of dlt_window_courses / dlt_window_days is set."""

    name: str
    cohort_size: int
    max_per_level: int
    allow_deescalation: bool
    dlt_window_courses: int | None = None
    dlt_window_days: int | None = None

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "name": self.name,
            "cohort_size": self.cohort_size,
            "max_per_level": self.max_per_level,
            "allow_deescalation": self.allow_deescalation,
        }
        if self.dlt_window_courses is not None:
            out["dlt_window_courses"] = self.dlt_window_courses
        if self.dlt_window_days is not None:
            out["dlt_window_days"] = self.dlt_window_days
        return out


@dataclass(frozen=True)
class DltRule:
    """One dose-limiting-toxicity rule.  ``text`` is authoritative; the optional
    structured fields help later classification (grade >= min_grade, lasting
    > duration_days_more_than, attribution in attributions)."""

    code: str
    text: str
    toxicity: str | None = None
    min_grade: int | None = None
    duration_days_more_than: int | None = None
    attributions: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"code": self.code, "text": self.text}
        if self.toxicity is not None:
            out["toxicity"] = self.toxicity
        if self.min_grade is not None:
            out["min_grade"] = self.min_grade
        if self.duration_days_more_than is not None:
            out["duration_days_more_than"] = self.duration_days_more_than
        if self.attributions:
            out["attributions"] = list(self.attributions)
        return out


@dataclass(frozen=True)
class DltDefinition:
    ctcae_version: str
    rules: tuple[DltRule, ...]

    def rule(self, code: str) -> DltRule:
        for r in self.rules:
            if r.code == code:
                return r
        raise KeyError(code)

    def to_dict(self) -> dict[str, object]:
        return {"ctcae_version": self.ctcae_version, "rules": [r.to_dict() for r in self.rules]}


@dataclass(frozen=True)
class ResponseSchedule:
    """How response is assessed: the RECIST version, and re-assessments every
    `assessment_interval_weeks` after baseline, each on time within +/- `window_days`."""

    recist_version: str
    assessment_interval_weeks: int
    window_days: int

    @property
    def rules(self) -> RecistRules:
        return recist_rules(self.recist_version)

    @property
    def interval_days(self) -> int:
        return 7 * self.assessment_interval_weeks

    def due(self, baseline: date, number: int) -> date:
        """The date re-assessment `number` (1, 2, ...) is due after the baseline."""
        return baseline + timedelta(days=number * self.interval_days)

    def place(self, baseline: date, day: date) -> tuple[int, bool]:
        """The scheduled re-assessment a visit on `day` stands for (the nearest one, never
        the baseline itself), and whether it fell outside that one's window."""
        offset = (day - baseline).days
        # Nearest multiple of the interval, halves rounded up (plain integer arithmetic).
        number = max(1, (2 * offset + self.interval_days) // (2 * self.interval_days))
        return number, abs((day - self.due(baseline, number)).days) > self.window_days

    def to_dict(self) -> dict[str, object]:
        return {
            "recist_version": self.recist_version,
            "assessment_interval_weeks": self.assessment_interval_weeks,
            "window_days": self.window_days,
        }


@dataclass(frozen=True)
class ObservationKind:
    """A declared secondary observation (e.g. circulating tumour cells, pAKT)."""

    code: str
    name: str
    value_type: ObservationValueType
    unit: str | None = None
    allowed_values: tuple[str, ...] = ()
    method: str | None = None
    schedule: str | None = None

    def parse_value(self, value: str | int | Decimal) -> Decimal | str:
        """Check a recorded value against this kind; ValueError if it does not fit."""
        if self.value_type is ObservationValueType.CATEGORICAL:
            text = str(value).strip()
            if text not in self.allowed_values:
                raise ValueError(f"{self.code}: {text!r} is not one of {list(self.allowed_values)}")
            return text
        if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
            raise ValueError(f"{self.code}: expected a number, got {value!r}")
        text = str(value).strip()
        if not NUMBER_TEXT.match(text):
            raise ValueError(f"{self.code}: expected a number, got {value!r}")
        number = Decimal(text)
        if number < 0:
            raise ValueError(f"{self.code}: must not be negative (got {number})")
        if self.value_type is ObservationValueType.COUNT and number != number.to_integral_value():
            raise ValueError(f"{self.code}: a count must be a whole number (got {number})")
        return number

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "code": self.code,
            "name": self.name,
            "value_type": str(self.value_type),
        }
        if self.unit is not None:
            out["unit"] = self.unit
        if self.allowed_values:
            out["allowed_values"] = list(self.allowed_values)
        if self.method is not None:
            out["method"] = self.method
        if self.schedule is not None:
            out["schedule"] = self.schedule
        return out


@dataclass(frozen=True)
class DoseModificationRules:
    """How a patient's own dose may change: which actions, how far down, how long a hold,
    whether a reduced dose may go back up, and when too little dose in course 1 (without a
    DLT) makes the patient not DLT-evaluable."""

    actions: tuple[str, ...]
    max_reduction_levels: int
    max_hold_days: int
    re_escalation: bool
    min_course1_dose_fraction: Decimal | None = None

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "actions": list(self.actions),
            "max_reduction_levels": self.max_reduction_levels,
            "max_hold_days": self.max_hold_days,
            "re_escalation": self.re_escalation,
        }
        if self.min_course1_dose_fraction is not None:
            out["min_course1_dose_fraction"] = str(self.min_course1_dose_fraction)
        return out


@dataclass(frozen=True)
class ExpeditedReporting:
    """Calendar days from the site learning of a serious adverse event to its report."""

    fatal_or_life_threatening_days: int
    other_serious_days: int

    def days_for(self, criteria: tuple[str, ...] | list[str]) -> int:
        fatal = "death" in criteria or "life_threatening" in criteria
        return self.fatal_or_life_threatening_days if fatal else self.other_serious_days

    def to_dict(self) -> dict[str, object]:
        return {
            "fatal_or_life_threatening_days": self.fatal_or_life_threatening_days,
            "other_serious_days": self.other_serious_days,
        }


@dataclass(frozen=True)
class Protocol:
    id: str
    title: str
    phase: str
    course_length_days: int
    start_level: int
    agents: tuple[Agent, ...]
    dose_levels: tuple[DoseLevel, ...]
    design: Design
    dlt: DltDefinition
    eligibility: tuple[Criterion, ...]
    response: ResponseSchedule
    observations: tuple[ObservationKind, ...] = ()
    source: str | None = None
    planned_accrual: int | None = None
    dose_modification: DoseModificationRules | None = None
    expedited_reporting: ExpeditedReporting | None = None
    # The informed-consent form versions (domain/consent.py); None: the protocol lists none.
    consent: ConsentForms | None = None
    # The assessment schedule (domain/schedule.py), read against each patient's facts.
    schedule: tuple[ScheduledAssessment, ...] = ()
    # The data-collection forms ([[forms]]); empty in a protocol signed before forms existed.
    forms: tuple[Form, ...] = ()
    # Prohibited and restricted concomitant medications (domain/conmeds.py).
    concomitant_medications: tuple[ConmedRule, ...] = ()
    # Event types whose entries need a second signer (domain/co_signatures.py).
    co_signatures: tuple[CoSignature, ...] = ()
    # The reasons a patient may go off study for (domain/end_of_study.py); None: any.
    end_of_study: EndOfStudy | None = None

    # -- lookups ---------------------------------------------------------------
    @property
    def num_levels(self) -> int:
        return len(self.dose_levels)

    def level(self, n: int) -> DoseLevel:
        """Dose level ``n`` (levels are numbered 1..num_levels); KeyError otherwise."""
        if isinstance(n, bool) or not 1 <= n <= len(self.dose_levels):
            raise KeyError(f"no dose level {n} (levels are 1..{len(self.dose_levels)})")
        return self.dose_levels[n - 1]

    def has_level(self, n: int) -> bool:
        return not isinstance(n, bool) and 1 <= n <= len(self.dose_levels)

    @property
    def escalated_agent(self) -> Agent:
        return next(a for a in self.agents if a.is_escalated)

    @property
    def fixed_agents(self) -> tuple[Agent, ...]:
        return tuple(a for a in self.agents if not a.is_escalated)

    @property
    def dlt_window_days(self) -> int:
        """Length of the DLT observation window in days."""
        if self.design.dlt_window_days is not None:
            return self.design.dlt_window_days
        assert self.design.dlt_window_courses is not None
        return self.course_length_days * self.design.dlt_window_courses

    @property
    def eligibility_criteria(self) -> tuple[Criterion, ...]:
        return self.eligibility

    # -- forms -----------------------------------------------------------------
    def form(self, name: str) -> Form:
        """The form called ``name``; KeyError naming the declared ones otherwise."""
        for f in self.forms:
            if f.name == name:
                return f
        raise KeyError(f"no form {name!r} (declared: {', '.join(f.name for f in self.forms)})")

    @property
    def screening_form(self) -> Form | None:
        """The form eligibility is evaluated from, if the protocol declares one."""
        return next((f for f in self.forms if f.name == SCREENING), None)

    def co_signer_role(self, event_type: str) -> str | None:
        """The role whose second signature an entry of `event_type` needs, if any."""
        return next((c.role for c in self.co_signatures if c.event_type == event_type), None)

    def observation(self, code: str) -> ObservationKind:
        for o in self.observations:
            if o.code == code:
                return o
        raise KeyError(code)

    # -- export ----------------------------------------------------------------
    def to_dict(self) -> dict[str, object]:
        """JSON-native dict in the protocol-file schema (Decimals as strings)."""
        out: dict[str, object] = {"id": self.id, "title": self.title, "phase": self.phase}
        if self.source is not None:
            out["source"] = self.source
        if self.planned_accrual is not None:
            out["planned_accrual"] = self.planned_accrual
        out.update(
            {
                "course_length_days": self.course_length_days,
                "start_level": self.start_level,
                "agents": [a.to_dict() for a in self.agents],
                "dose_levels": [d.to_dict() for d in self.dose_levels],
                "design": self.design.to_dict(),
                "dlt": self.dlt.to_dict(),
                "eligibility": [c.to_dict() for c in self.eligibility],
                "response": self.response.to_dict(),
                "observations": [o.to_dict() for o in self.observations],
            }
        )
        if self.dose_modification is not None:
            out["dose_modification"] = self.dose_modification.to_dict()
        if self.expedited_reporting is not None:
            out["expedited_reporting"] = self.expedited_reporting.to_dict()
        if self.consent is not None:
            out["consent"] = self.consent.to_dict()
        if self.schedule:
            out["schedule"] = [a.to_dict() for a in self.schedule]
        if self.forms:
            out["forms"] = [f.to_dict() for f in self.forms]
        if self.concomitant_medications:
            out["concomitant_medications"] = [r.to_dict() for r in self.concomitant_medications]
        if self.co_signatures:
            out["co_signatures"] = [c.to_dict() for c in self.co_signatures]
        if self.end_of_study is not None:
            out["end_of_study"] = self.end_of_study.to_dict()
        return out
