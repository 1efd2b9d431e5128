"""`trialctl init`, `checkpoint` and `verify`.

The database stack is imported inside each command, so `trialctl --help` stays fast."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
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
from trialctl.cli.options import JsonOption, LedgerOption, PasswordStdinOption, UserOption
from trialctl.cli.render import progress

if TYPE_CHECKING:
    from trialctl.ledger.application import TrialLedger
    from trialctl.ledger.checkpoint import SignedCheckpoint
    from trialctl.ledger.signed_note import NoteSignature, Verifier
    from trialctl.ledger.trust import TrustRoots
    from trialctl.ledger.witness import Submit


def init(
    admin: Annotated[str, typer.Option("--admin", help="User id of the first admin.")],
    admin_name: Annotated[
        str, typer.Option("--name", help="The admin's printed name, as it appears on records.")
    ],
    title: Annotated[str, typer.Option("--title", help="A name for this ledger.")] = "trialctl",
    ledger: LedgerOption = None,
    password_stdin: PasswordStdinOption = False,
    json_output: JsonOption = False,
) -> None:
    """Create a ledger and its first admin, whose new key is sealed with their password.

    \b
    Example: trialctl init --admin alice --name "Alice Adams (admin)" --ledger trial.sqlite
    """
    from trialctl.ledger.application import open_ledger

    with ledger_errors():
        password = PasswordSource(password_stdin).read_new(f"New password for {admin}")
        app = open_ledger(ledger, create=True)
        summary = app.initialise(title, admin, admin_name, password)
        record = app.ledger_record()
        result = {
            "ledger": app.location.display(),
            "ledger_id": record.ledger_id,
            "admin": summary.user_id,
            "key_id": summary.key_id,
        }
    if json_output:
        print_json(result)
    else:
        typer.echo(f"Created ledger {result['ledger_id']} at {result['ledger']}")
        typer.echo(f"First admin: {summary.user_id} ({summary.name}), key {summary.key_id[:16]}…")


def checkpoint(
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Where to write the note (or use --dir).")] = None,
    directory: Annotated[Path | None, typer.Option(
        "--dir", metavar="DIR", envvar="TRIALCTL_CHECKPOINT_DIR",
        help="A directory outside the database: the note goes there as "
        "<ledger id>-<tree size>.txt.")] = None,
    every: Annotated[int | None, typer.Option(
        "--every", metavar="N", min=1, max=999_999_999,
        help="With --dir: only when N entries or more were signed since the newest note "
        "there (for cron or the end of a session).")] = None,
    auto: Annotated[bool, typer.Option(
        "--auto", help="With --dir: only when anything was signed since the newest note "
        "there (--every 1).")] = False,
    ledger: LedgerOption = None,
    user: UserOption = None,
    witnesses: Annotated[list[str] | None, typer.Option(
        "--witness", metavar="URL|DIR",
        help="A witness to cosign the note (repeatable): a tlog-witness URL, or a witness "
        "directory (its password, if sealed, is read after yours).")] = None,
    password_stdin: PasswordStdinOption = False,
    json_output: JsonOption = False,
) -> None:
    """Record a signed tree head in the ledger and write it to a file.

    Keep the file outside the database: `verify --checkpoint FILE` (or `--checkpoint-dir`)
    later proves the ledger still holds exactly those entries (nothing rewritten, nothing
    cut off). Each --witness is sent the note with a consistency proof from the last size
    it cosigned; its cosignature is added to the note. A witness that refuses is named
    (exit 1); the note is written with the cosignatures that were given.
    TRIALCTL_CHECKPOINT_EVERY=N|auto makes every signing command do `--every N` by itself.

    \b
    Example: trialctl checkpoint -u alice -o checkpoints/today.txt
    """
    from trialctl.ledger.application import open_ledger
    from trialctl.ledger.checkpoint_dir import (
        newest_note,
        note_path,
        rewrite_note,
        signed_since,
        write_note,
    )
    from trialctl.ledger.witness import WitnessError, WitnessRefusal, cosign_from_ledger

    signer = need_user(user)
    if output is None and directory is None:
        fail("give --output FILE or --dir DIR (or set TRIALCTL_CHECKPOINT_DIR)", EXIT_USAGE)
    if output is not None:
        directory = None  # an explicit file wins over TRIALCTL_CHECKPOINT_DIR
    if (every is not None or auto) and output is not None:
        fail("--every and --auto need --dir: they compare with the newest note there",
             EXIT_USAGE)
    if every is not None and auto:
        fail("give --every N or --auto, not both", EXIT_USAGE)
    if output is not None and output.exists():
        fail(f"{output} exists; a checkpoint file is never overwritten", EXIT_USAGE)
    threshold = 1 if auto else every
    passwords = PasswordSource(password_stdin)
    refusals: list[str] = []
    with ledger_errors():
        app = open_ledger(ledger)
        if directory is not None and threshold is not None:
            ledger_id = app.ledger_record().ledger_id
            size = len(app.signed_recorder.leaf_hashes())
            newest = newest_note(directory, ledger_id)
            since = size if newest is None else \
                signed_since(int(newest.stem.rsplit("-", 1)[1]), size)
            if newest is not None and since < threshold:
                _not_due(newest, since, threshold, json_output)
                return
        actor = app.unlock(signer, passwords.read(f"Password for {signer}"))
        submitters = [_witness_submitter(target, passwords) for target in witnesses or []]
        if directory is not None:
            target = note_path(directory, app.ledger_record().ledger_id,
                               len(app.signed_recorder.leaf_hashes()))
            if target.exists():
                fail(f"{target} exists; a checkpoint file is never overwritten", EXIT_USAGE)
            output, signed = app.checkpoint_to(actor, directory, datetime.now(UTC))
        else:
            assert output is not None
            output.parent.mkdir(parents=True, exist_ok=True)
            if output.exists():
                fail(f"{output} exists; a checkpoint file is never overwritten", EXIT_USAGE)
            signed = app.checkpoint(actor, datetime.now(UTC))
            write_note(output, signed.to_text())  # whole or not at all, never over a file
        cosigned = signed
        for target_name, (submit, key) in zip(witnesses or [], submitters, strict=True):
            try:
                cosigned = cosigned.with_signatures(
                    tuple(cosign_from_ledger(app, cosigned, submit, key)))
            except (WitnessRefusal, WitnessError) as e:
                refusals.append(f"witness {target_name}: {e}")
        if cosigned is not signed:
            rewrite_note(output, cosigned.to_text())
            signed = cosigned
    result: dict[str, object] = {
        "file": str(output),
        "tree_size": signed.checkpoint.tree_size,
        "root_hash": signed.checkpoint.root_hash.hex(),
        "signer": signed.checkpoint.signer,
        "cosigned_by": [s.name for s in signed.others],
        "refused_by": refusals,
    }
    if json_output:
        print_json(result)
    else:
        typer.echo(
            f"Checkpoint of {signed.checkpoint.tree_size} entries, root "
            f"{signed.checkpoint.root_hash.hex()[:16]}…, "
            f"written to {output}"
        )
        if signed.others:
            typer.echo(f"cosigned by {', '.join(s.name for s in signed.others)}")
    for refusal in refusals:
        typer.echo(f"trialctl: {refusal}", err=True)
    if refusals:
        raise typer.Exit(EXIT_FAILED)


def _not_due(newest: Path, since: int, threshold: int, json_output: bool) -> None:
    if json_output:
        print_json({"file": None, "newest": str(newest), "signed_since": since,
                    "every": threshold})
    else:
        typer.echo(f"No checkpoint due: {since} of {threshold} entries signed since {newest}")


def _witness_submitter(target: str, passwords: PasswordSource) -> tuple[Submit, Verifier | None]:
    """How to reach one --witness: over HTTP, or a witness directory opened here."""
    from trialctl.ledger.witness import Witness
    from trialctl.ledger.witness_http import http_submitter

    if target.startswith(("http://", "https://")):
        return http_submitter(target), None
    witness = Witness(Path(target))
    witness.unlock(passwords.read(f"Password for witness {witness.name}")
                   if witness.sealed else None)

    def submit(old_size: int, proof: Sequence[bytes], note: str) -> list[NoteSignature]:
        return witness.add_checkpoint(old_size, proof, note, int(time.time()))

    return submit, witness.verifier


def verify(
    checkpoint_files: Annotated[
        list[Path] | None,
        typer.Option("--checkpoint", "-c", help="A checkpoint file to check (repeatable)."),
    ] = None,
    since_checkpoint: Annotated[
        Path | None,
        typer.Option("--since-checkpoint", help="Check in full only what was appended after "
                     "this checkpoint (verified before), and prove the rest unchanged; "
                     "cohort decisions of the trials touched since it are recomputed."),
    ] = None,
    projections: Annotated[bool, typer.Option(
        "--projections", help="Also check that the read models equal a replay of the entries.")
    ] = False,
    ledger_id: Annotated[str | None, typer.Option(
        "--ledger-id", metavar="ID", help="Pin: the ledger id position 0 must hold.")] = None,
    first_admin_key: Annotated[str | None, typer.Option(
        "--first-admin-key", metavar="KEYID",
        help="Pin: the key id the first admin (position 1) must hold.")] = None,
    trust: Annotated[Path | None, typer.Option(
        "--trust", help="A trust file you keep (`trialctl ledger trust`): the pins above and "
        "the last tree head you saw, which today's ledger must extend.")] = None,
    bundle: Annotated[Path | None, typer.Option(
        "--bundle", metavar="DIR", help="Verify an auditor's bundle (`export bundle`) "
        "offline, instead of a ledger.")] = None,
    witness_keys: Annotated[list[str] | None, typer.Option(
        "--witness-key", metavar="VKEY",
        help="A witness's verifier key (repeatable): name which of them vouched for each "
        "--checkpoint; cosignatures by other keys are ignored.")] = None,
    checkpoint_dir: Annotated[Path | None, typer.Option(
        "--checkpoint-dir", metavar="DIR", envvar="TRIALCTL_CHECKPOINT_DIR",
        help="Also check the newest note of this ledger in DIR (`checkpoint --dir`), and "
        "warn when more than --stale-after entries follow it.")] = None,
    stale_after: Annotated[int, typer.Option(
        "--stale-after", metavar="N", min=0, max=999_999_999,
        envvar="TRIALCTL_CHECKPOINT_STALE_AFTER",
        help="With --checkpoint-dir: how many entries may follow the newest note before "
        "verify warns.")] = 100,
    ledger: LedgerOption = None,
    json_output: JsonOption = False,
) -> None:
    """Check every signature, authority, chain link, position and Merkle root.

    Every cohort decision is recomputed from the ledger as it stood at its position and
    compared with the evidence it signed; every override is listed with its reason and
    signer (docs/FORMAT.md section 17).

    Without a pin, a ledger rewritten from its first entry with new keys is consistent in
    itself; --ledger-id, --first-admin-key or --trust make it a finding (check `pin`).

    With --projections, a cohort decision made on data since corrected is listed as a
    warning (WARNING, with the entries involved): it does not change the exit code.

    Exit 0 when clean, 1 when anything fails (every failure is listed), 2 on usage errors.

    \b
    Example: trialctl verify --checkpoint checkpoints/today.txt --json
    """
    from trialctl.ledger.application import open_ledger
    from trialctl.ledger.checkpoint import (
        CheckpointError,
        read_checkpoint_file,
    )
    from trialctl.ledger.checkpoint_dir import signed_since
    from trialctl.ledger.verify import verify_ledger
    from trialctl.ledger.witness import attach_witnesses

    def read(path: Path) -> tuple[str, SignedCheckpoint]:
        try:
            return str(path), read_checkpoint_file(path)
        except OSError as e:
            fail(f"cannot read checkpoint {path}: {e}", EXIT_USAGE)
        except CheckpointError as e:
            fail(f"checkpoint {path} is malformed: {e}")

    checkpoints = [read(path) for path in checkpoint_files or []]
    witnesses = _witness_keys(witness_keys or [])
    since = read(since_checkpoint) if since_checkpoint is not None else None
    pins = _pins(ledger_id, first_admin_key, trust)
    if bundle is not None and (since or pins or projections):
        fail("--bundle verifies the bundle alone: no --since-checkpoint, pins or "
             "--projections", EXIT_USAGE)
    with ledger_errors():
        if bundle is not None:
            from trialctl.ledger.bundle import verify_bundle

            report = verify_bundle(bundle, checkpoints)
            checkpoints = [*checkpoints, *_bundle_notes(bundle)]
        else:
            app = open_ledger(ledger)
            warnings: list[str] = []
            if checkpoint_dir is not None:
                kept = _newest_kept(app, checkpoint_dir, warnings)
                checkpoints = [*checkpoints, *kept]
            with progress(enabled=not json_output and sys.stderr.isatty()) as report_progress:
                report = verify_ledger(
                    app.signed_recorder, app.location.display(), checkpoints,
                    report_progress, since=since, pins=pins,
                )
            report.warnings.extend(warnings)
            for source, signed in kept if checkpoint_dir is not None else []:
                uncovered = signed_since(signed.checkpoint.tree_size, report.tree_size)
                if uncovered > stale_after:
                    report.warnings.append(
                        f"newest checkpoint {source} is {uncovered} entries old (more than "
                        f"{stale_after}): those entries are covered by no note kept outside "
                        "the database")
        if witnesses:
            attach_witnesses(report, checkpoints, witnesses)
        if projections and bundle is None:
            from trialctl.ledger.projection import catch_up, compare_with_replay
            from trialctl.ledger.verify import Finding

            difference = compare_with_replay(app, catch_up(app))
            if difference is not None:
                report.findings.append(Finding("projections", difference))
            from trialctl.ledger.verify_since_corrected import decisions_since_corrected

            report.since_corrected.extend(decisions_since_corrected(app))
    if json_output:
        print_json(report.to_dict())
    else:
        for finding in report.findings:
            typer.echo(f"FAIL {finding.describe()}")
        for result in report.checkpoints:
            vouched = "".join(f"; witnessed by {w['name']}" for w in result.witnesses)
            typer.echo(f"checkpoint {result.source} (size {result.tree_size}): "
                       f"{result.status}{vouched}")
        for override in report.overrides:
            typer.echo(f"OVERRIDE {override.describe()}")
        for warning in report.warnings:
            typer.echo(f"WARNING {warning}")
        for note in report.notes:
            typer.echo(f"NOTE {note}")
        for corrected in report.since_corrected:
            typer.echo(f"WARNING {corrected.describe()}")
        if report.decisions_checked:
            typer.echo(f"cohort decisions recomputed: {report.decisions_checked}, overrides: "
                       f"{len(report.overrides)}")
        verdict = "clean" if report.ok else f"{len(report.findings)} finding(s)"
        scope = "" if report.since_tree_size is None else \
            f" after checkpoint size {report.since_tree_size}"
        typer.echo(
            f"{report.location}: {report.entries_checked} entries{scope}, root "
            f"{report.root_hash[:16]}…: {verdict}"
        )
    if not report.ok:
        raise typer.Exit(EXIT_FAILED)


def _newest_kept(app: TrialLedger, directory: Path,
                 warnings: list[str]) -> list[tuple[str, SignedCheckpoint]]:
    """The newest note of this ledger in the checkpoint directory, or a warning."""
    from trialctl.ledger.checkpoint import CheckpointError
    from trialctl.ledger.checkpoint_dir import read_newest

    ledger_id = app.ledger_record().ledger_id
    try:
        newest = read_newest(directory, ledger_id)
    except OSError as e:
        fail(f"cannot read checkpoint in {directory}: {e.strerror}", EXIT_USAGE)
    except CheckpointError as e:
        fail(f"newest checkpoint in {directory} is malformed: {e}")
    if newest is None:
        warnings.append(f"no checkpoint of ledger {ledger_id} in {directory}: nothing kept "
                        "outside the database covers any entry")
        return []
    return [(str(newest[0]), newest[1])]


def _bundle_notes(bundle: Path) -> list[tuple[str, SignedCheckpoint]]:
    """The bundle's notes under the names its report gives them, for --witness-key."""
    from trialctl.ledger.checkpoint import CheckpointError, read_checkpoint_file

    notes = []
    for path in sorted((bundle / "checkpoints").glob("*")):
        try:
            notes.append((f"checkpoints/{path.name}", read_checkpoint_file(path)))
        except (CheckpointError, OSError):
            continue  # already a finding of the bundle's own check
    return notes


def _witness_keys(texts: list[str]) -> list[Verifier]:
    from trialctl.ledger.witness import WitnessError, parse_cosigner_key

    try:
        return [parse_cosigner_key(text) for text in texts]
    except WitnessError as e:
        fail(str(e), EXIT_USAGE)


def _pins(ledger_id: str | None, first_admin_key: str | None,
          trust: Path | None) -> TrustRoots | None:
    from trialctl.ledger.trust import TrustFileError, TrustRoots, read_trust_file

    if ledger_id is None and first_admin_key is None and trust is None:
        return None
    try:
        kept = read_trust_file(trust) if trust is not None else TrustRoots()
        return kept.merged(ledger_id, first_admin_key)
    except TrustFileError as e:
        fail(str(e), EXIT_USAGE)


ledger_app = typer.Typer(help="The ledger's trust roots, for auditors.",
                         no_args_is_help=True)


@ledger_app.command("trust")
def trust_file(
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the file.")],
    ledger: LedgerOption = None,
    json_output: JsonOption = False,
) -> None:
    """Write the trust file an auditor keeps: ledger id, first admin key, today's tree head.

    Write it once the ledger has verified clean, and keep it away from the database;
    `verify --trust FILE` then refuses a substitute ledger and a rewritten history.

    \b
    Example: trialctl ledger trust -o trust.json
    """
    import json

    from trialctl.ledger.application import open_ledger
    from trialctl.ledger.trust import trust_roots_of

    if output.exists():
        fail(f"{output} exists; a trust file is never overwritten", EXIT_USAGE)
    with ledger_errors():
        roots = trust_roots_of(open_ledger(ledger).signed_recorder)
        output.parent.mkdir(parents=True, exist_ok=True)
        with output.open("x", encoding="utf-8") as file:
            file.write(json.dumps(roots.to_dict(), indent=2, sort_keys=True) + "\n")
    if json_output:
        print_json({"file": str(output), **roots.to_dict()})
    else:
        seen = roots.last_seen
        assert seen is not None
        typer.echo(f"Trust file {output}: ledger {roots.ledger_id}, first admin "
                   f"{roots.first_admin} key {str(roots.first_admin_key)[:16]}…, tree head "
                   f"{seen.tree_size} {seen.root_hash[:16]}…")


def backup(
    output: Annotated[Path, typer.Argument(help="The backup file to write (never overwritten).")],
    ledger: LedgerOption = None,
    json_output: JsonOption = False,
) -> None:
    """Copy the whole ledger to a file: SQLite's online backup, or pg_dump for PostgreSQL.

    The copy holds every entry byte for byte, so once restored it verifies clean, also
    against checkpoint notes taken before the backup.

    \b
    Example: trialctl backup trial-backup.sqlite
    """
    from trialctl.ledger.application import open_ledger
    from trialctl.ledger.backup import backup as write_backup

    with ledger_errors():
        app = open_ledger(ledger)
        size = len(app.signed_recorder.leaf_hashes())
        write_backup(app.location, output)
    if json_output:
        print_json({"file": str(output), "ledger": app.location.display(), "tree_size": size})
    else:
        typer.echo(f"Backed up {app.location.display()} ({size} entries) to {output}")


def restore(
    source: Annotated[Path, typer.Argument(help="A file written by `trialctl backup`.")],
    ledger: LedgerOption = None,
    json_output: JsonOption = False,
) -> None:
    """Restore a backup into a new ledger: a SQLite path that does not exist yet, or an
    empty PostgreSQL database. Restoring over an existing ledger is refused.

    \b
    Example: trialctl restore trial-backup.sqlite --ledger restored.sqlite
    """
    from trialctl.ledger.application import open_ledger
    from trialctl.ledger.backup import restore as restore_backup
    from trialctl.ledger.location import resolve_ledger

    with ledger_errors():
        location = resolve_ledger(ledger)
        restore_backup(source, location)
        app = open_ledger(ledger)
        size = len(app.signed_recorder.leaf_hashes())
    if json_output:
        print_json({"file": str(source), "ledger": location.display(), "tree_size": size})
    else:
        typer.echo(f"Restored {size} entries from {source} to {location.display()}; "
                   "run `trialctl verify` on it")


def register(app: typer.Typer) -> None:
    app.command()(init)
    app.command()(checkpoint)
    app.command()(verify)
    app.command()(backup)
    app.command()(restore)
