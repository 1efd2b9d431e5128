"""Ledgers on variants of NCT00084513 that the shipped file (and so the demo's story) does
not hold: one asking a second investigator to confirm each DLT adjudication, one listing
the reasons a patient may go off study for."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from tests.signed_site import INVESTIGATORS, MONITOR, PASSWORDS
from tests.trial_helpers import ROOT
from trialctl.domain.co_signatures import DLT_ADJUDICATED
from trialctl.domain.facts import AdverseEvent, CourseCompletion, DltAdjudication
from trialctl.domain.protocol import Protocol
from trialctl.domain.protocol_file import load_protocol
from trialctl.ledger.application import TrialLedger, UnlockedUser
from trialctl.ledger.demo import _Story
from trialctl.ledger.location import resolve_ledger
from trialctl.ledger.requests import Registration
from trialctl.ledger.trials import TrialActions

NCT_TEXT = (ROOT / "protocols" / "NCT00084513.toml").read_text(encoding="utf-8")
TWO_INVESTIGATORS = (
    f'{NCT_TEXT}\n[[co_signatures]]\nevent_type = "{DLT_ADJUDICATED}"\n'
    'role = "investigator"\ntext = "a DLT adjudication is confirmed by a second investigator"\n'
)


END_OF_STUDY_REASONS = ("disease progression", "unacceptable toxicity", "patient decision",
                        "death", "lost to follow-up")
LISTED_REASONS = (
    f"{NCT_TEXT}\n[end_of_study]\nreasons = "
    f"[{', '.join(f'{chr(34)}{r}{chr(34)}' for r in END_OF_STUDY_REASONS)}]\n"
)


def co_signed_protocol() -> Protocol:
    return load_protocol(TWO_INVESTIGATORS)


def listed_reasons_protocol() -> Protocol:
    return load_protocol(LISTED_REASONS)


def staffed(url: str, protocol: Protocol) -> tuple[TrialLedger, _Story]:
    """A new ledger with the site's users and the protocol registered, and a story on it
    whose dates start 120 days ago."""
    app = TrialLedger(resolve_ledger(url), create=True)
    app.initialise("co-signature test", "alice", "Alice Adams", PASSWORDS["alice"])
    alice = app.unlock("alice", PASSWORDS["alice"])
    for user, name, role in (*INVESTIGATORS, MONITOR):
        app.register_user(alice, user, name, [role], PASSWORDS[user])
    actors = {u: app.unlock(u, PASSWORDS[u]) for u in ("pat", "ivan", "mona")}
    records = TrialActions(app)
    records.perform(Registration(protocol), actors["pat"], datetime.now(UTC))
    start = date.today() - timedelta(days=120)
    return app, _Story(records, actors, protocol, start, lambda _: None)


def enrolled_under_listed_reasons(url: str) -> date:
    """P001 enrolled and given course 1 under the variant listing off-study reasons; the
    story's day 0."""
    app, story = staffed(url, listed_reasons_protocol())
    try:
        story.dose_course(story.new_patient(0), 1, 1, 6)
        return story.start
    finally:
        app.close()


def pending_adjudication(url: str) -> tuple[int, dict[str, UnlockedUser]]:
    """Under the variant protocol, cohort 1 treated in-process (the CLI is not the subject
    here): P001 and P002 without DLT, P003 with one adjudicated by pat. The adjudication's
    ledger position, and the unlocked users (pat, ivan, mona)."""
    app, story = staffed(url, co_signed_protocol())
    actors = story.actors
    try:
        for offset in (0, 2):
            story.treat(story.new_patient(offset), 1, offset + 6, dlt=False)
        patient = story.new_patient(4)
        story.dose_course(patient, 1, 1, 10)
        story.record("ivan", patient, AdverseEvent(
            ae_id="AE1", term="Neutrophils/granulocytes (ANC/AGC)", grade=4,
            attribution="probable", onset=story.day(20), resolved_on=story.day(27),
            coded=True))
        adjudicated = story.record("pat", patient, DltAdjudication(
            ae_id="AE1", is_dlt=True, rule_code="neutropenia_g4", decided_on=story.day(27),
            override_reason=None))
        story.record("ivan", patient, CourseCompletion(
            course=1, completed_on=story.day(31), not_evaluable_reason=None))
        return int(adjudicated.entries[0]["position"]), actors
    finally:
        app.close()
