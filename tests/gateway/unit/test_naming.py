"""Customer names <-> backend names for one project."""

from __future__ import annotations

import pytest

from app.gateway.naming import Kind, ProjectNames, collection_error

NAMES = ProjectNames("p1")


def test_a_collection_maps_to_its_inbound_topic_and_back() -> None:
    mapped = NAMES.topic("purchases")
    assert (mapped.kind, mapped.backend) == (Kind.INBOUND, "in.p1.purchases")
    assert NAMES.customer_topic("in.p1.purchases") == "purchases"


def test_a_dlq_name_maps_to_the_projects_dlq_topic_and_back() -> None:
    mapped = NAMES.topic("purchases-DLQ")
    assert (mapped.kind, mapped.backend) == (Kind.DLQ, "dlq.p1.purchases")
    assert NAMES.customer_topic("dlq.p1.purchases") == "purchases-DLQ"


def test_the_fallback_dlq_is_readable() -> None:
    mapped = NAMES.topic("_invalid-DLQ")
    assert (mapped.kind, mapped.backend) == (Kind.DLQ, "dlq.p1._invalid")
    assert NAMES.customer_topic("dlq.p1._invalid") == "_invalid-DLQ"


@pytest.mark.parametrize(
    "name",
    [".", "..", "", "a" * 65, "bad name", "x\n", "a/b", "a-DLQ-DLQ", "-DLQ", "..-DLQ", "é"],
)
def test_invalid_names(name: str) -> None:
    mapped = NAMES.topic(name)
    assert (mapped.kind, mapped.backend) == (Kind.INVALID, None)


def test_longest_and_odd_valid_names() -> None:
    assert NAMES.topic("a" * 64).backend == "in.p1." + "a" * 64
    assert NAMES.topic("...").backend == "in.p1...."
    assert NAMES.topic("a.b_c-D9").kind is Kind.INBOUND
    assert collection_error("a" * 64) is None
    assert collection_error(".") is not None and collection_error("..") is not None


def test_other_projects_and_unrelated_topics_are_not_ours() -> None:
    assert NAMES.customer_topic("in.p2.purchases") is None
    assert NAMES.customer_topic("dlq.p2.purchases") is None
    assert NAMES.customer_topic("__consumer_offsets") is None
    # A project whose id extends ours is another project.
    assert NAMES.customer_topic("in.p10.purchases") is None


def test_groups_are_prefixed_per_project() -> None:
    assert NAMES.group("my-group") == "p1.my-group"
    assert ProjectNames("p2").group("my-group") != NAMES.group("my-group")
    assert NAMES.customer_group("p1.my-group") == "my-group"
    assert NAMES.customer_group("other") == "other"
