"""Review state derived from reviews and corrections, and the review and query rules, in
process (domain only)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from trialctl.domain import queries
from trialctl.domain.review import (
    INVALIDATED,
    REVIEWED,
    UNREVIEWED,
    RecordEntry,
    check_review,
    review_states,
    to_review,
)
from trialctl.domain.rules import TrialRuleError


def _review(version: int, *records: int) -> dict[str, Any]:
    return {"version": version, "records": [{"version": r} for r in records]}


def _correction(version: int, target: int) -> dict[str, Any]:
    return {"version": version, "target_version": target}


@pytest.mark.parametrize(
    ("reviews", "corrections", "expected"),
    [
        ([], [], UNREVIEWED),
        ([_review(5, 2)], [], REVIEWED),
        # A correction before the review: the review verified the corrected values.
        ([_review(5, 2)], [_correction(4, 2)], REVIEWED),
        # A correction after it, one version later: the review is void.
        ([_review(5, 2)], [_correction(6, 2)], INVALIDATED),
        # Another record's correction leaves it standing.
        ([_review(5, 2, 3)], [_correction(6, 3)], REVIEWED),
        # Reviewed again after the correction: it stands again.
        ([_review(5, 2), _review(7, 2)], [_correction(6, 2)], REVIEWED),
    ],
    ids=["never", "reviewed", "corrected-before", "corrected-after", "other-record",
         "reviewed-again"],
)
def test_review_state_of_record_2(
    reviews: list[dict[str, Any]], corrections: list[dict[str, Any]], expected: str
) -> None:
    states = review_states([1, 2, 3], reviews, corrections)
    assert states[2]["state"] == expected
    assert (2 in to_review(states)) is (expected != REVIEWED)
    if expected == INVALIDATED:
        assert states[2]["correction_version"] == 6


def _entry(version: int, *signers: str) -> RecordEntry:
    return RecordEntry(version, 10 + version, "ab" * 32, frozenset(signers))


def test_a_review_refuses_own_entries_already_reviewed_records_and_nothing() -> None:
    states = review_states([1, 2], [_review(3, 2)], [])
    check_review("P001", [_entry(1, "ivan")], states, "mona")
    with pytest.raises(TrialRuleError, match="nobody verifies their own entry"):
        check_review("P001", [_entry(1, "ivan", "mona")], states, "mona")
    with pytest.raises(TrialRuleError, match="already reviewed"):
        check_review("P001", [_entry(2, "ivan")], states, "mona")
    with pytest.raises(TrialRuleError, match="no record to review"):
        check_review("P001", [], states, "mona")
    with pytest.raises(TrialRuleError, match="not a record"):
        check_review("P001", [_entry(9, "ivan")], states, "mona")
    with pytest.raises(TrialRuleError, match="each record once"):
        check_review("P001", [_entry(1, "ivan"), _entry(1, "ivan")], states, "mona")


def _query(state: str, closed_at: str | None = None) -> dict[str, Any]:
    return {"query_id": "Q3", "state": state, "raised_by": "mona",
            "raised_at": "2026-03-01T10:00:00+00:00", "closed_at": closed_at}


def test_query_rules_who_closes_and_reopens_and_what_may_be_answered() -> None:
    queries.check_close(_query(queries.ANSWERED), "mona", data_manager=False)
    queries.check_close(_query(queries.OPEN), "dana", data_manager=True)
    with pytest.raises(TrialRuleError, match="only mona"):
        queries.check_close(_query(queries.OPEN), "otto", data_manager=False)
    with pytest.raises(TrialRuleError, match="already closed"):
        queries.check_close(_query(queries.CLOSED), "mona", data_manager=False)
    with pytest.raises(TrialRuleError, match="not closed"):
        queries.check_reopen(_query(queries.ANSWERED), "mona", data_manager=False)
    queries.check_answer(_query(queries.ANSWERED))
    with pytest.raises(TrialRuleError, match="closed"):
        queries.check_answer(_query(queries.CLOSED))


def test_query_age_runs_to_today_or_to_closing() -> None:
    assert queries.age_days(_query(queries.OPEN), date(2026, 3, 1)) == 0
    assert queries.age_days(_query(queries.OPEN), date(2026, 3, 11)) == 10
    closed = _query(queries.CLOSED, "2026-03-04T08:00:00+00:00")
    assert queries.age_days(closed, date(2026, 6, 1)) == 3


def test_the_open_query_rows_leave_out_closed_ones_and_sort_by_number() -> None:
    extra = {"record_position": 7, "text": "check the chart"}
    held = {"Q10": {**_query(queries.OPEN), **extra},
            "Q2": {**_query(queries.ANSWERED), **extra},
            "Q3": {**_query(queries.CLOSED, "2026-03-04T08:00:00+00:00"), **extra}}
    rows = queries.by_number(queries.open_query_rows("P001", held, date(2026, 3, 11)))
    assert [(r["query_id"], r["state"], r["age_days"], r["patient_id"]) for r in rows] == [
        ("Q2", queries.ANSWERED, 10, "P001"), ("Q10", queries.OPEN, 10, "P001")]


@pytest.mark.parametrize("text", ["Q0", "Q", "q1", "Q1x", "1", "Q0123456789"])
def test_query_ids_are_q_and_a_number(text: str) -> None:
    with pytest.raises(TrialRuleError, match="not of the form"):
        queries.query_number(text)
    assert queries.query_number("Q12") == 12
