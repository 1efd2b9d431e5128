"""The `trialctl` executable: a `record` command goes to the signer's session agent when
they have one (`session_client`, no heavy imports); everything else, and anything the agent
hands back, runs through the typer app (`main`)."""

from __future__ import annotations

import sys


def run() -> None:
    arguments = sys.argv[1:]
    if arguments[:1] == ["record"]:
        from trialctl.cli.session_client import record_in_session

        code = record_in_session(arguments)
        if code is not None:
            sys.exit(code)
    from trialctl.cli.main import run as run_app

    run_app()
