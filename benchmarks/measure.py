"""The measurements: signed appends against unsigned baselines, verify against the raw
Ed25519 rate, and `trialctl --help`'s start-up cost; and the figures a whole run gathers."""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from benchmarks.batch_entry import BatchEntryResult
from benchmarks.concurrency import ConcurrencyConfig, ConcurrencyResult
from benchmarks.figures import Figure
from benchmarks.profile import Profile
from benchmarks.timing import PartTime
from benchmarks.workload import DoseLog, Save, drive
from trialctl.ledger.application import TrialLedger
from trialctl.ledger.entry import parse_entry
from trialctl.ledger.keys import KeyPair, signature_check
from trialctl.ledger.verify import (
    BATCH_SIZE,
    check_entry,
    key_directory,
    read_rows,
    verify_ledger,
)

DATABASE_STACK = ("sqlalchemy", "eventsourcing_sqlalchemy")
REPORTED_MODULES = (*DATABASE_STACK, "eventsourcing", "psycopg", "sqlite3", "cryptography")
EXPERIMENT_BATCH = 100  # verify's batch size in the what-if runs


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


def raw_verify_seconds(
    message: bytes, count: int, library: str = "verify's"
) -> tuple[float, float]:
    """Verify one Ed25519 signature `count` times, with the library verify uses (libsodium
    when PyNaCl is installed) or with "cryptography"; returns (start, end) on the monotonic
    clock, which is shared by every process on Linux."""
    key = KeyPair.generate()
    signature = key.sign(message)
    start = time.perf_counter()
    if library == "cryptography":
        public_key = key.private_key.public_key()
        for _ in range(count):
            public_key.verify(signature, message)
    else:
        check = signature_check(key.public_key_hex)
        for _ in range(count):
            if not check(signature, message):
                raise RuntimeError("a good signature did not verify")
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
    batch_size: int  # verify's default batch size
    experiment_batch: int
    experiment_runs: list[VerifyRun]
    raw_cryptography: list[float] = field(default_factory=list)  # one core, for comparison

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


def check_one_rate(states: Sequence[bytes], keys: dict[str, str]) -> float:
    """Entries per second through verify's per-entry worker function, in this process,
    with the rows already in memory: Ed25519 plus everything else done per entry."""
    start = time.perf_counter()
    for state in states:
        check_entry(state, keys)
    return len(states) / (time.perf_counter() - start)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_verify(
    app: TrialLedger, batch_size: int = BATCH_SIZE
) -> tuple[VerifyRun, int, int]:
    """Verify the whole ledger (with at most `batch_size` entries per worker batch);
    returns the run, the entries checked and the findings."""
    children = _children_cpu()
    cpu = time.process_time()
    start = time.perf_counter()
    report = verify_ledger(
        app.signed_recorder, app.location.display(), batch_size=batch_size
    )
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
    states = [row.state for row in read_rows(recorder)][:raw_count]
    keys = key_directory(recorder)
    check_one: list[float] = []
    runs: list[VerifyRun] = []
    experiment: list[VerifyRun] = []
    raw_single: list[float] = []
    raw_cpu: list[float] = []
    raw_parallel: list[float] = []
    raw_cryptography: list[float] = []
    entries = findings = 0
    for _ in range(repeats):
        rate, cpu = raw_verify_rate(message, raw_count)
        raw_single.append(rate)
        raw_cpu.append(cpu)
        start, end = raw_verify_seconds(message, raw_count, "cryptography")
        raw_cryptography.append(raw_count / (end - start))
        check_one.append(check_one_rate(states, keys))
        raw_parallel.append(parallel_raw_verify_rate(message, raw_count, workers))
        run, entries, findings = timed_verify(app)
        runs.append(run)
        experiment.append(timed_verify(app, EXPERIMENT_BATCH)[0])
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
        batch_size=BATCH_SIZE,
        experiment_batch=EXPERIMENT_BATCH,
        experiment_runs=experiment,
        raw_cryptography=raw_cryptography,
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
    return [sys.executable, "-c", "from trialctl.cli.entry import run; run()"]


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


# -- a whole run's figures ---------------------------------------------------------------------


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
    batch_lines: int = 200  # lines per batch file in the batch-entry figure
    # PostgreSQL's concurrent writers (figure 7)
    concurrency: ConcurrencyConfig = field(default_factory=ConcurrencyConfig)
    exports: bool = False  # also run benchmarks.exports (report and export cost)


@dataclass
class BackendResult:
    name: str
    server_version: str
    unlock_seconds: float
    append: AppendResult
    verify: VerifyResult
    profiles: list[Profile]
    batch_entry: BatchEntryResult | None = None


@dataclass
class Report:
    config: Config
    started: datetime
    seconds: float
    machine: dict[str, str]
    backends: list[BackendResult]
    imports: ImportResult
    concurrency: ConcurrencyResult | None = None  # measured only with a PostgreSQL server
    # The other parts' rows for the summary table, and their sections of results.md.
    figures: list[Figure] = field(default_factory=list)
    sections: list[str] = field(default_factory=list)
    scale_sizes: tuple[int, ...] = ()  # entries of the generated ledgers, smallest first
    # Seconds generating each cached ledger took (by entries), as its marker recorded it:
    # done once, outside the run's time.
    generation_seconds: dict[int, float] = field(default_factory=dict)
    parts: list[PartTime] = field(default_factory=list)  # where the run's seconds went

