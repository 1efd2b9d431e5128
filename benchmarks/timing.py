"""Where a benchmark run's time goes: each part's wall seconds beside its CPU seconds (this
process and the children it waited for), for the table at the end of results.md."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass(frozen=True)
class PartTime:
    name: str
    wall: float
    cpu: float  # user + system, this process and its waited-for children


def _cpu() -> float:
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


@dataclass
class PartClock:
    parts: list[PartTime] = field(default_factory=list)

    @contextlib.contextmanager
    def part(self, name: str) -> Iterator[None]:
        wall, cpu = time.perf_counter(), _cpu()
        try:
            yield
        finally:
            self.parts.append(PartTime(name, time.perf_counter() - wall, _cpu() - cpu))


def part_lines(parts: list[PartTime], total: float) -> list[str]:
    """The `## Where the time went` table (markdown lines)."""
    lines = [
        "## Where the time went",
        "",
        "Each part of this run, in order (wall seconds drift with the machine's other load; "
        "CPU is user + system of the run and the processes it waited for).",
        "",
        "| part | wall (s) | CPU (s) | share of the run |",
        "| --- | ---: | ---: | ---: |",
    ]
    lines += [f"| {p.name} | {p.wall:.0f} | {p.cpu:.0f} | {p.wall / total:.0%} |"
              for p in parts]
    lines.append(f"| the whole run | {total:.0f} | | 100% |")
    return lines
