"""RECIST 1.0 and 1.1 side by side (domain/recist.py), the protocol's choice of version and
its assessment schedule (domain/protocol.py), and both as a user meets them through
`trialctl record response` and `trialctl patient` on the shipped NCT00084513 protocol,
which uses RECIST 1.0."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import assert_one_line_error
from tests.nct_site import Site, nct_site
from tests.trial_helpers import ROOT, day, nct_protocol
from trialctl.domain.patient import Patient
from trialctl.domain.protocol import ResponseSchedule
from trialctl.domain.recist import (
    RECIST_1_0,
    RECIST_1_1,
    RecistRules,
    ResponseCategory,
    TargetLesion,
    assess_response,
    classify_response,
    recist_rules,
    sum_of_diameters,
    validate_baseline,
)

CR, PR, SD, PD = ResponseCategory.CR, ResponseCategory.PR, ResponseCategory.SD, ResponseCategory.PD
D = Decimal
BOTH = pytest.mark.parametrize("rules", [RECIST_1_0, RECIST_1_1], ids=["1.0", "1.1"])


def lesions(count: int, per_organ: int, mm: int = 20) -> list[TargetLesion]:
    """`count` non-nodal lesions, `per_organ` to an organ."""
    return [TargetLesion(f"T{i}", f"organ{i // per_organ}", D(mm)) for i in range(count)]


def node(lesion_id: str, long_mm: str, short_mm: str) -> TargetLesion:
    return TargetLesion(lesion_id, "mediastinum", D(long_mm), is_lymph_node=True,
                        short_axis_mm=D(short_mm))


def assess(rules: RecistRules, baseline: list[TargetLesion], current: list[TargetLesion],
           nadir: str | None = None) -> ResponseCategory:
    return assess_response(
        baseline, current, nadir_sum_mm=None if nadir is None else D(nadir),
        new_lesions=False, non_target_progression=False, rules=rules,
    ).category


# ------------------------------------------------------------------ progression


@pytest.mark.parametrize(
    ("rules", "current", "expected"),
    [
        pytest.param(RECIST_1_0, 24, PD, id="1.0_plus_20pct_plus_4mm_is_PD"),
        pytest.param(RECIST_1_1, 24, SD, id="1.1_plus_20pct_plus_4mm_is_SD"),
        pytest.param(RECIST_1_0, "23.9", SD, id="1.0_plus_19.5pct_is_SD"),
        pytest.param(RECIST_1_1, 25, PD, id="1.1_plus_25pct_plus_5mm_is_PD"),
    ],
)
def test_pd_at_exactly_20_percent_with_a_4_mm_increase(
    rules: RecistRules, current: int | str, expected: ResponseCategory
) -> None:
    one = [TargetLesion("L1", "liver", D(20))]
    assert assess(rules, one, [TargetLesion("L1", "liver", D(current))]) is expected


def test_the_reasons_name_the_version_and_its_threshold() -> None:
    one, grown = [TargetLesion("L1", "liver", D(20))], [TargetLesion("L1", "liver", D(24))]
    under_1_0 = assess_response(one, grown, new_lesions=False, non_target_progression=False,
                                rules=RECIST_1_0)
    under_1_1 = assess_response(one, grown, new_lesions=False, non_target_progression=False,
                                rules=RECIST_1_1)
    assert under_1_0.reasons == ("sum 24 mm is +4 mm (+20.0%) over nadir 20 mm: >= 20 % -> PD "
                                 "(RECIST 1.0)",)
    assert "PD also needs >= +5 mm under RECIST 1.1" in under_1_1.reasons[0]
    assert under_1_0.to_dict()["recist_version"] == "1.0"
    assert under_1_1.to_dict()["recist_version"] == "1.1"


@BOTH
def test_pd_is_measured_from_the_nadir(rules: RecistRules) -> None:
    one = [TargetLesion("L1", "liver", D(100))]
    # 60 mm is 40 % below baseline but +20 % and +10 mm over the nadir of 50 mm.
    assert assess(rules, one, [TargetLesion("L1", "liver", D(60))], nadir="50") is PD
    assert assess(rules, one, [TargetLesion("L1", "liver", D("59.9"))], nadir="50") is PR


# ------------------------------------------------------------------ target-lesion limits


@pytest.mark.parametrize(
    ("rules", "count", "per_organ", "refused"),
    [
        pytest.param(RECIST_1_0, 10, 5, None, id="1.0_ten_lesions_five_per_organ"),
        pytest.param(RECIST_1_0, 11, 5, "11 target lesions; RECIST 1.0 allows at most 10",
                     id="1.0_eleven_lesions_refused"),
        pytest.param(RECIST_1_0, 6, 6, "RECIST 1.0 allows at most 5 per organ",
                     id="1.0_six_in_one_organ_refused"),
        pytest.param(RECIST_1_1, 5, 2, None, id="1.1_five_lesions_two_per_organ"),
        pytest.param(RECIST_1_1, 6, 2, "6 target lesions; RECIST 1.1 allows at most 5",
                     id="1.1_six_lesions_refused"),
        pytest.param(RECIST_1_1, 3, 3, "RECIST 1.1 allows at most 2 per organ",
                     id="1.1_three_in_one_organ_refused"),
    ],
)
def test_target_lesion_limits(
    rules: RecistRules, count: int, per_organ: int, refused: str | None
) -> None:
    baseline = lesions(count, per_organ)
    if refused is None:
        validate_baseline(baseline, rules)
    else:
        with pytest.raises(ValueError, match=refused):
            validate_baseline(baseline, rules)


# ------------------------------------------------------------------ lymph nodes


def test_the_lymph_node_short_axis_rule_applies_only_under_1_1() -> None:
    small_node = [node("N1", "25", "12")]  # 25 mm long, 12 mm short axis
    validate_baseline(small_node, RECIST_1_0)  # a 25 mm lesion like any other
    with pytest.raises(ValueError, match=r"node of 12 mm short axis.*>= 15 mm"):
        validate_baseline(small_node, RECIST_1_1)

    big = [node("N1", "30", "20"), TargetLesion("L1", "liver", D(30))]
    assert sum_of_diameters(big, RECIST_1_0) == D(60)  # longest diameters only
    assert sum_of_diameters(big, RECIST_1_1) == D(50)  # the node's short axis


def test_a_node_below_10_mm_short_axis_is_cr_only_under_1_1() -> None:
    baseline = [node("N1", "30", "20")]
    shrunk = [node("N1", "12", "8")]
    assert assess(RECIST_1_1, baseline, shrunk) is CR  # a normal node
    assert assess(RECIST_1_0, baseline, shrunk) is PR  # 12 of 30 mm: still there
    gone = [node("N1", "0", "0")]
    assert assess(RECIST_1_0, baseline, gone) is CR


def test_unknown_version_is_refused() -> None:
    assert recist_rules("1.0") is RECIST_1_0 and recist_rules("1.1") is RECIST_1_1
    with pytest.raises(ValueError, match=r"unknown RECIST version '2.0' \(known: 1.0, 1.1\)"):
        recist_rules("2.0")


@given(
    st.decimals(min_value=1, max_value=300, places=1),
    st.decimals(min_value=0, max_value=1, places=3),
    st.decimals(min_value=0, max_value=400, places=1),
)
def test_1_0_calls_target_progression_whenever_1_1_does(
    baseline: Decimal, nadir_share: Decimal, current: Decimal
) -> None:
    """1.1 only adds the 5 mm floor: every 1.1 PD is a 1.0 PD, and the two differ only
    where the increase over the nadir is under 5 mm (1.0 PD; 1.1 PR or SD)."""
    nadir = (baseline * nadir_share).quantize(D("0.1"))
    results = {
        rules.version: classify_response(
            baseline, nadir, current, targets_resolved=current == 0, new_lesions=False,
            non_target_progression=False, rules=rules,
        ).category
        for rules in (RECIST_1_0, RECIST_1_1)
    }
    if results["1.1"] is PD:
        assert results["1.0"] is PD
    if results["1.0"] != results["1.1"]:
        assert results["1.0"] is PD and results["1.1"] in (PR, SD)
        assert 0 < current - nadir < 5


# ------------------------------------------------------------------ the protocol's schedule


def test_the_shipped_protocol_uses_recist_1_0_every_9_weeks() -> None:
    response = nct_protocol().response
    assert (response.recist_version, response.interval_days, response.window_days) == (
        "1.0", 63, 7)
    text = (ROOT / "protocols" / "NCT00084513.toml").read_text(encoding="utf-8")
    assert 'recist_version = "1.0"' in text and "RECIST 1.0" in text


NINE_WEEKS = ResponseSchedule(recist_version="1.0", assessment_interval_weeks=9, window_days=7)
BASELINE = date(2026, 1, 5)


@pytest.mark.parametrize(
    ("offset", "number", "off"),
    [
        pytest.param(63, 1, False, id="week_9_on_the_day"),
        pytest.param(56, 1, False, id="week_9_seven_days_early"),
        pytest.param(55, 1, True, id="week_9_eight_days_early"),
        pytest.param(70, 1, False, id="week_9_seven_days_late"),
        pytest.param(71, 1, True, id="week_9_eight_days_late"),
        pytest.param(10, 1, True, id="soon_after_baseline_is_week_9_off"),
        pytest.param(94, 1, True, id="just_before_halfway_is_week_9"),
        pytest.param(95, 2, True, id="halfway_and_after_is_week_18"),
        pytest.param(126, 2, False, id="week_18"),
        pytest.param(190, 3, False, id="week_27_a_day_late"),
    ],
)
def test_a_visit_is_placed_on_the_nearest_scheduled_assessment(
    offset: int, number: int, off: bool
) -> None:
    assert NINE_WEEKS.place(BASELINE, BASELINE + timedelta(days=offset)) == (number, off)
    assert NINE_WEEKS.due(BASELINE, number) == BASELINE + timedelta(days=63 * number)


def test_a_stored_v1_response_reads_as_recist_1_1_without_a_schedule() -> None:
    assert Patient.ResponseAssessed.class_version == 3
    state = {"assessed_on": "2026-03-01", "category": "SD", "sum_mm": "40"}
    Patient.ResponseAssessed.upcast_v1_v2(state)
    assert state == {"assessed_on": "2026-03-01", "category": "SD", "sum_mm": "40",
                     "recist_version": "1.1", "scheduled_week": None, "off_schedule": False,
                     "next_due": None}


# ------------------------------------------------------------------ as a user meets it

@pytest.fixture
def site(home: Path, tmp_path: Path) -> Site:
    return nct_site(tmp_path)


def test_the_shipped_protocol_takes_up_to_10_target_lesions_and_refuses_11(site: Site) -> None:
    eleven = [f"T{i}:{'liver' if i < 5 else 'lung' if i < 10 else 'bone'}:20" for i in range(11)]
    refused = site.response("P001", 3, *eleven, baseline=True, check=False)
    assert_one_line_error(refused, "[rule: recist-baseline]",
                          "11 target lesions; RECIST 1.0 allows at most 10")
    assert site.patient("P001")["assessments"] == []  # nothing written

    recorded = json.loads(site.response("P001", 3, *eleven[:10], baseline=True).stdout)
    assert recorded["entries"][0]["payload"]["recist_version"] == "1.0"
    assert recorded["entries"][0]["payload"]["sum_mm"] == "200"


def test_a_4_mm_rise_of_20_percent_is_progression_under_the_shipped_protocol(
    site: Site,
) -> None:
    site.response("P001", 3, "T1:liver:20", baseline=True)
    followed = json.loads(site.response("P001", 3 + 63, "T1:liver:24").stdout)
    assert followed["summary"]["response"] == "PD"
    payload = followed["entries"][0]["payload"]
    assert (payload["category"], payload["recist_version"]) == ("PD", "1.0")
    assert payload["details"]["reasons"] == [
        "sum 24 mm is +4 mm (+20.0%) over nadir 20 mm: >= 20 % -> PD (RECIST 1.0)"]


def test_a_small_node_is_a_target_lesion_under_recist_1_0(site: Site) -> None:
    # 25 mm long, 12 mm short axis: refused by RECIST 1.1 (< 15 mm), measured by 1.0.
    recorded = json.loads(site.response("P001", 3, "N1:node:25:12", baseline=True).stdout)
    assert recorded["entries"][0]["payload"]["sum_mm"] == "25"


def test_each_assessment_shows_its_scheduled_week_and_whether_it_was_on_time(
    site: Site,
) -> None:
    site.response("P001", 3, "T1:liver:40", baseline=True)
    site.response("P001", 3 + 63 + 5, "T1:liver:38")  # week 9, five days late: on time
    late = json.loads(site.response("P001", 3 + 126 + 10, "T1:liver:36").stdout)
    # Accepted, and flagged: week 18 was due ten days earlier (window +/- 7 days).
    payload = late["entries"][0]["payload"]
    assert (payload["scheduled_week"], payload["off_schedule"]) == (18, True)
    assert payload["next_due"] == day(3 + 189)

    patient = site.patient("P001")
    assert [(a["scheduled_week"], a["off_schedule"]) for a in patient["assessments"]] == [
        (None, False), (9, False), (18, True)]  # type: ignore[union-attr, index]
    assert patient["next_assessment_due"] == day(3 + 189)

    table = site.run("patient", "P001").stdout
    assert "Response assessments" in table
    rows = [line for line in table.splitlines() if day(3 + 126 + 10) in line]
    assert rows and "week 18" in rows[0] and "no (off schedule)" in rows[0]
    week_nine = [line for line in table.splitlines() if day(3 + 63 + 5) in line]
    assert week_nine and "week 9" in week_nine[0] and "yes" in week_nine[0]
    assert f"next response assessment due: {day(3 + 189)}" in table
