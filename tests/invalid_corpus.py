"""Invalid STIX 2.1 objects with exactly one defect each, for oracle tests of the validator.

Every case is a valid base object from :data:`VALID` with one mutation.  Every case is rejected by
stix2-validator (``validate_instance(obj, ValidationOptions(version="2.1")).is_valid is False``)
and must be rejected by :func:`tansiq.stix.validate.check_object`; ``tests/test_validate.py``
checks both.  Defects that only tansiq rejects (stix2-validator accepts them) are not cases here:
they are listed in ``DISAGREEMENTS`` in ``tests/test_validate.py``.

Defective objects on which stix2-validator raises an exception instead of returning a verdict
are in :data:`VALIDATOR_RAISES`, not in :data:`CASES`.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any, Final

DELETE: Final = object()


def uid(type_: str, n: int) -> str:
    """A deterministic identifier with a UUIDv4."""
    return f"{type_}--{uuid.UUID(int=n * 0x1F1F1F1F1F1F1F1F1F1F1F, version=4)}"


IDENTITY: Final = uid("identity", 1)
MARKING: Final = "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"  # TLP:GREEN (1.0)
T0: Final = "2016-04-06T20:03:00.000Z"
T1: Final = "2016-05-07T11:22:30.123Z"
PATTERN: Final = "[ipv4-addr:value = '198.51.100.1']"


def _obj(type_: str, n: int, **props: Any) -> dict[str, Any]:
    return {
        "type": type_,
        "spec_version": "2.1",
        "id": uid(type_, n),
        "created": T0,
        "modified": T1,
        "created_by_ref": IDENTITY,
        **props,
    }


#: One valid object per STIX 2.1 SDO, SRO and meta type (and a few others), each accepted by
#: stix2-validator and by tansiq.
VALID: Final[dict[str, dict[str, Any]]] = {
    "attack-pattern": _obj(
        "attack-pattern",
        2,
        name="Spear Phishing",
        kill_chain_phases=[
            {"kill_chain_name": "lockheed-martin-cyber-kill-chain", "phase_name": "delivery"}
        ],
        external_references=[{"source_name": "capec", "external_id": "CAPEC-163"}],
        object_marking_refs=[MARKING],
    ),
    "campaign": _obj(
        "campaign",
        3,
        name="Green Group Attacks Against Finance",
        description="Campaign by Green Group against targets in the financial sector.",
        first_seen="2016-01-01T00:00:00Z",
        last_seen="2016-03-01T00:00:00Z",
        labels=["finance"],
        confidence=50,
        lang="en",
        revoked=False,
        granular_markings=[{"marking_ref": MARKING, "selectors": ["description", "name"]}],
    ),
    "course-of-action": _obj("course-of-action", 4, name="Add TCP port 80 Filter Rule"),
    "grouping": _obj(
        "grouping",
        5,
        name="Suspicious activity",
        context="suspicious-activity",
        object_refs=[uid("indicator", 9), uid("campaign", 3)],
    ),
    "identity": _obj("identity", 1, name="ACME Widget, Inc.", identity_class="organization"),
    "incident": _obj("incident", 6, name="Breach of the payment system"),
    "indicator": _obj(
        "indicator",
        9,
        name="Malicious site",
        indicator_types=["malicious-activity"],
        pattern=PATTERN,
        pattern_type="stix",
        valid_from="2016-01-01T00:00:00Z",
        valid_until="2017-01-01T00:00:00Z",
    ),
    "infrastructure": _obj(
        "infrastructure",
        10,
        name="Poison Ivy C2",
        infrastructure_types=["command-and-control"],
    ),
    "intrusion-set": _obj("intrusion-set", 11, name="Bobcat Breakin", aliases=["Zookeeper"]),
    "location": _obj(
        "location",
        12,
        name="Bourne",
        region="northern-america",
        country="us",
        latitude=42.5,
        longitude=-70.8,
        precision=100.0,
    ),
    "malware": _obj(
        "malware", 13, name="Cryptolocker", is_family=True, malware_types=["ransomware"]
    ),
    "malware-analysis": _obj(
        "malware-analysis",
        14,
        product="microsoft",
        result="malicious",
        sample_ref=uid("file", 15),
    ),
    "note": _obj(
        "note",
        16,
        abstract="Tracking Team Note#1",
        content="This note indicates a campaign.",
        object_refs=[uid("campaign", 3)],
    ),
    "observed-data": _obj(
        "observed-data",
        17,
        first_observed="2015-12-21T19:00:00Z",
        last_observed="2015-12-21T19:00:00Z",
        number_observed=50,
        object_refs=[uid("ipv4-addr", 18), uid("domain-name", 19)],
    ),
    "opinion": _obj(
        "opinion",
        20,
        explanation="Doubtful.",
        opinion="strongly-disagree",
        object_refs=[uid("relationship", 21)],
    ),
    "report": _obj(
        "report",
        22,
        name="The Black Vine Cyberespionage Group",
        report_types=["campaign"],
        published="2016-01-20T17:00:00.000Z",
        object_refs=[uid("indicator", 9), uid("campaign", 3)],
    ),
    "threat-actor": _obj(
        "threat-actor",
        23,
        name="Evil Org",
        threat_actor_types=["crime-syndicate"],
        roles=["agent"],
    ),
    "tool": _obj("tool", 24, name="VNC", tool_types=["remote-access"]),
    "vulnerability": _obj(
        "vulnerability",
        25,
        name="CVE-2016-1234",
        external_references=[{"source_name": "cve", "external_id": "CVE-2016-1234"}],
    ),
    "relationship": _obj(
        "relationship",
        21,
        relationship_type="indicates",
        source_ref=uid("indicator", 9),
        target_ref=uid("campaign", 3),
        start_time="2016-01-01T00:00:00Z",
        stop_time="2016-02-01T00:00:00Z",
    ),
    "sighting": _obj(
        "sighting",
        26,
        sighting_of_ref=uid("indicator", 9),
        count=3,
        first_seen="2016-01-01T00:00:00Z",
        last_seen="2016-01-02T00:00:00Z",
        observed_data_refs=[uid("observed-data", 17)],
        where_sighted_refs=[IDENTITY],
    ),
    "marking-definition": {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": uid("marking-definition", 27),
        "created": "2016-08-01T00:00:00.000Z",
        "created_by_ref": IDENTITY,
        "definition_type": "statement",
        "definition": {"statement": "Copyright 2016, Example Corp"},
    },
    "language-content": _obj(
        "language-content",
        28,
        object_ref=uid("campaign", 3),
        object_modified=T1,
        contents={"de": {"name": "Bank Angriff 1", "description": "Weitere Informationen"}},
    ),
    "extension-definition": _obj(
        "extension-definition",
        29,
        name="Extension Foo 1",
        schema="https://example.com/foo",
        version="1.2.1",
        extension_types=["property-extension"],
    ),
    "ipv4-addr": {
        "type": "ipv4-addr",
        "spec_version": "2.1",
        "id": uid("ipv4-addr", 18),
        "value": "198.51.100.3",
    },
    "x-acme-widget": _obj("x-acme-widget", 30, x_acme_colour="red", name="Widget"),
    **{
        sco["type"]: {"spec_version": "2.1", "id": uid(sco["type"], 40 + i), **sco}
        for i, sco in enumerate(
            [
                {"type": "file", "name": "a.exe", "hashes": {"SHA-256": "ab" * 32}},
                {"type": "autonomous-system", "number": 15139},
                {"type": "network-traffic", "src_ref": uid("ipv4-addr", 18), "protocols": ["tcp"]},
                {"type": "process", "pid": 4},
                {
                    "type": "artifact",
                    "url": "https://example.com/a.bin",
                    "hashes": {"MD5": "a" * 32},
                },
            ]
        )
    },
}


def mutate(base: str, changes: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
    """A deep copy of ``VALID[base]`` with properties set (or removed with :data:`DELETE`)."""
    obj = copy.deepcopy(VALID[base])
    for k, v in {**(changes or {}), **kw}.items():
        if v is DELETE:
            obj.pop(k, None)
        else:
            obj[k] = v
    return obj


def _gm(**kw: Any) -> list[dict[str, Any]]:
    return [{"marking_ref": MARKING, "selectors": ["description"], **kw}]


CASES: Final[list[tuple[str, dict[str, Any]]]] = [
    # --- type and id
    ("type-uppercase", mutate("campaign", type="Campaign", id="Campaign" + uid("", 3))),
    ("type-too-short", mutate("x-acme-widget", type="xy", id=uid("xy", 30))),
    ("type-double-hyphen", mutate("x-acme-widget", type="x--acme", id=uid("x--acme", 30))),
    ("type-trailing-hyphen", mutate("x-acme-widget", type="x-acme-", id=uid("x-acme-", 30))),
    ("type-reserved-action", mutate("x-acme-widget", type="action", id=uid("action", 30))),
    ("id-type-mismatch", mutate("campaign", id=uid("indicator", 3))),
    ("id-single-hyphen", mutate("campaign", id=uid("campaign", 3).replace("--", "-"))),
    ("id-not-uuid", mutate("campaign", id="campaign--1234")),
    (
        "id-uuid-without-hyphens",
        mutate("campaign", id="campaign--8e2e2d2b17d44cbf938f98ee46b3cd3f"),
    ),
    ("id-uuid-version-0", mutate("campaign", id="campaign--8e2e2d2b-17d4-0cbf-938f-98ee46b3cd3f")),
    ("id-uuid-version-7", mutate("campaign", id="campaign--8e2e2d2b-17d4-7cbf-938f-98ee46b3cd3f")),
    (
        "id-uuid-variant-ncs",
        mutate("campaign", id="campaign--8e2e2d2b-17d4-4cbf-738f-98ee46b3cd3f"),
    ),
    ("id-uuid-braces", mutate("campaign", id="campaign--{8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f}")),
    # --- spec_version
    ("spec_version-missing", mutate("campaign", spec_version=DELETE)),
    ("spec_version-2.2", mutate("campaign", spec_version="2.2")),
    ("spec_version-number", mutate("campaign", spec_version=2.1)),
    ("sco-spec_version-3.0", mutate("ipv4-addr", spec_version="3.0")),
    ("custom-object-spec_version-missing", mutate("x-acme-widget", spec_version=DELETE)),
    # --- created / modified and other timestamps
    ("created-missing", mutate("campaign", created=DELETE)),
    ("modified-missing", mutate("relationship", modified=DELETE)),
    ("custom-object-modified-missing", mutate("x-acme-widget", modified=DELETE)),
    ("created-no-milliseconds", mutate("campaign", created="2016-04-06T20:03:00Z")),
    ("modified-one-fraction-digit", mutate("campaign", modified="2016-05-07T11:22:30.1Z")),
    ("created-date-only", mutate("campaign", created="2016-04-06")),
    ("created-utc-offset", mutate("campaign", created="2016-04-06T20:03:00.000+00:00")),
    ("created-space-separator", mutate("campaign", created="2016-04-06 20:03:00.000Z")),
    ("created-lowercase-z", mutate("campaign", created="2016-04-06T20:03:00.000z")),
    ("created-month-13", mutate("campaign", created="2016-13-06T20:03:00.000Z")),
    ("created-february-30", mutate("campaign", created="2016-02-30T20:03:00.000Z")),
    ("created-hour-24", mutate("campaign", created="2016-04-06T24:03:00.000Z")),
    ("created-leap-second", mutate("campaign", created="2016-04-06T20:03:60.000Z")),
    # Unicode digits: a regex \d matches them and int() reads them ("\u0660" is Arabic-Indic 0)
    ("created-arabic-indic-digit", mutate("campaign", created="2016-04-06T20:03:0\u0660.000Z")),
    (
        "modified-arabic-indic-fraction",
        mutate("campaign", modified="2016-05-07T11:22:30.12\u0663Z"),
    ),
    ("report-published-devanagari-year", mutate("report", published="\u0968016-01-20T17:00:00Z")),
    ("modified-before-created", mutate("campaign", modified="2016-04-06T20:02:59.999Z")),
    ("indicator-valid_from-bad", mutate("indicator", valid_from="2016-01-01")),
    (
        "indicator-valid_until-equals-valid_from",
        mutate("indicator", valid_until="2016-01-01T00:00:00Z"),
    ),
    ("campaign-last_seen-before-first_seen", mutate("campaign", last_seen="2015-12-31T23:59:59Z")),
    (
        "relationship-stop_time-equals-start_time",
        mutate("relationship", stop_time="2016-01-01T00:00:00Z"),
    ),
    (
        "observed-data-last-before-first",
        mutate("observed-data", last_observed="2015-12-21T18:59:59Z"),
    ),
    ("report-published-bad", mutate("report", published="20 Jan 2016")),
    ("malware-analysis-submitted-bad", mutate("malware-analysis", submitted="yesterday")),
    # --- references
    (
        "created_by_ref-single-hyphen",
        mutate("campaign", created_by_ref=IDENTITY.replace("--", "-")),
    ),
    ("created_by_ref-empty", mutate("campaign", created_by_ref="")),
    ("created_by_ref-list", mutate("campaign", created_by_ref=[IDENTITY])),
    ("object_marking_refs-empty", mutate("attack-pattern", object_marking_refs=[])),
    ("object_marking_refs-string", mutate("attack-pattern", object_marking_refs=MARKING)),
    ("object_marking_refs-bad-item", mutate("attack-pattern", object_marking_refs=["tlp:green"])),
    ("report-object_refs-empty", mutate("report", object_refs=[])),
    (
        "report-object_refs-bad-item",
        mutate("report", object_refs=[uid("indicator", 9), "campaign"]),
    ),
    ("relationship-source_ref-bad", mutate("relationship", source_ref="indicator--123")),
    ("relationship-target_ref-marking", mutate("relationship", target_ref=MARKING)),
    (
        "relationship-source_ref-relationship",
        mutate("relationship", source_ref=uid("relationship", 2)),
    ),
    ("sighting-of-relationship", mutate("sighting", sighting_of_ref=uid("relationship", 21))),
    (
        "sighting-where_sighted-indicator",
        mutate("sighting", where_sighted_refs=[uid("indicator", 9)]),
    ),
    (
        "sighting-observed_data_refs-indicator",
        mutate("sighting", observed_data_refs=[uid("indicator", 9)]),
    ),
    (
        "malware-analysis-sample_ref-indicator",
        mutate("malware-analysis", sample_ref=uid("indicator", 9)),
    ),
    ("language-content-object_ref-bundle", mutate("language-content", object_ref=uid("bundle", 2))),
    ("observed-data-object_refs-sdo", mutate("observed-data", object_refs=[uid("campaign", 3)])),
    # --- common properties
    ("revoked-string", mutate("campaign", revoked="false")),
    ("labels-string", mutate("campaign", labels="finance")),
    ("labels-number-item", mutate("campaign", labels=["finance", 7])),
    ("labels-empty", mutate("campaign", labels=[])),
    ("confidence-101", mutate("campaign", confidence=101)),
    ("confidence-negative", mutate("campaign", confidence=-1)),
    ("confidence-string", mutate("campaign", confidence="50")),
    ("confidence-fraction", mutate("campaign", confidence=50.5)),
    ("confidence-boolean", mutate("campaign", confidence=True)),
    ("lang-underscore", mutate("campaign", lang="en_US")),
    ("lang-number", mutate("campaign", lang=7)),
    (
        "external_references-no-source_name",
        mutate("attack-pattern", external_references=[{"url": "https://example.com/"}]),
    ),
    (
        "external_references-only-source_name",
        mutate("attack-pattern", external_references=[{"source_name": "acme"}]),
    ),
    (
        "external_references-object",
        mutate("attack-pattern", external_references={"source_name": "capec"}),
    ),
    (
        "external_references-bad-cve-id",
        mutate(
            "vulnerability",
            external_references=[{"source_name": "cve", "external_id": "CVE-16-1234"}],
        ),
    ),
    (
        "external_references-bad-capec-id",
        mutate(
            "attack-pattern", external_references=[{"source_name": "capec", "external_id": "163"}]
        ),
    ),
    (
        "external_references-url-not-url",
        mutate(
            "attack-pattern",
            external_references=[{"source_name": "acme", "url": "see the web site"}],
        ),
    ),
    (
        "external_references-md5-too-short",
        mutate(
            "attack-pattern",
            external_references=[
                {"source_name": "acme", "url": "https://example.com/", "hashes": {"MD5": "abc"}}
            ],
        ),
    ),
    (
        "external_references-unknown-hash",
        mutate(
            "attack-pattern",
            external_references=[
                {
                    "source_name": "acme",
                    "url": "https://example.com/",
                    "hashes": {"md5": "d41d8cd98f00b204e9800998ecf8427e"},
                }
            ],
        ),
    ),
    ("kill_chain_phases-string", mutate("attack-pattern", kill_chain_phases="delivery")),
    (
        "granular_markings-no-selectors",
        mutate("campaign", granular_markings=[{"marking_ref": MARKING}]),
    ),
    ("granular_markings-empty-selectors", mutate("campaign", granular_markings=_gm(selectors=[]))),
    (
        "granular_markings-selector-absent",
        mutate("campaign", granular_markings=_gm(selectors=["objective"])),
    ),
    (
        "granular_markings-selector-index-out-of-range",
        mutate("campaign", granular_markings=_gm(selectors=["labels.[3]"])),
    ),
    (
        "granular_markings-selector-syntax",
        mutate("campaign", granular_markings=_gm(selectors=["Description"])),
    ),
    (
        "granular_markings-marking_ref-identity",
        mutate("campaign", granular_markings=_gm(marking_ref=IDENTITY)),
    ),
    ("extensions-bad-key", mutate("campaign", extensions={"acme": {"rank": 5}})),
    ("extensions-empty", mutate("campaign", extensions={})),
    (
        "extensions-no-extension_type",
        mutate("campaign", extensions={uid("extension-definition", 29): {"rank": 5}}),
    ),
    (
        "extensions-bad-extension_type",
        mutate(
            "campaign",
            extensions={uid("extension-definition", 29): {"extension_type": "new-thing"}},
        ),
    ),
    # --- property names and values
    ("property-name-uppercase", mutate("campaign", {"Objective": "x"})),
    ("property-name-hyphen", mutate("campaign", {"x-acme-rank": 5})),
    ("property-name-too-short", mutate("campaign", {"xa": 5})),
    ("property-name-digit-first", mutate("campaign", {"1st_seen": "x"})),
    ("property-null", mutate("campaign", objective=None)),
    ("custom-property-null", mutate("x-acme-widget", x_acme_colour=None)),
    ("custom-property-empty-list", mutate("campaign", x_acme_tags=[])),
    ("reserved-property-severity", mutate("campaign", severity="high")),
    ("reserved-property-action", mutate("course-of-action", action="block")),
    ("custom-bin-not-base64", mutate("campaign", x_acme_blob_bin="not base64!")),
    ("custom-hex-odd-length", mutate("campaign", x_acme_key_hex="abc")),
    ("description-number", mutate("campaign", description=42)),
    ("aliases-string", mutate("intrusion-set", aliases="Zookeeper")),
    # --- required properties and rules of each type
    ("attack-pattern-no-name", mutate("attack-pattern", name=DELETE)),
    ("campaign-no-name", mutate("campaign", name=DELETE)),
    ("course-of-action-no-name", mutate("course-of-action", name=DELETE)),
    ("grouping-no-context", mutate("grouping", context=DELETE)),
    ("grouping-no-object_refs", mutate("grouping", object_refs=DELETE)),
    ("identity-no-name", mutate("identity", name=DELETE)),
    ("incident-no-name", mutate("incident", name=DELETE)),
    ("indicator-no-pattern", mutate("indicator", pattern=DELETE)),
    ("indicator-no-pattern_type", mutate("indicator", pattern_type=DELETE)),
    ("indicator-no-valid_from", mutate("indicator", valid_from=DELETE)),
    ("indicator-pattern-not-stix", mutate("indicator", pattern="ipv4-addr is 198.51.100.1")),
    ("infrastructure-no-name", mutate("infrastructure", name=DELETE)),
    ("intrusion-set-no-name", mutate("intrusion-set", name=DELETE)),
    (
        "location-no-place",
        mutate(
            "location",
            region=DELETE,
            country=DELETE,
            latitude=DELETE,
            longitude=DELETE,
            precision=DELETE,
        ),
    ),
    ("location-latitude-91", mutate("location", latitude=91)),
    ("location-longitude--180.5", mutate("location", longitude=-180.5)),
    ("location-latitude-string", mutate("location", latitude="42.5")),
    ("location-latitude-without-longitude", mutate("location", longitude=DELETE, precision=DELETE)),
    (
        "location-precision-without-coordinates",
        mutate("location", latitude=DELETE, longitude=DELETE),
    ),
    ("malware-no-is_family", mutate("malware", is_family=DELETE)),
    ("malware-family-without-name", mutate("malware", name=DELETE)),
    ("malware-is_family-string", mutate("malware", is_family="true")),
    ("malware-analysis-no-product", mutate("malware-analysis", product=DELETE)),
    ("malware-analysis-no-result", mutate("malware-analysis", result=DELETE)),
    ("note-no-content", mutate("note", content=DELETE)),
    ("note-no-object_refs", mutate("note", object_refs=DELETE)),
    ("observed-data-no-first_observed", mutate("observed-data", first_observed=DELETE)),
    ("observed-data-number_observed-0", mutate("observed-data", number_observed=0)),
    ("observed-data-number_observed-1e9", mutate("observed-data", number_observed=1_000_000_000)),
    ("observed-data-no-object_refs", mutate("observed-data", object_refs=DELETE)),
    ("opinion-not-in-enum", mutate("opinion", opinion="strongly-doubt")),
    ("opinion-no-object_refs", mutate("opinion", object_refs=DELETE)),
    ("report-no-published", mutate("report", published=DELETE)),
    ("threat-actor-no-name", mutate("threat-actor", name=DELETE)),
    ("tool-no-name", mutate("tool", name=DELETE)),
    ("vulnerability-no-name", mutate("vulnerability", name=DELETE)),
    ("relationship-no-relationship_type", mutate("relationship", relationship_type=DELETE)),
    ("relationship-type-uppercase", mutate("relationship", relationship_type="Indicates")),
    ("relationship-no-target_ref", mutate("relationship", target_ref=DELETE)),
    ("sighting-no-sighting_of_ref", mutate("sighting", sighting_of_ref=DELETE)),
    ("sighting-count-negative", mutate("sighting", count=-1)),
    ("marking-definition-no-definition", mutate("marking-definition", definition=DELETE)),
    (
        "marking-definition-statement-missing",
        mutate("marking-definition", definition={"text": "Copyright"}),
    ),
    (
        "marking-definition-self-marked",
        mutate("marking-definition", object_marking_refs=[uid("marking-definition", 27)]),
    ),
    ("marking-definition-spec_version-missing", mutate("marking-definition", spec_version=DELETE)),
    (
        "marking-definition-tlp-wrong-name",
        {
            "type": "marking-definition",
            "spec_version": "2.1",
            "id": MARKING,
            "created": "2017-01-20T00:00:00.000Z",
            "definition_type": "tlp",
            "name": "TLP:RED",
            "definition": {"tlp": "green"},
        },
    ),
    ("language-content-no-contents", mutate("language-content", contents=DELETE)),
    (
        "language-content-bad-language-key",
        mutate("language-content", contents={"de_DE": {"name": "Bank"}}),
    ),
    ("extension-definition-no-schema", mutate("extension-definition", schema=DELETE)),
    ("extension-definition-no-version", mutate("extension-definition", version=DELETE)),
    (
        "extension-definition-bad-extension_types",
        mutate("extension-definition", extension_types=["new-widget"]),
    ),
    ("ipv4-addr-no-value", mutate("ipv4-addr", value=DELETE)),
    # --- cyber-observables: the types of required properties, hashes, at-least-one rules
    ("ipv4-addr-value-number", mutate("ipv4-addr", value=3325256707)),
    ("autonomous-system-number-string", mutate("autonomous-system", number="15139")),
    ("autonomous-system-number-fraction", mutate("autonomous-system", number=1.5)),
    ("network-traffic-protocols-string", mutate("network-traffic", protocols="tcp")),
    ("file-name-number", mutate("file", name=7)),
    ("file-hashes-string", mutate("file", hashes="ab" * 32)),
    ("file-hashes-empty", mutate("file", hashes={})),
    ("file-hashes-sha-256-short", mutate("file", hashes={"SHA-256": "abc"})),
    ("process-without-properties", mutate("process", pid=DELETE)),
    ("artifact-url-without-hashes", mutate("artifact", hashes=DELETE)),
    ("artifact-url-and-payload_bin", mutate("artifact", payload_bin="aGVsbG8=")),
]

#: One defect each, rejected by tansiq; stix2-validator raises on them instead of answering.
VALIDATOR_RAISES: Final[list[tuple[str, dict[str, Any]]]] = [
    ("type-missing", mutate("campaign", type=DELETE)),
    ("id-missing", mutate("campaign", id=DELETE)),
    ("created-epoch-number", mutate("campaign", created=1459972980000)),
    ("file-hashes-list", mutate("file", hashes=[{"SHA-256": "ab" * 32}])),
    (
        "kill_chain_phases-no-phase_name",
        mutate("attack-pattern", kill_chain_phases=[{"kill_chain_name": "mitre-attack"}]),
    ),
]
