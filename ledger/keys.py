"""Ed25519 keys and the password-protected key files that hold them.

A key file holds one private key, encrypted with AES-256-GCM under a key derived from the
user's password by scrypt (memory-hard). The header (user, key id, KDF parameters) is bound
to the ciphertext as associated data, so editing any of it makes decryption fail.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from trialctl.ledger.canonical import canonical_bytes

try:  # libsodium's Ed25519 verify (PyNaCl) is the faster one here: benchmarks/results.md
    from nacl.bindings import crypto_sign_open
    from nacl.exceptions import BadSignatureError
except ImportError:  # cryptography alone checks every signature
    crypto_sign_open = None  # type: ignore[assignment]
from trialctl.ledger.errors import KeyFileError, WrongPasswordError

KEY_FILE_FORMAT = "trialctl-key/v1"
# OWASP's interactive-login floor for scrypt: 2**17 x 8 x 1 uses 128 MiB per attempt.
SCRYPT_N = 2**17
SCRYPT_R = 8
SCRYPT_P = 1
# scrypt takes 128 * n * r bytes: an edited key file may not ask for more than 1 GiB (each
# allowed bound alone would let n = 2**22 with r = 32 ask for 16 GiB).
SCRYPT_MAX_MEMORY = 2**30
SALT_BYTES = 16
NONCE_BYTES = 12
MIN_PASSWORD_LENGTH = 8
AEAD = "AES-256-GCM"
# A key file is under 1 KiB; anything far larger is not one, and is not read into memory.
KEY_FILE_MAX_BYTES = 64 * 1024


def key_id_of(public_key_raw: bytes) -> str:
    """A key's id: the hex SHA-256 of its raw 32-byte public key."""
    return hashlib.sha256(public_key_raw).hexdigest()


def public_raw(private_key: Ed25519PrivateKey) -> bytes:
    return private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def load_public_key(public_key_hex: str) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key_hex))


def signature_is_valid(public_key: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    try:
        public_key.verify(signature, message)
    except InvalidSignature:
        return False
    return True


SignatureCheck = Callable[[bytes, bytes], bool]  # (signature, message) -> valid?


def signature_check(public_key_hex: str) -> SignatureCheck:
    """`signature_is_valid` for one key, for checking many entries: through libsodium when
    PyNaCl is installed, else cryptography. libsodium is the stricter of the two (it also
    refuses small-order keys and R points, which no RFC 8032 signer produces), so no
    signature passes it that cryptography would refuse."""
    public_key = load_public_key(public_key_hex)  # refuses a malformed key as before
    if crypto_sign_open is None:
        return lambda signature, message: signature_is_valid(public_key, signature, message)
    raw = bytes.fromhex(public_key_hex)

    def check(signature: bytes, message: bytes) -> bool:
        if len(signature) != 64:
            return False
        try:
            crypto_sign_open(signature + message, raw)
        except BadSignatureError:
            return False
        return True

    return check


@dataclass(frozen=True)
class KeyPair:
    """An unlocked private key with its public half; lives only in memory."""

    private_key: Ed25519PrivateKey
    public_key_hex: str
    key_id: str

    @classmethod
    def generate(cls) -> KeyPair:
        return cls.from_private(Ed25519PrivateKey.generate())

    @classmethod
    def from_private(cls, private_key: Ed25519PrivateKey) -> KeyPair:
        raw = public_raw(private_key)
        return cls(private_key=private_key, public_key_hex=raw.hex(), key_id=key_id_of(raw))

    def sign(self, message: bytes) -> bytes:
        return self.private_key.sign(message)


def check_new_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise KeyFileError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")


def _derive(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(password.encode("utf-8"))


def _header(user_id: str, key_id: str, public_key_hex: str, kdf: dict[str, Any]) -> dict[str, Any]:
    return {
        "format": KEY_FILE_FORMAT,
        "user_id": user_id,
        "key_id": key_id,
        "public_key": public_key_hex,
        "kdf": kdf,
        "aead": AEAD,
    }


def seal_key_file(path: Path, user_id: str, keys: KeyPair, password: str) -> None:
    """Write `keys` to `path`, encrypted under `password`; never overwrites an existing file."""
    check_new_password(password)
    salt = os.urandom(SALT_BYTES)
    nonce = os.urandom(NONCE_BYTES)
    kdf = {
        "name": "scrypt",
        "n": SCRYPT_N,
        "r": SCRYPT_R,
        "p": SCRYPT_P,
        "salt": base64.b64encode(salt).decode(),
    }
    header = _header(user_id, keys.key_id, keys.public_key_hex, kdf)
    secret = keys.private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    key = _derive(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    ciphertext = AESGCM(key).encrypt(nonce, secret, canonical_bytes(header))
    document = dict(header)
    document["nonce"] = base64.b64encode(nonce).decode()
    document["ciphertext"] = base64.b64encode(ciphertext).decode()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # O_EXCL: a key file is never silently replaced; 0600: readable by its owner only.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=2, sort_keys=True)
        handle.write("\n")


def _field(document: dict[str, Any], name: str, kind: type, path: Path) -> Any:
    value = document.get(name)
    if not isinstance(value, kind) or isinstance(value, bool) != (kind is bool):
        raise KeyFileError(f"key file {path} is corrupt: field '{name}' is missing or malformed")
    return value


def _b64(document: dict[str, Any], name: str, path: Path) -> bytes:
    try:
        return base64.b64decode(_field(document, name, str, path), validate=True)
    except ValueError as e:
        raise KeyFileError(f"key file {path} is corrupt: field '{name}' is not base64") from e


def open_key_file(path: Path, password: str, expected_key_id: str | None = None) -> KeyPair:
    """Decrypt the key in `path`; checks the format, the password and the key's identity."""
    try:
        status = path.stat()
        mode = status.st_mode
        # A FIFO or device at the path would block or never end: only a regular file is read.
        if not stat.S_ISREG(mode):
            raise KeyFileError(f"key file {path} is not a regular file")
        if status.st_size > KEY_FILE_MAX_BYTES:
            raise KeyFileError(f"key file {path} is over {KEY_FILE_MAX_BYTES} bytes")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise KeyFileError(f"no key file at {path}") from e
    except (OSError, UnicodeDecodeError) as e:
        raise KeyFileError(f"cannot read key file {path}: {e}") from e
    if mode & 0o077:
        # As ssh does: a private key others can read may already be someone else's.
        raise KeyFileError(f"key file {path} is readable by others; run: chmod 600 {path}")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as e:
        raise KeyFileError(f"key file {path} is corrupt: not JSON ({e.msg})") from e
    except (ValueError, RecursionError) as e:
        # An integer over Python's 4,300 digits, or nesting past the recursion limit.
        raise KeyFileError(f"key file {path} is corrupt: not a readable JSON object") from e
    if not isinstance(document, dict) or document.get("format") != KEY_FILE_FORMAT:
        raise KeyFileError(f"key file {path} is not a {KEY_FILE_FORMAT} key file")
    if document.get("aead") != AEAD:
        # The header is bound as associated data with the one cipher this format knows.
        raise KeyFileError(f"key file {path} is corrupt: field 'aead' is not {AEAD!r}")
    kdf = _field(document, "kdf", dict, path)
    if kdf.get("name") != "scrypt" or not all(
        isinstance(kdf.get(k), int) and not isinstance(kdf.get(k), bool) for k in ("n", "r", "p")
    ):
        raise KeyFileError(f"key file {path} is corrupt: unsupported key derivation")
    if not (2**14 <= kdf["n"] <= 2**22 and 1 <= kdf["r"] <= 32 and 1 <= kdf["p"] <= 16) \
            or 128 * kdf["n"] * kdf["r"] > SCRYPT_MAX_MEMORY:
        raise KeyFileError(f"key file {path} has out-of-range scrypt parameters")
    header = _header(
        _field(document, "user_id", str, path),
        _field(document, "key_id", str, path),
        _field(document, "public_key", str, path),
        kdf,
    )
    salt = _b64(kdf, "salt", path)
    nonce = _b64(document, "nonce", path)
    ciphertext = _b64(document, "ciphertext", path)
    if len(nonce) != NONCE_BYTES:
        raise KeyFileError(f"key file {path} is corrupt: nonce has the wrong length")
    try:
        key = _derive(password, salt, kdf["n"], kdf["r"], kdf["p"])
    except (ValueError, MemoryError, OverflowError) as e:
        raise KeyFileError(f"key file {path} has unusable scrypt parameters") from e
    try:
        secret = AESGCM(key).decrypt(nonce, ciphertext, canonical_bytes(header))
    except InvalidTag as e:
        # A wrong password and an edited file look the same to an AEAD: say both.
        raise WrongPasswordError(
            f"wrong password for {header['user_id']} (or the key file {path} was altered)"
        ) from e
    try:
        keys = KeyPair.from_private(Ed25519PrivateKey.from_private_bytes(secret))
    except ValueError as e:
        raise KeyFileError(f"key file {path} holds no valid Ed25519 key") from e
    if keys.key_id != header["key_id"]:
        raise KeyFileError(f"key file {path} is corrupt: key id does not match its key")
    if expected_key_id is not None and keys.key_id != expected_key_id:
        raise KeyFileError(
            f"key file {path} holds key {keys.key_id[:16]}…, but the ledger's current key "
            f"for {header['user_id']} is {expected_key_id[:16]}…"
        )
    return keys
