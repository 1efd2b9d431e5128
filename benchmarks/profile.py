"""cProfile of the append loop and of verify, grouped into the parts the report names."""

from __future__ import annotations

import cProfile
import os
import pstats
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.workload import drive, ledger_saver
from trialctl.ledger.application import TrialLedger, UnlockedUser
from trialctl.ledger.verify import verify_ledger

REPO_ROOT = Path(__file__).resolve().parent.parent
OWN_PACKAGES = ("ledger", "domain", "cli")


# -- 4. profiles -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProfileLine:
    function: str
    calls: int
    seconds: float
    share: float


@dataclass(frozen=True)
class Profile:
    title: str
    total: float
    events: int
    saves: int  # how many saves the profiled loop made (0 for verify)
    top: list[ProfileLine]
    parts: list[ProfileLine]


# (label, [(path suffix, function name)]): a part's time is the sum over its functions of
# the largest cumulative time of any function so named in a file so ending.
Part = tuple[str, list[tuple[str, str]]]

APPEND_PARTS: list[Part] = [
    ("signing: seal() (canonical JSON + Ed25519)", [("ledger/entry.py", "seal")]),
    ("- of which RFC 8785 canonical JSON", [("ledger/canonical.py", "canonical_bytes")]),
    ("- of which Ed25519 sign", [("ledger/keys.py", "sign")]),
    ("authority: BatchAuthority() (the signer's record, re-read only when it grew)",
     [("ledger/batch_authority.py", "__call__")]),
    ("- of which aggregate loads: Repository.get()", [("eventsourcing/application.py",
                                                       "get")]),
    ("chain: _previous_entry_hash() (remembered; a select only on a miss)",
     [("ledger/recorder.py", "_previous_entry_hash")]),
    ("numbering: write lock + tree size", [("ledger/recorder.py", "_lock_for_append"),
                                           ("ledger/recorder.py", "_tree_size")]),
    ("entry rows: _insert_stored_events()", [("eventsourcing_sqlalchemy/recorders.py",
                                              "_insert_stored_events")]),
    ("commit (Session.commit)", [("sqlalchemy/orm/session.py", "commit")]),
    ("mapping: EntryMapper.to_stored_event()", [("ledger/mapper.py", "to_stored_event")]),
]

VERIFY_PARTS: list[Part] = [
    ("read rows: read_rows()", [("ledger/verify_entries.py", "read_rows")]),
    ("key directory: key_directory()", [("ledger/verify_entries.py", "key_directory")]),
    ("per-entry checks: check_entry()", [("ledger/verify_entries.py", "check_entry")]),
    ("- of which parse_entry() (JSON, duplicate-key hook, shape)",
     [("ledger/entry.py", "parse_entry")]),
    ("- of which Ed25519 verify: signature_is_valid()",
     [("ledger/keys.py", "signature_is_valid")]),
    ("- of which load_public_key() (once per entry)", [("ledger/keys.py", "load_public_key")]),
    ("ordered checks: Auditor.check()", [("ledger/verify_order.py", "check")]),
    ("Merkle root: root_from_leaf_hashes()", [("ledger/merkle.py", "root_from_leaf_hashes")]),
    ("orphan-leaf scan: check_orphan_leaves()", [("ledger/verify_entries.py",
                                                  "check_orphan_leaves")]),
    ("waiting on worker results (Future.result)", [("concurrent/futures/_base.py", "result")]),
    ("pool shutdown", [("concurrent/futures/process.py", "shutdown")]),
]

StatsTable = dict[tuple[str, int, str], tuple[int, int, float, float, Any]]


def _table(stats: pstats.Stats) -> StatsTable:
    table: StatsTable = stats.stats  # type: ignore[attr-defined]
    return table


def _own_name(filename: str) -> str | None:
    try:
        relative = Path(filename).resolve().relative_to(REPO_ROOT)
    except ValueError:
        return None
    return str(relative) if relative.parts[0] in OWN_PACKAGES else None


def profile_call(title: str, events: int, saves: int, call: Callable[[], object],
                 parts: list[Part], top: int = 5) -> Profile:
    profiler = cProfile.Profile()
    profiler.runcall(call)
    stats = pstats.Stats(profiler)
    total = float(stats.total_tt)  # type: ignore[attr-defined]
    table = _table(stats)
    own: list[ProfileLine] = []
    for (filename, line, name), (_, calls, _, cumulative, _) in table.items():
        relative = _own_name(filename)
        if relative is not None:
            own.append(ProfileLine(f"{relative}:{line} {name}", calls, cumulative,
                                   cumulative / total))
    own.sort(key=lambda p: p.seconds, reverse=True)
    lines: list[ProfileLine] = []
    parent_shown = False
    for label, functions in parts:
        if label.startswith("- ") and not parent_shown:
            continue
        seconds = 0.0
        calls = 0
        for suffix, name in functions:
            matches = [
                (value[3], value[1]) for (filename, _, fn), value in table.items()
                if fn == name and filename.replace(os.sep, "/").endswith(suffix)
            ]
            if matches:
                best = max(matches)
                seconds += best[0]
                calls += best[1]
        if calls:
            lines.append(ProfileLine(label, calls, seconds, seconds / total))
        if not label.startswith("- "):
            parent_shown = calls > 0
    return Profile(title, total, events, saves, own[:top], lines)


def profile_append(app: TrialLedger, actor: UnlockedUser, events: int, batch: int) -> Profile:
    shape = "one per save" if batch == 1 else f"{batch} per save"
    return profile_call(
        f"append loop: {events} events through TrialLedger.record, {shape}",
        events, -(-events // batch),  # drive() saves every `batch` events, then the rest
        lambda: drive(ledger_saver(app, actor), events, batch), APPEND_PARTS,
    )


def profile_verify(app: TrialLedger, workers: int) -> Profile:
    entries = app.signed_recorder.tree_size()
    where = ("every check in this one process (workers=1)" if workers == 1 else
             f"the main process only, with {workers} worker processes")
    return profile_call(
        f"verify_ledger over {entries} entries: {where}", entries, 0,
        lambda: verify_ledger(app.signed_recorder, app.location.display(), workers=workers),
        VERIFY_PARTS,
    )

