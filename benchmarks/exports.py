"""Report and export cost on a large generated ledger: time and peak memory of `trialctl
report` (HTML and PDF), `export odm` and `export sdtm`, beside the time to read and decode
the ledger's events (the baseline `benchmarks.scale` uses), on two ledger sizes.

    .venv/bin/python -m benchmarks.exports [--small 2000] [--large 10000] [--cache DIR]
    .venv/bin/python -m benchmarks.exports --quick     # tiny sizes: the CI smoke run

Each command runs as its own `trialctl` process (so its peak resident memory is its own),
on a copy of the cached ledger (an export records an `Exported` entry, and the cached
ledger must stay as generated). Every size exports the same trial, the first one
generated: the ledger around it grows, the trial does not, so a flat peak shows the
commands read the trial and the tree head in pages rather than holding the ledger. The
export times include unlocking the signer's key (one key derivation per process).

The machine may be shared: compare figures within one run only.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.generator import Size, password
from benchmarks.scale import CACHE, TRIALCTL, cached_ledger, decode_all
from trialctl.ledger.application import TrialLedger
from trialctl.ledger.location import resolve_ledger

TRIAL = "NCT90000000"  # the first trial the generator registers
EXPORTER = "mona"  # a monitor: may export
SMALL, LARGE = Size(2_000), Size(10_000)
QUICK_SMALL = Size(150, courses=1, block_trials=2, rotations=1)
QUICK_LARGE = Size(400, courses=1, block_trials=2, rotations=1)


@dataclass(frozen=True)
class ExportConfig:
    small: Size = SMALL
    large: Size = LARGE
    cache: Path = CACHE


QUICK = ExportConfig(QUICK_SMALL, QUICK_LARGE)


@dataclass(frozen=True)
class Run:
    seconds: float
    peak_mb: float
    exit_code: int


@dataclass
class SizeFigures:
    entries: int
    decode_seconds: float  # every event read and decoded, nothing else
    runs: dict[str, Run] = field(default_factory=dict)


@dataclass
class ExportReport:
    small: SizeFigures
    large: SizeFigures
    load_average: tuple[float, float, float]
    seconds: float


def _commands(out: Path) -> dict[str, list[str]]:
    signed = ["--trial", TRIAL, "-u", EXPORTER, "--password-stdin"]
    return {
        "report --html": ["report", "--trial", TRIAL, "--html", str(out / "report.html")],
        "report --pdf": ["report", "--trial", TRIAL, "--pdf", str(out / "report.pdf")],
        "export odm": ["export", "odm", str(out / "trial.odm.xml"), *signed],
        "export sdtm": ["export", "sdtm", str(out / "sdtm"), *signed],
    }


# Runs one command as a child and prints its wall time, its peak resident memory (kB on
# Linux) and its exit code: the probe's own interpreter is not counted.
_PROBE = (
    "import resource, subprocess, sys, time\n"
    "start = time.perf_counter()\n"
    "code = subprocess.run(sys.argv[2:], input=sys.argv[1] + '\\n', text=True,\n"
    "                      capture_output=True).returncode\n"
    "print(time.perf_counter() - start,\n"
    "      resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, code)\n"
)


def measure_command(args: Sequence[str], env: dict[str, str], secret: str) -> Run:
    done = subprocess.run([sys.executable, "-c", _PROBE, secret, str(TRIALCTL), *args],
                          env=env, capture_output=True, text=True, check=True)
    seconds, peak, code = done.stdout.split()
    return Run(float(seconds), int(peak) / 1024, int(code))


def decode_seconds(path: Path) -> float:
    """The baseline: every notification of the ledger read and decoded."""
    app = TrialLedger(resolve_ledger(str(path)))
    try:
        return decode_all(app)[1]
    finally:
        app.close()


def measure_size(size: Size, cache: Path, say: Callable[[str], None]) -> SizeFigures:
    cached = cached_ledger(size, cache, say)
    keys = cache / f"{cached.stem}-keys"
    with tempfile.TemporaryDirectory(prefix="trialctl-exports-") as work:
        folder = Path(work)
        ledger = folder / "ledger.sqlite"
        shutil.copyfile(cached, ledger)
        home = folder / "home"
        home.mkdir()
        (home / "keys").symlink_to(keys.resolve())
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("TRIALCTL_")},
               "TRIALCTL_HOME": str(home), "TRIALCTL_LEDGER": str(ledger)}
        app = TrialLedger(resolve_ledger(str(ledger)))
        entries = app.signed_recorder.tree_size()
        app.close()
        figures = SizeFigures(entries, decode_seconds(ledger))
        out = folder / "out"
        out.mkdir()
        for name, args in _commands(out).items():
            say(f"{entries} entries: {name}")
            figures.runs[name] = measure_command(args, env, password(EXPORTER))
    return figures


def run_exports(config: ExportConfig,
                say: Callable[[str], None] = lambda _: None) -> ExportReport:
    clock = time.perf_counter()
    small = measure_size(config.small, config.cache, say)
    large = measure_size(config.large, config.cache, say)
    return ExportReport(small, large, os.getloadavg(), time.perf_counter() - clock)


def render_section(report: ExportReport) -> str:
    small, large = report.small, report.large
    rows = [f"| read and decode every event (baseline) | {small.decode_seconds:.2f} | — | "
            f"{large.decode_seconds:.2f} | — | — |"]
    for name in small.runs:
        a, b = small.runs[name], large.runs[name]
        failed = "" if a.exit_code == b.exit_code == 0 else \
            f" (exit {a.exit_code}/{b.exit_code})"
        rows.append(f"| `{name}`{failed} | {a.seconds:.2f} | {a.peak_mb:.0f} | "
                    f"{b.seconds:.2f} | {b.peak_mb:.0f} | {b.peak_mb / a.peak_mb:.2f}x |")
    load = " ".join(f"{x:.2f}" for x in report.load_average)
    return "\n".join([
        "## Reports and exports", "",
        f"One trial ({TRIAL}) on ledgers of {small.entries:,} and {large.entries:,} entries;"
        " each command is one `trialctl` process on a copy of the ledger. Peak memory is the"
        " process's maximum resident set.", "",
        f"| command | s ({small.entries:,}) | MB ({small.entries:,}) | s ({large.entries:,}) "
        f"| MB ({large.entries:,}) | memory large/small |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        *rows, "",
        f"Load average (1, 5, 15 min) at the end: {load}; {report.seconds:.0f} s in all.", "",
    ])


def parse_args(argv: Sequence[str] | None = None) -> ExportConfig:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="tiny ledgers: a smoke run")
    parser.add_argument("--small", type=int, default=SMALL.entries)
    parser.add_argument("--large", type=int, default=LARGE.entries)
    parser.add_argument("--cache", type=Path, default=CACHE)
    args = parser.parse_args(argv)
    if args.quick:
        return ExportConfig(QUICK.small, QUICK.large, args.cache)
    if not 0 < args.small < args.large:
        parser.error("--small must be positive and below --large")
    return ExportConfig(Size(args.small), Size(args.large), args.cache)


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_args(argv)
    report = run_exports(config, lambda t: print(t, file=sys.stderr, flush=True))
    print(render_section(report))
    return 0 if all(r.exit_code == 0 for f in (report.small, report.large)
                    for r in f.runs.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
