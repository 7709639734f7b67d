"""TAXII 2.1 conformance points found in a review against the OASIS TAXII 2.1 specification
(OASIS Standard, 10 June 2021): each test names the section it checks."""

from __future__ import annotations

import orjson
import pytest
from fastapi.testclient import TestClient
from test_store import indicator
from test_taxii import Fed, error_ok, fed, tc  # noqa: F401 (fixtures)

from tansiq.api.app import create_app
from tansiq.api.taxii import SHARED_ID
from tansiq.api.taxii_http import accepts_taxii
from tansiq.stix.timestamps import from_micros
from tansiq.store.query import MAX_ADDED, encode_cursor

TAXII = "application/taxii+json;version=2.1"


# -- 1.6.8 media types, with RFC 9110 §12.5.1 content negotiation -----------------------------

REFUSING = [
    # the most specific media range that matches takes precedence over wider ones
    "application/taxii+json;q=0, */*",
    "application/taxii+json;q=0, application/*",
    "application/*;q=0, */*;q=1, application/taxii+json;version=2.0",
    "application/taxii+json;version=2.1;q=0, application/taxii+json",
    "application/taxii+json;version=2.1;q=0, */*",
    "*/*, application/taxii+json;version=2.1;q=0.000",
    # RFC 9110 §12.4.2: a weight is 0 to 1, three decimals at most; an item with another is
    # ignored (these were read by float(): 2, inf, 1_0 and 1e-9 allowed TAXII)
    "application/taxii+json;q=2",
    "application/taxii+json;version=2.1;q=inf",
    "application/taxii+json;q=1_0",
    "*/*;q=1e-9",
    "application/taxii+json;q=0.0001",
    "application/taxii+json;q=",
]
ALLOWING = [
    "application/taxii+json;version=2.0;q=0, application/taxii+json;version=2.1",
    "application/taxii+json;version=2.0;q=0, */*",
    "*/*;q=0, application/taxii+json",
    "application/*;q=0, application/taxii+json;version=2.1;q=0.1",
    "text/html;q=0, application/*;q=0.2",
    'application/taxii+json;version="2.1";q=0.5, application/taxii+json;q=0',
    # a malformed weight does not make its (most specific) range refuse TAXII: it is ignored
    "application/taxii+json;version=2.1;q=nan, */*",
    "application/taxii+json;q=-1, application/*;q=0.001",
    "text/html;q=2, application/taxii+json;q=1.000",
]


@pytest.mark.parametrize("accept", REFUSING)
def test_accept_refusing_taxii_2_1_by_its_most_specific_range(accept: str) -> None:
    assert not accepts_taxii(accept)


@pytest.mark.parametrize("accept", ALLOWING)
def test_accept_allowing_taxii_2_1_by_its_most_specific_range(accept: str) -> None:
    assert accepts_taxii(accept)


def test_accept_precedence_over_http(tc: TestClient) -> None:  # noqa: F811
    for accept in REFUSING:
        error_ok(tc.get("/taxii2/", headers={"Accept": accept}), 406)
    for accept in ALLOWING:
        r = tc.get("/taxii2/api/", headers={"Accept": accept})
        assert r.status_code == 200 and r.headers["content-type"] == TAXII, (accept, r.text)


# -- 4.1.1 discovery: api_roots and default ----------------------------------------------------


@pytest.mark.parametrize(
    ("public_url", "root"),
    [
        # "API Root URLs MUST NOT contain a URL query component" (nor, then, a fragment)
        ("https://eg.example/tansiq?via=proxy", "https://eg.example/tansiq/taxii2/api/"),
        ("https://eg.example/#top", "https://eg.example/taxii2/api/"),
        ("http://10.0.0.5:8400/tansiq?x=1", "/tansiq/taxii2/api/"),
        # relative ones "MUST begin with a single / character and MUST NOT begin with //"
        ("http://10.0.0.5:8400//tansiq/", "/tansiq/taxii2/api/"),
        ("https://eg.example//tansiq//", "https://eg.example/tansiq/taxii2/api/"),
    ],
)
def test_discovery_api_root_urls_have_no_query_and_one_leading_slash(
    fed: Fed,  # noqa: F811
    tc: TestClient,  # noqa: F811
    public_url: str,
    root: str,
) -> None:
    settings = fed.node.settings.with_overrides(public_url=public_url)
    with TestClient(create_app(settings, fed.node), headers=dict(tc.headers)) as c:
        body = c.get("/taxii2/").json()
    assert body["api_roots"] == [root] and body["default"] == root


def test_accept_given_on_several_header_lines_is_one_list(tc: TestClient) -> None:  # noqa: F811
    """RFC 9110 §5.3: field lines of one name are one comma-separated list: a client may send
    ``Accept`` twice and TAXII 2.1 on the second line."""
    auth = ("Authorization", tc.headers["Authorization"])
    for lines, status in (
        (["text/html", TAXII], 200),
        (["application/taxii+json;q=0", "*/*"], 406),
    ):
        headers = [auth, *(("Accept", line) for line in lines)]
        r = tc.get("/taxii2/", headers=headers)
        assert r.status_code == status, (lines, r.text)


# -- 3.4 filtering: a comma-separated list is a logical OR --------------------------------------


def test_match_values_are_ored_all_with_others_is_every_version(
    fed: Fed,  # noqa: F811
    tc: TestClient,  # noqa: F811
) -> None:
    """3.4: "If multiple values are present, the match is treated as a logical OR", and 3.4.1
    lists ``all`` among the values of ``match[version]``: ``all,last`` is every version (it
    answered 400), and a value given twice asks nothing more (400 too)."""
    v1, v2, v3 = "2016-01-01T00:00:00.000Z", "2016-02-01T00:00:00.000Z", "2016-03-01T00:00:00.000Z"
    for modified in (v1, v2, v3):
        fed.node.ingest([indicator(1, modified)])
    fed.node.ingest([indicator(2)])
    oid = indicator(1)["id"]
    shared = f"/taxii2/api/collections/{SHARED_ID}/"

    def got(url: str, **params: str) -> list[tuple[str, str]]:
        r = tc.get(url, params=params)
        assert r.status_code == 200, (params, r.text)
        return [(o["id"], o.get("modified") or o["version"]) for o in r.json()["objects"]]

    for url, by_id in (
        (f"{shared}objects/", {"match[id]": oid}),
        (f"{shared}manifest/", {"match[id]": oid}),
        (f"{shared}objects/{oid}/", {}),
    ):
        every = got(url, **by_id, **{"match[version]": "all"})
        assert len(every) == 3
        for listed in ("all,last", "last,all", f"first,all,{v2}", "all,all"):
            assert got(url, **by_id, **{"match[version]": listed}) == every, (url, listed)
        last = got(url, **by_id)
        assert got(url, **by_id, **{"match[version]": "last,last"}) == last
        assert got(url, **by_id, **{"match[version]": f"{v1},{v1},first"}) == [(oid, v1)]
        error_ok(tc.get(url, params={**by_id, "match[version]": "all,newest"}), 400)
    pair = {"match[id]": f"{oid},{indicator(2)['id']},{oid}"}
    assert [i for i, _ in got(f"{shared}objects/", **pair)] == [oid, indicator(2)["id"]]
    for name, value in (("match[type]", "indicator,indicator"), ("match[spec_version]", "2.1,2.1")):
        assert len(got(f"{shared}objects/", **{name: value, "match[id]": oid})) == 1, name


# -- 5.7 delete an object: match[version] and match[spec_version] only --------------------------


def test_delete_refuses_parameters_it_does_not_take(fed: Fed, tc: TestClient) -> None:  # noqa: F811
    """5.7 lists two URL parameters for DELETE, match[version] and match[spec_version].
    ``added_after`` narrowed the delete (as on a GET) and ``next`` too; ignored, they and
    ``limit``, ``match[id]`` or ``match[type]`` would delete more than asked: 400, nothing
    deleted.  A parameter TAXII does not define (a cache buster) is ignored."""
    versions = ("2016-01-01T00:00:00.000Z", "2016-02-01T00:00:00.000Z", "2016-03-01T00:00:00.000Z")
    added = [fed.node.ingest([indicator(1, m)]).first_added for m in versions]
    assert None not in added
    url = f"/taxii2/api/collections/{SHARED_ID}/objects/{indicator(1)['id']}/"

    def stored() -> list[str]:
        r = tc.get(f"{url}versions/")
        return list(r.json().get("versions", [])) if r.status_code == 200 else []

    after = from_micros(added[0] or 0)
    for params in (
        {"added_after": after},
        {"next": encode_cursor(added[0] or 0)},
        {"limit": "1"},
        {"match[id]": indicator(1)["id"]},
        {"match[type]": "indicator"},
        {"match[version]": versions[2], "added_after": after},
    ):
        body = error_ok(tc.delete(url, params=params), 400)
        assert "nothing was deleted" in body["description"], params
        assert stored() == list(versions), params
    r = tc.delete(url, params={"match[version]": versions[0], "match[spec_version]": "2.1"})
    assert r.status_code == 200 and stored() == list(versions[1:])
    r = tc.delete(url, params={"match[version]": "all,last", "_": "1700000000"})
    assert r.status_code == 200, r.text
    error_ok(tc.get(url), 404)


# -- 3.1 endpoints: every TAXII URL ends in "/" -------------------------------------------------


def test_known_paths_without_trailing_slash_redirect(fed: Fed, tc: TestClient) -> None:  # noqa: F811
    """``/taxii2`` was redirected (by Starlette) but ``/taxii2/api/collections`` and the rest
    answered 404: now each is redirected with 307 (method, body and query kept) to its "/"
    form, as medallion (Werkzeug, 308) does; an unknown path still answers a TAXII 404."""
    fed.node.ingest([indicator(1)])
    oid = indicator(1)["id"]
    status = tc.post(
        f"/taxii2/api/collections/{SHARED_ID}/objects/",
        content=b'{"objects": []}',
        headers={"Content-Type": TAXII},
    ).json()["id"]
    shared = f"/taxii2/api/collections/{SHARED_ID}"
    for path in (
        "/taxii2",
        "/taxii2/api",
        "/taxii2/api/collections",
        shared,
        f"{shared}/manifest",
        f"{shared}/objects",
        f"{shared}/objects/{oid}",
        f"{shared}/objects/{oid}/versions",
        f"/taxii2/api/status/{status}",
    ):
        r = tc.get(path, params={"limit": "1"}, follow_redirects=False)
        assert r.status_code == 307, (path, r.text)
        assert r.headers["location"].endswith(f"{path}/?limit=1"), r.headers["location"]
        slashed = tc.get(f"{path}/", params={"limit": "1"})
        assert slashed.status_code == 200, path
        followed = tc.get(path, params={"limit": "1"})
        assert (followed.status_code, followed.content) == (200, slashed.content), path
    r = tc.post(
        f"{shared}/objects",
        content=orjson.dumps({"objects": [indicator(2)]}),
        headers={"Content-Type": TAXII},
        follow_redirects=False,
    )
    assert r.status_code == 307 and r.headers["location"].endswith(f"{shared}/objects/")
    assert tc.delete(f"{shared}/objects/{oid}", follow_redirects=False).status_code == 307
    assert tc.get(f"{shared}/objects/{oid}/").status_code == 200  # nothing deleted
    for unknown in ("/taxii2/api/nothing", f"{shared}/objects/{oid}/versions/x"):
        error_ok(tc.get(unknown, follow_redirects=False), 404)


def test_a_redirected_path_is_percent_encoded_again(fed: Fed, tc: TestClient) -> None:  # noqa: F811
    """The redirect's Location was the decoded path: a collection or object id sent as
    ``%E2%98%83`` (not latin-1) could not be put in a header and answered 500.  Now the
    Location carries the path encoded again, and leads where the slashed path does; a line
    break (``%0D%0A``) or a ``%25`` stays encoded too."""
    base = "/taxii2/api/collections"
    for sent, decoded in (
        ("%E2%98%83", "\u2603"),
        ("a%0D%0ASet-Cookie:%20x=1", "a\r\nSet-Cookie: x=1"),
        ("100%25", "100%"),
    ):
        for path in (f"{base}/{sent}", f"{base}/{SHARED_ID}/objects/{sent}"):
            r = tc.get(path, follow_redirects=False)
            assert r.status_code == 307, (path, r.text)
            assert r.headers["location"].endswith(f"{path}/") and "set-cookie" not in r.headers
            followed = tc.get(path)
            assert followed.status_code == 404, followed.text
            assert repr(decoded)[1:-1] in followed.json()["description"], followed.text


# -- 3.2 X-TAXII-Date-Added-First/Last: on every listing, however far its starting point ---------


def test_an_empty_page_after_the_last_representable_instant_has_its_headers(
    fed: Fed,  # noqa: F811
    tc: TestClient,  # noqa: F811
) -> None:
    """An empty page's date headers name the point it starts after.  ``added_after`` may be a
    leap second ending year 9999 (a valid STIX timestamp, one µs past the last that can be
    written) and ``next`` any cursor the store can bind: both answered 500 (year 10000 is out
    of range), on objects, manifest and versions alike.  Nothing can be added later than
    9999-12-31T23:59:59.999999Z, so the headers name that instant, and resuming misses nothing."""
    fed.node.ingest([indicator(1)])
    oid = indicator(1)["id"]
    shared = f"/taxii2/api/collections/{SHARED_ID}/"
    last = "9999-12-31T23:59:59.999999Z"
    for params in (
        {"added_after": "9999-12-31T23:59:60Z"},
        {"next": encode_cursor(MAX_ADDED)},
        {"added_after": last},
    ):
        for url in (
            f"{shared}objects/",
            f"{shared}manifest/",
            f"{shared}objects/{oid}/",
            f"{shared}objects/{oid}/versions/",
        ):
            r = tc.get(url, params=params)
            assert r.status_code == 200, (url, params, r.text)
            assert r.json() == {"more": False}, url
            assert r.headers["X-TAXII-Date-Added-First"] == last, (url, params)
            assert r.headers["X-TAXII-Date-Added-Last"] == last, (url, params)


def test_an_empty_page_after_a_year_before_1000_has_headers_that_resume(
    fed: Fed,  # noqa: F811
    tc: TestClient,  # noqa: F811
) -> None:
    """The headers of an empty page after ``added_after=0001-01-01T00:00:00Z`` were
    ``1-01-01T00:00:00.000000Z`` (strftime writes a year before 1000 without its zeros): not a
    timestamp, and ``added_after`` set to it, as a client resuming does, answered 400."""
    shared = f"/taxii2/api/collections/{SHARED_ID}/"
    for after, header in (
        ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00.000000Z"),
        ("0999-12-31T23:59:59.5Z", "0999-12-31T23:59:59.500000Z"),
    ):
        for url in (f"{shared}objects/", f"{shared}manifest/"):
            r = tc.get(url, params={"added_after": after, "match[type]": "malware"})
            assert r.status_code == 200 and r.json() == {"more": False}, r.text
            assert r.headers["X-TAXII-Date-Added-First"] == header, url
            assert r.headers["X-TAXII-Date-Added-Last"] == header, url
            resumed = tc.get(url, params={"added_after": header, "match[type]": "malware"})
            assert resumed.status_code == 200, resumed.text
            assert resumed.headers["X-TAXII-Date-Added-Last"] == header, url


# -- 3.4 limit: an integer, in ASCII digits -------------------------------------------------------


def test_a_limit_not_written_in_ascii_digits_is_refused(
    fed: Fed,  # noqa: F811
    tc: TestClient,  # noqa: F811
) -> None:
    """``limit`` was read by int(), which takes any Unicode decimal digit (Arabic-Indic "٢",
    fullwidth "２"), underscores, a sign and spaces: "limit=٢" gave pages of two.  A value
    other than ASCII digits is malformed (400), as every other parameter's is; one of more than
    4,300 digits (which int() refuses) is above max_page_size, as any shorter one may be."""
    fed.node.ingest([indicator(i) for i in range(3)])
    oid = indicator(0)["id"]
    shared = f"/taxii2/api/collections/{SHARED_ID}/"
    for limit in ("\u0662", "\uff12", "1_0", "+2", " 2", "2 ", "2.0", "0x2"):
        for url in (
            f"{shared}objects/",
            f"{shared}manifest/",
            f"{shared}objects/{oid}/",
            f"{shared}objects/{oid}/versions/",
        ):
            body = error_ok(tc.get(url, params={"limit": limit}), 400)
            assert "limit" in body["description"], (url, limit, body)
    r = tc.get(f"{shared}objects/", params={"limit": "02", "match[type]": "indicator"})
    assert r.status_code == 200 and len(r.json()["objects"]) == 2 and r.json()["more"] is True
    # ASCII digits however many: above max_page_size is max_page_size, zero is refused
    r = tc.get(f"{shared}objects/", params={"limit": "9" * 5000, "match[type]": "indicator"})
    assert r.status_code == 200 and len(r.json()["objects"]) == 3, r.text
    for zero in ("0", "0" * 5000):
        error_ok(tc.get(f"{shared}objects/", params={"limit": zero}), 400)
