"""Whether the signer may sign each entry of a batch, judged inside the append's transaction.

The recorder numbers, chains and seals a batch, and only then knows the statements that
`verify` will judge; so the judging happens there, before anything is written. The
application hands the recorder this object with each save, as a value: the recorder calls
it and knows nothing of the application, and the rules stay in `authority`. The records it
judges by are the users' signed entries, each verified (`verified_users`), never a row
taken on trust.
"""

from __future__ import annotations

import copy
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Mapper, StoredEvent

from trialctl.ledger.authority import check_bootstrap, check_signature_authority
from trialctl.ledger.errors import AuthorityError
from trialctl.ledger.history import advanced
from trialctl.ledger.user_rules import security_log_problem, user_event_problem
from trialctl.ledger.users import (
    SECURITY_LOG_PREFIX,
    USER_EVENT_PREFIX,
    User,
    security_log_id,
    user_aggregate_id,
)
from trialctl.ledger.verified_users import VerifiedUsers


class BatchAuthority:
    """Checks each entry against the signer's record as it stands just before that entry,
    as `verify` will: a batch that changes a user changes them for what follows."""

    def __init__(self, users: VerifiedUsers, mapper: Mapper[UUID]) -> None:
        self.users = users
        self.mapper = mapper

    def __call__(self, entries: list[tuple[dict[str, Any], StoredEvent]]) -> None:
        """Raise AuthorityError at the first entry its signer may not sign."""
        if entries and entries[0][0]["position"] == 0:
            second = entries[1][0] if len(entries) > 1 else {}
            reason = check_bootstrap(entries[0][0], second)
            if reason is not None:
                raise AuthorityError(reason)
            entries = entries[2:]
        users: dict[UUID, User | None] = {}
        for statement, sealed in entries:
            actor = statement["actor"]
            reason = check_signature_authority(
                self._as_of(users, user_aggregate_id(actor["user_id"])), actor,
                statement["type"], statement["meaning"], statement["payload"],
            )
            if reason is not None:
                raise AuthorityError(reason)
            _refuse_what_verify_reports(statement)
            if statement["type"].startswith(USER_EVENT_PREFIX):
                target = UUID(statement["aggregate_id"])
                # A copy: the batch may yet be refused, and the cache must not have moved.
                before = copy.deepcopy(self._as_of(users, target))
                reason = user_event_problem(statement, before)
                if reason is not None:
                    raise AuthorityError(reason)
                users[target] = advanced(before, [sealed], self.mapper)

    def _as_of(self, users: dict[UUID, User | None], aggregate_id: UUID) -> User | None:
        if aggregate_id not in users:
            users[aggregate_id] = self.users.current(aggregate_id)
        return users[aggregate_id]


def _refuse_what_verify_reports(statement: dict[str, Any]) -> None:
    """A security log is written only by its own user: the one whose id derives the log's
    aggregate id (verify reports any other writer)."""
    if statement["type"].startswith(SECURITY_LOG_PREFIX):
        writer = statement["actor"]["user_id"]
        if statement["aggregate_id"] != str(security_log_id(writer)):
            raise AuthorityError(f"{writer} may not write another user's security log")
        reason = security_log_problem(statement, writer)
        if reason is not None:
            raise AuthorityError(reason)
