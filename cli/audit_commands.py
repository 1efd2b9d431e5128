"""The auditor's view: `trialctl replay`, `trialctl patient`, `trialctl log`.

The database stack is imported inside each command, so `trialctl --help` stays fast."""

from __future__ import annotations

import hashlib
import sys
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Annotated

import typer

from trialctl.cli.io import (
    EXIT_USAGE,
    PasswordSource,
    fail,
    ledger_errors,
    need_user,
    print_json,
)
from trialctl.cli.options import (
    AsOfOption,
    CsvOption,
    Format,
    JsonOption,
    LedgerOption,
    PasswordStdinOption,
    TrialOption,
    UptoOption,
    UserOption,
    moment_option,
    output_format,
)
from trialctl.cli.render import (
    LABS,
    PATIENTS,
    TableSpec,
    field,
    output_rows,
    progress,
    render_deviations,
    render_patient,
    render_patient_notes,
    render_review_notes,
    render_status,
    sae_report_line,
    trail,
)
from trialctl.domain.dose_modifications import dose_intensity

DOSE_INTENSITY = TableSpec("Dose intensity", [
    ("course", field("course")), ("agent", field("agent")),
    ("doses", lambda r: f"{r['doses_given']}/{r['doses_planned']}"),
    ("amount", lambda r: f"{r['amount_given']}/{r['amount_planned']} {r['unit']}"),
    ("intensity", field("intensity")),
])


def replay(
    as_of: AsOfOption = None, upto: UptoOption = None,
    trial: TrialOption = None, ledger: LedgerOption = None,
    json_output: JsonOption = False, csv_output: CsvOption = False,
) -> None:
    """The trial and its patients as they stood then, rebuilt from the signed entries alone.

    Serious events' reports are due, late or overdue as of that moment (--as-of, or the
    recorded time of the entry at --upto), whatever day replay runs. --csv prints the patients table.

    \b
    Example: trialctl replay --upto 40 --json
    """
    from trialctl.ledger.application import open_ledger
    from trialctl.ledger.replay import replay_trial
    from trialctl.ledger.trials import TrialActions

    fmt = output_format(json_output, csv_output)
    moment = moment_option(as_of, "--as-of")
    if moment is None and upto is None:
        fail("replay needs --as-of TIME or --upto POSITION", EXIT_USAGE)
    with ledger_errors():
        state = replay_trial(TrialActions(open_ledger(ledger)), trial, upto, moment)
    if fmt is Format.JSON:
        print_json(state)
        return
    if fmt is Format.CSV:
        output_rows(state["patients"], fmt, PATIENTS)
        return
    typer.echo(f"as of {as_of or f'position {upto}'} "
               f"(last entry included: #{state['last_position_included']}; "
               f"report deadlines judged at {state['instant']})")
    render_status(state["status"])
    output_rows(state["patients"], fmt, PATIENTS)


def patient(
    patient_id: Annotated[str, typer.Argument(metavar="PATIENT_ID",
                                              help="The patient's study id.")],
    trial: TrialOption = None, ledger: LedgerOption = None,
    json_output: JsonOption = False, csv_output: CsvOption = False,
) -> None:
    """One patient's timeline: every entry with its signer, meaning and time; serious
    adverse events with their report-due dates, and dose intensity per course.

    --json prints the patient's summary, dose intensity and timeline; --csv prints the
    timeline.

    \b
    Example: trialctl patient P006 --json
    """
    from trialctl.domain.deviations import located
    from trialctl.domain.patient import sae_report_states
    from trialctl.ledger.application import open_ledger
    from trialctl.ledger.projection import catch_up
    from trialctl.ledger.reviews import ReviewActions
    from trialctl.ledger.trials import TrialActions

    fmt = output_format(json_output, csv_output)
    with ledger_errors():
        app = open_ledger(ledger)
        records = TrialActions(app)
        current = records.trial(trial)
        found = records.patient(current, patient_id)
        views = catch_up(app)
        summary = views.patient_summary(str(found.id)) or found.summary(current.protocol)
        summary["deviations"] = located(summary["deviations"], records.entry_positions(found))
        intensity = dose_intensity(found, current.protocol)
        serious = sae_report_states([summary], datetime.now(UTC).date())
        timeline = list(views.audit_rows(patient=(str(found.id), str(current.id), patient_id)))
        flagged = records.decisions_since_corrected(current, patient_id)
        reviews = ReviewActions(app)
        review_rows = reviews.review_rows(found)
        queries = reviews.query_rows(trial, patient_id, False, datetime.now(UTC).date())
        waits = current.enrolment_wait(patient_id)
    if fmt is Format.JSON:
        print_json({"patient": summary, "dose_intensity": intensity, "timeline": timeline,
                    "sae_reports": serious,
                    "decisions_since_corrected": flagged, "review": review_rows,
                    "queries": queries, "enrolment_wait": waits})
        return
    if fmt is Format.TABLE:
        render_patient(summary)
        render_patient_notes(summary, flagged)
        if waits:
            typer.echo(waits)
        render_deviations(summary)
        if summary.get("labs"):
            output_rows(summary["labs"], fmt, LABS)
        for report in serious:
            typer.echo(sae_report_line(report))
        if intensity:
            output_rows(intensity, fmt, DOSE_INTENSITY)
        render_review_notes(review_rows, queries)
    output_rows(timeline, fmt, trail(f"Timeline of {patient_id}"))


def log(
    patient_id: Annotated[str | None, typer.Option(
        "--patient", metavar="PATIENT_ID", help="Only this patient.")] = None,
    signed_by: Annotated[str | None, typer.Option(
        "--by", metavar="USER_ID", help="Only entries signed by this user.")] = None,
    event_type: Annotated[str | None, typer.Option(
        "--type", metavar="TYPE",
        help="Only this event type (e.g. DoseGiven or trialctl.Patient.DoseGiven).")] = None,
    since: Annotated[str | None, typer.Option(
        "--since", metavar="TIME", help="From this time (ISO 8601 with offset).")] = None,
    until: Annotated[str | None, typer.Option(
        "--until", metavar="TIME", help="Up to this time (ISO 8601 with offset).")] = None,
    trial: TrialOption = None, ledger: LedgerOption = None,
    json_output: JsonOption = False, csv_output: CsvOption = False,
) -> None:
    """The audit trail: who did what, when, and with what meaning.

    Position, time, who (user, printed name, role), the meaning of the signature, what
    happened, and for corrections the old value, the new value and the reason. Security
    events (refused attempts, key changes) appear too. --json streams JSON lines, one entry
    per line; --csv one row per entry.

    \b
    Example: trialctl log --patient P006 --by ivan --type Corrected --csv
    """
    from trialctl.ledger.application import open_ledger
    from trialctl.ledger.mapper import format_time
    from trialctl.ledger.projection import catch_up
    from trialctl.ledger.trials import TrialActions

    fmt = output_format(json_output, csv_output)
    since_moment = moment_option(since, "--since")
    until_moment = moment_option(until, "--until")
    with ledger_errors():
        app = open_ledger(ledger)
        patient = None
        if patient_id is not None:
            records = TrialActions(app)
            current = records.trial(trial)
            found = records.patient(current, patient_id)
            patient = (str(found.id), str(current.id), patient_id)
        rows = catch_up(app).audit_rows(
            user_id=signed_by, event_type=event_type, patient=patient,
            since=format_time(since_moment) if since_moment else None,
            until=format_time(until_moment) if until_moment else None,
        )
        # Streamed inside the session: rows are read as they are written out.
        output_rows(rows, fmt, trail("Audit trail"), stream=True)


projections_app = typer.Typer(help="The read models behind status, patient and log.",
                              no_args_is_help=True)


@projections_app.command("rebuild")
def rebuild(ledger: LedgerOption = None) -> None:
    """Drop the read models and build them again from every signed entry.

    \b
    Example: trialctl projections rebuild
    """
    from trialctl.ledger.application import open_ledger
    from trialctl.ledger.projection import rebuild as rebuild_views

    with ledger_errors():
        app = open_ledger(ledger)
        with progress(enabled=sys.stderr.isatty(), label="rebuilding") as report:
            views = rebuild_views(app, report)
    typer.echo(f"read models rebuilt through entry row {views.position() or 0}")


audit_app = typer.Typer(help="The sponsor's review of the audit trail.", no_args_is_help=True)


@audit_app.command("review")
def review(
    since: Annotated[str | None, typer.Option(
        "--since", metavar="TIME", help="List entries recorded from this time (ISO 8601, "
        "a date or a time with offset); every rule still reads the whole trail.")] = None,
    html: Annotated[Path | None, typer.Option(
        "--html", metavar="FILE", help="Write the review as a self-contained HTML file.")] = None,
    hours: Annotated[str, typer.Option(
        "--hours", metavar="HH:MM-HH:MM", help="The working day.")] = "07:00-19:00",
    timezone: Annotated[str, typer.Option(
        "--timezone", metavar="ZONE", help="The IANA time zone of --hours.")] = "UTC",
    weekends: Annotated[bool, typer.Option(
        "--weekends-in-hours", help="Do not count weekend entries as out of hours.")] = False,
    late_days: Annotated[int, typer.Option(
        "--late-days", min=0, help="An entry recorded more days than this after its clinical "
        "date is late.")] = 7,
    ledger: LedgerOption = None, user: UserOption = None,
    password_stdin: PasswordStdinOption = False, json_output: JsonOption = False,
) -> None:
    """Review the audit trail, as FDA's 2024 guidance on electronic systems in clinical
    investigations asks: corrections and their reasons, refused attempts, overrides,
    out-of-hours, back-dated and late entries, entries by users since revoked, failed
    sign-ins and lock-outs, and source-data-verification reviews invalidated by corrections.

    Give --html FILE or --json (the review on standard output). The review is signed by
    you (a monitor, data manager or principal investigator, meaning "reviewed") as an
    AuditReviewed entry naming the tree size and root reviewed and the SHA-256 of the
    output.

    \b
    Example: trialctl audit review --since 2026-01-01 --html audit-review.html -u mona
    """
    from trialctl.ledger.application import open_ledger
    from trialctl.ledger.audit_review import (
        ReviewError,
        Settings,
        build_review,
        check_reviewer,
        parse_hours,
        record_review,
        review_html,
        review_json,
    )

    if (html is None) == (not json_output):
        fail("give one of --html FILE or --json", EXIT_USAGE)
    moment = _since(since)
    signer = need_user(user)
    with ledger_errors():
        try:
            start, end = parse_hours(hours)
            settings = Settings(start, end, timezone, late_days, not weekends)
            settings.tz()
            if html is not None and html.exists():
                fail(f"{html} exists; a review is never written over another")
            app = open_ledger(ledger)
            check_reviewer(app, signer)  # refusals come before the password
            actor = app.unlock(signer, PasswordSource(password_stdin).read(
                f"Password for {signer}"))
            found = build_review(app, moment, settings, signer, datetime.now(UTC))
        except ReviewError as e:
            fail(str(e), EXIT_USAGE)
        if html is None:
            output = review_json(found)
            record_review(app, actor, found, output, "json")
            sys.stdout.write(output.decode("utf-8"))
            return
        output = review_html(found)
        with html.open("xb") as handle:
            handle.write(output)
        try:
            position = record_review(app, actor, found, output, "html")
        except BaseException:
            html.unlink(missing_ok=True)
            raise
    counts = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in found["counts"].items())
    typer.echo(f"audit review of tree size {found['tree_size']} (root "
               f"{found['root_hash'][:16]}…) written to {html}: {counts}")
    typer.echo(f"  signed by {signer} as entry #{position}; SHA-256 "
               f"{hashlib.sha256(output).hexdigest()}")


def _since(text: str | None) -> datetime | None:
    """--since as a moment: a date means its start, in UTC."""
    if text is None:
        return None
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(0), UTC)
    except ValueError:
        fail(f"--since {text!r} is not a date (YYYY-MM-DD) or a time with offset", EXIT_USAGE)
    return moment_option(text, "--since")


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")
    app.add_typer(projections_app, name="projections")
    app.command()(replay)
    app.command()(patient)
    app.command()(log)
