"""Typed failures of the ledger: each one becomes a one-line message at the CLI boundary."""

from __future__ import annotations


def first_line(error: BaseException) -> str:
    """A driver's error as one line for the user: its first line, or its type if empty."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class LedgerError(Exception):
    """Base for every failure the ledger reports to a user."""


class CheckpointError(ValueError):
    """A checkpoint file that is malformed, or whose signature does not hold.

    (Kept here, with `trialctl.ledger.checkpoint` re-exporting it, so the CLI's error
    boundary can catch it without loading the note parser into every command.)"""


class ConfigurationError(LedgerError):
    """A location, URL or environment setting is unusable."""


class NotALedgerError(LedgerError):
    """The path or database exists but holds no trialctl ledger."""


class SchemaVersionError(LedgerError):
    """The database holds a trialctl schema other than the one this trialctl reads."""


class LedgerExistsError(LedgerError):
    """`init` was asked to create a ledger where one already is."""


class DatabaseUnavailableError(LedgerError):
    """The database could not be reached or opened."""


class UnknownUserError(LedgerError):
    """No user with that id is registered in the ledger."""


class KeyFileError(LedgerError):
    """A key file is missing, unreadable, malformed or not the user's current key."""


class WrongPasswordError(LedgerError):
    """The password does not unlock the key file."""


class AuthorityError(LedgerError):
    """The signer may not take this action; the refusal itself is recorded."""


class RecordingError(LedgerError):
    """The events could not be appended (for example a concurrent writer won the race)."""


class PayloadError(LedgerError):
    """An event payload holds a value that has no exact canonical JSON form."""


# The exit status of a verification that could not finish (the database failed mid-read):
# neither "clean" (0) nor "findings" (1). The CLI exits with it on the error below.
EXIT_INCOMPLETE = 3


class VerificationIncompleteError(LedgerError):
    """`verify` could not read the whole ledger, so it has no verdict."""

    exit_code = EXIT_INCOMPLETE
