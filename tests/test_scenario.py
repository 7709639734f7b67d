"""The demo scenario: valid STIX 2.1, deterministic, self-contained, correctly released."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import stix2
from stix2validator import ValidationOptions, validate_instance

from tansiq.node import IDENTITY_CREATED
from tansiq.scenario import (
    BORDER_REPORT_ID,
    DERNA_REPORT_ID,
    EG_ONLY_NOTE_ID,
    PARTNER_CODES,
    PARTNERS,
    ScenarioItem,
    audience,
    identity_id,
    objects_for,
    scenario_items,
)
from tansiq.stix.markings import TLP_IDS, TLP_OBJECTS, tlp_of

ITEMS = scenario_items()
BY_ID = {item.obj["id"]: item for item in ITEMS}


def _refs(value: Any, key: str = "") -> list[str]:
    """Every id held by a ``*_ref`` or ``*_refs`` property, at any depth."""
    found: list[str] = []
    if isinstance(value, dict):
        for k, v in value.items():
            found.extend(_refs(v, k))
    elif isinstance(value, list):
        for v in value:
            found.extend(_refs(v, key))
    elif isinstance(value, str) and (key.endswith("_ref") or key.endswith("_refs")):
        found.append(value)
    return found


@pytest.mark.parametrize("item", ITEMS, ids=lambda i: i.obj["id"])
def test_valid_stix(item: ScenarioItem) -> None:
    result = validate_instance(item.obj, ValidationOptions(version="2.1"))
    assert result.is_valid, [str(e) for e in result.errors]
    assert not result.errors
    parsed = stix2.parse(item.obj, allow_custom=True)
    assert parsed["id"] == item.obj["id"]
    assert item.obj["spec_version"] == "2.1"


def test_ids_unique() -> None:
    ids = [item.obj["id"] for item in ITEMS]
    assert len(ids) == len(set(ids))


def test_deterministic() -> None:
    assert scenario_items() == scenario_items()
    again = scenario_items()
    again[-1].obj["tampered"] = True  # fresh objects each call
    assert "tampered" not in scenario_items()[-1].obj


def test_markings_are_the_oasis_objects() -> None:
    markings = [item for item in ITEMS if item.obj["type"] == "marking-definition"]
    assert [m.obj for m in markings] == list(TLP_OBJECTS.values())
    for m in markings:
        assert m.originator == "" and m.distribution == "all"
        assert TLP_IDS[m.tlp] == m.obj["id"]
    assert objects_for("") == [m.obj for m in markings]


def test_created_by_matches_originator_and_marking() -> None:
    for item in ITEMS:
        if item.originator == "":
            assert item.obj["type"] == "marking-definition"
            continue
        assert item.originator in PARTNER_CODES
        assert item.obj["created_by_ref"] == identity_id(item.originator)
        assert item.obj["object_marking_refs"] == [TLP_IDS[item.tlp]]
        assert tlp_of(item.obj) == item.tlp
        if item.obj["type"] == "identity":
            # a later version of the identity each node creates at `tansiq init`
            assert item.obj["created"] == IDENTITY_CREATED < item.obj["modified"]
        else:
            assert item.obj["created"] == item.obj["modified"]
        assert item.obj["modified"].startswith("2015-02-")


def test_identities_are_self_created_organizations() -> None:
    identities = [item for item in ITEMS if item.obj["type"] == "identity"]
    assert sorted(i.originator for i in identities) == sorted(PARTNER_CODES)
    for item in identities:
        assert item.obj["id"] == PARTNERS[item.originator]["identity_id"]
        assert item.obj["created_by_ref"] == item.obj["id"]
        assert item.obj["identity_class"] == "organization"  # no person is ever profiled


def test_references_resolve() -> None:
    for item in ITEMS:
        for ref in _refs(item.obj):
            assert ref in BY_ID or ref in TLP_IDS.values(), (item.obj["id"], ref)


def test_references_visible_wherever_referrer_is() -> None:
    """No node may hold an object whose references it cannot hold."""
    for item in ITEMS:
        for ref in _refs(item.obj):
            assert audience(item) <= audience(BY_ID[ref]), (item.obj["id"], ref)


def test_distribution_values() -> None:
    for item in ITEMS:
        if isinstance(item.distribution, tuple):
            assert item.originator in item.distribution  # the release list includes the originator
            assert set(item.distribution) <= set(PARTNER_CODES)
            assert len(set(item.distribution)) == len(item.distribution)
        else:
            assert item.distribution in ("all", "own")


def test_restricted_items() -> None:
    """The rule: a tuple is the complete release list, originator included."""
    derna = BY_ID[DERNA_REPORT_ID]
    assert derna.originator == "EG" and derna.tlp == "amber"
    assert set(derna.distribution) == {"DZ", "EG", "TN"}  # EG -> DZ and TN
    border = BY_ID[BORDER_REPORT_ID]
    assert border.originator in ("DZ", "TN") and border.tlp == "amber"
    assert set(border.distribution) == {"DZ", "TN"}
    eg_only = BY_ID[EG_ONLY_NOTE_ID]
    assert eg_only.originator == "EG" and eg_only.distribution == "own"
    assert eg_only.tlp in ("red", "amber+strict")
    assert audience(eg_only) == {"EG"}
    # besides these, only the TN remark on the bilateral report is restricted (to DZ, TN)
    restricted = {i.obj["id"] for i in ITEMS if audience(i) != set(PARTNER_CODES)}
    others = restricted - {BORDER_REPORT_ID, EG_ONLY_NOTE_ID}
    assert {BORDER_REPORT_ID, EG_ONLY_NOTE_ID} <= restricted
    assert len(others) == 1
    assert all(audience(BY_ID[r]) == {"DZ", "TN"} for r in others)


def test_content_of_the_demo() -> None:
    types = Counter(item.obj["type"] for item in ITEMS)
    assert types["incident"] == 2 and types["threat-actor"] == 1 and types["opinion"] >= 2
    actor = next(i.obj for i in ITEMS if i.obj["type"] == "threat-actor")
    assert actor["threat_actor_types"] == ["terrorist"]
    assert {"داعش", "Daesh"} <= set(actor["aliases"])
    sirte = next(i for i in ITEMS if i.obj["type"] == "incident" and "Sirte" in i.obj["name"])
    assert sirte.originator == "EG" and sirte.tlp == "clear" and sirte.distribution == "all"
    claims = [i for i in ITEMS if "x_tansiq_source" in i.obj]
    assert len(claims) == 2
    assert len({c.obj["object_refs"][0] for c in claims}) == 1  # same incident, two sources
    claim_ids = {c.obj["id"] for c in claims}
    graded = {r for i in ITEMS if i.obj["type"] == "opinion" for r in i.obj["object_refs"]}
    assert claim_ids <= graded
    assert any("x_tansiq_reliability" in i.obj for i in ITEMS)
    positions = {i.originator for i in ITEMS if "x_tansiq_position_of" in i.obj}
    assert positions == set(PARTNER_CODES)
    for item in ITEMS:
        if "x_tansiq_position_of" in item.obj:
            assert item.tlp == "clear" and item.distribution == "all"
            assert item.obj["x_tansiq_position_of"] == item.originator
    places = {i.obj["name"] for i in ITEMS if i.obj["type"] == "location"}
    assert len(places) == 12
    langs = {i.obj.get("lang") for i in ITEMS}
    assert {"ar", "en", "fr"} <= langs


def test_objects_for_partitions_the_scenario() -> None:
    total = 0
    for code in ("", *PARTNER_CODES):
        objs = objects_for(code)
        assert all(BY_ID[o["id"]].originator == code for o in objs)
        total += len(objs)
    assert total == len(ITEMS)


def test_tlp_of() -> None:
    assert tlp_of({}) is None
    assert tlp_of({"object_marking_refs": "x"}) is None
    assert tlp_of({"object_marking_refs": [TLP_IDS["green"], TLP_IDS["red"]]}) == "red"
    other = "marking-definition--00000000-0000-4000-8000-000000000000"
    assert tlp_of({"object_marking_refs": [other]}) is None
