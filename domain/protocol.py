"""The trial protocol as data: a frozen model and a strict TOML loader.

Nothing here knows any particular trial.  A protocol file declares (see
``protocols/NCT00084513.toml`` for a commented example)::

    id, title, [phase], [source], [planned_accrual], course_length_days, start_level
    [[agents]]        name, role ("escalated"|"fixed"), route, schedule, days, frequency,
                      unit, and for a fixed agent [[agents.doses]] name, dose,
                      first_course, [last_course]
    [[dose_levels]]   level, dose, unit, [label], [frequency]
    [design]          name ("3+3"), cohort_size, max_per_level, allow_deescalation,
                      dlt_window_courses | dlt_window_days
    [dlt]             ctcae_version, [[dlt.rules]] code, text, [toxicity], [min_grade],
                      [duration_days_more_than], [attributions]
    [[eligibility]]   code, text, kind, field, op, [threshold], [threshold_field], [uln],
                      [uln_field], [unit], [applies_if = {field, op, [threshold]}]
    [response]        criteria ("RECIST 1.1"), every_weeks
    [[observations]]  code, name, value_type ("count"|"decimal"|"categorical"), [unit],
                      [allowed_values], [method], [schedule]

Clinical numbers become :class:`~decimal.Decimal`.  They are written as integers or as
strings (``"400"``, ``"2.0"``); TOML floats are refused, as are unknown keys, missing
fields and inconsistent values.  Every refusal is a :class:`ProtocolError` whose message
starts with the path of the offending field, e.g.
``dose_levels[2].dose: doses must increase (300 after 400)`` (array indices count from 0).

:meth:`Protocol.to_dict` gives the same schema with JSON-native values (Decimals as
strings), and :func:`protocol_from_dict` reads it back, so a protocol can travel in events.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, time
from decimal import Decimal
from enum import StrEnum
from typing import NoReturn

from trialctl.domain.eligibility import (
    CONDITION_OPERATORS,
    Condition,
    Criterion,
    CriterionKind,
    Operator,
    Threshold,
)
from trialctl.domain.rules import ATTRIBUTIONS

__all__ = [
    "KNOWN_DESIGNS",
    "KNOWN_RESPONSE_CRITERIA",
    "Agent",
    "AgentRole",
    "Design",
    "DltDefinition",
    "DltRule",
    "DoseLevel",
    "FixedDose",
    "ObservationKind",
    "ObservationValueType",
    "Protocol",
    "ProtocolError",
    "ResponseSchedule",
    "load_protocol",
    "protocol_from_dict",
]

KNOWN_DESIGNS: frozenset[str] = frozenset({"3+3"})
KNOWN_RESPONSE_CRITERIA: frozenset[str] = frozenset({"RECIST 1.1"})

_NUMBER_RE = re.compile(r"^-?\d+(\.\d+)?$")
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_RANGE_RE = re.compile(r"^\s*(\d+)\s*(?:-|\.\.)\s*(\d+)\s*$")


class ProtocolError(ValueError):
    """A protocol that cannot be accepted; ``path`` names the offending field."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.detail = message


# --------------------------------------------------------------------------- model


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
    criteria: str
    every_weeks: int

    def to_dict(self) -> dict[str, object]:
        return {"criteria": self.criteria, "every_weeks": self.every_weeks}


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
        if not _NUMBER_RE.match(text):
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
        return out


# --------------------------------------------------------------------------- reading


class _TomlFloat:
    """Marker for a TOML float literal, so that it can be refused with its path."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _fail(path: str, message: str) -> NoReturn:
    raise ProtocolError(path, message)


def _kind_of(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, date | time):
        return "a date/time"
    return type(value).__name__


def _refuse_float(value: object, path: str) -> None:
    if isinstance(value, _TomlFloat | float):
        _fail(
            path,
            f"floats are not allowed (got {value!r}); write the number as a string, "
            f'e.g. "{value!r}"',
        )


def _str(value: object, path: str) -> str:
    _refuse_float(value, path)
    if not isinstance(value, str):
        _fail(path, f"expected a string, got {_kind_of(value)}")
    if not value.strip():
        _fail(path, "must not be empty")
    return value


def _int(value: object, path: str, *, minimum: int = 0) -> int:
    _refuse_float(value, path)
    if isinstance(value, bool) or not isinstance(value, int):
        _fail(path, f"expected an integer, got {_kind_of(value)}")
    if value < 0:
        _fail(path, f"must not be negative (got {value})")
    if value < minimum:
        _fail(path, f"must be at least {minimum} (got {value})")
    return value


def _decimal(value: object, path: str, *, positive: bool = False) -> Decimal:
    _refuse_float(value, path)
    if isinstance(value, bool):
        _fail(path, "expected a number, got a boolean")
    if isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, str) and _NUMBER_RE.match(value.strip()):
        number = Decimal(value.strip())
    elif isinstance(value, str):
        _fail(path, f'expected a number written as digits, e.g. "400" or "2.0", got {value!r}')
    else:
        _fail(path, f"expected a number (integer or string), got {_kind_of(value)}")
    if number < 0:
        _fail(path, f"must not be negative (got {number})")
    if positive and number == 0:
        _fail(path, "must be greater than zero")
    return number


def _bool(value: object, path: str) -> bool:
    if not isinstance(value, bool):
        _fail(path, f"expected true or false, got {_kind_of(value)}")
    return value


def _name(value: object, path: str) -> str:
    text = _str(value, path)
    if not _NAME_RE.match(text):
        _fail(path, f"{text!r} must be lower_snake_case (letters, digits, underscores)")
    return text


def _list(value: object, path: str, *, nonempty: bool = True) -> list[object]:
    if not isinstance(value, list | tuple):
        _fail(path, f"expected an array, got {_kind_of(value)}")
    if nonempty and not value:
        _fail(path, "must not be empty")
    return list(value)


class _Table:
    """A TOML table being read: knows its path and refuses unknown keys up front."""

    def __init__(self, value: object, path: str, allowed: Sequence[str]) -> None:
        if not isinstance(value, Mapping):
            _fail(path or "<protocol>", f"expected a table, got {_kind_of(value)}")
        self.data: Mapping[str, object] = value
        self.path = path
        self.allowed = tuple(allowed)
        for key in value:
            if key not in self.allowed:
                _fail(self.at(str(key)), f"unknown field (allowed: {', '.join(self.allowed)})")

    def at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def has(self, key: str) -> bool:
        assert key in self.allowed, key
        return self.data.get(key) is not None

    def get(self, key: str) -> object | None:
        assert key in self.allowed, key
        return self.data.get(key)

    def req(self, key: str) -> object:
        value = self.get(key)
        if value is None:
            _fail(self.at(key), "required field is missing")
        return value

    def tables(self, key: str, allowed: Sequence[str], *, required: bool) -> list[_Table]:
        value = self.req(key) if required else self.get(key)
        if value is None:
            return []
        items = _list(value, self.at(key), nonempty=required)
        return [_Table(item, f"{self.at(key)}[{i}]", allowed) for i, item in enumerate(items)]

    def opt_str(self, key: str) -> str | None:
        value = self.get(key)
        return None if value is None else _str(value, self.at(key))


def _unique(items: Sequence[tuple[str, str]], what: str) -> None:
    """``items`` = (path, key); refuse the second occurrence of a key."""
    seen: set[str] = set()
    for path, key in items:
        if key in seen:
            _fail(path, f"duplicate {what} {key!r}")
        seen.add(key)


def _days(value: object, path: str, course_length: int) -> tuple[int, ...]:
    if isinstance(value, str):
        m = _RANGE_RE.match(value)
        if not m:
            _fail(path, f'expected a list of days or a range like "1-21", got {value!r}')
        first, last = int(m.group(1)), int(m.group(2))
        if first > last:
            _fail(path, f"range {value!r} runs backwards")
        days = tuple(range(first, last + 1))
    else:
        days = tuple(_int(d, f"{path}[{i}]", minimum=1) for i, d in enumerate(_list(value, path)))
        for i in range(1, len(days)):
            if days[i] <= days[i - 1]:
                _fail(f"{path}[{i}]", f"days must increase ({days[i]} after {days[i - 1]})")
    if days[0] < 1 or days[-1] > course_length:
        _fail(path, f"days must lie within the course, 1..{course_length}")
    return days


def _parse_fixed_doses(agent: _Table, unit: str) -> tuple[FixedDose, ...]:
    doses: list[FixedDose] = []
    tables = agent.tables("doses", ("name", "dose", "first_course", "last_course"), required=True)
    for t in tables:
        first = _int(t.req("first_course"), t.at("first_course"), minimum=1)
        last_raw = t.get("last_course")
        last = None if last_raw is None else _int(last_raw, t.at("last_course"), minimum=1)
        if last is not None and last < first:
            _fail(t.at("last_course"), f"must not be before first_course ({last} < {first})")
        expected_first = 1 if not doses else (doses[-1].last_course or 0) + 1
        if doses and doses[-1].last_course is None:
            _fail(t.at("first_course"), "follows a dose that has no last_course (runs forever)")
        if first != expected_first:
            _fail(
                t.at("first_course"),
                f"doses must cover every course in order (expected {expected_first}, got {first})",
            )
        doses.append(
            FixedDose(
                name=_str(t.req("name"), t.at("name")),
                dose=_decimal(t.req("dose"), t.at("dose"), positive=True),
                unit=unit,
                first_course=first,
                last_course=last,
            )
        )
    if doses[-1].last_course is not None:
        _fail(
            tables[-1].at("last_course"),
            "the last dose must have no last_course, so that every course has a dose",
        )
    _unique([(t.at("name"), d.name) for t, d in zip(tables, doses, strict=True)], "dose name")
    return tuple(doses)


_AGENT_KEYS = (
    "name",
    "role",
    "route",
    "schedule",
    "days",
    "frequency",
    "unit",
    "doses",
)


def _parse_agents(root: _Table, course_length: int) -> tuple[Agent, ...]:
    agents: list[Agent] = []
    tables = root.tables("agents", _AGENT_KEYS, required=True)
    for t in tables:
        role_text = _str(t.req("role"), t.at("role"))
        try:
            role = AgentRole(role_text)
        except ValueError:
            _fail(t.at("role"), f"unknown role {role_text!r} (allowed: escalated, fixed)")
        unit = _str(t.req("unit"), t.at("unit"))
        if role is AgentRole.ESCALATED:
            if t.has("doses"):
                _fail(t.at("doses"), "an escalated agent takes its doses from dose_levels")
            doses: tuple[FixedDose, ...] = ()
        else:
            doses = _parse_fixed_doses(t, unit)
        agents.append(
            Agent(
                name=_str(t.req("name"), t.at("name")),
                role=role,
                route=_str(t.req("route"), t.at("route")),
                schedule=_str(t.req("schedule"), t.at("schedule")),
                days=_days(t.req("days"), t.at("days"), course_length),
                frequency=_str(t.req("frequency"), t.at("frequency")),
                unit=unit,
                doses=doses,
            )
        )
    _unique([(t.at("name"), a.name) for t, a in zip(tables, agents, strict=True)], "agent")
    escalated = [a for a in agents if a.is_escalated]
    if len(escalated) != 1:
        _fail("agents", f"exactly one agent must have role 'escalated' (found {len(escalated)})")
    return tuple(agents)


def _parse_dose_levels(root: _Table, agent_unit: str) -> tuple[DoseLevel, ...]:
    levels: list[DoseLevel] = []
    for i, t in enumerate(
        root.tables("dose_levels", ("level", "dose", "unit", "label", "frequency"), required=True)
    ):
        number = _int(t.req("level"), t.at("level"), minimum=1)
        if any(lv.level == number for lv in levels):
            _fail(t.at("level"), f"duplicate level {number}")
        if number != i + 1:
            _fail(
                t.at("level"),
                f"levels must be numbered 1, 2, 3, ... in order (expected {i + 1}, got {number})",
            )
        dose = _decimal(t.req("dose"), t.at("dose"), positive=True)
        if levels and dose <= levels[-1].dose:
            _fail(t.at("dose"), f"doses must increase ({dose} after {levels[-1].dose})")
        unit = _str(t.req("unit"), t.at("unit"))
        if unit != agent_unit:
            _fail(
                t.at("unit"),
                f"{unit!r} differs from the escalated agent's unit {agent_unit!r}",
            )
        levels.append(
            DoseLevel(
                level=number,
                dose=dose,
                unit=unit,
                label=t.opt_str("label"),
                frequency=t.opt_str("frequency"),
            )
        )
    return tuple(levels)


def _parse_design(root: _Table) -> Design:
    t = _Table(
        root.req("design"),
        "design",
        (
            "name",
            "cohort_size",
            "max_per_level",
            "allow_deescalation",
            "dlt_window_courses",
            "dlt_window_days",
        ),
    )
    name = _str(t.req("name"), t.at("name"))
    if name not in KNOWN_DESIGNS:
        _fail(t.at("name"), f"unknown design {name!r} (known: {', '.join(sorted(KNOWN_DESIGNS))})")
    cohort = _int(t.req("cohort_size"), t.at("cohort_size"), minimum=1)
    max_per = _int(t.req("max_per_level"), t.at("max_per_level"), minimum=1)
    if name == "3+3":
        if cohort != 3:
            _fail(t.at("cohort_size"), f"the 3+3 design uses cohorts of 3 (got {cohort})")
        if max_per != 6:
            _fail(
                t.at("max_per_level"),
                f"the 3+3 design treats at most 6 per level (got {max_per})",
            )
    allow = _bool(t.req("allow_deescalation"), t.at("allow_deescalation"))
    courses_raw, days_raw = t.get("dlt_window_courses"), t.get("dlt_window_days")
    if (courses_raw is None) == (days_raw is None):
        _fail(
            t.at("dlt_window_courses"),
            "give exactly one of dlt_window_courses or dlt_window_days",
        )
    return Design(
        name=name,
        cohort_size=cohort,
        max_per_level=max_per,
        allow_deescalation=allow,
        dlt_window_courses=None
        if courses_raw is None
        else _int(courses_raw, t.at("dlt_window_courses"), minimum=1),
        dlt_window_days=None
        if days_raw is None
        else _int(days_raw, t.at("dlt_window_days"), minimum=1),
    )


def _parse_dlt(root: _Table) -> DltDefinition:
    t = _Table(root.req("dlt"), "dlt", ("ctcae_version", "rules"))
    version = _str(t.req("ctcae_version"), t.at("ctcae_version"))
    rules: list[DltRule] = []
    tables = t.tables(
        "rules",
        ("code", "text", "toxicity", "min_grade", "duration_days_more_than", "attributions"),
        required=True,
    )
    for r in tables:
        grade_raw = r.get("min_grade")
        grade = None if grade_raw is None else _int(grade_raw, r.at("min_grade"), minimum=1)
        if grade is not None and grade > 5:
            _fail(r.at("min_grade"), f"CTCAE grades run 1..5 (got {grade})")
        dur_raw = r.get("duration_days_more_than")
        attributions: tuple[str, ...] = ()
        attr_raw = r.get("attributions")
        if attr_raw is not None:
            items = _list(attr_raw, r.at("attributions"))
            attributions = tuple(
                _str(a, f"{r.at('attributions')}[{i}]") for i, a in enumerate(items)
            )
            for i, a in enumerate(attributions):
                if a not in ATTRIBUTIONS:
                    _fail(
                        f"{r.at('attributions')}[{i}]",
                        f"unknown attribution {a!r} (allowed: {', '.join(ATTRIBUTIONS)})",
                    )
        rules.append(
            DltRule(
                code=_name(r.req("code"), r.at("code")),
                text=_str(r.req("text"), r.at("text")),
                toxicity=None
                if r.get("toxicity") is None
                else _name(r.get("toxicity"), r.at("toxicity")),
                min_grade=grade,
                duration_days_more_than=None
                if dur_raw is None
                else _int(dur_raw, r.at("duration_days_more_than")),
                attributions=attributions,
            )
        )
    _unique([(r.at("code"), x.code) for r, x in zip(tables, rules, strict=True)], "rule code")
    return DltDefinition(ctcae_version=version, rules=tuple(rules))


def _operator(value: object, path: str, allowed: frozenset[Operator] | None = None) -> Operator:
    text = _str(value, path)
    choices = [str(o) for o in Operator if allowed is None or o in allowed]
    if text not in choices:
        _fail(path, f"unknown operator {text!r} (allowed: {', '.join(choices)})")
    return Operator(text)


def _threshold(t: _Table, op: Operator, *, has_field: bool = False) -> Threshold:
    """Read ``threshold`` as ``op`` needs it (``has_field``: threshold_field is given)."""
    path = t.at("threshold")
    raw = t.get("threshold")
    if op in (Operator.IS_TRUE, Operator.IS_FALSE):
        if raw is not None:
            _fail(path, f"operator {op} takes no threshold")
        return None
    if op in (Operator.GE, Operator.LE) and has_field:
        if raw is not None:
            _fail(path, "give either threshold or threshold_field, not both")
        return None
    if raw is None:
        _fail(path, f"required field is missing (operator {op} needs it)")
    if op in (Operator.GE, Operator.LE):
        return _decimal(raw, path)
    if op is Operator.X_ULN_AT_MOST:
        return _decimal(raw, path, positive=True)
    if op is Operator.DAYS_SINCE_AT_LEAST:
        return _int(raw, path, minimum=1)
    if op is Operator.EQ:
        if isinstance(raw, int) and not isinstance(raw, bool):
            return str(_int(raw, path))
        return _str(raw, path)
    # Operator.IN
    items = _list(raw, path)
    out: list[str] = []
    for i, item in enumerate(items):
        if isinstance(item, int) and not isinstance(item, bool):
            out.append(str(_int(item, f"{path}[{i}]")))
        else:
            out.append(_str(item, f"{path}[{i}]").strip())
    return tuple(out)


_CRITERION_KEYS = (
    "code",
    "text",
    "kind",
    "field",
    "op",
    "threshold",
    "threshold_field",
    "uln",
    "uln_field",
    "unit",
    "applies_if",
)


def _parse_criterion(t: _Table) -> Criterion:
    code = _name(t.req("code"), t.at("code"))
    text = _str(t.req("text"), t.at("text"))
    kind_text = _str(t.req("kind"), t.at("kind"))
    try:
        kind = CriterionKind(kind_text)
    except ValueError:
        _fail(t.at("kind"), f"unknown kind {kind_text!r} (allowed: inclusion, exclusion)")
    field = _name(t.req("field"), t.at("field"))
    op = _operator(t.req("op"), t.at("op"))

    threshold_field: str | None = None
    if t.has("threshold_field"):
        if op not in (Operator.GE, Operator.LE):
            _fail(t.at("threshold_field"), "only used with operators >= and <=")
        threshold_field = _name(t.get("threshold_field"), t.at("threshold_field"))
    threshold = _threshold(t, op, has_field=threshold_field is not None)

    uln: Decimal | None = None
    uln_field: str | None = None
    for key in ("uln", "uln_field"):
        if t.has(key) and op is not Operator.X_ULN_AT_MOST:
            _fail(t.at(key), "only used with operator x_uln_at_most")
    if op is Operator.X_ULN_AT_MOST:
        if t.has("uln") == t.has("uln_field"):
            _fail(t.at("uln_field"), "give exactly one of uln (a number) or uln_field")
        if t.has("uln"):
            uln = _decimal(t.get("uln"), t.at("uln"), positive=True)
        else:
            uln_field = _name(t.get("uln_field"), t.at("uln_field"))

    unit = t.opt_str("unit")
    if op in (Operator.GE, Operator.LE) and unit is None:
        _fail(t.at("unit"), f"required field is missing (operator {op} compares quantities)")

    applies_if: Condition | None = None
    if t.has("applies_if"):
        c = _Table(t.get("applies_if"), t.at("applies_if"), ("field", "op", "threshold"))
        c_op = _operator(c.req("op"), c.at("op"), CONDITION_OPERATORS)
        applies_if = Condition(
            field=_name(c.req("field"), c.at("field")), op=c_op, threshold=_threshold(c, c_op)
        )

    return Criterion(
        code=code,
        text=text,
        kind=kind,
        field=field,
        op=op,
        threshold=threshold,
        unit=unit,
        threshold_field=threshold_field,
        uln=uln,
        uln_field=uln_field,
        applies_if=applies_if,
    )


def _parse_eligibility(root: _Table) -> tuple[Criterion, ...]:
    tables = root.tables("eligibility", _CRITERION_KEYS, required=True)
    criteria = [_parse_criterion(t) for t in tables]
    _unique(
        [(t.at("code"), c.code) for t, c in zip(tables, criteria, strict=True)],
        "criterion code",
    )
    return tuple(criteria)


def _parse_response(root: _Table) -> ResponseSchedule:
    t = _Table(root.req("response"), "response", ("criteria", "every_weeks"))
    criteria = _str(t.req("criteria"), t.at("criteria"))
    if criteria not in KNOWN_RESPONSE_CRITERIA:
        _fail(
            t.at("criteria"),
            f"unknown response criteria {criteria!r} "
            f"(known: {', '.join(sorted(KNOWN_RESPONSE_CRITERIA))})",
        )
    return ResponseSchedule(
        criteria=criteria, every_weeks=_int(t.req("every_weeks"), t.at("every_weeks"), minimum=1)
    )


def _parse_observations(root: _Table) -> tuple[ObservationKind, ...]:
    out: list[ObservationKind] = []
    tables = root.tables(
        "observations",
        ("code", "name", "value_type", "unit", "allowed_values", "method", "schedule"),
        required=False,
    )
    for t in tables:
        vt_text = _str(t.req("value_type"), t.at("value_type"))
        try:
            value_type = ObservationValueType(vt_text)
        except ValueError:
            _fail(
                t.at("value_type"),
                f"unknown value type {vt_text!r} (allowed: "
                f"{', '.join(str(v) for v in ObservationValueType)})",
            )
        unit = t.opt_str("unit")
        allowed: tuple[str, ...] = ()
        if value_type is ObservationValueType.CATEGORICAL:
            items = _list(t.req("allowed_values"), t.at("allowed_values"))
            allowed = tuple(
                _str(v, f"{t.at('allowed_values')}[{i}]").strip() for i, v in enumerate(items)
            )
            _unique(
                [(f"{t.at('allowed_values')}[{i}]", v) for i, v in enumerate(allowed)],
                "allowed value",
            )
        else:
            if unit is None:
                _fail(t.at("unit"), f"required field is missing (a {value_type} needs a unit)")
            if t.has("allowed_values"):
                _fail(t.at("allowed_values"), "only used with value_type 'categorical'")
        out.append(
            ObservationKind(
                code=_name(t.req("code"), t.at("code")),
                name=_str(t.req("name"), t.at("name")),
                value_type=value_type,
                unit=unit,
                allowed_values=allowed,
                method=t.opt_str("method"),
                schedule=t.opt_str("schedule"),
            )
        )
    _unique([(t.at("code"), o.code) for t, o in zip(tables, out, strict=True)], "observation code")
    return tuple(out)


_ROOT_KEYS = (
    "id",
    "title",
    "phase",
    "source",
    "planned_accrual",
    "course_length_days",
    "start_level",
    "agents",
    "dose_levels",
    "design",
    "dlt",
    "eligibility",
    "response",
    "observations",
)


def protocol_from_dict(data: Mapping[str, object]) -> Protocol:
    """Build and validate a protocol from parsed data (TOML tables or ``to_dict()``)."""
    root = _Table(data, "", _ROOT_KEYS)
    pid = _str(root.req("id"), "id")
    if not _ID_RE.match(pid):
        _fail("id", f"{pid!r} must be letters, digits, '.', '_' or '-' (no spaces)")
    title = _str(root.req("title"), "title")
    phase = root.opt_str("phase") or "I"
    source = root.opt_str("source")
    accrual_raw = root.get("planned_accrual")
    accrual = None if accrual_raw is None else _int(accrual_raw, "planned_accrual", minimum=1)
    course_length = _int(root.req("course_length_days"), "course_length_days", minimum=1)
    agents = _parse_agents(root, course_length)
    escalated = next(a for a in agents if a.is_escalated)
    levels = _parse_dose_levels(root, escalated.unit)
    start = _int(root.req("start_level"), "start_level")
    if not 1 <= start <= len(levels):
        _fail("start_level", f"level {start} is not one of the dose levels 1..{len(levels)}")
    design = _parse_design(root)
    dlt = _parse_dlt(root)
    eligibility = _parse_eligibility(root)
    response = _parse_response(root)
    observations = _parse_observations(root)
    return Protocol(
        id=pid,
        title=title,
        phase=phase,
        course_length_days=course_length,
        start_level=start,
        agents=agents,
        dose_levels=levels,
        design=design,
        dlt=dlt,
        eligibility=eligibility,
        response=response,
        observations=observations,
        source=source,
        planned_accrual=accrual,
    )


def load_protocol(text: str) -> Protocol:
    """Parse and validate a protocol written in TOML (text only: no file I/O here)."""
    try:
        data = tomllib.loads(text, parse_float=_TomlFloat)
    except tomllib.TOMLDecodeError as exc:
        raise ProtocolError("<toml>", f"invalid TOML: {exc}") from exc
    return protocol_from_dict(data)
