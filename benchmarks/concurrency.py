"""Figure: one ledger under concurrent writers, in signed entries per second with 1, 4 and 8
writer processes appending at once, and a count showing nothing was lost.

    .venv/bin/python -m benchmarks.concurrency [--postgres-url URL] [--quick]

The figure is PostgreSQL's (a local server; `benchmarks.run` measures it with the server it
is given); without a server this module runs on a temporary SQLite file, whose writers take
turns at the database's single write lock. Each writer is its own process, as each
`trialctl` command is: it opens the ledger, unlocks the admin's key (untimed), waits until
every writer is ready, then saves `DoseLog` events signed through `TrialLedger.record`,
`batch` events per save. The clock runs from the moment all writers start until the last
one is done. Afterwards the ledger is counted: it must have grown by exactly the entries
the writers were told were written, each position once, and `verify` must find nothing.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import queue
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.workload import (
    ADMIN_ID,
    ADMIN_PASSWORD,
    drive,
    open_bench_ledger,
    postgres_backend,
)
from trialctl.ledger.application import TrialLedger
from trialctl.ledger.location import resolve_ledger
from trialctl.ledger.verify import verify_ledger

POSTGRES_URL_VARIABLE = "TRIALCTL_TEST_DATABASE_URL"
WAIT_SECONDS = 600  # for a writer to get ready, or to finish: a hung writer fails the run


@dataclass(frozen=True)
class ConcurrencyConfig:
    writers: tuple[int, ...] = (1, 4, 8)
    entries: int = 200  # per writer, per round
    batch: int = 1  # events per save: one `trialctl record` each


QUICK = ConcurrencyConfig(writers=(1, 2), entries=5)


@dataclass(frozen=True)
class WriterRound:
    """One round: `writers` processes at once, and what the ledger holds afterwards."""

    writers: int
    expected: int  # entries the writers were asked to write
    reported: int  # distinct entries the writers were told were written
    grown: int  # entries the ledger grew by
    seconds: float

    @property
    def rate(self) -> float:
        return self.grown / self.seconds

    @property
    def lost(self) -> int:
        return self.expected - min(self.reported, self.grown)


@dataclass
class ConcurrencyResult:
    backend: str
    batch: int
    entries: int  # per writer
    rounds: list[WriterRound] = field(default_factory=list)
    verified: int = 0  # entries verify checked at the end
    findings: int = -1

    @property
    def nothing_lost(self) -> bool:
        return self.findings == 0 and all(
            r.lost == 0 and r.reported == r.grown == r.expected for r in self.rounds
        )


def _write(url: str, entries: int, batch: int, ready: Any, results: Any) -> None:
    """A writer process: ready (ledger open, key unlocked), then write, then report the
    positions of every entry it was told was written."""
    try:
        app = TrialLedger(resolve_ledger(url))
        actor = app.unlock(ADMIN_ID, ADMIN_PASSWORD)
        written: list[int] = []
        ready.wait(WAIT_SECONDS)
        drive(lambda aggregates: written.extend(app.record(actor, *aggregates)), entries,
              batch)
        positions = [p for p, _ in app.signed_recorder.entries_for(written)]
        app.close()
        results.put(("written", positions))
    except BaseException as e:  # reported to the parent, which fails the run
        ready.abort()
        results.put(("failed", f"{type(e).__name__}: {e}"))


def writer_round(url: str, writers: int, entries: int, batch: int) -> WriterRound:
    """`writers` processes appending `entries` each to the ledger at `url`, all at once."""
    context = multiprocessing.get_context("spawn")  # each a fresh process, as a command is
    ready = context.Barrier(writers + 1)
    results = context.Queue()
    before = _tree_size(url)
    processes = [context.Process(target=_write, args=(url, entries, batch, ready, results))
                 for _ in range(writers)]
    for process in processes:
        process.start()
    try:
        ready.wait(WAIT_SECONDS)
        start = time.perf_counter()
        reports = [results.get(timeout=WAIT_SECONDS) for _ in processes]
        seconds = time.perf_counter() - start
    except (queue.Empty, threading.BrokenBarrierError) as e:
        failed = _drain(results)
        raise RuntimeError(f"a writer did not finish: {failed or type(e).__name__}") from e
    finally:
        for process in processes:
            process.join(WAIT_SECONDS)
    failures = [detail for kind, detail in reports if kind == "failed"]
    if failures:
        raise RuntimeError(f"a writer failed: {failures[0]}")
    positions = [p for _, written in reports for p in written]
    return WriterRound(writers, writers * entries, len(set(positions)),
                       _tree_size(url) - before, seconds)


def _drain(results: Any) -> str:
    try:
        _, detail = results.get(timeout=1)
    except queue.Empty:
        return ""
    return str(detail)


def _tree_size(url: str) -> int:
    app = TrialLedger(resolve_ledger(url))
    try:
        return app.signed_recorder.tree_size()
    finally:
        app.close()


def bench_concurrency(url: str, backend: str, config: ConcurrencyConfig) -> ConcurrencyResult:
    """Each writer count in turn on the ledger at `url` (which has the benchmark admin),
    then `verify` over the whole ledger."""
    result = ConcurrencyResult(backend, config.batch, config.entries)
    for writers in config.writers:
        result.rounds.append(writer_round(url, writers, config.entries, config.batch))
    app = TrialLedger(resolve_ledger(url))
    try:
        report = verify_ledger(app.signed_recorder, app.location.display())
    finally:
        app.close()
    result.verified, result.findings = report.entries_checked, len(report.findings)
    return result


def run(postgres_url: str | None, config: ConcurrencyConfig, workdir: Path) -> ConcurrencyResult:
    """On a fresh database of the server at `postgres_url`, else a fresh SQLite file."""
    if postgres_url:
        with postgres_backend(postgres_url) as backend:
            open_bench_ledger(backend.ledger_url)[0].close()
            return bench_concurrency(backend.ledger_url, backend.name, config)
    url = str(workdir / "concurrency.sqlite")
    open_bench_ledger(url)[0].close()
    return bench_concurrency(url, "SQLite", config)


def lines(result: ConcurrencyResult) -> list[str]:
    """The figure as report lines: a table by writer count, and the count."""
    single = result.rounds[0].rate if result.rounds else 0.0
    out = [
        f"Concurrent writers on {result.backend}: each writer a process saving "
        f"{result.entries} signed entries, {result.batch} per save.",
        "",
        "| writers | entries/s | vs 1 writer | asked | told written | ledger grew | lost |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in result.rounds:
        out.append(f"| {r.writers} | {r.rate:,.0f} | {r.rate / single:.2f}x | {r.expected} | "
                   f"{r.reported} | {r.grown} | {r.lost} |")
    out += ["", f"verify afterwards: {result.verified:,} entries, {result.findings} findings; "
            f"nothing lost: {'yes' if result.nothing_lost else 'NO'}."]
    return out


def parse_args(argv: Sequence[str] | None = None) -> tuple[str | None, ConcurrencyConfig]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    defaults = ConcurrencyConfig()
    parser.add_argument("--postgres-url", default=os.environ.get(POSTGRES_URL_VARIABLE),
                        help=f"the server to measure (default ${POSTGRES_URL_VARIABLE}; "
                        "without one, a temporary SQLite file)")
    parser.add_argument("--writers", type=int, nargs="+", default=list(defaults.writers),
                        help="writer counts, one round each (default %(default)s)")
    parser.add_argument("--entries", type=int, default=defaults.entries,
                        help="entries per writer per round (default %(default)s)")
    parser.add_argument("--batch", type=int, default=defaults.batch,
                        help="events per save (default %(default)s)")
    parser.add_argument("--quick", action="store_true",
                        help=f"a smoke-test size: {QUICK.writers} writers, "
                        f"{QUICK.entries} entries each")
    args = parser.parse_args(argv)
    if any(n < 1 for n in [*args.writers, args.entries, args.batch]):
        parser.error("writer counts, entries and batch must be at least 1")
    config = QUICK if args.quick else ConcurrencyConfig(tuple(args.writers), args.entries,
                                                        args.batch)
    return args.postgres_url or None, config


def main(argv: Sequence[str] | None = None) -> int:
    from benchmarks.run import temporary_home  # run imports this module

    postgres_url, config = parse_args(argv)
    with temporary_home() as workdir:
        result = run(postgres_url, config, workdir)
    print("\n".join(lines(result)))
    return 0 if result.nothing_lost else 1


if __name__ == "__main__":
    sys.exit(main())
