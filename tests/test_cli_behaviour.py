"""The CLI behaves as users of gh, sqlite-utils or kubectl expect: a version, completion,
help that renders, one-line usage errors with exit 2, the same output switches on every
listing, output to a file or a pipe that is never cut, and a demo that cleans up."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import TRIALCTL, assert_one_line_error, trialctl
from trialctl import __version__
from trialctl.ledger.roles import Role


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    directory = tmp_path_factory.mktemp("demo")
    result = trialctl("demo", "--dir", str(directory), "--json")
    assert result.returncode == 0, result
    built = json.loads(result.stdout)
    yield {"TRIALCTL_HOME": built["home"], "TRIALCTL_LEDGER": built["ledger"]}


def test_version() -> None:
    result = trialctl("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"trialctl {__version__}"


def test_top_level_help_documents_exit_codes_json_and_completion() -> None:
    text = trialctl("--help").stdout
    assert "Exit codes: 0 ok; 1 refused, failed, or findings (verify); 2 usage error; 3" in text
    assert "could not finish reading the ledger (no verdict)." in text
    assert "JSON lines" in text and "one JSON document" in text
    assert "--install-completion" in text and "--show-completion" in text


def test_help_shows_defaults_and_conventional_metavars() -> None:
    status = trialctl("status", "--help").stdout
    assert "[default:" in status and "$TRIALCTL_HOME/ledger.sqlite]" in status
    assert "<bool>" not in status
    patient = trialctl("patient", "--help").stdout
    assert "Usage: trialctl patient [OPTIONS] PATIENT_ID" in patient
    assert "{" not in patient.splitlines()[0]


@pytest.mark.parametrize(("args", "fragment"), [
    (("record", "ae", "P006"), "Missing option '--id'"),
    (("record", "dose"), "Missing argument 'PATIENT_ID'"),
    (("status", "--bogus"), "No such option: --bogus"),
    (("proof", "inclusion", "abc"), "Invalid value"),
    (("escalation", "paths", "--cohorts", "9"), "--cohorts"),
], ids=["missing-option", "missing-argument", "unknown-option", "bad-value", "out-of-range"])
def test_usage_errors_are_one_line_with_exit_2(args: tuple[str, ...], fragment: str) -> None:
    result = trialctl(*args)
    assert_one_line_error(result, "trialctl: ", fragment)
    assert result.returncode == 2
    assert "╭" not in result.stderr


def test_times_are_parsed_by_one_rule(demo: dict[str, str]) -> None:
    result = trialctl("status", "--as-of", "2026-03-01T12:00:00", env=demo)
    assert_one_line_error(result, "--as-of", "needs a UTC offset")
    assert result.returncode == 2


def test_roles_come_from_the_role_enum() -> None:
    help_text = trialctl("user", "add", "--help").stdout
    for role in Role:
        assert role.value in " ".join(help_text.split())
    result = trialctl("user", "grant-role", "mona", "nurse", "-u", "alice")
    assert_one_line_error(result, "unknown role 'nurse'", ", ".join(r.value for r in Role))


LISTINGS = [
    ("user", "list"), ("trial", "list"), ("status",), ("patient", "P006"),
    ("log", "--patient", "P006"), ("replay", "--upto", "40"),
    ("escalation", "paths", "--cohorts", "1", "--from", "1NNN", "--doses", "4"),
]


@pytest.mark.parametrize("command", LISTINGS, ids=[" ".join(c) for c in LISTINGS])
def test_every_listing_takes_json_and_csv(demo: dict[str, str], command: tuple[str, ...]
                                          ) -> None:
    as_json = trialctl(*command, "--json", env=demo)
    assert as_json.returncode == 0, as_json
    lines = as_json.stdout.splitlines()
    if command[0] == "log":  # a stream: JSON lines
        assert all(isinstance(json.loads(line), dict) for line in lines)
    else:  # one document
        json.loads(as_json.stdout)
    as_csv = trialctl(*command, "--csv", env=demo)
    assert as_csv.returncode == 0, as_csv
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert rows and all(rows[0].keys())
    both = trialctl(*command, "--json", "--csv", env=demo)
    assert_one_line_error(both, "choose one of --json and --csv")


@pytest.mark.parametrize("command", [("proof", "inclusion", "3"), ("proof", "consistency", "4"),
                                     ("verify",)], ids=["inclusion", "consistency", "verify"])
def test_documents_take_json(demo: dict[str, str], command: tuple[str, ...]) -> None:
    result = trialctl(*command, "--json", env=demo)
    assert result.returncode == 0, result
    assert isinstance(json.loads(result.stdout), dict)


def test_output_to_a_file_is_never_cut(demo: dict[str, str], tmp_path: Path) -> None:
    """A narrow terminal setting must not matter once the output goes to a file."""
    target = tmp_path / "t.txt"
    with target.open("w", encoding="utf-8") as out:
        completed = subprocess.run([TRIALCTL, "patient", "P006"], stdout=out, text=True,
                                   env={**os.environ, **demo, "COLUMNS": "60"}, timeout=120)
    assert completed.returncode == 0
    text = target.read_text(encoding="utf-8")
    assert "…" not in text
    timeline = json.loads(trialctl("patient", "P006", "--json", env=demo).stdout)["timeline"]
    for row in timeline:
        assert row["recorded_at"] in text  # the full time, with its zone
        assert row["what"] in text


def test_demo_prints_its_users_and_next_steps_and_leaves_nothing_behind(
    tmp_path: Path,
) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    result = trialctl("demo", env={"TMPDIR": str(scratch)})
    assert result.returncode == 0, result
    for user in ("alice", "pat", "ivan", "mona"):
        assert f"demo-{user}-password" in result.stdout
    assert "export TRIALCTL_HOME=" in result.stdout and "TRIALCTL_LEDGER=" in result.stdout
    assert "trialctl demo --dir" in result.stdout
    assert list(scratch.iterdir()) == []


def test_demo_with_dir_keeps_everything_and_its_next_steps_work(tmp_path: Path) -> None:
    result = trialctl("demo", "--dir", str(tmp_path / "kept"))
    assert result.returncode == 0, result
    assert (tmp_path / "kept" / "demo.sqlite").exists()
    (export,) = [line.strip() for line in result.stdout.splitlines()
                 if line.strip().startswith("export ")]
    env = dict(pair.split("=", 1) for pair in export.removeprefix("export ").split())
    assert env["TRIALCTL_HOME"] == str((tmp_path / "kept" / "home").resolve())
    assert trialctl("log", "--by", "ivan", "--type", "Corrected", env=env).returncode == 0


HEAVY_STACK = ("eventsourcing", "sqlalchemy", "eventsourcing_sqlalchemy", "psycopg", "cryptography")


@pytest.mark.parametrize("args", [["--help"], ["record", "dose", "--help"],
                                  ["escalation", "path", "1NNN 2TNN", "--doses", "3"]])
def test_help_and_escalation_load_no_database_stack(args: list[str]) -> None:
    """`--help` and the pure escalation commands stay fast: nothing of the event store loads."""
    code = (
        "import sys\n"
        "from trialctl.cli.main import app\n"
        f"try:\n    app({args!r}, prog_name='trialctl')\n"
        "except SystemExit:\n    pass\n"
        f"print('loaded:', ','.join(m for m in {HEAVY_STACK!r} if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stdout.splitlines()[-1] == "loaded: "


READ_COMMANDS = [
    ("status",), ("status", "--as-of", "2100-01-01T00:00:00+00:00"), ("patient", "P006"),
    ("patient", "P001"), ("log",), ("log", "--patient", "P006"), ("replay", "--upto", "20"),
    ("replay", "--upto", "100"), ("replay", "--upto", "100000"),
    ("replay", "--as-of", "2100-01-01T00:00:00+00:00"),
    ("escalation", "paths", "--cohorts", "2", "--from", "1NNN 2NTN", "--doses", "4"),
    ("user", "list"), ("trial", "list"), ("verify",), ("verify", "--projections"),
    ("proof", "inclusion", "3"), ("proof", "consistency", "4"),
]
TABULAR = {"status", "patient", "log", "replay", "escalation", "user", "trial"}


def test_the_trials_own_pathways_are_refused_once_corrections_left_the_rules(
    demo: dict[str, str]
) -> None:
    """The demo's last correction un-counts a DLT that three decisions used, so the trial's
    re-derived path is out of the 3+3 rules: pathways from it are refused in one line that
    says why, in every output form, rather than enumerated from a path that did not happen."""
    for extra in ([], ["--json"], ["--csv"]):
        result = trialctl("escalation", "paths", "--cohorts", "2", *extra, env=demo)
        assert "Traceback" not in result.stdout + result.stderr
        assert result.returncode == 1 and result.stdout == ""
        assert_one_line_error(result)
        assert "out of the 3+3 rules" in result.stderr and "since corrected" in result.stderr


@pytest.mark.parametrize(
    ("command", "output"),
    [(command, output) for command in READ_COMMANDS for output in ("table", "--json", "--csv")
     if output != "--csv" or command[0] in TABULAR],
    ids=lambda value: " ".join(value) if isinstance(value, tuple) else value,
)
def test_every_read_command_renders_the_demo_in_every_form(
    demo: dict[str, str], command: tuple[str, ...], output: str
) -> None:
    """Every read command, in every output form it offers, on a whole demo trial (a baseline,
    responses, corrections, replacements, a declared MTD): never a traceback."""
    extra = [] if output == "table" else [output]
    result = trialctl(*command, *extra, env=demo)
    assert "Traceback" not in result.stdout + result.stderr
    assert result.returncode == 0, result
    assert result.stdout.strip()
    if output == "--json" and command[0] == "log":
        assert all(json.loads(line) for line in result.stdout.splitlines())
    elif output == "--json":
        json.loads(result.stdout)
