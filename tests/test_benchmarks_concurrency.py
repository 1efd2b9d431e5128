"""The concurrent-writers benchmark runs at its quick size on either backend, and its count
catches a lost entry.

Nothing here checks a speed: the rates mean something only from a full run on a quiet
machine. What is checked is what the figure rests on: every writer's entries are in the
ledger, each at its own position, and the ledger verifies clean afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks import concurrency
from benchmarks.workload import open_bench_ledger
from tests.conftest import BACKENDS, new_ledger


@pytest.fixture(params=BACKENDS)
def bench_url(request: pytest.FixtureRequest, tmp_path: Path, home: Path) -> Iterator[str]:
    """A new ledger with the benchmark's admin, its key file sealed at the tests' cost."""
    for url in new_ledger(request.param, tmp_path / "ledger.sqlite"):
        open_bench_ledger(url)[0].close()
        yield url


def test_writer_processes_lose_nothing_and_the_ledger_verifies(bench_url: str) -> None:
    result = concurrency.bench_concurrency(bench_url, "the test backend", concurrency.QUICK)

    assert [r.writers for r in result.rounds] == list(concurrency.QUICK.writers)
    for writers, round_ in zip(concurrency.QUICK.writers, result.rounds, strict=True):
        assert round_.expected == writers * concurrency.QUICK.entries
        assert round_.reported == round_.grown == round_.expected
        assert round_.lost == 0
    assert result.findings == 0
    assert result.verified == 2 + sum(r.grown for r in result.rounds)  # with the admin's two
    assert result.nothing_lost
    table = "\n".join(concurrency.lines(result))
    assert "| 2 |" in table and "nothing lost: yes" in table


def test_a_round_the_ledger_did_not_grow_by_counts_as_lost() -> None:
    short = concurrency.WriterRound(writers=4, expected=40, reported=40, grown=39, seconds=1.0)
    result = concurrency.ConcurrencyResult("SQLite", 1, 10, [short], verified=41, findings=0)

    assert short.lost == 1
    assert not result.nothing_lost
    assert "nothing lost: NO" in "\n".join(concurrency.lines(result))


def test_the_command_line_takes_quick_and_refuses_zero_writers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert concurrency.parse_args(["--quick", "--postgres-url", ""]) == (None,
                                                                         concurrency.QUICK)
    _, config = concurrency.parse_args(["--writers", "1", "3", "--entries", "7"])
    assert config == concurrency.ConcurrencyConfig((1, 3), 7, 1)
    with pytest.raises(SystemExit):
        concurrency.parse_args(["--writers", "0"])
    assert "at least 1" in capsys.readouterr().err
