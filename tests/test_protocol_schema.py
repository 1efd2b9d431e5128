"""protocols/protocol.schema.json, the JSON Schema for protocol authors, agrees with the loader.

The schema describes the shape of a protocol file; the loader (domain/protocol_file.py) checks
that shape and the rules that span fields.  These tests hold the two together: the shipped
protocols pass both, each table allows the same keys, the closed vocabularies are the code's,
and every malformation the loader refuses is refused by the schema at the same field, except
the named cross-field rules that only the loader can check.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from tests.test_protocol import MALFORMED, MINIMAL_PATH, NCT_PATH, SECOND_PATH, _base
from trialctl.domain.eligibility import CONDITION_OPERATORS, CriterionKind, Operator
from trialctl.domain.forms import FieldType
from trialctl.domain.protocol import (
    ATTRIBUTIONS,
    KNOWN_DESIGNS,
    RECIST_VERSIONS,
    AgentRole,
    ObservationValueType,
)
from trialctl.domain.protocol_file import ProtocolError, protocol_from_dict

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "protocols" / "protocol.schema.json"
SCHEMA: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
DEFS: dict[str, Any] = SCHEMA["$defs"]
VALIDATOR = Draft202012Validator(SCHEMA)

# Malformations only the loader refuses: order, cross-field consistency, uniqueness, floats
# (JSON Schema counts 100.0 as an integer).  The schema must accept each, so this list stays
# the honest account of what an editor checking the schema will not catch.
LOADER_ONLY = {
    "doses_decrease",
    "doses_equal",
    "duplicate_level",
    "non_contiguous_level",
    "start_level_above_levels",
    "level_unit_differs",
    "python_float_dose",
    "fixed_dose_gap",
    "fixed_dose_course_ends",
    "day_outside_course",
    "days_not_increasing",
    "duplicate_agent",
    "duplicate_criterion_code",
    "overlapping_response_windows",
    "form_min_above_max",
    "duplicate_form_field",
    "criterion_reads_undeclared_field",
}


def _field_path(path: Sequence[str | int]) -> str:
    """A jsonschema error path written as the loader writes paths: ``agents[1].doses[0]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def _schema_error_paths(data: object) -> list[str]:
    return [_field_path(list(e.absolute_path)) for e in VALIDATOR.iter_errors(data)]


def _within(field: str, table: str) -> bool:
    """``field`` is ``table`` itself or lies inside it (``""`` is the whole file)."""
    return table == "" or field == table or field.startswith((f"{table}.", f"{table}["))


def test_schema_is_valid_draft_2020_12() -> None:
    Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize("path", [NCT_PATH, SECOND_PATH, MINIMAL_PATH], ids=lambda p: p.stem)
def test_valid_protocols_pass_the_schema(path: Path) -> None:
    assert _schema_error_paths(tomllib.loads(path.read_text(encoding="utf-8"))) == []


@pytest.mark.parametrize("case", list(MALFORMED))
def test_schema_refuses_what_the_loader_refuses_at_the_same_field(case: str) -> None:
    mutation, path, _ = MALFORMED[case]
    data = _base()
    mutation(data)
    with pytest.raises(ProtocolError):
        protocol_from_dict(data)
    errors = _schema_error_paths(data)
    if case in LOADER_ONLY:
        assert errors == []
    else:
        # The schema names the field, or (missing and unknown keys) the table that holds it.
        assert any(_within(path, table) for table in errors), (path, errors)


def test_loader_only_cases_exist() -> None:
    assert set(MALFORMED) >= LOADER_ONLY


# (where the loader reads a table in the minimal protocol, where the schema describes it)
TABLES: dict[str, dict[str, Any]] = {
    "": SCHEMA,
    "agents.1": DEFS["agent"],
    "agents.1.doses.0": DEFS["fixed_dose"],
    "dose_levels.0": DEFS["dose_level"],
    "design": DEFS["design"],
    "dlt": DEFS["dlt"],
    "dlt.rules.0": DEFS["dlt_rule"],
    "eligibility.0": DEFS["criterion"],
    "eligibility.2.applies_if": DEFS["condition"],
    "response": DEFS["response"],
    "observations.0": DEFS["observation"],
    "forms.0": DEFS["form"],
    "forms.0.fields.0": DEFS["form_field"],
}


@pytest.mark.parametrize(
    ("where", "described"), list(TABLES.items()), ids=[w or "root" for w in TABLES]
)
def test_each_table_allows_the_same_keys(where: str, described: dict[str, Any]) -> None:
    data = _base()
    table: Any = data
    for part in filter(None, where.split(".")):
        table = table[int(part)] if part.isdigit() else table[part]
    table["not_a_field"] = 1
    with pytest.raises(ProtocolError, match=r"unknown field \(allowed: ") as info:
        protocol_from_dict(data)
    allowed = re.search(r"\(allowed: (.*)\)$", str(info.value))
    assert allowed is not None
    assert set(allowed.group(1).split(", ")) == set(described["properties"])
    assert described["additionalProperties"] is False


def test_closed_vocabularies_are_the_codes() -> None:
    props = SCHEMA["properties"]
    assert DEFS["agent"]["properties"]["role"]["enum"] == [str(r) for r in AgentRole]
    assert set(DEFS["design"]["properties"]["name"]["enum"]) == KNOWN_DESIGNS
    assert tuple(DEFS["dlt_rule"]["properties"]["attributions"]["items"]["enum"]) == ATTRIBUTIONS
    assert DEFS["criterion"]["properties"]["kind"]["enum"] == [str(k) for k in CriterionKind]
    assert DEFS["criterion"]["properties"]["op"]["enum"] == [str(o) for o in Operator]
    condition_ops = DEFS["condition"]["properties"]["op"]["enum"]
    assert set(condition_ops) == {str(o) for o in CONDITION_OPERATORS}
    assert set(DEFS["response"]["properties"]["recist_version"]["enum"]) == set(RECIST_VERSIONS)
    value_types = DEFS["observation"]["properties"]["value_type"]["enum"]
    assert value_types == [str(v) for v in ObservationValueType]
    assert set(SCHEMA["required"]) < set(props)
    assert DEFS["form_field"]["properties"]["type"]["enum"] == [str(t) for t in FieldType]
