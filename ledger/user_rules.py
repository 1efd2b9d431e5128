"""What a user record may say, given the user as it stands: the same rules refuse a write
(`BatchAuthority`) and make a planted entry a finding (`verify`).

A role granted must be a known role the user does not hold; a role revoked, one they hold;
a key revoked, one they held and that is not revoked already; a key registered or rotated
in, 32 bytes whose id is its SHA-256. A security log is written only by its own user.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from trialctl.ledger.keys import key_id_of
from trialctl.ledger.roles import Role
from trialctl.ledger.users import SecurityLog, User

PUBLIC_KEY_HEX = re.compile(r"[0-9a-f]{64}")
ROLE_NAMES = frozenset(role.value for role in Role)
PAYLOAD_FIELDS = {
    User.Registered.TOPIC: {"user_id", "name", "roles", "public_key", "key_id",
                            "originator_topic"},
    User.RoleGranted.TOPIC: {"role"},
    User.RoleRevoked.TOPIC: {"role"},
    User.KeyRotated.TOPIC: {"public_key", "key_id"},
    User.KeyRevoked.TOPIC: {"key_id", "reason"},
    User.Unlocked.TOPIC: {"failed_attempts"},
}
STRING_FIELDS = ("user_id", "name", "role", "public_key", "key_id", "reason")


def user_event_problem(statement: Mapping[str, Any], user: User | None) -> str | None:
    """Why this user event may not be applied to `user` (None when it may)."""
    event_type, payload = statement["type"], statement["payload"]
    expected = PAYLOAD_FIELDS.get(event_type)
    if expected is None:
        return f"{event_type} is not a user event"
    if set(payload) != expected:
        return f"{event_type} payload must hold exactly {', '.join(sorted(expected))}"
    for name in STRING_FIELDS:
        if name in payload and not isinstance(payload[name], str):
            return f"payload {name} is not a string"
    if event_type == User.Registered.TOPIC:
        return _registration_problem(payload)
    if user is None:
        return "the user was never registered"
    if event_type == User.RoleGranted.TOPIC:
        if payload["role"] not in ROLE_NAMES:
            return f"{payload['role']!r} is not a role"
        if payload["role"] in user.roles:
            return f"{user.user_id} already holds the role {payload['role']!r}"
    elif event_type == User.RoleRevoked.TOPIC:
        if payload["role"] not in user.roles:
            return f"{user.user_id} does not hold the role {payload['role']!r}"
    elif event_type == User.KeyRotated.TOPIC:
        problem = _key_problem(payload)
        if problem is None and user.public_key_for(payload["key_id"]) is not None:
            problem = f"{user.user_id} already held key {payload['key_id'][:16]}…"
        return problem
    elif event_type == User.Unlocked.TOPIC:
        attempts = payload["failed_attempts"]
        if not isinstance(attempts, list) or not all(
            isinstance(a, dict) and set(a) == {"at", "action", "reason"}
            and all(isinstance(v, str) for v in a.values()) for a in attempts
        ):
            return "payload failed_attempts is not a list of {at, action, reason} strings"
    elif event_type == User.KeyRevoked.TOPIC:
        key_id = payload["key_id"]
        if user.public_key_for(key_id) is None:
            return f"{user.user_id} does not hold key {key_id[:16]}…"
        if key_id in user.revoked_keys:
            return f"key {key_id[:16]}… of {user.user_id} is already revoked"
    return None


def _registration_problem(payload: Mapping[str, Any]) -> str | None:
    roles = payload["roles"]
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        return "payload roles is not a list of role names"
    unknown = sorted(set(roles) - ROLE_NAMES)
    if unknown:
        return f"{', '.join(map(repr, unknown))} is not a role"
    if payload["originator_topic"] != User.TOPIC:
        return f"originator_topic is not {User.TOPIC!r}"
    return _key_problem(payload)


def _key_problem(payload: Mapping[str, Any]) -> str | None:
    public_key, key_id = payload["public_key"], payload["key_id"]
    if PUBLIC_KEY_HEX.fullmatch(public_key) is None:
        return "public_key is not 64 lower-case hex digits (32 bytes)"
    if key_id_of(bytes.fromhex(public_key)) != key_id:
        return "key_id is not the SHA-256 of public_key"
    return None


def security_log_problem(statement: Mapping[str, Any], owner: str | None) -> str | None:
    """Why this entry may not be in the security log of `owner` (whose it is)."""
    if statement["type"] == SecurityLog.Opened.TOPIC:
        owner = statement["payload"].get("user_id")
    if statement["actor"]["user_id"] != owner:
        return (f"{statement['actor']['user_id']} may not write the security log of "
                f"{owner!r}: only its own user does")
    return None
