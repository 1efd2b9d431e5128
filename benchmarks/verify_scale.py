"""Figures 1 and 2 of the speed issue, on generated ledgers (benchmarks/generator.py):

1. `trialctl verify` in entries/s against the raw Ed25519 verify rate of the machine
   (PyNaCl/libsodium and `cryptography`, the faster one) times its cores; with the peak
   memory of the whole verify process on a small and a larger ledger.
2. `trialctl verify --since-checkpoint` for exactly 1,000 new entries (the same events on
   both) on a larger ledger against the same on a small one (target <= 1.2x: the cost
   follows the new entries), whole process and `verify_ledger` alone.

    .venv/bin/python -m benchmarks.verify_scale [--quick] [--small 10000] [--large 100000]
                                                [--middle 100000]

Figure 1 runs on the middle ledger (the small one if none is given) and the large one;
figure 2 on the small and the large. Generated ledgers are kept in /tmp/trialctl-scale,
the same files as `benchmarks.scale` (made once, reused); each measurement works on a copy,
so the kept ledger never changes. Every time is a whole
`trialctl` process, start to exit, the median of `repeats` runs.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path

from benchmarks import scale
from benchmarks.figures import Figure, at_least, at_most
from benchmarks.generator import (
    USERS,
    Block,
    Size,
    Writer,
    password,
)
from benchmarks.measure import raw_verify_seconds
from trialctl.ledger.application import TrialLedger
from trialctl.ledger.checkpoint import Checkpoint, read_checkpoint_file, sign_checkpoint
from trialctl.ledger.demo import shipped_protocol
from trialctl.ledger.entry import parse_entry
from trialctl.ledger.location import resolve_ledger
from trialctl.ledger.mapper import format_time
from trialctl.ledger.merkle_frontier import frontier_of
from trialctl.ledger.verify import verify_ledger

CACHE = scale.CACHE  # the scale figures' ledgers, with their key files


@dataclass(frozen=True)
class VerifyScaleConfig:
    small: Size = scale.SMALL
    large: Size = scale.LARGE
    new_entries: int = 1_000
    repeats: int = 3
    raw_count: int = 3_000
    cache: Path = CACHE
    middle: Size | None = None  # figure 1's smaller ledger (None: the small one)
    full_repeats: int = 3  # whole verifies per ledger in figure 1 (minutes each at 1,000,000)


QUICK = VerifyScaleConfig(Size(300, courses=1, block_trials=2, rotations=1),
                          Size(900, courses=1, block_trials=2, rotations=1),
                          new_entries=100, repeats=1, raw_count=500, full_repeats=1)


INCREMENTAL_TARGET = 1.2  # larger ledger over small, the same new entries
FULL_TARGET = 0.7  # whole verify over raw Ed25519 times the cores


@dataclass(frozen=True)
class FullVerify:
    """Figure 1 and what its whole verifies also measured: peak memory by ledger size."""

    figure: Figure
    peak_mb: dict[int, float]  # entries → peak resident memory of the verify process


def cached_ledger(size: Size, cache: Path, say: Callable[[str], None]) -> tuple[Path, Path]:
    """A generated SQLite ledger of `size` and its key files, made once under `cache` (the
    scale figures' own, so one 1,000,000-entry ledger serves them all)."""
    path = scale.cached_ledger(size, cache, say)
    return path, scale.ledger_keys(path)


def _copy(ledger: Path, keys: Path, work: Path) -> tuple[Path, Path]:
    work.mkdir(parents=True, exist_ok=True)
    copied, copied_keys = work / ledger.name, work / keys.name
    shutil.copyfile(ledger, copied)
    shutil.copytree(keys, copied_keys)
    return copied, copied_keys


def _trialctl(args: Sequence[str], ledger: Path, keys: Path) -> tuple[float, int, float]:
    """One whole `trialctl` process: (seconds, exit status, peak RSS in MB)."""
    probe = (
        "import resource, subprocess, sys, time\n"
        "start = time.perf_counter()\n"
        "code = subprocess.run(sys.argv[1:], capture_output=True).returncode\n"
        "seconds = time.perf_counter() - start\n"
        "print(seconds, code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    env = {**os.environ, "TRIALCTL_LEDGER": str(ledger), "TRIALCTL_HOME": str(keys.parent)}
    done = subprocess.run([sys.executable, "-c", probe, str(scale.TRIALCTL), *args], env=env,
                          capture_output=True, text=True, check=True)
    seconds, code, peak = done.stdout.split()
    return float(seconds), int(code), int(peak) / 1024


# The new trials' seed and protocol ids: the same on every ledger, so each figure-2 ledger
# gets the same new events.
EXTEND_SEED = 13


def checkpoint_and_extend(ledger: Path, keys: Path, new_entries: int,
                          seed: int = EXTEND_SEED) -> Path:
    """Append exactly `new_entries` entries (new trials run by the generator's own steps,
    the same on any ledger), then sign a checkpoint note of the ledger as it stood exactly
    `new_entries` entries before its end, storing that tree's frontier as `trialctl
    checkpoint` does; returns the note. So `verify --since-checkpoint` checks exactly
    `new_entries` entries, the same ones on every ledger."""
    app = TrialLedger(resolve_ledger(str(ledger)), keys_home=keys)
    try:
        actors = {user: app.unlock(user, password(user)) for user in USERS}
        recorder = app.signed_recorder
        target = recorder.tree_size() + new_entries
        writer = Writer(app, actors)
        base = shipped_protocol()
        protocols = [replace(base, id=f"NCT8{seed:03d}{k:04d}", co_signatures=())
                     for k in range(2)]
        Block(app, writer, protocols, random.Random(seed), date(2024, 1, 1), 6,
              limit=target).fill()
        if recorder.tree_size() != target:
            raise RuntimeError(f"{ledger}: {new_entries} new entries were not added exactly")
        size = target - new_entries
        frontier = frontier_of(recorder.leaf_hashes(upto=size))
        recorder.store_frontier(size, frontier.to_bytes())
        alice = actors["alice"]
        signed = sign_checkpoint(Checkpoint(
            ledger_id=app.ledger_record().ledger_id, tree_size=size, root_hash=frontier.root(),
            time=format_time(datetime.now(UTC)), signer=alice.user.user_id), alice.keys)
        note = ledger.with_suffix(".checkpoint.txt")
        note.write_text(signed.to_text(), encoding="utf-8")
        return note
    finally:
        app.close()


@dataclass(frozen=True)
class _Incremental:
    entries: int  # after the new ones
    new: int
    seconds: float
    peak_mb: float
    in_process: float  # seconds of verify_ledger alone (no interpreter start, no imports)


def _incremental(size: Size, config: VerifyScaleConfig, work: Path,
                 say: Callable[[str], None]) -> _Incremental:
    ledger, keys = _copy(*cached_ledger(size, config.cache, say), work)
    note = checkpoint_and_extend(ledger, keys, config.new_entries)
    runs = []
    for _ in range(config.repeats):
        seconds, code, peak = _trialctl(["verify", "--since-checkpoint", str(note)],
                                        ledger, keys)
        if code != 0:
            raise RuntimeError(f"verify --since-checkpoint found problems in {ledger}")
        runs.append((seconds, peak))
    say(f"{size.entries} entries: verify --since-checkpoint {[round(s, 2) for s, _ in runs]} s")
    after = _entries(ledger)
    inside = statistics.median(_verify_in_process(ledger, note) for _ in range(config.repeats))
    new = after - read_checkpoint_file(note).checkpoint.tree_size
    return _Incremental(after, new, statistics.median(s for s, _ in runs),
                        max(p for _, p in runs), inside)


def _verify_in_process(ledger: Path, note: Path) -> float:
    app = TrialLedger(resolve_ledger(str(ledger)))
    try:
        since = (str(note), read_checkpoint_file(note))
        start = time.perf_counter()
        report = verify_ledger(app.signed_recorder, str(ledger), since=since)
        seconds = time.perf_counter() - start
    finally:
        app.close()
    if not report.ok:
        raise RuntimeError(f"verify --since-checkpoint found problems in {ledger}")
    return seconds


def _entries(ledger: Path) -> int:
    app = TrialLedger(resolve_ledger(str(ledger)))
    try:
        return app.signed_recorder.tree_size()
    finally:
        app.close()


def measure_figure_2(config: VerifyScaleConfig = VerifyScaleConfig(),
                     say: Callable[[str], None] = lambda _: None) -> Figure:
    """`verify --since-checkpoint` for exactly `new_entries` new entries: the larger ledger's
    seconds (value) against the small one's (baseline)."""
    with tempfile.TemporaryDirectory(prefix="trialctl-verify-scale-") as work:
        small = _incremental(config.small, config, Path(work) / "small", say)
        large = _incremental(config.large, config, Path(work) / "large", say)
    ratio = large.seconds / small.seconds
    return Figure(
        2, f"`trialctl verify --since-checkpoint`, {large.new:,} new entries on "
        f"{large.entries:,} vs {small.new:,} on {small.entries:,} (whole process)",
        f"{large.seconds:.2f} s", f"{small.seconds:.2f} s (the same on the small ledger)",
        ratio, f"<= {INCREMENTAL_TARGET}x", at_most(ratio, INCREMENTAL_TARGET),
        (f"verify_ledger alone (no process start): {large.in_process:.2f} s vs "
         f"{small.in_process:.2f} s = {large.in_process / small.in_process:.2f}x",
         f"peak memory {large.peak_mb:.0f} MB vs {small.peak_mb:.0f} MB",))


def _raw_rates(message: bytes, count: int) -> dict[str, float]:
    """Raw Ed25519 verifications per second on one core, per library."""
    rates = {}
    for library, name in (("verify's", "PyNaCl"), ("cryptography", "cryptography")):
        start, end = raw_verify_seconds(message, count, library)
        rates[name] = count / (end - start)
    return rates


def _typical_statement(ledger: Path) -> bytes:
    app = TrialLedger(resolve_ledger(str(ledger)))
    try:
        found = app.signed_recorder.entry_at(app.signed_recorder.tree_size() // 2)
        assert found is not None
        return parse_entry(found[1].state).statement_bytes
    finally:
        app.close()


def measure_figure_1(config: VerifyScaleConfig = VerifyScaleConfig(),
                     say: Callable[[str], None] = lambda _: None) -> Figure:
    """Full `trialctl verify` in entries/s on the larger ledger (value) against the faster
    raw Ed25519 rate times the cores (baseline), measured alongside; peak memory of the
    whole process on both ledgers in the notes."""
    return measure_full_verify(config, say).figure


def measure_full_verify(config: VerifyScaleConfig = VerifyScaleConfig(),
                        say: Callable[[str], None] = lambda _: None) -> FullVerify:
    """Figure 1 with the peak memory of each ledger's verify (the memory figure's values, so
    no other part has to run a whole verify again)."""
    cores = os.cpu_count() or 1
    rows: dict[int, tuple[float, float]] = {}
    raws: list[dict[str, float]] = []
    for size in (config.middle or config.small, config.large):
        ledger, keys = cached_ledger(size, config.cache, say)
        message = _typical_statement(ledger)
        entries = _entries(ledger)
        runs = []
        for _ in range(config.full_repeats):
            raws.append(_raw_rates(message, config.raw_count))
            seconds, code, peak = _trialctl(["verify"], ledger, keys)
            if code != 0:
                raise RuntimeError(f"verify found problems in {ledger}")
            runs.append((seconds, peak))
        rows[entries] = (entries / statistics.median(s for s, _ in runs),
                         max(p for _, p in runs))
        say(f"{entries} entries: verify {rows[entries][0]:.0f} entries/s, "
            f"{rows[entries][1]:.0f} MB")
    nacl = statistics.median(r["PyNaCl"] for r in raws)
    crypto = statistics.median(r["cryptography"] for r in raws)
    baseline = max(nacl, crypto) * cores
    largest = max(rows)
    rate = rows[largest][0]
    memory = ", ".join(f"{mb:.0f} MB at {n:,} entries" for n, (_, mb) in sorted(rows.items()))
    figure = Figure(
        1, f"`trialctl verify`, {largest:,} entries, {cores} cores (whole process)",
        f"{rate:,.0f} entries/s", f"{baseline:,.0f} signatures/s (raw Ed25519 x cores)",
        rate / baseline, f">= {FULL_TARGET}x", at_least(rate / baseline, FULL_TARGET),
        (f"raw Ed25519 on one core: PyNaCl {nacl:,.0f}/s, cryptography {crypto:,.0f}/s",
         f"peak memory of the verify process: {memory}",
         *(f"verify at {n:,} entries: {r:,.0f} entries/s" for n, (r, _) in sorted(rows.items()))))
    return FullVerify(figure, {n: mb for n, (_, mb) in rows.items()})


def describe(figure: Figure) -> str:
    ratio = "" if figure.ratio is None else f" = {figure.ratio:.2f}x"
    lines = [f"{figure.what}: {figure.value} vs {figure.baseline}{ratio} (target "
             f"{figure.target}: {'met' if figure.met else 'not met'})"]
    lines += [f"  - {note}" for note in figure.notes]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny ledgers (a smoke test)")
    parser.add_argument("--small", type=int, help="entries of the small ledger")
    parser.add_argument("--large", type=int, help="entries of the larger ledger")
    parser.add_argument("--middle", type=int, help="figure 1's smaller ledger (default small)")
    parser.add_argument("--full-repeats", type=int, help="whole verifies per ledger, figure 1")
    parser.add_argument("--repeats", type=int)
    parser.add_argument("--figure", type=int, choices=(1, 2), action="append")
    parser.add_argument("--cache", type=Path, help=f"generated ledgers (default {CACHE})")
    args = parser.parse_args(argv)
    config = QUICK if args.quick else VerifyScaleConfig()
    if args.small:
        config = replace(config, small=Size(args.small))
    if args.large:
        config = replace(config, large=Size(args.large))
    if args.middle:
        config = replace(config, middle=Size(args.middle))
    if args.repeats:
        config = replace(config, repeats=args.repeats)
    if args.full_repeats:
        config = replace(config, full_repeats=args.full_repeats)
    if args.cache:
        config = replace(config, cache=args.cache)
    begun = time.perf_counter()

    def say(line: str) -> None:
        print(f"[{time.perf_counter() - begun:5.0f} s] {line}", file=sys.stderr, flush=True)

    for number in args.figure or (2, 1):
        measure = measure_figure_2 if number == 2 else measure_figure_1
        print(describe(measure(config, say)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
