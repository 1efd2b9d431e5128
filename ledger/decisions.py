"""Who signed each cohort decision: read from the signed statements, shown beside the
decisions in the trial's status."""

from __future__ import annotations

from typing import Any

from trialctl.domain.trial import Trial

DECISION_TYPES = (Trial.CohortDecided.TOPIC, Trial.CohortDecisionOverridden.TOPIC)


def decision_signer(statement: dict[str, Any]) -> dict[str, Any]:
    """Who signed a cohort decision, from its signed statement."""
    return {**statement["actor"], "meaning": statement["meaning"],
            "recorded_at": statement["recorded_at"], "position": statement["position"]}


def with_signers(status: dict[str, Any], signers: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """The trial status with each cohort decision's signer beside it."""
    decisions = [{**d, "signed_by": signers.get(d["cohort_number"])} for d in status["decisions"]]
    return {**status, "decisions": decisions}
