"""Finding and calling a user's session agent (`ledger/session_agent.py`): the socket's
directory, checked for owner and mode before every use, and one JSON request and answer per
connection. Standard library only, so a `record` handed to an agent starts fast."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import stat
from pathlib import Path
from typing import Any

from trialctl.ledger.errors import LedgerError

SOCKET_DIR_NAME = "trialctl"
REQUEST_MAX_BYTES = 1024 * 1024  # a record line is far smaller; more is not read
CLIENT_TIMEOUT_SECONDS = 60.0
USER_ID_MAX = 64


class SessionError(LedgerError):
    """A session that cannot be started, found or used."""


# -- where the socket lives -------------------------------------------------------------


def socket_dir() -> Path:
    """$XDG_RUNTIME_DIR/trialctl (a per-user tmpfs), else /tmp/trialctl-UID."""
    runtime = os.environ.get("XDG_RUNTIME_DIR", "").strip()
    if runtime:
        return Path(runtime) / SOCKET_DIR_NAME
    return Path(f"/tmp/trialctl-{os.getuid()}")


def _checked_dir(create: bool) -> Path | None:
    """The socket directory, if it exists (or was made) and only its owner may open it."""
    path = socket_dir()
    if create:
        with contextlib.suppress(FileExistsError):
            path.mkdir(mode=0o700, parents=False)
    try:
        status = path.lstat()
    except FileNotFoundError:
        return None
    # lstat: a symbolic link planted by someone else is refused, never followed.
    if not stat.S_ISDIR(status.st_mode):
        raise SessionError(f"session directory {path} is not a directory")
    if status.st_uid != os.getuid():
        raise SessionError(f"session directory {path} belongs to uid {status.st_uid}, not you")
    if status.st_mode & 0o077:
        raise SessionError(f"session directory {path} is open to others; run: chmod 700 {path}")
    return path


def socket_path(user_id: str, create: bool = False) -> Path | None:
    directory = _checked_dir(create)
    return None if directory is None else directory / f"{_safe(user_id)}.sock"


def _safe(user_id: str) -> str:
    # The socket's name is the user id: nothing that could leave the directory.
    if not user_id or len(user_id) > USER_ID_MAX or not all(
            c.isascii() and (c.isalnum() or c in "._-") for c in user_id) or user_id[0] == ".":
        raise SessionError(f"user id {user_id!r} cannot name a session")
    return user_id


def ledger_tag(url: str) -> str:
    """Which ledger an agent serves (by its URL), without repeating a database password."""
    return hashlib.sha256(url.encode()).hexdigest()


def send_message(connection: socket.socket, message: dict[str, Any]) -> None:
    connection.sendall(json.dumps(message, default=str).encode("utf-8") + b"\n")


def receive_message(connection: socket.socket) -> dict[str, Any]:
    data = b""
    while not data.endswith(b"\n"):
        chunk = connection.recv(65536)
        if not chunk:
            break
        data += chunk
        if len(data) > REQUEST_MAX_BYTES:
            raise ValueError(f"over {REQUEST_MAX_BYTES} bytes")
    message = json.loads(data.decode("utf-8"))
    if not isinstance(message, dict):
        raise ValueError("a JSON object is expected")
    return message


# -- talking to one ---------------------------------------------------------------------


def call_agent(user_id: str, request: dict[str, Any]) -> dict[str, Any] | None:
    """Send one request to the user's agent; None when no agent is listening."""
    path = socket_path(user_id)
    if path is None:
        return None
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.settimeout(CLIENT_TIMEOUT_SECONDS)
    try:
        try:
            client.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError):
            return None
        send_message(client, request)
        return receive_message(client)
    except (OSError, ValueError) as e:
        raise SessionError(f"the session agent did not answer: {e}") from e
    finally:
        client.close()


def agent_status(user_id: str) -> dict[str, Any] | None:
    return call_agent(user_id, {"op": "status"})


def stop_session(user_id: str) -> dict[str, Any] | None:
    return call_agent(user_id, {"op": "stop"})
