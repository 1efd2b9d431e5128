"""`trialctl packet [sign|verify]`: the dose-escalation committee packet, its members'
countersignatures, and the check of both against the ledger.

The database stack is imported inside each command, so `trialctl --help` stays fast."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from trialctl.cli.io import (
    EXIT_FAILED,
    EXIT_USAGE,
    PasswordSource,
    fail,
    ledger_errors,
    need_user,
    print_json,
)
from trialctl.cli.options import (
    JsonOption,
    LedgerOption,
    PasswordStdinOption,
    TrialOption,
    UserOption,
)

app = typer.Typer(
    help="""The dose-escalation committee packet for a decision point, signed by its author.

\b
`trialctl packet --cohort N -o FILE -u USER` writes the packet: the cohort table, the
DLT listing with its adjudications (and whether each DLT counts now), the 3+3
recommendation, the dose-transition pathways for the next two cohorts and the
signatures still pending, pinned to the ledger's tree size and root and signed by
you; the packet is recorded in the ledger. `--html PAGE` also writes a reading copy
naming the packet file's SHA-256. Committee members countersign it with
`packet sign`, the decision cites it with `record decide --packet SHA256`.

\b
Example: trialctl packet --cohort 4 -o cohort4.packet.json -u mona
""",
    invoke_without_command=True,
)

PacketFile = Annotated[Path, typer.Argument(metavar="FILE", help="A committee packet file.")]


@app.callback()
def packet(
    ctx: typer.Context,
    cohort: Annotated[int | None, typer.Option(
        "--cohort", min=1, help="The cohort whose decision the packet is for.")] = None,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", metavar="FILE", help="The packet file to write (new).")] = None,
    html: Annotated[Path | None, typer.Option(
        "--html", metavar="FILE", help="Also write a reading copy of the packet as one "
        "self-contained HTML page (new), naming the packet file's SHA-256.")] = None,
    trial: TrialOption = None, ledger: LedgerOption = None, user: UserOption = None,
    password_stdin: PasswordStdinOption = False, json_output: JsonOption = False,
) -> None:
    if ctx.invoked_subcommand is not None:
        if cohort is not None or output is not None or html is not None:
            fail("--cohort, -o and --html make a packet; give them without a subcommand",
                 EXIT_USAGE)
        return
    if cohort is None or output is None:
        fail("packet needs --cohort N and -o FILE (or a subcommand: sign, verify)",
             EXIT_USAGE)
    from trialctl.ledger.application import open_ledger
    from trialctl.ledger.packet import PacketError, make_packet
    from trialctl.ledger.users import LedgerRecord

    signer = need_user(user)
    if output.exists():
        fail(f"{output} exists; a packet is never written over another")
    if html is not None and (html.exists() or html.resolve() == output.resolve()):
        fail(f"{html} exists or is the packet file; the HTML page must be a new file",
             EXIT_USAGE)
    with ledger_errors():
        app_ledger = open_ledger(ledger)
        try:
            from trialctl.ledger.packet import packet_content
            from trialctl.ledger.trials import TrialActions

            packet_content(TrialActions(app_ledger), trial, cohort)  # refuse before the password
            app_ledger.check_may_sign(signer, [LedgerRecord.PacketIssued.TOPIC])
            actor = app_ledger.unlock(
                signer, PasswordSource(password_stdin).read(f"Password for {signer}"))
            made = make_packet(app_ledger, actor, trial, cohort, output, datetime.now(UTC))
            if html is not None:
                from trialctl.ledger.packet import read_packet
                from trialctl.ledger.packet_html import packet_html

                document, sha256 = read_packet(output)
                with html.open("x", encoding="utf-8") as page:
                    page.write(packet_html(document, sha256))
                made["html"] = str(html)
        except PacketError as e:
            fail(str(e))
    if json_output:
        print_json(made)
        return
    typer.echo(f"packet for {made['trial']} cohort {made['cohort_number']} written to "
               f"{made['file']} (signed by {signer}); recorded as entry "
               f"#{made['recorded_at_position']}")
    typer.echo(f"  pinned to tree size {made['tree_size']}, root {made['root_hash'][:16]}…")
    typer.echo(f"  SHA-256 {made['sha256']}")
    if html is not None:
        typer.echo(f"  reading copy written to {html}")
    for item in made["pending"]:
        typer.echo(f"  pending: {item['what']} ({item['signed_by']})")


@app.command("sign")
def sign(
    file: PacketFile, ledger: LedgerOption = None, user: UserOption = None,
    password_stdin: PasswordStdinOption = False, json_output: JsonOption = False,
) -> None:
    """Countersign a committee packet as a committee member: a signed entry naming the
    packet's SHA-256. Its author cannot countersign it, nor anyone twice.

    \b
    Example: trialctl packet sign cohort4.packet.json -u pat
    """
    from trialctl.ledger.application import open_ledger
    from trialctl.ledger.packet import PacketError, check_countersign, countersign

    signer = need_user(user)
    with ledger_errors():
        app_ledger = open_ledger(ledger)
        try:
            check_countersign(app_ledger, file, signer)  # refusals come before the password
            actor = app_ledger.unlock(
                signer, PasswordSource(password_stdin).read(f"Password for {signer}"))
            signed = countersign(app_ledger, actor, file)
        except PacketError as e:
            fail(str(e))
    if json_output:
        print_json(signed)
        return
    typer.echo(f"countersigned packet {signed['sha256'][:16]}… ({signed['trial']} cohort "
               f"{signed['cohort_number']}) as {signer}; recorded as entry "
               f"#{signed['recorded_at_position']}")


@app.command("verify")
def verify(file: PacketFile, ledger: LedgerOption = None,
           json_output: JsonOption = False) -> None:
    """Check a packet against the ledger: its author's signature, the entry that issued
    it, its tree head against the ledger's entries, and every countersignature.

    Exit 0 when everything checks out, 1 with one line per finding.

    \b
    Example: trialctl packet verify cohort4.packet.json
    """
    from trialctl.ledger.application import open_ledger
    from trialctl.ledger.packet import PacketError, check_packet

    with ledger_errors():
        try:
            result: dict[str, Any] = check_packet(open_ledger(ledger), file)
        except PacketError as e:
            fail(str(e))
    if json_output:
        print_json(result)
    elif result["findings"]:
        for finding in result["findings"]:
            typer.echo(f"trialctl: {file}: {finding}", err=True)
    else:
        typer.echo(f"packet ok: {result['trial']} cohort {result['cohort_number']}, tree "
                   f"size {result['tree_size']}, root {str(result['root_hash'])[:16]}…, "
                   f"written by {result['author']} (entry #{result['issued_at_position']})")
        for c in result["countersignatures"]:
            typer.echo(f"  countersigned by {c['name']} ({c['user_id']}, {c['role']}) "
                       f"{c['meaning']} at {c['recorded_at']} (entry #{c['position']})")
        if not result["countersignatures"]:
            typer.echo("  no countersignatures yet")
        for c in result["cited_by_decision"]:
            typer.echo(f"  cited by the cohort decision signed by {c['user_id']} "
                       f"(entry #{c['position']})")
    if result["findings"]:
        raise typer.Exit(EXIT_FAILED)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="packet")
