"""The auditor's bundle: everything needed to verify a ledger offline, in one directory.

    entries.jsonl     one line per entry: {"position": p, "entry": base64(stored bytes)}
    keys.json         every user key and the positions at which it could sign
    checkpoints/      checkpoint notes, with their witnesses' cosignatures
    FORMAT.md         the format the bytes follow
    manifest.json     the tree head and each file's SHA-256, signed by the exporting user

`verify --bundle` loads the entries into a throwaway SQLite ledger and runs the full
`verify` on them (so one set of rules judges both), then checks the manifest, its
signature by a key the entries show valid at the bundle's tree size, and that keys.json
says what the entries say.
"""

from __future__ import annotations

import base64
import binascii
import json
import shutil
import sqlite3
import tempfile
from collections.abc import Iterable, Sequence
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from uuid import UUID

from trialctl.ledger.checkpoint import CheckpointError, SignedCheckpoint, read_checkpoint_file
from trialctl.ledger.entry import MalformedEntryError, parse_entry
from trialctl.ledger.errors import LedgerError
from trialctl.ledger.manifest import check_document_signature, file_sha256, sign_document
from trialctl.ledger.merkle import hash_leaf, root_from_leaf_hashes
from trialctl.ledger.recorder import SignedRecorder
from trialctl.ledger.verify_report import Finding, VerificationReport

if TYPE_CHECKING:
    from trialctl.ledger.application import UnlockedUser

BUNDLE_FORMAT: Final = "trialctl-bundle/v1"
# Installed with the package (trialctl/docs is the repository's docs/), so a wheel has it too.
FORMAT_DOC: Final = Path(str(files("trialctl") / "docs" / "FORMAT.md"))
REGISTERED: Final = "trialctl.User.Registered"
KEY_ROTATED: Final = "trialctl.User.KeyRotated"
KEY_REVOKED: Final = "trialctl.User.KeyRevoked"


class BundleError(LedgerError):
    """A bundle that cannot be written or read."""


def key_validity(entries: Iterable[tuple[int, bytes]]) -> list[dict[str, Any]]:
    """Each user key with the first and last position it could sign at (FORMAT.md section
    9): from the entry after its registration or rotation, to the entry that rotated or
    revoked it (still signed with it), or null while it stands."""
    keys: dict[str, dict[str, Any]] = {}
    current: dict[str, str] = {}
    for position, state in entries:
        try:
            statement = parse_entry(state).statement
        except MalformedEntryError:
            continue
        kind, payload = statement.get("type"), statement.get("payload") or {}
        if kind in (REGISTERED, KEY_ROTATED):
            user = str(payload.get("user_id") or current_user(keys, statement))
            if user in current:
                keys[current[user]]["valid_to"] = position
            keys[str(payload["key_id"])] = {"user_id": user, "key_id": payload["key_id"],
                                            "public_key": payload["public_key"],
                                            "valid_from": position + 1, "valid_to": None}
            current[user] = str(payload["key_id"])
        elif kind == KEY_REVOKED and payload.get("key_id") in keys:
            key = keys[str(payload["key_id"])]
            if key["valid_to"] is None:
                key["valid_to"] = position
    return sorted(keys.values(), key=lambda k: (k["valid_from"], k["user_id"]))


def current_user(keys: dict[str, dict[str, Any]], statement: dict[str, Any]) -> str:
    """A rotation names no user: it belongs to the aggregate of the user's registration."""
    from trialctl.ledger.users import user_aggregate_id

    for key in keys.values():
        if str(user_aggregate_id(key["user_id"])) == statement.get("aggregate_id"):
            return str(key["user_id"])
    return ""


def write_bundle(recorder: SignedRecorder, target: Path,
                 notes: Sequence[tuple[Path, SignedCheckpoint]], ledger_id: str,
                 exporter: UnlockedUser, exported_at: str) -> dict[str, Any]:
    """Write the bundle into the new (or empty) directory `target`, with its manifest signed
    by `exporter`; the manifest's signed payload."""
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise BundleError(f"{target} exists and is not an empty directory")
    if not FORMAT_DOC.is_file():
        raise BundleError(f"cannot find FORMAT.md to put in the bundle (looked at {FORMAT_DOC})")
    made = not target.exists()
    try:
        return _write_files(recorder, target, notes, ledger_id, exporter, exported_at)
    except BaseException:
        # The directory was new or empty: whatever is in it now is this bundle's, half made.
        if made:
            shutil.rmtree(target, ignore_errors=True)
        else:
            for child in list(target.iterdir()):
                if child.is_dir():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)
        raise


def _write_files(recorder: SignedRecorder, target: Path,
                 notes: Sequence[tuple[Path, SignedCheckpoint]], ledger_id: str,
                 exporter: UnlockedUser, exported_at: str) -> dict[str, Any]:
    from trialctl.ledger.verify_entries import read_rows

    entries = [(row.leaf_position, row.state) for row in read_rows(recorder)
               if row.leaf_position is not None]
    leaves = [hash_leaf(state) for _, state in entries]
    for source, signed_note in notes:
        size = signed_note.checkpoint.tree_size
        if size > len(leaves) or root_from_leaf_hashes(leaves[:size]) != \
                signed_note.checkpoint.root_hash:
            raise BundleError(f"checkpoint {source} does not match this ledger's entries")
    (target / "checkpoints").mkdir(parents=True, exist_ok=True)
    with (target / "entries.jsonl").open("w", encoding="utf-8") as out:
        for position, state in entries:
            out.write(json.dumps({"position": position,
                                  "entry": base64.b64encode(state).decode("ascii")}) + "\n")
    (target / "keys.json").write_text(
        json.dumps(key_validity(entries), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    for index, (source, signed_note) in enumerate(notes):
        name = f"{index:03d}-{source.name}"
        (target / "checkpoints" / name).write_text(signed_note.to_text(), encoding="utf-8")
    shutil.copyfile(FORMAT_DOC, target / "FORMAT.md")
    files = sorted(p for p in target.rglob("*") if p.is_file())
    signed = {
        "format": BUNDLE_FORMAT,
        "ledger_id": ledger_id,
        "tree_size": len(leaves),
        "root_hash": root_from_leaf_hashes(leaves).hex(),
        "exported_at": exported_at,
        "exported_by": {"user_id": exporter.user.user_id, "name": exporter.user.name,
                        "key_id": exporter.keys.key_id,
                        "public_key": exporter.keys.public_key_hex},
        "files": [{"name": p.relative_to(target).as_posix(), "sha256": file_sha256(p),
                   "bytes": p.stat().st_size} for p in files],
    }
    with (target / "manifest.json").open("xb") as handle:
        handle.write(sign_document(signed, exporter.keys))
    return signed


# --------------------------------------------------------------------------- reading


def read_entries(directory: Path) -> list[tuple[int, bytes]]:
    try:
        lines = (directory / "entries.jsonl").read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise BundleError(f"cannot read {directory}/entries.jsonl: {e}") from e
    entries = []
    for number, line in enumerate(lines, 1):
        try:
            item = json.loads(line)
            position, state = item["position"], base64.b64decode(item["entry"], validate=True)
        except (ValueError, KeyError, TypeError, binascii.Error) as e:
            raise BundleError(f"entries.jsonl line {number} is not an entry") from e
        if not isinstance(position, int) or isinstance(position, bool) or position < 0:
            raise BundleError(f"entries.jsonl line {number}: position is not a count")
        entries.append((position, state))
    return entries


def read_bundle_manifest(directory: Path) -> dict[str, Any]:
    """The manifest document: `{"signed": …, "signatures": […]}`. A bundle written before
    manifests were signed holds the payload alone; it is read as one with no signature, so
    verifying it reports the missing signature rather than refusing the bundle."""
    try:
        document = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
        unsigned = isinstance(document, dict) and "signed" not in document
        if unsigned:
            document = {"signed": document, "signatures": []}
        signed = document["signed"]
        if signed["format"] != BUNDLE_FORMAT or not isinstance(signed["files"], list):
            raise ValueError(signed["format"])
        if not all(isinstance(item, dict) and {"name", "sha256"} <= item.keys()
                   for item in signed["files"]):
            raise ValueError("a listed file without its name or SHA-256")
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise BundleError(f"{directory} holds no readable {BUNDLE_FORMAT} manifest") from e
    return dict(document)


def manifest_findings(directory: Path, document: dict[str, Any]) -> list[str]:
    """A file missing, changed or not listed, by the manifest's SHA-256s."""
    listed = {str(f["name"]): str(f["sha256"]) for f in document["signed"]["files"]}
    findings = []
    present = {p.relative_to(directory).as_posix() for p in directory.rglob("*")
               if p.is_file() and p.name != "manifest.json"}
    for name, digest in sorted(listed.items()):
        if ".." in Path(name).parts or Path(name).is_absolute():
            findings.append(f"manifest names {name!r} outside the bundle")
        elif name not in present:
            findings.append(f"{name}: missing")
        elif file_sha256(directory / name) != digest:
            findings.append(f"{name}: SHA-256 differs from the manifest")
    findings.extend(f"{name}: not in the manifest" for name in sorted(present - set(listed)))
    return findings


def signature_findings(document: dict[str, Any], keys: Sequence[dict[str, Any]],
                       tree_size: int, root_hex: str) -> list[str]:
    """The manifest's signature, and its signer's key as the entries record it (`keys`,
    `key_validity` of the entries, never keys.json): a key of the user it names, standing
    at the bundle's tree size (not rotated or revoked inside it), so a key revoked after it
    was stolen cannot sign a bundle of the ledger. The tree head the manifest states must
    be the entries' own."""
    signed = document["signed"]
    if not document.get("signatures"):
        return ["manifest.json carries no signature"]
    problem = check_document_signature(document, "exported_by", "manifest", "exporter")
    if problem:
        return [f"manifest.json: {problem}"]
    findings = []
    if signed.get("tree_size") != tree_size or signed.get("root_hash") != root_hex:
        findings.append("manifest.json: its tree size or root is not the entries'")
    exporter = signed["exported_by"]
    key = next((k for k in keys if k["key_id"] == exporter["key_id"]), None)
    if key is None or key["user_id"] != exporter.get("user_id"):
        findings.append(f"manifest.json: signed with key {str(exporter['key_id'])[:16]}…, "
                        f"which the entries do not give to {exporter.get('user_id')!r}")
    elif key["valid_to"] is not None or key["valid_from"] > tree_size:
        findings.append(f"manifest.json: signed with key {key['key_id'][:16]}…, not valid "
                        f"at tree size {tree_size} (rotated or revoked at position "
                        f"{key['valid_to']})")
    return findings


def _load(entries: Sequence[tuple[int, bytes]], path: Path) -> None:
    """The entries as rows of a new SQLite ledger; columns repeat the signed values."""
    from trialctl.ledger.application import TrialLedger
    from trialctl.ledger.location import resolve_ledger

    TrialLedger(resolve_ledger(str(path)), create=True).close()
    connection = sqlite3.connect(path)
    try:
        with connection:
            for number, (position, state) in enumerate(entries, 1):
                try:
                    statement = parse_entry(state).statement
                    aggregate = UUID(str(statement["aggregate_id"])).bytes
                    version, topic = statement["aggregate_version"], statement["type"]
                except (MalformedEntryError, ValueError, KeyError, TypeError):
                    aggregate, version, topic = bytes(16), -number, ""
                connection.execute(
                    "INSERT INTO trialctl_events (id, originator_id, originator_version, topic,"
                    " state) VALUES (?, ?, ?, ?, ?)", (number, aggregate, version, topic, state))
                connection.execute(
                    "INSERT INTO trialctl_leaves (position, notification_id, leaf_hash) "
                    "VALUES (?, ?, ?)", (position, number, hash_leaf(state)))
    except sqlite3.IntegrityError as e:
        raise BundleError(f"the bundle repeats an entry or a position: {e}") from e
    finally:
        connection.close()


def _opening_ledger_id(entries: Sequence[tuple[int, bytes]]) -> str | None:
    """The ledger id the bundle's first entry (the ledger's opening) states; None when it
    cannot be read, which the entry checks report at position 0."""
    from trialctl.ledger.users import LedgerRecord

    if not entries:
        return None
    try:
        statement = parse_entry(entries[0][1]).statement
        if statement["type"] != LedgerRecord.Initialised.TOPIC:
            return None
        return str(statement["payload"]["ledger_id"])
    except (MalformedEntryError, KeyError, TypeError):
        return None


def verify_bundle(directory: Path, extra_notes: Sequence[tuple[str, SignedCheckpoint]] = ()
                  ) -> VerificationReport:
    """Verify a bundle offline: every check `verify` makes on the entries, each checkpoint
    note (the bundle's and `extra_notes`), the manifest's SHA-256s and keys.json against the
    entries."""
    from trialctl.ledger.application import TrialLedger
    from trialctl.ledger.location import resolve_ledger
    from trialctl.ledger.verify import verify_ledger

    if not directory.is_dir():
        raise BundleError(f"{directory} is not a bundle directory")
    document = read_bundle_manifest(directory)
    problems = manifest_findings(directory, document)
    entries = read_entries(directory)
    leaves = [hash_leaf(state) for _, state in entries]
    problems.extend(signature_findings(document, key_validity(entries), len(leaves),
                                       root_from_leaf_hashes(leaves).hex()))
    opened = _opening_ledger_id(entries)
    if opened is not None and document["signed"].get("ledger_id") != opened:
        problems.append(f"manifest.json: names ledger {document['signed'].get('ledger_id')!r}, "
                        f"but the entries open ledger {opened!r}")
    notes = []
    for path in sorted((directory / "checkpoints").glob("*")):
        try:
            notes.append((f"checkpoints/{path.name}", read_checkpoint_file(path)))
        except (CheckpointError, OSError) as e:
            problems.append(f"checkpoints/{path.name}: {e}")
    with tempfile.TemporaryDirectory(prefix="trialctl-bundle-") as scratch:
        path = Path(scratch) / "bundle.sqlite"
        _load(entries, path)
        ledger = TrialLedger(resolve_ledger(str(path)))
        try:
            report = verify_ledger(ledger.signed_recorder, str(directory),
                                   [*notes, *extra_notes])
        finally:
            ledger.close()
    try:
        listed = json.loads((directory / "keys.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        listed = None
        problems.append(f"keys.json: unreadable ({e})")
    if listed is not None and listed != key_validity(entries):
        problems.append("keys.json: the keys or their positions differ from the entries'")
    report.findings.extend(Finding("bundle", p) for p in problems)
    return report
