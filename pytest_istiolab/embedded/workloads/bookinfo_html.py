"""The HTML of Bookinfo productpage 1.20.x (the Tailwind UI shipped with Istio 1.26).

The markers tests and people look for are those of the real page (catalogue "Bookinfo HTML
markers", D-09): ``<title>Simple Bookstore App</title>``, the ``<h1>`` book title, "Book
Details" / "Book Reviews", star ``<svg id="glyphicon glyphicon-star" ...>`` icons inside
``<div class="flex gap-x-1 text-<color>-500">``, "Reviews served by:" and the reviews pod
name, "Error fetching product details" / "Error fetching product reviews" with the
services' error text, and the signed-in user's name with "Sign out".
"""

from __future__ import annotations

from html import escape
from string import Template
from typing import Any

Obj = dict[str, Any]

DESCRIPTION = ('<a href="https://en.wikipedia.org/wiki/The_Comedy_of_Errors">Wikipedia Summary</a>'
               ": The Comedy of Errors is one of <b>William Shakespeare's</b> early plays. It is "
               "his shortest and one of his most farcical comedies, with a major part of the "
               "humour coming from slapstick and mistaken identity, in addition to puns and "
               "word play.")
FULL_STAR = ('<svg id="glyphicon glyphicon-star" class="h-5 w-5 flex-none" viewBox="0 0 20 20" '
             'fill="currentColor" aria-hidden="true"><path fill-rule="evenodd" d="M10.868 '
             '2.884c-.321-.772-1.415-.772-1.736 0l-1.83 4.401-4.753.381c-.833.067-1.171 '
             '1.107-.536 1.651l3.62 3.102-1.106 4.637c-.194.813.691 1.456 1.405 1.02L10 '
             '15.591l4.069 2.485c.713.436 1.598-.207 1.404-1.02l-1.106-4.637 3.62-3.102c.635'
             '-.544.297-1.584-.536-1.65l-4.752-.382-1.831-4.401z" clip-rule="evenodd" /></svg>')
EMPTY_STAR = ('<svg xmlns="http://www.w3.org/2000/svg" fill="none" viewBox="0 0 24 24" '
              'stroke-width="1.5" stroke="currentColor" class="h-5 w-5 flex-none"><path '
              'stroke-linecap="round" stroke-linejoin="round" d="M11.48 3.499a.562.562 0 0 1 '
              '1.04 0l2.125 5.111a.563.563 0 0 0 .475.345l5.518.442c.499.04.701.663.321.988'
              'l-4.204 3.602a.563.563 0 0 0-.182.557l1.285 5.385a.562.562 0 0 1-.84.61l-4.725'
              '-2.885a.562.562 0 0 0-.586 0L6.982 20.54a.562.562 0 0 1-.84-.61l1.285-5.386a'
              '.562.562 0 0 0-.182-.557l-4.204-3.602a.562.562 0 0 1 .321-.988l5.518-.442a.563'
              '.563 0 0 0 .475-.345L11.48 3.5Z" /></svg>')

HEAD = """<meta charset="utf-8">
<meta http-equiv="X-UA-Compatible" content="IE=edge">
<meta name="viewport" content="width=device-width, initial-scale=1.0">

<title>Simple Bookstore App</title>

<script src="static/tailwind/tailwind.css"></script>
<script type="text/javascript">
  window.addEventListener("DOMContentLoaded", (event) => {
    const dialog = document.querySelector("dialog");
    const showButton = document.querySelector("#sign-in-button");
    const closeButton = document.querySelector("#close-dialog");
    if (showButton) { showButton.addEventListener("click", () => { dialog.showModal(); }); }
    if (closeButton) { closeButton.addEventListener("click", () => { dialog.close(); }); }
  })
</script>
"""

SIGN_IN_DIALOG = """<!-- Sign in dialog -->
<dialog id="dialog" class="w-full sm:w-2/3 lg:w-1/3 border rounded-md shadow-xl">
  <div class="flex min-h-full flex-col justify-center px-6 py-12 lg:px-8">
    <div class="absolute right-0 top-0 hidden pr-4 pt-4 sm:block">
      <button id="close-dialog" type="button" class="rounded-md bg-white text-gray-400">
        <span class="sr-only">Close</span>
      </button>
    </div>
    <div class="sm:mx-auto sm:w-full sm:max-w-sm">
      <h2 class="mt-5 text-center text-2xl font-bold leading-9 tracking-tight
                 text-gray-900">Sign in to BookInfo</h2>
    </div>
    <div class="mt-10 sm:mx-auto sm:w-full sm:max-w-sm">
      <form class="space-y-6" method="post" action='login' name="login_form">
        <div>
          <label for="email" class="block text-sm font-medium leading-6">Username</label>
          <div class="mt-2">
            <input id="username" name="username" required class="block w-full px-3 rounded-md">
          </div>
        </div>
        <div>
          <label for="password" class="block text-sm font-medium leading-6">Password</label>
          <div class="mt-2">
            <input id="password" name="passwd" type="password" required
                   class="block w-full px-3 rounded-md">
          </div>
        </div>
        <div>
          <button type="submit" class="flex w-full justify-center rounded-md bg-blue-600 px-3
                  py-1.5 text-sm font-semibold leading-6 text-white">Sign in</button>
        </div>
      </form>
    </div>
  </div>
</dialog>
"""

NAV = Template("""<nav class="bg-gray-800">
  <div class="container mx-auto px-4 sm:px-6 lg:px-8">
    <div class="relative flex h-16 items-center justify-between">
      <a href="#" class="text-white px-3 py-2 text-lg font-medium"
         aria-current="page">BookInfo Sample</a>
      <div class="absolute inset-y-0 right-0 flex items-center pr-2">
$who      </div>
    </div>
  </div>
</nav>
""")
SIGNED_IN = Template("""        <div class="ml-4">
          <p class="text-base font-medium text-gray-50">$user</p>
          <a href="logout" class="text-xs font-medium text-gray-400">Sign out</a>
        </div>
""")
SIGN_IN_BUTTON = """\
        <button type="button" id="sign-in-button" class="rounded-md bg-blue-600 px-3.5
                py-2.5 text-sm font-semibold text-white shadow-sm">
          Sign in
        </button>
"""
DESCRIPTION_BLOCK = Template("""<!-- Book description section -->
<div class="container mt-8 mx-auto px-4 sm:px-6 lg:px-8">
  <h1 class="text-5xl font-bold tracking-tight text-blue-900">The Comedy of Errors</h1>
  <div class="mt-6 max-w-4xl">
    <p class="mt-6 text-xl leading-8 text-gray-600">$description</p>
  </div>
</div>
""")
DETAILS_BLOCK = Template("""<!-- Book details table -->
<div class="container mt-8 mx-auto px-4 sm:px-6 lg:px-8">
  <div class="mt-4 py-10">
      <div class="max-w-2xl">
        <div class="flow-root">
$body        </div>
      </div>
  </div>
</div>
""")
DETAILS_TABLE = Template("""          <h4 class="text-3xl font-semibold">Book Details</h4>
          <table class="min-w-full divide-y divide-gray-300">
            <thead>
              <tr>
$heads              </tr>
            </thead>
            <tbody class="divide-y divide-gray-200 bg-white">
              <tr>
$cells              </tr>
            </tbody>
          </table>
""")
ERROR_BLOCK = Template("""\
          <p class="text-2xl text-red-500">Error fetching product $what</p>
          <p class="text-lg text-gray-600">$error</p>
""")
REVIEWS_BLOCK = Template("""<!-- Book reviews section -->
<div class="bg-blue-600/5 py-12 mx-auto" >
  <div class="container mx-auto px-4 sm:px-6 lg:px-8>
    <div class="max-w-2xl">
$body    </div>
    </div>
  </div>
</div>
""")
REVIEWS_LIST = Template("""      <h4 class="text-3xl font-semibold">Book Reviews</h4>
      <div class="flex flex-col md:flex-row">
$sections      </div>
""")
REVIEW = Template("""        <section class="px-6 py-12 sm:py-8 lg:px-8">
          <div class="mx-auto max-w-2xl">
$stars            <blockquote class="mt-10 text-xl font-semibold leading-8 tracking-tight
                               text-gray-900 sm:text-2xl sm:leading-9">
              <p>"$text"</p>
            </blockquote>
            <div class="mt-4 flex items-center gap-x-6">
              <img class="h-16 w-16 rounded-full bg-gray-50" src="/static/img/izzy.png" alt="Izzy">
              <div class="text-sm leading-6">
                <div class="font-semibold text-gray-900">$reviewer</div>
                <div class="mt-0.5 text-gray-600 font-mono">Reviews served by:
                  $podname
$cluster                </div>
              </div>
            </div>
          </div>
        </section>
""")
STARS = Template("""            <div class="flex gap-x-1 text-$color-500">
$icons
            </div>
""")
INDEX = """<!DOCTYPE html>
<html>
<head>
<title>Simple Bookstore App</title>
</head>
<body>
<p><h3>Hello! This is a simple bookstore application consisting of three services as shown
below</h3></p>
<p><h4>Click on one of the links below to auto generate a request to the backend as a real
user or a tester</h4></p>
<p><a href="/productpage?u=normal">Normal user</a></p>
<p><a href="/productpage?u=test">Test user</a></p>
</body>
</html>
"""
FLASK_ERROR = Template("""<!doctype html>
<html lang=en>
<title>$title</title>
<h1>$heading</h1>
<p>$text</p>
""")
FLASK_REDIRECT = Template("""<!doctype html>
<html lang=en>
<title>Redirecting...</title>
<h1>Redirecting...</h1>
<p>You should be redirected automatically to the target URL: <a href="$loc">$loc</a>. \
If not, click the link.
""")
FLASK_ERRORS = {
    404: ("404 Not Found", "Not Found", "The requested URL was not found on the server. If you "
          "entered the URL manually please check your spelling and try again."),
    405: ("405 Method Not Allowed", "Method Not Allowed",
          "The method is not allowed for the requested URL."),
    500: ("500 Internal Server Error", "Internal Server Error", "The server encountered an "
          "internal error and was unable to complete your request. Either the server is "
          "overloaded or there is an error in the application."),
}
DETAIL_COLUMNS = (("ISBN-10", "ISBN-10"), ("Publisher", "publisher"), ("Pages", "pages"),
                  ("Type", "type"), ("Language", "language"))


def productpage(user: str, details_status: int, details: Obj, reviews_status: int,
                reviews: Obj) -> str:
    who = SIGNED_IN.substitute(user=escape(user)) if user else SIGN_IN_BUTTON
    return "\n".join([HEAD, NAV.substitute(who=who), SIGN_IN_DIALOG,
                      DESCRIPTION_BLOCK.substitute(description=DESCRIPTION),
                      DETAILS_BLOCK.substitute(body=_details(details_status, details)),
                      REVIEWS_BLOCK.substitute(body=_reviews(reviews_status, reviews))])


def _details(status: int, details: Obj) -> str:
    if status != 200:
        return ERROR_BLOCK.substitute(what="details", error=escape(str(details.get("error", ""))))
    heads = "".join(f'                <th scope="col" class="px-2 py-3.5 text-left text-sm">'
                    f"{title}</th>\n" for title, _ in DETAIL_COLUMNS)
    cells = "".join(f'                <td class="whitespace-nowrap px-2 py-2 text-sm">'
                    f"{escape(str(details.get(key, '')))}</td>\n" for _, key in DETAIL_COLUMNS)
    return DETAILS_TABLE.substitute(heads=heads, cells=cells)


def _reviews(status: int, reviews: Obj) -> str:
    if status != 200:
        return ERROR_BLOCK.substitute(what="reviews", error=escape(str(reviews.get("error", ""))))
    podname = str(reviews.get("podname", ""))
    clustername = str(reviews.get("clustername", "null"))
    sections = "".join(_review(r, podname, clustername) for r in reviews.get("reviews") or [])
    return REVIEWS_LIST.substitute(sections=sections)


def _review(review: Obj, podname: str, clustername: str) -> str:
    rating = review.get("rating") or {}
    stars = ""
    if rating.get("stars"):
        count = int(rating["stars"])
        icons = "\n".join(["              " + FULL_STAR] * count +
                          ["              " + EMPTY_STAR] * (5 - count))
        stars = STARS.substitute(color=escape(str(rating.get("color"))), icons=icons)
    elif rating.get("error"):
        stars = f'            <p class="text-red-500">{escape(str(rating["error"]))}</p>\n'
    cluster = "" if clustername == "null" else \
        f"                  on cluster <div>{escape(clustername)}</div>\n"
    return REVIEW.substitute(stars=stars, text=escape(str(review.get("text", ""))),
                             reviewer=escape(str(review.get("reviewer", ""))),
                             podname=escape(podname), cluster=cluster)


def index_page() -> str:
    return INDEX


def flask_error(status: int) -> str:
    title, heading, text = FLASK_ERRORS[status]
    return FLASK_ERROR.substitute(title=title, heading=heading, text=text)


def flask_redirect(location: str) -> str:
    return FLASK_REDIRECT.substitute(loc=escape(location))
