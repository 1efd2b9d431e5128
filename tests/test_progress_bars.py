"""Progress bars as a user on a terminal sees them: drawn on the terminal (standard error)
while `verify`, `projections rebuild` and a long `record --from` run, never mixed into what
the command writes to standard output, and the same answer as without a terminal."""

from __future__ import annotations

import json
import os
import select
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import TRIALCTL, trialctl
from tests.demo_ledgers import demo_environment
from trialctl.ledger.demo import demo_password


def _on_a_terminal(args: list[str], env: dict[str, str], stdin: str = "") -> tuple[
        int, str, str]:
    """Run `trialctl ARGS` with standard error on a pseudo-terminal: (exit code, standard
    output, what the terminal showed)."""
    leader, follower = os.openpty()
    process = subprocess.Popen(
        [TRIALCTL, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=follower,
        env={**os.environ, **env, "COLUMNS": "100", "TERM": "xterm"}, text=True)
    os.close(follower)
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(stdin)
    process.stdin.close()
    shown = b""
    while True:
        ready, _, _ = select.select([leader], [], [], 120)
        if not ready:
            break
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closes once the process has exited
            break
        if not chunk:
            break
        shown += chunk
    out = process.stdout.read()
    code = process.wait(timeout=120)
    os.close(leader)
    return code, out, shown.decode("utf-8", "replace")


@pytest.fixture
def demo(ledger_url: str, tmp_path: Path) -> dict[str, str]:
    if not ledger_url.endswith(".sqlite"):
        pytest.skip("the progress bars are drawn by the command line alike on both backends")
    return demo_environment(ledger_url, tmp_path)


def test_verify_and_rebuild_draw_progress_on_the_terminal_only(demo: dict[str, str]) -> None:
    for args, label in ((["verify"], "verifying"), (["projections", "rebuild"], "rebuilding")):
        plain = trialctl(*args, env=demo)
        code, out, shown = _on_a_terminal(args, demo)
        assert code == plain.returncode == 0, (shown, plain)
        assert out == plain.stdout  # nothing of the bar in what a script reads
        assert label in shown and "Traceback" not in shown


def test_a_long_batch_file_draws_progress_and_records_every_line(
        demo: dict[str, str], tmp_path: Path) -> None:
    today = datetime.now(UTC).date().isoformat()
    lines = [json.dumps({"command": "observe", "patient": "P010", "kind": "ctc_count",
                         "value": str(value), "date": today}) for value in range(60)]
    batch = tmp_path / "counts.jsonl"
    batch.write_text("\n".join(lines) + "\n", encoding="utf-8")

    code, out, shown = _on_a_terminal(
        ["record", "--from", str(batch), "-u", "mona", "--password-stdin"], demo,
        stdin=demo_password("mona") + "\n")

    assert code == 0, (out, shown)
    assert out.count(" recorded #") == 60
    assert "Traceback" not in shown
    assert "━" in shown or "%" in shown  # the bar itself was drawn
