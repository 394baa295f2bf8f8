"""curl's command line, parsed the way curl 8 parses it.

Short options cluster (``-sS``, ``-sSo /dev/null``) and take their value attached
(``-HHost:x``, ``-o/dev/null``) or as the next word; long options take the next word (curl
has no ``--opt=value``). Unknown options fail with exit 2 as curl does; real curl options
the model does not implement fail with exit 2 and say so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

CURL_USAGE_HINT = "curl: try 'curl --help' or 'curl --manual' for more information\n"

# long name -> (short letter or "", takes a value, attribute)
OPTIONS: dict[str, tuple[str, bool, str]] = {
    "silent": ("s", False, "silent"), "show-error": ("S", False, "show_error"),
    "verbose": ("v", False, "verbose"), "include": ("i", False, "include"),
    "head": ("I", False, "head"), "location": ("L", False, "follow"),
    "insecure": ("k", False, "insecure"), "fail": ("f", False, "fail"),
    "fail-with-body": ("", False, "fail_with_body"), "get": ("G", False, "get"),
    "output": ("o", True, "outputs"), "write-out": ("w", True, "write_out"),
    "header": ("H", True, "headers"), "request": ("X", True, "method"),
    "data": ("d", True, "data"), "data-ascii": ("", True, "data"),
    "data-raw": ("", True, "data_raw"), "data-binary": ("", True, "data_binary"),
    "data-urlencode": ("", True, "data_urlencode"), "max-time": ("m", True, "max_time"),
    "connect-timeout": ("", True, "connect_timeout"), "resolve": ("", True, "resolve"),
    "cookie": ("b", True, "cookie"), "cookie-jar": ("c", True, "cookie_jar"),
    "user-agent": ("A", True, "user_agent"), "referer": ("e", True, "referer"),
    "user": ("u", True, "user"), "dump-header": ("D", True, "dump_header"),
    "max-redirs": ("", True, "max_redirs"), "url": ("", True, "urls"),
    "no-progress-meter": ("", False, "no_progress"), "http1.1": ("", False, "ignored"),
    "compressed": ("", False, "ignored"), "no-keepalive": ("", False, "ignored"),
    "cacert": ("", True, "ignored_value"), "cert": ("E", True, "ignored_value"),
    "key": ("", True, "ignored_value"), "capath": ("", True, "ignored_value"),
    "noproxy": ("", True, "ignored_value"), "retry": ("", True, "ignored_value"),
}
SHORT = {short: long for long, (short, _, _) in OPTIONS.items() if short}
NOT_MODELLED = ("form", "F", "proxy", "x", "http2", "http3", "tlsv1.2", "tlsv1.3", "upload-file",
                "T", "next", ":", "parallel", "Z", "config", "K", "unix-socket", "interface")
LIST_ATTRS = ("outputs", "headers", "resolve", "urls")
DATA_ATTRS = ("data", "data_raw", "data_binary", "data_urlencode")


class UsageError(Exception):
    """A command line curl rejects before any transfer (exit code 2)."""


@dataclass
class CurlOptions:
    urls: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    headers: list[str] = field(default_factory=list)
    data: list[tuple[str, str]] = field(default_factory=list)  # (option, value) in order
    resolve: list[str] = field(default_factory=list)
    silent: bool = False
    show_error: bool = False
    verbose: bool = False
    include: bool = False
    head: bool = False
    follow: bool = False
    insecure: bool = False
    fail: bool = False
    fail_with_body: bool = False
    get: bool = False
    no_progress: bool = False
    ignored: bool = False
    ignored_value: str | None = None
    write_out: str | None = None
    method: str | None = None
    max_time: str | None = None
    connect_timeout: str | None = None
    cookie: str | None = None
    cookie_jar: str | None = None
    user_agent: str | None = None
    referer: str | None = None
    user: str | None = None
    dump_header: str | None = None
    max_redirs: str | None = None


def parse(argv: list[str]) -> CurlOptions:
    """``argv`` without the leading ``curl``."""
    opts = CurlOptions()
    words = list(argv)
    while words:
        word = words.pop(0)
        if word.startswith("--") and len(word) > 2:
            _long(opts, word[2:], words)
        elif word.startswith("-") and len(word) > 1:
            _short_cluster(opts, word[1:], words)
        else:
            opts.urls.append(word)
    if not opts.urls:
        raise UsageError("curl: no URL specified\n" + CURL_USAGE_HINT)
    for flag, value in (("-m", opts.max_time), ("--connect-timeout", opts.connect_timeout),
                        ("--max-redirs", opts.max_redirs)):
        if value is not None and not _numeric(value):
            raise UsageError(f"curl: option {flag}: expected a proper numerical parameter\n"
                             + CURL_USAGE_HINT)
    return opts


def _numeric(value: str) -> bool:
    try:
        return float(value) >= 0
    except ValueError:
        return False


def _long(opts: CurlOptions, name: str, words: list[str]) -> None:
    if "=" in name or name not in OPTIONS:
        if name in NOT_MODELLED:
            raise UsageError(f"curl: option --{name}: is not modelled by the embedded cluster's "
                             "curl\n")
        raise UsageError(f"curl: option --{name}: is unknown\n" + CURL_USAGE_HINT)
    _, takes_value, attr = OPTIONS[name]
    value = _value(f"--{name}", words) if takes_value else None
    _set(opts, attr, value)


def _short_cluster(opts: CurlOptions, letters: str, words: list[str]) -> None:
    for index, letter in enumerate(letters):
        if letter not in SHORT:
            if letter in NOT_MODELLED:
                raise UsageError(f"curl: option -{letter}: is not modelled by the embedded "
                                 "cluster's curl\n")
            raise UsageError(f"curl: option -{letters}: is unknown\n" + CURL_USAGE_HINT)
        _, takes_value, attr = OPTIONS[SHORT[letter]]
        if takes_value:
            rest = letters[index + 1:]
            _set(opts, attr, rest if rest else _value(f"-{letter}", words))
            return
        _set(opts, attr, None)


def _value(flag: str, words: list[str]) -> str:
    if not words:
        raise UsageError(f"curl: option {flag}: requires parameter\n" + CURL_USAGE_HINT)
    return words.pop(0)


def _set(opts: CurlOptions, attr: str, value: str | None) -> None:
    if attr in DATA_ATTRS:
        opts.data.append((attr, value or ""))
    elif attr in LIST_ATTRS:
        getattr(opts, attr).append(value)
    elif value is None:
        setattr(opts, attr, True)
    else:
        setattr(opts, attr, value)
