"""Two monitors opening a query at the same moment, each on their own connection: both
count the trial's queries before either commits, so both would take the same next id.
The id is claimed with the entry in one transaction: the second is refused whole, the
first keeps its id, and a retry takes the next one. On SQLite and on PostgreSQL (where
appenders serialise on an advisory lock, so the second waits and then finds the claim)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.demo_ledgers import demo_environment
from trialctl.ledger.application import TrialLedger, open_ledger
from trialctl.ledger.demo import demo_password
from trialctl.ledger.errors import RecordingError
from trialctl.ledger.reviews import QueryOpen, ReviewActions
from trialctl.ledger.trials import _Pending


def _open(ledger: TrialLedger, patient: str) -> tuple[ReviewActions, _Pending]:
    """The query taken on the ledger's own copy, numbered from what is committed now."""
    actions = ReviewActions(ledger)
    trial = actions.trial(None)
    found = actions.patient(trial, patient)
    position = actions.record_entries(found)[max(found.facts)].position
    pending = actions._take(QueryOpen(None, patient, position, "please confirm", "mona"),
                            datetime.now(UTC))
    return actions, pending


def test_racing_monitors_cannot_take_the_same_query_id(
    ledger_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = demo_environment(ledger_url, tmp_path)
    monkeypatch.setenv("TRIALCTL_HOME", env["TRIALCTL_HOME"])
    first, second = open_ledger(env["TRIALCTL_LEDGER"]), open_ledger(env["TRIALCTL_LEDGER"])
    try:
        mona = first.unlock("mona", demo_password("mona"))
        _, taken_first = _open(first, "P001")
        _, taken_second = _open(second, "P002")
        assert taken_first.summary["query"] == taken_second.summary["query"]
        size = first.signed_recorder.tree_size()

        first.record(mona, *taken_first.aggregates, claims=taken_first.claims)
        with pytest.raises(RecordingError, match="at the same moment"):
            second.record(mona, *taken_second.aggregates, claims=taken_second.claims)

        assert second.signed_recorder.tree_size() == size + 1
        _, retried = _open(second, "P002")
        second.record(mona, *retried.aggregates, claims=retried.claims)
        holders = ReviewActions(second).query_holders(ReviewActions(second).trial(None))
        query = taken_first.summary["query"]
        assert holders[query].patient_id == "P001"
        assert holders[f"Q{int(query[1:]) + 1}"].patient_id == "P002"
    finally:
        first.close()
        second.close()
