"""The parts of a run beyond the per-backend figures, as summary rows and results.md
sections: scale (figures 4 and 5, and verify's memory for figure 1), verify at scale
(figures 1 and 2 as whole processes on generated ledgers) and interactive latency
(figure 6)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from benchmarks import verify_scale
from benchmarks.figures import Figure, at_least, at_most
from benchmarks.scale import (
    READ_TARGET,
    REBUILD_TARGET,
    REPLAY_TARGET,
    ScaleConfig,
    ScaleReport,
    render_section,
    run_scale,
)
from benchmarks.timing import PartClock
from benchmarks.verify_scale import VerifyScaleConfig

VERIFY_MEMORY_MB = 500


def scale_figures(report: ScaleReport) -> list[Figure]:
    small, large = report.small, report.large
    pair = f"{large.entries:,} vs {small.entries:,} entries"
    figures = [
        Figure(5, f"`trialctl {name}`, whole process, {pair}", f"{large.reads[name]:.2f} s",
               f"{small.reads[name]:.2f} s", large.reads[name] / small.reads[name],
               f"<= {READ_TARGET}x", at_most(large.reads[name] / small.reads[name], READ_TARGET))
        for name in small.reads
    ]
    replay = report.replay
    if replay is not None:
        ratio = replay.among_many / replay.alone
        figures.append(Figure(
            5, f"`trialctl replay` of one trial ({replay.trial_entries:,} entries) among "
            f"{replay.ledger_trials} trials ({replay.ledger_entries:,} entries)",
            f"{replay.among_many:.2f} s",
            f"{replay.alone:.2f} s (the trial alone, {replay.alone_entries:,} entries)", ratio,
            f"<= {REPLAY_TARGET:g}x", at_most(ratio, REPLAY_TARGET)))
    memory = report.memory_baseline
    if large.verify_peak_mb:  # else `benchmarks.verify_scale` measured it (verify_figures)
        figures.append(memory_figure(large.entries, large.verify_peak_mb, memory.entries,
                                     memory.verify_peak_mb))
    for label, figures_of in (("small", small), ("large", large)):
        ratio = figures_of.rebuild_rate / figures_of.decode_rate
        figures.append(Figure(
            4, f"`projections rebuild`, {figures_of.entries:,} entries ({label})",
            f"{figures_of.rebuild_rate:,.0f} entries/s",
            f"{figures_of.decode_rate:,.0f} entries/s (read and decode alone)", ratio,
            f">= {REBUILD_TARGET}x", at_least(ratio, REBUILD_TARGET)))
    return figures


def memory_figure(entries: int, peak_mb: float, baseline_entries: int,
                  baseline_mb: float) -> Figure:
    """Figure 1's memory row: verify's peak on the large ledger against a smaller one."""
    ratio = peak_mb / baseline_mb
    return Figure(
        1, f"`trialctl verify` peak memory, {entries:,} vs {baseline_entries:,} entries",
        f"{peak_mb:.0f} MB", f"{baseline_mb:.0f} MB", ratio,
        f"<= {VERIFY_MEMORY_MB} MB and flat",
        peak_mb <= VERIFY_MEMORY_MB and at_most(ratio, READ_TARGET))


def measure_scale(config: ScaleConfig, say: Callable[[str], None],
                  clock: PartClock | None = None) -> tuple[list[Figure], str]:
    report = run_scale(config, say)
    if clock is not None:
        clock.parts += report.parts
    return scale_figures(report), render_section(report)


def measure_verify_scale(config: VerifyScaleConfig, say: Callable[[str], None],
                         clock: PartClock | None = None) -> tuple[list[Figure], str]:
    """Figure 2 (incremental verify, larger ledger over small) and figure 1 as a whole
    `trialctl verify` on the larger generated ledger, with verify's peak memory on it
    against the middle (or small) one, and its section of results.md."""
    clock = clock or PartClock()
    with clock.part(f"verify: figure 2, {config.new_entries:,} new entries on copies of "
                    f"{config.small.entries:,} and {config.large.entries:,}"):
        incremental = verify_scale.measure_figure_2(config, say)
    smaller = config.middle or config.small
    with clock.part(f"verify: figure 1, whole verify x{config.full_repeats} of "
                    f"{smaller.entries:,} and {config.large.entries:,}"):
        verified = verify_scale.measure_full_verify(config, say)
    full, peaks = verified.figure, verified.peak_mb
    largest, baseline = max(peaks), min(peaks)
    figures = [incremental, full,
               memory_figure(largest, peaks[largest], baseline, peaks[baseline])]
    lines = [
        "## Verify at scale (`benchmarks.verify_scale`)",
        "",
        f"Generated ledgers of {config.small.entries:,} and {config.large.entries:,} entries "
        f"(about {config.new_entries:,} new entries after the checkpoint); whole `trialctl` "
        f"processes, the median of {config.repeats} runs.",
        "",
        *(f"- {line}" for figure in (incremental, full)
          for line in verify_scale.describe(figure).replace("\n  - ", "\n").splitlines()),
    ]
    return figures, "\n".join(lines) + "\n"


SESSION_TARGET_S = 0.150
COLD_TARGET_S = 1.0


def latency_figures(figures: dict[str, Any]) -> list[Figure]:
    cold = figures["without_session_minus_kdf_s"]
    session = figures["session_median_s"]
    kdf = figures["kdf_s"]
    return [
        Figure(6, "`trialctl record dose`, cold whole process, without the key derivation",
               f"{cold:.2f} s", f"{kdf:.2f} s (the key derivation alone, reported apart)", None,
               f"<= {COLD_TARGET_S:.1f} s", cold <= COLD_TARGET_S),
        Figure(6, "`trialctl record dose` within a signed-in session", f"{session * 1000:.0f} ms",
               f"{figures['without_session_median_s']:.2f} s (the same without a session)",
               session / figures["without_session_median_s"],
               f"<= {SESSION_TARGET_S * 1000:.0f} ms", session <= SESSION_TARGET_S),
    ]


def latency_section(figures: dict[str, Any]) -> str:
    return "\n".join([
        "## Interactive latency (`benchmarks.session_latency`)",
        "",
        f"`trialctl record dose` on a fresh demo, {figures['doses_each']} doses in each mode, "
        "as whole processes with a warm bytecode cache (median):",
        "",
        f"- without a session: {figures['without_session_median_s']:.2f} s, of which the "
        f"key derivation (scrypt, timed alone) {figures['kdf_s']:.2f} s, so "
        f"{figures['without_session_minus_kdf_s']:.2f} s without it;",
        f"- within a signed-in session: {figures['session_median_s'] * 1000:.0f} ms "
        f"(fastest {figures['session_min_s'] * 1000:.0f} ms, slowest "
        f"{figures['session_max_s'] * 1000:.0f} ms).",
    ]) + "\n"
