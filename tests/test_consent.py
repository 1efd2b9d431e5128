"""Consent as it really goes: the protocol lists its form versions, a patient re-consents
to an amended one, and a patient whose latest signature is not to a current version is
flagged as due to re-consent. Domain rules in-process; the commands as real processes on
SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import assert_one_line_error
from tests.nct_site import NCT, Site
from tests.signed_site import staff_ledger
from tests.trial_helpers import NOW, day
from trialctl.domain import journey
from trialctl.domain.consent import consent_history
from trialctl.domain.facts import Consent, Reconsent
from trialctl.domain.protocol_file import ProtocolError, load_protocol
from trialctl.domain.rules import TrialRuleError
from trialctl.domain.trial import Trial
from trialctl.ledger.demo import shipped_protocol


def _trial() -> Trial:
    return Trial.register(shipped_protocol(), NOW)


def _consented(version: str = "2.1", signed_on: str = "2026-01-05") -> tuple[Trial, object]:
    trial = _trial()
    patient = journey.consent(
        trial, "P001", Consent(consent_version=version, signed_on=signed_on), False, NOW
    )
    return trial, patient


def test_first_consent_names_a_listed_version_signed_after_its_approval() -> None:
    trial = _trial()
    with pytest.raises(TrialRuleError, match=r"'9\.9' is not in the protocol.*consent-version"):
        journey.consent(trial, "P001", Consent(consent_version="9.9", signed_on="2026-01-05"),
                        False, NOW)
    # 2.2 was approved on 2020-06-01: the day before is refused, the day itself accepted.
    with pytest.raises(TrialRuleError, match="approved on 2020-06-01"):
        journey.consent(trial, "P001", Consent(consent_version="2.2", signed_on="2020-05-31"),
                        False, NOW)
    journey.consent(trial, "P001", Consent(consent_version="2.2", signed_on="2020-06-01"),
                    False, NOW)


def test_reconsent_to_an_amended_version_and_its_refusals() -> None:
    trial, patient = _consented()
    journey.take(trial, patient, Reconsent(consent_version="2.2", signed_on="2026-02-01"),
                 {}, NOW)
    summary = patient.summary(trial.protocol)  # type: ignore[attr-defined]
    assert [(c["consent_version"], c["reconsent"]) for c in summary["consents"]] == [
        ("2.1", False), ("2.2", True)]
    assert summary["consent_version"] == "2.2" and summary["reconsent_due"] is False
    assert summary["consent_date"] == "2026-01-05"  # the first signature opens the record
    refusals = [
        (Reconsent(consent_version="2.2", signed_on="2026-03-01"), "consent-version-once"),
        (Reconsent(consent_version="2.1", signed_on="2026-03-01"), "consent-version-once"),
        (Reconsent(consent_version="7", signed_on="2026-03-01"), "consent-version"),
        (Reconsent(consent_version="1.1", signed_on="2026-03-01"), "consent-current"),
    ]
    for fact, rule in refusals:
        with pytest.raises(TrialRuleError, match=rf"\[rule: {rule}\]"):
            journey.take(trial, patient, fact, {}, NOW)


def test_reconsent_not_before_the_latest_signature() -> None:
    trial, patient = _consented("1.1")
    journey.take(trial, patient, Reconsent(consent_version="2.1", signed_on="2026-02-01"),
                 {}, NOW)
    with pytest.raises(TrialRuleError, match=r"before the latest consent \(version 2\.1\)"):
        journey.take(trial, patient, Reconsent(consent_version="2.2", signed_on="2026-01-31"),
                     {}, NOW)
    journey.take(trial, patient, Reconsent(consent_version="2.2", signed_on="2026-02-01"),
                 {}, NOW)


def test_reconsent_due_when_the_latest_version_is_not_current() -> None:
    forms = shipped_protocol().consent
    old = [{"version": 1, "consent_version": "1.1", "signed_on": "2026-01-05"}]
    assert consent_history(old, forms)["reconsent_due"] is True
    renewed = [*old, {"version": 4, "consent_version": "2.1", "signed_on": "2026-02-05"}]
    assert consent_history(renewed, forms)["reconsent_due"] is False
    assert consent_history(old, None)["reconsent_due"] is False  # no forms listed


@pytest.mark.parametrize(("section", "message"), [
    ('[consent]\n[[consent.versions]]\nversion = "1"\napproved_on = "2020-01-01"\n'
     'current = false\n', "no version is marked current"),
    ('[consent]\n[[consent.versions]]\nversion = "1"\napproved_on = "2020-01-01"\n'
     'current = true\n[[consent.versions]]\nversion = "1"\napproved_on = "2021-01-01"\n'
     'current = true\n', "duplicate consent version '1'"),
    ('[consent]\n[[consent.versions]]\nversion = "1"\napproved_on = "soon"\ncurrent = true\n',
     "consent.versions[0].approved_on: 'soon' is not a date"),
    ('[consent]\n[[consent.versions]]\nversion = "1"\napproved_on = "2020-01-01"\n'
     'current = true\nsigned = 3\n', "consent.versions[0].signed: unknown field"),
])
def test_protocol_consent_section_refusals(section: str, message: str) -> None:
    text = NCT.read_text(encoding="utf-8")
    text = text[: text.index("[consent]")] + section
    with pytest.raises(ProtocolError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_protocol(text)


# -- the commands ------------------------------------------------------------------------


@pytest.fixture
def site(ledger_url: str, home: Path, tmp_path: Path) -> Site:
    site = Site(ledger_url, tmp_path)
    staff_ledger(ledger_url)
    site.run("trial", "register", str(NCT), user="pat")
    return site


def _consent(site: Site, patient: str, version: str, offset: int, check: bool = True) -> object:
    return site.run("record", "consent", patient, "--consent-version", version, "--date",
                    day(offset), "--json", user="ivan", check=check)


def test_reconsent_on_the_command_line(site: Site) -> None:
    _consent(site, "P001", "1.1", 0)
    flagged = site.patient("P001")
    assert flagged["reconsent_due"] is True
    table = site.run("patient", "P001").stdout
    assert "P001: consented (re-consent due)" in table
    assert "re-consent due: signed version 1.1; current: 2.1, 2.2" in table

    written = json.loads(_consent(site, "P001", "2.2", 3).stdout)  # type: ignore[attr-defined]
    assert [e["type"] for e in written["entries"]] == ["trialctl.Patient.Reconsented"]
    assert written["entries"][0]["meaning"] == "recorded"
    renewed = site.patient("P001")
    assert renewed["reconsent_due"] is False and renewed["consent_version"] == "2.2"
    assert [c["consent_version"] for c in renewed["consents"]] == ["1.1", "2.2"]
    assert "re-consent: version 2.2 signed" in site.run("patient", "P001").stdout

    before = site.run("log", "--json").stdout
    for version, fragment in (("2.2", "already signed consent version 2.2"),
                              ("4.0", "'4.0' is not in the protocol"),
                              ("1.0", "no longer current")):
        refused = _consent(site, "P001", version, 5, check=False)
        assert_one_line_error(refused, fragment)  # type: ignore[arg-type]
    assert site.run("log", "--json").stdout == before  # nothing recorded
