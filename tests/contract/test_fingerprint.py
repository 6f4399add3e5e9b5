"""The fingerprint rule (docs/design.md, "Problems"): which rejections share a problem and which
do not, one test per error code, with ids and titles written out from the documented rule."""

from __future__ import annotations

import hashlib

import pytest

from app.contract.errors import ERROR_CODES
from app.contract.fingerprint import normalize_path, overflow_of, problem_of

PID = "ab" * 12
OTHER_PID = "cd" * 12
DOLLAR = "starts with '$'"


def rule(project: str, collection: str, code: str, location: str) -> str:
    """The documented rule, written out independently of the module."""
    joined = "\x1f".join((project, collection, code, location))
    return hashlib.sha256(joined.encode()).hexdigest()[:32]


def pid_of(code: str, detail: dict, collection: str = "purchases", project: str = PID) -> str:
    return problem_of(project, collection, code, detail).problem_id


# (code, two details of that code that share a problem, one that does not or None when every
# rejection of the code in a collection is one problem)
CASES = {
    "event_too_large": (
        {"bytes": 1_000_000, "limit": 921_600},
        {"bytes": 5_000_000, "limit": 921_600},
        None,
    ),
    "empty_value": ({"bytes": 0, "null": True}, {"bytes": 0, "null": False}, None),
    "invalid_utf8": (
        {"byte_offset": 3},
        {"char_offset": 17, "reason": "lone surrogate escape"},
        None,
    ),
    "invalid_json": (
        {"char_offset": 1, "reason": "unexpected character: line 1 column 2 (char 1)"},
        {"char_offset": 90, "reason": "unexpected end of data: line 1 column 91 (char 90)"},
        None,
    ),
    "not_an_object": ({"type": "an array"}, {"type": "a string"}, None),
    "invalid_collection_name": ({"collection": "bad name"}, {"collection": "bad name"}, None),
    "collection_name_too_long": (
        {"collection": "x" * 65, "length": 65},
        {"collection": "x" * 65, "length": 65},
        None,
    ),
    "unknown_project": ({"project_id": PID}, {"topic": "elsewhere"}, None),
    # The keys breakdown tells the keys apart, not the problem.
    "key_not_permitted": ({"key_id": "k1"}, {"key_id": "k2"}, None),
    "invalid_property_name": (
        {"path": "items[3].$price", "reason": DOLLAR, "count": 1},
        {"path": "items[7].$price", "reason": DOLLAR, "count": 4},
        {"path": "items[3].$cost", "reason": DOLLAR, "count": 1},
    ),
    "reserved_property": (
        {"path": "keen.location", "count": 1},
        {"path": "keen.location", "count": 2},
        {"path": "keen.id", "count": 1},
    ),
    "invalid_timestamp": (
        {"path": "keen.timestamp", "value": "yesterday"},
        {"path": "keen.timestamp", "value": "1700000000"},
        None,
    ),
    "invalid_property_value": (
        {"path": "notes[3].text", "reason": "contains the NUL character"},
        {"path": "notes[0].text", "reason": "contains the NUL character"},
        {"path": "title", "reason": "contains the NUL character"},
    ),
    "too_deeply_nested": (
        {"path": "a[0].b[4].c", "limit": 32},
        {"path": "a[9].b[1].c", "limit": 32},
        {"path": "a[0].d", "limit": 32},
    ),
    "addon_error": (
        {"path": "keen.addons[0]"},
        {"path": "keen.addons[2]"},
        {"path": "keen.addons"},
    ),
}


def test_every_error_code_has_a_case() -> None:
    assert set(CASES) == ERROR_CODES


@pytest.mark.parametrize("code", sorted(CASES))
def test_which_rejections_of_a_code_share_a_problem(code: str) -> None:
    same_a, same_b, different = CASES[code]
    assert pid_of(code, same_a) == pid_of(code, same_b)
    if different is not None:
        assert pid_of(code, different) != pid_of(code, same_a)
    # Never across projects or codes; across collections only for the codes about the
    # collection or project name itself, which group per project (a client can make up any
    # number of bad names).
    if code in ("invalid_collection_name", "collection_name_too_long", "unknown_project"):
        assert pid_of(code, same_a, collection="refunds") == pid_of(code, same_a)
        assert problem_of(PID, "bad name!", code, same_a).collection == ""
    else:
        assert pid_of(code, same_a, collection="refunds") != pid_of(code, same_a)
        assert problem_of(PID, "refunds", code, same_a).collection == "refunds"
    assert pid_of(code, same_a, project=OTHER_PID) != pid_of(code, same_a)
    other_code = "addon_error" if code != "addon_error" else "invalid_json"
    assert pid_of(other_code, same_a) != pid_of(code, same_a)


def test_codes_without_a_path_group_by_the_code_alone() -> None:
    for code in ("invalid_json", "key_not_permitted", "event_too_large"):
        assert pid_of(code, {"char_offset": 4}) == rule(PID, "purchases", code, "")
        assert problem_of(PID, "purchases", code, {}).location == ""
    for code in ("invalid_collection_name", "collection_name_too_long", "unknown_project"):
        assert pid_of(code, {"collection": "x y"}, collection="x y") == rule(PID, "", code, "")


def test_problem_ids_follow_the_documented_rule_literally() -> None:
    key = problem_of(PID, "purchases", "invalid_property_name", {"path": "items[3].$price"})
    assert key.location == "items[].$price"
    assert key.problem_id == rule(PID, "purchases", "invalid_property_name", "items[].$price")
    # Written out once, so a change of the rule (or of its separator) cannot pass unnoticed.
    assert (
        key.problem_id
        == hashlib.sha256(
            b"abababababababababababab\x1fpurchases\x1finvalid_property_name\x1fitems[].$price"
        ).hexdigest()[:32]
    )
    assert len(key.problem_id) == 32
    assert pid_of("invalid_json", {"char_offset": 1}) == rule(PID, "purchases", "invalid_json", "")


@pytest.mark.parametrize(
    ("code", "detail", "title"),
    [
        (
            "invalid_property_name",
            {"path": "items[3].$price", "reason": DOLLAR},
            "Property name `$price` starts with `$` in items[]",
        ),
        (
            "invalid_property_name",
            {"path": "$price", "reason": DOLLAR},
            "Property name `$price` starts with `$`",
        ),
        (
            "invalid_property_name",
            {"path": "user.", "reason": "empty"},
            "A property name is empty in user",
        ),
        (
            "invalid_property_name",
            {"path": "a.b.c", "reason": "contains '.'"},
            "A property name contains `.` at `a.b.c`",
        ),
        (
            "invalid_property_name",
            {"path": "tags[2].x\x00y", "reason": "contains the NUL character"},
            "Property name `x\ufffdy` contains the NUL character in tags[]",
        ),
        (
            "invalid_property_name",
            {"path": "users.12345.$x"},
            "Property name `$x` is not allowed in users.*",
        ),
        ("invalid_json", {"char_offset": 1, "reason": "x"}, "Event is not valid JSON"),
        ("event_too_large", {"bytes": 10**6}, "Event larger than 900 KB"),
        ("key_not_permitted", {"key_id": "k1"}, "Key not permitted to write to this project"),
        ("reserved_property", {"path": "keen.location"}, "Reserved property at `keen.location`"),
        (
            "invalid_timestamp",
            {"path": "keen.timestamp", "value": "soon"},
            "keen.timestamp is not an ISO-8601 date-time",
        ),
        (
            "too_deeply_nested",
            {"path": "a[0].b", "limit": 32},
            "Nested more than 32 levels deep at `a[].b`",
        ),
        ("addon_error", {"path": "keen.addons[1]"}, "Add-on error at `keen.addons[]`"),
    ],
)
def test_titles(code: str, detail: dict, title: str) -> None:
    assert problem_of(PID, "purchases", code, detail).title == title


@pytest.mark.parametrize(
    "key",
    [
        "12345",
        "123e4567-e89b-12d3-a456-426614174000",
        "123e4567e89b12d3a456426614174000",
        "507f1f77bcf86cd799439011",  # a Mongo ObjectId
        "01ARZ3NDEKTSV4RRFFQ69G5FAV",  # a ULID
        "01arz3ndektsv4rrffq69g5fav",  # a ULID, lower case
        "5f1c9a0e2b7d",  # 12 hex with a digit
    ],
)
def test_map_keys_that_look_like_ids_collapse(key: str) -> None:
    detail = {"path": f"users.{key}.$x", "reason": DOLLAR}
    key_ = problem_of(PID, "purchases", "invalid_property_name", detail)
    assert key_.location == "users.*.$x"
    assert key_.problem_id == pid_of("invalid_property_name", {"path": "users.999.$x"})
    assert key_.title == "Property name `$x` starts with `$` in users.*"


@pytest.mark.parametrize(
    "name",
    [
        "address2",
        "conversion_rate_2024_q1_total",
        "deadbeef",  # 8 hex only
        "deadbeefdeadbeef",  # hex but no digit: a word
        "ABCDEFGHJKMNPQRSTVWXYZABCD",  # 26 Crockford letters, no digit
        "orders",
    ],
)
def test_map_keys_that_are_property_names_stay(name: str) -> None:
    location = problem_of(PID, "c", "invalid_property_name", {"path": f"{name}.$x"}).location
    assert location == f"{name}.$x"
    assert pid_of("invalid_property_name", {"path": f"{name}.$x"}) != pid_of(
        "invalid_property_name", {"path": "other.$x"}
    )


def test_array_positions_collapse_at_every_level() -> None:
    assert normalize_path("a[1][22].b[333].$c") == "a[][].b[].$c"
    assert normalize_path("[4].$c") == "[].$c"
    assert pid_of("too_deeply_nested", {"path": "a[1][2].b"}) == pid_of(
        "too_deeply_nested", {"path": "a[7][0].b"}
    )


def test_nul_in_a_path_is_replaced_like_the_stored_detail() -> None:
    # The error row stores the detail with NUL replaced (PostgreSQL refuses NUL); the stored
    # row must fingerprint to the same problem as the live rejection.
    live = problem_of(PID, "c", "invalid_property_name", {"path": "a\x00b.$x"})
    stored = problem_of(PID, "c", "invalid_property_name", {"path": "a\ufffdb.$x"})
    assert live == stored
    assert live.location == "a\ufffdb.$x"
    assert "\x00" not in live.title


def test_a_capped_path_is_a_bounded_location_and_title() -> None:
    # The property step caps a path at 300 characters and marks the cut with "…".
    path = ".".join(["level"] * 60)[:300] + "…"
    key = problem_of(PID, "c", "too_deeply_nested", {"path": path, "limit": 32})
    assert key.location == path  # nothing to collapse in it
    assert key.problem_id == rule(PID, "c", "too_deeply_nested", path)
    assert key.title == "Nested more than 32 levels deep at `" + path[:64] + "…`"
    name_cut = "a." + "$" + "p" * 297 + "…"
    title = problem_of(PID, "c", "invalid_property_name", {"path": name_cut, "reason": DOLLAR})
    assert title.title == "Property name `$" + "p" * 63 + "…` starts with `$` in a"


@pytest.mark.parametrize("path", [5, None, ["items", 3], {"a": 1}, True])
def test_a_path_that_is_not_a_string_counts_as_no_path(path: object) -> None:
    key = problem_of(PID, "c", "addon_error", {"path": path})
    assert key.location == ""
    assert key.problem_id == rule(PID, "c", "addon_error", "")
    assert key.title == "Add-on error"


def test_a_non_string_reason_is_no_reason() -> None:
    key = problem_of(PID, "c", "invalid_property_name", {"path": "$x", "reason": ["x"]})
    assert key.title == "Property name `$x` is not allowed"


def test_hostile_names_pass_unchanged_but_bounded() -> None:
    # Escaping is the page's job; the fingerprint keeps what was sent, in bounded length.
    bidi = "\u202eevil\u202c"
    key = problem_of(PID, "c", "invalid_property_name", {"path": f"a.${bidi}", "reason": DOLLAR})
    assert key.title == f"Property name `${bidi}` starts with `$` in a"
    script = "<script>alert(1)</script>"
    key = problem_of(PID, "c", "reserved_property", {"path": f"keen.{script}"})
    assert key.title == f"Reserved property at `keen.{script}`"
    # A long name as the property step reports it: parent and name shown 64 characters each.
    long_name = "$<script>" + "\u202e" * 240
    path = "<b>" * 30 + "." + long_name
    key = problem_of(PID, "c", "invalid_property_name", {"path": path, "reason": DOLLAR})
    assert key.title == (
        "Property name `" + long_name[:64] + "…` starts with `$` in " + ("<b>" * 30)[:64] + "…"
    )
    # Whatever a detail says, the location and title stay bounded.
    huge = "<script>" + "x" * 5000
    for code in ("invalid_property_name", "reserved_property", "too_deeply_nested"):
        key = problem_of(PID, "c", code, {"path": f"{huge}.${huge}", "reason": DOLLAR})
        assert len(key.title) < 200
        assert len(key.location) == 320


def test_overflow_problem_is_its_own_problem_per_project_and_code() -> None:
    spill = overflow_of(PID, "invalid_property_name")
    five = "\x1f".join((PID, "", "invalid_property_name", "(other locations)", "overflow"))
    assert spill.problem_id == hashlib.sha256(five.encode()).hexdigest()[:32]
    assert spill.location == "(other locations)"
    assert spill.collection == ""
    assert spill.title == (
        "Invalid property name (other problems, over the project's problem limit)"
    )
    # No detail can name it: a path "(other locations)" is a problem of its own.
    literal = pid_of("invalid_property_name", {"path": "(other locations)"})
    assert literal != spill.problem_id
    assert overflow_of(OTHER_PID, "invalid_property_name") != spill
    assert overflow_of(PID, "reserved_property") != spill
