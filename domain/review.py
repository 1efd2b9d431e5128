"""Source data verification: a monitor's signed review of a patient's records, and whether
each review still stands.

A review cites records (the patient's facts, by version, with the ledger position and entry
hash of the entry that recorded them). It is never edited and never withdrawn: a later
correction of a reviewed record voids that record's review when state is read, and the
record is back on the to-review list until someone reviews it again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from trialctl.domain.rules import TrialRuleError

UNREVIEWED = "unreviewed"
REVIEWED = "reviewed"
INVALIDATED = "invalidated"


@dataclass(frozen=True)
class RecordEntry:
    """A patient record as the ledger holds it: the fact's version, the entry that recorded
    it (position and hash), and who signed that entry and each correction of it."""

    version: int
    position: int
    entry_hash: str
    signers: frozenset[str]


def review_states(
    records: Iterable[int],
    reviews: Sequence[Mapping[str, Any]],
    corrections: Sequence[Mapping[str, Any]],
) -> dict[int, dict[str, Any]]:
    """Each record's review state, derived from the reviews and corrections now on file:
    `reviewed` by the latest review citing it, `invalidated` when a correction of it came
    after that review (`review_version`, `correction_version` say which), else `unreviewed`."""
    states: dict[int, dict[str, Any]] = {}
    for version in sorted(records):
        citing = [r for r in reviews if any(c["version"] == version for c in r["records"])]
        if not citing:
            states[version] = {"state": UNREVIEWED}
            continue
        review = citing[-1]
        later = [
            c for c in corrections
            if c["target_version"] == version and c["version"] > review["version"]
        ]
        state = {"state": INVALIDATED if later else REVIEWED, "review_version": review["version"]}
        if later:
            state["correction_version"] = later[0]["version"]
        states[version] = state
    return states


def to_review(states: Mapping[int, Mapping[str, Any]]) -> list[int]:
    """The records a review without a list takes: never reviewed, or review voided."""
    return [v for v, s in sorted(states.items()) if s["state"] != REVIEWED]


def check_review(
    patient_id: str,
    cited: Sequence[RecordEntry],
    states: Mapping[int, Mapping[str, Any]],
    reviewer: str,
) -> None:
    """Refuse a review that verifies nothing, cites a record twice or one already reviewed
    (its review still stands), or lets a person verify an entry they signed themselves."""
    if not cited:
        raise TrialRuleError("review-something", f"patient {patient_id} has no record to review")
    versions = [c.version for c in cited]
    if len(set(versions)) != len(versions):
        raise TrialRuleError("review-once", "a review cites each record once")
    for record in cited:
        state = states.get(record.version)
        if state is None:
            raise TrialRuleError(
                "reviewable", f"#{record.position} is not a record of patient {patient_id}"
            )
        if state["state"] == REVIEWED:
            raise TrialRuleError(
                "review-once", f"#{record.position} of {patient_id} is already reviewed"
            )
        if reviewer in record.signers:
            raise TrialRuleError(
                "review-own-entry",
                f"{reviewer} signed #{record.position} (or a correction of it): "
                "nobody verifies their own entry",
            )


def citation(record: RecordEntry) -> dict[str, Any]:
    """How a review's payload cites one record."""
    return {"position": record.position, "version": record.version,
            "entry_hash": record.entry_hash}
