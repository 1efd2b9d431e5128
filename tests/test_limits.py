"""Length limits are enforced before signing, with the offending field's path; and the read
models take whatever the ledger accepted, even text longer than today's limits that an older
trialctl signed (PostgreSQL once refused a protocol id over 100 characters for good)."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import assert_one_line_error, trialctl
from tests.ledgers import PASSWORDS, engine_for, make_staff, rows
from tests.trial_helpers import ROOT, nct_protocol
from trialctl.domain.protocol_file import ProtocolError, load_protocol
from trialctl.domain.protocol_values import PROTOCOL_ID_MAX, TEXT_MAX
from trialctl.ledger.requests import Registration
from trialctl.ledger.trials import TrialActions

NCT_TEXT = (ROOT / "protocols" / "NCT00084513.toml").read_text(encoding="utf-8")
DLT_RULE_TEXT = ("Any grade >= 3 non-haematologic toxicity attributed possibly, probably or "
                 "definitely to study treatment")


def _with_id(protocol_id: str) -> str:
    return re.sub(r'(?m)^id = ".*"$', f'id = "{protocol_id}"', NCT_TEXT, count=1)


def test_a_protocol_id_at_the_limit_is_accepted() -> None:
    assert load_protocol(_with_id("N" * PROTOCOL_ID_MAX)).id == "N" * PROTOCOL_ID_MAX


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(_with_id("N" * (PROTOCOL_ID_MAX + 1)),
                     f"id: must be at most {PROTOCOL_ID_MAX} characters (got 65)", id="id"),
        pytest.param(re.sub(r'(?m)^title = ".*"$', f'title = "{"t" * (TEXT_MAX + 1)}"',
                            NCT_TEXT, count=1),
                     f"title: must be at most {TEXT_MAX} characters", id="title"),
        pytest.param(NCT_TEXT.replace(DLT_RULE_TEXT, "x" * (TEXT_MAX + 1)),
                     f"dlt.rules[0].text: must be at most {TEXT_MAX} characters",
                     id="nested-text"),
        pytest.param(NCT_TEXT.replace('unit = "mg/day"', f'unit = "{"m" * (TEXT_MAX + 1)}"', 1),
                     "agents[", id="agent-field"),
    ],
)
def test_over_long_protocol_text_is_refused_with_its_path(text: str, message: str) -> None:
    with pytest.raises(ProtocolError) as refused:
        load_protocol(text)
    assert str(refused.value).startswith(message)


def test_trial_register_refuses_a_protocol_id_over_the_limit(
    ledger_url: str, home: Path, tmp_path: Path
) -> None:
    staff = make_staff(ledger_url)
    staff.app.grant_role(staff.alice, "carol", "principal-investigator")
    staff.app.close()
    engine = engine_for(ledger_url)
    before = len(rows(engine))
    protocol_file = tmp_path / "long.toml"
    protocol_file.write_text(_with_id("N" * 101), encoding="utf-8")

    result = trialctl("trial", "register", str(protocol_file), "--ledger", ledger_url,
                      "-u", "carol", "--password-stdin", stdin=f"{PASSWORDS['carol']}\n")

    assert_one_line_error(result, "id: must be at most 64 characters (got 101)")
    assert len(rows(engine)) == before
    engine.dispose()


def test_read_models_take_a_protocol_id_longer_than_any_old_column(
    ledger_url: str, home: Path
) -> None:
    long_id = "N" * 150  # as an older trialctl, without limits, signed it
    staff = make_staff(ledger_url)
    staff.app.grant_role(staff.alice, "carol", "principal-investigator")
    carol = staff.app.unlock("carol", PASSWORDS["carol"])
    protocol = dataclasses.replace(nct_protocol(), id=long_id)
    TrialActions(staff.app).perform(Registration(protocol), carol, datetime.now(UTC))
    staff.app.close()

    status = trialctl("status", "--json", "--ledger", ledger_url)
    assert status.returncode == 0, status.stderr
    assert long_id in status.stdout
    log = trialctl("log", "--json", "--ledger", ledger_url)
    assert log.returncode == 0, log.stderr
    assert len(log.stdout.splitlines()) == 6
    assert json.loads(log.stdout.splitlines()[-1])["position"] == 5
    for args in (("verify", "--projections"), ("projections", "rebuild")):
        result = trialctl(*args, "--ledger", ledger_url)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Traceback" not in result.stderr
