"""Keeping the read models: eventsourcing's `Projection` over the signed entries, pulled after
the tracking position (SQLite cannot push notifications) and applied in batches, each batch's
rows written in one transaction with its tracking position.

The trial and patient rows are computed by replaying the entries into the same Trial and
Patient aggregates the rules guard, and rendered by the same `Trial.status()` that `status`
uses: there is one implementation of "what is the cohort's state". The trial's counts are
derived from its patients' facts, so a patient entry (a DLT, a course, a correction)
rewrites the trial's rows too.

An aggregate's rows depend only on its own entries (and a patient's on its trial's fixed
protocol), so within one batch only the state after the last entry touching a trial or a
patient reaches the tables: those rows are rendered once, when the batch is written, with
that entry's position. Rendering them after every entry (as one `process_event` does) gives
the same rows at many times the cost, since a trial's status reads all its patients' facts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Notification, Tracking
from eventsourcing.projection import Projection

from trialctl.domain.patient import Patient, patient_aggregate_id
from trialctl.domain.trial import Trial
from trialctl.ledger.application import TrialLedger
from trialctl.ledger.audit import audit_row
from trialctl.ledger.decisions import DECISION_TYPES, decision_signer
from trialctl.ledger.entry import MalformedEntryError, parse_entry
from trialctl.ledger.errors import LedgerError
from trialctl.ledger.history import advanced, advanced_by
from trialctl.ledger.mapper import EntryMapper
from trialctl.ledger.snapshots import no_collection
from trialctl.ledger.views import (
    VIEW_TABLES,
    VIEWS_NAME,
    TrialViews,
    ViewRows,
    audit_view,
    cohorts_view,
    decisions_view,
    dumps,
    patients_view,
    queries_view,
    trials_view,
)

# Entries per batch: each trial and patient a batch touches is rendered once, so a longer
# batch renders each less often; its rows are held in memory until written.
BATCH = 2000
TRIAL_EVENTS = "trialctl.Trial."
PATIENT_EVENTS = "trialctl.Patient."

Progress = Callable[[int, int], None]


class TrialProjection(Projection[TrialViews]):
    name = VIEWS_NAME

    def __init__(self, view: TrialViews, ledger: TrialLedger) -> None:
        super().__init__(view)
        self.ledger = ledger
        assert isinstance(ledger.mapper, EntryMapper)  # what TrialLedger.construct_mapper makes
        self.mapper = ledger.mapper
        self.aggregates: dict[UUID, Any] = {}
        # Trials and patients whose rows the entries since the last `flush` changed, each
        # with the position of the last such entry.
        self._trials_changed: dict[UUID, int] = {}
        self._patients_changed: dict[UUID, int] = {}
        # A patient names its trial as text; each of its entries changes the trial's rows.
        self._trial_ids: dict[str, UUID] = {}

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        """The library's entry point (what a `ProjectionRunner` calls): one domain event and
        its tracking position, applied with its rows in one transaction. The rows need what
        only the signed entry holds (position, signer, meaning), so the entry is read at the
        tracked notification id."""
        rows = ViewRows()
        self.rows_for(self._signed_entry(domain_event, tracking), rows)
        self.flush(rows)
        with self.view.transaction(commit=True) as session:
            self.view.write(session, rows, tracking)

    def _signed_entry(self, domain_event: Any, tracking: Tracking) -> Notification:
        found = self.ledger.signed_recorder.select_notifications(
            start=tracking.notification_id, limit=1
        )
        if (
            not found
            or found[0].id != tracking.notification_id
            or UUID(str(found[0].originator_id)) != domain_event.originator_id
            or found[0].originator_version != domain_event.originator_version
        ):
            raise LedgerError(
                f"notification {tracking.notification_id} is not the entry of "
                f"{domain_event.originator_id} v{domain_event.originator_version}"
            )
        return found[0]

    def rows_for(self, notification: Notification, rows: ViewRows) -> None:
        """The audit and decision rows of one signed entry; the trial and patient rows it
        changes are noted, and rendered by `flush`."""
        try:
            statement = parse_entry(notification.state).statement
        except MalformedEntryError as e:
            raise LedgerError(
                f"entry {notification.id} cannot be read ({e}); run 'trialctl verify'"
            ) from e
        aggregate = None
        if statement["type"].startswith((TRIAL_EVENTS, PATIENT_EVENTS)):
            aggregate = self._advance(notification, statement)
        patient_id = statement["payload"].get("patient_id")
        if isinstance(aggregate, Patient):
            patient_id = aggregate.patient_id
        rows.put(audit_view, {
            "position": statement["position"],
            "recorded_at": statement["recorded_at"],
            "user_id": statement["actor"]["user_id"],
            "type": statement["type"],
            "aggregate_id": statement["aggregate_id"],
            "patient_id": patient_id if isinstance(patient_id, str) else None,
            "row": dumps(audit_row(statement)),
        })
        if statement["type"] in DECISION_TYPES:
            rows.put(decisions_view, {
                "trial_id": statement["aggregate_id"],
                "cohort_number": statement["payload"]["cohort_number"],
                "signed_by": dumps(decision_signer(statement)),
            })
        position = statement["position"]
        if isinstance(aggregate, Trial):
            self._trials_changed[aggregate.id] = position
        elif isinstance(aggregate, Patient):
            self._patients_changed[aggregate.id] = position
            self._trials_changed[self._trial_id(aggregate.trial_id)] = position

    def _trial_id(self, text: str) -> UUID:
        found = self._trial_ids.get(text)
        if found is None:
            found = self._trial_ids[text] = UUID(text)
        return found

    def flush(self, rows: ViewRows) -> None:
        """The trial, cohort and patient rows the entries since the last flush changed, as
        their last entries left them."""
        for trial_id, position in self._trials_changed.items():
            self._trial_rows(self._current(trial_id, position), position, rows)
        for patient_id, position in self._patients_changed.items():
            patient = self.aggregates[patient_id]
            trial = self._current(self._trial_id(patient.trial_id), position)
            rows.put(patients_view, {
                "aggregate_id": str(patient.id), "trial_id": patient.trial_id,
                "patient_id": patient.patient_id, "status": patient.status,
                "level": patient.level, "summary": dumps(patient.state(trial.protocol)),
                "position": position,
            })
            for query_id, query in patient.queries.items():
                rows.put(queries_view, {
                    "aggregate_id": str(patient.id), "query_id": query_id,
                    "trial_id": patient.trial_id, "patient_id": patient.patient_id,
                    "record": query["record_position"], "state": query["state"],
                    "raised_by": query["raised_by"], "raised_at": query["raised_at"],
                    "closed_at": query["closed_at"], "text": query["text"],
                })
        self._trials_changed.clear()
        self._patients_changed.clear()

    def _current(self, aggregate_id: UUID, position: int) -> Any:
        """An aggregate as the entries up to `position` leave it (from the cache, or, not
        met yet in this run, replayed from its own entries up to there)."""
        cached = self.aggregates.get(aggregate_id)
        if cached is not None:
            return cached
        entries = []
        for stored in self.ledger.signed_recorder.select_events(aggregate_id):
            if parse_entry(stored.state).statement["position"] > position:
                break  # an aggregate's entries only move forward in position
            entries.append(stored)
        aggregate = advanced(None, entries, self.ledger.mapper)
        self.aggregates[aggregate_id] = aggregate
        return aggregate

    def _trial_rows(self, trial: Trial, position: int, rows: ViewRows) -> None:
        roster = {
            patient_id: self._current(patient_aggregate_id(trial.id, patient_id), position)
            for cohort in trial.cohorts
            for patient_id in cohort["patients"]
        }
        status = trial.status(roster)
        rows.put(trials_view, {
            "trial_id": str(trial.id), "protocol_id": trial.protocol_id,
            "stopped": trial.stopped, "mtd_level": trial.mtd_level,
            "status": dumps(status), "position": position,
        })
        for cohort in status["cohorts"]:
            rows.put(cohorts_view, {
                "trial_id": str(trial.id), "number": cohort["number"],
                "level": cohort["level"], "patients": dumps(cohort["patients"]),
                "evaluated": cohort["evaluated"], "dlts": cohort["dlts"],
            })

    def _advance(self, notification: Notification, statement: dict[str, Any]) -> Any:
        """The entry's aggregate just after it: the cached state moved one event on."""
        aggregate_id = _uuid(notification.originator_id)
        version = notification.originator_version
        aggregate = self.aggregates.get(aggregate_id)
        if aggregate is None or aggregate.version != version - 1:
            aggregate = (
                None if version == 1
                else self.ledger.repository.get(aggregate_id, version=version - 1)
            )
        event = self.mapper.event_of_statement(notification, statement)
        aggregate = advanced_by(aggregate, [event])
        self.aggregates[aggregate_id] = aggregate
        return aggregate


def _uuid(value: Any) -> UUID:
    # The recorder gives a UUID already; parsing its text again cost a rebuild more than
    # a tenth of its own work.
    return value if type(value) is UUID else UUID(str(value))


def open_views(ledger: TrialLedger) -> TrialViews:
    views = TrialViews(ledger.signed_recorder.datastore)
    views.create_table()
    return views


def catch_up(
    ledger: TrialLedger,
    views: TrialViews | None = None,
    progress: Progress | None = None,
    stop: int | None = None,
) -> TrialViews:
    """Apply every entry after the tracking position (up to notification `stop`); read
    models whose position and rows disagree are rebuilt first."""
    views = views or TrialViews(ledger.signed_recorder.datastore)
    if not views_agree(ledger, views):
        return _rebuilt(ledger, views, progress, stop)
    views.create_table()
    return _apply_new_entries(ledger, views, progress, stop)


def rebuild(ledger: TrialLedger, progress: Progress | None = None) -> TrialViews:
    """Drop the read models and build them again from the first entry."""
    return _rebuilt(ledger, TrialViews(ledger.signed_recorder.datastore), progress, None)


def _rebuilt(
    ledger: TrialLedger, views: TrialViews, progress: Progress | None, stop: int | None
) -> TrialViews:
    # One transaction: the batches' own transactions join it, so a rebuild cut short (a
    # crash, kill -9) leaves the read models as they were, never dropped but still tracked.
    # Nobody sees a batch before the whole commits, so the trial and patient rows wait
    # until the last entry: each is rendered once, not once per batch it appears in.
    with views.transaction(commit=True) as session:
        views.replace_tables(session)
        _apply_new_entries(ledger, views, progress, stop, render_at_end=True)
        views.create_indexes(session)
    return views


def views_agree(ledger: TrialLedger, views: TrialViews) -> bool:
    """Whether the tracking position and the rows tell the same story: every table there
    (or none yet), and audit rows from the first entry's to the tracked one's. A rebuild by
    an older trialctl, cut short, left the position with some tables dropped.

    Only the ends of the audit rows are read, so every read command costs the same on a
    ledger of any size. Rows deleted between them by hand are not seen here; `trialctl
    verify --projections` finds them (the read models differ from a replay) and
    `projections rebuild` restores them."""
    present = views.existing_tables()
    if not present:
        return True  # never built: catching up builds them
    if present != {table.name for table in views.every_table}:
        return False
    with views.transaction(commit=False):
        tracked = views.position()
        ends = views.audit_ends()
        if tracked is None:
            return ends is None
        found = ledger.signed_recorder.entries_for([tracked])
    return bool(found) and ends == (0, found[0][0])


def _apply_new_entries(
    ledger: TrialLedger, views: TrialViews, progress: Progress | None, stop: int | None,
    render_at_end: bool = False,
) -> TrialViews:
    """Fold the entries after the tracking position into the read models, a batch per
    transaction with its tracking position. With `render_at_end` (inside one enclosing
    transaction only) the trial and patient rows are rendered once, after the last batch."""
    with no_collection():
        return _fold_entries(ledger, views, progress, stop, render_at_end)


def _fold_entries(
    ledger: TrialLedger, views: TrialViews, progress: Progress | None, stop: int | None,
    render_at_end: bool,
) -> TrialViews:
    # Called with the cyclic collector paused: the records kept in memory grow with the
    # entries, and collections over them took a tenth of a rebuild, for a few hundred
    # cyclic objects in twenty thousand entries.
    projection = TrialProjection(views, ledger)
    recorder = ledger.signed_recorder
    position = views.position()
    total = recorder.max_notification_id() or 0
    while True:
        notifications = recorder.select_notifications(
            start=position, limit=BATCH, stop=stop, inclusive_of_start=position is None
        )
        if not notifications:
            break
        rows = ViewRows()
        for notification in notifications:
            projection.rows_for(notification, rows)
        if not render_at_end:
            projection.flush(rows)
        with views.transaction(commit=True) as session:
            views.write(session, rows, Tracking(VIEWS_NAME, notifications[-1].id))
        position = notifications[-1].id
        if progress is not None:
            progress(position, total)
    if render_at_end:
        rows = ViewRows()
        projection.flush(rows)
        with views.transaction(commit=True) as session:
            views.write_rows(session, rows)
    return views


def expected_rows(ledger: TrialLedger) -> dict[str, list[dict[str, Any]]]:
    """What the read models must hold: every entry replayed into rows in memory."""
    projection = TrialProjection(TrialViews(ledger.signed_recorder.datastore), ledger)
    rows = ViewRows()
    position = None
    while True:
        notifications = ledger.signed_recorder.select_notifications(
            start=position, limit=BATCH, inclusive_of_start=position is None
        )
        if not notifications:
            break
        for notification in notifications:
            projection.rows_for(notification, rows)
        position = notifications[-1].id
    projection.flush(rows)  # each trial and patient as its last entry left it
    tables: dict[str, list[dict[str, Any]]] = {}
    for table, _key, values in rows.items():
        tables.setdefault(table.name, []).append(values)
    for table_rows in tables.values():
        table_rows.sort(key=_sort_key)
    return tables


def _sort_key(row: dict[str, Any]) -> tuple[str, ...]:
    return tuple(str(row[k]) for k in sorted(row))


def compare_with_replay(ledger: TrialLedger, views: TrialViews) -> str | None:
    """The first read-model row that differs from a replay of the entries, or None."""
    expected = expected_rows(ledger)
    for table in VIEW_TABLES:
        stored = sorted(views.table_rows(table), key=_sort_key)
        wanted = expected.get(table.name, [])
        for index in range(max(len(stored), len(wanted))):
            have = stored[index] if index < len(stored) else None
            want = wanted[index] if index < len(wanted) else None
            if have != want:
                return f"{table.name} row {index}: read model has {have}, replay gives {want}"
    return None
