"""`trialctl report` on the demo ledger, as a real process: the HTML names everything the
status holds, the PDF's plot pages are present and drawn, two runs give the same bytes, a
past moment shows only what was recorded by then, and bad flags are one line."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pypdfium2
import pytest

from tests.conftest import BACKENDS, assert_one_line_error, new_ledger, trialctl
from trialctl.ledger.mapper import parse_time

PLOT_TITLES = ("Dose escalation", "Adverse events: patients by term and worst grade",
               "Patients on study", "Best change in target-lesion sum",
               "Circulating tumour cells over time")


@pytest.fixture(scope="module", params=BACKENDS)
def demo(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    directory = tmp_path_factory.mktemp("demo")
    databases = new_ledger(request.param, directory / "demo.sqlite")
    ledger = next(databases)
    result = trialctl("demo", "--dir", str(directory), "--ledger", ledger, "--json")
    assert result.returncode == 0, result
    built = json.loads(result.stdout)
    yield {"TRIALCTL_HOME": built["home"], "TRIALCTL_LEDGER": ledger}
    databases.close()  # drops a PostgreSQL database


def run(demo: dict[str, str], *args: str) -> str:
    result = trialctl(*args, env=demo)
    assert result.returncode == 0, result
    assert "Traceback" not in result.stderr
    return result.stdout


def status(demo: dict[str, str]) -> dict[str, Any]:
    return json.loads(run(demo, "status", "--json"))  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def html(demo: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("html") / "report.html"
    assert run(demo, "report", "--html", str(path)).strip() == f"report written to {path}"
    return path.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def pdf(demo: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pdf") / "report.pdf"
    run(demo, "report", "--pdf", str(path))
    return path


def test_the_html_names_every_cohort_decision_dlt_and_signer(
    demo: dict[str, str], html: str
) -> None:
    state = status(demo)
    text = re.sub(r"<svg.*?</svg>", "", html, flags=re.S)  # what a reader sees as text
    for cohort in state["cohorts"]:
        assert f"<td>{', '.join(cohort['patients'])}</td>" in text
        assert f"<td>{cohort['dlts']}</td>" in text
    assert len(state["decisions"]) == 4
    for decision in state["decisions"]:
        signer = decision["signed_by"]
        assert decision["reason"] in text
        assert f"{signer['name']} ({signer['user_id']}, {signer['role']})" in text
        assert signer["recorded_at"] in text
        assert f"#{signer['position']}" in text
    patients = [json.loads(run(demo, "patient", f"P{n:03d}", "--json"))["patient"]
                for n in range(1, 15)]
    counting = sorted(p["patient_id"] for p in patients if p["dlts"])
    # The demo's last correction un-counts P007's DLT: it is listed, and says why.
    assert counting == ["P012", "P013"]
    dlt_section = text[text.index('id="dlts"'):text.index('id="adverse-events"')]
    assert sorted(re.findall(r"<tr><td>(P\d{3})</td>", dlt_section)) == ["P007", *counting]
    assert "Neutrophils/granulocytes (ANC/AGC)" in dlt_section
    assert "no: min_grade 4: grade 3" in dlt_section
    assert "MTD</th><td>level 2 (400 mg/day)" in text


def test_the_html_is_self_contained_with_every_plot_inlined(html: str) -> None:
    assert html.count("<svg") == len(PLOT_TITLES)
    assert "none recorded" not in html.replace("last recorded checkpoint</th><td>none recorded",
                                               "")
    text = re.sub(r'xmlns(:\w+)?="[^"]*"', "", html)  # namespace names are not fetched
    for external in ("<script", "<link", "src=", "http://", "https://"):
        assert external not in text, external
    assert re.search(r"url\((?!#)", text) is None  # only references inside the SVG itself


def test_the_report_states_the_verification_and_tree_head(
    demo: dict[str, str], html: str
) -> None:
    verified = json.loads(run(demo, "verify", "--json"))
    assert "The ledger verifies:" in html
    assert f"<tr><th>tree size</th><td>{verified['tree_size']}</td></tr>" in html
    assert verified["root_hash"] in html


def test_each_pdf_plot_page_is_present_and_drawn(pdf: Path) -> None:
    document = pypdfium2.PdfDocument(str(pdf))
    texts = [document[i].get_textpage().get_text_range() for i in range(len(document))]
    first_plot = len(document) - len(PLOT_TITLES)  # text pages, then one page per plot
    assert first_plot >= 1
    assert texts[0].startswith("NCT00084513")
    assert all("VERIFICATION" not in t for t in texts[first_plot:])
    assert "VERIFICATION" in "".join(texts[:first_plot])
    for offset, title in enumerate(PLOT_TITLES):
        index = first_plot + offset
        assert title in texts[index]
        image = document[index].render(scale=1).to_pil().convert("L")
        counts = image.histogram()  # pixels by grey level 0-255
        total = sum(counts)
        mean = sum(level * n for level, n in enumerate(counts)) / total
        variance = sum((level - mean) ** 2 * n for level, n in enumerate(counts)) / total
        assert variance > 200, (title, variance)  # a blank page has none
        assert sum(counts[:128]) > 2000, title  # ink: marks, not only a frame


def test_two_runs_give_byte_identical_files(
    demo: dict[str, str], html: str, pdf: Path, tmp_path: Path
) -> None:
    run(demo, "report", "--html", str(tmp_path / "again.html"))
    run(demo, "report", "--pdf", str(tmp_path / "again.pdf"))
    assert (tmp_path / "again.html").read_text(encoding="utf-8") == html
    assert (tmp_path / "again.pdf").read_bytes() == pdf.read_bytes()


def test_as_of_before_the_first_decision_shows_no_decision(
    demo: dict[str, str], tmp_path: Path
) -> None:
    first = status(demo)["decisions"][0]["signed_by"]
    before = parse_time(first["recorded_at"]) - timedelta(microseconds=1)
    path = tmp_path / "then.html"
    run(demo, "report", "--as-of", before.isoformat(), "--html", str(path))
    text = path.read_text(encoding="utf-8")

    assert "Decisions: none recorded." in text
    assert first["recorded_at"] not in text
    assert f"As of {before.isoformat()}" in text
    assert "<td>P003, P004, P005</td>" in text  # cohort 1 was complete by then


def test_sections_with_nothing_recorded_say_so(demo: dict[str, str], tmp_path: Path) -> None:
    log = [json.loads(line) for line in run(demo, "log", "--json").splitlines()]
    registered = next(r for r in log if r["type"] == "trialctl.Trial.Registered")
    path = tmp_path / "empty.pdf"
    run(demo, "report", "--as-of", registered["recorded_at"], "--html", str(tmp_path / "e.html"))
    run(demo, "report", "--as-of", registered["recorded_at"], "--pdf", str(path))
    text = (tmp_path / "e.html").read_text(encoding="utf-8")

    assert "<svg" not in text
    for title in ("Dose escalation", "Patients on study (swimmer plot)", "Decisions",
                  "Dose-limiting toxicities", "Responses"):
        assert f"{title}: none recorded." in text, title
    document = pypdfium2.PdfDocument(str(path))
    texts = "".join(document[i].get_textpage().get_text_range() for i in range(len(document)))
    for title in ("Dose escalation", "Patients on study (swimmer plot)",
                  "Circulating tumour cell counts over time"):
        assert f"{title}: none recorded." in texts, title
    assert "on its own page" not in texts
    assert not any("study day" in document[i].get_textpage().get_text_range()
                   for i in range(len(document)))  # no swimmer axis: no plot page


@pytest.mark.parametrize(("args", "code", "fragment"), [
    ((), 2, "report needs --html FILE or --pdf FILE"),
    (("--html", "a.html", "--pdf", "a.pdf"), 2, "choose one of --html FILE and --pdf FILE"),
    (("--html", "no/such/folder/r.html"), 1, "no folder no/such/folder"),
    (("--pdf", "."), 1, "is a directory"),
    (("--as-of", "yesterday", "--html", "r.html"), 2, "--as-of"),
], ids=["no-output", "both-outputs", "missing-folder", "a-directory", "bad-moment"])
def test_bad_flags_are_one_line_and_write_nothing(
    demo: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    args: tuple[str, ...], code: int, fragment: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    result = trialctl("report", *args, env=demo)
    assert result.returncode == code, result
    assert_one_line_error(result, fragment)
    assert list(tmp_path.iterdir()) == []
