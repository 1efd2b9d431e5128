"""Concurrency and crashes with real `trialctl` processes: eight writers at once lose and
duplicate nothing; a `record`, a batch (`record --from`), a `projections rebuild` and a
`checkpoint --dir` killed with SIGKILL at random points leave a ledger that verifies clean,
no partial entry (a command's entries are all there or none), read models that agree with
a replay once the next command catches up, and no half-written checkpoint note.

The kill points are random but seeded: the seed is printed (pytest -s, or in a failure's
message); TRIALCTL_CRASH_SEED=N replays a run.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest
import sqlalchemy

from tests.conftest import BACKENDS, TRIALCTL, new_ledger
from tests.demo_ledgers import demo_environment
from tests.ledgers import engine_for
from tests.test_help_examples import EXAMPLES_DAY_ZERO
from trialctl.ledger.application import open_ledger
from trialctl.ledger.checkpoint import read_checkpoint_file
from trialctl.ledger.demo import demo_password
from trialctl.ledger.projection import catch_up, compare_with_replay
from trialctl.ledger.verify import verify_ledger

WRITERS = 8
KILLS_PER_COMMAND = 2
SEED = int(os.environ.get("TRIALCTL_CRASH_SEED", random.SystemRandom().randrange(2**32)))
print(f"crash suite seed: TRIALCTL_CRASH_SEED={SEED}")


@dataclass
class Site:
    url: str
    env: dict[str, str]
    work: Path
    engine: sqlalchemy.Engine

    def topics(self) -> list[str]:
        with self.engine.connect() as connection:
            return list(connection.execute(sqlalchemy.text(
                "SELECT topic FROM trialctl_events ORDER BY id")).scalars())

    def start(self, args: list[str], stdin: str) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [TRIALCTL, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, cwd=self.work,
            env={**os.environ, **self.env, "COLUMNS": "200"})
        assert process.stdin is not None
        process.stdin.write(stdin.encode())
        process.stdin.close()
        return process

    def assert_whole(self, context: object) -> None:
        """Verifies clean, and the read models agree with a replay once caught up."""
        app = open_ledger(self.url)
        try:
            report = verify_ledger(app.signed_recorder, self.url)
            assert report.ok, (context, report)
            assert compare_with_replay(app, catch_up(app)) is None, context
        finally:
            app.close()


@pytest.fixture(scope="module", params=BACKENDS)
def site(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[Site]:
    root = tmp_path_factory.mktemp(f"crash-{request.param}")
    for url in new_ledger(request.param, root / "demo.sqlite"):
        engine = engine_for(url)
        yield Site(url, demo_environment(url, root), root, engine)
        engine.dispose()


def _day(example_day: str) -> str:
    """A date of the help examples, moved to the demo's calendar (it starts 330 days ago)."""
    shift = date.today() - timedelta(days=330) - EXAMPLES_DAY_ZERO
    return (date.fromisoformat(example_day) + shift).isoformat()


def test_eight_concurrent_writers_lose_and_duplicate_nothing(site: Site) -> None:
    before = site.topics()
    alice = demo_password("alice")
    writers = [site.start(["user", "add", f"racer{n}", "--name", f"Racer {n}", "--role",
                           "monitor", "-u", "alice", "--password-stdin"],
                          f"{alice}\nracer-password-{n}\n") for n in range(WRITERS)]
    results = [(w.wait(timeout=300), w.stderr.read() if w.stderr else b"") for w in writers]
    assert all(code == 0 for code, _ in results), results
    added = site.topics()[len(before):]
    assert added == ["trialctl.User.Registered"] * WRITERS
    listed = subprocess.run([TRIALCTL, "user", "list", "--json"], capture_output=True,
                            text=True, timeout=120, env={**os.environ, **site.env})
    names = [u["user_id"] for u in json.loads(listed.stdout) if u["user_id"].startswith("racer")]
    assert sorted(names) == sorted(f"racer{n}" for n in range(WRITERS))
    site.assert_whole("writers")


def _observe(site: Site, n: int) -> tuple[list[str], str]:
    return (["record", "observe", "P006", "--kind", "ctc_count", "--value", str(n), "--date",
             _day("2026-10-01"), "-u", "mona", "--password-stdin"], demo_password("mona") + "\n")


def _batch(site: Site, n: int) -> tuple[list[str], str]:
    path = site.work / f"batch-{n}.jsonl"
    path.write_text("".join(json.dumps({
        "command": "observe", "patient": "P006", "kind": "ctc_count", "value": str(100 + i),
        "date": _day("2026-10-01")}) + "\n" for i in range(BATCH_LINES)))
    return (["record", "--from", str(path), "-u", "mona", "--password-stdin"],
            demo_password("mona") + "\n")


def _rebuild(site: Site, n: int) -> tuple[list[str], str]:
    return ["projections", "rebuild"], ""


def _checkpoint(site: Site, n: int) -> tuple[list[str], str]:
    # Each run first adds an entry, so every checkpoint has a tree size (a note) of its own.
    done = subprocess.run([TRIALCTL, *_observe(site, 1000 + n)[0]], timeout=120,
                          input=demo_password("mona") + "\n", capture_output=True, text=True,
                          env={**os.environ, **site.env})
    assert done.returncode == 0, done.stderr
    return (["checkpoint", "--dir", str(site.work / "notes"), "-u", "alice",
             "--password-stdin"], demo_password("alice") + "\n")


BATCH_LINES = 12
COMMANDS = {
    # name: (argv maker, the entries one whole run adds)
    "record": (_observe, 1),
    "batch": (_batch, BATCH_LINES),
    "rebuild": (_rebuild, 0),
    "checkpoint": (_checkpoint, 1),
}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_kill_9_at_random_points_leaves_no_partial_write(site: Site, command: str) -> None:
    make, whole = COMMANDS[command]
    chooser = random.Random(f"{SEED}-{command}-{site.url.split(':')[0]}")
    # One run to the end: it must succeed, and its time bounds the kill points.
    args, stdin = make(site, 0)
    before = len(site.topics())
    started = time.monotonic()
    finished = site.start(args, stdin)
    assert finished.wait(timeout=300) == 0, finished.stderr.read() if finished.stderr else ""
    duration = time.monotonic() - started
    assert len(site.topics()) - before == whole
    for run in range(1, KILLS_PER_COMMAND + 1):
        args, stdin = make(site, run)
        before = len(site.topics())
        delay = duration * chooser.uniform(0.3, 1.0)
        process = site.start(args, stdin)
        time.sleep(delay)
        process.kill()
        process.wait(timeout=30)
        context = (f"TRIALCTL_CRASH_SEED={SEED}", command, run, round(delay, 3))
        assert len(site.topics()) - before in (0, whole), context
        site.assert_whole(context)
        for note in sorted((site.work / "notes").glob("*.txt")):
            read_checkpoint_file(note)  # every note there is whole, or none was written
