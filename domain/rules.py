"""Refusals of the trial domain: every refusal names the rule it applies."""

from __future__ import annotations

import re
from datetime import date, datetime

# How an adverse event relates to the study agent: the protocol's DLT rules and each
# recorded adverse event name one of these.
ATTRIBUTIONS: tuple[str, ...] = ("unrelated", "unlikely", "possible", "probable", "definite")


class TrialRuleError(ValueError):
    """An action the trial's rules do not permit now. `rule` is a stable code."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(f"{message} [rule: {rule}]")
        self.rule = rule


# Calendar dates only (no week or ordinal dates, which Python also reads), within years a
# clinical record can hold (docs/SECURITY.md, "Limits").
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
FIRST_DAY = date(1900, 1, 1)
LAST_DAY = date(2199, 12, 31)


def parse_day(text: str, field: str) -> date:
    try:
        if not isinstance(text, str) or _DAY.fullmatch(text) is None:
            raise ValueError(text)
        day = date.fromisoformat(text)
    except (TypeError, ValueError) as e:
        raise TrialRuleError("valid-date", f"{field} {text!r} is not a date (YYYY-MM-DD)") from e
    _in_range(day, text, field, "valid-date")
    return day


def parse_moment(text: str, field: str) -> datetime:
    try:
        if not isinstance(text, str) or _DAY.fullmatch(text[:10]) is None \
                or text[10:11] not in ("T", " "):
            raise ValueError(text)
        moment = datetime.fromisoformat(text)
    except (TypeError, ValueError) as e:
        raise TrialRuleError(
            "valid-time", f"{field} {text!r} is not a date and time (YYYY-MM-DDTHH:MM±HH:MM)"
        ) from e
    if moment.tzinfo is None:
        raise TrialRuleError("valid-time", f"{field} {text!r} needs a UTC offset")
    _in_range(moment.date(), text, field, "valid-time")
    return moment


def _in_range(day: date, text: str, field: str, rule: str) -> None:
    if not FIRST_DAY <= day <= LAST_DAY:
        raise TrialRuleError(rule, f"{field} {text!r} is outside {FIRST_DAY} to {LAST_DAY}")


def not_in_future(day: date, today: date, field: str) -> None:
    if day > today:
        raise TrialRuleError("no-future-dates", f"{field} {day} is in the future (today {today})")


def not_before(day: date, earliest: date, field: str, what: str) -> None:
    if day < earliest:
        raise TrialRuleError(
            "no-earlier-than-dependency", f"{field} {day} is before {what} ({earliest})"
        )
