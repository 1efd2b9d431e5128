"""The auditor's view: `trialctl replay`, `trialctl patient`, `trialctl log`."""

from __future__ import annotations

import csv
import json
import sys
from datetime import datetime
from typing import Annotated, Any

import typer

from trialctl.cli.io import EXIT_USAGE, fail, ledger_errors, print_json, print_table
from trialctl.cli.options import JsonOption, LedgerOption
from trialctl.cli.record_commands import TrialOption

AsOfOption = Annotated[str | None, typer.Option(
    "--as-of", help="A past moment, ISO 8601 with offset (2026-03-01T12:00:00+00:00).")]
UptoOption = Annotated[int | None, typer.Option(
    "--upto", min=0, help="A ledger position: the state after that entry.")]


def parse_moment(text: str | None, option: str) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        fail(f"{option} {text!r} is not an ISO 8601 time", EXIT_USAGE)
    if moment.tzinfo is None:
        fail(f"{option} {text!r} needs a UTC offset, e.g. +00:00", EXIT_USAGE)
    return moment


def replay(
    as_of: AsOfOption = None, upto: UptoOption = None,
    trial: TrialOption = None, ledger: LedgerOption = None, json_output: JsonOption = False,
) -> None:
    """The trial and its patients as they stood then, rebuilt from the signed entries alone.

    Example: trialctl replay --as-of 2026-03-01T12:00:00+00:00 --json
    """
    from trialctl.cli.trial_commands import render_status
    from trialctl.ledger.application import open_ledger
    from trialctl.ledger.replay import replay_trial
    from trialctl.ledger.trials import TrialActions

    moment = parse_moment(as_of, "--as-of")
    if moment is None and upto is None:
        fail("replay needs --as-of TIME or --upto POSITION", EXIT_USAGE)
    with ledger_errors():
        state = replay_trial(TrialActions(open_ledger(ledger)), trial, upto, moment)
    if json_output:
        print_json(state)
        return
    typer.echo(f"as of {as_of or f'position {upto}'} "
               f"(last entry included: #{state['last_position_included']})")
    render_status(state["status"])
    _patients_table(state["patients"])


def _patients_table(patients: list[dict[str, Any]]) -> None:
    print_table("Patients", ["patient", "status", "level", "cohort", "doses", "AEs", "DLTs",
                             "evaluable", "responses"],
                [(p["patient_id"], p["status"], p["level"], p["cohort"], p["doses"],
                  p["adverse_events"], p["dlts"], p["evaluable"], " ".join(p["responses"]))
                 for p in patients])


def patient(
    patient_id: Annotated[str, typer.Argument(help="The patient's study id.")],
    trial: TrialOption = None, ledger: LedgerOption = None, json_output: JsonOption = False,
) -> None:
    """One patient's timeline: every entry with its signer, meaning and time.

    Example: trialctl patient P006 --json
    """
    from trialctl.ledger.application import open_ledger
    from trialctl.ledger.projection import catch_up
    from trialctl.ledger.trials import TrialActions

    with ledger_errors():
        app = open_ledger(ledger)
        records = TrialActions(app)
        current = records.trial(trial)
        found = records.patient(current, patient_id)
        views = catch_up(app)
        summary = views.patient_summary(str(found.id)) or found.summary()
        timeline = list(views.audit_rows(patient=(str(found.id), str(current.id), patient_id)))
    if json_output:
        print_json({"patient": summary, "timeline": timeline})
        return
    typer.echo(f"{patient_id}: {summary['status']}, level {summary['level']}, "
               f"cohort {summary['cohort']}, {len(summary['corrections'])} correction(s)")
    _trail_table(f"Timeline of {patient_id}", timeline)


def _trail_table(title: str, rows: list[dict[str, Any]]) -> None:
    print_table(title, ["#", "recorded at", "who", "role", "meaning", "what"],
                [(r["position"], r["recorded_at"][:19], f"{r['user_id']} ({r['name']})",
                  r["role"], r["meaning"], r["what"]) for r in rows])


def log(
    patient_id: Annotated[str | None, typer.Option("--patient", help="Only this patient.")] = None,
    user: Annotated[str | None, typer.Option("--user", help="Only entries signed by this user.")] = None,
    event_type: Annotated[str | None, typer.Option(
        "--type", help="Only this event type (e.g. DoseGiven or trialctl.Patient.DoseGiven).")] = None,
    since: Annotated[str | None, typer.Option("--since", help="From this time (ISO 8601).")] = None,
    until: Annotated[str | None, typer.Option("--until", help="Up to this time (ISO 8601).")] = None,
    csv_output: Annotated[bool, typer.Option("--csv", help="CSV, one row per entry.")] = False,
    trial: TrialOption = None, ledger: LedgerOption = None,
    json_output: Annotated[bool, typer.Option("--json", help="JSON lines, streamed.")] = False,
) -> None:
    """The audit trail: who did what, when, and with what meaning.

    Position, time, who (user, printed name, role), the meaning of the signature, what
    happened, and for corrections the old value, the new value and the reason. Security
    events (refused attempts, key changes) appear too.

    Example: trialctl log --patient P006 --type Corrected --csv
    """
    from trialctl.ledger.application import open_ledger
    from trialctl.ledger.mapper import format_time
    from trialctl.ledger.projection import catch_up
    from trialctl.ledger.trials import TrialActions

    if json_output and csv_output:
        fail("choose one of --json and --csv", EXIT_USAGE)
    since_moment, until_moment = parse_moment(since, "--since"), parse_moment(until, "--until")
    with ledger_errors():
        app = open_ledger(ledger)
        patient = None
        if patient_id is not None:
            records = TrialActions(app)
            current = records.trial(trial)
            found = records.patient(current, patient_id)
            patient = (str(found.id), str(current.id), patient_id)
        rows = catch_up(app).audit_rows(
            user_id=user, event_type=event_type, patient=patient,
            since=format_time(since_moment) if since_moment else None,
            until=format_time(until_moment) if until_moment else None,
        )
        if json_output:
            for row in rows:
                sys.stdout.write(json.dumps(row, sort_keys=True) + "\n")
            return
        if csv_output:
            writer: Any = None
            for row in rows:
                if writer is None:
                    writer = csv.DictWriter(sys.stdout, fieldnames=list(row))
                    writer.writeheader()
                writer.writerow({k: json.dumps(v) if isinstance(v, (dict, list)) else v
                                 for k, v in row.items()})
            return
        collected = list(rows)
    if sys.stdout.isatty() and len(collected) > 40:
        from rich.console import Console

        console = Console()
        with console.pager():
            _trail_table("Audit trail", collected)
        return
    _trail_table("Audit trail", collected)


projections_app = typer.Typer(help="The read models behind status, patient and log.",
                              no_args_is_help=True)


@projections_app.command("rebuild")
def rebuild(ledger: LedgerOption = None) -> None:
    """Drop the read models and build them again from every signed entry.

    Example: trialctl projections rebuild
    """
    from trialctl.cli.ledger_commands import _progress
    from trialctl.ledger.application import open_ledger
    from trialctl.ledger.projection import rebuild as rebuild_views

    with ledger_errors():
        app = open_ledger(ledger)
        with _progress(enabled=sys.stderr.isatty()) as progress:
            views = rebuild_views(app, progress)
    typer.echo(f"read models rebuilt through entry row {views.position() or 0}")


def register(app: typer.Typer) -> None:
    app.add_typer(projections_app, name="projections")
    app.command()(replay)
    app.command()(patient)
    app.command()(log)
