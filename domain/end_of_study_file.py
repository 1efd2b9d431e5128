"""The protocol file's `[end_of_study]`, read and checked (the model is
`domain/end_of_study.py`'s; kept apart so the protocol model can hold it without importing
the file readers)."""

from __future__ import annotations

from trialctl.domain.end_of_study import EndOfStudy
from trialctl.domain.protocol_values import Table, fail, read_list, read_str, refuse_duplicates

_KEYS = ("reasons",)


def read_end_of_study(root: Table) -> EndOfStudy | None:
    """The `[end_of_study]` section, or None when the protocol has none."""
    if not root.has("end_of_study"):
        return None
    section = Table(root.req("end_of_study"), "end_of_study", _KEYS)
    path = section.at("reasons")
    reasons = tuple(read_str(r, f"{path}[{i}]").strip()
                    for i, r in enumerate(read_list(section.req("reasons"), path,
                                                    nonempty=True)))
    if not all(reasons):
        fail(path, "a reason must not be empty")
    refuse_duplicates([(f"{path}[{i}]", r) for i, r in enumerate(reasons)], "off-study reason")
    return EndOfStudy(reasons)
