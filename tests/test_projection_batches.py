"""Read models rendered once per batch: a trial's and a patient's rows are rendered as the
last entry of a batch touching them left them, not after every entry. The rows must be the
same as rendering them after every entry (the one-event-at-a-time reading of `process_event`),
on the demo and on a generated ledger of interleaved trials, for a rebuild and for a catch-up
started midway with nothing cached (whatever the batch size), and every trial's status must
equal what `replay` rebuilds from the entries alone.

Why one module-scoped ledger of each kind: building them costs most of this module's time;
each test works on its own copy of the file.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from benchmarks.generator import Size, generate
from tests.demo_ledgers import _built_on_sqlite
from tests.ledgers import kept_status
from trialctl.ledger import projection
from trialctl.ledger.application import TrialLedger, open_ledger
from trialctl.ledger.decisions import shown_status
from trialctl.ledger.projection import (
    TrialProjection,
    catch_up,
    compare_with_replay,
    rebuild,
)
from trialctl.ledger.replay import replay_trial
from trialctl.ledger.trials import TrialActions
from trialctl.ledger.views import VIEW_TABLES, TrialViews, ViewRows

Tables = dict[str, list[dict[str, Any]]]

# A small generated ledger: two trials whose entries interleave, one course each.
GENERATED = Size(150, courses=1, block_trials=2, rotations=1)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The demo and a generated ledger, each as a SQLite file to copy."""
    generated = tmp_path_factory.mktemp("generated") / "generated.sqlite"
    generate(str(generated), GENERATED, generated.parent / "keys")
    return {"demo": _built_on_sqlite() / "demo.sqlite", "generated": generated}


@pytest.fixture(scope="module")
def entry_by_entry(built: dict[str, Path]) -> dict[str, Tables]:
    """Each ledger's rows rendered after every entry, in memory (the reference)."""
    expected = {}
    for name, path in built.items():
        app = open_ledger(str(path))
        try:
            expected[name] = _rendered_after_every_entry(app)
        finally:
            app.close()
    return expected


def _rendered_after_every_entry(app: TrialLedger) -> Tables:
    reader = TrialProjection(TrialViews(app.signed_recorder.datastore), app)
    rows = ViewRows()
    for notification in app.signed_recorder.select_notifications(start=None, limit=100_000):
        reader.rows_for(notification, rows)
        reader.flush(rows)
    tables: Tables = {table.name: [] for table in VIEW_TABLES}
    for table, _key, values in rows.items():
        tables[table.name].append(values)
    for table in VIEW_TABLES:
        key = [column.name for column in table.primary_key.columns]
        tables[table.name].sort(key=lambda row: tuple(row[k] for k in key))
    return tables


def _stored(views: TrialViews) -> Tables:
    return {table.name: views.table_rows(table) for table in VIEW_TABLES}


def _copy(built: dict[str, Path], name: str, tmp_path: Path) -> TrialLedger:
    path = tmp_path / f"{name}.sqlite"
    shutil.copyfile(built[name], path)
    return open_ledger(str(path))


def _assert_status_equals_replay(app: TrialLedger, views: TrialViews) -> None:
    records = TrialActions(app)
    last = app.signed_recorder.tree_size() - 1
    trial_ids = records.trial_ids()
    assert trial_ids
    for protocol_id in trial_ids:
        trial = records.trial(protocol_id)
        status = views.trial_status(protocol_id)
        assert status is not None, protocol_id
        shown = shown_status(status, views, str(trial.id))
        assert kept_status(replay_trial(records, protocol_id, last, None)) == shown, protocol_id


@pytest.mark.parametrize("name", ["demo", "generated"])
@pytest.mark.parametrize("batch", [projection.BATCH, 7], ids=["batch-default", "batch-7"])
def test_a_rebuild_equals_rendering_after_every_entry(
    built: dict[str, Path], entry_by_entry: dict[str, Tables], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, name: str, batch: int,
) -> None:
    monkeypatch.setattr(projection, "BATCH", batch)
    app = _copy(built, name, tmp_path)
    try:
        views = rebuild(app)
        assert _stored(views) == entry_by_entry[name]
        assert compare_with_replay(app, views) is None
        _assert_status_equals_replay(app, views)
    finally:
        app.close()


@pytest.mark.parametrize("name", ["demo", "generated"])
@pytest.mark.parametrize("share", [0.3, 0.7], ids=["at-30%", "at-70%"])
def test_a_catch_up_started_midway_equals_rendering_after_every_entry(
    built: dict[str, Path], entry_by_entry: dict[str, Tables], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, name: str, share: float,
) -> None:
    monkeypatch.setattr(projection, "BATCH", 11)
    app = _copy(built, name, tmp_path)
    try:
        last = app.signed_recorder.max_notification_id()
        assert last is not None
        catch_up(app, stop=int(last * share))
        app.close()
        # A new process: nothing cached, so the aggregates the rest touches are replayed
        # from their entries up to where the read models stand.
        app = open_ledger(str(tmp_path / f"{name}.sqlite"))
        views = catch_up(app)
        assert _stored(views) == entry_by_entry[name]
        _assert_status_equals_replay(app, views)
    finally:
        app.close()


@pytest.mark.parametrize("name", ["demo", "generated"])
def test_a_rebuild_equals_the_read_models_kept_up_entry_by_entry(
    built: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str,
) -> None:
    """The read models as commands keep them (a catch-up after every few entries, in one
    process, so the records kept in memory move on between renders) and as a rebuild
    makes them: the same rows, and the same tables and indexes."""
    monkeypatch.setattr(projection, "BATCH", 5)
    app = _copy(built, name, tmp_path)
    try:
        views = TrialViews(app.signed_recorder.datastore)
        views.drop()
        last = app.signed_recorder.max_notification_id()
        assert last is not None
        for stop in range(3, last + 3, 3):
            catch_up(app, views, stop=min(stop, last))
        kept_up, kept_schema = _stored(views), _schema(app)
        rebuild(app)
        assert _stored(views) == kept_up
        assert _schema(app) == kept_schema
    finally:
        app.close()


def _schema(app: TrialLedger) -> list[tuple[str, ...]]:
    """The read models' tables and indexes as the database declares them."""
    engine = app.signed_recorder.datastore.engine
    with engine.connect() as connection:
        found = connection.exec_driver_sql(
            "SELECT type, name, tbl_name, sql FROM sqlite_master "
            "WHERE name LIKE 'trialctl_view%' ORDER BY name").all()
    return [tuple(row) for row in found]
