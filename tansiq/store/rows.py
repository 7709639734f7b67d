"""The ``objects`` row of a stored version: its columns and how a valid object fills them.

Built once per object on every ingest, so this module is compiled with the rest of the hot
path (:data:`tansiq.native.MODULES`).  The ``partners`` column format lives here too: the
writer, deletions and the TAXII queries use these helpers, and the policy's ``LIKE '%,DZ,%'``
conditions rely on the same format.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

import orjson

from tansiq.stix.extensions import distribution_of
from tansiq.stix.timestamps import to_micros

OBJECT_COLUMNS: Final = (
    "added",
    "id",
    "type",
    "version",
    "created",
    "modified",
    "created_by_ref",
    "revoked",
    "is_latest",
    "spec_version",
    "json",
    "origin",
    "partners",
)


def partners_column(codes: Iterable[str]) -> str:
    """The ``partners`` column of *codes*: ``,DZ,EG,`` (so ``LIKE '%,DZ,%'`` finds one)."""
    return "," + ",".join(codes) + ","


def partner_codes(column: object) -> list[str]:
    """The partner codes of a ``partners`` column value."""
    return [c for c in str(column).split(",") if c]


def version_of(obj: dict[str, Any]) -> tuple[int, int | None, int | None]:
    """(version, created, modified) of *obj* in microseconds; the version is ``modified``, else
    ``created``, else 0 (objects without either have one version)."""
    created = obj.get("created")
    modified = obj.get("modified")
    c = to_micros(created) if created is not None else None
    m = to_micros(modified) if modified is not None else None
    return (m if m is not None else c if c is not None else 0), c, m


JSON_COLUMN: Final = OBJECT_COLUMNS.index("json")
HOLDS_NUL: Final = "must not hold U+0000 (NUL): PostgreSQL cannot read a stored string holding one"


def _holds_nul(value: object) -> bool:
    """Does *value*, a string or a JSON array or object of them, hold a NUL anywhere?"""
    if type(value) is str:
        return "\x00" in value
    if type(value) is dict:
        for k, v in value.items():
            if _holds_nul(k) or _holds_nul(v):
                return True
    elif type(value) is list:
        for item in value:
            if _holds_nul(item):
                return True
    return False


def nul_property(obj: dict[str, Any], row: list[Any]) -> str | None:
    """The property of *obj* holding a NUL in a string (in a name or value, at any depth), or
    None; *row* is its :func:`build_row`.  PostgreSQL stores the escape ``\\u0000`` in the
    ``json`` column but fails reading the members of that JSON (a TAXII manifest does), so no
    stored version may hold one.  The JSON text tells at once (~0.05 µs, where walking the
    object takes ~1.7 µs an ATT&CK object); only text with that escape is walked (a backslash
    followed by ``u0000`` in a string shows as ``\\\\u0000``)."""
    if "\\u0000" not in row[JSON_COLUMN]:
        return None
    for k, v in obj.items():
        if _holds_nul(k) or _holds_nul(v):
            return str(k)
    return None


def build_row(obj: dict[str, Any]) -> list[Any]:
    """The ``objects`` row of a valid, prepared object (``added`` and ``is_latest`` set later)."""
    version, created, modified = version_of(obj)
    dist = distribution_of(obj)
    origin, partners = "", ""
    if dist is not None:
        origin = str(dist.get("origin", ""))
        partners = partners_column(dist.get("partners", ()))
    return [
        None,
        obj["id"],
        obj["type"],
        version,
        created,
        modified,
        obj.get("created_by_ref"),
        1 if obj.get("revoked") is True else 0,
        1,
        obj.get("spec_version"),
        orjson.dumps(obj).decode(),
        origin,
        partners,
    ]
