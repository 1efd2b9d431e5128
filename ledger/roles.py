"""The roles a user may hold and the meanings a signature may carry.

Kept apart from `authority` (which needs the aggregates) so that the CLI can name them in its
help without loading the event-sourcing stack.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    PRINCIPAL_INVESTIGATOR = "principal-investigator"
    INVESTIGATOR = "investigator"
    MONITOR = "monitor"
    DATA_MANAGER = "data-manager"
    AUDITOR = "auditor"  # reads and verifies; signs nothing but its own refusals


class Meaning(StrEnum):
    """What a signature means (21 CFR 11.50(a)(3))."""

    RECORDED = "recorded"
    REVIEWED = "reviewed"
    APPROVED = "approved"
    CORRECTED = "corrected"
    AUTHORED = "authored"
    REVOKED = "revoked"
    ATTEMPTED = "attempted"
