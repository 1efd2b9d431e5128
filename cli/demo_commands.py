"""`trialctl demo`: a complete trial on a fresh ledger, and what to try next.

The database stack is imported inside the command, so `trialctl --help` stays fast."""

from __future__ import annotations

import shlex
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from trialctl.cli.io import EXIT_FAILED, EXIT_USAGE, fail, ledger_errors, print_json
from trialctl.cli.options import JsonOption
from trialctl.cli.render import render_status

if TYPE_CHECKING:
    from trialctl.ledger.demo import DemoResult


def demo(
    ledger: Annotated[str | None, typer.Option(
        "--ledger", metavar="PATH|URL",
        help="A new ledger: file path or postgresql:// URL to an empty database "
        "[default: demo.sqlite in --dir].")] = None,
    directory: Annotated[Path | None, typer.Option(
        "--dir", metavar="DIR",
        help="Where the demo's key files (and default ledger) go, kept afterwards "
        "[default: a temporary directory, removed at the end].")] = None,
    json_output: JsonOption = False,
) -> None:
    """Build a fresh ledger with demo users and run a complete trial of NCT00084513.

    Consents, screening (one patient refused as ineligible), enrollment, dosing, adverse
    events, DLTs, an expansion, escalations, a declared MTD, corrections, RECIST responses,
    a co-signed decision, a re-consent, a review a correction invalidates, a query answered,
    deviations and a prohibited con-med, and a visit entered from a batch file (kept in
    --dir), all recorded and signed through the same code as `trialctl record`; then the
    ledger is verified, the trial status printed, and the demo users (with their
    passwords) and the commands to try next. Without --dir nothing is left behind.

    \b
    Example: trialctl demo --dir trialctl-demo
    """
    from trialctl.ledger.demo import run_demo

    if directory is not None and ledger is None and (directory / "demo.sqlite").exists():
        fail(f"{directory} already holds a demo ledger; choose another --dir", EXIT_USAGE)
    target = directory or Path(tempfile.mkdtemp(prefix="trialctl-demo-"))
    say = (lambda _: None) if json_output else typer.echo
    try:
        with ledger_errors():
            target.mkdir(parents=True, exist_ok=True)
            result = run_demo(target, ledger, say)
    finally:
        if directory is None:
            shutil.rmtree(target, ignore_errors=True)
    if json_output:
        print_json({"ledger": result.ledger, "home": result.home, "entries": result.entries,
                    "kept": directory is not None, "users": [asdict(u) for u in result.users],
                    "verify": result.report.to_dict(), "status": result.status})
    else:
        typer.echo("")
        render_status(result.status)
        verdict = "clean" if result.report.ok else f"{len(result.report.findings)} finding(s)"
        typer.echo(f"\nverify: {result.entries} signed entries, root "
                   f"{result.report.root_hash[:16]}…: {verdict}")
        _print_users(result)
        _print_next_steps(result, kept=directory is not None, own_ledger=ledger is not None)
    if not result.report.ok:
        raise typer.Exit(EXIT_FAILED)


def _print_users(result: DemoResult) -> None:
    typer.echo("\ndemo users (the passwords are for this demo only):")
    for user in result.users:
        typer.echo(f"  {user.user_id:<6} {', '.join(user.roles):<24} password "
                   f"{user.password}   ({user.name})")


def _print_next_steps(result: DemoResult, kept: bool, own_ledger: bool) -> None:
    if kept:
        typer.echo("\nnext, try:")
        typer.echo(f"  export TRIALCTL_HOME={shlex.quote(str(Path(result.home).resolve()))} "
                   f"TRIALCTL_LEDGER={shlex.quote(result.ledger)}")
        for line in _try_lines(result):
            typer.echo(f"  {line}")
        return
    if own_ledger:
        # The ledger stays where it was asked for; the signers' key files went with the
        # temporary directory, so it can be read and verified, not signed any further.
        typer.echo(f"\nthe demo's key files were in a temporary directory, now removed; "
                   f"{result.ledger} stays. Read it:")
        typer.echo(f"  export TRIALCTL_LEDGER={shlex.quote(result.ledger)}")
        for line in _try_lines(result)[:4]:
            typer.echo(f"  {line}")
        return
    keep = Path.cwd() / "trialctl-demo"
    typer.echo("\nthe demo ran in a temporary directory, now removed. To keep one and explore:")
    typer.echo(f"  trialctl demo --dir {shlex.quote(str(keep))}")
    typer.echo(f"  export TRIALCTL_HOME={shlex.quote(str(keep / 'home'))} "
               f"TRIALCTL_LEDGER={shlex.quote(str(keep / 'demo.sqlite'))}")
    for line in _try_lines(result):
        typer.echo(f"  {line}")


def _try_lines(result: DemoResult) -> list[str]:
    mona = next(u for u in result.users if u.user_id == "mona")
    return [
        "trialctl status",
        "trialctl patient P006",
        "trialctl log --by ivan --type Corrected",
        "trialctl verify",
        "trialctl schedule --patient P010",
        f"echo {mona.password} | trialctl record observe P010 --kind ctc_count --value 5 "
        f"--date $(date +%F) -u {mona.user_id} --password-stdin",
    ]


def register(app: typer.Typer) -> None:
    app.command()(demo)
