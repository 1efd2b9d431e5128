"""`trialctl session start|status|stop`: a signed-in session held by a per-user agent
(`ledger/session_agent.py`; docs/SECURITY.md, "Signed-in sessions")."""

from __future__ import annotations

import re
from typing import Annotated

import typer

from trialctl.cli.io import EXIT_USAGE, PasswordSource, fail, ledger_errors, need_user, print_json
from trialctl.cli.options import JsonOption, LedgerOption, PasswordStdinOption, UserOption

app = typer.Typer(help="A signed-in session: unlock once, sign each record with a PIN.",
                  no_args_is_help=True)

_DURATION = re.compile(r"^(\d+)([smh]?)$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600}


def parse_duration(text: str, option: str) -> int:
    """30s, 10m, 8h (a bare number is seconds)."""
    match = _DURATION.match(text.strip())
    if match is None:
        fail(f"{option} expects a duration such as 30s, 10m or 8h, not {text!r}", EXIT_USAGE)
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


IdleOption = Annotated[str, typer.Option(
    "--idle", metavar="DURATION", help="End the session after this long without a signing.")]
MaxOption = Annotated[str, typer.Option(
    "--max", metavar="DURATION", help="End the session this long after it started, whatever.")]
PinOption = Annotated[bool, typer.Option(
    "--pin", help="Set a session PIN (asked after the password) for each signing, instead "
                  "of the password.")]


@app.command("start")
def start(
    idle: IdleOption = "10m", longest: MaxOption = "8h", pin: PinOption = False,
    ledger: LedgerOption = None, user: UserOption = None,
    password_stdin: PasswordStdinOption = False, json_output: JsonOption = False,
) -> None:
    """Unlock your key once and leave an agent holding it; `record` commands then use it.

    \b
    Each signing still asks for your password (or, with --pin, the PIN set now). The
    session ends after --idle without a signing, at --max, at `session stop`, or when
    your key, role or lock-out changes; each end is signed into your security log.
    \b
    Example: trialctl session start --idle 10m --max 8h -u mona
    """
    from trialctl.cli import session_argv
    from trialctl.ledger.application import open_ledger
    from trialctl.ledger.session_agent import SessionLimits, start_session

    signer = need_user(user)
    limits = SessionLimits(parse_duration(idle, "--idle"), parse_duration(longest, "--max"))
    source = PasswordSource(password_stdin)
    with ledger_errors():
        limits.check()
        opened = open_ledger(ledger)
        password = source.read(f"Password for {signer}")
        chosen = source.read_new(f"Session PIN for {signer}") if pin else None
        started = start_session(opened, signer, password, chosen, limits, session_argv)
    if json_output:
        print_json(vars(started))
        return
    typer.echo(f"session started for {started.user} (agent pid {started.pid}); each signing "
               f"asks for your {started.component}; ends after {idle} idle or {longest}")


@app.command("status")
def status(user: UserOption = None, json_output: JsonOption = False) -> None:
    """Whether you have a session, and when it ends. Exit 1 if none.

    \b
    Example: trialctl session status --user mona
    """
    from trialctl.ledger.session_socket import agent_status

    signer = need_user(user)
    with ledger_errors():
        shown = agent_status(signer)
    if shown is None:
        fail(f"{signer} has no session")
    shown.pop("ok", None)
    if json_output:
        print_json(shown)
        return
    typer.echo(f"session of {shown['user']} on {shown['ledger']}: {shown['signings']} "
               f"signings; ends by {shown['ends_by']} in {shown['ends_in_seconds']} s")


@app.command("stop")
def stop(user: UserOption = None, json_output: JsonOption = False) -> None:
    """End your session now (signed into your security log). Exit 1 if none.

    \b
    Example: trialctl session stop --user mona
    """
    from trialctl.ledger.session_socket import stop_session

    signer = need_user(user)
    with ledger_errors():
        shown = stop_session(signer)
    if shown is None:
        fail(f"{signer} has no session")
    if json_output:
        print_json({"user": signer, "ended": shown["ended"], "signings": shown["signings"]})
        return
    typer.echo(f"session of {signer} ended after {shown['signings']} signings")
