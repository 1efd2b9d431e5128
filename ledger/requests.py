"""What a command asks the ledger to record, as typed values: built by the CLI (or any
caller), checked and performed by `TrialActions`. Holds no database code, so building a
request loads only the domain."""

from __future__ import annotations

from dataclasses import dataclass

from trialctl.domain.facts import Fact
from trialctl.domain.protocol import Protocol


@dataclass(frozen=True)
class Registration:
    """Register a trial from its protocol."""

    protocol: Protocol


@dataclass(frozen=True)
class PatientStep:
    """Record one fact about a patient (consent creates the patient)."""

    trial: str | None
    patient: str
    fact: Fact


@dataclass(frozen=True)
class CohortDecision:
    """The current cohort's decision, checked against the 3+3 engine."""

    trial: str | None
    action: str
    next_level: int | None
    mtd_level: int | None
    override_reason: str | None
    packet_sha256: str | None = None  # the committee packet the decision cites


@dataclass(frozen=True)
class TrialClosure:
    """Close the trial (principal investigator): afterwards only corrections, queries and
    reviews may be signed."""

    trial: str | None
    closed_on: str
    reason: str


Request = Registration | PatientStep | CohortDecision | TrialClosure
