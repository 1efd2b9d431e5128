"""Options shared by many commands, declared once (typer `Annotated` aliases)."""

from __future__ import annotations

from typing import Annotated

import typer

LedgerOption = Annotated[
    str | None,
    typer.Option(
        "--ledger",
        envvar="TRIALCTL_LEDGER",
        help="Ledger file path or postgresql:// URL [default: $TRIALCTL_HOME/ledger.sqlite].",
        show_default=False,
    ),
]
UserOption = Annotated[
    str | None,
    typer.Option(
        "--user", "-u", envvar="TRIALCTL_USER", help="Your user id: the person who signs."
    ),
]
PasswordStdinOption = Annotated[
    bool,
    typer.Option(
        "--password-stdin",
        help="Read passwords from standard input, one per line, instead of prompting.",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
