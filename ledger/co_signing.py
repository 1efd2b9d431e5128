"""Co-signing on the ledger: the second signature the protocol asks for
(`[[co_signatures]]`) on a cohort decision or a DLT adjudication, citing the entry's
position and hash.

The domain (`Trial.check_co_sign`, `Patient.check_co_sign_adjudication`,
`co_signatures.check_co_signer`) decides which entry needs one and who may give it; this
module finds what only the ledger knows: the entry at the cited position, its hash and who
signed it (and, for an adjudication, every correction of it), and the co-signer's roles.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from trialctl.domain.co_signatures import ADJUDICATION_TYPES, check_co_signer
from trialctl.domain.patient import Patient
from trialctl.domain.rules import TrialRuleError
from trialctl.domain.trial import Trial
from trialctl.ledger.application import UnlockedUser
from trialctl.ledger.decisions import DECISION_TYPES
from trialctl.ledger.entry import entry_hash, parse_entry
from trialctl.ledger.requests import Request
from trialctl.ledger.reviews import ReviewActions, ReviewRequest
from trialctl.ledger.roles import Meaning
from trialctl.ledger.trials import Recorded, _Pending


@dataclass(frozen=True)
class CoSign:
    """Co-sign the cohort decision or DLT adjudication at ledger `position`."""

    trial: str | None
    position: int
    signer: str
    meaning: Meaning = Meaning.APPROVED


class CoSignActions(ReviewActions):
    """`TrialActions` that also take co-signatures (and, through `ReviewActions`, read
    who signed each patient record)."""

    # The base class types its requests as `Request`; `_take` below takes these too.
    def check(self, request: Request | ReviewRequest | CoSign, now: datetime,
              signer: str | None = None) -> None:
        super().check(request, now, signer)  # type: ignore[arg-type]

    def perform(self, request: Request | ReviewRequest | CoSign, actor: UnlockedUser,
                now: datetime) -> Recorded:
        if not isinstance(request, CoSign):
            return super().perform(request, actor, now)
        pending = self._take(request, now)
        # Signed in the role the protocol names, even by a person holding several.
        notification_ids = self.ledger.record(actor, *pending.aggregates,
                                              meaning=request.meaning,
                                              role=pending.summary["role"])
        written = self.ledger.signed_recorder.entries_for(notification_ids)
        patient = None if pending.patient is None else pending.patient.patient_id
        return Recorded([parse_entry(state).statement for _, state in written],
                        pending.trial.protocol_id, patient, pending.summary)

    def _take(self, request: Request | ReviewRequest | CoSign, now: datetime) -> _Pending:
        if isinstance(request, CoSign):
            return self._co_sign(request, now)
        return super()._take(request, now)

    def _co_sign(self, request: CoSign, now: datetime) -> _Pending:
        trial = self.trial(request.trial)
        # After closing, only corrections, queries and reviews are signed: a second
        # signature is a decision's or an adjudication's, refused like the first.
        trial.check_open("a co-signature")
        position = request.position
        found = self.ledger.signed_recorder.entry_at(position) if position >= 0 else None
        if found is not None and found[1].topic in ADJUDICATION_TYPES:
            return self._co_sign_adjudication(request, trial, found[1], now)
        if found is None or found[1].originator_id != trial.id or \
                found[1].topic not in DECISION_TYPES:
            raise TrialRuleError(
                "co-signable", f"#{position} is not a cohort decision or DLT adjudication of "
                f"trial {trial.protocol_id}"
            )
        stored = found[1]
        statement = parse_entry(stored.state).statement
        cohort_number = int(statement["payload"]["cohort_number"])
        role = trial.check_co_sign(cohort_number)
        signer = self.ledger.get_user(request.signer)
        check_co_signer(position, str(statement["actor"]["user_id"]), signer.user_id, role,
                        tuple(signer.roles))
        trial.co_sign(cohort_number, position, entry_hash(stored.state), now)
        summary: dict[str, Any] = {
            "cohort_number": cohort_number, "co_signs": position, "role": role,
            "decision": trial.decision_of(cohort_number),
            "awaiting_co_signature": trial.awaiting_co_signature(),
        }
        return _Pending(trial, None, (trial,), summary, meaning=request.meaning)

    def _co_sign_adjudication(self, request: CoSign, trial: Trial, stored: StoredEvent,
                              now: datetime) -> _Pending:
        patient = self._load(UUID(str(stored.originator_id)))
        if not isinstance(patient, Patient) or patient.trial_id != str(trial.id):
            raise TrialRuleError(
                "co-signable", f"#{request.position} is not a DLT adjudication of trial "
                f"{trial.protocol_id}")
        version = int(stored.originator_version)
        role = patient.check_co_sign_adjudication(version, trial.protocol)
        signer = self.ledger.get_user(request.signer)
        # The adjudicator, and whoever corrected the adjudication since, may not confirm it.
        authors = self.record_entries(patient)[version].signers
        check_co_signer(request.position, authors, signer.user_id, role, tuple(signer.roles))
        patient.co_sign_adjudication(version, request.position, entry_hash(stored.state),
                                     trial.protocol, now)
        summary: dict[str, Any] = {
            "patient_id": patient.patient_id, "co_signs": request.position, "role": role,
            "record_version": version,
            "awaiting_co_signature": patient.awaiting_co_signature(trial.protocol),
            "outcome": patient.outcome(trial.protocol).state,
        }
        return _Pending(trial, patient, (patient,), summary, meaning=request.meaning)
