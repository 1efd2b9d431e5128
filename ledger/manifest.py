"""An export's manifest: what it holds, the tree head it matches, the SHA-256 of each file,
signed by the exporting user.

The shape is python-tuf's: the `signed` payload and its `signatures` kept apart. The
signature covers the RFC 8785 canonical bytes of `signed` (the ledger's own canonicaliser),
so a recipient can check it with any RFC 8785 encoder and the public key the manifest names:

    {"signed": {"format": "trialctl-export-manifest/v1", …},
     "signatures": [{"key_id": …, "signature": …}]}
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trialctl.ledger.canonical import canonical_bytes
from trialctl.ledger.keys import KeyPair, key_id_of, load_public_key, signature_is_valid
from trialctl.ledger.merkle import empty_root, hash_children

MANIFEST_FORMAT = "trialctl-export-manifest/v1"
MANIFEST_SUFFIX = ".manifest.json"
DIRECTORY_MANIFEST = "manifest.json"
_CHUNK = 1 << 20


class ManifestError(ValueError):
    """A manifest that cannot be read, or whose signature or files do not check out."""


def streamed_root(leaf_hashes: Iterable[bytes]) -> bytes:
    """RFC 6962 MTH over leaf hashes read one at a time, holding one hash per level.

    Full subtrees are merged as they complete; at the end the rest are joined right to
    left, which is the RFC's split at the largest power of two.
    """
    stack: list[tuple[int, bytes]] = []  # (leaves under it, hash), sizes strictly falling
    for leaf in leaf_hashes:
        size, node = 1, leaf
        while stack and stack[-1][0] == size:
            left_size, left = stack.pop()
            size, node = left_size + size, hash_children(left, node)
        stack.append((size, node))
    if not stack:
        return empty_root()
    _, root = stack.pop()
    while stack:
        _, left = stack.pop()
        root = hash_children(left, root)
    return root


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def manifest_path(target: Path, directory: bool) -> Path:
    """Where an export's manifest lives: beside a file, or inside a directory."""
    return target / DIRECTORY_MANIFEST if directory else target.with_name(
        target.name + MANIFEST_SUFFIX)


def manifest_for(given: Path) -> Path:
    """The manifest a path names: itself, the one inside a directory, or the one beside a
    file."""
    if given.is_dir():
        return given / DIRECTORY_MANIFEST
    if given.name.endswith(MANIFEST_SUFFIX) or given.name == DIRECTORY_MANIFEST:
        return given
    return manifest_path(given, directory=False)


@dataclass(frozen=True)
class ExportHead:
    """What an export describes: the ledger, the trial and the tree head it was cut at."""

    kind: str
    ledger_id: str
    trial: str
    tree_size: int
    root_hash: str


def build_manifest(
    head: ExportHead, files: dict[str, Path], exported_at: str, signer: dict[str, str],
    public_key_hex: str, extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The unsigned payload: `files` maps each name (relative to the manifest) to its path."""
    return {
        "format": MANIFEST_FORMAT,
        "kind": head.kind,
        "ledger_id": head.ledger_id,
        "trial": head.trial,
        "tree_size": head.tree_size,
        "root_hash": head.root_hash,
        "exported_at": exported_at,
        "exported_by": {**signer, "public_key": public_key_hex},
        "files": [
            {"name": name, "sha256": file_sha256(path), "bytes": path.stat().st_size}
            for name, path in sorted(files.items())
        ],
        **(extra or {}),
    }


def sign_manifest(signed: dict[str, Any], keys: KeyPair) -> bytes:
    """The manifest file's bytes: the payload and one Ed25519 signature over its canonical
    bytes."""
    return sign_document(signed, keys)


def sign_document(signed: dict[str, Any], keys: KeyPair) -> bytes:
    """Any signed trialctl document (a manifest, a committee packet): `signed` and one
    Ed25519 signature over its RFC 8785 canonical bytes."""
    signature = base64.b64encode(keys.sign(canonical_bytes(signed))).decode("ascii")
    document = {"signed": signed, "signatures": [{"key_id": keys.key_id,
                                                  "signature": signature}]}
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("utf-8")


def read_manifest(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_bytes())
    except FileNotFoundError as e:
        raise ManifestError(f"no manifest at {path}") from e
    except (ValueError, OSError) as e:
        raise ManifestError(f"{path} is not a JSON manifest: {e}") from e
    if not isinstance(document, dict) or not isinstance(document.get("signed"), dict):
        raise ManifestError(f"{path} is not a trialctl export manifest (no 'signed' object)")
    if document["signed"].get("format") != MANIFEST_FORMAT:
        raise ManifestError(f"{path}: unknown manifest format "
                            f"{document['signed'].get('format')!r}")
    return document


def _check_signature(document: dict[str, Any]) -> str | None:
    return check_document_signature(document, "exported_by", "manifest", "exporter")


def check_document_signature(
    document: dict[str, Any], signer_field: str, what: str, who: str
) -> str | None:
    """Why the document's signature by the signer it names in `signed[signer_field]`
    (user, key id, public key) does not verify, or None when it does."""
    signed = document["signed"]
    exporter = signed.get(signer_field)
    signatures = document.get("signatures")
    if not isinstance(exporter, dict) or not isinstance(signatures, list) or not signatures:
        return f"{what} carries no {who} or no signature"
    try:
        public_raw = bytes.fromhex(str(exporter.get("public_key")))
        public_key = load_public_key(public_raw.hex())
    except ValueError:
        return f"the {who}'s public key is not a 32-byte Ed25519 key in hex"
    key_id = key_id_of(public_raw)
    if exporter.get("key_id") != key_id:
        return f"the {who}'s key id is not the SHA-256 of their public key"
    message = canonical_bytes(signed)
    for signature in signatures:
        if not isinstance(signature, dict) or signature.get("key_id") != key_id:
            continue
        try:
            raw = base64.b64decode(str(signature.get("signature")), validate=True)
        except binascii.Error:
            return f"the {what}'s signature is not base64"
        if len(raw) == 64 and signature_is_valid(public_key, raw, message):
            return None
    return f"the {what}'s signature by key {key_id[:16]}… does not verify"


def check_manifest(path: Path) -> tuple[dict[str, Any], list[str]]:
    """The manifest's payload and every finding: a bad signature, a file missing or changed,
    and a file beside it the manifest does not name (in a directory export)."""
    document = read_manifest(path)
    findings = []
    problem = _check_signature(document)
    if problem:
        findings.append(problem)
    signed = document["signed"]
    listed = signed.get("files")
    if not isinstance(listed, list):
        return signed, [*findings, "manifest lists no files"]
    names = set()
    for item in listed:
        name = str(item.get("name", "")) if isinstance(item, dict) else ""
        where = path.parent / name
        if not name or Path(name).is_absolute() or ".." in Path(name).parts:
            findings.append(f"manifest names the file {name!r} outside its directory")
            continue
        names.add(name)
        if not where.is_file():
            findings.append(f"{name}: missing")
        elif file_sha256(where) != item.get("sha256"):
            findings.append(f"{name}: SHA-256 differs from the manifest (changed since export)")
    if path.name == DIRECTORY_MANIFEST:
        extra = sorted(p.name for p in path.parent.iterdir()
                       if p.is_file() and p.name != DIRECTORY_MANIFEST and p.name not in names)
        findings.extend(f"{name}: not in the manifest" for name in extra)
    return signed, findings
