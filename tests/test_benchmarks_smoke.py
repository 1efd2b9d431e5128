"""The benchmark runs end to end with tiny sizes on SQLite, so it keeps working.

Nothing here checks a speed: the figures only mean something from a full run of
`python -m benchmarks.run`, compared as ratios within that run.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from benchmarks import measure, run


def test_quick_run_measures_every_part_and_writes_one_table_of_figures(
    tmp_path: Path, quick_cache: Path,
) -> None:
    home_before = os.environ.get("TRIALCTL_HOME")
    config, _, parts = run.parse_args(["--quick", "--scale-cache", str(quick_cache)])
    config = replace(config, postgres_url=None)  # the server's figures have their own test

    report = run.run_benchmarks(config, parts=parts)

    assert [backend.name for backend in report.backends] == ["SQLite"]
    sqlite = report.backends[0]
    assert set(sqlite.append.rates) == {
        measure.Variant(store, size) for store in ("ledger", "bare", "native") for size in (1, 5)
    }
    assert all(len(rates) == 1 for rates in sqlite.append.rates.values())
    assert sqlite.verify.entries >= 40
    assert sqlite.verify.findings == 0
    assert len(sqlite.profiles) == 5
    assert sqlite.batch_entry is not None
    assert sqlite.batch_entry.entries == 8  # every follow-up line written, one entry each
    assert len(sqlite.batch_entry.ledger) == len(sqlite.batch_entry.bare) == 1
    assert all(profile.top for profile in sqlite.profiles)
    assert not report.imports.loads_database_stack
    assert os.environ.get("TRIALCTL_HOME") == home_before

    output = tmp_path / "results.md"
    output.write_text(run.render(report), encoding="utf-8")
    text = output.read_text(encoding="utf-8")
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings[0] == "## The figures"
    for heading in ("## SQLite", "## Start-up", "## Scale", "## Verify at scale",
                    "## Interactive latency",
                    "## What the profile shows", "## Analysis", "## Machine"):
        assert any(h.startswith(heading) for h in headings), heading
    assert "batch entry (`record --from`)" in text
    assert "Scale ledgers (`benchmarks.generator`, figures 1, 2, 4 and 5): 150 and 400 " \
        "entries." in text
    assert "## PostgreSQL" not in text
    # Every figure measured without a server has its row, with a ratio or a verdict.
    table = text.split("## The figures", 1)[1].split("\n## ", 1)[0]
    rows = [line.split(" | ") for line in table.splitlines() if line.startswith("| ") and
            line[2].isdigit()]
    assert {int(row[0].strip("| ")) for row in rows} >= {1, 2, 3, 4, 5, 6}
    assert any("verify --since-checkpoint" in row[1] for row in rows)
    assert any("`trialctl replay` of one trial" in row[1] for row in rows)
    # Where the run's time went, part by part, closes the file; figure 1's peak memory comes
    # from verify_scale's whole verifies alone (one row, not two).
    assert "## Where the time went" in text and "| verify: figure 1, whole verify" in text
    assert sum("`trialctl verify` peak memory" in row[1] for row in rows) == 1
    assert all(row[-1].strip(" |") in {"yes", "**no**", "measured"} for row in rows)


def test_command_line_defaults_to_the_postgres_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(run.POSTGRES_URL_VARIABLE, "postgresql://bench@localhost/db")
    config, output, _ = run.parse_args(["--events", "30"])
    assert config.events == 30
    assert config.profile_events == 30
    assert config.postgres_url == "postgresql://bench@localhost/db"
    assert output == run.RESULTS_FILE

    monkeypatch.delenv(run.POSTGRES_URL_VARIABLE)
    config, _, _ = run.parse_args([])
    assert config.postgres_url is None


@pytest.fixture(scope="module")
def quick_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache of the quick generated ledgers for the scale and export runs."""
    return tmp_path_factory.mktemp("bench") / "cache"


def test_scale_quick_run_generates_ledgers_and_writes_its_section(quick_cache: Path) -> None:
    from benchmarks import scale
    from benchmarks.parts import scale_figures

    config = scale.ScaleConfig(scale.QUICK.small, scale.QUICK.large, 1, quick_cache)
    report = scale.run_scale(config)

    assert report.small.entries < report.large.entries
    assert report.small.trials == report.large.trials == 2
    for figures in (report.small, report.large):
        assert set(figures.reads) == {"status", "patient", "log --patient"}
        assert figures.verify_exit == 0  # a generated ledger verifies clean
        assert figures.rebuild_rate > 0 and figures.decode_rate > 0
    # A second run reuses the cached ledgers rather than generating them again: the two
    # sizes, and the replayed trial generated alone (one trial, named by its entries).
    assert report.replay is not None and report.replay.trial_entries > 0
    assert {p.name for p in quick_cache.glob("*.done")} == {
        "ledger-150-c1-b2-s13.done", f"ledger-{report.replay.trial_entries}-c1-b1-s13.done",
        "ledger-400-c1-b2-s13.done"}
    section = scale.render_section(report)
    assert section.startswith("## Scale\n")
    assert "| `log --patient` (s) |" in section and "decode alone" in section
    assert "among many" in section
    rows = scale_figures(report)
    assert [row.number for row in rows] == [5, 5, 5, 5, 1, 4, 4]  # reads, replay, memory, rebuilds
    replay = rows[3]
    assert replay.ratio == report.replay.among_many / report.replay.alone
    assert replay.baseline.startswith(f"{report.replay.alone:.2f} s")


def test_scale_section_replaces_its_own_place_in_results() -> None:
    from benchmarks.scale import place_section

    results = "# Results\n\n## SQLite\nrates\n\n## Scale\nold\n\n## Machine\ncores\n"
    assert place_section(results, "## Scale\nnew\n") == (
        "# Results\n\n## SQLite\nrates\n\n## Scale\nnew\n\n## Machine\ncores\n")
    assert place_section("# Results\n", "## Scale\nnew\n") == "# Results\n\n## Scale\nnew\n"


def test_exports_quick_run_measures_each_command_on_both_sizes(quick_cache: Path) -> None:
    from benchmarks import exports

    report = exports.run_exports(exports.ExportConfig(exports.QUICK.small, exports.QUICK.large,
                                                      quick_cache))

    assert report.small.entries < report.large.entries
    for figures in (report.small, report.large):
        assert set(figures.runs) == {"report --html", "report --pdf", "export odm",
                                     "export sdtm"}
        assert all(run.exit_code == 0 for run in figures.runs.values()), figures.runs
        assert all(run.peak_mb > 0 for run in figures.runs.values())
        assert figures.decode_seconds > 0
    section = exports.render_section(report)
    assert section.startswith("## Reports and exports\n")
    assert "| `export odm` |" in section and "(baseline)" in section
    assert "Load average" in section


def test_run_takes_the_exports_switch() -> None:
    assert run.parse_args(["--exports"])[0].exports is True
    assert run.parse_args([])[0].exports is False


def test_run_takes_the_three_scale_sizes_of_the_issue(tmp_path: Path) -> None:
    """10,000 / 100,000 / 1,000,000: reads and figure 2 on the small and the large ledger,
    figure 1 on the middle and the large one, all kept in one cache."""
    _, _, parts = run.parse_args([
        "--scale-small", "10000", "--scale-middle", "100000", "--scale-large", "1000000",
        "--scale-verify-repeats", "1", "--scale-cache", str(tmp_path)])
    assert parts.scale is not None and parts.verify is not None
    assert (parts.scale.small.entries, parts.scale.large.entries) == (10_000, 1_000_000)
    assert parts.scale.middle is not None and parts.scale.middle.entries == 100_000
    assert parts.verify.middle == parts.scale.middle
    assert parts.verify.full_repeats == 1
    assert parts.verify.new_entries == 1_000
    assert parts.scale.cache == parts.verify.cache == tmp_path
    assert run.scale_sizes(parts) == (10_000, 100_000, 1_000_000)
    _, _, defaults = run.parse_args([])
    assert defaults.verify is not None and defaults.verify.middle is None
    assert run.scale_sizes(defaults) == (10_000, 100_000)


def test_cached_ledger_keeps_its_read_models_up_to_date_and_rebuilds_stale_ones(
    quick_cache: Path,
) -> None:
    from benchmarks import scale
    from trialctl.ledger.application import TrialLedger
    from trialctl.ledger.location import resolve_ledger
    from trialctl.ledger.projection import open_views

    size = scale.QUICK.small
    path = scale.cached_ledger(size, quick_cache, lambda _: None)
    done = path.with_suffix(".done")

    def views_position() -> tuple[int | None, int | None]:
        app = TrialLedger(resolve_ledger(str(path)))
        try:
            return open_views(app).position(), app.signed_recorder.max_notification_id()
        finally:
            app.close()

    made, views = done.read_text(encoding="utf-8").splitlines()
    position, last = views_position()
    assert position == last and views.startswith("views ")
    # A marker from before read models were cached gets its views line, its first kept.
    done.write_text(made + "\n", encoding="utf-8")
    scale.cached_ledger(size, quick_cache, lambda _: None)
    assert done.read_text(encoding="utf-8").splitlines() == [made, views]
    # So do read models dropped behind the marker's back.
    app = TrialLedger(resolve_ledger(str(path)))
    try:
        open_views(app).drop()
    finally:
        app.close()
    assert views_position()[0] is None
    scale.cached_ledger(size, quick_cache, lambda _: None)
    assert views_position() == (last, last)
    assert done.read_text(encoding="utf-8").splitlines() == [made, views]
