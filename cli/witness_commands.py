"""`trialctl witness init|show|log-key|add-log|cosign|serve`: a second party that cosigns
checkpoints only when each extends the last it saw (c2sp.org/tlog-witness).

The database stack is imported inside each command, so `trialctl --help` stays fast."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from trialctl.cli.io import EXIT_USAGE, PasswordSource, fail, ledger_errors, print_json
from trialctl.cli.options import JsonOption, LedgerOption, PasswordStdinOption

if TYPE_CHECKING:
    from trialctl.ledger.witness import Witness

app = typer.Typer(help="A witness: cosigns checkpoints that extend the last one it saw.",
                  no_args_is_help=True)

DirArgument = Annotated[Path, typer.Argument(metavar="DIR", help="The witness's directory.")]


def _open(directory: Path, password_stdin: bool) -> Witness:
    """The witness in DIR with its key unlocked (asking for the password if it is sealed)."""
    from trialctl.ledger.witness import Witness

    with ledger_errors():
        witness = Witness(directory)
        password = PasswordSource(password_stdin).read(f"Password for witness {witness.name}") \
            if witness.sealed else None
        witness.unlock(password)
    return witness


@app.command("init")
def init(
    directory: DirArgument,
    name: Annotated[str, typer.Option("--name", help="The witness's key name, a schema-less "
                                      "URL such as witness.example/w1.")],
    unsealed: Annotated[bool, typer.Option(
        "--unsealed", help="Keep the key in a 0600 file without a password (for a witness "
        "run as a service); otherwise it is sealed with a password.")] = False,
    password_stdin: PasswordStdinOption = False,
    json_output: JsonOption = False,
) -> None:
    """Create a witness in DIR: its own Ed25519 key, its name and an empty list of logs.

    Give its verifier key (printed here, and by `witness show`) to whoever checks
    checkpoints: `verify --checkpoint FILE --witness-key VKEY`.

    \b
    Example: trialctl witness init witness --name witness.example/w1 --unsealed
    """
    from trialctl.ledger.witness import create_witness

    with ledger_errors():
        password = None if unsealed else \
            PasswordSource(password_stdin).read_new(f"New password for witness {name}")
        witness = create_witness(directory, name, password)
    result = {"witness": witness.name, "directory": str(directory),
              "vkey": witness.verifier.vkey(), "sealed": witness.sealed}
    if json_output:
        print_json(result)
    else:
        typer.echo(f"Created witness {witness.name} in {directory} "
                   f"({'sealed with a password' if witness.sealed else 'unsealed key'})")
        typer.echo(f"Verifier key: {result['vkey']}")


@app.command("show")
def show(directory: DirArgument, json_output: JsonOption = False) -> None:
    """Show a witness's verifier key and the logs it follows, with the last size cosigned.

    \b
    Example: trialctl witness show witness
    """
    from trialctl.ledger.witness import Witness

    with ledger_errors():
        witness = Witness(directory)
        logs = witness.logs()
    rows: list[dict[str, Any]] = [{"origin": origin, "size": log.size, "keys": log.keys}
                                  for origin, log in sorted(logs.items())]
    if json_output:
        print_json({"witness": witness.name, "vkey": witness.verifier.vkey(), "logs": rows})
        return
    typer.echo(f"witness {witness.name}: {witness.verifier.vkey()}")
    if not rows:
        typer.echo("  follows no log yet (witness add-log)")
    for row in rows:
        typer.echo(f"  {row['origin']}: last cosigned size {row['size']}, "
                   f"{len(row['keys'])} key(s)")


@app.command("log-key")
def log_key(
    user: Annotated[str, typer.Argument(metavar="USER", help="A user who signs checkpoints.")],
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Write origin and key to this file for `witness add-log "
        "--from` (never overwritten).")] = None,
    ledger: LedgerOption = None,
    json_output: JsonOption = False,
) -> None:
    """Print the ledger's checkpoint origin and USER's verifier key, for a witness.

    \b
    Example: trialctl witness log-key alice -o alice.vkey
    """
    from trialctl.ledger.application import open_ledger
    from trialctl.ledger.witness import log_key as key_of

    with ledger_errors():
        origin, vkey = key_of(open_ledger(ledger), user)
        if output is not None:
            try:
                with output.open("x", encoding="utf-8") as file:
                    file.write(f"{origin}\n{vkey}\n")
            except FileExistsError:
                fail(f"{output} exists; a key file is never overwritten", EXIT_USAGE)
    if json_output:
        print_json({"origin": origin, "vkey": vkey, "user": user})
    else:
        typer.echo(f"origin {origin}")
        typer.echo(f"key    {vkey}")


@app.command("add-log")
def add_log(
    directory: DirArgument,
    origin: Annotated[str | None, typer.Option("--origin", help="The log's origin line.")
                      ] = None,
    keys: Annotated[list[str] | None, typer.Option(
        "--key", metavar="VKEY", help="A verifier key of the log (repeatable).")] = None,
    from_file: Annotated[Path | None, typer.Option(
        "--from", help="A file `witness log-key -o` wrote: origin and key.")] = None,
    json_output: JsonOption = False,
) -> None:
    """Trust a log: its origin and the keys that sign its checkpoints.

    Adding keys to a log already followed keeps its state (the last size cosigned).

    \b
    Example: trialctl witness add-log witness --from alice.vkey
    """
    from trialctl.ledger.witness import Witness

    given = list(keys or [])
    if from_file is not None:
        try:
            lines = from_file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as e:
            fail(f"cannot read {from_file}: {e}", EXIT_USAGE)
        if len(lines) != 2 or (origin is not None and origin != lines[0]):
            fail(f"{from_file} is not an origin line and a key line (or names another origin)",
                 EXIT_USAGE)
        origin, given = lines[0], [*given, lines[1]]
    if origin is None or not given:
        fail("give --origin and --key, or --from FILE", EXIT_USAGE)
    with ledger_errors():
        log = Witness(directory).add_log(origin, given)
    if json_output:
        print_json({"origin": origin, "keys": log.keys, "size": log.size})
    else:
        typer.echo(f"witness follows {origin}: {len(log.keys)} key(s), last cosigned size "
                   f"{log.size}")


@app.command("cosign")
def cosign(
    directory: DirArgument,
    checkpoint: Annotated[Path, typer.Option(
        "--checkpoint", "-c", help="The checkpoint note; the cosignature is added to it.")],
    proof: Annotated[Path | None, typer.Option(
        "--proof", help="`trialctl proof consistency OLD --json` output, from the size the "
        "witness last cosigned (none the first time).")] = None,
    password_stdin: PasswordStdinOption = False,
    json_output: JsonOption = False,
) -> None:
    """Cosign a checkpoint file, after checking the log's signature and that it extends the
    last checkpoint this witness cosigned. Refused (exit 1, nothing changed) otherwise.

    \b
    Example: trialctl witness cosign witness --checkpoint checkpoints/today.txt
    """
    from trialctl.ledger.witness import WitnessRefusal, cosign_file

    document: object | None = None
    if proof is not None:
        try:
            document = json.loads(proof.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as e:
            fail(f"cannot read proof {proof}: {e}", EXIT_USAGE)
        except (ValueError, RecursionError):  # also an integer over 4,300 digits
            fail(f"proof {proof} is not JSON", EXIT_USAGE)
    witness = _open(directory, password_stdin)
    with ledger_errors():
        try:
            head, lines = cosign_file(witness, checkpoint, document, int(time.time()))
        except WitnessRefusal as e:
            fail(f"witness {witness.name} refuses {checkpoint}: {e}")
    if json_output:
        print_json({"witness": witness.name, "checkpoint": str(checkpoint),
                    "origin": head.origin, "tree_size": head.size,
                    "cosignatures": [s.line().rstrip("\n") for s in lines]})
    else:
        typer.echo(f"witness {witness.name} cosigned {head.origin} at size {head.size}; "
                   f"{checkpoint} now carries its cosignature")


@app.command("serve")
def serve(
    directory: DirArgument,
    port: Annotated[int, typer.Option("--port", min=0, max=65535,
                                      help="TCP port on 127.0.0.1; 0 picks a free one.")],
    duration: Annotated[float | None, typer.Option(
        "--duration", min=0.1, metavar="SECONDS",
        help="Stop after this long [default: until interrupted].")] = None,
    password_stdin: PasswordStdinOption = False,
) -> None:
    """Serve the tlog-witness HTTP API (POST /add-checkpoint) on 127.0.0.1.

    Logs reach it with `trialctl checkpoint --witness http://127.0.0.1:PORT`. Answers per
    c2sp.org/tlog-witness: 200 with cosignature lines, 400 malformed, 403 bad log
    signature, 404 unknown log, 409 another old size (body: the witness's size) or the
    same size with another root, 422 a proof that does not hold. Monitors read the last
    checkpoint it cosigned for a log, with its cosignature, at GET /<origin>/checkpoint
    (e.g. /trialctl/ledger/<ledger id>/checkpoint); 404 for a log it does not know or has
    not cosigned yet.

    \b
    Example: trialctl witness serve witness --port 0 --duration 1
    """
    import threading

    from trialctl.ledger.witness_http import make_server

    witness = _open(directory, password_stdin)
    try:
        server = make_server(witness, port,
                             lambda line: typer.echo(f"witness: {line}", err=True))
    except OSError as e:
        fail(f"cannot listen on 127.0.0.1:{port}: {e.strerror or e}")
    host, bound = server.server_address[:2]
    typer.echo(f"witness {witness.name} serving on http://{host!s}:{bound}/ "
               f"({witness.verifier.vkey()})")
    import sys

    sys.stdout.flush()
    if duration is not None:
        threading.Timer(duration, server.shutdown).start()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    typer.echo(f"witness {witness.name} stopped")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="witness")
