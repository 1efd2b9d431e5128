"""Every human rendering works on a ledger that holds every event type trialctl signs: the
demo, plus a second trial (a DLT rule override co-signed by a second investigator, a
committee packet countersigned and cited by an overridden decision, a withdrawal from
treatment, off study and a follow-up contact, closed), checkpoints,
exports, an audit review, role and key changes, a lock-out ended and a query reopened.
Each read command, in every output form it offers, exits 0 without a traceback."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Result, trialctl
from tests.demo_ledgers import demo_environment, signed
from tests.dosing_site import protocol_variant
from trialctl.domain.co_signatures import DLT_RULE_OVERRIDDEN
from trialctl.domain.facts import (
    AdverseEvent,
    Consent,
    CourseCompletion,
    DltAdjudication,
    Dose,
    Enrolment,
    Fact,
    Screening,
)
from trialctl.domain.protocol_file import load_protocol
from trialctl.ledger.aggregate_kinds import KINDS
from trialctl.ledger.application import TrialLedger
from trialctl.ledger.co_signing import CoSign, CoSignActions
from trialctl.ledger.demo import demo_password, screening_values
from trialctl.ledger.location import resolve_ledger
from trialctl.ledger.requests import PatientStep, Registration

DEMO_TRIAL, SECOND = "NCT00084513", "NCT00084513-B"


def _second_trial(env: dict[str, str], tmp: Path) -> None:
    """A second trial in the ledger, cohort 1 evaluated: P001 without a DLT by the rules but
    declared one by the PI (`DltRuleOverridden`, which this trial's protocol has a second
    investigator confirm), P002 and P003 without."""
    path = protocol_variant(tmp, **{f'id = "{DEMO_TRIAL}"': f'id = "{SECOND}"'})
    path.write_text(
        f'{path.read_text(encoding="utf-8")}\n[[co_signatures]]\n'
        f'event_type = "{DLT_RULE_OVERRIDDEN}"\nrole = "investigator"\n'
        'text = "a DLT rule override is confirmed by a second investigator"\n',
        encoding="utf-8")
    protocol = load_protocol(path.read_text(encoding="utf-8"))
    ledger = TrialLedger(resolve_ledger(env["TRIALCTL_LEDGER"]),
                         keys_home=Path(env["TRIALCTL_HOME"]) / "keys")
    actors = {u: ledger.unlock(u, demo_password(u)) for u in ("pat", "ivan", "mona")}
    actions = CoSignActions(ledger)
    actions.perform(Registration(protocol), actors["pat"], datetime.now(UTC))
    start = date.today() - timedelta(days=60)

    def day(offset: int) -> str:
        return (start + timedelta(days=offset)).isoformat()

    def record(user: str, patient: str, fact: Fact) -> None:
        actions.perform(PatientStep(SECOND, patient, fact), actors[user], datetime.now(UTC))

    level = protocol.level(1)
    for number in (1, 2, 3):
        patient = f"P{number:03d}"
        record("mona", patient, Consent(consent_version="2.1", signed_on=day(0)))
        record("mona", patient, Screening(values=screening_values(start + timedelta(days=2)),
                                          screened_on=day(2)))
        record("mona", patient, Enrolment(enrolled_on=day(4)))
        record("ivan", patient, Dose(agent=protocol.escalated_agent.name, dose=str(level.dose),
                                     unit=level.unit, course=1, day=1,
                                     given_at=f"{day(6)}T09:30:00+00:00"))
        if number == 1:
            record("ivan", patient, AdverseEvent(
                ae_id="AE1", term="Fatigue (asthenia, lethargy, malaise)", grade=2,
                attribution="probable", onset=day(9), resolved_on=day(14), coded=True))
            overridden = actions.perform(PatientStep(SECOND, patient, DltAdjudication(
                ae_id="AE1", is_dlt=True, rule_code="neutropenia_g4", decided_on=day(15),
                override_reason="disabling fatigue: the committee judged it dose-limiting")),
                actors["pat"], datetime.now(UTC))
            actions.perform(CoSign(SECOND, int(overridden.entries[0]["position"]), "ivan"),
                            actors["ivan"], datetime.now(UTC))
        record("ivan", patient, CourseCompletion(course=1, completed_on=day(27),
                                                 not_evaluable_reason=None))
    ledger.close()


def _ok(result: Result) -> Result:
    assert result.returncode == 0, result
    return result


def _build(env: dict[str, str], tmp: Path) -> None:
    _second_trial(env, tmp)
    second = {**env, "TRIALCTL_TRIAL": SECOND}
    packet = tmp / "cohort1.packet.json"
    made = _ok(signed(second, "mona", "packet", "--cohort", "1", "-o", str(packet), "--json"))
    _ok(signed(second, "pat", "packet", "sign", str(packet)))
    digest = json.loads(made.stdout)["sha256"]
    _ok(signed(second, "pat", "record", "decide", "--action", "escalate", "--next-level", "2",
               "--override-reason", "the DLT was declared by override", "--packet", digest))
    yesterday = (date.today() - timedelta(days=1)).isoformat()
    _ok(signed(second, "mona", "record", "withdraw", "P002", "--date", yesterday,
               "--from", "treatment", "--reason", "prefers another treatment"))
    _ok(signed(second, "mona", "record", "off-study", "P003", "--date", yesterday,
               "--reason", "progression"))
    _ok(signed(second, "mona", "record", "follow-up", "P003", "--date", yesterday,
               "--status", "alive"))
    _ok(signed(second, "pat", "trial", "close", "--reason", "database lock"))
    demo = {**env, "TRIALCTL_TRIAL": DEMO_TRIAL}
    _ok(signed(demo, "mona", "query", "reopen", "Q1", "--text", "Please attach the report"))
    _ok(signed(env, "alice", "checkpoint", "-o", str(tmp / "today.txt")))
    _ok(signed(demo, "mona", "export", "odm", str(tmp / "trial.odm.xml")))
    _ok(signed(demo, "mona", "audit", "review", "--since", "2000-01-01", "--html",
               str(tmp / "audit.html")))
    # The audit review's own views over every event type: its HTML above, its JSON here.
    review = _ok(signed(demo, "pat", "audit", "review", "--since", "2000-01-01", "--json"))
    assert json.loads(review.stdout)
    _ok(signed(env, "alice", "user", "grant-role", "mona", "data-manager"))
    _ok(signed(env, "alice", "user", "revoke-role", "mona", "data-manager"))
    _ok(trialctl("user", "rotate-key", "ivan", "-u", "alice", "--password-stdin",
                 stdin=f"{demo_password('alice')}\n{demo_password('ivan')}\n", env=env))
    wrong = trialctl("checkpoint", "-o", str(tmp / "never.txt"), "-u", "mona",
                     "--password-stdin", stdin="wrong\n", env=env)
    assert wrong.returncode == 1, wrong  # a failed sign-in, queued for the unlock to sign
    _ok(signed(env, "alice", "user", "unlock", "mona"))
    # A signed-in admin's refused pre-check: signed into their security log.
    refused = signed(env, "alice", "user", "revoke-role", "ivan", "monitor")
    assert refused.returncode == 1 and "does not hold" in refused.stderr, refused
    _ok(trialctl("user", "add", "bob", "--name", "Bob Brown, RN", "--role", "data-manager",
                 "-u", "alice", "--password-stdin",
                 stdin=f"{demo_password('alice')}\nbob-password\n", env=env))
    _ok(signed(env, "alice", "user", "revoke", "bob", "--reason", "left the site"))
    # A signed-in session, started and stopped: its socket under a runtime dir of its own.
    runtime = tmp / "run"
    runtime.mkdir(mode=0o700)
    session = {**env, "XDG_RUNTIME_DIR": str(runtime)}
    _ok(signed(session, "mona", "session", "start", "--idle", "5m", "--max", "10m"))
    _ok(trialctl("session", "stop", "--user", "mona", env=session))

@pytest.fixture(scope="module")
def every(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    tmp = tmp_path_factory.mktemp("every")
    env = demo_environment(str(tmp / "demo.sqlite"), tmp)
    _build(env, tmp)
    yield {**env, "TRIALCTL_TRIAL": DEMO_TRIAL}


def _registered_types() -> set[str]:
    return {t for kind in KINDS for t in (kind.opening, *kind.later)}


def _stored_types(env: dict[str, str]) -> set[str]:
    import sqlite3

    with sqlite3.connect(env["TRIALCTL_LEDGER"]) as db:
        return {row[0] for row in db.execute("SELECT DISTINCT topic FROM trialctl_events")}


def test_the_ledger_holds_every_registered_event_type(every: dict[str, str]) -> None:
    """A new event type fails here until the builder above records one."""
    registered = _registered_types()
    assert len(registered) >= 44
    assert registered - _stored_types(every) == set()


def _decisions(env: dict[str, str]) -> list[dict[str, Any]]:
    """Each decision's signed entry: its position and time."""
    status = json.loads(_ok(trialctl("status", "--json", env=env)).stdout)
    return [d["signed_by"] for d in status["decisions"]]


def _read_commands(env: dict[str, str]) -> list[tuple[str, ...]]:
    size = json.loads(_ok(trialctl("verify", "--json", env=env)).stdout)["tree_size"]
    decided = _decisions(env)
    decisions = [d["position"] for d in decided]
    second = [d["position"] for d in _decisions({**env, "TRIALCTL_TRIAL": SECOND})]
    upto = sorted({size // 2, size - 1, *decisions, *(p - 1 for p in decisions), *second})
    return [
        ("status",), ("status", "--trial", SECOND),
        *[("status", "--as-of", d["recorded_at"]) for d in decided[1::2]],
        ("status", "--as-of", "2100-01-01T00:00:00+00:00"),
        # Ineligible, withdrawn, the corrected DLT, reviewed, dose reduced, a deviation.
        *[("patient", p) for p in ("P001", "P002", "P007", "P008", "P010", "P012")],
        *[("patient", f"P{n:03d}", "--trial", SECOND) for n in (1, 2, 3)],
        ("log",), ("log", "--patient", "P007"), ("log", "--by", "alice"),
        *[("replay", "--upto", str(p)) for p in upto],
        ("replay", "--upto", str(second[0]), "--trial", SECOND),
        ("replay", "--as-of", "2100-01-01T00:00:00+00:00", "--trial", SECOND),
        ("schedule",), ("schedule", "--trial", SECOND), ("review", "status"),
        ("query", "list"), ("escalation", "path", "1NNN 2NTN 2NNN 3TTN", "--doses", "4"),
        ("escalation", "paths", "--cohorts", "1", "--from", "1NNN", "--doses", "4"),
        ("protocol", "form", "screening"),
        ("user", "list"), ("trial", "list"), ("verify",), ("verify", "--projections"),
        ("proof", "inclusion", str(size - 1)), ("proof", "consistency", str(size // 2)),
    ]


# The commands whose answer is a table, so they take --csv (the others print documents).
TABULAR = {("status",), ("patient",), ("log",), ("replay",), ("escalation", "paths"),
           ("user",), ("trial",), ("schedule",), ("review",), ("query",)}


def _takes_csv(command: tuple[str, ...]) -> bool:
    return command[:1] in TABULAR or command[:2] in TABULAR


def test_every_read_command_renders_every_event_type_in_every_form(
    every: dict[str, str]
) -> None:
    """One test over the whole matrix: the commands' positions come from the ledger."""
    failures = []
    csv_shown: set[tuple[str, ...]] = set()
    for command in _read_commands(every):
        # The table (where renderings crashed before) and JSON at every position; CSV, the
        # same rows as the table, once per command and option.
        family = tuple(a for a in command if a.startswith("-") or a.isalpha())
        with_csv = _takes_csv(command) and family not in csv_shown
        csv_shown.add(family)
        for output in ("table", "--json", *(("--csv",) if with_csv else ())):
            extra = [] if output == "table" else [output]
            result = trialctl(*command, *extra, env=every)
            where = f"{' '.join(command)} {output}"
            if "Traceback" in result.stdout + result.stderr:
                failures.append(f"{where}: traceback\n{result.stderr[-2000:]}")
                continue
            if result.returncode != 0 or not result.stdout.strip():
                failures.append(f"{where}: exit {result.returncode}: {result.stderr.strip()}")
                continue
            _check_form(output, command, result.stdout)
    assert failures == []


def _check_form(output: str, command: tuple[str, ...], stdout: str) -> None:
    if output == "--json" and command[0] == "log":
        assert all(json.loads(line) for line in stdout.splitlines())
    elif output == "--json":
        json.loads(stdout)
    elif output == "--csv":
        assert list(csv.DictReader(io.StringIO(stdout)))
