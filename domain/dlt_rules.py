"""Whether an adverse event meets the protocol DLT rule an adjudication names.

Every input the rule reads is checked and each unmet one is named: the toxicity (the
category or specific toxicity of the AE's coded CTCAE term), the minimum grade, the allowed
attributions, the duration (from the patient's graded lab series when the rule's toxicity
is a lab's — "grade 4 neutropenia lasting more than 5 days" reads the ANC samples — else
onset to resolution, an unresolved AE's running to the assessment date; for the
`treatment_delay` toxicity, the dose hold for toxicity from the onset to the resume, read
from the recorded dose changes) and the DLT window
(onset from the first course 1 dose, `dlt_window_days` long).

These are read from the AE as it stands now, corrections applied, each time state is
computed: a DLT whose AE is later corrected out of its rule stops counting.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from trialctl.domain.ctcae_terms import CtcaeTerms
from trialctl.domain.lab_grading import grade_duration_days
from trialctl.domain.protocol import DltRule
from trialctl.domain.rules import parse_day


@dataclass(frozen=True)
class DltContext:
    """What a rule reads besides the AE itself."""

    window: tuple[date, date] | None  # None: no course 1 dose yet
    assessed_on: date  # the adjudication's date: where an unresolved AE's duration ends
    terms: CtcaeTerms
    labs: Sequence[Mapping[str, Any]] = field(default=())  # the patient's labs, graded
    dose_changes: Sequence[Mapping[str, Any]] = field(default=())  # holds, resumes, ...


# A rule naming this toxicity is met by the patient's dose holds, not by a CTCAE term.
DELAY_TOXICITY = "treatment_delay"


# The lab whose CTCAE grade measures a specific toxicity a DLT rule may name.
LAB_FOR_TOXICITY = {"neutropenia": "anc", "thrombocytopenia": "platelets"}


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
    delay = rule.toxicity == DELAY_TOXICITY
    if delay:
        held = toxicity_delay(ae, context)
        if held is None:
            unmet.append(f"toxicity {DELAY_TOXICITY}: no dose hold for toxicity from the "
                         f"onset {ae['onset']}")
    elif rule.toxicity is not None:
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
    if rule.duration_days_more_than is not None and not (delay and held is None):
        from_labs = None if delay else _lab_duration(rule, ae, context)
        if delay and held is not None:
            days, source = held
        elif from_labs is not None:
            days, source = from_labs
        else:
            days = duration_days(ae, context.assessed_on)
            until = "resolution" if ae.get("resolved_on") else "assessment"
            source = f"from onset to {until}"
        if days <= rule.duration_days_more_than:
            unmet.append(f"duration more than {rule.duration_days_more_than} days: "
                         f"{days} days {source}")
    onset = parse_day(ae["onset"], "onset")
    if context.window is None:
        unmet.append("DLT window: no course 1 dose before the onset")
    else:
        start, end = context.window
        if not start <= onset <= end:
            unmet.append(f"DLT window {start}..{end}: onset {onset}")
    return unmet


def toxicity_delay(ae: Mapping[str, Any], context: DltContext) -> tuple[int, str] | None:
    """The longest dose hold for toxicity begun on or after the AE's onset: its days to the
    resume (to the assessment date while still held, or once discontinued), and where
    they come from; None when treatment was not held for toxicity since the onset."""
    onset = parse_day(ae["onset"], "onset")
    holds: list[tuple[int, str]] = []
    held_since: date | None = None
    for change in sorted(context.dose_changes, key=lambda c: (c["effective_on"], c["version"])):
        effective = parse_day(change["effective_on"], "effective date")
        if effective > context.assessed_on:
            break
        if held_since is not None and change["action"] == "resume":
            holds.append(((effective - held_since).days,
                          f"held for toxicity from {held_since} to the resume on {effective}"))
            held_since = None
        elif change["action"] == "hold" and change["reason"] == "toxicity" and effective >= onset:
            held_since = effective
    if held_since is not None:
        holds.append(((context.assessed_on - held_since).days,
                      f"held for toxicity from {held_since}, not resumed by the assessment"))
    return max(holds, default=None)


def _lab_duration(
    rule: DltRule, ae: Mapping[str, Any], context: DltContext
) -> tuple[int, str] | None:
    """The days the rule's lab stayed at its grade, from onset to the assessment date, when
    the patient has samples of that lab; None when the duration must come from the AE."""
    test = LAB_FOR_TOXICITY.get(rule.toxicity or "")
    if test is None or not any(lab["test"] == test for lab in context.labs):
        return None
    onset = parse_day(ae["onset"], "onset")
    grade = rule.min_grade or 1
    days = grade_duration_days(context.labs, test, grade, onset, context.assessed_on)
    return (days or 0), f"of {test} at grade >= {grade} in the lab series"


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
