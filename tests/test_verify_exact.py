"""Findings that must be exact: each anomaly once, at its position; a hostile row is a
finding, never a crash; an aggregate holds only its own kind of events; FORMAT.md's promises
(safe integers, one time form, derived ids and key ids, the user-record rules) hold at
write time and are findings when an attacker plants an entry that breaks them."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
import sqlalchemy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import assert_one_line_error, trialctl
from tests.ledgers import (
    Staff,
    actor,
    drop_append_only_triggers,
    engine_for,
    make_staff,
    plant,
    rows,
    sql,
    swap_rows,
)
from trialctl.domain.patient import patient_aggregate_id
from trialctl.ledger.application import open_ledger
from trialctl.ledger.checkpoint import CheckpointError, parse_checkpoint
from trialctl.ledger.entry import parse_entry, seal
from trialctl.ledger.errors import (
    EXIT_INCOMPLETE,
    AuthorityError,
    PayloadError,
    VerificationIncompleteError,
)
from trialctl.ledger.keys import KeyPair
from trialctl.ledger.merkle import hash_leaf
from trialctl.ledger.users import SecurityLog, security_log_id, user_aggregate_id
from trialctl.ledger.verified_users import TamperedUserRecordError
from trialctl.ledger.verify import VerificationReport, verify_ledger


def verified(staff: Staff) -> VerificationReport:
    return verify_ledger(staff.reopen().signed_recorder, staff.url, workers=1)


def checks(report: VerificationReport) -> list[tuple[int | None, str]]:
    return [(f.position, f.check) for f in report.findings]


@pytest.fixture
def staff(ledger_url: str, home: Path) -> Staff:
    staff = make_staff(ledger_url)                                  # positions 0-3
    staff.app.grant_role(staff.alice, "bob", "data-manager")       # 4
    staff.app.grant_role(staff.alice, "carol", "monitor")          # 5
    staff.app.revoke_role(staff.alice, "bob", "data-manager")      # 6
    staff.app.grant_role(staff.alice, "carol", "data-manager")     # 7
    staff.app.grant_role(staff.alice, "bob", "investigator")       # 8
    return staff


# -- the sequence check recovers ---------------------------------------------------------


def test_a_swap_gives_findings_only_at_the_swapped_positions(staff: Staff) -> None:
    engine = engine_for(staff.url)
    drop_append_only_triggers(engine)
    swap_rows(engine, 4, 5)

    report = verified(staff)

    assert {f.position for f in report.findings} == {4, 5}
    sequence = [(f.position, f.detail) for f in report.findings if f.check == "sequence"]
    assert sequence == [(5, "out of order: stored before position 4"),
                        (4, "out of order: stored after position 5")]


def test_a_gap_is_reported_once_and_the_entries_after_it_are_clean(staff: Staff) -> None:
    engine = engine_for(staff.url)
    drop_append_only_triggers(engine)
    notification_id = rows(engine)[3][0]
    sql(engine, "DELETE FROM trialctl_leaves WHERE notification_id = :i", i=notification_id)
    sql(engine, "DELETE FROM trialctl_events WHERE id = :i", i=notification_id)

    report = verified(staff)

    sequence = [(f.position, f.detail) for f in report.findings if f.check == "sequence"]
    assert sequence == [(4, "1 entry missing before this one (expected position 3)")]
    # carol registered at 3 is gone, so her own entries are the only other findings
    assert {f.aggregate_id for f in report.findings if f.check != "sequence"} == {
        str(user_aggregate_id("carol"))
    }


# -- hostile rows are findings ------------------------------------------------------------


def test_a_state_stored_as_text_is_a_finding_at_its_position(
    tmp_path: Path, home: Path
) -> None:
    staff = make_staff(str(tmp_path / "ledger.sqlite"))
    engine = engine_for(staff.url)
    drop_append_only_triggers(engine)
    sql(engine, "UPDATE trialctl_events SET state = CAST(state AS TEXT) WHERE id = :i",
        i=rows(engine)[2][0])

    result = trialctl("verify", "--ledger", staff.url)

    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "[position 2, row 3" in result.stdout
    assert "columns: state is stored as text" in result.stdout


def test_an_originator_id_stored_as_text_is_a_finding(tmp_path: Path, home: Path) -> None:
    staff = make_staff(str(tmp_path / "ledger.sqlite"))
    engine = engine_for(staff.url)
    drop_append_only_triggers(engine)
    sql(engine, "UPDATE trialctl_events SET originator_id = :o WHERE id = :i",
        o=str(user_aggregate_id("bob")), i=rows(engine)[2][0])

    report = verified(staff)

    assert [(f.position, f.check, f.detail) for f in report.findings] == [
        (2, "columns", "originator_id holds a str value, not the UUID's 16 bytes")
    ]


HOSTILE = st.one_of(
    st.binary(max_size=80), st.text(max_size=40), st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False),
)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TRIALCTL_HOME", str(home))
        path = tmp_path_factory.mktemp("template") / "ledger.sqlite"
        staff = make_staff(str(path))
        staff.app.close()
    engine = engine_for(str(path))
    drop_append_only_triggers(engine)
    engine.dispose()
    return path


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    originator_id=HOSTILE, version=HOSTILE, topic=HOSTILE,
    # SQLite stores integers of at most 64 bits: a larger one cannot be planted at all.
    state=st.one_of(st.binary(max_size=200), st.text(max_size=80),
                    st.integers(-(2**63), 2**63 - 1)),
    with_leaf=st.booleans(), replace_row=st.integers(0, 4),
)
def test_random_values_in_raw_rows_are_findings_not_crashes(
    template: Path, tmp_path_factory: pytest.TempPathFactory, originator_id: object,
    version: object, topic: object, state: object, with_leaf: bool, replace_row: int,
) -> None:
    path = tmp_path_factory.mktemp("hostile") / "ledger.sqlite"
    shutil.copy(template, path)
    engine = engine_for(str(path))
    with engine.begin() as connection:
        # Replace one row (4 = append a new one) with whatever the strategy drew.
        target = replace_row + 1
        connection.execute(sqlalchemy.text("DELETE FROM trialctl_events WHERE id = :i"),
                           {"i": target})
        connection.execute(sqlalchemy.text(
            "INSERT INTO trialctl_events (id, originator_id, originator_version, topic, state) "
            "VALUES (:i, :o, :v, :t, :s)"),
            {"i": target, "o": originator_id, "v": version, "t": topic, "s": state})
        if not with_leaf:
            connection.execute(sqlalchemy.text(
                "DELETE FROM trialctl_leaves WHERE notification_id = :i"), {"i": target})
    engine.dispose()
    app = open_ledger(str(path))
    try:
        report = verify_ledger(app.signed_recorder, str(path), workers=1)
    finally:
        app.close()

    assert not report.ok
    assert any(f.position is not None for f in report.findings)


def test_a_verify_that_cannot_finish_raises_its_own_error(staff: Staff) -> None:
    engine = engine_for(staff.url)
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text("DROP TABLE trialctl_leaves"))

    with pytest.raises(VerificationIncompleteError, match="could not finish") as raised:
        verify_ledger(staff.app.signed_recorder, staff.url, workers=1)
    assert raised.value.exit_code == EXIT_INCOMPLETE == 3
    # The command: its own exit code (not 1, "findings"), one line saying why. (Without
    # the table the ledger does not open; a column gone is found only by reading.)
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text(
            "CREATE TABLE trialctl_leaves (position BIGINT PRIMARY KEY, notification_id BIGINT)"))
    result = trialctl("verify", "--ledger", staff.url)
    assert_one_line_error(result, "could not finish")
    assert result.returncode == EXIT_INCOMPLETE


# -- positions in findings ----------------------------------------------------------------


def test_an_unreadable_entry_is_reported_at_its_position(staff: Staff) -> None:
    engine = engine_for(staff.url)
    drop_append_only_triggers(engine)
    sql(engine, "UPDATE trialctl_events SET state = :s WHERE id = :i", s=b"garbage",
        i=rows(engine)[4][0])

    report = verified(staff)

    assert (4, "entry-format") in checks(report)
    assert None not in {f.position for f in report.findings}


def test_a_broken_opening_is_reported_at_0_and_nothing_after_it_turns_into_authority(
    staff: Staff,
) -> None:
    engine = engine_for(staff.url)
    drop_append_only_triggers(engine)
    sql(engine, "UPDATE trialctl_events SET state = :s WHERE id = :i", s=b"not an entry\n",
        i=rows(engine)[0][0])

    report = verified(staff)

    assert checks(report) == [(0, "entry-format")]


def test_an_opening_signed_by_another_key_is_reported_at_0_only(staff: Staff) -> None:
    engine = engine_for(staff.url)
    drop_append_only_triggers(engine)
    notification_id, _, _, state = rows(engine)[0]
    statement = parse_entry(state).statement
    statement["actor"] = actor(staff, "carol", "admin")
    forged = seal(statement, staff.carol.keys)
    sql(engine, "UPDATE trialctl_events SET state = :s WHERE id = :i", s=forged,
        i=notification_id)
    sql(engine, "UPDATE trialctl_leaves SET leaf_hash = :h WHERE position = 0",
        h=hash_leaf(forged))

    report = verified(staff)

    assert {f.position for f in report.findings} == {0}
    assert (0, "authority") in checks(report)


def test_an_empty_ledger_is_a_finding(staff: Staff) -> None:
    engine = engine_for(staff.url)
    drop_append_only_triggers(engine)
    sql(engine, "DELETE FROM trialctl_leaves")
    sql(engine, "DELETE FROM trialctl_events")

    report = verify_ledger(staff.app.signed_recorder, staff.url, workers=1)

    assert [f.check for f in report.findings] == ["bootstrap"]
    assert "holds no entries" in report.findings[0].detail


# -- an aggregate holds only its own kind of events ---------------------------------------


def test_a_patient_event_planted_in_a_users_record_is_a_finding_and_is_passed_over(
    staff: Staff,
) -> None:
    position = plant(
        staff, staff.bob.keys, aggregate_id=user_aggregate_id("bob"),
        type="trialctl.Patient.WentOffStudy", meaning="recorded",
        payload={"off_on": "2026-01-01", "reason": "planted"},
        actor=actor(staff, "bob", "monitor"),
    )

    assert [(f.position, f.check, f.detail) for f in verified(staff).findings] == [
        (position, "aggregate", "a user record may not hold trialctl.Patient.WentOffStudy")
    ]
    app = staff.reopen()
    assert "bob" in [u.user_id for u in app.list_users()]
    # Writes fail closed: no authority rests on a record holding a foreign entry, so neither
    # a change to bob nor bob's own signature is accepted until the record is put right.
    with pytest.raises(TamperedUserRecordError, match="record of user bob"):
        app.revoke_user(staff.alice, "bob", "left the site")
    with pytest.raises(TamperedUserRecordError, match="record of user bob"):
        app.get_user("bob")
    assert [(f.position, f.check) for f in verified(staff).findings] == [(position, "aggregate")]


def test_one_user_may_not_write_into_anothers_security_log(staff: Staff) -> None:
    log = SecurityLog(user_id="bob")
    with pytest.raises(AuthorityError, match="another user's security log"):
        staff.app.record(staff.carol, log)

    position = plant(
        staff, staff.carol.keys, aggregate_id=security_log_id("bob"),
        type=SecurityLog.Opened.TOPIC, payload={"originator_topic": "trialctl.SecurityLog",
                                                 "user_id": "bob"},
        actor=actor(staff, "carol", "investigator"),
    )
    assert [(f.position, f.check, f.detail) for f in verified(staff).findings if
            f.position == position] == [(position, "authority", "carol may not write the "
                                         "security log of 'bob': only its own user does")]


@pytest.mark.parametrize(
    ("change", "refusal"),
    [
        (lambda user: user.grant_role("monitor"), "bob already holds the role 'monitor'"),
        (lambda user: user.grant_role("wizard"), "'wizard' is not a role"),
        (lambda user: user.revoke_key(key_id="ab" * 32, reason="x"), "does not hold key"),
    ],
    ids=["role-already-held", "unknown-role", "key-not-held"],
)
def test_a_user_change_the_rules_forbid_is_refused_when_written(
    staff: Staff, change: Any, refusal: str
) -> None:
    bob = staff.app.get_user("bob")
    change(bob)
    with pytest.raises(AuthorityError, match=refusal):
        staff.app.record(staff.alice, bob)
    assert verified(staff).ok  # only the signed refusal was added


@pytest.mark.parametrize(
    ("payload", "kind", "detail"),
    [
        ({"role": "monitor"}, "trialctl.User.RoleGranted", "already holds the role"),
        ({"role": "wizard"}, "trialctl.User.RoleGranted", "'wizard' is not a role"),
        ({"key_id": "ab" * 32, "reason": "x"}, "trialctl.User.KeyRevoked", "does not hold key"),
    ],
    ids=["role-already-held", "unknown-role", "key-not-held"],
)
def test_a_planted_user_change_the_rules_forbid_is_a_finding(
    staff: Staff, payload: dict[str, str], kind: str, detail: str
) -> None:
    position = plant(staff, staff.alice.keys, aggregate_id=user_aggregate_id("bob"),
                     type=kind, payload=payload, actor=actor(staff, "alice", "admin"),
                     meaning="revoked" if "Revoked" in kind else "approved")

    findings = verified(staff).findings
    assert [(f.position, f.check) for f in findings] == [(position, "user-record")]
    assert detail in findings[0].detail


def test_a_registration_whose_key_id_is_not_its_keys_hash_is_a_finding(staff: Staff) -> None:
    keys = KeyPair.generate()
    position = plant(
        staff, staff.alice.keys, aggregate_id=user_aggregate_id("dave"),
        type="trialctl.User.Registered", meaning="approved", actor=actor(staff, "alice", "admin"),
        payload={"user_id": "dave", "name": "Dave", "roles": ["monitor"],
                 "public_key": keys.public_key_hex, "key_id": "cd" * 32,
                 "originator_topic": "trialctl.User"},
    )
    assert [(f.position, f.check, f.detail) for f in verified(staff).findings] == [
        (position, "user-record", "key_id is not the SHA-256 of public_key")
    ]


def test_a_trial_at_an_id_not_derived_from_its_protocol_is_a_finding(staff: Staff) -> None:
    position = plant(
        staff, staff.alice.keys, aggregate_id=uuid4(), type="trialctl.Trial.Registered",
        meaning="approved", actor=actor(staff, "alice", "admin"),
        payload={"protocol_id": "P-1", "protocol": {}, "originator_topic": "trialctl.Trial"},
    )
    findings = verified(staff).findings
    assert [(f.position, f.check) for f in findings] == [(position, "identity")]
    assert "not derived from its payload" in findings[0].detail


def test_a_patient_at_an_id_not_derived_from_its_trial_and_number_is_a_finding(
    staff: Staff,
) -> None:
    trial_id = uuid4()
    payload = {"trial_id": str(trial_id), "patient_id": "P001", "consent_version": "2.1",
               "signed_on": "2026-01-05", "originator_topic": "trialctl.Patient"}
    position = plant(staff, staff.bob.keys, aggregate_id=uuid4(),
                     type="trialctl.Patient.ConsentSigned", meaning="recorded",
                     actor=actor(staff, "bob", "investigator"), payload=payload)
    findings = verified(staff).findings
    assert [(f.position, f.check) for f in findings] == [(position, "identity")]
    assert f"(expected {patient_aggregate_id(trial_id, 'P001')})" in findings[0].detail


# -- FORMAT.md's promises ---------------------------------------------------------------


@pytest.mark.parametrize("value", [2**53, 2**53 + 1, -(2**53)], ids=["2^53", "2^53+1", "-2^53"])
def test_an_integer_beyond_the_safe_range_is_refused_and_a_finding(
    staff: Staff, value: int
) -> None:
    log = SecurityLog(user_id="bob")
    log.refuse_attempt(action="x", reason="y")
    vars(log.pending_events[-1])["reason"] = value
    with pytest.raises(PayloadError, match="too large"):
        staff.app.record(staff.bob, log)

    position = plant(staff, staff.bob.keys, aggregate_id=security_log_id("bob"),
                     type=SecurityLog.Opened.TOPIC, actor=actor(staff, "bob", "monitor"),
                     payload={"originator_topic": "trialctl.SecurityLog", "user_id": "bob",
                              "n": value})
    findings = verified(staff).findings
    assert [(f.position, f.check) for f in findings] == [(position, "entry-format")]
    assert "beyond +/-(2^53 - 1)" in findings[0].detail


@pytest.mark.parametrize(
    "recorded_at",
    ["2026-11-25T14:45:16.571584Z", "2026-11-25T16:45:16.571584+02:00",
     "2026-11-25T14:45:16+00:00", "2026-13-25T14:45:16.571584+00:00"],
    ids=["Z", "+02:00", "no-microseconds", "month-13"],
)
def test_recorded_at_in_any_other_form_is_a_finding(staff: Staff, recorded_at: str) -> None:
    position = plant(staff, staff.bob.keys, aggregate_id=security_log_id("bob"),
                     type=SecurityLog.Opened.TOPIC, actor=actor(staff, "bob", "monitor"),
                     payload={"originator_topic": "trialctl.SecurityLog", "user_id": "bob"},
                     recorded_at=recorded_at)
    findings = verified(staff).findings
    assert [(f.position, f.check) for f in findings] == [(position, "entry-format")]
    assert "recorded_at" in findings[0].detail


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda text: text.replace("\n", "\r\n"), "not CR LF"),
        (lambda text: text.replace("+00:00\n", "Z\n", 1), "checkpoint time"),
    ],
    ids=["crlf", "z-time"],
)
def test_a_checkpoint_note_in_another_form_is_refused(
    staff: Staff, tmp_path: Path, edit: Any, message: str
) -> None:
    text = staff.app.checkpoint(staff.alice, datetime.now(UTC)).to_text()
    with pytest.raises(CheckpointError, match=message):
        parse_checkpoint(edit(text))
    note = tmp_path / "note.txt"  # read as stored bytes: no newline translation
    note.write_bytes(edit(text).encode("utf-8"))

    result = trialctl("verify", "--ledger", staff.url, "--checkpoint", str(note))

    assert_one_line_error(result, message)
