"""The one place that maps customer topic names to backend topics (docs/design.md, "Topics").

customer ``purchases``      <-> backend ``in.<project_id>.purchases``
customer ``purchases-DLQ``  <-> backend ``dlq.<project_id>.purchases``
"""

from __future__ import annotations

import re

INBOUND_PREFIX = "in."
DLQ_PREFIX = "dlq."
DLQ_SUFFIX = "-DLQ"
FALLBACK_DLQ_COLLECTION = "_invalid"
INBOUND_PATTERN = r"^in\..*"

PROJECT_ID_RE = re.compile(r"[0-9a-f]{24}")
# Kafka's own rule for a legal topic name; a DLQ name built from an illegal collection
# name could not exist, so such events go to the project's fallback DLQ.
KAFKA_TOPIC_RE = re.compile(r"[a-zA-Z0-9._-]{1,249}")


def inbound_topic(project_id: str, collection: str) -> str:
    return f"{INBOUND_PREFIX}{project_id}.{collection}"


def dlq_topic(project_id: str, collection: str) -> str:
    name = f"{DLQ_PREFIX}{project_id}.{collection}"
    if not collection or not KAFKA_TOPIC_RE.fullmatch(name) or collection in (".", ".."):
        return f"{DLQ_PREFIX}{project_id}.{FALLBACK_DLQ_COLLECTION}"
    return name


def parse_inbound(topic: str) -> tuple[str, str] | None:
    """``in.<project>.<collection>`` -> (project, collection); None for anything else."""
    if not topic.startswith(INBOUND_PREFIX):
        return None
    rest = topic[len(INBOUND_PREFIX) :]
    project_id, sep, collection = rest.partition(".")
    if not sep or not PROJECT_ID_RE.fullmatch(project_id):
        return None
    return project_id, collection


def inbound_parts(topic: str) -> tuple[str, str]:
    """(project, collection) of an inbound topic as far as its name tells them, even when it is
    malformed (``in.short.x``, ``in.<project>``): a record read from it is still dead-lettered
    and recorded under some project and collection."""
    parsed = parse_inbound(topic)
    if parsed:
        return parsed
    project_id, _, collection = topic.removeprefix(INBOUND_PREFIX).partition(".")
    return project_id, collection


def parse_dlq(topic: str) -> tuple[str, str] | None:
    if not topic.startswith(DLQ_PREFIX):
        return None
    project_id, sep, collection = topic[len(DLQ_PREFIX) :].partition(".")
    if not sep or not PROJECT_ID_RE.fullmatch(project_id):
        return None
    return project_id, collection


def customer_dlq_name(collection: str) -> str:
    return f"{collection}{DLQ_SUFFIX}"


def project_of(topic: str) -> str | None:
    """The project of an inbound or DLQ backend topic; None for any other topic."""
    parsed = parse_inbound(topic) or parse_dlq(topic)
    return parsed[0] if parsed else None


def record_source(topic: str, partition: int, offset: int) -> str:
    """A record's coordinates as one string, as ``inbound.replay.source`` carries them."""
    return f"{topic}/{partition}/{offset}"


def parse_record_source(source: str) -> tuple[str, int, int] | None:
    """``topic/partition/offset`` -> its parts; None when malformed (a header is client data)."""
    topic, _, rest = source.rpartition("/")
    topic, _, partition = topic.rpartition("/")
    try:
        return topic, int(partition), int(rest)
    except ValueError:
        return None
