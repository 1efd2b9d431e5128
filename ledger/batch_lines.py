"""Batch entry's lines: which `record` commands a line may name, their fields (named as the
command's flags), and the translation of one line into the request the command builds.

The request is the very `PatientStep` the single command sends to `TrialActions`, so a line
meets exactly the checks its command meets. New `record` commands plug in by adding a
`LineKind` to `LINE_KINDS` (tests/test_batch.py checks every command has one or an
exemption).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

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
    Fact,
    FollowUp,
    Lab,
    Observation,
    OffStudy,
    Response,
    Screening,
    TreatmentWithdrawal,
    Withdrawal,
)
from trialctl.domain.recist import TargetLesion, check_lesion_text
from trialctl.ledger.requests import PatientStep

MAX_FILE_BYTES = 8 * 1024 * 1024
MAX_LINES = 50_000
COMMAND_FIELD = "command"
COMMON_FIELDS = ("patient", "trial")  # every line: the patient (required), its trial
LIST_SEPARATOR = ";"  # a repeatable flag's values in one CSV cell

# At most 18 digits: longer is text (and refused where a number is due), never a huge int.
_INTEGER = re.compile(r"^-?\d{1,18}$")


class LineError(ValueError):
    """A line that cannot become a request: `rule` names what is wrong, for the report."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule


class BatchFileError(ValueError):
    """A file refused whole, before any line is checked or anything signed."""


# -- values shared with the single commands ---------------------------------------------


def parse_assignment(pair: str) -> tuple[str, Any]:
    """KEY=VALUE: true/false become booleans, whole numbers integers, the rest text."""
    key, equals, raw = pair.partition("=")
    if not equals or not key.strip():
        raise ValueError(f"expects KEY=VALUE, not {pair!r}")
    text = raw.strip()
    value: Any = text
    if text.lower() in ("true", "false"):
        value = text.lower() == "true"
    elif _INTEGER.match(text):
        value = int(text)
    return key.strip(), value


def parse_lesion(text: str) -> TargetLesion:
    """ID:SITE:LONGEST_MM, or ID:node:LONGEST_MM:SHORT_AXIS_MM for a lymph node."""
    parts = text.split(":")
    # The text is echoed in the message, at most its first 40 characters.
    shown = repr(text) if len(text) <= 40 else f"{text[:40]!r}…"
    if any(not Decimal(part).is_finite() for part in parts[2:] if _is_decimal(part)):
        raise ValueError(f"{shown}: a measurement is a finite number of mm")
    try:
        if len(parts) in (3, 4):
            check_lesion_text(parts[0], parts[1])
        if len(parts) == 3:
            return TargetLesion(parts[0], parts[1], Decimal(parts[2]))
        if len(parts) == 4 and parts[1] == "node":
            return TargetLesion(parts[0], "node", Decimal(parts[2]), True, Decimal(parts[3]))
    except (InvalidOperation, ValueError) as e:
        raise ValueError(f"{shown}: {e}") from e
    raise ValueError(f"{shown}: write ID:SITE:MM or ID:node:MM:SHORT_MM")


def _is_decimal(text: str) -> bool:
    try:
        Decimal(text)
    except InvalidOperation:
        return False
    return True


# -- field types -----------------------------------------------------------------------


def _text(value: Any) -> str:
    if isinstance(value, bool | float):
        raise ValueError("must be text (write decimals as strings)")
    if isinstance(value, int):
        return str(value)
    if not isinstance(value, str):
        raise ValueError("must be text")
    return value


def _integer(value: Any, least: int | None) -> int:
    if isinstance(value, str) and _INTEGER.match(value.strip()):
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("must be a whole number")
    if least is not None and value < least:
        raise ValueError(f"must be at least {least}")
    return value


def _boolean(value: Any) -> bool:
    if isinstance(value, str) and value.strip().lower() in ("true", "yes", "1", "false", "no", "0"):
        return value.strip().lower() in ("true", "yes", "1")
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [part.strip() for part in value.split(LIST_SEPARATOR) if part.strip()]
    if not isinstance(value, list):
        raise ValueError(f"must be a list (in CSV: values separated by {LIST_SEPARATOR!r})")
    return [_text(item) for item in value]


def _assignments(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        if any(isinstance(v, float) for v in value.values()):
            raise ValueError("decimals must be written as strings")
        return dict(value)
    return dict(parse_assignment(pair) for pair in _texts(value))


def _lesions(value: Any) -> tuple[TargetLesion, ...]:
    return tuple(parse_lesion(text) for text in _texts(value))


def _withdrawal_scope(value: Any) -> str:
    """`withdraw --from`: all consent, or treatment only (follow-up goes on)."""
    scope = _text(value)
    if scope not in ("consent", "treatment"):
        raise ValueError("must be 'consent' or 'treatment'")
    return scope


@dataclass(frozen=True)
class Field:
    """One flag of a `record` command, as a line's field of the same name."""

    name: str
    parse: Callable[[Any], Any]
    required: bool = True
    default: Any = None


def text(name: str, required: bool = True, default: Any = None) -> Field:
    return Field(name, _text, required, default)


def count(name: str, required: bool = True) -> Field:
    """A whole number of at least 1 (the flag's min=1)."""
    return Field(name, lambda v: _integer(v, 1), required)


def integer(name: str) -> Field:
    return Field(name, lambda v: _integer(v, None))


def flag(name: str, default: bool = False) -> Field:
    return Field(name, _boolean, False, default)


def texts(name: str, required: bool = False) -> Field:
    return Field(name, _texts, required, [])


@dataclass(frozen=True)
class LineKind:
    """A `record` command a batch line may name: its flags and the fact they make."""

    command: str
    fields: tuple[Field, ...]
    build: Callable[[dict[str, Any]], Fact]

    def field_names(self) -> tuple[str, ...]:
        return (*COMMON_FIELDS, *(f.name for f in self.fields))


def _kinds(*kinds: LineKind) -> dict[str, LineKind]:
    return {kind.command: kind for kind in kinds}


DATE = text("date")
VISIT = text("visit", required=False)  # the schedule's visit a record states it belongs to

LINE_KINDS: dict[str, LineKind] = _kinds(
    LineKind("consent", (text("consent-version"), DATE), lambda v: Consent(
        consent_version=v["consent-version"], signed_on=v["date"])),
    LineKind("screen", (DATE, Field("value", _assignments)), lambda v: Screening(
        values=v["value"], screened_on=v["date"])),
    LineKind("enroll", (DATE,), lambda v: Enrolment(enrolled_on=v["date"])),
    LineKind("dose", (text("agent"), text("dose"), text("unit"), count("course"), count("day"),
                      text("at")), lambda v: Dose(
        agent=v["agent"], dose=v["dose"], unit=v["unit"], course=v["course"], day=v["day"],
        given_at=v["at"])),
    LineKind("dose-change", (count("course"), text("action"), text("reason"), text("text"),
                             DATE, count("to-level", required=False)), lambda v: DoseChange(
        course=v["course"], action=v["action"], to_level=v["to-level"], reason=v["reason"],
        text=v["text"], effective_on=v["date"])),
    LineKind("ae", (text("id"), text("term"), integer("grade"), text("attribution"),
                    text("onset"), text("resolved", required=False), flag("uncoded"),
                    texts("serious"), text("site-aware-on", required=False),
                    text("reported-on", required=False)),
             lambda v: AdverseEvent(
        ae_id=v["id"], term=v["term"], grade=v["grade"], attribution=v["attribution"],
        onset=v["onset"], resolved_on=v["resolved"], coded=not v["uncoded"],
        serious=v["serious"] or None, site_aware_on=v["site-aware-on"],
        reported_on=v["reported-on"])),
    LineKind("dlt", (text("ae"), DATE, flag("dlt", default=True), text("rule", required=False),
                     text("override-reason", required=False)), lambda v: DltAdjudication(
        ae_id=v["ae"], is_dlt=v["dlt"], rule_code=v["rule"], decided_on=v["date"],
        override_reason=v["override-reason"])),
    LineKind("complete-course", (count("course"), DATE, text("not-evaluable", required=False)),
             lambda v: CourseCompletion(
        course=v["course"], completed_on=v["date"], not_evaluable_reason=v["not-evaluable"])),
    LineKind("response", (DATE, Field("lesion", _lesions), flag("baseline"), flag("new-lesions"),
                          flag("non-target-progression"), VISIT), lambda v: Response(
        assessed_on=v["date"], baseline=v["baseline"], lesions=v["lesion"],
        new_lesions=v["new-lesions"], non_target_progression=v["non-target-progression"],
        visit=v["visit"])),
    LineKind("observe", (text("kind"), text("value"), DATE, VISIT), lambda v: Observation(
        kind=v["kind"], value=v["value"], observed_on=v["date"], visit=v["visit"])),
    LineKind("lab", (text("test"), text("value"), text("unit"), DATE,
                     count("course", required=False), count("day", required=False),
                     text("uln", required=False), text("lln", required=False), VISIT),
             lambda v: Lab(
        test=v["test"], value=v["value"], unit=v["unit"], collected_on=v["date"],
        course=v["course"], day=v["day"], uln=v["uln"], lln=v["lln"], visit=v["visit"])),
    LineKind("withdraw", (DATE, text("reason", required=False, default=""),
                          Field("from", _withdrawal_scope, False, "consent")),
             lambda v: (Withdrawal if v["from"] == "consent" else TreatmentWithdrawal)(
                 withdrawn_on=v["date"], reason=v["reason"])),
    LineKind("off-study", (DATE, text("reason")), lambda v: OffStudy(
        off_on=v["date"], reason=v["reason"])),
    LineKind("follow-up", (DATE, text("status"), text("text", required=False)),
             lambda v: FollowUp(contacted_on=v["date"], status=v["status"], text=v["text"])),
    LineKind("correct", (count("version"), Field("set", _assignments), text("reason"),
                         text("query", required=False)),
             lambda v: Correction(
        target_version=v["version"], changes=v["set"], reason=v["reason"], query=v["query"])),
    LineKind("deviation", (text("category"), text("severity"), text("text"),
                           Field("record", lambda v: _integer(v, 0), False)),
             lambda v: Deviation(category=v["category"], severity=v["severity"],
                                 text=v["text"], record=v["record"])),
    LineKind("conmed", (text("drug"), text("start"), *(text(name, required=False) for name in
                        ("stop", "dose", "unit", "route", "indication"))),
             lambda v: Conmed(drug=v["drug"], start=v["start"], stop=v["stop"], dose=v["dose"],
                              unit=v["unit"], route=v["route"], indication=v["indication"])),
)

# `record` commands no batch line may name, and why (tests/test_batch.py reads this).
NOT_IN_BATCH: dict[str, str] = {
    "decide": "a cohort decision cites the committed entries it was made on; record it alone",
    "cosign": "a co-signature cites the committed decision entry it signs; record it alone",
}


def csv_columns() -> tuple[str, ...]:
    """Every column a batch CSV may have: the command, then each flag of any line kind."""
    names = dict.fromkeys([COMMAND_FIELD, *COMMON_FIELDS])
    for kind in LINE_KINDS.values():
        names.update(dict.fromkeys(f.name for f in kind.fields))
    return tuple(names)


# -- one line to one request -----------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """One line of a batch file, as read: its line number and its fields."""

    number: int
    values: Mapping[str, Any]

    @property
    def command(self) -> str:
        value = self.values.get(COMMAND_FIELD)
        return value if isinstance(value, str) else ""


def line_request(line: Line, default_trial: str | None) -> PatientStep:
    """The request the line's `record` command would build from the same flags."""
    command = line.values.get(COMMAND_FIELD)
    if not isinstance(command, str) or not command:
        raise LineError("missing-field", f"no {COMMAND_FIELD!r} naming the record command")
    kind = LINE_KINDS.get(command)
    if kind is None:
        why = NOT_IN_BATCH.get(command)
        raise LineError("unknown-command", f"{command!r} cannot be batched: {why}" if why else
                        f"unknown command {command!r} (one of {', '.join(LINE_KINDS)})")
    given = {k: v for k, v in line.values.items() if k != COMMAND_FIELD and v not in ("", None)}
    unknown = sorted(set(given) - set(kind.field_names()))
    if unknown:
        raise LineError("unknown-field", f"field {unknown[0]!r} is not a flag of "
                        f"'record {command}' (fields: {', '.join(kind.field_names())})")
    patient = given.get("patient")
    if not isinstance(patient, str) or not patient.strip():
        raise LineError("missing-field", "field 'patient' is required")
    trial = given.get("trial", default_trial)
    if trial is not None and not isinstance(trial, str):
        raise LineError("field-type", "field 'trial' must be text")
    values: dict[str, Any] = {}
    for spec in kind.fields:
        if spec.name not in given:
            if spec.required:
                raise LineError("missing-field", f"field {spec.name!r} is required")
            values[spec.name] = spec.default
            continue
        try:
            values[spec.name] = spec.parse(given[spec.name])
        except ValueError as e:
            raise LineError("field-type", f"field {spec.name!r}: {e}") from e
    if kind.command == "screen" and not values["value"]:
        raise LineError("missing-field", "field 'value' holds no screening values")
    try:
        fact = kind.build(values)
    except (TypeError, ValueError) as e:
        raise LineError("field-type", str(e).splitlines()[0]) from e
    return PatientStep(trial, patient.strip(), fact)


# -- reading a file --------------------------------------------------------------------


def read_lines(data: bytes, name: str) -> list[Line]:
    """The file's lines: JSON lines (one object a line), or CSV when its first line is a
    header starting with `command`. Refuses the whole file on any malformation."""
    if len(data) > MAX_FILE_BYTES:
        raise BatchFileError(f"{name} is too large ({len(data)} bytes; at most "
                             f"{MAX_FILE_BYTES} in one batch)")
    try:
        content = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise BatchFileError(f"{name} is not UTF-8 text (byte {e.start})") from e
    if "\x00" in content:
        raise BatchFileError(f"{name} holds a NUL character; it is not a text file")
    first = content.lstrip().split("\n", 1)[0]
    lines = _read_json_lines(content, name) if first.startswith("{") else \
        _read_csv(content, name)
    if not lines:
        raise BatchFileError(f"{name} holds no lines to record")
    if len(lines) > MAX_LINES:
        raise BatchFileError(f"{name} has {len(lines)} lines; at most {MAX_LINES} in one batch")
    return lines


def _read_json_lines(content: str, name: str) -> list[Line]:
    lines: list[Line] = []
    for number, raw in enumerate(content.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            value = json.loads(raw, parse_constant=_no_constant)
        except ValueError as e:  # also an integer over 4,300 digits
            raise BatchFileError(
                f"{name} line {number}: not JSON ({str(e).split(';')[0]})") from e
        except RecursionError as e:
            raise BatchFileError(f"{name} line {number}: nested too deeply") from e
        if not isinstance(value, dict):
            raise BatchFileError(f"{name} line {number}: a JSON object is expected")
        lines.append(Line(number, value))
    return lines


def _no_constant(text: str) -> Any:
    raise ValueError(f"{text} is not a value")


def _read_csv(content: str, name: str) -> list[Line]:
    rows = csv.reader(io.StringIO(content, newline=""))
    try:
        header = [cell.strip() for cell in next(rows)]
    except StopIteration:
        return []
    except csv.Error as e:
        raise BatchFileError(f"{name} line 1: {e}") from e
    if not header or header[0] != COMMAND_FIELD:
        raise BatchFileError(f"{name}: neither JSON lines nor a CSV whose header starts "
                             f"with {COMMAND_FIELD!r}")
    known = set(csv_columns())
    for column in header:
        if column not in known:
            raise BatchFileError(f"{name} line 1: unknown column {column!r} (docs/BATCH.md)")
    if len(set(header)) != len(header):
        raise BatchFileError(f"{name} line 1: a column is named twice")
    lines: list[Line] = []
    try:
        for row in rows:
            number = rows.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise BatchFileError(f"{name} line {number}: {len(row)} cells, "
                                     f"the header names {len(header)}")
            lines.append(Line(number, {k: v.strip() for k, v in zip(header, row, strict=True)
                                       if v.strip()}))
    except csv.Error as e:
        raise BatchFileError(f"{name} line {rows.line_num}: {e}") from e
    return lines
