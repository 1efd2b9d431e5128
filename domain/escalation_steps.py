"""What the 3+3 rules can say: actions, stop reasons, a step, a decision, and a refusal.

A :class:`Step` is what the rules say now (carry on at a level, or stop with an MTD); a
:class:`Decision` is the step taken after one cohort of a path; :class:`OutOfRuleError` refuses
a cohort given where the rules did not prescribe it.  The rules themselves are in
:mod:`trialctl.domain.escalation`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = [
    "ACTIONS",
    "ACTION_CONTINUE",
    "ACTION_DEESCALATE",
    "ACTION_ESCALATE",
    "ACTION_EXPAND",
    "ACTION_STOP",
    "EXPANSION_DLTS",
    "STOP_LEVEL_ABOVE_TOO_TOXIC",
    "STOP_NO_TOLERABLE_DOSE",
    "STOP_REASONS",
    "STOP_TOP_LEVEL_CLEARED",
    "TOXIC_DLTS",
    "Decision",
    "OutOfRuleError",
    "Step",
]

ACTION_CONTINUE: Final = "continue"
ACTION_EXPAND: Final = "expand"
ACTION_ESCALATE: Final = "escalate"
ACTION_DEESCALATE: Final = "deescalate"
ACTION_STOP: Final = "stop"
ACTIONS: Final = (
    ACTION_CONTINUE,
    ACTION_EXPAND,
    ACTION_ESCALATE,
    ACTION_DEESCALATE,
    ACTION_STOP,
)

STOP_TOP_LEVEL_CLEARED: Final = "top_level_cleared"
STOP_LEVEL_ABOVE_TOO_TOXIC: Final = "level_above_too_toxic"
STOP_NO_TOLERABLE_DOSE: Final = "no_tolerable_dose"
STOP_REASONS: Final[dict[str, str]] = {
    STOP_TOP_LEVEL_CLEARED: "the top dose level was tolerated; it is the MTD",
    STOP_LEVEL_ABOVE_TOO_TOXIC: "the level above the MTD was too toxic",
    STOP_NO_TOLERABLE_DOSE: "no dose level was tolerated; there is no MTD",
}

EXPANSION_DLTS: Final = 1
"""DLTs in the first cohort at a level that call for expansion instead of a decision."""

TOXIC_DLTS: Final = 2
"""DLTs at a level (of the first cohort or of the expanded level) that make it too toxic."""


class OutOfRuleError(ValueError):
    """A cohort of a path was not given where the 3+3 rules prescribe (rule 5)."""

    def __init__(
        self,
        *,
        cohort_number: int,
        level: int,
        prescribed_level: int | None,
        reason: str,
    ) -> None:
        prescribed = (
            "none (the trial had stopped)" if prescribed_level is None else str(prescribed_level)
        )
        super().__init__(
            f"cohort {cohort_number} at level {level} is out of rule "
            f"(prescribed level: {prescribed}): {reason}"
        )
        self.cohort_number = cohort_number
        self.level = level
        self.prescribed_level = prescribed_level
        self.reason = reason


@dataclass(frozen=True)
class Step:
    """What the rules say now: carry on at ``next_level``, or stop with ``mtd_level``."""

    action: str
    next_level: int | None
    mtd_level: int | None
    stop_reason: str | None
    reason: str

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"action must be one of {ACTIONS}, got {self.action!r}")
        if self.action == ACTION_STOP:
            if self.next_level is not None or self.stop_reason not in STOP_REASONS:
                raise ValueError("a stop has no next level and a known stop_reason")
        elif self.next_level is None or self.mtd_level is not None or self.stop_reason:
            raise ValueError("a step that goes on has a next level and no MTD or stop reason")

    @property
    def should_continue(self) -> bool:
        return self.action != ACTION_STOP


@dataclass(frozen=True)
class Decision:
    """The decision taken after one cohort (``cohort_index`` counts from 0)."""

    cohort_index: int
    level: int
    patients: int
    dlts: int
    action: str
    next_level: int | None
    mtd_level: int | None
    stop_reason: str | None
    reason: str

    @property
    def cohort_number(self) -> int:
        """The cohort counted from 1, as in messages."""
        return self.cohort_index + 1

    @property
    def should_continue(self) -> bool:
        return self.action != ACTION_STOP
