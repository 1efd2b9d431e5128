"""The infrastructure factory: eventsourcing-sqlalchemy's, with the signed recorder."""

from __future__ import annotations

from eventsourcing_sqlalchemy.factory import SQLAlchemyFactory

from trialctl.ledger.recorder import SignedRecorder


class LedgerFactory(SQLAlchemyFactory):
    application_recorder_class = SignedRecorder
