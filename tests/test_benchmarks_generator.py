"""The benchmark generator makes real ledgers: every entry signed and chained, `verify`
clean, as many entries as asked (at least), and an extension of exactly the count asked.

Tiny sizes only; the generator's speed is measured by running it, never here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.generator import Size, generate
from benchmarks.verify_scale import checkpoint_and_extend
from trialctl.ledger.application import TrialLedger
from trialctl.ledger.checkpoint import read_checkpoint_file
from trialctl.ledger.location import resolve_ledger
from trialctl.ledger.trials import TrialActions
from trialctl.ledger.verify import verify_ledger

TINY = Size(150, courses=1, block_trials=2, rotations=1)


def test_generated_ledger_verifies_clean_and_holds_the_entries_asked(tmp_path: Path) -> None:
    ledger = tmp_path / "g.sqlite"
    made = generate(str(ledger), TINY, tmp_path / "keys")

    app = TrialLedger(resolve_ledger(str(ledger)))
    try:
        report = verify_ledger(app.signed_recorder, str(ledger))
        assert report.ok, report
        assert made.entries == app.signed_recorder.tree_size() >= TINY.entries
        assert made.rotations == 1
        # Every block's trials are registered, and their reviews and queries were taken on
        # the held records: the first trial's patients carry the monitor's queries.
        actions = TrialActions(app)
        assert actions.trial_ids() == sorted(made.trials)
        trial = actions.trial(made.trials[0])
        assert any(actions.patient(trial, p).queries for p in ("P0002", "P0005"))
    finally:
        app.close()


# The limit falls within the first cohort's enrolment (6) or within its treatment (97).
@pytest.mark.parametrize("new_entries", [6, 97])
def test_an_extension_adds_exactly_the_entries_asked_and_verifies_since_its_checkpoint(
    tmp_path: Path, new_entries: int,
) -> None:
    ledger, keys = tmp_path / "g.sqlite", tmp_path / "keys"
    made = generate(str(ledger), TINY, keys)

    note = checkpoint_and_extend(ledger, keys, new_entries, seed=5)

    app = TrialLedger(resolve_ledger(str(ledger)))
    try:
        # Exactly the entries asked for, after the tree the note signs.
        assert app.signed_recorder.tree_size() == made.entries + new_entries
        since = (str(note), read_checkpoint_file(note))
        assert since[1].checkpoint.tree_size == made.entries
        assert verify_ledger(app.signed_recorder, str(ledger), since=since).ok
        assert verify_ledger(app.signed_recorder, str(ledger)).ok
    finally:
        app.close()
