"""A real SQLite ledger with the shipped NCT00084513 protocol and one enrolled patient,
P001, driven through `trialctl` as real processes."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

from tests.conftest import Result
from tests.signed_site import SignedSite, staff_ledger
from tests.trial_helpers import ROOT, day
from trialctl.ledger.demo import screening_values

NCT = ROOT / "protocols" / "NCT00084513.toml"


class Site(SignedSite):
    def __init__(self, ledger: str, tmp_path: Path) -> None:
        super().__init__(ledger)
        self.ledger = ledger
        self.tmp_path = tmp_path

    def screen_and_enroll(self, patient: str, offset: int = 0, **changes: object) -> None:
        values = self.tmp_path / f"{patient}.json"
        screened = date.fromisoformat(day(offset + 1))
        values.write_text(json.dumps(screening_values(screened, **changes)))
        self.run("record", "consent", patient, "--consent-version", "1.0", "--date",
                 day(offset), user="ivan")
        self.run("record", "screen", patient, "--date", day(offset + 1), "--values-file",
                 str(values), user="ivan")
        self.run("record", "enroll", patient, "--date", day(offset + 2), user="ivan")

    def response(self, patient: str, offset: int, *lesion: str, baseline: bool = False,
                 check: bool = True) -> Result:
        flags = [f"--lesion={x}" for x in lesion] + (["--baseline"] if baseline else [])
        return self.run("record", "response", patient, "--date", day(offset), *flags,
                        "--json", user="ivan", check=check)

    def patient(self, patient: str = "P001") -> dict[str, Any]:
        """The patient's own state: `patient --json`'s `patient` object."""
        found = super().patient(patient)["patient"]
        assert isinstance(found, dict)
        return found


def nct_site(tmp_path: Path, enrolled: bool = True) -> Site:
    """Needs the `home` fixture (an empty TRIALCTL_HOME) to be active."""
    site = Site(str(tmp_path / "ledger.sqlite"), tmp_path)
    staff_ledger(site.ledger)
    site.run("trial", "register", str(NCT), user="pat")
    if enrolled:
        site.screen_and_enroll("P001")
    return site
