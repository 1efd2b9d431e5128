"""trialctl: an event-sourced, signed, tamper-evident ledger for early-phase clinical trials.

The code lives in the top-level folders `domain/`, `ledger/` and `cli/` (and the shipped
protocols in `protocols/`); the links in this folder install and import them as one
namespace, `trialctl.domain`, `trialctl.ledger`, `trialctl.cli` and `trialctl.protocols`,
so nothing named `cli`, `domain` or `ledger` lands at the top of site-packages.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("trialctl")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
