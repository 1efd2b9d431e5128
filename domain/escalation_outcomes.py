"""What happened in a 3+3 trial: cohorts, the counts per level, and the path notation.

A :class:`Cohort` is the patients given one dose level together, with one outcome each (a DLT
or not); :class:`DoseTally` counts patients and DLTs per level over every cohort.  The usual
notation for a path of cohorts is ``"1NNN 2NTN 2NNN"``: each cohort is a dose level followed by
one letter per patient, N for no DLT and T for a DLT (:func:`parse_dose_path`,
:func:`format_dose_path`).  The rules that read these are in :mod:`trialctl.domain.escalation`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

__all__ = [
    "Cohort",
    "DosePathSyntaxError",
    "DoseTally",
    "format_dose_path",
    "is_int",
    "parse_dose_path",
]

_LETTER_NO_DLT: Final = "N"
_LETTER_DLT: Final = "T"
_LETTERS: Final = (_LETTER_NO_DLT, _LETTER_DLT)


class DosePathSyntaxError(ValueError):
    """A dose path in the ``1NNN 2NTN`` notation is malformed."""

    def __init__(self, message: str, *, cohort_number: int, token: str, position: int) -> None:
        super().__init__(message)
        self.cohort_number = cohort_number
        self.token = token
        self.position = position


def is_int(value: object) -> bool:
    """An integer that is not a bool (levels and counts are whole numbers)."""
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class Cohort:
    """Patients given one dose level together; ``outcomes[i]`` is True when patient i had a DLT.

    Outcomes within a cohort are unordered for the rules; the order is kept only so that a
    path round-trips through the notation.
    """

    level: int
    outcomes: tuple[bool, ...]

    def __post_init__(self) -> None:
        if not is_int(self.level) or self.level < 1:
            raise ValueError(f"level must be an integer >= 1, got {self.level!r}")
        if not isinstance(self.outcomes, tuple):
            raise ValueError(f"outcomes must be a tuple of bool, got {self.outcomes!r}")
        if not self.outcomes:
            raise ValueError("outcomes must hold at least one patient")
        if not all(isinstance(outcome, bool) for outcome in self.outcomes):
            raise ValueError(f"outcomes must be a tuple of bool, got {self.outcomes!r}")

    @classmethod
    def from_counts(cls, level: int, patients: int, dlts: int) -> Cohort:
        """A cohort of ``patients`` at ``level`` of whom ``dlts`` had a DLT (N's first)."""
        if not is_int(patients) or patients < 1:
            raise ValueError(f"patients must be an integer >= 1, got {patients!r}")
        if not is_int(dlts) or not 0 <= dlts <= patients:
            raise ValueError(f"dlts must be an integer in 0..{patients}, got {dlts!r}")
        return cls(level, (False,) * (patients - dlts) + (True,) * dlts)

    @property
    def size(self) -> int:
        return len(self.outcomes)

    @property
    def dlts(self) -> int:
        return sum(self.outcomes)

    @property
    def letters(self) -> str:
        """The outcomes in the notation, e.g. ``"NTN"``."""
        return "".join(_LETTER_DLT if dlt else _LETTER_NO_DLT for dlt in self.outcomes)

    @property
    def notation(self) -> str:
        """The cohort in the notation, e.g. ``"2NTN"``."""
        return f"{self.level}{self.letters}"


_TOKEN = re.compile(r"\S+")
_COHORT = re.compile(r"(?P<level>[0-9]*)(?P<letters>.*)", re.DOTALL)


def _syntax_error(
    text: str, number: int, token: str, position: int, problem: str
) -> DosePathSyntaxError:
    return DosePathSyntaxError(
        f"cohort {number} {token!r} (at character {position}) of dose path {text!r}: {problem}",
        cohort_number=number,
        token=token,
        position=position,
    )


def parse_dose_path(text: str, num_doses: int) -> list[Cohort]:
    """Parse ``"1NNN 2NTN 2NNN"`` into cohorts.

    Each whitespace-separated token is a dose level (one or more digits, 1..num_doses)
    followed by one letter per patient: N (no DLT) or T (DLT), either case. An empty or
    all-blank string is an empty path. Raises `DosePathSyntaxError` naming the cohort.
    """
    if not is_int(num_doses) or num_doses < 1:
        raise ValueError(f"num_doses must be an integer >= 1, got {num_doses!r}")
    cohorts: list[Cohort] = []
    for number, match in enumerate(_TOKEN.finditer(text), start=1):
        token, position = match.group(), match.start()
        parts = _COHORT.fullmatch(token)
        assert parts is not None  # the pattern matches every string
        digits, letters = parts.group("level"), parts.group("letters")
        problem: str | None = None
        if not digits:
            problem = "must start with a dose level (digits), e.g. '1NNN'"
        elif not letters:
            problem = "has no patient outcomes; add one letter per patient (N or T)"
        else:
            bad = next(
                (i for i, letter in enumerate(letters) if letter.upper() not in _LETTERS), None
            )
            if bad is not None:
                problem = (
                    f"{letters[bad]!r} at character {position + len(digits) + bad} is not an "
                    "outcome; use N (no DLT) or T (DLT)"
                )
            elif not 1 <= int(digits) <= num_doses:
                problem = f"dose level {int(digits)} is outside 1..{num_doses}"
        if problem is not None:
            raise _syntax_error(text, number, token, position, problem)
        level = int(digits)
        outcomes = tuple(letter.upper() == _LETTER_DLT for letter in letters)
        cohorts.append(Cohort(level, outcomes))
    return cohorts


def format_dose_path(cohorts: Iterable[Cohort]) -> str:
    """The inverse of `parse_dose_path`: ``"1NNN 2NTN"`` (upper case, single spaces)."""
    return " ".join(cohort.notation for cohort in cohorts)


@dataclass(frozen=True)
class DoseTally:
    """Patients and DLTs per level, counted over every cohort (index 0 is level 1)."""

    patients: tuple[int, ...]
    dlts: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.patients) != len(self.dlts) or not self.patients:
            raise ValueError("patients and dlts must be non-empty and of equal length")
        for n, t in zip(self.patients, self.dlts, strict=True):
            if not (is_int(n) and is_int(t) and 0 <= t <= n):
                raise ValueError(f"need 0 <= dlts <= patients at every level, got {t} of {n}")

    @classmethod
    def empty(cls, num_doses: int) -> DoseTally:
        return cls((0,) * num_doses, (0,) * num_doses)

    @property
    def num_doses(self) -> int:
        return len(self.patients)

    def _index(self, level: int) -> int:
        if not is_int(level) or not 1 <= level <= self.num_doses:
            raise ValueError(f"level must be in 1..{self.num_doses}, got {level!r}")
        return level - 1

    def patients_at(self, level: int) -> int:
        return self.patients[self._index(level)]

    def dlts_at(self, level: int) -> int:
        return self.dlts[self._index(level)]

    def add(self, cohort: Cohort) -> DoseTally:
        i = self._index(cohort.level)
        patients = list(self.patients)
        dlts = list(self.dlts)
        patients[i] += cohort.size
        dlts[i] += cohort.dlts
        return DoseTally(tuple(patients), tuple(dlts))
