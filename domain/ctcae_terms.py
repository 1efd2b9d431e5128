"""CTCAE adverse-event terms, held as data: each term's category and, where a DLT rule names
one, its specific toxicity. A protocol's `[dlt] ctcae_version` chooses the term list.

The lists ship with trialctl as package data (`protocols/ctcae_v<major>.toml`, sources in
their headers). Reading them is reading reference data fixed at release, like a constant,
so it is allowed here although domain/ otherwise takes everything as an argument.
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from trialctl.domain.rules import TrialRuleError

HAEMATOLOGIC = "haematologic"
NON_HAEMATOLOGIC = "non_haematologic"
CATEGORIES = (HAEMATOLOGIC, NON_HAEMATOLOGIC)

# The term-list file for each CTCAE version a protocol may name.
_FILES = {"3.0": "ctcae_v3.toml", "5.0": "ctcae_v5.toml"}


@dataclass(frozen=True)
class CtcaeTerm:
    term: str
    section: str  # the CTCAE chapter it is listed under, e.g. "BLOOD/BONE MARROW"
    category: str  # haematologic | non_haematologic
    toxicity: str | None = None  # e.g. "neutropenia", named by a category-specific DLT rule

    def is_a(self, toxicity: str) -> bool:
        """Whether a DLT rule naming `toxicity` (a category or a specific toxicity) covers it."""
        return toxicity in (self.category, self.toxicity)


@dataclass(frozen=True)
class CtcaeTerms:
    version: str
    terms: Mapping[str, CtcaeTerm]

    def get(self, term: str) -> CtcaeTerm | None:
        return self.terms.get(term)

    def nearest(self, term: str) -> str | None:
        """The known term closest in spelling, for a refusal's hint."""
        by_lower = {known.lower(): known for known in self.terms}
        found = difflib.get_close_matches(term.lower(), list(by_lower), n=1, cutoff=0.0)
        return by_lower[found[0]] if found else None

    def check(self, term: str) -> CtcaeTerm:
        """The coded term, or a refusal naming the nearest known one."""
        known = self.get(term)
        if known is None:
            nearest = self.nearest(term)
            hint = f"; nearest: {nearest!r}" if nearest else ""
            raise TrialRuleError(
                "ctcae-term",
                f"{term!r} is not a CTCAE v{self.version} term{hint} "
                "(record an uncoded term with --uncoded)",
            )
        return known

    @property
    def toxicities(self) -> frozenset[str]:
        """Every category and specific toxicity a DLT rule can name."""
        return frozenset(CATEGORIES) | {t.toxicity for t in self.terms.values() if t.toxicity}


def parse_terms(text: str) -> CtcaeTerms:
    data = tomllib.loads(text)
    terms: dict[str, CtcaeTerm] = {}
    for entry in data["terms"]:
        term = _term(entry)
        if term.term in terms:
            raise ValueError(f"CTCAE term {term.term!r} is listed twice")
        terms[term.term] = term
    return CtcaeTerms(str(data["version"]), terms)


def _term(entry: dict[str, Any]) -> CtcaeTerm:
    category = entry["category"]
    if category not in CATEGORIES:
        raise ValueError(f"CTCAE term {entry['term']!r}: category {category!r} is unknown")
    return CtcaeTerm(entry["term"], entry["section"], category, entry.get("toxicity"))


@cache
def terms_for(ctcae_version: str) -> CtcaeTerms:
    """The shipped term list of a protocol's CTCAE version."""
    name = _FILES.get(ctcae_version)
    if name is None:
        raise TrialRuleError(
            "ctcae-version",
            f"no CTCAE v{ctcae_version} term list ships with trialctl "
            f"(known: {', '.join(_FILES)})",
        )
    text = resources.files("trialctl.protocols").joinpath(name).read_text(encoding="utf-8")
    return parse_terms(text)
