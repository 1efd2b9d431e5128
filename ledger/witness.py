"""A witness: a second party that cosigns a log's checkpoints only after checking that each
one extends the last it saw (c2sp.org/tlog-witness, c2sp.org/tlog-cosignature).

A witness directory holds:

    witness.json    its name and public key (and how its private key is kept)
    key.json        its Ed25519 key, sealed with a password (trialctl-key/v1, as users' keys)
      or key.seed   the key unsealed, mode 0600, for a witness run as a service
    state.json      the logs it trusts: origin -> log keys, last cosigned size and root, and
                    that checkpoint with the log's verified signatures and the cosignature
                    (what a monitor reads: `GET /<origin>/checkpoint`, ledger/witness_http.py)

A cosignature is a signed-note line by the witness:

    — <name> base64(key ID || u64 big-endian timestamp || Ed25519 signature)

with key ID = SHA-256(name || LF || 0x04 || public key)[:4] and the signature over
"cosignature/v1" LF "time " <timestamp> LF || the checkpoint's body.

The check and the state update run under one lock, so two submissions cannot roll the
state back (the race tlog-witness describes).
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import json
import os
import struct
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
)

from trialctl.ledger.errors import LedgerError
from trialctl.ledger.keys import KeyPair, open_key_file, seal_key_file
from trialctl.ledger.merkle import MerkleError, empty_root, verify_consistency
from trialctl.ledger.signed_note import (
    COSIGNATURE_V1,
    DASH,
    ED25519,
    Note,
    NoteError,
    NoteSignature,
    Verifier,
    check_key_name,
    ed25519_valid,
    open_note,
    parse_note,
    parse_vkey,
)

if TYPE_CHECKING:
    from trialctl.ledger.application import TrialLedger
    from trialctl.ledger.checkpoint import SignedCheckpoint
    from trialctl.ledger.verify_report import VerificationReport

WITNESS_FORMAT: Final = "trialctl-witness/v1"
STATE_FORMAT: Final = "trialctl-witness-state/v1"
SEED_FORMAT: Final = "trialctl-witness-seed/v1"
MAX_PROOF_LINES: Final = 63
MAX_TIMESTAMP: Final = 2**63 - 1

# HTTP status codes of c2sp.org/tlog-witness, used for file-based refusals too.
BAD_REQUEST: Final = 400
FORBIDDEN: Final = 403
NOT_FOUND: Final = 404
CONFLICT: Final = 409
UNPROCESSABLE: Final = 422


class WitnessError(LedgerError):
    """A witness directory, key or state file that cannot be used."""


class WitnessRefusal(LedgerError):
    """The witness will not cosign; `status` is the tlog-witness HTTP status code."""

    def __init__(self, status: int, message: str, known_size: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.known_size = known_size


# --------------------------------------------------------------------------- cosignatures


def cosigned_message(body: str, timestamp: int) -> bytes:
    """What a cosignature/v1 signs: the header line, the time line, the checkpoint body."""
    return f"cosignature/v1\ntime {timestamp}\n".encode("ascii") + body.encode("utf-8")


def cosign(body: str, name: str, private_key: Ed25519PrivateKey, timestamp: int) -> NoteSignature:
    if not 0 < timestamp <= MAX_TIMESTAMP:
        raise WitnessError("a cosignature's timestamp is a positive 63-bit POSIX time")
    verifier = cosigner_verifier(name, private_key)
    signature = private_key.sign(cosigned_message(body, timestamp))
    return NoteSignature(name, verifier.key_id, struct.pack(">Q", timestamp) + signature)


def cosigner_verifier(name: str, private_key: Ed25519PrivateKey) -> Verifier:
    from trialctl.ledger.signed_note import raw_public_key

    return Verifier(check_key_name(name), COSIGNATURE_V1, raw_public_key(private_key.public_key()))


def cosignature_time(verifier: Verifier, body: str, signature: NoteSignature) -> int | None:
    """The timestamp of a valid cosignature by `verifier` on `body`, or None if it fails."""
    if not verifier.matches(signature) or len(signature.signature) != 8 + 64:
        return None
    (timestamp,) = struct.unpack(">Q", signature.signature[:8])
    if timestamp > MAX_TIMESTAMP:
        return None
    message = cosigned_message(body, timestamp)
    return timestamp if ed25519_valid(verifier.public_key, signature.signature[8:],
                                      message) else None


@dataclass(frozen=True)
class Vouch:
    """A witness whose cosignature on a checkpoint holds."""

    name: str
    key_id: str
    timestamp: int

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "key_id": self.key_id, "timestamp": self.timestamp}


def parse_cosigner_key(text: str) -> Verifier:
    try:
        verifier = parse_vkey(text)
    except NoteError as e:
        raise WitnessError(f"witness key {text.strip()[:40]!r}: {e}") from e
    if verifier.key_type != COSIGNATURE_V1:
        raise WitnessError(f"witness key {verifier.name!r} is not a cosignature/v1 key "
                           "(type 0x04)")
    return verifier


def vouches(note: Note, witnesses: Sequence[Verifier]) -> tuple[list[Vouch], list[str]]:
    """Which known witnesses vouched for the note, and the known lines that fail.

    Lines by unknown keys are ignored; a line of a known witness's name and key ID that
    does not verify is a problem (signed-note's rule: such a note is malformed)."""
    found: list[Vouch] = []
    problems: list[str] = []
    for signature in note.signatures:
        for witness in witnesses:
            if not witness.matches(signature):
                continue
            timestamp = cosignature_time(witness, note.text, signature)
            if timestamp is None:
                problems.append(f"cosignature of witness {witness.name!r} does not verify")
            elif all(v.name != witness.name or v.key_id != witness.key_id.hex() for v in found):
                found.append(Vouch(witness.name, witness.key_id.hex(), timestamp))
    return found, problems


# --------------------------------------------------------------------------- checkpoints


@dataclass(frozen=True)
class LogHead:
    """The first three lines of any C2SP checkpoint: the log, its size, its root."""

    origin: str
    size: int
    root: bytes


def read_log_head(note: Note) -> LogHead:
    lines = note.text.split("\n")[:-1]
    if len(lines) < 3:
        raise WitnessRefusal(BAD_REQUEST, "checkpoint has fewer than three lines")
    origin, size_text, root_text = lines[:3]
    if not origin or not size_text.isascii() or not size_text.isdigit() or \
            (size_text != "0" and size_text.startswith("0")):
        raise WitnessRefusal(BAD_REQUEST, "checkpoint has no origin or no decimal tree size")
    try:
        root = base64.b64decode(root_text, validate=True)
    except binascii.Error as e:
        raise WitnessRefusal(BAD_REQUEST, "checkpoint root is not base64") from e
    if len(root) != 32:
        raise WitnessRefusal(BAD_REQUEST, "checkpoint root is not 32 bytes")
    return LogHead(origin, int(size_text), root)


def parse_submission(body: bytes) -> tuple[int, list[bytes], str]:
    """An add-checkpoint request body: `old N`, proof lines, a blank line, the checkpoint."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise WitnessRefusal(BAD_REQUEST, "request is not UTF-8") from e
    head, sep, note = text.partition("\n\n")
    if not sep:
        raise WitnessRefusal(BAD_REQUEST, "request has no blank line before the checkpoint")
    lines = head.split("\n")
    first = lines[0]
    size_text = first.removeprefix("old ")
    if first == size_text or not size_text.isascii() or not size_text.isdigit() or \
            (size_text != "0" and size_text.startswith("0")):
        raise WitnessRefusal(BAD_REQUEST, "request does not start with 'old <size>'")
    if len(lines) - 1 > MAX_PROOF_LINES:
        raise WitnessRefusal(BAD_REQUEST, f"more than {MAX_PROOF_LINES} proof lines")
    proof = []
    for line in lines[1:]:
        try:
            proof.append(base64.b64decode(line, validate=True))
        except binascii.Error as e:
            raise WitnessRefusal(BAD_REQUEST, "a proof line is not base64") from e
    return int(size_text), proof, note


def submission_body(old_size: int, proof: Sequence[bytes], note_text: str) -> bytes:
    lines = [f"old {old_size}", *(base64.b64encode(h).decode("ascii") for h in proof)]
    return ("\n".join(lines) + "\n\n" + note_text).encode("utf-8")


# --------------------------------------------------------------------------- the witness


@dataclass
class KnownLog:
    keys: list[str]
    size: int = 0
    root: bytes | None = None
    # The last checkpoint cosigned, as a note: its text, the log's signature lines that
    # verified and the witness's cosignature. None until the first cosignature (and in
    # state written before it was kept).
    checkpoint: str | None = None

    def verifiers(self) -> list[Verifier]:
        return [parse_vkey(k) for k in self.keys]


def _write_atomically(path: Path, text: str, mode: int = 0o600) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _dumps(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


class Witness:
    """A witness directory: its identity, its key and its state of known logs."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        document = self._read_json(directory / "witness.json", WITNESS_FORMAT)
        try:
            self.name = check_key_name(str(document["name"]))
            self.public_key = bytes.fromhex(str(document["public_key"]))
            self.sealed = bool(document["sealed"])
        except (KeyError, ValueError, NoteError) as e:
            raise WitnessError(f"{directory}/witness.json is corrupt") from e
        if len(self.public_key) != 32:
            raise WitnessError(f"{directory}/witness.json holds no 32-byte public key")
        self._private: Ed25519PrivateKey | None = None

    @property
    def verifier(self) -> Verifier:
        return Verifier(self.name, COSIGNATURE_V1, self.public_key)

    @staticmethod
    def _read_json(path: Path, expected: str) -> dict[str, Any]:
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as e:
            raise WitnessError(f"{path.parent} is not a witness directory (no {path.name}); "
                               "create one with `trialctl witness init`") from e
        except (OSError, ValueError) as e:
            raise WitnessError(f"cannot read {path}: {e}") from e
        if not isinstance(document, dict) or document.get("format") != expected:
            raise WitnessError(f"{path} is not a {expected} file")
        return document

    # -- the key ------------------------------------------------------------------------

    def unlock(self, password: str | None) -> None:
        """Open the private key: the sealed one with `password`, or the unsealed seed."""
        if self.sealed:
            if password is None:
                raise WitnessError(f"witness {self.name}'s key is sealed: a password is needed")
            keys = open_key_file(self.directory / "key.json", password)
            private = keys.private_key
        else:
            private = self._read_seed()
        if cosigner_verifier(self.name, private).public_key != self.public_key:
            raise WitnessError(f"the key in {self.directory} is not witness {self.name}'s")
        self._private = private

    def _read_seed(self) -> Ed25519PrivateKey:
        path = self.directory / "key.seed"
        try:
            if path.stat().st_mode & 0o077:
                raise WitnessError(f"key file {path} is readable by others; run: chmod 600 "
                                   f"{path}")
            document = self._read_json(path, SEED_FORMAT)
            return Ed25519PrivateKey.from_private_bytes(
                base64.b64decode(str(document.get("seed")), validate=True))
        except FileNotFoundError as e:
            raise WitnessError(f"no key file at {path}") from e
        except (binascii.Error, ValueError) as e:
            raise WitnessError(f"key file {path} holds no Ed25519 seed") from e

    # -- the state ----------------------------------------------------------------------

    @property
    def state_path(self) -> Path:
        return self.directory / "state.json"

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the witness's lock: check and update are one step across processes."""
        with (self.directory / "state.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def logs(self) -> dict[str, KnownLog]:
        document = self._read_json(self.state_path, STATE_FORMAT)
        logs: dict[str, KnownLog] = {}
        try:
            for origin, entry in document["logs"].items():
                root, kept = entry["root"], entry.get("checkpoint")
                if kept is not None and not isinstance(kept, str):
                    raise TypeError("checkpoint")
                logs[origin] = KnownLog(list(entry["keys"]), int(entry["size"]),
                                        None if root is None else base64.b64decode(root),
                                        kept)
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise WitnessError(f"{self.state_path} is corrupt") from e
        return logs

    def _save(self, logs: dict[str, KnownLog]) -> None:
        document = {"format": STATE_FORMAT, "logs": {
            origin: {"keys": log.keys, "size": log.size,
                     "root": None if log.root is None else base64.b64encode(log.root).decode(),
                     "checkpoint": log.checkpoint}
            for origin, log in sorted(logs.items())}}
        _write_atomically(self.state_path, _dumps(document))

    def add_log(self, origin: str, keys: Sequence[str]) -> KnownLog:
        """Trust a log's signing keys (more keys for a known log are added to its own)."""
        if not origin or "\n" in origin or origin != origin.strip():
            raise WitnessError("a log's origin is one line, with no leading or trailing space")
        verifiers = []
        for text in keys:
            try:
                verifier = parse_vkey(text)
            except NoteError as e:
                raise WitnessError(f"log key {text.strip()[:40]!r}: {e}") from e
            if verifier.key_type != ED25519:
                raise WitnessError(f"log key {verifier.name!r} is not a plain Ed25519 key "
                                   "(type 0x01)")
            verifiers.append(verifier.vkey())
        if not verifiers:
            raise WitnessError("a log needs at least one key")
        with self.locked():
            logs = self.logs()
            log = logs.setdefault(origin, KnownLog([]))
            log.keys.extend(k for k in verifiers if k not in log.keys)
            self._save(logs)
        return log

    # -- add-checkpoint -----------------------------------------------------------------

    def add_checkpoint(self, old_size: int, proof: Sequence[bytes], note_text: str,
                       timestamp: int) -> list[NoteSignature]:
        """Check a checkpoint as tlog-witness says, in its order, then cosign it and
        remember it. Raises WitnessRefusal (with the HTTP status) and changes nothing."""
        if self._private is None:
            raise WitnessError(f"witness {self.name}'s key is not unlocked")
        try:
            note = parse_note(note_text)
        except NoteError as e:
            raise WitnessRefusal(BAD_REQUEST, f"checkpoint is not a signed note: {e}") from e
        head = read_log_head(note)
        with self.locked():
            logs = self.logs()
            log = logs.get(head.origin)
            if log is None:
                raise WitnessRefusal(NOT_FOUND, f"unknown log {head.origin!r}")
            try:
                verified = open_note(note, log.verifiers())
            except NoteError as e:
                raise WitnessRefusal(FORBIDDEN, f"log signature: {e}") from e
            if old_size > head.size:
                raise WitnessRefusal(BAD_REQUEST, f"old size {old_size} is beyond the "
                                     f"checkpoint's size {head.size}")
            if old_size != log.size:
                raise WitnessRefusal(CONFLICT, f"the witness last cosigned size {log.size} "
                                     f"of {head.origin}, not {old_size}", known_size=log.size)
            if old_size == head.size and old_size > 0 and head.root != log.root:
                raise WitnessRefusal(CONFLICT, f"the witness cosigned size {old_size} of "
                                     f"{head.origin} with another root: a fork")
            self._check_consistency(log, old_size, head, proof)
            signature = cosign(note.text, self.name, self._private, timestamp)
            log.size, log.root = head.size, head.root
            log.checkpoint = Note(note.text, (*verified, signature)).to_text()
            self._save(logs)
        return [signature]

    def latest_checkpoint(self, origin: str) -> str:
        """The last checkpoint of `origin` this witness cosigned, as a note with the log's
        verified signatures and the witness's cosignature; WitnessRefusal (404) for a log
        it does not know or has not cosigned yet."""
        log = self.logs().get(origin)
        if log is None:
            raise WitnessRefusal(NOT_FOUND, f"unknown log {origin!r}")
        if log.checkpoint is None:
            raise WitnessRefusal(NOT_FOUND, f"no checkpoint of {origin!r} cosigned yet")
        return log.checkpoint

    @staticmethod
    def _check_consistency(log: KnownLog, old_size: int, head: LogHead,
                           proof: Sequence[bytes]) -> None:
        if head.size == 0 and head.root != empty_root():
            raise WitnessRefusal(UNPROCESSABLE, "a checkpoint of size 0 must hold the empty "
                                 "tree's root")
        if old_size == 0:
            if proof:
                raise WitnessRefusal(UNPROCESSABLE, "a proof from size 0 must be empty")
            return
        assert log.root is not None
        try:
            verify_consistency(old_size, head.size, log.root, head.root, proof)
        except MerkleError as e:
            raise WitnessRefusal(UNPROCESSABLE, f"not a consistent extension of the "
                                 f"checkpoint of size {old_size} it cosigned: {e}") from e


def create_witness(directory: Path, name: str, password: str | None) -> Witness:
    """A new witness: a fresh key (sealed with `password`, or unsealed when None) and an
    empty state. Refuses a directory that already holds a witness."""
    check_key_name(name)
    if (directory / "witness.json").exists():
        raise WitnessError(f"{directory} already holds a witness")
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    keys = KeyPair.generate()
    if password is not None:
        seal_key_file(directory / "key.json", name, keys, password)
    else:
        seed = keys.private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        fd = os.open(directory / "key.seed", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(_dumps({"format": SEED_FORMAT,
                                 "seed": base64.b64encode(seed).decode("ascii")}))
    _write_atomically(directory / "state.json", _dumps({"format": STATE_FORMAT, "logs": {}}))
    _write_atomically(directory / "witness.json", _dumps({
        "format": WITNESS_FORMAT, "name": name, "public_key": keys.public_key_hex,
        "sealed": password is not None,
        "vkey": Verifier(name, COSIGNATURE_V1, bytes.fromhex(keys.public_key_hex)).vkey(),
    }), mode=0o644)
    return Witness(directory)


# --------------------------------------------------------------------------- the log's side

Submit = Callable[[int, Sequence[bytes], str], list[NoteSignature]]


def parse_signature_lines(text: str) -> list[NoteSignature]:
    """A witness's answer: note signature lines, each `— name base64` LF."""
    if not text.endswith("\n"):
        raise WitnessError("the witness's answer does not end with a newline")
    lines = text[:-1].split("\n")
    try:
        note = parse_note("x\n\n" + "\n".join(lines) + "\n")
    except NoteError as e:
        raise WitnessError(f"the witness's answer is not signature lines: {e}") from e
    if any(not line.startswith(DASH + " ") for line in lines):
        raise WitnessError("the witness's answer is not signature lines")
    return list(note.signatures)


def collect_cosignatures(
    note_text: str, size: int, prove: Callable[[int], list[bytes]], submit: Submit,
) -> list[NoteSignature]:
    """Ask a witness to cosign: first from size 0 (or the size it says it knows after a
    409), with the consistency proof `prove(old size)` gives."""
    try:
        return submit(0, [], note_text)
    except WitnessRefusal as e:
        if e.status != CONFLICT or e.known_size is None:
            raise
        if e.known_size > size:
            raise WitnessRefusal(CONFLICT, f"the witness has cosigned size {e.known_size}, "
                                 f"larger than this checkpoint's {size}") from e
        return submit(e.known_size, prove(e.known_size), note_text)


def log_key(ledger: TrialLedger, user_id: str) -> tuple[str, str]:
    """The origin of the ledger's checkpoints and a user's verifier key for them, which a
    witness is given with `witness add-log`."""
    from trialctl.ledger.checkpoint import ORIGIN_PREFIX

    user = ledger.get_user(user_id)
    if not user.current_key_usable:
        raise WitnessError(f"user {user_id}'s key is revoked: they sign no checkpoint")
    origin = f"{ORIGIN_PREFIX}{ledger.ledger_record().ledger_id}"
    return origin, Verifier(user_id, ED25519, bytes.fromhex(user.public_key)).vkey()


def cosign_from_ledger(ledger: TrialLedger, signed: SignedCheckpoint, submit: Submit,
                       witness_key: Verifier | None) -> list[NoteSignature]:
    """The cosignatures a witness gives `signed`, with proofs made from the ledger. With
    the witness's key known, every line returned must be its valid cosignature."""
    from trialctl.ledger.proofs import prove_consistency

    size = signed.checkpoint.tree_size

    def prove(old_size: int) -> list[bytes]:
        return prove_consistency(ledger.signed_recorder, old_size, size).proof

    lines = collect_cosignatures(signed.to_text(), size, prove, submit)
    if witness_key is not None:
        body = signed.checkpoint.body()
        if not lines or any(cosignature_time(witness_key, body, s) is None for s in lines):
            raise WitnessError(f"witness {witness_key.name} answered with a cosignature that "
                               "does not verify with its key")
    return lines


def proof_lines(document: object | None, checkpoint_size: int) -> tuple[int, list[bytes]]:
    """The old size and proof hashes of `trialctl proof consistency --json` output; no
    document means a witness's first look at the log (old size 0, no proof)."""
    from trialctl.ledger.proofs import ProofRejectedError, parse_hash, proof_kind

    if document is None:
        return 0, []
    try:
        if proof_kind(document) != "consistency":
            raise ProofRejectedError("this is an inclusion proof, not a consistency proof")
        assert isinstance(document, dict)
        old, new, hashes = document.get("old_size"), document.get("new_size"), \
            document.get("proof")
        if not isinstance(old, int) or isinstance(old, bool) or old < 0 or \
                not isinstance(hashes, list):
            raise ProofRejectedError("a consistency proof has 'old_size' and 'proof'")
        if new != checkpoint_size:
            raise ProofRejectedError(f"the proof is to size {new}, the checkpoint's size is "
                                     f"{checkpoint_size}")
        return old, [parse_hash(h, f"proof[{i}]") for i, h in enumerate(hashes)]
    except ProofRejectedError as e:
        raise WitnessRefusal(BAD_REQUEST, f"proof: {e}") from e


def cosign_file(witness: Witness, note_path: Path, proof_document: object | None,
                timestamp: int) -> tuple[LogHead, list[NoteSignature]]:
    """File-based witnessing: check the note at `note_path` and, only if it passes, add
    the cosignature to the file (replaced whole, never half-written)."""
    try:
        text = note_path.read_bytes().decode("utf-8")
        note = parse_note(text)
    except UnicodeDecodeError as e:
        raise WitnessRefusal(BAD_REQUEST, f"{note_path} is not UTF-8 text") from e
    except NoteError as e:
        raise WitnessRefusal(BAD_REQUEST, f"{note_path} is not a signed note: {e}") from e
    head = read_log_head(note)
    old_size, proof = proof_lines(proof_document, head.size)
    lines = witness.add_checkpoint(old_size, proof, text, timestamp)
    _write_atomically(note_path, note.with_signatures(lines).to_text(), mode=0o644)
    return head, lines


def attach_witnesses(report: VerificationReport,
                     checkpoints: Sequence[tuple[str, SignedCheckpoint]],
                     witnesses: Sequence[Verifier]) -> None:
    """Name on each checkpoint of `report` the known witnesses that vouched for it; a
    known witness's line that fails is a `checkpoint` finding. Other lines are ignored."""
    from dataclasses import replace

    from trialctl.ledger.verify_report import Finding

    notes = dict(checkpoints)
    for index, result in enumerate(report.checkpoints):
        signed = notes.get(result.source)
        if signed is None:
            continue
        found, problems = vouches(signed.note, witnesses)
        report.checkpoints[index] = replace(
            result, witnesses=tuple(v.to_dict() for v in found))
        report.findings.extend(Finding("checkpoint", f"{result.source}: {p}") for p in problems)
