"""`trialctl record …`: every trial action, signed by the person who takes it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any

import typer

from trialctl.cli.batch_commands import batch_entry
from trialctl.cli.io import EXIT_USAGE, fail, need_user
from trialctl.cli.options import (
    DateOption,
    JsonOption,
    LedgerOption,
    PasswordStdinOption,
    PatientArgument,
    TrialOption,
    UserOption,
)
from trialctl.cli.signing import run_signed
from trialctl.domain.facts import (
    AdverseEvent,
    Conmed,
    Consent,
    Correction,
    CourseCompletion,
    Deviation,
    DltAdjudication,
    Dose,
    DoseChange,
    Enrolment,
    FollowUp,
    Lab,
    Observation,
    OffStudy,
    Response,
    Screening,
    TreatmentWithdrawal,
    Withdrawal,
)
from trialctl.domain.recist import TargetLesion
from trialctl.ledger import batch_lines
from trialctl.ledger.requests import CohortDecision, PatientStep

app = typer.Typer(no_args_is_help=True)  # its help is batch_entry's docstring
# `record --from FILE`: many lines of the commands below at once (docs/BATCH.md).
app.callback(invoke_without_command=True)(batch_entry)

_INTEGER = re.compile(r"^-?\d+$")


def parse_assignments(pairs: list[str], option: str) -> dict[str, Any]:
    """KEY=VALUE pairs, read as a batch line's are (`ledger.batch_lines`)."""
    try:
        return dict(batch_lines.parse_assignment(pair) for pair in pairs)
    except ValueError as e:
        fail(f"{option} {e}", EXIT_USAGE)


# The schedule's visit a response, observation or lab belongs to (domain/visits.py).
VisitOption = Annotated[str | None, typer.Option(
    "--visit", metavar="NAME",
    help="The schedule's visit it belongs to, e.g. 'week 9' or 'course 2' [default: "
         "placed by its date].")]


@app.command("consent")
def consent(
    patient: PatientArgument,
    consent_version: Annotated[str, typer.Option("--consent-version",
                                                 help="Informed-consent form version.")],
    date: DateOption,
    trial: TrialOption = None, ledger: LedgerOption = None, user: UserOption = None,
    password_stdin: PasswordStdinOption = False, json_output: JsonOption = False,
) -> None:
    """Informed consent signed; for a patient already on the record, a re-consent to an
    amended form version (a current one the protocol lists, never one already signed).

    \b
    Example: trialctl record consent P015 --consent-version 2.1 --date 2026-10-01 -u mona
    """
    fact = Consent(consent_version=consent_version, signed_on=date)
    run_signed(ledger, user, password_stdin, json_output, PatientStep(trial, patient, fact))


@app.command("screen")
def screen(
    patient: PatientArgument,
    date: DateOption,
    values: Annotated[list[str] | None, typer.Option(
        "--value", help="A screening value KEY=VALUE (repeatable).")] = None,
    values_file: Annotated[Path | None, typer.Option(
        "--values-file", help="A JSON object of screening values.")] = None,
    trial: TrialOption = None, ledger: LedgerOption = None, user: UserOption = None,
    password_stdin: PasswordStdinOption = False, json_output: JsonOption = False,
) -> None:
    """Screening values recorded; eligibility is evaluated criterion by criterion.

    \b
    Example: trialctl record screen P015 --date 2026-10-03 --values-file p015.json --value ecog=1 -u mona
    """
    screening: dict[str, Any] = {}
    if values_file is not None:
        try:
            loaded = json.loads(values_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:  # JSON, UTF-8, and integers over 4,300 digits
            fail(f"cannot read screening values from {values_file}: {str(e).split(';')[0]}",
                 EXIT_USAGE)
        except RecursionError:
            fail(f"cannot read screening values from {values_file}: nested too deeply",
                 EXIT_USAGE)
        if not isinstance(loaded, dict) or any(isinstance(v, float) for v in loaded.values()):
            fail(f"{values_file} must hold one JSON object of values (decimals as strings)",
                 EXIT_USAGE)
        screening.update(loaded)
    screening.update(parse_assignments(values or [], "--value"))
    if not screening:
        fail("no screening values: give --values-file or --value KEY=VALUE", EXIT_USAGE)
    fact = Screening(values=screening, screened_on=date)
    run_signed(ledger, user, password_stdin, json_output, PatientStep(trial, patient, fact))


@app.command("enroll")
def enroll(
    patient: PatientArgument, date: DateOption,
    trial: TrialOption = None, ledger: LedgerOption = None, user: UserOption = None,
    password_stdin: PasswordStdinOption = False, json_output: JsonOption = False,
) -> None:
    """Enroll an eligible patient into the open cohort at its dose level.

    \b
    Example: trialctl record enroll P004 --date 2026-10-05 -u mona
    """
    fact = Enrolment(enrolled_on=date)
    run_signed(ledger, user, password_stdin, json_output, PatientStep(trial, patient, fact))


@app.command("dose")
def dose(
    patient: PatientArgument,
    agent: Annotated[str, typer.Option("--agent", help="Agent name as in the protocol.")],
    amount: Annotated[str, typer.Option("--dose", help="Dose, e.g. 400 or 2.5.")],
    unit: Annotated[str, typer.Option("--unit", help="Unit, as in the protocol.")],
    course: Annotated[int, typer.Option("--course", min=1)],
    day: Annotated[int, typer.Option("--day", min=1, help="Day of the course.")],
    given_at: Annotated[str, typer.Option("--at", help="When: 2026-01-12T09:30:00+00:00.")],
    trial: TrialOption = None, ledger: LedgerOption = None, user: UserOption = None,
    password_stdin: PasswordStdinOption = False, json_output: JsonOption = False,
) -> None:
    """A dose given.

    \b
    Example: trialctl record dose P006 --agent "imatinib mesylate" --dose 400 --unit mg/day --course 2 --day 1 --at 2026-10-01T09:30:00+00:00 -u ivan
    """
    fact = Dose(agent=agent, dose=amount, unit=unit, course=course, day=day, given_at=given_at)
    run_signed(ledger, user, password_stdin, json_output, PatientStep(trial, patient, fact))


@app.command("dose-change")
def dose_change(
    patient: PatientArgument,
    course: Annotated[int, typer.Option("--course", min=1, help="The course it is made in.")],
    action: Annotated[str, typer.Option(
        "--action", help="reduce, hold, skip, resume or discontinue.")],
    reason: Annotated[str, typer.Option("--reason", help="toxicity or other.")],
    text: Annotated[str, typer.Option("--text", help="What happened.")],
    date: DateOption,
    to_level: Annotated[int | None, typer.Option(
        "--to-level", min=1, help="The dose level from then on (reduce, resume).")] = None,
    trial: TrialOption = None, ledger: LedgerOption = None, user: UserOption = None,
    password_stdin: PasswordStdinOption = False, json_output: JsonOption = False,
) -> None:
    """A dose modification (investigators only), by the protocol's rules; later doses are
    checked against it.

    \b
    Example: trialctl record dose-change P006 --course 2 --action reduce --to-level 1 --reason toxicity --text "grade 3 diarrhoea" --date 2026-10-22 -u ivan
    """
    fact = DoseChange(course=course, action=action, to_level=to_level, reason=reason,
                      text=text, effective_on=date)
    run_signed(ledger, user, password_stdin, json_output, PatientStep(trial, patient, fact))


@app.command("ae")
def adverse_event(
    patient: PatientArgument,
    ae_id: Annotated[str, typer.Option("--id", help="Your id for this adverse event, e.g. AE1.")],
    term: Annotated[str, typer.Option(
        "--term", help="CTCAE term of the protocol's CTCAE version, e.g. 'Platelets'.")],
    grade: Annotated[int, typer.Option("--grade", help="CTCAE grade 1-5.")],
    attribution: Annotated[str, typer.Option(
        "--attribution", help="unrelated, unlikely, possible, probable or definite.")],
    onset: Annotated[str, typer.Option("--onset", help="Onset date.")],
    resolved: Annotated[str | None, typer.Option("--resolved", help="Resolution date.")] = None,
    uncoded: Annotated[bool, typer.Option(
        "--uncoded", help="Record a term outside the CTCAE term list; it is shown as uncoded "
        "and meets no category-specific DLT rule without an override.")] = False,
    serious: Annotated[list[str] | None, typer.Option(
        "--serious", help="A serious criterion (repeatable): death, life_threatening, "
        "hospitalisation, disability, congenital_anomaly, other_important_medical_event.")] = None,
    site_aware_on: Annotated[str | None, typer.Option(
        "--site-aware-on", help="When the site learned of a serious event; dates its report.")
    ] = None,
    reported_on: Annotated[str | None, typer.Option(
        "--reported-on", help="When the serious event's expedited report was sent (later: "
        "record correct --set reported_on=DATE).")] = None,
    trial: TrialOption = None, ledger: LedgerOption = None, user: UserOption = None,
    password_stdin: PasswordStdinOption = False, json_output: JsonOption = False,
) -> None:
    """An adverse event, its term coded against the protocol's CTCAE term list; with
    --serious, a serious adverse event whose expedited report is due by the protocol's rule
    (a death is grade 5 and ends treatment), e.g. --serious hospitalisation
    --site-aware-on 2026-10-02.

    \b
    Example: trialctl record ae P006 --id AE2 --term "Neutrophils/granulocytes (ANC/AGC)" --grade 4 --attribution probable --onset 2026-10-01 -u ivan
    """
    fact = AdverseEvent(ae_id=ae_id, term=term, grade=grade, attribution=attribution,
                        onset=onset, resolved_on=resolved, coded=not uncoded,
                        serious=serious or None, site_aware_on=site_aware_on,
                        reported_on=reported_on)
    run_signed(ledger, user, password_stdin, json_output, PatientStep(trial, patient, fact))


@app.command("dlt")
def dlt(
    patient: PatientArgument,
    ae_id: Annotated[str, typer.Option("--ae", help="The adverse event adjudicated.")],
    date: DateOption,
    is_dlt: Annotated[bool, typer.Option("--dlt/--not-dlt", help="Is it a DLT?")] = True,
    rule: Annotated[str | None, typer.Option("--rule", help="The protocol's DLT rule code.")] = None,
    override_reason: Annotated[str | None, typer.Option(
        "--override-reason", help="Declare a DLT whose AE does not meet the rule named "
        "(principal investigators only); signed as its own event type.")] = None,
    trial: TrialOption = None, ledger: LedgerOption = None, user: UserOption = None,
    password_stdin: PasswordStdinOption = False, json_output: JsonOption = False,
) -> None:
    """DLT adjudicated for an adverse event (investigators only). A DLT's AE must meet the
    rule named (toxicity, grade, attribution, duration, DLT window), or it is refused naming
    each unmet condition. Whether it counts is derived again whenever state is read, so a
    later correction of the AE can stop it counting.

    \b
    Example: trialctl record dlt P006 --ae AE2 --not-dlt --date 2026-10-09 -u pat
    """
    fact = DltAdjudication(ae_id=ae_id, is_dlt=is_dlt, rule_code=rule, decided_on=date,
                           override_reason=override_reason)
    run_signed(ledger, user, password_stdin, json_output, PatientStep(trial, patient, fact))


@app.command("complete-course")
def complete_course(
    patient: PatientArgument,
    course: Annotated[int, typer.Option("--course", min=1)],
    date: DateOption,
    not_evaluable: Annotated[str | None, typer.Option(
        "--not-evaluable", metavar="REASON",
        help="A non-toxic reason course 1 does not count (e.g. missed doses): the patient "
        "is replaced.")] = None,
    trial: TrialOption = None, ledger: LedgerOption = None, user: UserOption = None,
    password_stdin: PasswordStdinOption = False, json_output: JsonOption = False,
) -> None:
    """A course completed. It does not say "no DLT": DLT-evaluability is derived from the
    adjudications and the DLT window.

    \b
    Example: trialctl record complete-course P006 --course 2 --date 2026-10-20 -u ivan
    """
    fact = CourseCompletion(course=course, completed_on=date, not_evaluable_reason=not_evaluable)
    run_signed(ledger, user, password_stdin, json_output, PatientStep(trial, patient, fact))


def parse_lesion(text: str) -> TargetLesion:
    """ID:SITE:LONGEST_MM, or ID:node:LONGEST_MM:SHORT_AXIS_MM, as a batch line's."""
    try:
        return batch_lines.parse_lesion(text)
    except ValueError as e:
        fail(f"--lesion {e}", EXIT_USAGE)


@app.command("response")
def response(
    patient: PatientArgument,
    date: DateOption,
    lesions: Annotated[list[str], typer.Option(
        "--lesion", help="Target lesion ID:SITE:MM, or ID:node:MM:SHORT_MM (repeatable).")],
    baseline: Annotated[bool, typer.Option("--baseline", help="This is the baseline.")] = False,
    new_lesions: Annotated[bool, typer.Option("--new-lesions")] = False,
    non_target_progression: Annotated[bool, typer.Option("--non-target-progression")] = False,
    visit: VisitOption = None,
    trial: TrialOption = None, ledger: LedgerOption = None, user: UserOption = None,
    password_stdin: PasswordStdinOption = False, json_output: JsonOption = False,
) -> None:
    """Target-lesion measurements; CR/PR/SD/PD is computed, never typed in, by the RECIST
    version the protocol names (1.0 for NCT00084513), and the visit is placed on the
    protocol's assessment schedule (off-schedule visits are kept and flagged).

    \b
    Example: trialctl record response P006 --date 2026-10-01 --lesion T1:liver:20 --lesion T2:lung:15 -u ivan
    """
    fact = Response(assessed_on=date, baseline=baseline,
                    lesions=tuple(parse_lesion(text) for text in lesions),
                    new_lesions=new_lesions, non_target_progression=non_target_progression,
                    visit=visit)
    run_signed(ledger, user, password_stdin, json_output, PatientStep(trial, patient, fact))


@app.command("observe")
def observe(
    patient: PatientArgument,
    kind: Annotated[str, typer.Option("--kind", help="Observation code from the protocol.")],
    value: Annotated[str, typer.Option("--value")],
    date: DateOption,
    visit: VisitOption = None,
    trial: TrialOption = None, ledger: LedgerOption = None, user: UserOption = None,
    password_stdin: PasswordStdinOption = False, json_output: JsonOption = False,
) -> None:
    """A secondary observation (e.g. circulating tumour cells, phosphorylation).

    \b
    The visit it belongs to may be stated (--visit "week 6"): checked against the
    protocol's schedule, and a date outside that visit's window is shown as a deviation.

    \b
    Example: trialctl record observe P006 --kind ctc_count --value 12 --date 2026-10-01 -u mona
    """
    fact = Observation(kind=kind, value=value, observed_on=date, visit=visit)
    run_signed(ledger, user, password_stdin, json_output, PatientStep(trial, patient, fact))


@app.command("lab")
def lab(
    patient: PatientArgument,
    test: Annotated[str, typer.Option("--test", help="anc, platelets, haemoglobin, alt, ast, "
                                      "alp, bilirubin or creatinine.")],
    value: Annotated[str, typer.Option("--value", help="The result, e.g. 800 or 1.2.")],
    unit: Annotated[str, typer.Option("--unit", help="Its unit, e.g. /mm3, 10^9/L, g/dL, "
                                      "U/L, umol/L; converted to the CTCAE unit.")],
    date: DateOption,
    course: Annotated[int | None, typer.Option("--course", min=1)] = None,
    day: Annotated[int | None, typer.Option("--day", min=1, help="Day of the course.")] = None,
    uln: Annotated[str | None, typer.Option(
        "--uln", help="Upper limit of normal, in --unit [default: screening's].")] = None,
    lln: Annotated[str | None, typer.Option(
        "--lln", help="Lower limit of normal, in --unit [default: screening's].")] = None,
    visit: VisitOption = None,
    trial: TrialOption = None, ledger: LedgerOption = None, user: UserOption = None,
    password_stdin: PasswordStdinOption = False, json_output: JsonOption = False,
) -> None:
    """A laboratory value; its CTCAE v3.0 grade is computed, never typed in.

    \b
    Example: trialctl record lab P006 --test anc --value 800 --unit /mm3 --date 2026-10-01 --course 2 --day 8 -u mona
    """
    fact = Lab(test=test, value=value, unit=unit, collected_on=date, course=course, day=day,
               uln=uln, lln=lln, visit=visit)
    run_signed(ledger, user, password_stdin, json_output, PatientStep(trial, patient, fact))


# -- protocol deviations and concomitant medications ---------------------------------------


@app.command("deviation")
def deviation(
    patient: PatientArgument,
    category: Annotated[str, typer.Option(
        "--category", help="eligibility, consent, dosing, schedule, prohibited-medication, "
        "procedure or other.")],
    severity: Annotated[str, typer.Option("--severity", help="major or minor.")],
    text: Annotated[str, typer.Option("--text", help="What happened.")],
    record: Annotated[int | None, typer.Option(
        "--record", metavar="POSITION", min=0,
        help="The ledger position (#, as `log` shows it) of the patient's entry it "
        "concerns; it acknowledges a deviation trialctl detects on that entry.")] = None,
    trial: TrialOption = None, ledger: LedgerOption = None, user: UserOption = None,
    password_stdin: PasswordStdinOption = False, json_output: JsonOption = False,
) -> None:
    """A protocol deviation, recorded by site staff or a monitor. Deviations trialctl
    detects itself (eligibility after a correction, doses off schedule, late assessments,
    prohibited con-meds) are shown beside the recorded ones in `status` and `patient`.

    \b
    Example: trialctl record deviation P006 --category procedure --severity minor --text "ECG at screening not repeated on day 1" -u mona
    """
    fact = Deviation(category=category, severity=severity, text=text, record=record)
    run_signed(ledger, user, password_stdin, json_output, PatientStep(trial, patient, fact))


@app.command("conmed")
def conmed(
    patient: PatientArgument,
    drug: Annotated[str, typer.Option("--drug", help="The drug's name, e.g. warfarin.")],
    start: Annotated[str, typer.Option("--start", metavar="YYYY-MM-DD")],
    stop: Annotated[str | None, typer.Option(
        "--stop", metavar="YYYY-MM-DD", help="[default: ongoing]")] = None,
    dose: Annotated[str | None, typer.Option("--dose", help="e.g. 1 (with --unit).")] = None,
    unit: Annotated[str | None, typer.Option("--unit", help="e.g. mg/day.")] = None,
    route: Annotated[str | None, typer.Option("--route", help="e.g. oral, IV, IM, SC.")] = None,
    indication: Annotated[str | None, typer.Option("--indication")] = None,
    trial: TrialOption = None, ledger: LedgerOption = None, user: UserOption = None,
    password_stdin: PasswordStdinOption = False, json_output: JsonOption = False,
) -> None:
    """A concomitant medication. One the protocol prohibits, taken while the patient is on
    study, is shown as a detected deviation (category prohibited-medication).

    \b
    Example: trialctl record conmed P006 --drug warfarin --start 2026-10-01 --dose 1 --unit mg/day --route oral --indication "catheter prophylaxis" -u ivan
    """
    fact = Conmed(drug=drug, start=start, stop=stop, dose=dose, unit=unit, route=route,
                  indication=indication)
    run_signed(ledger, user, password_stdin, json_output, PatientStep(trial, patient, fact))


@app.command("withdraw")
def withdraw(
    patient: PatientArgument, date: DateOption,
    reason: Annotated[str, typer.Option("--reason")] = "",
    scope: Annotated[str, typer.Option(
        "--from", help="'consent' (all consent: afterwards only safety data) or 'treatment' "
        "(no more doses; follow-up goes on).")] = "consent",
    trial: TrialOption = None, ledger: LedgerOption = None, user: UserOption = None,
    password_stdin: PasswordStdinOption = False, json_output: JsonOption = False,
) -> None:
    """Withdrawal of all consent (afterwards only safety data: adverse events, their
    follow-up, death, corrections, off study; and responses, observations and labs made by
    the withdrawal day, entered from source), or --from treatment: no more doses, the
    patient stays in follow-up.

    \b
    Example: trialctl record withdraw P014 --date 2026-10-01 --reason "moved away" -u mona
    """
    if scope not in ("consent", "treatment"):
        fail(f"--from must be 'consent' or 'treatment', not {scope!r}", EXIT_USAGE)
    fact: Withdrawal | TreatmentWithdrawal = (
        Withdrawal(withdrawn_on=date, reason=reason) if scope == "consent"
        else TreatmentWithdrawal(withdrawn_on=date, reason=reason))
    run_signed(ledger, user, password_stdin, json_output, PatientStep(trial, patient, fact))


@app.command("off-study")
def off_study(
    patient: PatientArgument, date: DateOption,
    reason: Annotated[str, typer.Option("--reason")],
    trial: TrialOption = None, ledger: LedgerOption = None, user: UserOption = None,
    password_stdin: PasswordStdinOption = False, json_output: JsonOption = False,
) -> None:
    """Patient off study, with its reason (one of the protocol's [end_of_study] reasons,
    when it lists them). Follow-up contacts come after it (`record follow-up`).

    \b
    Example: trialctl record off-study P010 --date 2026-11-01 --reason "progression" -u mona
    """
    fact = OffStudy(off_on=date, reason=reason)
    run_signed(ledger, user, password_stdin, json_output, PatientStep(trial, patient, fact))


@app.command("follow-up")
def follow_up(
    patient: PatientArgument, date: DateOption,
    status: Annotated[str, typer.Option(
        "--status", help="alive, died or lost-to-follow-up (the day of the last attempt).")],
    text: Annotated[str | None, typer.Option(
        "--text", help="What was learnt, and from whom.")] = None,
    trial: TrialOption = None, ledger: LedgerOption = None, user: UserOption = None,
    password_stdin: PasswordStdinOption = False, json_output: JsonOption = False,
) -> None:
    """A follow-up contact after the patient went off study: their status that day.

    Not before the off-study date; nothing after a contact that found the patient dead.

    \b
    Example: trialctl record follow-up P010 --date 2026-11-02 --status alive --text "phone call with the patient" -u mona
    """
    fact = FollowUp(contacted_on=date, status=status, text=text)
    run_signed(ledger, user, password_stdin, json_output, PatientStep(trial, patient, fact))


@app.command("decide")
def decide(
    action: Annotated[str, typer.Option(
        "--action", help="escalate, expand, continue, deescalate or stop.")],
    next_level: Annotated[int | None, typer.Option("--next-level", min=1)] = None,
    mtd_level: Annotated[int | None, typer.Option("--mtd-level", min=1)] = None,
    override_reason: Annotated[str | None, typer.Option(
        "--override-reason", help="Needed (with principal-investigator authority) to decide "
        "otherwise than the 3+3 rules.")] = None,
    packet: Annotated[str | None, typer.Option(
        "--packet", metavar="SHA256", help="Cite the committee packet the decision was made "
        "on (its SHA-256, as `trialctl packet` printed it; issued in this ledger for this "
        "cohort).")] = None,
    trial: TrialOption = None, ledger: LedgerOption = None, user: UserOption = None,
    password_stdin: PasswordStdinOption = False, json_output: JsonOption = False,
) -> None:
    """The cohort decision, checked against the 3+3 engine and signed by an investigator.

    With --packet, a PacketCited entry naming the packet is signed in the same batch.

    \b
    Example: trialctl record decide --action escalate --next-level 2 -u pat
    """
    request = CohortDecision(trial, action, next_level, mtd_level, override_reason, packet)
    run_signed(ledger, user, password_stdin, json_output, request)


@app.command("cosign")
def cosign(
    position: Annotated[int, typer.Argument(
        min=0, help="The ledger position of the cohort decision to co-sign.")],
    meaning: Annotated[str, typer.Option(
        "--meaning", help="approved (the default) or reviewed.")] = "approved",
    trial: TrialOption = None, ledger: LedgerOption = None, user: UserOption = None,
    password_stdin: PasswordStdinOption = False, json_output: JsonOption = False,
) -> None:
    """Co-sign a cohort decision the protocol's [[co_signatures]] require a second signer for.

    The co-signature cites the decision entry's position and hash. Until it lands the
    decision is pending and the next cohort stays closed. Nobody co-signs their own entry.

    \b
    Example: trialctl record cosign 26 -u mona
    """
    from trialctl.ledger.co_signing import CoSign, CoSignActions
    from trialctl.ledger.roles import Meaning

    if meaning not in (Meaning.APPROVED, Meaning.REVIEWED):
        fail(f"--meaning {meaning!r}: a co-signature means approved or reviewed", EXIT_USAGE)
    request = CoSign(trial, position, need_user(user), Meaning(meaning))
    run_signed(ledger, user, password_stdin, json_output, request, CoSignActions)


@app.command("correct")
def correct(
    patient: PatientArgument,
    version: Annotated[int, typer.Option("--version", min=1,
                                         help="The patient record version to correct.")],
    changes: Annotated[list[str], typer.Option("--set", help="FIELD=NEW_VALUE (repeatable).")],
    reason: Annotated[str, typer.Option("--reason", help="Reason for change.")],
    query: Annotated[str | None, typer.Option(
        "--query", metavar="QUERY_ID",
        help="The open query on this record that the correction answers.")] = None,
    trial: TrialOption = None, ledger: LedgerOption = None, user: UserOption = None,
    password_stdin: PasswordStdinOption = False, json_output: JsonOption = False,
) -> None:
    """Correct a recorded value: the original stays, the correction is its own signed event.

    \b
    Example: trialctl record correct P006 --version 5 --set dose=400 --reason "transcription error" -u ivan
    """
    fact = Correction(target_version=version, changes=parse_assignments(changes, "--set"),
                      reason=reason, query=query)
    run_signed(ledger, user, password_stdin, json_output, PatientStep(trial, patient, fact))
