"""A full verify folds each leaf into a frontier, keeping the tree at the sizes its checks
name, instead of holding every leaf: the roots it compares must be the ones the leaves
give, and a wrong checkpoint root must still be found at its position."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.ledgers import make_staff
from trialctl.ledger.application import TrialLedger
from trialctl.ledger.merkle import root_from_leaf_hashes
from trialctl.ledger.merkle_frontier import PrefixTrees
from trialctl.ledger.verify import verify_ledger


@given(st.integers(0, 80), st.sets(st.integers(-2, 90)))
def test_the_tree_kept_at_each_size_has_the_root_of_that_many_leaves(
    count: int, sizes: set[int]
) -> None:
    leaves = [hashlib.sha256(i.to_bytes(2, "big")).digest() for i in range(count)]
    prefixes = PrefixTrees(sizes)
    for leaf in leaves:
        prefixes.append(leaf)
    assert prefixes.size == count
    for size in [*sizes, count]:
        tree = prefixes.at(size)
        if 0 <= size <= count:
            assert tree is not None
            assert tree.root() == root_from_leaf_hashes(leaves[:size])
        else:
            assert tree is None  # never reached, or no tree at all


def _with_wrong_recorded_checkpoint(url: str) -> tuple[TrialLedger, int]:
    """A ledger whose validly signed checkpoint entry names a root its leaves do not give."""
    staff = make_staff(url)
    app = staff.app
    size = app.signed_recorder.tree_size()
    record = app.ledger_record()
    record.record_checkpoint(tree_size=size, root_hash="ab" * 32)
    app.record(staff.alice, record, policy=False)
    app.grant_role(staff.alice, "bob", "data-manager")
    return app, size


@pytest.mark.parametrize("missed_up_front", [False, True], ids=["kept", "recomputed"])
def test_a_wrong_recorded_checkpoint_root_is_found_at_its_position(
    ledger_url: str, home: object, monkeypatch: pytest.MonkeyPatch, missed_up_front: bool
) -> None:
    app, size = _with_wrong_recorded_checkpoint(ledger_url)
    if missed_up_front:
        # A size the reading before the pass did not see: the tree is hashed again.
        monkeypatch.setattr("trialctl.ledger.verify.sizes_named", lambda recorder: set())
    report = verify_ledger(app.signed_recorder, ledger_url, workers=1)
    assert [(f.check, f.position, f.detail) for f in report.findings] == [
        ("checkpoint", size, f"recorded checkpoint root for size {size} does not match the "
         "entries")]
    assert report.tree_size == size + 2
    app.close()
