"""The trial aggregate: its protocol, its cohorts and their outcomes, and the cohort
decisions of the 3+3 design.

A cohort fills with patients at its level. The trial holds only who is in which cohort and
the decisions taken: each patient's DLT outcome (evaluable with or without a DLT, awaited, or
replaced) is derived from the patients' current facts, corrections applied, whenever state
is read (`Patient.outcome`), so every reading here takes the patients (`Roster`). When every
place in the cohort holds an evaluated patient, a decision is due; it is checked against the
escalation engine, and a different decision needs an override reason and
principal-investigator authority (a separate event type, so the ledger can tell who may sign
it). A decision keeps what it counted, so `decision_reviews` can tell when the facts have
since been corrected under it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property, lru_cache
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from trialctl.domain.co_signatures import COHORT_DECIDED, COHORT_DECISION_OVERRIDDEN
from trialctl.domain.ctcae_terms import terms_for
from trialctl.domain.escalation import (
    ACTION_STOP,
    Cohort,
    OutOfRuleError,
    Selection,
    Step,
    ThreePlusThree,
)
from trialctl.domain.ids import TRIALCTL_NAMESPACE
from trialctl.domain.patient import EVALUABLE, REPLACED, DltOutcome, Patient, dlt_note, not_counted
from trialctl.domain.protocol import Protocol
from trialctl.domain.protocol_file import stored_protocol
from trialctl.domain.rules import TrialRuleError, not_in_future, parse_day

# The trial's patients by study id: at least every patient assigned to a cohort.
Roster = Mapping[str, Patient]


# A pure function of the id, asked for on every line of a batch (uuid5 hashes each time).
@lru_cache(maxsize=256)
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

    code: str  # enroll | await-evaluation | decision-due | co-signature-due | stopped
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
        self.closed: dict[str, Any] | None = None  # see `close`
        # Co-signatures given, by cohort number: the decision entry's position and hash.
        self.co_signed: dict[int, dict[str, Any]] = {}

    @staticmethod
    def create_id(protocol_id: str) -> UUID:
        return trial_id_for(protocol_id)

    @classmethod
    def register(cls, protocol: Protocol, timestamp: datetime) -> Trial:
        design_for(protocol)  # refuses a protocol the engine cannot run
        terms_for(protocol.dlt.ctcae_version)  # and one whose AE terms cannot be coded
        return cls(protocol_id=protocol.id, protocol=protocol.to_dict(), timestamp=timestamp)

    # -- reading -------------------------------------------------------------------------

    @cached_property
    def protocol(self) -> Protocol:
        return stored_protocol(self.protocol_data)

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

    def outcomes(self, cohort: dict[str, Any], patients: Roster) -> dict[str, DltOutcome]:
        """Each of the cohort's patients' course 1 outcome, derived from current facts."""
        protocol = self.protocol
        missing = [p for p in cohort["patients"] if p not in patients]
        if missing:
            raise ValueError(f"the roster lacks cohort {cohort['number']}'s {missing}")
        return {p: patients[p].outcome(protocol) for p in cohort["patients"]}

    def cohort_state(self, cohort: dict[str, Any], patients: Roster) -> CohortState:
        outcomes = self.outcomes(cohort, patients)
        replaced = [p for p, o in outcomes.items() if o.state == REPLACED]
        active = [p for p in cohort["patients"] if p not in replaced]
        evaluated = {p: outcomes[p].dlt for p in active if outcomes[p].state == EVALUABLE}
        return CohortState(cohort["number"], cohort["level"], active, replaced, evaluated)

    def evaluated_cohorts(self, patients: Roster, upto: int | None = None) -> list[Cohort]:
        """The outcome path the engine reads: evaluable patients' DLTs, cohort by cohort
        (up to cohort number `upto`)."""
        path = []
        for cohort in self.cohorts:
            if upto is not None and cohort["number"] > upto:
                break
            outcomes = tuple(self.cohort_state(cohort, patients).evaluated.values())
            if outcomes:
                path.append(Cohort(level=cohort["level"], outcomes=outcomes))
        return path

    def status(self, patients: Roster) -> dict[str, Any]:
        """The trial as it stands: levels, cohorts, what comes next, the MTD once declared,
        every count derived from the patients' current facts. `status`, the replay and the
        read models all show this one reading."""
        protocol = self.protocol
        step = self.next_step(patients)
        mtd = None
        if self.stopped and self.mtd_level is not None:
            level = protocol.level(self.mtd_level)
            mtd = {"level": level.level, "dose": str(level.dose), "unit": level.unit}
        cohorts = []
        overrides = []
        for cohort in self.cohorts:
            state = self.cohort_state(cohort, patients)
            notes, uncoded = [], []
            for patient_id in cohort["patients"]:
                patient = patients[patient_id]
                for judged in patient.judged_dlts(protocol):
                    if not_counted(judged):
                        notes.append(f"{patient_id} {dlt_note(judged)}")
                    if judged["overridden"]:
                        overrides.append({
                            "patient_id": patient_id, "ae_id": judged["ae_id"],
                            "rule_code": judged["rule_code"], "version": judged["version"],
                            "override_reason": judged["override_reason"],
                        })
                uncoded += [
                    f"{patient_id} {ae['ae_id']}" for ae in patient.adverse_events()
                    if not ae["coded"]
                ]
            cohorts.append(
                {
                    "number": cohort["number"],
                    "level": cohort["level"],
                    "dose": str(protocol.level(cohort["level"]).dose),
                    "patients": state.active,
                    "replaced": state.replaced,
                    # Why each replaced patient does not count (withdrawn, short of course 1).
                    "replaced_because": {
                        p: patients[p].outcome(protocol).reason for p in state.replaced
                    },
                    "evaluated": len(state.evaluated),
                    "dlts": state.dlts,
                    "dlt_notes": notes,
                    "uncoded_aes": uncoded,
                }
            )
        reviews = {r["cohort_number"]: r for r in self.decision_reviews(patients)}
        decisions = [
            {
                **decision,
                "since_corrected": reviews[decision["cohort_number"]]["differs"],
                "review": reviews[decision["cohort_number"]],
            }
            for decision in self.decisions
        ]
        deescalation = "on" if protocol.design.allow_deescalation else "off"
        return {
            "trial": self.protocol_id,
            "title": protocol.title,
            "design": f"{protocol.design.name}, de-escalation {deescalation}",
            "current_level": None if self.stopped else self.current_cohort["level"],
            "cohorts": cohorts,
            "decisions": decisions,
            "dlt_overrides": overrides,
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
            "closed": self.closed,
            # Decisions, then DLT adjudications, whose second signature is due.
            "awaiting_co_signature": self.awaiting_co_signature() + [
                waiting for cohort in self.cohorts for p in cohort["patients"]
                for waiting in patients[p].awaiting_co_signature(protocol)
            ],
            "co_signed": [
                {"cohort_number": n, **cited} for n, cited in sorted(self.co_signed.items())
            ],
        }

    def decision_reviews(self, patients: Roster) -> list[dict[str, Any]]:
        """Each recorded decision against the one the current facts give: what it counted
        and the engine's recommendation then, the same re-derived now, whether they differ
        (the decision was made on data since corrected) and the patients involved."""
        protocol = self.protocol
        reviews: list[dict[str, Any]] = []
        changed: list[str] = []  # patients whose outcome differs from what a decision counted
        for decision in self.decisions:
            number = decision["cohort_number"]
            state = self.cohort_state(self.cohorts[number - 1], patients)
            counted = decision["counted"]
            outcomes_then: dict[str, bool] = counted["outcomes"]
            changed += sorted(
                p for p in set(outcomes_then) | set(state.evaluated)
                if outcomes_then.get(p) != state.evaluated.get(p)
            )
            try:
                step: Step | None = self.design.fit(
                    self.evaluated_cohorts(patients, upto=number)
                ).step
            except OutOfRuleError:
                step = None
            then_recommended = _recommendation(decision["recommended"])
            now_recommended = _recommendation(_step_dict(step))
            now = {"evaluated": len(state.evaluated), "dlts": state.dlts}
            reviews.append({
                "cohort_number": number,
                "recorded": {
                    "evaluated": counted["evaluated"], "dlts": counted["dlts"],
                    "recommendation": then_recommended,
                },
                "rederived": {**now, "recommendation": now_recommended},
                "differs": (
                    counted["evaluated"] != now["evaluated"]
                    or counted["dlts"] != now["dlts"]
                    or then_recommended != now_recommended
                ),
                # This cohort's and earlier cohorts' (the 3+3 reads the whole path).
                "patients": [
                    {
                        "patient_id": p,
                        "cohort_number": self._cohort_number_of(p),
                        "then": _outcome_text(self._counted_outcome(p)),
                        "now": _outcome_text(
                            self.cohort_state(self.cohorts[self._cohort_number_of(p) - 1],
                                              patients).evaluated.get(p)
                        ),
                        "records": list(patients[p].outcome(protocol).records),
                        "corrections": [c["version"] for c in patients[p].corrections],
                    }
                    for p in changed
                ],
            })
        return reviews

    def _cohort_number_of(self, patient_id: str) -> int:
        cohort = self.cohort_of(patient_id)
        assert cohort is not None
        return int(cohort["number"])

    def _counted_outcome(self, patient_id: str) -> bool | None:
        """What the decision on the patient's cohort counted for them."""
        number = self._cohort_number_of(patient_id)
        for decision in self.decisions:
            if decision["cohort_number"] == number:
                counted = decision["counted"]["outcomes"].get(patient_id)
                return None if counted is None else bool(counted)
        return None

    def engine_selection(self, patients: Roster) -> Selection:
        """The engine's reading of the derived path; raises OutOfRuleError after overrides."""
        return self.design.fit(self.evaluated_cohorts(patients))

    # -- co-signatures ---------------------------------------------------------------------

    @staticmethod
    def decision_type(decision: Mapping[str, Any]) -> str:
        """The stored event type of a recorded decision."""
        return COHORT_DECISION_OVERRIDDEN if decision["overridden"] else COHORT_DECIDED

    def co_signer_role(self, cohort_number: int) -> str | None:
        """The role whose second signature cohort `cohort_number`'s decision needs."""
        decision = self.decision_of(cohort_number)
        return None if decision is None else self.protocol.co_signer_role(
            self.decision_type(decision))

    def decision_of(self, cohort_number: int) -> dict[str, Any] | None:
        return next((d for d in self.decisions if d["cohort_number"] == cohort_number), None)

    def awaiting_co_signature(self) -> list[dict[str, Any]]:
        """The decisions whose protocol-required co-signature has not landed: derived from
        the protocol and the co-signatures on file whenever the trial is read."""
        waiting = []
        for decision in self.decisions:
            number = decision["cohort_number"]
            role = self.co_signer_role(number)
            if role is not None and number not in self.co_signed:
                waiting.append({
                    "cohort_number": number, "event_type": self.decision_type(decision),
                    "role": role,
                    "text": f"cohort {number}'s decision awaits co-signature by the {role}",
                })
        return waiting

    def check_co_sign(self, cohort_number: int) -> str:
        """The role a co-signature of cohort `cohort_number`'s decision needs, or a refusal:
        no such decision, one needing none, or one already co-signed."""
        decision = self.decision_of(cohort_number)
        if decision is None:
            raise TrialRuleError("co-signable", f"cohort {cohort_number} has no decision")
        role = self.co_signer_role(cohort_number)
        if role is None:
            raise TrialRuleError(
                "co-signature-required",
                f"a {self.decision_type(decision).rpartition('.')[2]} needs no co-signature "
                f"under protocol {self.protocol_id}",
            )
        if cohort_number in self.co_signed:
            cited = self.co_signed[cohort_number]
            raise TrialRuleError(
                "co-sign-once", f"cohort {cohort_number}'s decision was already co-signed "
                f"(#{cited['position']})")
        return role

    class DecisionCoSigned(Aggregate.Event):
        """A second signature on a cohort decision, citing the decision's entry."""

        TOPIC = "trialctl.Trial.DecisionCoSigned"
        cohort_number: int
        position: int
        entry_hash: str

    def co_sign(self, cohort_number: int, position: int, entry_hash: str,
                timestamp: datetime) -> str:
        """Record the co-signature; returns the role it needs (the signer's to hold)."""
        role = self.check_co_sign(cohort_number)
        self._co_signed(cohort_number, position, entry_hash, timestamp=timestamp)
        return role

    @event(DecisionCoSigned)
    def _co_signed(self, cohort_number: int, position: int, entry_hash: str,
                   timestamp: datetime) -> None:
        self.co_signed[cohort_number] = {"position": position, "entry_hash": entry_hash}

    def pending_opening(self) -> dict[str, Any] | None:
        """The pending co-signature that keeps the current cohort closed: the previous
        cohort's decision opened it, and it still awaits its second signer."""
        number = int(self.current_cohort["number"]) - 1
        return next((w for w in self.awaiting_co_signature() if w["cohort_number"] == number),
                    None)

    def enrolment_wait(self, patient_id: str) -> str | None:
        """Why a patient not yet in a cohort cannot join one now for want of a
        co-signature, or None."""
        pending = None if self.stopped else self.pending_opening()
        if pending is None or self.cohort_of(patient_id) is not None:
            return None
        return f"enrolment waits: {pending['text']}"

    def next_step(self, patients: Roster) -> NextStep:
        if not self.stopped and (pending := self.pending_opening()) is not None:
            cohort = self.current_cohort
            return NextStep(
                "co-signature-due",
                f"{pending['text']}: cohort {cohort['number']} at level {cohort['level']} "
                "is not open yet",
                level=cohort["level"],
                waiting_for=(pending["role"],),
            )
        if self.stopped:
            mtd = f"MTD level {self.mtd_level}" if self.mtd_level else "no tolerable dose"
            return NextStep("stopped", f"trial stopped ({self.stop_reason}): {mtd}")
        cohort = self.current_cohort
        state = self.cohort_state(cohort, patients)
        size = self.design.cohort_size
        if len(state.active) < size:
            places = size - len(state.active)
            return NextStep(
                "enroll",
                f"enroll {places} more patient{'s' if places > 1 else ''} at level "
                f"{cohort['level']} (cohort {cohort['number']})",
                level=cohort["level"],
                places=places,
            )
        waiting = tuple(p for p in state.active if p not in state.evaluated)
        if waiting:
            # A patient may wait on a second signature rather than on the clinic.
            why = [r for p in waiting if (r := patients[p].outcome(self.protocol).reason)]
            return NextStep(
                "await-evaluation",
                f"await DLT evaluation of {', '.join(waiting)} (cohort {cohort['number']})"
                + "".join(f"; {r}" for r in why),
                level=cohort["level"],
                waiting_for=waiting,
            )
        return NextStep(
            "decision-due",
            f"cohort {cohort['number']} decision due at level {cohort['level']}",
            level=cohort["level"],
        )

    # -- enrollment and outcomes ---------------------------------------------------------

    def check_can_enroll(self, patient_id: str, patients: Roster) -> int:
        """The level a new patient joins at, or a refusal naming the rule."""
        if self.stopped:
            raise TrialRuleError("trial-open", f"trial {self.protocol_id} has stopped enrolling")
        if self.cohort_of(patient_id) is not None:
            raise TrialRuleError("enroll-once", f"patient {patient_id} is already enrolled")
        step = self.next_step(patients)
        if step.code == "co-signature-due":
            raise TrialRuleError("co-signature-pending", step.text)
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

    def assign(self, patient_id: str, patients: Roster, timestamp: datetime) -> int:
        level = self.check_can_enroll(patient_id, patients)
        self._assign(patient_id, self.current_cohort["number"], level, timestamp=timestamp)
        return level

    @event(PatientAssigned)
    def _assign(self, patient_id: str, cohort_number: int, level: int, timestamp: datetime) -> None:
        self.cohorts[cohort_number - 1]["patients"].append(patient_id)

    # -- decisions -----------------------------------------------------------------------

    def expected_step(self, patients: Roster) -> Step | None:
        """The engine's decision for the current cohort, or None when the path left the
        rules (after an override), in which case only an override may decide."""
        try:
            return self.engine_selection(patients).step
        except OutOfRuleError:
            return None

    class CohortDecided(Aggregate.Event):
        TOPIC = COHORT_DECIDED
        cohort_number: int
        action: str
        next_level: int | None
        mtd_level: int | None
        stop_reason: str | None
        reason: str
        counted: dict[str, Any]

    class CohortDecisionOverridden(Aggregate.Event):
        """A decision other than the engine's: principal-investigator authority only."""

        TOPIC = COHORT_DECISION_OVERRIDDEN
        cohort_number: int
        action: str
        next_level: int | None
        mtd_level: int | None
        stop_reason: str | None
        reason: str
        engine_recommendation: dict[str, Any] | None
        override_reason: str
        counted: dict[str, Any]

    def decide(
        self,
        action: str,
        next_level: int | None,
        mtd_level: int | None,
        patients: Roster,
        timestamp: datetime,
        override_reason: str | None = None,
    ) -> Step | None:
        """Record the cohort decision; returns the engine's step for display."""
        self.check_open("a cohort decision")
        step = self.next_step(patients)
        if step.code != "decision-due":
            raise TrialRuleError("decision-due", f"no decision is due: {step.text}")
        self._check_decision_shape(action, next_level, mtd_level)
        expected = self.expected_step(patients)
        number = int(self.current_cohort["number"])
        # What the decision counted, kept so a later correction under it shows.
        evaluated = self.cohort_state(self.current_cohort, patients).evaluated
        counted = {
            "outcomes": dict(evaluated),
            "evaluated": len(evaluated),
            "dlts": sum(evaluated.values()),
        }
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
                counted,
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
            counted,
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
        counted: dict[str, Any],
        timestamp: datetime,
    ) -> None:
        recommended = {"action": action, "next_level": next_level, "mtd_level": mtd_level}
        self._apply_decision(
            cohort_number, action, next_level, mtd_level, stop_reason, reason,
            overridden=False, counted=counted, recommended=recommended,
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
        counted: dict[str, Any],
        timestamp: datetime,
    ) -> None:
        self._apply_decision(
            cohort_number, action, next_level, mtd_level, stop_reason, reason,
            overridden=True, counted=counted, recommended=engine_recommendation,
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
        counted: dict[str, Any],
        recommended: dict[str, Any] | None,
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
                "counted": counted,
                "recommended": recommended,
            }
        )
        if action == ACTION_STOP:
            self.stopped = True
            self.mtd_level = mtd_level
            self.stop_reason = stop_reason
        else:
            assert next_level is not None
            self.cohorts.append(_new_cohort(cohort_number + 1, next_level))

    # -- closing the trial ---------------------------------------------------------------

    class Closed(Aggregate.Event):
        """The trial closed by its principal investigator: from then on only corrections,
        queries and reviews may be signed."""

        TOPIC = "trialctl.Trial.Closed"
        closed_on: str
        reason: str

    def close(self, closed_on: str, reason: str, timestamp: datetime) -> None:
        self.check_open("closing it again")
        day = parse_day(closed_on, "closing date")
        not_in_future(day, timestamp.date(), "closing date")
        if not reason.strip():
            raise TrialRuleError("reason-required", "closing the trial needs a reason")
        self._close(closed_on=day.isoformat(), reason=reason.strip(), timestamp=timestamp)

    @event(Closed)
    def _close(self, closed_on: str, reason: str, timestamp: datetime) -> None:
        self.closed = {"closed_on": closed_on, "reason": reason}

    def check_open(self, what: str) -> None:
        """Refuse `what` once the trial is closed (corrections are never refused here)."""
        if self.closed is not None:
            raise TrialRuleError(
                "trial-closed",
                f"trial {self.protocol_id} was closed on {self.closed['closed_on']}: "
                f"{what} may not be recorded; only corrections, queries and reviews",
            )


@dataclass(frozen=True)
class CohortState:
    """One cohort as the current facts give it."""

    number: int
    level: int
    active: list[str]  # assigned and not replaced, in order of enrollment
    replaced: list[str]
    evaluated: dict[str, bool]  # evaluable patients and whether each had a counting DLT

    @property
    def dlts(self) -> int:
        return sum(self.evaluated.values())


def _new_cohort(number: int, level: int) -> dict[str, Any]:
    return {"number": number, "level": level, "patients": []}


def _recommendation(step: dict[str, Any] | None) -> dict[str, Any] | None:
    if step is None:
        return None
    return {k: step[k] for k in ("action", "next_level", "mtd_level")}


def _outcome_text(dlt: bool | None) -> str:
    return {None: "not evaluated", True: "DLT", False: "no DLT"}[dlt]


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
