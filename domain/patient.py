"""The patient aggregate: one person's journey through one trial.

consent signed → screening recorded (eligibility evaluated criterion by criterion) →
enrolled (assigned to the open cohort at its level) → doses given → adverse events →
DLTs adjudicated → course 1 completed (DLT-evaluable, or not and replaced) → response
assessments (RECIST 1.0 or 1.1 as the protocol says, computed) → off study, or consent withdrawn.

Each recorded fact is kept by the aggregate version that recorded it. A correction never
edits a fact: it is its own event naming the fact's version, the new values and the reason;
state reads the corrected values, and the audit trail shows both.

What each fact holds, and the checks its values pass, is declared once in `facts`: the
events here take their payload fields from those declarations, and keep the fact on the
record when they are applied. This module holds the rules that read the whole record
(order of steps, the DLT window, RECIST against the baseline), hence its length.
"""

from __future__ import annotations

import bisect
import copy
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any, ClassVar
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from trialctl.domain import deviations
from trialctl.domain import queries as query_rules
from trialctl.domain.co_signatures import DLT_ADJUDICATED, DLT_RULE_OVERRIDDEN
from trialctl.domain.consent import consent_history
from trialctl.domain.ctcae_terms import terms_for
from trialctl.domain.dlt_rules import DltContext, unmet_conditions
from trialctl.domain.dose_modifications import below_course1_minimum, course1_dosing
from trialctl.domain.eligibility import evaluate_eligibility
from trialctl.domain.end_of_study import DIED
from trialctl.domain.facts import (
    ALLOWED_AFTER_WITHDRAWAL,
    COLLECTED_BEFORE_WITHDRAWAL,
    CORRECTABLE,
    FACTS,
    KEPT,
    TREATMENT_KINDS,
    AdverseEvent,
    Conmed,
    Consent,
    Correction,
    CourseCompletion,
    Deviation,
    DltAdjudication,
    DltOverride,
    Dose,
    DoseChange,
    Enrolment,
    Fact,
    FollowUp,
    Lab,
    Observation,
    OffStudy,
    Reconsent,
    Response,
    Screening,
    TreatmentWithdrawal,
    Withdrawal,
    lesion_from_record,
    report_state,
)
from trialctl.domain.ids import TRIALCTL_NAMESPACE
from trialctl.domain.protocol import Protocol
from trialctl.domain.recist import (
    assess_response,
    check_lesion_text,
    recist_rules,
    sum_of_diameters,
    validate_baseline,
)
from trialctl.domain.review import RecordEntry, check_review, citation, review_states
from trialctl.domain.rules import TrialRuleError, not_before, not_in_future, parse_day, parse_moment
from trialctl.domain.schedule import placed_visits

PATIENT_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")


# A pure function of its arguments, asked for on every line of a batch (uuid5 hashes each
# time); bounded, since patient ids come from outside.
@lru_cache(maxsize=4096)
def patient_aggregate_id(trial_id: UUID, patient_id: str) -> UUID:
    return uuid5(TRIALCTL_NAMESPACE, f"patient:{trial_id}:{patient_id}")


def check_patient_id(patient_id: str) -> str:
    if not PATIENT_ID_PATTERN.match(patient_id):
        raise TrialRuleError(
            "patient-id", f"patient id {patient_id!r} must be 1-32 letters, digits, '-' or '_'"
        )
    return patient_id


def dlt_window(first_dose: date, protocol: Protocol) -> tuple[date, date]:
    """The DLT evaluation window: from the first course 1 dose, `dlt_window_days` long."""
    return first_dose, first_dose + timedelta(days=protocol.dlt_window_days - 1)


# A patient's course 1 outcome, as the current facts give it.
EVALUABLE = "evaluable"
WAITING = "waiting"
REPLACED = "replaced"


@dataclass(frozen=True)
class DltOutcome:
    """Derived each time state is read, never stored: whether the patient is DLT-evaluable
    (a counting DLT, or course 1 completed with its window over), still awaited, or replaced
    (course 1 not evaluable, or off study / withdrawn before being evaluable)."""

    state: str  # evaluable | waiting | replaced
    dlt: bool = False
    reason: str = ""
    records: tuple[int, ...] = ()  # versions of the patient's facts it rests on


class FactEvent(Aggregate.Event):
    """An event whose payload is one declared fact; applying it keeps the fact's values on
    the record under the version that recorded it. Subclasses add what else changes."""

    FACT: ClassVar[type[Fact]]

    def payload(self) -> dict[str, Any]:
        return {column.name: getattr(self, column.name) for column in self.FACT.columns()}

    def apply(self, aggregate: Any) -> None:
        if self.FACT.ON_RECORD:
            # Only the kept fields, read straight off the event: applied for every entry
            # of a replay, the whole payload built first cost more than the rest of it.
            aggregate.facts[self.originator_version] = {
                "kind": self.FACT.KIND,
                "values": {name: getattr(self, name) for name in self.FACT.kept()},
            }


class Patient(Aggregate):
    TOPIC = "trialctl.Patient"

    class Created(Aggregate.Created):
        TOPIC = "trialctl.Patient.Created"  # a base the library requires; never emitted

    class ConsentSigned(Created):
        TOPIC = "trialctl.Patient.ConsentSigned"
        __annotations__ = Consent.event_fields()

    @event(ConsentSigned)
    def __init__(
        self,
        trial_id: str,
        patient_id: str,
        consent_version: str,
        signed_on: str,
        timestamp: datetime,
    ) -> None:
        self.trial_id = trial_id
        self.patient_id = patient_id
        self.status = "consented"
        consent = Consent(consent_version=consent_version, signed_on=signed_on)
        self.facts: dict[int, dict[str, Any]] = {
            1: {"kind": Consent.KIND, "values": consent.payload()}
        }
        self.corrections: list[dict[str, Any]] = []
        self.reviews: list[dict[str, Any]] = []  # source data verification (domain/review.py)
        self.queries: dict[str, dict[str, Any]] = {}  # data queries (domain/queries.py)
        # Co-signatures of DLT adjudications, by the adjudication's record version: the
        # co-signature's own version, and the adjudication entry's position and hash.
        self.adjudication_co_signatures: dict[int, dict[str, Any]] = {}
        self.eligibility: dict[str, Any] | None = None
        self.level: int | None = None
        self.cohort_number: int | None = None
        self.died_on: str | None = None

    @staticmethod
    def create_id(trial_id: str, patient_id: str) -> UUID:
        return patient_aggregate_id(UUID(trial_id), patient_id)

    @classmethod
    def consent(
        cls, trial_id: UUID, patient_id: str, consent: Consent, now: datetime,
        protocol: Protocol | None = None,
    ) -> Patient:
        check_patient_id(patient_id)
        if not consent.consent_version.strip():
            raise TrialRuleError("consent-version", "the informed-consent version is required")
        not_in_future(parse_day(consent.signed_on, "consent date"), now.date(), "consent date")
        if protocol is not None and protocol.consent is not None:
            protocol.consent.check_signed(
                consent.consent_version.strip(), parse_day(consent.signed_on, "consent date")
            )
        return cls(
            trial_id=str(trial_id),
            patient_id=patient_id,
            consent_version=consent.consent_version.strip(),
            signed_on=consent.signed_on,
            timestamp=now,
        )

    # -- reading -------------------------------------------------------------------------

    def kept(self, fact: type[Fact]) -> list[dict[str, Any]]:
        """Every fact of one kind on the record, corrections applied, with its version."""
        facts = self.facts
        return [{"version": v, **facts[v]["values"]} for v in self._versions_of(fact.KIND)]

    def _versions_of(self, kind: str) -> list[int]:
        """The versions holding facts of one kind, in order. A line's checks read several
        kinds and the record only grows, so an index by kind is kept and extended with the
        facts added since it was built, instead of sorting the whole record per lookup.
        Facts are only ever added (a correction changes values, never a kind or version);
        a copy with its own facts dict (`_without`) gets its own index."""
        facts = self.facts
        index = self.__dict__.get("_kind_index")
        if index is None or index[0] is not facts or index[1] > len(facts):
            index = (facts, 0, {})
        by_kind: dict[str, list[int]] = index[2]
        if index[1] < len(facts):
            for version in list(facts)[index[1]:]:
                bisect.insort(by_kind.setdefault(facts[version]["kind"], []), version)
            index = (facts, len(facts), by_kind)
            self.__dict__["_kind_index"] = index
        return by_kind.get(kind, [])

    @property
    def screening_values(self) -> dict[str, Any]:
        screenings = self.kept(Screening)
        return dict(screenings[-1]["values"]) if screenings else {}

    @property
    def screened_on(self) -> str | None:
        screenings = self.kept(Screening)
        return str(screenings[-1]["screened_on"]) if screenings else None

    def doses(self) -> list[dict[str, Any]]:
        return self.kept(Dose)

    def dose_changes(self) -> list[dict[str, Any]]:
        return self.kept(DoseChange)

    def adverse_events(self) -> list[dict[str, Any]]:
        return self.kept(AdverseEvent)

    def adverse_event(self, ae_id: str) -> dict[str, Any]:
        for ae in self.adverse_events():
            if ae["ae_id"] == ae_id:
                return ae
        raise TrialRuleError(
            "known-adverse-event", f"patient {self.patient_id} has no adverse event {ae_id!r}"
        )

    def dlts(self) -> list[dict[str, Any]]:
        return self.kept(DltAdjudication)

    def reported_adverse_events(self, protocol: Protocol) -> list[dict[str, Any]]:
        """Each adverse event with its expedited-report date derived from its current
        serious criteria and site-aware date (a correction of either moves it)."""
        return [
            {**ae, "report_due": AdverseEvent.report_due(ae, protocol)}
            for ae in self.adverse_events()
        ]

    def sae_reports(self, protocol: Protocol) -> list[dict[str, Any]]:
        """Each serious event's expedited report: when it is due and when it was sent."""
        return [
            {"ae_id": ae["ae_id"], "serious": ae["serious"], "site_aware_on": ae["site_aware_on"],
             "report_due": ae["report_due"], "reported_on": ae.get("reported_on")}
            for ae in self.reported_adverse_events(protocol)
            if ae["report_due"] is not None
        ]

    def responses(self) -> list[dict[str, Any]]:
        """Each assessment with its response computed from the current measurements (a
        corrected baseline or lesion changes every later category)."""
        return assessed_series(self.kept(Response))

    def scheduled_responses(self, protocol: Protocol) -> list[dict[str, Any]]:
        """The responses placed on the protocol's schedule from their current dates: the
        re-assessment each stands for, whether it was off schedule, and the next one due."""
        schedule = protocol.response
        series = self.responses()
        if not series:
            return []
        baseline = parse_day(series[0]["assessed_on"], "baseline assessment")
        placed = []
        for index, response in enumerate(series):
            if index == 0:
                week, off, due = None, False, schedule.due(baseline, 1)
            else:
                number, off = schedule.place(
                    baseline, parse_day(response["assessed_on"], "assessment date"))
                week = number * schedule.assessment_interval_weeks
                due = schedule.due(baseline, number + 1)
            placed.append({**response, "scheduled_week": week, "off_schedule": off,
                           "next_due": str(due)})
        return placed

    def observations(self) -> list[dict[str, Any]]:
        return self.kept(Observation)

    @property
    def consent_version(self) -> str:
        """The version of the latest signature: the form the patient consents under now."""
        return str(self.kept(Consent)[-1]["consent_version"])

    @property
    def consent_date(self) -> str:
        return str(self.kept(Consent)[0]["signed_on"])

    @property
    def enrolled_on(self) -> str | None:
        enrolments = self.kept(Enrolment)
        return str(enrolments[0]["enrolled_on"]) if enrolments else None

    @property
    def withdrawn_on(self) -> str | None:
        withdrawals = self.kept(Withdrawal)
        return str(withdrawals[0]["withdrawn_on"]) if withdrawals else None

    @property
    def left(self) -> str | None:
        """Why the patient left the study (the first of withdrawal and off study)."""
        for _, fact in sorted(self.facts.items()):
            values = fact["values"]
            if fact["kind"] == Withdrawal.KIND:
                return f"consent withdrawn: {values['reason']}"
            if fact["kind"] == TreatmentWithdrawal.KIND:
                return f"withdrawn from treatment: {values['reason']}"
            if fact["kind"] == OffStudy.KIND:
                return f"off study: {values['reason']}"
        return None

    @property
    def completed_courses(self) -> list[int]:
        return [c["course"] for c in self.kept(CourseCompletion)]

    def dlt_window(self, protocol: Protocol) -> tuple[date, date] | None:
        """The DLT window from the current course 1 first dose; None before any."""
        first = self.first_dose_day(1)
        return None if first is None else dlt_window(first, protocol)

    def _derived(self, protocol: Protocol) -> dict[str, Any]:
        """This version's derived reads under `protocol`. One `status` or read-model
        render asks a patient's outcome and judged DLTs many times (each cohort count, each
        decision review, the summary); they change only with an entry (a new version), a
        copy's own facts (`_without`) or another protocol, so they are kept per all three."""
        kept = self.__dict__.get("_derived_reads")
        if kept is None or kept[0] != self.version or kept[1] is not self.facts \
                or kept[2] is not protocol:
            kept = (self.version, self.facts, protocol, {})
            self.__dict__["_derived_reads"] = kept
        derived: dict[str, Any] = kept[3]
        return derived

    def judged_dlts(self, protocol: Protocol) -> list[dict[str, Any]]:
        """Each adjudication as it stands, with what is derived from the current facts:
        `unmet` (the rule's conditions the AE fails now), `overridden` and `counts`."""
        derived = self._derived(protocol)
        judged = derived.get("judged_dlts")
        if judged is None:
            judged = derived["judged_dlts"] = self._judge_dlts(protocol)
        return [{**d, "unmet": list(d["unmet"]),
                 "co_signature": None if d["co_signature"] is None else dict(d["co_signature"])}
                for d in judged]

    def _judge_dlts(self, protocol: Protocol) -> list[dict[str, Any]]:
        window = self.dlt_window(protocol)
        terms = terms_for(protocol.dlt.ctcae_version)
        labs = self.labs()
        changes = self.dose_changes()
        judged = []
        for adjudication in self.dlts():
            ae = self.adverse_event(adjudication["ae_id"])
            unmet: list[str] = []
            if adjudication["is_dlt"] and adjudication["rule_code"] is not None:
                context = DltContext(
                    window, parse_day(adjudication["decided_on"], "adjudication date"), terms,
                    labs, changes,
                )
                rule = protocol.dlt.rule(adjudication["rule_code"])
                unmet = unmet_conditions(rule, ae, context)
            overridden = adjudication["override_reason"] is not None
            co_signature = self.adjudication_co_signature(adjudication, protocol)
            pending = co_signature is not None and co_signature["state"] == "pending"
            judged.append({
                **adjudication,
                "term": ae["term"],
                "coded": ae["coded"],
                "window": None if window is None else f"{window[0]}..{window[1]}",
                "unmet": unmet,
                "overridden": overridden,
                "co_signature": co_signature,
                # A pending adjudication is no final judgement: it counts neither way.
                "counts": not pending and bool(adjudication["is_dlt"])
                and (overridden or not unmet),
            })
        return judged

    # -- co-signatures of DLT adjudications (domain/co_signatures.py) ----------------------

    @staticmethod
    def adjudication_type(adjudication: dict[str, Any]) -> str:
        """The stored event type an adjudication stands as now (an override or not)."""
        return DLT_ADJUDICATED if adjudication["override_reason"] is None else DLT_RULE_OVERRIDDEN

    def adjudication_co_signature(
        self, adjudication: dict[str, Any], protocol: Protocol
    ) -> dict[str, Any] | None:
        """None if the protocol asks no co-signature of this adjudication; else its role and
        state: `co-signed` (citing the adjudication's entry), or `pending` (none yet, or a
        correction of the adjudication came after it)."""
        role = protocol.co_signer_role(self.adjudication_type(adjudication))
        if role is None:
            return None
        version = int(adjudication["version"])
        given = self.adjudication_co_signatures.get(version)
        later = [] if given is None else [
            c["version"] for c in self.corrections
            if c["target_version"] == version and c["version"] > given["version"]
        ]
        out: dict[str, Any] = {"role": role, "state": "pending" if given is None or later
                               else "co-signed"}
        if given is not None:
            out["position"] = given["position"]
        if later:
            out["corrected_by_version"] = later[0]
        what = f"{self.patient_id}'s adjudication of {adjudication['ae_id']}"
        out["text"] = (f"{what} awaits co-signature by the {role}" if out["state"] == "pending"
                       else f"{what} is co-signed (#{given['position']})"  # type: ignore[index]
                       )
        return out

    def awaiting_co_signature(self, protocol: Protocol) -> list[dict[str, Any]]:
        """The adjudications whose protocol-required co-signature is pending."""
        return [
            {"patient_id": self.patient_id, "ae_id": d["ae_id"], "record_version": d["version"],
             "event_type": self.adjudication_type(d), "role": d["co_signature"]["role"],
             "text": d["co_signature"]["text"]}
            for d in self.judged_dlts(protocol)
            if d["co_signature"] is not None and d["co_signature"]["state"] == "pending"
        ]

    def check_co_sign_adjudication(self, version: int, protocol: Protocol) -> str:
        """The role a co-signature of the adjudication at record `version` needs, or a
        refusal: no such adjudication, one needing none, or one co-signed and standing."""
        adjudication = next((d for d in self.dlts() if d["version"] == version), None)
        if adjudication is None:
            raise TrialRuleError(
                "co-signable", f"record version {version} of {self.patient_id} is no DLT "
                "adjudication")
        co_signature = self.adjudication_co_signature(adjudication, protocol)
        if co_signature is None:
            kind = self.adjudication_type(adjudication).rpartition(".")[2]
            raise TrialRuleError("co-signature-required",
                                 f"a {kind} needs no co-signature under this protocol")
        if co_signature["state"] != "pending":
            raise TrialRuleError("co-sign-once", co_signature["text"])
        return str(co_signature["role"])

    class AdjudicationCoSigned(Aggregate.Event):
        """A second signature on a DLT adjudication, citing the adjudication's entry."""

        TOPIC = "trialctl.Patient.AdjudicationCoSigned"
        record_version: int
        position: int
        entry_hash: str

        def apply(self, aggregate: Any) -> None:
            aggregate.adjudication_co_signatures[self.record_version] = {
                "version": self.originator_version, "position": self.position,
                "entry_hash": self.entry_hash,
            }

    def co_sign_adjudication(self, version: int, position: int, entry_hash: str,
                             protocol: Protocol, now: datetime) -> str:
        """Record the co-signature; returns the role it needs (the signer's to hold)."""
        role = self.check_co_sign_adjudication(version, protocol)
        self.trigger_event(self.AdjudicationCoSigned, timestamp=now, record_version=version,
                           position=position, entry_hash=entry_hash)
        return role

    def outcome(self, protocol: Protocol) -> DltOutcome:
        """The course 1 outcome the cohort counts, from the current facts."""
        derived = self._derived(protocol)
        outcome = derived.get("outcome")
        if outcome is None:
            outcome = derived["outcome"] = self._course1_outcome(protocol)
        assert isinstance(outcome, DltOutcome)
        return outcome

    def _course1_outcome(self, protocol: Protocol) -> DltOutcome:
        judged = self.judged_dlts(protocol)
        pending = [d for d in judged
                   if d["co_signature"] is not None and d["co_signature"]["state"] == "pending"]
        if pending:
            # Until its second signer confirms it, an adjudication settles nothing.
            return DltOutcome(WAITING, reason=pending[0]["co_signature"]["text"],
                              records=tuple(d["version"] for d in pending))
        counting = tuple(d["version"] for d in judged if d["counts"])
        if counting:
            return DltOutcome(EVALUABLE, dlt=True, records=counting)
        others = tuple(d["version"] for d in judged)
        course = next((c for c in self.kept(CourseCompletion) if c["course"] == 1), None)
        if course is not None:
            if course["not_evaluable_reason"] is not None:
                reason = f"course 1 not evaluable: {course['not_evaluable_reason']}"
                return DltOutcome(REPLACED, reason=reason, records=(course["version"],))
            window = self.dlt_window(protocol)
            if window is not None and parse_day(course["completed_on"], "completion") >= window[1]:
                # Judged only now, with course 1 over: until then doses may still come.
                short = below_course1_minimum(self, protocol)
                if short is not None:
                    reason = f"received {short.percent} of planned course-1 dose"
                    return DltOutcome(REPLACED, reason=reason,
                                      records=(course["version"], *others, *short.records))
                return DltOutcome(EVALUABLE, records=(course["version"], *others))
        if self.left is not None:
            return DltOutcome(REPLACED, reason=self.left, records=others)
        return DltOutcome(WAITING, records=others)

    def course1_dose(self, protocol: Protocol) -> dict[str, Any] | None:
        """Course 1 of the escalated agent, received against planned, as shown."""
        dosing = course1_dosing(self, protocol)
        if dosing is None:
            return None
        rules = protocol.dose_modification
        minimum = None if rules is None else rules.min_course1_dose_fraction
        return {
            "received": str(dosing.received),
            "planned": str(dosing.planned),
            "unit": protocol.escalated_agent.unit,
            "percent": dosing.percent,
            "minimum": None if minimum is None else str(minimum),
            "days_recorded": dosing.recorded_days,
            "days_missed": dosing.missed_days,
        }

    def first_dose_day(self, course: int = 1) -> date | None:
        # Every DLT window, dose fraction and schedule read asks this; kept per version and
        # facts dict, as `labs` is.
        kept = self.__dict__.get("_first_dose_days")
        if kept is None or kept[0] != self.version or kept[1] is not self.facts:
            first_days: dict[int, date] = {}
            for dose in self.doses():
                day = parse_moment(dose["given_at"], "given_at").date()
                if dose["course"] not in first_days or day < first_days[dose["course"]]:
                    first_days[dose["course"]] = day
            kept = (self.version, self.facts, first_days)
            self.__dict__["_first_dose_days"] = kept
        return kept[2].get(course)

    @property
    def is_enrolled(self) -> bool:
        return self.level is not None

    def summary(self, protocol: Protocol) -> dict[str, Any]:
        outcome = self.outcome(protocol)
        judged = self.judged_dlts(protocol)
        return {
            "patient_id": self.patient_id,
            "status": self.status,
            "died_on": self.died_on,
            "consent_version": self.consent_version,
            "consent_date": self.consent_date,
            **consent_history(self.kept(Consent), protocol.consent, taking_part=self.status
                              not in ("died", "off-study", "consent-withdrawn")),
            "eligible": None if self.eligibility is None else self.eligibility["eligible"],
            "not_assessed": [] if self.eligibility is None
            else list(self.eligibility.get("not_assessed", [])),
            "eligibility_deviation": self.eligibility_deviation(),
            "level": self.level,
            "cohort": self.cohort_number,
            "enrolled_on": self.enrolled_on,
            "doses": len(self.doses()),
            "dose_changes": len(self.dose_changes()),
            "adverse_events": len(self.adverse_events()),
            "dlts": sum(1 for d in judged if d["counts"]),
            "evaluable": {EVALUABLE: True, REPLACED: False}.get(outcome.state),
            "outcome": outcome.state,
            "replaced_because": outcome.reason or None,
            "course1_dose": self.course1_dose(protocol),
            # A DLT adjudicated as such that does not count now, and why (one awaiting its
            # co-signature is listed under awaiting_co_signature only).
            "dlt_notes": [dlt_note(d) for d in judged if not_counted(d)],
            "awaiting_co_signature": self.awaiting_co_signature(protocol),
            "uncoded_aes": [ae["ae_id"] for ae in self.adverse_events() if not ae["coded"]],
            "serious_adverse_events": sum(1 for ae in self.adverse_events() if ae["serious"]),
            "sae_reports": self.sae_reports(protocol),
            "courses_completed": list(self.completed_courses),
            "responses": [r["category"] for r in self.responses()],
            "assessments": self.assessment_schedule(protocol),
            "next_assessment_due": self.next_assessment_due(protocol),
            "corrections": len(self.corrections),
            "review": self.review_counts(),
            "open_queries": [q for q, v in self.queries.items() if query_rules.is_open(v)],
            "deviations": self.deviations(protocol),
            "end_of_study": self.end_of_study(),
        }

    def eligibility_deviation(self) -> dict[str, Any] | None:
        """Enrolled, then found ineligible by a corrected screening value: a protocol
        deviation to show wherever the patient is, naming the criteria and the correction."""
        if not self.is_enrolled or self.eligibility is None or self.eligibility["eligible"]:
            return None
        failed = list(self.eligibility["failed"])
        correction = [c for c in self.corrections if c["kind"] == Screening.KIND][-1]
        old, new = correction["old_values"]["values"], correction["new_values"]["values"]
        changed = {k: v for k, v in new.items() if old.get(k) != v}
        values = ", ".join(f"{k} = {v}" for k, v in sorted(changed.items()))
        return {
            "failed": failed,
            "corrected": changed,
            "corrected_version": correction["version"],
            "text": f"{self.patient_id} enrolled but no longer eligible: "
            f"{_reasons(self.eligibility, ' ')} "
            f"(corrected {values}, record version {correction['version']})",
        }

    def assessment_schedule(self, protocol: Protocol) -> list[dict[str, Any]]:
        """Each response assessment with its place on the protocol's schedule."""
        return [
            {
                "version": r["version"],
                "assessed_on": r["assessed_on"],
                "category": r["category"],
                "recist_version": r["recist_version"],
                "scheduled_week": r["scheduled_week"],
                "off_schedule": r["off_schedule"],
            }
            for r in self.scheduled_responses(protocol)
        ]

    def next_assessment_due(self, protocol: Protocol) -> str | None:
        """When the next re-assessment is due; none once the patient has left the study."""
        responses = self.scheduled_responses(protocol)
        if not responses or self.status in ("off-study", "consent-withdrawn"):
            return None
        due = responses[-1]["next_due"]
        return None if due is None else str(due)

    def state(self, protocol: Protocol) -> dict[str, Any]:
        """Everything the patient's record says now, corrections applied."""
        listed = {fact.LISTED_AS: self.kept(fact) for fact in FACTS if fact.LISTED_AS}
        listed[DltAdjudication.LISTED_AS] = self.judged_dlts(protocol)
        # Derived from the current facts each time, never the values stored at recording.
        listed[Lab.LISTED_AS] = self.labs()
        listed[AdverseEvent.LISTED_AS] = self.reported_adverse_events(protocol)
        listed[Response.LISTED_AS] = self.scheduled_responses(protocol)
        # Each assessment record with its visit: the one it states ("recorded"), else the
        # scheduled occurrence its date assigns it ("derived"), else none.
        visit_of = placed_visits(self, protocol)
        for kind in (Response, Observation, Lab):
            listed[kind.LISTED_AS] = [
                {**r, "recorded_visit": r.get("visit"),
                 "visit": visit_of.get(int(r["version"]), (None, None))[0],
                 "visit_source": visit_of.get(int(r["version"]), (None, None))[1]}
                for r in listed[kind.LISTED_AS]]
        return {
            **self.summary(protocol),
            "eligibility": self.eligibility,
            "screening": self.screening_values,
            **listed,
            "corrections": list(self.corrections),
            "withdrawn_on": self.withdrawn_on,
        }

    # -- guards --------------------------------------------------------------------------

    def may_record(self, kind: str, day: date, now: datetime, what: str) -> None:
        if self.withdrawn_on is not None and kind not in ALLOWED_AFTER_WITHDRAWAL and not (
            kind in COLLECTED_BEFORE_WITHDRAWAL
            and day <= parse_day(self.withdrawn_on, "withdrawal date")
        ):
            raise TrialRuleError(
                "after-withdrawal",
                f"consent of {self.patient_id} was withdrawn on {self.withdrawn_on}: only "
                "safety follow-up (adverse events, DLT adjudication, corrections, death), "
                "going off study and assessments made by that day may be recorded",
            )
        off_treatment = self.off_treatment_on
        if off_treatment is not None and kind in TREATMENT_KINDS:
            raise TrialRuleError(
                "off-treatment",
                f"{self.patient_id} was withdrawn from treatment on {off_treatment}: no "
                f"{kind} may be recorded (follow-up continues)",
            )
        not_in_future(day, now.date(), what)
        not_before(day, parse_day(self.consent_date, "consent date"), what, "consent")

    def _require_enrolled(self) -> None:
        if not self.is_enrolled:
            raise TrialRuleError("enrolled-first", f"patient {self.patient_id} is not enrolled")

    # -- screening and eligibility -------------------------------------------------------

    class ScreeningRecorded(FactEvent):
        TOPIC = "trialctl.Patient.ScreeningRecorded"
        FACT = Screening
        __annotations__ = Screening.event_fields()

        def apply(self, aggregate: Any) -> None:
            super().apply(aggregate)
            eligibility = self.payload()["eligibility"]
            aggregate.eligibility = eligibility
            aggregate.status = screening_status(eligibility)

    def screen(self, screening: Screening, protocol: Protocol, now: datetime) -> dict[str, Any]:
        """Record screening values; eligibility is evaluated from them, never typed in."""
        day = parse_day(screening.screened_on, "screening date")
        self.may_record(Screening.KIND, day, now, "screening date")
        if self.is_enrolled:
            raise TrialRuleError(
                "screen-before-enrollment", f"patient {self.patient_id} is already enrolled"
            )
        checked = screening.check(self, protocol, now)
        eligibility = _evaluate(protocol, checked.values, day)
        self._record(self.ScreeningRecorded, checked, now, eligibility=eligibility)
        return eligibility

    # -- enrollment ----------------------------------------------------------------------

    class Enrolled(FactEvent):
        TOPIC = "trialctl.Patient.Enrolled"
        FACT = Enrolment
        __annotations__ = Enrolment.event_fields()

        def apply(self, aggregate: Any) -> None:
            super().apply(aggregate)
            values = self.payload()
            aggregate.level = values["level"]
            aggregate.cohort_number = values["cohort_number"]
            aggregate.status = "on-study"

    def check_can_enroll(self, enrolment: Enrolment, now: datetime) -> None:
        day = parse_day(enrolment.enrolled_on, "enrollment date")
        self.may_record(Enrolment.KIND, day, now, "enrollment date")
        if self.is_enrolled:
            raise TrialRuleError("enroll-once", f"patient {self.patient_id} is already enrolled")
        if self.eligibility is None or self.screened_on is None:
            raise TrialRuleError("screen-first", f"patient {self.patient_id} has not been screened")
        if not self.eligibility["eligible"]:
            why = verdict(self.eligibility).removeprefix("NOT eligible ")
            raise TrialRuleError(
                "eligible-only",
                f"patient {self.patient_id} is not eligible"
                + (f" {why}" if why.startswith("(") else f": {why}"),
            )
        not_before(
            day, parse_day(self.screened_on, "screening date"), "enrollment date", "screening"
        )

    def enroll(self, enrolment: Enrolment, level: int, cohort_number: int, now: datetime) -> None:
        self.check_can_enroll(enrolment, now)
        self._record(self.Enrolled, enrolment, now, level=level, cohort_number=cohort_number)

    # -- dosing --------------------------------------------------------------------------

    class DoseGiven(FactEvent):
        TOPIC = "trialctl.Patient.DoseGiven"
        FACT = Dose
        __annotations__ = Dose.event_fields()

    def give_dose(self, dose: Dose, protocol: Protocol, now: datetime) -> None:
        self._require_enrolled()
        self._record(self.DoseGiven, dose.check(self, protocol, now), now)

    class DoseChanged(FactEvent):
        TOPIC = "trialctl.Patient.DoseChanged"
        FACT = DoseChange
        __annotations__ = DoseChange.event_fields()

    def change_dose(self, change: DoseChange, protocol: Protocol, now: datetime) -> None:
        """Reduce, hold, skip, resume or discontinue, as the protocol allows; later doses
        are checked against the treatment the changes leave in force."""
        self._require_enrolled()
        self._record(self.DoseChanged, change.check(self, protocol, now), now)

    # -- adverse events and DLTs ---------------------------------------------------------

    class AdverseEventReported(FactEvent):
        TOPIC = "trialctl.Patient.AdverseEventReported"
        FACT = AdverseEvent
        __annotations__ = AdverseEvent.event_fields()
        class_version = 3

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            # Version 1 had no serious criteria: every event it holds was not serious.
            state.update(serious=None, site_aware_on=None, report_due=None)

        @staticmethod
        def upcast_v2_v3(state: dict[str, Any]) -> None:
            # Before report dates were kept: no expedited report is on the record.
            state["reported_on"] = None

        def apply(self, aggregate: Any) -> None:
            super().apply(aggregate)
            values = self.payload()
            # A death ends treatment: `serious` holds "death" exactly when the grade is 5.
            if "death" in (values["serious"] or ()):
                aggregate.died_on = values["onset"]
                aggregate.status = "died"

    def report_adverse_event(
        self, adverse_event: AdverseEvent, protocol: Protocol, now: datetime
    ) -> None:
        # Read in place: copying every adverse event of a long record for one id cost
        # each new event more the longer the record grew.
        facts = self.facts
        if any(facts[v]["values"]["ae_id"] == adverse_event.ae_id
               for v in self._versions_of(AdverseEvent.KIND)):
            raise TrialRuleError(
                "unique-adverse-event",
                f"adverse event {adverse_event.ae_id!r} is already recorded; correct it instead",
            )
        checked = adverse_event.check(self, protocol, now)
        # Stored as recorded; state derives it again from the current facts.
        report_due = AdverseEvent.report_due(checked.payload(), protocol)
        self._record(self.AdverseEventReported, checked, now, report_due=report_due)

    class DltAdjudicated(FactEvent):
        TOPIC = "trialctl.Patient.DltAdjudicated"
        FACT = DltAdjudication
        __annotations__ = DltAdjudication.event_fields()

    class DltRuleOverridden(FactEvent):
        """A DLT declared although its AE fails the rule: principal-investigator only."""

        TOPIC = "trialctl.Patient.DltRuleOverridden"
        FACT = DltOverride
        __annotations__ = DltOverride.event_fields()

    def adjudicate_dlt(
        self, adjudication: DltAdjudication, protocol: Protocol, now: datetime
    ) -> bool:
        """Adjudicate an adverse event; returns whether it counts toward cohort decisions
        now (derived again whenever state is read, so a later correction may change it)."""
        self._require_enrolled()
        ae_id = adjudication.ae_id
        self.adverse_event(ae_id)
        if any(d["ae_id"] == ae_id for d in self.dlts()):
            raise TrialRuleError(
                "adjudicate-once",
                f"adverse event {ae_id} is already adjudicated; correct it instead",
            )
        checked = adjudication.check(self, protocol, now)
        event_class: type[FactEvent] = self.DltAdjudicated
        if checked.override_reason is not None:
            ae = self.adverse_event(ae_id)
            assert checked.rule_code is not None  # checked: an override is of a DLT
            context = DltContext(
                self.dlt_window(protocol),
                parse_day(checked.decided_on, "adjudication date"),
                terms_for(protocol.dlt.ctcae_version),
                self.labs(),
                self.dose_changes(),
            )
            if not unmet_conditions(protocol.dlt.rule(checked.rule_code), ae, context):
                raise TrialRuleError(
                    "dlt-override",
                    f"adverse event {ae_id} meets rule {checked.rule_code}: "
                    "record it without --override-reason",
                )
            event_class = self.DltRuleOverridden
        self._record(event_class, checked, now)
        return any(d["counts"] for d in self.judged_dlts(protocol) if d["ae_id"] == ae_id)

    # -- courses -------------------------------------------------------------------------

    class CourseCompleted(FactEvent):
        TOPIC = "trialctl.Patient.CourseCompleted"
        FACT = CourseCompletion
        __annotations__ = CourseCompletion.event_fields()

    def complete_course(
        self, completion: CourseCompletion, protocol: Protocol, now: datetime
    ) -> None:
        """That the course was completed; whether course 1 makes the patient DLT-evaluable
        is derived (`outcome`)."""
        self._require_enrolled()
        course = completion.course
        if course != len(self.completed_courses) + 1:
            raise TrialRuleError(
                "course-order",
                f"course {course} is not the next course "
                f"(completed: {self.completed_courses or 'none'})",
            )
        if self.first_dose_day(course) is None:
            raise TrialRuleError("dose-first", f"no dose was given in course {course}")
        self._record(self.CourseCompleted, completion.check(self, protocol, now), now)

    # -- response ------------------------------------------------------------------------

    class ResponseAssessed(FactEvent):
        TOPIC = "trialctl.Patient.ResponseAssessed"
        FACT = Response
        __annotations__ = Response.event_fields()
        class_version = 3

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            # Before RECIST versions and schedules: computed by 1.1, with no schedule kept.
            state["recist_version"] = "1.1"
            state["scheduled_week"] = None
            state["off_schedule"] = False
            state["next_due"] = None

        @staticmethod
        def upcast_v2_v3(state: dict[str, Any]) -> None:
            # Before recorded visits: the visit is placed by the assessment's date.
            state["visit"] = None

    def assess_response(
        self, assessment: Response, protocol: Protocol, now: datetime
    ) -> str | None:
        """Record target-lesion measurements; CR/PR/SD/PD is computed by the protocol's
        RECIST version, and the visit is placed on the protocol's assessment schedule."""
        schedule = protocol.response
        rules = schedule.rules
        lesions = list(assessment.lesions)
        day = parse_day(assessment.assessed_on, "assessment date")
        self.may_record(Response.KIND, day, now, "assessment date")
        assessment = assessment.check(self, protocol, now)
        previous = self.responses()
        sum_mm = str(sum_of_diameters(lesions, rules))
        if assessment.baseline:
            if previous:
                raise TrialRuleError("baseline-once", "a baseline assessment is already recorded")
            try:
                validate_baseline(lesions, rules)
            except ValueError as e:
                raise TrialRuleError("recist-baseline", str(e)) from e
            # A baseline carries no progression findings: they are read against it later.
            baseline = replace(assessment, new_lesions=False, non_target_progression=False)
            self._record(
                self.ResponseAssessed, baseline, now, category=None,
                recist_version=rules.version, sum_mm=sum_mm, scheduled_week=None,
                off_schedule=False, next_due=str(schedule.due(day, 1)), details=None,
            )
            return None
        self._require_enrolled()
        if not previous:
            raise TrialRuleError("baseline-first", "record the baseline assessment first")
        not_before(
            day,
            parse_day(previous[-1]["assessed_on"], "assessment"),
            "assessment date",
            "the previous assessment",
        )
        base = [lesion_from_record(x) for x in previous[0]["lesions"]]
        nadir = min(Decimal(r["sum_mm"]) for r in previous)
        try:
            response = assess_response(
                base,
                lesions,
                nadir_sum_mm=nadir,
                new_lesions=assessment.new_lesions,
                non_target_progression=assessment.non_target_progression,
                rules=rules,
            )
        except ValueError as e:
            raise TrialRuleError("recist", str(e)) from e
        baseline_day = parse_day(previous[0]["assessed_on"], "baseline assessment")
        number, off_schedule = schedule.place(baseline_day, day)
        category = str(response.category)
        details = dict(response.to_dict())
        self._record(
            self.ResponseAssessed, assessment, now, category=category,
            recist_version=rules.version, sum_mm=sum_mm,
            scheduled_week=number * schedule.assessment_interval_weeks,
            off_schedule=off_schedule, next_due=str(schedule.due(baseline_day, number + 1)),
            details=details,
        )
        return category

    # -- secondary observations ----------------------------------------------------------

    class ObservationRecorded(FactEvent):
        TOPIC = "trialctl.Patient.ObservationRecorded"
        FACT = Observation
        __annotations__ = Observation.event_fields()
        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            # Before recorded visits: the visit is placed by the observation's date.
            state["visit"] = None

    def observe(self, observation: Observation, protocol: Protocol, now: datetime) -> None:
        self._record(self.ObservationRecorded, observation.check(self, protocol, now), now)

    # -- re-consent ----------------------------------------------------------------------

    class Reconsented(FactEvent):
        TOPIC = "trialctl.Patient.Reconsented"
        FACT = Reconsent
        __annotations__ = Reconsent.event_fields()

    def reconsent(self, reconsent: Reconsent, protocol: Protocol, now: datetime) -> None:
        """A signature to an amended form: a current version the protocol lists, never one
        the patient already signed, and not before their latest signature."""
        checked = reconsent.check(self, protocol, now)
        signed = parse_day(checked.signed_on, "consent date")
        self.may_record(Consent.KIND, signed, now, "consent date")
        history = self.kept(Consent)
        if any(c["consent_version"] == checked.consent_version for c in history):
            raise TrialRuleError(
                "consent-version-once",
                f"patient {self.patient_id} already signed consent version "
                f"{checked.consent_version}",
            )
        if protocol.consent is not None and checked.consent_version not in protocol.consent.current:
            raise TrialRuleError(
                "consent-current",
                f"consent version {checked.consent_version} is no longer current; re-consent "
                f"is to a current version ({', '.join(protocol.consent.current)})",
            )
        latest = history[-1]
        not_before(signed, parse_day(latest["signed_on"], "consent date"), "consent date",
                   f"the latest consent (version {latest['consent_version']})")
        self._record(self.Reconsented, checked, now)

    # -- leaving the study ---------------------------------------------------------------

    class ConsentWithdrawn(FactEvent):
        TOPIC = "trialctl.Patient.ConsentWithdrawn"
        FACT = Withdrawal
        __annotations__ = Withdrawal.event_fields()

        def apply(self, aggregate: Any) -> None:
            super().apply(aggregate)
            aggregate.status = "consent-withdrawn"

    def withdraw(self, withdrawal: Withdrawal, now: datetime) -> None:
        day = parse_day(withdrawal.withdrawn_on, "withdrawal date")
        self.may_record(Withdrawal.KIND, day, now, "withdrawal date")
        reason = withdrawal.reason.strip() or "not given"
        self._record(self.ConsentWithdrawn, replace(withdrawal, reason=reason), now)

    @property
    def off_treatment_on(self) -> str | None:
        withdrawals = self.kept(TreatmentWithdrawal)
        return str(withdrawals[0]["withdrawn_on"]) if withdrawals else None

    class WithdrewFromTreatment(FactEvent):
        TOPIC = "trialctl.Patient.WithdrewFromTreatment"
        FACT = TreatmentWithdrawal
        __annotations__ = TreatmentWithdrawal.event_fields()

        def apply(self, aggregate: Any) -> None:
            super().apply(aggregate)
            aggregate.status = "off-treatment"

    def withdraw_from_treatment(
        self, withdrawal: TreatmentWithdrawal, protocol: Protocol, now: datetime
    ) -> None:
        """Treatment stops; the patient stays in follow-up (status off-treatment)."""
        self._require_enrolled()
        if self.status != "on-study":
            raise TrialRuleError(
                "on-treatment", f"patient {self.patient_id} is {self.status}, not on treatment"
            )
        checked = withdrawal.check(self, protocol, now)
        day = parse_day(checked.withdrawn_on, "withdrawal date")
        self.may_record(TreatmentWithdrawal.KIND, day, now, "withdrawal date")
        self._record(self.WithdrewFromTreatment, checked, now)

    class WentOffStudy(FactEvent):
        TOPIC = "trialctl.Patient.WentOffStudy"
        FACT = OffStudy
        __annotations__ = OffStudy.event_fields()

        def apply(self, aggregate: Any) -> None:
            super().apply(aggregate)
            aggregate.status = "off-study"

    def go_off_study(self, off_study: OffStudy, protocol: Protocol, now: datetime) -> None:
        self._require_enrolled()
        if self.status == "off-study":
            raise TrialRuleError(
                "off-study-once", f"patient {self.patient_id} is already off study"
            )
        checked = off_study.check(self, protocol, now)  # the reason from the protocol's list
        day = parse_day(checked.off_on, "off-study date")
        self.may_record(OffStudy.KIND, day, now, "off-study date")
        self._record(self.WentOffStudy, checked, now)

    # -- follow-up after the end of study (domain/end_of_study.py) -----------------------

    class FollowUpRecorded(FactEvent):
        TOPIC = "trialctl.Patient.FollowUpRecorded"
        FACT = FollowUp
        __annotations__ = FollowUp.event_fields()

    def follow_ups(self) -> list[dict[str, Any]]:
        """The follow-up contacts, by contact date."""
        return sorted(self.kept(FollowUp), key=lambda c: (c["contacted_on"], c["version"]))

    def end_of_study(self) -> dict[str, Any] | None:
        """When and why the patient went off study, and their last follow-up contact."""
        off = self.kept(OffStudy)
        if not off:
            return None
        contacts = self.follow_ups()
        last = contacts[-1] if contacts else None
        return {"off_on": off[0]["off_on"], "reason": off[0]["reason"],
                "contacts": len(contacts),
                "last_contact": None if last is None else {
                    "contacted_on": last["contacted_on"], "status": last["status"]}}

    def record_follow_up(self, contact: FollowUp, protocol: Protocol, now: datetime) -> None:
        """A contact on or after the off-study day; none after one that found a death."""
        checked = contact.check(self, protocol, now)
        off = self.kept(OffStudy)
        if not off:
            raise TrialRuleError(
                "follow-up-after-off-study",
                f"{self.patient_id} is not off study: record off-study first (follow-up "
                "contacts come after the end of study)",
            )
        day = parse_day(checked.contacted_on, "contact date")
        self.may_record(FollowUp.KIND, day, now, "contact date")
        not_before(day, parse_day(off[0]["off_on"], "off-study date"), "contact date",
                   "the off-study date")
        dead = [c for c in self.follow_ups() if c["status"] == DIED]
        if dead:
            raise TrialRuleError(
                "follow-up-after-death",
                f"{self.patient_id} was found to have died ({dead[0]['contacted_on']}, "
                f"record version {dead[0]['version']}): no later contact; correct it instead",
            )
        self._record(self.FollowUpRecorded, checked, now)

    # -- corrections ---------------------------------------------------------------------

    class Corrected(FactEvent):
        TOPIC = "trialctl.Patient.Corrected"
        FACT = Correction
        __annotations__ = Correction.event_fields()
        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            # Before queries: no correction cited one.
            state["query"] = None

        def apply(self, aggregate: Any) -> None:
            values = self.payload()
            fact = aggregate.facts[values["target_version"]]
            target = fact["values"]
            # Only the fact's kept fields: what a correction derived is read again from them.
            kept = KEPT[fact["kind"]].kept()
            target.update({k: v for k, v in values["new_values"].items() if k in kept})
            aggregate.corrections.append({"version": self.originator_version, **values})
            if values["kind"] == Screening.KIND:
                target.pop("eligibility", None)
                aggregate.eligibility = values["new_values"]["eligibility"]
                if aggregate.status in _SCREENED:  # not yet enrolled: the verdict moves
                    aggregate.status = screening_status(aggregate.eligibility)

    def correct(self, correction: Correction, protocol: Protocol, now: datetime) -> dict[str, Any]:
        """Correct the fact recorded at `target_version`; returns the corrected values."""
        target_version, changes = correction.target_version, dict(correction.changes)
        if not correction.reason.strip():
            raise TrialRuleError("reason-for-change", "a correction needs a reason for change")
        fact = self.facts.get(target_version)
        if fact is None or fact["kind"] not in CORRECTABLE:
            correctable = [
                f"{v} ({f['kind']})"
                for v, f in sorted(self.facts.items())
                if f["kind"] in CORRECTABLE
            ]
            raise TrialRuleError(
                "correctable",
                f"version {target_version} of {self.patient_id} "
                f"is not a correctable record; correctable: {correctable}",
            )
        kind = fact["kind"]
        if kind == Screening.KIND and set(changes) != {"values"}:
            changes = {"values": changes}  # screening fields are corrected one by one
        allowed = CORRECTABLE[kind]
        unknown = set(changes) - allowed
        if not changes or unknown:
            raise TrialRuleError(
                "correctable",
                f"a {kind} correction may change "
                f"{sorted(allowed)}, not {sorted(unknown) or 'nothing'}",
            )
        old = {k: fact["values"][k] for k in changes}
        if kind == Screening.KIND and isinstance(changes["values"], dict):
            changes = {"values": {**fact["values"]["values"], **changes["values"]}}
        declared = KEPT[kind]
        corrected = declared.from_record({**fact["values"], **changes})
        if isinstance(corrected, Response) and "lesions" in changes:
            for lesion in corrected.lesions:  # new text, so the input limits apply
                try:
                    check_lesion_text(lesion.lesion_id, lesion.site)
                except ValueError as e:
                    raise TrialRuleError("lesion-text", str(e)) from e
        checked = corrected.check(self._without(target_version), protocol, now)
        stored = checked.payload()
        new_values = {k: stored[k] for k in changes}
        if kind == Response.KIND:
            self._check_corrected_series(target_version, stored)
        if isinstance(checked, Lab):
            # The grade follows the corrected values: computed again, never typed in.
            # Kept in the correction as recorded; state grades the current values again.
            regraded = checked.derive(self.screening_values)
            before = declared.from_record(fact["values"])
            assert isinstance(before, Lab)
            old.update(before.derive(self.screening_values))
            new_values.update(regraded)
        if kind == Screening.KIND:
            # Eligibility follows the corrected values: evaluated again, never typed in.
            screened_on = parse_day(fact["values"]["screened_on"], "screening date")
            old["eligibility"] = self.eligibility
            new_values["eligibility"] = _evaluate(protocol, new_values["values"], screened_on)
        if correction.query is not None:
            self.check_query_cited(correction.query, target_version)
        reason = correction.reason.strip()
        self._record(
            self.Corrected, replace(correction, reason=reason), now,
            kind=kind, old_values=old, new_values=new_values,
        )
        return new_values

    def _check_corrected_series(self, target_version: int, stored: dict[str, Any]) -> None:
        """A corrected assessment must leave a series RECIST can read: the baseline valid,
        every later one measurable against it."""
        series = [
            {**r, **stored} if r["version"] == target_version else r
            for r in self.kept(Response)
        ]
        try:
            if series and series[0]["baseline"]:
                validate_baseline([lesion_from_record(x) for x in series[0]["lesions"]],
                                  recist_rules(series[0]["recist_version"]))
            assessed_series(series)
        except ValueError as e:
            raise TrialRuleError("recist", str(e)) from e

    def _without(self, version: int) -> Patient:
        """The record with one fact set aside: a corrected fact is checked against the
        others (a corrected dose is not its own duplicate). A copy, never saved."""
        view = copy.copy(self)
        view.facts = {v: f for v, f in self.facts.items() if v != version}
        return view

    # -- source data verification and queries (domain/review.py, domain/queries.py) ------

    class RecordsReviewed(Aggregate.Event):
        """A monitor verified the cited records against source."""

        TOPIC = "trialctl.Patient.RecordsReviewed"
        records: list[dict[str, Any]]

        def apply(self, aggregate: Any) -> None:
            aggregate.reviews.append({"version": self.originator_version,
                                      "records": list(self.records)})

    def review_states(self) -> dict[int, dict[str, Any]]:
        """Each record's review state now (`domain.review.review_states`)."""
        return review_states(self.facts, self.reviews, self.corrections)

    def review_counts(self) -> dict[str, int]:
        counts = {"unreviewed": 0, "reviewed": 0, "invalidated": 0}
        for state in self.review_states().values():
            counts[state["state"]] += 1
        return counts

    def review(self, cited: list[RecordEntry], reviewer: str, now: datetime) -> None:
        check_review(self.patient_id, cited, self.review_states(), reviewer)
        self.trigger_event(self.RecordsReviewed, timestamp=now,
                           records=[citation(record) for record in cited])

    class QueryRaised(Aggregate.Event):
        TOPIC = "trialctl.Patient.QueryRaised"
        query_id: str
        record_position: int
        record_version: int
        entry_hash: str
        text: str
        raised_by: str

        def apply(self, aggregate: Any) -> None:
            aggregate.queries[self.query_id] = {
                "query_id": self.query_id, "record_position": self.record_position,
                "record_version": self.record_version, "entry_hash": self.entry_hash,
                "text": self.text, "raised_by": self.raised_by,
                "raised_at": self.timestamp.isoformat(), "state": query_rules.OPEN,
                "closed_at": None, "thread": [],
            }

    class QueryAnswered(Aggregate.Event):
        TOPIC = "trialctl.Patient.QueryAnswered"
        query_id: str
        text: str
        answered_by: str

        def apply(self, aggregate: Any) -> None:
            query_rules.advance(aggregate.queries[self.query_id], query_rules.ANSWERED,
                                "answered", self.answered_by, self.text,
                                self.timestamp.isoformat())

    class QueryClosed(Aggregate.Event):
        TOPIC = "trialctl.Patient.QueryClosed"
        query_id: str
        closed_by: str

        def apply(self, aggregate: Any) -> None:
            query_rules.advance(aggregate.queries[self.query_id], query_rules.CLOSED,
                                "closed", self.closed_by, None, self.timestamp.isoformat())

    class QueryReopened(Aggregate.Event):
        TOPIC = "trialctl.Patient.QueryReopened"
        query_id: str
        text: str
        reopened_by: str

        def apply(self, aggregate: Any) -> None:
            query_rules.advance(aggregate.queries[self.query_id], query_rules.OPEN,
                                "reopened", self.reopened_by, self.text,
                                self.timestamp.isoformat())

    def query(self, query_id: str) -> dict[str, Any]:
        found = self.queries.get(query_id)
        if found is None:
            raise TrialRuleError(
                "known-query", f"patient {self.patient_id} has no query {query_id}"
            )
        return found

    def raise_query(
        self, query_id: str, record: RecordEntry, text: str, raised_by: str, now: datetime
    ) -> None:
        query_rules.query_number(query_id)
        if query_id in self.queries:
            raise TrialRuleError("query-id", f"query {query_id} already exists")
        if record.version not in self.facts:
            raise TrialRuleError(
                "queryable", f"#{record.position} is not a record of patient {self.patient_id}"
            )
        self.trigger_event(
            self.QueryRaised, timestamp=now, query_id=query_id,
            record_position=record.position, record_version=record.version,
            entry_hash=record.entry_hash, text=query_rules.query_text(text, "a query"),
            raised_by=raised_by,
        )

    def answer_query(self, query_id: str, text: str, answered_by: str, now: datetime) -> None:
        query_rules.check_answer(self.query(query_id))
        self.trigger_event(self.QueryAnswered, timestamp=now, query_id=query_id,
                           text=query_rules.query_text(text, "an answer"),
                           answered_by=answered_by)

    def close_query(self, query_id: str, signer: str, data_manager: bool, now: datetime) -> None:
        query_rules.check_close(self.query(query_id), signer, data_manager)
        self.trigger_event(self.QueryClosed, timestamp=now, query_id=query_id, closed_by=signer)

    def reopen_query(
        self, query_id: str, text: str, signer: str, data_manager: bool, now: datetime
    ) -> None:
        query_rules.check_reopen(self.query(query_id), signer, data_manager)
        self.trigger_event(self.QueryReopened, timestamp=now, query_id=query_id,
                           text=query_rules.query_text(text, "a reopening"), reopened_by=signer)

    def check_query_cited(self, query_id: str, target_version: int) -> None:
        """A correction may cite the query it answers: an open query on that record."""
        query = self.query(query_id)
        if not query_rules.is_open(query):
            raise TrialRuleError("query-open", f"query {query_id} is closed")
        if query["record_version"] != target_version:
            raise TrialRuleError(
                "query-record",
                f"query {query_id} is about #{query['record_position']}, "
                f"not the record corrected",
            )

    # -- recording -----------------------------------------------------------------------

    def _record(
        self, event_class: type[FactEvent], fact: Fact, now: datetime, **derived: Any
    ) -> None:
        """Trigger the fact's event: its payload is the fact's stored fields and what the
        rules derived from them."""
        self.trigger_event(event_class, timestamp=now, **fact.payload(**derived))

    # -- labs ----------------------------------------------------------------------------

    class LabRecorded(FactEvent):
        TOPIC = "trialctl.Patient.LabRecorded"
        FACT = Lab
        __annotations__ = Lab.event_fields()
        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            # Before recorded visits: the visit is placed by the collection date.
            state["visit"] = None

    def labs(self) -> list[dict[str, Any]]:
        """Each lab graded now: its current values against the current limits of normal
        (its own, else screening's), so a corrected screening ULN regrades earlier labs."""
        # Grading is the costliest read of a record, and one status reads it for every
        # patient several times; grades change only with an entry (a new version) or with a
        # copy's own facts (`_without`), so they are kept per version and facts dict.
        kept = self.__dict__.get("_graded_labs")
        if kept is None or kept[0] != self.version or kept[1] is not self.facts:
            screening = self.screening_values
            graded = [{**lab, **Lab.from_record(lab).derive(screening)} for lab in self.kept(Lab)]
            kept = (self.version, self.facts, graded)
            self.__dict__["_graded_labs"] = kept
        return [dict(lab) for lab in kept[2]]

    def record_lab(self, lab: Lab, protocol: Protocol, now: datetime) -> dict[str, Any]:
        """Record a laboratory value; its CTCAE grade is computed against the patient's
        limit of normal (the record's own, else screening's). Returns the derived values."""
        checked = lab.check(self, protocol, now)
        derived = checked.derive(self.screening_values)
        self._record(self.LabRecorded, checked, now, **derived)
        return derived

    # -- protocol deviations and concomitant medications ---------------------------------

    class DeviationRecorded(FactEvent):
        TOPIC = "trialctl.Patient.DeviationRecorded"
        FACT = Deviation
        __annotations__ = Deviation.event_fields()

    class ConmedRecorded(FactEvent):
        TOPIC = "trialctl.Patient.ConmedRecorded"
        FACT = Conmed
        __annotations__ = Conmed.event_fields()

    def recorded_deviations(self) -> list[dict[str, Any]]:
        return self.kept(Deviation)

    def conmeds(self) -> list[dict[str, Any]]:
        return self.kept(Conmed)

    @property
    def left_on(self) -> date | None:
        """The day the patient left the study (withdrawal or off study), if they have."""
        for _, fact in sorted(self.facts.items()):
            values = fact["values"]
            if fact["kind"] == Withdrawal.KIND:
                return parse_day(values["withdrawn_on"], "withdrawal date")
            if fact["kind"] == OffStudy.KIND:
                return parse_day(values["off_on"], "off-study date")
        return None

    def deviations(self, protocol: Protocol) -> list[dict[str, Any]]:
        """Recorded deviations, and those the current facts show that none acknowledges."""
        return deviations.shown(self.recorded_deviations(), deviations.detected(self, protocol))

    def record_deviation(self, deviation: Deviation, protocol: Protocol, now: datetime) -> None:
        """A deviation the site or a monitor records; `record_version` (filled in from the
        cited ledger entry) must be a version of this patient's record."""
        cited = deviation.record_version
        if cited is not None and not 1 <= cited <= self.version:
            raise TrialRuleError(
                "deviation-record",
                f"#{deviation.record} is not an entry of {self.patient_id}",
            )
        self._record(self.DeviationRecorded, deviation.check(self, protocol, now), now)

    def record_conmed(self, conmed: Conmed, protocol: Protocol, now: datetime) -> None:
        self._record(self.ConmedRecorded, conmed.check(self, protocol, now), now)


def assessed_series(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """RECIST over a series of assessments in order, by the RECIST version each was made
    under (the protocol's): the first is the baseline, each later one is read against it
    and the nadir so far. Raises ValueError on measurements the rules refuse."""
    series: list[dict[str, Any]] = []
    for record in records:
        rules = recist_rules(record["recist_version"])
        lesions = [lesion_from_record(x) for x in record["lesions"]]
        sum_mm = sum_of_diameters(lesions, rules)
        if record["baseline"] or not series:
            series.append({**record, "category": None, "sum_mm": str(sum_mm)})
            continue
        base = [lesion_from_record(x) for x in series[0]["lesions"]]
        response = assess_response(
            base,
            lesions,
            nadir_sum_mm=min(Decimal(r["sum_mm"]) for r in series),
            new_lesions=record["new_lesions"],
            non_target_progression=record["non_target_progression"],
            rules=rules,
        )
        series.append({**record, "category": str(response.category), "sum_mm": str(sum_mm)})
    return series


def not_counted(judged: dict[str, Any]) -> bool:
    """A DLT adjudicated as such that does not count now: its AE fails the rule's
    conditions. One awaiting its co-signature is not judged yet, so it is not among them
    (it is listed as awaiting co-signature)."""
    co_signature = judged.get("co_signature")
    pending = co_signature is not None and co_signature["state"] == "pending"
    return bool(judged["is_dlt"]) and not judged["counts"] and not pending


def dlt_note(judged: dict[str, Any]) -> str:
    """Why an adjudicated DLT does not count now: the rule's conditions its AE fails."""
    rule = judged["rule_code"]
    return f"{judged['ae_id']}: does not meet rule {rule}: {'; '.join(judged['unmet'])}"


def ends_of_study(summaries: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each patient off study, by patient id: when, why, and their last follow-up contact
    (what `status` lists). A summary read before follow-up existed holds none."""
    return sorted(({"patient_id": s["patient_id"], **s["end_of_study"]} for s in summaries
                   if s.get("end_of_study") is not None),
                  key=lambda e: str(e["patient_id"]))


def eligibility_deviations(summaries: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The trial's eligibility deviations, by patient id, from the patients' summaries:
    what `status` shows beside the cohorts."""
    found = [
        {"patient_id": s["patient_id"], **s["eligibility_deviation"]}
        for s in summaries
        if s["eligibility_deviation"] is not None
    ]
    return sorted(found, key=lambda d: str(d["patient_id"]))


def sae_report_states(summaries: Iterable[dict[str, Any]], on: date) -> list[dict[str, Any]]:
    """Every serious event's expedited report as it stood on `on`, by patient id: what
    `status` and `patient` show, overdue ones flagged."""
    found = [
        {"patient_id": s["patient_id"], **r,
         "report": report_state(r["report_due"], r["reported_on"], on)}
        for s in summaries
        for r in s.get("sae_reports", ())
    ]
    return sorted(found, key=lambda r: (str(r["patient_id"]), str(r["ae_id"])))


_SCREENED = frozenset({"screened-eligible", "screened-ineligible", "screening-incomplete"})


def screening_status(eligibility: dict[str, Any]) -> str:
    """A screened patient's status: eligible, ineligible (a criterion failed on the values
    given), or incomplete (nothing failed, but some criteria were not assessed)."""
    if eligibility["eligible"]:
        return "screened-eligible"
    if eligibility.get("not_assessed") and not eligibility["failed"]:
        return "screening-incomplete"
    return "screened-ineligible"


def verdict(eligibility: dict[str, Any]) -> str:
    """One line: ``eligible``, or what failed and what was not assessed."""
    if eligibility["eligible"]:
        return "eligible"
    if screening_status(eligibility) == "screening-incomplete":
        return f"screening incomplete ({_reasons(eligibility)})"
    return f"NOT eligible ({_reasons(eligibility)})"


def _reasons(eligibility: dict[str, Any], colon: str = ": ") -> str:
    """``failed: a, b; not assessed: c`` (the criteria failed, the fields not given)."""
    parts = []
    if eligibility["failed"]:
        parts.append(f"failed{colon}{', '.join(eligibility['failed'])}")
    if eligibility.get("not_assessed"):
        parts.append(f"not assessed{colon}{', '.join(eligibility['not_assessed'])}")
    return "; ".join(parts)


def _evaluate(protocol: Protocol, values: dict[str, Any], day: date) -> dict[str, Any]:
    """Eligibility from the values: eligible only on a complete screening, every required
    field of the screening form given and every criterion assessed."""
    try:
        result = evaluate_eligibility(protocol.eligibility_criteria, values, day)
    except ValueError as e:
        raise TrialRuleError("screening-values", str(e)) from e
    form = protocol.screening_form
    missing = {*result.missing_fields, *(form.missing_required(values) if form else ())}
    order = form.names if form else tuple(result.missing_fields)
    not_assessed = [f for f in order if f in missing]
    return {
        "eligible": result.eligible and not not_assessed,
        "failed": list(result.failed_codes),
        "not_assessed": not_assessed,
        "criteria": [
            {"code": r.code, "status": str(r.status), "reason": r.reason} for r in result.results
        ],
    }
