"""`trialctl report`: the trial report as one self-contained HTML or PDF file.

The database stack and matplotlib are imported inside the command, so `trialctl --help`
stays fast."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from trialctl.cli.io import EXIT_USAGE, fail, ledger_errors
from trialctl.cli.options import AsOfOption, LedgerOption, TrialOption, moment_option


def report(
    html: Annotated[Path | None, typer.Option(
        "--html", metavar="FILE", help="Write the report as one self-contained HTML file.")] = None,
    pdf: Annotated[Path | None, typer.Option(
        "--pdf", metavar="FILE", help="Write the report as a PDF (text pages, vector plots).")] = None,
    as_of: AsOfOption = None,
    checkpoint: Annotated[Path | None, typer.Option(
        "--checkpoint", metavar="FILE", help="The ledger as of this checkpoint's tree size, "
        "replayed from its entries; refused unless the ledger matches the checkpoint.")] = None,
    trial: TrialOption = None,
    ledger: LedgerOption = None,
) -> None:
    """The trial report: protocol, escalation chart, cohorts, decisions and signers, DLTs,
    adverse-event grades, swimmer plot, responses and waterfall, CTC counts, verification.

    Also: serious adverse events and their reports, graded labs, dose modifications,
    decisions made on data since corrected, deviations, queries and source data
    verification. Fed by the read models, or by a replay of the signed entries with --as-of
    or --checkpoint (its tree size, root and signer shown in the verification section). The
    same ledger gives byte-identical files: the report's time is the last entry's (or
    --as-of, or SOURCE_DATE_EPOCH), never the clock.

    \b
    Example: trialctl report --html report.html
    """
    if html is not None and pdf is not None:
        fail("choose one of --html FILE and --pdf FILE", EXIT_USAGE)
    if html is None and pdf is None:
        fail("report needs --html FILE or --pdf FILE", EXIT_USAGE)
    if as_of is not None and checkpoint is not None:
        fail("choose one of --as-of TIME and --checkpoint FILE", EXIT_USAGE)
    moment = moment_option(as_of, "--as-of")
    kind, path = ("html", html) if html is not None else ("pdf", pdf)
    assert path is not None

    from trialctl.cli.render import progress
    from trialctl.ledger.application import open_ledger
    from trialctl.ledger.checkpoint import read_checkpoint_file
    from trialctl.ledger.report.build import check_writable, write_report
    from trialctl.ledger.trials import TrialActions

    with ledger_errors():
        check_writable(path)
        note = None if checkpoint is None else (str(checkpoint), read_checkpoint_file(checkpoint))
        records = TrialActions(open_ledger(ledger))
        with progress(enabled=sys.stderr.isatty(), label="report") as update:
            steps = iter(range(1, 5))

            def step(label: str) -> None:
                if update is not None:
                    update(next(steps, 4), 4)

            written = write_report(records, trial, moment, path, kind, step, note)
    typer.echo(f"report written to {written}")


def register(app: typer.Typer) -> None:
    app.command()(report)
