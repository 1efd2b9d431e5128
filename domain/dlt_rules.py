"""Whether an adverse event meets the protocol DLT rule an adjudication names.

Every input the rule reads is checked and each unmet one is named: the toxicity (the
category or specific toxicity of the AE's coded CTCAE term), the minimum grade, the allowed
attributions, the duration (onset to resolution; an unresolved AE's runs to the assessment
date) and the DLT window (onset from the first course 1 dose, `dlt_window_days` long).

These are read from the AE as it stands now, corrections applied, each time state is
computed: a DLT whose AE is later corrected out of its rule stops counting.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from trialctl.domain.ctcae_terms import CtcaeTerms
from trialctl.domain.protocol import DltRule
from trialctl.domain.rules import parse_day


@dataclass(frozen=True)
class DltContext:
    """What a rule reads besides the AE itself."""

    window: tuple[date, date] | None  # None: no course 1 dose yet
    assessed_on: date  # the adjudication's date: where an unresolved AE's duration ends
    terms: CtcaeTerms


def duration_days(ae: Mapping[str, Any], assessed_on: date) -> int:
    """Days from onset to resolution (or to the assessment date while unresolved)."""
    onset = parse_day(ae["onset"], "onset")
    resolved = ae.get("resolved_on")
    end = assessed_on if resolved is None else parse_day(resolved, "resolution date")
    return (end - onset).days


def unmet_conditions(rule: DltRule, ae: Mapping[str, Any], context: DltContext) -> list[str]:
    """Each condition of `rule` the AE does not meet, named with the value it has; empty
    when the AE meets the rule."""
    unmet: list[str] = []
    if rule.toxicity is not None:
        problem = _toxicity_problem(rule.toxicity, ae, context.terms)
        if problem:
            unmet.append(f"toxicity {rule.toxicity}: {problem}")
    grade = ae["grade"]
    if rule.min_grade is not None and grade < rule.min_grade:
        unmet.append(f"min_grade {rule.min_grade}: grade {grade}")
    if rule.attributions and ae["attribution"] not in rule.attributions:
        unmet.append(
            f"attributions {'/'.join(rule.attributions)}: attribution {ae['attribution']}"
        )
    if rule.duration_days_more_than is not None:
        days = duration_days(ae, context.assessed_on)
        if days <= rule.duration_days_more_than:
            until = "resolution" if ae.get("resolved_on") else "assessment"
            unmet.append(
                f"duration more than {rule.duration_days_more_than} days: "
                f"{days} days from onset to {until}"
            )
    onset = parse_day(ae["onset"], "onset")
    if context.window is None:
        unmet.append("DLT window: no course 1 dose before the onset")
    else:
        start, end = context.window
        if not start <= onset <= end:
            unmet.append(f"DLT window {start}..{end}: onset {onset}")
    return unmet


def _toxicity_problem(toxicity: str, ae: Mapping[str, Any], terms: CtcaeTerms) -> str | None:
    term = ae["term"]
    if not ae.get("coded", True):
        return f"term {term!r} is uncoded"
    known = terms.get(term)
    if known is None:
        return f"term {term!r} is not a CTCAE v{terms.version} term"
    if toxicity not in terms.toxicities:
        return f"no CTCAE v{terms.version} term records {toxicity}"
    if known.is_a(toxicity):
        return None
    specific = f", {known.toxicity}" if known.toxicity else ""
    return f"{term!r} is {known.category}{specific}"


def describe_unmet(ae_id: str, rule_code: str, unmet: list[str]) -> str:
    """One line naming every unmet condition."""
    return f"adverse event {ae_id} does not meet rule {rule_code}: {'; '.join(unmet)}"
