"""`trialctl record …` within a signed-in session, before typer or anything heavy loads:
hand the arguments to the signer's agent, ask for the password (or PIN) here, print what
the agent signed. Standard library and `ledger.session_socket` only.

Whatever is not the plain case (no agent, another ledger, a usage error, help, no terminal
to ask on) returns None before anything is read from the user, and the command then runs
the ordinary way, which prints exactly what it always prints. A refusal by the session's
checks is printed as the ordinary path prints it through a session.
"""

from __future__ import annotations

import getpass
import os
import sys

from trialctl.ledger.session_socket import SessionError, call_agent

USER_OPTIONS = ("-u", "--user")


def record_in_session(arguments: list[str]) -> int | None:
    """The exit code of `trialctl <arguments>` signed by a session agent, or None when it
    must run the ordinary way."""
    user = _named_user(arguments) or os.environ.get("TRIALCTL_USER")
    if not user or len(arguments) < 2 or arguments[1].startswith("-") or "--help" in arguments:
        return None
    environment = {k: v for k, v in os.environ.items() if k.startswith("TRIALCTL_")}
    try:
        asked = call_agent(user, {"op": "argv", "argv": arguments, "cwd": os.getcwd(),
                                  "env": environment})
    except (SessionError, OSError):
        return None
    if asked is None or asked.get("kind") == "run-it-yourself":
        return None
    if not asked.get("ok"):
        return _failed(str(asked.get("error")))  # a refusal, or the session has ended
    what = "Session PIN" if asked["component"] == "pin" else "Password"
    component = _component(asked["password_stdin"], f"{what} for {asked['user']}")
    if component is None:
        return None
    try:
        answer = call_agent(user, {
            "op": "record", "user": asked["user"], "ledger": asked["ledger"],
            "line": asked["line"], "trial": asked["trial"], "component": component,
            "render": bool(asked["json_output"])})
    except SessionError as e:
        return _failed(str(e))
    if answer is None:
        return _failed("the session ended before signing; nothing was recorded")
    if not answer.get("ok"):
        return _failed(str(answer.get("error")))
    sys.stdout.write(str(answer["output"]))
    return 0


def _named_user(arguments: list[str]) -> str | None:
    """The --user the arguments name, to find the agent by (the agent parses them again,
    properly, and serves only its own user)."""
    for place, argument in enumerate(arguments):
        if argument in USER_OPTIONS and place + 1 < len(arguments):
            return arguments[place + 1]
        if argument.startswith("--user="):
            return argument.removeprefix("--user=")
    return None


def _component(from_stdin: bool, prompt: str) -> str | None:
    """The password or PIN, read as `PasswordSource` reads it; None when that would fail
    (the ordinary path then reports it)."""
    if from_stdin:
        line = sys.stdin.readline()
        return line.rstrip("\r\n") if line else None
    if not sys.stdin.isatty():
        return None
    return getpass.getpass(f"{prompt}: ")


def _failed(message: str) -> int:
    """One line on stderr, as `cli.io.fail` writes it."""
    one_line = message.replace("\r", "\\r").replace("\n", "\\n")
    print(f"trialctl: {one_line}", file=sys.stderr)
    return 1
