"""What `verify` reports: findings collected, never raised, so one run lists every failing
entry with its position, aggregate and reason; and how each checkpoint given fared."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Finding:
    check: str
    detail: str
    position: int | None = None
    notification_id: int | None = None
    aggregate_id: str | None = None
    aggregate_version: int | None = None
    event_type: str | None = None

    def describe(self) -> str:
        where = []
        if self.position is not None:
            where.append(f"position {self.position}")
        if self.notification_id is not None:
            where.append(f"row {self.notification_id}")
        if self.aggregate_id is not None:
            where.append(f"aggregate {self.aggregate_id} v{self.aggregate_version}")
        if self.event_type:
            where.append(self.event_type)
        prefix = f"[{', '.join(where)}] " if where else ""
        return f"{prefix}{self.check}: {self.detail}"


@dataclass(frozen=True)
class CheckpointResult:
    source: str
    tree_size: int
    signer: str
    status: str
    # Witnesses whose cosignature holds, by the keys `verify --witness-key` was given.
    witnesses: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class Override:
    """A cohort decision other than the engine's, as its signed entry records it."""

    position: int
    trial_id: str
    cohort_number: Any
    decision: str
    engine_recommendation: str
    override_reason: str
    signer: str
    signer_name: str
    signer_role: str
    recorded_at: str

    def describe(self) -> str:
        return (f"[position {self.position}] cohort {self.cohort_number}: {self.decision} "
                f"instead of {self.engine_recommendation}, signed by {self.signer} "
                f"({self.signer_name}, {self.signer_role}) at {self.recorded_at}; reason: "
                f"{self.override_reason}")


@dataclass(frozen=True)
class SinceCorrected:
    """A decision whose counts or recommendation the current facts no longer give."""

    position: int
    trial_id: str
    cohort_number: int
    decision: str
    recorded: dict[str, Any]
    rederived: dict[str, Any]
    patients: tuple[dict[str, Any], ...]
    entries: tuple[int, ...]  # the decision's position, then every entry involved
    check: str = "decision-since-corrected"

    def describe(self) -> str:
        def counts(side: dict[str, Any]) -> str:
            step = side["recommendation"] or {"action": "out of the 3+3 rules"}
            return f"{side['evaluated']} evaluated, {side['dlts']} DLT(s), {step['action']}"

        who = ", ".join(f"{p['patient_id']} {p['then']} -> {p['now']}" for p in self.patients)
        return (f"[position {self.position}] {self.check}: {self.trial_id} cohort "
                f"{self.cohort_number} ({self.decision}) was made on data since corrected: "
                f"then {counts(self.recorded)}; now {counts(self.rederived)}"
                f"{'; ' + who if who else ''}; entries {', '.join(map(str, self.entries))}")


@dataclass
class VerificationReport:
    location: str
    entries_checked: int = 0
    tree_size: int = 0
    root_hash: str = ""
    since_tree_size: int | None = None
    findings: list[Finding] = field(default_factory=list)
    checkpoints: list[CheckpointResult] = field(default_factory=list)
    decisions_checked: int = 0
    overrides: list[Override] = field(default_factory=list)
    # Not findings (exit 0): a checkpoint directory with no note, or a stale newest note.
    warnings: list[str] = field(default_factory=list)
    # Listed, yet not findings: `ok` does not read them (verify --projections).
    since_corrected: list[SinceCorrected] = field(default_factory=list)
    # How far a check reached when it was narrowed (`--since-checkpoint`): neither a finding
    # nor a warning, said so the reader knows what a full verify would add.
    notes: list[str] = field(default_factory=list)
    # With `--since-checkpoint`: trials whose decisions were re-checked, and those left out.
    decision_trials: dict[str, int] | None = None

    @property
    def ok(self) -> bool:
        return not self.findings

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "ledger": self.location,
            "entries_checked": self.entries_checked,
            "tree_size": self.tree_size,
            "root_hash": self.root_hash,
            "since_tree_size": self.since_tree_size,
            "findings": [asdict(f) for f in self.findings],
            "checkpoints": [asdict(c) for c in self.checkpoints],
            "decisions_checked": self.decisions_checked,
            "overrides": [asdict(o) for o in self.overrides],
            "warnings": list(self.warnings),
            "since_corrected": [asdict(w) for w in self.since_corrected],
            "notes": list(self.notes),
            "decision_trials": self.decision_trials,
        }
