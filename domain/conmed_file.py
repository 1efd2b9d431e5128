"""The protocol file's `[[concomitant_medications]]` entries, read and checked
(the rules they hold are `domain/conmeds.py`'s; kept apart so the protocol model can
hold them without importing the file readers)."""

from __future__ import annotations

from trialctl.domain.conmeds import ConmedRule
from trialctl.domain.protocol_values import (
    Table,
    fail,
    read_decimal,
    read_list,
    read_name,
    read_str,
    refuse_duplicates,
)

CONMED_KEYS = ("code", "text", "drugs", "allowed_max_dose", "allowed_unit", "routes")


def read_conmed_rules(root: Table) -> tuple[ConmedRule, ...]:
    """The protocol file's `[[concomitant_medications]]` entries, checked."""
    rules = tuple(
        _read_rule(t) for t in root.tables("concomitant_medications", CONMED_KEYS,
                                           required=False)
    )
    refuse_duplicates([(f"concomitant_medications[{i}].code", r.code)
                       for i, r in enumerate(rules)], "concomitant medication code")
    names = [(f"concomitant_medications[{i}].drugs", name.casefold())
             for i, r in enumerate(rules) for name in r.drugs]
    refuse_duplicates(names, "concomitant medication drug name")
    return rules


def _read_rule(t: Table) -> ConmedRule:
    drugs = tuple(
        read_str(name, f"{t.at('drugs')}[{i}]").strip()
        for i, name in enumerate(read_list(t.req("drugs"), t.at("drugs")))
    )
    if any(not name for name in drugs):
        fail(t.at("drugs"), "a drug name must not be empty")
    limit_raw, unit = t.get("allowed_max_dose"), t.opt_str("allowed_unit")
    limit = None if limit_raw is None else read_decimal(
        limit_raw, t.at("allowed_max_dose"), positive=True
    )
    if (limit is None) != (unit is None):
        fail(t.at("allowed_max_dose"), "allowed_max_dose and allowed_unit go together")
    routes_raw = t.get("routes")
    routes = () if routes_raw is None else tuple(
        read_str(r, f"{t.at('routes')}[{i}]") for i, r in enumerate(
            read_list(routes_raw, t.at("routes"))
        )
    )
    return ConmedRule(
        code=read_name(t.req("code"), t.at("code")),
        text=read_str(t.req("text"), t.at("text")),
        drugs=drugs,
        allowed_max_dose=limit,
        allowed_unit=unit,
        routes=routes,
    )
