"""Write docs/FORMAT.md section 8's table of who may sign what from the permissions
(trialctl.ledger.authority). Run: python scripts/format_authority.py"""

from __future__ import annotations

from pathlib import Path

from trialctl.ledger.authority import permission_table

FORMAT_MD = Path(__file__).resolve().parent.parent / "docs" / "FORMAT.md"
BEGIN = "<!-- permissions: generated from ledger/authority.py by scripts/format_authority.py -->\n"
END = "<!-- end of permissions -->\n"


def render(text: str) -> str:
    """The document with the generated table between its markers."""
    head, begin, rest = text.partition(BEGIN)
    _, end, tail = rest.partition(END)
    if not begin or not end:
        raise SystemExit(f"{FORMAT_MD} has lost its permission-table markers")
    return head + BEGIN + "\n" + permission_table() + "\n" + END + tail


if __name__ == "__main__":
    FORMAT_MD.write_text(render(FORMAT_MD.read_text(encoding="utf-8")), encoding="utf-8")
