"""`trialctl proof inclusion|consistency|verify`: RFC 6962 proofs, and checking one with no
ledger at hand.

The database stack is imported inside each function that needs it, so `trialctl --help`
stays fast."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from trialctl.cli.io import EXIT_USAGE, fail, ledger_errors, print_json
from trialctl.cli.options import JsonOption, LedgerOption

if TYPE_CHECKING:
    from trialctl.ledger.signed_note import Verifier

app = typer.Typer(help="Merkle proofs over the ledger's entries.", no_args_is_help=True)


OutputOption = Annotated[Path | None, typer.Option(
    "--output", "-o", help="Also write the proof's JSON to this file (never overwritten), "
    "to send to whoever checks it.")]
AgainstOption = Annotated[Path | None, typer.Option(
    "--checkpoint", "-c", help="Prove against the tree this checkpoint note signed (its size; "
    "refused if the ledger no longer has its root).")]


def _size_of(checkpoint: Path | None, size: int | None) -> int | None:
    """The tree size to prove against: given, or the one a checkpoint note signed."""
    if checkpoint is None:
        return size
    if size is not None:
        fail("give --size or --checkpoint, not both", EXIT_USAGE)
    return _trusted(None, checkpoint, "root")[1]


def _matches(checkpoint: Path | None, root: bytes) -> None:
    if checkpoint is not None and _trusted(None, checkpoint, "root")[0] != root:
        fail(f"the ledger's tree no longer has the root {checkpoint} signed: history rewritten")


def _write(output: Path | None, data: dict[str, object]) -> None:
    if output is None:
        return
    try:
        with output.open("x", encoding="utf-8") as file:
            file.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
    except FileExistsError:
        fail(f"{output} exists; a proof file is never overwritten", EXIT_USAGE)
    except OSError as e:
        fail(f"cannot write {output}: {e.strerror or e}", EXIT_USAGE)


@app.command("inclusion")
def inclusion(
    position: Annotated[int, typer.Argument(help="The entry's position (from 0).", min=0)],
    tree_size: Annotated[
        int | None, typer.Option("--size", help="Prove against this tree size.", min=1)
    ] = None,
    against: AgainstOption = None,
    output: OutputOption = None,
    ledger: LedgerOption = None,
    json_output: JsonOption = False,
) -> None:
    """Prove that the entry at POSITION is in the tree of the given size.

    \b
    Example: trialctl proof inclusion 12 --checkpoint checkpoints/today.txt -o proof.json
    """
    from trialctl.ledger.application import open_ledger
    from trialctl.ledger.proofs import prove_inclusion

    size = _size_of(against, tree_size)
    with ledger_errors():
        proof = prove_inclusion(open_ledger(ledger).signed_recorder, position, size)
    _matches(against, proof.root_hash)
    data = proof.to_dict()
    _write(output, data)
    if json_output:
        print_json(data)
        return
    typer.echo(f"entry {position} ({data['type']}) in tree of size {proof.tree_size}")
    typer.echo(f"leaf hash {data['leaf_hash']}")
    typer.echo(f"root hash {data['root_hash']}")
    for i, h in enumerate(data["proof"]):
        typer.echo(f"  proof[{i}] {h}")


@app.command("consistency")
def consistency(
    old_size: Annotated[int, typer.Argument(help="The older tree size.", min=1)],
    new_size: Annotated[
        int | None, typer.Option("--size", help="The newer tree size [default: now].", min=1)
    ] = None,
    against: AgainstOption = None,
    output: OutputOption = None,
    ledger: LedgerOption = None,
    json_output: JsonOption = False,
) -> None:
    """Prove that the tree of OLD_SIZE is a prefix of the newer tree.

    \b
    Example: trialctl proof consistency 40 --json
    """
    from trialctl.ledger.application import open_ledger
    from trialctl.ledger.proofs import prove_consistency

    size = _size_of(against, new_size)
    with ledger_errors():
        proof = prove_consistency(open_ledger(ledger).signed_recorder, old_size, size)
    _matches(against, proof.new_root)
    data = proof.to_dict()
    _write(output, data)
    if json_output:
        print_json(data)
        return
    typer.echo(f"tree {old_size} -> {proof.new_size}")
    typer.echo(f"old root {data['old_root']}")
    typer.echo(f"new root {data['new_root']}")
    for i, h in enumerate(data["proof"]):
        typer.echo(f"  proof[{i}] {h}")


def _verifier_keys(texts: list[str]) -> list[Verifier]:
    from trialctl.ledger.signed_note import NoteError, parse_vkey

    try:
        return [parse_vkey(text) for text in texts]
    except NoteError as e:
        fail(f"--key: {e}", EXIT_USAGE)


def _read_document(path: Path) -> object:
    """The JSON a producing command printed; '-' reads standard input."""
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        fail(f"cannot read proof {path}: {e}", EXIT_USAGE)
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as e:  # ValueError: also over 4,300 digits
        fail(f"proof rejected: {path} is not JSON ({e.__class__.__name__})")


def _trusted(root_hex: str | None, checkpoint: Path | None, what: str,
             signers: Sequence[Verifier] = ()) -> tuple[bytes, int | None]:
    """A root the caller trusts: given in hex, or read from a checkpoint note (with its
    size), whose signature must verify with one of `signers` when any are given."""
    from trialctl.ledger.checkpoint import CheckpointError, check_signed_by, read_checkpoint_file
    from trialctl.ledger.proofs import ProofRejectedError, parse_hash

    if (root_hex is None) == (checkpoint is None):
        fail(f"give the {what} either as a hex root or as a checkpoint file", EXIT_USAGE)
    if checkpoint is not None:
        try:
            note = read_checkpoint_file(checkpoint)
        except OSError as e:
            fail(f"cannot read checkpoint {checkpoint}: {e.strerror or e}", EXIT_USAGE)
        except CheckpointError as e:
            fail(f"proof rejected: checkpoint {checkpoint} is malformed: {e}")
        if signers:
            try:
                check_signed_by(note, signers)
            except CheckpointError as e:
                fail(f"proof rejected: checkpoint {checkpoint}: {e}")
        return note.checkpoint.root_hash, note.checkpoint.tree_size
    try:
        return parse_hash(root_hex, f"the {what}"), None
    except ProofRejectedError as e:
        fail(f"proof rejected: {e}")


@app.command("verify")
def verify(
    proof_file: Annotated[Path, typer.Argument(
        metavar="PROOF", help="The JSON that `proof inclusion|consistency --json` printed "
        "('-' reads standard input).")],
    root: Annotated[str | None, typer.Option(
        "--root", metavar="HEX", help="The (new) root you trust, in hex.")] = None,
    checkpoint: Annotated[Path | None, typer.Option(
        "--checkpoint", "-c", help="A checkpoint note giving the (new) root and its size.")
    ] = None,
    old_root: Annotated[str | None, typer.Option(
        "--old-root", metavar="HEX", help="Consistency: the old root you trust, in hex.")
    ] = None,
    old_checkpoint: Annotated[Path | None, typer.Option(
        "--old-checkpoint", help="Consistency: a checkpoint note giving the old root.")
    ] = None,
    entry: Annotated[Path | None, typer.Option(
        "--entry", help="Inclusion: a file holding the entry's stored bytes; its leaf hash "
        "must be the proof's.")] = None,
    keys: Annotated[list[str] | None, typer.Option(
        "--key", metavar="VKEY", help="The verifier key of the checkpoints' signer "
        "(`witness log-key` prints it; repeatable): each checkpoint given must be signed "
        "with one of them.")] = None,
    json_output: JsonOption = False,
) -> None:
    """Check an inclusion or consistency proof with no ledger at hand.

    The roots come from you (--root, --old-root) or from checkpoint notes you kept
    (--checkpoint, --old-checkpoint), never from the proof itself. With --key, each
    checkpoint's signature must verify with a verifier key you hold for its signer, or
    the proof is rejected; without it the note's signature is not checked here
    (`verify --checkpoint` checks it against the ledger's keys). Exit 0 when the proof
    holds, 1 when it is rejected, 2 on usage errors.

    \b
    Example: trialctl proof verify proof.json --checkpoint checkpoints/today.txt
    """
    from trialctl.ledger.proofs import (
        ProofRejectedError,
        check_consistency_document,
        check_inclusion_document,
        proof_kind,
    )

    signers = _verifier_keys(keys or [])
    if signers and checkpoint is None and old_checkpoint is None:
        fail("--key checks a checkpoint's signature: give --checkpoint or --old-checkpoint",
             EXIT_USAGE)
    document = _read_document(proof_file)
    try:
        if proof_kind(document) == "inclusion":
            if old_root is not None or old_checkpoint is not None:
                fail("--old-root and --old-checkpoint are for consistency proofs", EXIT_USAGE)
            trusted, size = _trusted(root, checkpoint, "root", signers)
            try:
                entry_bytes = None if entry is None else entry.read_bytes()
            except OSError as e:
                fail(f"cannot read entry {entry}: {e.strerror or e}", EXIT_USAGE)
            checked = check_inclusion_document(document, trusted, size, entry_bytes)
        else:
            if entry is not None:
                fail("--entry is for inclusion proofs", EXIT_USAGE)
            old_trusted, old_size = _trusted(old_root, old_checkpoint, "old root", signers)
            new_trusted, new_size = _trusted(root, checkpoint, "new root", signers)
            checked = check_consistency_document(
                document, old_trusted, new_trusted, old_size, new_size)
    except ProofRejectedError as e:
        fail(f"proof rejected: {e}")
    if json_output:
        print_json(checked.to_dict())
    elif checked.kind == "inclusion":
        assert checked.leaf_hash is not None
        typer.echo(f"ok: leaf {checked.leaf_hash.hex()[:16]}… is entry {checked.position} of "
                   f"the tree of size {checked.tree_size}, root {checked.root_hash.hex()[:16]}…")
    else:
        assert checked.old_root is not None
        typer.echo(f"ok: the tree of size {checked.tree_size}, root "
                   f"{checked.root_hash.hex()[:16]}…, extends the tree of size "
                   f"{checked.old_size}, root {checked.old_root.hex()[:16]}…")
