"""`trialctl export odm|sdtm|bundle|verify`: copies of the trial for sponsors, regulators and
inspectors, each with a signed manifest and recorded in the ledger as a signed entry.

The database stack is imported inside each command, so `trialctl --help` stays fast."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

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

if TYPE_CHECKING:
    from trialctl.ledger.export_run import ExportResult, Writer

app = typer.Typer(help="Exports with a signed manifest: CDISC ODM, SDTM-style tables.",
                  no_args_is_help=True)


class SdtmFormat(StrEnum):
    CSV = "csv"
    DATASET_JSON = "dataset-json"


def _export(
    kind: str, target: Path, directory: bool, writer: Writer, trial: str | None,
    ledger: str | None, user: str | None, password_stdin: bool, json_output: bool,
) -> None:
    from trialctl.ledger.application import open_ledger
    from trialctl.ledger.export_run import check_target, prepare, run_export

    signer = need_user(user)
    with ledger_errors():
        check_target(target, directory)
        app_ledger = open_ledger(ledger)
        chosen = prepare(app_ledger, trial, signer)  # refusals come before the password
        actor = app_ledger.unlock(
            signer, PasswordSource(password_stdin).read(f"Password for {signer}"))
        result = run_export(app_ledger, actor, chosen, kind, target, directory, writer,
                            datetime.now(UTC))
    _render(result, json_output)


def _render(result: ExportResult, json_output: bool) -> None:
    if json_output:
        print_json({"kind": result.kind, "trial": result.trial, "files": result.files,
                    "manifest": result.manifest, "tree_size": result.tree_size,
                    "root_hash": result.root_hash, "recorded_at_position": result.position,
                    "holds": result.summary})
        return
    counts = result.summary.get("rows", result.summary)  # sdtm counts rows per table
    holds = ", ".join(f"{k} {v}" for k, v in counts.items() if isinstance(v, int))
    typer.echo(f"exported {result.kind} of {result.trial}: {len(result.files)} file(s)"
               f"{f' ({holds})' if holds else ''}")
    typer.echo(f"  tree size {result.tree_size}, root {result.root_hash[:16]}…")
    typer.echo(f"  manifest {result.manifest} (signed); recorded as entry #{result.position}")


@app.command("odm")
def odm(
    output: Annotated[Path, typer.Argument(metavar="FILE", help="The ODM XML file to write.")],
    trial: TrialOption = None, ledger: LedgerOption = None, user: UserOption = None,
    password_stdin: PasswordStdinOption = False, json_output: JsonOption = False,
) -> None:
    """Write the trial as CDISC ODM 1.3.2 XML, with audit records and signatures.

    Every item carries an AuditRecord (who, where, when, the reason for a change, the
    ledger position and entry hash); every signed entry a Signature with its Ed25519 key id
    and signature. FILE.manifest.json names the tree head and FILE's SHA-256, signed by
    you; the export itself is recorded in the ledger. See docs/EXPORTS.md.

    \b
    Example: trialctl export odm trial.odm.xml -u mona
    """
    from trialctl.ledger.export_odm import odm_export

    _export("odm", output, False, odm_export, trial, ledger, user, password_stdin, json_output)


@app.command("sdtm")
def sdtm(
    output: Annotated[Path, typer.Argument(
        metavar="DIR", help="A new (or empty) directory for the tables.")],
    table_format: Annotated[SdtmFormat, typer.Option(
        "--format", help="csv, or CDISC Dataset-JSON v1.1.")] = SdtmFormat.CSV,
    trial: TrialOption = None, ledger: LedgerOption = None, user: UserOption = None,
    password_stdin: PasswordStdinOption = False, json_output: JsonOption = False,
) -> None:
    """Write SDTM-style tables into DIR, with DIR/manifest.json signed by you.

    DM, EX, AE with the DLT adjudications as SUPPAE (QNAM AEDLT), RS and TR (RECIST
    responses and target lesions), DS (consent, withdrawal, off study), CM (concomitant
    medications), LB (labs with their canonical value and CTCAE grade), the decisions and
    audit-trail listings and a data dictionary (define). The export itself is recorded in
    the ledger. See docs/EXPORTS.md.

    \b
    Example: trialctl export sdtm sdtm-tables --format dataset-json -u mona
    """
    from trialctl.ledger.export_sdtm import sdtm_writer

    _export("sdtm", output, True, sdtm_writer(table_format.value), trial, ledger, user,
            password_stdin, json_output)


@app.command("verify")
def verify(
    manifest: Annotated[Path, typer.Argument(
        metavar="FILE", help="An export file, its FILE.manifest.json, or an export directory.")],
    json_output: JsonOption = False,
) -> None:
    """Check an export: the manifest's Ed25519 signature and every file's SHA-256.

    Needs no ledger, so whoever receives an export can run it. Exit 0 when everything
    checks out, 1 with one line per finding.

    \b
    Example: trialctl export verify trial.odm.xml
    """
    from trialctl.ledger.manifest import ManifestError, check_manifest, manifest_for

    path = manifest_for(manifest)
    if not path.exists():
        fail(f"no manifest at {path}", EXIT_USAGE)
    try:
        signed, findings = check_manifest(path)
    except ManifestError as e:
        fail(str(e))
    result = {"manifest": str(path), "ok": not findings, "findings": findings,
              "trial": signed.get("trial"), "kind": signed.get("kind"),
              "tree_size": signed.get("tree_size"), "root_hash": signed.get("root_hash"),
              "exported_by": (signed.get("exported_by") or {}).get("user_id")}
    if json_output:
        print_json(result)
    elif findings:
        for finding in findings:
            typer.echo(f"trialctl: {path}: {finding}", err=True)
    else:
        typer.echo(f"export ok: {result['kind']} of {result['trial']}, tree size "
                   f"{result['tree_size']}, root {str(result['root_hash'])[:16]}…, signed by "
                   f"{result['exported_by']}; {len(signed.get('files', []))} file(s) match")
    if findings:
        raise typer.Exit(EXIT_FAILED)


@app.command("bundle")
def bundle(
    output: Annotated[Path, typer.Argument(
        metavar="DIR", help="A new (or empty) directory for the bundle.")],
    checkpoints: Annotated[list[Path] | None, typer.Option(
        "--checkpoint", "-c", help="A checkpoint note to include, with its cosignatures "
        "(repeatable).")] = None,
    ledger: LedgerOption = None, user: UserOption = None,
    password_stdin: PasswordStdinOption = False, json_output: JsonOption = False,
) -> None:
    """Write the auditor's bundle: every entry's stored bytes, the users' keys with the
    positions each could sign at, checkpoint notes, FORMAT.md and a manifest of SHA-256s
    signed by you.

    `trialctl verify --bundle DIR` (or docs/examples/independent_verify.py --bundle DIR)
    checks it with no database, and the manifest's signature against your key as the
    bundle's own entries record it.

    \b
    Example: trialctl export bundle audit-bundle --checkpoint checkpoints/today.txt -u mona
    """
    from trialctl.ledger.application import open_ledger
    from trialctl.ledger.bundle import write_bundle
    from trialctl.ledger.checkpoint import CheckpointError, read_checkpoint_file
    from trialctl.ledger.mapper import format_time

    signer = need_user(user)
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        fail(f"{output} exists and is not an empty directory")
    notes = []
    for path in checkpoints or []:
        try:
            notes.append((path, read_checkpoint_file(path)))
        except (OSError, CheckpointError) as e:
            fail(f"cannot use checkpoint {path}: {e}", EXIT_USAGE)
    with ledger_errors():
        app_ledger = open_ledger(ledger)
        ledger_id = app_ledger.ledger_record().ledger_id
        # Signing in may first sign the user's queued security events: the bundle is cut
        # after them, so it holds every entry there is when the manifest is signed.
        actor = app_ledger.unlock(
            signer, PasswordSource(password_stdin).read(f"Password for {signer}"))
        manifest = write_bundle(app_ledger.signed_recorder, output, notes, ledger_id,
                                actor, format_time(datetime.now(UTC)))
    if json_output:
        print_json({"bundle": str(output), **manifest})
    else:
        typer.echo(f"bundle {output}: {manifest['tree_size']} entries, root "
                   f"{manifest['root_hash'][:16]}…, {len(notes)} checkpoint(s), "
                   f"{len(manifest['files'])} file(s) in manifest.json, signed by {signer}")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="export")
