"""The infrastructure factory: eventsourcing-sqlalchemy's, with the signed recorder."""

from __future__ import annotations

from trialctl.ledger.recorder import SignedRecorder
from trialctl.ledger.sqlalchemy_store import SQLAlchemyFactory


class LedgerFactory(SQLAlchemyFactory):
    application_recorder_class = SignedRecorder
