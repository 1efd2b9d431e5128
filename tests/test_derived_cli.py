"""Derived counts through the CLI, as real processes on a real ledger: the demo's last
correction (the level 2 DLT's neutropenia was grade 3) stops that DLT counting in `status`,
`patient`, `replay` and the read models, and the decisions that counted it are shown as made
on data since corrected; the DLT rule check, its override and coded AE terms at the door."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Result, assert_one_line_error, trialctl
from trialctl.ledger.demo import demo_password

NEUTROPENIA = "Neutrophils/granulocytes (ANC/AGC)"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    directory = tmp_path_factory.mktemp("derived")
    ledger = str(directory / "demo.sqlite")
    result = trialctl("demo", "--dir", str(directory), "--ledger", ledger, "--json")
    assert result.returncode == 0, result
    built = json.loads(result.stdout)
    assert built["verify"]["ok"] is True
    yield {"TRIALCTL_HOME": built["home"], "TRIALCTL_LEDGER": ledger}


def run(demo: dict[str, str], *args: str, user: str | None = None) -> Result:
    stdin = ""
    if user is not None:
        args = (*args, "-u", user, "--password-stdin")
        stdin = demo_password(user) + "\n"
    return trialctl(*args, stdin=stdin, env=demo)


def ok(demo: dict[str, str], *args: str) -> str:
    result = run(demo, *args)
    assert result.returncode == 0, result
    assert "Traceback" not in result.stderr
    return result.stdout


def status(demo: dict[str, str], *args: str) -> dict[str, Any]:
    return json.loads(ok(demo, *args, "--json"))  # type: ignore[no-any-return]


def test_the_corrected_grade_stops_the_dlt_counting_everywhere(demo: dict[str, str]) -> None:
    state = status(demo, "status")
    cohorts = {c["number"]: c for c in state["cohorts"]}
    assert [cohorts[n]["dlts"] for n in (1, 2, 3, 4)] == [0, 0, 0, 2]
    assert cohorts[2]["dlt_notes"] == [
        "P007 AE1: does not meet rule neutropenia_g4: min_grade 4: grade 3"]
    assert cohorts[3]["uncoded_aes"] == ["P009 AE3"]

    decisions = {d["cohort_number"]: d for d in state["decisions"]}
    assert decisions[1]["since_corrected"] is False
    expansion = decisions[2]
    assert expansion["since_corrected"] is True
    assert expansion["review"]["recorded"]["dlts"] == 1
    assert expansion["review"]["rederived"]["dlts"] == 0
    assert expansion["review"]["rederived"]["recommendation"]["action"] == "escalate"
    assert [p["patient_id"] for p in expansion["review"]["patients"]] == ["P007"]
    # Later decisions rest on the same path: flagged too, naming the same patient.
    assert decisions[3]["since_corrected"] and decisions[4]["since_corrected"]

    text = ok(demo, "status")
    assert "made on data since corrected: then 1 DLT(s) in 3 evaluated, expand; now 0 DLT(s) " \
           "in 3 evaluated, escalate; involved: P007" in text
    # The records it rests on, by the version numbers the patient view shows.
    review = expansion["review"]["patients"][0]
    versions = ", ".join(f"v{n}" for n in sorted(review["records"]))
    assert f"rests on record {versions}, corrected by v{review['corrections'][0]}" in text
    assert "does not meet rule neutropenia_g4: min_grade 4: grade 3" in text


def test_patient_shows_the_derived_outcome_and_the_flagged_decisions(
    demo: dict[str, str],
) -> None:
    data = status(demo, "patient", "P007")
    assert data["patient"]["dlts"] == 0 and data["patient"]["outcome"] == "evaluable"
    (judged,) = data["patient"]["dlt_adjudications"]
    assert judged["counts"] is False and judged["unmet"] == ["min_grade 4: grade 3"]
    assert [d["cohort_number"] for d in data["decisions_since_corrected"]] == [2, 3, 4]

    text = ok(demo, "patient", "P007")
    assert "DLT not counted: AE1: does not meet rule neutropenia_g4" in text
    assert "cohort 2 expand: made on data since corrected" in text

    uncoded = status(demo, "patient", "P009")["patient"]
    assert uncoded["uncoded_aes"] == ["AE3"]
    assert "AE3: uncoded term" in ok(demo, "patient", "P009")
    log = ok(demo, "log", "--patient", "P009", "--type", "AdverseEventReported")
    assert "coded=False" in log


def test_replay_before_the_correction_counts_the_dlt(demo: dict[str, str]) -> None:
    rows = [json.loads(line) for line in ok(demo, "log", "--json").splitlines()]
    grade = next(r for r in rows if r["type"] == "trialctl.Patient.Corrected"
                 and r["new_value"] == {"grade": 3})
    before = status(demo, "replay", "--upto", str(grade["position"] - 1))
    after = status(demo, "replay", "--upto", str(grade["position"]))

    assert [c["dlts"] for c in before["status"]["cohorts"]] == [0, 1, 0, 2]
    assert not any(d["since_corrected"] for d in before["status"]["decisions"])
    assert [c["dlts"] for c in after["status"]["cohorts"]] == [0, 0, 0, 2]
    p007 = next(p for p in after["patients"] if p["patient_id"] == "P007")
    assert p007["dlts"] == 0
    assert "made on data since corrected" in ok(demo, "replay", "--upto", str(grade["position"]))


def test_the_read_models_agree_with_a_rebuild(demo: dict[str, str]) -> None:
    current = status(demo, "status")
    ok(demo, "projections", "rebuild")
    assert status(demo, "status") == current
    assert "clean" in ok(demo, "verify")


# -- at the door: the rule check, the override, coded terms, course completion -------------


@pytest.fixture(scope="module")
def p014(demo: dict[str, str]) -> str:
    """The demo's last patient, on study: a new AE to adjudicate."""
    return "P014"


def test_a_dlt_whose_ae_fails_its_rule_is_refused_in_one_line_and_writes_nothing(
    demo: dict[str, str], p014: str,
) -> None:
    entries = len(ok(demo, "log", "--json").splitlines())
    onset = status(demo, "patient", p014)["patient"]["adverse_events"][0]["onset"]
    recorded = run(demo, "record", "ae", p014, "--id", "AE9", "--term",
                   "Fatigue (asthenia, lethargy, malaise)", "--grade", "1", "--attribution",
                   "unrelated", "--onset", onset, user="ivan")
    assert recorded.returncode == 0, recorded
    entries += 1

    refused = run(demo, "record", "dlt", p014, "--ae", "AE9", "--dlt", "--rule",
                  "non_haematologic_g3", "--date", onset, user="pat")
    assert_one_line_error(refused, "[rule: dlt-rule]", "min_grade 3: grade 1",
                          "attribution unrelated", "--override-reason")
    assert len(ok(demo, "log", "--json").splitlines()) == entries

    by_investigator = run(demo, "record", "dlt", p014, "--ae", "AE9", "--dlt", "--rule",
                          "non_haematologic_g3", "--date", onset, "--override-reason",
                          "investigator judgement", user="ivan")
    assert_one_line_error(by_investigator, "refused", "DltRuleOverridden")

    overridden = run(demo, "record", "dlt", p014, "--ae", "AE9", "--dlt", "--rule",
                     "non_haematologic_g3", "--date", onset, "--override-reason",
                     "fatigue kept the patient in bed for 10 days", "--json", user="pat")
    assert overridden.returncode == 0, overridden
    written = json.loads(overridden.stdout)
    assert written["entries"][0]["type"] == "trialctl.Patient.DltRuleOverridden"
    assert written["entries"][0]["actor"]["role"] == "principal-investigator"
    listed = status(demo, "status")["dlt_overrides"]
    assert {"patient_id": p014, "ae_id": "AE9", "rule_code": "non_haematologic_g3",
            "override_reason": "fatigue kept the patient in bed for 10 days"}.items() <= \
        listed[-1].items()
    assert "DLT override: P014 AE9 declared under non_haematologic_g3" in ok(demo, "status")


def test_an_unknown_ae_term_is_refused_naming_the_nearest_unless_uncoded(
    demo: dict[str, str], p014: str,
) -> None:
    onset = status(demo, "patient", p014)["patient"]["adverse_events"][0]["onset"]
    refused = run(demo, "record", "ae", p014, "--id", "AE7", "--term",
                  "Neutrophil count decreased", "--grade", "4", "--attribution", "probable",
                  "--onset", onset, user="ivan")
    assert_one_line_error(refused, "[rule: ctcae-term]", "not a CTCAE v3.0 term",
                          "nearest: 'Neutrophils/granulocytes (ANC/AGC)'", "--uncoded")

    uncoded = run(demo, "record", "ae", p014, "--id", "AE7", "--term", "Hot flushes",
                  "--grade", "1", "--attribution", "possible", "--onset", onset, "--uncoded",
                  "--json", user="ivan")
    assert uncoded.returncode == 0, uncoded
    assert json.loads(uncoded.stdout)["entries"][0]["payload"]["coded"] is False
    assert "AE7" in status(demo, "patient", p014)["patient"]["uncoded_aes"]


def test_complete_course_has_no_evaluable_flag(demo: dict[str, str], tmp_path: Path) -> None:
    old = run(demo, "record", "complete-course", "P014", "--course", "2", "--date",
              "2026-01-01", "--evaluable", user="ivan")
    assert old.returncode == 2 and "No such option" in old.stderr
