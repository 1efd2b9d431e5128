"""eventsourcing-sqlalchemy's classes, imported without the whole of sqlalchemy-utils.

eventsourcing-sqlalchemy needs one thing from sqlalchemy-utils: `UUIDType`, imported from
`sqlalchemy_utils.types.uuid`. Importing that submodule runs the package's `__init__`, which
loads every type it offers (passwords, currencies, Oracle and more dialects): about a tenth of
a second of CPU in each `trialctl` process that opens a ledger, for nothing it uses.

So, while eventsourcing-sqlalchemy is imported, `sqlalchemy_utils` and its `types` package
are bare package shells over the installed folders: the import finds `types/uuid.py` (and the
one module it imports, `scalar_coercible`) in the real installation, unmodified, and runs
nothing else. The shells are then removed, so a later `import sqlalchemy_utils` anywhere runs
the real package, which reuses the very same `UUIDType` module. No third-party file or
attribute is changed; if sqlalchemy-utils is already imported, or its layout differs from the
one expected, the ordinary import runs instead.

`UUIDType`'s module also imports the PostgreSQL and SQL Server dialects, which it reads only
when a column is bound to one of those databases: another twentieth of a second for a SQLite
ledger. While it is imported, `sqlalchemy.dialects` offers those two names as stand-ins that
import the real dialect on first use (`_Deferred`); the stand-ins are then taken off the
package, so `import sqlalchemy.dialects.postgresql` and the engine's dialect lookup run as
ever, and only `UUIDType`'s own module keeps them.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

_SHELLS = ("sqlalchemy_utils", "sqlalchemy_utils.types")
# The dialects `sqlalchemy_utils.types.uuid` imports by name and reads only at bind time.
_DEFERRED_DIALECTS = ("mssql", "postgresql")


class _Deferred:
    """A dialect package, imported (the ordinary way) when an attribute is first read."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        return getattr(importlib.import_module(self._name), attribute)

    def __repr__(self) -> str:
        return f"<deferred {self._name}>"


def _package_shells() -> list[str]:
    """Install the two shells; the names installed (none when it cannot be done safely)."""
    if any(name in sys.modules for name in _SHELLS):
        return []
    spec = importlib.util.find_spec("sqlalchemy_utils")
    if spec is None or not spec.submodule_search_locations:
        return []
    root = Path(next(iter(spec.submodule_search_locations)))
    if not (root / "types" / "uuid.py").is_file():
        return []
    for name, folder in zip(_SHELLS, (root, root / "types"), strict=True):
        shell = ModuleType(name)
        shell.__path__ = [str(folder)]
        sys.modules[name] = shell
    return list(_SHELLS)


def _deferred_dialects() -> dict[str, _Deferred]:
    """Stand-ins set on `sqlalchemy.dialects` for the dialects not imported yet."""
    import sqlalchemy.dialects

    package = sqlalchemy.dialects
    deferred = {name: _Deferred(f"{package.__name__}.{name}") for name in _DEFERRED_DIALECTS
                if not hasattr(package, name)}
    for name, stand_in in deferred.items():
        setattr(package, name, stand_in)
    return deferred


def _import_store() -> None:
    installed = _package_shells()
    deferred = _deferred_dialects() if installed else {}
    try:
        import eventsourcing_sqlalchemy.models  # noqa: F401  (the one user of UUIDType)
    finally:
        for name in installed:
            del sys.modules[name]
        import sqlalchemy.dialects

        for name, stand_in in deferred.items():
            if getattr(sqlalchemy.dialects, name, None) is stand_in:
                delattr(sqlalchemy.dialects, name)


_import_store()

# Imported after the models, which are now loaded whichever way they were found.
from eventsourcing_sqlalchemy.datastore import SQLAlchemyDatastore  # noqa: E402
from eventsourcing_sqlalchemy.factory import SQLAlchemyFactory  # noqa: E402
from eventsourcing_sqlalchemy.recorders import (  # noqa: E402
    SQLAlchemyApplicationRecorder,
    SQLAlchemyTrackingRecorder,
)

__all__ = [
    "SQLAlchemyApplicationRecorder",
    "SQLAlchemyDatastore",
    "SQLAlchemyFactory",
    "SQLAlchemyTrackingRecorder",
]
