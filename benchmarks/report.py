"""benchmarks/results.md from a run's figures: tables, the profile's story, an analysis
against the targets, and the machine it ran on."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from benchmarks.concurrency import ConcurrencyResult
from benchmarks.concurrency import lines as concurrency_lines
from benchmarks.figures import Figure, at_least, summary_lines
from benchmarks.measure import (
    DATABASE_STACK,
    REPORTED_MODULES,
    BackendResult,
    ImportResult,
    Report,
    Variant,
    VerifyResult,
)
from benchmarks.profile import Profile, ProfileLine
from benchmarks.timing import part_lines
from benchmarks.workload import SUBJECTS
from trialctl.ledger.keys import crypto_sign_open

APPEND_TARGET = 0.6
VERIFY_TARGET = 0.7

# -- the summary's rows -------------------------------------------------------------------------


def backend_figures(result: BackendResult) -> list[Figure]:
    """Figure 1 (verify against raw Ed25519 x cores) and figure 3 (batch entry against the
    bare application) for one backend."""
    verify = result.verify
    figures = [Figure(
        1, f"verify, {verify.entries:,} entries, {verify.workers} workers ({result.name})",
        _rate(verify.rate, "entries"),
        f"{_rate(verify.raw_limit, 'signatures')} (raw Ed25519 x {verify.workers} cores)",
        verify.ratio, f">= {VERIFY_TARGET}x", at_least(verify.ratio, VERIFY_TARGET))]
    batch = result.batch_entry
    if batch is not None:
        figures.append(Figure(
            3, f"`record --from`, {batch.lines}-line files ({result.name})",
            _rate(statistics.median(batch.ledger), "entries"),
            f"{_rate(statistics.median(batch.bare), 'events')} (bare eventsourcing)",
            batch.ratio, f">= {APPEND_TARGET}x", at_least(batch.ratio, APPEND_TARGET)))
    return figures


def import_figure(imports: ImportResult) -> Figure:
    return Figure(
        6, f"`{imports.command}`, whole process", f"{imports.help_seconds * 1000:.0f} ms",
        f"{imports.python_seconds * 1000:.0f} ms (`python -c pass`)",
        imports.help_seconds / imports.python_seconds, "imports no database stack",
        not imports.loads_database_stack)


def concurrency_figures(result: ConcurrencyResult) -> list[Figure]:
    single = result.rounds[0].rate if result.rounds else 0.0
    return [Figure(
        7, f"{r.writers} concurrent writer(s), {result.batch} per save ({result.backend})",
        f"{r.rate:,.0f} entries/s", f"{single:,.0f} entries/s (1 writer)",
        r.rate / single if single else None, "nothing lost (counted)", r.lost == 0)
        for r in result.rounds]


def report_figures(report: Report) -> list[Figure]:
    figures = [f for result in report.backends for f in backend_figures(result)]
    figures.append(import_figure(report.imports))
    if report.concurrency is not None:
        figures += concurrency_figures(report.concurrency)
    return figures + list(report.figures)


# -- rendering ---------------------------------------------------------------------------------


def _rate(value: float, unit: str = "") -> str:
    number = f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"
    return f"{number} {unit}/s" if unit else f"{number}/s"


def _met(ok: bool) -> str:
    return "yes" if ok else "**no**"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def append_rows(result: BackendResult) -> list[list[str]]:
    append = result.append
    rows = []
    baselines = [("bare", "bare eventsourcing-sqlalchemy")]
    if Variant("native", 1) in append.rates:
        baselines.append(("native", "eventsourcing.sqlite (native)"))
    for size in (1, append.batch):
        shape = "1 event per save" if size == 1 else f"{size} events per save"
        mine = Variant("ledger", size)
        for store, label in baselines:
            theirs = Variant(store, size)
            ratio = append.ratio(mine, theirs)
            rows.append([
                f"signed append, {shape} (vs {label})",
                f"{_rate(append.median(mine), 'events')}",
                f"{_rate(append.median(theirs), 'events')}",
                f"{ratio:.2f}x",
                f">= {APPEND_TARGET}x",
                _met(ratio >= APPEND_TARGET),
            ])
    return rows


def verify_row(verify: VerifyResult) -> list[str]:
    return [
        f"verify, {verify.entries:,} entries, {verify.workers} workers",
        f"{_rate(verify.rate, 'entries')}",
        f"{_rate(verify.raw_limit, 'signatures')} (raw Ed25519 verify, 1 core x "
        f"{verify.workers})",
        f"{verify.ratio:.2f}x",
        f">= {VERIFY_TARGET}x",
        _met(verify.ratio >= VERIFY_TARGET),
    ]


def batch_entry_row(result: BackendResult) -> list[list[str]]:
    batch = result.batch_entry
    if batch is None:
        return []
    return [[
        f"batch entry (`record --from`), {batch.lines} lines = {batch.entries} entries per "
        "file (vs bare eventsourcing-sqlalchemy, same events per save)",
        f"{_rate(statistics.median(batch.ledger), 'entries')}",
        f"{_rate(statistics.median(batch.bare), 'events')}",
        f"{batch.ratio:.2f}x",
        f">= {APPEND_TARGET}x",
        _met(batch.ratio >= APPEND_TARGET),
    ]]


def batch_entry_notes(result: BackendResult) -> list[str]:
    batch = result.batch_entry
    if batch is None:
        return []
    return [
        f"- Batch entry by round (entries/s, ledger then bare): "
        f"{', '.join(f'{r:,.0f}' for r in batch.ledger)}; "
        f"{', '.join(f'{r:,.0f}' for r in batch.bare)}. Each file is a site's follow-up "
        "(labs and adverse events for an enrolled cohort), read with `read_lines` and run "
        "through `record_batch` as `record --from` runs it (every line checked, one "
        "transaction); the bare application saves the same number of `DoseLog` events "
        "in one save to the same backend.",
    ]


VERIFY_LIBRARY = "libsodium via PyNaCl" if crypto_sign_open is not None else "cryptography"


def markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def profile_lines(profile: Profile) -> list[str]:
    lines = [f"**{profile.title}** — {profile.total:.2f} s under cProfile "
             f"({_ms(profile.total / max(profile.events, 1))} per entry, profiler overhead "
             "included).", ""]
    lines += markdown_table(
        ["top cumulative (our code)", "calls", "cumulative", "share"],
        [[f"`{p.function}`", f"{p.calls:,}", f"{p.seconds:.3f} s", f"{p.share:.0%}"]
         for p in profile.top],
    )
    lines.append("")
    lines += markdown_table(
        ["where the time goes", "calls", "cumulative", "per entry", "share"],
        [[p.function, f"{p.calls:,}", f"{p.seconds:.3f} s",
          _ms(p.seconds / max(profile.events, 1)), f"{p.share:.0%}"]
         for p in profile.parts],
    )
    lines.append("")
    return lines


def _part(profile: Profile, prefix: str) -> ProfileLine | None:
    return next((p for p in profile.parts if p.function.startswith(prefix)), None)


def _share(profile: Profile, prefix: str) -> float:
    part = _part(profile, prefix)
    return part.share if part else 0.0


def _verdict(ratio: float, target: float) -> str:
    return f"{'meets' if ratio >= target else 'misses'} the {target}x target"


@dataclass(frozen=True)
class AppendCosts:
    """Per-event times for one backend and batch size, and the profile's split of them.

    The profile's shares are applied to the unprofiled time: an estimate, since cProfile
    slows Python code more than time spent in the database."""

    ledger: float
    bare: float
    ratio: float
    profile: Profile

    def estimate(self, prefix: str) -> float:
        return self.ledger * _share(self.profile, prefix)

    def ratio_without(self, **fractions: float) -> float:
        """The ratio if the given fraction of each named part's time went away, e.g.
        ratio_without(authority=1.0, numbering=0.5)."""
        removed = sum(self.estimate(prefix) * f for prefix, f in fractions.items())
        return self.bare / (self.ledger - removed)


def append_costs(result: BackendResult, batch: int) -> AppendCosts:
    append = result.append
    mine, bare = Variant("ledger", batch), Variant("bare", batch)
    profile = result.profiles[0 if batch == 1 else 1]
    return AppendCosts(1 / append.median(mine), 1 / append.median(bare),
                       append.ratio(mine, bare), profile)


def verify_ceiling(verify: VerifyResult) -> float:
    """The best ratio to the raw limit that this much CPU per entry allows on these cores:
    CPU per raw verification over all CPU (main process and workers) per verified entry."""
    per_entry_cpu = (verify.cpu("main") + verify.cpu("worker")) / verify.entries
    return statistics.median(verify.raw_cpu) / per_entry_cpu


def _largest_parts(profile: Profile, count: int = 3) -> str:
    """The biggest named parts of a profile (not their "of which" lines), as prose."""
    parts = sorted((p for p in profile.parts if not p.function.startswith("- ")),
                   key=lambda p: -p.share)[:count]
    return ", ".join(f"{p.function.split(':')[0]} {p.share:.0%}" for p in parts)


def _loads_per_save(profile: Profile) -> float:
    part = _part(profile, "- of which aggregate loads")
    return part.calls / profile.saves if part and profile.saves else 0.0


def profile_summary(report: Report) -> list[str]:
    """The few facts the profiles below support, in prose."""
    out: list[str] = []
    for result in report.backends:
        single, batched = result.profiles[0], result.profiles[1]
        seq, main = result.profiles[2], result.profiles[3]
        out.append(
            f"- **{result.name}, append:** the ledger's own extra database work dominates, "
            "not cryptography. One event per save: the authority check (`BatchAuthority`: the "
            "signer's latest version, with a re-read of the `User` only when it grew, "
            f"{_loads_per_save(single):.1f} loads per save) {_share(single, 'authority'):.0%}, "
            "the previous entry's hash (`_previous_entry_hash`, remembered from reads and "
            f"commits) {_share(single, 'chain'):.0%}, the write lock + "
            f"tree-size query {_share(single, 'numbering'):.0%}, against "
            f"{_share(single, 'signing'):.0%} for `seal()` (Ed25519 itself "
            f"{_share(single, '- of which Ed25519'):.0%}). With {result.append.batch} events "
            f"per save the largest parts are {_largest_parts(batched)}, and RFC 8785 canonical "
            f"JSON alone is {_share(batched, '- of which RFC'):.0%}."
        )
        out.append(
            f"- **{result.name}, verify:** in one process Ed25519 is "
            f"{_share(seq, '- of which Ed25519'):.0%} of the time and `parse_entry` "
            f"{_share(seq, '- of which parse_entry'):.0%}; the ordered checks are only "
            f"{_share(seq, 'ordered'):.0%} and reading rows {_share(seq, 'read rows'):.0%}. "
            f"With workers, the main process spends {_share(main, 'waiting'):.0%} of the run "
            f"waiting on workers and {_share(main, 'read rows'):.0%} reading rows, which it "
            "streams to the workers in batches as it reads."
        )
    return out


def _batching_note(verify: VerifyResult) -> str:
    if not verify.experiment_runs:
        return ""
    batches = -(-verify.entries // verify.batch_size)
    return (
        f"Batches are sized to the ledger (at most {verify.batch_size}; here about "
        f"{batches} of them or more for {verify.workers} workers) and stream while rows are "
        f"read. Given batches of {verify.experiment_batch} (`verify_ledger(batch_size=…)`), "
        f"verify ran at {_rate(verify.experiment_rate, 'entries')} "
        f"({verify.experiment_ratio:.2f}x). "
    )


def analysis(report: Report) -> list[str]:
    """Findings written from this run's numbers."""
    out: list[str] = []
    for result in report.backends:
        name = result.name
        single = append_costs(result, 1)
        batch = result.append.batch
        batched = append_costs(result, batch)
        out.append(
            f"- **{name}, append, one event per save: {single.ratio:.2f}x the bare rate "
            f"({_verdict(single.ratio, APPEND_TARGET)}).** The ledger takes "
            f"{_ms(single.ledger)} per event against {_ms(single.bare)} for the bare library: "
            f"{_ms(single.ledger - single.bare)} more, of which roughly "
            f"{_ms(single.estimate('authority'))} is the authority check, "
            f"{_ms(single.estimate('chain'))} the previous entry's hash, "
            f"{_ms(single.estimate('numbering'))} the lock and tree size and "
            f"{_ms(single.estimate('signing'))} canonicalising and signing; the leaf insert "
            "and the commit's extra row make up much of the rest."
        )
        out.append(
            f"- **{name}, append, {batch} events per save: {batched.ratio:.2f}x "
            f"({_verdict(batched.ratio, APPEND_TARGET)}).** One commit is shared by {batch} "
            f"events, so the bare library drops to {_ms(batched.bare)} per event; the "
            f"ledger's {_ms(batched.ledger)} goes mostly to {_largest_parts(batched.profile)}."
        )
        if Variant("native", 1) in result.append.rates:
            native = result.append.ratio(Variant("bare", 1), Variant("native", 1))
            out.append(
                f"- **{name}: the bare eventsourcing-sqlalchemy recorder runs at {native:.2f}x "
                "eventsourcing's native sqlite recorder** (one event per save), so against "
                f"the native recorder the ledger is at "
                f"{result.append.ratio(Variant('ledger', 1), Variant('native', 1)):.2f}x; that "
                "gap is SQLAlchemy's (ORM unit of work per save), shared by anything built on "
                "eventsourcing-sqlalchemy, and not the ledger's to close."
            )
        verify = result.verify
        ceiling = verify_ceiling(verify)
        worker_per_entry = verify.cpu("worker") / verify.entries
        out.append(
            f"- **{name}, verify: {_rate(verify.rate, 'entries')}, {verify.ratio:.2f}x the raw "
            f"limit ({_verdict(verify.ratio, VERIFY_TARGET)}).** Each run used "
            f"{verify.cpu('worker'):.2f} CPU-s in the workers ({worker_per_entry * 1e6:.0f} us "
            f"per entry, against {statistics.median(verify.raw_cpu) * 1e6:.0f} us of CPU for a "
            f"bare Ed25519 verify) and {verify.cpu('main'):.2f} CPU-s in the main process, on "
            f"{verify.workers} cores: even perfectly scheduled, that much CPU caps verify at "
            f"{ceiling:.2f}x the raw limit. "
            + _batching_note(verify)
            + f"Against raw Ed25519 measured with {verify.workers} processes at once (what "
            f"the machine gave then: {verify.effective_cores:.2f} cores' worth), verify is at "
            f"{verify.ratio_to_parallel:.2f}x."
        )
        if verify.findings:
            out.append(f"- **verify reported {verify.findings} findings on the benchmark "
                       "ledger**: the verify figures are not of a clean ledger.")
    imports = report.imports
    loaded = [m for m in DATABASE_STACK if m in imports.after_import + imports.after_help]
    out.append(
        f"- **Start-up: `{imports.command}` takes {imports.help_seconds * 1000:.0f} ms "
        f"against {imports.python_seconds * 1000:.0f} ms for `python -c pass` "
        f"({imports.help_seconds / imports.python_seconds:.1f}x) and "
        + ("loads no database stack (target met).**" if not loaded else
           f"loads {', '.join(loaded)} (target missed).**")
        + " Its heaviest imports: "
        + ", ".join(f"`{n}` {s * 1000:.0f} ms" for n, s in imports.heaviest) + "."
    )
    return out


def suggestions(report: Report) -> list[str]:
    """What was changed to get here, and what the profiles point at next."""
    first = report.backends[0]
    batched = append_costs(first, first.append.batch)
    verify = first.verify
    return [
        "Done (each measured in this harness before and after): the authority check reads "
        "only the signer's latest version and re-reads the `User` when it grew; the hash of "
        "the previous entry is remembered from reads and commits (entries are immutable and "
        "versions unique) instead of selected; the table is locked once per transaction; "
        "the ledger's own statements on every append go to the driver as plain SQL; verify's "
        "workers return only what the ordered checks read, cache public keys, check the "
        "canonical form at C speed (RFC 8785 library as the authority), and batches stream "
        "from the store, sized to the ledger. Canonical JSON goes through orjson wherever "
        "its bytes are provably RFC 8785's (the library otherwise); verify checks Ed25519 "
        "with libsodium (PyNaCl), cryptography as the fallback; batch entry no longer "
        "deep-copies every held aggregate for every line (it rebuilds them on a refusal) "
        "and reads the registered trials once per batch.",
        "1. **Batched append**: canonical JSON is now "
        f"{_share(batched.profile, '- of which RFC'):.0%} of a {first.append.batch}-event "
        f"save on {first.name}; signing and the entry rows remain.",
        f"2. **verify is bound by per-entry CPU** (ceiling {verify_ceiling(verify):.2f}x on "
        f"{verify.workers} cores): each entry is parsed, checked for canonical form and "
        "hashed twice besides its Ed25519 verify, and on a 2-core machine the main process's "
        f"reading competes with the workers. {VERIFY_TARGET}x of the raw limit needs that "
        "overhead below about 15% of an Ed25519 verify.",
        *batch_entry_suggestion(first),
    ]


def batch_entry_suggestion(result: BackendResult) -> list[str]:
    batch = result.batch_entry
    if batch is None:
        return []
    return [
        f"3. **Batch entry is bound by per-line work** ({batch.ratio:.2f}x the bare rate on "
        f"{result.name}): the bare application writes {batch.entries} events in one insert, "
        "while every line is checked by its command's rules and may-sign check (a read of "
        "the signer per line), signed and appended as its own group, and read back for the "
        "report (`_accepted`, one select per line). Sharing those reads across the batch is "
        "the next step.",
    ]


def render(report: Report) -> str:
    config = report.config
    lines = [
        "# trialctl benchmarks",
        "",
        f"Measured {report.started:%Y-%m-%d %H:%M} UTC by `python -m benchmarks.run` "
        f"(--events {config.events} --rounds {config.rounds} --verify-entries "
        f"{config.verify_entries}; the run took {report.seconds:.0f} s). The machine is "
        "shared, so absolute rates drift between runs; each ratio compares figures measured "
        "in the same run: append rounds interleave the variants in rotating order, and "
        "each ratio is the median of per-round ratios.",
        "",
        "Append workload: `DoseLog` aggregates (a stand-in for a trial record with explicit "
        f"topics, {SUBJECTS} subjects, five string fields per dose) held in memory and saved "
        f"as events are made, {config.events} events per variant per round. The ledger "
        "signs as one admin through `TrialLedger.record`; the baselines save the same "
        "aggregates unsigned with `Application.save`. Every store starts empty and grows by "
        "the same amount. Verify runs on a separate ledger built from the same events.",
        "",
    ]
    if report.scale_sizes:
        sizes = [f"{n:,}" for n in report.scale_sizes]
        listed = sizes[0] if len(sizes) == 1 else ", ".join(sizes[:-1]) + " and " + sizes[-1]
        lines += [f"Scale ledgers (`benchmarks.generator`, figures 1, 2, 4 and 5): {listed} "
                  f"entries.{_generation_note(report)}", ""]
    lines += [*summary_lines(report_figures(report)), ""]
    header = ["figure", "value", "baseline", "ratio", "target", "met?"]
    for result in report.backends:
        lines += [f"## {result.name} ({result.server_version})", ""]
        lines += markdown_table(header, [*append_rows(result), verify_row(result.verify),
                                         *batch_entry_row(result)])
        append = result.append
        verify = result.verify
        per_round = "; ".join(
            f"{v.store}/{v.batch}: {', '.join(f'{r:,.0f}' for r in rates)}"
            for v, rates in append.rates.items()
        )
        raw_single = statistics.median(verify.raw_single)
        lines += [
            "",
            f"- Append rates by round (events/s; store/events per save): "
            f"{per_round}.",
            *batch_entry_notes(result),
            f"- Unlocking the signer's key (scrypt, once per signing `trialctl` command, not "
            f"in the append rates): {result.unlock_seconds:.2f} s.",
            f"- verify: {verify.entries:,} entries, {verify.findings} findings, median "
            f"{statistics.median(verify.seconds):.2f} s per run "
            f"({', '.join(f'{s:.2f}' for s in verify.seconds)}); CPU per run "
            f"{verify.cpu('main'):.2f} s main process + {verify.cpu('worker'):.2f} s workers.",
            f"- Raw Ed25519 verify of a {verify.statement_bytes}-byte statement, with the "
            f"library verify uses ({VERIFY_LIBRARY}): {_rate(raw_single)} on one core "
            f"(cryptography, measured alongside: "
            f"{_rate(statistics.median(verify.raw_cryptography or [0.0]))}); "
            f"{_rate(statistics.median(verify.raw_parallel))} measured with "
            f"{verify.workers} processes at once, i.e. {verify.effective_cores:.2f} of "
            f"{verify.workers} cores' worth on this shared machine (verify is at "
            f"{verify.ratio_to_parallel:.2f}x of that).",
            f"- verify's per-entry worker function `check_entry` alone, one process, rows in "
            f"memory: {_rate(verify.check_one_rate, 'entries')} "
            f"({verify.check_one_ratio:.2f}x raw Ed25519 on one core, measured alongside).",
        ]
        if verify.experiment_runs:
            lines.append(
                f"- Experiment, not a change: with `verify_ledger(batch_size=…)` lowered from "
                f"{verify.batch_size} to {verify.experiment_batch}, verify "
                f"ran at {_rate(verify.experiment_rate, 'entries')} "
                f"({verify.experiment_ratio:.2f}x the raw limit)."
            )
        lines.append("")
    if report.concurrency is not None:
        lines += ["## Concurrent writers", "", *concurrency_lines(report.concurrency), ""]
    imports = report.imports
    lines += ["## Start-up (no backend)", ""]
    lines += markdown_table(header, [[
        f"`{imports.command}`",
        f"{imports.help_seconds * 1000:.0f} ms",
        f"{imports.python_seconds * 1000:.0f} ms (`python -c pass`)",
        f"{imports.help_seconds / imports.python_seconds:.1f}x",
        "imports no database stack",
        _met(not imports.loads_database_stack),
    ]])
    lines += [
        "",
        f"- Loaded after `import trialctl.cli.main`: {', '.join(imports.after_import) or 'none'}; "
        f"after running `--help` in the same process: "
        f"{', '.join(imports.after_help) or 'none'} (checked: {', '.join(REPORTED_MODULES)}); "
        f"{imports.module_count} modules loaded in all.",
        f"- Timed with a warm bytecode cache (a private PYTHONPYCACHEPREFIX), medians of "
        f"{report.config.import_repeats} alternating runs. In this environment as it is"
        + (" (PYTHONDONTWRITEBYTECODE=1, so the project's own modules are compiled on every "
           "start)" if imports.bytecode_off else "")
        + f": {imports.help_seconds_as_is * 1000:.0f} ms against "
        f"{imports.python_seconds_as_is * 1000:.0f} ms "
        f"({imports.help_seconds_as_is / imports.python_seconds_as_is:.1f}x).",
        "- Heaviest imports while running `--help` (`python -X importtime`, outermost "
        "modules with everything they import, interpreter start-up excluded): "
        + ", ".join(f"`{n}` {s * 1000:.0f} ms" for n, s in imports.heaviest) + ".",
        "",
        "## What the profile shows",
        "",
        *profile_summary(report),
        "",
        "Below, per profile: the top 5 of our own functions by cumulative time, then the "
        "named parts of the work. cProfile slows Python code more than time spent in C or "
        "in the database, so shares are indicative.",
        "",
    ]
    for result in report.backends:
        lines += [f"### {result.name}", ""]
        for profile in result.profiles:
            lines += profile_lines(profile)
    for section in report.sections:
        lines += [section.rstrip("\n"), ""]
    lines += ["## Analysis", "", *analysis(report), "",
              "### What was changed, and what I would change next", "",
              *suggestions(report), "", "## Machine", ""]
    lines += [f"- {name}: {value}" for name, value in report.machine.items()]
    lines += [f"- {r.name}: {r.server_version}" for r in report.backends if r.name != "SQLite"]
    if report.parts:
        lines += ["", *part_lines(report.parts, report.seconds)]
    return "\n".join(lines) + "\n"


def _generation_note(report: Report) -> str:
    """When the scale ledgers came from the cache: generating them is outside the run."""
    if not report.generation_seconds:
        return ""
    largest = max(report.scale_sizes)
    made = report.generation_seconds.get(largest)
    took = ("" if made is None else
            f"; generating the {largest:,}-entry one takes {made / 60:.0f} min")
    return (f" The ledgers are generated once and cached with their read models (outside "
            f"the run's time{took}).")

