"""`trialctl protocol form`: a protocol's data-collection forms, as the protocol declares them.

The protocol is read from a file (--protocol) or from the ledger's registered trial
(--trial, or the ledger's only trial).  The database stack is imported inside the command,
so `trialctl --help` stays fast."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from trialctl.cli.io import EXIT_USAGE, fail, ledger_errors, print_json
from trialctl.cli.options import Format, JsonOption, LedgerOption, TrialOption, output_format
from trialctl.cli.render import TableSpec, field, output_rows

if TYPE_CHECKING:
    from trialctl.domain.protocol import Protocol

app = typer.Typer(help="A trial's protocol, as data.", no_args_is_help=True)

FIELDS = TableSpec("Form fields", [
    ("field", field("name")), ("type", field("type")), ("unit", field("unit")),
    ("accepts", field("accepts")), ("required", field("required")), ("what", field("text")),
])


def _protocol(path: Path | None, trial: str | None, ledger: str | None) -> Protocol:
    """The protocol a command is about: a file's, else the ledger's registered trial's."""
    if path is not None:
        if trial is not None:
            fail("choose one of --protocol and --trial", EXIT_USAGE)
        from trialctl.domain.protocol_file import ProtocolError, load_protocol

        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            fail(f"cannot read protocol {path}: {e}", EXIT_USAGE)
        try:
            return load_protocol(text)
        except ProtocolError as e:
            fail(f"protocol {path} refused: {e}")
    from trialctl.ledger.application import open_ledger
    from trialctl.ledger.trials import TrialActions

    with ledger_errors():
        protocol: Protocol = TrialActions(open_ledger(ledger)).trial(trial).protocol
    return protocol


def _write_template(path: Path, template: dict[str, Any]) -> None:
    """Write a new file, never over an existing one (it may be a filled form)."""
    try:
        with path.open("x", encoding="utf-8") as out:
            out.write(json.dumps(template, indent=2) + "\n")
    except FileExistsError:
        fail(f"{path} exists: choose another file (a filled form is never overwritten)")
    except OSError as e:
        fail(f"cannot write {path}: {e}", EXIT_USAGE)


@app.command("form")
def form(
    name: Annotated[str, typer.Argument(metavar="FORM", help="The form's name, e.g. screening.")],
    protocol_file: Annotated[Path | None, typer.Option(
        "--protocol", metavar="FILE",
        help="Read the protocol from this TOML file [default: the ledger's trial].")] = None,
    template: Annotated[bool, typer.Option(
        "--template", help="Print a fill-in JSON template: every field, no value yet.")] = False,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", metavar="FILE",
        help="With --template: write it to this new file instead of printing it.")] = None,
    trial: TrialOption = None, ledger: LedgerOption = None, json_output: JsonOption = False,
) -> None:
    """A form's fields as the protocol declares them: type, unit, allowed values or range,
    required or optional.  `record screen` checks screening values against them.

    \b
    Example: trialctl protocol form screening --protocol protocols/NCT00084513.toml
    """
    if template and json_output:
        fail("choose one of --json and --template", EXIT_USAGE)
    if output is not None and not template:
        fail("--output writes a template: add --template", EXIT_USAGE)
    fmt = output_format(json_output)
    protocol = _protocol(protocol_file, trial, ledger)
    if not protocol.forms:
        fail(f"protocol {protocol.id} declares no forms")
    try:
        declared = protocol.form(name)
    except KeyError as e:
        fail(f"protocol {protocol.id}: {e.args[0]}", EXIT_USAGE)
    if template:
        if output is None:  # in the form's order, not sorted: it is filled top to bottom
            typer.echo(json.dumps(declared.template(), indent=2))
        else:
            _write_template(output, declared.template())
            typer.echo(f"wrote {output}: {len(declared.fields)} fields of the {name} form "
                       f"of {protocol.id}, to fill in")
        return
    if fmt is Format.JSON:
        print_json({"protocol": protocol.id, **declared.to_dict()})
        return
    typer.echo(f"{protocol.id}: {declared.title or declared.name} form "
               f"({len(declared.fields)} fields)")
    output_rows([{"name": f.name, "type": str(f.type), "unit": f.unit or "",
                  "accepts": f.describe(), "required": "yes" if f.required else "no",
                  "text": f.text or ""} for f in declared.fields], fmt, FIELDS)
