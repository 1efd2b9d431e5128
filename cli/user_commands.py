"""`trialctl user add|list|grant-role|revoke-role|rotate-key|revoke|unlock`: signed by an admin.

The database stack is imported inside each command, so `trialctl --help` stays fast."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated

import typer

from trialctl.cli.io import (
    EXIT_USAGE,
    PasswordSource,
    fail,
    ledger_errors,
    need_user,
    print_json,
)
from trialctl.cli.options import (
    CsvOption,
    JsonOption,
    LedgerOption,
    PasswordStdinOption,
    UserOption,
    output_format,
)
from trialctl.cli.render import TableSpec, field, output_rows
from trialctl.ledger.roles import Role

if TYPE_CHECKING:
    from trialctl.ledger.application import TrialLedger, UnlockedUser, UserSummary

app = typer.Typer(help="Users, their roles and keys; every change is signed by an admin.",
                  no_args_is_help=True)

ROLES = ", ".join(role.value for role in Role)


def _admin_session(
    ledger: str | None, user: str | None, passwords: PasswordSource, change: str
) -> tuple[TrialLedger, UnlockedUser]:
    """Open the ledger and unlock the signer, refusing first (with no password prompt) a
    signer who may not sign `change`, the name of the user event the command records."""
    from trialctl.ledger.application import open_ledger
    from trialctl.ledger.users import User

    signer = need_user(user)
    ledger_app = open_ledger(ledger)
    ledger_app.check_may_sign(signer, [getattr(User, change).TOPIC])
    return ledger_app, ledger_app.unlock(signer, passwords.read(f"Password for {signer}"))


def _print_user(summary: UserSummary, json_output: bool, what: str) -> None:
    if json_output:
        print_json(asdict(summary))
    else:
        typer.echo(f"{what}: {summary.user_id} ({summary.name}), roles "
                   f"{', '.join(summary.roles)}, key {summary.key_id[:16]}…")


@app.command("add")
def add(
    new_user: Annotated[str, typer.Argument(help="The new user's id, e.g. 'bob'.")],
    name: Annotated[str, typer.Option("--name", help="Printed name, as on records.")],
    roles: Annotated[list[str], typer.Option("--role", help=f"Role (repeatable): {ROLES}.")],
    ledger: LedgerOption = None,
    user: UserOption = None,
    password_stdin: PasswordStdinOption = False,
    json_output: JsonOption = False,
) -> None:
    """Register a user with a new key, sealed with the password they type.

    With --password-stdin, line 1 is the admin's password and line 2 the new user's.

    \b
    Example: trialctl user add bob --name "Bob Brown, RN" --role data-manager -u alice
    """
    _check_roles(roles)
    passwords = PasswordSource(password_stdin)
    with ledger_errors():
        ledger_app, actor = _admin_session(ledger, user, passwords, "Registered")
        password = passwords.read_new(f"New password for {new_user}")
        summary = ledger_app.register_user(actor, new_user, name, roles, password)
    _print_user(summary, json_output, "Registered")


USERS = TableSpec("Users", [
    ("user", field("user_id")), ("name", field("name")),
    ("roles", lambda u: ", ".join(u["roles"])), ("key", lambda u: u["key_id"][:16] + "…"),
    ("status", lambda u: "active" if u["active"] else "revoked"),
])


@app.command("list")
def list_users(ledger: LedgerOption = None, json_output: JsonOption = False,
               csv_output: CsvOption = False) -> None:
    """List users with their roles, current key and status.

    \b
    Example: trialctl user list --json
    """
    from trialctl.ledger.application import open_ledger

    fmt = output_format(json_output, csv_output)
    with ledger_errors():
        users = open_ledger(ledger).list_users()
    output_rows([asdict(u) for u in users], fmt, USERS)


@app.command("grant-role")
def grant_role(
    target: Annotated[str, typer.Argument(help="The user to change.")],
    role: Annotated[str, typer.Argument(help=f"One of: {ROLES}.")],
    ledger: LedgerOption = None,
    user: UserOption = None,
    password_stdin: PasswordStdinOption = False,
    json_output: JsonOption = False,
) -> None:
    """Grant a role.

    \b
    Example: trialctl user grant-role mona data-manager -u alice
    """
    _check_roles([role])
    with ledger_errors():
        ledger_app, actor = _admin_session(ledger, user, PasswordSource(password_stdin), "RoleGranted")
        summary = ledger_app.grant_role(actor, target, role)
    _print_user(summary, json_output, "Granted")


@app.command("revoke-role")
def revoke_role(
    target: Annotated[str, typer.Argument(help="The user to change.")],
    role: Annotated[str, typer.Argument(help=f"One of: {ROLES}.")],
    ledger: LedgerOption = None,
    user: UserOption = None,
    password_stdin: PasswordStdinOption = False,
    json_output: JsonOption = False,
) -> None:
    """Revoke a role.

    \b
    Example: trialctl user revoke-role ivan investigator -u alice
    """
    _check_roles([role])
    with ledger_errors():
        ledger_app, actor = _admin_session(ledger, user, PasswordSource(password_stdin), "RoleRevoked")
        summary = ledger_app.revoke_role(actor, target, role)
    _print_user(summary, json_output, "Revoked role")


@app.command("rotate-key")
def rotate_key(
    target: Annotated[str, typer.Argument(help="Whose key to replace.")],
    ledger: LedgerOption = None,
    user: UserOption = None,
    password_stdin: PasswordStdinOption = False,
    json_output: JsonOption = False,
) -> None:
    """Give a user a new key; what they signed before stays valid.

    With --password-stdin, line 1 is the admin's password and line 2 the new key's.

    \b
    Example: trialctl user rotate-key mona -u alice
    """
    passwords = PasswordSource(password_stdin)
    with ledger_errors():
        ledger_app, actor = _admin_session(ledger, user, passwords, "KeyRotated")
        password = passwords.read_new(f"New password for {target}'s new key")
        summary = ledger_app.rotate_key(actor, target, password)
    _print_user(summary, json_output, "Rotated key")


@app.command("revoke")
def revoke(
    target: Annotated[str, typer.Argument(help="The user whose key to revoke.")],
    reason: Annotated[str, typer.Option("--reason", help="Why, for the audit trail.")],
    ledger: LedgerOption = None,
    user: UserOption = None,
    password_stdin: PasswordStdinOption = False,
    json_output: JsonOption = False,
) -> None:
    """Revoke a user's key and deactivate them: nothing they sign afterwards counts.

    \b
    Example: trialctl user revoke mona --reason "left the site" -u alice
    """
    with ledger_errors():
        ledger_app, actor = _admin_session(ledger, user, PasswordSource(password_stdin), "KeyRevoked")
        summary = ledger_app.revoke_user(actor, target, reason)
    _print_user(summary, json_output, "Revoked")


@app.command("unlock")
def unlock(
    target: Annotated[str, typer.Argument(help="The locked user.")],
    ledger: LedgerOption = None,
    user: UserOption = None,
    password_stdin: PasswordStdinOption = False,
    json_output: JsonOption = False,
) -> None:
    """End a lock-out after failed sign-ins, signing the user's queued security events.

    A user is locked after TRIALCTL_LOCKOUT_AFTER (default 5) wrong passwords in a row.
    The admin's signed User.Unlocked entry lists every queued failed or refused attempt.

    \b
    Example: trialctl user unlock mona -u alice
    """
    with ledger_errors():
        ledger_app, actor = _admin_session(ledger, user, PasswordSource(password_stdin), "Unlocked")
        summary, count = ledger_app.unlock_user(actor, target)
    if json_output:
        print_json({**asdict(summary), "signed_attempts": count})
    else:
        typer.echo(f"Unlocked: {summary.user_id} ({summary.name}); signed {count} queued "
                   f"security event{'s' if count != 1 else ''}")


def _check_roles(roles: list[str]) -> None:
    known = {role.value for role in Role}
    for role in roles:
        if role not in known:
            fail(f"unknown role {role!r}; roles are: {ROLES}", EXIT_USAGE)
