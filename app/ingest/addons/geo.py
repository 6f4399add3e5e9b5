"""keen:ip_to_geo over a MaxMind City database (GeoIP2 or GeoLite2 .mmdb).

Output: Keen's ``{city, province, country, continent, postal_code, coordinates}`` plus
``country_code`` (ours, the ISO 3166-1 alpha-2 code; it changes no Keen field), with English
names, ``province`` the first (largest) subdivision, and ``coordinates``
``[longitude, latitude]`` (GeoJSON order, as `within` filters expect). Anything the
database does not know, including private and malformed addresses, is null.

Without a configured database the GeoLite2 City file of the maxminddb-geolite2 package is
used: it includes GeoLite2 data created by MaxMind (CC BY-SA 3.0), from 2018, so
production should point INBOUND_GEOIP_DATABASE at a current City database.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import maxminddb

CACHE_SIZE = 65_536


def default_geoip_database() -> Path | None:
    """The GeoLite2 City file shipped by the maxminddb-geolite2 package, when installed."""
    try:
        import _maxminddb_geolite2  # type: ignore[import-not-found]
    except ImportError:
        return None
    path = Path(_maxminddb_geolite2.geolite2_database())
    return path if path.is_file() else None


def empty_geo() -> dict[str, Any]:
    return {
        "city": None,
        "province": None,
        "country": None,
        "country_code": None,
        "continent": None,
        "postal_code": None,
        "coordinates": None,
    }


class GeoLocator:
    def __init__(self, database: Path | None) -> None:
        # A configured path that cannot be opened is a deployment error: raise now, at start.
        self._reader = maxminddb.open_database(str(database)) if database is not None else None
        # The reader decodes a whole record (every language's names) per look-up, far more
        # than we keep; visitors' addresses repeat, so the kept fields are cached.
        self._cache: dict[str, tuple] = {}

    @property
    def available(self) -> bool:
        return self._reader is not None

    def locate(self, ip: Any) -> dict[str, Any]:
        if self._reader is None or type(ip) is not str or not ip or len(ip) > 64:
            return empty_geo()
        fields = self._cache.get(ip)
        if fields is None:
            fields = self._lookup(ip)
            if len(self._cache) >= CACHE_SIZE:
                self._cache.clear()
            self._cache[ip] = fields
        city, province, country, code, continent, postal, longitude, latitude = fields
        # A fresh dict every time: the event owns it, and later add-ons may write into it.
        return {
            "city": city,
            "province": province,
            "country": country,
            "country_code": code,
            "continent": continent,
            "postal_code": postal,
            "coordinates": (
                [longitude, latitude] if longitude is not None and latitude is not None else None
            ),
        }

    def _lookup(self, ip: str) -> tuple:
        assert self._reader is not None
        try:
            found = self._reader.get(ip.strip())
        except (ValueError, TypeError):
            found = None
        if not isinstance(found, dict):
            return (None,) * 8
        location = found.get("location") or {}
        subdivisions = found.get("subdivisions") or [{}]
        return (
            _english(found.get("city")),
            _english(subdivisions[0]),
            _english(found.get("country")),
            (found.get("country") or {}).get("iso_code"),
            _english(found.get("continent")),
            (found.get("postal") or {}).get("code"),
            location.get("longitude"),
            location.get("latitude"),
        )

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()


def _english(record: Any) -> str | None:
    if not isinstance(record, dict):
        return None
    names = record.get("names") or {}
    return names.get("en")
