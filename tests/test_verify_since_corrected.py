"""`verify --projections` lists each cohort decision made on data since corrected as a
warning naming the entries involved; the exit code stays that of the findings."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import trialctl
from tests.demo_ledgers import demo_environment, signed


def _entry(env: dict[str, str], patient: str, position: int) -> dict[str, object]:
    timeline = json.loads(trialctl("patient", patient, "--json", env=env).stdout)["timeline"]
    (row,) = [r for r in timeline if r["position"] == position]
    return dict(row)


def test_the_demos_decisions_on_a_corrected_dlt_are_warnings_until_corrected_back(
    ledger_url: str, tmp_path: Path
) -> None:
    """The demo corrects P007's AE1 to grade 3, so its DLT stops counting: the decisions on
    cohorts 2, 3 and 4 counted it. Correcting the grade back clears every warning."""
    env = demo_environment(ledger_url, tmp_path)
    result = trialctl("verify", "--projections", "--json", env=env)
    assert result.returncode == 0, result
    report = json.loads(result.stdout)
    assert report["ok"] and report["findings"] == []
    warnings = report["since_corrected"]
    assert [(w["check"], w["cohort_number"], w["decision"]) for w in warnings] == [
        ("decision-since-corrected", 2, "expand"), ("decision-since-corrected", 3, "escalate"),
        ("decision-since-corrected", 4, "stop")]
    expand = warnings[0]
    assert expand["recorded"]["dlts"] == 1 and expand["rederived"]["dlts"] == 0
    assert expand["recorded"]["recommendation"]["action"] == "expand"
    assert expand["rederived"]["recommendation"]["action"] == "escalate"
    (patient,) = expand["patients"]
    assert (patient["patient_id"], patient["then"], patient["now"]) == ("P007", "DLT", "no DLT")
    (correction,) = patient["corrections"]
    assert _entry(env, "P007", correction)["type"] == "trialctl.Patient.Corrected"
    assert {str(_entry(env, "P007", p)["type"]) for p in patient["records"]} == {
        "trialctl.Patient.DltAdjudicated", "trialctl.Patient.CourseCompleted"}
    for warning in warnings:
        assert warning["entries"][0] == warning["position"]
        assert sorted(warning["entries"][1:]) == warning["entries"][1:]
        assert correction in warning["entries"]
    proof = json.loads(trialctl("proof", "inclusion", str(expand["position"]), "--json",
                                env=env).stdout)
    assert proof["type"] == "trialctl.Trial.CohortDecided"

    text = trialctl("verify", "--projections", env=env)
    assert text.returncode == 0, text
    lines = [line for line in text.stdout.splitlines() if line.startswith("WARNING ")]
    assert len(lines) == 3 and all("made on data since corrected" in line for line in lines)
    assert f"entries {', '.join(map(str, expand['entries']))}" in lines[0]
    plain = trialctl("verify", "--json", env=env)
    assert json.loads(plain.stdout)["since_corrected"] == []  # only --projections reads the facts

    corrected_ae = _entry(env, "P007", correction)["what"]
    assert "grade: 4 -> 3" in str(corrected_ae)
    back = signed(env, "ivan", "record", "correct", "P007", "--version", "8", "--set",
                  "grade=4", "--reason", "source document re-read: ANC nadir was grade 4")
    assert back.returncode == 0, back
    again = trialctl("verify", "--projections", "--json", env=env)
    assert again.returncode == 0, again
    assert json.loads(again.stdout)["since_corrected"] == []

