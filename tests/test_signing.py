"""Ed25519 signatures on object versions: canonical form, tampering, and the receive hook."""

from __future__ import annotations

import base64
import copy
import json
import random
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import SHARED_FILES, STIX_DIR
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from fastapi.testclient import TestClient

from tansiq.federation.signing import (
    SignatureError,
    canonical_bytes,
    load_public_key,
    receive_hook,
    sign,
    sign_hook,
    signature_of,
    verify,
)
from tansiq.node import Node, partner_identity_id
from tansiq.sharing import Partner, add_partner, local_stamp
from tansiq.stix.extensions import DISTRIBUTION_EXT, SIGNATURE_EXT, set_distribution
from tansiq.stix.timestamps import to_micros
from tansiq.store.ingest import IngestError, ObjectRejected, ingest

STIX_FILES = SHARED_FILES
ICS = STIX_DIR / "ics-attack-18.1.json"

B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
KEYS = {code: Ed25519PrivateKey.generate() for code in ("DZ", "EG", "TN")}


def pem(code: str) -> str:
    return (
        KEYS[code]
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def partner(code: str, public_key: str | None = None) -> Partner:
    key = pem(code) if public_key is None else public_key
    return Partner(code, code, partner_identity_id(code), key, "")


def objects_of(path: Path) -> list[dict[str, Any]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    return list(data["objects"]) if data.get("type") == "bundle" else [data]


def shuffled(value: Any, rng: random.Random) -> Any:
    """The same JSON value with every object's keys in a random order."""
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {k: shuffled(v, rng) for k, v in items}
    if isinstance(value, list):
        return [shuffled(v, rng) for v in value]
    return value


def indicator(
    origin: str = "DZ",
    partners: tuple[str, ...] = ("DZ", "EG"),
    creator: str | None = "DZ",
    modified: str = "2026-02-20T10:00:00.000Z",
    n: int = 1,
    **extra: Any,
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "type": "indicator",
        "spec_version": "2.1",
        "id": f"indicator--00000000-0000-4000-8000-{n:012d}",
        "created": "2026-02-20T10:00:00.000Z",
        "modified": modified,
        "pattern": "[ipv4-addr:value = '198.51.100.1']",
        "pattern_type": "stix",
        "valid_from": "2026-02-20T10:00:00Z",
        **extra,
    }
    if creator is not None:
        obj["created_by_ref"] = partner_identity_id(creator)
    return set_distribution(obj, origin, list(partners))


RICH: dict[str, Any] = {
    "type": "malware",
    "spec_version": "2.1",
    "id": "malware--6b616fc1-1505-48e3-8b2c-0d19337bff38",
    "created": "2026-01-01T00:00:00.000Z",
    "modified": "2026-01-02T03:04:05.123456Z",
    "name": "برمجية خبيثة «الصقر» — نسخة ٢",
    "description": 'Arabic, Tifinagh ⵜⴰⵎⴰⵣⵖⴰ, emoji 🛰️, escapes " \\ \n\t\u0001 and é',
    "is_family": False,
    "x_whole": 2.0,
    "confidence": 85,
    "x_scores": [0.1, 1.0, -0.0, 1e21, 1e-7, 3.141592653589793, 2**53 - 1, 5e-324],
    "extensions": {
        "x-vendor-ext": {"nested": {"deeper": {"list": [{"b": 1, "a": [None, True]}]}}},
        "extension-definition--d83fce45-ef58-4c6c-a3f4-1fbc32e98c6e": {
            "extension_type": "property-extension",
            "rank": 2.5,
            "تسمية": "قيمة",
        },
    },
}


def test_round_trip_on_shared_files() -> None:
    assert STIX_FILES, f"no STIX files in {STIX_DIR}"
    key, public = KEYS["EG"], pem("EG")
    rng = random.Random(8785)
    total = 0
    for path in STIX_FILES:
        for obj in objects_of(path):
            before = copy.deepcopy(obj)
            signed = sign(obj, key, "EG")
            assert obj == before  # the input is not changed
            verify(signed, public)
            verify(signed, public, signer="EG")
            assert canonical_bytes(signed) == canonical_bytes(obj)
            # Key order and whitespace do not matter: re-serialise, parse, shuffle, re-verify.
            text = json.dumps(shuffled(signed, rng), indent=rng.choice([None, 1, 4]))
            verify(json.loads(text), public)
            verify(orjson.loads(orjson.dumps(signed)), public)
            total += 1
    assert total > 1900


def test_rich_object_round_trip() -> None:
    signed = sign(set_distribution(RICH, "EG", ["EG", "TN"]), KEYS["EG"], "EG")
    verify(signed, pem("EG"))
    text = json.dumps(shuffled(signed, random.Random(1)), ensure_ascii=False, indent=2)
    verify(json.loads(text), pem("EG"))
    verify(json.loads(json.dumps(signed, ensure_ascii=True)), pem("EG"))
    # Another spelling of the same JSON number is the same (RFC 8785 writes 2.0 and 2 as "2").
    text = json.dumps(signed)
    for old, new in (('"x_whole": 2.0', '"x_whole": 2'), ("1e+21", "1000000000000000000000.0")):
        assert old in text
        text = text.replace(old, new)
    verify(json.loads(text), pem("EG"))
    assert "الصقر".encode() in canonical_bytes(signed)  # UTF-8, not \u escapes


def test_empty_or_absent_extensions_and_resigning() -> None:
    plain = {k: v for k, v in RICH.items() if k != "extensions"}
    for before in (plain, {**plain, "extensions": {}}):
        signed = sign(before, KEYS["EG"], "EG")
        assert list(signed["extensions"]) == [SIGNATURE_EXT]
        verify(signed, pem("EG"))
        assert canonical_bytes(signed) == canonical_bytes(plain)
        assert b"extensions" not in canonical_bytes(signed)
    resigned = sign(sign(RICH, KEYS["TN"], "TN"), KEYS["EG"], "EG")
    verify(resigned, pem("EG"), signer="EG")
    with pytest.raises(SignatureError):
        verify(resigned, pem("TN"))


def test_unrepresentable_values_are_refused() -> None:
    for bad in (2**53, float("nan"), float("inf")):
        with pytest.raises(SignatureError, match="RFC 8785"):
            sign({**RICH, "x_n": bad}, KEYS["EG"], "EG")


def _tampered(signed: dict[str, Any]) -> dict[str, dict[str, Any]]:
    def edit(change: Any) -> dict[str, Any]:
        out = copy.deepcopy(signed)
        change(out)
        return out

    def sig(out: dict[str, Any]) -> dict[str, Any]:
        return out["extensions"][SIGNATURE_EXT]  # type: ignore[no-any-return]

    b64 = sig(signed)["signature"]
    raw = base64.urlsafe_b64decode(b64 + "==")
    # The last of 86 characters carries 2 bits of the signature and 4 zero bits: set one.
    loose_last = B64URL[B64URL.index(b64[-1]) | 1]
    flipped = ("A" if b64[10] != "A" else "B").join((b64[:10], b64[11:]))
    return {
        "property": edit(lambda o: o.update(pattern="[ipv4-addr:value = '198.51.100.2']")),
        "added property": edit(lambda o: o.update(x_note="added")),
        "removed property": edit(lambda o: o.pop("valid_from")),
        "widened partners": edit(
            lambda o: o["extensions"][DISTRIBUTION_EXT].update(partners=["DZ", "EG", "TN"])
        ),
        "changed origin": edit(lambda o: o["extensions"][DISTRIBUTION_EXT].update(origin="EG")),
        "stripped distribution": edit(lambda o: o["extensions"].pop(DISTRIBUTION_EXT)),
        "stripped signature": edit(lambda o: o["extensions"].pop(SIGNATURE_EXT)),
        "wrong alg": edit(lambda o: sig(o).update(alg="EdDSA")),
        "padded": edit(lambda o: sig(o).update(signature=b64 + "==")),
        "standard base64": edit(lambda o: sig(o).update(signature=base64.b64encode(raw).decode())),
        "truncated": edit(lambda o: sig(o).update(signature=b64[:-2])),
        "non-canonical bits": edit(lambda o: sig(o).update(signature=b64[:-1] + loose_last)),
        "flipped signature": edit(lambda o: sig(o).update(signature=flipped)),
        "not a string": edit(lambda o: sig(o).update(signature=None)),
        "extra member": edit(lambda o: sig(o).update(note="unsigned data")),
        "extension type": edit(lambda o: sig(o).update(extension_type="new-sdo")),
    }


def test_any_tampering_fails() -> None:
    signed = sign(indicator(), KEYS["DZ"], "DZ")
    verify(signed, pem("DZ"), signer="DZ")
    hook = receive_hook("EG", partner("DZ"), lambda _id: None)
    assert hook(signed) is signed
    cases = _tampered(signed)
    assert len(cases) == 16
    for name, bad in cases.items():
        with pytest.raises(SignatureError):
            verify(bad, pem("DZ"))
            pytest.fail(f"{name}: verified")
        with pytest.raises(ObjectRejected):
            hook(bad)
            pytest.fail(f"{name}: accepted")
    # signer names which partner signed; the verifying key is the receiver's choice, so a changed
    # signer fails whenever the expected signer is given (always, in receive_hook).
    relabelled = copy.deepcopy(signed)
    relabelled["extensions"][SIGNATURE_EXT]["signer"] = "TN"
    with pytest.raises(SignatureError, match="signed by TN, expected DZ"):
        verify(relabelled, pem("DZ"), signer="DZ")
    with pytest.raises(SignatureError, match="bad signature"):
        verify(relabelled, pem("TN"), signer="TN")
    with pytest.raises(ObjectRejected, match="signed by TN"):
        hook(relabelled)


def test_error_reasons() -> None:
    signed = sign(indicator(), KEYS["DZ"], "DZ")
    cases = _tampered(signed)
    for name, pattern in {
        "stripped signature": "unsigned",
        "wrong alg": "unsupported alg 'EdDSA'",
        "padded": "base64url",
        "non-canonical bits": "canonical base64url",
        "property": "bad signature",
        "widened partners": "bad signature",
        "extra member": "unexpected member",
    }.items():
        with pytest.raises(SignatureError, match=pattern):
            verify(cases[name], pem("DZ"))
    with pytest.raises(SignatureError, match="not a PEM"):
        verify(signed, "garbage")
    x25519 = (
        X25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(SignatureError, match="not an Ed25519"):
        verify(signed, x25519.decode())


def test_receive_hook_rejections() -> None:
    held: dict[str, int] = {}
    hook = receive_hook("EG", partner("DZ"), held.get)

    def rejected(obj: dict[str, Any], prop: str, reason: str) -> None:
        with pytest.raises(ObjectRejected, match=reason) as info:
            hook(obj)
        assert info.value.prop == prop, info.value.prop

    sig_prop, dist_prop = f"extensions.{SIGNATURE_EXT}", f"extensions.{DISTRIBUTION_EXT}"
    valid = sign(indicator(), KEYS["DZ"], "DZ")
    assert hook(valid) is valid
    rejected(indicator(), sig_prop, "unsigned")
    rejected(sign(indicator(), KEYS["TN"], "DZ"), f"{sig_prop}.signature", "bad signature")
    rejected(sign(indicator(), KEYS["DZ"], "TN"), f"{sig_prop}.signer", "signed by TN")
    rejected(sign(indicator(creator="TN"), KEYS["DZ"], "DZ"), "created_by_ref", "created by")
    rejected(sign(indicator(origin="TN"), KEYS["DZ"], "DZ"), f"{dist_prop}.origin", "'TN'")
    rejected(
        sign(indicator(partners=("DZ", "TN")), KEYS["DZ"], "DZ"),
        f"{dist_prop}.partners",
        "not released to EG",
    )
    # Codes the policy's LIKE would misread (a comma, lower case, a wildcard) are refused.
    for odd in ("DZ,TN", "tn", "%", "D Z"):
        rejected(
            sign(indicator(partners=("DZ", "EG", odd)), KEYS["DZ"], "DZ"),
            f"{dist_prop}.partners",
            "not partner codes",
        )
    bare = {k: v for k, v in indicator().items() if k != "extensions"}
    rejected(sign(bare, KEYS["DZ"], "DZ"), dist_prop, "no distribution")
    # Replay: an older version than the one held is refused; the same version passes.
    held[valid["id"]] = to_micros("2026-03-01T00:00:00Z")
    rejected(valid, "modified", "older")
    newer = sign(indicator(modified="2026-03-01T00:00:00.000Z"), KEYS["DZ"], "DZ")
    assert hook(newer) is newer
    # Objects without created_by_ref rely on the signed origin.
    marking = set_distribution(
        {
            "type": "marking-definition",
            "spec_version": "2.1",
            "id": "marking-definition--d1b0b6c2-5d2a-4b7e-9f3c-2a6c1e8f4b10",  # (not TLP's)
            "created": "2026-01-01T00:00:00.000Z",
            "definition_type": "statement",
            "definition": {"statement": "للتداول بين الشركاء فقط"},
        },
        "DZ",
        ["DZ", "EG"],
    )
    signed_marking = sign(marking, KEYS["DZ"], "DZ")
    assert hook(signed_marking) is signed_marking
    relayed = set_distribution(marking, "TN", ["TN", "EG"])
    rejected(sign(relayed, KEYS["DZ"], "DZ"), f"{dist_prop}.origin", "'TN'")
    # A TLP marking definition's id (2.0, or 1.0 as here) is OASIS's: no partner's object.
    tlp1 = {**marking, "id": "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"}
    rejected(sign(tlp1, KEYS["DZ"], "DZ"), "id", "TLP marking definition")


def test_receive_hook_needs_sender_key() -> None:
    with pytest.raises(SignatureError, match="no public key"):
        receive_hook("EG", partner("DZ", ""), lambda _id: None)
    with pytest.raises(SignatureError, match="DZ's public key"):
        receive_hook("EG", partner("DZ", "-----BEGIN PUBLIC KEY-----\nAAAA\n"), lambda _id: None)


def test_sign_hook_and_receive_through_ingest(node: Node) -> None:
    key = node.private_key()
    stamp = local_stamp(node.db, node.code, node.identity_id, ["own"])
    seal = sign_hook(node.code, key)
    mine = indicator(origin="EG", partners=("EG",), creator="EG", n=10)
    ingest(node.db, [mine], prepare=lambda obj: seal(stamp(obj)))
    (text,) = node.db.fetchone("SELECT json FROM objects WHERE id = ?", (mine["id"],)) or ("",)
    stored = orjson.loads(text)
    public = node.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    verify(stored, public.decode(), signer="EG")
    with pytest.raises(ObjectRejected, match="signs only its own"):
        seal(indicator())

    add_partner(node.db, "DZ", "Algeria", partner_identity_id("DZ"), pem("DZ"))

    def held(oid: str) -> int | None:
        row = node.db.fetchone("SELECT version FROM objects WHERE id = ? AND is_latest = 1", (oid,))
        return None if row is None else int(row[0])

    hook = receive_hook(node.code, partner("DZ"), held)
    v2 = sign(indicator(n=11, modified="2026-03-01T00:00:00.000Z"), KEYS["DZ"], "DZ")
    v1 = sign(indicator(n=11), KEYS["DZ"], "DZ")
    assert ingest(node.db, [v2], prepare=hook).stored == 1
    assert ingest(node.db, [v2], prepare=hook).unchanged == 1  # identical re-send: a no-op
    with pytest.raises(IngestError) as info:
        ingest(node.db, [v1], prepare=hook)
    assert "older" in str(info.value.errors[0])
    (text,) = node.db.fetchone("SELECT json FROM objects WHERE id = ?", (v2["id"],)) or ("",)
    verify(orjson.loads(text), pem("DZ"), signer="DZ")  # stored exactly as signed


def test_rates(capsys: pytest.CaptureFixture[str]) -> None:
    objects = objects_of(ICS)
    key = KEYS["EG"]
    public_key = load_public_key(pem("EG"))
    stamped = [set_distribution(o, "EG", ["DZ", "EG", "TN"]) for o in objects]

    start = time.perf_counter()
    signed = [sign(o, key, "EG") for o in stamped]
    sign_s = time.perf_counter() - start

    start = time.perf_counter()
    for o in signed:
        verify(o, pem("EG"), signer="EG")
    verify_s = time.perf_counter() - start

    pairs = [(bytes(key.sign(data)), data) for data in (canonical_bytes(o) for o in stamped)]
    start = time.perf_counter()
    for sig, data in pairs:
        public_key.verify(sig, data)
    raw_s = time.perf_counter() - start

    start = time.perf_counter()
    for o in stamped:
        canonical_bytes(o)
    canon_s = time.perf_counter() - start

    n = len(objects)
    size = sum(len(data) for _, data in pairs)
    with capsys.disabled():
        print(
            f"\nICS ATT&CK, {n} objects, {size / n:.0f} canonical bytes each on average:\n"
            f"  sign (canonicalise + Ed25519):    {n / sign_s:9.0f} objects/s\n"
            f"  verify (canonicalise + Ed25519):  {n / verify_s:9.0f} objects/s\n"
            f"  RFC 8785 canonicalisation alone:  {n / canon_s:9.0f} objects/s\n"
            f"  raw Ed25519 verify (precomputed): {n / raw_s:9.0f} objects/s"
        )
    assert all(signature_of(o) for o in signed)


def test_a_value_nested_too_deeply_is_a_rejection_not_a_crash() -> None:
    from tansiq.federation.verify import check

    deep: object = 1
    for _ in range(1000):  # orjson reads 1024 levels: a peer can send this
        deep = [deep]
    obj = indicator("EG", ("EG", "TN"), "EG", x_deep=deep)
    with pytest.raises(ObjectRejected, match="nested too deeply"):
        sign_hook("EG", KEYS["EG"])(obj)
    hook = receive_hook("TN", partner("EG"), lambda _: None)
    signed = sign(indicator("EG", ("EG", "TN"), "EG"), KEYS["EG"], "EG")
    reason = check(dict(signed, x_deep=deep), hook)
    assert reason is not None and "nested too deeply" in reason


def test_every_shared_object_reissued_verifies_at_the_partner_after_travelling(
    node: Node, client: TestClient
) -> None:
    """What a node signs is what its partner verifies, after the store (the JSON kept exactly,
    on either engine) and TAXII: every object of every shared file re-issued as this node's
    own, and Arabic-heavy text with numbers RFC 8785 spells otherwise than the stored JSON."""
    from tansiq.federation.verify import check

    add_partner(node.db, "DZ", "Algeria", partner_identity_id("DZ"), pem("DZ"))
    mine = []
    for path in STIX_FILES:
        for obj in objects_of(path):
            if "created_by_ref" in obj:
                obj = {**obj, "created_by_ref": node.identity_id}
            mine.append(obj)
    arabic = {
        **{k: v for k, v in RICH.items() if k != "extensions"},
        "description": 'تقرير «سرت» ﷽ \u200f\u061c ٠١٢٣ ﻻ \u2028 / \\ " 🛰️ ' * 20,
        "x_numbers": [1.0, -0.0, 1e21, 1e-7, 5e-324, 2**53 - 1, 0.1 + 0.2],
    }
    result = node.ingest([*mine, arabic], distribution=["DZ"])
    assert result.stored > 1900
    public = node.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    hook = receive_hook("DZ", partner("EG", public.decode()), lambda _id: None)
    seen, params = 0, {"limit": 1000, "match[version]": "all"}
    while True:
        r = client.get(
            "/taxii2/api/collections/shared/objects/",
            params=params,
            headers={"Accept": "application/taxii+json;version=2.1"},
        )
        assert r.status_code == 200, r.text
        body = orjson.loads(r.content)
        for obj in body.get("objects", []):
            if "DZ" in obj["extensions"][DISTRIBUTION_EXT]["partners"]:
                assert check(obj, hook) is None, obj["id"]
                seen += 1
        if not body.get("more"):
            break
        params["next"] = body["next"]
    assert seen == result.stored
