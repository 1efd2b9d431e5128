"""Rendering shared by the commands: one `output_rows` for every listing, JSON documents and
JSON lines, CSV, tables that are never cut when written to a file or a pipe, the trial
status, and the progress bar.

The JSON convention, the same everywhere: `--json` prints one JSON document for a whole
answer (an object, or an array of rows); a stream (`log --json`) prints JSON lines, one
object per line, as rows arrive.
"""

from __future__ import annotations

import csv
import json
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import typer

from trialctl.cli.io import print_json
from trialctl.cli.options import Format

Cell = Callable[[dict[str, Any]], Any]

# C0 and C1 control characters (ESC, CSI, BEL, backspace, CR ...): a signed text field may
# hold them, and echoed raw they would drive the reader's terminal (terminal injection).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def terminal_safe(text: str) -> str:
    """Text as a terminal may show it: every control character but tab and newline is
    written as its escape, e.g. ESC as \\x1b, so what was signed stays readable."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _echo(text: str) -> None:
    typer.echo(terminal_safe(text))


@dataclass(frozen=True)
class TableSpec:
    """How rows look to a person: a title and, for each column, its header and its cell."""

    title: str
    columns: Sequence[tuple[str, Cell]]


def print_json_lines(rows: Iterable[dict[str, Any]]) -> None:
    for row in rows:
        sys.stdout.write(json.dumps(row, sort_keys=True, default=str) + "\n")


def print_csv(rows: Iterable[dict[str, Any]]) -> None:
    """Every field of every row; nested values as JSON text, so no column is lost."""
    writer: csv.DictWriter[str] | None = None
    for row in rows:
        if writer is None:
            writer = csv.DictWriter(sys.stdout, fieldnames=list(row))
            writer.writeheader()
        writer.writerow({k: json.dumps(v) if isinstance(v, (dict, list)) else v
                         for k, v in row.items()})


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(terminal_safe(title)))
    for column in columns:
        # Wrap long cells, never cut them: what a user reads is what was signed.
        table.add_column(column, overflow="fold")
    for row in rows:
        # Text, not markup: a cell holding "[bold]" or an escape shows as written.
        table.add_row(*(Text("" if cell is None else terminal_safe(str(cell))) for cell in row))
    _console().print(table)


def _console() -> Any:
    from rich.console import Console

    if sys.stdout.isatty():
        return Console()
    # A file or a pipe has no width: lay the table out at its full content width.
    return Console(width=100_000, no_color=True)


def output_rows(rows: Iterable[dict[str, Any]], fmt: Format, table: TableSpec,
                stream: bool = False) -> None:
    """Every listing: a table for people, JSON (a document, or lines for a stream) or CSV."""
    if fmt is Format.JSON:
        if stream:
            print_json_lines(rows)
        else:
            print_json(list(rows))
        return
    if fmt is Format.CSV:
        print_csv(rows)
        return
    collected = list(rows)
    cells = [[cell(row) for _, cell in table.columns] for row in collected]
    headers = [header for header, _ in table.columns]
    if sys.stdout.isatty() and len(collected) > 40:
        from rich.console import Console

        console = Console()
        with console.pager():
            print_table(table.title, headers, cells)
        return
    print_table(table.title, headers, cells)


def field(key: str) -> Cell:
    return lambda row: row[key]


def joined(key: str) -> Cell:
    return lambda row: ", ".join(str(v) for v in row[key])


def patient_status(summary: dict[str, Any]) -> str:
    """The patient's status, with what is due of them now (a summary read from an older
    read model may lack the derived keys)."""
    flags = ["re-consent due"] if summary.get("reconsent_due") else []
    return str(summary["status"]) + (f" ({', '.join(flags)})" if flags else "")


PATIENTS = TableSpec("Patients", [
    ("patient", field("patient_id")), ("status", patient_status), ("level", field("level")),
    ("cohort", field("cohort")), ("doses", field("doses")), ("AEs", field("adverse_events")),
    ("DLTs", field("dlts")), ("evaluable", field("evaluable")),
    ("uncoded AEs", joined("uncoded_aes")),
    # A baseline assessment has no category: it is what later ones are measured against.
    ("responses", lambda p: " ".join(r or "baseline" for r in p["responses"])),
])

COHORTS = TableSpec("Cohorts", [
    ("cohort", field("number")), ("level", field("level")), ("dose", field("dose")),
    ("patients", joined("patients")), ("evaluated", field("evaluated")),
    ("DLTs", field("dlts")), ("replaced", joined("replaced")),
    # Derived from the current facts: a DLT that no longer meets its rule, an uncoded AE.
    ("notes", lambda c: "; ".join(
        [*c["dlt_notes"], *(f"{ae} uncoded" for ae in c["uncoded_aes"]),
         # A status read model written before replacement reasons holds no such key.
         *(f"{p} replaced: {why}" for p, why in c.get("replaced_because", {}).items())])),
])


def trail(title: str) -> TableSpec:
    """Audit-trail rows; times in full, with their zone."""
    return TableSpec(title, [
        ("#", field("position")), ("recorded at", field("recorded_at")),
        ("who", lambda r: f"{r['user_id']} ({r['name']})"), ("role", field("role")),
        ("meaning", field("meaning")), ("what", field("what")),
    ])


def sae_report_line(report: dict[str, Any]) -> str:
    """One serious event's expedited report: due date, sent date, OVERDUE when late."""
    state = "OVERDUE" if report["report"] == "overdue" else report["report"]
    sent = f", reported {report['reported_on']}" if report["reported_on"] else ""
    return (f"serious adverse event {report['patient_id']} {report['ae_id']} "
            f"({', '.join(report['serious'])}): site aware {report['site_aware_on']}, "
            f"report due {report['report_due']}{sent}: {state}")


def end_of_study_line(ended: dict[str, Any]) -> str:
    """"P003 off study 2026-05-01 (disease progression); last contact 2026-06-01: alive"."""
    who = f"{ended['patient_id']} " if "patient_id" in ended else ""
    last = ended["last_contact"]
    contact = "no follow-up contact yet" if last is None else (
        f"last contact {last['contacted_on']}: {last['status']} "
        f"({ended['contacts']} contact(s))")
    return f"{who}off study {ended['off_on']} ({ended['reason']}); {contact}"


def render_status(state: dict[str, Any]) -> None:
    _echo(f"{state['trial']}: {state['title']}")
    _echo(f"design: {state['design']}")
    output_rows(state["cohorts"], Format.TABLE, COHORTS)
    co_signed = {c["cohort_number"]: c for c in state.get("co_signed", [])}
    decisions_by_cohort = {d["cohort_number"]: d for d in state["decisions"]}
    for decision in state["decisions"]:
        flag = " (override)" if decision["overridden"] else ""
        signer = decision.get("signed_by")
        by = f" [{signer['meaning']} by {signer['name']}, {signer['role']}]" if signer else ""
        _echo(f"cohort {decision['cohort_number']}: {decision['action']}{flag} — "
                   f"{decision['reason']}{by}")
        if decision["since_corrected"]:
            _echo(f"  {since_corrected(decision['review'])}")
        if decision["cohort_number"] in co_signed:
            cited = co_signed[decision["cohort_number"]]["position"]
            _echo(f"  co-signed: decision entry #{cited} has its second signature")
    # A status read model written before co-signatures holds neither key.
    for waiting in state.get("awaiting_co_signature", []):
        if "patient_id" in waiting:  # a DLT adjudication's
            _echo(f"awaiting co-signature: {waiting['text']}")
            continue
        signer = decisions_by_cohort.get(waiting["cohort_number"], {}).get("signed_by")
        at = f" (#{signer['position']})" if signer else ""
        _echo(f"awaiting co-signature: cohort {waiting['cohort_number']}'s decision{at} "
              f"by the {waiting['role']}")
    for override in state["dlt_overrides"]:
        _echo(f"DLT override: {override['patient_id']} {override['ae_id']} declared "
                   f"under {override['rule_code']} — {override['override_reason']}")
    _echo(f"next: {state['next']['text']}")
    # The deviation counts below name every major deviation, an eligibility one included; a
    # status read model written before them shows eligibility deviations alone.
    if "deviations" not in state:
        for deviation in state["eligibility_deviations"]:
            _echo(f"deviation: {deviation['text']}")
    closed = state.get("closed")  # a status read model written before trials closed
    if closed:
        _echo(f"closed: {closed['closed_on']} — {closed['reason']} (only corrections, "
                   "queries and reviews may be recorded)")
    render_deviation_counts(state.get("deviations", []))
    for ended in state.get("end_of_study", []):
        _echo(f"end of study: {end_of_study_line(ended)}")
    for query in state.get("open_queries", []):
        _echo(f"open query {query['query_id']} ({query['state']}, {query['age_days']} day(s)): "
              f"{query['patient_id']} #{query['record']}, raised by {query['raised_by']}: "
              f"{query['text']}")
    for report in state.get("sae_reports", []):
        _echo(sae_report_line(report))
    mtd = state["mtd"]
    if mtd:
        _echo(f"MTD: level {mtd['level']} ({mtd['dose']} {mtd['unit']})")
    elif state["stopped"]:
        _echo("MTD: none (no tolerable dose)")


def render_patient_notes(summary: dict[str, Any], flagged: list[dict[str, Any]]) -> None:
    """What the patient's derived state adds: DLT outcome, DLTs not counting, uncoded AEs,
    and the cohort decisions made on their data since corrected."""
    _echo(f"DLT outcome: {summary['outcome']}, {summary['dlts']} counting DLT(s)"
               + (f" ({summary['replaced_because']})" if summary["replaced_because"] else ""))
    dose = summary.get("course1_dose")  # absent from a read model written before it
    if dose:
        minimum = dose["minimum"]
        floor = "" if minimum is None else \
            f", protocol minimum {(Decimal(minimum) * 100).normalize():f}%"
        _echo(f"course 1 dose: {dose['received']} of {dose['planned']} {dose['unit']} planned "
              f"({dose['percent']}{floor}; {dose['days_recorded']} day(s) recorded, "
              f"{dose['days_missed']} held, skipped or discontinued)")
    for note in summary["dlt_notes"]:
        _echo(f"DLT not counted: {note}")
    for waiting in summary.get("awaiting_co_signature", []):  # absent from older read models
        _echo(f"awaiting co-signature: {waiting['text']}")
    for ae_id in summary["uncoded_aes"]:
        _echo(f"{ae_id}: uncoded term")
    if summary.get("reconsent_due"):
        _echo(f"re-consent due: signed version {summary['consent_version']}; current: "
                   f"{', '.join(summary['current_versions'])}")
    for decision in flagged:
        _echo(f"cohort {decision['cohort_number']} {decision['action']}: "
                   f"{since_corrected(decision['review'])}")


def since_corrected(review: dict[str, Any]) -> str:
    """One line: a decision made on data since corrected, and the patients involved."""
    then, now = review["recorded"], review["rederived"]

    def counts(side: dict[str, Any]) -> str:
        step = side["recommendation"]
        action = "out of rule" if step is None else step["action"]
        return f"{side['dlts']} DLT(s) in {side['evaluated']} evaluated, {action}"

    def versions(numbers: list[int]) -> str:
        return ", ".join(f"v{n}" for n in sorted(numbers)) or "none"

    # Versions of the patient's record, as the patient view numbers them (its "version"
    # column); verify --projections names the same entries by ledger position.
    involved = ", ".join(
        f"{p['patient_id']} ({p['then']} -> {p['now']}; rests on record "
        f"{versions(p['records'])}, corrected by {versions(p['corrections'])})"
        for p in review["patients"]
    )
    return (f"made on data since corrected: then {counts(then)}; now {counts(now)}"
            + (f"; involved: {involved}" if involved else ""))


ASSESSMENTS = TableSpec("Response assessments", [
    ("version", field("version")), ("date", field("assessed_on")),
    ("RECIST", field("recist_version")),
    ("scheduled", lambda a: "baseline" if a["scheduled_week"] is None
     else f"week {a['scheduled_week']}"),
    ("on time", lambda a: "no (off schedule)" if a["off_schedule"] else "yes"),
    ("response", lambda a: a["category"] or "baseline"),
])


def render_patient(summary: dict[str, Any]) -> None:
    """What a person reads above a patient's timeline: where they stand, an eligibility
    deviation if a correction made them ineligible, and their response assessments."""
    died = f" on {summary['died_on']}" if summary.get("died_on") else ""
    _echo(f"{summary['patient_id']}: {patient_status(summary)}{died}, "
               f"level {summary['level']}, cohort {summary['cohort']}, "
               f"{len(summary['corrections'])} correction(s)")
    if summary.get("not_assessed"):  # absent from summaries read before forms existed
        _echo(f"not assessed: {', '.join(summary['not_assessed'])}")
    deviation = summary["eligibility_deviation"]
    # The deviations table lists it with the others (detected, at the correction's entry);
    # a summary read before deviations were listed shows it here instead.
    if deviation is not None and "deviations" not in summary:
        _echo(f"deviation: {deviation['text']}")
    ended = summary.get("end_of_study")  # absent from summaries read before follow-up
    if ended is not None:
        _echo(f"end of study: {end_of_study_line(ended)}")
    for consent in summary.get("consents", []):
        again = "re-consent" if consent["reconsent"] else "consent"
        _echo(f"{again}: version {consent['consent_version']} signed "
                   f"{consent['signed_on']} (record version {consent['version']})")
    if summary["assessments"]:
        output_rows(summary["assessments"], Format.TABLE, ASSESSMENTS)
    if summary["next_assessment_due"] is not None:
        _echo(f"next response assessment due: {summary['next_assessment_due']}")


class progress:
    """A rich progress bar on a terminal; nothing otherwise."""

    def __init__(self, enabled: bool, label: str = "verifying") -> None:
        self.enabled = enabled
        self.label = label

    def __enter__(self) -> Callable[[int, int], None] | None:
        if not self.enabled:
            return None
        from rich.console import Console
        from rich.progress import Progress

        # On standard error, the terminal that enabled it: standard output stays the answer.
        self.bar = Progress(console=Console(stderr=True), transient=True)
        self.bar.start()
        self.task = self.bar.add_task(self.label, total=None)
        return self.update

    def update(self, done: int, total: int) -> None:
        self.bar.update(self.task, completed=done, total=total)

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self.bar.stop()


LABS = TableSpec("Labs", [
    ("#", field("version")), ("test", field("test")), ("collected", field("collected_on")),
    ("course/day", lambda r: "" if r["course"] is None else
     f"{r['course']}/{'' if r['day'] is None else r['day']}"),
    ("value", lambda r: f"{r['value']} {r['unit']}"),
    ("grade", lambda r: "not gradable" if r["grade"] is None else r["grade"]),
    ("grading", field("grading")),
])


# Source data verification and queries (cli/review_commands.py, cli/query_commands.py).
def _positions(key: str) -> Cell:
    return lambda row: " ".join(f"#{p}" for p in row[key])


REVIEW_STATUS = TableSpec("Source data verification", [
    ("patient", field("patient_id")), ("unreviewed", _positions("unreviewed")),
    ("reviewed", _positions("reviewed")), ("invalidated", _positions("invalidated")),
    ("open queries", joined("open_queries")),
])

QUERIES = TableSpec("Queries", [
    ("query", field("query_id")), ("patient", field("patient_id")),
    ("record", lambda q: f"#{q['record']}"), ("state", field("state")),
    ("age (days)", field("age_days")), ("raised by", field("raised_by")),
    ("text", field("text")),
    ("answered by correction", _positions("corrections")),
])

RECORD_REVIEWS = TableSpec("Records and their review", [
    ("#", field("position")), ("kind", field("kind")), ("review", field("text")),
])


def render_review_notes(rows: list[dict[str, Any]], queries: list[dict[str, Any]]) -> None:
    """Each record's review state, and the patient's queries not closed."""
    output_rows(rows, Format.TABLE, RECORD_REVIEWS)
    for query in queries:
        if query["state"] != "closed":
            _echo(f"query {query['query_id']} on #{query['record']} ({query['state']}, "
                       f"{query['age_days']} days): {query['text']}")


# -- protocol deviations and concomitant medications ---------------------------------------

DEVIATIONS = TableSpec("Protocol deviations", [
    ("source", field("source")), ("category", field("category")),
    ("severity", field("severity")),
    # The ledger position of the entry it concerns (the record version when not known).
    ("record", lambda d: f"#{d['record']}" if d["record"] is not None
     else "" if d["record_version"] is None else f"version {d['record_version']}"),
    ("text", lambda d: d["text"] + (f" [acknowledges: {d['acknowledges']}]"
                                    if d.get("acknowledges") else "")),
])

CONMEDS = TableSpec("Concomitant medications", [
    ("#", field("version")), ("drug", field("drug")), ("start", field("start")),
    ("stop", lambda c: c["stop"] or "ongoing"),
    ("dose", lambda c: "" if c["dose"] is None else f"{c['dose']} {c['unit']}"),
    ("route", lambda c: c["route"] or ""), ("indication", lambda c: c["indication"] or ""),
])

FOLLOW_UP = TableSpec("Follow-up after the end of study", [
    ("#", field("version")), ("contacted on", field("contacted_on")),
    ("status", field("status")), ("text", lambda c: c["text"] or ""),
])



def render_deviation_counts(counts: list[dict[str, Any]]) -> None:
    """`status`: each patient's deviations, counted, with the major ones named."""
    for count in counts:
        majors = "".join(f"\n  major: {text}" for text in count["major"])
        _echo(f"deviations of {count['patient_id']}: {count['total']} "
                   f"({count['recorded']} recorded, {count['detected']} detected){majors}")


def render_deviations(summary: dict[str, Any]) -> None:
    """`patient`: the deviations (recorded and detected), the con-meds and the follow-up
    contacts after the end of study."""
    if summary.get("deviations"):
        output_rows(summary["deviations"], Format.TABLE, DEVIATIONS)
    if summary.get("conmeds"):
        output_rows(summary["conmeds"], Format.TABLE, CONMEDS)
    if summary.get("follow_up"):
        output_rows(summary["follow_up"], Format.TABLE, FOLLOW_UP)
