"""Refusals of the trial domain: every refusal names the rule it applies."""

from __future__ import annotations

from datetime import date, datetime

# How an adverse event relates to the study agent: the protocol's DLT rules and each
# recorded adverse event name one of these.
ATTRIBUTIONS: tuple[str, ...] = ("unrelated", "unlikely", "possible", "probable", "definite")


class TrialRuleError(ValueError):
    """An action the trial's rules do not permit now. `rule` is a stable code."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(f"{message} [rule: {rule}]")
        self.rule = rule


def parse_day(text: str, field: str) -> date:
    try:
        return date.fromisoformat(text)
    except (TypeError, ValueError) as e:
        raise TrialRuleError("valid-date", f"{field} {text!r} is not a date (YYYY-MM-DD)") from e


def parse_moment(text: str, field: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except (TypeError, ValueError) as e:
        raise TrialRuleError(
            "valid-time", f"{field} {text!r} is not a date and time (YYYY-MM-DDTHH:MM±HH:MM)"
        ) from e
    if moment.tzinfo is None:
        raise TrialRuleError("valid-time", f"{field} {text!r} needs a UTC offset")
    return moment


def not_in_future(day: date, today: date, field: str) -> None:
    if day > today:
        raise TrialRuleError("no-future-dates", f"{field} {day} is in the future (today {today})")


def not_before(day: date, earliest: date, field: str, what: str) -> None:
    if day < earliest:
        raise TrialRuleError(
            "no-earlier-than-dependency", f"{field} {day} is before {what} ({earliest})"
        )
