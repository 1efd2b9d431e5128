"""One export, start to end: fix the tree head, write the files, sign their manifest, and
record the export as a signed `trialctl.Ledger.Exported` entry.

Nothing is left behind when a step fails: the files and the manifest are removed again, so
an export on disk always has its manifest and its entry in the ledger.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from trialctl.domain.trial import Trial
from trialctl.ledger.application import TrialLedger, UnlockedUser
from trialctl.ledger.authority import choose_role
from trialctl.ledger.errors import LedgerError
from trialctl.ledger.export_pages import leaf_hashes
from trialctl.ledger.manifest import (
    ExportHead,
    build_manifest,
    manifest_path,
    sign_manifest,
    streamed_root,
)
from trialctl.ledger.mapper import format_time
from trialctl.ledger.trials import TrialActions
from trialctl.ledger.users import LedgerRecord

# Writes the export under the target (a file, or a directory it may fill) for the entries
# below the tree size, and returns each written file by its name relative to the manifest,
# with a summary of what it holds.
Writer = Callable[["ExportSource", Path], tuple[dict[str, Path], dict[str, Any]]]


@dataclass(frozen=True)
class ExportSource:
    """What a writer reads: the ledger, the trial and the tree size the export is cut at."""

    ledger: TrialLedger
    trial: Trial
    tree_size: int
    exported_at: datetime


@dataclass(frozen=True)
class ExportResult:
    kind: str
    trial: str
    files: dict[str, str]  # name → SHA-256
    manifest: str
    tree_size: int
    root_hash: str
    position: int  # of the Exported entry
    summary: dict[str, Any]


def check_target(target: Path, directory: bool) -> None:
    """Refuse, before anything is read or signed, a target that is already there."""
    manifest = manifest_path(target, directory)
    if directory:
        if target.exists() and (not target.is_dir() or any(target.iterdir())):
            raise LedgerError(f"{target} exists and is not an empty directory; an export is "
                              "never written over another")
    elif target.exists() or manifest.exists():
        raise LedgerError(f"{target if target.exists() else manifest} exists; an export is "
                          "never written over another")
    if not directory and target.suffix == ".json" and target.name.endswith(".manifest.json"):
        raise LedgerError(f"{target}: name the export file, not its manifest")


def prepare(ledger: TrialLedger, trial_ref: str | None, signer: str) -> Trial:
    """The trial to export, once the signer is known to be allowed to record an export."""
    trial = TrialActions(ledger).trial(trial_ref)
    ledger.check_may_sign(signer, [LedgerRecord.Exported.TOPIC])
    return trial


def run_export(
    ledger: TrialLedger, actor: UnlockedUser, trial: Trial, kind: str, target: Path,
    directory: bool, write: Writer, now: datetime,
) -> ExportResult:
    check_target(target, directory)
    recorder = ledger.signed_recorder
    tree_size = recorder.tree_size()
    root = streamed_root(leaf_hashes(recorder, tree_size)).hex()
    record = ledger.ledger_record()
    head = ExportHead(kind, record.ledger_id, trial.protocol_id, tree_size, root)
    manifest = manifest_path(target, directory)
    made_directory = directory and not target.exists()
    try:
        if directory:
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
        written, summary = write(ExportSource(ledger, trial, tree_size, now), target)
        role = choose_role(actor.user, [LedgerRecord.Exported.TOPIC]) or ""
        signer = {"user_id": actor.user.user_id, "name": actor.user.name, "role": role,
                  "key_id": actor.keys.key_id}
        signed = build_manifest(head, written, format_time(now), signer,
                                actor.keys.public_key_hex, {"holds": summary})
        manifest_bytes = sign_manifest(signed, actor.keys)
        with manifest.open("xb") as handle:
            handle.write(manifest_bytes)
        files = [{"name": f["name"], "sha256": f["sha256"]} for f in signed["files"]]
        record.record_export(
            kind=kind, trial=trial.protocol_id, tree_size=tree_size, root_hash=root,
            manifest_sha256=hashlib.sha256(manifest_bytes).hexdigest(), files=files,
        )
        notification_ids = ledger.record(actor, record)
    except BaseException:
        _remove_partial(target, manifest, directory, made_directory)
        raise
    position = ledger.signed_recorder.entries_for(notification_ids)[0][0]
    return ExportResult(kind, trial.protocol_id, {f["name"]: f["sha256"] for f in files},
                        str(manifest), tree_size, root, position, summary)


def _remove_partial(target: Path, manifest: Path, directory: bool, made_directory: bool) -> None:
    """Remove what a failed export wrote. A directory export's directory was new or empty
    (`check_target`), so every file in it is the export's, written or half-written."""
    if made_directory:
        shutil.rmtree(target, ignore_errors=True)
        return
    paths = [p for p in target.iterdir() if p.is_file()] if directory and target.is_dir() \
        else [target, manifest]
    for path in paths:
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)
