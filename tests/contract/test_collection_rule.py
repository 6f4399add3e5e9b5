"""The one collection rule refuses names Kafka cannot hold, in the worker and the gateway."""

from __future__ import annotations

import pytest

from app.contract.errors import Rejection
from app.gateway.naming import Kind, ProjectNames
from app.ingest.steps.collection import collection_of

PROJECT = "0123456789abcdef01234567"


@pytest.mark.parametrize("collection", ["x\n", ".", "..", "x\n.y", "\n"])
def test_worker_refuses_the_collection(collection: str) -> None:
    got = collection_of(f"in.{PROJECT}.{collection}")
    assert isinstance(got, Rejection)
    assert got.code == "invalid_collection_name"
    assert got.stage == "validate"


def test_worker_refuses_a_bare_dot_topic() -> None:
    # "." is no project's topic at all: refused before the collection rule is asked.
    got = collection_of(".")
    assert isinstance(got, Rejection)
    assert got.code == "unknown_project"


def test_worker_still_takes_a_good_name() -> None:
    assert collection_of(f"in.{PROJECT}.purchases") == (PROJECT, "purchases")
    assert collection_of(f"in.{PROJECT}...x") == (PROJECT, "..x")


@pytest.mark.parametrize("customer", ["x\n", ".", "..", "x\n-DLQ", ".-DLQ", "..-DLQ"])
def test_gateway_maps_the_name_to_invalid(customer: str) -> None:
    mapped = ProjectNames(PROJECT).topic(customer)
    assert mapped.kind is Kind.INVALID
    assert mapped.backend is None
