"""Data queries: a monitor or data manager asks the site about one record; site staff
answer; the raiser (or a data manager) closes or reopens it.

A query's state is the fold of its events: `open` when raised or reopened, `answered`
after an answer, `closed` when closed. Its age is derived when it is read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from trialctl.domain.rules import TrialRuleError

OPEN = "open"
ANSWERED = "answered"
CLOSED = "closed"

QUERY_ID = re.compile(r"^Q[1-9][0-9]{0,8}$")
TEXT_MAX = 4000


def query_number(query_id: str) -> int:
    if not QUERY_ID.match(query_id):
        raise TrialRuleError("query-id", f"query id {query_id!r} is not of the form Q1, Q2, …")
    return int(query_id[1:])


def query_text(text: str, what: str) -> str:
    cleaned = text.strip()
    if not cleaned:
        raise TrialRuleError("query-text", f"{what} needs a text")
    if len(cleaned) > TEXT_MAX:
        raise TrialRuleError("query-text", f"{what} text is longer than {TEXT_MAX} characters")
    return cleaned


def is_open(query: Mapping[str, Any]) -> bool:
    """Open for the site: raised or reopened, answered but not yet closed."""
    return bool(query["state"] != CLOSED)


def check_answer(query: Mapping[str, Any]) -> None:
    if query["state"] == CLOSED:
        raise TrialRuleError("query-open", f"query {query['query_id']} is closed: reopen it first")


def check_close(query: Mapping[str, Any], signer: str, data_manager: bool) -> None:
    _raiser_or_data_manager(query, signer, data_manager, "close")
    if query["state"] == CLOSED:
        raise TrialRuleError("query-open", f"query {query['query_id']} is already closed")


def check_reopen(query: Mapping[str, Any], signer: str, data_manager: bool) -> None:
    _raiser_or_data_manager(query, signer, data_manager, "reopen")
    if query["state"] != CLOSED:
        raise TrialRuleError("query-closed", f"query {query['query_id']} is not closed")


def _raiser_or_data_manager(
    query: Mapping[str, Any], signer: str, data_manager: bool, what: str
) -> None:
    if signer != query["raised_by"] and not data_manager:
        raise TrialRuleError(
            "query-owner",
            f"only {query['raised_by']} (who raised {query['query_id']}) or a data manager "
            f"may {what} it",
        )


def advance(query: dict[str, Any], state: str, what: str, by: str, text: str | None,
            at: str) -> None:
    """One step of the fold: the query's new state, and the step added to its thread. A
    close dates the query's end; a reopen clears it; an answer leaves it."""
    query["state"] = state
    if state == CLOSED:
        query["closed_at"] = at
    elif state == OPEN:
        query["closed_at"] = None
    query["thread"].append({"what": what, "by": by, "text": text, "at": at})


def age_days(query: Mapping[str, Any], today: date) -> int:
    """Days from raising to closing, or to today while it is not closed."""
    raised = date.fromisoformat(str(query["raised_at"])[:10])
    end = date.fromisoformat(str(query["closed_at"])[:10]) if query["closed_at"] else today
    return (end - raised).days


def open_query_rows(patient_id: str, queries: Mapping[str, Mapping[str, Any]],
                    today: date) -> list[dict[str, Any]]:
    """A patient's queries not closed yet (open, or answered and awaiting the raiser), each
    with its age in days on `today`: what `status` lists per trial."""
    return [
        {"query_id": query_id, "patient_id": patient_id, "record": query["record_position"],
         "state": query["state"], "age_days": age_days(query, today),
         "raised_by": query["raised_by"], "raised_at": query["raised_at"],
         "text": query["text"]}
        for query_id, query in queries.items() if is_open(query)
    ]


def by_number(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Query rows in id order (Q2 before Q10)."""
    return sorted((dict(r) for r in rows), key=lambda r: query_number(str(r["query_id"])))
