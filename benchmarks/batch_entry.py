"""Figure: batch entry (`trialctl record --from FILE`) in signed entries per second, against
the bare eventsourcing `Application` saving as many events unsigned in one save each.

The batch runs in-process through `record_batch`, the very function `record --from` calls
after reading the file with `read_lines`: every line checked as its command checks it, then
all signed with one unlock and written in one transaction. The lines are a site's routine
follow-up for patients already enrolled: labs, adverse events and concomitant medications.

Each file is run on a freshly opened `TrialLedger`, as `record --from` runs in a new process:
nothing one file loaded is still in memory for the next. The timing covers opening the
ledger and the batch (the bare application is opened afresh each round likewise); the
signer's key is unlocked once beforehand (the key derivation is reported separately by
`benchmarks.run`). Interpreter start-up and imports are not timed, for either.

Alone: `python -m benchmarks.batch_entry --lines 100 --rounds 5` (SQLite in a temporary
directory; `--postgres-url URL` for a server).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.profile import Part, Profile, profile_call
from benchmarks.workload import (
    BareApp,
    bare_saver,
    close_app,
    drive,
    open_bench_ledger,
    postgres_backend,
    sqlite_backend,
)
from trialctl.ledger.application import TrialLedger, UnlockedUser
from trialctl.ledger.batch import Outcome, record_batch
from trialctl.ledger.batch_lines import read_lines
from trialctl.ledger.demo import screening_values, shipped_protocol
from trialctl.ledger.requests import Registration
from trialctl.ledger.trials import TrialActions

SIGNER = "ivan"
PATIENTS = ("P001", "P002", "P003")  # cohort 1 of the shipped protocol
START = date(2026, 1, 5)
FATIGUE = "Fatigue (asthenia, lethargy, malaise)"
LAB_TESTS = (("anc", "/mm3", "1800"), ("platelets", "/mm3", "190000"), ("alt", "U/L", "35"))


def _day(offset: int) -> str:
    return (START + timedelta(days=offset)).isoformat()


def enrolment_lines() -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    for patient in PATIENTS:
        lines += [
            {"command": "consent", "patient": patient, "consent-version": "2.1",
             "date": _day(0)},
            {"command": "screen", "patient": patient, "date": _day(1),
             "value": screening_values(START + timedelta(days=1))},
            {"command": "enroll", "patient": patient, "date": _day(2)},
        ]
    return lines


class FollowUp:
    """Routine lines, each round's new: a lab of each kind and an adverse event a patient."""

    def __init__(self) -> None:
        self.visits = 0

    def lines(self, count: int) -> list[dict[str, Any]]:
        lines: list[dict[str, Any]] = []
        while len(lines) < count:
            self.visits += 1
            day = 3 + self.visits % 20
            for patient in PATIENTS:
                for test, unit, value in LAB_TESTS:
                    lines.append({"command": "lab", "patient": patient, "test": test,
                                  "value": value, "unit": unit, "date": _day(day)})
                lines.append({"command": "ae", "patient": patient,
                              "id": f"AE{self.visits}", "term": FATIGUE,
                              "grade": 1, "attribution": "possible", "onset": _day(day)})
        return lines[:count]


def as_file(lines: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(line) + "\n" for line in lines).encode("utf-8")


def run_file(app: TrialLedger, actor: UnlockedUser, data: bytes) -> Outcome:
    outcome = record_batch(app, read_lines(data, "batch.jsonl"), None, actor.user.user_id,
                           lambda: actor, datetime.now(UTC))
    if outcome.refused:
        raise RuntimeError(f"benchmark batch refused: {outcome.refused[0]}")
    return outcome


@dataclass
class Site:
    """A trial with its first cohort enrolled: who signs the batches, and what comes next."""

    signer: UnlockedUser
    follow_up: FollowUp


def open_site(app: TrialLedger, admin: UnlockedUser) -> Site:
    """The shipped protocol's trial with its first cohort enrolled."""
    for user_id, role in (("pat", "principal-investigator"), (SIGNER, "investigator")):
        app.register_user(admin, user_id, user_id, [role], f"{user_id}-bench-password")
    investigator = app.unlock("pat", "pat-bench-password")
    TrialActions(app).perform(Registration(shipped_protocol()), investigator, datetime.now(UTC))
    signer = app.unlock(SIGNER, f"{SIGNER}-bench-password")
    run_file(app, signer, as_file(enrolment_lines()))
    return Site(signer, FollowUp())


@dataclass
class BatchEntryResult:
    lines: int  # per batch file
    entries: int  # signed entries each batch wrote
    rounds: int
    ledger: list[float] = field(default_factory=list)  # signed entries/s, by round
    bare: list[float] = field(default_factory=list)  # unsigned events/s, same batch size

    @property
    def ratio(self) -> float:
        """The median of per-round ratios: each pair measured seconds apart."""
        return statistics.median(a / b for a, b in zip(self.ledger, self.bare, strict=True))


def bench_batch_entry(app: TrialLedger, site: Site, bare_env: dict[str, str],
                      lines: int, rounds: int) -> BatchEntryResult:
    """Each round: one batch file through `record_batch` on a freshly opened ledger, and a
    freshly opened bare application saving as many events in one save; the order alternates
    between rounds. Both timings include opening the application, as a new process would."""
    bare = BareApp(env=bare_env)  # makes the bare store's tables before the first round
    try:
        result = BatchEntryResult(lines, 0, rounds)
        for round_number in range(rounds):
            data = as_file(site.follow_up.lines(lines))

            def signed(data: bytes = data) -> None:
                start = time.perf_counter()
                fresh = TrialLedger(app.location)  # a new process's ledger: nothing cached
                try:
                    written = run_file(fresh, site.signer, data).written
                finally:
                    fresh.close()
                result.entries = written
                result.ledger.append(written / (time.perf_counter() - start))

            def unsigned() -> None:
                events = result.entries or lines
                start = time.perf_counter()
                fresh = BareApp(env=bare_env)  # opened per round too, as the ledger is
                try:
                    drive(bare_saver(fresh), events, events)
                finally:
                    close_app(fresh)
                result.bare.append(events / (time.perf_counter() - start))

            for step in ((signed, unsigned) if round_number % 2 == 0 else (unsigned, signed)):
                step()
    finally:
        close_app(bare)
    return result


BATCH_PARTS: list[Part] = [
    ("checking every line: check_lines()", [("ledger/batch.py", "check_lines")]),
    ("- of which the rules: TrialActions._take()", [("ledger/trials.py", "_take")]),
    ("- of which may-sign: check_may_record()", [("ledger/application.py",
                                                  "check_may_record")]),
    ("- of which rebuilding after a refusal", [("ledger/batch.py", "_rebuild")]),
    ("writing: record_groups()", [("ledger/application.py", "record_groups")]),
    ("- of which signing: seal() (canonical JSON + Ed25519)", [("ledger/entry.py", "seal")]),
    ("- of which canonical JSON", [("ledger/canonical.py", "canonical_bytes")]),
    ("reporting positions: _accepted()", [("ledger/batch.py", "_accepted")]),
]


def profile_batch_entry(app: TrialLedger, site: Site, lines: int) -> Profile:
    data = as_file(site.follow_up.lines(lines))
    return profile_call(f"batch entry: one file of {lines} follow-up lines through "
                        "record_batch", lines, 1, lambda: run_file(app, site.signer, data),
                        BATCH_PARTS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--lines", type=int, default=100, help="lines per batch file")
    parser.add_argument("--rounds", type=int, default=5, help="files, each on a fresh ledger")
    parser.add_argument("--postgres-url", default=None,
                        help="a PostgreSQL server to run on (default: SQLite)")
    parser.add_argument("--profile", action="store_true",
                        help="also profile one more file (cProfile, per named part)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="trialctl-batch-") as directory:
        os.environ["TRIALCTL_HOME"] = str(Path(directory) / "home")
        backends = (postgres_backend(args.postgres_url) if args.postgres_url
                    else sqlite_backend(Path(directory)))
        with backends as backend:
            app, admin, _ = open_bench_ledger(backend.ledger_url)
            try:
                site = open_site(app, admin)
                result = bench_batch_entry(app, site, backend.bare_env, args.lines,
                                           args.rounds)
                print(f"{backend.name}: {result.lines} lines = {result.entries} entries per "
                      f"file, {result.rounds} files")
                print("signed entries/s by file:", ", ".join(f"{r:,.0f}" for r in result.ledger))
                print("bare events/s by round:  ", ", ".join(f"{r:,.0f}" for r in result.bare))
                print(f"ratio (median of per-round ratios): {result.ratio:.2f}x")
                if args.profile:
                    profile = profile_batch_entry(app, site, args.lines)
                    for line in (*profile.top, *profile.parts):
                        print(f"{line.function}: {line.calls} calls, {line.seconds:.3f} s, "
                              f"{line.share:.0%}")
            finally:
                app.close()


if __name__ == "__main__":
    main()
