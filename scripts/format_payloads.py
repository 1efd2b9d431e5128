"""Write docs/FORMAT.md's table of patient payloads from the fact declarations
(trialctl.domain.facts). Run: python scripts/format_payloads.py"""

from __future__ import annotations

from pathlib import Path

from trialctl.domain.facts import payload_table

FORMAT_MD = Path(__file__).resolve().parent.parent / "docs" / "FORMAT.md"
BEGIN = "<!-- patient payloads: generated from domain/facts.py by scripts/format_payloads.py -->\n"
END = "<!-- end of patient payloads -->\n"


def render(text: str) -> str:
    """The document with the generated table between its markers."""
    head, begin, rest = text.partition(BEGIN)
    _, end, tail = rest.partition(END)
    if not begin or not end:
        raise SystemExit(f"{FORMAT_MD} has lost its payload-table markers")
    return head + BEGIN + "\n" + payload_table() + "\n" + END + tail


if __name__ == "__main__":
    FORMAT_MD.write_text(render(FORMAT_MD.read_text(encoding="utf-8")), encoding="utf-8")
