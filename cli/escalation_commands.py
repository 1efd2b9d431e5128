"""`trialctl escalation path|paths`: the 3+3 rules applied to a dose path.

The database stack is imported inside each function that needs it, so `trialctl --help`
stays fast."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from trialctl.cli.io import fail, ledger_errors, print_json
from trialctl.cli.options import CsvOption, JsonOption, LedgerOption, TrialOption, output_format
from trialctl.cli.render import TableSpec, field, output_rows

app = typer.Typer(help="The 3+3 dose-escalation rules.", no_args_is_help=True)

DeescalationOption = Annotated[
    bool | None,
    typer.Option("--allow-deescalation/--no-allow-deescalation",
                 help="Fill the level below a toxic one to 6 before declaring it the MTD."),
]


def _selection_dict(selection: Any) -> dict[str, Any]:
    return {
        "path": selection.path,
        "recommended_dose": selection.recommended_level,
        "continue": selection.should_continue,
        "next_dose": selection.next_level,
        "mtd": selection.mtd_level,
        "stop_reason": selection.stop_reason,
        "cohorts": [
            {"cohort": d.cohort_number, "level": d.level, "patients": d.patients,
             "dlts": d.dlts, "action": d.action, "next_dose": d.next_level,
             "mtd": d.mtd_level, "reason": d.reason}
            for d in selection.decisions
        ],
    }


@app.command("path")
def path(
    dose_path: Annotated[str, typer.Argument(help='Cohorts, e.g. "1NNN 2NTN 2NNN" (N no '
                                                  'DLT, T DLT); "" for none yet.')],
    doses: Annotated[int, typer.Option("--doses", min=1, help="Number of dose levels.")],
    start: Annotated[int, typer.Option("--start", min=1, help="Starting level.")] = 1,
    allow_deescalation: DeescalationOption = False,
    json_output: JsonOption = False,
) -> None:
    """Replay a dose path and print the decision after each cohort.

    \b
    Example: trialctl escalation path "1NNN 2NTN 2NNN 3TTN" --doses 4 --allow-deescalation --json
    """
    from trialctl.domain.escalation import (
        DosePathSyntaxError,
        OutOfRuleError,
        ThreePlusThree,
        parse_dose_path,
    )

    try:
        design = ThreePlusThree(num_doses=doses, start_level=start,
                                allow_deescalation=bool(allow_deescalation))
        selection = design.fit(parse_dose_path(dose_path, doses))
    except (DosePathSyntaxError, OutOfRuleError, ValueError) as e:
        fail(str(e))
    result = _selection_dict(selection)
    if json_output:
        print_json(result)
        return
    for cohort in result["cohorts"]:
        typer.echo(f"cohort {cohort['cohort']} at level {cohort['level']}: "
                   f"{cohort['dlts']}/{cohort['patients']} DLT — {cohort['reason']}")
    if selection.should_continue:
        typer.echo(f"next: level {selection.next_level}")
    else:
        typer.echo(f"stop: {selection.stop_reason_text()}; MTD "
                   f"{selection.mtd_level if selection.mtd_level else 'none'}")


@app.command("paths")
def paths(
    cohorts: Annotated[int, typer.Option("--cohorts", min=1, max=6,
                                         help="How many future cohorts to enumerate.")],
    from_path: Annotated[str | None, typer.Option(
        "--from", help="Start from this dose path instead of the trial's own.")] = None,
    doses: Annotated[int | None, typer.Option("--doses", min=1,
                                              help="Levels (with --from).")] = None,
    allow_deescalation: DeescalationOption = None,
    trial: TrialOption = None, ledger: LedgerOption = None,
    json_output: JsonOption = False, csv_output: CsvOption = False,
) -> None:
    """The dose-transition pathways for the next K cohorts, as a protocol appendix shows.

    \b
    Example: trialctl escalation paths --cohorts 2 --from "1NNN" --doses 4 --json
    """
    from trialctl.domain.dose_paths import dose_path_rows, dose_paths
    from trialctl.domain.escalation import (
        DosePathSyntaxError,
        OutOfRuleError,
        ThreePlusThree,
        parse_dose_path,
    )

    fmt = output_format(json_output, csv_output)
    try:
        if from_path is not None:
            if doses is None:
                fail("--from needs --doses")
            design = ThreePlusThree(num_doses=doses,
                                    allow_deescalation=bool(allow_deescalation))
            history = parse_dose_path(from_path, doses)
        else:
            from trialctl.domain.trial import design_for
            from trialctl.ledger.application import open_ledger
            from trialctl.ledger.trials import TrialActions

            with ledger_errors():
                records = TrialActions(open_ledger(ledger))
                current = records.trial(trial)
                history = current.evaluated_cohorts(records.roster(current))
            design = design_for(current.protocol)
            try:
                design.fit(history)
            except OutOfRuleError as e:
                fail(f"the trial's own path, re-derived from its current facts, is out of the "
                     f"3+3 rules ({e}); an override or a decision made on data since "
                     f"corrected left them: enumerate from a path with --from")
        rows = dose_path_rows(dose_paths(design, history, cohorts))
    except (DosePathSyntaxError, OutOfRuleError, ValueError) as e:
        fail(str(e))
    listed = [dict(row) for row in rows]
    columns = [(key, field(key)) for key in (listed[0] if listed else {})]
    output_rows(listed, fmt, TableSpec("Dose-transition pathways", columns))
