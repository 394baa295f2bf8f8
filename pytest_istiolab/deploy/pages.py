"""Bookinfo product pages timed the way a client sees them: curl's ``%{time_total}``.

The manual's "the page needs about 2 s to load" is a person watching a browser. A test
cannot use its own wall clock for that: on the embedded cluster delays and timeouts are
virtual (a 6 s page returns at once), and on a real cluster the wall clock also counts the
API server and the exec stream. So a page is fetched by ``curl`` in a client pod inside the
mesh (the ``sleep`` sample), and the time is curl's own transfer time, which both kinds of
cluster report as a real client would see it.

Signing in works as in a browser: ``POST /login`` (form ``username``, any password, with a
``Referer``) stores Flask's session cookie in a cookie jar file in the client container, and
later loads send it; productpage then sends ``end-user: <user>`` to reviews. (productpage
never forwards an ``end-user`` header a client sends itself.)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pytest_istiolab import traffic
from pytest_istiolab.deploy.samples import App

PRODUCTPAGE = "http://productpage:9080"
REVIEWS_UNAVAILABLE = "Sorry, product reviews are currently unavailable for this book."
RATINGS_UNAVAILABLE = "Ratings service is currently unavailable"


@dataclass(frozen=True)
class TimedPage:
    """One load of ``/productpage``: status, curl's total time in seconds, the HTML."""

    status: int
    seconds: float
    exit_code: int
    html: str
    user: str | None = None

    @property
    def stars(self) -> str | None:
        """``"black"``, ``"red"`` or None (no stars on the page)."""
        return traffic.star_color(self.html)

    @property
    def reviews_pod(self) -> str | None:
        return traffic.reviews_pod(self.html)

    @property
    def reviews_unavailable(self) -> bool:
        """The reviews section shows productpage's error instead of reviews."""
        return REVIEWS_UNAVAILABLE in self.html

    @property
    def ratings_unavailable(self) -> int:
        """How many reviews say "Ratings service is currently unavailable"."""
        return self.html.count(RATINGS_UNAVAILABLE)

    def describe(self) -> str:
        who = self.user or "anonymous"
        shown = ("reviews unavailable" if self.reviews_unavailable else
                 f"{self.stars or 'no'} stars, {self.ratings_unavailable} ratings errors, "
                 f"served by {self.reviews_pod or '?'}")
        return (f"{who}: HTTP {self.status} in {self.seconds:.3f} s (curl exit "
                f"{self.exit_code}), {shown}")


@dataclass
class PageClient:
    """Loads the product page from a client pod (``sleep``), anonymous or signed in."""

    client: App
    base_url: str = PRODUCTPAGE
    app: str = "sleep"  # the client's app label (and container name)
    _jars: dict[str, str] = field(default_factory=dict)

    def load(self, user: str | None = None, *, max_time: float | None = None) -> TimedPage:
        """One ``GET /productpage`` (as ``user`` if given), timed by curl."""
        jar = self._sign_in(user) if user else None
        argv = traffic.batch_argv([f"{self.base_url}/productpage"], output=None,
                                  cookie_file=jar, max_time=max_time)
        result = self.client.exec(self.app, argv)
        results = traffic.parse_batch(result.stdout)
        if len(results) != 1:
            raise AssertionError(f"curl in {self.app} printed no transfer result "
                                 f"(exit {result.exit_code}): {result.stderr[:300]!r}")
        one = results[0]
        return TimedPage(one.status, one.time_total, one.exit_code, one.body or "", user)

    def _sign_in(self, user: str) -> str:
        if user in self._jars:
            return self._jars[user]
        jar = f"/tmp/istiolab-{re.sub(r'[^A-Za-z0-9_.-]', '_', user)}.cookies"
        argv = traffic.curl_argv(f"{self.base_url}/login", data=f"username={user}&passwd=x",
                                 write_out="%{http_code}", cookie_jar=jar,
                                 extra=["-e", f"{self.base_url}/productpage"])
        result = self.client.exec(self.app, argv)
        if result.stdout.strip() != "302":
            raise AssertionError(f"signing in as {user} from {self.app} answered "
                                 f"{result.stdout.strip() or '(nothing)'} instead of 302 "
                                 f"(exit {result.exit_code}): {result.stderr[:300]!r}")
        self._jars[user] = jar
        return jar
