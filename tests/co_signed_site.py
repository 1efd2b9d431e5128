"""A ledger whose protocol asks a second investigator to confirm each DLT adjudication: a
variant of NCT00084513 (the shipped file asks none, so the demo's story is unchanged)."""

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


def co_signed_protocol() -> Protocol:
    return load_protocol(TWO_INVESTIGATORS)


def pending_adjudication(url: str) -> tuple[int, dict[str, UnlockedUser]]:
    """Under the variant protocol, cohort 1 treated in-process (the CLI is not the subject
    here): P001 and P002 without DLT, P003 with one adjudicated by pat. The adjudication's
    ledger position, and the unlocked users (pat, ivan, mona)."""
    app = TrialLedger(resolve_ledger(url), create=True)
    try:
        app.initialise("adjudication co-signature test", "alice", "Alice Adams",
                       PASSWORDS["alice"])
        alice = app.unlock("alice", PASSWORDS["alice"])
        for user, name, role in (*INVESTIGATORS, MONITOR):
            app.register_user(alice, user, name, [role], PASSWORDS[user])
        actors = {u: app.unlock(u, PASSWORDS[u]) for u in ("pat", "ivan", "mona")}
        records = TrialActions(app)
        protocol = co_signed_protocol()
        records.perform(Registration(protocol), actors["pat"], datetime.now(UTC))
        start = date.today() - timedelta(days=120)
        story = _Story(records, actors, protocol, start, lambda _: None)
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
