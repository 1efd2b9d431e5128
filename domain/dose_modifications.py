"""Dosing read as a timeline: each course's day 1, the dose changes in force on a day, and
what was given against what the protocol planned.

A course's day 1 is the date of its first day-1 dose; every later dose of the course is
dated by its day number from there. Dose changes (reduce, hold, skip, resume, discontinue)
take effect on their `effective_on` date and stay in force until the next change, so a
dose is always checked against the changes dated on or before it. The protocol's
`[dose_modification]` table says which changes are allowed and how far they may go.

Everything here reads plain records (the patient's kept values) and the protocol: no
database, clock or files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Any
from typing import Protocol as Structural

from trialctl.domain.protocol import Agent, DoseModificationRules, Protocol
from trialctl.domain.rules import TrialRuleError, parse_day, parse_moment

REASONS: tuple[str, ...] = ("toxicity", "other")
_SETS_LEVEL = ("reduce", "resume")


class DosedRecord(Structural):
    """What the dosing rules read of a patient's record."""

    level: int | None

    def doses(self) -> list[dict[str, Any]]: ...

    def dose_changes(self) -> list[dict[str, Any]]: ...


def dose_date(dose: Mapping[str, Any]) -> date:
    return parse_moment(dose["given_at"], "given_at").date()


def course_day_one(doses: Sequence[Mapping[str, Any]], course: int) -> date | None:
    """The date of the course's first day-1 dose, or None before the course has started."""
    days = [dose_date(d) for d in doses if d["course"] == course and d["day"] == 1]
    return min(days) if days else None


def check_dose_schedule(
    doses: Sequence[Mapping[str, Any]],
    agent: Agent,
    course: int,
    day: int,
    on: date,
    course_length_days: int,
) -> None:
    """A dose is given once per agent, course and day, on the date its day number names."""
    for given in doses:
        if (given["agent"], given["course"], given["day"]) == (agent.name, course, day):
            raise TrialRuleError(
                "dose-once",
                f"{agent.name} day {day} of course {course} is already recorded "
                f"(version {given['version']}); correct it instead",
            )
    first = course_day_one(doses, course)
    if first is None:
        if day != 1:
            raise TrialRuleError(
                "course-started",
                f"course {course} has not started: record its day 1 dose before day {day}",
            )
        previous = course_day_one(doses, course - 1) if course > 1 else None
        if previous is not None and on < previous + timedelta(days=course_length_days):
            earliest = previous + timedelta(days=course_length_days)
            raise TrialRuleError(
                "course-length",
                f"course {course} cannot start on {on}: course {course - 1} began on "
                f"{previous} and lasts {course_length_days} days (earliest {earliest})",
            )
        return
    if on < first:
        raise TrialRuleError(
            "course-day-1",
            f"a dose on {on} is before day 1 of course {course} ({first})",
        )
    expected = first + timedelta(days=day - 1)
    if on != expected:
        raise TrialRuleError(
            "dose-day", f"day {day} of course {course} is {expected}, not {on}"
        )


@dataclass(frozen=True)
class Treatment:
    """Where a patient's treatment stands on one day, from the dose changes dated up to it."""

    level: int  # the level the escalated agent's doses are checked against
    held_since: date | None = None
    discontinued_on: date | None = None
    skipped: frozenset[tuple[int, date]] = frozenset()  # (course, day) skipped


def _in_order(changes: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return sorted(changes, key=lambda c: (c["effective_on"], c["version"]))


def treatment_on(
    day: date, assigned_level: int, changes: Sequence[Mapping[str, Any]]
) -> Treatment:
    level, held, discontinued = assigned_level, None, None
    skipped: set[tuple[int, date]] = set()
    for change in _in_order(changes):
        effective = parse_day(change["effective_on"], "effective date")
        if effective > day:
            break
        action = change["action"]
        if action in _SETS_LEVEL and change["to_level"] is not None:
            level = int(change["to_level"])
        if action == "hold":
            held = effective
        elif action == "resume":
            held = None
        elif action == "skip":
            skipped.add((int(change["course"]), effective))
        elif action == "discontinue":
            discontinued = effective
    return Treatment(level, held, discontinued, frozenset(skipped))


def check_dose_allowed(treatment: Treatment, course: int, on: date, patient_id: str) -> None:
    """A dose is refused while treatment is held, on a skipped day, or once discontinued."""
    if treatment.discontinued_on is not None:
        raise TrialRuleError(
            "discontinued",
            f"treatment of {patient_id} was discontinued on {treatment.discontinued_on}",
        )
    if treatment.held_since is not None:
        raise TrialRuleError(
            "dose-held",
            f"treatment of {patient_id} is held since {treatment.held_since}: "
            "record a resume first",
        )
    if (course, on) in treatment.skipped:
        raise TrialRuleError("dose-skipped", f"{on} of course {course} was recorded as skipped")


@dataclass(frozen=True)
class ProposedChange:
    """A dose change being recorded, as the rules read it."""

    course: int
    action: str
    to_level: int | None
    reason: str
    text: str
    effective_on: date


def check_change(
    change: ProposedChange,
    record: DosedRecord,
    protocol: Protocol,
    completed_courses: Sequence[int],
) -> None:
    """Refuse a dose change the protocol's `[dose_modification]` rules do not allow."""
    rules = protocol.dose_modification
    if rules is None:
        raise TrialRuleError(
            "dose-modification", f"protocol {protocol.id} declares no dose modifications"
        )
    if change.action not in rules.actions:
        raise TrialRuleError(
            "dose-modification",
            f"action {change.action!r} is not allowed by the protocol "
            f"({', '.join(rules.actions)})",
        )
    if change.reason not in REASONS:
        raise TrialRuleError(
            "dose-change-reason",
            f"reason {change.reason!r} is not one of {', '.join(REASONS)}",
        )
    if not change.text.strip():
        raise TrialRuleError("reason-required", "a dose change needs a text saying why")
    if change.course < 1 or change.course > len(completed_courses) + 1:
        raise TrialRuleError(
            "course-order",
            f"course {change.course} cannot be modified: courses completed so far "
            f"{list(completed_courses) or 'none'}",
        )
    if change.to_level is not None and change.action not in _SETS_LEVEL:
        raise TrialRuleError("to-level", f"only {' and '.join(_SETS_LEVEL)} take a level")
    changes = record.dose_changes()
    latest = max((parse_day(c["effective_on"], "effective date") for c in changes), default=None)
    if latest is not None and change.effective_on < latest:
        raise TrialRuleError(
            "change-order",
            f"a dose change on {change.effective_on} is before the last one ({latest})",
        )
    first = course_day_one(record.doses(), change.course)
    if first is not None and change.effective_on < first:
        raise TrialRuleError(
            "course-day-1",
            f"a change on {change.effective_on} is before day 1 of course {change.course} "
            f"({first})",
        )
    assert record.level is not None
    now = treatment_on(change.effective_on, record.level, changes)
    if now.discontinued_on is not None:
        raise TrialRuleError(
            "discontinued", f"treatment was discontinued on {now.discontinued_on}"
        )
    _check_action(change, now, rules, record.level, first)


def _check_action(
    change: ProposedChange,
    now: Treatment,
    rules: DoseModificationRules,
    assigned: int,
    first: date | None,
) -> None:
    action, to_level = change.action, change.to_level
    if action in ("hold", "skip") and now.held_since is not None:
        raise TrialRuleError("dose-held", f"treatment is already held since {now.held_since}")
    if action == "skip" and first is None:
        raise TrialRuleError(
            "course-started", f"course {change.course} has not started: nothing to skip"
        )
    if action == "reduce":
        if to_level is None:
            raise TrialRuleError("to-level", "a reduction names the level it goes to")
        if to_level >= now.level:
            raise TrialRuleError(
                "dose-reduction",
                f"a reduction goes below the current level {now.level}, not to {to_level}",
            )
    if action == "resume":
        if now.held_since is None and to_level is None:
            raise TrialRuleError("resume-held", "treatment is not held: nothing to resume")
        if now.held_since is not None:
            held_days = (change.effective_on - now.held_since).days
            if held_days > rules.max_hold_days:
                raise TrialRuleError(
                    "max-hold",
                    f"held since {now.held_since}: {held_days} days is more than the "
                    f"protocol's {rules.max_hold_days}; discontinue instead",
                )
    if to_level is None:
        return
    if to_level > now.level:
        if not rules.re_escalation:
            raise TrialRuleError(
                "re-escalation",
                f"the protocol does not allow re-escalation within a patient "
                f"(level {now.level} to {to_level})",
            )
        if to_level > assigned:
            raise TrialRuleError(
                "own-dose-level",
                f"level {to_level} is above the patient's own level {assigned}",
            )
    lowest = max(1, assigned - rules.max_reduction_levels)
    if to_level < lowest:
        raise TrialRuleError(
            "max-reduction",
            f"level {to_level} is more than {rules.max_reduction_levels} level(s) below the "
            f"patient's own level {assigned} (lowest {lowest})",
        )


# -- what was given against what was planned ---------------------------------------------


def _planned_dose(agent: Agent, course: int, level: int, protocol: Protocol) -> Decimal:
    if agent.is_escalated:
        return protocol.level(level).dose
    return agent.dose_for_course(course).dose


def dose_intensity(record: DosedRecord, protocol: Protocol) -> list[dict[str, Any]]:
    """Per course and agent: doses given / planned by the schedule, and the amount given /
    planned at the patient's own level (reductions, holds and skips lower it)."""
    if record.level is None:
        return []
    doses = record.doses()
    rows = []
    for course in sorted({int(d["course"]) for d in doses}):
        for agent in protocol.agents:
            given = [d for d in doses if d["course"] == course and d["agent"] == agent.name]
            planned_each = _planned_dose(agent, course, record.level, protocol)
            planned = planned_each * len(agent.days)
            amount = sum((Decimal(d["dose"]) for d in given), Decimal(0))
            rows.append({
                "course": course,
                "agent": agent.name,
                "doses_given": len(given),
                "doses_planned": len(agent.days),
                "amount_given": str(amount),
                "amount_planned": str(planned),
                "unit": agent.unit,
                "intensity": str((amount / planned).quantize(Decimal("0.01"))),
            })
    return rows


@dataclass(frozen=True)
class CourseOneDosing:
    """How much of course 1's escalated agent the patient received against the plan.

    Planned: the dose of the patient's own level on every day of the agent's schedule
    (`days`), e.g. 300 mg/day x days 1-21 = 6300 mg/day-doses. Received, day by day from
    the course's day 1: the amount of the dose recorded for that day; nothing on a day held,
    skipped or after a discontinuation; and, on a day with neither a dose record nor such a
    change, the dose of the level then in force (a reduction lowers it). The ledger reads
    holds, skips, discontinuations and reductions as the record of doses not received, as
    a site's dosing visits record them; a missed dose is recorded as a skip.
    """

    received: Decimal
    planned: Decimal
    recorded_days: int  # days with a dose record
    missed_days: int  # days held, skipped or after a discontinuation
    records: tuple[int, ...]  # record versions it rests on: course 1 doses and changes

    @property
    def fraction(self) -> Decimal:
        return self.received / self.planned

    @property
    def percent(self) -> str:
        """The fraction as a percentage, rounded down: 79.99% never shows as 80.0%."""
        return f"{(self.fraction * 100).quantize(Decimal('0.1'), rounding=ROUND_DOWN)}%"


def course1_dosing(record: DosedRecord, protocol: Protocol) -> CourseOneDosing | None:
    """Course 1 of the escalated agent, received against planned at the patient's own
    level; None before enrolment or before course 1's day 1."""
    if record.level is None:
        return None
    doses = record.doses()
    first = course_day_one(doses, 1)
    if first is None:
        return None
    agent = protocol.escalated_agent
    given = {int(d["day"]): d for d in doses if d["course"] == 1 and d["agent"] == agent.name}
    changes = record.dose_changes()
    received, recorded, missed = Decimal(0), 0, 0
    for day in agent.days:
        dose = given.get(day)
        if dose is not None:
            received += Decimal(dose["dose"])
            recorded += 1
            continue
        on = first + timedelta(days=day - 1)
        treatment = treatment_on(on, record.level, changes)
        if (treatment.discontinued_on is not None or treatment.held_since is not None
                or (1, on) in treatment.skipped):
            missed += 1
        else:
            received += protocol.level(treatment.level).dose
    planned = protocol.level(record.level).dose * len(agent.days)
    versions = [int(d["version"]) for d in given.values()]
    versions += [int(c["version"]) for c in changes if c["course"] == 1]
    return CourseOneDosing(received, planned, recorded, missed, tuple(sorted(versions)))


def below_course1_minimum(record: DosedRecord, protocol: Protocol) -> CourseOneDosing | None:
    """Course 1's dosing when the patient received less than the protocol's
    `min_course1_dose_fraction` (None when they did not, or the protocol sets none):
    without a counting DLT, such a patient is not DLT-evaluable for a non-toxic reason."""
    rules = protocol.dose_modification
    if rules is None or rules.min_course1_dose_fraction is None:
        return None
    dosing = course1_dosing(record, protocol)
    if dosing is None or dosing.fraction >= rules.min_course1_dose_fraction:
        return None
    return dosing
