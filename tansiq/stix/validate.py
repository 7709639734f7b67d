"""Fast boundary validation of STIX 2.1 objects (MUST-level rules) for the ingest hot path.

Plain dict/str checks, precompiled regexes and per-type tables; no stix2, no JSON schema.  Custom
types (``x-...``) and custom properties are accepted so custom content round-trips: custom
properties are opaque (only the name, no-null and no-empty-list rules apply), custom objects get
the common-property rules.  The rules agree with stix2-validator's error level (the test oracle)
except where listed in ``DISAGREEMENTS`` in ``tests/test_validate.py``.  Not replicated: the STIX
patterning grammar (a cheap shape check only), cyber-observable schemas beyond the rules listed in
:mod:`tansiq.stix.observables`, and the contents of the deprecated ``observed-data.objects``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, Final

from tansiq.stix.observables import SCO_GROUPS, SCO_SPECS, SCO_TYPES, UUID4_UNLESS
from tansiq.stix.timestamps import to_micros

__all__ = ["Problem", "check_object"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One defect: the offending property (``""`` for the whole object) and why."""

    property: str
    reason: str


_Obj = dict[str, Any]
_Out = list[Problem]
_Check = Callable[[_Obj, str, Any, _Out], None]
_Types = frozenset[str] | None


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


def _pairs(text: str) -> dict[str, str]:  # "a=b c=d" -> {"a": "b", "c": "d"}
    return {a: b for a, _, b in (word.partition("=") for word in text.split())}


# --- syntax ---------------------------------------------------------------------------------

_TYPE_NAME = r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*"
# As stix2-validator: UUID version 1-5 and the RFC 4122 variant, hex digits in either case.
_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[1-5][0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}"
_type_ok: Final = re.compile(_TYPE_NAME + r"\Z").match
_id_ok: Final = re.compile(f"{_TYPE_NAME}--{_UUID}\\Z").match  # the type is value[:-38]
_prop_ok: Final = re.compile(r"[a-z][a-z0-9_]{2,249}\Z").match
_ext_name_ok: Final = re.compile(_TYPE_NAME + r"-ext\Z").match
_base64_ok: Final = re.compile(
    r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{4}|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{2}==)\Z"
).match
_hex_ok: Final = re.compile(r"(?:[0-9a-fA-F]{2})+\Z").match
_hash_key_ok: Final = re.compile(r"[a-zA-Z0-9_-]{3,250}\Z").match  # a custom hash algorithm
_url_ok: Final = re.compile(  # runs of plain characters matched at once: ~8x faster
    r"[A-Za-z][A-Za-z0-9+.-]*:(?:[A-Za-z0-9._~:/?#\[\]@!$&'()*+,;=-]++|%[0-9A-Fa-f]{2})*+\Z"
).match
_cve_ok: Final = re.compile(r"CVE-\d{4}-(?:0\d{3}|[1-9]\d{3,})\Z").match
_capec_ok: Final = re.compile(r"CAPEC-\d+\Z").match
_selector_ok: Final = re.compile(
    r"(?:[a-z0-9_-]{3,249}(?:\.(?:\[\d+\]|[a-z0-9_-]{1,250}))*|id)\Z"
).match
_rel_type_ok: Final = re.compile(r"[a-z0-9-]+\Z").match
_stix_pattern_start: Final = re.compile(r"\s*[(\[]").match
# RFC 5646 language tag, well-formed ("langtag" or "privateuse"; irregular grandfathered below).
_lang_ok: Final = re.compile(
    r"(?:(?:[A-Za-z]{2,3}(?:-[A-Za-z]{3}){0,3}|[A-Za-z]{4,8})"
    r"(?:-[A-Za-z]{4})?(?:-(?:[A-Za-z]{2}|[0-9]{3}))?"
    r"(?:-(?:[A-Za-z0-9]{5,8}|[0-9][A-Za-z0-9]{3}))*"
    r"(?:-[0-9A-WY-Za-wy-z](?:-[A-Za-z0-9]{2,8})+)*"
    r"(?:-[Xx](?:-[A-Za-z0-9]{1,8})+)?|[Xx](?:-[A-Za-z0-9]{1,8})+)\Z"
).match
_LANG_IRREGULAR: Final = _words(
    "en-GB-oed i-ami i-bnn i-default i-enochian i-hak i-klingon i-lux i-mingo i-navajo i-pwn "
    "i-tao i-tay i-tsu sgn-BE-FR sgn-BE-NL sgn-CH-DE"
)

# --- object kinds and vocabularies -----------------------------------------------------------

_SDO: Final = _words(
    "attack-pattern campaign course-of-action grouping identity incident indicator "
    "infrastructure intrusion-set location malware malware-analysis note observed-data opinion "
    "report threat-actor tool vulnerability"
)
_SRO: Final = _words("relationship sighting")
_SCO: Final = SCO_TYPES
_META: Final = _words("bundle marking-definition language-content extension-definition")
# "Core" objects need spec_version, created and modified (custom ones: when they have either).
_CORE: Final = _SDO | _SRO | _words("language-content extension-definition")
_FORBIDDEN: Final = {  # named sets of object types a reference must not point at
    "endpoint": _SRO | _META,
    "sdo": _SDO | _META,
    "lc": _words("bundle language-content"),
}
_OPINIONS: Final = _words("strongly-disagree disagree neutral agree strongly-agree")
_EXT_TYPES: Final = _words("new-sdo new-sco new-sro property-extension toplevel-property-extension")
_HEX_LEN: Final = {
    algo: int(n)
    for algo, n in _pairs("MD5=32 SHA-1=40 SHA-256=64 SHA-512=128 SHA3-256=64 SHA3-512=128").items()
}
_HASH_ALGOS: Final = frozenset((*_HEX_LEN, "SSDEEP", "TLSH"))
_TLP1: Final = {  # the four fixed TLP 1.0 marking definitions of STIX 2.1 section 7.2.1.4
    "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9": "white",
    "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da": "green",
    "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82": "amber",
    "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed": "red",
}
_TLP1_PROPS: Final = _words("type id spec_version created name definition definition_type")
_UUID4_UNLESS: Final = UUID4_UNLESS
# Every top-level *_ref / *_refs property STIX 2.1 defines: these must hold identifiers.  Custom
# properties with these suffixes are opaque (ATT&CK ships x_mitre_data_source_ref: "").
_SPEC_REFS: Final = _words(
    "created_by_ref object_marking_refs object_refs object_ref source_ref target_ref "
    "sighting_of_ref observed_data_refs where_sighted_refs operating_system_refs sample_refs "
    "host_vm_ref operating_system_ref installed_software_refs analysis_sco_refs sample_ref "
    "resolves_to_refs belongs_to_refs belongs_to_ref from_ref sender_ref to_refs cc_refs "
    "bcc_refs raw_email_ref contains_refs content_ref parent_directory_ref src_ref dst_ref "
    "src_payload_ref dst_payload_ref encapsulates_refs encapsulated_by_ref "
    "opened_connection_refs creator_user_ref image_ref parent_ref child_refs"
)

# --- identifiers (validated ones cached: references repeat a lot) ----------------------------

_BAD_ID = "must be an identifier: '<object-type>--<RFC 4122 UUID>'"
_id_types: dict[str, str] = {}


def _id_type(value: object) -> str | None:
    """The object type named by identifier *value*; None when it is not an identifier."""
    if type(value) is not str:
        return None
    rtype = _id_types.get(value)
    if rtype is None:
        if not 41 <= len(value) <= 288 or _id_ok(value) is None:
            return None
        if len(_id_types) >= 32768:
            _id_types.clear()
        rtype = _id_types[value] = value[:-38]
    return rtype


def _ref_problem(where: str, value: object, allowed: _Types, forbidden: _Types) -> Problem | None:
    rtype = _id_type(value)
    if rtype is None:
        return Problem(where, _BAD_ID)
    if allowed is not None and rtype not in allowed:
        return Problem(where, "must reference " + " or ".join(sorted(allowed)))
    if forbidden is not None and rtype in forbidden:
        return Problem(where, f"must not reference a {rtype}")
    return None


def _ref(many: bool, allowed: _Types, forbidden: _Types) -> _Check:
    """Checker of an identifier property (*many*: a list of identifiers)."""

    # Known identifiers of allowed types pass without a call (references repeat a lot).
    def check(obj: _Obj, k: str, v: Any, out: _Out) -> None:
        if not many:
            rtype = _id_types.get(v) if type(v) is str else None
            if (
                rtype is None
                or (allowed is not None and rtype not in allowed)
                or (forbidden is not None and rtype in forbidden)
            ):
                p = _ref_problem(k, v, allowed, forbidden)
                if p is not None:
                    out.append(p)
        elif type(v) is not list:
            out.append(Problem(k, "must be a list of identifiers"))
        else:
            for i, r in enumerate(v):
                rtype = _id_types.get(r) if type(r) is str else None
                if (
                    rtype is not None
                    and (allowed is None or rtype in allowed)
                    and (forbidden is None or rtype not in forbidden)
                ):
                    continue
                p = _ref_problem(k, r, allowed, forbidden)
                if p is not None:  # (the indexed name is built only for a problem)
                    out.append(Problem(f"{k}[{i}]", p.reason))

    return check


# --- timestamps ------------------------------------------------------------------------------


def _ts(where: str, value: object, out: _Out, millis: bool = False) -> int | None:
    """Microseconds of a STIX timestamp, or None after reporting why it is not one."""
    if type(value) is not str:
        out.append(Problem(where, "must be a timestamp string"))
        return None
    try:
        micros = to_micros(value)
    except ValueError as exc:
        out.append(Problem(where, str(exc)))
        return None
    if value[17] == "6":  # to_micros takes :60; stix2 and stix2-validator reject leap seconds
        out.append(Problem(where, "leap seconds (:60) are not accepted"))
        return None
    if millis and (len(value) < 24 or value[19] != "."):
        out.append(Problem(where, "must be precise to at least the millisecond (.sss)"))
    return micros


def _micros_or_none(value: object) -> int | None:
    try:
        return to_micros(value)
    except ValueError:
        return None


# --- property checkers: (obj, property, value, out) ------------------------------------------


def _typed(pytype: type, what: str) -> _Check:
    def check(obj: _Obj, k: str, v: Any, out: _Out) -> None:
        if type(v) is not pytype:
            out.append(Problem(k, "must be " + what))

    return check


def _c_strs(obj: _Obj, k: str, v: Any, out: _Out) -> None:
    if type(v) is not list:
        out.append(Problem(k, "must be a list of strings"))
        return
    for i, s in enumerate(v):
        if type(s) is not str:
            out.append(Problem(f"{k}[{i}]", "must be a string"))


def _c_ts(obj: _Obj, k: str, v: Any, out: _Out) -> None:
    _ts(k, v, out)


def _int_range(lo: int, hi: int) -> _Check:
    def check(obj: _Obj, k: str, v: Any, out: _Out) -> None:
        # JSON-schema "integer" (as stix2-validator): 3 and 3.0, never a boolean
        if not (type(v) is int or (type(v) is float and v.is_integer())) or not lo <= v <= hi:
            out.append(Problem(k, f"must be an integer from {lo} to {hi:,}"))

    return check


def _num_range(lo: float = -math.inf, hi: float = math.inf) -> _Check:
    what = "must be a number" + (f" from {lo:g} to {hi:g}" if hi < math.inf else "")

    def check(obj: _Obj, k: str, v: Any, out: _Out) -> None:
        if (type(v) is not int and type(v) is not float) or not lo <= v <= hi:
            out.append(Problem(k, what))

    return check


def _c_lang(obj: _Obj, k: str, v: Any, out: _Out) -> None:
    if type(v) is not str or not (_lang_ok(v) or v in _LANG_IRREGULAR):
        out.append(Problem(k, "must be an RFC 5646 language tag"))


def _c_reserved(obj: _Obj, k: str, v: Any, out: _Out) -> None:
    out.append(Problem(k, "is a reserved property name"))


def _c_kill_chain(obj: _Obj, k: str, v: Any, out: _Out) -> None:
    if type(v) is not list:
        out.append(Problem(k, "must be a list of kill-chain phases"))
        return
    for i, p in enumerate(v):
        for field in ("kill_chain_name", "phase_name"):
            if type(p) is not dict or type(p.get(field)) is not str:
                out.append(Problem(f"{k}[{i}].{field}", "required string"))


def _c_external_references(obj: _Obj, k: str, v: Any, out: _Out) -> None:
    if type(v) is not list:
        out.append(Problem(k, "must be a list of external references"))
        return
    for i, r in enumerate(v):
        if type(r) is not dict:
            out.append(Problem(f"{k}[{i}]", "must be an external-reference object"))
            continue
        source, eid = r.get("source_name"), r.get("external_id")
        if type(source) is not str:
            out.append(Problem(f"{k}[{i}].source_name", "required string"))
        elif source == "cve" or source == "capec":
            if type(eid) is not str or not (_cve_ok if source == "cve" else _capec_ok)(eid):
                form = "CVE-YYYY-NNNN" if source == "cve" else "CAPEC-N"
                out.append(Problem(f"{k}[{i}].external_id", f"must be {form} for {source}"))
        elif "external_id" not in r and "description" not in r and "url" not in r:
            out.append(Problem(f"{k}[{i}]", "needs external_id, description or url"))
        elif type(eid) is str and (_cve_ok(eid) or _capec_ok(eid)):
            out.append(Problem(f"{k}[{i}].source_name", "must be 'cve'/'capec' for this id"))
        for name in ("external_id", "description"):
            if name in r and type(r[name]) is not str:
                out.append(Problem(f"{k}[{i}].{name}", "must be a string"))
        if "url" in r and (type(r["url"]) is not str or not _url_ok(r["url"])):
            out.append(Problem(f"{k}[{i}].url", "must be a URL (RFC 3986)"))
        if "hashes" in r:
            _hashes(f"{k}[{i}].hashes", r["hashes"], out, False)


def _hashes(where: str, hashes: object, out: _Out, custom: bool) -> None:
    """A hashes dictionary; *custom*: other keys than hash-algorithm-ov names are allowed."""
    if type(hashes) is not dict or not hashes:
        out.append(Problem(where, "must be a non-empty dictionary"))
        return
    for algo, value in hashes.items():
        size = _HEX_LEN.get(algo, 0)
        if algo not in _HASH_ALGOS and not (custom and type(algo) is str and _hash_key_ok(algo)):
            out.append(Problem(f"{where}.{algo}", "must be a hash-algorithm-ov name"))
        elif type(value) is not str or (size and (len(value) != size or not _hex_ok(value))):
            out.append(Problem(f"{where}.{algo}", f"must be a {algo} hash"))


def _c_hashes(obj: _Obj, k: str, v: Any, out: _Out) -> None:  # of a cyber-observable
    _hashes(k, v, out, True)


def _selects(obj: _Obj, selector: str) -> bool:
    """Does *selector* (``a.b.[0].c``) point at content present in *obj*?"""
    cur: Any = obj
    for seg in selector.split("."):
        if seg[0] == "[":
            i = int(seg[1:-1])
            if type(cur) is not list or i >= len(cur):
                return False
            cur = cur[i]
        elif type(cur) is not dict or seg not in cur:
            return False
        else:
            cur = cur[seg]
    return True


_MARKING: Final = frozenset(("marking-definition",))


def _c_granular_markings(obj: _Obj, k: str, v: Any, out: _Out) -> None:
    if type(v) is not list:
        out.append(Problem(k, "must be a list of granular markings"))
        return
    for i, g in enumerate(v):
        where = f"{k}[{i}]"
        if type(g) is not dict:
            out.append(Problem(where, "must be a granular-marking object"))
            continue
        if ("marking_ref" in g) == ("lang" in g):
            out.append(Problem(where, "must have exactly one of marking_ref and lang"))
        if "marking_ref" in g:
            p = _ref_problem(where + ".marking_ref", g["marking_ref"], _MARKING, None)
            if p is None and g["marking_ref"] == obj.get("id"):
                p = Problem(where + ".marking_ref", "must not reference this object")
            if p is not None:
                out.append(p)
        if "lang" in g:
            _c_lang(obj, where + ".lang", g["lang"], out)
        selectors = g.get("selectors")
        if type(selectors) is not list or not selectors:
            out.append(Problem(where + ".selectors", "required non-empty list of selectors"))
            continue
        for j, s in enumerate(selectors):
            if type(s) is not str or not _selector_ok(s):
                out.append(Problem(f"{where}.selectors[{j}]", "is not a selector"))
            elif not _selects(obj, s):
                out.append(Problem(f"{where}.selectors[{j}]", "selects nothing in this object"))


def _c_extensions(obj: _Obj, k: str, v: Any, out: _Out) -> None:
    if type(v) is not dict or not v:
        out.append(Problem(k, "must be a non-empty dictionary"))
        return
    for name, ext in v.items():
        where = f"{k}.{name}"
        by_definition = type(name) is str and name.startswith("extension-definition--")
        if by_definition and _id_type(name) != "extension-definition":
            out.append(Problem(where, "invalid extension-definition id"))
        elif not by_definition and (
            type(name) is not str
            or not _ext_name_ok(name)
            or obj.get("type") == "marking-definition"
        ):
            out.append(Problem(where, "key must be an extension-definition id or '<name>-ext'"))
            continue
        if type(ext) is not dict or not ext:
            out.append(Problem(where, "must be a non-empty dictionary"))
            continue
        etype = ext.get("extension_type")
        if by_definition and (type(etype) is not str or etype not in _EXT_TYPES):
            out.append(Problem(where + ".extension_type", "required, an extension type"))
        _check_names(ext, ext.keys(), out, where + ".")
        _check_values(ext, out, where + ".")


def _matching(ok: Callable[[str], object], what: str) -> _Check:
    def check(obj: _Obj, k: str, v: Any, out: _Out) -> None:
        if type(v) is not str or not ok(v):
            out.append(Problem(k, "must be " + what))

    return check


def _c_pattern(obj: _Obj, k: str, v: Any, out: _Out) -> None:
    if type(v) is not str:
        out.append(Problem(k, "must be a string"))
    elif obj.get("pattern_type") == "stix" and not _stix_pattern_start(v):
        out.append(Problem(k, "is not a STIX pattern (must start with '[' or '(')"))


def _c_objects(obj: _Obj, k: str, v: Any, out: _Out) -> None:
    if type(v) is not dict or not v:
        out.append(Problem(k, "must be a non-empty dictionary of cyber-observable objects"))
        return
    for key, sco in v.items():
        if type(sco) is not dict or type(sco.get("type")) is not str:
            out.append(Problem(f"{k}.{key}", "must be an object with a 'type'"))


def _c_contents(obj: _Obj, k: str, v: Any, out: _Out) -> None:
    if type(v) is not dict or not v:
        out.append(Problem(k, "must be a non-empty dictionary"))
        return
    for lang, content in v.items():
        _c_lang(obj, f"{k}.{lang}", lang, out)
        if type(content) is not dict or not content:
            out.append(Problem(f"{k}.{lang}", "must be a non-empty dictionary"))
        else:
            _check_names(content, content.keys(), out, f"{k}.{lang}.")


def _c_extension_types(obj: _Obj, k: str, v: Any, out: _Out) -> None:
    if type(v) is not list or not all(type(e) is str and e in _EXT_TYPES for e in v):
        out.append(Problem(k, "must be a list of " + ", ".join(sorted(_EXT_TYPES))))


def _c_extension_properties(obj: _Obj, k: str, v: Any, out: _Out) -> None:
    _c_strs(obj, k, v, out)
    types = obj.get("extension_types")
    if type(types) is list and "toplevel-property-extension" not in types:
        out.append(Problem(k, "only allowed with a toplevel-property-extension"))


# --- per-type tables: "name[!]:kind", "!" = required --------------------------------------------
# kinds: s string, b boolean, l list of strings, t timestamp, k kill-chain phases, - unchecked,
# * a checker of that name in _SPECIAL, r / R identifier / list of identifiers, optionally
# "=type,type" (allowed types) or "-set" (a _FORBIDDEN set).

_KINDS: Final[dict[str, _Check]] = {
    "s": _typed(str, "a string"),
    "b": _typed(bool, "a boolean"),
    "l": _c_strs,
    "t": _c_ts,
    "k": _c_kill_chain,
    "i": _int_range(-(2**53) + 2, 2**53 - 2),  # spec 2.8: integers are signed 54-bit values
}
_SPECIAL: Final[dict[str, _Check]] = {
    "confidence": _int_range(0, 100),
    "lang": _c_lang,
    "external_references": _c_external_references,
    "granular_markings": _c_granular_markings,
    "extensions": _c_extensions,
    **dict.fromkeys(("severity", "action", "username", "phone_numbers"), _c_reserved),
    "pattern": _c_pattern,
    "latitude": _num_range(-90, 90),
    "longitude": _num_range(-180, 180),
    "precision": _num_range(),
    "number_observed": _int_range(1, 999_999_999),
    "objects": _c_objects,
    "opinion": _matching(_OPINIONS.__contains__, "one of " + ", ".join(sorted(_OPINIONS))),
    "relationship_type": _matching(_rel_type_ok, "lowercase a-z, 0-9 and hyphens"),
    "count": _int_range(0, 999_999_999),
    "contents": _c_contents,
    "extension_types": _c_extension_types,
    "extension_properties": _c_extension_properties,
    "hashes": _c_hashes,
}
_COMMON_SPEC = " ".join(
    (
        *(f"{n}:{'r' if n.endswith('_ref') else 'R'}" for n in sorted(_SPEC_REFS)),
        "created_by_ref:r=identity object_marking_refs:R=marking-definition revoked:b labels:l",
        "confidence:* lang:* external_references:* granular_markings:* extensions:*",
        "severity:* action:* username:* phone_numbers:*",
    )
)
_NAMED, _SEEN = "name!:s description:s", "first_seen:t last_seen:t"
_TYPE_SPECS: Final = {
    "attack-pattern": f"{_NAMED} aliases:l kill_chain_phases:k",
    "campaign": f"{_NAMED} aliases:l {_SEEN} objective:s",
    "course-of-action": _NAMED,
    "grouping": "name:s description:s context!:s object_refs!:R",
    "identity": f"{_NAMED} roles:l identity_class:s sectors:l contact_information:s",
    "incident": f"{_NAMED} kill_chain_phases:k",
    "indicator": "name:s description:s indicator_types:l pattern!:* pattern_type!:s "
    "pattern_version:s valid_from!:t valid_until:t kill_chain_phases:k",
    "infrastructure": f"{_NAMED} infrastructure_types:l aliases:l kill_chain_phases:k {_SEEN}",
    "intrusion-set": f"{_NAMED} aliases:l {_SEEN} goals:l resource_level:s "
    "primary_motivation:s secondary_motivations:l",
    "location": "name:s description:s latitude:* longitude:* precision:* region:s country:s "
    "administrative_area:s city:s street_address:s postal_code:s",
    "malware": f"name:s description:s malware_types:l is_family!:b aliases:l kill_chain_phases:k "
    f"{_SEEN} operating_system_refs:R=software architecture_execution_envs:l "
    "implementation_languages:l capabilities:l sample_refs:R=file,artifact",
    "malware-analysis": "product!:s version:s host_vm_ref:r=software "
    "operating_system_ref:r=software installed_software_refs:R=software "
    "configuration_version:s modules:l analysis_engine_version:s analysis_definition_version:s "
    "submitted:t analysis_started:t analysis_ended:t result_name:s result:s "
    "sample_ref:r=artifact,file,network-traffic",
    "note": "abstract:s content!:s authors:l object_refs!:R",
    "observed-data": "first_observed!:t last_observed!:t number_observed!:* objects:* "
    "object_refs:R-sdo",
    "opinion": "explanation:s authors:l opinion!:* object_refs!:R",
    "report": f"{_NAMED} report_types:l published!:t object_refs!:R",
    "threat-actor": f"{_NAMED} threat_actor_types:l aliases:l {_SEEN} roles:l goals:l "
    "sophistication:s resource_level:s primary_motivation:s secondary_motivations:l "
    "personal_motivations:l",
    "tool": f"{_NAMED} tool_types:l aliases:l kill_chain_phases:k tool_version:s",
    "vulnerability": _NAMED,
    "relationship": "relationship_type!:* description:s source_ref!:r-endpoint "
    "target_ref!:r-endpoint start_time:t stop_time:t",
    "sighting": f"description:s {_SEEN} count:* sighting_of_ref!:r-endpoint "
    "observed_data_refs:R=observed-data where_sighted_refs:R=identity,location summary:b",
    "marking-definition": "spec_version!:- created!:- name:s definition_type:s",
    "language-content": "object_ref!:r-lc object_modified:t contents!:*",
    "extension-definition": f"created_by_ref!:r=identity {_NAMED} schema!:s version!:s "
    "extension_types!:* extension_properties:*",
    **SCO_SPECS,
}


def _kind(name: str, kind: str) -> _Check | None:
    if kind[0] in "rR":
        allowed = frozenset(kind[2:].split(",")) if kind[1:2] == "=" else None
        forbidden = _FORBIDDEN[kind[2:]] if kind[1:2] == "-" else None
        return _ref(kind[0] == "R", allowed, forbidden)
    return None if kind == "-" else _SPECIAL[name] if kind == "*" else _KINDS[kind]


def _parse(spec: str) -> tuple[dict[str, _Check], tuple[str, ...]]:
    checks: dict[str, _Check] = {}
    required: list[str] = []
    for token in spec.split():
        name, _, kind = token.partition(":")
        if name.endswith("!"):
            name = name[:-1]
            required.append(name)
        check = _kind(name, kind)
        if check is not None:
            checks[name] = check
    return checks, tuple(required)


_COMMON: Final = _parse(_COMMON_SPEC)[0]
_TABLES: Final[dict[str, dict[str, _Check]]] = {}
_REQUIRED: Final[dict[str, tuple[str, ...]]] = {}
for _t, _spec in _TYPE_SPECS.items():
    _checks, _REQUIRED[_t] = _parse(_spec)
    _TABLES[_t] = {**_COMMON, **_checks}

# (later, earlier, strictly later?) timestamp pairs
_ORDER: Final[dict[str, tuple[tuple[str, str, bool], ...]]] = {
    **dict.fromkeys(
        _words("campaign infrastructure intrusion-set malware threat-actor sighting"),
        (("last_seen", "first_seen", False),),
    ),
    "indicator": (("valid_until", "valid_from", True),),
    "observed-data": (("last_observed", "first_observed", False),),
    "relationship": (("stop_time", "start_time", True),),
}

# --- whole-object rules per type -------------------------------------------------------------


def _post_location(obj: _Obj, out: _Out) -> None:
    lat, lon = "latitude" in obj, "longitude" in obj
    if lat != lon:
        out.append(Problem("longitude" if lat else "latitude", "latitude needs longitude too"))
    if not (lat and lon) and "region" not in obj and "country" not in obj:
        out.append(Problem("", "needs region, country, or latitude and longitude"))
    if "precision" in obj and not (lat and lon):
        out.append(Problem("precision", "requires latitude and longitude"))


def _post_malware(obj: _Obj, out: _Out) -> None:
    if obj.get("is_family") is True and "name" not in obj:
        out.append(Problem("name", "required when is_family is true"))


def _post_marking_definition(obj: _Obj, out: _Out) -> None:
    dtype, definition, oid = obj.get("definition_type"), obj.get("definition"), obj.get("id")
    if "extensions" not in obj:
        for name in ("definition_type", "definition"):
            if name not in obj:
                out.append(Problem(name, "required unless extensions are used"))
    if "definition" in obj and type(definition) is not dict:
        out.append(Problem("definition", "must be an object"))
    elif dtype == "statement" and type(definition) is dict:
        if type(definition.get("statement")) is not str:
            out.append(Problem("definition.statement", "required string for a statement"))
    elif dtype == "tlp":
        colour = _TLP1.get(oid) if type(oid) is str else None
        if colour is None:
            out.append(Problem("id", "a tlp marking-definition must be a predefined TLP 1.0 id"))
            return
        name = "TLP:" + colour.upper()
        fixed = {"name": name, "created": "2017-01-20T00:00:00.000Z", "definition": {"tlp": colour}}
        for prop, value in fixed.items():
            if obj.get(prop) != value:
                out.append(Problem(prop, f"must be {value!r} in the {name} marking-definition"))
        for prop in sorted(obj.keys() - _TLP1_PROPS, key=str):
            out.append(Problem(str(prop), "not allowed on a TLP 1.0 marking-definition"))
    refs = obj.get("object_marking_refs")
    if type(refs) is list and oid in refs:
        out.append(Problem("object_marking_refs", "must not reference this marking-definition"))


def _post_artifact(obj: _Obj, out: _Out) -> None:
    if "url" in obj and "hashes" not in obj:
        out.append(Problem("hashes", "required when url is present"))


_POST: Final[dict[str, Callable[[_Obj, _Out], None]]] = {
    "artifact": _post_artifact,
    "location": _post_location,
    "malware": _post_malware,
    "marking-definition": _post_marking_definition,
}
# type -> (properties, how many of them must be present)
_GROUPS: Final = {
    "malware-analysis": (("result", "analysis_sco_refs"), "at least one"),
    "observed-data": (("object_refs", "objects"), "exactly one"),
    **SCO_GROUPS,
}

# --- property names and values ---------------------------------------------------------------

# Valid names that need no per-object name check (a cache: names are a small, closed-ish set).
_good_names: set[str] = {"id", "type", "spec_version", "created", "modified", *_COMMON}
for _table in _TABLES.values():
    _good_names.update(_table)


def _check_names(obj: _Obj, names: Iterable[Any], out: _Out, prefix: str = "") -> None:
    """Property-name rules, and the value rules of ``*_bin`` and ``*_hex`` properties."""
    for name in sorted(names, key=str):
        if type(name) is not str or not (_prop_ok(name) or name == "id"):
            out.append(Problem(prefix + str(name), "invalid property name: 3-250 of a-z 0-9 _"))
        elif name.endswith(("_bin", "_hex")):
            v = obj[name]
            ok = _base64_ok if name[-1] == "n" else _hex_ok
            if v is not None and (type(v) is not str or not ok(v)):
                out.append(Problem(prefix + name, f"must be {name[-3:].replace('bin', 'base64')}"))
        elif not prefix and len(_good_names) < 16384:
            _good_names.add(name)


def _check_values(obj: _Obj, out: _Out, prefix: str = "") -> None:
    for k, v in obj.items():
        if v is None:
            out.append(Problem(prefix + str(k), "must not be null"))
        elif type(v) is list and not v:
            out.append(Problem(prefix + str(k), "must not be an empty list"))


_by_property: Final = attrgetter("property")
_valid_types: set[str] = {*_TABLES}


# --- the entry point -------------------------------------------------------------------------


def check_object(obj: object) -> list[Problem]:
    """MUST-level problems of one STIX 2.1 object; ``[]`` when it is valid."""
    if not isinstance(obj, dict):
        return [Problem("", "a STIX object must be a JSON object")]
    out: _Out = []
    t = obj.get("type")
    if type(t) is not str:  # (a null is reported with the other nulls)
        if t is not None or "type" not in obj:
            out.append(Problem("type", "required string" if t is None else "must be a string"))
        t = ""
    elif t not in _valid_types:
        if t == "bundle":
            return [Problem("type", "a bundle is a container, not a STIX object")]
        if not (3 <= len(t) <= 250 and _type_ok(t)):
            out.append(Problem("type", "must be 3-250 of a-z, 0-9 and single inner hyphens"))
            t = ""
        elif t == "action":
            out.append(Problem("type", "'action' is a reserved type name"))
        elif len(_valid_types) < 4096:
            _valid_types.add(t)

    oid = obj.get("id")
    if oid is None:
        if "id" not in obj:
            out.append(Problem("id", "required string"))
    elif type(oid) is not str or not 41 <= len(oid) <= 288 or _id_ok(oid) is None:
        out.append(Problem("id", _BAD_ID))
    elif t and (len(oid) != len(t) + 38 or not oid.startswith(t)):
        out.append(Problem("id", f"must start with the object's type: '{t}--'"))
    elif t in _UUID4_UNLESS and oid[-22] != "4" and not any(p in obj for p in _UUID4_UNLESS[t]):
        out.append(Problem("id", f"a {t} without ID-contributing properties needs a UUIDv4"))

    created, modified = obj.get("created"), obj.get("modified")
    core = t in _CORE or (
        t not in _SCO and t != "marking-definition" and ("created" in obj or "modified" in obj)
    )
    spec_version = obj.get("spec_version")
    if spec_version is None:
        if core and "spec_version" not in obj:
            out.append(Problem("spec_version", "required: '2.1'"))
    elif spec_version != "2.1":
        out.append(Problem("spec_version", "must be '2.1'"))
    c = m = None
    if created is not None:
        c = _ts("created", created, out, core)
    elif core and "created" not in obj:
        out.append(Problem("created", "required timestamp"))
    if modified is not None:
        m = c if modified == created and c is not None else _ts("modified", modified, out, core)
    elif core and "modified" not in obj:
        out.append(Problem("modified", "required timestamp"))
    if c is not None and m is not None and m < c:
        out.append(Problem("modified", "must be later than or equal to created"))

    keys = obj.keys()
    if not _good_names.issuperset(keys):  # (no set built in the usual case)
        _check_names(obj, keys - _good_names, out)
    # One pass over the properties: nulls and empty lists noted, the others checked by kind.
    # (It replaced ``None in values``, ``[] in values`` and a set intersection with the type's
    # table, which cost 2.1 of 6.0 µs on an ATT&CK relationship.)
    table = _TABLES.get(t, _COMMON)
    found: _Out = []
    empty = False
    for k, v in obj.items():
        if v is None or (type(v) is list and not v):
            empty = True
        else:
            check = table.get(k)
            if check is not None:
                check(obj, k, v, found)
    if empty:
        _check_values(obj, out)
    out += sorted(found, key=_by_property) if len(found) > 1 else found

    for name in _REQUIRED.get(t, ()):
        if name not in obj:
            out.append(Problem(name, "required property missing"))
    post = _POST.get(t)
    if post is not None:
        post(obj, out)
    if t in _GROUPS:
        props, how = _GROUPS[t]
        present = sum(p in obj for p in props)
        if present == 0 or (present > 1 and how == "exactly one"):
            out.append(Problem(props[0], f"needs {how} of {', '.join(props)}"))
    for later, earlier, strict in _ORDER.get(t, ()):
        if later in obj and earlier in obj:
            a, b = _micros_or_none(obj[later]), _micros_or_none(obj[earlier])
            if a is not None and b is not None and (a <= b if strict else a < b):
                rel = "later than" if strict else "later than or equal to"
                out.append(Problem(later, f"must be {rel} {earlier}"))
    return out
