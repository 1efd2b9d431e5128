"""Patient snapshots: a record loaded from its snapshot and the entries after it is the record
its entries give, for every event type a patient record holds; a snapshot that is not the
signed record's (its state edited, bound to another entry, signed by anyone but the covered
entry's signer) is ignored and the record replayed; `verify` does not read them.

In-process, one ledger per module and backend (the snapshot interval lowered so a few short
batch files make snapshots); `verify` once, as `trialctl`.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
import sqlalchemy

from benchmarks.batch_entry import PATIENTS, Site, as_file, open_site, run_file
from benchmarks.workload import open_bench_ledger
from tests.conftest import BACKENDS, new_ledger, trialctl
from tests.demo_ledgers import demo_environment
from tests.ledgers import engine_for
from tests.test_read_every_event import DEMO_TRIAL, SECOND, _second_trial
from trialctl.domain.facts import FollowUp, OffStudy, TreatmentWithdrawal
from trialctl.domain.patient import Patient, patient_aggregate_id
from trialctl.ledger import snapshots
from trialctl.ledger.application import TrialLedger, UnlockedUser
from trialctl.ledger.demo import demo_password
from trialctl.ledger.entry import entry_hash
from trialctl.ledger.history import project_events
from trialctl.ledger.location import resolve_ledger
from trialctl.ledger.requests import PatientStep
from trialctl.ledger.reviews import QueryStep, ReviewActions
from trialctl.ledger.snapshots import (
    SNAPSHOTS_TABLE,
    kept_state,
    restored,
    same,
    state_bytes,
    statement,
)
from trialctl.ledger.trials import TrialActions

INTERVAL = 10
PATIENT_EVENTS = "trialctl.Patient."


@pytest.fixture(scope="module", params=BACKENDS)
def site(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[tuple[str, Site, UnlockedUser, Path]]:
    """Three enrolled patients after three follow-up files, each on a freshly opened
    ledger as `record --from` runs, then one short file that makes no new snapshot."""
    directory = tmp_path_factory.mktemp("snapshots")
    databases = new_ledger(request.param, directory / "ledger.sqlite")
    url = next(databases)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TRIALCTL_HOME", str(directory / "home"))
        patch.setattr(snapshots, "INTERVAL", INTERVAL)
        app, admin, _ = open_bench_ledger(url)
        bench = open_site(app, admin)
        app.close()
        for lines in (36, 36, 36, 12):  # 12, then 4, entries a patient per file
            fresh = TrialLedger(resolve_ledger(url))
            assert run_file(fresh, bench.signer, as_file(bench.follow_up.lines(lines))).written
            fresh.close()
        yield url, bench, admin, directory
    databases.close()


def _ledger(url: str) -> TrialLedger:
    return TrialLedger(resolve_ledger(url))


def _patient_ids(ledger: TrialLedger) -> list[UUID]:
    trial = TrialActions(ledger).trial(None)
    return [patient_aggregate_id(trial.id, p) for p in PATIENTS]


def _replayed(ledger: TrialLedger, aggregate_id: UUID) -> Patient:
    patient: Patient = ledger.repository.get(aggregate_id, projector_func=project_events)
    return patient


def _sql(url: str, statement_text: str, **params: object) -> list[Any]:
    engine = engine_for(url)
    try:
        with engine.begin() as connection:
            result = connection.execute(sqlalchemy.text(statement_text), params)
            return list(result) if result.returns_rows else []
    finally:
        engine.dispose()


def test_a_record_loads_from_its_snapshot_as_its_entries_leave_it(
    site: tuple[str, Site, UnlockedUser, Path]
) -> None:
    url = site[0]
    ledger = _ledger(url)
    try:
        for aggregate_id in _patient_ids(ledger):
            replayed = _replayed(ledger, aggregate_id)
            loaded = ledger.patient_snapshots.load(aggregate_id)
            assert loaded is not None
            (covered,) = _sql(url, f"SELECT max(aggregate_version) FROM {SNAPSHOTS_TABLE} "
                                   "WHERE aggregate_id = :id", id=str(aggregate_id))[0]
            assert covered < replayed.version  # the last file's entries came after it
            assert replayed.version - covered < INTERVAL
            assert same(kept_state(loaded), kept_state(replayed))
            assert loaded.labs() == replayed.labs()
            assert loaded.summary(TrialActions(ledger).trial(None).protocol) == \
                replayed.summary(TrialActions(ledger).trial(None).protocol)
    finally:
        ledger.close()


def _tampered(url: str, aggregate_id: UUID, **columns: str) -> None:
    """The record's newest snapshot row with some columns changed."""
    sets = ", ".join(f"{name} = :{name}" for name in columns)
    _sql(url, f"UPDATE {SNAPSHOTS_TABLE} SET {sets} WHERE aggregate_id = :id AND "
              f"aggregate_version = (SELECT max(aggregate_version) FROM {SNAPSHOTS_TABLE} "
              "WHERE aggregate_id = :id)", id=str(aggregate_id), **columns)


def _newest(url: str, aggregate_id: UUID) -> tuple[int, str, str, str, str]:
    rows = _sql(url, f"SELECT aggregate_version, entry_hash, key_id, signature, state FROM "
                     f"{SNAPSHOTS_TABLE} WHERE aggregate_id = :id "
                     "ORDER BY aggregate_version DESC", id=str(aggregate_id))
    version, digest, key_id, signature, state = rows[0]
    return int(version), digest, key_id, signature, state


def test_a_snapshot_that_is_not_the_signed_record_is_ignored(
    site: tuple[str, Site, UnlockedUser, Path]
) -> None:
    url, bench, admin, directory = site
    ledger = _ledger(url)
    ids = _patient_ids(ledger)
    ledger.close()
    first, second, third = ids
    state = _newest(url, first)[4]
    # Its state edited: every lab's value, as someone with the database but no key might.
    assert '"1800"' in state
    _tampered(url, first, state=state.replace('"1800"', '"400"'))
    # Bound to another entry: the hash of the version before, the signature left as it was.
    version2 = _newest(url, second)[0]
    ledger = _ledger(url)
    before = ledger.signed_recorder.select_events(second, gt=version2 - 2, lte=version2 - 1)
    ledger.close()
    _tampered(url, second, entry_hash=entry_hash(before[0].state))
    # Signed, over the right statement, by a key that did not sign the covered entry.
    version3, digest3, _, _, state3 = _newest(url, third)
    forged = base64.b64encode(admin.keys.sign(statement(
        third, version3, digest3, state3.encode("utf-8")))).decode("ascii")
    _tampered(url, third, key_id=admin.keys.key_id, signature=forged)

    ledger = _ledger(url)
    try:
        for aggregate_id in ids:
            assert ledger.patient_snapshots.load(aggregate_id) is None
            # What a command sees is the record as its signed entries give it.
            loaded = TrialActions(ledger)._load(aggregate_id)
            assert same(kept_state(loaded), kept_state(_replayed(ledger, aggregate_id)))
        lab = TrialActions(ledger).patient(TrialActions(ledger).trial(None), "P001").labs()
        assert {x["value"] for x in lab if x["test"] == "anc"} == {"1800"}
    finally:
        ledger.close()

    # verify reads the entries only: the edited snapshots are no finding.
    env = {"TRIALCTL_HOME": str(directory / "home"), "TRIALCTL_LEDGER": url}
    result = trialctl("verify", env=env)
    assert result.returncode == 0, result

    # A batch written after this takes fresh snapshots the next load trusts again.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(snapshots, "INTERVAL", INTERVAL)
        fresh = _ledger(url)
        assert run_file(fresh, bench.signer, as_file(bench.follow_up.lines(12))).written
        fresh.close()
    ledger = _ledger(url)
    try:
        for aggregate_id in ids:
            loaded_again = ledger.patient_snapshots.load(aggregate_id)
            assert loaded_again is not None
            assert same(kept_state(loaded_again), kept_state(_replayed(ledger, aggregate_id)))
    finally:
        ledger.close()


@pytest.fixture(scope="module")
def every_patient_event(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrialLedger]:
    """The demo (SQLite), plus a second trial with a co-signed DLT rule override, and the
    patient event types the demo lacks: a withdrawal from treatment, off study, a follow-up
    contact and a query reopened."""
    directory = tmp_path_factory.mktemp("every-patient-event")
    url = str(directory / "demo.sqlite")
    env = demo_environment(url, directory)
    _second_trial(env, directory)
    ledger = TrialLedger(resolve_ledger(url), keys_home=Path(env["TRIALCTL_HOME"]) / "keys")
    mona = ledger.unlock("mona", demo_password("mona"))
    yesterday = (date.today() - timedelta(days=1)).isoformat()
    actions = ReviewActions(ledger)
    now = datetime.now(UTC)
    for patient, fact in (
        ("P002", TreatmentWithdrawal(withdrawn_on=yesterday, reason="prefers another")),
        ("P003", OffStudy(off_on=yesterday, reason="progression")),
        ("P003", FollowUp(contacted_on=yesterday, status="alive", text=None)),
    ):
        actions.perform(PatientStep(SECOND, patient, fact), mona, now)
    actions.perform(QueryStep(DEMO_TRIAL, "Q1", "reopen", "Please attach the report", "mona"),
                    mona, now)
    yield ledger
    ledger.close()


def test_every_patient_event_type_leaves_a_state_its_snapshot_gives_back(
    every_patient_event: TrialLedger,
) -> None:
    """For each patient, the state after each of its entries: encoded and restored, then
    brought on by the entries after it, it is the record the entries alone give."""
    ledger = every_patient_event
    events: dict[UUID, list[Any]] = {}
    for notification in ledger.signed_recorder.select_notifications(start=None,
                                                                    limit=1_000_000):
        event = ledger.mapper.to_domain_event(notification)
        if type(event).TOPIC.startswith(PATIENT_EVENTS):
            events.setdefault(event.originator_id, []).append(event)
    seen = {type(e).TOPIC for record in events.values() for e in record}
    every = {cls.TOPIC for cls in vars(Patient).values()
             if isinstance(cls, type) and str(getattr(cls, "TOPIC", "")).startswith(
                 PATIENT_EVENTS) and cls is not Patient.Created}  # Created is never written
    assert seen == every, sorted(every - seen)
    for record in events.values():
        whole = project_events(None, record)
        for upto in range(1, len(record) + 1):
            at = project_events(None, record[:upto])
            back = restored(state_bytes(at))
            assert same(kept_state(back), kept_state(at))
            rest = project_events(back, record[upto:])
            assert same(kept_state(rest), kept_state(whole)), type(record[upto - 1]).TOPIC


def test_a_record_whose_state_was_read_snapshots_as_one_never_read(
    every_patient_event: TrialLedger,
) -> None:
    """A render keeps a patient's derived reads (outcome, judged DLTs, first dose days, lab
    grades) on the record; a snapshot never holds them, so it is the same bytes whether or
    not the record was read first."""
    records = TrialActions(every_patient_event)
    protocols = {str(trial.id): trial.protocol
                 for trial in (records.trial(p) for p in records.trial_ids())}
    events: dict[UUID, list[Any]] = {}
    for notification in every_patient_event.signed_recorder.select_notifications(
            start=None, limit=1_000_000):
        event = every_patient_event.mapper.to_domain_event(notification)
        if type(event).TOPIC.startswith(PATIENT_EVENTS):
            events.setdefault(event.originator_id, []).append(event)
    assert events
    for record in events.values():
        unread = project_events(None, list(record))
        read = project_events(None, list(record))
        read.state(protocols[read.trial_id])
        read.outcome(protocols[read.trial_id])
        assert state_bytes(read) == state_bytes(unread)


def _patient_with(**attributes: Any) -> Patient:
    patient: Patient = object.__new__(Patient)
    patient.__dict__.update(attributes)
    return patient


def test_a_state_of_every_kept_type_is_written_as_compact_json_and_read_back() -> None:
    """Awkward text (quotes, controls, non-ASCII, astral), every tagged type, and an integer
    beyond 64 bits (which orjson refuses, so the standard encoder writes it): the bytes
    are the compact JSON `json.dumps` gives, and restoring them gives the state back."""
    import json

    text = 'quote " backslash \\ tab \t nul \x00 del \x7f é 漢 😀 \u2028'
    state = {
        "_id": UUID(int=7), "text": text, "none": None, "flags": [True, False, 0, 1],
        "nested": {"a": (1, "b"), (2, 3): {"x"}, "f": frozenset({"y"})},
        "when": datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC), "day": date(2026, 1, 2),
        "amount": snapshots.Decimal("-1.50E+3"),
    }
    for big in (0, 2**70):
        data = state_bytes(_patient_with(**state, big=big))
        tree = snapshots.encode({**state, "big": big})
        assert data == json.dumps(tree, ensure_ascii=False, separators=(",", ":")).encode()
        assert same(kept_state(restored(data)), {**state, "big": big})


@pytest.mark.parametrize("data", [
    b'{"D":[["a",1,2]]}', b'{"D":[["a"]]}', b'{"D":["ab"]}', b'{"D":[["a",1],"ab"]}',
    b'{"D":"ab"}', b'{"dt":[1]}', b'{"Q":[]}', b'{"L":[],"T":[]}',
])
def test_a_malformed_snapshot_value_is_refused(data: bytes) -> None:
    with pytest.raises(snapshots.Unkeepable):
        snapshots.decode(data)
