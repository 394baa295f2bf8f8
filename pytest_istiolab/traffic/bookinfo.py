"""Markers of Bookinfo's productpage: which reviews version served it, stars, titles.

Pure parsers of the HTML real productpage serves (both the Tailwind page of 1.26 and the older
Bootstrap one); nothing here talks to a cluster.
"""

from __future__ import annotations

import html as html_lib
import re

# ------------------------------------------------------------------ Bookinfo pages
_STARS_TAILWIND = re.compile(r'class="flex gap-x-1 text-(black|red)-500"')
_STARS_LEGACY = re.compile(r'<font color="(black|red)">\s*(?:<!--[^>]*-->\s*)?'
                           r'<span class="glyphicon glyphicon-star')
_SERVED_BY = re.compile(r"Reviews served by:\s*([a-z0-9][a-z0-9.-]*)")
_TITLE = re.compile(r"<title>(.*?)</title>", re.S | re.I)
_H1 = re.compile(r"<h1[^>]*>(.*?)</h1>", re.S | re.I)
_REVIEWS_HEADING = re.compile(r">\s*Book Reviews\s*<")
_STAR_VERSION = {"black": "v2", "red": "v3"}


def star_color(page: str) -> str | None:
    """``"black"``/``"red"`` for the rating stars on a productpage, None without stars."""
    match = _STARS_TAILWIND.search(page) or _STARS_LEGACY.search(page)
    return match.group(1) if match else None


def reviews_version(page: str) -> str | None:
    """The reviews version a productpage shows: black stars v2, red v3, no stars v1.

    None when the page has no reviews section (an error page) or the ratings are unavailable
    (v2 and v3 then look alike; use :func:`reviews_pod`).
    """
    color = star_color(page)
    if color:
        return _STAR_VERSION[color]
    if not _REVIEWS_HEADING.search(page) or "Ratings service" in page:
        return None
    return "v1"


def reviews_pod(page: str) -> str | None:
    """The pod named by "Reviews served by:" (e.g. ``reviews-v2-65c4dc6fdc-xpb2d``)."""
    match = _SERVED_BY.search(page)
    return match.group(1) if match else None


def page_title(page: str) -> str | None:
    """The ``<title>`` of an HTML page ("Simple Bookstore App" for the productpage)."""
    match = _TITLE.search(page)
    return _text(match.group(1)) if match else None


def book_title(page: str) -> str | None:
    """The first ``<h1>`` ("The Comedy of Errors" on the productpage)."""
    match = _H1.search(page)
    return _text(match.group(1)) if match else None


def _text(fragment: str) -> str:
    return html_lib.unescape(re.sub(r"<[^>]+>", "", fragment)).strip()
