"""The trial aggregate: its protocol, its cohorts and their outcomes, and the cohort
decisions of the 3+3 design.

A cohort fills with patients at its level; each patient's DLT outcome arrives when the
patient becomes evaluable (course 1 completed, or a DLT inside the evaluation window). A
patient who leaves before that is not evaluable and is replaced. When every place in the
cohort holds an evaluated patient, a decision is due; it is checked against the escalation
engine, and a different decision needs an override reason and principal-investigator
authority (a separate event type, so the ledger can tell who may sign it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from trialctl.domain.escalation import (
    ACTION_STOP,
    Cohort,
    OutOfRuleError,
    Selection,
    Step,
    ThreePlusThree,
)
from trialctl.domain.ids import TRIALCTL_NAMESPACE
from trialctl.domain.protocol import Protocol
from trialctl.domain.protocol_file import protocol_from_dict
from trialctl.domain.rules import TrialRuleError


def trial_id_for(protocol_id: str) -> UUID:
    return uuid5(TRIALCTL_NAMESPACE, f"trial:{protocol_id}")


def design_for(protocol: Protocol) -> ThreePlusThree:
    return ThreePlusThree(
        num_doses=protocol.num_levels,
        start_level=protocol.start_level,
        allow_deescalation=protocol.design.allow_deescalation,
        cohort_size=protocol.design.cohort_size,
        max_per_level=protocol.design.max_per_level,
    )


@dataclass(frozen=True)
class NextStep:
    """What the trial needs now, for people and for `status`."""

    code: str  # enroll | await-evaluation | decision-due | stopped
    text: str
    level: int | None = None
    places: int = 0
    waiting_for: tuple[str, ...] = ()


class Trial(Aggregate):
    TOPIC = "trialctl.Trial"

    class Created(Aggregate.Created):
        TOPIC = "trialctl.Trial.Created"  # a base the library requires; never emitted

    class Registered(Created):
        TOPIC = "trialctl.Trial.Registered"
        protocol_id: str
        protocol: dict[str, Any]

    @event(Registered)
    def __init__(self, protocol_id: str, protocol: dict[str, Any], timestamp: datetime) -> None:
        self.protocol_id = protocol_id
        self.protocol_data = protocol
        start = int(protocol["start_level"])
        self.cohorts: list[dict[str, Any]] = [_new_cohort(1, start)]
        self.decisions: list[dict[str, Any]] = []
        self.stopped = False
        self.mtd_level: int | None = None
        self.stop_reason: str | None = None

    @staticmethod
    def create_id(protocol_id: str) -> UUID:
        return trial_id_for(protocol_id)

    @classmethod
    def register(cls, protocol: Protocol, timestamp: datetime) -> Trial:
        design_for(protocol)  # refuses a protocol the engine cannot run
        return cls(protocol_id=protocol.id, protocol=protocol.to_dict(), timestamp=timestamp)

    # -- reading -------------------------------------------------------------------------

    @cached_property
    def protocol(self) -> Protocol:
        return protocol_from_dict(self.protocol_data)

    @property
    def design(self) -> ThreePlusThree:
        return design_for(self.protocol)

    @property
    def current_cohort(self) -> dict[str, Any]:
        return self.cohorts[-1]

    def cohort_of(self, patient_id: str) -> dict[str, Any] | None:
        for cohort in self.cohorts:
            if patient_id in cohort["patients"]:
                return cohort
        return None

    def evaluated_cohorts(self) -> list[Cohort]:
        """The outcome path the engine reads: evaluable patients' DLTs, cohort by cohort."""
        path = []
        for cohort in self.cohorts:
            outcomes = tuple(_evaluated(cohort).values())
            if outcomes:
                path.append(Cohort(level=cohort["level"], outcomes=outcomes))
        return path

    def status(self) -> dict[str, Any]:
        """The trial as it stands: levels, cohorts, what comes next, the MTD once declared.
        `status`, the replay and the read models all show this one reading."""
        protocol = self.protocol
        step = self.next_step()
        mtd = None
        if self.stopped and self.mtd_level is not None:
            level = protocol.level(self.mtd_level)
            mtd = {"level": level.level, "dose": str(level.dose), "unit": level.unit}
        cohorts = []
        for cohort in self.cohorts:
            evaluated = _evaluated(cohort)
            cohorts.append(
                {
                    "number": cohort["number"],
                    "level": cohort["level"],
                    "dose": str(protocol.level(cohort["level"]).dose),
                    "patients": _active(cohort),
                    "replaced": list(cohort["replaced"]),
                    "evaluated": len(evaluated),
                    "dlts": sum(1 for dlt in evaluated.values() if dlt),
                }
            )
        deescalation = "on" if protocol.design.allow_deescalation else "off"
        return {
            "trial": self.protocol_id,
            "title": protocol.title,
            "design": f"{protocol.design.name}, de-escalation {deescalation}",
            "current_level": None if self.stopped else self.current_cohort["level"],
            "cohorts": cohorts,
            "decisions": list(self.decisions),
            "next": {
                "code": step.code,
                "text": step.text,
                "level": step.level,
                "places": step.places,
                "waiting_for": list(step.waiting_for),
            },
            "stopped": self.stopped,
            "stop_reason": self.stop_reason,
            "mtd": mtd,
        }

    def engine_selection(self) -> Selection:
        """The engine's reading of the recorded path; raises OutOfRuleError after overrides."""
        return self.design.fit(self.evaluated_cohorts())

    def next_step(self) -> NextStep:
        if self.stopped:
            mtd = f"MTD level {self.mtd_level}" if self.mtd_level else "no tolerable dose"
            return NextStep("stopped", f"trial stopped ({self.stop_reason}): {mtd}")
        cohort = self.current_cohort
        active = _active(cohort)
        size = self.design.cohort_size
        if len(active) < size:
            places = size - len(active)
            return NextStep(
                "enroll",
                f"enroll {places} more patient{'s' if places > 1 else ''} at level "
                f"{cohort['level']} (cohort {cohort['number']})",
                level=cohort["level"],
                places=places,
            )
        waiting = tuple(p for p in active if p not in cohort["outcomes"])
        if waiting:
            return NextStep(
                "await-evaluation",
                f"await DLT evaluation of {', '.join(waiting)} (cohort {cohort['number']})",
                level=cohort["level"],
                waiting_for=waiting,
            )
        return NextStep(
            "decision-due",
            f"cohort {cohort['number']} decision due at level {cohort['level']}",
            level=cohort["level"],
        )

    # -- enrollment and outcomes ---------------------------------------------------------

    def check_can_enroll(self, patient_id: str) -> int:
        """The level a new patient joins at, or a refusal naming the rule."""
        if self.stopped:
            raise TrialRuleError("trial-open", f"trial {self.protocol_id} has stopped enrolling")
        if self.cohort_of(patient_id) is not None:
            raise TrialRuleError("enroll-once", f"patient {patient_id} is already enrolled")
        step = self.next_step()
        if step.code != "enroll":
            raise TrialRuleError(
                "cohort-full", f"cohort {self.current_cohort['number']} is full: {step.text}"
            )
        return int(self.current_cohort["level"])

    class PatientAssigned(Aggregate.Event):
        TOPIC = "trialctl.Trial.PatientAssigned"
        patient_id: str
        cohort_number: int
        level: int

    def assign(self, patient_id: str, timestamp: datetime) -> int:
        level = self.check_can_enroll(patient_id)
        self._assign(patient_id, self.current_cohort["number"], level, timestamp=timestamp)
        return level

    @event(PatientAssigned)
    def _assign(self, patient_id: str, cohort_number: int, level: int, timestamp: datetime) -> None:
        self.cohorts[cohort_number - 1]["patients"].append(patient_id)

    class OutcomeRecorded(Aggregate.Event):
        """A patient became DLT-evaluable; `dlt` is whether a DLT counts toward decisions."""

        TOPIC = "trialctl.Trial.OutcomeRecorded"
        patient_id: str
        dlt: bool

    def record_outcome(self, patient_id: str, dlt: bool, timestamp: datetime) -> None:
        cohort = self._cohort_or_refuse(patient_id)
        if patient_id in cohort["outcomes"]:
            return  # already evaluable: a later DLT or course completion changes nothing here
        self._record_outcome(patient_id, dlt, timestamp=timestamp)

    @event(OutcomeRecorded)
    def _record_outcome(self, patient_id: str, dlt: bool, timestamp: datetime) -> None:
        cohort = self.cohort_of(patient_id)
        assert cohort is not None
        cohort["outcomes"][patient_id] = dlt

    class PatientReplaced(Aggregate.Event):
        """Not DLT-evaluable: the place in the cohort opens for another patient."""

        TOPIC = "trialctl.Trial.PatientReplaced"
        patient_id: str
        reason: str

    def replace(self, patient_id: str, reason: str, timestamp: datetime) -> None:
        cohort = self._cohort_or_refuse(patient_id)
        if patient_id in cohort["outcomes"]:
            return  # evaluable patients are never replaced
        self._replace(patient_id, reason, timestamp=timestamp)

    @event(PatientReplaced)
    def _replace(self, patient_id: str, reason: str, timestamp: datetime) -> None:
        cohort = self.cohort_of(patient_id)
        assert cohort is not None
        cohort["replaced"].append(patient_id)

    def _cohort_or_refuse(self, patient_id: str) -> dict[str, Any]:
        cohort = self.cohort_of(patient_id)
        if cohort is None:
            raise TrialRuleError("enrolled-first", f"patient {patient_id} is not enrolled")
        return cohort

    # -- decisions -----------------------------------------------------------------------

    def expected_step(self) -> Step | None:
        """The engine's decision for the current cohort, or None when the path left the
        rules (after an override), in which case only an override may decide."""
        try:
            return self.engine_selection().step
        except OutOfRuleError:
            return None

    class CohortDecided(Aggregate.Event):
        TOPIC = "trialctl.Trial.CohortDecided"
        cohort_number: int
        action: str
        next_level: int | None
        mtd_level: int | None
        stop_reason: str | None
        reason: str

    class CohortDecisionOverridden(Aggregate.Event):
        """A decision other than the engine's: principal-investigator authority only."""

        TOPIC = "trialctl.Trial.CohortDecisionOverridden"
        cohort_number: int
        action: str
        next_level: int | None
        mtd_level: int | None
        stop_reason: str | None
        reason: str
        engine_recommendation: dict[str, Any] | None
        override_reason: str

    def decide(
        self,
        action: str,
        next_level: int | None,
        mtd_level: int | None,
        timestamp: datetime,
        override_reason: str | None = None,
    ) -> Step | None:
        """Record the cohort decision; returns the engine's step for display."""
        if self.next_step().code != "decision-due":
            raise TrialRuleError("decision-due", f"no decision is due: {self.next_step().text}")
        self._check_decision_shape(action, next_level, mtd_level)
        expected = self.expected_step()
        number = int(self.current_cohort["number"])
        matches = expected is not None and (
            expected.action == action
            and expected.next_level == next_level
            and expected.mtd_level == mtd_level
        )
        if matches and override_reason is None:
            assert expected is not None
            self._decided(
                number,
                action,
                next_level,
                mtd_level,
                expected.stop_reason,
                expected.reason,
                timestamp=timestamp,
            )
            return expected
        if not override_reason or not override_reason.strip():
            wanted = (
                _describe_step(expected) if expected else "no engine decision (path overridden)"
            )
            raise TrialRuleError(
                "follow-the-engine",
                f"the 3+3 rules decide {wanted}; a different decision needs --override-reason "
                "and principal-investigator authority",
            )
        self._overridden(
            number,
            action,
            next_level,
            mtd_level,
            "overridden" if action == ACTION_STOP else None,
            f"override of cohort {number}: {override_reason.strip()}",
            _step_dict(expected),
            override_reason.strip(),
            timestamp=timestamp,
        )
        return expected

    def _check_decision_shape(
        self, action: str, next_level: int | None, mtd_level: int | None
    ) -> None:
        levels = range(1, self.protocol.num_levels + 1)
        if action == ACTION_STOP:
            if next_level is not None:
                raise TrialRuleError("decision-shape", "a stop has no next level")
            if mtd_level is not None and mtd_level not in levels:
                raise TrialRuleError("decision-shape", f"MTD level {mtd_level} is not a level")
        else:
            if next_level is None or next_level not in levels:
                raise TrialRuleError(
                    "decision-shape", f"'{action}' needs a next level in 1..{levels.stop - 1}"
                )
            if mtd_level is not None:
                raise TrialRuleError("decision-shape", "only a stop declares an MTD")

    @event(CohortDecided)
    def _decided(
        self,
        cohort_number: int,
        action: str,
        next_level: int | None,
        mtd_level: int | None,
        stop_reason: str | None,
        reason: str,
        timestamp: datetime,
    ) -> None:
        self._apply_decision(
            cohort_number, action, next_level, mtd_level, stop_reason, reason, overridden=False
        )

    @event(CohortDecisionOverridden)
    def _overridden(
        self,
        cohort_number: int,
        action: str,
        next_level: int | None,
        mtd_level: int | None,
        stop_reason: str | None,
        reason: str,
        engine_recommendation: dict[str, Any] | None,
        override_reason: str,
        timestamp: datetime,
    ) -> None:
        self._apply_decision(
            cohort_number, action, next_level, mtd_level, stop_reason, reason, overridden=True
        )

    def _apply_decision(
        self,
        cohort_number: int,
        action: str,
        next_level: int | None,
        mtd_level: int | None,
        stop_reason: str | None,
        reason: str,
        overridden: bool,
    ) -> None:
        self.decisions.append(
            {
                "cohort_number": cohort_number,
                "action": action,
                "next_level": next_level,
                "mtd_level": mtd_level,
                "stop_reason": stop_reason,
                "reason": reason,
                "overridden": overridden,
            }
        )
        if action == ACTION_STOP:
            self.stopped = True
            self.mtd_level = mtd_level
            self.stop_reason = stop_reason
        else:
            assert next_level is not None
            self.cohorts.append(_new_cohort(cohort_number + 1, next_level))


def _new_cohort(number: int, level: int) -> dict[str, Any]:
    return {"number": number, "level": level, "patients": [], "outcomes": {}, "replaced": []}


def _active(cohort: dict[str, Any]) -> list[str]:
    return [p for p in cohort["patients"] if p not in cohort["replaced"]]


def _evaluated(cohort: dict[str, Any]) -> dict[str, bool]:
    """The cohort's evaluable patients (never replaced ones) and whether each had a DLT."""
    return {p: cohort["outcomes"][p] for p in _active(cohort) if p in cohort["outcomes"]}


def _describe_step(step: Step) -> str:
    if step.action == ACTION_STOP:
        mtd = f"MTD level {step.mtd_level}" if step.mtd_level else "no MTD"
        return f"'stop' ({mtd})"
    return f"'{step.action}' to level {step.next_level}"


def _step_dict(step: Step | None) -> dict[str, Any] | None:
    if step is None:
        return None
    return {
        "action": step.action,
        "next_level": step.next_level,
        "mtd_level": step.mtd_level,
        "stop_reason": step.stop_reason,
        "reason": step.reason,
    }
