"""Dose paths as data: every way the next cohorts can turn out, and what the rules do.

The tree is built by applying the same selection (:meth:`Selection.then`) to every outcome of
each next cohort, so every node goes through the checks and the decision function of
:meth:`ThreePlusThree.fit`.  :func:`dose_path_rows` flattens it into table rows.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TypedDict

from trialctl.domain.escalation import Selection, ThreePlusThree, next_decision_point
from trialctl.domain.escalation_outcomes import Cohort, is_int

__all__ = ["DosePathNode", "DosePathRow", "dose_path_rows", "dose_paths"]


@dataclass(frozen=True)
class DosePathNode:
    """One node of a dose-path tree: a path and what the rules say after it.

    The root (depth 0) is the path so far; each child adds one cohort with one of the
    possible numbers of DLTs. A node that stops has no children.
    """

    id: int
    parent_id: int | None
    depth: int
    level: int | None
    outcome: str
    path: str
    next_level: int | None
    should_continue: bool
    mtd_level: int | None
    stop_reason: str | None
    children: tuple[DosePathNode, ...] = ()

    @property
    def recommended_level(self) -> int | None:
        return self.next_level if self.should_continue else self.mtd_level

    def walk(self) -> Iterator[DosePathNode]:
        """This node and its descendants, depth first, parents before children."""
        yield self
        for child in self.children:
            yield from child.walk()

    def find(self, path: str) -> DosePathNode | None:
        """The node of this subtree whose path is ``path`` (as `format_dose_path` writes it)."""
        return next((node for node in self.walk() if node.path == path), None)


class DosePathRow(TypedDict):
    id: int
    parent_id: int | None
    depth: int
    level: int | None
    outcome: str
    path: str
    next_level: int | None
    should_continue: bool
    mtd_level: int | None
    stop_reason: str | None


def dose_paths(
    design: ThreePlusThree, cohorts_so_far: Sequence[Cohort], num_future_cohorts: int
) -> DosePathNode:
    """Every way the next ``num_future_cohorts`` cohorts can turn out, and what the rules do.

    Each future cohort is given at the level the rules prescribe, with every number of DLTs
    from 0 to its size (outcomes within a cohort are unordered: NNN, NNT, NTT, TTT). A future
    cohort normally has ``cohort_size`` patients; if the path so far ends in an unfinished
    cohort, the next one holds just the patients that complete it. Raises `OutOfRuleError`
    if ``cohorts_so_far`` is out of rule.

    Selections are cached by path string while the tree is built; each child is its parent's
    selection advanced by one cohort (`Selection.then`), so every node goes through the same
    checks and the same decision function as `ThreePlusThree.fit`.
    """
    if not is_int(num_future_cohorts) or num_future_cohorts < 0:
        raise ValueError(f"num_future_cohorts must be an integer >= 0, got {num_future_cohorts!r}")
    ids = itertools.count()
    root_selection = design.fit(cohorts_so_far)
    selections: dict[str, Selection] = {root_selection.path: root_selection}

    def build(path: str, parent_id: int | None, depth: int, outcome: str) -> DosePathNode:
        node_id = next(ids)
        selection = selections[path]
        children: list[DosePathNode] = []
        level = selection.next_level
        if level is not None and depth < num_future_cohorts:
            already = selection.patients_at(level)
            size = next_decision_point(design, already) - already
            for dlts in range(size + 1):
                cohort = Cohort.from_counts(level, size, dlts)
                child = selection.then(cohort)
                selections[child.path] = child
                children.append(build(child.path, node_id, depth + 1, cohort.letters))
        return DosePathNode(
            id=node_id,
            parent_id=parent_id,
            depth=depth,
            level=selection.cohorts[-1].level if selection.cohorts else None,
            outcome=outcome,
            path=path,
            next_level=selection.next_level,
            should_continue=selection.should_continue,
            mtd_level=selection.mtd_level,
            stop_reason=selection.stop_reason,
            children=tuple(children),
        )

    return build(root_selection.path, None, 0, "")


def dose_path_rows(root: DosePathNode) -> list[DosePathRow]:
    """Flatten a dose-path tree into table rows, parents before children."""
    return [
        DosePathRow(
            id=node.id,
            parent_id=node.parent_id,
            depth=node.depth,
            level=node.level,
            outcome=node.outcome,
            path=node.path,
            next_level=node.next_level,
            should_continue=node.should_continue,
            mtd_level=node.mtd_level,
            stop_reason=node.stop_reason,
        )
        for node in root.walk()
    ]
