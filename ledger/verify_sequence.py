"""`verify`'s sequence check: positions must run 0, 1, 2, … in commit order.

After an anomaly the check recovers, so each one is reported once, at its position, and
the entries after it are judged against what follows it, not against the anomaly:

- an entry whose position is ahead while the next entry fills the gap was stored early
  (a swap, or a move); it is reported, and its position is taken when the run reaches it;
- the entry stored just after an early one, which it should have preceded, is reported
  as swapped with it;
- an entry ahead whose successor does not fill the gap marks missing entries; the run
  continues from it;
- a position already passed is repeated or out of order.
"""

from __future__ import annotations


class SequenceCheck:
    def __init__(self, first_position: int = 0) -> None:
        self.expected = first_position
        self.ahead: set[int] = set()  # positions stored early, taken when the run gets there
        self.previous_early: int | None = None

    def check(self, position: int, next_position: int | None) -> str | None:
        """Why `position` is not where it should be (None when it is); `next_position` is
        the position of the entry stored after it, if any is known."""
        early = False
        problem: str | None = None
        if position == self.expected:
            if self.previous_early == position + 1:
                problem = f"out of order: stored after position {position + 1}"
            self._advance()
        elif position < self.expected or position in self.ahead:
            problem = f"position {position} is repeated or out of order (expected {self.expected})"
        elif next_position is not None and self.expected <= next_position < position:
            early = True
            problem = f"out of order: stored before position {self.expected}"
            self.ahead.add(position)
        else:
            missing = position - self.expected
            problem = (f"{missing} entr{'y' if missing == 1 else 'ies'} missing before this "
                       f"one (expected position {self.expected})")
            self.expected = position
            self._advance()
            self.ahead = {p for p in self.ahead if p > self.expected}
        self.previous_early = position if early else None
        return problem

    def take(self) -> int:
        """An entry whose position cannot be read takes the next one, as if in place."""
        position = self.expected
        self.previous_early = None
        self._advance()
        return position

    def _advance(self) -> None:
        self.expected += 1
        while self.expected in self.ahead:
            self.ahead.discard(self.expected)
            self.expected += 1
