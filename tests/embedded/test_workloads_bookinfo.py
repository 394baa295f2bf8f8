"""Bookinfo 1.20.x behaviour: the productpage markers of catalogue Lab 3 and D-09.

Pages are fetched through the mesh from the sleep pod, as the labs do from inside.
"""

from __future__ import annotations

import json
import re

import pytest
from mesh_testkit import DR_ALL, TEST_V2, Kit

from pytest_istiolab import traffic
from pytest_istiolab.embedded.mesh import request_from_pod
from pytest_istiolab.embedded.mesh.headers import Headers
from pytest_istiolab.embedded.tools import run_in_container
from pytest_istiolab.embedded.workloads.productpage import read_session, sign_session

ALL_V1 = "\n---\n".join(f"""
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: {svc}}}
spec:
  hosts: [{svc}]
  http: [{{route: [{{destination: {{host: {svc}, subset: {subset}}}}}]}}]
""" for svc, subset in (("productpage", "v1"), ("details", "v1"), ("ratings", "v1"),
                        ("reviews", "v1")))
DRS = DR_ALL + "\n---\n" + "\n---\n".join(f"""
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: {svc}}}
spec:
  host: {svc}
  subsets: [{{name: v1, labels: {{version: v1}}}}]
""" for svc in ("productpage", "details", "ratings"))


@pytest.fixture
def kit() -> Kit:
    k = Kit()
    k.bookinfo()
    k.sleep()
    k.apply(DRS)
    return k


def get(kit: Kit, path: str, headers: dict[str, str] | None = None, method: str = "GET",
        body: bytes = b""):  # type: ignore[no-untyped-def]
    return request_from_pod(kit.rt, kit.get_pod("sleep"), method,
                            f"http://productpage:9080{path}", Headers(headers or {}), body)


def login(kit: Kit, user: str = "jason") -> str:
    response = get(kit, "/login", {"referer": "http://productpage:9080/productpage",
                                   "content-type": "application/x-www-form-urlencoded"},
                   "POST", f"username={user}&passwd=x".encode())
    assert response.status == 302
    assert response.headers.get("location") == "http://productpage:9080/productpage"
    cookie = response.headers.get("set-cookie") or ""
    assert cookie.startswith("session=") and "HttpOnly; Path=/" in cookie
    return cookie.split(";")[0]


def test_page_has_the_bookinfo_markers(kit: Kit) -> None:
    """L2-C04/L2-C08: title, book, details and reviews sections."""
    page = get(kit, "/productpage").text
    assert re.search(r"<title>.*</title>", page).group(0) == "<title>Simple Bookstore App</title>"  # type: ignore[union-attr]
    assert traffic.book_title(page) == "The Comedy of Errors"
    assert "Book Details" in page and "Book Reviews" in page and "PublisherA" in page
    assert "Sign in" in page and "An extremely entertaining play by Shakespeare" in page


@pytest.mark.parametrize(("version", "color"), [("v1", None), ("v2", "black"), ("v3", "red")])
def test_reviews_versions_show_their_stars(kit: Kit, version: str, color: str | None) -> None:
    kit.apply(ALL_V1.replace("host: reviews, subset: v1", f"host: reviews, subset: {version}"))
    page = get(kit, "/productpage").text
    assert traffic.star_color(page) == color
    assert traffic.reviews_version(page) == version
    assert traffic.reviews_pod(page).startswith(f"reviews-{version}-")  # type: ignore[union-attr]
    if color:
        assert f'<div class="flex gap-x-1 text-{color}-500">' in page
        assert page.count('<svg id="glyphicon glyphicon-star"') == 9  # 5 + 4 full stars
    else:
        assert "glyphicon" not in page


def test_without_virtual_services_all_three_versions_appear(kit: Kit) -> None:
    versions = {traffic.reviews_version(get(kit, "/productpage").text) for _ in range(30)}
    assert versions == {"v1", "v2", "v3"}


def test_jason_logged_in_gets_v2_and_anonymous_v1(kit: Kit) -> None:
    """L3.1-C02/C03 end to end: the session cookie becomes end-user for reviews."""
    kit.apply(ALL_V1)
    kit.apply(TEST_V2)
    cookie = login(kit)
    jason = get(kit, "/productpage", {"cookie": cookie}).text
    assert "jason" in jason and "Sign out" in jason
    assert traffic.reviews_version(jason) == "v2"
    assert traffic.reviews_version(get(kit, "/productpage").text) == "v1"


def test_client_end_user_header_is_not_forwarded(kit: Kit) -> None:
    kit.apply(ALL_V1)
    kit.apply(TEST_V2)
    page = get(kit, "/productpage", {"end-user": "jason"}).text
    assert traffic.reviews_version(page) == "v1"


def test_logout_clears_the_session(kit: Kit) -> None:
    login(kit)
    response = get(kit, "/logout", {"referer": "http://productpage:9080/productpage"})
    assert response.status == 302
    assert "Max-Age=0" in (response.headers.get("set-cookie") or "")


def test_login_without_referer_redirects_to_none_and_sets_the_session(kit: Kit) -> None:
    """Flask 3.1's ``redirect(None)`` (werkzeug escapes None): 302 ``Location: None``, and the
    session cookie is set, so a script's ``curl -c jar --data ... /login`` logs in."""
    response = get(kit, "/login", {}, "POST", b"username=jason")
    assert (response.status, response.headers.get("location")) == (302, "None")
    cookie = (response.headers.get("set-cookie") or "").split(";")[0].split("=", 1)[1]
    assert read_session(cookie) == {"user": "jason"}
    out = get(kit, "/logout", {})
    assert (out.status, out.headers.get("location")) == (302, "None")


def test_a_script_logs_in_with_curl_and_a_cookie_jar(kit: Kit) -> None:
    """The doc-style script: no Referer, ``-c jar`` keeps the session, ``-b jar`` sends it."""
    pod = kit.get_pod("sleep")

    def curl(*args: str):  # type: ignore[no-untyped-def]
        return run_in_container(kit.rt, pod, "sleep", ["curl", *args])

    login = curl("-s", "-c", "/tmp/jar", "--data", "username=jason&passwd=password",
                 "-o", "/dev/null", "-w", "%{http_code} %header{location}",
                 "http://productpage:9080/login")
    assert (login.exit_code, login.stdout) == (0, b"302 None")
    page = curl("-s", "-b", "/tmp/jar", "http://productpage:9080/productpage")
    assert b"jason" in page.stdout


def test_forged_session_is_ignored() -> None:
    good = sign_session({"user": "jason"}, 1700000000)
    assert read_session(good) == {"user": "jason"}
    payload, stamp, _ = good.split(".")
    assert read_session(f"{payload}.{stamp}.forged") == {}


def test_reviews_error_when_reviews_is_unreachable(kit: Kit) -> None:
    kit.apply(ALL_V1.replace("host: reviews, subset: v1", "host: reviews, subset: v7"))
    page = get(kit, "/productpage").text
    assert "Error fetching product reviews" in page
    assert "Sorry, product reviews are currently unavailable for this book." in page
    assert "Book Details" in page
    # productpage tries reviews twice before giving up
    calls = [line for line in kit.logs(kit.get_pod("productpage")) if "/reviews/0" in line]
    assert len(calls) == 2


def test_details_error_when_details_is_unreachable(kit: Kit) -> None:
    kit.apply(ALL_V1.replace("host: details, subset: v1", "host: details, subset: v2"))
    page = get(kit, "/productpage").text
    assert "Error fetching product details" in page and "Book Details" not in page


def test_ratings_unavailable_shows_in_reviews(kit: Kit) -> None:
    kit.apply(ALL_V1.replace("host: reviews, subset: v1", "host: reviews, subset: v2")
              .replace("host: ratings, subset: v1", "host: ratings, subset: v9"))
    page = get(kit, "/productpage").text
    assert page.count("Ratings service is currently unavailable") == 2
    assert traffic.reviews_pod(page).startswith("reviews-v2-")  # type: ignore[union-attr]


def test_backend_json_shapes(kit: Kit) -> None:
    sleep = kit.get_pod("sleep")
    details = json.loads(request_from_pod(kit.rt, sleep, "GET", "http://details:9080/details/0")
                         .body)
    assert details == {"id": 0, "author": "William Shakespeare", "year": 1595,
                       "type": "paperback", "pages": 200, "publisher": "PublisherA",
                       "language": "English", "ISBN-10": "1234567890",
                       "ISBN-13": "123-1234567890"}
    health = request_from_pod(kit.rt, sleep, "GET", "http://details:9080/health")
    assert health.body == b'{"status":"Details is healthy"}'
    ratings = request_from_pod(kit.rt, sleep, "GET", "http://ratings:9080/ratings/0")
    assert ratings.body == b'{"id":0,"ratings":{"Reviewer1":5,"Reviewer2":4}}'
    kit.apply(ALL_V1.replace("host: reviews, subset: v1", "host: reviews, subset: v3"))
    reviews = request_from_pod(kit.rt, sleep, "GET", "http://reviews:9080/reviews/0").text
    assert reviews.startswith('{"id": "0","podname": "reviews-v3-')
    assert '"clustername": "null","reviews": [{  "reviewer": "Reviewer1",' in reviews
    assert '"rating": {"stars": 5, "color": "red"}' in reviews


def test_productpage_api_and_health(kit: Kit) -> None:
    products = json.loads(get(kit, "/api/v1/products").body)
    assert products[0]["title"] == "The Comedy of Errors"
    assert json.loads(get(kit, "/api/v1/products/0").body)["publisher"] == "PublisherA"
    assert json.loads(get(kit, "/api/v1/products/0/ratings").body)["ratings"]["Reviewer1"] == 5
    assert get(kit, "/health").text == "Product page is healthy"
    assert get(kit, "/nope").status == 404


def test_ratings_logs_its_requests(kit: Kit) -> None:
    kit.apply(ALL_V1.replace("host: reviews, subset: v1", "host: reviews, subset: v2"))
    get(kit, "/productpage")
    assert kit.logs(kit.get_pod("ratings"), "ratings")[-1] == "GET /ratings/0"
