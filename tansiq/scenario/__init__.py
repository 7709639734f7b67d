"""The demo scenario (Libya, February 2015) as deterministic STIX 2.1 objects.

Facts come from ``shared/SCENARIO.md``; the wording of every text is this module's.  Ids are
``uuid5(SCENARIO_NAMESPACE, "<type>:<readable key>")`` and every timestamp is fixed, so two calls
of :func:`scenario_items` return identical objects.  (STIX 2.1 suggests UUIDv4 for SDOs/SROs;
the validator reports uuid5 ids as a warning, not an error, and reproducibility matters more.)

Each object is wrapped in a :class:`ScenarioItem` that says who originates it, to whom it is
released and under which TLP 2.0 marking.  ``distribution`` is one of

- ``"all"``: every partner of the trilateral group (DZ, EG, TN);
- ``"own"``: the originator's node only;
- a tuple of partner codes: the complete release list, **originator included**, e.g. the Derna
  field-results report by EG is ``("DZ", "EG", "TN")`` (EG -> DZ and TN) and the DZ-TN
  bilateral report by DZ is ``("DZ", "TN")``.

Rule kept by the data (and tested): an object only references objects that are released to at
least everyone it is released to, so no node ever holds a dangling reference.

No private individual is profiled: there is no identity object for a person; public officials
appear only by name in the text of their public positions.
"""

from __future__ import annotations

from typing import Any

from tansiq.scenario.common import (
    ANADOLU_REPORT_ID,
    BORDER_REPORT_ID,
    CAIRO_MEETING_ID,
    CLAIM_TOBRUK_ID,
    CLAIM_TRIPOLI_ID,
    DERNA_REPORT_ID,
    DERNA_STRIKES_ID,
    EG_ONLY_NOTE_ID,
    PARTNER_CODES,
    PARTNERS,
    SCENARIO_NAMESPACE,
    SIRTE_INCIDENT_ID,
    THREAT_ACTOR_ID,
    ScenarioItem,
    _Builder,
    identity_id,
    loc_id,
)
from tansiq.scenario.content import (
    _claims_and_opinions,
    _incidents,
    _meeting_and_sources,
    _reference_objects,
    _shared_reports,
    _un_positions,
)
from tansiq.stix.markings import TLP_IDS, tlp_object

__all__ = [
    "ANADOLU_REPORT_ID",
    "BORDER_REPORT_ID",
    "CAIRO_MEETING_ID",
    "CLAIM_TOBRUK_ID",
    "CLAIM_TRIPOLI_ID",
    "DERNA_REPORT_ID",
    "DERNA_STRIKES_ID",
    "EG_ONLY_NOTE_ID",
    "PARTNERS",
    "PARTNER_CODES",
    "SCENARIO_NAMESPACE",
    "SIRTE_INCIDENT_ID",
    "THREAT_ACTOR_ID",
    "ScenarioItem",
    "audience",
    "identity_id",
    "loc_id",
    "objects_for",
    "scenario_items",
]


def scenario_items() -> list[ScenarioItem]:
    """All scenario objects, TLP markings first, in a fixed order (fresh copies on each call)."""
    items = [ScenarioItem("", "all", level, tlp_object(level)) for level in TLP_IDS]
    b = _Builder()
    _reference_objects(b)
    _incidents(b)
    _shared_reports(b)
    _meeting_and_sources(b)
    _claims_and_opinions(b)
    _un_positions(b)
    items.extend(b.items)
    return items


def objects_for(originator: str) -> list[dict[str, Any]]:
    """The objects *originator* originates (what to load at that node); "" gives the markings."""
    return [item.obj for item in scenario_items() if item.originator == originator]


def audience(item: ScenarioItem) -> frozenset[str]:
    """The partner codes whose nodes may hold *item*."""
    if item.distribution == "all":
        return frozenset(PARTNER_CODES)
    if item.distribution == "own":
        return frozenset({item.originator})
    if isinstance(item.distribution, tuple):
        return frozenset(item.distribution)
    raise ValueError(f"bad distribution {item.distribution!r}")
