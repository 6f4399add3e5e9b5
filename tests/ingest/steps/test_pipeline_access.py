"""Collection names from the topic, the project, and the writing key."""

from __future__ import annotations

from app.contract.headers import KEY_ID
from tests.ingest.steps.pipeline_support import OTHER_PROJECT, PROJECT, accept, reject

EVENT = {"a": 1}


def topic(collection: str, project: str = PROJECT) -> str:
    return f"in.{project}.{collection}"


def test_collection_and_project_come_from_the_topic() -> None:
    result = accept(EVENT, topic=topic("page.views_v2-x"))
    assert (result.project_id, result.collection) == (PROJECT, "page.views_v2-x")


def test_collection_characters() -> None:
    for name in ("with space", "ümlaut", "a/b", "a$b", "a,b", ""):
        rejection = reject(EVENT, "invalid_collection_name", topic=topic(name))
        assert rejection.stage == "validate"
        assert "rename" in rejection.message


def test_collection_length() -> None:
    accept(EVENT, topic=topic("c" * 64))
    rejection = reject(EVENT, "collection_name_too_long", topic=topic("c" * 65))
    assert rejection.detail["length"] == 65


def test_dlq_suffix_is_reserved() -> None:
    reject(EVENT, "invalid_collection_name", topic=topic("purchases-DLQ"))
    accept(EVENT, topic=topic("purchases-dlq"))  # case-sensitive, as collection names are


def test_topics_outside_the_inbound_pattern_are_unknown_projects() -> None:
    for name in ("purchases", f"dlq.{PROJECT}.purchases", "in.short.purchases", f"in.{PROJECT}"):
        reject(EVENT, "unknown_project", topic=name)


def test_unknown_and_inactive_projects() -> None:
    reject(EVENT, "unknown_project", topic=topic("x", "b" * 24))
    reject(EVENT, "unknown_project", topic=topic("x", "a" * 24))


def test_key_must_exist_belong_and_write() -> None:
    for key in (b"nope", b"reader", b"foreign", b"", b"\xff\xfe"):
        rejection = reject(EVENT, "key_not_permitted", headers=((KEY_ID, key),))
        assert rejection.stage == "validate"
    accept(EVENT, headers=((KEY_ID, b"foreign"),), topic=topic("x", OTHER_PROJECT))


def test_last_key_header_counts() -> None:
    accept(EVENT, headers=((KEY_ID, b"nope"), (KEY_ID, b"writer")))


def test_no_key_header_means_a_trusted_producer_without_autofill() -> None:
    body = accept(EVENT, headers=()).body
    assert "plan" not in body
    accept(EVENT, headers=(("other", b"x"),))
