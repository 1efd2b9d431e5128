"""A site running the shipped NCT00084513 protocol (or a variant of it) through the real
`trialctl` process, for the dosing, dose-change and SAE tests: a PI, an investigator and a
monitor, and one patient enrolled at the protocol's start level."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import Result
from tests.signed_site import SignedSite, staff_ledger
from tests.trial_helpers import ROOT, day, nct_protocol, screening_for

NCT_TEXT = (ROOT / "protocols" / "NCT00084513.toml").read_text(encoding="utf-8")
IMATINIB, TRASTUZUMAB = "imatinib mesylate", "trastuzumab"
# The shipped levels (mg/day) and the trastuzumab doses (mg/kg) by course.
LEVEL_DOSE = {1: "300", 2: "400", 3: "600", 4: "800"}
TRASTUZUMAB_DOSE = {1: "8", 2: "6"}


def protocol_variant(tmp_path: Path, **replacements: str) -> Path:
    """The shipped protocol with whole lines replaced (`start_level = 1` → another line)."""
    text = NCT_TEXT
    for old, new in replacements.items():
        assert old in text, old
        text = text.replace(old, new, 1)
    path = tmp_path / "protocol.toml"
    path.write_text(text, encoding="utf-8")
    return path


def moment(date_text: str) -> str:
    return f"{date_text}T09:00:00+00:00"


class DosingSite(SignedSite):
    def __init__(self, url: str, tmp_path: Path) -> None:
        super().__init__(url)
        self.tmp_path = tmp_path

    def enroll(self, patient: str = "P001", offset: int = 0) -> None:
        values = self.tmp_path / f"{patient}.json"
        values.write_text(json.dumps(screening_for(nct_protocol(), offset + 1)))
        self.record("consent", patient, "--consent-version", "1.0", "--date", day(offset))
        self.record("screen", patient, "--date", day(offset + 1), "--values-file", str(values))
        self.record("enroll", patient, "--date", day(offset + 2))

    def dose(self, agent: str, amount: str, unit: str, course: int, day_of_course: int,
             on: str, patient: str = "P001", check: bool = True) -> Result:
        return self.record("dose", patient, "--agent", agent, "--dose", amount, "--unit", unit,
                           "--course", str(course), "--day", str(day_of_course),
                           "--at", moment(on), check=check)

    def imatinib(self, level: int, course: int, day_of_course: int, on: str,
                 patient: str = "P001", check: bool = True) -> Result:
        return self.dose(IMATINIB, LEVEL_DOSE[level], "mg/day", course, day_of_course, on,
                         patient, check)

    def trastuzumab(self, course: int, on: str, patient: str = "P001",
                    check: bool = True) -> Result:
        return self.dose(TRASTUZUMAB, TRASTUZUMAB_DOSE[min(course, 2)], "mg/kg", course, 1, on,
                         patient, check)

    def dose_change(self, action: str, on: str, *, course: int = 1, to_level: int | None = None,
                    reason: str = "toxicity", user: str = "ivan", patient: str = "P001",
                    check: bool = True) -> Result:
        level = [] if to_level is None else ["--to-level", str(to_level)]
        return self.record("dose-change", patient, "--course", str(course), "--action", action,
                           *level, "--reason", reason, "--text", "grade 3 diarrhoea",
                           "--date", on, user=user, check=check)


def open_site(url: str, tmp_path: Path, protocol: Path | None = None) -> DosingSite:
    site = DosingSite(url, tmp_path)
    staff_ledger(url, monitor=True)
    shipped = ROOT / "protocols" / "NCT00084513.toml"
    site.run("trial", "register", str(protocol or shipped), user="pat")
    return site
