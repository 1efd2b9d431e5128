"""RECIST 1.1 overall response, computed from measurements (never typed in).

Target lesions are measured in millimetres as :class:`~decimal.Decimal`.  A non-nodal
lesion contributes its longest diameter to the sum; a lymph node contributes its short
axis.  Baseline rules (RECIST 1.1, section 4.2): at least one and at most 5 target
lesions, at most 2 per organ (all lymph nodes together count as one organ), non-nodal
lesions >= 10 mm longest diameter, nodes >= 15 mm short axis.

Categories (RECIST 1.1, section 4.3 and table 1), checked in this order:

PD
    new lesions; or unequivocal progression of non-target lesions; or a target sum at
    least 20 % above the nadir (the smallest sum on study, baseline included) *and* at
    least 5 mm above it.  Target progression is not called while every target lesion
    meets the CR test (nodes that stay < 10 mm short axis are normal).
CR
    every non-nodal target lesion has disappeared (0 mm) and every nodal target lesion is
    < 10 mm short axis (the sum need not be 0).  If non-target lesions persist
    (``non_target_lesions_persist``) the overall response is PR (table 1).
PR
    target sum at least 30 % below the baseline sum.
SD
    otherwise.

All comparisons are exact Decimal arithmetic (30 % decrease exactly = PR); percentages in
the result are rounded to 0.1 for display only.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

__all__ = [
    "MAX_TARGET_LESIONS",
    "MAX_TARGET_LESIONS_PER_ORGAN",
    "MIN_BASELINE_LESION_MM",
    "MIN_BASELINE_NODE_SHORT_AXIS_MM",
    "NORMAL_NODE_SHORT_AXIS_MM",
    "Response",
    "ResponseCategory",
    "TargetLesion",
    "assess_response",
    "classify_response",
    "sum_of_diameters",
    "validate_baseline",
]

MAX_TARGET_LESIONS = 5
MAX_TARGET_LESIONS_PER_ORGAN = 2
MIN_BASELINE_LESION_MM = Decimal(10)
MIN_BASELINE_NODE_SHORT_AXIS_MM = Decimal(15)
NORMAL_NODE_SHORT_AXIS_MM = Decimal(10)
_LYMPH_NODES = "lymph nodes"
_PCT = Decimal("0.1")


class ResponseCategory(StrEnum):
    CR = "CR"
    PR = "PR"
    SD = "SD"
    PD = "PD"

    @property
    def description(self) -> str:
        return {
            "CR": "complete response",
            "PR": "partial response",
            "SD": "stable disease",
            "PD": "progressive disease",
        }[self.value]


def _mm(value: object, what: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise TypeError(f"{what} must be a Decimal number of mm, got {value!r}")
    number = Decimal(value)
    if not number.is_finite():
        raise ValueError(f"{what} must be a finite number of mm, got {number}")
    if number < 0:
        raise ValueError(f"{what} must not be negative (got {number} mm)")
    return number


@dataclass(frozen=True)
class TargetLesion:
    """One target-lesion measurement at one assessment.

    ``short_axis_mm`` is required for lymph nodes (it is what counts for them) and
    refused for other lesions.
    """

    lesion_id: str
    site: str
    longest_diameter_mm: Decimal
    is_lymph_node: bool = False
    short_axis_mm: Decimal | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.lesion_id, str) or not self.lesion_id.strip():
            raise ValueError("lesion_id must be a non-empty string")
        if not isinstance(self.site, str) or not self.site.strip():
            raise ValueError(f"lesion {self.lesion_id}: site must be a non-empty string")
        where = f"lesion {self.lesion_id}"
        object.__setattr__(
            self, "longest_diameter_mm", _mm(self.longest_diameter_mm, f"{where}: longest diameter")
        )
        if self.is_lymph_node:
            if self.short_axis_mm is None:
                raise ValueError(f"{where}: a lymph node needs its short axis (short_axis_mm)")
            short = _mm(self.short_axis_mm, f"{where}: short axis")
            if short > self.longest_diameter_mm:
                raise ValueError(
                    f"{where}: short axis {short} mm exceeds longest diameter "
                    f"{self.longest_diameter_mm} mm"
                )
            object.__setattr__(self, "short_axis_mm", short)
        elif self.short_axis_mm is not None:
            raise ValueError(f"{where}: short_axis_mm is only recorded for lymph nodes")

    @property
    def measurement_mm(self) -> Decimal:
        """What the lesion contributes to the sum (short axis for nodes)."""
        if self.is_lymph_node:
            assert self.short_axis_mm is not None
            return self.short_axis_mm
        return self.longest_diameter_mm

    @property
    def organ(self) -> str:
        """Organ key for the 2-per-organ rule (all lymph nodes are one organ)."""
        return _LYMPH_NODES if self.is_lymph_node else self.site.strip().casefold()

    @property
    def resolved(self) -> bool:
        """Meets the CR test: gone (non-nodal) or < 10 mm short axis (node)."""
        if self.is_lymph_node:
            return self.measurement_mm < NORMAL_NODE_SHORT_AXIS_MM
        return self.longest_diameter_mm == 0

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "lesion_id": self.lesion_id,
            "site": self.site,
            "longest_diameter_mm": str(self.longest_diameter_mm),
            "is_lymph_node": self.is_lymph_node,
        }
        if self.short_axis_mm is not None:
            out["short_axis_mm"] = str(self.short_axis_mm)
        return out


def sum_of_diameters(lesions: Sequence[TargetLesion]) -> Decimal:
    """RECIST sum: longest diameters of non-nodal lesions + short axes of nodes."""
    return sum((lesion.measurement_mm for lesion in lesions), Decimal(0))


def _unique_ids(lesions: Sequence[TargetLesion], when: str) -> None:
    dupes = sorted(i for i, n in Counter(x.lesion_id for x in lesions).items() if n > 1)
    if dupes:
        raise ValueError(f"{when}: duplicate lesion ids {dupes}")


def validate_baseline(lesions: Sequence[TargetLesion]) -> None:
    """Refuse (ValueError) a baseline that breaks the RECIST 1.1 target-lesion rules."""
    if not lesions:
        raise ValueError("baseline: at least one measurable target lesion is needed")
    _unique_ids(lesions, "baseline")
    if len(lesions) > MAX_TARGET_LESIONS:
        raise ValueError(
            f"baseline: {len(lesions)} target lesions; RECIST 1.1 allows at most "
            f"{MAX_TARGET_LESIONS}"
        )
    per_organ = Counter(x.organ for x in lesions)
    crowded = sorted(o for o, n in per_organ.items() if n > MAX_TARGET_LESIONS_PER_ORGAN)
    if crowded:
        raise ValueError(
            f"baseline: more than {MAX_TARGET_LESIONS_PER_ORGAN} target lesions in "
            f"{', '.join(crowded)} (RECIST 1.1 allows at most "
            f"{MAX_TARGET_LESIONS_PER_ORGAN} per organ)"
        )
    for x in lesions:
        if x.is_lymph_node and x.measurement_mm < MIN_BASELINE_NODE_SHORT_AXIS_MM:
            raise ValueError(
                f"baseline: lesion {x.lesion_id} is a node of {x.measurement_mm} mm short axis; "
                f"a target node must be >= {MIN_BASELINE_NODE_SHORT_AXIS_MM} mm"
            )
        if not x.is_lymph_node and x.longest_diameter_mm < MIN_BASELINE_LESION_MM:
            raise ValueError(
                f"baseline: lesion {x.lesion_id} measures {x.longest_diameter_mm} mm; "
                f"a target lesion must be >= {MIN_BASELINE_LESION_MM} mm"
            )


def _check_follow_up(baseline: Sequence[TargetLesion], current: Sequence[TargetLesion]) -> None:
    _unique_ids(current, "current")
    base_ids = {x.lesion_id for x in baseline}
    cur_ids = {x.lesion_id for x in current}
    missing, extra = sorted(base_ids - cur_ids), sorted(cur_ids - base_ids)
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"not measured now: {missing}")
        if extra:
            parts.append(f"not in baseline: {extra}")
        raise ValueError(
            "current lesion ids do not match baseline (" + "; ".join(parts) + "); "
            "new lesions are reported with new_lesions=True, not as target lesions"
        )
    by_id = {x.lesion_id: x for x in baseline}
    for x in current:
        b = by_id[x.lesion_id]
        if x.is_lymph_node != b.is_lymph_node:
            raise ValueError(
                f"lesion {x.lesion_id}: is_lymph_node is {x.is_lymph_node} now but "
                f"{b.is_lymph_node} at baseline"
            )
        if x.site.strip().casefold() != b.site.strip().casefold():
            raise ValueError(
                f"lesion {x.lesion_id}: site {x.site!r} differs from baseline {b.site!r}"
            )


def _pct(change: Decimal, reference: Decimal) -> Decimal | None:
    if reference == 0:
        return None
    return (change * 100 / reference).quantize(_PCT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Response:
    category: ResponseCategory
    baseline_sum_mm: Decimal
    nadir_sum_mm: Decimal
    current_sum_mm: Decimal
    change_from_baseline_pct: Decimal
    """(current - baseline) / baseline in %, rounded to 0.1 (negative = shrinkage)."""
    change_from_nadir_mm: Decimal
    change_from_nadir_pct: Decimal | None
    """None when the nadir is 0 mm."""
    new_lesions: bool
    non_target_progression: bool
    reasons: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        return {
            "category": str(self.category),
            "baseline_sum_mm": str(self.baseline_sum_mm),
            "nadir_sum_mm": str(self.nadir_sum_mm),
            "current_sum_mm": str(self.current_sum_mm),
            "change_from_baseline_pct": str(self.change_from_baseline_pct),
            "change_from_nadir_mm": str(self.change_from_nadir_mm),
            "change_from_nadir_pct": None
            if self.change_from_nadir_pct is None
            else str(self.change_from_nadir_pct),
            "new_lesions": self.new_lesions,
            "non_target_progression": self.non_target_progression,
            "reasons": list(self.reasons),
        }


def classify_response(
    baseline_sum_mm: Decimal,
    nadir_sum_mm: Decimal,
    current_sum_mm: Decimal,
    *,
    targets_resolved: bool,
    new_lesions: bool,
    non_target_progression: bool,
    non_target_lesions_persist: bool = False,
) -> Response:
    """RECIST 1.1 category from sums (mm).  ``targets_resolved``: every target lesion
    meets the CR test (see :attr:`TargetLesion.resolved`)."""
    baseline = _mm(baseline_sum_mm, "baseline sum")
    nadir = _mm(nadir_sum_mm, "nadir sum")
    current = _mm(current_sum_mm, "current sum")
    if baseline == 0:
        raise ValueError("baseline sum must be greater than 0 mm")
    if nadir > baseline:
        raise ValueError(
            f"nadir sum {nadir} mm exceeds baseline sum {baseline} mm "
            "(the nadir is the smallest sum on study, baseline included)"
        )
    from_nadir = current - nadir
    from_baseline = current - baseline
    pct_baseline = _pct(from_baseline, baseline)
    assert pct_baseline is not None
    pct_nadir = _pct(from_nadir, nadir)
    nadir_pct_text = "n/a (nadir 0 mm)" if pct_nadir is None else f"{pct_nadir:+}%"

    reasons: list[str] = []
    # >= 20 % over nadir, exactly: current >= 1.2 x nadir  <=>  5 x current >= 6 x nadir
    target_pd = not targets_resolved and current * 5 >= nadir * 6 and from_nadir >= Decimal(5)
    if new_lesions:
        reasons.append("new lesion(s) -> PD")
    if non_target_progression:
        reasons.append("unequivocal progression of non-target lesions -> PD")
    if target_pd:
        reasons.append(
            f"sum {current} mm is {from_nadir:+} mm ({nadir_pct_text}) over nadir {nadir} mm: "
            ">= 20 % and >= 5 mm -> PD"
        )
    if reasons:
        category = ResponseCategory.PD
    elif targets_resolved:
        if non_target_lesions_persist:
            category = ResponseCategory.PR
            reasons.append(
                "all target lesions resolved but non-target lesions persist -> PR "
                "(RECIST 1.1 table 1)"
            )
        else:
            category = ResponseCategory.CR
            reasons.append(
                "all non-nodal target lesions disappeared and every target node is "
                f"< {NORMAL_NODE_SHORT_AXIS_MM} mm short axis -> CR"
            )
    elif current * 10 <= baseline * 7:
        category = ResponseCategory.PR
        reasons.append(
            f"sum {current} mm is {pct_baseline}% from baseline {baseline} mm: "
            ">= 30 % decrease -> PR"
        )
    else:
        category = ResponseCategory.SD
        why = [f"{pct_baseline:+}% from baseline {baseline} mm (PR needs <= -30%)"]
        if current * 5 >= nadir * 6:
            why.append(f"{from_nadir:+} mm over nadir {nadir} mm (PD also needs >= +5 mm)")
        else:
            why.append(f"{nadir_pct_text} from nadir {nadir} mm (PD needs >= +20% and +5 mm)")
        reasons.append("; ".join(why) + " -> SD")
    return Response(
        category=category,
        baseline_sum_mm=baseline,
        nadir_sum_mm=nadir,
        current_sum_mm=current,
        change_from_baseline_pct=pct_baseline,
        change_from_nadir_mm=from_nadir,
        change_from_nadir_pct=pct_nadir,
        new_lesions=new_lesions,
        non_target_progression=non_target_progression,
        reasons=tuple(reasons),
    )


def assess_response(
    baseline: Sequence[TargetLesion],
    current: Sequence[TargetLesion],
    *,
    nadir_sum_mm: Decimal | None = None,
    new_lesions: bool,
    non_target_progression: bool,
    non_target_lesions_persist: bool = False,
) -> Response:
    """RECIST 1.1 response at a follow-up assessment.

    ``baseline`` and ``current`` are the target lesions at baseline and now (same ids).
    ``nadir_sum_mm`` is the smallest sum recorded before now, baseline included; None
    means the baseline sum (first follow-up).  Raises ValueError for an invalid
    baseline, mismatched ids, or negative measurements (TargetLesion refuses those).
    """
    validate_baseline(baseline)
    _check_follow_up(baseline, current)
    baseline_sum = sum_of_diameters(baseline)
    nadir = baseline_sum if nadir_sum_mm is None else _mm(nadir_sum_mm, "nadir sum")
    return classify_response(
        baseline_sum,
        nadir,
        sum_of_diameters(current),
        targets_resolved=all(x.resolved for x in current),
        new_lesions=new_lesions,
        non_target_progression=non_target_progression,
        non_target_lesions_persist=non_target_lesions_persist,
    )
