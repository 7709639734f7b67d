"""Distribution on the write path: stamping, groups expanded per version, originator-only edits."""

from __future__ import annotations

import uuid

import pytest
from cryptography.hazmat.primitives import serialization
from fastapi.testclient import TestClient
from test_api import bundle
from test_store import indicator

from tansiq import audit
from tansiq.accounts.store import create_account, create_token
from tansiq.api.app import create_app
from tansiq.federation.signing import sign, signature_of, verify
from tansiq.node import Node, partner_identity_id
from tansiq.sharing import (
    SharingError,
    add_group,
    add_partner,
    expand,
    set_group_members,
    tlp_level,
)
from tansiq.stix.extensions import DISTRIBUTION_EXT, SIGNATURE_EXT, set_distribution
from tansiq.stix.markings import TLP_IDS
from tansiq.stix.timestamps import to_micros
from tansiq.store.ingest import ingest


@pytest.fixture
def fed(node: Node) -> Node:
    for code in ("DZ", "TN", "LY"):
        add_partner(node.db, code, code, partner_identity_id(code))
    add_group(node.db, "trilateral", ["DZ", "EG", "TN"], "EG")
    return node


def public_pem(node: Node) -> str:
    return (
        node.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def ext(obj: dict) -> dict:  # type: ignore[type-arg]
    return obj["extensions"][DISTRIBUTION_EXT]  # type: ignore[no-any-return]


def test_default_is_originator_only_and_params_apply(fed: Node, client: TestClient) -> None:
    client.post("/api/bundles", json=bundle(indicator(1)))
    assert ext(client.get(f"/api/objects/{indicator(1)['id']}").json()) == {
        "extension_type": "property-extension",
        "origin": "EG",
        "partners": ["EG"],
    }
    r = client.post(
        "/api/bundles",
        params={"distribution": "trilateral", "tlp": "amber"},
        json=bundle(indicator(2)),
    )
    assert r.status_code == 201
    got = client.get(f"/api/objects/{indicator(2)['id']}").json()
    assert ext(got)["partners"] == ["DZ", "EG", "TN"]
    assert got["object_marking_refs"][0] == TLP_IDS["amber"]
    r = client.post("/api/bundles", params={"distribution": "all"}, json=bundle(indicator(3)))
    assert ext(client.get(f"/api/objects/{indicator(3)['id']}").json())["partners"] == [
        "DZ",
        "EG",
        "LY",
        "TN",
    ]
    r = client.post("/api/bundles", params={"distribution": "nobody"}, json=bundle(indicator(4)))
    assert r.status_code == 400 and "nobody" in r.json()["detail"]
    r = client.post("/api/bundles", params={"tlp": "purple"}, json=bundle(indicator(4)))
    assert r.status_code == 400


def test_group_expanded_at_version_time(fed: Node, client: TestClient) -> None:
    client.post("/api/bundles", params={"distribution": "trilateral"}, json=bundle(indicator(5)))
    set_group_members(fed.db, "trilateral", ["DZ", "EG", "TN", "LY"], "EG")
    assert ext(client.get(f"/api/objects/{indicator(5)['id']}").json())["partners"] == [
        "DZ",
        "EG",
        "TN",
    ]


def test_foreign_objects_cannot_be_republished(fed: Node, client: TestClient) -> None:
    theirs = indicator(6)
    theirs["created_by_ref"] = partner_identity_id("DZ")
    r = client.post("/api/bundles", json=bundle(theirs))
    assert r.status_code == 422 and "only DZ's node" in r.text
    forged = set_distribution(indicator(7), "TN", ["EG", "TN"])
    assert client.post("/api/bundles", json=bundle(forged)).status_code == 422


def test_only_partner_codes_are_stored_in_a_distribution(fed: Node, client: TestClient) -> None:
    """A distribution already on a re-imported object keeps its codes only if each is a partner
    code: "DZ,TN" or "dz" would be matched by the policy's LIKE as DZ (and TN)."""
    for n, odd in enumerate(("DZ,TN", "dz", "%", "_Z", "D Z")):
        obj = set_distribution(indicator(20 + n), "EG", ["EG", odd])
        r = client.post("/api/bundles", json=bundle(obj))
        assert r.status_code == 422 and "partner codes" in r.text, (odd, r.text)
    for n in range(5):
        assert (
            fed.db.fetchone("SELECT 1 FROM objects WHERE id = ?", (indicator(20 + n)["id"],))
            is None
        )


def test_change_distribution_by_originator_only(fed: Node, client: TestClient) -> None:
    client.post("/api/bundles", params={"distribution": "DZ,TN"}, json=bundle(indicator(8)))
    oid = indicator(8)["id"]
    r = client.put(f"/api/objects/{oid}/distribution", params={"distribution": "TN", "tlp": "red"})
    assert r.status_code == 200, r.text
    assert ext(r.json())["partners"] == ["EG", "TN"]
    versions = client.get(f"/api/objects/{oid}", params={"versions": "all"}).json()["versions"]
    assert [ext(v)["partners"] for v in versions] == [["DZ", "EG", "TN"], ["EG", "TN"]]
    # an object that TN's node originated and released to EG: EG can read it, not change it
    theirs = set_distribution(
        {**indicator(9), "created_by_ref": partner_identity_id("TN")}, "TN", ["EG", "TN"]
    )
    ingest(fed.db, [theirs], prepare=lambda o: o)
    r = client.put(f"/api/objects/{theirs['id']}/distribution", params={"distribution": "all"})
    assert r.status_code == 403
    entries = audit.page(fed.db, None, 1000)
    assert any(e["action"] == "distribution_changed" and e["target"] == oid for e in entries)


def test_reader_403_where_visible_404_where_not(fed: Node, client: TestClient) -> None:
    create_account(fed.db, "reader1", "reader-password-1", "reader", "EG")
    token = create_token(fed.db, "reader1", "t")
    client.post("/api/bundles", json=bundle(indicator(10)))
    with TestClient(
        create_app(fed.settings, fed), headers={"Authorization": f"Bearer {token}"}
    ) as c:
        r = c.put(
            f"/api/objects/{indicator(10)['id']}/distribution", params={"distribution": "all"}
        )
        assert r.status_code == 403
        r = c.put(
            f"/api/objects/indicator--{uuid.uuid4()}/distribution", params={"distribution": "all"}
        )
        assert r.status_code == 404
        assert c.get("/api/audit").status_code == 403
        assert c.post("/api/bundles", json=bundle(indicator(11))).status_code == 403


def test_reads_writes_and_exports_are_audited(fed: Node, client: TestClient) -> None:
    client.post("/api/bundles", json=bundle(indicator(12)))
    client.get(f"/api/objects/{indicator(12)['id']}")
    client.get("/api/export")
    actions = [
        e["action"] for e in client.get("/api/audit", params={"limit": 1000}).json()["entries"]
    ]
    for action in ("objects_written", "object_read", "export", "token_used"):
        assert action in actions
    assert audit.verify(fed.db).ok


def test_a_write_names_the_versions_it_stored_in_its_audit_entry(
    fed: Node, client: TestClient
) -> None:
    """objects_written says which versions the write stored (its date_added range, as TAXII
    reads them), not only how many, so a reviewer can tell who wrote an object."""
    client.post("/api/bundles", json=bundle(indicator(50), indicator(51)))
    client.post("/api/bundles", json=bundle(indicator(52)))
    client.post("/api/bundles", json=bundle(indicator(52)))  # stores nothing: no range
    written = [e for e in audit.page(fed.db, None, 1000) if e["action"] == "objects_written"]
    assert [e["detail"]["stored"] for e in written] == [2, 1, 0]
    assert "added" not in written[2]["detail"]
    for entry, ids in zip(written, ([50, 51], [52]), strict=False):
        first, last = (to_micros(t) for t in entry["detail"]["added"])
        rows = fed.db.fetchall(
            "SELECT id FROM objects WHERE added BETWEEN ? AND ? ORDER BY id", (first, last)
        )
        assert [r[0] for r in rows] == [indicator(i)["id"] for i in ids]


def test_kept_distribution_names_only_registered_partners(fed: Node) -> None:
    """A distribution already on an ingested object may not name a code that is no partner yet:
    the partner registered under that code later would see what was never released to it
    ("all" is expanded to the partners registered at the time; a forged code must not do
    better)."""
    obj = set_distribution(indicator(30), "EG", ["EG", "ZZ"])
    create_account(fed.db, "ea", "editor-password-1", "editor", "EG")
    token = create_token(fed.db, "ea", "t")
    with TestClient(
        create_app(fed.settings, fed), headers={"Authorization": f"Bearer {token}"}
    ) as c:
        r = c.post("/api/bundles", json=bundle(obj))
    assert r.status_code == 422 and "'ZZ'" in r.text, r.text
    add_partner(fed.db, "ZZ", "ZZ", partner_identity_id("ZZ"))
    create_account(fed.db, "zz1", "reader-password-1", "reader", "ZZ")
    token = create_token(fed.db, "zz1", "t")
    with TestClient(
        create_app(fed.settings, fed), headers={"Authorization": f"Bearer {token}"}
    ) as c:
        assert c.get(f"/api/objects/{obj['id']}").status_code == 404


def test_tlp_replaces_a_tlp_1_marking_too(fed: Node, client: TestClient) -> None:
    """--tlp / tlp= replaces any other TLP marking: a TLP:RED object must not keep the
    TLP 1.0 TLP:WHITE marking it came with (a TLP 1.0 reader would take it as unrestricted)."""
    white = "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9"
    other = "marking-definition--1d2f0a6e-0f47-4bd1-9e3e-0c6b1c4c3f0a"
    obj = indicator(31, object_marking_refs=[white, other])
    assert client.post("/api/bundles", params={"tlp": "red"}, json=bundle(obj)).status_code == 201
    got = client.get(f"/api/objects/{obj['id']}").json()
    assert got["object_marking_refs"] == [TLP_IDS["red"], other]


@pytest.mark.parametrize(
    ("given", "level"),
    [
        ("red", "red"),
        ("RED", "red"),
        ("Red", "red"),
        ("tlp:red", "red"),
        ("TLP:RED", "red"),
        (" TLP:Amber+Strict ", "amber+strict"),
        ("tlp:CLEAR", "clear"),
        ("Green", "green"),
    ],
)
def test_tlp_is_read_in_any_case_with_or_without_tlp_prefix(given: str, level: str) -> None:
    assert tlp_level(given) == level


@pytest.mark.parametrize("given", ["purple", "tlp:white", "TLP:", "", "amber strict", "tlp-red"])
def test_unknown_tlp_lists_the_choices(given: str) -> None:
    with pytest.raises(SharingError, match=r"clear, green, amber, amber\+strict, red"):
        tlp_level(given)


def test_api_tlp_parameters_ignore_case(fed: Node, client: TestClient) -> None:
    r = client.post("/api/bundles", params={"tlp": "TLP:AMBER"}, json=bundle(indicator(40)))
    assert r.status_code == 201, r.text
    got = client.get(f"/api/objects/{indicator(40)['id']}").json()
    assert got["object_marking_refs"] == [TLP_IDS["amber"]]
    written = [e for e in audit.page(fed.db, None, 1000) if e["action"] == "objects_written"]
    assert written[-1]["detail"]["tlp"] == "amber"  # the level, as the marking names it
    r = client.put(
        f"/api/objects/{indicator(40)['id']}/distribution",
        params={"distribution": "own", "tlp": "Red"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["object_marking_refs"] == [TLP_IDS["red"]]
    r = client.post("/api/bundles", params={"tlp": "TLP:PURPLE"}, json=bundle(indicator(41)))
    assert r.status_code == 400
    assert "clear, green, amber, amber+strict, red" in r.json()["detail"]


def test_distribution_names_partners_and_groups_in_any_case(fed: Node) -> None:
    """`--distribution eg` / `distribution=eg` was refused as an unknown partner while
    `partner suspend eg` and `group add --members eg` took the code in any case; the refusal
    did not say which names there are.  An exact match still comes first."""
    assert expand(fed.db, ["dz", "Trilateral"], "EG") == ["DZ", "EG", "TN"]
    assert expand(fed.db, ["OWN"], "EG") == ["EG"]
    assert expand(fed.db, ["All"], "EG") == ["DZ", "EG", "LY", "TN"]
    add_group(fed.db, "ly", ["EG", "DZ"], "EG")  # a group named like a partner code
    assert expand(fed.db, ["ly"], "EG") == ["DZ", "EG"]
    assert expand(fed.db, ["LY"], "EG") == ["EG", "LY"]
    with pytest.raises(SharingError) as exc:
        expand(fed.db, ["zz"], "EG")
    assert "DZ, EG, LY, TN" in str(exc.value) and "trilateral" in str(exc.value)


def test_a_group_named_like_a_code_never_stores_a_lower_case_code(fed: Node) -> None:
    """A partner DZ and a group dz: `dz` (exact) is the group, `DZ` the partner, `Dz` the group
    (group names are lowercase); with no such group `dz` is partner DZ.  The partners column
    always holds capitals (the policy matches ``LIKE '%,DZ,%'``), so a reader of DZ sees exactly
    what was released to DZ, on either engine."""
    add_group(fed.db, "dz", ["EG", "TN"], "EG")
    create_account(fed.db, "ea", "editor-password-1", "editor", "EG")
    create_account(fed.db, "dz1", "reader-password-1", "reader", "DZ")
    editor, reader = create_token(fed.db, "ea", "t"), create_token(fed.db, "dz1", "t")
    cases = [("dz", ",EG,TN,", 404), ("DZ", ",DZ,EG,", 200), ("Dz", ",EG,TN,", 404)]
    with TestClient(create_app(fed.settings, fed)) as c:
        for n, (spec, column, status) in enumerate(cases, 40):
            obj = indicator(n)
            r = c.post(
                "/api/bundles",
                params={"distribution": spec},
                json=bundle(obj),
                headers={"Authorization": f"Bearer {editor}"},
            )
            assert r.status_code == 201, r.text
            row = fed.db.fetchone("SELECT partners FROM objects WHERE id = ?", (obj["id"],))
            assert row is not None and row[0] == column, (spec, row)
            got = c.get(f"/api/objects/{obj['id']}", headers={"Authorization": f"Bearer {reader}"})
            assert got.status_code == status, (spec, got.text)
        fed.db.execute("DELETE FROM group_members WHERE group_name = 'dz'")
        fed.db.execute("DELETE FROM sharing_groups WHERE name = 'dz'")
        obj = indicator(49)
        r = c.post(
            "/api/bundles",
            params={"distribution": "dz,tn"},
            json=bundle(obj),
            headers={"Authorization": f"Bearer {editor}"},
        )
        assert r.status_code == 201, r.text
        row = fed.db.fetchone("SELECT partners FROM objects WHERE id = ?", (obj["id"],))
        assert row is not None and row[0] == ",DZ,EG,TN,", row
        got = c.get(f"/api/objects/{obj['id']}", headers={"Authorization": f"Bearer {reader}"})
        assert got.status_code == 200


@pytest.mark.parametrize("how", ["narrowed", "posted"])
def test_a_version_released_to_no_partner_carries_no_signature(
    fed: Node, client: TestClient, how: str
) -> None:
    """Versions released to no one but this node are not signed, but one made from a signed
    version (a distribution narrowed to this node alone) kept that version's signature: made
    over another ``modified`` and distribution, it verified under no key.  So did one posted
    with a signature extension, which this node never checked (another's, forged)."""
    oid = indicator(30)["id"]
    client.post("/api/bundles", params={"distribution": "DZ"}, json=bundle(indicator(30)))
    signed = client.get(f"/api/objects/{oid}").json()
    verify(signed, public_pem(fed), signer="EG")
    if how == "narrowed":
        r = client.put(f"/api/objects/{oid}/distribution", params={"distribution": "own"})
        assert r.status_code == 200, r.text
    else:
        other = {
            **signed,
            "id": indicator(31)["id"],
            "extensions": {SIGNATURE_EXT: signature_of(signed)},
        }
        assert client.post("/api/bundles", json=bundle(other)).status_code == 201
        oid = other["id"]
    latest = client.get(f"/api/objects/{oid}").json()
    assert ext(latest)["partners"] == ["EG"]
    assert signature_of(latest) is None, latest["extensions"]


def test_a_version_stored_with_a_signature_before_is_unchanged_when_imported_again(
    fed: Node, client: TestClient
) -> None:
    """A store written before own-only versions lost their signature holds some with one;
    importing such a version again (a re-import of an export) is no conflict: it is the
    version held, unchanged."""
    signed = sign(set_distribution(indicator(32), "EG", ["EG"]), fed.private_key(), "EG")
    ingest(fed.db, [signed], prepare=lambda o: o)  # as stored before
    r = client.post("/api/bundles", json=bundle(signed))
    assert r.status_code == 201, r.text
    assert r.json()["unchanged"] == 1
