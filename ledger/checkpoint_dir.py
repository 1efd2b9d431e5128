"""Checkpoint notes kept in a directory outside the database, and the policy that writes them.

    TRIALCTL_CHECKPOINT_DIR          where notes go: <ledger id>-<tree size>.txt
    TRIALCTL_CHECKPOINT_EVERY        N, or "auto" (= 1): after each signed write, a note once
                                     N entries have been signed since the newest note there
    TRIALCTL_CHECKPOINT_STALE_AFTER  verify warns when more entries than this (default 100)
                                     follow the newest note there

A note is the only evidence kept away from whoever holds the database and a stolen key: with
it, a rewrite or a cut below its size is a finding. Entries after the newest note are exposed,
so the policy keeps that window short and verify says how long it is.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from trialctl.ledger.errors import ConfigurationError, RecordingError

if TYPE_CHECKING:
    from trialctl.ledger.checkpoint import SignedCheckpoint

DIR_VARIABLE: Final = "TRIALCTL_CHECKPOINT_DIR"
EVERY_VARIABLE: Final = "TRIALCTL_CHECKPOINT_EVERY"
STALE_AFTER_VARIABLE: Final = "TRIALCTL_CHECKPOINT_STALE_AFTER"
DEFAULT_STALE_AFTER: Final = 100
AUTO: Final = "auto"
# Sizes are zero-padded so that names sort as sizes do.
_NOTE_NAME = re.compile(r"^(?P<ledger>[^\s/]+)-(?P<size>\d{12})\.txt$")


def note_path(directory: Path, ledger_id: str, tree_size: int) -> Path:
    return directory / f"{ledger_id}-{tree_size:012d}.txt"


def newest_note(directory: Path, ledger_id: str) -> Path | None:
    """The note of this ledger with the largest tree size in `directory`, if any."""
    if not directory.is_dir():
        return None
    sizes = [
        (int(match["size"]), path) for path in directory.glob(f"{ledger_id}-*.txt")
        if (match := _NOTE_NAME.match(path.name)) and match["ledger"] == ledger_id
    ]
    return max(sizes)[1] if sizes else None


def read_newest(directory: Path, ledger_id: str) -> tuple[Path, SignedCheckpoint] | None:
    # The note parser loads when a note is read: a ledger opened to sign reads none.
    from trialctl.ledger.checkpoint import read_checkpoint_file

    path = newest_note(directory, ledger_id)
    return None if path is None else (path, read_checkpoint_file(path))


def signed_since(note_size: int, tree_size: int) -> int:
    """Entries signed after a note of `note_size`, not counting the note's own record."""
    return max(0, tree_size - note_size - 1)


def parse_count(text: str, what: str, allow_auto: bool = False) -> int:
    """A positive entry count from a flag or variable; "auto" means 1 where allowed."""
    if allow_auto and text.strip().lower() == AUTO:
        return 1
    stripped = text.strip()
    if not stripped.isascii() or not stripped.isdigit() or len(stripped) > 9 \
            or int(stripped) < 1:
        choices = "a whole number from 1 to 999999999" + (' or "auto"' if allow_auto else "")
        raise ConfigurationError(f"{what} must be {choices}, not {text[:40]!r}")
    return int(stripped)


def stale_after() -> int:
    configured = os.environ.get(STALE_AFTER_VARIABLE)
    return DEFAULT_STALE_AFTER if not configured else parse_count(configured,
                                                                  STALE_AFTER_VARIABLE)


def write_note(path: Path, text: str) -> None:
    """Write a note whole or not at all, never over an existing file: into a hidden file
    beside it, flushed to disk, then linked to its name (which fails if the name is taken).
    A process killed part way leaves at most the hidden file, which no reader looks at."""
    try:
        _staged(path, text, os.link)
    except FileExistsError as e:
        raise RecordingError(f"{path} exists; a checkpoint file is never overwritten") from e


def rewrite_note(path: Path, text: str) -> None:
    """Replace a note this command wrote (with its cosignatures added) in one rename."""
    _staged(path, text, os.replace)


def _staged(path: Path, text: str, put_in_place: Callable[[Path, Path], None]) -> None:
    """`text` written to a hidden file beside `path` and flushed to disk, then put in place."""
    staging = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        with staging.open("w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        put_in_place(staging, path)
    except FileExistsError:
        raise
    except OSError as e:
        raise RecordingError(f"cannot write checkpoint note {path}: {e.strerror}") from e
    finally:
        staging.unlink(missing_ok=True)


def usable_directory(directory: Path) -> Path:
    """The directory, created if need be; refused before anything is signed if unusable."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigurationError(
            f"checkpoint directory {directory} cannot be created: {e.strerror}") from e
    if not directory.is_dir() or not os.access(directory, os.W_OK | os.X_OK):
        raise ConfigurationError(f"checkpoint directory {directory} is not a writable directory")
    return directory


@dataclass(frozen=True)
class CheckpointPolicy:
    """After each signed write: a note in `directory` once `every` entries are uncovered."""

    directory: Path
    every: int

    def due(self, ledger_id: str, tree_size: int) -> bool:
        newest = newest_note(self.directory, ledger_id)
        if newest is None:
            return True
        match = _NOTE_NAME.match(newest.name)
        assert match is not None
        return signed_since(int(match["size"]), tree_size) >= self.every


def configured_policy() -> CheckpointPolicy | None:
    """The policy TRIALCTL_CHECKPOINT_EVERY and TRIALCTL_CHECKPOINT_DIR ask for, if any."""
    every = os.environ.get(EVERY_VARIABLE)
    if not every:
        return None
    directory = os.environ.get(DIR_VARIABLE)
    if not directory:
        raise ConfigurationError(f"{EVERY_VARIABLE} needs {DIR_VARIABLE}: the directory, "
                                 "outside the database, where the notes go")
    return CheckpointPolicy(Path(directory).expanduser(),
                            parse_count(every, EVERY_VARIABLE, allow_auto=True))
