"""One report, written whole or not at all: gather, draw, render, then move the finished file
into place (a failure leaves no partial file behind)."""

from __future__ import annotations

import os
import tempfile
from datetime import datetime
from pathlib import Path

from trialctl.ledger.checkpoint import SignedCheckpoint
from trialctl.ledger.errors import LedgerError
from trialctl.ledger.report.data import Step, gather
from trialctl.ledger.report.figures import figures
from trialctl.ledger.report.html import render_html
from trialctl.ledger.report.pdf import write_pdf
from trialctl.ledger.trials import TrialActions


def check_writable(path: Path) -> None:
    """Refuse an output path that cannot be written, before any work is done."""
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise LedgerError(f"cannot write the report: {path} is a directory")
    if not folder.is_dir():
        raise LedgerError(f"cannot write the report: no folder {folder}")
    if not os.access(folder, os.W_OK):
        raise LedgerError(f"cannot write the report: {folder} is not writable")


def write_report(records: TrialActions, trial_ref: str | None, as_of: datetime | None,
                 path: Path, kind: str, step: Step = lambda _: None,
                 checkpoint: tuple[str, SignedCheckpoint] | None = None) -> Path:
    """Write the report (`kind` "html" or "pdf") to `path`; with `checkpoint`, the ledger as
    of that checkpoint's tree size (refused when the ledger does not match it)."""
    check_writable(path)
    data = gather(records, trial_ref, as_of, step, checkpoint)
    step("drawing the plots")
    drawn = figures(data)
    step(f"writing the {kind.upper()}")
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                                         suffix=".part")
    os.close(handle)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temporary, 0o666 & ~umask)  # as an ordinary new file, not mkstemp's 0600
    try:
        if kind == "html":
            Path(temporary).write_text(render_html(data, drawn), encoding="utf-8")
        else:
            write_pdf(Path(temporary), data, drawn)
        os.replace(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)
    return path
