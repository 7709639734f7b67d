"""TLP 2.0 marking definitions for STIX 2.1, exactly as OASIS publishes them.

Source: the OASIS CTI TC repository ``oasis-open/cti-stix-common-objects``
(https://github.com/oasis-open/cti-stix-common-objects), files

- ``objects/marking-definition/marking-definition--<id>.json`` (GREEN, AMBER+STRICT, RED) and
- ``extension-definition-specifications/tlp-2.0/examples/tlp-clear.json``,
  ``.../examples/tlp-amber.json``, ``.../examples/tlp-amber+strict.json``,

each a bundle holding one ``marking-definition`` object; the ids and names are also fixed by the
JSON schema ``extension-definition-specifications/tlp-2.0/marking-definition.json`` and the
extension is defined by ``objects/extension-definition/
extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d.json`` (reproduced below as
:data:`TLP_EXTENSION_DEFINITION`).  The objects carry no ``created_by_ref`` and no ``modified``:
that is how OASIS publishes them, do not "complete" them.

The STIX 2.1 TLP 1.0 markings (``marking-definition--613f2e26-...`` for TLP:WHITE and so on)
are *not* these objects; this platform uses TLP 2.0 only.
"""

from __future__ import annotations

import copy
from typing import Any, Final

TLP_EXTENSION_ID: Final = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"

#: The OASIS extension-definition for TLP 2.0.  Its ``created_by_ref`` names the OASIS identity,
#: which is not an object of this platform; it is kept for reference and is not loaded by default.
TLP_EXTENSION_DEFINITION: Final[dict[str, Any]] = {
    "id": TLP_EXTENSION_ID,
    "type": "extension-definition",
    "spec_version": "2.1",
    "name": "TLP 2.0",
    "description": "This defines TLP 2.0 as a STIX extension",
    "created": "2022-10-01T00:00:00.000Z",
    "modified": "2022-10-01T00:00:00.000Z",
    "created_by_ref": "identity--b3bca3c2-1f3d-4b54-b44f-dac42c3a8f01",
    "schema": (
        "https://github.com/oasis-open/cti-stix-common-objects/tree/master/"
        "extension-definition-specifications/tlp-2.0"
    ),
    "version": "1.0.0",
    "extension_types": ["property-extension"],
}

#: TLP level name -> marking-definition id, least to most restrictive.
TLP_IDS: Final[dict[str, str]] = {
    "clear": "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    "green": "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    "amber": "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    "amber+strict": "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    "red": "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}

#: The four fixed STIX 2.1 TLP 1.0 marking-definition ids (TLP:WHITE, GREEN, AMBER, RED): not
#: used by this platform, but an object marked with TLP 2.0 must not keep one beside it.
TLP1_IDS: Final = frozenset(
    (
        "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9",
        "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da",
        "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82",
        "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed",
    )
)

#: Marking-definition id -> TLP level name.
TLP_NAMES: Final[dict[str, str]] = {mid: name for name, mid in TLP_IDS.items()}

#: Restrictiveness rank of each level (0 = clear ... 4 = red).
TLP_RANK: Final[dict[str, int]] = {name: rank for rank, name in enumerate(TLP_IDS)}


def _marking(level: str) -> dict[str, Any]:
    return {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": TLP_IDS[level],
        "created": "2022-10-01T00:00:00.000Z",
        "name": "TLP:" + level.upper(),
        "extensions": {
            TLP_EXTENSION_ID: {
                "extension_type": "property-extension",
                "tlp_2_0": level,
            }
        },
    }


#: TLP level name -> the full marking-definition object as published by OASIS.
TLP_OBJECTS: Final[dict[str, dict[str, Any]]] = {level: _marking(level) for level in TLP_IDS}


def tlp_object(level: str) -> dict[str, Any]:
    """A deep copy of the OASIS marking-definition for *level* (safe to mutate)."""
    return copy.deepcopy(TLP_OBJECTS[level])


def is_tlp_id(marking_id: object) -> bool:
    """True when *marking_id* is one of the five TLP 2.0 marking-definition ids."""
    return isinstance(marking_id, str) and marking_id in TLP_NAMES


def tlp_of(obj: dict[str, Any]) -> str | None:
    """The TLP 2.0 level named by ``obj["object_marking_refs"]``, or None when there is none.

    When several TLP markings are present (which STIX permits but TLP does not intend), the most
    restrictive one is returned.  Non-TLP marking references are ignored; a malformed
    ``object_marking_refs`` yields None.
    """
    refs = obj.get("object_marking_refs")
    if not isinstance(refs, list):
        return None
    found: str | None = None
    for ref in refs:
        if not isinstance(ref, str):
            continue
        level = TLP_NAMES.get(ref)
        if level is not None and (found is None or TLP_RANK[level] > TLP_RANK[found]):
            found = level
    return found
