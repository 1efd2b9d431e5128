"""`trialctl proof inclusion|consistency`: RFC 6962 proofs any auditor can check.

The database stack is imported inside each function that needs it, so `trialctl --help`
stays fast."""

from __future__ import annotations

from typing import Annotated

import typer

from trialctl.cli.io import ledger_errors, print_json
from trialctl.cli.options import JsonOption, LedgerOption

app = typer.Typer(help="Merkle proofs over the ledger's entries.", no_args_is_help=True)


@app.command("inclusion")
def inclusion(
    position: Annotated[int, typer.Argument(help="The entry's position (from 0).", min=0)],
    tree_size: Annotated[
        int | None, typer.Option("--size", help="Prove against this tree size.", min=1)
    ] = None,
    ledger: LedgerOption = None,
    json_output: JsonOption = False,
) -> None:
    """Prove that the entry at POSITION is in the tree of the given size.

    \b
    Example: trialctl proof inclusion 12 --size 40 --json
    """
    from trialctl.ledger.application import open_ledger
    from trialctl.ledger.proofs import prove_inclusion

    with ledger_errors():
        proof = prove_inclusion(open_ledger(ledger).signed_recorder, position, tree_size)
    if json_output:
        print_json(proof.to_dict())
        return
    data = proof.to_dict()
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
    ledger: LedgerOption = None,
    json_output: JsonOption = False,
) -> None:
    """Prove that the tree of OLD_SIZE is a prefix of the newer tree.

    \b
    Example: trialctl proof consistency 40 --json
    """
    from trialctl.ledger.application import open_ledger
    from trialctl.ledger.proofs import prove_consistency

    with ledger_errors():
        proof = prove_consistency(open_ledger(ledger).signed_recorder, old_size, new_size)
    if json_output:
        print_json(proof.to_dict())
        return
    data = proof.to_dict()
    typer.echo(f"tree {old_size} -> {proof.new_size}")
    typer.echo(f"old root {data['old_root']}")
    typer.echo(f"new root {data['new_root']}")
    for i, h in enumerate(data["proof"]):
        typer.echo(f"  proof[{i}] {h}")
