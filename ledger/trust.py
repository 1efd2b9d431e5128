"""Trust roots an auditor pins: which ledger, which first admin key, and the last tree head
they saw. Without a pin, a ledger rewritten from its first entry with the attacker's own keys
is self-consistent and verifies clean; with one, its genesis or its history gives it away.

The trust file is JSON (written by `trialctl ledger trust`) or the same keys in TOML:

    {"trialctl_trust": 1, "ledger_id": "<uuid>", "first_admin": "<user id>",
     "first_admin_key": "<64 hex key id>",
     "last_seen": {"tree_size": 40, "root_hash": "<64 hex>"}}      (last_seen optional)
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trialctl.ledger.entry import MalformedEntryError, parse_entry
from trialctl.ledger.errors import LedgerError
from trialctl.ledger.merkle import root_from_leaf_hashes
from trialctl.ledger.recorder import SignedRecorder
from trialctl.ledger.users import LedgerRecord, User
from trialctl.ledger.verify_report import Finding, VerificationReport

TRUST_VERSION = 1
MAX_TRUST_BYTES = 64 * 1024
HEX64 = re.compile(r"[0-9a-f]{64}")
UUID_TEXT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class TrustFileError(LedgerError):
    """A trust file or pin that is malformed."""


@dataclass(frozen=True)
class TreeHead:
    tree_size: int
    root_hash: str


@dataclass(frozen=True)
class TrustRoots:
    ledger_id: str | None = None
    first_admin_key: str | None = None
    first_admin: str | None = None
    last_seen: TreeHead | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"trialctl_trust": TRUST_VERSION, "ledger_id": self.ledger_id,
                                "first_admin": self.first_admin,
                                "first_admin_key": self.first_admin_key}
        if self.last_seen is not None:
            data["last_seen"] = {"tree_size": self.last_seen.tree_size,
                                 "root_hash": self.last_seen.root_hash}
        return data

    def merged(self, ledger_id: str | None, first_admin_key: str | None) -> TrustRoots:
        """Pins given on the command line join the file's; two different values are refused."""
        for given, kept, name in ((ledger_id, self.ledger_id, "ledger id"),
                                  (first_admin_key, self.first_admin_key, "first admin key")):
            if given is not None and kept is not None and given != kept:
                raise TrustFileError(f"the {name} given ({given}) differs from the trust "
                                     f"file's ({kept})")
        return TrustRoots(
            check_ledger_id(ledger_id) if ledger_id is not None else self.ledger_id,
            check_key_id(first_admin_key) if first_admin_key is not None
            else self.first_admin_key,
            self.first_admin, self.last_seen)


def check_ledger_id(text: str) -> str:
    if not UUID_TEXT.fullmatch(text):
        raise TrustFileError(f"ledger id {text!r} is not a lowercase UUID")
    return text


def check_key_id(text: str) -> str:
    if not HEX64.fullmatch(text):
        raise TrustFileError(f"key id {text!r} is not 64 lowercase hex digits")
    return text


def read_trust_file(path: Path) -> TrustRoots:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise TrustFileError(f"cannot read trust file {path}: {e.strerror or e}") from e
    if len(data) > MAX_TRUST_BYTES:
        raise TrustFileError(f"trust file {path} is larger than {MAX_TRUST_BYTES} bytes")
    try:
        text = data.decode("utf-8")
        document = json.loads(text) if text.lstrip().startswith("{") else tomllib.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError, tomllib.TOMLDecodeError,
            RecursionError) as e:
        raise TrustFileError(f"trust file {path} is neither JSON nor TOML: "
                             f"{type(e).__name__}") from e
    return trust_from_dict(document, str(path))


def trust_from_dict(document: object, source: str) -> TrustRoots:
    if not isinstance(document, dict) or document.get("trialctl_trust") != TRUST_VERSION:
        raise TrustFileError(f"{source} is not a trialctl trust file (trialctl_trust = 1)")
    unknown = set(document) - {"trialctl_trust", "ledger_id", "first_admin",
                               "first_admin_key", "last_seen"}
    if unknown:
        raise TrustFileError(f"{source} has unknown fields: {', '.join(sorted(unknown))}")
    ledger_id, key, admin = (document.get(k) for k in ("ledger_id", "first_admin_key",
                                                       "first_admin"))
    if not isinstance(ledger_id, str) or not isinstance(key, str):
        raise TrustFileError(f"{source} needs ledger_id and first_admin_key")
    if admin is not None and not isinstance(admin, str):
        raise TrustFileError(f"{source}: first_admin is a user id")
    last_seen = None
    seen = document.get("last_seen")
    if seen is not None:
        size, root = (seen.get(k) for k in ("tree_size", "root_hash")) \
            if isinstance(seen, dict) else (None, None)
        if isinstance(size, bool) or not isinstance(size, int) or size < 0 \
                or not isinstance(root, str) or not HEX64.fullmatch(root):
            raise TrustFileError(f"{source}: last_seen is a tree_size and a 64-hex root_hash")
        last_seen = TreeHead(size, root)
    return TrustRoots(check_ledger_id(ledger_id), check_key_id(key), admin, last_seen)


def _statement(recorder: SignedRecorder, position: int) -> dict[str, Any] | None:
    found = recorder.entry_at(position)
    if found is None:
        return None
    try:
        return parse_entry(found[1].state).statement
    except MalformedEntryError:
        return None


def trust_roots_of(recorder: SignedRecorder) -> TrustRoots:
    """The pins a ledger stands for now: its identity, first admin key and tree head."""
    opening, first_admin = _statement(recorder, 0), _statement(recorder, 1)
    if opening is None or opening["type"] != LedgerRecord.Initialised.TOPIC \
            or first_admin is None or first_admin["type"] != User.Registered.TOPIC:
        raise LedgerError("the ledger does not open with its identity and first admin "
                          "(positions 0 and 1): run verify")
    leaf_hashes = recorder.leaf_hashes()
    return TrustRoots(
        str(opening["payload"]["ledger_id"]), str(first_admin["payload"]["key_id"]),
        str(first_admin["payload"]["user_id"]),
        TreeHead(len(leaf_hashes), root_from_leaf_hashes(leaf_hashes).hex()))


def check_pins(recorder: SignedRecorder, tree_size: int, root_at: Callable[[int], bytes],
               pins: TrustRoots, report: VerificationReport) -> None:
    """Findings (check `pin`) for a genesis or history other than the pinned one;
    `root_at(size)` is the root of the ledger's first `size` leaves."""
    def finding(detail: str, position: int | None = None) -> None:
        report.findings.append(Finding("pin", detail, position))

    opening, first_admin = _statement(recorder, 0), _statement(recorder, 1)
    if pins.ledger_id is not None:
        found = opening["payload"].get("ledger_id") if opening is not None \
            and opening["type"] == LedgerRecord.Initialised.TOPIC else None
        if found != pins.ledger_id:
            finding(f"the ledger's identity at position 0 is {found!r}, not the pinned "
                    f"ledger {pins.ledger_id}: a substitute ledger", 0)
    if pins.first_admin_key is not None:
        found = first_admin["payload"].get("key_id") if first_admin is not None \
            and first_admin["type"] == User.Registered.TOPIC else None
        if found != pins.first_admin_key:
            shown = found[:16] + "…" if isinstance(found, str) else repr(found)
            finding(f"the first admin's key at position 1 is {shown}, not the pinned key "
                    f"{pins.first_admin_key[:16]}…: a substitute ledger", 1)
    if pins.last_seen is not None:
        size = pins.last_seen.tree_size
        if size > tree_size:
            finding(f"ledger truncated: the trusted tree head covers {size} entries, the "
                    f"ledger holds {tree_size}")
        elif root_at(size).hex() != pins.last_seen.root_hash:
            finding(f"history rewritten: the first {size} entries no longer hash to the "
                    f"trusted root {pins.last_seen.root_hash[:16]}…")
