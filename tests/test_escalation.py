"""Tests of the 3+3 rule engine (domain/escalation*.py) and its dose paths (dose_paths.py).

Kept together, hence the length: the same outcome tables drive the rule, the history check
and the dose-path tests.
"""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trialctl.domain.dose_paths import DosePathNode, dose_path_rows, dose_paths
from trialctl.domain.escalation import (
    ACTIONS,
    STOP_LEVEL_ABOVE_TOO_TOXIC,
    STOP_NO_TOLERABLE_DOSE,
    STOP_REASONS,
    STOP_TOP_LEVEL_CLEARED,
    Cohort,
    DosePathSyntaxError,
    DoseTally,
    OutOfRuleError,
    Selection,
    ThreePlusThree,
    check_path,
    format_dose_path,
    parse_dose_path,
)

TOP = STOP_TOP_LEVEL_CLEARED
ABOVE = STOP_LEVEL_ABOVE_TOO_TOXIC
NONE = STOP_NO_TOLERABLE_DOSE


def fit(path: str, num_doses: int = 5, deesc: bool = False, start: int = 1) -> Selection:
    design = ThreePlusThree(num_doses, start_level=start, allow_deescalation=deesc)
    return design.fit(parse_dose_path(path, num_doses))


# --- classic paths ----------------------------------------------------------------------

CLASSIC = [
    # (path, num_doses, allow_deescalation, recommended, continue, stop reason)
    pytest.param("", 5, False, 1, True, None, id="empty-starts-at-1"),
    pytest.param("", 5, True, 1, True, None, id="empty-deesc-starts-at-1"),
    pytest.param("1NN", 5, False, 1, True, None, id="unfinished-cohort-stays"),
    pytest.param("1T", 5, False, 1, True, None, id="unfinished-cohort-with-dlt-stays"),
    pytest.param("1NNN", 5, False, 2, True, None, id="0of3-escalates"),
    pytest.param("1NNT", 5, False, 1, True, None, id="1of3-expands"),
    pytest.param("1NNT 1NN", 5, False, 1, True, None, id="unfinished-expansion-stays"),
    pytest.param("1NNT 1NNN", 5, False, 2, True, None, id="1of6-escalates"),
    pytest.param("1NNT 1NTN", 5, False, None, False, NONE, id="2of6-at-lowest-no-dose"),
    pytest.param("1NNT 1NTN", 5, True, None, False, NONE, id="2of6-at-lowest-no-dose-deesc"),
    pytest.param("1NTT", 5, False, None, False, NONE, id="2of3-at-lowest-no-dose"),
    pytest.param("1TTT", 5, True, None, False, NONE, id="3of3-at-lowest-no-dose-deesc"),
    pytest.param("1NNN 2NNN 3TTN", 5, False, 2, False, ABOVE, id="2of3-mtd-below"),
    pytest.param("1NNN 2NNN 3TTN", 5, True, 2, True, None, id="2of3-deesc-fills-below"),
    pytest.param("1NNN 2NNT 2NNN 3TTN", 5, True, 2, False, ABOVE, id="deesc-below-has-6"),
    pytest.param("1NNN 2NNT 2NNN 3TTN", 5, False, 2, False, ABOVE, id="2of3-mtd-below-has-6"),
    pytest.param("1NNN 2NNN 3NNT 3TNN", 5, False, 2, False, ABOVE, id="2of6-mtd-below"),
    pytest.param("1NNN 2NNN 3NNT 3TNN", 5, True, 2, True, None, id="2of6-deesc-fills-below"),
    pytest.param("1NNN 2NNN 3NNN", 3, False, 3, False, TOP, id="top-level-cleared-0of3"),
    pytest.param("1NNN 2NNT 2NNN", 2, True, 2, False, TOP, id="top-level-cleared-1of6"),
    pytest.param("1NNN", 1, False, 1, False, TOP, id="single-level-cleared"),
    pytest.param(
        "1NNN 2NNN 3TTN 2NNN", 5, True, 2, False, ABOVE, id="re-escalation-blocked-above-toxic"
    ),
    pytest.param("1NNN 2NNN 3TTN 2NNT", 5, True, 2, False, ABOVE, id="re-escalation-blocked-1of6"),
    pytest.param("1NNN 2NNN 3TTN 2NTT", 5, True, 1, True, None, id="deesc-twice"),
    pytest.param("1NNN 2NNN 3TTN 2NTT 1NNN", 5, True, 1, False, ABOVE, id="deesc-twice-then-mtd"),
    pytest.param("1NNN 2NNN 3TTN 2NTT 1TTN", 5, True, None, False, NONE, id="deesc-twice-no-dose"),
    pytest.param("1NNN 2NNN 3TTN 2N", 5, True, 2, True, None, id="deesc-cohort-unfinished"),
]


@pytest.mark.parametrize(("path", "num_doses", "deesc", "recommended", "go_on", "reason"), CLASSIC)
def test_classic_paths(
    path: str,
    num_doses: int,
    deesc: bool,
    recommended: int | None,
    go_on: bool,
    reason: str | None,
) -> None:
    selection = fit(path, num_doses, deesc)
    assert selection.recommended_level == recommended
    assert selection.should_continue is go_on
    assert selection.stop_reason == reason
    if go_on:
        assert selection.next_level == recommended
        assert selection.mtd_level is None
        assert selection.stop_reason_text() is None
    else:
        assert selection.next_level is None
        assert selection.mtd_level == recommended
        assert selection.stop_reason_text() == STOP_REASONS[reason or ""]
    assert selection.explain()
    assert selection.path == path


def test_decisions_record_each_cohort() -> None:
    selection = fit("1NNN 2NNT 2NNN 3TTN", deesc=False)
    rows = [
        (d.cohort_index, d.level, d.patients, d.dlts, d.action, d.next_level, d.mtd_level)
        for d in selection.decisions
    ]
    assert rows == [
        (0, 1, 3, 0, "escalate", 2, None),
        (1, 2, 3, 1, "expand", 2, None),
        (2, 2, 6, 1, "escalate", 3, None),
        (3, 3, 3, 2, "stop", None, 2),
    ]
    assert selection.decisions[-1].stop_reason == ABOVE
    assert selection.decisions[-1].cohort_number == 4
    assert all(d.action in ACTIONS and d.reason for d in selection.decisions)


def test_deescalation_action_and_counts() -> None:
    selection = fit("1NNN 2NNN 3TTN", deesc=True)
    assert selection.decisions[-1].action == "deescalate"
    assert selection.patients_at(2) == 3
    assert selection.dlts_at(3) == 2
    assert selection.patients_at(4) == 0
    assert selection.admissible_levels == (1, 2)
    assert selection.num_patients == 9
    with pytest.raises(ValueError, match=r"level must be in 1\.\.5"):
        selection.patients_at(6)


def test_admissible_levels_without_toxicity_are_all_levels() -> None:
    assert fit("1NNN 2NNT", num_doses=4).admissible_levels == (1, 2, 3, 4)
    assert fit("1TTN", num_doses=4).admissible_levels == ()


def test_start_level_above_one() -> None:
    assert fit("", start=3).recommended_level == 3
    assert fit("3NNN", start=3).recommended_level == 4
    # without de-escalation the level below the start is declared untested, as the rule says
    assert fit("3TTN", start=3).mtd_level == 2
    # with de-escalation it is filled to 6 before being declared
    assert fit("3TTN", start=3, deesc=True).next_level == 2
    expanded = fit("3TTN 2NNN", start=3, deesc=True)
    assert (expanded.next_level, expanded.decisions[-1].action) == (2, "expand")
    declared = fit("3TTN 2NNN 2NNN", start=3, deesc=True)
    assert (declared.mtd_level, declared.stop_reason) == (2, ABOVE)


def test_deescalation_below_full_level_picks_highest_cleared_full_level() -> None:
    design = ThreePlusThree(4, allow_deescalation=True)
    # level 3 too toxic, level 2 already full with 1 of 6, level 1 only 3 patients
    tally = DoseTally((3, 6, 3, 0), (0, 1, 2, 0))
    step = design.decide(tally, 3)
    assert (step.action, step.mtd_level, step.stop_reason) == ("stop", 2, ABOVE)
    # level 2 full but toxic and level 1 not full: nothing can be declared
    step = design.decide(DoseTally((3, 6, 3, 0), (0, 2, 2, 0)), 3)
    assert (step.action, step.mtd_level, step.stop_reason) == ("stop", None, NONE)


def test_decide_before_any_cohort_starts_at_start_level() -> None:
    design = ThreePlusThree(4, start_level=2)
    step = design.decide(DoseTally.empty(4), None)
    assert (step.action, step.next_level, step.should_continue) == ("continue", 2, True)
    with pytest.raises(ValueError, match="tally covers 3 levels"):
        design.decide(DoseTally.empty(3), None)


# --- out of rule ------------------------------------------------------------------------

OUT_OF_RULE = [
    # (path, num_doses, deesc, cohort number, prescribed level, text in the reason)
    pytest.param("2NNN", 5, False, 1, 1, "start level 1", id="first-cohort-not-at-start"),
    pytest.param("1NNN 3NNN", 5, False, 2, 2, "prescribe level 2", id="skipped-a-level"),
    pytest.param("1NNN 1NNN", 5, False, 2, 2, "prescribe level 2", id="stayed-after-0of3"),
    pytest.param("1NNT 2NNN", 5, False, 2, 1, "prescribe level 1", id="escalated-after-1of3"),
    pytest.param("1NNN 2TTN 1NNN", 5, False, 3, None, "stopped", id="cohort-after-stop"),
    pytest.param("1NNN 2NNN 3NNN 3N", 3, False, 4, None, "stopped", id="after-top-cleared"),
    pytest.param("1NNT 1NNN 1NNN", 5, False, 3, 2, "prescribe level 2", id="third-cohort"),
    pytest.param("1NNTNNN", 5, False, 1, 1, "past the decision", id="six-in-one-cohort"),
    pytest.param("1NNNN", 5, False, 1, 1, "past the decision", id="overruns-first-three"),
    pytest.param("1NNT 1NNNN", 5, False, 2, 1, "at most 6", id="more-than-six-at-level"),
    pytest.param(
        "1NNN 2NNN 2NNN 3TTN", 5, True, 3, 3, "prescribe level 3", id="expanded-after-0of3"
    ),
    pytest.param(
        "1NNN 2NNN 3TTN 1NNN", 5, True, 4, 2, "prescribe level 2", id="deesc-skipped-a-level"
    ),
]


@pytest.mark.parametrize(("path", "num_doses", "deesc", "number", "prescribed", "why"), OUT_OF_RULE)
def test_out_of_rule_paths_are_rejected_with_reason(
    path: str, num_doses: int, deesc: bool, number: int, prescribed: int | None, why: str
) -> None:
    design = ThreePlusThree(num_doses, allow_deescalation=deesc)
    cohorts = parse_dose_path(path, num_doses)
    with pytest.raises(OutOfRuleError, match=why) as raised:
        check_path(design, cohorts)
    error = raised.value
    assert error.cohort_number == number
    assert error.level == cohorts[number - 1].level
    assert error.prescribed_level == prescribed
    assert f"cohort {number} at level {error.level}" in str(error)
    with pytest.raises(OutOfRuleError):
        design.fit(cohorts)


def test_check_path_accepts_in_rule_paths() -> None:
    design = ThreePlusThree(5, allow_deescalation=True)
    check_path(design, parse_dose_path("1NNN 2NTN 2NNN 3TTN", 5))
    check_path(design, parse_dose_path("1NN 1N 2N 2N 2N", 5))
    check_path(design, [])


def test_level_beyond_design_is_out_of_rule() -> None:
    with pytest.raises(OutOfRuleError, match="prescribe level 2") as raised:
        ThreePlusThree(2).fit([Cohort(1, (False,) * 3), Cohort(3, (False,))])
    assert (raised.value.level, raised.value.prescribed_level) == (3, 2)


# --- design and cohort validation -------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field_name"),
    [
        pytest.param({"num_doses": 0}, "num_doses", id="no-doses"),
        pytest.param({"num_doses": True}, "num_doses", id="bool-doses"),
        pytest.param({"num_doses": 3, "start_level": 4}, "start_level", id="start-too-high"),
        pytest.param({"num_doses": 3, "start_level": 0}, "start_level", id="start-zero"),
        pytest.param(
            {"num_doses": 3, "allow_deescalation": 1}, "allow_deescalation", id="deesc-not-bool"
        ),
        pytest.param({"num_doses": 3, "cohort_size": 1}, "cohort_size", id="cohort-of-one"),
        pytest.param({"num_doses": 3, "max_per_level": 9}, "max_per_level", id="max-not-6"),
    ],
)
def test_design_validation_names_the_field(kwargs: dict[str, object], field_name: str) -> None:
    with pytest.raises(ValueError, match=field_name):
        ThreePlusThree(**kwargs)  # type: ignore[arg-type]


def test_design_is_frozen_and_hashable() -> None:
    design = ThreePlusThree(4)
    with pytest.raises(dataclasses.FrozenInstanceError):
        design.num_doses = 5  # type: ignore[misc]
    assert hash(design) == hash(ThreePlusThree(4))


@pytest.mark.parametrize(
    ("level", "outcomes"),
    [
        pytest.param(0, (False,), id="level-zero"),
        pytest.param(1, (), id="no-patients"),
        pytest.param(1, [False], id="list-not-tuple"),
        pytest.param(1, (0, 1), id="ints-not-bools"),
    ],
)
def test_cohort_validation(level: int, outcomes: tuple[bool, ...]) -> None:
    with pytest.raises(ValueError):
        Cohort(level, outcomes)


def test_cohort_from_counts() -> None:
    cohort = Cohort.from_counts(2, 3, 1)
    assert cohort == Cohort(2, (False, False, True))
    assert (cohort.size, cohort.dlts, cohort.letters, cohort.notation) == (3, 1, "NNT", "2NNT")
    with pytest.raises(ValueError, match="dlts"):
        Cohort.from_counts(1, 3, 4)


def test_two_plus_two_generalisation() -> None:
    design = ThreePlusThree(3, cohort_size=2, max_per_level=4)
    assert design.fit(parse_dose_path("1NN", 3)).next_level == 2
    assert design.fit(parse_dose_path("1NT", 3)).next_level == 1
    assert design.fit(parse_dose_path("1NT 1NN 2TT", 3)).mtd_level == 1


# --- notation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "cohort_number", "points_at"),
    [
        pytest.param("1NXN", 1, "'X'", id="bad-letter"),
        pytest.param("NNN", 1, "dose level", id="no-level"),
        pytest.param("0NNN", 1, "outside 1..6", id="level-zero"),
        pytest.param("7NNN", 1, "outside 1..6", id="level-above-num-doses"),
        pytest.param("1", 1, "no patient outcomes", id="no-letters"),
        pytest.param("1NNN 2NN-", 2, "'-'", id="bad-char-second-cohort"),
        pytest.param("1NNN 2NTN T2NN", 3, "dose level", id="letter-before-level"),
    ],
)
def test_malformed_paths_raise_syntax_error(text: str, cohort_number: int, points_at: str) -> None:
    with pytest.raises(DosePathSyntaxError) as raised:
        parse_dose_path(text, num_doses=6)
    error = raised.value
    assert isinstance(error, ValueError)
    assert error.cohort_number == cohort_number
    assert error.token in str(error)
    assert text.split()[cohort_number - 1] == error.token
    assert text[error.position :].startswith(error.token)
    assert points_at in str(error)


def test_parse_accepts_lower_case_and_any_whitespace() -> None:
    assert parse_dose_path("  1nnt\t2NtN\n", 3) == [
        Cohort(1, (False, False, True)),
        Cohort(2, (False, True, False)),
    ]
    assert parse_dose_path("", 3) == []
    assert parse_dose_path("   ", 3) == []
    assert parse_dose_path("12NNN", 12) == [Cohort(12, (False, False, False))]


def test_parse_rejects_bad_num_doses() -> None:
    with pytest.raises(ValueError, match="num_doses"):
        parse_dose_path("1NNN", 0)


@pytest.mark.parametrize(
    "text", ["", "1NNN", "1NNT 1NTN", "1NNN 2NNN 3TTN 2NTT 1NNN", "1N 1TN 10TTTTTT"]
)
def test_format_parse_round_trip(text: str) -> None:
    assert format_dose_path(parse_dose_path(text, 10)) == text


@given(
    st.lists(
        st.builds(
            Cohort,
            st.integers(1, 12),
            st.lists(st.booleans(), min_size=1, max_size=7).map(tuple),
        ),
        max_size=8,
    )
)
def test_format_parse_round_trip_property(cohorts: list[Cohort]) -> None:
    assert parse_dose_path(format_dose_path(cohorts), 12) == cohorts


# --- dose paths -------------------------------------------------------------------------


def brute_force_count(design: ThreePlusThree, cohorts: list[Cohort], k: int) -> int:
    """Nodes of the tree, by fitting every continuation directly."""
    selection = design.fit(cohorts)
    if k == 0 or selection.next_level is None:
        return 1
    level = selection.next_level
    size = design.cohort_size - selection.patients_at(level) % design.cohort_size
    return 1 + sum(
        brute_force_count(design, [*cohorts, Cohort.from_counts(level, size, dlts)], k - 1)
        for dlts in range(size + 1)
    )


def test_dose_paths_one_future_cohort_from_fresh_trial() -> None:
    root = dose_paths(ThreePlusThree(5), [], 1)
    assert [child.outcome for child in root.children] == ["NNN", "NNT", "NTT", "TTT"]
    assert [child.next_level for child in root.children] == [2, 1, None, None]
    assert len(list(root.walk())) == 1 + 4


@pytest.mark.parametrize(
    ("num_doses", "deesc", "k", "expected"),
    [
        pytest.param(5, False, 0, 1, id="k0"),
        pytest.param(5, False, 1, 5, id="k1"),
        pytest.param(5, False, 2, 13, id="k2"),
        pytest.param(5, False, 3, 25, id="k3"),
        pytest.param(5, True, 2, 13, id="k2-deesc"),
        pytest.param(5, True, 3, 33, id="k3-deesc"),
        pytest.param(1, False, 3, 9, id="single-level"),
    ],
)
def test_dose_path_node_counts(num_doses: int, deesc: bool, k: int, expected: int) -> None:
    design = ThreePlusThree(num_doses, allow_deescalation=deesc)
    root = dose_paths(design, [], k)
    nodes = list(root.walk())
    assert len(nodes) == expected
    assert len(nodes) == brute_force_count(design, [], k)
    # the formula: 1 + (cohort_size + 1) x (continuing nodes at depths 0..k-1)
    continuing = sum(1 for node in nodes if node.should_continue and node.depth < k)
    assert len(nodes) == 1 + (design.cohort_size + 1) * continuing


@pytest.mark.parametrize("deesc", [False, True], ids=["plain", "deesc"])
@pytest.mark.parametrize("so_far", ["", "1NNN", "1NNT", "1NNN 2NNN 3TTN", "1NN"])
def test_each_node_agrees_with_fitting_its_own_path(so_far: str, deesc: bool) -> None:
    design = ThreePlusThree(4, allow_deescalation=deesc)
    root = dose_paths(design, parse_dose_path(so_far, 4), 4)
    assert root.path == so_far and root.depth == 0 and root.parent_id is None
    nodes = list(root.walk())
    assert len({node.id for node in nodes}) == len(nodes)
    assert len({node.path for node in nodes}) == len(nodes)
    by_id = {node.id: node for node in nodes}
    for node in nodes:
        direct = design.fit(parse_dose_path(node.path, 4))
        assert node.next_level == direct.next_level
        assert node.recommended_level == direct.recommended_level
        assert node.should_continue == direct.should_continue
        assert node.mtd_level == direct.mtd_level
        assert node.stop_reason == direct.stop_reason
        if not node.should_continue:
            assert node.children == ()
        if node.parent_id is not None:
            parent = by_id[node.parent_id]
            assert node.depth == parent.depth + 1
            assert node.path == f"{parent.path} {node.level}{node.outcome}".strip()
            assert node.level == parent.next_level
        assert root.find(node.path) is node


def test_dose_paths_complete_an_unfinished_cohort() -> None:
    root = dose_paths(ThreePlusThree(3), parse_dose_path("1NN", 3), 1)
    assert [(child.outcome, child.next_level) for child in root.children] == [("N", 2), ("T", 1)]


def test_dose_paths_reject_out_of_rule_history() -> None:
    with pytest.raises(OutOfRuleError):
        dose_paths(ThreePlusThree(3), parse_dose_path("1NNN 1NNN", 3), 1)
    with pytest.raises(ValueError, match="num_future_cohorts"):
        dose_paths(ThreePlusThree(3), [], -1)


def test_dose_path_rows() -> None:
    root = dose_paths(ThreePlusThree(3), [], 2)
    rows = dose_path_rows(root)
    assert len(rows) == len(list(root.walk())) == 13
    assert rows[0] == {
        "id": 0,
        "parent_id": None,
        "depth": 0,
        "level": None,
        "outcome": "",
        "path": "",
        "next_level": 1,
        "should_continue": True,
        "mtd_level": None,
        "stop_reason": None,
    }
    stopped = next(row for row in rows if row["path"] == "1NTT")
    assert (stopped["next_level"], stopped["stop_reason"], stopped["depth"]) == (None, NONE, 1)
    seen: set[int] = set()
    for row in rows:  # parents come before their children
        assert row["parent_id"] is None or row["parent_id"] in seen
        seen.add(row["id"])


def test_dose_path_node_is_frozen() -> None:
    root: DosePathNode = dose_paths(ThreePlusThree(2), [], 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        root.depth = 3  # type: ignore[misc]


# --- properties -------------------------------------------------------------------------


@st.composite
def followed_trials(draw: st.DrawFn) -> tuple[ThreePlusThree, list[Cohort]]:
    """A design and a whole trial that follows its own decisions, with random DLTs.

    Cohorts are sometimes split into smaller pieces (patients reported in parts).
    """
    num_doses = draw(st.integers(1, 8))
    design = ThreePlusThree(
        num_doses,
        start_level=draw(st.integers(1, num_doses)),
        allow_deescalation=draw(st.booleans()),
    )
    cohorts: list[Cohort] = []
    selection = design.fit(cohorts)
    bound = design.max_per_level * num_doses
    while selection.next_level is not None:
        assert sum(c.size for c in cohorts) < bound, "the trial does not terminate"
        level = selection.next_level
        room = design.cohort_size - selection.patients_at(level) % design.cohort_size
        size = draw(st.sampled_from([room, room, room, *range(1, room + 1)]))
        outcomes = tuple(draw(st.lists(st.booleans(), min_size=size, max_size=size)))
        cohort = Cohort(level, outcomes)
        cohorts.append(cohort)
        selection = selection.then(cohort)
    return design, cohorts


def prefixes(design: ThreePlusThree, cohorts: list[Cohort]) -> list[tuple[list[Cohort], Selection]]:
    return [(cohorts[:i], design.fit(cohorts[:i])) for i in range(len(cohorts) + 1)]


@settings(max_examples=300, deadline=None)
@given(followed_trials())
def test_followed_paths_are_in_rule_and_terminate(
    trial: tuple[ThreePlusThree, list[Cohort]],
) -> None:
    design, cohorts = trial
    check_path(design, cohorts)
    final = design.fit(cohorts)
    assert not final.should_continue
    assert final.stop_reason in STOP_REASONS
    assert len(final.decisions) == len(cohorts)
    assert final.decisions[-1].action == "stop"
    assert all(d.action != "stop" for d in final.decisions[:-1])
    assert sum(c.size for c in cohorts) <= design.max_per_level * design.num_doses
    # the notation carries the whole trial
    text = format_dose_path(cohorts)
    assert design.fit(parse_dose_path(text, design.num_doses)) == final


@settings(max_examples=300, deadline=None)
@given(followed_trials())
def test_never_more_than_six_at_a_level(trial: tuple[ThreePlusThree, list[Cohort]]) -> None:
    design, cohorts = trial
    final = design.fit(cohorts)
    for level in range(1, design.num_doses + 1):
        assert final.patients_at(level) <= design.max_per_level


@settings(max_examples=300, deadline=None)
@given(followed_trials())
def test_never_escalates_above_a_toxic_level(trial: tuple[ThreePlusThree, list[Cohort]]) -> None:
    design, cohorts = trial
    for _, selection in prefixes(design, cohorts):
        toxic = [level for level in range(1, design.num_doses + 1) if selection.dlts_at(level) >= 2]
        if not toxic:
            continue
        lowest_toxic = min(toxic)
        if selection.next_level is not None:
            assert selection.next_level <= lowest_toxic
            if selection.decisions[-1].action == "escalate":
                assert selection.next_level < lowest_toxic
        if selection.mtd_level is not None:
            assert selection.mtd_level < lowest_toxic
        assert max(selection.admissible_levels, default=0) < lowest_toxic


@settings(max_examples=300, deadline=None)
@given(followed_trials())
def test_deescalation_mtd_below_toxic_level_has_six(
    trial: tuple[ThreePlusThree, list[Cohort]],
) -> None:
    design, cohorts = trial
    final = design.fit(cohorts)
    mtd = final.mtd_level
    if mtd is None:
        return
    assert final.dlts_at(mtd) <= 1
    above_is_toxic = mtd < design.num_doses and final.dlts_at(mtd + 1) >= 2
    if design.allow_deescalation and above_is_toxic:
        assert final.patients_at(mtd) == design.max_per_level
    if not above_is_toxic:
        assert final.stop_reason == TOP


@settings(max_examples=200, deadline=None)
@given(followed_trials(), st.data())
def test_deviating_from_the_decision_is_rejected(
    trial: tuple[ThreePlusThree, list[Cohort]], data: st.DataObject
) -> None:
    design, cohorts = trial
    cut = data.draw(st.integers(0, len(cohorts)))
    selection = design.fit(cohorts[:cut])
    wrong_levels = [
        level for level in range(1, design.num_doses + 2) if level != selection.next_level
    ]
    level = data.draw(st.sampled_from(wrong_levels))
    with pytest.raises(OutOfRuleError) as raised:
        check_path(design, [*cohorts[:cut], Cohort(level, (False,))])
    assert raised.value.cohort_number == cut + 1
    assert raised.value.prescribed_level == selection.next_level
