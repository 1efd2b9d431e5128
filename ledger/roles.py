"""The roles a user may hold (declared in `domain/roles.py`, which protocol files also
name) and the meanings a signature may carry.

Kept apart from `authority` (which needs the aggregates) so that the CLI can name them in its
help without loading the event-sourcing stack.
"""

from __future__ import annotations

from enum import StrEnum

from trialctl.domain.roles import Role

__all__ = ["Meaning", "Role"]


class Meaning(StrEnum):
    """What a signature means (21 CFR 11.50(a)(3))."""

    RECORDED = "recorded"
    REVIEWED = "reviewed"
    APPROVED = "approved"
    CORRECTED = "corrected"
    AUTHORED = "authored"
    REVOKED = "revoked"
    ATTEMPTED = "attempted"
