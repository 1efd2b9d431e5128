"""End of study: why a patient went off study (a reason from the protocol's
`[end_of_study]` list, when it declares one) and the follow-up contacts after it.

    [end_of_study]
    reasons = ["disease progression", "unacceptable toxicity", "patient decision",
               "investigator decision", "death", "lost to follow-up", "study completed"]

A protocol without the section takes any non-empty reason. A follow-up contact records the
patient's status on a day after they went off study: alive, died, or lost to follow-up (the
day of the last attempt). Nothing follows a contact that found the patient dead.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from trialctl.domain.rules import TrialRuleError

ALIVE, DIED, LOST = "alive", "died", "lost-to-follow-up"
FOLLOW_UP_STATUSES = (ALIVE, DIED, LOST)


@dataclass(frozen=True)
class EndOfStudy:
    """The reasons a patient may go off study for, as the protocol lists them."""

    reasons: tuple[str, ...]

    def check_reason(self, reason: str) -> str:
        """The reason as listed, or a refusal naming the nearest listed one."""
        text = reason.strip()
        if text in self.reasons:
            return text
        nearest = difflib.get_close_matches(text, self.reasons, n=1)
        hint = f" (did you mean {nearest[0]!r}?)" if nearest else ""
        raise TrialRuleError(
            "off-study-reason",
            f"off-study reason {text!r} is not one the protocol lists{hint}: "
            f"{', '.join(self.reasons)}",
        )

    def to_dict(self) -> dict[str, object]:
        return {"reasons": list(self.reasons)}


def check_follow_up_status(status: str) -> str:
    if status not in FOLLOW_UP_STATUSES:
        raise TrialRuleError(
            "follow-up-status",
            f"follow-up status {status!r} is not one of {', '.join(FOLLOW_UP_STATUSES)}",
        )
    return status
