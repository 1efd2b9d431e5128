"""Measure trialctl against baselines taken in the same run, and write benchmarks/results.md.

    .venv/bin/python benchmarks/run.py [--events N] [--postgres-url URL]

Figures, each next to a baseline measured on this machine in this run (the machine may be
shared, so only ratios from the same run mean anything):

1. signed appends per second through `TrialLedger.record`, against the bare eventsourcing
   `Application` writing the same events unsigned through eventsourcing-sqlalchemy on the
   same backend (and, on SQLite, through eventsourcing's own sqlite recorder);
2. `verify_ledger` entries per second, against the raw Ed25519 verification rate of
   `cryptography` on one core times `os.cpu_count()`;
3. `trialctl --help` start-up time against `python -c pass`, and whether it loads the
   database stack;
4. cProfile of the append loop and of verify's sequential part.

SQLite always runs (temporary files); PostgreSQL runs when a URL is given or
TRIALCTL_TEST_DATABASE_URL is set, in a fresh database that is dropped afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import importlib.metadata
import json
import os
import platform
import pstats
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import sqlalchemy
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

import trialctl.ledger.verify as verify_module
from trialctl.ledger.application import TrialLedger, UnlockedUser
from trialctl.ledger.authority import STAFF, Meaning, Permission, register_permissions
from trialctl.ledger.entry import parse_entry
from trialctl.ledger.location import resolve_ledger
from trialctl.ledger.verify import verify_ledger

POSTGRES_URL_VARIABLE = "TRIALCTL_TEST_DATABASE_URL"
RESULTS_FILE = Path(__file__).resolve().parent / "results.md"
REPO_ROOT = Path(__file__).resolve().parent.parent
OWN_PACKAGES = ("ledger", "domain", "cli")
DATABASE_STACK = ("sqlalchemy", "eventsourcing_sqlalchemy")
REPORTED_MODULES = (*DATABASE_STACK, "eventsourcing", "psycopg", "sqlite3", "cryptography")
LIBRARIES = (
    "eventsourcing", "eventsourcing-sqlalchemy", "SQLAlchemy", "cryptography", "psycopg",
    "rfc8785", "typer", "rich",
)
APPEND_TARGET = 0.6
VERIFY_TARGET = 0.7
ADMIN_ID = "alice"
ADMIN_PASSWORD = "benchmark-password"  # a throwaway key in a temporary TRIALCTL_HOME
SUBJECTS = 20
EXPERIMENT_BATCH = 100  # verify's batch size in the what-if runs


# -- the workload ------------------------------------------------------------------------------


class DoseLog(Aggregate):
    """A stand-in for a trial record: the doses given to one subject."""

    TOPIC = "trialctl.benchmark.DoseLog"

    class Created(Aggregate.Created):
        TOPIC = "trialctl.benchmark.DoseLog.Created"  # a base the library requires

    class Opened(Created):
        TOPIC = "trialctl.benchmark.DoseLog.Opened"
        subject_id: str
        site: str

    @event(Opened)
    def __init__(self, subject_id: str, site: str) -> None:
        self.subject_id = subject_id
        self.site = site
        self.doses = 0

    class DoseGiven(Aggregate.Event):
        TOPIC = "trialctl.benchmark.DoseLog.DoseGiven"
        visit: str
        drug: str
        dose_mg: str
        route: str
        note: str

    @event(DoseGiven)
    def give_dose(self, visit: str, drug: str, dose_mg: str, route: str, note: str) -> None:
        self.doses += 1


register_permissions(
    {
        topic: Permission(STAFF, frozenset({Meaning.RECORDED}), Meaning.RECORDED)
        for topic in (DoseLog.Opened.TOPIC, DoseLog.DoseGiven.TOPIC)
    }
)

Save = Callable[[Sequence[Aggregate]], object]


def drive(save: Save, events: int, batch: int) -> float:
    """Append `events` events over SUBJECTS new aggregates, `batch` events per save.

    Returns the elapsed seconds: the aggregate method calls, mapping and writing.
    """
    logs: list[DoseLog] = []
    pending: dict[int, DoseLog] = {}
    in_batch = 0
    start = time.perf_counter()
    for i in range(events):
        k = i % SUBJECTS
        if k == len(logs):
            log = DoseLog(subject_id=f"S-{uuid.uuid4().hex[:8]}", site="site-01")
            logs.append(log)
        else:
            log = logs[k]
            log.give_dose(
                visit=f"C{1 + i // 200}D{1 + i % 28}",
                drug="TRX-101",
                dose_mg=str(40 * (1 + k % 5)),
                route="IV",
                note="infusion completed without interruption",
            )
        pending[id(log)] = log
        in_batch += 1
        if in_batch >= batch:
            save(list(pending.values()))
            pending.clear()
            in_batch = 0
    if pending:
        save(list(pending.values()))
    return time.perf_counter() - start


class BareApp(Application[UUID]):
    """The baseline: the library's own application, unsigned, default mapper."""

    name = "bare"


def ledger_saver(app: TrialLedger, actor: UnlockedUser) -> Save:
    return lambda aggregates: app.record(actor, *aggregates)


def bare_saver(app: BareApp) -> Save:
    return lambda aggregates: app.save(*aggregates)


# -- backends ----------------------------------------------------------------------------------


@dataclass
class Backend:
    """Where one run's stores live; every store starts empty."""

    name: str
    ledger_url: str
    verify_ledger_url: str
    bare_env: dict[str, str]
    native_env: dict[str, str] | None = None
    server_version: str = ""


@contextlib.contextmanager
def sqlite_backend(workdir: Path) -> Iterator[Backend]:
    yield Backend(
        name="SQLite",
        ledger_url=str(workdir / "ledger.sqlite"),
        verify_ledger_url=str(workdir / "verify.sqlite"),
        bare_env={
            "PERSISTENCE_MODULE": "eventsourcing_sqlalchemy",
            "SQLALCHEMY_URL": f"sqlite:///{workdir / 'bare.sqlite'}",
        },
        native_env={
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(workdir / "native.sqlite"),
        },
        server_version=f"SQLite {sqlite3.sqlite_version}",
    )


@contextlib.contextmanager
def postgres_backend(base_url: str) -> Iterator[Backend]:
    """Fresh databases on the server at `base_url` (one for the append stores, one for the
    verify ledger, since a ledger owns its table names), dropped on the way out."""
    run = uuid.uuid4().hex[:12]
    names = [f"trialctl_bench_{run}", f"trialctl_bench_{run}_verify"]
    admin = sqlalchemy.create_engine(base_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            version = str(connection.execute(sqlalchemy.text("SHOW server_version")).scalar())
            for name in names:
                connection.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
        base = sqlalchemy.engine.make_url(base_url)
        append_url, verify_url = (
            base.set(database=name).render_as_string(hide_password=False) for name in names
        )
        yield Backend(
            name="PostgreSQL",
            ledger_url=append_url,
            verify_ledger_url=verify_url,
            bare_env={
                "PERSISTENCE_MODULE": "eventsourcing_sqlalchemy",
                "SQLALCHEMY_URL": resolve_ledger(append_url).url,  # same driver and options
            },
            server_version=f"PostgreSQL {version}",
        )
    finally:
        with admin.connect() as connection:
            for name in names:
                connection.execute(
                    sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                )
        admin.dispose()


def close_app(app: Application[UUID]) -> None:
    engine = getattr(getattr(app.recorder, "datastore", None), "engine", None)
    if isinstance(engine, sqlalchemy.engine.Engine):
        engine.dispose()
    else:
        app.close()


# -- 1. appends --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    store: str  # "ledger", "bare" or "native"
    batch: int


@dataclass
class AppendResult:
    events: int
    batch: int
    rounds: int
    rates: dict[Variant, list[float]] = field(default_factory=dict)

    def median(self, variant: Variant) -> float:
        return statistics.median(self.rates[variant])

    def ratio(self, variant: Variant, baseline: Variant) -> float:
        """The median of per-round ratios: each pair measured seconds apart."""
        return statistics.median(
            a / b for a, b in zip(self.rates[variant], self.rates[baseline], strict=True)
        )


def bench_append(
    savers: dict[str, Save], events: int, batch: int, rounds: int
) -> AppendResult:
    """Each round runs every store and batch size once, in a rotated order."""
    variants = [Variant(store, size) for size in (1, batch) for store in savers]
    result = AppendResult(events, batch, rounds, {v: [] for v in variants})
    for round_number in range(rounds):
        shift = round_number % len(variants)
        for variant in variants[shift:] + variants[:shift]:
            seconds = drive(savers[variant.store], events, variant.batch)
            result.rates[variant].append(events / seconds)
    return result


def open_bench_ledger(url: str) -> tuple[TrialLedger, UnlockedUser, float]:
    """A new ledger with one admin; returns it, the unlocked admin and the seconds the
    unlock took (scrypt, which every signing `trialctl` command pays once)."""
    app = TrialLedger(resolve_ledger(url), create=True)
    app.initialise("benchmark ledger", ADMIN_ID, "Alice Adams, MD", ADMIN_PASSWORD)
    start = time.perf_counter()
    actor = app.unlock(ADMIN_ID, ADMIN_PASSWORD)
    return app, actor, time.perf_counter() - start


# -- 2. verify ---------------------------------------------------------------------------------


def typical_statement(app: TrialLedger) -> bytes:
    """The signed statement bytes of a benchmark entry from the middle of the ledger."""
    recorder = app.signed_recorder
    size = recorder.tree_size()
    for position in range(size // 2, size):
        found = recorder.entry_at(position)
        if found is not None and found[1].topic == DoseLog.DoseGiven.TOPIC:
            return parse_entry(found[1].state).statement_bytes
    raise RuntimeError("the ledger holds no benchmark entry")


def raw_verify_seconds(message: bytes, count: int) -> tuple[float, float]:
    """Verify one Ed25519 signature `count` times; returns (start, end) on the monotonic
    clock, which is shared by every process on Linux."""
    key = Ed25519PrivateKey.generate()
    public_key = key.public_key()
    signature = key.sign(message)
    start = time.perf_counter()
    for _ in range(count):
        public_key.verify(signature, message)
    return start, time.perf_counter()


def raw_verify_rate(message: bytes, count: int) -> tuple[float, float]:
    """Raw Ed25519 verifications per second on one core, and CPU seconds per verification
    (which a busy neighbour on a shared machine disturbs less than the wall clock)."""
    cpu = time.process_time()
    start, end = raw_verify_seconds(message, count)
    return count / (end - start), (time.process_time() - cpu) / count


def parallel_raw_verify_rate(message: bytes, count: int, workers: int) -> float:
    """The raw rate with `workers` processes verifying at once (pool start-up excluded)."""
    with ProcessPoolExecutor(workers) as pool:
        spans = list(pool.map(raw_verify_seconds, [message] * workers, [count] * workers))
    return count * workers / (max(e for _, e in spans) - min(s for s, _ in spans))


@dataclass(frozen=True)
class VerifyRun:
    """One `verify_ledger` call: wall time, and CPU time in this process and in the
    worker processes (reaped when the pool shuts down, so counted in RUSAGE_CHILDREN)."""

    seconds: float
    main_cpu: float
    worker_cpu: float


@dataclass
class VerifyResult:
    entries: int
    statement_bytes: int
    workers: int
    runs: list[VerifyRun]
    raw_single: list[float]
    raw_cpu: list[float]
    raw_parallel: list[float]
    findings: int
    check_one: list[float]
    batch_size: int | None  # ledger.verify.BATCH_SIZE, if verify still has one
    experiment_batch: int
    experiment_runs: list[VerifyRun]  # empty when there was no batch size to patch

    @property
    def seconds(self) -> list[float]:
        return [run.seconds for run in self.runs]

    @property
    def rate(self) -> float:
        return self.entries / statistics.median(self.seconds)

    @property
    def raw_limit(self) -> float:
        return statistics.median(self.raw_single) * self.workers

    def _ratio(self, runs: Sequence[VerifyRun], raw: Sequence[float], scale: int) -> float:
        """The median of per-repeat ratios, each against the raw rate measured just before."""
        return statistics.median(
            self.entries / run.seconds / (rate * scale)
            for run, rate in zip(runs, raw, strict=True)
        )

    @property
    def ratio(self) -> float:
        return self._ratio(self.runs, self.raw_single, self.workers)

    @property
    def ratio_to_parallel(self) -> float:
        return self._ratio(self.runs, self.raw_parallel, 1)

    @property
    def effective_cores(self) -> float:
        """How many cores' worth of Ed25519 the machine gave when all were asked for."""
        return statistics.median(
            p / r for p, r in zip(self.raw_parallel, self.raw_single, strict=True)
        )

    @property
    def check_one_rate(self) -> float:
        return statistics.median(self.check_one)

    @property
    def check_one_ratio(self) -> float:
        """verify's per-entry function against one raw Ed25519 verify, same core, same time."""
        return statistics.median(
            c / r for c, r in zip(self.check_one, self.raw_single, strict=True)
        )

    @property
    def experiment_rate(self) -> float:
        return self.entries / statistics.median(run.seconds for run in self.experiment_runs)

    @property
    def experiment_ratio(self) -> float:
        return self._ratio(self.experiment_runs, self.raw_single, self.workers)

    def cpu(self, which: str) -> float:
        """Median CPU seconds per run in the main process ("main") or the workers."""
        return statistics.median(
            run.main_cpu if which == "main" else run.worker_cpu for run in self.runs
        )


def top_up(app: TrialLedger, actor: UnlockedUser, total: int, batch: int = 100) -> None:
    missing = total - app.signed_recorder.tree_size()
    if missing > 0:
        drive(ledger_saver(app, actor), missing, batch)


def check_one_rate(states: Sequence[bytes], keys: dict[str, str]) -> float:
    """Entries per second through verify's per-entry worker function, in this process,
    with the rows already in memory: Ed25519 plus everything else done per entry."""
    start = time.perf_counter()
    for state in states:
        verify_module._check_one(state, keys)
    return len(states) / (time.perf_counter() - start)


@contextlib.contextmanager
def verify_batch_size(size: int) -> Iterator[None]:
    """An experiment, not a change: verify's batch size, patched in this process only."""
    before = verify_module.BATCH_SIZE
    verify_module.BATCH_SIZE = size
    try:
        yield
    finally:
        verify_module.BATCH_SIZE = before


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_verify(app: TrialLedger) -> tuple[VerifyRun, int, int]:
    """Verify the whole ledger; returns the run, the entries checked and the findings."""
    children = _children_cpu()
    cpu = time.process_time()
    start = time.perf_counter()
    report = verify_ledger(app.signed_recorder, app.location.display())
    run = VerifyRun(
        seconds=time.perf_counter() - start,
        main_cpu=time.process_time() - cpu,
        worker_cpu=_children_cpu() - children,
    )
    return run, report.entries_checked, len(report.findings)


def bench_verify(app: TrialLedger, repeats: int, raw_count: int) -> VerifyResult:
    """Alternate raw Ed25519 loops with full verifications, so all see the same load."""
    message = typical_statement(app)
    workers = os.cpu_count() or 1
    recorder = app.signed_recorder
    states = [row.state for row in verify_module._rows(recorder)][:raw_count]
    keys = verify_module._key_directory(recorder)
    check_one: list[float] = []
    runs: list[VerifyRun] = []
    experiment: list[VerifyRun] = []
    batch_size: int | None = getattr(verify_module, "BATCH_SIZE", None)
    raw_single: list[float] = []
    raw_cpu: list[float] = []
    raw_parallel: list[float] = []
    entries = findings = 0
    for _ in range(repeats):
        rate, cpu = raw_verify_rate(message, raw_count)
        raw_single.append(rate)
        raw_cpu.append(cpu)
        check_one.append(check_one_rate(states, keys))
        raw_parallel.append(parallel_raw_verify_rate(message, raw_count, workers))
        run, entries, findings = timed_verify(app)
        runs.append(run)
        if batch_size is not None:
            with verify_batch_size(EXPERIMENT_BATCH):
                experiment.append(timed_verify(app)[0])
    return VerifyResult(
        entries=entries,
        statement_bytes=len(message),
        workers=workers,
        runs=runs,
        raw_single=raw_single,
        raw_cpu=raw_cpu,
        raw_parallel=raw_parallel,
        findings=findings,
        check_one=check_one,
        batch_size=batch_size,
        experiment_batch=EXPERIMENT_BATCH,
        experiment_runs=experiment,
    )


# -- 4. profiles -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProfileLine:
    function: str
    calls: int
    seconds: float
    share: float


@dataclass(frozen=True)
class Profile:
    title: str
    total: float
    events: int
    saves: int  # how many saves the profiled loop made (0 for verify)
    top: list[ProfileLine]
    parts: list[ProfileLine]


# (label, [(path suffix, function name)]): a part's time is the sum over its functions of
# the largest cumulative time of any function so named in a file so ending.
Part = tuple[str, list[tuple[str, str]]]

APPEND_PARTS: list[Part] = [
    ("signing: seal() (canonical JSON + Ed25519)", [("ledger/entry.py", "seal")]),
    ("- of which RFC 8785 canonical JSON", [("ledger/canonical.py", "canonical_bytes")]),
    ("- of which Ed25519 sign", [("ledger/keys.py", "sign")]),
    ("authority: _authorize() (the signer's record, re-read only when it grew)",
     [("ledger/application.py", "_authorize")]),
    ("- of which aggregate loads: Repository.get()", [("eventsourcing/application.py",
                                                       "get")]),
    ("chain: _previous_entry_hash() (remembered; a select only on a miss)",
     [("ledger/recorder.py", "_previous_entry_hash")]),
    ("numbering: write lock + tree size", [("ledger/recorder.py", "_lock_for_append"),
                                           ("ledger/recorder.py", "_tree_size")]),
    ("entry rows: _insert_stored_events()", [("eventsourcing_sqlalchemy/recorders.py",
                                              "_insert_stored_events")]),
    ("commit (Session.commit)", [("sqlalchemy/orm/session.py", "commit")]),
    ("mapping: EntryMapper.to_stored_event()", [("ledger/mapper.py", "to_stored_event")]),
]

VERIFY_PARTS: list[Part] = [
    ("read rows: _rows()", [("ledger/verify.py", "_rows")]),
    ("key directory: _key_directory()", [("ledger/verify.py", "_key_directory")]),
    ("per-entry checks: _check_one()", [("ledger/verify.py", "_check_one")]),
    ("- of which parse_entry() (JSON, duplicate-key hook, shape)",
     [("ledger/entry.py", "parse_entry")]),
    ("- of which Ed25519 verify: signature_is_valid()",
     [("ledger/keys.py", "signature_is_valid")]),
    ("- of which load_public_key() (once per entry)", [("ledger/keys.py", "load_public_key")]),
    ("ordered checks: _Auditor.check()", [("ledger/verify.py", "check")]),
    ("Merkle root: root_from_leaf_hashes()", [("ledger/merkle.py", "root_from_leaf_hashes")]),
    ("orphan-leaf scan: _check_orphan_leaves()", [("ledger/verify.py",
                                                   "_check_orphan_leaves")]),
    ("waiting on worker results (Future.result)", [("concurrent/futures/_base.py", "result")]),
    ("pool shutdown", [("concurrent/futures/process.py", "shutdown")]),
]

StatsTable = dict[tuple[str, int, str], tuple[int, int, float, float, Any]]


def _table(stats: pstats.Stats) -> StatsTable:
    table: StatsTable = stats.stats  # type: ignore[attr-defined]
    return table


def _own_name(filename: str) -> str | None:
    try:
        relative = Path(filename).resolve().relative_to(REPO_ROOT)
    except ValueError:
        return None
    return str(relative) if relative.parts[0] in OWN_PACKAGES else None


def profile_call(title: str, events: int, saves: int, call: Callable[[], object],
                 parts: list[Part], top: int = 5) -> Profile:
    profiler = cProfile.Profile()
    profiler.runcall(call)
    stats = pstats.Stats(profiler)
    total = float(stats.total_tt)  # type: ignore[attr-defined]
    table = _table(stats)
    own: list[ProfileLine] = []
    for (filename, line, name), (_, calls, _, cumulative, _) in table.items():
        relative = _own_name(filename)
        if relative is not None:
            own.append(ProfileLine(f"{relative}:{line} {name}", calls, cumulative,
                                   cumulative / total))
    own.sort(key=lambda p: p.seconds, reverse=True)
    lines: list[ProfileLine] = []
    parent_shown = False
    for label, functions in parts:
        if label.startswith("- ") and not parent_shown:
            continue
        seconds = 0.0
        calls = 0
        for suffix, name in functions:
            matches = [
                (value[3], value[1]) for (filename, _, fn), value in table.items()
                if fn == name and filename.replace(os.sep, "/").endswith(suffix)
            ]
            if matches:
                best = max(matches)
                seconds += best[0]
                calls += best[1]
        if calls:
            lines.append(ProfileLine(label, calls, seconds, seconds / total))
        if not label.startswith("- "):
            parent_shown = calls > 0
    return Profile(title, total, events, saves, own[:top], lines)


def profile_append(app: TrialLedger, actor: UnlockedUser, events: int, batch: int) -> Profile:
    shape = "one per save" if batch == 1 else f"{batch} per save"
    return profile_call(
        f"append loop: {events} events through TrialLedger.record, {shape}",
        events, -(-events // batch),  # drive() saves every `batch` events, then the rest
        lambda: drive(ledger_saver(app, actor), events, batch), APPEND_PARTS,
    )


def profile_verify(app: TrialLedger, workers: int) -> Profile:
    entries = app.signed_recorder.tree_size()
    where = ("every check in this one process (workers=1)" if workers == 1 else
             f"the main process only, with {workers} worker processes")
    return profile_call(
        f"verify_ledger over {entries} entries: {where}", entries, 0,
        lambda: verify_ledger(app.signed_recorder, app.location.display(), workers=workers),
        VERIFY_PARTS,
    )


# -- 3. import cost ----------------------------------------------------------------------------

MODULE_CHECK = """
import contextlib, io, json, sys
names = {names!r}
import trialctl.cli.main
after_import = [n for n in names if n in sys.modules]
sink = io.StringIO()
with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
    with contextlib.suppress(SystemExit):
        trialctl.cli.main.app(["--help"], prog_name="trialctl")
after_help = [n for n in names if n in sys.modules]
print(json.dumps({{"after_import": after_import, "after_help": after_help,
                  "modules": len(sys.modules)}}))
"""


@dataclass(frozen=True)
class ImportResult:
    command: str
    help_seconds: float
    python_seconds: float
    help_seconds_as_is: float
    python_seconds_as_is: float
    bytecode_off: bool
    after_import: list[str]
    after_help: list[str]
    module_count: int
    heaviest: list[tuple[str, float]]

    @property
    def loads_database_stack(self) -> bool:
        return any(m in DATABASE_STACK for m in self.after_import + self.after_help)


def trialctl_command() -> list[str]:
    script = Path(sys.executable).with_name("trialctl")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from trialctl.cli.main import run; run()"]


def warm_bytecode_env(cache: Path) -> dict[str, str]:
    """The environment with bytecode caching on, in a private cache (PYTHONPYCACHEPREFIX),
    so nothing is written next to the sources: what a user sees from the second run on."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "PYTHONPYCACHEPREFIX": str(cache), "COLUMNS": "100"}


def _timed_run(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, capture_output=True, check=True, timeout=120, env=env)
    return time.perf_counter() - start


def _median_times(
    baseline: list[str], command: list[str], env: dict[str, str], repeats: int
) -> tuple[float, float]:
    """Median seconds of `baseline` and `command`, run alternately after one warm-up each."""
    _timed_run(baseline, env)
    _timed_run(command, env)
    base: list[float] = []
    mine: list[float] = []
    for _ in range(repeats):
        base.append(_timed_run(baseline, env))
        mine.append(_timed_run(command, env))
    return statistics.median(base), statistics.median(mine)


HELP_RUN = """
import contextlib, io
from trialctl.cli.main import app
with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
    app(["--help"], prog_name="trialctl")
"""


def _outer_imports(code: str, env: dict[str, str]) -> dict[str, float]:
    """Outermost imports of `python -X importtime -c code`: name -> cumulative seconds."""
    completed = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True, text=True, check=True, timeout=120, env=env,
    )
    rows: list[tuple[int, str, float]] = []
    for line in completed.stderr.splitlines():
        parts = line.split("|")
        if len(parts) != 3 or not line.startswith("import time:"):
            continue
        try:
            cumulative = int(parts[1])
        except ValueError:
            continue  # the header line
        depth = len(parts[2]) - len(parts[2].lstrip())
        rows.append((depth, parts[2].strip(), cumulative / 1e6))
    if not rows:
        return {}
    outer = min(depth for depth, _, _ in rows)
    return {name: seconds for depth, name, seconds in rows if depth == outer}


def heaviest_imports(env: dict[str, str], top: int = 5) -> list[tuple[str, float]]:
    """What `trialctl --help` imports beyond interpreter start-up, heaviest first
    (outermost imports only, each with everything it pulled in)."""
    startup = _outer_imports("pass", env)
    during_help = _outer_imports(HELP_RUN, env)
    extra = [(n, s) for n, s in during_help.items() if n not in startup]
    return sorted(extra, key=lambda item: -item[1])[:top]


def bench_import(repeats: int) -> ImportResult:
    command = trialctl_command()
    baseline = [sys.executable, "-c", "pass"]
    help_command = [*command, "--help"]
    as_is = {**os.environ, "COLUMNS": "100"}
    with tempfile.TemporaryDirectory(prefix="trialctl-pycache-") as cache:
        warm = warm_bytecode_env(Path(cache))
        python_seconds, help_seconds = _median_times(baseline, help_command, warm, repeats)
        python_as_is, help_as_is = _median_times(baseline, help_command, as_is, repeats)
        check = subprocess.run(
            [sys.executable, "-c", MODULE_CHECK.format(names=REPORTED_MODULES)],
            capture_output=True, text=True, check=True, timeout=120, env=warm,
        )
        heaviest = heaviest_imports(warm)
    loaded = json.loads(check.stdout.strip().splitlines()[-1])
    shown = " ".join(Path(command[0]).name if i == 0 else c for i, c in enumerate(command))
    return ImportResult(
        command=f"{shown} --help",
        help_seconds=help_seconds,
        python_seconds=python_seconds,
        help_seconds_as_is=help_as_is,
        python_seconds_as_is=python_as_is,
        bytecode_off=bool(os.environ.get("PYTHONDONTWRITEBYTECODE")),
        after_import=list(loaded["after_import"]),
        after_help=list(loaded["after_help"]),
        module_count=int(loaded["modules"]),
        heaviest=heaviest,
    )


# -- running -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    events: int = 1000
    batch: int = 50
    rounds: int = 5
    verify_entries: int = 5000
    verify_repeats: int = 5
    raw_count: int = 3000
    profile_events: int = 300
    import_repeats: int = 7
    postgres_url: str | None = None


@dataclass
class BackendResult:
    name: str
    server_version: str
    unlock_seconds: float
    append: AppendResult
    verify: VerifyResult
    profiles: list[Profile]


@dataclass
class Report:
    config: Config
    started: datetime
    seconds: float
    machine: dict[str, str]
    backends: list[BackendResult]
    imports: ImportResult


def run_backend(backend: Backend, config: Config) -> BackendResult:
    app, actor, unlock_seconds = open_bench_ledger(backend.ledger_url)
    bare = BareApp(env=backend.bare_env)
    native = BareApp(env=backend.native_env) if backend.native_env else None
    try:
        savers: dict[str, Save] = {"ledger": ledger_saver(app, actor), "bare": bare_saver(bare)}
        if native is not None:
            savers["native"] = bare_saver(native)
        append = bench_append(savers, config.events, config.batch, config.rounds)
        profiles = [
            profile_append(app, actor, config.profile_events, 1),
            profile_append(app, actor, config.profile_events * 2, config.batch),
        ]
    finally:
        app.close()
        close_app(bare)
        if native is not None:
            close_app(native)
    app, actor, _ = open_bench_ledger(backend.verify_ledger_url)
    try:
        top_up(app, actor, config.verify_entries)
        verify = bench_verify(app, config.verify_repeats, config.raw_count)
        profiles.append(profile_verify(app, workers=1))
        profiles.append(profile_verify(app, workers=os.cpu_count() or 1))
    finally:
        app.close()
    return BackendResult(backend.name, backend.server_version, unlock_seconds, append, verify,
                         profiles)


def machine_facts() -> dict[str, str]:
    facts = {
        "cpu_count": str(os.cpu_count()),
        "cpus usable (affinity)": str(len(os.sched_getaffinity(0))),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "load average (1, 5, 15 min) at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
    for name in LIBRARIES:
        try:
            facts[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            facts[name] = "not installed"
    facts["SQLite library"] = sqlite3.sqlite_version
    return facts


@contextlib.contextmanager
def temporary_home() -> Iterator[Path]:
    """A throwaway TRIALCTL_HOME for the benchmark's key files, restored afterwards."""
    before = os.environ.get("TRIALCTL_HOME")
    with tempfile.TemporaryDirectory(prefix="trialctl-bench-") as directory:
        home = Path(directory)
        os.environ["TRIALCTL_HOME"] = str(home / "home")
        try:
            yield home
        finally:
            if before is None:
                os.environ.pop("TRIALCTL_HOME", None)
            else:
                os.environ["TRIALCTL_HOME"] = before


def run_benchmarks(config: Config, log: Callable[[str], None] = lambda _: None) -> Report:
    started = datetime.now(UTC)
    clock = time.perf_counter()
    machine = machine_facts()
    results: list[BackendResult] = []
    with temporary_home() as workdir:
        log("SQLite …")
        with sqlite_backend(workdir) as backend:
            results.append(run_backend(backend, config))
        if config.postgres_url:
            log("PostgreSQL …")
            with postgres_backend(config.postgres_url) as backend:
                result = run_backend(backend, config)
                result.server_version = backend.server_version
                results.append(result)
    log("import cost …")
    imports = bench_import(config.import_repeats)
    machine["load average (1, 5, 15 min) at end"] = " ".join(
        f"{x:.2f}" for x in os.getloadavg()
    )
    return Report(config, started, time.perf_counter() - clock, machine, results, imports)


# -- rendering ---------------------------------------------------------------------------------


def _rate(value: float, unit: str = "") -> str:
    number = f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"
    return f"{number} {unit}/s" if unit else f"{number}/s"


def _met(ok: bool) -> str:
    return "yes" if ok else "**no**"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def append_rows(result: BackendResult) -> list[list[str]]:
    append = result.append
    rows = []
    baselines = [("bare", "bare eventsourcing-sqlalchemy")]
    if Variant("native", 1) in append.rates:
        baselines.append(("native", "eventsourcing.sqlite (native)"))
    for size in (1, append.batch):
        shape = "1 event per save" if size == 1 else f"{size} events per save"
        mine = Variant("ledger", size)
        for store, label in baselines:
            theirs = Variant(store, size)
            ratio = append.ratio(mine, theirs)
            rows.append([
                f"signed append, {shape} (vs {label})",
                f"{_rate(append.median(mine), 'events')}",
                f"{_rate(append.median(theirs), 'events')}",
                f"{ratio:.2f}x",
                f">= {APPEND_TARGET}x",
                _met(ratio >= APPEND_TARGET),
            ])
    return rows


def verify_row(verify: VerifyResult) -> list[str]:
    return [
        f"verify, {verify.entries:,} entries, {verify.workers} workers",
        f"{_rate(verify.rate, 'entries')}",
        f"{_rate(verify.raw_limit, 'signatures')} (raw Ed25519 verify, 1 core x "
        f"{verify.workers})",
        f"{verify.ratio:.2f}x",
        f">= {VERIFY_TARGET}x",
        _met(verify.ratio >= VERIFY_TARGET),
    ]


def markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def profile_lines(profile: Profile) -> list[str]:
    lines = [f"**{profile.title}** — {profile.total:.2f} s under cProfile "
             f"({_ms(profile.total / max(profile.events, 1))} per entry, profiler overhead "
             "included).", ""]
    lines += markdown_table(
        ["top cumulative (our code)", "calls", "cumulative", "share"],
        [[f"`{p.function}`", f"{p.calls:,}", f"{p.seconds:.3f} s", f"{p.share:.0%}"]
         for p in profile.top],
    )
    lines.append("")
    lines += markdown_table(
        ["where the time goes", "calls", "cumulative", "per entry", "share"],
        [[p.function, f"{p.calls:,}", f"{p.seconds:.3f} s",
          _ms(p.seconds / max(profile.events, 1)), f"{p.share:.0%}"]
         for p in profile.parts],
    )
    lines.append("")
    return lines


def _part(profile: Profile, prefix: str) -> ProfileLine | None:
    return next((p for p in profile.parts if p.function.startswith(prefix)), None)


def _share(profile: Profile, prefix: str) -> float:
    part = _part(profile, prefix)
    return part.share if part else 0.0


def _verdict(ratio: float, target: float) -> str:
    return f"{'meets' if ratio >= target else 'misses'} the {target}x target"


@dataclass(frozen=True)
class AppendCosts:
    """Per-event times for one backend and batch size, and the profile's split of them.

    The profile's shares are applied to the unprofiled time: an estimate, since cProfile
    slows Python code more than time spent in the database."""

    ledger: float
    bare: float
    ratio: float
    profile: Profile

    def estimate(self, prefix: str) -> float:
        return self.ledger * _share(self.profile, prefix)

    def ratio_without(self, **fractions: float) -> float:
        """The ratio if the given fraction of each named part's time went away, e.g.
        ratio_without(authority=1.0, numbering=0.5)."""
        removed = sum(self.estimate(prefix) * f for prefix, f in fractions.items())
        return self.bare / (self.ledger - removed)


def append_costs(result: BackendResult, batch: int) -> AppendCosts:
    append = result.append
    mine, bare = Variant("ledger", batch), Variant("bare", batch)
    profile = result.profiles[0 if batch == 1 else 1]
    return AppendCosts(1 / append.median(mine), 1 / append.median(bare),
                       append.ratio(mine, bare), profile)


def verify_ceiling(verify: VerifyResult) -> float:
    """The best ratio to the raw limit that this much CPU per entry allows on these cores:
    CPU per raw verification over all CPU (main process and workers) per verified entry."""
    per_entry_cpu = (verify.cpu("main") + verify.cpu("worker")) / verify.entries
    return statistics.median(verify.raw_cpu) / per_entry_cpu


def _largest_parts(profile: Profile, count: int = 3) -> str:
    """The biggest named parts of a profile (not their "of which" lines), as prose."""
    parts = sorted((p for p in profile.parts if not p.function.startswith("- ")),
                   key=lambda p: -p.share)[:count]
    return ", ".join(f"{p.function.split(':')[0]} {p.share:.0%}" for p in parts)


def _loads_per_save(profile: Profile) -> float:
    part = _part(profile, "- of which aggregate loads")
    return part.calls / profile.saves if part and profile.saves else 0.0


def profile_summary(report: Report) -> list[str]:
    """The few facts the profiles below support, in prose."""
    out: list[str] = []
    for result in report.backends:
        single, batched = result.profiles[0], result.profiles[1]
        seq, main = result.profiles[2], result.profiles[3]
        out.append(
            f"- **{result.name}, append:** the ledger's own extra database work dominates, "
            "not cryptography. One event per save: the authority check (`_authorize`: the "
            "signer's latest version, with a re-read of the `User` only when it grew, "
            f"{_loads_per_save(single):.1f} loads per save) {_share(single, 'authority'):.0%}, "
            "the previous entry's hash (`_previous_entry_hash`, remembered from reads and "
            f"commits) {_share(single, 'chain'):.0%}, the write lock + "
            f"tree-size query {_share(single, 'numbering'):.0%}, against "
            f"{_share(single, 'signing'):.0%} for `seal()` (Ed25519 itself "
            f"{_share(single, '- of which Ed25519'):.0%}). With {result.append.batch} events "
            f"per save the largest parts are {_largest_parts(batched)}, and RFC 8785 canonical "
            f"JSON alone is {_share(batched, '- of which RFC'):.0%}."
        )
        out.append(
            f"- **{result.name}, verify:** in one process Ed25519 is "
            f"{_share(seq, '- of which Ed25519'):.0%} of the time and `parse_entry` "
            f"{_share(seq, '- of which parse_entry'):.0%}; the ordered checks are only "
            f"{_share(seq, 'ordered'):.0%} and reading rows {_share(seq, 'read rows'):.0%}. "
            f"With workers, the main process spends {_share(main, 'waiting'):.0%} of the run "
            f"waiting on workers and {_share(main, 'read rows'):.0%} reading rows, which it "
            "streams to the workers in batches as it reads."
        )
    return out


def _batching_note(verify: VerifyResult) -> str:
    if verify.batch_size is None or not verify.experiment_runs:
        return ""
    batches = -(-verify.entries // verify.batch_size)
    return (
        f"Batches are sized to the ledger (at most {verify.batch_size}; here about "
        f"{batches} of them or more for {verify.workers} workers) and stream while rows are "
        f"read. Patched to batches of {verify.experiment_batch} in this process, verify ran "
        f"at {_rate(verify.experiment_rate, 'entries')} ({verify.experiment_ratio:.2f}x). "
    )


def analysis(report: Report) -> list[str]:
    """Findings written from this run's numbers."""
    out: list[str] = []
    for result in report.backends:
        name = result.name
        single = append_costs(result, 1)
        batch = result.append.batch
        batched = append_costs(result, batch)
        out.append(
            f"- **{name}, append, one event per save: {single.ratio:.2f}x the bare rate "
            f"({_verdict(single.ratio, APPEND_TARGET)}).** The ledger takes "
            f"{_ms(single.ledger)} per event against {_ms(single.bare)} for the bare library: "
            f"{_ms(single.ledger - single.bare)} more, of which roughly "
            f"{_ms(single.estimate('authority'))} is the authority check, "
            f"{_ms(single.estimate('chain'))} the previous entry's hash, "
            f"{_ms(single.estimate('numbering'))} the lock and tree size and "
            f"{_ms(single.estimate('signing'))} canonicalising and signing; the leaf insert "
            "and the commit's extra row make up much of the rest."
        )
        out.append(
            f"- **{name}, append, {batch} events per save: {batched.ratio:.2f}x "
            f"({_verdict(batched.ratio, APPEND_TARGET)}).** One commit is shared by {batch} "
            f"events, so the bare library drops to {_ms(batched.bare)} per event; the "
            f"ledger's {_ms(batched.ledger)} goes mostly to {_largest_parts(batched.profile)}."
        )
        if Variant("native", 1) in result.append.rates:
            native = result.append.ratio(Variant("bare", 1), Variant("native", 1))
            out.append(
                f"- **{name}: the bare eventsourcing-sqlalchemy recorder runs at {native:.2f}x "
                "eventsourcing's native sqlite recorder** (one event per save), so against "
                f"the native recorder the ledger is at "
                f"{result.append.ratio(Variant('ledger', 1), Variant('native', 1)):.2f}x; that "
                "gap is SQLAlchemy's (ORM unit of work per save), shared by anything built on "
                "eventsourcing-sqlalchemy, and not the ledger's to close."
            )
        verify = result.verify
        ceiling = verify_ceiling(verify)
        worker_per_entry = verify.cpu("worker") / verify.entries
        out.append(
            f"- **{name}, verify: {_rate(verify.rate, 'entries')}, {verify.ratio:.2f}x the raw "
            f"limit ({_verdict(verify.ratio, VERIFY_TARGET)}).** Each run used "
            f"{verify.cpu('worker'):.2f} CPU-s in the workers ({worker_per_entry * 1e6:.0f} us "
            f"per entry, against {statistics.median(verify.raw_cpu) * 1e6:.0f} us of CPU for a "
            f"bare Ed25519 verify) and {verify.cpu('main'):.2f} CPU-s in the main process, on "
            f"{verify.workers} cores: even perfectly scheduled, that much CPU caps verify at "
            f"{ceiling:.2f}x the raw limit. "
            + _batching_note(verify)
            + f"Against raw Ed25519 measured with {verify.workers} processes at once (what "
            f"the machine gave then: {verify.effective_cores:.2f} cores' worth), verify is at "
            f"{verify.ratio_to_parallel:.2f}x."
        )
        if verify.findings:
            out.append(f"- **verify reported {verify.findings} findings on the benchmark "
                       "ledger**: the verify figures are not of a clean ledger.")
    imports = report.imports
    loaded = [m for m in DATABASE_STACK if m in imports.after_import + imports.after_help]
    out.append(
        f"- **Start-up: `{imports.command}` takes {imports.help_seconds * 1000:.0f} ms "
        f"against {imports.python_seconds * 1000:.0f} ms for `python -c pass` "
        f"({imports.help_seconds / imports.python_seconds:.1f}x) and "
        + ("loads no database stack (target met).**" if not loaded else
           f"loads {', '.join(loaded)} (target missed).**")
        + " Its heaviest imports: "
        + ", ".join(f"`{n}` {s * 1000:.0f} ms" for n, s in imports.heaviest) + "."
    )
    return out


def suggestions(report: Report) -> list[str]:
    """What was changed to get here, and what the profiles point at next."""
    first = report.backends[0]
    batched = append_costs(first, first.append.batch)
    verify = first.verify
    return [
        "Done (each measured in this harness before and after): the authority check reads "
        "only the signer's latest version and re-reads the `User` when it grew; the hash of "
        "the previous entry is remembered from reads and commits (entries are immutable and "
        "versions unique) instead of selected; the table is locked once per transaction; "
        "the ledger's own statements on every append go to the driver as plain SQL; verify's "
        "workers return only what the ordered checks read, cache public keys, check the "
        "canonical form at C speed (RFC 8785 library as the authority), and batches stream "
        "from the store, sized to the ledger.",
        "1. **Batched append is bound by canonical JSON** "
        f"({_share(batched.profile, '- of which RFC'):.0%} of a {first.append.batch}-event "
        f"save on {first.name}): the maintained RFC 8785 "
        "encoder is pure Python. A faster maintained encoder would lift it; trialctl does "
        "not write its own.",
        f"2. **verify is bound by per-entry CPU** (ceiling {verify_ceiling(verify):.2f}x on "
        f"{verify.workers} cores): each entry is parsed, checked for canonical form and "
        "hashed twice besides its Ed25519 verify, and on a 2-core machine the main process's "
        f"reading competes with the workers. {VERIFY_TARGET}x of the raw limit needs that "
        "overhead below about 15% of an Ed25519 verify.",
    ]


def render(report: Report) -> str:
    config = report.config
    lines = [
        "# trialctl benchmarks",
        "",
        f"Measured {report.started:%Y-%m-%d %H:%M} UTC by `python benchmarks/run.py` "
        f"(--events {config.events} --rounds {config.rounds} --verify-entries "
        f"{config.verify_entries}; the run took {report.seconds:.0f} s). The machine is "
        "shared, so absolute rates drift between runs; each ratio compares figures measured "
        "in the same run: append rounds interleave the variants in rotating order, and "
        "each ratio is the median of per-round ratios.",
        "",
        "Append workload: `DoseLog` aggregates (a stand-in for a trial record with explicit "
        f"topics, {SUBJECTS} subjects, five string fields per dose) held in memory and saved "
        f"as events are made, {config.events} events per variant per round. The ledger "
        "signs as one admin through `TrialLedger.record`; the baselines save the same "
        "aggregates unsigned with `Application.save`. Every store starts empty and grows by "
        "the same amount. Verify runs on a separate ledger built from the same events.",
        "",
    ]
    header = ["figure", "value", "baseline", "ratio", "target", "met?"]
    for result in report.backends:
        lines += [f"## {result.name} ({result.server_version})", ""]
        lines += markdown_table(header, [*append_rows(result), verify_row(result.verify)])
        append = result.append
        verify = result.verify
        per_round = "; ".join(
            f"{v.store}/{v.batch}: {', '.join(f'{r:,.0f}' for r in rates)}"
            for v, rates in append.rates.items()
        )
        raw_single = statistics.median(verify.raw_single)
        lines += [
            "",
            f"- Append rates by round (events/s; store/events per save): "
            f"{per_round}.",
            f"- Unlocking the signer's key (scrypt, once per signing `trialctl` command, not "
            f"in the append rates): {result.unlock_seconds:.2f} s.",
            f"- verify: {verify.entries:,} entries, {verify.findings} findings, median "
            f"{statistics.median(verify.seconds):.2f} s per run "
            f"({', '.join(f'{s:.2f}' for s in verify.seconds)}); CPU per run "
            f"{verify.cpu('main'):.2f} s main process + {verify.cpu('worker'):.2f} s workers.",
            f"- Raw Ed25519 verify of a {verify.statement_bytes}-byte statement: "
            f"{_rate(raw_single)} on one core; "
            f"{_rate(statistics.median(verify.raw_parallel))} measured with "
            f"{verify.workers} processes at once, i.e. {verify.effective_cores:.2f} of "
            f"{verify.workers} cores' worth on this shared machine (verify is at "
            f"{verify.ratio_to_parallel:.2f}x of that).",
            f"- verify's per-entry worker function `_check_one` alone, one process, rows in "
            f"memory: {_rate(verify.check_one_rate, 'entries')} "
            f"({verify.check_one_ratio:.2f}x raw Ed25519 on one core, measured alongside).",
        ]
        if verify.batch_size is not None and verify.experiment_runs:
            lines.append(
                f"- Experiment, not a change: with `ledger.verify.BATCH_SIZE` patched from "
                f"{verify.batch_size} to {verify.experiment_batch} in this process, verify "
                f"ran at {_rate(verify.experiment_rate, 'entries')} "
                f"({verify.experiment_ratio:.2f}x the raw limit)."
            )
        lines.append("")
    imports = report.imports
    lines += ["## Start-up (no backend)", ""]
    lines += markdown_table(header, [[
        f"`{imports.command}`",
        f"{imports.help_seconds * 1000:.0f} ms",
        f"{imports.python_seconds * 1000:.0f} ms (`python -c pass`)",
        f"{imports.help_seconds / imports.python_seconds:.1f}x",
        "imports no database stack",
        _met(not imports.loads_database_stack),
    ]])
    lines += [
        "",
        f"- Loaded after `import trialctl.cli.main`: {', '.join(imports.after_import) or 'none'}; "
        f"after running `--help` in the same process: "
        f"{', '.join(imports.after_help) or 'none'} (checked: {', '.join(REPORTED_MODULES)}); "
        f"{imports.module_count} modules loaded in all.",
        f"- Timed with a warm bytecode cache (a private PYTHONPYCACHEPREFIX), medians of "
        f"{report.config.import_repeats} alternating runs. In this environment as it is"
        + (" (PYTHONDONTWRITEBYTECODE=1, so the project's own modules are compiled on every "
           "start)" if imports.bytecode_off else "")
        + f": {imports.help_seconds_as_is * 1000:.0f} ms against "
        f"{imports.python_seconds_as_is * 1000:.0f} ms "
        f"({imports.help_seconds_as_is / imports.python_seconds_as_is:.1f}x).",
        "- Heaviest imports while running `--help` (`python -X importtime`, outermost "
        "modules with everything they import, interpreter start-up excluded): "
        + ", ".join(f"`{n}` {s * 1000:.0f} ms" for n, s in imports.heaviest) + ".",
        "",
        "## What the profile shows",
        "",
        *profile_summary(report),
        "",
        "Below, per profile: the top 5 of our own functions by cumulative time, then the "
        "named parts of the work. cProfile slows Python code more than time spent in C or "
        "in the database, so shares are indicative.",
        "",
    ]
    for result in report.backends:
        lines += [f"### {result.name}", ""]
        for profile in result.profiles:
            lines += profile_lines(profile)
    lines += ["## Analysis", "", *analysis(report), "",
              "### What I would change (nothing in `ledger/` was changed for this)", "",
              *suggestions(report), "", "## Machine", ""]
    lines += [f"- {name}: {value}" for name, value in report.machine.items()]
    lines += [f"- {r.name}: {r.server_version}" for r in report.backends if r.name != "SQLite"]
    return "\n".join(lines) + "\n"


# -- the command -------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> tuple[Config, Path]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    defaults = Config()
    parser.add_argument("--events", type=int, default=defaults.events,
                        help="events per append variant per round (default %(default)s)")
    parser.add_argument("--batch", type=int, default=defaults.batch,
                        help="events per save in the batched variant (default %(default)s)")
    parser.add_argument("--rounds", type=int, default=defaults.rounds,
                        help="interleaved append rounds (default %(default)s)")
    parser.add_argument("--verify-entries", type=int, default=defaults.verify_entries,
                        help="at least this many entries to verify (default %(default)s)")
    parser.add_argument("--postgres-url", default=os.environ.get(POSTGRES_URL_VARIABLE),
                        help=f"a PostgreSQL server to benchmark too "
                        f"(default ${POSTGRES_URL_VARIABLE})")
    parser.add_argument("--output", type=Path, default=RESULTS_FILE,
                        help="where to write the results (default benchmarks/results.md)")
    args = parser.parse_args(argv)
    config = Config(
        events=args.events,
        batch=args.batch,
        rounds=args.rounds,
        verify_entries=args.verify_entries,
        profile_events=min(defaults.profile_events, args.events),
        postgres_url=args.postgres_url or None,
    )
    return config, args.output


def main(argv: Sequence[str] | None = None) -> int:
    config, output = parse_args(argv)
    report = run_benchmarks(config, log=lambda text: print(text, file=sys.stderr, flush=True))
    output.write_text(render(report), encoding="utf-8")
    print(f"wrote {output} in {report.seconds:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
