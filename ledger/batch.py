"""Batch entry: many `record` lines, checked as their single commands check them, signed
with one unlock, and written in one transaction (or, with `each`, one by one).

Lines are checked in file order on the batch's own copies of the trial and its patients,
so a line sees what the lines before it did (enrol after screening in the same file),
and a refused line leaves them as they were. Nothing is written until every line has
been checked; the signing role and meaning of each line are chosen as for its command.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, CanInitAggregate

from trialctl.domain.patient import Patient
from trialctl.domain.rules import TrialRuleError
from trialctl.ledger.application import TrialLedger, UnlockedUser, pending_actions
from trialctl.ledger.batch_lines import Line, LineError, line_request
from trialctl.ledger.errors import AuthorityError, LedgerError, first_line
from trialctl.ledger.trials import TrialActions


@dataclass(frozen=True)
class Refused:
    """A line that was not recorded, and why."""

    line: int
    command: str
    kind: str  # input, rule, ledger, authority or write
    rule: str
    message: str

    def shown(self) -> dict[str, Any]:
        return {"line": self.line, "command": self.command, "kind": self.kind,
                "rule": self.rule, "message": self.message}


@dataclass(frozen=True)
class Checked:
    """A line that passed every check: its events, grouped to be signed together."""

    line: int
    command: str
    patient: str
    events: list[Any]
    meaning: str | None


@dataclass
class Outcome:
    """What a batch did: the lines written (with their entries' positions) and refused."""

    each: bool
    lines: int
    accepted: list[dict[str, Any]] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)

    @property
    def written(self) -> int:
        return sum(len(a["positions"]) for a in self.accepted)

    def shown(self) -> dict[str, Any]:
        return {"mode": "each" if self.each else "all-or-nothing", "lines": self.lines,
                "accepted": self.accepted, "refused": [r.shown() for r in self.refused],
                "entries_written": self.written}


class _BatchActions(TrialActions):
    """`TrialActions` on the batch's own, uncommitted copies of the aggregates it touches."""

    summarises = False  # a batch reports each line's positions, not the patient's summary

    def __init__(self, ledger: TrialLedger) -> None:
        super().__init__(ledger)
        self.held: dict[UUID, Aggregate] = {}
        # Each aggregate's events from the lines accepted so far, in order.
        self.accepted: dict[UUID, list[Any]] = {}
        self.registered: list[str] | None = None
        # The event types the signer was found to hold a role for. No line changes a user,
        # so a pass stands for the whole file; a refusal is judged (and queued) every time.
        self.may_sign: set[tuple[str, ...]] = set()

    def trial_ids(self) -> list[str]:
        # No batch line registers a trial, so the trials are those at the batch's start;
        # asking the store again for every line reloaded each trial for every line.
        if self.registered is None:
            self.registered = super().trial_ids()
        return self.registered

    def _load(self, aggregate_id: UUID) -> Any:
        if aggregate_id not in self.held:
            self.held[aggregate_id] = super()._load(aggregate_id)
        return self.held[aggregate_id]

    def take(self, line: Line, trial: str | None, now: datetime, signer: str) -> Checked:
        """Check one line as its command would; on refusal the held state is unchanged."""
        request = line_request(line, trial)
        try:
            pending = self._take(request, now)
            self._check_may_record(signer, pending.aggregates)
        except BaseException:
            self._rebuild()
            raise
        events: list[Any] = []
        for aggregate in pending.aggregates:
            self.held[aggregate.id] = aggregate  # a consent's new patient
            collected = aggregate.collect_events()
            if collected:
                self.accepted.setdefault(aggregate.id, []).extend(collected)
            events += collected
        return Checked(line.number, line.command, request.patient, events, pending.meaning)

    def _check_may_record(self, signer: str, aggregates: Sequence[Aggregate]) -> None:
        actions = pending_actions(aggregates)
        if tuple(actions) not in self.may_sign:
            self.ledger.check_may_sign(signer, actions)
            self.may_sign.add(tuple(actions))

    def _rebuild(self) -> None:
        """The held state as it was after the last accepted line: each aggregate as stored,
        with the batch's accepted events replayed on it. Most lines pass, so rebuilding on
        a refusal is cheaper than copying every held aggregate before every line."""
        rebuilt: dict[UUID, Aggregate] = {}
        for aggregate_id, events in self.accepted.items():
            created_here = isinstance(events[0], CanInitAggregate)  # a consent's new patient
            aggregate: Aggregate | None = None if created_here else super()._load(aggregate_id)
            for event in events:
                aggregate = event.mutate(aggregate)
            assert aggregate is not None
            rebuilt[aggregate_id] = aggregate
        self.held = rebuilt


def check_lines(
    ledger: TrialLedger, lines: Sequence[Line], trial: str | None, signer: str, now: datetime,
    progress: Callable[[], None] | None = None, actions: _BatchActions | None = None,
) -> tuple[list[Checked], list[Refused]]:
    """Every line checked in order, before anyone is asked for a password."""
    actions = actions or _BatchActions(ledger)
    checked: list[Checked] = []
    refused: list[Refused] = []
    for line in lines:
        try:
            checked.append(actions.take(line, trial, now, signer))
        except LineError as e:
            refused.append(Refused(line.number, line.command, "input", e.rule, str(e)))
        except TrialRuleError as e:
            refused.append(Refused(line.number, line.command, "rule", e.rule,
                                   first_line(e).removesuffix(f" [rule: {e.rule}]")))
        except AuthorityError as e:
            refused.append(Refused(line.number, line.command, "authority", "may-sign",
                                   first_line(e)))
        except LedgerError as e:
            refused.append(Refused(line.number, line.command, "ledger", "ledger-state",
                                   first_line(e)))
        if progress is not None:
            progress()
    return checked, refused


def write_lines(
    ledger: TrialLedger, actor: UnlockedUser, checked: Sequence[Checked], each: bool,
    progress: Callable[[], None] | None = None,
) -> tuple[list[dict[str, Any]], list[Refused]]:
    """Sign and write the checked lines: in one transaction, or (each) one by one, stopping
    at a line the ledger refuses, since the lines after it were checked with it."""
    if not checked:
        return [], []
    if not each:
        written = ledger.record_groups(actor, [(c.events, c.meaning) for c in checked])
        return _accepted(ledger, checked, written), []
    accepted: list[dict[str, Any]] = []
    for index, line in enumerate(checked):
        try:
            (ids,) = ledger.record_groups(actor, [(line.events, line.meaning)])
        except LedgerError as e:
            refused = [Refused(line.line, line.command, "write", "write-refused", first_line(e))]
            refused += [Refused(later.line, later.command, "write", "not-attempted",
                                f"not written: line {line.line} before it was refused")
                        for later in checked[index + 1:]]
            return accepted, refused
        accepted += _accepted(ledger, [line], [ids])
        if progress is not None:
            progress()
    return accepted, []


READ_BACK = 1000  # entries read back per query: well within every backend's parameter limit


def _accepted(ledger: TrialLedger, lines: Sequence[Checked],
              written: Sequence[Sequence[int]]) -> list[dict[str, Any]]:
    """Each written line with its entries' positions and types, as the stored rows say.
    They are read back in a few queries for the whole file, not one per line, and from
    the leaf and type columns: parsing every entry just written cost more than the read."""
    every_id = [i for ids in written for i in ids]
    rows: list[tuple[int, str]] = []
    for start in range(0, len(every_id), READ_BACK):
        rows += ledger.signed_recorder.positions_for(every_id[start:start + READ_BACK])
    if len(rows) != len(every_id):
        raise LedgerError(f"{len(every_id)} entries written but {len(rows)} read back")
    shown: list[dict[str, Any]] = []
    for line, ids in zip(lines, written, strict=True):
        mine, rows = rows[:len(ids)], rows[len(ids):]
        shown.append({"line": line.line, "command": line.command, "patient": line.patient,
                      "positions": [position for position, _ in mine],
                      "types": [topic.removeprefix("trialctl.") for _, topic in mine]})
    return shown


Step = Callable[[], None] | None  # called once a line is done, for a progress bar
Progress = Callable[[str, int], AbstractContextManager[Step]]


@contextmanager
def no_progress(what: str, total: int) -> Iterator[Step]:
    yield None


def record_batch(
    ledger: TrialLedger, lines: Sequence[Line], trial: str | None, signer: str,
    unlock: Callable[[], UnlockedUser], now: datetime, each: bool = False,
    progress: Progress = no_progress,
) -> Outcome:
    """The whole batch, as `trialctl record --from` runs it: check every line; all or
    nothing unless `each`; `unlock` is asked only when something is to be written."""
    outcome = Outcome(each, len(lines))
    actions = _BatchActions(ledger)
    with progress("checking", len(lines)) as step:
        checked, outcome.refused = check_lines(ledger, lines, trial, signer, now, step, actions)
    if (outcome.refused and not each) or not checked:
        return outcome
    actor = unlock()
    with progress("recording", len(checked) if each else 0) as step:
        outcome.accepted, failed = write_lines(ledger, actor, checked, each, step)
    outcome.refused = sorted([*outcome.refused, *failed], key=lambda r: r.line)
    if not failed:
        # Every accepted line is written, so the held records are as committed: the ones
        # this batch wrote to (its signer signed their newest entries) may be snapshotted.
        ledger.patient_snapshots.keep(actor.keys, [
            patient for aggregate_id in actions.accepted
            if isinstance(patient := actions.held[aggregate_id], Patient)])
    return outcome
