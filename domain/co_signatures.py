"""Co-signatures: the protocol's `[[co_signatures]]` name an event type whose entries need
a second signature, and the role that gives it.

A cohort decision needing one is *pending* until a person holding that role, other than
the decision's signer, signs a co-signature citing the decision entry's position and hash.
Pending is derived whenever the trial is read (`Trial.awaiting_co_signature`): a pending
decision does not open the next cohort.

A DLT adjudication needing one is pending until a person holding the role, who signed
neither the adjudication nor any correction of it, co-signs it (`Patient.co_sign_adjudication`).
While pending, the patient's course-1 outcome is *waiting*: the adjudication counts neither
as a DLT nor as a cleared AE, so the cohort cannot be decided on it. A correction of a
co-signed adjudication makes it pending again: the co-signature vouched for the values
before the correction. The rules on who may co-sign which entry are here,
so the writer (`ledger/co_signing.py`) and `verify` (`ledger/verify_decisions.py`) apply
the same ones.
"""

from __future__ import annotations

from dataclasses import dataclass

from trialctl.domain.roles import Role
from trialctl.domain.rules import TrialRuleError

# The stored names of the trial's decision events (the Trial aggregate's TOPICs).
COHORT_DECIDED = "trialctl.Trial.CohortDecided"
COHORT_DECISION_OVERRIDDEN = "trialctl.Trial.CohortDecisionOverridden"
# The stored names of a patient's DLT adjudications (the Patient aggregate's TOPICs).
DLT_ADJUDICATED = "trialctl.Patient.DltAdjudicated"
DLT_RULE_OVERRIDDEN = "trialctl.Patient.DltRuleOverridden"
ADJUDICATION_TYPES = (DLT_ADJUDICATED, DLT_RULE_OVERRIDDEN)
# The event types a protocol may ask a co-signature for.
CO_SIGNABLE = (COHORT_DECIDED, COHORT_DECISION_OVERRIDDEN, *ADJUDICATION_TYPES)
# The clinical roles that may give a second signature (admins, data managers and auditors
# take no clinical decision).
CO_SIGNER_ROLES = (Role.PRINCIPAL_INVESTIGATOR, Role.INVESTIGATOR, Role.MONITOR)

@dataclass(frozen=True)
class CoSignature:
    """Entries of `event_type` need a second signature by someone holding `role`."""

    event_type: str
    role: str
    text: str | None = None

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"event_type": self.event_type, "role": self.role}
        if self.text is not None:
            out["text"] = self.text
        return out


def check_co_signer(position: int, author: str | frozenset[str], signer: str, role: str,
                    signer_roles: frozenset[str] | tuple[str, ...]) -> None:
    """Refuse a co-signature by the entry's own signer (or, for a corrected record, by any
    signer of it or its corrections), or by someone without the role."""
    if signer == author or (isinstance(author, frozenset) and signer in author):
        raise TrialRuleError(
            "co-sign-own-entry", f"{signer} signed #{position}: nobody co-signs their own entry"
        )
    if role not in signer_roles:
        raise TrialRuleError(
            "co-signer-role", f"#{position} needs a co-signature by the role {role!r}, "
            f"which {signer} does not hold"
        )
