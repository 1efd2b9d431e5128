"""`trialctl db roles`: least-privilege PostgreSQL roles for a ledger.

The database stack is imported inside the command, so `trialctl --help` stays fast."""

from __future__ import annotations

from typing import Annotated

import typer

from trialctl.cli.io import ledger_errors

app = typer.Typer(help="The ledger's database: least-privilege PostgreSQL roles.",
                  no_args_is_help=True)


@app.command("roles")
def roles(
    url: Annotated[str, typer.Option(
        "--url", metavar="ADMIN_URL",
        help="The ledger's PostgreSQL database, as a role that owns its tables or a "
             "superuser.")],
    prefix: Annotated[str, typer.Option(
        help="Role names: PREFIX_owner, PREFIX_writer, PREFIX_auditor.")] = "trialctl",
    print_only: Annotated[bool, typer.Option(
        "--print", help="Print the SQL and change nothing (for a DBA to review and run).")
    ] = False,
) -> None:
    """Create an owner, a writer and an auditor role for a PostgreSQL ledger, or print the SQL.

    The writer (what `trialctl` runs as) may SELECT and INSERT the entries and their leaves,
    never UPDATE, DELETE, TRUNCATE, drop or disable their triggers; it owns the read models
    and the security queue. The auditor may only SELECT. Roles get no password: set one with
    ALTER ROLE … PASSWORD. Run after `trialctl init`; running it again changes nothing more.

    \b
    Example: trialctl db roles --url postgresql://postgres@db/trial --print
    """
    from trialctl.ledger.location import resolve_ledger
    from trialctl.ledger.pg_roles import (
        LedgerRoles,
        apply_roles,
        check_roles_target,
        roles_sql,
    )

    with ledger_errors():
        names = LedgerRoles.named(prefix)
        location = resolve_ledger(url)
        if print_only:
            check_roles_target(location)
            typer.echo("\n".join(roles_sql(names)))
            return
        apply_roles(location, names)
    typer.echo(f"Roles ready in {location.display()}: {names.writer} records, "
               f"{names.auditor} reads, {names.owner} owns the entries; set their passwords "
               "with ALTER ROLE … PASSWORD")
