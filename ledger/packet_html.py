"""The committee packet as one self-contained HTML page for the people who read it: the same
signed content as the packet file (cohorts, DLT listing with adjudications, the 3+3
recommendation or the decision, the dose-transition pathways, what is pending), with the
tree head it is pinned to, its author and the SHA-256 of the signed file it renders.

The page is a reading copy, never the evidence: `packet verify` checks the file, and the
page names that file's hash so a reader can tell which one it shows.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from jinja2 import Environment, StrictUndefined, select_autoescape

TEMPLATE = "packet.html.j2"


def packet_html(document: dict[str, Any], sha256: str) -> str:
    """The packet `document` (as read from its file, whose bytes hash to `sha256`)."""
    text = resources.files("trialctl.ledger.report").joinpath("templates", TEMPLATE)
    environment = Environment(autoescape=select_autoescape(default=True),
                              undefined=StrictUndefined, keep_trailing_newline=True)
    signed = document["signed"]
    pathways = signed["pathways"]
    columns = list(pathways["rows"][0]) if pathways["rows"] else []
    return str(environment.from_string(text.read_text(encoding="utf-8")).render(
        packet=signed, sha256=sha256, signatures=document.get("signatures", []),
        pathway_columns=columns))
