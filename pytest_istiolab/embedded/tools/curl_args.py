"""curl's command line, parsed the way curl 8 parses it.

Short options cluster (``-sS``, ``-sSo /dev/null``) and take their value attached
(``-HHost:x``, ``-o/dev/null``) or as the next word; long options take the next word (curl
has no ``--opt=value``). Unknown options fail with exit 2 as curl does. An option real curl 8
has but this model does not implement fails the same way, in curl's own words and with
curl's hint line, its first line saying the embedded cluster does not model it
(``curl: option --limit-rate: is not modelled by the embedded cluster's curl``).
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
# curl 8's other options (``curl --help all``): real, but not modelled here
REAL_CURL_LONG = frozenset("""
abstract-unix-socket alt-svc anyauth append aws-sigv4 basic ca-native cert-status cert-type
ciphers compressed-ssh config connect-to continue-at create-dirs create-file-mode crlf crlfile
curves delegation digest disable disable-eprt disable-epsv disallow-username-in-url
dns-interface dns-ipv4-addr dns-ipv6-addr dns-servers doh-cert-status doh-insecure doh-url
dump-ca-embed ech egd-file engine etag-compare etag-save expect100-timeout fail-early
false-start form form-escape form-string ftp-account ftp-alternative-to-user ftp-create-dirs
ftp-method ftp-pasv ftp-port ftp-pret ftp-skip-pasv-ip ftp-ssl-ccc ftp-ssl-ccc-mode
ftp-ssl-control globoff happy-eyeballs-timeout-ms haproxy-clientip haproxy-protocol help
hostpubmd5 hostpubsha256 hsts http0.9 http1.0 http2 http2-prior-knowledge http3 http3-only
ignore-content-length interface ip-tos ipfs-gateway ipv4 ipv6 json junk-session-cookies
keepalive-cnt keepalive-time key-type krb libcurl limit-rate list-only local-port
location-trusted login-options mail-auth mail-from mail-rcpt mail-rcpt-allowfails manual
max-filesize metalink mptcp negotiate netrc netrc-file netrc-optional next no-alpn no-buffer
no-clobber no-npn no-sessionid ntlm ntlm-wb oauth2-bearer output-dir parallel
parallel-immediate parallel-max pass path-as-is pinnedpubkey post301 post302 post303 preproxy
progress-bar proto proto-default proto-redir proxy proxy-anyauth proxy-basic proxy-ca-native
proxy-cacert proxy-capath proxy-cert proxy-cert-type proxy-ciphers proxy-crlfile proxy-digest
proxy-header proxy-http2 proxy-insecure proxy-key proxy-key-type proxy-negotiate proxy-ntlm
proxy-pass proxy-pinnedpubkey proxy-service-name proxy-ssl-allow-beast
proxy-ssl-auto-client-cert proxy-tls13-ciphers proxy-tlsauthtype proxy-tlspassword
proxy-tlsuser proxy-tlsv1 proxy-user proxy1.0 proxytunnel pubkey quote random-file range rate
raw remote-header-name remote-name remote-name-all remote-time remove-on-error request-target
retry-all-errors retry-connrefused retry-delay retry-max-time sasl-authzid sasl-ir
service-name show-headers skip-existing socks4 socks4a socks5 socks5-basic socks5-gssapi
socks5-gssapi-nec socks5-gssapi-service socks5-hostname speed-limit speed-time ssl
ssl-allow-beast ssl-auto-client-cert ssl-no-revoke ssl-reqd ssl-revoke-best-effort sslv2
sslv3 stderr styled-output suppress-connect-headers tcp-fastopen tcp-nodelay telnet-option
tftp-blksize tftp-no-options time-cond tls-earlydata tls-max tls13-ciphers tlsauthtype
tlspassword tlsuser tlsv1 tlsv1.0 tlsv1.1 tlsv1.2 tlsv1.3 tr-encoding trace trace-ascii
trace-config trace-ids trace-time unix-socket upload-file url-query use-ascii variable
version vlan-priority xattr
""".split())
REAL_CURL_SHORT = frozenset("012346:#aBCFghjJKlMnNOpPqQrRtTUVxyYzZ")
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
        negated = name[3:] if name.startswith("no-") else ""
        if name in REAL_CURL_LONG or negated in REAL_CURL_LONG or negated in OPTIONS:
            raise UsageError(not_modelled(f"--{name}"))
        raise UsageError(f"curl: option --{name}: is unknown\n" + CURL_USAGE_HINT)
    _, takes_value, attr = OPTIONS[name]
    value = _value(f"--{name}", words) if takes_value else None
    _set(opts, attr, value)


def _short_cluster(opts: CurlOptions, letters: str, words: list[str]) -> None:
    for index, letter in enumerate(letters):
        if letter not in SHORT:
            if letter in REAL_CURL_SHORT:
                raise UsageError(not_modelled(f"-{letter}"))
            raise UsageError(f"curl: option -{letters}: is unknown\n" + CURL_USAGE_HINT)
        _, takes_value, attr = OPTIONS[SHORT[letter]]
        if takes_value:
            rest = letters[index + 1:]
            _set(opts, attr, rest if rest else _value(f"-{letter}", words))
            return
        _set(opts, attr, None)


def not_modelled(flag: str) -> str:
    """curl's usage error for a real curl option the embedded cluster's curl lacks."""
    return (f"curl: option {flag}: is not modelled by the embedded cluster's curl\n"
            + CURL_USAGE_HINT)


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
