"""Dose modifications as protocol data: a reduction makes later doses due at the reduced
level, a hold refuses doses until a resume, and an investigator signs each change."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import assert_one_line_error
from tests.dosing_site import open_site, protocol_variant
from tests.trial_helpers import day


def test_a_reduction_sets_the_level_later_doses_are_checked_against(
    ledger_url: str, home: Path, tmp_path: Path
) -> None:
    protocol = protocol_variant(tmp_path, **{"start_level = 1": "start_level = 4"})
    site = open_site(ledger_url, tmp_path, protocol)
    site.enroll()
    site.imatinib(4, 1, 1, day(5))
    by_monitor = site.dose_change("reduce", day(7), to_level=3, user="mona", check=False)
    assert_one_line_error(by_monitor, "refused")
    too_far = site.dose_change("reduce", day(7), to_level=1, check=False)
    assert_one_line_error(too_far, "[rule: max-reduction]")
    site.dose_change("reduce", day(7), to_level=3)

    old_level = site.imatinib(4, 1, 8, day(12), check=False)
    assert_one_line_error(old_level, "due at level 3 (reduced from 4)", "[rule: own-dose-level]")
    site.imatinib(3, 1, 8, day(12))
    back_up = site.dose_change("resume", day(13), to_level=4, check=False)
    assert_one_line_error(back_up, "[rule: re-escalation]")
    site.dose_change("hold", day(13))
    held = site.imatinib(3, 1, 15, day(19), check=False)
    assert_one_line_error(held, "held since 2026-01-18", "[rule: dose-held]")

    shown = site.patient()
    assert [c["action"] for c in shown["patient"]["dose_changes"]] == ["reduce", "hold"]
    (imatinib, _) = shown["dose_intensity"]
    assert (imatinib["doses_given"], imatinib["amount_given"], imatinib["intensity"]) == (
        2, "1400", "0.08")
