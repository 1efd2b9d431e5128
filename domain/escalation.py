"""The 3+3 dose-escalation rules as a pure engine: outcomes in, a selection out.

No I/O, no database, no clock, no randomness. Dose levels are counted from 1.

Let d be the level of the latest cohort, and n and t the evaluable patients and DLTs at d,
counted over every cohort given at d.

1. An unfinished cohort at d (n not 3 or 6): continue at d.
2. 1 DLT in 3: continue at d with 3 more (expansion to 6).
3. 0 of 3, or at most 1 of 6 ("tolerated"): escalate to d+1 -- unless d is the top level,
   or d+1 already has 6 patients or >= 2 DLTs; then stop and declare d the MTD
   (reason "top_level_cleared" or "level_above_too_toxic").
4. >= 2 DLTs at d (of 3 or of 6): at the lowest level, stop with no tolerable dose
   ("no_tolerable_dose"). Otherwise, without de-escalation: stop and declare d-1 the MTD
   ("level_above_too_toxic"). With de-escalation: if d-1 has fewer than 6 patients, continue
   there (it is filled to 6 before anything is declared); if it already has 6, stop and
   declare the highest level below d with 6 patients and at most 1 DLT (or no dose if none).
5. A path in which any cohort is not at the level these rules prescribe, or comes after a
   stop, or puts more than 6 at a level, is out of rule: the engine rejects it with the
   reason (`OutOfRuleError`).

Also: the first cohort must be at the start level (default 1); an empty path recommends the
start level and continues.

A cohort may be reported in parts ("1NN 1N" is one cohort of 3), but one cohort may not carry a
level past a point where the rules must decide (3, then 6 patients): "1NNNN" treats a fourth
patient at level 1 when, after 0 of 3, the rules prescribe level 2, so it is out of rule.

Two consequences of "filled to 6 before anything is declared" under de-escalation:

* a level below that already had 3 patients is brought to 6 by one de-escalation cohort;
* when the trial starts above level 1, the level reached by de-escalation may have had no
  patients. If it then tolerates its first 3 (0 of 3) while the level above is too toxic,
  rule 3 would declare it the MTD on 3 patients; the de-escalation variant expands it to
  6 instead, so that a declared MTD below a toxic level always has 6 patients behind it.

"Evaluable" and "DLT" are decided upstream (for instance, the DLT evaluation window of the
protocol); this module only sees the outcomes that count.

The design (`ThreePlusThree`) is kept apart from the outcomes (`Cohort` sequences). There is
one decision function, `ThreePlusThree.decide`; fitting a path (`ThreePlusThree.fit`), checking
a path (`check_path`) and enumerating future paths (`trialctl.domain.dose_paths`) all go through
it. The
de-escalation variant wraps the base rule (`with_deescalation`) rather than editing it.

The usual notation for a path: ``"1NNN 2NTN 2NNN"`` -- each cohort is a dose level followed by
one letter per patient, N for no DLT and T for a DLT (see `parse_dose_path`).

This module holds the rules, the design, the history check and the selection; the outcomes and
the notation are in `escalation_outcomes`, the vocabulary of steps in `escalation_steps` (both
re-exported here), and the dose-path tree in `dose_paths`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

# The vocabulary and the outcomes are re-exported: callers import the whole engine from here.
from trialctl.domain.escalation_outcomes import (
    Cohort,
    DosePathSyntaxError,
    DoseTally,
    format_dose_path,
    is_int,
    parse_dose_path,
)
from trialctl.domain.escalation_steps import (
    ACTION_CONTINUE,
    ACTION_DEESCALATE,
    ACTION_ESCALATE,
    ACTION_EXPAND,
    ACTION_STOP,
    ACTIONS,
    EXPANSION_DLTS,
    STOP_LEVEL_ABOVE_TOO_TOXIC,
    STOP_NO_TOLERABLE_DOSE,
    STOP_REASONS,
    STOP_TOP_LEVEL_CLEARED,
    TOXIC_DLTS,
    Decision,
    OutOfRuleError,
    Step,
)

__all__ = [
    "ACTIONS",
    "ACTION_CONTINUE",
    "ACTION_DEESCALATE",
    "ACTION_ESCALATE",
    "ACTION_EXPAND",
    "ACTION_STOP",
    "EXPANSION_DLTS",
    "STOP_LEVEL_ABOVE_TOO_TOXIC",
    "STOP_NO_TOLERABLE_DOSE",
    "STOP_REASONS",
    "STOP_TOP_LEVEL_CLEARED",
    "TOXIC_DLTS",
    "Cohort",
    "Decision",
    "DosePathSyntaxError",
    "DoseTally",
    "OutOfRuleError",
    "Rule",
    "Selection",
    "Step",
    "ThreePlusThree",
    "check_path",
    "format_dose_path",
    "next_decision_point",
    "parse_dose_path",
    "three_plus_three_rule",
    "with_deescalation",
]

# --- the rules --------------------------------------------------------------------------


Rule = Callable[["ThreePlusThree", DoseTally, int], Step]
"""A decision rule: (design, tally, level of the latest cohort) -> step."""


def _go(action: str, level: int, reason: str) -> Step:
    return Step(action, level, None, None, reason)


def _stop(mtd: int | None, stop_reason: str, reason: str) -> Step:
    return Step(ACTION_STOP, None, mtd, stop_reason, reason)


def _of(t: int, n: int) -> str:
    return f"{t} DLT{'s' if t != 1 else ''} in {n}"


def three_plus_three_rule(design: ThreePlusThree, tally: DoseTally, d: int) -> Step:
    """Rules 1-4 without de-escalation, for the latest cohort at level ``d``."""
    n, t = tally.patients_at(d), tally.dlts_at(d)
    first, full = design.cohort_size, design.max_per_level
    if n not in (first, full):
        return _go(
            ACTION_CONTINUE,
            d,
            f"level {d} has {n} evaluable patient{'s' if n != 1 else ''}; "
            f"complete the cohort at level {d}",
        )
    if n == first and t == EXPANSION_DLTS:
        return _go(
            ACTION_EXPAND, d, f"{_of(t, n)} at level {d}: expand level {d} to {full} patients"
        )
    if t < TOXIC_DLTS:
        if d == design.num_doses:
            return _stop(
                d,
                STOP_TOP_LEVEL_CLEARED,
                f"{_of(t, n)} at level {d}, the top level: MTD is level {d}",
            )
        above_n, above_t = tally.patients_at(d + 1), tally.dlts_at(d + 1)
        if above_n >= full or above_t >= TOXIC_DLTS:
            return _stop(
                d,
                STOP_LEVEL_ABOVE_TOO_TOXIC,
                f"{_of(t, n)} at level {d}; level {d + 1} already had {_of(above_t, above_n)}: "
                f"MTD is level {d}",
            )
        return _go(ACTION_ESCALATE, d + 1, f"{_of(t, n)} at level {d}: escalate to level {d + 1}")
    if d == 1:
        return _stop(
            None,
            STOP_NO_TOLERABLE_DOSE,
            f"{_of(t, n)} at level 1, the lowest level: no tolerable dose",
        )
    return _stop(
        d - 1,
        STOP_LEVEL_ABOVE_TOO_TOXIC,
        f"{_of(t, n)} at level {d}: MTD is level {d - 1}, the level below",
    )


def with_deescalation(rule: Rule) -> Rule:
    """Wrap ``rule`` so that an MTD below a too-toxic level is declared only on 6 patients.

    When the inner rule stops because level d is too toxic, the level below is filled to
    ``max_per_level`` first (de-escalation); if it is already full, the MTD is the highest
    level below d with a full complement and at most 1 DLT. When the inner rule stops at a
    tolerated level with only one cohort behind it because the level above is too toxic, that
    level is expanded first.
    """

    def rule_with_deescalation(design: ThreePlusThree, tally: DoseTally, d: int) -> Step:
        step = rule(design, tally, d)
        if step.should_continue:
            return step
        full = design.max_per_level
        n, t = tally.patients_at(d), tally.dlts_at(d)
        if t >= TOXIC_DLTS and d > 1:
            below = d - 1
            below_n = tally.patients_at(below)
            if below_n < full:
                return _go(
                    ACTION_DEESCALATE,
                    below,
                    f"{_of(t, n)} at level {d}: de-escalate to level {below}, which has "
                    f"{below_n} of the {full} patients needed to declare it",
                )
            cleared = [
                level
                for level in range(1, d)
                if tally.patients_at(level) == full and tally.dlts_at(level) < TOXIC_DLTS
            ]
            if not cleared:
                return _stop(
                    None,
                    STOP_NO_TOLERABLE_DOSE,
                    f"{_of(t, n)} at level {d}; no level below has {full} patients with at "
                    "most 1 DLT: no tolerable dose",
                )
            mtd = max(cleared)
            return _stop(
                mtd,
                STOP_LEVEL_ABOVE_TOO_TOXIC,
                f"{_of(t, n)} at level {d}; level {mtd} is the highest level below with "
                f"{full} patients and at most 1 DLT: MTD is level {mtd}",
            )
        if step.stop_reason == STOP_LEVEL_ABOVE_TOO_TOXIC and n < full:
            return _go(
                ACTION_EXPAND,
                d,
                f"{_of(t, n)} at level {d} below a too-toxic level: expand level {d} to "
                f"{full} patients before declaring it the MTD",
            )
        return step

    return rule_with_deescalation


_DEESCALATING_RULE: Final = with_deescalation(three_plus_three_rule)


# --- the design -------------------------------------------------------------------------


@dataclass(frozen=True)
class ThreePlusThree:
    """A 3+3 design: the protocol parameters, apart from any outcomes.

    ``cohort_size`` patients are treated per cohort and a level is expanded once, to
    ``max_per_level`` = 2 x ``cohort_size``. The DLT thresholds are those of 3+3: exactly
    1 DLT in the first cohort expands, 2 or more DLTs make a level too toxic.
    """

    num_doses: int
    start_level: int = 1
    allow_deescalation: bool = False
    cohort_size: int = 3
    max_per_level: int = 6

    def __post_init__(self) -> None:
        if not is_int(self.num_doses) or self.num_doses < 1:
            raise ValueError(f"num_doses must be an integer >= 1, got {self.num_doses!r}")
        if not is_int(self.start_level) or not 1 <= self.start_level <= self.num_doses:
            raise ValueError(
                f"start_level must be an integer in 1..num_doses ({self.num_doses}), "
                f"got {self.start_level!r}"
            )
        if not isinstance(self.allow_deescalation, bool):
            raise ValueError(f"allow_deescalation must be a bool, got {self.allow_deescalation!r}")
        if not is_int(self.cohort_size) or self.cohort_size < TOXIC_DLTS:
            raise ValueError(
                f"cohort_size must be an integer >= {TOXIC_DLTS}, got {self.cohort_size!r}"
            )
        if not is_int(self.max_per_level) or self.max_per_level != 2 * self.cohort_size:
            raise ValueError(
                f"max_per_level must be 2 x cohort_size ({2 * self.cohort_size}): one "
                f"expansion cohort; got {self.max_per_level!r}"
            )

    @property
    def rule(self) -> Rule:
        """The decision rule of this design (the base rule, wrapped for de-escalation)."""
        return _DEESCALATING_RULE if self.allow_deescalation else three_plus_three_rule

    def decide(self, tally: DoseTally, last_level: int | None) -> Step:
        """The single decision function: what to do given the counts and the latest level.

        ``last_level`` is None before any cohort: start at ``start_level``.
        """
        if tally.num_doses != self.num_doses:
            raise ValueError(f"tally covers {tally.num_doses} levels, the design {self.num_doses}")
        if last_level is None:
            return _go(
                ACTION_CONTINUE,
                self.start_level,
                f"no cohort yet: start at level {self.start_level}",
            )
        return self.rule(self, tally, last_level)

    def fit(self, outcomes: Sequence[Cohort]) -> Selection:
        """Replay ``outcomes`` through the rules; raises `OutOfRuleError` (rule 5)."""
        cohorts = tuple(outcomes)
        tally, step, decisions = _replay(self, cohorts)
        return Selection(self, cohorts, tally, step, decisions)

    def fit_notation(self, text: str) -> Selection:
        """`fit` a path written in the notation (`parse_dose_path`)."""
        return self.fit(parse_dose_path(text, self.num_doses))


# --- the history check (rule 5) --------------------------------------------------------


def next_decision_point(design: ThreePlusThree, patients: int) -> int:
    """The count at a level after which the rules must be consulted again."""
    return design.cohort_size if patients < design.cohort_size else design.max_per_level


def _check_cohort(
    design: ThreePlusThree, index: int, cohort: Cohort, tally: DoseTally, step: Step
) -> None:
    """Rule 5 for one cohort, given the step the rules prescribed before it."""
    number = index + 1

    def out(reason: str) -> OutOfRuleError:
        return OutOfRuleError(
            cohort_number=number,
            level=cohort.level,
            prescribed_level=step.next_level,
            reason=reason,
        )

    if not step.should_continue:
        raise out(f"it comes after the trial stopped at cohort {index}: {step.reason}")
    if cohort.level != step.next_level:
        if index == 0:
            raise out(f"the first cohort must be at the start level {design.start_level}")
        raise out(
            f"after cohort {index} the rules prescribe level {step.next_level}: {step.reason}"
        )
    before = tally.patients_at(cohort.level)
    after = before + cohort.size
    if after > design.max_per_level:
        raise out(
            f"it would put {after} patients at level {cohort.level}; at most "
            f"{design.max_per_level} are allowed"
        )
    point = next_decision_point(design, before)
    if after > point:
        raise out(
            f"it would put {after} patients at level {cohort.level}, past the decision due "
            f"at {point}; only {point - before} more may be treated before it"
        )


def _advance(
    design: ThreePlusThree, index: int, cohort: Cohort, tally: DoseTally, step: Step
) -> tuple[DoseTally, Step, Decision]:
    """Check one cohort against the step before it, add it, and decide again."""
    _check_cohort(design, index, cohort, tally, step)
    tally = tally.add(cohort)
    step = design.decide(tally, cohort.level)
    decision = Decision(
        cohort_index=index,
        level=cohort.level,
        patients=tally.patients_at(cohort.level),
        dlts=tally.dlts_at(cohort.level),
        action=step.action,
        next_level=step.next_level,
        mtd_level=step.mtd_level,
        stop_reason=step.stop_reason,
        reason=step.reason,
    )
    return tally, step, decision


def _replay(
    design: ThreePlusThree, cohorts: Sequence[Cohort]
) -> tuple[DoseTally, Step, list[Decision]]:
    tally = DoseTally.empty(design.num_doses)
    step = design.decide(tally, None)
    decisions: list[Decision] = []
    for index, cohort in enumerate(cohorts):
        tally, step, decision = _advance(design, index, cohort, tally, step)
        decisions.append(decision)
    return tally, step, decisions


def check_path(design: ThreePlusThree, cohorts: Sequence[Cohort]) -> None:
    """Raise `OutOfRuleError` if any cohort of the path breaks rule 5; otherwise return."""
    _replay(design, cohorts)


# --- the answer -------------------------------------------------------------------------


@dataclass(frozen=True)
class Selection:
    """The rules applied to a path: a fixed set of questions with their answers."""

    design: ThreePlusThree
    cohorts: tuple[Cohort, ...]
    tally: DoseTally
    step: Step
    decisions: list[Decision] = field(hash=False)

    @property
    def should_continue(self) -> bool:
        return self.step.should_continue

    @property
    def next_level(self) -> int | None:
        """The level for the next cohort; None once the trial has stopped."""
        return self.step.next_level

    @property
    def mtd_level(self) -> int | None:
        """The declared MTD once stopped; None while going on or when no dose is tolerable."""
        return self.step.mtd_level

    @property
    def recommended_level(self) -> int | None:
        """While going on: the level for the next cohort; once stopped: the MTD (or None)."""
        return self.next_level if self.should_continue else self.mtd_level

    @property
    def stop_reason(self) -> str | None:
        """A code among `STOP_REASONS`, or None while going on."""
        return self.step.stop_reason

    @property
    def path(self) -> str:
        return format_dose_path(self.cohorts)

    @property
    def num_patients(self) -> int:
        return sum(self.tally.patients)

    @property
    def admissible_levels(self) -> tuple[int, ...]:
        """Levels strictly below every level that has seen 2 or more DLTs."""
        toxic = [
            level
            for level in range(1, self.design.num_doses + 1)
            if self.tally.dlts_at(level) >= TOXIC_DLTS
        ]
        ceiling = min(toxic, default=self.design.num_doses + 1)
        return tuple(range(1, ceiling))

    def patients_at(self, level: int) -> int:
        return self.tally.patients_at(level)

    def dlts_at(self, level: int) -> int:
        return self.tally.dlts_at(level)

    def then(self, cohort: Cohort) -> Selection:
        """The selection after one more cohort (same checks as `ThreePlusThree.fit`)."""
        tally, step, decision = _advance(
            self.design, len(self.cohorts), cohort, self.tally, self.step
        )
        return Selection(
            self.design, (*self.cohorts, cohort), tally, step, [*self.decisions, decision]
        )

    def stop_reason_text(self) -> str | None:
        """Human text for `stop_reason`, or None while going on."""
        return None if self.stop_reason is None else STOP_REASONS[self.stop_reason]

    def explain(self) -> str:
        """One line of human text: the latest decision and why."""
        return self.step.reason
