"""Deterministic ids: uuid5 in trialctl's namespace, so a duplicate registration lands on
the same aggregate id and is refused by the store's unique version index."""

from __future__ import annotations

from uuid import NAMESPACE_URL, uuid5

TRIALCTL_NAMESPACE = uuid5(NAMESPACE_URL, "https://trialctl.dev/ids")
