"""TAXII 2.1 conformance points found in a review against the OASIS TAXII 2.1 specification
(OASIS Standard, 10 June 2021): each test names the section it checks."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from test_taxii import Fed, error_ok, fed, tc  # noqa: F401 (fixtures)

from tansiq.api.app import create_app
from tansiq.api.taxii_http import accepts_taxii

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
]
ALLOWING = [
    "application/taxii+json;version=2.0;q=0, application/taxii+json;version=2.1",
    "application/taxii+json;version=2.0;q=0, */*",
    "*/*;q=0, application/taxii+json",
    "application/*;q=0, application/taxii+json;version=2.1;q=0.1",
    "text/html;q=0, application/*;q=0.2",
    'application/taxii+json;version="2.1";q=0.5, application/taxii+json;q=0',
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
