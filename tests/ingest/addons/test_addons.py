"""The data-enrichment add-ons, alone and through the pipeline."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.ingest.addons import AddonRegistry
from app.ingest.addons.date_time import parse_date_time
from app.ingest.addons.geo import GeoLocator, default_geoip_database, empty_geo
from app.ingest.addons.referrer import parse_referrer
from app.ingest.addons.url import parse_url
from app.ingest.addons.user_agent import parse_user_agent
from tests.ingest.steps.pipeline_support import accept, registry, reject

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1"
)
CHROME_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.6099.109 Safari/537.36"
)
IPAD = (
    "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/16.6 Mobile/15E148 Safari/604.1"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"

needs_geo_data = pytest.mark.skipif(
    default_geoip_database() is None, reason="the maxminddb-geolite2 data package is missing"
)


def addon(name: str, inputs: dict, output: str = "out") -> dict:
    return {"name": name, "input": inputs, "output": output}


# keen:ip_to_geo -------------------------------------------------------------------------


@needs_geo_data
def test_ip_to_geo_with_real_data() -> None:
    geo = registry().geo.locate("81.2.69.160")
    assert geo["country"] == "United Kingdom"
    assert geo["country_code"] == "GB"
    assert geo["continent"] == "Europe"
    assert geo["province"] == "England"
    assert geo["city"]
    longitude, latitude = geo["coordinates"]
    assert -1 < longitude < 1 and 51 < latitude < 52
    assert registry().geo.locate("8.8.8.8")["country_code"] == "US"
    assert registry().geo.locate("2001:4860:4860::8888")["country_code"] == "US"


@pytest.mark.parametrize(
    "ip", ["10.0.0.1", "127.0.0.1", "::1", "not an ip", "", 42, None, "1" * 100]
)
def test_ip_to_geo_unknown_is_null_filled(ip: object) -> None:
    assert registry().geo.locate(ip) == empty_geo()


def test_ip_to_geo_without_a_database_is_null_filled() -> None:
    assert GeoLocator(None).locate("8.8.8.8") == empty_geo()


@needs_geo_data
def test_configured_database_path_is_used() -> None:
    path = default_geoip_database()
    assert path is not None
    configured = AddonRegistry(Path(path))
    assert configured.geo.locate("8.8.8.8")["country_code"] == "US"
    configured.close()


def test_missing_configured_database_fails_at_start(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        AddonRegistry(tmp_path / "missing.mmdb")


@needs_geo_data
def test_ip_to_geo_in_the_pipeline_and_remove_ip_property() -> None:
    body = accept(
        {
            "visitor": {"ip": "81.2.69.160"},
            "keen": {
                "addons": [
                    addon(
                        "keen:ip_to_geo",
                        {"ip": "visitor.ip", "remove_ip_property": True},
                        "visitor.geo",
                    )
                ]
            },
        }
    ).body
    assert body["visitor"]["geo"]["country_code"] == "GB"
    assert "ip" not in body["visitor"]
    kept = accept(
        {"ip": "81.2.69.160", "keen": {"addons": [addon("keen:ip_to_geo", {"ip": "ip"}, "geo")]}}
    ).body
    assert kept["ip"] == "81.2.69.160"


# keen:ua_parser -------------------------------------------------------------------------


def test_ua_parser_shape_and_values() -> None:
    parsed = parse_user_agent(IPHONE)
    assert parsed == {
        "device": {"family": "iPhone", "type": "mobile phone"},
        "browser": {
            "family": "Mobile Safari",
            "major": 17,
            "minor": 2,
            "patch": None,
            "patch_minor": None,
        },
        "os": {"family": "iOS", "major": 17, "minor": 2, "patch": 1, "patch_minor": None},
    }
    desktop = parse_user_agent(CHROME_WINDOWS)
    assert desktop["browser"]["family"] == "Chrome"
    assert desktop["browser"]["major"] == 120
    assert desktop["os"]["family"] == "Windows"
    assert desktop["device"]["type"] == "desktop"
    assert parse_user_agent(IPAD)["device"]["type"] == "tablet"
    assert parse_user_agent(GOOGLEBOT)["device"]["type"] == "bot"


@pytest.mark.parametrize("ua", ["", "garbage", 12, "x" * 100_000])
def test_ua_parser_unknowns(ua: object) -> None:
    parsed = parse_user_agent(ua)
    assert parsed["browser"]["family"] == "Other"
    assert parsed["os"]["family"] == "Other"
    assert parsed["device"] == {"family": "Other"}


# keen:url_parser ------------------------------------------------------------------------


def test_url_parser() -> None:
    assert parse_url("https://Shop.Example.com:8443/cart/view?item=book&qty=2&qty=3&e=#top") == {
        "cleaned_url": "https://shop.example.com:8443/cart/view",
        "protocol": "https",
        "domain": "shop.example.com",
        "port": 8443,
        "path": "/cart/view",
        "anchor": "top",
        "query_string": {"item": "book", "qty": "3", "e": ""},
    }


def test_url_parser_makes_query_names_legal() -> None:
    query = parse_url("http://a.example/?a.b=1&$c=2&=3&n%00ul=4")["query_string"]
    assert query == {"a_b": "1", "_c": "2", "nul": "4"}


@pytest.mark.parametrize("url", ["", "not a url", "http://[::1", 5, "//x"])
def test_url_parser_odd_input(url: object) -> None:
    parsed = parse_url(url)
    assert set(parsed) == {
        "cleaned_url",
        "protocol",
        "domain",
        "port",
        "path",
        "anchor",
        "query_string",
    }


# keen:referrer_parser -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("referrer", "expected"),
    [
        ("https://www.google.com/search?q=red+shoes", ("SEARCH", "Google", "red shoes")),
        ("https://www.google.co.uk/", ("SEARCH", "Google", None)),
        ("https://www.bing.com/search?q=inbound", ("SEARCH", "Bing", "inbound")),
        ("https://uk.search.yahoo.com/search?p=kafka", ("SEARCH", "Yahoo!", "kafka")),
        ("https://yandex.ru/search/?text=kafka", ("SEARCH", "Yandex", "kafka")),
        ("https://duckduckgo.com/?q=events", ("SEARCH", "DuckDuckGo", "events")),
        # social networks are not a Keen medium
        ("https://l.facebook.com/l.php?u=x", ("UNKNOWN", None, None)),
        ("https://t.co/abc", ("UNKNOWN", None, None)),
        ("https://news.ycombinator.com/item?id=1", ("UNKNOWN", None, None)),
        ("https://mail.google.com/mail/u/0/", ("EMAIL", "Gmail", None)),
        ("https://mail.yahoo.com/d/folders/1", ("EMAIL", "Yahoo! Mail", None)),
        ("https://blog.example.org/post", ("UNKNOWN", None, None)),
        ("not a url", ("UNKNOWN", None, None)),
    ],
)
def test_referrer_parser(referrer: str, expected: tuple) -> None:
    got = parse_referrer(referrer, "https://shop.example.com/")["referrer"]
    assert (got["medium"], got["source"], got["term"]) == expected


def test_referrer_internal() -> None:
    got = parse_referrer("https://www.shop.example.com/a", "https://shop.example.com/b")
    assert got == {"referrer": {"medium": "INTERNAL", "source": None, "term": None}}
    # a page_url that is not a URL string cannot make it internal
    assert parse_referrer("https://shop.example.com/a", 5)["referrer"]["medium"] == "UNKNOWN"


# keen:date_time_parser ------------------------------------------------------------------


def test_date_time_parser() -> None:
    assert parse_date_time("2026-11-24T19:07:46.123+05:30") == {
        "millisecond": 123,
        "second": 46,
        "minute": 37,
        "hour": 13,
        "day_of_week": 2,
        "day_of_week_string": "Tuesday",
        "day_of_month": 24,
        "week": 48,
        "month": 11,
        "year": 2026,
        "timezone_offset": 19800,
    }
    sunday = parse_date_time("2026-11-29")
    assert (sunday["day_of_week"], sunday["day_of_week_string"]) == (7, "Sunday")
    assert sunday["timezone_offset"] == 0


@pytest.mark.parametrize("value", ["soon", "", 5, None, "2026-02-30"])
def test_date_time_parser_nulls(value: object) -> None:
    assert set(parse_date_time(value).values()) == {None}


def test_date_time_parser_reads_keen_timestamp() -> None:
    body = accept(
        {
            "keen": {
                "timestamp": "2026-11-24T19:07:46.5Z",
                "addons": [addon("keen:date_time_parser", {"date_time": "keen.timestamp"}, "when")],
            }
        }
    ).body
    assert body["when"]["hour"] == 19
    assert body["when"]["millisecond"] == 500


# the add-on step ------------------------------------------------------------------------


def test_all_addons_in_one_event_in_order() -> None:
    body = accept(
        {
            "page": "https://shop.example.com/p?x=1",
            "ref": "https://www.google.de/search?q=hut",
            "ua": IPHONE,
            "keen": {
                "addons": [
                    addon("keen:url_parser", {"url": "page"}, "parsed.page"),
                    addon(
                        "keen:referrer_parser",
                        {"referrer_url": "ref", "page_url": "page"},
                        "parsed.ref",
                    ),
                    addon("keen:ua_parser", {"ua_string": "ua"}, "parsed.ua"),
                    # reads what the first add-on wrote
                    addon("keen:url_parser", {"url": "parsed.page.query_string.x"}, "again"),
                ]
            },
        }
    ).body
    assert body["parsed"]["page"]["domain"] == "shop.example.com"
    assert body["parsed"]["ref"] == {
        "referrer": {"medium": "SEARCH", "source": "Google", "term": "hut"}
    }
    assert body["parsed"]["ua"]["os"]["family"] == "iOS"
    assert body["again"]["path"] == "1"


def test_missing_input_skips_the_addon() -> None:
    body = accept(
        {
            "nothing": None,
            "keen": {
                "addons": [
                    addon("keen:url_parser", {"url": "absent.path"}, "u"),
                    addon("keen:url_parser", {"url": "nothing"}, "v"),
                    addon(
                        "keen:referrer_parser", {"referrer_url": "absent", "page_url": "page"}, "w"
                    ),
                ]
            },
        }
    ).body
    assert "u" not in body and "v" not in body and "w" not in body


def test_referrer_parser_needs_both_inputs() -> None:
    # a page_url property missing from the event skips the add-on, like any required input
    body = accept(
        {
            "ref": "https://t.co/x",
            "keen": {
                "addons": [
                    addon("keen:referrer_parser", {"referrer_url": "ref", "page_url": "gone"}, "r")
                ]
            },
        }
    ).body
    assert "r" not in body
    # a request that does not map page_url at all is malformed
    rejection = reject(
        {
            "ref": "https://t.co/x",
            "keen": {"addons": [addon("keen:referrer_parser", {"referrer_url": "ref"}, "r")]},
        },
        "addon_error",
    )
    assert "'page_url' is required" in rejection.message


@pytest.mark.parametrize(
    "entries",
    [
        "keen:ua_parser",
        {"name": "keen:ua_parser"},
        [addon("keen:ua_parser", {"ua_string": "ua"})] * 17,
        ["keen:ua_parser"],
        [addon("keen:nope", {"x": "y"})],
        [addon("ua_parser", {"ua_string": "ua"})],
        [{"name": 5, "input": {}, "output": "o"}],
        [{"name": "keen:ua_parser", "input": {"ua_string": "ua"}}],
        [{"name": "keen:ua_parser", "input": {"ua_string": "ua"}, "output": "o", "extra": 1}],
        [addon("keen:ua_parser", "ua")],
        [addon("keen:ua_parser", {})],
        [addon("keen:ua_parser", {"ua_string": ""})],
        [addon("keen:ua_parser", {"ua_string": "a..b"})],
        [addon("keen:ua_parser", {"ua_string": 5})],
        [addon("keen:ua_parser", {"ua_string": "ua", "bogus": "x"})],
        [addon("keen:ip_to_geo", {"ip": "ua", "remove_ip_property": "yes"})],
        [addon("keen:ua_parser", {"ua_string": "ua"}, "")],
        [addon("keen:ua_parser", {"ua_string": "ua"}, "keen.ua")],
        [addon("keen:ua_parser", {"ua_string": "ua"}, "a.$b")],
        [addon("keen:ua_parser", {"ua_string": "ua"}, ".".join(["p"] * 17))],
        [addon("keen:ua_parser", {"ua_string": "ua"}, "ua.parsed")],  # "ua" is a string
    ],
)
def test_malformed_requests_are_addon_errors(entries: object) -> None:
    rejection = reject({"ua": IPHONE, "keen": {"addons": entries}}, "addon_error")
    assert rejection.stage == "enrich"
    assert rejection.detail["path"].startswith("keen.addons")


def test_a_malformed_entry_refuses_before_any_addon_runs() -> None:
    reject(
        {
            "ua": IPHONE,
            "keen": {
                "addons": [addon("keen:ua_parser", {"ua_string": "ua"}, "ok"), addon("bad", {})]
            },
        },
        "addon_error",
    )


def test_unknown_name_message_lists_the_addons() -> None:
    rejection = reject({"keen": {"addons": [addon("keen:nope", {})]}}, "addon_error")
    for name in registry().names:
        assert name in rejection.message
