"""Co-signing a cohort decision on the ledger: the second signature the protocol asks for
(`[[co_signatures]]`), citing the decision entry's position and hash.

The domain (`Trial.check_co_sign`, `co_signatures.check_co_signer`) decides which decision
needs one and who may give it; this module finds what only the ledger knows: the entry at
the cited position, its hash and who signed it, and the co-signer's roles.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from trialctl.domain.co_signatures import check_co_signer
from trialctl.domain.rules import TrialRuleError
from trialctl.ledger.application import UnlockedUser
from trialctl.ledger.decisions import DECISION_TYPES
from trialctl.ledger.entry import entry_hash, parse_entry
from trialctl.ledger.requests import Request
from trialctl.ledger.roles import Meaning
from trialctl.ledger.trials import Recorded, TrialActions, _Pending


@dataclass(frozen=True)
class CoSign:
    """Co-sign the cohort decision at ledger `position`."""

    trial: str | None
    position: int
    signer: str
    meaning: Meaning = Meaning.APPROVED


class CoSignActions(TrialActions):
    """`TrialActions` that also take co-signatures."""

    # The base class types its requests as `Request`; `_take` below takes these too.
    def check(self, request: Request | CoSign, now: datetime, signer: str | None = None) -> None:
        super().check(request, now, signer)  # type: ignore[arg-type]

    def perform(self, request: Request | CoSign, actor: UnlockedUser, now: datetime) -> Recorded:
        if not isinstance(request, CoSign):
            return super().perform(request, actor, now)
        pending = self._take(request, now)
        # Signed in the role the protocol names, even by a person holding several.
        notification_ids = self.ledger.record(actor, *pending.aggregates,
                                              meaning=request.meaning,
                                              role=pending.summary["role"])
        written = self.ledger.signed_recorder.entries_for(notification_ids)
        return Recorded([parse_entry(state).statement for _, state in written],
                        pending.trial.protocol_id, None, pending.summary)

    def _take(self, request: Request | CoSign, now: datetime) -> _Pending:
        if isinstance(request, CoSign):
            return self._co_sign(request, now)
        return super()._take(request, now)

    def _co_sign(self, request: CoSign, now: datetime) -> _Pending:
        trial = self.trial(request.trial)
        position = request.position
        found = self.ledger.signed_recorder.entry_at(position) if position >= 0 else None
        if found is None or found[1].originator_id != trial.id or \
                found[1].topic not in DECISION_TYPES:
            raise TrialRuleError(
                "co-signable", f"#{position} is not a cohort decision of trial {trial.protocol_id}"
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
