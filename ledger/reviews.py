"""Source data verification and data queries on the ledger: the signed actions (review,
raise, answer, close, reopen) and the read side (`review status`, `query list`).

The domain rules (domain/review.py, domain/queries.py) read records by version; this module
gives them what only the ledger knows: each record's position, entry hash and signers, the
signer of the attempt, and the next query id of the trial.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from trialctl.domain import queries as query_rules
from trialctl.domain.patient import Patient
from trialctl.domain.review import INVALIDATED, REVIEWED, RecordEntry, to_review
from trialctl.domain.rules import TrialRuleError
from trialctl.domain.trial import Trial
from trialctl.ledger.application import UnlockedUser
from trialctl.ledger.audit_review import INVALIDATED_REVIEWS, Scope, Section, register_section
from trialctl.ledger.entry import entry_hash, parse_entry
from trialctl.ledger.errors import LedgerError
from trialctl.ledger.requests import Request
from trialctl.ledger.roles import Meaning, Role
from trialctl.ledger.trials import Recorded, TrialActions, _Pending


@dataclass(frozen=True)
class Review:
    """Sign that records (ledger positions; None: every record not yet reviewed) were
    verified against source."""

    trial: str | None
    patient: str
    positions: tuple[int, ...] | None
    reviewer: str


def query_scope(trial: Trial) -> str:
    """Where a query id must be unique: its trial (`recorder.CLAIMS_TABLE`)."""
    return f"query:{trial.id}"


@dataclass(frozen=True)
class QueryOpen:
    trial: str | None
    patient: str
    position: int
    text: str
    raiser: str


@dataclass(frozen=True)
class QueryStep:
    """Answer, close or reopen a query (`action`); `text` for answer and reopen."""

    trial: str | None
    query_id: str
    action: str  # answer | close | reopen
    text: str | None
    signer: str


ReviewRequest = Review | QueryOpen | QueryStep


class ReviewActions(TrialActions):
    """`TrialActions` that also take review and query requests."""

    # The base class types its requests as `Request`; `_take` below takes these too.
    def check(self, request: Request | ReviewRequest, now: datetime,
              signer: str | None = None) -> None:
        super().check(request, now, signer)  # type: ignore[arg-type]

    def perform(self, request: Request | ReviewRequest, actor: UnlockedUser,
                now: datetime) -> Recorded:
        return super().perform(request, actor, now)  # type: ignore[arg-type]

    def _take(self, request: Request | ReviewRequest, now: datetime) -> _Pending:
        match request:
            case Review():
                return self._review(request, now)
            case QueryOpen():
                return self._open_query(request, now)
            case QueryStep():
                return self._query_step(request, now)
        return super()._take(request, now)

    # -- the ledger's view of a patient's records -------------------------------------------

    def record_entries(self, patient: Patient) -> dict[int, RecordEntry]:
        """Each record (fact on file) of the patient: its entry's position and hash, and who
        signed it and every correction of it."""
        statements: dict[int, tuple[dict[str, Any], str]] = {}
        for stored in self.ledger.signed_recorder.select_events(patient.id):
            statements[stored.originator_version] = (
                parse_entry(stored.state).statement, entry_hash(stored.state)
            )
        signers: dict[int, set[str]] = {v: set() for v in patient.facts}
        for correction in patient.corrections:
            signers[correction["target_version"]].add(
                statements[correction["version"]][0]["actor"]["user_id"])
        found = {}
        for version in patient.facts:
            statement, digest = statements[version]
            signers[version].add(statement["actor"]["user_id"])
            found[version] = RecordEntry(version, int(statement["position"]), digest,
                                         frozenset(signers[version]))
        return found

    def positions(self, patient: Patient) -> dict[int, int]:
        """Aggregate version → ledger position, for every entry of the patient."""
        return {
            stored.originator_version: int(parse_entry(stored.state).statement["position"])
            for stored in self.ledger.signed_recorder.select_events(patient.id)
        }

    def _cited_records(self, patient: Patient, positions: tuple[int, ...]) -> list[RecordEntry]:
        by_position = {r.position: r for r in self.record_entries(patient).values()}
        missing = [p for p in positions if p not in by_position]
        if missing:
            raise TrialRuleError(
                "reviewable", f"#{missing[0]} is not a record of patient {patient.patient_id}"
            )
        return [by_position[p] for p in positions]

    # -- reviews ----------------------------------------------------------------------------

    def _review(self, request: Review, now: datetime) -> _Pending:
        trial = self.trial(request.trial)
        patient = self.patient(trial, request.patient)
        if request.positions is None:
            entries = self.record_entries(patient)
            cited = [entries[v] for v in to_review(patient.review_states())]
        else:
            cited = self._cited_records(patient, request.positions)
        patient.review(cited, request.reviewer, now)
        summary = {"reviewed": [r.position for r in cited]}
        return _Pending(trial, patient, (patient,), summary, Meaning.REVIEWED)

    def patients(self, trial: Trial) -> list[Patient]:
        """Every patient of the trial, consented or further, in id order."""
        found: list[Patient] = [self.ledger.repository.get(i)
                                for i in self.trial_patient_ids(trial)]
        return sorted(found, key=lambda p: str(p.patient_id))

    def review_rows(self, patient: Patient) -> list[dict[str, Any]]:
        """Each record's review state, by ledger position, with the words a monitor reads."""
        entries = self.record_entries(patient)
        at = self.positions(patient)
        rows = []
        for version, state in patient.review_states().items():
            position = entries[version].position
            row: dict[str, Any] = {
                "position": position, "version": version,
                "kind": patient.facts[version]["kind"], "state": state["state"],
                "review": None, "invalidated_by": None, "text": state["state"],
            }
            if state["state"] in (REVIEWED, INVALIDATED):
                row["review"] = at[state["review_version"]]
                row["text"] = f"reviewed in #{row['review']}"
            if state["state"] == INVALIDATED:
                row["invalidated_by"] = at[state["correction_version"]]
                row["text"] = (f"review of #{position} invalidated by correction "
                               f"#{row['invalidated_by']}")
            rows.append(row)
        return sorted(rows, key=lambda r: int(r["position"]))

    def review_summary(self, patient: Patient) -> dict[str, Any]:
        """One patient's records by review state (their positions) and the invalidations."""
        rows = self.review_rows(patient)
        return {
            "patient_id": patient.patient_id,
            **{state: [r["position"] for r in rows if r["state"] == state]
               for state in ("unreviewed", "reviewed", "invalidated")},
            "invalidations": [r["text"] for r in rows if r["state"] == INVALIDATED],
        }

    def review_status(self, trial_ref: str | None, patient_id: str | None) -> list[dict[str, Any]]:
        """Per patient: the records unreviewed, reviewed and invalidated, and open queries."""
        trial = self.trial(trial_ref)
        patients = ([self.patient(trial, patient_id)] if patient_id is not None
                    else self.patients(trial))
        status = []
        for patient in patients:
            status.append({
                **self.review_summary(patient),
                "open_queries": [q for q, v in patient.queries.items()
                                 if query_rules.is_open(v)],
            })
        return status

    # -- queries ----------------------------------------------------------------------------

    def _open_query(self, request: QueryOpen, now: datetime) -> _Pending:
        trial = self.trial(request.trial)
        patient = self.patient(trial, request.patient)
        (record,) = self._cited_records(patient, (request.position,))
        taken = [query_rules.query_number(q) for q in self.query_holders(trial)]
        query_id = f"Q{max(taken, default=0) + 1}"
        patient.raise_query(query_id, record, request.text, request.raiser, now)
        # Numbered from the committed queries, outside the writer's lock: the claim makes a
        # second monitor who counted the same queries fail to commit, instead of taking
        # the same id.
        return _Pending(trial, patient, (patient,), {"query": query_id},
                        claims=((query_scope(trial), query_id),))

    def _query_step(self, request: QueryStep, now: datetime) -> _Pending:
        trial = self.trial(request.trial)
        query_rules.query_number(request.query_id)
        patient = self.query_holders(trial).get(request.query_id)
        if patient is None:
            raise TrialRuleError("known-query",
                                 f"trial {trial.protocol_id} has no query {request.query_id}")
        data_manager = Role.DATA_MANAGER in self.ledger.get_user(request.signer).roles
        text = request.text or ""
        if request.action == "answer":
            patient.answer_query(request.query_id, text, request.signer, now)
        elif request.action == "close":
            patient.close_query(request.query_id, request.signer, data_manager, now)
        else:
            patient.reopen_query(request.query_id, text, request.signer, data_manager, now)
        summary = {"query": request.query_id,
                   "state": patient.queries[request.query_id]["state"]}
        return _Pending(trial, patient, (patient,), summary)

    def query_rows(
        self, trial_ref: str | None, patient_id: str | None, only_open: bool, today: date
    ) -> list[dict[str, Any]]:
        """Every query of the trial (or one patient's), with its state and age in days."""
        trial = self.trial(trial_ref)
        if patient_id is not None:
            # A query lives in the record it is about: one patient's are in their record,
            # without looking through every query of the ledger.
            try:
                found = self.patient(trial, patient_id)
            except LedgerError:
                found = None  # no such record: no queries, as before it is recorded
            holders = {} if found is None else dict.fromkeys(found.queries, found)
        else:
            holders = self.query_holders(trial)
        rows = []
        for query_id, patient in holders.items():
            if patient_id is not None and patient.patient_id != patient_id:
                continue
            if only_open and not query_rules.is_open(patient.queries[query_id]):
                continue
            rows.append(self.query_row(patient, query_id, today))
        return sorted(rows, key=lambda r: query_rules.query_number(str(r["query_id"])))

    def query_row(self, patient: Patient, query_id: str, today: date) -> dict[str, Any]:
        """One query of the patient: its record, state, age in days on `today`, thread and
        the corrections that cite it."""
        query = patient.queries[query_id]
        corrections = [self.positions(patient)[c["version"]] for c in patient.corrections
                       if c.get("query") == query_id]
        return {
            "query_id": query_id, "patient_id": patient.patient_id,
            "record": query["record_position"], "state": query["state"],
            "age_days": query_rules.age_days(query, today),
            "raised_by": query["raised_by"], "raised_at": query["raised_at"],
            "text": query["text"], "thread": list(query["thread"]),
            "corrections": corrections,
        }


# -- the audit-trail review's section ------------------------------------------------------


def _invalidated_reviews(scope: Scope) -> list[dict[str, Any]]:
    """Each record whose source-data-verification review a later correction voided, listed
    at the correction's entry: the record, the review, who reviewed and who corrected."""
    if scope.ledger is None:
        return []
    reviews = ReviewActions(scope.ledger)
    at = {e.position: e for e in scope.entries}
    rows = []
    for protocol_id in reviews.trial_ids():
        for patient in reviews.patients(reviews.trial(protocol_id)):
            for row in reviews.review_rows(patient):
                correction = at.get(row["invalidated_by"])
                review = at.get(row["review"])
                if correction is None or review is None or not scope.listed(correction):
                    continue
                rows.append(scope.row(
                    correction, record=f"#{row['position']}", record_kind=row["kind"],
                    review=f"#{row['review']}",
                    reviewed_by=review.statement["actor"]["user_id"],
                    reason=correction.statement["payload"].get("reason")))
    return sorted(rows, key=lambda r: (int(r["position"]), r["record"]))


register_section(Section(
    INVALIDATED_REVIEWS, "Reviews invalidated by corrections",
    "Records verified against source whose review a later correction voided: each needs "
    "a new review.", _invalidated_reviews))
