"""A project's view of names: customer topic and group names <-> backend names.

The topic mapping and the collection rule live in ``app.contract`` (the one owner); this module
applies them for one project: which names are collections, which are the read-only ``-DLQ``
topics, and how consumer group ids are kept apart per project.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from app.contract import topics
from app.contract.collections import collection_problem


class Kind(Enum):
    INBOUND = "inbound"  # producible, never consumable
    DLQ = "dlq"  # consumable (the project's own), never producible
    INVALID = "invalid"


@dataclass(frozen=True, slots=True)
class Mapped:
    kind: Kind
    customer: str
    backend: str | None


def collection_error(name: str) -> str | None:
    """Why ``name`` cannot be a collection, or None when it can."""
    problem = collection_problem(name)
    return None if problem is None else problem.message


class ProjectNames:
    """Name translation for one authenticated project."""

    def __init__(self, project_id: str) -> None:
        self.project_id = project_id
        self._in_prefix = topics.inbound_topic(project_id, "")
        self._dlq_prefix = f"{topics.DLQ_PREFIX}{project_id}."
        self._group_prefix = f"{project_id}."

    def topic(self, customer: str) -> Mapped:
        if customer.endswith(topics.DLQ_SUFFIX):
            collection = customer[: -len(topics.DLQ_SUFFIX)]
            if collection_error(collection) is None:
                return Mapped(Kind.DLQ, customer, topics.dlq_topic(self.project_id, collection))
            if collection == topics.FALLBACK_DLQ_COLLECTION:
                return Mapped(Kind.DLQ, customer, topics.dlq_topic(self.project_id, collection))
            return Mapped(Kind.INVALID, customer, None)
        if collection_error(customer) is not None:
            return Mapped(Kind.INVALID, customer, None)
        return Mapped(Kind.INBOUND, customer, topics.inbound_topic(self.project_id, customer))

    def customer_topic(self, backend: str) -> str | None:
        """The customer's name for one of this project's backend topics; None if not ours."""
        if backend.startswith(self._in_prefix):
            return backend[len(self._in_prefix) :]
        if backend.startswith(self._dlq_prefix):
            return topics.customer_dlq_name(backend[len(self._dlq_prefix) :])
        return None

    def group(self, customer: str) -> str:
        # Prefixing keeps two projects' "my-group" apart on the shared backend.
        return self._group_prefix + customer

    def customer_group(self, backend: str) -> str:
        return (
            backend[len(self._group_prefix) :]
            if backend.startswith(self._group_prefix)
            else backend
        )
