"""The report as a PDF through matplotlib's own PDF backend: text pages for the tables, then
one vector page per plot. No system library is needed, and the document's dates are the
report's moment, never the clock."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

from trialctl.ledger.report import sections
from trialctl.ledger.report.data import ReportData
from trialctl.ledger.report.figures import Section
from trialctl.ledger.report.plots import save_pdf_page, style

A4 = (8.27, 11.69)
LINES_PER_PAGE = 72
WIDTH = 104  # characters of monospace text across a page


def _table(title: str, rows: list[dict[str, Any]]) -> Iterator[str]:
    yield ""
    yield title.upper()
    if not rows:
        yield f"{title}: none recorded."
        return
    for row in rows:
        yield "- " + "; ".join(f"{k}: {v}" for k, v in row.items() if v not in ("", None))


def _moment(data: ReportData) -> str:
    if data.checkpoint_size is not None:
        return (f"As of checkpoint {data.verification['checkpoint']['source']} (tree size "
                f"{data.checkpoint_size}), replayed from its signed entries.")
    if data.as_of:
        return f"As of {data.as_of}, replayed from the signed entries."
    return "Current state, from the read models."


def text_lines(data: ReportData, drawn: list[Section]) -> list[str]:
    status, protocol, verification = data.status, data.protocol, data.verification
    mtd = status.get("mtd")
    lines = [
        f"{protocol['id']}: {protocol['title']}",
        _moment(data),
        f"Report time: {data.generated.isoformat()}",
        "", "PROTOCOL SUMMARY",
        f"phase {protocol['phase']}; {status['design']}; course {protocol['course_length_days']}"
        f" days; start level {protocol['start_level']}",
        *(f"agent: {a['name']} ({a['role']}, {a['route']}, {a['schedule']})"
          for a in protocol["agents"]),
        *(f"dose {lv['text']}" for lv in protocol["levels"]),
        f"next: {status['next']['text']}",
        f"MTD: level {mtd['level']} ({mtd['dose']} {mtd['unit']})" if mtd else
        ("MTD: none (no tolerable dose)" if status.get("stopped") else "MTD: not declared"),
    ]
    lines += _table("Cohorts", sections.cohort_rows(data))
    lines += _table("Decisions", sections.decision_rows(data))
    lines += _table("Dose-limiting toxicities", sections.dlt_rows(data))
    worst = sections.worst_grades(data)
    lines += _table("Adverse events by term and worst grade", [
        {"term": term, **{f"grade {g}": n for g, n in counts.items()}}
        for term, counts in worst.items()])
    lines += _table("Decisions made on data since corrected",
                    sections.since_corrected_rows(data))
    lines += _table("Serious adverse events", sections.sae_rows(data))
    lines += _table("Laboratory values and CTCAE grades", sections.lab_rows(data))
    lines += _table("Worst lab grade per test", sections.worst_lab_rows(data))
    lines += _table("Dose modifications", sections.dose_modification_rows(data))
    lines += _table("Responses", sections.response_rows(data))
    lines += _table("Protocol deviations", sections.deviation_rows(data))
    lines += _table("Data queries", sections.query_rows(data))
    lines += _table("Source data verification", sections.review_rows(data))
    lines += ["", "VERIFICATION",
              f"{'verifies' if verification['ok'] else 'DOES NOT VERIFY'}: "
              f"{verification['entries_checked']} entries checked, "
              f"{len(verification['findings'])} finding(s)",
              f"tree size {verification['tree_size']}, Merkle root {verification['root_hash']}"]
    checkpoint = verification["checkpoint"]
    if checkpoint:
        lines.append(f"checkpoint {checkpoint['source']}: tree size {checkpoint['tree_size']}, "
                     f"root {checkpoint['root_hash']}, signed by {checkpoint['signer']} at "
                     f"{checkpoint['time']}; the ledger is consistent with it, and this report "
                     "shows the ledger as of that tree size")
    last = verification["last_recorded_checkpoint"]
    lines.append(f"last recorded checkpoint: tree size {last['tree_size']}, root "
                 f"{last['root_hash']}" if last else "last recorded checkpoint: none recorded")
    lines += [f"finding: {f}" for f in verification["findings"]]
    lines += ["", "PLOTS"]
    lines += [f"{s.title}: " + ("on its own page" if s.figure else "none recorded.")
              for s in drawn]
    return [part for line in lines
            for part in (textwrap.wrap(line, WIDTH, subsequent_indent="  ") or [""])]


def _text_page(lines: list[str]) -> Figure:
    with style():
        page = Figure(figsize=A4)
        for row, line in enumerate(lines):
            page.text(0.06, 0.96 - row * (0.92 / LINES_PER_PAGE), line,
                      family="DejaVu Sans Mono", fontsize=7, va="top")
    return page


def write_pdf(path: Path, data: ReportData, drawn: list[Section]) -> None:
    lines = text_lines(data, drawn)
    metadata = {"Title": f"{data.protocol['id']} trial report", "Author": "trialctl",
                "CreationDate": data.generated, "ModDate": data.generated}
    with style(), PdfPages(path, metadata=metadata) as pages:
        for start in range(0, len(lines), LINES_PER_PAGE):
            save_pdf_page(pages, _text_page(lines[start:start + LINES_PER_PAGE]))
        for section in drawn:
            if section.figure is not None:
                save_pdf_page(pages, section.figure)
