"""trialctl: an event-sourced, signed, tamper-evident ledger for early-phase clinical trials.

The code lives in the top-level folders `domain/`, `ledger/` and `cli/` (and the shipped
protocols in `protocols/`); the links in this folder install and import them as one
namespace, `trialctl.domain`, `trialctl.ledger`, `trialctl.cli` and `trialctl.protocols`,
so nothing named `cli`, `domain` or `ledger` lands at the top of site-packages.
"""


# `__version__` is looked up when first asked for (`--version`, export headers): reading the
# installed metadata imports the email parser, which `trialctl --help` does not otherwise load.
def __getattr__(name: str) -> str:
    if name != "__version__":
        raise AttributeError(f"module 'trialctl' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("trialctl")
    except PackageNotFoundError:  # running from a source tree that was never installed
        found = "0.0.0+unknown"
    globals()["__version__"] = found
    return found
