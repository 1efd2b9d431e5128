"""Measure trialctl against baselines taken in the same run, and write benchmarks/results.md.

    .venv/bin/python -m benchmarks.run [--events N] [--postgres-url URL]

Figures, each next to a baseline measured on this machine in this run (the machine may be
shared, so only ratios from the same run mean anything):

1. signed appends per second through `TrialLedger.record`, against the bare eventsourcing
   `Application` writing the same events unsigned through eventsourcing-sqlalchemy on the
   same backend (and, on SQLite, through eventsourcing's own sqlite recorder);
2. `verify_ledger` entries per second, against the raw Ed25519 verification rate of
   `cryptography` on one core times `os.cpu_count()`;
   and batch entry (`record --from`, `batch_entry`) in signed entries per second against
   the bare `Application` saving as many events unsigned in one save;
3. `trialctl --help` start-up time against `python -c pass`, and whether it loads the
   database stack;
4. cProfile of the append loop and of verify's sequential part;
5. with PostgreSQL, signed entries per second with 1, 4 and 8 concurrent writer processes,
   counted afterwards so that nothing is lost (`concurrency`, also runnable alone).
6. `benchmarks.scale`: scale-flat reads, replay of one trial among many, projection rebuild
   and verify's peak memory on two generated ledgers (`--scale-small`, `--scale-large`);
   `benchmarks.verify_scale`: whole `trialctl verify` and `verify --since-checkpoint` on
   generated ledgers of the same two sizes (figure 1 on `--scale-middle` and the large one
   when a middle size is given: 10,000 / 100,000 / 1,000,000 for the issue's figures); and
   `benchmarks.session_latency`: `record dose` as a whole process with and without a
   signed-in session;
7. with --exports, `benchmarks.exports`: report (HTML, PDF), ODM and SDTM export time and
   peak memory on two generated ledger sizes, beside reading their events.

`--quick` runs every part at a smoke-test size (CI runs it; its figures mean nothing).
The figures are gathered into one table at the top of results.md, numbered as in the
performance issue.

Run it from the repository root. SQLite always runs (temporary files); PostgreSQL runs when
a URL is given or TRIALCTL_TEST_DATABASE_URL is set, in a fresh database that is dropped
afterwards.

The parts: `workload` (what is saved, and where), `measure` (appends, verify, start-up),
`profile` (cProfile, grouped) and `report` (results.md); this module runs them.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import os
import platform
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from benchmarks import exports, scale, session_latency, verify_scale
from benchmarks.batch_entry import bench_batch_entry, open_site, profile_batch_entry
from benchmarks.concurrency import ConcurrencyConfig, ConcurrencyResult, bench_concurrency
from benchmarks.exports import ExportConfig, run_exports
from benchmarks.exports import render_section as render_exports
from benchmarks.generator import Size
from benchmarks.measure import (
    BackendResult,
    Config,
    Report,
    bench_append,
    bench_import,
    bench_verify,
)
from benchmarks.parts import (
    latency_figures,
    latency_section,
    measure_scale,
    measure_verify_scale,
)
from benchmarks.profile import profile_append, profile_verify
from benchmarks.report import render
from benchmarks.timing import PartClock
from benchmarks.workload import (
    Backend,
    BareApp,
    Save,
    bare_saver,
    close_app,
    ledger_saver,
    open_bench_ledger,
    postgres_backend,
    sqlite_backend,
    top_up,
)

POSTGRES_URL_VARIABLE = "TRIALCTL_TEST_DATABASE_URL"
RESULTS_FILE = Path(__file__).resolve().parent / "results.md"
LIBRARIES = (
    "eventsourcing", "eventsourcing-sqlalchemy", "SQLAlchemy", "cryptography", "psycopg",
    "rfc8785", "typer", "rich",
)

# -- running -----------------------------------------------------------------------------------


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
        site = open_site(app, actor)
        batch_entry = bench_batch_entry(app, site, backend.bare_env, config.batch_lines,
                                        config.rounds)
        profiles.append(profile_batch_entry(app, site, config.batch_lines))
    finally:
        app.close()
    return BackendResult(backend.name, backend.server_version, unlock_seconds, append, verify,
                         profiles, batch_entry)


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


@dataclass(frozen=True)
class Parts:
    """The parts measured beyond the per-backend figures (None: not measured)."""

    scale: scale.ScaleConfig | None = None
    verify: verify_scale.VerifyScaleConfig | None = None  # figures 1 and 2 at scale
    doses: int | None = None  # record-dose latency: doses timed in each mode
    exports: ExportConfig | None = None  # reports and exports (not one of the seven figures)


QUICK = Config(events=20, batch=5, rounds=1, verify_entries=40, verify_repeats=1, raw_count=20,
               profile_events=10, import_repeats=1, batch_lines=8,
               concurrency=ConcurrencyConfig((1, 2), 5))
# The quick verify ledgers are the quick scale sizes (a smoke test: generation dominates).
QUICK_VERIFY = replace(verify_scale.QUICK, small=scale.QUICK.small, large=scale.QUICK.large,
                       new_entries=50, raw_count=200)
QUICK_PARTS = Parts(scale=scale.QUICK, verify=QUICK_VERIFY, doses=1)
QUICK_EXPORTS = exports.QUICK


def scale_sizes(parts: Parts) -> tuple[int, ...]:
    """The generated ledgers' sizes the scale and verify parts ask for, smallest first."""
    sizes = [size.entries for config in (parts.scale, parts.verify) if config is not None
             for size in (config.small, config.middle, config.large) if size is not None]
    return tuple(sorted(set(sizes)))


def generation_seconds(parts: Parts) -> dict[int, float]:
    """What generating each cached scale ledger took, where its marker recorded it."""
    found: dict[int, float] = {}
    for config in (parts.scale, parts.verify):
        if config is None:
            continue
        for size in (config.small, config.middle, config.large):
            seconds = None if size is None else scale.generation_seconds(size, config.cache)
            if size is not None and seconds is not None:
                found[size.entries] = seconds
    return found


def run_parts(parts: Parts, report: Report, log: Callable[[str], None],
              clock: PartClock) -> None:
    if parts.scale is not None:
        log("scale …")
        # With the verify part, its whole verifies give figure 1's peak memory too.
        scale_config = replace(parts.scale, verify_peak=parts.verify is None)
        figures, section = measure_scale(scale_config, log, clock)
        report.figures += figures
        report.sections.append(section)
    if parts.verify is not None:
        log("verify at scale …")
        figures, section = measure_verify_scale(parts.verify, log, clock)
        report.figures += figures
        report.sections.append(section)
    if parts.doses is not None:
        log("record-dose latency …")
        with clock.part(f"record-dose latency, {parts.doses} doses in each mode"):
            latency = session_latency.measure(parts.doses)
        report.figures += latency_figures(latency)
        report.sections.append(latency_section(latency))
    if parts.exports is not None:
        log("reports and exports …")
        with clock.part("reports and exports"):
            report.sections.append(render_exports(run_exports(parts.exports, log)))
    report.generation_seconds = generation_seconds(parts)


def run_benchmarks(config: Config, log: Callable[[str], None] = lambda _: None,
                   parts: Parts = Parts()) -> Report:
    started = datetime.now(UTC)
    clock = time.perf_counter()
    machine = machine_facts()
    results: list[BackendResult] = []
    concurrency: ConcurrencyResult | None = None
    part_clock = PartClock()
    with temporary_home() as workdir:
        log("SQLite …")
        with part_clock.part("SQLite: append, verify, profiles, batch entry"), \
                sqlite_backend(workdir) as backend:
            results.append(run_backend(backend, config))
        if config.postgres_url:
            log("PostgreSQL …")
            with postgres_backend(config.postgres_url) as backend:
                with part_clock.part("PostgreSQL: append, verify, profiles, batch entry"):
                    result = run_backend(backend, config)
                result.server_version = backend.server_version
                results.append(result)
                log("PostgreSQL, concurrent writers …")
                with part_clock.part("PostgreSQL: concurrent writers"):
                    concurrency = bench_concurrency(backend.ledger_url, backend.name,
                                                    config.concurrency)
    log("import cost …")
    with part_clock.part("start-up (import cost)"):
        imports = bench_import(config.import_repeats)
    report = Report(config, started, 0.0, machine, results, imports, concurrency,
                    scale_sizes=scale_sizes(parts), parts=part_clock.parts)
    run_parts(parts, report, log, part_clock)
    machine["load average (1, 5, 15 min) at end"] = " ".join(
        f"{x:.2f}" for x in os.getloadavg()
    )
    report.seconds = time.perf_counter() - clock
    return report


# -- the command -------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> tuple[Config, Path, Parts]:
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
    parser.add_argument("--batch-lines", type=int, default=defaults.batch_lines,
                        help="lines per file in the batch-entry figure (default %(default)s)")
    parser.add_argument("--writers", type=int, nargs="+",
                        default=list(defaults.concurrency.writers),
                        help="concurrent writer counts on PostgreSQL (default %(default)s)")
    parser.add_argument("--writer-entries", type=int, default=defaults.concurrency.entries,
                        help="entries per concurrent writer (default %(default)s)")
    parser.add_argument("--postgres-url", default=os.environ.get(POSTGRES_URL_VARIABLE),
                        help=f"a PostgreSQL server to benchmark too "
                        f"(default ${POSTGRES_URL_VARIABLE})")
    parser.add_argument("--exports", action="store_true",
                        help="also measure reports and exports on generated ledgers "
                        "(benchmarks.exports, default sizes)")
    parser.add_argument("--scale-small", type=int, default=scale.SMALL.entries,
                        help="entries in the scale figures' small ledger (default %(default)s)")
    parser.add_argument("--scale-large", type=int, default=scale.LARGE.entries,
                        help="entries in the scale figures' large ledger (default %(default)s)")
    parser.add_argument("--scale-middle", type=int,
                        help="figure 1's smaller ledger: verify's rate and peak memory at this "
                        "size beside the large one (default: the small one)")
    parser.add_argument("--scale-verify-repeats", type=int, default=3,
                        help="whole `trialctl verify` runs per ledger in figure 1 (default "
                        "%(default)s; 1 is enough at 1,000,000 entries, minutes each)")
    parser.add_argument("--scale-cache", type=Path, default=scale.CACHE,
                        help="where generated ledgers are kept between runs "
                        "(default %(default)s)")
    parser.add_argument("--doses", type=int, default=7,
                        help="record-dose latency: doses timed in each mode (default %(default)s)")
    parser.add_argument("--quick", action="store_true",
                        help="every part at a smoke-test size (CI's run; the figures mean nothing)")
    parser.add_argument("--output", type=Path, default=RESULTS_FILE,
                        help="where to write the results (default benchmarks/results.md)")
    args = parser.parse_args(argv)
    if args.quick:
        quick = replace(QUICK, postgres_url=args.postgres_url or None, exports=args.exports)
        quick_exports = replace(QUICK_EXPORTS, cache=args.scale_cache) if args.exports else None
        return quick, args.output, replace(
            QUICK_PARTS, scale=replace(scale.QUICK, cache=args.scale_cache),
            verify=replace(QUICK_VERIFY, cache=args.scale_cache),
            exports=quick_exports)
    config = Config(
        events=args.events,
        batch=args.batch,
        rounds=args.rounds,
        verify_entries=args.verify_entries,
        profile_events=min(defaults.profile_events, args.events),
        postgres_url=args.postgres_url or None,
        batch_lines=args.batch_lines,
        concurrency=ConcurrencyConfig(tuple(args.writers), args.writer_entries),
        exports=args.exports,
    )
    middle = None if args.scale_middle is None else Size(args.scale_middle)
    scale_config = scale.ScaleConfig(Size(args.scale_small), Size(args.scale_large),
                                     cache=args.scale_cache, middle=middle)
    verify_config = verify_scale.VerifyScaleConfig(
        Size(args.scale_small), Size(args.scale_large), cache=args.scale_cache, middle=middle,
        full_repeats=args.scale_verify_repeats)
    export_config = ExportConfig(cache=args.scale_cache) if args.exports else None
    return config, args.output, Parts(scale=scale_config, verify=verify_config,
                                      doses=args.doses, exports=export_config)


def main(argv: Sequence[str] | None = None) -> int:
    config, output, parts = parse_args(argv)
    report = run_benchmarks(config, lambda text: print(text, file=sys.stderr, flush=True), parts)
    output.write_text(render(report), encoding="utf-8")
    print(f"wrote {output} in {report.seconds:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
