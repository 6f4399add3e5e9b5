"""Each add-on's output pinned, as a literal dict, to the shape Keen's documentation gives.

Keen's data-enrichment pages are the reference: the ua_parser example below is Keen's own;
the others follow the field lists Keen documents (see README, "Keen compatibility").
"""

from __future__ import annotations

import pytest

from app.ingest.addons.date_time import parse_date_time
from app.ingest.addons.geo import GeoLocator, default_geoip_database
from app.ingest.addons.referrer import parse_referrer
from app.ingest.addons.url import parse_url
from app.ingest.addons.user_agent import parse_user_agent
from tests.ingest.steps.pipeline_support import accept, registry

# The user agent of Keen's keen:ua_parser example.
KEEN_EXAMPLE_UA = (
    "Mozilla/5.0 (iPhone; U; CPU iPhone OS 5_1_1 like Mac OS X; en AppleWebKit/534.46.0 "
    "(KHTML, like Gecko) CriOS/19.0.1084.60 Mobile/9B206 Safari/7534.48.3"
)
KEEN_EXAMPLE_UA_OUTPUT = {
    "device": {"family": "iPhone", "type": "mobile phone"},
    "browser": {
        "family": "Chrome Mobile iOS",
        "major": 19,
        "minor": 0,
        "patch": 1084,
        "patch_minor": 60,
    },
    "os": {"family": "iOS", "major": 5, "minor": 1, "patch": 1, "patch_minor": None},
}
PAGE = "https://shop.example.com:8443/cool/link?source=twitter&foo=bar#title"
PAGE_OUTPUT = {
    "cleaned_url": "https://shop.example.com:8443/cool/link",
    "protocol": "https",
    "domain": "shop.example.com",
    "port": 8443,
    "path": "/cool/link",
    "anchor": "title",
    "query_string": {"source": "twitter", "foo": "bar"},
}
NULL_UA_VERSIONS = {"major": None, "minor": None, "patch": None, "patch_minor": None}


def addon(name: str, inputs: dict, output: str) -> dict:
    return {"name": name, "input": inputs, "output": output}


# keen:ua_parser -------------------------------------------------------------------------


def test_ua_parser_gives_keens_example_output() -> None:
    assert parse_user_agent(KEEN_EXAMPLE_UA) == KEEN_EXAMPLE_UA_OUTPUT


@pytest.mark.parametrize(
    ("ua", "kind"),
    [
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/120.0.6099.109 Safari/537.36",
            "desktop",
        ),
        (
            "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
            "Gecko) Version/16.6 Mobile/15E148 Safari/604.1",
            "tablet",
        ),
        (
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/120.0.0.0 Mobile Safari/537.36",
            "mobile phone",
        ),
    ],
)
def test_ua_parser_device_types_are_keens_words(ua: str, kind: str) -> None:
    assert parse_user_agent(ua)["device"]["type"] == kind


def test_ua_parser_versions_are_numbers() -> None:
    parsed = parse_user_agent(
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.6099.109 Safari/537.36"
    )
    assert parsed["browser"] == {
        "family": "Chrome",
        "major": 120,
        "minor": 0,
        "patch": 6099,
        "patch_minor": 109,
    }


@pytest.mark.parametrize("ua", ["", "garbage", 12, None])
def test_ua_parser_leaves_the_type_out_when_it_cannot_parse(ua: object) -> None:
    assert parse_user_agent(ua) == {
        "device": {"family": "Other"},
        "browser": {"family": "Other", **NULL_UA_VERSIONS},
        "os": {"family": "Other", **NULL_UA_VERSIONS},
    }


def test_ua_parser_crawler() -> None:
    parsed = parse_user_agent(
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
    )
    assert parsed["device"] == {"family": "Spider", "type": "bot"}
    assert parsed["browser"] == {
        "family": "Googlebot",
        "major": 2,
        "minor": 1,
        "patch": None,
        "patch_minor": None,
    }


# keen:url_parser ------------------------------------------------------------------------


def test_url_parser_full_shape() -> None:
    assert parse_url(PAGE) == PAGE_OUTPUT


def test_url_parser_writes_missing_parts_as_null() -> None:
    assert parse_url("http://my-website.com") == {
        "cleaned_url": "http://my-website.com",
        "protocol": "http",
        "domain": "my-website.com",
        "port": None,
        "path": None,
        "anchor": None,
        "query_string": None,
    }


def test_url_parser_drops_credentials_from_the_cleaned_url() -> None:
    assert parse_url("http://user:secret@[2001:db8::1]:80/a/b?#") == {
        "cleaned_url": "http://[2001:db8::1]:80/a/b",
        "protocol": "http",
        "domain": "2001:db8::1",
        "port": 80,
        "path": "/a/b",
        "anchor": None,
        "query_string": None,
    }


@pytest.mark.parametrize("url", [None, 5, "", "http://[::1"])
def test_url_parser_not_a_url_is_all_null(url: object) -> None:
    assert parse_url(url) == dict.fromkeys(
        ("cleaned_url", "protocol", "domain", "port", "path", "anchor", "query_string")
    )


def test_url_parser_bad_port_is_null() -> None:
    parsed = parse_url("http://a.example:99999/p")
    assert (parsed["port"], parsed["cleaned_url"]) == (None, "http://a.example/p")


# keen:referrer_parser -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("referrer_url", "expected"),
    [
        (
            "https://www.google.com/search?q=keen+io",
            {"medium": "SEARCH", "source": "Google", "term": "keen io"},
        ),
        ("https://mail.google.com/mail/u/0/", {"medium": "EMAIL", "source": "Gmail", "term": None}),
        ("https://www.shop.example.com/cart", {"medium": "INTERNAL", "source": None, "term": None}),
        ("https://blog.example.org/post", {"medium": "UNKNOWN", "source": None, "term": None}),
        # social networks are not one of Keen's mediums
        ("https://www.facebook.com/", {"medium": "UNKNOWN", "source": None, "term": None}),
        ("https://t.co/abc", {"medium": "UNKNOWN", "source": None, "term": None}),
        # malformed input gives blank values
        ("not a url", {"medium": "UNKNOWN", "source": None, "term": None}),
        ("http://[::1", {"medium": "UNKNOWN", "source": None, "term": None}),
        (42, {"medium": "UNKNOWN", "source": None, "term": None}),
    ],
)
def test_referrer_parser_shape(referrer_url: object, expected: dict) -> None:
    assert parse_referrer(referrer_url, PAGE) == {"referrer": expected}


def test_referrer_parser_takes_both_inputs() -> None:
    addon_ = registry().get("keen:referrer_parser")
    assert addon_ is not None
    assert addon_.required == {"referrer_url", "page_url"}
    assert addon_.optional == set()


# keen:date_time_parser ------------------------------------------------------------------


def test_date_time_parser_splits_in_utc() -> None:
    # 23:30 at UTC-5 is 04:30 the next day in UTC: the date rolls over too.
    assert parse_date_time("2026-11-24T23:30:15.250-05:00") == {
        "millisecond": 250,
        "second": 15,
        "minute": 30,
        "hour": 4,
        "day_of_week": 3,
        "day_of_week_string": "Wednesday",
        "day_of_month": 25,
        "week": 48,
        "month": 11,
        "year": 2026,
        "timezone_offset": -18000,
    }


def test_date_time_parser_utc_input() -> None:
    assert parse_date_time("2026-12-31T23:59:59Z") == {
        "millisecond": 0,
        "second": 59,
        "minute": 59,
        "hour": 23,
        "day_of_week": 4,
        "day_of_week_string": "Thursday",
        "day_of_month": 31,
        "week": 53,
        "month": 12,
        "year": 2026,
        "timezone_offset": 0,
    }


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:00:00-05:00"])
def test_date_time_parser_outside_the_calendar_in_utc_is_null(value: str) -> None:
    assert parse_date_time(value) == dict.fromkeys(
        (
            "millisecond",
            "second",
            "minute",
            "hour",
            "day_of_week",
            "day_of_week_string",
            "day_of_month",
            "week",
            "month",
            "year",
            "timezone_offset",
        )
    )


# keen:ip_to_geo -------------------------------------------------------------------------


def test_ip_to_geo_shape_without_data() -> None:
    assert GeoLocator(None).locate("8.8.8.8") == {
        "city": None,
        "province": None,
        "country": None,
        "country_code": None,
        "continent": None,
        "postal_code": None,
        "coordinates": None,
    }


@pytest.mark.skipif(default_geoip_database() is None, reason="no GeoLite2 data package")
def test_ip_to_geo_shape_with_data() -> None:
    geo = registry().geo.locate("81.2.69.160")
    assert set(geo) == {
        "city",
        "province",
        "country",
        "country_code",
        "continent",
        "postal_code",
        "coordinates",
    }
    longitude, latitude = geo["coordinates"]  # [lon, lat], as Keen writes it
    assert -1 < longitude < 1 and 51 < latitude < 52


# through the pipeline -------------------------------------------------------------------


def test_addon_outputs_land_in_the_recorded_event() -> None:
    body = accept(
        {
            "ua": KEEN_EXAMPLE_UA,
            "page": PAGE,
            "ref": "https://www.bing.com/search?q=events",
            "keen": {
                "timestamp": "2026-11-24T23:30:15.250-05:00",
                "addons": [
                    addon("keen:ua_parser", {"ua_string": "ua"}, "tech"),
                    addon("keen:url_parser", {"url": "page"}, "parsed_page_url"),
                    addon(
                        "keen:referrer_parser",
                        {"referrer_url": "ref", "page_url": "page"},
                        "referrer_info",
                    ),
                    addon("keen:date_time_parser", {"date_time": "keen.timestamp"}, "when"),
                ],
            },
        }
    ).body
    assert body["tech"] == KEEN_EXAMPLE_UA_OUTPUT
    assert body["parsed_page_url"] == PAGE_OUTPUT
    assert body["referrer_info"] == {
        "referrer": {"medium": "SEARCH", "source": "Bing", "term": "events"}
    }
    # keen.timestamp is already UTC: 04:30:15.250 on the 25th
    assert (body["when"]["hour"], body["when"]["day_of_month"]) == (4, 25)
    assert body["when"]["timezone_offset"] == 0


def test_keen_addons_are_omitted_from_the_recorded_event() -> None:
    body = accept(
        {
            "page": PAGE,
            "keen": {"addons": [addon("keen:url_parser", {"url": "page"}, "parsed")]},
        }
    ).body
    assert body["parsed"] == PAGE_OUTPUT
    assert "addons" not in body["keen"]
