"""The audit-trail review a sponsor performs (FDA, "Electronic Systems, Electronic Records,
and Electronic Signatures in Clinical Investigations", 2024): the entries a reviewer must
look at, drawn from the signed entries below one tree head, and the reviewer's signed
`AuditReviewed` entry naming that tree head and the SHA-256 of the review's output.

Each section is a named rule over the entries (`SECTIONS`); the review lists what each
finds since a date, though every rule reads the whole trail (a back-dated entry is judged
against what was recorded before it, however old). Sections:

- corrections: every `Corrected` entry, with old value, new value and reason;
- refused attempts: the security log's `AttemptRefused` entries;
- overrides: decisions and DLT judgements made against the rules (PI authority);
- out-of-hours: entries recorded outside the working hours (in a time zone), or at a weekend;
- back-dated: a clinical record dated before a record already entered for the same patient;
- late: a clinical record entered more than N days after its clinical date;
- revoked users: entries whose signer has since been deactivated, lost the key they signed
  with, or lost the role they signed as;
- failed sign-ins and lock-outs: wrong passwords as the user's own security log signed them
  (`AttemptRefused`, action sign-in), and each lock-out an admin ended (`User.Unlocked`, with
  the failed attempts it signed).

Hook: source-data-verification reviews that later corrections invalidate are a section of
their own, added by the module that records those reviews (`ledger/reviews.py`) with
`register_section` under the reserved key `INVALIDATED_REVIEWS`; `build_review` loads the
modules in `SECTION_MODULES` so their sections are always there.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from importlib import import_module, resources
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jinja2 import Environment, StrictUndefined, select_autoescape

from trialctl.domain.facts import FACTS, Correction
from trialctl.domain.patient import Patient
from trialctl.domain.trial import Trial
from trialctl.ledger.application import TrialLedger, UnlockedUser
from trialctl.ledger.errors import LedgerError
from trialctl.ledger.export_pages import LedgerEntry, leaf_hashes, ledger_entries
from trialctl.ledger.lockout import SIGN_IN
from trialctl.ledger.manifest import streamed_root
from trialctl.ledger.mapper import format_time, parse_time
from trialctl.ledger.projection import catch_up
from trialctl.ledger.users import LedgerRecord, SecurityLog, User

REVIEW_FORMAT = "trialctl-audit-review/v1"
INVALIDATED_REVIEWS = "invalidated_reviews"  # reserved for source-data-verification reviews


class ReviewError(LedgerError):
    """A review that cannot be made: bad settings or an output already there."""


@dataclass(frozen=True)
class Settings:
    """What counts as out of hours and as late; the time zone the hours are in."""

    day_starts: time = time(7, 0)
    day_ends: time = time(19, 0)
    zone: str = "UTC"
    late_days: int = 7
    weekends_out_of_hours: bool = True

    def tz(self) -> tzinfo:
        try:
            return UTC if self.zone == "UTC" else ZoneInfo(self.zone)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise ReviewError(f"--timezone {self.zone!r} is not an IANA time zone") from e

    def shown(self) -> dict[str, Any]:
        return {"hours": f"{self.day_starts:%H:%M}-{self.day_ends:%H:%M}",
                "timezone": self.zone, "late_days": self.late_days,
                "weekends_out_of_hours": self.weekends_out_of_hours}


def parse_hours(text: str) -> tuple[time, time]:
    """HH:MM-HH:MM, the working day's start before its end."""
    try:
        start, end = (time.fromisoformat(part.strip()) for part in text.split("-"))
    except ValueError as e:
        raise ReviewError(f"--hours {text!r}: write HH:MM-HH:MM, e.g. 07:00-19:00") from e
    if start >= end:
        raise ReviewError(f"--hours {text!r}: the day must start before it ends")
    return start, end


@dataclass
class Scope:
    """What every section reads: the entries below the tree head, the users as they are
    now, the patient ids by record, the corrections' old and new values (from the audit
    read model), and the moment from which the review lists."""

    entries: list[LedgerEntry]
    users: dict[str, User]
    patients: dict[str, str]
    changes: dict[int, dict[str, Any]]
    since: datetime | None
    settings: Settings
    # The ledger itself, for a section whose rule reads aggregates (the reviews a correction
    # invalidated); None when a rule is tried on entries alone.
    ledger: TrialLedger | None = None

    def listed(self, entry: LedgerEntry) -> bool:
        return self.since is None or parse_time(entry.statement["recorded_at"]) >= self.since

    def row(self, entry: LedgerEntry, **extra: Any) -> dict[str, Any]:
        statement = entry.statement
        actor = statement["actor"]
        return {"position": entry.position, "recorded_at": statement["recorded_at"],
                "type": str(statement["type"]).removeprefix("trialctl."),
                "user_id": actor["user_id"], "role": actor["role"],
                "meaning": statement["meaning"],
                "patient": self.patients.get(str(statement["aggregate_id"])), **extra}


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    explains: str
    rows: Callable[[Scope], list[dict[str, Any]]] = field(repr=False)


# -- the rules ---------------------------------------------------------------------------


def _corrections(scope: Scope) -> list[dict[str, Any]]:
    return [scope.row(e, corrected_version=e.statement["payload"].get("target_version"),
                      kind=e.statement["payload"].get("kind"),
                      old_value=scope.changes.get(e.position, {}).get("old_value"),
                      new_value=scope.changes.get(e.position, {}).get("new_value"),
                      reason=e.statement["payload"].get("reason"))
            for e in scope.entries
            if e.statement["type"] == Patient.Corrected.TOPIC and scope.listed(e)]


def _refused(scope: Scope) -> list[dict[str, Any]]:
    return [scope.row(e, action=e.statement["payload"].get("action"),
                      reason=e.statement["payload"].get("reason"))
            for e in scope.entries
            if e.statement["type"] == SecurityLog.AttemptRefused.TOPIC and scope.listed(e)]


OVERRIDE_TYPES = frozenset({Trial.CohortDecisionOverridden.TOPIC,
                            Patient.DltRuleOverridden.TOPIC})


def _overrides(scope: Scope) -> list[dict[str, Any]]:
    return [scope.row(e, override_reason=e.statement["payload"].get("override_reason"),
                      cohort=e.statement["payload"].get("cohort_number"),
                      ae=e.statement["payload"].get("ae_id"))
            for e in scope.entries
            if e.statement["type"] in OVERRIDE_TYPES and scope.listed(e)]


def _out_of_hours(scope: Scope) -> list[dict[str, Any]]:
    settings, zone = scope.settings, scope.settings.tz()
    rows = []
    for entry in scope.entries:
        if not scope.listed(entry):
            continue
        local = parse_time(entry.statement["recorded_at"]).astimezone(zone)
        weekend = settings.weekends_out_of_hours and local.weekday() >= 5
        if weekend or not settings.day_starts <= local.time() < settings.day_ends:
            why = f"{local:%A} {local:%H:%M} {settings.zone}"
            rows.append(scope.row(entry, local_time=why))
    return rows


# The clinical date of each patient event: its fact's first stated date field.
CLINICAL_DATE: dict[str, str] = {}
for _fact in FACTS:
    _dated = [c.name for c in _fact.columns() if not c.derived and c.shown in
              ("date", "date-time")]
    if _dated and _fact is not Correction:
        CLINICAL_DATE[f"{Patient.TOPIC}.{_fact.EVENT}"] = _dated[0]


def clinical_date(statement: dict[str, Any]) -> date | None:
    name = CLINICAL_DATE.get(str(statement["type"]))
    value = statement["payload"].get(name) if name else None
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def _back_dated(scope: Scope) -> list[dict[str, Any]]:
    latest: dict[str, tuple[date, int]] = {}  # patient record → latest clinical date so far
    rows = []
    for entry in scope.entries:
        day = clinical_date(entry.statement)
        if day is None:
            continue
        record = str(entry.statement["aggregate_id"])
        before = latest.get(record)
        if before is not None and day < before[0] and scope.listed(entry):
            rows.append(scope.row(entry, clinical_date=day.isoformat(),
                                  already_recorded=f"#{before[1]} dated {before[0]}"))
        if before is None or day > before[0]:
            latest[record] = (day, entry.position)
    return rows


def _late(scope: Scope) -> list[dict[str, Any]]:
    limit = timedelta(days=scope.settings.late_days)
    rows = []
    for entry in scope.entries:
        day = clinical_date(entry.statement)
        if day is None or not scope.listed(entry):
            continue
        recorded = parse_time(entry.statement["recorded_at"]).date()
        if recorded - day > limit:
            rows.append(scope.row(entry, clinical_date=day.isoformat(),
                                  days_late=(recorded - day).days))
    return rows


def _revoked(scope: Scope) -> list[dict[str, Any]]:
    rows = []
    for entry in scope.entries:
        actor = entry.statement["actor"]
        user = scope.users.get(actor["user_id"])
        if user is None or not scope.listed(entry) or \
                entry.statement["type"] == SecurityLog.AttemptRefused.TOPIC:
            continue
        if not user.active:
            why = "user deactivated since"
        elif actor["key_id"] in user.revoked_keys:
            why = f"signing key {actor['key_id'][:16]}… revoked since"
        elif actor["role"] not in user.roles:
            why = f"role {actor['role']} revoked since"
        else:
            continue
        rows.append(scope.row(entry, revoked=why))
    return rows


def _sign_ins(scope: Scope) -> list[dict[str, Any]]:
    unlocked = {str(u.id): u.user_id for u in scope.users.values()}
    rows = []
    for entry in scope.entries:
        statement, payload = entry.statement, entry.statement["payload"]
        if not scope.listed(entry):
            continue
        if statement["type"] == SecurityLog.AttemptRefused.TOPIC and \
                payload.get("action") == SIGN_IN:
            rows.append(scope.row(entry, user=statement["actor"]["user_id"],
                                  event="failed sign-in", attempts=1,
                                  detail=payload.get("reason")))
        elif statement["type"] == User.Unlocked.TOPIC:
            attempts = payload.get("failed_attempts") or []
            rows.append(scope.row(
                entry, user=unlocked.get(str(statement["aggregate_id"])),
                event="lock-out ended", attempts=len(attempts),
                detail="; ".join(f"{a.get('at')} {a.get('action')}: {a.get('reason')}"
                                 for a in attempts)))
    return rows


SECTIONS: dict[str, Section] = {}
# Modules that register a section of their own when imported.
SECTION_MODULES = ("trialctl.ledger.reviews",)


def register_section(section: Section) -> None:
    """Add a section to every review (another module's rule, e.g. INVALIDATED_REVIEWS)."""
    if section.key in SECTIONS:
        raise ValueError(f"audit-review section {section.key!r} is already registered")
    SECTIONS[section.key] = section


for _section in (
    Section("corrections", "Corrections and their reasons",
            "Every correction: the value before and after, and the reason given.", _corrections),
    Section("refused_attempts", "Refused attempts",
            "Signed attempts the ledger refused (the security log).", _refused),
    Section("overrides", "Overrides",
            "Decisions and DLT judgements made against the rules, with their reasons.",
            _overrides),
    Section("out_of_hours", "Out-of-hours entries",
            "Entries recorded outside the working hours, or at a weekend.", _out_of_hours),
    Section("back_dated", "Back-dated entries",
            "Clinical records dated before a record already entered for the same patient.",
            _back_dated),
    Section("late_entries", "Late entries",
            "Clinical records entered more days after their clinical date than allowed.",
            _late),
    Section("revoked_users", "Entries by users since revoked",
            "Entries whose signer was deactivated, or lost the key or role they signed "
            "with, after signing.", _revoked),
    Section("sign_ins", "Failed sign-ins and lock-outs",
            "Wrong passwords (signed by the user at their next sign-in) and each lock-out an "
            "admin ended, with the failed attempts it signed.", _sign_ins),
):
    register_section(_section)


# -- the review --------------------------------------------------------------------------


def _users(ledger: TrialLedger) -> dict[str, User]:
    return {u.user_id: u for u in ledger.users.every_user()}


def _patients(entries: Iterable[LedgerEntry]) -> dict[str, str]:
    return {str(e.statement["aggregate_id"]): str(e.statement["payload"]["patient_id"])
            for e in entries if e.statement["type"] == Patient.ConsentSigned.TOPIC}


def build_review(
    ledger: TrialLedger, since: datetime | None, settings: Settings, reviewer: str,
    now: datetime,
) -> dict[str, Any]:
    """The review as plain values, over every entry below the tree size now."""
    settings.tz()  # a bad zone is refused before anything is read
    for module in SECTION_MODULES:
        import_module(module)
    recorder = ledger.signed_recorder
    tree_size = recorder.tree_size()
    root = streamed_root(leaf_hashes(recorder, tree_size)).hex()
    entries = list(ledger_entries(recorder, tree_size))
    changes = {int(r["position"]): r for r in
               catch_up(ledger).audit_rows(event_type=Patient.Corrected.TOPIC)}
    scope = Scope(entries, _users(ledger), _patients(entries), changes, since, settings,
                  ledger)
    sections = []
    for section in SECTIONS.values():
        rows = section.rows(scope)
        sections.append({"key": section.key, "title": section.title,
                         "explains": section.explains, "count": len(rows), "rows": rows})
    return {
        "format": REVIEW_FORMAT, "ledger_id": ledger.ledger_record().ledger_id,
        "tree_size": tree_size, "root_hash": root,
        "since": None if since is None else format_time(since),
        "entries_reviewed": sum(1 for e in entries if scope.listed(e)),
        "reviewed_by": reviewer, "reviewed_at": format_time(now),
        "settings": settings.shown(), "sections": sections,
        "counts": {s["key"]: s["count"] for s in sections},
    }


def review_json(review: dict[str, Any]) -> bytes:
    return (json.dumps(review, indent=2, sort_keys=True, default=str) + "\n").encode("utf-8")


def record_review(
    ledger: TrialLedger, actor: UnlockedUser, review: dict[str, Any], output: bytes,
    output_format: str,
) -> int:
    """Sign the `AuditReviewed` entry for this output; returns its position."""
    record = ledger.ledger_record()
    record.record_audit_review(
        since=review["since"], tree_size=review["tree_size"], root_hash=review["root_hash"],
        review_sha256=hashlib.sha256(output).hexdigest(), output_format=output_format,
        counts=dict(review["counts"]),
    )
    ids = ledger.record(actor, record)
    return ledger.signed_recorder.entries_for(ids)[0][0]


def check_reviewer(ledger: TrialLedger, user_id: str) -> None:
    ledger.check_may_sign(user_id, [LedgerRecord.AuditReviewed.TOPIC])


def review_html(review: dict[str, Any]) -> bytes:
    """The review as one self-contained HTML page (no external asset)."""
    text = resources.files("trialctl.ledger.report").joinpath("templates",
                                                              "audit_review.html.j2")
    environment = Environment(autoescape=select_autoescape(default=True),
                              undefined=StrictUndefined, keep_trailing_newline=True)
    return environment.from_string(text.read_text(encoding="utf-8")).render(
        review=review).encode("utf-8")
