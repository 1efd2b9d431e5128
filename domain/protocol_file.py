"""The protocol file: a strict TOML loader, one reader per table.

A protocol file declares (see ``protocols/NCT00084513.toml`` for a commented example)::

    id, title, [phase], [source], [planned_accrual], course_length_days, start_level
    [[agents]]        name, role ("escalated"|"fixed"), route, schedule, days, frequency,
                      unit, and for a fixed agent [[agents.doses]] name, dose,
                      first_course, [last_course]
    [[dose_levels]]   level, dose, unit, [label], [frequency]
    [design]          name ("3+3"), cohort_size, max_per_level, allow_deescalation,
                      dlt_window_courses | dlt_window_days
    [dlt]             ctcae_version, [[dlt.rules]] code, text, [toxicity], [min_grade],
                      [duration_days_more_than], [attributions]
    [[eligibility]]   code, text, kind, field, op, [threshold], [threshold_field], [uln],
                      [uln_field], [unit], [applies_if = {field, op, [threshold]}]
    [response]        recist_version ("1.0"|"1.1"), assessment_interval_weeks, window_days
    [[observations]]  code, name, value_type ("count"|"decimal"|"categorical"), [unit],
                      [allowed_values], [method], [schedule]
    [dose_modification]  actions (reduce, hold, skip, resume, discontinue),
                      max_reduction_levels, max_hold_days, re_escalation,
                      [min_course1_dose_fraction]
    [expedited_reporting]  fatal_or_life_threatening_days, other_serious_days
    [[forms]]         name, [title], [[forms.fields]] name, type (integer | decimal |
                      boolean | text | date), [text], [unit], [min], [max], [allowed],
                      [never], [required]; the "screening" form declares every field the
                      eligibility criteria read
    [[concomitant_medications]]  code, text, drugs, [allowed_max_dose, allowed_unit],
                      [routes] (see domain/conmeds.py)
    [[co_signatures]] event_type, role, [text] (see domain/co_signatures.py)
    [end_of_study] reasons (see domain/end_of_study.py)

Clinical numbers become :class:`~decimal.Decimal`.  They are written as integers or as
strings (``"400"``, ``"2.0"``); TOML floats are refused, as are unknown keys, missing
fields and inconsistent values.  Every refusal is a :class:`ProtocolError` whose message
starts with the path of the offending field, e.g.
``dose_levels[2].dose: doses must increase (300 after 400)`` (array indices count from 0).

The model the loader builds is :mod:`trialctl.domain.protocol`; reading single values (types,
ranges, paths) is :mod:`trialctl.domain.protocol_values`, and the ``[[eligibility]]`` tables,
whose fields depend on each criterion's operator, are read by
:mod:`trialctl.domain.protocol_criteria`.  Each table is read top to bottom, in the order of
the checks below, so an author meets the refusals in the order of the file.

``protocols/protocol.schema.json`` describes the same shape as a JSON Schema, for editors;
``tests/test_protocol_schema.py`` keeps it in agreement with this loader.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import replace

from trialctl.domain.co_signature_file import read_co_signatures
from trialctl.domain.conmed_file import read_conmed_rules
from trialctl.domain.consent import read_consent
from trialctl.domain.end_of_study_file import read_end_of_study
from trialctl.domain.protocol import (
    ATTRIBUTIONS,
    DOSE_ACTIONS,
    KNOWN_DESIGNS,
    RECIST_VERSIONS,
    Agent,
    AgentRole,
    Design,
    DltDefinition,
    DltRule,
    DoseLevel,
    DoseModificationRules,
    ExpeditedReporting,
    FixedDose,
    ObservationKind,
    ObservationValueType,
    Protocol,
    ResponseSchedule,
)
from trialctl.domain.protocol_criteria import read_eligibility
from trialctl.domain.protocol_forms import check_screening_form, read_forms
from trialctl.domain.protocol_values import (
    ProtocolError,
    Table,
    TomlFloat,
    check_lengths,
    fail,
    read_bool,
    read_decimal,
    read_int,
    read_list,
    read_name,
    read_str,
    refuse_duplicates,
)
from trialctl.domain.schedule import read_schedule

__all__ = ["ProtocolError", "load_protocol", "protocol_from_dict"]

_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_RANGE_RE = re.compile(r"^\s*(\d{1,18})\s*(?:-|\.\.)\s*(\d{1,18})\s*$")

_ROOT_KEYS = (
    "id",
    "title",
    "phase",
    "source",
    "planned_accrual",
    "course_length_days",
    "start_level",
    "agents",
    "dose_levels",
    "design",
    "dlt",
    "eligibility",
    "response",
    "observations",
    "dose_modification",
    "expedited_reporting",
    "consent",
    "schedule",
    "forms",
    "concomitant_medications",
    "co_signatures",
    "end_of_study",
)
_AGENT_KEYS = ("name", "role", "route", "schedule", "days", "frequency", "unit", "doses")
_FIXED_DOSE_KEYS = ("name", "dose", "first_course", "last_course")
_DOSE_LEVEL_KEYS = ("level", "dose", "unit", "label", "frequency")
_DESIGN_KEYS = (
    "name",
    "cohort_size",
    "max_per_level",
    "allow_deescalation",
    "dlt_window_courses",
    "dlt_window_days",
)
_DLT_KEYS = ("ctcae_version", "rules")
_DLT_RULE_KEYS = (
    "code",
    "text",
    "toxicity",
    "min_grade",
    "duration_days_more_than",
    "attributions",
)
_RESPONSE_KEYS = ("recist_version", "assessment_interval_weeks", "window_days")
_DOSE_MODIFICATION_KEYS = (
    "actions",
    "max_reduction_levels",
    "max_hold_days",
    "re_escalation",
    "min_course1_dose_fraction",
)
_EXPEDITED_REPORTING_KEYS = ("fatal_or_life_threatening_days", "other_serious_days")
_OBSERVATION_KEYS = (
    "code",
    "name",
    "value_type",
    "unit",
    "allowed_values",
    "method",
    "schedule",
)


def load_protocol(text: str) -> Protocol:
    """Parse and validate a protocol written in TOML (text only: no file I/O here)."""
    try:
        data = tomllib.loads(text, parse_float=TomlFloat)
    except tomllib.TOMLDecodeError as exc:
        raise ProtocolError("<toml>", f"invalid TOML: {exc}") from exc
    except RecursionError as exc:
        raise ProtocolError("<toml>", "invalid TOML: nested too deeply") from exc
    except ValueError as exc:
        # tomllib converts integer literals itself: over 4,300 digits is Python's refusal.
        raise ProtocolError("<toml>", f"invalid TOML: {str(exc).split(';')[0]}") from exc
    check_lengths(data)
    protocol = protocol_from_dict(data)
    # A protocol file must declare the screening form its criteria read; one read back
    # from a ledger (protocol_from_dict alone) may predate forms and still reads.
    check_screening_form(protocol.forms, protocol.eligibility, required=True)
    return protocol


# Protocols parsed from stored registrations, by their content less the id: a ledger of
# many trials registers one protocol under many registry numbers, and parsing one is
# costlier than rendering a trial's rows. A Protocol is frozen, so one may be shared.
_PARSED: dict[str, Protocol] = {}
_PARSED_MAX = 64


def stored_protocol(data: Mapping[str, object]) -> Protocol:
    """`protocol_from_dict` of a registration's protocol, parsed once per content."""
    pid = data.get("id")
    key = json.dumps({k: v for k, v in data.items() if k != "id"}, sort_keys=True,
                     default=str)
    parsed = _PARSED.get(key)
    if parsed is None or not isinstance(pid, str) or not _ID_RE.match(pid):
        parsed = protocol_from_dict(data)  # checks the id too
        if len(_PARSED) >= _PARSED_MAX:
            _PARSED.clear()
        _PARSED[key] = parsed
        return parsed
    return parsed if parsed.id == pid else replace(parsed, id=pid)


def protocol_from_dict(data: Mapping[str, object]) -> Protocol:
    """Build and validate a protocol from parsed data (TOML tables or ``to_dict()``)."""
    root = Table(data, "", _ROOT_KEYS)
    pid = read_str(root.req("id"), "id")
    if not _ID_RE.match(pid):
        fail("id", f"{pid!r} must be letters, digits, '.', '_' or '-' (no spaces)")
    title = read_str(root.req("title"), "title")
    phase = root.opt_str("phase") or "I"
    source = root.opt_str("source")
    accrual_raw = root.get("planned_accrual")
    accrual = None if accrual_raw is None else read_int(accrual_raw, "planned_accrual", minimum=1)
    course_length = read_int(root.req("course_length_days"), "course_length_days", minimum=1)
    agents = _read_agents(root, course_length)
    escalated = next(a for a in agents if a.is_escalated)
    levels = _read_dose_levels(root, escalated.unit)
    start = read_int(root.req("start_level"), "start_level")
    if not 1 <= start <= len(levels):
        fail("start_level", f"level {start} is not one of the dose levels 1..{len(levels)}")
    design = _read_design(Table(root.req("design"), "design", _DESIGN_KEYS))
    dlt = _read_dlt(Table(root.req("dlt"), "dlt", _DLT_KEYS))
    eligibility = read_eligibility(root)
    response = _read_response(Table(root.req("response"), "response", _RESPONSE_KEYS))
    observations = _read_observations(root)
    modification = root.get("dose_modification")
    expedited = root.get("expedited_reporting")
    forms = read_forms(root)
    check_screening_form(forms, eligibility, required=False)
    return Protocol(
        id=pid,
        title=title,
        phase=phase,
        course_length_days=course_length,
        start_level=start,
        agents=agents,
        dose_levels=levels,
        design=design,
        dlt=dlt,
        eligibility=eligibility,
        response=response,
        observations=observations,
        source=source,
        planned_accrual=accrual,
        dose_modification=None
        if modification is None
        else _read_dose_modification(
            Table(modification, "dose_modification", _DOSE_MODIFICATION_KEYS), len(levels)
        ),
        expedited_reporting=None
        if expedited is None
        else _read_expedited_reporting(
            Table(expedited, "expedited_reporting", _EXPEDITED_REPORTING_KEYS)
        ),
        consent=read_consent(root),
        schedule=read_schedule(root, [o.code for o in observations]),
        forms=forms,
        concomitant_medications=read_conmed_rules(root),
        co_signatures=read_co_signatures(root),
        end_of_study=read_end_of_study(root),
    )


# --------------------------------------------------------------------------- [[agents]]


def _read_agents(root: Table, course_length: int) -> tuple[Agent, ...]:
    tables = root.tables("agents", _AGENT_KEYS, required=True)
    agents = [_read_agent(t, course_length) for t in tables]
    refuse_duplicates(
        [(t.at("name"), a.name) for t, a in zip(tables, agents, strict=True)], "agent"
    )
    escalated = [a for a in agents if a.is_escalated]
    if len(escalated) != 1:
        fail("agents", f"exactly one agent must have role 'escalated' (found {len(escalated)})")
    return tuple(agents)


def _read_agent(t: Table, course_length: int) -> Agent:
    role_text = read_str(t.req("role"), t.at("role"))
    try:
        role = AgentRole(role_text)
    except ValueError:
        fail(t.at("role"), f"unknown role {role_text!r} (allowed: escalated, fixed)")
    unit = read_str(t.req("unit"), t.at("unit"))
    if role is AgentRole.ESCALATED:
        if t.has("doses"):
            fail(t.at("doses"), "an escalated agent takes its doses from dose_levels")
        doses: tuple[FixedDose, ...] = ()
    else:
        doses = _read_fixed_doses(t, unit)
    return Agent(
        name=read_str(t.req("name"), t.at("name")),
        role=role,
        route=read_str(t.req("route"), t.at("route")),
        schedule=read_str(t.req("schedule"), t.at("schedule")),
        days=_read_days(t.req("days"), t.at("days"), course_length),
        frequency=read_str(t.req("frequency"), t.at("frequency")),
        unit=unit,
        doses=doses,
    )


def _read_days(value: object, path: str, course_length: int) -> tuple[int, ...]:
    """Days of the course an agent is given: a list, or a range such as ``"1-21"``."""
    if isinstance(value, str):
        m = _RANGE_RE.match(value)
        if not m:
            fail(path, f'expected a list of days or a range like "1-21", got {value!r}')
        first, last = int(m.group(1)), int(m.group(2))
        if first > last:
            fail(path, f"range {value!r} runs backwards")
        if first < 1 or last > course_length:  # before the range is built: it may be huge
            fail(path, f"days must lie within the course, 1..{course_length}")
        days = tuple(range(first, last + 1))
    else:
        items = read_list(value, path)
        days = tuple(read_int(d, f"{path}[{i}]", minimum=1) for i, d in enumerate(items))
        for i in range(1, len(days)):
            if days[i] <= days[i - 1]:
                fail(f"{path}[{i}]", f"days must increase ({days[i]} after {days[i - 1]})")
    if days[0] < 1 or days[-1] > course_length:
        fail(path, f"days must lie within the course, 1..{course_length}")
    return days


def _read_fixed_doses(agent: Table, unit: str) -> tuple[FixedDose, ...]:
    """The ``[[agents.doses]]`` of a fixed agent: together they cover every course, in order."""
    doses: list[FixedDose] = []
    tables = agent.tables("doses", _FIXED_DOSE_KEYS, required=True)
    for t in tables:
        doses.append(_read_fixed_dose(t, unit, doses[-1] if doses else None))
    if doses[-1].last_course is not None:
        fail(
            tables[-1].at("last_course"),
            "the last dose must have no last_course, so that every course has a dose",
        )
    refuse_duplicates(
        [(t.at("name"), d.name) for t, d in zip(tables, doses, strict=True)], "dose name"
    )
    return tuple(doses)


def _read_fixed_dose(t: Table, unit: str, previous: FixedDose | None) -> FixedDose:
    first = read_int(t.req("first_course"), t.at("first_course"), minimum=1)
    last_raw = t.get("last_course")
    last = None if last_raw is None else read_int(last_raw, t.at("last_course"), minimum=1)
    if last is not None and last < first:
        fail(t.at("last_course"), f"must not be before first_course ({last} < {first})")
    if previous is not None and previous.last_course is None:
        fail(t.at("first_course"), "follows a dose that has no last_course (runs forever)")
    expected_first = 1 if previous is None else (previous.last_course or 0) + 1
    if first != expected_first:
        fail(
            t.at("first_course"),
            f"doses must cover every course in order (expected {expected_first}, got {first})",
        )
    return FixedDose(
        name=read_str(t.req("name"), t.at("name")),
        dose=read_decimal(t.req("dose"), t.at("dose"), positive=True),
        unit=unit,
        first_course=first,
        last_course=last,
    )


# --------------------------------------------------------------------------- [[dose_levels]]


def _read_dose_levels(root: Table, agent_unit: str) -> tuple[DoseLevel, ...]:
    levels: list[DoseLevel] = []
    for t in root.tables("dose_levels", _DOSE_LEVEL_KEYS, required=True):
        levels.append(_read_dose_level(t, agent_unit, levels))
    return tuple(levels)


def _read_dose_level(t: Table, agent_unit: str, below: list[DoseLevel]) -> DoseLevel:
    """One level; ``below`` are the levels read before it, which it must follow."""
    number = read_int(t.req("level"), t.at("level"), minimum=1)
    if any(lv.level == number for lv in below):
        fail(t.at("level"), f"duplicate level {number}")
    if number != len(below) + 1:
        fail(
            t.at("level"),
            f"levels must be numbered 1, 2, 3, ... in order (expected {len(below) + 1}, "
            f"got {number})",
        )
    dose = read_decimal(t.req("dose"), t.at("dose"), positive=True)
    if below and dose <= below[-1].dose:
        fail(t.at("dose"), f"doses must increase ({dose} after {below[-1].dose})")
    unit = read_str(t.req("unit"), t.at("unit"))
    if unit != agent_unit:
        fail(t.at("unit"), f"{unit!r} differs from the escalated agent's unit {agent_unit!r}")
    return DoseLevel(
        level=number,
        dose=dose,
        unit=unit,
        label=t.opt_str("label"),
        frequency=t.opt_str("frequency"),
    )


# --------------------------------------------------------------------------- [design]


def _read_design(t: Table) -> Design:
    name = read_str(t.req("name"), t.at("name"))
    if name not in KNOWN_DESIGNS:
        fail(t.at("name"), f"unknown design {name!r} (known: {', '.join(sorted(KNOWN_DESIGNS))})")
    cohort = read_int(t.req("cohort_size"), t.at("cohort_size"), minimum=1)
    max_per = read_int(t.req("max_per_level"), t.at("max_per_level"), minimum=1)
    if name == "3+3":
        if cohort != 3:
            fail(t.at("cohort_size"), f"the 3+3 design uses cohorts of 3 (got {cohort})")
        if max_per != 6:
            fail(
                t.at("max_per_level"), f"the 3+3 design treats at most 6 per level (got {max_per})"
            )
    allow = read_bool(t.req("allow_deescalation"), t.at("allow_deescalation"))
    courses_raw, days_raw = t.get("dlt_window_courses"), t.get("dlt_window_days")
    if (courses_raw is None) == (days_raw is None):
        fail(
            t.at("dlt_window_courses"), "give exactly one of dlt_window_courses or dlt_window_days"
        )
    return Design(
        name=name,
        cohort_size=cohort,
        max_per_level=max_per,
        allow_deescalation=allow,
        dlt_window_courses=None
        if courses_raw is None
        else read_int(courses_raw, t.at("dlt_window_courses"), minimum=1),
        dlt_window_days=None
        if days_raw is None
        else read_int(days_raw, t.at("dlt_window_days"), minimum=1),
    )


# --------------------------------------------------------------------------- [dlt]


def _read_dlt(t: Table) -> DltDefinition:
    version = read_str(t.req("ctcae_version"), t.at("ctcae_version"))
    tables = t.tables("rules", _DLT_RULE_KEYS, required=True)
    rules = [_read_dlt_rule(r) for r in tables]
    refuse_duplicates(
        [(r.at("code"), x.code) for r, x in zip(tables, rules, strict=True)], "rule code"
    )
    return DltDefinition(ctcae_version=version, rules=tuple(rules))


def _read_dlt_rule(r: Table) -> DltRule:
    grade_raw = r.get("min_grade")
    grade = None if grade_raw is None else read_int(grade_raw, r.at("min_grade"), minimum=1)
    if grade is not None and grade > 5:
        fail(r.at("min_grade"), f"CTCAE grades run 1..5 (got {grade})")
    duration_raw = r.get("duration_days_more_than")
    attributions_raw = r.get("attributions")
    attributions = (
        ()
        if attributions_raw is None
        else _read_attributions(attributions_raw, r.at("attributions"))
    )
    return DltRule(
        code=read_name(r.req("code"), r.at("code")),
        text=read_str(r.req("text"), r.at("text")),
        toxicity=None
        if r.get("toxicity") is None
        else read_name(r.get("toxicity"), r.at("toxicity")),
        min_grade=grade,
        duration_days_more_than=None
        if duration_raw is None
        else read_int(duration_raw, r.at("duration_days_more_than")),
        attributions=attributions,
    )


def _read_attributions(value: object, path: str) -> tuple[str, ...]:
    attributions = tuple(read_str(a, f"{path}[{i}]") for i, a in enumerate(read_list(value, path)))
    for i, a in enumerate(attributions):
        if a not in ATTRIBUTIONS:
            fail(f"{path}[{i}]", f"unknown attribution {a!r} (allowed: {', '.join(ATTRIBUTIONS)})")
    return attributions


# --------------------------------------------------------------------------- [response]


def _read_response(t: Table) -> ResponseSchedule:
    version = read_str(t.req("recist_version"), t.at("recist_version"))
    if version not in RECIST_VERSIONS:
        fail(
            t.at("recist_version"),
            f"unknown RECIST version {version!r} (known: {', '.join(RECIST_VERSIONS)})",
        )
    every = read_int(
        t.req("assessment_interval_weeks"), t.at("assessment_interval_weeks"), minimum=1
    )
    window = read_int(t.req("window_days"), t.at("window_days"), minimum=0)
    # Windows of adjacent assessments must not overlap, or one date could be two visits.
    if 2 * window >= 7 * every:
        fail(
            t.at("window_days"),
            f"a window of +/- {window} days overlaps the next assessment "
            f"({every} weeks = {7 * every} days apart)",
        )
    return ResponseSchedule(
        recist_version=version, assessment_interval_weeks=every, window_days=window
    )


# --------------------------------------------------------------------------- [[observations]]


def _read_observations(root: Table) -> tuple[ObservationKind, ...]:
    tables = root.tables("observations", _OBSERVATION_KEYS, required=False)
    kinds = [_read_observation(t) for t in tables]
    refuse_duplicates(
        [(t.at("code"), o.code) for t, o in zip(tables, kinds, strict=True)], "observation code"
    )
    return tuple(kinds)


def _read_observation(t: Table) -> ObservationKind:
    vt_text = read_str(t.req("value_type"), t.at("value_type"))
    try:
        value_type = ObservationValueType(vt_text)
    except ValueError:
        fail(
            t.at("value_type"),
            f"unknown value type {vt_text!r} (allowed: "
            f"{', '.join(str(v) for v in ObservationValueType)})",
        )
    unit = t.opt_str("unit")
    allowed: tuple[str, ...] = ()
    if value_type is ObservationValueType.CATEGORICAL:
        allowed = _read_allowed_values(t.req("allowed_values"), t.at("allowed_values"))
    else:
        if unit is None:
            fail(t.at("unit"), f"required field is missing (a {value_type} needs a unit)")
        if t.has("allowed_values"):
            fail(t.at("allowed_values"), "only used with value_type 'categorical'")
    return ObservationKind(
        code=read_name(t.req("code"), t.at("code")),
        name=read_str(t.req("name"), t.at("name")),
        value_type=value_type,
        unit=unit,
        allowed_values=allowed,
        method=t.opt_str("method"),
        schedule=t.opt_str("schedule"),
    )


def _read_allowed_values(value: object, path: str) -> tuple[str, ...]:
    items = read_list(value, path)
    allowed = tuple(read_str(v, f"{path}[{i}]").strip() for i, v in enumerate(items))
    refuse_duplicates([(f"{path}[{i}]", v) for i, v in enumerate(allowed)], "allowed value")
    return allowed


# --------------------------------------------------------------------------- [dose_modification]


def _read_dose_modification(t: Table, num_levels: int) -> DoseModificationRules:
    path = t.at("actions")
    items = read_list(t.req("actions"), path)
    actions = tuple(read_str(a, f"{path}[{i}]") for i, a in enumerate(items))
    for i, action in enumerate(actions):
        if action not in DOSE_ACTIONS:
            fail(f"{path}[{i}]", f"unknown action {action!r} (allowed: {', '.join(DOSE_ACTIONS)})")
    refuse_duplicates([(f"{path}[{i}]", a) for i, a in enumerate(actions)], "action")
    levels = read_int(t.req("max_reduction_levels"), t.at("max_reduction_levels"))
    if levels >= num_levels:
        fail(
            t.at("max_reduction_levels"),
            f"the protocol has {num_levels} levels: at most {num_levels - 1} "
            f"reductions (got {levels})",
        )
    fraction_raw = t.get("min_course1_dose_fraction")
    fraction = None
    if fraction_raw is not None:
        fraction = read_decimal(fraction_raw, t.at("min_course1_dose_fraction"), positive=True)
        if fraction > 1:
            fail(t.at("min_course1_dose_fraction"), f"a fraction runs up to 1 (got {fraction})")
    return DoseModificationRules(
        actions=actions,
        max_reduction_levels=levels,
        max_hold_days=read_int(t.req("max_hold_days"), t.at("max_hold_days"), minimum=1),
        re_escalation=read_bool(t.req("re_escalation"), t.at("re_escalation")),
        min_course1_dose_fraction=fraction,
    )


# --------------------------------------------------------------------------- [expedited_reporting]


def _read_expedited_reporting(t: Table) -> ExpeditedReporting:
    fatal = read_int(
        t.req("fatal_or_life_threatening_days"), t.at("fatal_or_life_threatening_days"), minimum=1
    )
    other = read_int(t.req("other_serious_days"), t.at("other_serious_days"), minimum=1)
    if fatal > other:
        fail(
            t.at("fatal_or_life_threatening_days"),
            "a fatal or life-threatening event is reported no later than others "
            f"({fatal} > {other})",
        )
    return ExpeditedReporting(fatal_or_life_threatening_days=fatal, other_serious_days=other)
