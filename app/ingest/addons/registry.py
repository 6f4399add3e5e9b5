"""The add-ons by name, with the parameters each one takes.

Built once per worker: opening the GeoIP database and warming the user-agent parser are
too costly to do per event.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.ingest.addons.date_time import parse_date_time
from app.ingest.addons.geo import GeoLocator, default_geoip_database
from app.ingest.addons.referrer import parse_referrer
from app.ingest.addons.url import parse_url
from app.ingest.addons.user_agent import parse_user_agent


@dataclass(frozen=True)
class Addon:
    name: str
    required: frozenset[str]  # input parameters that must be mapped to a property path
    optional: frozenset[str]  # input parameters that may be mapped to a property path
    flags: frozenset[str]  # boolean options given in ``input`` next to the paths
    run: Callable[[dict[str, Any]], dict[str, Any]]


class AddonRegistry:
    def __init__(self, geoip_database: Path | None = None) -> None:
        """`geoip_database`: a MaxMind City .mmdb; None uses the bundled GeoLite2 City if
        installed, else keen:ip_to_geo writes null-filled results."""
        path = geoip_database if geoip_database is not None else default_geoip_database()
        self.geo = GeoLocator(path)
        addons = [
            Addon(
                "keen:ip_to_geo",
                frozenset({"ip"}),
                frozenset(),
                frozenset({"remove_ip_property"}),
                lambda values: self.geo.locate(values["ip"]),
            ),
            Addon(
                "keen:ua_parser",
                frozenset({"ua_string"}),
                frozenset(),
                frozenset(),
                lambda values: parse_user_agent(values["ua_string"]),
            ),
            Addon(
                "keen:url_parser",
                frozenset({"url"}),
                frozenset(),
                frozenset(),
                lambda values: parse_url(values["url"]),
            ),
            Addon(
                "keen:referrer_parser",
                frozenset({"referrer_url", "page_url"}),
                frozenset(),
                frozenset(),
                lambda values: parse_referrer(values["referrer_url"], values["page_url"]),
            ),
            Addon(
                "keen:date_time_parser",
                frozenset({"date_time"}),
                frozenset(),
                frozenset(),
                lambda values: parse_date_time(values["date_time"]),
            ),
        ]
        self._by_name = {addon.name: addon for addon in addons}
        # Parsed keen.addons lists by their JSON text, kept by the add-on step: producers send
        # the same few lists over and over.
        self.parsed_requests: dict[bytes, Any] = {}
        # ua-parser compiles its rules on first use (about a second): pay that at start-up.
        parse_user_agent("")

    def get(self, name: str) -> Addon | None:
        return self._by_name.get(name)

    @property
    def names(self) -> list[str]:
        return sorted(self._by_name)

    def close(self) -> None:
        self.geo.close()
