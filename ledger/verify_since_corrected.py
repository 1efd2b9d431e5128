"""`verify --projections`' warning class `decision-since-corrected`: a cohort decision made
on data since corrected, with the ledger entries involved.

The decision pass (`verify_decisions.py`) checks each decision against the ledger as it
stood at its position; this one reads the trial as it stands now. `Trial.decision_reviews`
(the same rule `status` shows) says which decisions the current facts, corrections applied,
no longer give; each becomes a warning naming the decision's entry, the entries the changed
outcomes rest on and the corrections on those patients. It is a warning, not a finding: the
entries are intact and the decision stands, signed on what was known then (docs/FORMAT.md
section 17).
"""

from __future__ import annotations

from typing import Any

from trialctl.ledger.application import TrialLedger
from trialctl.ledger.decisions import DECISION_TYPES
from trialctl.ledger.entry import parse_entry
from trialctl.ledger.trials import TrialActions
from trialctl.ledger.verify_report import SinceCorrected


def decisions_since_corrected(ledger: TrialLedger) -> list[SinceCorrected]:
    """Every trial's decisions made on data since corrected, in position order."""
    records = TrialActions(ledger)
    found: list[SinceCorrected] = []
    for protocol_id in records.trial_ids():
        trial = records.trial(protocol_id)
        roster = records.roster(trial)
        decided = _decision_entries(ledger, trial.id)
        for review in trial.decision_reviews(roster):
            if not review["differs"]:
                continue
            position, action = decided[review["cohort_number"]]
            patients = tuple(_with_positions(records, roster, p) for p in review["patients"])
            involved = sorted({n for p in patients for n in (*p["records"], *p["corrections"])})
            found.append(SinceCorrected(
                position, protocol_id, review["cohort_number"], action, review["recorded"],
                review["rederived"], patients, (position, *involved)))
    return sorted(found, key=lambda warning: warning.position)


def _decision_entries(ledger: TrialLedger, trial_id: Any) -> dict[int, tuple[int, str]]:
    """Each cohort's decision entry: its position and action."""
    decided = {}
    for stored in ledger.signed_recorder.select_events(trial_id):
        statement = parse_entry(stored.state).statement
        if statement["type"] in DECISION_TYPES:
            payload = statement["payload"]
            decided[int(payload["cohort_number"])] = (int(statement["position"]),
                                                      str(payload["action"]))
    return decided


def _with_positions(records: TrialActions, roster: dict[str, Any],
                    review: dict[str, Any]) -> dict[str, Any]:
    """A reviewed patient with their record versions turned into ledger positions."""
    positions = records.entry_positions(roster[review["patient_id"]])
    return {**review,
            "records": [positions[v] for v in review["records"]],
            "corrections": [positions[v] for v in review["corrections"]]}
