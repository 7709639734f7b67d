"""tansiq's STIX extension-definitions, shipped with the package.

The *distribution* property-extension carries, inside every stored version, who it is released to
(``partners``: partner codes, originator included, groups and "all partners" already expanded) and
which partner's node originated it (``origin``), so every node can enforce it.  The *signature*
property-extension carries the originating node's Ed25519 signature over the rest of the version
(see :mod:`tansiq.federation.signing`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

TANSIQ_IDENTITY_ID: Final = "identity--b63145ff-627d-4e0b-b1c5-04eaeddf64e7"
DISTRIBUTION_EXT: Final = "extension-definition--9490da53-189e-4ac3-b942-0c4a2d186461"
SIGNATURE_EXT: Final = "extension-definition--3507d1bf-e506-4b85-bc60-c3280e73a359"
_CREATED: Final = "2026-11-01T00:00:00.000Z"

TANSIQ_IDENTITY: Final[dict[str, Any]] = {
    "type": "identity",
    "spec_version": "2.1",
    "id": TANSIQ_IDENTITY_ID,
    "created": _CREATED,
    "modified": _CREATED,
    "name": "tansiq project",
    "identity_class": "organization",
    "description": "Publisher of the tansiq STIX extension-definitions.",
}

DISTRIBUTION_DEFINITION: Final[dict[str, Any]] = {
    "type": "extension-definition",
    "spec_version": "2.1",
    "id": DISTRIBUTION_EXT,
    "created_by_ref": TANSIQ_IDENTITY_ID,
    "created": _CREATED,
    "modified": _CREATED,
    "name": "tansiq distribution",
    "description": (
        "Originator-controlled distribution of one object version: the partner codes it is "
        "released to (originator included, groups expanded when the version was made) and the "
        "partner whose node originated it. A receiving node never widens it."
    ),
    "schema": "https://tansiq.invalid/schemas/distribution-1.0.json",
    "version": "1.0.0",
    "extension_types": ["property-extension"],
}


SIGNATURE_DEFINITION: Final[dict[str, Any]] = {
    "type": "extension-definition",
    "spec_version": "2.1",
    "id": SIGNATURE_EXT,
    "created_by_ref": TANSIQ_IDENTITY_ID,
    "created": _CREATED,
    "modified": _CREATED,
    "name": "tansiq signature",
    "description": (
        "The originating node's Ed25519 signature over one object version: base64url (unpadded) "
        "of the signature over the RFC 8785 canonical JSON of the version without this "
        "extension (and without `extensions` if nothing else is left in it), so it covers the "
        "distribution. `signer` is the partner code whose node signed it; `alg` is Ed25519."
    ),
    "schema": "https://tansiq.invalid/schemas/signature-1.0.json",
    "version": "1.0.0",
    "extension_types": ["property-extension"],
}


def extension_of(obj: dict[str, Any], definition_id: str) -> dict[str, Any] | None:
    """The property-extension *definition_id* of *obj*, or None."""
    ext = obj.get("extensions")
    if not isinstance(ext, dict):
        return None
    value = ext.get(definition_id)
    return value if isinstance(value, dict) else None


def distribution_of(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The distribution extension of *obj*, or None."""
    return extension_of(obj, DISTRIBUTION_EXT)


def distribution_value(origin: str, partners: Iterable[str]) -> dict[str, Any]:
    """The value of the distribution extension (partners sorted, each once)."""
    return {
        "extension_type": "property-extension",
        "origin": origin,
        "partners": sorted(set(partners)),
    }


def set_distribution(obj: dict[str, Any], origin: str, partners: list[str]) -> dict[str, Any]:
    """A copy of *obj* carrying this distribution (other extensions kept as they are)."""
    return with_distribution(obj, distribution_value(origin, partners))


def with_distribution(obj: dict[str, Any], value: dict[str, Any]) -> dict[str, Any]:
    """A copy of *obj* carrying the distribution *value* (from :func:`distribution_value`; one value
    may be shared by many objects, as nothing modifies a stored distribution in place)."""
    out = dict(obj)
    ext = out.get("extensions")
    out["extensions"] = {**ext, DISTRIBUTION_EXT: value} if ext else {DISTRIBUTION_EXT: value}
    return out


def strip_distribution(obj: dict[str, Any]) -> dict[str, Any]:
    """*obj* without the distribution extension (as it was before a node stamped it)."""
    return without_extension(obj, DISTRIBUTION_EXT)


def without_extension(obj: dict[str, Any], definition_id: str) -> dict[str, Any]:
    """*obj* without extension *definition_id*, and without ``extensions`` if that leaves it
    empty (*obj* itself when it has no such extension)."""
    ext = obj.get("extensions")
    if not isinstance(ext, dict) or definition_id not in ext:
        return obj
    out = dict(obj)
    rest = {k: v for k, v in ext.items() if k != definition_id}
    if rest:
        out["extensions"] = rest
    else:
        del out["extensions"]
    return out
