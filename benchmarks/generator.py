"""A reproducible generator of sponsor-sized ledgers: many trials of the shipped protocol
(each under its own registry number), the full mix of entries (consents, screenings,
enrolments, doses, labs, adverse events, DLT adjudications, cohort decisions, corrections,
source-data reviews, data queries raised, answered and closed), four signing users, and key
rotations along the way.

    .venv/bin/python -m benchmarks.generator LEDGER --entries 1000000 [--seed 13]

Every entry goes through the ledger's own rules and signatures: each step is taken by
`TrialActions` on held copies of the aggregates (as batch entry does), and the collected
events are signed and written many groups per transaction (`TrialLedger.record_groups`).
The seed fixes every choice (grades, lab values, which patients have DLTs or corrections);
signatures, keys and times differ between runs, the content does not.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from trialctl.domain.facts import (
    AdverseEvent,
    Consent,
    Correction,
    CourseCompletion,
    DltAdjudication,
    Dose,
    Enrolment,
    Fact,
    Lab,
    Screening,
)
from trialctl.domain.patient import Patient
from trialctl.domain.protocol import Protocol
from trialctl.domain.review import RecordEntry
from trialctl.domain.trial import Trial
from trialctl.ledger.application import TrialLedger, UnlockedUser
from trialctl.ledger.demo import screening_values, shipped_protocol
from trialctl.ledger.location import resolve_ledger
from trialctl.ledger.requests import CohortDecision, PatientStep, Registration, Request
from trialctl.ledger.reviews import QueryOpen, QueryStep, Review, ReviewActions, ReviewRequest
from trialctl.ledger.trials import Recorded

USERS = {
    "alice": ("Alice Adams (admin)", ["admin"]),
    "pat": ("Dr Pat Park (PI)", ["principal-investigator"]),
    "ivan": ("Dr Ivan Ito", ["investigator"]),
    "mona": ("Mona Moss, RN (monitor)", ["monitor"]),
}
GROUPS_PER_WRITE = 2000


def password(user_id: str) -> str:
    return f"scale-{user_id}-password"  # throwaway keys of a benchmark ledger


@dataclass(frozen=True)
class Size:
    """How big a ledger to make: its entries (reached approximately, never less than asked
    unless the trials run out of steps) and the courses each patient receives."""

    entries: int
    courses: int = 6
    seed: int = 13
    rotations: int = 2
    block_trials: int = 20  # held in memory at once; their steps interleave into long batches


@dataclass
class Generated:
    entries: int
    trials: list[str]
    seconds: float
    rotations: int


class _HeldActions(ReviewActions):
    """`TrialActions` (and the review actions) on held aggregates (the batch-entry way), so
    thousands of steps are signed and written together and no record is read back from the
    store while its trial's block runs. A signed-alone action (a decision, a review, a
    query) records the held aggregate itself, so the copy stays the stored state."""

    summarises = False  # a step's summary grades the whole record again; nobody reads it

    def __init__(self, ledger: TrialLedger) -> None:
        super().__init__(ledger)
        self.held: dict[UUID, Aggregate] = {}
        self._entries_of: tuple[tuple[UUID, int], dict[int, RecordEntry]] | None = None

    def _load(self, aggregate_id: UUID) -> Any:
        if aggregate_id not in self.held:
            self.held[aggregate_id] = super()._load(aggregate_id)
        return self.held[aggregate_id]

    def trial_ids(self) -> list[str]:
        # The generator names each trial it registers; no scan of the ledger needed.
        return []

    def record_entries(self, patient: Patient) -> dict[int, RecordEntry]:
        # A review or query reads the record's entries to cite one, and its rule reads them
        # again: the same stored entries, as long as the record has not moved on.
        key = (patient.id, patient.version)
        if self._entries_of is None or self._entries_of[0] != key:
            self._entries_of = key, super().record_entries(patient)
        return self._entries_of[1]

    def query_holders(self, trial: Trial) -> dict[str, Patient]:
        # Every patient of the block's trials is held from consent on, so the held records
        # answer what a scan of the ledger's queries (growing with the ledger) would.
        return {query_id: held for held in self.held.values()
                if isinstance(held, Patient) and held.trial_id == str(trial.id)
                for query_id in held.queries}


class Full(Exception):
    """The next step would take the ledger past its block's limit of entries."""


@dataclass
class Writer:
    """Groups of collected events per signer, written in order: a change of signer (or a
    full batch) flushes what is queued, so every aggregate's versions stay in order."""

    app: TrialLedger
    actors: dict[str, UnlockedUser]
    queued: list[tuple[list[Any], str | None]] = field(default_factory=list)
    signer: str | None = None
    written: int = 0

    def add(self, signer: str, events: list[Any], meaning: str | None) -> None:
        if signer != self.signer or len(self.queued) >= GROUPS_PER_WRITE:
            self.flush()
            self.signer = signer
        self.queued.append((events, meaning))

    def queued_entries(self) -> int:
        return sum(len(events) for events, _ in self.queued)

    def flush(self) -> None:
        if self.queued and self.signer is not None:
            written = self.app.record_groups(self.actors[self.signer], self.queued)
            self.written += sum(len(ids) for ids in written)
        self.queued = []


class Block:
    """A few trials run side by side: each step is taken for every trial in turn.

    With a `limit` (the ledger's size in entries that the block may reach), a step that
    would pass it raises `Full` instead of being written, and `top_up` then fills the
    ledger to the limit exactly: a block can add an exact number of entries."""

    def __init__(self, app: TrialLedger, writer: Writer, protocols: Sequence[Protocol],
                 rng: random.Random, start: date, courses: int,
                 limit: int | None = None) -> None:
        self.limit = limit
        self.app = app
        self.writer = writer
        self.protocols = protocols
        self.rng = rng
        self.start = start
        self.courses = courses
        self.actions = _HeldActions(app)
        self.next_number = {p.id: 1 for p in protocols}
        self.levels = {p.id: 1 for p in protocols}
        self.done: set[str] = set()

    def take(self, signer: str, request: Request) -> None:
        pending = self.actions._take(request, datetime.now(UTC))
        try:
            self._make_room(sum(len(a.pending_events) for a in pending.aggregates))
        except Full:
            for aggregate in pending.aggregates:  # changed by a step never written
                self.actions.held.pop(aggregate.id, None)
            raise
        events: list[Any] = []
        for aggregate in pending.aggregates:
            self.actions.held[aggregate.id] = aggregate
            events += aggregate.collect_events()
        if events:
            self.writer.add(signer, events, pending.meaning)

    def _make_room(self, entries: int) -> None:
        if entries and self.limit is not None and (self.app.signed_recorder.tree_size()
                                       + self.writer.queued_entries() + entries > self.limit):
            raise Full

    def _perform(self, request: Request | ReviewRequest, signer: str) -> Recorded:
        """A step signed alone (one entry, in its own transaction)."""
        self._make_room(1)
        return self.actions.perform(request, self.writer.actors[signer], datetime.now(UTC))

    def fill(self) -> None:
        """Run the block's trials until the ledger holds exactly `limit` entries."""
        with contextlib.suppress(Full):
            self.run(lambda: True)
        self.top_up()

    def top_up(self) -> None:
        """After `Full`: the monitor queries the block's first patient's first record until
        the ledger holds exactly `limit` entries (each query is one entry)."""
        assert self.limit is not None
        self.writer.flush()
        trial = self.protocols[0].id
        found = self.actions.patient(self.actions.trial(trial), "P0001")
        first = min(self.actions.record_entries(found).values(), key=lambda r: r.position)
        while self.app.signed_recorder.tree_size() < self.limit:
            self._perform(QueryOpen(trial, "P0001", first.position, "Please confirm "
                                    "against the source document", "mona"), "mona")

    def step(self, signer: str, trial: str, patient: str, fact: Fact) -> None:
        self.take(signer, PatientStep(trial, patient, fact))

    def day(self, offset: int) -> str:
        return (self.start + timedelta(days=offset)).isoformat()

    def at(self, offset: int) -> str:
        return f"{self.day(offset)}T09:30:00+00:00"

    def register(self) -> None:
        for protocol in self.protocols:
            self.take("pat", Registration(protocol))

    def run(self, budget: Callable[[], bool]) -> None:
        """Cohorts of three until every trial of the block has its MTD (or the budget of
        entries is spent)."""
        self.register()
        offset = 0
        while len(self.done) < len(self.protocols) and budget():
            cohorts = {p.id: [self._patient_id(p.id) for _ in range(3)]
                       for p in self.protocols if p.id not in self.done}
            self._enrol(cohorts, offset)
            self._treat(cohorts, offset)
            self.writer.flush()  # a decision cites its evidence by stored position
            self._decide(cohorts)
            self._review(cohorts)
            offset += 7 * (3 * self.courses + 2)

    def _patient_id(self, trial: str) -> str:
        number = self.next_number[trial]
        self.next_number[trial] += 1
        return f"P{number:04d}"

    def _enrol(self, cohorts: dict[str, list[str]], offset: int) -> None:
        screened = self.start + timedelta(days=offset + 2)
        for trial, patients in cohorts.items():
            for patient in patients:
                self.step("mona", trial, patient,
                          Consent(consent_version="2.1", signed_on=self.day(offset)))
                anc = self.rng.choice((1800, 2400, 3100, 4000))
                self.step("mona", trial, patient, Screening(
                    values=screening_values(screened, anc_per_mm3=anc,
                                            age_years=self.rng.randint(24, 79)),
                    screened_on=self.day(offset + 2)))
                self.step("mona", trial, patient, Enrolment(enrolled_on=self.day(offset + 4)))

    def _treat(self, cohorts: dict[str, list[str]], offset: int) -> None:
        for course in range(1, self.courses + 1):
            begins = offset + 6 + 21 * (course - 1)
            for trial, patients in cohorts.items():
                protocol = next(p for p in self.protocols if p.id == trial)
                for patient in patients:
                    self._course(protocol, patient, course, begins)

    def _course(self, protocol: Protocol, patient: str, course: int, begins: int) -> None:
        trial = protocol.id
        imatinib = protocol.escalated_agent
        own = protocol.level(self.levels[trial])
        fixed_agent = protocol.fixed_agents[0]
        fixed = fixed_agent.dose_for_course(course)
        self.step("ivan", trial, patient, Dose(
            agent=fixed_agent.name, dose=str(fixed.dose), unit=fixed.unit, course=course,
            day=1, given_at=self.at(begins)))
        for day in (1, 8, 15):
            self.step("ivan", trial, patient, Dose(
                agent=imatinib.name, dose=str(own.dose), unit=own.unit, course=course,
                day=day, given_at=self.at(begins + day - 1)))
        ae_id = f"AE{course}"
        dlt = course == 1 and self.rng.random() < 0.15
        # A DLT's neutropenia is borne out by the lab series (grade 4 for a week).
        values = (400, 300) if dlt else [self.rng.choice((1400, 2100, 2900, 3600))
                                         for _ in range(2)]
        for day, anc in zip((11, 18), values, strict=True):
            self.step("ivan", trial, patient, Lab(
                test="anc", value=str(anc), unit="/mm3",
                collected_on=self.day(begins + day - 1), course=course, day=day,
                uln=None, lln=None))
        if dlt:
            self.step("ivan", trial, patient, AdverseEvent(
                ae_id=ae_id, term="Neutrophils/granulocytes (ANC/AGC)", grade=4,
                attribution="probable", onset=self.day(begins + 10),
                resolved_on=self.day(begins + 17), coded=True))
            self.step("pat", trial, patient, DltAdjudication(
                ae_id=ae_id, is_dlt=True, rule_code="neutropenia_g4",
                decided_on=self.day(begins + 17), override_reason=None))
        else:
            self.step("ivan", trial, patient, AdverseEvent(
                ae_id=ae_id, term="Fatigue (asthenia, lethargy, malaise)",
                grade=self.rng.choice((1, 1, 2)), attribution="possible",
                onset=self.day(begins + 5), resolved_on=self.day(begins + 12), coded=True))
        if not dlt and self.rng.random() < 0.1:  # the AE just recorded
            version = self.actions.patient(self.actions.trial(trial), patient).version
            self.step("ivan", trial, patient, Correction(
                target_version=version, changes={"resolved_on": self.day(begins + 11)},
                reason="source document: resolved a day earlier"))
        self.step("ivan", trial, patient, CourseCompletion(
            course=course, completed_on=self.day(begins + 20), not_evaluable_reason=None))

    def _decide(self, cohorts: dict[str, list[str]]) -> None:
        for trial in cohorts:
            found = self.actions.trial(trial)
            step = found.expected_step(self.actions.roster(found))
            if step is None:
                self.done.add(trial)
                continue
            # Signed alone: its statement carries the evidence it was taken on.
            self._perform(CohortDecision(trial, step.action, step.next_level,
                                         step.mtd_level, None), "pat")
            if step.next_level is not None:
                self.levels[trial] = step.next_level
            if step.mtd_level is not None or step.action == "stop":
                self.done.add(trial)

    def _review(self, cohorts: dict[str, list[str]]) -> None:
        """The monitor verifies one patient per cohort against source (read from the
        stored entries, so one at a time), and queries another's first adverse event: a
        third of the queries stay open, a third are answered, a third answered and closed."""
        reviews = self.actions
        for trial, patients in cohorts.items():
            found = reviews.patient(reviews.trial(trial), patients[0])
            entries = reviews.record_entries(found)
            # Course 1's doses, signed by the investigator (nobody reviews their own entry).
            cited = tuple(entries[d["version"]].position
                          for d in found.doses() if d["course"] == 1)
            self._perform(Review(trial, patients[0], cited, "mona"), "mona")
            self._query(reviews, trial, patients[1])

    def _query(self, reviews: ReviewActions, trial: str, patient: str) -> None:
        found = reviews.patient(reviews.trial(trial), patient)
        ae = found.adverse_events()[0]
        position = reviews.record_entries(found)[ae["version"]].position
        opened = self._perform(QueryOpen(trial, patient, position, "Please confirm the "
                                         "grade against the chart", "mona"), "mona")
        query_id = opened.summary["query"]
        fate = self.rng.randrange(3)
        if fate >= 1:
            self._perform(QueryStep(trial, query_id, "answer", "Grade confirmed", "ivan"),
                          "ivan")
        if fate == 2:
            self._perform(QueryStep(trial, query_id, "close", None, "mona"), "mona")


def open_users(app: TrialLedger) -> dict[str, UnlockedUser]:
    app.initialise("trialctl scale benchmark", "alice", USERS["alice"][0], password("alice"))
    actors = {"alice": app.unlock("alice", password("alice"))}
    for user_id, (name, roles) in USERS.items():
        if user_id != "alice":
            app.register_user(actors["alice"], user_id, name, roles, password(user_id))
            actors[user_id] = app.unlock(user_id, password(user_id))
    return actors


def generate(url: str, size: Size, keys_home: Path,
             say: Callable[[str], None] = lambda _: None) -> Generated:
    """Build a new ledger at `url` of about `size.entries` entries."""
    begun = time.perf_counter()
    rng = random.Random(size.seed)
    app = TrialLedger(resolve_ledger(url), create=True, keys_home=keys_home)
    try:
        actors = open_users(app)
        writer = Writer(app, actors)
        base = shipped_protocol()
        trials: list[str] = []
        rotate_at = [size.entries * (k + 1) // (size.rotations + 1)
                     for k in range(size.rotations)]
        start = date(2020, 1, 6)

        def entries() -> int:
            return app.signed_recorder.tree_size()

        def budget() -> bool:
            return entries() < size.entries

        while budget():
            # Generated trials declare no co-signatures: each decision is signed alone, in
            # its own transaction, and a second signing per decision would only repeat it.
            protocols = [replace(base, id=f"NCT9{len(trials) + k:07d}", co_signatures=())
                         for k in range(size.block_trials)]
            trials += [p.id for p in protocols]
            Block(app, writer, protocols, rng, start, size.courses).run(budget)
            writer.flush()
            while rotate_at and entries() >= rotate_at[0]:
                rotate_at.pop(0)
                app.rotate_key(actors["alice"], "ivan", password("ivan"))
                actors["ivan"] = app.unlock("ivan", password("ivan"))
            say(f"{entries()} entries, {len(trials)} trials")
        return Generated(entries(), trials, time.perf_counter() - begun,
                         size.rotations - len(rotate_at))
    finally:
        app.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("ledger", help="a new SQLite file or a PostgreSQL URL")
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--courses", type=int, default=Size.courses)
    parser.add_argument("--seed", type=int, default=Size.seed)
    parser.add_argument("--keys", type=Path, required=True, help="where key files go")
    args = parser.parse_args(argv)
    made = generate(args.ledger, Size(args.entries, args.courses, args.seed), args.keys,
                    lambda line: print(line, file=sys.stderr, flush=True))
    print(f"{made.entries} entries, {len(made.trials)} trials, {made.rotations} key "
          f"rotations in {made.seconds:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
