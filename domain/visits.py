"""The visits of the protocol's assessment schedule, by name, as a record may state them.

A visit is named for when it falls: `week N` (an assessment due N weeks after week 0, at a
listed week or at one of its `every_weeks` after the last listed one) or `course N` (an
assessment made `each_course`). A response, observation or lab may record the visit it
belongs to; the name is checked against the schedule when it is recorded or corrected:
a name no assessment of the schedule falls on is refused naming the nearest visit, and a
visit that does not schedule the record's assessment is refused naming the visits that do.
Whether the record's date lies inside the visit's window is read later, from the current
dates (domain/schedule.py, domain/deviations.py), never frozen into the record.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from trialctl.domain.rules import TrialRuleError

if TYPE_CHECKING:  # the schedule module reads the facts, which check visits here
    from trialctl.domain.schedule import ScheduledAssessment

__all__ = ["Visit", "check_visit", "parse_visit", "scheduled_for", "visit_name"]

_NAME = re.compile(r"(week|course)\s*(\d{1,4})")

Visit = tuple[str, int]  # ("week", 9) or ("course", 2)


def visit_name(visit: Visit) -> str:
    return f"{visit[0]} {visit[1]}"


def parse_visit(text: str) -> Visit | None:
    """`week 9` / `Week9` / `course 2` as (unit, number); None when it is neither."""
    found = _NAME.fullmatch(" ".join(text.split()).lower())
    return None if found is None else (found.group(1), int(found.group(2)))


def falls_on(assessment: ScheduledAssessment, visit: Visit) -> bool:
    """Whether the assessment is due at the visit."""
    unit, number = visit
    if unit == "course":
        return assessment.each_course and number >= 1
    if assessment.each_course:
        return False
    if number in assessment.weeks:
        return True
    last = assessment.weeks[-1] if assessment.weeks else 0
    every = assessment.every_weeks
    return every is not None and number > last and (number - last) % every == 0


def scheduled_for(
    schedule: Sequence[ScheduledAssessment], records: str, observation: str | None = None
) -> list[ScheduledAssessment]:
    """The schedule's assessments a record of this kind (and observation code) does."""
    return [a for a in schedule if a.records == records
            and (records != "observation" or a.observation == observation)]


def check_visit(
    schedule: Sequence[ScheduledAssessment], records: str, observation: str | None,
    text: object,
) -> str | None:
    """The visit a record states, checked against the schedule and written the one way
    (`week 9`); None when it states none (an empty text or `none` clears it)."""
    if text is None:
        return None
    if not isinstance(text, str):  # a correction's `visit=9`, read as a number
        raise TrialRuleError("schedule-visit",
                             f"a visit is named 'week N' or 'course N', not {text!r}")
    if not text.strip() or text.strip().lower() == "none":
        return None
    visit = parse_visit(text)
    if visit is None or not any(falls_on(a, visit) for a in schedule):
        raise TrialRuleError(
            "schedule-visit",
            f"no visit {text.strip()!r} on the protocol's schedule"
            + (f"; nearest: {nearest!r}" if (nearest := _nearest(schedule, text, visit)) else
               " (it schedules none)"),
        )
    mine = scheduled_for(schedule, records, observation)
    what = observation if records == "observation" else records
    if not any(falls_on(a, visit) for a in mine):
        offered = "; ".join(_described(a) for a in mine) or "none"
        raise TrialRuleError(
            "visit-assessment",
            f"visit {visit_name(visit)!r} does not schedule a {what}; its visits: {offered}",
        )
    return visit_name(visit)


def _described(assessment: ScheduledAssessment) -> str:
    if assessment.each_course:
        return f"{assessment.code}: course N (each course)"
    weeks = ", ".join(str(w) for w in assessment.weeks)
    every = ("" if assessment.every_weeks is None
             else f"{', then' if weeks else ''} every {assessment.every_weeks}")
    return f"{assessment.code}: week {weeks}{every}"


def _nearest(
    schedule: Sequence[ScheduledAssessment], text: str, visit: Visit | None
) -> str | None:
    """The visit name closest to one refused: its unit (`week`, `course`) by spelling, then
    the visit of that unit nearest its number."""
    if visit is None:
        word = "".join(c for c in text.lower() if c.isalpha())
        digits = "".join(c for c in text if c.isdigit())[:4]
        units = [unit for unit, held in (("week", any(not a.each_course for a in schedule)),
                                         ("course", any(a.each_course for a in schedule)))
                 if held]
        if not units:
            return None
        unit = max(units, key=lambda u: difflib.SequenceMatcher(None, word, u).ratio())
        visit = (unit, int(digits) if digits else 1)
    if visit[0] == "course":
        if any(falls_on(a, ("course", 1)) for a in schedule):
            return f"course {max(visit[1], 1)}"
        visit = ("week", visit[1])
    # Every week up to a year past the one named: repeats run on past the listed weeks.
    weeks = [w for w in range(visit[1] + 53) if any(falls_on(a, ("week", w)) for a in schedule)]
    if not weeks:
        return None
    return f"week {min(weeks, key=lambda w: (abs(w - visit[1]), w))}"
