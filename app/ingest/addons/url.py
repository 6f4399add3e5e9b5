"""keen:url_parser: ``{protocol, domain, path, anchor, query_string: {name: value}}``.

``protocol`` is the scheme without ``://``, ``domain`` the host name (lower case, without
port or credentials), unknown parts null. In ``query_string`` a repeated name keeps its
last value, and names are made into legal property names (our choice, so the stored event
obeys the property rules): ``.`` becomes ``_``, a leading ``$`` becomes ``_``, NUL is
dropped, length is cut to 256, and empty names are left out.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

MAX_URL_CHARS = 8192
MAX_QUERY_FIELDS = 256


def empty_url() -> dict[str, Any]:
    return {"protocol": None, "domain": None, "path": None, "anchor": None, "query_string": {}}


def parse_url(url: Any) -> dict[str, Any]:
    if type(url) is not str or not url:
        return empty_url()
    try:
        parts = urlsplit(url[:MAX_URL_CHARS].strip())
        host = parts.hostname
    except ValueError:  # e.g. an unbalanced IPv6 bracket
        return empty_url()
    query: dict[str, str] = {}
    if parts.query:
        try:
            pairs = parse_qsl(parts.query, keep_blank_values=True, max_num_fields=MAX_QUERY_FIELDS)
        except ValueError:  # more fields than the cap
            pairs = parse_qsl(parts.query[:4096], keep_blank_values=True)[:MAX_QUERY_FIELDS]
        for name, value in pairs:
            safe = safe_property_name(name)
            if safe:
                query[safe] = value
    return {
        "protocol": parts.scheme or None,
        "domain": host or None,
        "path": parts.path or None,
        "anchor": parts.fragment or None,
        "query_string": query,
    }


def safe_property_name(name: str) -> str:
    cleaned = name.replace("\x00", "").replace(".", "_")[:256]
    if cleaned.startswith("$"):
        cleaned = "_" + cleaned[1:]
    return cleaned
