"""`verify`'s decision pass: every cohort decision recomputed from the ledger as it stood
at that decision's position.

One pass over the trial and patient entries in position order. Each trial is moved on by
its own entries through the replay machinery (`history.advanced_by`); each patient's counted
entries (`decisions.is_counted`) are gathered as they come. At a decision entry the trial
is exactly as it stood just before it, so `decisions.evidence_for` gives what the decision
should have signed, which is compared with what it did sign. Overrides are listed in the
report with their reasons and signers.

A full verify reads every trial. With `--since-checkpoint` the pass re-checks only the
trials touched since the checkpoint: those with at least one entry of their own, or of one
of their patients, after it. Each of those is still replayed over its whole history, as a
decision rests on entries from any time before it. A trial untouched since the checkpoint
is not re-checked (nothing of it was added, and its entries are covered by the checkpoint's
signed root); the report says how many trials were left out, and a full verify checks them.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from eventsourcing.domain import OriginatorIDError, OriginatorVersionError
from eventsourcing.persistence import StoredEvent
from sqlalchemy import func, select, type_coerce
from sqlalchemy.sql.sqltypes import NullType

from trialctl.domain.co_signatures import ADJUDICATION_TYPES, check_co_signer
from trialctl.domain.patient import Patient, patient_aggregate_id
from trialctl.domain.rules import TrialRuleError
from trialctl.domain.trial import Trial
from trialctl.ledger.aggregate_kinds import KIND_OPENED_BY
from trialctl.ledger.decisions import (
    DECISION_TYPES,
    EvidenceEntry,
    counted_entry,
    describe_entries,
    evidence_for,
    is_counted,
)
from trialctl.ledger.entry import (
    MalformedEntryError,
    entry_hash,
    parse_canonical_entry,
    parse_entry,
)
from trialctl.ledger.history import advanced_by
from trialctl.ledger.mapper import EntryMapper
from trialctl.ledger.recorder import SignedRecorder
from trialctl.ledger.verify_entries import Row, read_rows
from trialctl.ledger.verify_report import Finding, Override, VerificationReport

CHECK = "decision"
_TRIAL = KIND_OPENED_BY[Trial.Registered.TOPIC]
_PATIENT = KIND_OPENED_BY[Patient.ConsentSigned.TOPIC]
_PATIENT_TYPES = frozenset({_PATIENT.opening, *_PATIENT.later})
TOPICS = tuple(sorted({_TRIAL.opening, *_TRIAL.later, *_PATIENT_TYPES}))
# The trial entries that act on its current cohort (filling or deciding it).
_OPENING_TYPES = frozenset({Trial.PatientAssigned.TOPIC, *DECISION_TYPES})
# What replaying a hostile (yet signed) trial entry can raise; the trial is then reported
# and left, never guessed at.
# A row its columns misfile under another aggregate (or version) raises the library's
# OriginatorIDError (OriginatorVersionError) on replay.
_REPLAY_ERRORS = (KeyError, TypeError, ValueError, AttributeError, AssertionError,
                  IndexError, TrialRuleError, OriginatorIDError, OriginatorVersionError)


@dataclass
class _TrialState:
    trial: Trial | None = None
    # Why the trial could not be rebuilt past some entry: reported at each later decision
    # (the entry itself is the other checks' business).
    broken: str | None = None
    counted: dict[str, list[EvidenceEntry]] = field(default_factory=dict)
    # The trial's patients rebuilt from their own entries so far: their facts decide the
    # counts. A patient that cannot be rebuilt is left out (its entry is reported by the
    # other checks) and the recomputation then differs, which is reported at the decision.
    patients: dict[str, Patient] = field(default_factory=dict)
    unbuildable: set[str] = field(default_factory=set)


def check_decisions(
    recorder: SignedRecorder, report: VerificationReport, since_size: int | None = None
) -> None:
    """Recompute every cohort decision; findings and overrides go into `report`. With
    `since_size` (a verified checkpoint's tree size), only the decisions of the trials
    touched at or after that position."""
    if since_size is not None:
        _replay(_touched_trials(recorder, since_size, report), report)
        return
    # Entries are stored in position order unless the store was tampered with: stream them
    # then, so memory does not grow with the ledger. Rows found out of order send the pass
    # back to the start, to sort every entry by position first (the findings it made are
    # dropped, to be made again in order).
    # A trial is let go once the stream passes the last row of it and its patients, so
    # memory follows the trials in progress, not the ledger (`_Ends`).
    findings, overrides = len(report.findings), len(report.overrides)
    checked = report.decisions_checked
    try:
        _replay(_streamed_in_order(read_rows(recorder, 0, TOPICS)), report,
                _Ends.of(recorder))
    except (_OutOfOrder, _LetGo):
        del report.findings[findings:], report.overrides[overrides:]
        report.decisions_checked = checked
        _replay(_in_position_order(read_rows(recorder, 0, TOPICS)), report)


def check_decisions_along(
    recorder: SignedRecorder, rows: Iterable[tuple[Row, dict[str, Any] | None]],
    into: VerificationReport,
) -> bool:
    """A full verify's decision pass over the rows the entry checks read (every row in
    commit order, each with its whole statement when it is well formed), so the ledger is
    read and decoded once, not twice. Consumes all of `rows`. Findings, overrides and the
    count go into `into` (to be added where `check_decisions` would add them). False when
    the rows are not in position order or a trial was let go too early: then `into` is
    incomplete and `check_decisions` must run instead (it sorts them first)."""
    ends = _Ends.of(recorder)
    feed = iter(rows)
    try:
        _replay(_in_order(_readable_read(feed)), into, ends)
        complete = True
    except (_OutOfOrder, _LetGo):
        complete = False
    for _ in feed:  # the entry checks go on to the last row either way
        pass
    return complete


_TOPIC_SET = frozenset(TOPICS)


def _readable_read(rows: Iterable[tuple[Row, dict[str, Any] | None]]
                   ) -> Iterator[tuple[Row, dict[str, Any]]]:
    """`_readable` over rows already read: the rows `read_rows(recorder, 0, TOPICS)` gives
    (by their topic column), each with the statement the entry checks decoded. An entry they
    found wanting is read here as `_readable` reads it (a statement that is not canonical is
    still history)."""
    for row, statement in rows:
        if row.topic not in _TOPIC_SET:
            continue
        if statement is None or row.column_problems:
            yield from _readable((row,))
        else:
            yield row, statement


class _OutOfOrder(Exception):
    """A row's signed position is not after the one read before it."""


class _LetGo(Exception):
    """A row belongs, by what it signed, to a trial already let go: its stored columns
    misfiled it (a finding of the entry checks), so the pass starts again holding every
    trial."""


@dataclass
class _Ends:
    """Where each trial's rows end: the highest row id among the trial's own rows and its
    patients' (a patient belongs to the trial its first consent names, as in the pass).
    Read from the rows' columns; a row whose signed aggregate differs is caught by
    `_LetGo`."""

    heap: list[tuple[int, str]]
    let_go: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, recorder: SignedRecorder) -> _Ends:
        owners = _patient_trials(recorder)
        ends: dict[str, int] = {}
        for aggregate, last in _last_rows(recorder):
            family = owners.get(aggregate, aggregate)
            ends[family] = max(ends.get(family, last), last)
        heap = [(last, family) for family, last in ends.items()]
        heapq.heapify(heap)
        return cls(heap)

    def passed(self, notification_id: int) -> Iterator[str]:
        """The trials whose rows all come before `notification_id`."""
        while self.heap and self.heap[0][0] < notification_id:
            yield heapq.heappop(self.heap)[1]


def _last_rows(recorder: SignedRecorder) -> Iterator[tuple[str, int]]:
    """Each aggregate's last row id among the decision pass's topics."""
    record = recorder.events_record_cls
    query = (select(type_coerce(record.originator_id, NullType()), func.max(record.id))
             .where(record.topic.in_(TOPICS)).group_by(record.originator_id))
    binary_ids = recorder.dialect != "postgresql"
    with recorder.transaction(commit=False) as session:
        for originator_id, last in session.execute(query):
            try:
                if binary_ids and isinstance(originator_id, (bytes, memoryview)):
                    yield str(UUID(bytes=bytes(originator_id))), int(last)
                else:
                    yield str(UUID(str(originator_id))), int(last)
            except ValueError:
                continue  # a hostile id: its rows are left out of the pass


def _replay(entries: Iterable[tuple[Row, dict[str, Any]]], report: VerificationReport,
            ends: _Ends | None = None) -> None:
    mapper = EntryMapper(transcoder=None)  # type: ignore[arg-type]
    trials: dict[str, _TrialState] = {}
    patients: dict[str, tuple[str, str]] = {}  # patient aggregate id -> (trial id, patient)
    decisions: dict[int, _Decision] = {}  # decision entries by position, for co-signatures
    adjudications = _Adjudications()
    # What to forget of a trial let go: its decisions' positions and its patients' records.
    held: dict[str, tuple[list[int], list[str]]] = {}
    for row, statement in entries:
        if ends is not None:
            for trial_id in ends.passed(row.notification_id):
                ends.let_go.add(trial_id)
                trials.pop(trial_id, None)
                positions, records = held.pop(trial_id, ([], []))
                for position in positions:
                    decisions.pop(position, None)
                adjudications.forget(records)
            if _trial_of(statement, patients) in ends.let_go:
                raise _LetGo
        if statement["type"] in _PATIENT_TYPES:
            for problem in adjudications.see(row, statement, patients, trials):
                report.findings.append(_finding(row, statement, problem))
            mapped = statement["aggregate_id"] in patients
            _see_patient_entry(row, statement, patients, trials, mapper)
            if ends is not None and not mapped and statement["aggregate_id"] in patients:
                owner = patients[statement["aggregate_id"]][0]
                held.setdefault(owner, ([], []))[1].append(statement["aggregate_id"])
            continue
        state = trials.setdefault(statement["aggregate_id"], _TrialState())
        if statement["type"] in DECISION_TYPES:
            report.decisions_checked += 1
            _check_decision(row, statement, state, report)
            decisions[int(statement["position"])] = _Decision(statement, entry_hash(row.state))
            if ends is not None:
                held.setdefault(statement["aggregate_id"], ([], []))[0].append(
                    int(statement["position"]))
        elif statement["type"] == Trial.DecisionCoSigned.TOPIC and state.trial is not None:
            for problem in _co_signature_problems(statement, state.trial, decisions):
                report.findings.append(_finding(row, statement, problem))
        if statement["type"] in _OPENING_TYPES and state.trial is not None:
            # A decision awaiting its co-signature opens no cohort: nothing joins it yet.
            pending = state.trial.pending_opening()
            if pending is not None and not state.trial.stopped:
                report.findings.append(_finding(
                    row, statement, f"{pending['text']}, yet this entry acts on cohort "
                    f"{state.trial.current_cohort['number']}"))
        if state.broken is None:
            try:
                state.trial = advanced_by(state.trial, [_event(row, statement, mapper)])
            except _REPLAY_ERRORS as e:
                state.broken = (f"the trial cannot be rebuilt past position "
                                f"{statement['position']} ({e!r})")


def _trial_of(statement: Mapping[str, Any], patients: Mapping[str, tuple[str, str]]) -> Any:
    """The trial a row acts on by what it signed: its own, its patient's, or the one a
    first consent names."""
    aggregate = statement["aggregate_id"]
    if statement["type"] not in _PATIENT_TYPES:
        return aggregate
    if aggregate in patients:
        return patients[aggregate][0]
    return statement["payload"].get("trial_id") if statement["type"] == _PATIENT.opening \
        else None


@dataclass(frozen=True)
class _Decision:
    statement: dict[str, Any]
    entry_hash: str


def _co_signature_problems(
    statement: Mapping[str, Any], trial: Trial, decisions: Mapping[int, _Decision]
) -> Iterator[str]:
    """What a co-signature's citation and signer get wrong, against the trial as it stood
    just before it: the cited entry (position and hash, a decision of this trial and
    cohort), a decision needing it and not yet co-signed, the signer (not its author) and
    role (the protocol's)."""
    payload = statement["payload"]
    position, cohort = payload.get("position"), payload.get("cohort_number")
    cited = decisions.get(position) if isinstance(position, int) else None
    if cited is None or cited.statement["aggregate_id"] != statement["aggregate_id"]:
        yield f"the co-signature cites #{position}, which is no decision of this trial"
        return
    if cited.entry_hash != payload.get("entry_hash"):
        yield (f"the co-signature cites #{position} with hash {payload.get('entry_hash')}; "
               f"the entry's hash is {cited.entry_hash}")
    if cited.statement["payload"].get("cohort_number") != cohort:
        yield (f"the co-signature names cohort {cohort}; #{position} decides cohort "
               f"{cited.statement['payload'].get('cohort_number')}")
        return
    try:
        role = trial.check_co_sign(int(cohort))
        check_co_signer(int(position), str(cited.statement["actor"]["user_id"]),
                        str(statement["actor"]["user_id"]), role,
                        (str(statement["actor"]["role"]),))
    except (TrialRuleError, TypeError, ValueError) as e:
        yield f"the co-signature of #{position} is refused by the rules: {e}"


@dataclass
class _Adjudications:
    """The DLT adjudication entries seen so far (by position) and who signed each patient
    record and its corrections, to check an adjudication's co-signature against."""

    entries: dict[int, _Decision] = field(default_factory=dict)
    signers: dict[tuple[str, int], set[str]] = field(default_factory=dict)
    # Per patient record, the keys above it added (to forget them with its trial).
    keys_of: dict[str, tuple[list[int], list[tuple[str, int]]]] = field(default_factory=dict)

    def forget(self, records: Iterable[str]) -> None:
        for record in records:
            positions, signed = self.keys_of.pop(record, ([], []))
            for position in positions:
                self.entries.pop(position, None)
            for key in signed:
                self.signers.pop(key, None)

    def see(self, row: Row, statement: dict[str, Any], patients: Mapping[str, tuple[str, str]],
            trials: Mapping[str, _TrialState]) -> Iterator[str]:
        """Note the entry; if it co-signs an adjudication, what is wrong with that (against
        the patient as it stood just before)."""
        aggregate, signer = statement["aggregate_id"], str(statement["actor"]["user_id"])
        payload = statement["payload"]
        positions, signed = self.keys_of.setdefault(aggregate, ([], []))
        if statement["type"] in ADJUDICATION_TYPES:
            self.entries[int(statement["position"])] = _Decision(statement, entry_hash(row.state))
            positions.append(int(statement["position"]))
        if statement["type"] == Patient.Corrected.TOPIC and \
                isinstance(payload.get("target_version"), int):
            key = (aggregate, payload["target_version"])
        else:
            key = (aggregate, int(statement["aggregate_version"]))
        if key not in self.signers:
            signed.append(key)
        self.signers.setdefault(key, set()).add(signer)
        if statement["type"] != Patient.AdjudicationCoSigned.TOPIC or aggregate not in patients:
            return
        trial_id, patient_id = patients[aggregate]
        state = trials.get(trial_id)
        patient = None if state is None else state.patients.get(patient_id)
        if state is None or state.trial is None or patient is None:
            yield "the co-signature's patient or trial cannot be rebuilt before it"
            return
        yield from self._problems(statement, state.trial, patient)

    def _problems(self, statement: Mapping[str, Any], trial: Trial,
                  patient: Patient) -> Iterator[str]:
        payload = statement["payload"]
        position, version = payload.get("position"), payload.get("record_version")
        cited = self.entries.get(position) if isinstance(position, int) else None
        if cited is None or cited.statement["aggregate_id"] != statement["aggregate_id"]:
            yield (f"the co-signature cites #{position}, which is no DLT adjudication of this "
                   "patient")
            return
        if cited.entry_hash != payload.get("entry_hash"):
            yield (f"the co-signature cites #{position} with hash {payload.get('entry_hash')}; "
                   f"the entry's hash is {cited.entry_hash}")
        if cited.statement["aggregate_version"] != version:
            yield (f"the co-signature names record version {version}; #{position} is record "
                   f"version {cited.statement['version']}")
            return
        try:
            role = patient.check_co_sign_adjudication(int(version), trial.protocol)
            authors = frozenset(self.signers.get((statement["aggregate_id"], int(version)), ()))
            check_co_signer(int(position), authors, str(statement["actor"]["user_id"]), role,
                            (str(statement["actor"]["role"]),))
        except (TrialRuleError, TypeError, ValueError) as e:
            yield f"the co-signature of #{position} is refused by the rules: {e}"


def _readable(rows: Iterable[Row]) -> Iterator[tuple[Row, dict[str, Any]]]:
    """The readable entries among `rows`. An unreadable one is the entry checks' finding;
    here it is left out, as the ledger's history cannot hold it."""
    for row in rows:
        if not isinstance(row.state, bytes) or row.column_problems:
            continue
        try:
            entry = parse_canonical_entry(row.state) or parse_entry(row.state)
        except MalformedEntryError:
            continue
        yield row, entry.statement


def _in_position_order(rows: Iterable[Row]) -> list[tuple[Row, dict[str, Any]]]:
    """The readable entries among `rows`, by signed position."""
    return sorted(_readable(rows), key=lambda pair: int(pair[1]["position"]))


def _streamed_in_order(rows: Iterable[Row]) -> Iterator[tuple[Row, dict[str, Any]]]:
    """The readable entries as read, raising _OutOfOrder at the first whose position is
    not after the one before it."""
    return _in_order(_readable(rows))


def _in_order(entries: Iterable[tuple[Row, dict[str, Any]]]
              ) -> Iterator[tuple[Row, dict[str, Any]]]:
    last = -1
    for row, statement in entries:
        position = int(statement["position"])
        if position <= last:
            raise _OutOfOrder
        last = position
        yield row, statement


def _touched_trials(
    recorder: SignedRecorder, since_size: int, report: VerificationReport
) -> list[tuple[Row, dict[str, Any]]]:
    """Every trial and patient entry of the trials with an entry at or after `since_size`,
    by position; the report notes how many trials were touched and how many left out.

    A patient record names its trial only in its opening consent, so a new patient entry's
    trial is read from its record's consents. A touched trial's patient records are those
    of the patients its own entries assign, at the ids they derive (as recording finds a
    cohort's records, `decisions.stored_evidence`), and those with new entries; each still
    belongs to the trial its first consent names. So the pass reads the touched trials'
    records only, never every consent of the ledger."""
    new = _in_position_order(read_rows(recorder, since_size, TOPICS))
    new_patients = {str(s["aggregate_id"]) for _, s in new if s["type"] in _PATIENT_TYPES}
    owners = _first_consents(_consent_rows(recorder, new_patients), new)
    touched: set[str] = set()
    for _, statement in new:
        if statement["type"] in _PATIENT_TYPES:
            trial_id = owners.get(str(statement["aggregate_id"]))
            if trial_id is not None:
                touched.add(trial_id)
        else:
            touched.add(str(statement["aggregate_id"]))
    trial_rows = _rows_of(recorder, TOPICS, touched)
    candidates = {*_assigned_records(_readable(trial_rows), touched),
                  *(p for p in new_patients if owners.get(p) in touched)}
    patient_rows = _rows_of(recorder, TOPICS, candidates)
    owners = _first_consents(_readable(patient_rows), new)
    kept = {str(i) for i in _uuids(p for p, trial_id in owners.items() if trial_id in touched)}
    rows = {row.notification_id: row for row in trial_rows}
    rows.update((row.notification_id, row) for row in patient_rows if row.originator_id in kept)
    untouched = len(_registered_trials(recorder) - touched)
    report.decision_trials = {"rechecked": len(touched), "untouched": untouched}
    if touched or untouched:
        report.notes.append(
            f"decisions: {len(touched)} trials touched since the checkpoint re-checked; "
            f"{untouched} untouched trials were not — a full verify checks them")
    return _in_position_order(rows.values())


def _assigned_records(entries: Iterable[tuple[Row, dict[str, Any]]],
                      trial_ids: set[str]) -> Iterator[str]:
    """The record id of each patient a trial of `trial_ids` assigns."""
    for _, statement in entries:
        patient_id = statement["payload"].get("patient_id")
        trial_id = str(statement["aggregate_id"])
        if statement["type"] != Trial.PatientAssigned.TOPIC or trial_id not in trial_ids or \
                not isinstance(patient_id, str):
            continue
        try:
            yield str(patient_aggregate_id(UUID(trial_id), patient_id))
        except ValueError:
            continue  # a hostile trial id: the entry checks report it


# Aggregate ids per `IN (...)` list: well inside every backend's limit on parameters.
_IDS_PER_QUERY = 500


def _rows_of(recorder: SignedRecorder, topics: tuple[str, ...],
             aggregates: Iterable[str]) -> list[Row]:
    ids = tuple(dict.fromkeys(_uuids(aggregates)))
    return [row for start in range(0, len(ids), _IDS_PER_QUERY)
            for row in read_rows(recorder, 0, topics, ids[start:start + _IDS_PER_QUERY])]


def _consent_rows(recorder: SignedRecorder,
                  aggregates: Iterable[str]) -> list[tuple[Row, dict[str, Any]]]:
    """The readable consents stored under these aggregate ids."""
    return list(_readable(_rows_of(recorder, (_PATIENT.opening,), aggregates)))


def _first_consents(*found: Iterable[tuple[Row, dict[str, Any]]]) -> dict[str, str]:
    """Patient record id -> the trial its first opening consent names (as the full pass
    maps them: the first consent of a record by position decides)."""
    by_row = {row.notification_id: (row, statement) for rows in found
              for row, statement in rows if statement["type"] == _PATIENT.opening}
    owners: dict[str, str] = {}
    for _, statement in sorted(by_row.values(), key=lambda pair: int(pair[1]["position"])):
        trial_id = statement["payload"].get("trial_id")
        if isinstance(trial_id, str) and isinstance(statement["payload"].get("patient_id"), str):
            owners.setdefault(str(statement["aggregate_id"]), trial_id)
    return owners


def _patient_trials(recorder: SignedRecorder) -> dict[str, str]:
    """Patient record id -> the trial its first opening consent names, for every patient
    record of the ledger (the full pass)."""
    return _first_consents(_readable(read_rows(recorder, 0, (_PATIENT.opening,))))


def _registered_trials(recorder: SignedRecorder) -> set[str]:
    """The ids trials are registered at, read from the id column alone: one small value
    per trial, not its registration's bytes."""
    record = recorder.events_record_cls
    query = select(type_coerce(record.originator_id, NullType())).where(
        record.topic == _TRIAL.opening)
    with recorder.transaction(commit=False) as session:
        return {_id_text(value) for value in session.execute(query).scalars()}


def _id_text(value: object) -> str:
    """An id column's value as `read_rows` names it (SQLite: 16 bytes; PostgreSQL: a uuid;
    anything else by its repr)."""
    try:
        if isinstance(value, (bytes, memoryview)):
            return str(UUID(bytes=bytes(value)))
        return str(UUID(str(value)))
    except ValueError:
        return repr(value)


def _uuids(values: Iterable[str]) -> Iterator[UUID]:
    for value in values:
        try:
            yield UUID(value)
        except ValueError:
            continue  # a hostile aggregate id: the entry checks report it


def _see_patient_entry(
    row: Row, statement: dict[str, Any], patients: dict[str, tuple[str, str]],
    trials: dict[str, _TrialState], mapper: EntryMapper,
) -> None:
    payload = statement["payload"]
    aggregate = statement["aggregate_id"]
    if statement["type"] == _PATIENT.opening and aggregate not in patients:
        trial_id, patient_id = payload.get("trial_id"), payload.get("patient_id")
        if isinstance(trial_id, str) and isinstance(patient_id, str):
            patients[aggregate] = (trial_id, patient_id)
    if aggregate not in patients:
        return
    trial_id, patient_id = patients[aggregate]
    state = trials.setdefault(trial_id, _TrialState())
    _advance_patient(state, patient_id, row, statement, mapper)
    if is_counted(statement):
        state.counted.setdefault(patient_id, []).append(
            counted_entry(statement, row.state, patient_id)
        )


def _advance_patient(state: _TrialState, patient_id: str, row: Row, statement: dict[str, Any],
                     mapper: EntryMapper) -> None:
    if patient_id in state.unbuildable:
        return
    try:
        rebuilt = advanced_by(state.patients.get(patient_id), [_event(row, statement, mapper)])
    except _REPLAY_ERRORS:
        state.patients.pop(patient_id, None)
        state.unbuildable.add(patient_id)
        return
    if isinstance(rebuilt, Patient):
        state.patients[patient_id] = rebuilt


def _check_decision(
    row: Row, statement: dict[str, Any], state: _TrialState, report: VerificationReport
) -> None:
    payload = statement["payload"]
    overridden = statement["type"] == Trial.CohortDecisionOverridden.TOPIC
    if overridden:
        report.overrides.append(_override(statement))
    if state.broken is not None or state.trial is None:
        why = state.broken or "no trial is registered before it"
        report.findings.append(_finding(row, statement, f"cannot recompute the decision: {why}"))
        return
    try:
        expected = evidence_for(state.trial, state.patients, state.counted)
    except _REPLAY_ERRORS as e:
        report.findings.append(_finding(
            row, statement, f"the decision cannot be recomputed ({e!r})"))
        return
    signed = statement.get("evidence")
    if signed is None:
        report.findings.append(_finding(
            row, statement, "the decision carries no evidence (statement format "
            f"{statement['format']!r}); recomputed: {_recommendation(expected)}, counted "
            f"entries {describe_entries(expected['entries'])}"))
        return
    for problem in _differences(signed, expected, payload, overridden):
        report.findings.append(_finding(row, statement, problem))


def _differences(
    signed: Mapping[str, Any], expected: Mapping[str, Any], payload: Mapping[str, Any],
    overridden: bool,
) -> Iterator[str]:
    """What the signed evidence, and the decision itself, say unlike the recomputation."""
    if signed["cohort_number"] != expected["cohort_number"] or \
            payload.get("cohort_number") != expected["cohort_number"]:
        yield (f"the decision names cohort {payload.get('cohort_number')} (evidence: cohort "
               f"{signed['cohort_number']}); the cohort due was {expected['cohort_number']}")
    if signed["recommendation"] != expected["recommendation"]:
        yield (f"signed recommendation {_recommendation(signed)}; recomputed "
               f"{_recommendation(expected)}")
    for name in ("dlts", "evaluable"):
        if signed[name] != expected[name]:
            yield f"signed {name} {signed[name]}; recomputed {expected[name]}"
    if signed["entries"] != expected["entries"]:
        yield _entry_differences(signed["entries"], expected["entries"])
    chosen = {k: payload.get(k) for k in ("action", "next_level", "mtd_level")}
    if overridden:
        engine = payload.get("engine_recommendation")
        shown = None if not isinstance(engine, Mapping) else {k: engine.get(k) for k in chosen}
        if shown != expected["recommendation"]:
            yield (f"the override records the engine's recommendation as {_step(shown)}; "
                   f"recomputed {_recommendation(expected)}")
    elif chosen != expected["recommendation"]:
        yield (f"decided {_step(chosen)} without an override; the engine recommends "
               f"{_recommendation(expected)}")


def _entry_differences(signed: list[dict[str, Any]], expected: list[dict[str, Any]]) -> str:
    signed_keys = {_key(e) for e in signed}
    expected_keys = {_key(e) for e in expected}
    missing = [e for e in expected if _key(e) not in signed_keys]
    extra = [e for e in signed if _key(e) not in expected_keys]
    parts = []
    if missing:
        parts.append(f"missing {describe_entries(missing)}")
    if extra:
        parts.append(f"not counted by the ledger {describe_entries(extra)}")
    changed = "; ".join(parts) or "the same entries, described differently"
    return f"signed evidence entries differ from the ledger's: {changed}"


def _key(entry: Mapping[str, Any]) -> tuple[Any, ...]:
    return (entry["position"], entry["entry_hash"], entry["type"], entry["patient"])


def _recommendation(evidence: Mapping[str, Any]) -> str:
    counts = f"{evidence['dlts']} DLT(s) in {evidence['evaluable']} evaluable"
    return f"{_step(evidence['recommendation'])} ({counts})"


def _step(step: Mapping[str, Any] | None) -> str:
    if step is None:
        return "no engine decision (path overridden)"
    if step.get("action") == "stop":
        return f"stop, MTD level {step.get('mtd_level')}"
    return f"{step.get('action')} to level {step.get('next_level')}"


def _override(statement: dict[str, Any]) -> Override:
    payload = statement["payload"]
    actor = statement["actor"]
    engine = payload.get("engine_recommendation")
    return Override(
        position=int(statement["position"]),
        trial_id=str(statement["aggregate_id"]),
        cohort_number=payload.get("cohort_number"),
        decision=_step({k: payload.get(k) for k in ("action", "next_level", "mtd_level")}),
        engine_recommendation=_step(engine if isinstance(engine, Mapping) else None),
        override_reason=str(payload.get("override_reason")),
        signer=str(actor["user_id"]),
        signer_name=str(actor["name"]),
        signer_role=str(actor["role"]),
        recorded_at=str(statement["recorded_at"]),
    )


def _event(row: Row, statement: dict[str, Any], mapper: EntryMapper) -> Any:
    """The row's domain event from the statement already parsed (each entry is decoded
    once in this pass, not again by the mapper)."""
    stored = StoredEvent(UUID(row.originator_id), row.originator_version, row.topic, row.state)
    return mapper.event_of_statement(stored, statement)


def _finding(row: Row, statement: Mapping[str, Any], detail: str) -> Finding:
    return Finding(CHECK, detail, int(statement["position"]), row.notification_id,
                   row.originator_id, row.originator_version, row.topic)
