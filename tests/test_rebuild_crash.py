"""`projections rebuild` is all or nothing: a rebuild killed at any point leaves read models
that agree with the entries, and read models whose tracking position and rows disagree (as
an older trialctl's rebuild, cut short, left them) are rebuilt when next opened."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import trialctl
from tests.ledgers import PASSWORDS, engine_for, make_staff, sql
from tests.test_projections import small_trial
from trialctl.ledger.application import TrialLedger
from trialctl.ledger.projection import catch_up

KILL_RUNS = 4

REBUILD_SCRIPT = """\
import sys
from trialctl.ledger.application import open_ledger
from trialctl.ledger.projection import rebuild
app = open_ledger(sys.argv[1])
print("ready", flush=True)
rebuild(app)
print("done", flush=True)
"""


def _busy_ledger(url: str) -> TrialLedger:
    """A trial and a few hundred user changes: enough rows that a rebuild takes a while."""
    app = small_trial(url)
    alice = app.unlock("alice", PASSWORDS["alice"])
    for _ in range(120):
        app.grant_role(alice, "bob", "data-manager")
        app.revoke_role(alice, "bob", "data-manager")
    catch_up(app)
    return app


def _logged_positions(url: str) -> list[int]:
    result = trialctl("log", "--json", "--ledger", url)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return [json.loads(line)["position"] for line in result.stdout.splitlines()]


def _start_rebuild(script: Path, url: str) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, str(script), url], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline() == "ready\n", process.stderr
    return process


def test_a_rebuild_killed_at_random_points_leaves_every_entry_in_the_log(
    ledger_url: str, home: Path, tmp_path: Path
) -> None:
    app = _busy_ledger(ledger_url)
    size = app.signed_recorder.tree_size()
    app.close()
    script = tmp_path / "rebuild.py"
    script.write_text(REBUILD_SCRIPT)
    started = time.monotonic()
    _start_rebuild(script, ledger_url).wait(timeout=120)
    duration = time.monotonic() - started
    chooser = random.Random()
    seed = chooser.randrange(2**32)
    chooser.seed(seed)

    for run in range(KILL_RUNS):
        # One kill in each quarter of a rebuild's time, at a random point within it.
        delay = duration * (run + chooser.random()) / KILL_RUNS
        process = _start_rebuild(script, ledger_url)
        time.sleep(delay)
        process.kill()
        process.wait(timeout=30)

        assert _logged_positions(ledger_url) == list(range(size)), (seed, run, delay)
    verified = trialctl("verify", "--projections", "--ledger", ledger_url)
    assert verified.returncode == 0, verified.stdout + verified.stderr


@pytest.mark.parametrize(
    "cut",
    [
        pytest.param(("trialctl_view_trials", "trialctl_view_cohorts", "trialctl_view_patients",
                      "trialctl_view_audit"), id="views-dropped-position-kept"),
        pytest.param(("trialctl_view_trials",), id="one-view-dropped"),
    ],
)
def test_read_models_whose_position_outlived_their_rows_are_rebuilt_on_open(
    ledger_url: str, home: Path, cut: tuple[str, ...]
) -> None:
    app = small_trial(ledger_url)
    catch_up(app)
    size = app.signed_recorder.tree_size()
    status_before = trialctl("status", "--json", "--ledger", ledger_url)
    app.close()
    engine = engine_for(ledger_url)
    for table in cut:  # what an older rebuild, killed between its drops, left behind
        sql(engine, f"DROP TABLE {table}")
    engine.dispose()

    assert _logged_positions(ledger_url) == list(range(size))
    status_after = trialctl("status", "--json", "--ledger", ledger_url)
    assert status_after.returncode == 0, status_after.stderr
    assert status_after.stdout == status_before.stdout
    verified = trialctl("verify", "--projections", "--ledger", ledger_url)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def _caught_up_less_one_audit_row(ledger_url: str, position: Callable[[int], int]) -> int:
    """A staff ledger with its read models caught up, then the audit row at `position(size)`
    deleted by hand; returns the ledger's size."""
    staff = make_staff(ledger_url)
    catch_up(staff.app)
    size = staff.app.signed_recorder.tree_size()
    staff.app.close()
    engine = engine_for(ledger_url)
    sql(engine, f"DELETE FROM trialctl_view_audit WHERE position = {position(size)}")
    engine.dispose()
    return size


@pytest.mark.parametrize("end", ["first", "last"])
def test_read_models_missing_an_end_of_their_rows_are_rebuilt_on_open(
    ledger_url: str, home: Path, end: str
) -> None:
    size = _caught_up_less_one_audit_row(ledger_url, lambda size: 0 if end == "first"
                                         else size - 1)

    assert _logged_positions(ledger_url) == list(range(size))


def test_read_model_rows_deleted_between_the_ends_are_found_and_a_rebuild_restores_them(
    ledger_url: str, home: Path
) -> None:
    # Opening reads only the ends of the audit rows (its cost must not grow with the
    # ledger): a row deleted by hand between them is the auditor's check to find.
    size = _caught_up_less_one_audit_row(ledger_url, lambda _: 1)

    found = trialctl("verify", "--projections", "--ledger", ledger_url)
    assert found.returncode != 0
    assert "trialctl_view_audit" in found.stdout + found.stderr
    rebuilt = trialctl("projections", "rebuild", "--ledger", ledger_url)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert _logged_positions(ledger_url) == list(range(size))
    verified = trialctl("verify", "--projections", "--ledger", ledger_url)
    assert verified.returncode == 0, verified.stdout + verified.stderr
