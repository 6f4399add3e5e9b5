"""keen:url_parser: ``{cleaned_url, protocol, domain, port, path, anchor, query_string}``.

Every field is always written; a part the URL lacks is null (as in Keen's output), and a
value that is not a URL string gives all nulls. ``protocol`` is the scheme without ``://``,
``domain`` the host name (lower case, without port or credentials), ``port`` a number, only
when the URL states one. ``cleaned_url`` is the URL without credentials, query string and
anchor (our reading of Keen's field: ``protocol://domain[:port]path``).

``query_string`` is an object ``{name: value}``, null when the URL has no query. A repeated
name keeps its last value, and names are made into legal property names (our choice, so
the stored event obeys the property rules): ``.`` becomes ``_``, a leading ``$`` becomes
``_``, NUL is dropped, length is cut to 256, and empty names are left out.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

MAX_URL_CHARS = 8192
MAX_QUERY_FIELDS = 256
_KEYS = ("cleaned_url", "protocol", "domain", "port", "path", "anchor", "query_string")


def empty_url() -> dict[str, Any]:
    return dict.fromkeys(_KEYS)


def parse_url(url: Any) -> dict[str, Any]:
    if type(url) is not str or not url:
        return empty_url()
    try:
        parts = urlsplit(url[:MAX_URL_CHARS].strip())
        host = parts.hostname or None
    except ValueError:  # e.g. an unbalanced IPv6 bracket
        return empty_url()
    try:
        port = parts.port
    except ValueError:  # not a number, or out of 0..65535: no port rather than no URL
        port = None
    query: dict[str, str] | None = None
    if parts.query:
        query = {}
        try:
            pairs = parse_qsl(parts.query, keep_blank_values=True, max_num_fields=MAX_QUERY_FIELDS)
        except ValueError:  # more fields than the cap
            pairs = parse_qsl(parts.query[:4096], keep_blank_values=True)[:MAX_QUERY_FIELDS]
        for name, value in pairs:
            safe = safe_property_name(name)
            if safe:
                query[safe] = value
    return {
        "cleaned_url": _cleaned(parts.scheme, host, port, parts.path),
        "protocol": parts.scheme or None,
        "domain": host,
        "port": port,
        "path": parts.path or None,
        "anchor": parts.fragment or None,
        "query_string": query,
    }


def _cleaned(scheme: str, host: str | None, port: int | None, path: str) -> str | None:
    netloc = ""
    if host is not None:
        netloc = f"[{host}]" if ":" in host else host
        if port is not None:
            netloc = f"{netloc}:{port}"
    return urlunsplit((scheme, netloc, path, "", "")) or None


def safe_property_name(name: str) -> str:
    cleaned = name.replace("\x00", "").replace(".", "_")[:256]
    if cleaned.startswith("$"):
        cleaned = "_" + cleaned[1:]
    return cleaned
