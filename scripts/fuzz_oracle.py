"""Differential fuzzer: tansiq.stix.validate.check_object against stix2-validator (MUST level).

Valid base objects of every type (the shared STIX files, OASIS examples and ICS ATT&CK, plus
``tests/invalid_corpus.VALID`` and a few cyber-observables) each get one defect at a time; every
mutant where the two verdicts differ is printed, grouped by mutation kind.  Run from the repo root:

    TANSIQ_SHARED_DIR=/work/shared .venv/bin/python scripts/fuzz_oracle.py [--per-type N]
"""

from __future__ import annotations

import argparse
import collections
import copy
import json
import os
import random
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import stix2validator
from invalid_corpus import IDENTITY, MARKING, VALID, uid

from tansiq.stix.validate import check_object

OPTIONS = stix2validator.ValidationOptions(version="2.1")
TS_PROPS = {
    "created", "modified", "first_seen", "last_seen", "valid_from", "valid_until", "published",
    "first_observed", "last_observed", "start_time", "stop_time", "submitted",
    "analysis_started", "analysis_ended", "object_modified",
}  # fmt: skip

SCOS: list[dict[str, Any]] = [
    {"type": "domain-name", "spec_version": "2.1", "id": uid("domain-name", 40),
     "value": "example.com"},
    {"type": "email-addr", "spec_version": "2.1", "id": uid("email-addr", 41),
     "value": "a@example.com"},
    {"type": "file", "spec_version": "2.1", "id": uid("file", 42), "name": "a.exe",
     "hashes": {"SHA-256": "a" * 64}},
    {"type": "url", "spec_version": "2.1", "id": uid("url", 43), "value": "https://example.com/"},
    {"type": "mutex", "spec_version": "2.1", "id": uid("mutex", 44), "name": "m1"},
    {"type": "network-traffic", "spec_version": "2.1", "id": uid("network-traffic", 45),
     "src_ref": uid("ipv4-addr", 18), "protocols": ["tcp"]},
    {"type": "process", "spec_version": "2.1", "id": uid("process", 46), "pid": 4},
    {"type": "user-account", "spec_version": "2.1", "id": uid("user-account", 47),
     "user_id": "1001"},
    {"type": "software", "spec_version": "2.1", "id": uid("software", 48), "name": "Word"},
    {"type": "autonomous-system", "spec_version": "2.1", "id": uid("autonomous-system", 49),
     "number": 15139},
]  # fmt: skip

DELETE = object()


def verdicts(obj: Any) -> tuple[bool, str]:
    ours = not check_object(obj)
    try:
        theirs = "valid" if stix2validator.validate_instance(obj, OPTIONS).is_valid else "invalid"
    except Exception as exc:  # the validator cannot judge it
        theirs = "raises:" + type(exc).__name__
    return ours, theirs


def base_objects(per_type: int, rng: random.Random) -> list[dict[str, Any]]:
    by_type: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    shared = Path(os.environ.get("TANSIQ_SHARED_DIR", "/work/shared")) / "data" / "stix"
    for path in sorted(shared.glob("*.json")):
        doc = json.loads(path.read_bytes())
        for obj in doc.get("objects", []) if isinstance(doc, dict) else doc:
            by_type[obj["type"]].append(obj)
    for obj in [*VALID.values(), *SCOS]:
        by_type[obj["type"]].append(obj)
    out = []
    for objs in by_type.values():
        # the richest objects first (most properties), then a random few
        objs = sorted(objs, key=lambda o: -len(json.dumps(o)))
        picked = objs[: max(1, per_type // 2)]
        rest = objs[len(picked) :]
        picked += rng.sample(rest, min(len(rest), per_type - len(picked)))
        out += picked
    return [o for o in out if verdicts(o) == (True, "valid")]


def with_(obj: dict[str, Any], **kw: Any) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    for k, v in kw.items():
        if v is DELETE:
            out.pop(k, None)
        else:
            out[k] = v
    return out


def set_uuid_char(oid: str, pos: int, ch: str) -> str:
    u = list(oid[-36:])
    u[pos] = ch
    return oid[:-36] + "".join(u)


BAD_TS = {
    "leap-second": "2016-12-31T23:59:60.000Z",
    "sixty-one-seconds": "2016-05-07T11:22:61.000Z",
    "no-z": "2016-05-07T11:22:30.123",
    "lowercase-t": "2016-05-07t11:22:30.123Z",
    "lowercase-z": "2016-05-07T11:22:30.123z",
    "offset": "2016-05-07T11:22:30.123+00:00",
    "feb-30": "2016-02-30T11:22:30.123Z",
    "feb-29-non-leap": "2015-02-29T11:22:30.123Z",
    "year-0000": "0000-05-07T11:22:30.123Z",
    "ten-fraction-digits": "2016-05-07T11:22:30.1234567890Z",
    "hour-24": "2016-05-07T24:00:00.000Z",
    "minute-60": "2016-05-07T11:60:00.000Z",
    "empty-fraction": "2016-05-07T11:22:30.Z",
    "comma-fraction": "2016-05-07T11:22:30,123Z",
    "short-year": "16-05-07T11:22:30.123Z",
    "unicode-digit": "2016-05-07T11:22:3\u0663.123Z",
    "space": " 2016-05-07T11:22:30.123Z",
    "trailing-newline": "2016-05-07T11:22:30.123Z\n",
    "number": 1462620150,
}
GOOD_TS = {
    "nine-fraction-digits": "2016-05-07T11:22:30.123456789Z",
    "year-0001": "0001-05-07T11:22:30.123Z",
    "feb-29-leap": "2016-02-29T11:22:30.123Z",
    "no-fraction": "2016-05-07T11:22:30Z",
}


def mutations(obj: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    t, oid = obj["type"], obj["id"]
    # --- removal and wrong type of every property
    for k, v in obj.items():
        yield f"remove:{k}", with_(obj, **{k: DELETE})
        wrong: list[Any] = []
        if isinstance(v, str):
            wrong = [7, [v]]
        elif isinstance(v, bool):
            wrong = ["true", 1]
        elif isinstance(v, (int, float)):
            wrong = [str(v), True]
        elif isinstance(v, list):
            wrong = [v[0] if v else "x", {"a": v}, [7]]
        elif isinstance(v, dict):
            wrong = [[v], "x", {}]
        for w in wrong:
            yield f"wrongtype:{k}:{type(w).__name__}", with_(obj, **{k: w})
    # --- timestamps
    late = ("modified", "last_seen", "valid_until", "last_observed", "stop_time", "analysis_ended")
    for k in TS_PROPS & obj.keys():
        for name, value in {**BAD_TS, **GOOD_TS}.items():
            if isinstance(value, str) and not name.startswith("year-"):
                value = value.replace("2016", "2099" if k in late else "1990").replace(
                    "15-", "1990-"
                )
            yield f"ts:{k}:{name}", with_(obj, **{k: value})
    # --- ids
    for name, (pos, ch) in {
        "version-0": (14, "0"), "version-6": (14, "6"), "version-7": (14, "7"),
        "version-8": (14, "8"), "version-f": (14, "f"), "version-1": (14, "1"),
        "version-3": (14, "3"), "version-5": (14, "5"),
        "variant-0": (19, "0"), "variant-7": (19, "7"), "variant-c": (19, "c"),
        "variant-e": (19, "e"), "variant-b": (19, "b"),
    }.items():  # fmt: skip
        yield f"id:{name}", with_(obj, id=set_uuid_char(oid, pos, ch))
    yield "id:uppercase-hex", with_(obj, id=oid[:-36] + oid[-36:].upper())
    yield "id:uppercase-type", with_(obj, id=t.upper() + oid[len(t) :])
    yield "id:other-type", with_(obj, id=uid("campaign" if t != "campaign" else "tool", 3))
    yield "id:nil-uuid", with_(obj, id=t + "--00000000-0000-0000-0000-000000000000")
    yield "id:no-hyphens", with_(obj, id=t + "--" + oid[-36:].replace("-", ""))
    yield "id:triple-hyphen", with_(obj, id=t + "---" + oid[-36:])
    # --- spec_version
    for sv in ["2.0", "2", "2.1 ", "2.10", 2.1, "", "2.1.0"]:
        yield f"spec_version:{sv!r}", with_(obj, spec_version=sv)
    # --- references
    wrong_refs = {
        "identity": IDENTITY,
        "indicator": uid("indicator", 9),
        "marking": MARKING,
        "relationship": uid("relationship", 21),
        "sighting": uid("sighting", 26),
        "ipv4-addr": uid("ipv4-addr", 18),
        "file": uid("file", 42),
        "bundle": uid("bundle", 2),
        "language-content": uid("language-content", 28),
        "extension-definition": uid("extension-definition", 29),
        "custom": uid("x-acme-widget", 30),
        "uppercase-uuid": IDENTITY.upper().replace("IDENTITY", "identity"),
    }
    ref_props = [
        "created_by_ref", "object_marking_refs", "object_refs", "source_ref", "target_ref",
        "sighting_of_ref", "where_sighted_refs", "observed_data_refs", "object_ref", "sample_refs",
        "sample_ref", "operating_system_refs", "host_vm_ref", "analysis_sco_refs", "src_ref",
    ]  # fmt: skip
    for k in ref_props:
        if k not in obj and k not in ("created_by_ref", "object_marking_refs"):
            continue
        for name, ref in wrong_refs.items():
            yield f"ref:{k}:{name}", with_(obj, **{k: [ref] if k.endswith("s") else ref})
    # --- relationship_type
    if t == "relationship":
        for rt in ["Uses", "related_to", "related to", "", "a", "x" * 300, "uses\n", "relätes"]:
            yield f"relationship_type:{rt[:12]!r}", with_(obj, relationship_type=rt)
    # --- custom property names
    for name in [
        "xy", "x_", "x" * 250, "x" * 251, "x_acme-rank", "X_acme", "_x_acme", "1_acme",
        "x_acme_fooBar", "x_\u00e9t\u00e9", "id", "x_id", "x_acme_ref", "x_acme_refs", "x acme",
    ]:  # fmt: skip
        yield f"propname:{name[:16]!r}", with_(obj, **{name: "v"})
    yield "propvalue:custom-null", with_(obj, x_acme_v=None)
    yield "propvalue:custom-empty-list", with_(obj, x_acme_v=[])
    yield "propvalue:custom-empty-dict", with_(obj, x_acme_v={})
    yield "propvalue:custom-empty-string", with_(obj, x_acme_v="")
    # --- lang, confidence, labels
    for lang in ["", "en-", "EN", "x-klingon", "123", "en-US", "zh-Hant-TW", "i-klingon", "e"]:
        yield f"lang:{lang!r}", with_(obj, lang=lang)
    for conf in [-1, 101, 50.0, 50.5, "50", True, 0, 100, 1e2]:
        yield f"confidence:{conf!r}", with_(obj, confidence=conf)
    for labels in [[""], ["a", "a"], "a", [["a"]]]:
        yield f"labels:{labels!r}", with_(obj, labels=labels)
    # --- external references
    for name, er in {
        "no-source_name": {"url": "https://example.com/"},
        "source_name-number": {"source_name": 7, "url": "https://example.com/"},
        "only-source_name": {"source_name": "acme"},
        "empty-source_name": {"source_name": "", "url": "https://example.com/"},
        "cve-bad-id": {"source_name": "cve", "external_id": "CVE-2016-12"},
        "cve-lower": {"source_name": "cve", "external_id": "cve-2016-1234"},
        "capec-bad-id": {"source_name": "capec", "external_id": "CAPEC-x"},
        "cve-no-id": {"source_name": "cve", "url": "https://example.com/"},
        "url-relative": {"source_name": "acme", "url": "/a/b"},
        "url-space": {"source_name": "acme", "url": "https://example.com/a b"},
        "hash-sha256-short": {"source_name": "a", "url": "u:x", "hashes": {"SHA-256": "a"}},
        "hash-custom-algo": {"source_name": "a", "url": "u:x", "hashes": {"x_foo": "ab"}},
        "hash-tlsh-short": {"source_name": "a", "url": "u:x", "hashes": {"TLSH": "ab"}},
        "hash-ssdeep-space": {"source_name": "a", "url": "u:x", "hashes": {"SSDEEP": "a b"}},
        "hash-empty": {"source_name": "a", "url": "https://e.com/", "hashes": {}},
        "external_id-number": {"source_name": "a", "external_id": 7},
        "extra-property": {"source_name": "a", "url": "https://e.com/", "x_foo": 1},
    }.items():  # fmt: skip
        yield f"extref:{name}", with_(obj, external_references=[er])
    yield "extref:empty-list", with_(obj, external_references=[])
    # --- kill chain phases
    for name, kc in {
        "no-phase_name": {"kill_chain_name": "lockheed"},
        "no-kill_chain_name": {"phase_name": "delivery"},
        "phase-number": {"kill_chain_name": "lockheed", "phase_name": 7},
        "uppercase": {"kill_chain_name": "Lockheed Martin", "phase_name": "Delivery Stage"},
        "underscore": {"kill_chain_name": "lockheed_martin", "phase_name": "deliv_ery"},
        "empty": {"kill_chain_name": "", "phase_name": ""},
        "extra": {"kill_chain_name": "a", "phase_name": "b", "x_foo": 1},
    }.items():
        yield f"killchain:{name}", with_(obj, kill_chain_phases=[kc])
    # --- granular markings
    for name, gm in {
        "selector-index-on-string": {"marking_ref": MARKING, "selectors": ["type.[0]"]},
        "selector-id": {"marking_ref": MARKING, "selectors": ["id"]},
        "selector-type": {"marking_ref": MARKING, "selectors": ["type"]},
        "selector-empty": {"marking_ref": MARKING, "selectors": [""]},
        "selector-leading-dot": {"marking_ref": MARKING, "selectors": [".type"]},
        "selector-trailing-dot": {"marking_ref": MARKING, "selectors": ["type."]},
        "selector-bracket-no-dot": {"marking_ref": MARKING, "selectors": ["type[0]"]},
        "selector-missing": {"marking_ref": MARKING, "selectors": ["x_nope"]},
        "marking_ref-identity": {"marking_ref": IDENTITY, "selectors": ["type"]},
        "marking_ref-bad": {"marking_ref": "marking-definition--1", "selectors": ["type"]},
        "no-ref-no-lang": {"selectors": ["type"]},
        "both-ref-lang": {"marking_ref": MARKING, "lang": "en", "selectors": ["type"]},
        "selectors-string": {"marking_ref": MARKING, "selectors": "type"},
        "extra": {"marking_ref": MARKING, "selectors": ["type"], "x_foo": 1},
    }.items():
        yield f"granular:{name}", with_(obj, granular_markings=[gm])
    # --- extensions
    ext_id = uid("extension-definition", 29)
    for name, ext in {
        "prop-ext": {ext_id: {"extension_type": "property-extension", "rank": 5}},
        "toplevel-ext": {ext_id: {"extension_type": "toplevel-property-extension"}},
        "new-sdo-ext": {ext_id: {"extension_type": "new-sdo"}},
        "no-extension_type": {ext_id: {"rank": 5}},
        "bad-extension_type": {ext_id: {"extension_type": "widget"}},
        "empty-value": {ext_id: {}},
        "value-string": {ext_id: "x"},
        "key-bad-def-id": {"extension-definition--123": {"extension_type": "new-sdo"}},
        "key-wrong-type-id": {uid("identity", 5): {"extension_type": "new-sdo"}},
        "key-ext-name": {"x-acme-ext": {"rank": 5}},
        "key-ext-name-with-type": {"x-acme-ext": {"extension_type": "new-sdo"}},
        "key-uppercase-ext": {"X-acme-ext": {"rank": 5}},
        "key-no-ext-suffix": {"acme": {"rank": 5}},
        "key-predefined": {"archive-ext": {"contains_refs": [uid("file", 42)]}},
        "bad-inner-name": {ext_id: {"extension_type": "property-extension", "Bad-Name": 1}},
        "inner-null": {ext_id: {"extension_type": "property-extension", "rank": None}},
    }.items():  # fmt: skip
        yield f"extensions:{name}", with_(obj, extensions=ext)
    # --- reserved names
    for name in ["severity", "action", "username", "phone_numbers", "addresses", "location"]:
        yield f"reserved:{name}", with_(obj, **{name: "x"})
    # --- type-specific
    if t == "marking-definition":
        for dt, d in [
            ("tlp", {"tlp": "green"}), ("statement", {"text": "x"}), ("statement", "x"),
            ("acme", {"foo": 1}), ("statement", {"statement": 7}), ("tlp", {"tlp": "pink"}),
        ]:  # fmt: skip
            yield f"marking:{dt}:{d!r}", with_(obj, definition_type=dt, definition=d)
        yield "marking:modified", with_(obj, modified="2020-01-01T00:00:00.000Z")
    if t == "observed-data":
        for n in [0, 1_000_000_000, 1.5, "5", True]:
            yield f"number_observed:{n!r}", with_(obj, number_observed=n)
    if t == "sighting":
        for n in [-1, 1_000_000_000, 1.5, "5"]:
            yield f"count:{n!r}", with_(obj, count=n)
        yield "sighting:summary-string", with_(obj, summary="true")
    if t == "location":
        for k, v in [("latitude", 90.5), ("longitude", 181), ("precision", -1), ("latitude", "1")]:
            yield f"location:{k}:{v!r}", with_(obj, **{k: v})
    if t == "opinion":
        yield "opinion:bad", with_(obj, opinion="Agree")
    if t == "indicator":
        yield "indicator:pattern-not-stix", with_(obj, pattern="x")
        yield "indicator:pattern_type-other", with_(obj, pattern_type="snort", pattern="alert x")
        yield "indicator:pattern_version", with_(obj, pattern_version=2.1)
    if t == "malware":
        yield "malware:is_family-false-no-name", with_(obj, is_family=False, name=DELETE)
    if t in ("process", "user-account", "mutex", "domain-name", "file"):
        yield "sco:id-uuid1", with_(obj, id=set_uuid_char(oid, 14, "1"))
        yield "sco:defanged-string", with_(obj, defanged="yes")
        yield "sco:created", with_(obj, created="2016-01-01T00:00:00.000Z")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--per-type", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--show", type=int, default=3, help="examples shown per kind")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    bases = base_objects(args.per_type, rng)
    compared = 0
    differ: dict[str, list[tuple[str, bool, str, dict[str, Any]]]] = collections.defaultdict(list)
    for base in bases:
        for kind, obj in mutations(base):
            compared += 1
            ours, theirs = verdicts(obj)
            if theirs.startswith("raises") and not ours:
                continue  # rejected by tansiq; the validator cannot judge it
            if ours != (theirs == "valid"):
                key = kind.split(":", 2)
                differ[":".join(key[:2]) + f" ours={ours} theirs={theirs}"].append(
                    (base["type"], ours, kind, obj)
                )
    print(f"{len(bases)} base objects, {compared} mutants compared, "
          f"{sum(map(len, differ.values()))} disagreements in {len(differ)} kinds")  # fmt: skip
    for key, cases in sorted(differ.items()):
        types = sorted({c[0] for c in cases})
        print(f"\n== {key}: {len(cases)} ({', '.join(types)[:200]})")
        for _, _, kind, obj in cases[: args.show]:
            problems = check_object(obj)
            print("   ", kind, "| tansiq:", [(p.property, p.reason) for p in problems][:2])


if __name__ == "__main__":
    main()
