"""RECIST 1.1 response computed from measurements (domain/recist.py); what differs under
RECIST 1.0 is in test_recist_versions.py."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from trialctl.domain.recist import (
    RECIST_1_1,
    Response,
    ResponseCategory,
    TargetLesion,
    assess_response,
    classify_response,
    sum_of_diameters,
    validate_baseline,
)

CR, PR, SD, PD = ResponseCategory.CR, ResponseCategory.PR, ResponseCategory.SD, ResponseCategory.PD
D = Decimal


def lesion(lesion_id: str, mm: str | int, site: str = "liver") -> TargetLesion:
    return TargetLesion(lesion_id, site, D(mm))


def node(lesion_id: str, short_mm: str | int, long_mm: str | int = 40) -> TargetLesion:
    return TargetLesion(
        lesion_id, "mediastinum", D(long_mm), is_lymph_node=True, short_axis_mm=D(short_mm)
    )


def one(mm: str | int) -> list[TargetLesion]:
    """A single liver lesion of ``mm`` (baseline or follow-up)."""
    return [lesion("L1", mm)]


def two(a: str | int, b: str | int) -> list[TargetLesion]:
    return [lesion("L1", a, "liver"), lesion("L2", b, "lung")]


def assess(
    baseline: list[TargetLesion],
    current: list[TargetLesion],
    nadir: str | None = None,
    *,
    new: bool = False,
    ntp: bool = False,
    persist: bool = False,
) -> Response:
    return assess_response(
        baseline,
        current,
        nadir_sum_mm=None if nadir is None else D(nadir),
        new_lesions=new,
        non_target_progression=ntp,
        non_target_lesions_persist=persist,
        rules=RECIST_1_1,
    )


# ------------------------------------------------------------------ the table


@pytest.mark.parametrize(
    ("baseline", "current", "nadir", "expected"),
    [
        # PR boundary: >= 30 % decrease from the baseline sum
        pytest.param(two(60, 40), two(40, 30), None, PR, id="exactly_30pct_decrease_is_PR"),
        pytest.param(two(60, 40), two("40.1", 30), None, SD, id="29.9pct_decrease_is_SD"),
        pytest.param(one(100), one(70), None, PR, id="single_lesion_70_of_100_PR"),
        pytest.param(one(100), one("70.1"), None, SD, id="single_lesion_70.1_of_100_SD"),
        pytest.param(one(100), one(10), None, PR, id="deep_PR"),
        # PD boundary: >= 20 % over nadir AND >= 5 mm over nadir
        pytest.param(one(25), one(30), None, PD, id="plus_20pct_and_plus_5mm_is_PD"),
        pytest.param(one(20), one(24), None, SD, id="plus_20pct_but_only_4mm_is_SD"),
        pytest.param(one(50), one("59.9"), None, SD, id="plus_19.8pct_and_9.9mm_is_SD"),
        pytest.param(one(50), one(60), None, PD, id="plus_20pct_and_10mm_is_PD"),
        pytest.param(one(100), one(60), "50", PD, id="over_nadir_PD_though_below_baseline"),
        pytest.param(one(100), one(59), "50", PR, id="plus_18pct_over_nadir_still_PR"),
        pytest.param(one(100), one(55), "50", PR, id="plus_5mm_but_10pct_over_nadir_PR"),
        pytest.param(one(100), one(77), "70", SD, id="plus_10pct_over_nadir_23pct_down_SD"),
        # SD in between
        pytest.param(one(100), one(100), None, SD, id="unchanged_SD"),
        pytest.param(one(100), one(119), None, SD, id="plus_19pct_SD"),
        # CR: non-nodal lesions gone, nodes < 10 mm short axis
        pytest.param(one(30), one(0), None, CR, id="all_gone_CR"),
        pytest.param(
            [lesion("L1", 30), node("N1", 20)],
            [lesion("L1", 0), node("N1", "9.9")],
            None,
            CR,
            id="node_below_10mm_CR_sum_not_zero",
        ),
        pytest.param(
            [lesion("L1", 30), node("N1", 20)],
            [lesion("L1", 0), node("N1", 10)],
            None,
            PR,
            id="node_at_10mm_not_CR",
        ),
        pytest.param(
            [lesion("L1", 30), node("N1", 20)],
            [lesion("L1", 1), node("N1", 5)],
            None,
            PR,
            id="residual_1mm_lesion_not_CR",
        ),
        # after a CR the nadir may be 0: reappearance >= 5 mm is PD
        pytest.param(one(30), one(5), "0", PD, id="reappearance_5mm_after_CR_PD"),
        pytest.param(one(30), one(4), "0", PR, id="reappearance_4mm_after_CR_not_PD"),
    ],
)
def test_response_table(
    baseline: list[TargetLesion],
    current: list[TargetLesion],
    nadir: str | None,
    expected: ResponseCategory,
) -> None:
    response = assess(baseline, current, nadir)
    assert response.category is expected, response.reasons
    assert response.reasons


@pytest.mark.parametrize(
    ("new", "ntp", "current"),
    [
        pytest.param(True, False, 40, id="new_lesion_with_PR_sizes"),
        pytest.param(True, False, 0, id="new_lesion_with_CR_sizes"),
        pytest.param(False, True, 40, id="non_target_progression_with_PR_sizes"),
        pytest.param(True, True, 100, id="both"),
    ],
)
def test_new_lesions_or_non_target_progression_are_PD(new: bool, ntp: bool, current: int) -> None:
    response = assess(one(100), one(current), new=new, ntp=ntp)
    assert response.category is PD
    if new:
        assert any("new lesion" in r for r in response.reasons)
    if ntp:
        assert any("non-target" in r for r in response.reasons)


def test_target_cr_with_persisting_non_target_lesions_is_PR() -> None:
    response = assess(one(30), one(0), persist=True)
    assert response.category is PR
    assert "non-target lesions persist" in response.reasons[0]


def test_response_figures_and_reasons() -> None:
    response = assess(two(60, 40), two(40, 30))
    assert response.baseline_sum_mm == D(100)
    assert response.nadir_sum_mm == D(100)
    assert response.current_sum_mm == D(70)
    assert response.change_from_baseline_pct == D("-30.0")
    assert response.change_from_nadir_mm == D(-30)
    assert response.change_from_nadir_pct == D("-30.0")
    assert "PR" in response.reasons[-1]
    data = response.to_dict()
    assert json.loads(json.dumps(data))["category"] == "PR"
    assert data["current_sum_mm"] == "70"
    assert ResponseCategory.PR.description == "partial response"


def test_pd_reason_names_both_thresholds() -> None:
    response = assess(one(25), one(30))
    assert response.category is PD
    assert "+5 mm" in response.reasons[0] and "+20.0%" in response.reasons[0]
    sd = assess(one(20), one(24))
    assert "PD also needs >= +5 mm" in sd.reasons[0]


def test_nadir_zero_percent_is_none() -> None:
    response = assess(one(30), one(0), "0")
    assert response.change_from_nadir_pct is None
    assert response.category is CR


def test_sum_uses_short_axis_for_nodes() -> None:
    lesions = [lesion("L1", 30), node("N1", 18, 35)]
    assert sum_of_diameters(lesions, RECIST_1_1) == D(48)
    assert lesions[1].organ == "lymph nodes"


def test_classify_response_from_sums() -> None:
    r = classify_response(
        D(100),
        D(80),
        D(96),
        targets_resolved=False,
        new_lesions=False,
        non_target_progression=False,
        rules=RECIST_1_1,
    )
    assert r.category is PD  # +20 % and +16 mm over the nadir of 80
    r = classify_response(
        D(100),
        D(100),
        D(70),
        targets_resolved=False,
        new_lesions=False,
        non_target_progression=False,
        rules=RECIST_1_1,
    )
    assert r.category is PR


# ------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    ("build", "match"),
    [
        pytest.param(lambda: lesion("L1", -1), "negative", id="negative_diameter"),
        pytest.param(lambda: node("N1", -2), "negative", id="negative_short_axis"),
        pytest.param(
            lambda: TargetLesion("N1", "neck", D(20), is_lymph_node=True),
            "short axis",
            id="node_without_short_axis",
        ),
        pytest.param(
            lambda: TargetLesion("L1", "liver", D(20), short_axis_mm=D(10)),
            "only recorded for lymph nodes",
            id="short_axis_on_non_node",
        ),
        pytest.param(lambda: node("N1", 30, 20), "exceeds", id="short_axis_over_long"),
        pytest.param(lambda: lesion("", 20), "lesion_id", id="empty_id"),
        pytest.param(lambda: lesion("L1", 20, " "), "site", id="empty_site"),
        pytest.param(lambda: lesion("L1", "NaN"), "finite", id="nan"),
    ],
)
def test_invalid_lesion(build: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build()  # type: ignore[operator]


def test_float_measurement_is_refused() -> None:
    with pytest.raises(TypeError):
        TargetLesion("L1", "liver", 20.5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("baseline", "match"),
    [
        pytest.param([], "at least one", id="no_target_lesion"),
        pytest.param(
            [lesion(f"L{i}", 20, f"organ{i}") for i in range(6)], "at most 5", id="six_lesions"
        ),
        pytest.param(
            [lesion("L1", 20), lesion("L2", 20), lesion("L3", 20)],
            "liver",
            id="three_in_one_organ",
        ),
        pytest.param(
            [lesion("L1", 20, "Liver"), lesion("L2", 20, "liver "), lesion("L3", 20, "LIVER")],
            "liver",
            id="organ_names_normalised",
        ),
        pytest.param(
            [
                node("N1", 20),
                TargetLesion("N2", "axilla", D(30), is_lymph_node=True, short_axis_mm=D(20)),
                TargetLesion("N3", "groin", D(30), is_lymph_node=True, short_axis_mm=D(20)),
            ],
            "lymph nodes",
            id="three_nodes_count_as_one_organ",
        ),
        pytest.param([lesion("L1", 20), lesion("L1", 30, "lung")], "duplicate", id="dup_ids"),
        pytest.param([lesion("L1", "9.9")], ">= 10 mm", id="lesion_too_small"),
        pytest.param([node("N1", "14.9")], ">= 15 mm", id="node_too_small"),
    ],
)
def test_invalid_baseline(baseline: list[TargetLesion], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        validate_baseline(baseline, RECIST_1_1)
    current = [TargetLesion(x.lesion_id, x.site, D(0)) for x in baseline if not x.is_lymph_node]
    with pytest.raises(ValueError):
        assess(baseline, current)


def test_five_lesions_two_per_organ_is_a_valid_baseline() -> None:
    baseline = [
        lesion("L1", 20, "liver"),
        lesion("L2", 20, "liver"),
        lesion("L3", 20, "lung"),
        lesion("L4", 20, "lung"),
        node("N1", 15),
    ]
    validate_baseline(baseline, RECIST_1_1)
    assert assess(baseline, baseline).category is SD


@pytest.mark.parametrize(
    ("current", "match"),
    [
        pytest.param([lesion("L1", 20)], r"not measured now: \['L2'\]", id="lesion_not_measured"),
        pytest.param(
            [lesion("L1", 20), lesion("L2", 20, "lung"), lesion("L3", 5, "bone")],
            r"not in baseline: \['L3'\]",
            id="extra_lesion",
        ),
        pytest.param(
            [lesion("L1", 20), lesion("L9", 20, "lung")],
            "do not match baseline",
            id="renamed_lesion",
        ),
        pytest.param(
            [lesion("L1", 20), lesion("L2", 20, "lung"), lesion("L2", 20, "lung")],
            "duplicate",
            id="duplicate_current",
        ),
        pytest.param(
            [lesion("L1", 20), lesion("L2", 20, "bone")], "differs from baseline", id="site_moved"
        ),
        pytest.param(
            [
                lesion("L1", 20),
                TargetLesion("L2", "lung", D(20), is_lymph_node=True, short_axis_mm=D(5)),
            ],
            "is_lymph_node",
            id="became_a_node",
        ),
    ],
)
def test_follow_up_must_match_baseline(current: list[TargetLesion], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        assess(two(30, 30), current)


@pytest.mark.parametrize(
    ("nadir", "error"),
    [
        pytest.param("61", ValueError, id="nadir_above_baseline"),
        pytest.param("-1", ValueError, id="negative_nadir"),
    ],
)
def test_invalid_nadir(nadir: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        assess(two(30, 30), two(30, 30), nadir)


def test_classify_rejects_zero_baseline() -> None:
    with pytest.raises(ValueError, match="baseline"):
        classify_response(
            D(0),
            D(0),
            D(0),
            targets_resolved=True,
            new_lesions=False,
            non_target_progression=False,
            rules=RECIST_1_1,
        )


# ------------------------------------------------------------------ properties

_mm = st.decimals(min_value=0, max_value=300, places=1)


@st.composite
def _case(
    draw: st.DrawFn,
) -> tuple[list[TargetLesion], list[TargetLesion], Decimal, bool, bool]:
    """A valid baseline (1-5 lesions, <= 2 per organ), a follow-up, a nadir and flags."""
    n = draw(st.integers(min_value=1, max_value=5))
    baseline: list[TargetLesion] = []
    current: list[TargetLesion] = []
    nodes = 0
    for i in range(n):
        is_node = nodes < 2 and draw(st.booleans())
        if is_node:
            nodes += 1
            short = draw(st.decimals(min_value=15, max_value=80, places=1))
            baseline.append(
                TargetLesion(f"T{i}", "node", short + 5, is_lymph_node=True, short_axis_mm=short)
            )
            now = draw(_mm)
            current.append(
                TargetLesion(f"T{i}", "node", now + 5, is_lymph_node=True, short_axis_mm=now)
            )
        else:
            site = f"organ{i // 2}"
            baseline.append(
                TargetLesion(
                    f"T{i}", site, draw(st.decimals(min_value=10, max_value=150, places=1))
                )
            )
            current.append(TargetLesion(f"T{i}", site, draw(_mm)))
    base_sum = sum_of_diameters(baseline, RECIST_1_1)
    nadir = draw(st.decimals(min_value=0, max_value=base_sum, places=1))
    return baseline, current, nadir, draw(st.booleans()), draw(st.booleans())


Case = tuple[list[TargetLesion], list[TargetLesion], Decimal, bool, bool]


def _run(case: Case) -> Response:
    baseline, current, nadir, new, ntp = case
    return assess_response(
        baseline, current, nadir_sum_mm=nadir, new_lesions=new, non_target_progression=ntp,
        rules=RECIST_1_1,
    )


@given(_case())
def test_pd_whenever_new_lesions_or_non_target_progression(case: Case) -> None:
    response = _run(case)
    if case[3] or case[4]:
        assert response.category is PD


@given(_case())
def test_never_pr_or_cr_when_the_sum_increased(case: Case) -> None:
    baseline, current, *_ = case
    response = _run(case)
    if sum_of_diameters(current, RECIST_1_1) > sum_of_diameters(baseline, RECIST_1_1):
        assert response.category in (SD, PD)


@given(_case())
def test_categories_match_their_definitions(case: Case) -> None:
    baseline, current, nadir, new, ntp = case
    response = _run(case)
    base, now = sum_of_diameters(baseline, RECIST_1_1), sum_of_diameters(current, RECIST_1_1)
    resolved = all(RECIST_1_1.resolved(x) for x in current)
    if response.category is PR:
        assert now <= base * D("0.7")
    if response.category is CR:
        assert resolved and not new and not ntp
    if response.category is PD and not (new or ntp):
        assert now - nadir >= 5 and now >= nadir * D("1.2") and not resolved
    if response.category is SD:
        assert not (new or ntp) and now > base * D("0.7") and not resolved
    assert response.current_sum_mm == now
    assert response.reasons


@given(_case(), st.integers(min_value=0, max_value=4), _mm)
def test_growth_never_improves_the_response(case: Case, which: int, extra: Decimal) -> None:
    """Enlarging one lesion can only keep or worsen the category (CR < PR < SD < PD)."""
    baseline, current, nadir, new, ntp = case
    assume(which < len(current))
    grown = list(current)
    x = grown[which]
    if x.is_lymph_node:
        assert x.short_axis_mm is not None
        grown[which] = TargetLesion(
            x.lesion_id,
            x.site,
            x.longest_diameter_mm + extra,
            is_lymph_node=True,
            short_axis_mm=x.short_axis_mm + extra,
        )
    else:
        grown[which] = TargetLesion(x.lesion_id, x.site, x.longest_diameter_mm + extra)
    order = [CR, PR, SD, PD]
    before = _run(case).category
    after = _run((baseline, grown, nadir, new, ntp)).category
    assert order.index(after) >= order.index(before)
