"""keen:referrer_parser: ``{referrer: {medium, source, term}}``, as Keen documents it.

Both inputs, ``referrer_url`` and ``page_url``, are required (Keen expects both). ``medium``
is one of Keen's ``SEARCH``, ``EMAIL``, ``INTERNAL`` (same host as ``page_url``, ``www.``
ignored) or ``UNKNOWN``; ``source`` names the search engine or mail service; ``term`` is
the search query when the referrer still carries it (most engines now strip it, so it is
often null). Social networks are not a Keen medium, so they are ``UNKNOWN`` with a null
source, like any other site. A value that is not a URL gives blank values (``UNKNOWN``,
null source and term).

No maintained referrer-classification package could be had, so this is a small table of
well-known search and e-mail hosts (our data). Matching: the longest known suffix of the
host wins (``mail.yahoo.com`` is e-mail, ``search.yahoo.com`` search); after that, a host
whose second-level label is a search brand (``google.co.uk``, ``yandex.ru``) is that engine.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

SEARCH, EMAIL, INTERNAL, UNKNOWN = "SEARCH", "EMAIL", "INTERNAL", "UNKNOWN"

# host suffix -> (medium, source, query parameters holding the search term)
_HOSTS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "bing.com": (SEARCH, "Bing", ("q",)),
    "search.yahoo.com": (SEARCH, "Yahoo!", ("p", "q")),
    "duckduckgo.com": (SEARCH, "DuckDuckGo", ("q",)),
    "ecosia.org": (SEARCH, "Ecosia", ("q",)),
    "search.brave.com": (SEARCH, "Brave Search", ("q",)),
    "startpage.com": (SEARCH, "Startpage", ("query", "q")),
    "qwant.com": (SEARCH, "Qwant", ("q",)),
    "ask.com": (SEARCH, "Ask", ("q",)),
    "search.aol.com": (SEARCH, "AOL", ("q", "query")),
    "baidu.com": (SEARCH, "Baidu", ("wd", "word", "kw")),
    "search.naver.com": (SEARCH, "Naver", ("query",)),
    "seznam.cz": (SEARCH, "Seznam", ("q",)),
    "sogou.com": (SEARCH, "Sogou", ("query",)),
    "so.com": (SEARCH, "360 Search", ("q",)),
    "kagi.com": (SEARCH, "Kagi", ("q",)),
    "search.yahoo.co.jp": (SEARCH, "Yahoo! Japan", ("p",)),
    "mail.google.com": (EMAIL, "Gmail", ()),
    "outlook.live.com": (EMAIL, "Outlook.com", ()),
    "outlook.office.com": (EMAIL, "Outlook", ()),
    "outlook.office365.com": (EMAIL, "Outlook", ()),
    "mail.yahoo.com": (EMAIL, "Yahoo! Mail", ()),
    "mail.aol.com": (EMAIL, "AOL Mail", ()),
    "mail.proton.me": (EMAIL, "Proton Mail", ()),
    "mail.zoho.com": (EMAIL, "Zoho Mail", ()),
    "mail.yandex.ru": (EMAIL, "Yandex Mail", ()),
    "e.mail.ru": (EMAIL, "Mail.ru", ()),
    "mail.icloud.com": (EMAIL, "iCloud Mail", ()),
}
# Engines with a site per country: matched on the label before the public suffix.
_SEARCH_BRANDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "google": ("Google", ("q",)),
    "bing": ("Bing", ("q",)),
    "yahoo": ("Yahoo!", ("p", "q")),
    "yandex": ("Yandex", ("text",)),
    "naver": ("Naver", ("query",)),
    "baidu": ("Baidu", ("wd", "word")),
    "duckduckgo": ("DuckDuckGo", ("q",)),
}
# Second-level labels used under country codes: google.co.uk, yahoo.com.au, ...
_GENERIC_SLD = frozenset({"co", "com", "net", "org", "ac", "gov", "ne", "or", "go"})


def empty_referrer() -> dict[str, Any]:
    return {"referrer": _blank()}


def parse_referrer(referrer_url: Any, page_url: Any) -> dict[str, Any]:
    return {"referrer": _referrer(referrer_url, page_url)}


def _blank() -> dict[str, Any]:
    return {"medium": UNKNOWN, "source": None, "term": None}


def _referrer(referrer_url: Any, page_url: Any) -> dict[str, Any]:
    host, query = _host_and_query(referrer_url)
    if host is None:
        return _blank()
    page_host, _ = _host_and_query(page_url)
    if page_host is not None and _bare(host) == _bare(page_host):
        return {"medium": INTERNAL, "source": None, "term": None}
    found = _classify(host)
    if found is None:
        return _blank()
    medium, source, params = found
    return {"medium": medium, "source": source, "term": _term(query, params)}


def _host_and_query(url: Any) -> tuple[str | None, str]:
    if type(url) is not str or not url:
        return None, ""
    try:
        parts = urlsplit(url[:8192].strip())
        return parts.hostname or None, parts.query
    except ValueError:
        return None, ""


def _bare(host: str) -> str:
    return host[4:] if host.startswith("www.") else host


def _classify(host: str) -> tuple[str, str, tuple[str, ...]] | None:
    labels = host.rstrip(".").split(".")
    for start in range(len(labels) - 1):
        found = _HOSTS.get(".".join(labels[start:]))
        if found is not None:
            return found
    # brand.tld or brand.co.tld (google.de, google.co.uk), with any subdomain before it
    for index in (-2, -3):
        if len(labels) >= -index:
            brand = _SEARCH_BRANDS.get(labels[index])
            if brand is not None and (index == -2 or labels[-2] in _GENERIC_SLD):
                return SEARCH, brand[0], brand[1]
    return None


def _term(query: str, params: tuple[str, ...]) -> str | None:
    if not params or not query:
        return None
    values = dict(parse_qsl(query[:8192], keep_blank_values=False))
    for name in params:
        if values.get(name):
            return values[name]
    return None
