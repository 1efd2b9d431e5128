"""Every worked example in `--help` runs green, as a real `trialctl` process, against the
shipped demo (`trialctl demo`): its users, patients and rule codes, and protocol
NCT00084513. An example that stops working fails the build.

Each example runs in a directory of its own, on a copy of the ledger it needs, so one
example's writes never change what the next one sees. Examples that sign get
`--password-stdin` and the demo passwords on stdin, as a script would pass them.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import typer

from tests.conftest import TRIALCTL
from tests.demo_ledgers import demo_ledger
from trialctl.cli.main import app
from trialctl.domain.facts import Consent, CourseCompletion, Dose, Enrolment, Fact, Screening
from trialctl.ledger.application import TrialLedger, UnlockedUser
from trialctl.ledger.demo import DEMO_USERS, demo_password, screening_values, shipped_protocol
from trialctl.ledger.location import resolve_ledger
from trialctl.ledger.requests import PatientStep, Registration
from trialctl.ledger.trials import TrialActions

ROOT = Path(__file__).resolve().parent.parent
# The examples' dates are written for a demo whose first consent is on this day; the demo
# dates its story from today, so every date in an example moves by the same number of days.
EXAMPLES_DAY_ZERO = date(2026, 1, 5)
NEW_PASSWORD = "a-new-password"


@dataclass(frozen=True)
class Setting:
    """Where an example runs: which ledger, after which other examples."""

    ledger: str = "demo"  # demo | open (cohort 1 evaluated) | staff (no trial) | none
    after: tuple[str, ...] = ()


SETTINGS = {
    "init": Setting("none"),
    "demo": Setting("none"),
    "trial register": Setting("staff"),
    "record decide": Setting("open"),
    # The shipped protocol has each decision co-signed before the next cohort opens.
    "record cosign": Setting("open", after=("record decide",)),
    "record enroll": Setting("open", after=("record decide", "record cosign")),
    "record screen": Setting(after=("record consent",)),
    "record follow-up": Setting(after=("record off-study",)),
    "record dlt": Setting(after=("record ae",)),
    "record complete-course": Setting(after=("record dose",)),
    "verify": Setting(after=("checkpoint",)),
    "export verify": Setting(after=("export odm",)),
    "proof inclusion": Setting(after=("checkpoint",)),
    "proof verify": Setting(after=("checkpoint", "proof inclusion")),
    "witness show": Setting(after=("witness init",)),
    "witness add-log": Setting(after=("witness init", "witness log-key")),
    "witness cosign": Setting(after=("witness init", "witness log-key", "witness add-log",
                                     "checkpoint")),
    "witness serve": Setting(after=("witness init",)),
    "export bundle": Setting(after=("checkpoint",)),
    "query answer": Setting(after=("query open",)),
    "query close": Setting(after=("query open",)),
    "packet sign": Setting(after=("packet",)),
    "packet verify": Setting(after=("packet", "packet sign")),
    "restore": Setting(after=("backup",)),
    "session status": Setting(after=("session start",)),
    "session stop": Setting(after=("session start",)),
}


def help_examples() -> dict[str, str]:
    """Each command's `Example: trialctl …` line, keyed by its path ("record dose")."""
    examples: dict[str, str] = {}

    def walk(path: list[str], command: Any) -> None:
        if hasattr(command, "commands"):
            # A group that runs itself too (`packet --cohort N`) shows its example in its help.
            for line in (command.help or "").splitlines():
                if path and line.strip().startswith("Example: trialctl"):
                    examples[" ".join(path)] = line.strip().removeprefix("Example: ")
            for name, sub in command.commands.items():
                walk([*path, name], sub)
            return
        for line in (command.help or "").splitlines():
            if line.strip().startswith("Example: trialctl"):
                examples[" ".join(path)] = line.strip().removeprefix("Example: ")

    walk([], typer.main.get_command(app))
    return examples


EXAMPLES = help_examples()


def test_every_command_has_an_example() -> None:
    assert len(EXAMPLES) >= 30
    assert set(SETTINGS) <= set(EXAMPLES)


def _open_trial(directory: Path, day_zero: date, with_trial: bool) -> dict[str, str]:
    """The demo's users on a new ledger; with the trial, cohort 1 (P001-P003) evaluated
    without a DLT, so a decision is due, and P004 consented and screened."""
    home = directory / "home"
    location = resolve_ledger(str(directory / "ledger.sqlite"))
    ledger = TrialLedger(location, create=True, keys_home=home / "keys")
    ledger.initialise("examples", "alice", DEMO_USERS["alice"][0], demo_password("alice"))
    actors = {"alice": ledger.unlock("alice", demo_password("alice"))}
    for user_id, (name, roles) in DEMO_USERS.items():
        if user_id != "alice":
            ledger.register_user(actors["alice"], user_id, name, roles, demo_password(user_id))
            actors[user_id] = ledger.unlock(user_id, demo_password(user_id))
    if with_trial:
        mona, ivan = actors["mona"], actors["ivan"]
        actions = TrialActions(ledger)
        protocol = shipped_protocol()
        actions.perform(Registration(protocol), actors["pat"], datetime.now(UTC))

        def day(offset: int) -> str:
            return (day_zero + timedelta(days=offset)).isoformat()

        def record(actor: UnlockedUser, patient: str, fact: Fact) -> None:
            actions.perform(PatientStep(None, patient, fact), actor, datetime.now(UTC))

        for number in range(1, 5):
            patient = f"P{number:03d}"
            record(mona, patient, Consent(consent_version="2.1", signed_on=day(0)))
            record(mona, patient, Screening(
                values=screening_values(day_zero + timedelta(days=2)), screened_on=day(2)))
            if number == 4:
                break
            record(mona, patient, Enrolment(enrolled_on=day(4)))
            level = protocol.level(1)
            record(ivan, patient, Dose(agent=protocol.escalated_agent.name, dose=str(level.dose),
                                       unit=level.unit, course=1, day=1,
                                       given_at=f"{day(6)}T09:30:00+00:00"))
            record(ivan, patient, CourseCompletion(course=1, completed_on=day(27),
                                                   not_evaluable_reason=None))
    ledger.close()
    return {"TRIALCTL_HOME": str(home), "TRIALCTL_LEDGER": str(location.display())}


@pytest.fixture(scope="module")
def bases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("bases")
    # The shipped demo, built in this process once per run (tests/demo_ledgers.py); the
    # `demo` example and the README tour still run `trialctl demo` as a process.
    ledger = str(root / "demo.sqlite")
    demo = {"TRIALCTL_HOME": str(demo_ledger(ledger, root) / "home"), "TRIALCTL_LEDGER": ledger}
    log = subprocess.run([TRIALCTL, "log", "--patient", "P001", "--type", "ConsentSigned",
                          "--json"], capture_output=True, text=True, timeout=120,
                         env=_environment(demo))
    consented = re.search(r"signed_on=(\d{4}-\d{2}-\d{2})", json.loads(log.stdout)["what"])
    assert consented is not None
    day_zero = date.fromisoformat(consented.group(1))
    return {
        "shift": day_zero - EXAMPLES_DAY_ZERO,
        "demo": demo,
        "open": _open_trial(root / "open", day_zero, with_trial=True),
        "staff": _open_trial(root / "staff", day_zero, with_trial=False),
    }


def _environment(extra: dict[str, str]) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TRIALCTL_")}
    return {**clean, "COLUMNS": "200", **extra}


def _shifted(example: str, shift: timedelta) -> str:
    return re.sub(r"\d{4}-\d{2}-\d{2}",
                  lambda m: (date.fromisoformat(m.group(0)) + shift).isoformat(), example)


def _copy_ledger(base: dict[str, str], into: Path) -> dict[str, str]:
    shutil.copytree(base["TRIALCTL_HOME"], into / "home")
    ledger = into / "ledger.sqlite"
    shutil.copyfile(base["TRIALCTL_LEDGER"], ledger)
    return {"TRIALCTL_HOME": str(into / "home"), "TRIALCTL_LEDGER": str(ledger)}


def _run(
    path: str, example: str, cwd: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    args = shlex.split(example)[1:]
    passwords = []
    if "-u" in args:
        passwords.append(demo_password(args[args.index("-u") + 1]))
    if path == "init":
        passwords.append(demo_password(args[args.index("--admin") + 1]))
    if path in ("user add", "user rotate-key"):
        passwords.append(NEW_PASSWORD)
    if passwords:
        args.append("--password-stdin")
    return subprocess.run([TRIALCTL, *args], cwd=cwd, input="".join(p + "\n" for p in passwords),
                          capture_output=True, text=True, timeout=300, env=_environment(env))


def _run_in_its_own_directory(path: str, bases: dict[str, Any], directory: Path) -> Outcome:
    directory.mkdir()
    setting = SETTINGS.get(path, Setting())
    env = {"TRIALCTL_HOME": str(directory / "home")}
    if setting.ledger != "none":
        env = _copy_ledger(bases[setting.ledger], directory)
    # Each example's session agents live in its own directory, never the user's.
    (directory / "run").mkdir(mode=0o700)
    env["XDG_RUNTIME_DIR"] = str(directory / "run")
    (directory / "protocols").symlink_to(ROOT / "protocols")
    day_zero = EXAMPLES_DAY_ZERO + bases["shift"]
    values = screening_values(day_zero + timedelta(days=270))
    (directory / "p015.json").write_text(json.dumps(values), encoding="utf-8")
    # `record --from visit.jsonl`: a visit's worth of lines, one here.
    visit = {"command": "observe", "patient": "P006", "kind": "ctc_count", "value": "5",
             "date": (day_zero + timedelta(days=270)).isoformat()}
    (directory / "visit.jsonl").write_text(json.dumps(visit) + "\n", encoding="utf-8")
    for earlier in setting.after:
        before = _run(earlier, _shifted(EXAMPLES[earlier], bases["shift"]), directory, env)
        if before.returncode != 0:
            return Outcome(f"(before it) {EXAMPLES[earlier]}", before)
    example = _shifted(EXAMPLES[path], bases["shift"])
    try:
        return Outcome(example, _run(path, example, directory, env))
    finally:
        if path.startswith("session"):
            # A session example leaves an agent running: end it, with its directory.
            _run("session stop", "trialctl session stop --user mona", directory, env)


@dataclass(frozen=True)
class Outcome:
    example: str
    result: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def outcomes(bases: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
             ) -> dict[str, Outcome]:
    """All examples at once, a few processes at a time: each waits mostly on its own start."""
    root = tmp_path_factory.mktemp("examples")
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {path: pool.submit(_run_in_its_own_directory, path, bases,
                                     root / path.replace(" ", "-"))
                   for path in EXAMPLES}
        return {path: _outcome(path, future) for path, future in futures.items()}


def _outcome(path: str, future: Future[Outcome]) -> Outcome:
    """An example's outcome; one that timed out or failed to run fails its own test only."""
    try:
        return future.result()
    except (subprocess.TimeoutExpired, OSError) as failed:
        return Outcome(EXAMPLES[path], subprocess.CompletedProcess(
            [path], -1, "", f"{type(failed).__name__}: {failed}"))


@pytest.mark.parametrize("path", sorted(EXAMPLES))
def test_help_example_runs_against_the_demo(path: str, outcomes: dict[str, Outcome]) -> None:
    outcome = outcomes[path]
    assert outcome.result.returncode == 0, (outcome.example, outcome.result.stdout,
                                            outcome.result.stderr)
    assert "Traceback" not in outcome.result.stderr
    assert outcome.result.stdout.strip(), outcome.example


def _readme_block(after: str) -> str:
    """The bash block that follows a line of README.md, continuation lines joined."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("```bash\n", text.index(after)) + len("```bash\n")
    return text[start:text.index("```", start)].replace("\\\n", " ")


def test_readme_auditor_tour_runs_as_written(tmp_path: Path) -> None:
    script = _readme_block("The auditor's view")
    assert "trialctl demo --dir" in script
    result = subprocess.run(
        ["bash", "-e", "-c", script], cwd=tmp_path, capture_output=True, text=True,
        timeout=600,
        env=_environment({"PATH": f"{Path(TRIALCTL).parent}:{os.environ['PATH']}"}),
    )
    assert result.returncode == 0, (result.stdout[-2000:], result.stderr)
    assert "Traceback" not in result.stderr
    assert "read models rebuilt" in result.stdout
