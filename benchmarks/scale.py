"""Speed at a sponsor's scale: the same reads on a small and a large generated ledger, each
figure beside its baseline from the same run.

    .venv/bin/python -m benchmarks.scale [--small 10000] [--large 100000] [--middle N] [--cache DIR]
    .venv/bin/python -m benchmarks.scale --quick      # tiny sizes: the CI smoke run

Figures (the machine may be shared, so only ratios from one run mean anything):

- scale-flat reads: `trialctl status`, `patient` and `log --patient` of one trial, as whole
  processes, on the large ledger against the small one (target <= 1.2x);
- projection rebuild: entries/s of `projections rebuild` against reading and decoding the
  notification log alone (target >= 0.5x);
- replay among many: `trialctl replay` of that trial in the large ledger against the
  same-sized trial generated alone in its own ledger (target <= 2x);
- verify memory: peak resident memory of `trialctl verify`, large against small, or against
  the middle ledger when one is given (`--middle`: 100,000 beside 1,000,000; target
  <= 500 MB and flat).

`measure_figure_4(config)` and `measure_figure_5(config)` return figures 4 and 5 alone (value,
baseline, ratio) for `benchmarks.run`.

Ledgers are made by `benchmarks.generator` and kept in the cache directory (default
/tmp/trialctl-scale), so a second run reuses them; their read models are brought up to date
there once too (by `projections rebuild`, noted in the ledger's `.done` marker), so the timed
reads never catch up first. The rebuild figure works on a copy, so the cache stays as it was.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.generator import Size, generate
from benchmarks.timing import PartClock, PartTime
from trialctl.ledger.application import TrialLedger
from trialctl.ledger.location import resolve_ledger
from trialctl.ledger.projection import open_views, rebuild, views_agree

CACHE = Path("/tmp/trialctl-scale")
TRIALCTL = Path(sys.executable).with_name("trialctl")


SMALL, LARGE = Size(10_000), Size(100_000)


@dataclass(frozen=True)
class ScaleConfig:
    small: Size = SMALL
    large: Size = LARGE
    repeats: int = 3
    cache: Path = CACHE
    # Verify's peak memory is compared at this size and the large one (None: the small one),
    # so a 1,000,000-entry figure can stand beside 100,000 while the reads compare to 10,000.
    middle: Size | None = None
    # False when `benchmarks.verify_scale` runs the whole verifies and reports their peak
    # memory: one verify of a 1,000,000-entry ledger takes minutes, so none runs twice.
    verify_peak: bool = True


QUICK = ScaleConfig(Size(150, courses=1, block_trials=2, rotations=1),
                    Size(400, courses=1, block_trials=2, rotations=1), repeats=1)


@dataclass
class LedgerFigures:
    entries: int
    trials: int
    reads: dict[str, float] = field(default_factory=dict)  # command → median seconds
    rebuild_rate: float = 0.0  # entries/s
    decode_rate: float = 0.0  # entries/s, reading and decoding the notification log
    verify_peak_mb: float = 0.0
    verify_exit: int = -1


@dataclass
class ScaleReport:
    small: LedgerFigures
    large: LedgerFigures
    seconds: float
    replay: ReplayFigures | None = None
    middle: LedgerFigures | None = None  # its entries, trials and verify's peak memory only
    parts: list[PartTime] = field(default_factory=list)  # where `seconds` went

    @property
    def memory_baseline(self) -> LedgerFigures:
        """The ledger verify's peak memory on the large one is compared with."""
        return self.middle or self.small


@dataclass(frozen=True)
class ReplayFigures:
    """`trialctl replay` of one trial among many against the same-sized trial alone."""

    among_many: float  # median seconds, whole process
    alone: float
    trial_entries: int  # the trial's own entries and its patients', in the large ledger
    alone_entries: int  # the same in the ledger holding it alone
    ledger_entries: int  # every entry of the large ledger
    ledger_trials: int


REPLAY_TARGET = 2.0  # one trial among many over the same trial alone
READ_TARGET = 1.2  # large ledger over small, as whole processes
REBUILD_TARGET = 0.5  # rebuild over reading and decoding alone


def _done_marker(size: Size, cache: Path) -> Path:
    return cache / f"ledger-{size.entries}-c{size.courses}-b{size.block_trials}-s{size.seed}.done"


def cached_ledger(size: Size, cache: Path, say: Callable[[str], None]) -> Path:
    """A generated SQLite ledger of `size`, made once and kept under `cache` with its key
    files (`ledger_keys`) and its read models up to date; the verify figures use the same
    files.

    The `.done` marker's first line is what generation made ("entries trials seconds"); a
    second line, "views N", says the read models reach the ledger's end at N entries. Read
    models that do not reach the end, or disagree with their position, are rebuilt."""
    done = _done_marker(size, cache)
    path = done.with_suffix(".sqlite")
    if not done.exists():
        cache.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        shutil.rmtree(ledger_keys(path), ignore_errors=True)
        made = generate(str(path), size, ledger_keys(path), say)
        done.write_text(f"{made.entries} {len(made.trials)} {made.seconds:.0f}\n",
                        encoding="utf-8")
    marker = done.read_text(encoding="utf-8").splitlines()
    views_line = _prepared_views(path)
    if views_line is None:
        say(f"{path.name}: rebuilding its read models once, for the cache …")
        views_line = _rebuild_views(path)
    if marker[1:] != [views_line]:
        done.write_text(f"{marker[0]}\n{views_line}\n", encoding="utf-8")
    return path


def _prepared_views(path: Path) -> str | None:
    """The marker line of the ledger's read models if they reach its last entry, else None."""
    app = TrialLedger(resolve_ledger(str(path)))
    try:
        views = open_views(app)
        recorder = app.signed_recorder
        last = recorder.max_notification_id()
        if last is None or views.position() != last or not views_agree(app, views):
            return None
        return f"views {recorder.tree_size()}"
    finally:
        app.close()


def _rebuild_views(path: Path) -> str:
    app = TrialLedger(resolve_ledger(str(path)))
    try:
        rebuild(app)
        return f"views {app.signed_recorder.tree_size()}"
    finally:
        app.close()


def generation_seconds(size: Size, cache: Path) -> float | None:
    """How long generating the cached ledger of `size` took, if its marker says."""
    done = _done_marker(size, cache)
    if not done.exists():
        return None
    made = done.read_text(encoding="utf-8").split("\n", 1)[0].split()
    return float(made[2]) if len(made) > 2 else None


def ledger_keys(ledger: Path) -> Path:
    """Where a cached ledger's key files are (its users' passwords are `password`)."""
    return ledger.with_name(f"{ledger.stem}-keys")


def _seconds(args: Sequence[str], ledger: Path) -> float:
    """One whole `trialctl` process, start to exit; it must succeed."""
    env = {**os.environ, "TRIALCTL_LEDGER": str(ledger)}
    start = time.perf_counter()
    subprocess.run([str(TRIALCTL), *args], env=env, capture_output=True, check=True)
    return time.perf_counter() - start


def _reads(trial: str) -> dict[str, list[str]]:
    return {
        "status": ["status", "--trial", trial, "--json"],
        "patient": ["patient", "P0001", "--trial", trial, "--json"],
        "log --patient": ["log", "--patient", "P0001", "--trial", trial, "--json"],
    }


def decode_all(app: TrialLedger) -> tuple[int, float]:
    """The baseline for a rebuild or an export: every notification read and decoded, nothing
    else; how many, and the seconds it took."""
    recorder = app.signed_recorder
    start = time.perf_counter()
    count, last = 0, None
    while True:
        batch = recorder.select_notifications(start=last, limit=1000,
                                              inclusive_of_start=last is None)
        if not batch:
            break
        for notification in batch:
            app.mapper.to_domain_event(notification)
        count += len(batch)
        last = batch[-1].id
    return count, time.perf_counter() - start


def _decode_rate(app: TrialLedger) -> float:
    count, seconds = decode_all(app)
    return count / seconds


def _rebuild_figures(path: Path) -> LedgerFigures:
    """Entries, trials, and the rebuild and decode rates of one ledger, in this process, on
    a copy (so the cached ledger and its read models stay as they were)."""
    with tempfile.TemporaryDirectory(prefix="trialctl-rebuild-") as work:
        copy = Path(work) / path.name
        shutil.copyfile(path, copy)
        app = TrialLedger(resolve_ledger(str(copy)))
        try:
            entries = app.signed_recorder.tree_size()
            from trialctl.ledger.trials import TrialActions

            figures = LedgerFigures(entries, len(TrialActions(app).trial_ids()))
            figures.decode_rate = _decode_rate(app)
            start = time.perf_counter()
            rebuild(app)
            figures.rebuild_rate = entries / (time.perf_counter() - start)
        finally:
            app.close()
    return figures


def measure_reads(paths: Sequence[Path], repeats: int,
                  figures: Sequence[LedgerFigures]) -> None:
    """Each read of the first trial as whole processes, the ledgers taking turns in every
    round (so a busy moment on a shared machine falls on both alike); medians into each
    ledger's figures."""
    timed: dict[tuple[int, str], list[float]] = {}
    for _ in range(repeats):
        for name, args in _reads(FIRST_TRIAL).items():
            for index, path in enumerate(paths):
                timed.setdefault((index, name), []).append(_seconds(args, path))
    for (index, name), seconds in timed.items():
        figures[index].reads[name] = statistics.median(seconds)


def measure_ledger(path: Path, verify_peak: bool = True) -> LedgerFigures:
    """Rebuild and decode rates and (unless told not to) verify's peak memory of one ledger
    (its reads are timed by `measure_reads`, alternating with the other ledger's)."""
    figures = _rebuild_figures(path)
    if verify_peak:
        # Measured in a fresh process so one ledger's peak cannot hide another's.
        figures.verify_peak_mb, figures.verify_exit = _verify_peak(path)
    return figures


def measure_memory(path: Path) -> LedgerFigures:
    """The entries and trials of a ledger and verify's peak memory on it, nothing else."""
    app = TrialLedger(resolve_ledger(str(path)))
    try:
        from trialctl.ledger.trials import TrialActions

        figures = LedgerFigures(app.signed_recorder.tree_size(),
                                len(TrialActions(app).trial_ids()))
    finally:
        app.close()
    figures.verify_peak_mb, figures.verify_exit = _verify_peak(path)
    return figures


def _verify_peak(path: Path) -> tuple[float, int]:
    probe = (
        "import resource, subprocess, sys\n"
        "code = subprocess.run(sys.argv[1:], capture_output=True).returncode\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, code)\n"
    )
    env = {**os.environ, "TRIALCTL_LEDGER": str(path)}
    done = subprocess.run([sys.executable, "-c", probe, str(TRIALCTL), "verify"], env=env,
                          capture_output=True, text=True, check=True)
    peak, code = done.stdout.split()
    return int(peak) / 1024, int(code)


FIRST_TRIAL = "NCT90000000"  # the first registered: only the ledger around it grows


def trial_extent(path: Path, protocol_id: str) -> tuple[int, int, int]:
    """The trial's own entries and its patients', the ledger's entries and its trials."""
    from trialctl.ledger.trials import TrialActions

    app = TrialLedger(resolve_ledger(str(path)))
    try:
        records = TrialActions(app)
        trial = records.trial(protocol_id)
        recorder = app.signed_recorder
        own = sum(len(recorder.select_events(aggregate_id))
                  for aggregate_id in (trial.id, *records.trial_patient_ids(trial)))
        return own, recorder.tree_size(), len(records.trial_ids())
    finally:
        app.close()


def _replay_seconds(paths: Sequence[Path], repeats: int, protocol_id: str) -> list[float]:
    """Median seconds of a whole `trialctl replay` of the trial on each ledger, the ledgers
    taking turns in every round."""
    args = ["replay", "--trial", protocol_id, "--upto", str(10**9), "--json"]
    timed = [[_seconds(args, path) for path in paths] for _ in range(repeats)]
    return [statistics.median(column) for column in zip(*timed, strict=True)]


def measure_replay(config: ScaleConfig, large: Path,
                   say: Callable[[str], None]) -> ReplayFigures:
    """Replay of the first trial in the large ledger, and of a trial generated alone in a
    ledger of its own with as many entries as that trial holds."""
    trial_entries, ledger_entries, ledger_trials = trial_extent(large, FIRST_TRIAL)
    alone_size = Size(trial_entries, courses=config.large.courses, seed=config.large.seed,
                      rotations=0, block_trials=1)
    alone = cached_ledger(alone_size, config.cache, say)
    alone_entries, _, _ = trial_extent(alone, FIRST_TRIAL)
    among_many, by_itself = _replay_seconds((large, alone), config.repeats, FIRST_TRIAL)
    return ReplayFigures(among_many, by_itself, trial_entries, alone_entries, ledger_entries,
                         ledger_trials)


class _ScaleHome:
    """A throwaway TRIALCTL_HOME for the measured processes (none of them signs)."""

    def __enter__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="trialctl-scale-home-")
        self._before = os.environ.get("TRIALCTL_HOME")
        os.environ["TRIALCTL_HOME"] = self._dir.name

    def __exit__(self, *_: object) -> None:
        if self._before is None:
            os.environ.pop("TRIALCTL_HOME", None)
        else:
            os.environ["TRIALCTL_HOME"] = self._before
        self._dir.cleanup()


def run_scale(config: ScaleConfig, say: Callable[[str], None] = lambda _: None) -> ScaleReport:
    start, clock = time.perf_counter(), PartClock()
    with _ScaleHome():
        with clock.part("scale: cached ledgers (checked; read models rebuilt if stale)"):
            paths = [cached_ledger(size, config.cache, say)
                     for size in (config.small, config.large)]
        middle = None
        if config.middle is not None and config.verify_peak:
            with clock.part(f"scale: verify peak memory, {config.middle.entries:,} entries"):
                middle = measure_memory(cached_ledger(config.middle, config.cache, say))
        figures = []
        for path, size, peak in ((paths[0], config.small, middle is None),
                                 (paths[1], config.large, True)):
            with clock.part(f"scale: figure 4, rebuild and decode, {size.entries:,} entries"
                            + (" (and verify peak memory)" if config.verify_peak and peak
                               else "")):
                figures.append(measure_ledger(path, verify_peak=config.verify_peak and peak))
        small, large = figures
        with clock.part(f"scale: figure 5, reads x{config.repeats} on each ledger"):
            measure_reads(paths, config.repeats, (small, large))
        with clock.part(f"scale: figure 5, replay x{config.repeats} among many and alone"):
            replay = measure_replay(config, paths[1], say)
    return ScaleReport(small, large, time.perf_counter() - start, replay, middle, clock.parts)


def render_section(report: ScaleReport) -> str:
    """The `## Scale` section of benchmarks/results.md."""
    s, large, memory = report.small, report.large, report.memory_baseline
    middle = "" if report.middle is None else (
        f"; verify's peak memory against {memory.entries} entries in {memory.trials} trials")
    lines = [
        "## Scale",
        "",
        f"Generated ledgers (`benchmarks.generator`): {s.entries} entries in {s.trials} "
        f"trials against {large.entries} entries in {large.trials} trials{middle}; reads "
        f"of the same trial as whole `trialctl` processes (median), run in "
        f"{report.seconds:.0f} s.",
        "",
        "| figure | small | large | ratio | target |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for name in s.reads:
        lines.append(f"| `{name}` (s) | {s.reads[name]:.2f} | {large.reads[name]:.2f} | "
                     f"{large.reads[name] / s.reads[name]:.2f}x | <= {READ_TARGET:g}x |")
    if large.verify_peak_mb:  # else measured by `benchmarks.verify_scale`, beside its rate
        lines.append(
            f"| `verify` peak memory (MB), {memory.entries} against {large.entries} entries | "
            f"{memory.verify_peak_mb:.0f} | {large.verify_peak_mb:.0f} | "
            f"{large.verify_peak_mb / memory.verify_peak_mb:.2f}x | <= 500 MB, flat |")
    lines += [
        "",
        "| projection rebuild | rebuild (entries/s) | decode alone (entries/s) | ratio | "
        "target |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for label, f in (("small", s), ("large", large)):
        lines.append(f"| {label} | {f.rebuild_rate:.0f} | {f.decode_rate:.0f} | "
                     f"{f.rebuild_rate / f.decode_rate:.2f}x | >= {REBUILD_TARGET:g}x |")
    if report.replay is not None:
        r = report.replay
        lines += [
            "",
            "| replay of one trial | among many (s) | alone (s) | ratio | target |",
            "| --- | ---: | ---: | ---: | --- |",
            f"| {FIRST_TRIAL}: {r.trial_entries} entries among {r.ledger_trials} trials "
            f"({r.ledger_entries} entries), alone {r.alone_entries} | {r.among_many:.2f} | "
            f"{r.alone:.2f} | {r.among_many / r.alone:.2f}x | <= {REPLAY_TARGET:g}x |",
        ]
    return "\n".join(lines) + "\n"


def place_section(results: str, section: str) -> str:
    """results.md with its `## Scale` section replaced by `section` (or added at the end),
    so a full `benchmarks.run` and a scale run can share one file."""
    lines = results.splitlines(keepends=True)
    try:
        begin = lines.index("## Scale\n")
    except ValueError:
        return results.rstrip("\n") + "\n\n" + section if results else section
    end = next((i for i in range(begin + 1, len(lines)) if lines[i].startswith("## ")),
               len(lines))
    return "".join(lines[:begin]) + section + ("\n" if end < len(lines) else "") + \
        "".join(lines[end:])


def parse_args(argv: Sequence[str] | None = None) -> tuple[ScaleConfig, Path | None]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="tiny ledgers: a smoke run")
    parser.add_argument("--small", type=int, default=SMALL.entries)
    parser.add_argument("--large", type=int, default=LARGE.entries)
    parser.add_argument("--middle", type=int,
                        help="compare verify's peak memory at this size and the large one")
    parser.add_argument("--repeats", type=int, default=ScaleConfig.repeats)
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--output", type=Path,
                        help="place the section in this results file (benchmarks/results.md)")
    args = parser.parse_args(argv)
    middle = None if args.middle is None else Size(args.middle)
    if args.quick:
        return ScaleConfig(QUICK.small, QUICK.large, QUICK.repeats, args.cache,
                           middle), args.output
    return ScaleConfig(Size(args.small), Size(args.large), args.repeats, args.cache,
                       middle), args.output


def main(argv: Sequence[str] | None = None) -> int:
    config, output = parse_args(argv)
    section = render_section(run_scale(config, lambda t: print(t, file=sys.stderr, flush=True)))
    print(section)
    if output is not None:
        before = output.read_text(encoding="utf-8") if output.exists() else ""
        output.write_text(place_section(before, section), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
