"""Values built to break a parser or the arithmetic behind it: integers over Python's 4,300
digits, nesting deep enough for a RecursionError, a lesion of 1e999999999 mm, a days range
too large to build, an AE grade corrected to `true`, an empty AE id, a 1 MB title. Each is a
one-line refusal with a non-zero exit, and nothing is written."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import assert_one_line_error, trialctl
from tests.demo_ledgers import demo_environment, signed

PROTOCOL = Path(__file__).parent.parent / "protocols" / "NCT00084513.toml"
HUGE = "9" * 5000
DEEP = "[" * 100_000 + "]" * 100_000


def _protocol(edit: Callable[[str], str]) -> Callable[[Path], str]:
    def write(directory: Path) -> str:
        path = directory / "protocol.toml"
        path.write_text(edit(PROTOCOL.read_text(encoding="utf-8")), encoding="utf-8")
        return str(path)
    return write


def _file(name: str, text: str) -> Callable[[Path], str]:
    def write(directory: Path) -> str:
        path = directory / name
        path.write_text(text, encoding="utf-8")
        return str(path)
    return write


# (user, arguments with {file} and {ae_version} filled in, what the file holds, the message)
CASES = {
    "toml-integer-over-4300-digits": (
        "pat", ["trial", "register", "{file}"],
        _protocol(lambda t: t.replace("course_length_days = ",
                                      f"course_length_days = {HUGE} #", 1)),
        "Exceeds the limit (4300 digits)"),
    "toml-nested-too-deeply": (
        "pat", ["trial", "register", "{file}"], _protocol(lambda t: f"{t}\nextra = {DEEP}\n"),
        "invalid TOML: nested too deeply"),
    "days-range-of-a-hundred-billion": (
        "pat", ["trial", "register", "{file}"],
        _protocol(lambda t: re.sub(r'days = "[^"]*"', 'days = "1-99999999999"', t, count=1)),
        "days must lie within the course"),
    "a-1-mb-title": (
        "pat", ["trial", "register", "{file}"],
        _protocol(lambda t: re.sub(r"^title = .*$", f'title = "{"x" * 1_000_000}"', t,
                                   count=1, flags=re.M)),
        "title: must be at most 4000 characters"),
    "json-integer-over-4300-digits": (
        "mona", ["record", "screen", "P020", "--date", "2026-12-01", "--values-file", "{file}"],
        _file("values.json", f'{{"age_years": {HUGE}}}'), "Exceeds the limit (4300 digits)"),
    "json-nested-too-deeply": (
        "mona", ["record", "screen", "P020", "--date", "2026-12-01", "--values-file", "{file}"],
        _file("values.json", f'{{"age_years": {DEEP}}}'), "nested too deeply"),
    "batch-line-nested-too-deeply": (
        "ivan", ["record", "--from", "{file}"],
        _file("visit.jsonl", f'{{"kind": "ae", "patient": "P006", "x": {DEEP}}}\n'),
        "line 1: nested too deeply"),
    "lesion-of-1e999999999-mm": (
        "ivan", ["record", "response", "P006", "--date", "2026-12-01",
                 "--lesion", "T1:liver:1e999999999"], None, "must be at most 10000 mm"),
    "lesion-id-of-33-characters": (
        "ivan", ["record", "response", "P006", "--date", "2026-12-01",
                 "--lesion", f"{'T' * 33}:liver:20"], None,
        "a lesion id is at most 32 characters (got 33)"),
    "lesion-site-of-100-kb": (
        "ivan", ["record", "response", "P006", "--date", "2026-12-01",
                 "--lesion", f"T1:{'liver' * 20_000}:20"], None,
        "lesion T1: a site is at most 200 characters (got 100000)"),
    "ae-grade-corrected-to-true": (
        "ivan", ["record", "correct", "P006", "--version", "{ae_version}", "--set",
                 "grade=true", "--reason", "source document"], None,
        "grade True is not a CTCAE grade 1-5"),
    "empty-ae-id": (
        "ivan", ["record", "ae", "P006", "--id", " ", "--term",
                 "Fatigue (asthenia, lethargy, malaise)", "--grade", "1", "--attribution",
                 "possible", "--onset", "2026-11-30"], None,
        "the adverse event's id is required"),
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], str]:
    directory = tmp_path_factory.mktemp("hostile")
    env = demo_environment(str(directory / "demo.sqlite"), directory)
    reported = trialctl("log", "--patient", "P006", "--type", "AdverseEventReported",
                        "--json", env=env)
    first = json.loads(reported.stdout.splitlines()[0])
    return env, str(first["aggregate_version"])


def _entries(env: dict[str, str]) -> int:
    with sqlite3.connect(env["TRIALCTL_LEDGER"]) as connection:
        count: int = connection.execute("SELECT count(*) FROM trialctl_leaves").fetchone()[0]
    connection.close()
    return count


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_a_hostile_value_is_a_one_line_refusal(
    case: str, demo: tuple[dict[str, str], str], tmp_path: Path
) -> None:
    env, ae_version = demo
    user, arguments, content, message = CASES[case]
    file = content(tmp_path) if content is not None else ""
    before = _entries(env)

    result = signed(env, user, *[a.format(file=file, ae_version=ae_version)
                                 for a in arguments])

    assert_one_line_error(result, message)
    assert _entries(env) == before
