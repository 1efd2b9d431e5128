"""`record screen` against the protocol's screening form, and `protocol form`, as real
`trialctl` processes on SQLite and PostgreSQL: a refusal is one line and writes nothing; a
screening with required fields left out is "not assessed", never "failed", and cannot
enroll."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Result, assert_one_line_error, trialctl
from tests.nct_site import NCT, Site
from tests.signed_site import staff_ledger
from tests.trial_helpers import ROOT, day
from trialctl.ledger.demo import screening_values

EXAMPLE = ROOT / "docs" / "examples" / "screening.json"


@pytest.fixture
def site(ledger_url: str, home: Path, tmp_path: Path) -> Site:
    """NCT00084513 registered; P001 consented, not yet screened."""
    site = Site(ledger_url, tmp_path)
    staff_ledger(ledger_url)
    site.run("trial", "register", str(NCT), user="pat")
    site.run("record", "consent", "P001", "--consent-version", "1.0", "--date", day(0),
             user="ivan")
    return site


def _entries(site: Site) -> int:
    return site.entries()


def _screen(site: Site, values: dict[str, Any], *extra: str) -> Result:
    path = site.tmp_path / "p001.json"
    path.write_text(json.dumps(values), encoding="utf-8")
    return site.run("record", "screen", "P001", "--date", day(1), "--values-file", str(path),
                    *extra, user="ivan", check=False)


def _values(**changes: Any) -> dict[str, Any]:
    return screening_values(date.fromisoformat(day(1)), **changes)


@pytest.mark.parametrize(
    ("values", "fragments"),
    [
        ({"age": 50}, ("refused:", "screening form: age: unknown field",
                       "nearest known field: age_years", "[rule: screening-form]")),
        (_values(ecog="one"), ("screening form: ecog: expected a whole number",)),
        (_values(creatinine_mg_dl="80 umol/L"), ("creatinine_mg_dl: is in mg/dL, not umol/L",)),
        (_values(ecog=7), ("screening form: ecog: 7 is outside its range 0..5",)),
    ],
    ids=["unknown-field", "wrong-type", "wrong-unit", "out-of-range"],
)
def test_a_screening_the_form_refuses_is_one_line_and_writes_nothing(
    site: Site, values: dict[str, Any], fragments: tuple[str, ...]
) -> None:
    before = _entries(site)
    assert_one_line_error(_screen(site, values), *fragments)
    assert _entries(site) == before
    assert site.patient("P001")["status"] == "consented"


def test_a_correction_goes_through_the_same_field_checks(site: Site) -> None:
    assert _screen(site, _values()).returncode == 0
    version = "2"  # consent is version 1 of P001's record, screening 2
    before = _entries(site)
    result = site.run("record", "correct", "P001", "--version", version, "--set", "age=61",
                      "--reason", "source document", user="ivan", check=False)
    assert_one_line_error(result, "age: unknown field", "age_years")
    result = site.run("record", "correct", "P001", "--version", version, "--set",
                      "ecog=9", "--reason", "source document", user="ivan", check=False)
    assert_one_line_error(result, "ecog: 9 is outside its range 0..5")
    assert _entries(site) == before


def test_an_incomplete_screening_is_not_assessed_and_cannot_enroll(site: Site) -> None:
    values = _values()
    del values["age_years"], values["lvef_lln_percent"]
    screened = _screen(site, values)
    assert screened.returncode == 0, screened
    assert "eligibility: screening incomplete (not assessed: age_years, lvef_lln_percent)" \
        in screened.stdout
    assert "failed" not in screened.stdout

    patient = site.patient("P001")
    assert patient["status"] == "screening-incomplete"
    assert patient["not_assessed"] == ["age_years", "lvef_lln_percent"]
    shown = site.run("patient", "P001").stdout
    assert "not assessed: age_years, lvef_lln_percent" in shown
    assert "not_assessed=['age_years', 'lvef_lln_percent']" in shown  # the timeline's entry

    before = _entries(site)
    enroll = site.run("record", "enroll", "P001", "--date", day(2), user="ivan", check=False)
    assert_one_line_error(enroll, "patient P001 is not eligible: screening incomplete "
                          "(not assessed: age_years, lvef_lln_percent)", "[rule: eligible-only]")
    assert _entries(site) == before

    # Completed by a correction, the screening is assessed and the patient may enroll.
    site.run("record", "correct", "P001", "--version", "2", "--set", "age_years=57",
             "--set", "lvef_lln_percent=50", "--reason", "found in source", user="ivan")
    assert site.patient("P001")["status"] == "screened-eligible"
    site.run("record", "enroll", "P001", "--date", day(2), user="ivan")


def test_the_shipped_example_screens_eligible_as_the_readme_shows(site: Site) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "--values-file docs/examples/screening.json" in readme
    result = site.run("record", "screen", "P001", "--date", "2026-01-07", "--values-file",
                      str(EXAMPLE), user="ivan", check=False)
    assert result.returncode == 0, result
    assert "eligibility: eligible" in result.stdout


def test_protocol_form_screening_in_every_output_form(site: Site) -> None:
    table = site.run("protocol", "form", "screening").stdout
    assert "NCT00084513: Screening and eligibility form (49 fields)" in table
    assert "age_years" in table and "a whole number 0..120 years" in table

    document = json.loads(site.run("protocol", "form", "screening", "--json").stdout)
    assert document["protocol"] == "NCT00084513" and document["name"] == "screening"
    age = next(f for f in document["fields"] if f["name"] == "age_years")
    assert age == {"name": "age_years", "type": "integer", "text": "age", "unit": "years",
                   "min": "0", "max": "120", "required": True}

    out = site.tmp_path / "blank.json"
    written = site.run("protocol", "form", "screening", "--template", "-o", str(out))
    assert "49 fields" in written.stdout
    template = json.loads(out.read_text(encoding="utf-8"))
    assert list(template) == [f["name"] for f in document["fields"]]
    assert set(template.values()) == {None}
    again = site.run("protocol", "form", "screening", "--template", "-o", str(out),
                     check=False)
    assert_one_line_error(again, "exists")

    # The blank template records as an incomplete screening: nothing failed.
    screened = site.run("record", "screen", "P001", "--date", day(1), "--values-file",
                        str(out), user="ivan")
    assert "screening incomplete (not assessed: her2_ihc_score," in screened.stdout


def test_protocol_form_reads_a_file_and_refuses_bad_choices(home: Path, tmp_path: Path) -> None:
    shown = trialctl("protocol", "form", "screening", "--protocol", str(NCT), "--json")
    assert shown.returncode == 0, shown
    assert json.loads(shown.stdout)["protocol"] == "NCT00084513"
    assert_one_line_error(
        trialctl("protocol", "form", "labs", "--protocol", str(NCT)),
        "no form 'labs' (declared: screening)")
    broken = tmp_path / "broken.toml"
    text = NCT.read_text(encoding="utf-8")
    broken.write_text(text.replace('name = "age_years"', 'name = "age_yrs"'), encoding="utf-8")
    assert_one_line_error(
        trialctl("protocol", "form", "screening", "--protocol", str(broken)),
        "reads field 'age_years', which the screening form does not declare (nearest: age_yrs)")
