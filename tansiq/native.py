"""Which modules of the ingest hot path this installation runs compiled (mypyc, see setup.py).

:data:`MODULES` is the one list: ``setup.py`` reads it (without importing the package) to know
what to compile.  The same source runs either way; compiled, the per-object work of an ingest
costs about a third less CPU.  This module imports nothing of tansiq, so that setup.py can run it.
"""

from __future__ import annotations

import importlib.util
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path
from typing import Final

MODULES: Final = (
    "tansiq.stix.validate",
    "tansiq.stix.timestamps",
    "tansiq.stix.extensions",
    "tansiq.stix.jsonstream",
    "tansiq.store.rows",
)


def origins() -> dict[str, Path]:
    """Where each of :data:`MODULES` is imported from (a ``.so`` when compiled)."""
    found: dict[str, Path] = {}
    for name in MODULES:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise ImportError(f"{name} is not installed")
        found[name] = Path(spec.origin)
    return found


def compiled() -> bool:
    """Are all of :data:`MODULES` compiled?"""
    return all(str(p).endswith(tuple(EXTENSION_SUFFIXES)) for p in origins().values())


def stale() -> list[str]:
    """Compiled modules older than their source beside them (an editable install whose source
    was edited after ``pip install -e .``: the edit does not run until it is rebuilt)."""
    out = []
    for name, origin in origins().items():
        if origin.suffix == ".py":
            continue
        source = origin.parent / (name.rsplit(".", 1)[1] + ".py")
        if source.exists() and source.stat().st_mtime > origin.stat().st_mtime:
            out.append(name)
    return out


def describe() -> str:
    """One line for ``tansiq --version``."""
    if compiled():
        late = stale()
        return "hot path compiled" + (f" (STALE, rebuild: {', '.join(late)})" if late else "")
    return (
        "hot path in plain Python (no C compiler at install, or installed with"
        " TANSIQ_PURE_PYTHON=1)"
    )
