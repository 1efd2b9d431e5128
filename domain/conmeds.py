"""Concomitant medications the protocol prohibits or restricts, held as data.

A protocol's `[[concomitant_medications]]` entries each name a rule (e.g. "no concurrent
G-CSF"), the drug names and synonyms it covers, and, for a restricted medication, what
makes a use allowed: a dose no higher than a limit (mini-dose warfarin, 1 mg/day), or a
route outside the prohibited ones (oral antibiotics, where only parenteral ones are
prohibited). A con-med whose record cannot show it is allowed (no dose, another unit, no
route) is flagged: the site corrects the record, or records the deviation.

Whether a con-med breaks a rule is derived whenever the patient's state is read, from the
con-med's current values and the study period; it is never stored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any


@dataclass(frozen=True)
class ConmedRule:
    """One prohibited or restricted medication of the protocol."""

    code: str
    text: str
    drugs: tuple[str, ...]  # names and synonyms, matched case-insensitively
    allowed_max_dose: Decimal | None = None  # restricted: allowed up to this dose ...
    allowed_unit: str | None = None  # ... in this unit
    routes: tuple[str, ...] = ()  # prohibited by these routes only; empty: by any route

    def covers(self, drug: str) -> bool:
        return drug.strip().casefold() in {name.casefold() for name in self.drugs}

    def breach(self, conmed: Mapping[str, Any]) -> str | None:
        """Why this use of a drug the rule covers is not allowed, or None when it is."""
        if self.routes:
            route = conmed.get("route")
            if route is None:
                return f"prohibited by route {', '.join(self.routes)}; no route recorded"
            if str(route).casefold() not in {r.casefold() for r in self.routes}:
                return None
        if self.allowed_max_dose is None:
            return "prohibited" if not self.routes else f"given {conmed['route']}"
        limit = f"allowed up to {self.allowed_max_dose} {self.allowed_unit}"
        dose, unit = conmed.get("dose"), conmed.get("unit")
        if dose is None:
            return f"{limit}; no dose recorded"
        if unit != self.allowed_unit:
            return f"{limit}; dose recorded in {unit}"
        if Decimal(str(dose)) > self.allowed_max_dose:
            return f"{limit}; given {dose} {unit}"
        return None

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"code": self.code, "text": self.text, "drugs": list(self.drugs)}
        if self.allowed_max_dose is not None:
            out["allowed_max_dose"] = str(self.allowed_max_dose)
            out["allowed_unit"] = self.allowed_unit
        if self.routes:
            out["routes"] = list(self.routes)
        return out


@dataclass(frozen=True)
class ProhibitedUse:
    """A con-med taken during the study period against a rule of the protocol."""

    version: int  # the con-med's record version
    rule: ConmedRule
    why: str
    text: str


def prohibited_uses(
    conmeds: Iterable[Mapping[str, Any]],
    rules: Iterable[ConmedRule],
    study_start: date | None,
    study_end: date | None,
) -> list[ProhibitedUse]:
    """Each con-med that breaks a rule while the patient is on study: from enrollment
    (`study_start`; none before it) to leaving the study (`study_end`; None while on it).
    A con-med stopped the day before enrollment is outside; one stopped on that day is in."""
    if study_start is None:
        return []
    found = []
    rules = tuple(rules)
    for conmed in conmeds:
        start = date.fromisoformat(conmed["start"])
        stop = None if conmed["stop"] is None else date.fromisoformat(conmed["stop"])
        if (stop is not None and stop < study_start) or (
            study_end is not None and start > study_end
        ):
            continue
        for rule in rules:
            why = rule.breach(conmed) if rule.covers(conmed["drug"]) else None
            if why is not None:
                taken = f"{start}..{stop or 'ongoing'}"
                found.append(ProhibitedUse(
                    int(conmed["version"]), rule, why,
                    f"{conmed['drug']} ({taken}) during the study: {rule.text} ({why})",
                ))
    return found
