"""A signed-in session: a per-user agent that holds an unlocked key in memory and signs
`record` requests handed to it over a Unix socket (docs/SECURITY.md, "Signed-in sessions").

Like ssh-agent: the socket lives in a directory only its owner may open (checked for owner
and mode before every use), the agent refuses a peer of any other uid (SO_PEERCRED), the
key is never written anywhere, and the process is made non-dumpable so that neither a core
file nor another process of the same user (ptrace, /proc/PID/mem) can read it.

Each signing still asks for one private component (the password, or the PIN set at
start), checked against a keyed digest held in memory only. Before each signing the agent
reads the user afresh (`TrialLedger.check_session_authority`): a revoked or rotated key, a
lock-out or a user left with no role ends the session there and then. The session's start
and end are signed into the user's own security log (`SecurityLog.SessionStarted`,
`SessionEnded`); an end the user can no longer sign is queued (`ledger/lockout.py`).
"""

from __future__ import annotations

import contextlib
import ctypes
import hmac
import os
import signal
import socket
import struct
import sys
import time
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from trialctl.domain.rules import TrialRuleError
from trialctl.ledger.application import TrialLedger, UnlockedUser
from trialctl.ledger.batch_lines import Line, LineError, line_request
from trialctl.ledger.errors import AuthorityError, LedgerError, first_line
from trialctl.ledger.lockout import SIGN_IN, lockout_after
from trialctl.ledger.roles import Meaning
from trialctl.ledger.session_socket import (
    SessionError,
    agent_status,
    ledger_tag,
    receive_message,
    send_message,
    socket_path,
)
from trialctl.ledger.trials import TrialActions

PEER_TIMEOUT_SECONDS = 5.0  # a peer that connects and sends nothing does not hold the agent
MIN_PIN_LENGTH = 6
LONGEST_SECONDS = 24 * 3600
PASSWORD, PIN = "password", "pin"
IDLE, MAX, STOP, AUTHORITY = "idle", "max", "stop", "authority"
_PR_SET_DUMPABLE, _PR_GET_DUMPABLE = 4, 3


@dataclass(frozen=True)
class SessionLimits:
    idle_seconds: int
    max_seconds: int

    def check(self) -> None:
        for name, value in (("idle", self.idle_seconds), ("max", self.max_seconds)):
            if not 1 <= value <= LONGEST_SECONDS:
                raise SessionError(f"the {name} time-out must be 1 s to {LONGEST_SECONDS} s")
        if self.idle_seconds > self.max_seconds:
            raise SessionError("the idle time-out cannot be longer than the absolute one")


# -- the process ------------------------------------------------------------------------


def make_non_dumpable() -> bool:
    """prctl(PR_SET_DUMPABLE, 0): no core file, no ptrace or /proc/PID/mem by the same
    user. Linux only; elsewhere the agent still runs, and `status` says it is dumpable."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    return bool(libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0) == 0)


def is_dumpable() -> bool:
    if not sys.platform.startswith("linux"):
        return True
    return bool(ctypes.CDLL(None).prctl(_PR_GET_DUMPABLE, 0, 0, 0, 0) != 0)


def peer_uid(connection: socket.socket) -> int:
    """The uid of the process at the other end, as the kernel knows it (SO_PEERCRED)."""
    credentials = connection.getsockopt(
        socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", credentials)
    return int(uid)


class _Stopped(Exception):
    """SIGTERM or SIGINT: end the session as `session stop` would."""


def _stop(signum: int, frame: Any) -> None:
    raise _Stopped()


@dataclass
class _Digest:
    """The per-signing component, as an HMAC under a key that exists only in this process:
    checking it costs microseconds (the KDF was paid at start), and the digest alone is no
    use to anyone who reads it."""

    key: bytes
    digest: bytes

    @classmethod
    def of(cls, component: str) -> _Digest:
        key = os.urandom(32)
        return cls(key, hmac.digest(key, component.encode("utf-8"), "sha256"))

    def matches(self, component: str) -> bool:
        given = hmac.digest(self.key, component.encode("utf-8"), "sha256")
        return hmac.compare_digest(given, self.digest)


class HandedCommands(Protocol):
    """How the agent reads a `record` command handed over as its arguments, and shows what
    it signed: given by the command line (`cli/session_argv.py`), which owns both."""

    def prepare(self, argv: list[str], cwd: str,
                env: Mapping[str, str]) -> dict[str, Any] | None: ...

    def rendered(self, recorded: Mapping[str, Any], json_output: bool) -> str: ...


# The answer that sends a handed-over command back to run the ordinary way.
RUN_IT_YOURSELF = {"ok": False, "kind": "run-it-yourself",
                   "error": "the session cannot take this command as given"}


class SessionAgent:
    """The agent's state and its answers to each request."""

    def __init__(self, ledger: TrialLedger, actor: UnlockedUser, component: str,
                 component_kind: str, limits: SessionLimits, session_id: str,
                 commands: HandedCommands | None = None) -> None:
        self.commands = commands
        self.ledger = ledger
        self.actor = actor
        self.user_id = actor.user.user_id
        self.key_id = actor.keys.key_id
        self.check_component = _Digest.of(component)
        self.component_kind = component_kind
        self.limits = limits
        self.session_id = session_id
        self.started = time.monotonic()
        self.last_signing = self.started
        self.signings = 0
        self.ended: str | None = None

    # -- time-outs

    def remaining(self) -> tuple[float, str]:
        now = time.monotonic()
        idle = self.last_signing + self.limits.idle_seconds - now
        absolute = self.started + self.limits.max_seconds - now
        return (idle, IDLE) if idle < absolute else (absolute, MAX)

    def end(self, reason: str, detail: str = "") -> None:
        """Sign the end into the user's log; queue it if the user can no longer sign."""
        if self.ended is not None:
            return
        self.ended = reason
        with contextlib.suppress(LedgerError):
            self.actor = UnlockedUser(self.ledger.get_user(self.user_id), self.actor.keys)
        signed = False
        with contextlib.suppress(LedgerError):
            signed = self.ledger.sign_own_log(self.actor, lambda log: log.end_session(
                session_id=self.session_id, reason=reason, signings=self.signings),
                Meaning.AUTHORED)
        if not signed:
            self.ledger.security_queue.add(
                self.user_id, "session ended",
                f"session {self.session_id} ended ({reason}) after {self.signings} signings"
                + (f": {detail}" if detail else ""))

    # -- requests

    def answer(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        if op == "status":
            return {"ok": True, **self.status()}
        if op == "stop":
            self.end(STOP)
            return {"ok": True, "ended": STOP, "signings": self.signings}
        if op == "argv":
            return self._handed_over(request)
        if op in ("check", "record"):
            if request.get("ledger") != ledger_tag(self.ledger.location.url):
                return {"ok": False, "kind": "other-ledger",
                        "error": "the session serves another ledger"}
            if request.get("user") != self.user_id:
                return {"ok": False, "kind": "other-user",
                        "error": f"the session is {self.user_id}'s"}
            return self._sign(request, op == "record")
        return {"ok": False, "kind": "usage", "error": f"unknown request {op!r}"}

    def _handed_over(self, request: dict[str, Any]) -> dict[str, Any]:
        """A `record` command's arguments: its line, checked as `check` checks one, or
        RUN_IT_YOURSELF for anything but a command this session can sign as given."""
        argv, cwd, env = request.get("argv"), request.get("cwd"), request.get("env")
        if self.commands is None or not isinstance(argv, list) or not all(
                isinstance(a, str) for a in argv) or not isinstance(cwd, str) or not (
                isinstance(env, dict) and all(isinstance(v, str) for v in env.values())):
            return RUN_IT_YOURSELF
        prepared = self.commands.prepare(argv, cwd, env)
        if prepared is None:
            return RUN_IT_YOURSELF
        checked = self.answer({"op": "check", **prepared})
        if not checked["ok"]:
            # Another ledger or user: the command is signed the ordinary way, without this
            # session. A refusal or an ended session is said as the session says it.
            if checked.get("kind") in ("other-ledger", "other-user"):
                return RUN_IT_YOURSELF
            return checked
        return {**prepared, "ok": True, "component": checked["component"]}

    def status(self) -> dict[str, Any]:
        left, reason = self.remaining()
        return {"user": self.user_id, "session_id": self.session_id, "pid": os.getpid(),
                "ledger": self.ledger.location.display(), "component": self.component_kind,
                "signings": self.signings, "ends_in_seconds": max(0, round(left)),
                "ends_by": reason, "idle_seconds": self.limits.idle_seconds,
                "max_seconds": self.limits.max_seconds, "dumpable": is_dumpable()}

    def _sign(self, request: dict[str, Any], record: bool) -> dict[str, Any]:
        try:
            user = self.ledger.check_session_authority(self.user_id, self.key_id)
        except AuthorityError as e:
            self.end(AUTHORITY, str(e))
            return {"ok": False, "kind": "ended",
                    "error": f"refused: {e}; the session has ended"}
        values = request.get("line")
        if not isinstance(values, dict):
            return {"ok": False, "kind": "usage", "error": "no record line given"}
        trial = request.get("trial")
        try:
            step = line_request(Line(0, values), trial if isinstance(trial, str) else None)
            actions = TrialActions(self.ledger)
            actions.check(step, datetime.now(UTC), self.user_id)
            if not record:
                return {"ok": True, "component": self.component_kind}
            component = request.get("component")
            if not isinstance(component, str) or not self.check_component.matches(component):
                return self._wrong_component()
            recorded = actions.perform(step, UnlockedUser(user, self.actor.keys),
                                       datetime.now(UTC))
        except (LineError, TrialRuleError) as e:
            return {"ok": False, "kind": "refused", "error": f"refused: {first_line(e)}"}
        except LedgerError as e:
            return {"ok": False, "kind": "ledger", "error": first_line(e)}
        self.signings += 1
        self.last_signing = time.monotonic()
        shown = asdict(recorded)
        render = request.get("render")
        if isinstance(render, bool) and self.commands is not None:
            return {"ok": True, "recorded": shown,
                    "output": self.commands.rendered(shown, render)}
        return {"ok": True, "recorded": shown}

    def _wrong_component(self) -> dict[str, Any]:
        """A wrong password or PIN counts towards the lock-out as a wrong sign-in would."""
        self.ledger.security_queue.add(self.user_id, SIGN_IN,
                                       f"wrong session {self.component_kind}")
        failures = self.ledger.security_queue.failed_sign_ins(self.user_id)
        limit = lockout_after()
        if failures >= limit:
            self.end(AUTHORITY, f"locked after {failures} failed sign-ins")
            return {"ok": False, "kind": "ended", "error": f"wrong {self.component_kind} for "
                    f"{self.user_id}; {self.user_id} is now locked and the session has ended"}
        return {"ok": False, "kind": "wrong-component",
                "error": f"wrong {self.component_kind} for {self.user_id}; {failures} of "
                         f"{limit} failed sign-ins before lock-out"}

    # -- the loop

    def serve(self, listener: socket.socket, path: Path) -> None:
        try:
            while self.ended is None:
                left, reason = self.remaining()
                if left <= 0:
                    self.end(reason)
                    break
                listener.settimeout(left)
                try:
                    connection, _ = listener.accept()
                except TimeoutError:
                    continue
                with connection:
                    self._serve_one(connection)
        except _Stopped:
            self.end(STOP)
        finally:
            with contextlib.suppress(OSError):
                path.unlink()
            listener.close()

    def _serve_one(self, connection: socket.socket) -> None:
        uid = peer_uid(connection)
        if uid != os.getuid():
            # Another user's process: refused, and queued for the owner's log.
            self.ledger.security_queue.add(self.user_id, "session connection",
                                           f"refused: a process of uid {uid}")
            send_message(connection, {"ok": False, "kind": "refused",
                               "error": "refused: this session belongs to another user"})
            return
        connection.settimeout(PEER_TIMEOUT_SECONDS)
        try:
            request = receive_message(connection)
        except (OSError, ValueError) as e:
            with contextlib.suppress(OSError):
                send_message(connection, {"ok": False, "kind": "usage",
                                          "error": f"bad request: {e}"})
            return
        with contextlib.suppress(OSError):
            send_message(connection, self.answer(request))


# -- starting one -----------------------------------------------------------------------


@dataclass(frozen=True)
class Started:
    user: str
    session_id: str
    pid: int
    socket: str
    component: str
    idle_seconds: int
    max_seconds: int


def start_session(ledger: TrialLedger, user_id: str, password: str, pin: str | None,
                  limits: SessionLimits, commands: HandedCommands | None = None) -> Started:
    """Unlock the user's key (KDF and lock-out as for any sign-in), sign the session's
    start, and leave an agent process holding the key; returns once it listens."""
    limits.check()
    if pin is not None and len(pin) < MIN_PIN_LENGTH:
        raise SessionError(f"a session PIN needs at least {MIN_PIN_LENGTH} characters")
    path = socket_path(user_id, create=True)
    assert path is not None
    if agent_status(user_id) is not None:
        raise SessionError(f"{user_id} already has a session; 'trialctl session stop' first")
    # Before the key is in memory, so no core file of this process ever holds it.
    make_non_dumpable()
    actor = ledger.unlock(user_id, password)
    session_id = str(uuid.uuid4())
    kind = PASSWORD if pin is None else PIN
    if not ledger.sign_own_log(actor, lambda log: log.start_session(
            session_id=session_id, idle_seconds=limits.idle_seconds,
            max_seconds=limits.max_seconds, component=kind), Meaning.AUTHORED):
        raise AuthorityError(f"refused: {user_id} may sign nothing, so holds no session")
    path.unlink(missing_ok=True)  # a dead agent's socket: agent_status found nobody there
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_mask = os.umask(0o177)
    try:
        listener.bind(str(path))
    finally:
        os.umask(old_mask)
    listener.listen(16)
    agent = SessionAgent(ledger, actor, password if pin is None else pin, kind, limits,
                         session_id, commands)
    # A database connection must not cross a fork: SQLite's locks stay with the process
    # that took them, so a child using its parent's connection reads stale pages and
    # writes unguarded. The parent lets go of every connection; the agent opens its own.
    ledger.close()
    pid = os.fork()
    if pid:
        listener.close()
        return Started(user_id, session_id, pid, str(path), kind, limits.idle_seconds,
                       limits.max_seconds)
    _become_agent(agent, listener, path)
    raise AssertionError("unreachable")  # pragma: no cover


def _become_agent(agent: SessionAgent, listener: socket.socket, path: Path) -> None:
    """The forked child: its own session, no terminal, fresh database connections."""
    code = 0
    try:
        os.setsid()
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        agent.ledger = TrialLedger(agent.ledger.location, keys_home=agent.ledger.keys_home)
        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        agent.serve(listener, path)
    except BaseException:
        code = 1
    finally:
        os._exit(code)
