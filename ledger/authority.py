"""Who may sign what: roles, the actions each may take, and the one check that applies them.

The same `check_signature_authority` runs when an event is written and when `verify`
replays the ledger, so a refusal at the door and a finding in an audit never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from trialctl.domain.co_signatures import CO_SIGNER_ROLES
from trialctl.domain.facts import DltAdjudication
from trialctl.domain.patient import Patient
from trialctl.domain.trial import Trial
from trialctl.ledger.roles import Meaning, Role
from trialctl.ledger.users import LedgerRecord, SecurityLog, User

EVERY_ROLE = frozenset(Role)
STAFF = frozenset(EVERY_ROLE - {Role.AUDITOR})


@dataclass(frozen=True)
class Permission:
    roles: frozenset[Role]
    meanings: frozenset[Meaning]
    default_meaning: Meaning


def _allow(roles: frozenset[Role], default: Meaning, *others: Meaning) -> Permission:
    return Permission(roles, frozenset({default, *others}), default)


_ADMIN = frozenset({Role.ADMIN})

# Keyed by stored event type; an event type missing here may be signed by no one.
PERMISSIONS: dict[str, Permission] = {
    LedgerRecord.Initialised.TOPIC: _allow(_ADMIN, Meaning.AUTHORED),
    LedgerRecord.CheckpointRecorded.TOPIC: _allow(STAFF, Meaning.REVIEWED, Meaning.APPROVED),
    LedgerRecord.Exported.TOPIC: _allow(STAFF, Meaning.REVIEWED),  # docs/EXPORTS.md
    # The committee packet (ledger/packet.py): written by site staff, countersigned by the
    # committee's clinical members, cited by the decision's signer; the audit-trail review
    # (ledger/audit_review.py) is signed by whoever reviews the trail for the sponsor.
    LedgerRecord.PacketIssued.TOPIC: _allow(
        frozenset({Role.PRINCIPAL_INVESTIGATOR, Role.INVESTIGATOR, Role.MONITOR,
                   Role.DATA_MANAGER}), Meaning.AUTHORED),
    LedgerRecord.PacketCountersigned.TOPIC: _allow(
        frozenset({Role.PRINCIPAL_INVESTIGATOR, Role.INVESTIGATOR, Role.MONITOR}),
        Meaning.REVIEWED, Meaning.APPROVED),
    LedgerRecord.PacketCited.TOPIC: _allow(
        frozenset({Role.PRINCIPAL_INVESTIGATOR, Role.INVESTIGATOR}), Meaning.APPROVED),
    LedgerRecord.AuditReviewed.TOPIC: _allow(
        frozenset({Role.PRINCIPAL_INVESTIGATOR, Role.MONITOR, Role.DATA_MANAGER}),
        Meaning.REVIEWED),
    User.Registered.TOPIC: _allow(_ADMIN, Meaning.APPROVED),
    User.RoleGranted.TOPIC: _allow(_ADMIN, Meaning.APPROVED),
    User.RoleRevoked.TOPIC: _allow(_ADMIN, Meaning.REVOKED),
    User.KeyRotated.TOPIC: _allow(_ADMIN, Meaning.APPROVED),
    User.KeyRevoked.TOPIC: _allow(_ADMIN, Meaning.REVOKED),
    User.Unlocked.TOPIC: _allow(_ADMIN, Meaning.APPROVED),
    SecurityLog.Opened.TOPIC: _allow(EVERY_ROLE, Meaning.ATTEMPTED, Meaning.AUTHORED),
    SecurityLog.AttemptRefused.TOPIC: _allow(EVERY_ROLE, Meaning.ATTEMPTED),
    # A session's start and end are the user's own statements about their access.
    SecurityLog.SessionStarted.TOPIC: _allow(EVERY_ROLE, Meaning.AUTHORED),
    SecurityLog.SessionEnded.TOPIC: _allow(EVERY_ROLE, Meaning.AUTHORED),
}


# The trial's own events.
PI = frozenset({Role.PRINCIPAL_INVESTIGATOR})
INVESTIGATORS = frozenset({Role.PRINCIPAL_INVESTIGATOR, Role.INVESTIGATOR})
SITE_STAFF = INVESTIGATORS | {Role.MONITOR, Role.DATA_MANAGER}


_RECORDED = (Meaning.RECORDED, Meaning.REVIEWED)
# Trial-side consequences carry the meaning of the patient event they are signed with.
_CONSEQUENCE = (Meaning.RECORDED, Meaning.REVIEWED, Meaning.APPROVED)
PERMISSIONS.update(
    {
        Trial.Registered.TOPIC: _allow(PI | {Role.ADMIN}, Meaning.APPROVED),
        # Trial-side consequences are co-signed in the same batch as the patient event.
        Trial.PatientAssigned.TOPIC: _allow(SITE_STAFF, *_CONSEQUENCE),
        Trial.CohortDecided.TOPIC: _allow(INVESTIGATORS, Meaning.APPROVED),
        Trial.CohortDecisionOverridden.TOPIC: _allow(PI, Meaning.APPROVED),
        # Closing the trial ends its data collection: the principal investigator approves.
        Trial.Closed.TOPIC: _allow(PI, Meaning.APPROVED),
        # A second signature on a decision: the protocol names which of these roles gives
        # it (domain/co_signatures.py), checked by ledger/co_signing.py and by verify.
        Trial.DecisionCoSigned.TOPIC: _allow(frozenset(CO_SIGNER_ROLES), Meaning.APPROVED,
                                             Meaning.REVIEWED),
        # The same for a DLT adjudication the protocol asks a second signer for.
        Patient.AdjudicationCoSigned.TOPIC: _allow(frozenset(CO_SIGNER_ROLES),
                                                   Meaning.APPROVED, Meaning.REVIEWED),
        Patient.ConsentSigned.TOPIC: _allow(SITE_STAFF, *_RECORDED),
        Patient.Reconsented.TOPIC: _allow(SITE_STAFF, *_RECORDED),
        Patient.ScreeningRecorded.TOPIC: _allow(SITE_STAFF, *_RECORDED),
        Patient.Enrolled.TOPIC: _allow(SITE_STAFF, *_RECORDED),
        Patient.DoseGiven.TOPIC: _allow(SITE_STAFF, *_RECORDED),
        # A dose modification is a clinical judgement: an investigator signs it.
        Patient.DoseChanged.TOPIC: _allow(INVESTIGATORS, Meaning.APPROVED),
        Patient.AdverseEventReported.TOPIC: _allow(SITE_STAFF, *_RECORDED),
        Patient.DltAdjudicated.TOPIC: _allow(INVESTIGATORS, Meaning.APPROVED),
        Patient.DltRuleOverridden.TOPIC: _allow(PI, Meaning.APPROVED),
        Patient.CourseCompleted.TOPIC: _allow(SITE_STAFF, *_RECORDED),
        Patient.ResponseAssessed.TOPIC: _allow(SITE_STAFF, *_RECORDED),
        Patient.ObservationRecorded.TOPIC: _allow(SITE_STAFF, *_RECORDED),
        Patient.LabRecorded.TOPIC: _allow(SITE_STAFF, *_RECORDED),
        # Site staff and monitors record deviations (SITE_STAFF holds monitors); con-meds
        # are data entry.
        Patient.DeviationRecorded.TOPIC: _allow(SITE_STAFF, *_RECORDED),
        Patient.ConmedRecorded.TOPIC: _allow(SITE_STAFF, *_RECORDED),
        Patient.ConsentWithdrawn.TOPIC: _allow(SITE_STAFF, *_RECORDED),
        Patient.WithdrewFromTreatment.TOPIC: _allow(SITE_STAFF, *_RECORDED),
        Patient.WentOffStudy.TOPIC: _allow(SITE_STAFF, *_RECORDED),
        Patient.FollowUpRecorded.TOPIC: _allow(SITE_STAFF, *_RECORDED),
        # A correction is data entry, unless what it corrects is a clinical judgement:
        # then it is signed by whoever may make that judgement (see `action_of`).
        Patient.Corrected.TOPIC: _allow(SITE_STAFF, Meaning.CORRECTED),
    }
)

# Corrections whose signers depend on the corrected record's kind, keyed by that kind.
# A kind missing here is data entry, signed as `Patient.Corrected` itself.
JUDGEMENT_CORRECTIONS: dict[str, Permission] = {
    DltAdjudication.KIND: _allow(INVESTIGATORS, Meaning.CORRECTED),
}
CORRECTION_OF = " of a "


def correction_action(kind: str) -> str:
    """The permission key of a correction of one kind of record."""
    return f"{Patient.Corrected.TOPIC}{CORRECTION_OF}{kind}"


PERMISSIONS.update(
    {correction_action(kind): p for kind, p in JUDGEMENT_CORRECTIONS.items()}
)


def action_of(event_type: str, payload: Mapping[str, Any]) -> str:
    """What an entry asks its signer's authority for: its event type, or for a correction
    of a clinical judgement, the correction of that kind (its payload's `kind`)."""
    if event_type == Patient.Corrected.TOPIC:
        kind = payload.get("kind")
        if isinstance(kind, str) and kind in JUDGEMENT_CORRECTIONS:
            return correction_action(kind)
    return event_type


# Source data verification and data queries (domain/review.py, domain/queries.py). A review
# is a monitor's: source data verification is the monitor's task, and a data manager, who
# sees no source documents, raises queries instead. Site investigators answer queries; the
# raiser or a data manager closes or reopens them (checked in domain/queries.py).
MONITORS = frozenset({Role.MONITOR})
QUERY_RAISERS = frozenset({Role.MONITOR, Role.DATA_MANAGER})
REVIEW_EVENT_TYPES = (Patient.RecordsReviewed.TOPIC,)
QUERY_EVENT_TYPES = (
    Patient.QueryRaised.TOPIC, Patient.QueryAnswered.TOPIC,
    Patient.QueryClosed.TOPIC, Patient.QueryReopened.TOPIC,
)
PERMISSIONS.update(
    {
        Patient.RecordsReviewed.TOPIC: _allow(MONITORS, Meaning.REVIEWED),
        Patient.QueryRaised.TOPIC: _allow(QUERY_RAISERS, Meaning.REVIEWED),
        Patient.QueryAnswered.TOPIC: _allow(INVESTIGATORS, Meaning.RECORDED),
        Patient.QueryClosed.TOPIC: _allow(QUERY_RAISERS, Meaning.REVIEWED),
        Patient.QueryReopened.TOPIC: _allow(QUERY_RAISERS, Meaning.REVIEWED),
    }
)


# What trialctl itself signs: the table FORMAT.md documents, whatever is registered later.
BUILT_IN_ACTIONS = frozenset(PERMISSIONS)


def register_permissions(permissions: Mapping[str, Permission]) -> None:
    """Add the permissions of another module's event types (a benchmark's or a plug-in's)."""
    for event_type, permission in permissions.items():
        if event_type in PERMISSIONS and PERMISSIONS[event_type] != permission:
            raise ValueError(f"conflicting permission for {event_type}")
        PERMISSIONS[event_type] = permission


def choose_role(user: User, event_types: list[str], prefer: str | None = None) -> str | None:
    """The signer's role for a batch: the first of the user's roles allowed every type
    (`prefer` first, when they hold it)."""
    ordered = sorted(user.roles, key=lambda r: r != prefer) if prefer else list(user.roles)
    for role in ordered:
        permitted = (PERMISSIONS.get(t) for t in event_types)
        if all(p is not None and role in p.roles for p in permitted):
            return role
    return None


def choose_meaning(event_types: list[str]) -> Meaning:
    """The meaning of a batch's one signature: the first default that fits every type."""
    permissions = [p for p in map(PERMISSIONS.get, event_types) if p is not None]
    for candidate in (p.default_meaning for p in permissions):
        if all(candidate in p.meanings for p in permissions):
            return candidate
    return permissions[0].default_meaning if permissions else Meaning.RECORDED


def check_signature_authority(
    user: User | None,
    actor: Mapping[str, str],
    event_type: str,
    meaning: str,
    payload: Mapping[str, Any] | None = None,
) -> str | None:
    """Why this signer may not sign this event now, or None when they may.

    `user` is the signer's record as it stands at the event's position; `payload` the
    event's, which decides what a correction asks for (`action_of`).
    """
    event_type = action_of(event_type, payload if isinstance(payload, Mapping) else {})
    if user is None:
        return f"user {actor.get('user_id')!r} is not registered"
    if actor["name"] != user.name:
        return f"printed name {actor['name']!r} is not the registered {user.name!r}"
    if actor["key_id"] in user.revoked_keys:
        return f"key {actor['key_id'][:16]}… of {user.user_id} was revoked"
    if not user.active:
        return f"user {user.user_id} is deactivated"
    if actor["key_id"] != user.key_id:
        return f"key {actor['key_id'][:16]}… is not the current key of {user.user_id}"
    if actor["role"] not in user.roles:
        return f"{user.user_id} does not hold the role {actor['role']!r}"
    permission = PERMISSIONS.get(event_type)
    if permission is None:
        return f"no role may record {event_type}"
    if actor["role"] not in permission.roles:
        return f"role {actor['role']!r} may not record {event_type}"
    if meaning not in permission.meanings:
        return f"meaning {meaning!r} does not apply to {event_type}"
    return None


def check_bootstrap(first: Mapping[str, object], second: Mapping[str, object]) -> str | None:
    """The two entries that open a ledger: its identity and its first admin, self-signed.

    Nobody exists yet to sign the first admin's registration, so that one entry (and the
    ledger identity before it) is signed by the key it registers, and by nothing else.
    """
    if first.get("type") != LedgerRecord.Initialised.TOPIC or first.get("position") != 0:
        return "a ledger must open with its identity at position 0"
    if second.get("type") != User.Registered.TOPIC or second.get("position") != 1:
        return "the ledger's first admin must be registered at position 1"
    payload = second.get("payload")
    actor = second.get("actor")
    if not isinstance(payload, Mapping) or not isinstance(actor, Mapping):
        return "the first admin's registration is malformed"
    roles = payload.get("roles")
    if not isinstance(roles, list) or Role.ADMIN not in roles:
        return "the first registered user must be an admin"
    for statement in (first, second):
        if statement.get("actor") != actor:
            return "the opening entries must be signed by the first admin"
        if statement.get("meaning") != Meaning.AUTHORED:
            return "the opening entries are signed with the meaning 'authored'"
    expected = {
        "user_id": payload.get("user_id"),
        "name": payload.get("name"),
        "role": Role.ADMIN.value,
        "key_id": payload.get("key_id"),
    }
    if dict(actor) != expected:
        return "the opening entries must be signed by the key they register"
    return None


def _roles_text(roles: frozenset[Role]) -> str:
    for name, group in (("every role", EVERY_ROLE), ("STAFF", STAFF), ("SITE", SITE_STAFF)):
        if roles == group:
            return name
    return ", ".join(role.value for role in Role if role in roles)


def permission_table() -> str:
    """FORMAT.md section 8's table of who may sign what, written from PERMISSIONS."""
    lines = [
        "| event type | roles that may sign | allowed meanings (default first) |",
        "| --- | --- | --- |",
    ]
    for action, permission in PERMISSIONS.items():
        if action not in BUILT_IN_ACTIONS:
            continue
        others = [m for m in Meaning if m in permission.meanings - {permission.default_meaning}]
        meanings = ", ".join(f"`{m.value}`" for m in [permission.default_meaning, *others])
        event_type, of, kind = action.partition(CORRECTION_OF)
        shown = f"`{event_type}` of a `{kind}` record" if of else f"`{event_type}`"
        lines.append(f"| {shown} | {_roles_text(permission.roles)} | {meanings} |")
    return "\n".join(lines) + "\n"
