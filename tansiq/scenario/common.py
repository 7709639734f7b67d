"""Scenario building blocks: ids, partners, places, timestamps and the object builder."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Final

from tansiq.node import partner_identity_id
from tansiq.stix.markings import TLP_IDS

SCENARIO_NAMESPACE: Final = uuid.UUID("6f1c1a52-5b0e-4c1e-9a43-7a2b1d0e2015")

PARTNER_CODES: Final = ("DZ", "EG", "TN")


@dataclass(frozen=True)
class ScenarioItem:
    """One scenario object with its originator, release list and TLP level."""

    originator: str  # "DZ" | "EG" | "TN" | "" for public reference objects (TLP markings)
    distribution: str | tuple[str, ...]  # "all", "own", or the release list incl. the originator
    tlp: str  # "clear" | "green" | "amber" | "amber+strict" | "red"
    obj: dict[str, Any]  # the STIX 2.1 object, JSON-ready


def _sid(stix_type: str, key: str) -> str:
    return f"{stix_type}--{uuid.uuid5(SCENARIO_NAMESPACE, f'{stix_type}:{key}')}"


def identity_id(code: str) -> str:
    """The identity id of partner *code* ("DZ", "EG" or "TN")."""
    if code not in PARTNER_CODES:
        raise KeyError(code)
    # The same id a node gives itself at `tansiq init`: the scenario's identity is a later
    # version of the node's own identity object.
    return partner_identity_id(code)


def loc_id(key: str) -> str:
    """The id of the scenario location *key* (e.g. "sirte", "ras-ajdir")."""
    return _sid("location", key)


PARTNERS: Final[dict[str, dict[str, Any]]] = {
    "DZ": {
        "name": "Algeria — Security and Defence Liaison",
        "name_ar": "الجزائر — الاتصال الأمني والدفاعي",
        "country": "Algeria",
        "country_ar": "الجزائر",
        "home": "Algiers",
        "home_ar": "الجزائر",
        "lat": 36.75,
        "lon": 3.06,
        "languages": ("ar", "fr"),
        "identity_id": identity_id("DZ"),
    },
    "EG": {
        "name": "Egypt — Security and Defence Liaison",
        "name_ar": "مصر — الاتصال الأمني والدفاعي",
        "country": "Egypt",
        "country_ar": "مصر",
        "home": "Cairo",
        "home_ar": "القاهرة",
        "lat": 30.04,
        "lon": 31.24,
        "languages": ("ar", "en"),
        "identity_id": identity_id("EG"),
    },
    "TN": {
        "name": "Tunisia — Security and Defence Liaison",
        "name_ar": "تونس — الاتصال الأمني والدفاعي",
        "country": "Tunisia",
        "country_ar": "تونس",
        "home": "Tunis",
        "home_ar": "تونس",
        "lat": 36.81,
        "lon": 10.18,
        "languages": ("ar", "fr"),
        "identity_id": identity_id("TN"),
    },
}

# key -> (originator, English name, Arabic name, country, lat, lon, kind)
_PLACES: Final[dict[str, tuple[str, str, str, str, float, float, str]]] = {
    "algiers": ("DZ", "Algiers", "الجزائر", "DZ", 36.75, 3.06, "capital"),
    "cairo": ("EG", "Cairo", "القاهرة", "EG", 30.04, 31.24, "capital"),
    "tunis": ("TN", "Tunis", "تونس", "TN", 36.81, 10.18, "capital"),
    "sirte": ("EG", "Sirte", "سرت", "LY", 31.21, 16.59, "city"),
    "derna": ("EG", "Derna", "درنة", "LY", 32.77, 22.64, "city"),
    "tobruk": ("EG", "Tobruk", "طبرق", "LY", 32.08, 23.96, "city"),
    "tripoli": ("TN", "Tripoli", "طرابلس", "LY", 32.89, 13.19, "capital"),
    "salloum": (
        "EG",
        "Salloum – Musaid border crossing",
        "السلوم – امساعد",
        "EG",
        31.55,
        25.15,
        "border-crossing",
    ),
    "ras-ajdir": (
        "TN",
        "Ras Ajdir border crossing",
        "رأس جدير",
        "TN",
        33.15,
        11.56,
        "border-crossing",
    ),
    "dehiba": (
        "TN",
        "Dehiba – Wazen border crossing",
        "الذهيبة – وازن",
        "TN",
        32.01,
        10.71,
        "border-crossing",
    ),
    "debdeb": (
        "DZ",
        "Debdeb – Ghadames border crossing",
        "الدبداب – غدامس",
        "DZ",
        30.05,
        9.47,
        "border-crossing",
    ),
    "in-amenas": (
        "DZ",
        "In Amenas border sector",
        "قطاع عين أميناس",
        "DZ",
        28.05,
        9.57,
        "border-sector",
    ),
}

_COUNTRY_EN: Final = {"DZ": "Algeria", "EG": "Egypt", "TN": "Tunisia", "LY": "Libya"}

THREAT_ACTOR_ID: Final = _sid("threat-actor", "islamic-state-in-libya")
SIRTE_INCIDENT_ID: Final = _sid("incident", "sirte-executions-2015-02")
DERNA_STRIKES_ID: Final = _sid("incident", "derna-air-strikes-2015-02-16")
DERNA_REPORT_ID: Final = _sid("report", "eg-derna-field-results")
BORDER_REPORT_ID: Final = _sid("report", "dz-tn-border-coordination")
EG_ONLY_NOTE_ID: Final = _sid("note", "eg-internal-assessment")
CAIRO_MEETING_ID: Final = _sid("note", "cairo-meeting-1")
ANADOLU_REPORT_ID: Final = _sid("report", "anadolu-cairo-meeting")
CLAIM_TOBRUK_ID: Final = _sid("note", "claim-tobruk-derna-strikes")
CLAIM_TRIPOLI_ID: Final = _sid("note", "claim-tripoli-derna-strikes")


def _ts(day: int, hour: int = 9, minute: int = 0) -> str:
    return f"2015-02-{day:02d}T{hour:02d}:{minute:02d}:00.000Z"


def _sdo(
    stix_type: str,
    key: str,
    originator: str,
    created: str,
    tlp: str,
    props: dict[str, Any],
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "type": stix_type,
        "spec_version": "2.1",
        "id": identity_id(key.upper()) if stix_type == "identity" else _sid(stix_type, key),
        "created_by_ref": identity_id(originator),
        "created": created,
        "modified": created,
        "object_marking_refs": [TLP_IDS[tlp]],
    }
    obj.update(props)
    return obj


class _Builder:
    """Collects scenario items in a fixed order."""

    def __init__(self) -> None:
        self.items: list[ScenarioItem] = []

    def add(
        self,
        stix_type: str,
        key: str,
        originator: str,
        distribution: str | tuple[str, ...],
        tlp: str,
        created: str,
        props: dict[str, Any],
    ) -> str:
        obj = _sdo(stix_type, key, originator, created, tlp, props)
        self.items.append(ScenarioItem(originator, distribution, tlp, obj))
        return str(obj["id"])

    def rel(
        self,
        key: str,
        originator: str,
        source: str,
        rtype: str,
        target: str,
        created: str,
        description: str,
        tlp: str = "clear",
        distribution: str | tuple[str, ...] = "all",
    ) -> str:
        return self.add(
            "relationship",
            key,
            originator,
            distribution,
            tlp,
            created,
            {
                "relationship_type": rtype,
                "source_ref": source,
                "target_ref": target,
                "description": description,
                "lang": "en",
            },
        )
