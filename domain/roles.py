"""The roles a person may hold in a trial: named by protocol files (who co-signs what) as
well as by the ledger's users, so they are declared here, with no dependency."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    PRINCIPAL_INVESTIGATOR = "principal-investigator"
    INVESTIGATOR = "investigator"
    MONITOR = "monitor"
    DATA_MANAGER = "data-manager"
    AUDITOR = "auditor"  # reads and verifies; signs nothing but its own refusals
