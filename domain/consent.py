"""Informed-consent form versions: which the protocol lists, which are current, and what a
patient's consent history says about them.

A protocol's `[consent]` section lists each version of the form the ethics committee
approved, with its approval date, and marks those patients must have signed now
(`current = true`). A patient consents once, then again to each amended version: the
first signature opens the record, each later one is a re-consent. A patient whose latest
signature is not to a current version is due to re-consent; that is derived when state
is read, never stored.

    [consent]
    [[consent.versions]]
    version = "2.1"
    approved_on = "2025-06-02"
    current = true
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from trialctl.domain.protocol_values import Table, fail, read_bool, read_str, refuse_duplicates
from trialctl.domain.rules import TrialRuleError

__all__ = ["ConsentForms", "ConsentVersion", "consent_history", "read_consent"]

_CONSENT_KEYS = ("versions",)
_VERSION_KEYS = ("version", "approved_on", "current")


@dataclass(frozen=True)
class ConsentVersion:
    version: str
    approved_on: date
    current: bool

    def to_dict(self) -> dict[str, object]:
        return {
            "version": self.version,
            "approved_on": self.approved_on.isoformat(),
            "current": self.current,
        }


@dataclass(frozen=True)
class ConsentForms:
    """The consent form versions a protocol lists, oldest first."""

    versions: tuple[ConsentVersion, ...]

    @property
    def current(self) -> tuple[str, ...]:
        return tuple(v.version for v in self.versions if v.current)

    def version(self, version: str) -> ConsentVersion:
        """The listed version; refused when the protocol does not list it."""
        for listed in self.versions:
            if listed.version == version:
                return listed
        known = ", ".join(v.version for v in self.versions)
        raise TrialRuleError(
            "consent-version", f"consent version {version!r} is not in the protocol ({known})"
        )

    def check_signed(self, version: str, signed_on: date) -> None:
        """A form can be signed only once the committee approved it."""
        listed = self.version(version)
        if signed_on < listed.approved_on:
            raise TrialRuleError(
                "consent-version",
                f"consent version {version} was approved on {listed.approved_on}, "
                f"after the signature ({signed_on})",
            )

    def to_dict(self) -> dict[str, object]:
        return {"versions": [v.to_dict() for v in self.versions]}


def consent_history(
    signatures: Sequence[dict[str, Any]], forms: ConsentForms | None, taking_part: bool = True
) -> dict[str, Any]:
    """The patient's consents in order, and whether a re-consent is due: the patient still
    takes part and their latest signature is to a version the protocol no longer marks
    current. Without a `[consent]` section the protocol names no current version, and
    nothing is due; nor is it for a patient who died, went off study or withdrew consent."""
    history = [
        {
            "version": s["version"],
            "consent_version": s["consent_version"],
            "signed_on": s["signed_on"],
            "reconsent": index > 0,
        }
        for index, s in enumerate(signatures)
    ]
    latest = history[-1]["consent_version"] if history else None
    due = (taking_part and forms is not None and latest is not None
           and latest not in forms.current)
    return {
        "consents": history,
        "reconsent_due": due,
        "current_versions": [] if forms is None else list(forms.current),
    }


def read_consent(root: Table) -> ConsentForms | None:
    """The `[consent]` section, or None when the protocol has none."""
    if not root.has("consent"):
        return None
    section = Table(root.req("consent"), "consent", _CONSENT_KEYS)
    tables = section.tables("versions", _VERSION_KEYS, required=True)
    versions = tuple(_read_version(t) for t in tables)
    refuse_duplicates(
        [(t.at("version"), v.version) for t, v in zip(tables, versions, strict=True)],
        "consent version",
    )
    if not any(v.current for v in versions):
        fail("consent.versions", "no version is marked current = true")
    return ConsentForms(versions)


def _read_version(t: Table) -> ConsentVersion:
    version = read_str(t.req("version"), t.at("version")).strip()
    if not version:
        fail(t.at("version"), "a consent version needs a name")
    approved = t.req("approved_on")
    if isinstance(approved, date):
        day = approved
    else:
        text = read_str(approved, t.at("approved_on"))
        try:
            day = date.fromisoformat(text)
        except ValueError:
            fail(t.at("approved_on"), f"{text!r} is not a date (YYYY-MM-DD)")
    return ConsentVersion(version, day, read_bool(t.req("current"), t.at("current")))
