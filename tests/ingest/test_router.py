"""The batch router without Kafka or a database: what is stored, dead-lettered, told to a
replay's original, committed and paused, for one fetched batch."""

from __future__ import annotations

import hashlib

import pytest
from aiokafka import TopicPartition

from app.ingest.breaker import CircuitBreaker
from app.ingest.router import BatchRouter, wanted
from tests.ingest.steps.pipeline_support import (
    NOW,
    OTHER_PROJECT,
    PROJECT,
    TOPIC,
    MemoryLookup,
    record,
    registry,
)

TP0 = TopicPartition(TOPIC, 0)
TP1 = TopicPartition(TOPIC, 1)
NOW_TEXT = "2026-11-24T19:07:46.123Z"  # NOW, as Inbound writes timestamps
GOOD = {"item": "widget"}
WRITER = (("inbound.key_id", b"writer"),)


def _router(ratio: float = 0.5, min_events: int = 1000, own: dict | None = None) -> BatchRouter:
    """``own``: per-project DLQ ratio limits, as a project's options set them."""
    breaker = CircuitBreaker(ratio, min_events)
    return BatchRouter(MemoryLookup(), registry(), breaker, (own or {}).get)


def _at(tp: TopicPartition, offsets: list[int], values: list, headers: tuple = WRITER) -> list:
    return [
        record(v, topic=tp.topic, partition=tp.partition, offset=o, headers=headers)
        for o, v in zip(offsets, values, strict=True)
    ]


def _error_id(topic: str, partition: int, offset: int) -> str:
    # docs/design.md, "Guarantees": error ids are derived from the record's coordinates.
    return hashlib.blake2b(f"{topic}/{partition}/{offset}".encode(), digest_size=16).hexdigest()


def test_a_mix_is_split_and_each_partition_commits_one_past_its_last_record() -> None:
    batch = {
        TP0: _at(TP0, [10, 11, 12, 13], [GOOD, b"{bad", b"[1]", GOOD]),
        TP1: _at(TP1, [3, 7], [GOOD, b'{"a.b": 1}']),
    }
    routed = _router().route(batch, NOW)
    assert routed.size == 6
    assert [(a.collection, a.project_id) for a in routed.accepted] == [("purchases", PROJECT)] * 3
    assert [(d.rejection.code, d.source_partition, d.source_offset) for d in routed.rejected] == [
        ("invalid_json", 0, 11),
        ("not_an_object", 0, 12),
        ("invalid_property_name", 1, 7),
    ]
    assert routed.commit == {TP0: 14, TP1: 8}
    assert routed.trips == [] and routed.replay_outcomes == {}
    letter = routed.rejected[0]
    assert letter.error_id == _error_id(TOPIC, 0, 11)
    assert letter.dlq_topic == f"dlq.{PROJECT}.purchases"
    assert letter.failed_at == NOW


def test_replayed_records_report_to_their_original_error() -> None:
    def replayed(offset: int) -> tuple:
        return (*WRITER, ("inbound.replay.source", f"{TOPIC}/0/{offset}".encode()))

    batch = {
        TP0: [
            *_at(TP0, [20], [GOOD], headers=replayed(5)),
            *_at(TP0, [21], [b"{still bad"], headers=replayed(6)),
            *_at(TP0, [22], [GOOD], headers=(*WRITER, ("inbound.replay.source", b"nonsense"))),
        ]
    }
    routed = _router().route(batch, NOW)
    accepted = routed.accepted[0]
    assert routed.replay_outcomes == {
        _error_id(TOPIC, 0, 5): {
            "status": "accepted",
            "keen_id": accepted.keen_id,
            "at": NOW_TEXT,
            "partition": 0,
            "offset": 20,
        },
        _error_id(TOPIC, 0, 6): {
            "status": "rejected",
            "error_id": _error_id(TOPIC, 0, 21),
            "code": "invalid_json",
            "at": NOW_TEXT,
            "partition": 0,
            "offset": 21,
        },
    }
    # A malformed source header still stores the event; it reports to nobody.
    assert len(routed.accepted) == 2 and routed.commit == {TP0: 23}


def test_a_replay_in_a_chain_reports_to_the_error_row_it_names() -> None:
    """Each failed replay is an error row of its own, replayed under the chain's first source
    (one keen.id); its outcome belongs to the row named in inbound.replay.error_id."""
    named = "ab" * 16
    chained = (
        *WRITER,
        ("inbound.replay.source", f"{TOPIC}/0/5".encode()),
        ("inbound.replay.error_id", named.encode()),
    )
    forged = (*WRITER, ("inbound.replay.source", f"{TOPIC}/0/5".encode()))
    forged += (("inbound.replay.error_id", b"not-an-error-id"),)
    batch = {
        TP0: [*_at(TP0, [30], [GOOD], headers=chained), *_at(TP0, [31], [GOOD], headers=forged)]
    }
    routed = _router().route(batch, NOW)
    first, second = routed.accepted
    # One source, one keen.id: the event cannot be stored twice.
    assert first.keen_id == second.keen_id
    assert set(routed.replay_outcomes) == {named, _error_id(TOPIC, 0, 5)}
    assert routed.replay_outcomes[named]["offset"] == 30
    # A malformed error id falls back to the source record's error.
    assert routed.replay_outcomes[_error_id(TOPIC, 0, 5)]["offset"] == 31


def test_the_breaker_trips_on_the_projects_own_ratio_and_holds_the_rest_back() -> None:
    values = [GOOD, b"{bad", GOOD, GOOD, GOOD, GOOD]
    batch = {TP0: _at(TP0, [0, 1, 2, 3, 4, 5], values), TP1: _at(TP1, [0], [GOOD])}
    # 1 rejected in a window of 4 is 25%: over this project's 20%, under the default 50%.
    routed = _router(min_events=4, own={PROJECT: 0.2}).route(batch, NOW)
    [trip] = routed.trips
    assert (trip.tp, trip.offset, trip.last_code) == (TP0, 3, "invalid_json")
    # The tripping record and those after it wait for a resume: not routed, not committed.
    assert routed.commit == {TP0: 3, TP1: 1}
    assert len(routed.accepted) == 3  # TP0's offsets 0 and 2, TP1's 0
    assert [d.source_offset for d in routed.rejected] == [1]
    assert routed.size == 7  # what was fetched, held-back records included

    relaxed = _router(min_events=4).route(batch, NOW)
    assert relaxed.trips == [] and relaxed.commit == {TP0: 6, TP1: 1}


def test_a_breaker_window_spans_batches_and_a_trip_is_reported_once() -> None:
    router = _router(ratio=0.5, min_events=4)
    first = router.route({TP0: _at(TP0, [0, 1], [b"{x", b"{y"])}, NOW)
    assert first.trips == [] and first.commit == {TP0: 2}
    second = router.route({TP0: _at(TP0, [2, 3, 4], [b"{z", GOOD, GOOD])}, NOW)
    assert [(t.offset, t.last_code) for t in second.trips] == [(3, "invalid_json")]
    assert second.commit == {TP0: 3}


def test_paused_partitions_are_neither_routed_nor_committed_nor_looked_up() -> None:
    other = TopicPartition(f"in.{OTHER_PROJECT}.signups", 0)
    batch = {
        TP0: _at(TP0, [0, 1], [GOOD, GOOD]),
        other: _at(other, [9], [GOOD], headers=(("inbound.key_id", b"foreign"),)),
    }
    routed = _router().route(batch, NOW, paused={other})
    assert routed.commit == {TP0: 2} and routed.size == 2
    assert {a.project_id for a in routed.accepted} == {PROJECT}
    assert wanted(batch, paused={other}) == ({PROJECT}, {"writer"})
    assert wanted(batch) == ({PROJECT, OTHER_PROJECT}, {"writer", "foreign"})


@pytest.mark.parametrize(
    ("project", "key", "code"),
    [
        ("99" * 12, b"writer", "unknown_project"),  # not in the look-up
        ("a" * 24, b"writer", "unknown_project"),  # disabled
        (PROJECT, b"nobody", "key_not_permitted"),  # key not in the look-up
        (PROJECT, b"reader", "key_not_permitted"),  # read-only
        (PROJECT, b"foreign", "key_not_permitted"),  # another project's
    ],
)
def test_missing_or_refused_lookups_dead_letter_and_still_commit(
    project: str, key: bytes, code: str
) -> None:
    tp = TopicPartition(f"in.{project}.purchases", 0)
    routed = _router().route({tp: _at(tp, [5], [GOOD], headers=(("inbound.key_id", key),))}, NOW)
    assert [d.rejection.code for d in routed.rejected] == [code]
    assert routed.accepted == [] and routed.commit == {tp: 6}


def test_the_keys_looked_up_skip_nul_and_records_without_a_key() -> None:
    batch = {
        TP0: [
            *_at(TP0, [0], [GOOD], headers=(("inbound.key_id", b"a\x00b"),)),
            *_at(TP0, [1], [GOOD], headers=()),
            *_at(TP0, [2], [GOOD], headers=(("inbound.key_id", b"k2"),)),
        ],
        TopicPartition("in.not-a-project.x", 0): [],
    }
    assert wanted(batch) == ({PROJECT}, {"k2"})


def test_an_empty_batch_routes_nothing() -> None:
    routed = _router().route({TP0: []}, NOW)
    assert (routed.size, routed.commit, routed.accepted, routed.rejected) == (0, {}, [], [])
