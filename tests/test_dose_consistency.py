"""Doses are consistent with their course: one per agent, course and day; dated by their day
number from the course's day 1 (its first day-1 dose); never before day 1 or in a course
that has not started. Each rule at its boundary, through the real `trialctl`."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import assert_one_line_error
from tests.dosing_site import DosingSite, moment, open_site
from tests.trial_helpers import day


@pytest.fixture
def site(ledger_url: str, home: Path, tmp_path: Path) -> DosingSite:
    site = open_site(ledger_url, tmp_path)
    site.enroll()
    return site


def refused_and_unchanged(site: DosingSite, result: object, *fragments: str) -> None:
    before = site.patient()
    assert_one_line_error(result, *fragments)  # type: ignore[arg-type]
    assert site.patient() == before


def test_the_same_agent_course_and_day_twice_is_refused(site: DosingSite) -> None:
    site.imatinib(1, 1, 1, day(5))
    before = site.patient()

    again = site.imatinib(1, 1, 1, day(5), check=False)

    assert_one_line_error(again, "imatinib mesylate day 1 of course 1 is already recorded",
                          "correct it instead", "[rule: dose-once]")
    assert site.patient() == before
    # Another agent on the same day is its own dose.
    site.trastuzumab(1, day(5))
    assert len(site.patient()["patient"]["doses"]) == 2


def test_the_day_number_must_match_the_date_from_day_1(site: DosingSite) -> None:
    site.imatinib(1, 1, 1, day(5))  # day 1 of course 1 is 2026-01-10
    before = site.patient()

    on_day_one = site.imatinib(1, 1, 5, "2026-01-10", check=False)
    assert_one_line_error(on_day_one, "day 5 of course 1 is 2026-01-14, not 2026-01-10",
                          "[rule: dose-day]")
    a_day_late = site.imatinib(1, 1, 5, "2026-01-15", check=False)
    assert_one_line_error(a_day_late, "day 5 of course 1 is 2026-01-14, not 2026-01-15")
    assert site.patient() == before

    site.imatinib(1, 1, 5, "2026-01-14")
    assert [d["day"] for d in site.patient()["patient"]["doses"]] == [1, 5]


def test_a_dose_before_day_1_of_its_course_is_refused(site: DosingSite) -> None:
    site.imatinib(1, 1, 1, day(5))
    before = site.patient()

    early = site.trastuzumab(1, day(4), check=False)

    assert_one_line_error(early, "2026-01-09 is before day 1 of course 1 (2026-01-10)",
                          "[rule: course-day-1]")
    assert site.patient() == before
    site.trastuzumab(1, day(5))


def test_a_dose_in_a_course_that_has_not_started_is_refused(site: DosingSite) -> None:
    before = site.patient()
    without_day_one = site.imatinib(1, 1, 2, day(5), check=False)
    assert_one_line_error(without_day_one, "course 1 has not started",
                          "record its day 1 dose before day 2", "[rule: course-started]")
    assert site.patient() == before

    site.imatinib(1, 1, 1, day(5))
    site.trastuzumab(1, day(5))
    # Course 1 began on 2026-01-10 and lasts 21 days: its DLT window ends on 2026-01-30.
    site.record("complete-course", "P001", "--course", "1", "--date", day(26))
    not_started = site.imatinib(1, 2, 8, day(33), check=False)
    assert_one_line_error(not_started, "course 2 has not started", "[rule: course-started]")
    too_soon = site.trastuzumab(2, day(25), check=False)
    assert_one_line_error(too_soon, "course 2 cannot start on 2026-01-30",
                          "earliest 2026-01-31", "[rule: course-length]")

    site.trastuzumab(2, day(26))
    site.imatinib(1, 2, 8, day(33))
    assert [(d["course"], d["day"]) for d in site.patient()["patient"]["doses"]] == [
        (1, 1), (1, 1), (2, 1), (2, 8)]


def test_a_corrected_dose_is_checked_against_the_others_not_itself(site: DosingSite) -> None:
    site.imatinib(1, 1, 1, day(5))
    site.imatinib(1, 1, 8, day(12))
    (_, day_eight) = site.patient()["patient"]["doses"]
    version = str(day_eight["version"])

    moved = site.record("correct", "P001", "--version", version, "--set",
                        f"given_at={moment(day(13))}", "--reason", "diary", check=False)
    assert_one_line_error(moved, "day 8 of course 1 is 2026-01-17, not 2026-01-18",
                          "[rule: dose-day]")

    site.record("correct", "P001", "--version", version, "--set",
                f"given_at={day(12)}T21:00:00+00:00", "--reason", "taken in the evening")
    doses = site.patient()["patient"]["doses"]
    assert doses[1]["given_at"] == f"{day(12)}T21:00:00+00:00"
