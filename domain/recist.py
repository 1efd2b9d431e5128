"""RECIST overall response, computed from measurements (never typed in), by the version
the protocol names: RECIST 1.0 (Therasse et al., J Natl Cancer Inst 2000;92:205-16) or
RECIST 1.1 (Eisenhauer et al., Eur J Cancer 2009;45:228-47).  :class:`RecistRules` holds
what differs between them; every function takes the rules it applies.

Target lesions are measured in millimetres as :class:`~decimal.Decimal`.

=========================  ==============================  ==============================
                           RECIST 1.0                      RECIST 1.1
=========================  ==============================  ==============================
target lesions             at most 10, 5 per organ         at most 5, 2 per organ
                                                           (all lymph nodes: one organ)
what a lesion adds         longest diameter (nodes too)    longest diameter; a lymph
                                                           node its short axis
target size at baseline    >= 10 mm (spiral CT; the        >= 10 mm; a node >= 15 mm
                           technique is not recorded)      short axis
CR of the targets          every target lesion gone        non-nodal gone, every node
                           (0 mm)                          < 10 mm short axis
PD of the targets          sum >= 20 % over the nadir      >= 20 % *and* >= 5 mm over
                                                           the nadir
=========================  ==============================  ==============================

Categories (1.0 section "Response criteria", 1.1 section 4.3 and table 1), checked in
this order:

PD
    new lesions; or unequivocal progression of non-target lesions; or target progression
    as above (the nadir is the smallest sum on study, baseline included).  Target
    progression is not called while every target lesion meets the CR test.
CR
    every target lesion meets the CR test.  If non-target lesions persist
    (``non_target_lesions_persist``) the overall response is PR (both versions' tables).
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
    "RECIST_1_0",
    "RECIST_1_1",
    "RECIST_VERSIONS",
    "RecistRules",
    "Response",
    "ResponseCategory",
    "TargetLesion",
    "assess_response",
    "check_lesion_text",
    "classify_response",
    "recist_rules",
    "sum_of_diameters",
    "validate_baseline",
]

_LYMPH_NODES = "lymph nodes"
_PCT = Decimal("0.1")
MAX_MM = Decimal(10_000)  # no lesion is longer than 10 m
# A lesion id is the short code a case report form gives it (T1, NT2, N1): 32 characters
# leave room for a site's own scheme. A site is an anatomical location ("left lower lobe
# of lung, posterior segment"); 200 characters is SDTM's limit for a character value,
# which a lesion's location becomes in the TU export. Both are checked before signing.
LESION_ID_MAX = 32
LESION_SITE_MAX = 200


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
    if number > MAX_MM:
        # Also keeps sums and percentages inside the decimal context (no Overflow).
        raise ValueError(f"{what} must be at most {MAX_MM} mm (got {number:.3g} mm)")
    return number


def check_lesion_text(lesion_id: str, site: str) -> None:
    """The length limits on a lesion typed in. Checked where text comes in, not when a
    stored lesion is read back: an entry signed before the limits must still replay."""
    if len(lesion_id) > LESION_ID_MAX:
        # The id is not echoed: it is what is too long.
        raise ValueError(f"a lesion id is at most {LESION_ID_MAX} characters "
                         f"(got {len(lesion_id)})")
    if len(site) > LESION_SITE_MAX:
        raise ValueError(f"lesion {lesion_id}: a site is at most {LESION_SITE_MAX} "
                         f"characters (got {len(site)})")


@dataclass(frozen=True)
class TargetLesion:
    """One target-lesion measurement at one assessment.

    ``short_axis_mm`` is required for lymph nodes (RECIST 1.1 counts it; under 1.0 it is
    kept but the longest diameter counts) and refused for other lesions.
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
    def organ(self) -> str:
        """Organ key for the per-organ limit (all lymph nodes are one organ)."""
        return _LYMPH_NODES if self.is_lymph_node else self.site.strip().casefold()

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


@dataclass(frozen=True)
class RecistRules:
    """What one RECIST version decides: limits, what a lesion adds, CR and PD tests."""

    version: str
    source: str
    max_target_lesions: int
    max_per_organ: int
    min_lesion_mm: Decimal
    node_short_axis: bool
    """1.1: a lymph node is measured by its short axis, with its own size rules."""
    pd_min_increase_mm: Decimal
    """The absolute floor of target progression over the nadir (1.1: 5 mm; 1.0: none)."""
    min_node_short_axis_mm: Decimal = Decimal(15)
    normal_node_short_axis_mm: Decimal = Decimal(10)

    @property
    def name(self) -> str:
        return f"RECIST {self.version}"

    def measurement_mm(self, lesion: TargetLesion) -> Decimal:
        """What the lesion contributes to the sum."""
        if self.node_short_axis and lesion.is_lymph_node:
            assert lesion.short_axis_mm is not None
            return lesion.short_axis_mm
        return lesion.longest_diameter_mm

    def resolved(self, lesion: TargetLesion) -> bool:
        """Meets the CR test: gone, or (1.1) a node < 10 mm short axis."""
        if self.node_short_axis and lesion.is_lymph_node:
            return self.measurement_mm(lesion) < self.normal_node_short_axis_mm
        return lesion.longest_diameter_mm == 0

    @property
    def cr_text(self) -> str:
        if self.node_short_axis:
            return (
                "all non-nodal target lesions disappeared and every target node is "
                f"< {self.normal_node_short_axis_mm} mm short axis"
            )
        return "all target lesions disappeared"

    @property
    def pd_text(self) -> str:
        if self.pd_min_increase_mm:
            return f">= 20 % and >= {self.pd_min_increase_mm} mm"
        return ">= 20 %"


RECIST_1_0 = RecistRules(
    version="1.0",
    source="Therasse et al., J Natl Cancer Inst 2000;92:205-16",
    max_target_lesions=10,
    max_per_organ=5,
    min_lesion_mm=Decimal(10),
    node_short_axis=False,
    pd_min_increase_mm=Decimal(0),
)
RECIST_1_1 = RecistRules(
    version="1.1",
    source="Eisenhauer et al., Eur J Cancer 2009;45:228-47",
    max_target_lesions=5,
    max_per_organ=2,
    min_lesion_mm=Decimal(10),
    node_short_axis=True,
    pd_min_increase_mm=Decimal(5),
)
RECIST_VERSIONS: dict[str, RecistRules] = {r.version: r for r in (RECIST_1_0, RECIST_1_1)}


def recist_rules(version: str) -> RecistRules:
    """The rules of a RECIST version ("1.0" or "1.1"); ValueError for any other."""
    try:
        return RECIST_VERSIONS[version]
    except KeyError:
        raise ValueError(
            f"unknown RECIST version {version!r} (known: {', '.join(RECIST_VERSIONS)})"
        ) from None


def sum_of_diameters(lesions: Sequence[TargetLesion], rules: RecistRules) -> Decimal:
    """RECIST sum of the target lesions' measurements under ``rules``."""
    return sum((rules.measurement_mm(lesion) for lesion in lesions), Decimal(0))


def _unique_ids(lesions: Sequence[TargetLesion], when: str) -> None:
    dupes = sorted(i for i, n in Counter(x.lesion_id for x in lesions).items() if n > 1)
    if dupes:
        raise ValueError(f"{when}: duplicate lesion ids {dupes}")


def validate_baseline(lesions: Sequence[TargetLesion], rules: RecistRules) -> None:
    """Refuse (ValueError) a baseline that breaks the version's target-lesion rules."""
    if not lesions:
        raise ValueError("baseline: at least one measurable target lesion is needed")
    _unique_ids(lesions, "baseline")
    if len(lesions) > rules.max_target_lesions:
        raise ValueError(
            f"baseline: {len(lesions)} target lesions; {rules.name} allows at most "
            f"{rules.max_target_lesions}"
        )
    per_organ = Counter(x.organ for x in lesions)
    crowded = sorted(o for o, n in per_organ.items() if n > rules.max_per_organ)
    if crowded:
        raise ValueError(
            f"baseline: more than {rules.max_per_organ} target lesions in "
            f"{', '.join(crowded)} ({rules.name} allows at most "
            f"{rules.max_per_organ} per organ)"
        )
    for x in lesions:
        size = rules.measurement_mm(x)
        if rules.node_short_axis and x.is_lymph_node:
            if size < rules.min_node_short_axis_mm:
                raise ValueError(
                    f"baseline: lesion {x.lesion_id} is a node of {size} mm short axis; "
                    f"a target node must be >= {rules.min_node_short_axis_mm} mm "
                    f"({rules.name})"
                )
        elif size < rules.min_lesion_mm:
            raise ValueError(
                f"baseline: lesion {x.lesion_id} measures {size} mm; "
                f"a target lesion must be >= {rules.min_lesion_mm} mm ({rules.name})"
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
    recist_version: str
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
            "recist_version": self.recist_version,
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
    rules: RecistRules,
) -> Response:
    """The category from sums (mm) under ``rules``.  ``targets_resolved``: every target
    lesion meets the CR test (see :meth:`RecistRules.resolved`)."""
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
    # >= 20 % over nadir, exactly: current >= 1.2 x nadir  <=>  5 x current >= 6 x nadir.
    # RECIST 1.0 has no absolute floor; 1.1 also needs +5 mm (from_nadir > 0 either way,
    # since a 0 mm nadir with resolved targets is never target PD).
    grown = current * 5 >= nadir * 6 and from_nadir > 0
    target_pd = not targets_resolved and grown and from_nadir >= rules.pd_min_increase_mm
    if new_lesions:
        reasons.append("new lesion(s) -> PD")
    if non_target_progression:
        reasons.append("unequivocal progression of non-target lesions -> PD")
    if target_pd:
        reasons.append(
            f"sum {current} mm is {from_nadir:+} mm ({nadir_pct_text}) over nadir {nadir} mm: "
            f"{rules.pd_text} -> PD ({rules.name})"
        )
    if reasons:
        category = ResponseCategory.PD
    elif targets_resolved:
        if non_target_lesions_persist:
            category = ResponseCategory.PR
            reasons.append(
                "all target lesions resolved but non-target lesions persist -> PR "
                f"({rules.name})"
            )
        else:
            category = ResponseCategory.CR
            reasons.append(f"{rules.cr_text} -> CR ({rules.name})")
    elif current * 10 <= baseline * 7:
        category = ResponseCategory.PR
        reasons.append(
            f"sum {current} mm is {pct_baseline}% from baseline {baseline} mm: "
            ">= 30 % decrease -> PR"
        )
    else:
        category = ResponseCategory.SD
        why = [f"{pct_baseline:+}% from baseline {baseline} mm (PR needs <= -30%)"]
        if grown:
            why.append(
                f"{from_nadir:+} mm over nadir {nadir} mm "
                f"(PD also needs >= +{rules.pd_min_increase_mm} mm under {rules.name})"
            )
        else:
            why.append(f"{nadir_pct_text} from nadir {nadir} mm (PD needs {rules.pd_text})")
        reasons.append("; ".join(why) + " -> SD")
    return Response(
        category=category,
        recist_version=rules.version,
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
    rules: RecistRules,
) -> Response:
    """The response at a follow-up assessment under ``rules`` (the protocol's version).

    ``baseline`` and ``current`` are the target lesions at baseline and now (same ids).
    ``nadir_sum_mm`` is the smallest sum recorded before now, baseline included; None
    means the baseline sum (first follow-up).  Raises ValueError for an invalid
    baseline, mismatched ids, or negative measurements (TargetLesion refuses those).
    """
    validate_baseline(baseline, rules)
    _check_follow_up(baseline, current)
    baseline_sum = sum_of_diameters(baseline, rules)
    nadir = baseline_sum if nadir_sum_mm is None else _mm(nadir_sum_mm, "nadir sum")
    return classify_response(
        baseline_sum,
        nadir,
        sum_of_diameters(current, rules),
        targets_resolved=all(rules.resolved(x) for x in current),
        new_lesions=new_lesions,
        non_target_progression=non_target_progression,
        non_target_lesions_persist=non_target_lesions_persist,
        rules=rules,
    )
