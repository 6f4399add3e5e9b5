"""The batch router's edges (app/ingest/router.py): paused or empty partitions do not stop the
others, the breaker counts per partition and keeps counting across batches, a trip with no
rejection in the batch names none, add-ons run, malformed topics ask for no project ratio."""

from __future__ import annotations

from aiokafka import TopicPartition

from app.ingest.breaker import CircuitBreaker
from app.ingest.router import BatchRouter, wanted
from tests.ingest.steps.pipeline_support import NOW, PROJECT, TOPIC, MemoryLookup, record, registry

TP0 = TopicPartition(TOPIC, 0)
TP1 = TopicPartition(TOPIC, 1)
TP2 = TopicPartition(TOPIC, 2)
GOOD = {"item": "widget"}
WRITER = (("inbound.key_id", b"writer"),)


def _router(ratio: float = 0.5, min_events: int = 1000, ratio_for=None) -> BatchRouter:  # noqa: ANN001
    return BatchRouter(
        MemoryLookup(), registry(), CircuitBreaker(ratio, min_events), ratio_for or {}.get
    )


def _at(tp: TopicPartition, offsets: list[int], values: list, headers: tuple = WRITER) -> list:
    return [
        record(v, topic=tp.topic, partition=tp.partition, offset=o, headers=headers)
        for o, v in zip(offsets, values, strict=True)
    ]


def test_a_paused_or_empty_partition_does_not_stop_the_next() -> None:
    batch = {TP0: _at(TP0, [1], [GOOD]), TP1: [], TP2: _at(TP2, [5], [GOOD])}
    routed = _router().route(batch, NOW, paused={TP0})
    assert routed.commit == {TP2: 6}
    assert routed.size == 1
    assert [a.body["item"] for a in routed.accepted] == ["widget"]
    empty_first = {TP1: [], TP0: _at(TP0, [1], [GOOD])}
    assert _router().route(empty_first, NOW).commit == {TP0: 2}


def test_wanted_skips_only_the_paused_partitions() -> None:
    other = "fedcba9876543210fedcba98"
    tp_other = TopicPartition(f"in.{other}.views", 0)
    batch = {
        TP0: _at(TP0, [1], [GOOD], headers=(("inbound.key_id", b"k0"),)),
        tp_other: _at(tp_other, [1], [GOOD], headers=(("inbound.key_id", b"k1"),)),
        TP2: _at(TP2, [1], [GOOD], headers=(("inbound.key_id", b"k2"),)),
    }
    assert wanted(batch, paused={TP0}) == ({other, PROJECT}, {"k1", "k2"})
    assert wanted(batch, paused={tp_other}) == ({PROJECT}, {"k0", "k2"})


def test_the_breaker_counts_each_partition_apart() -> None:
    # Two rejections on each of two partitions: with a window of 3 per partition, neither trips;
    # counted together (one window for both), the fourth record would trip it.
    bad = [b"{x", b"{y"]
    batch = {TP0: _at(TP0, [1, 2], bad), TP1: _at(TP1, [1, 2], bad)}
    routed = _router(ratio=0.5, min_events=3).route(batch, NOW)
    assert routed.trips == []
    assert routed.commit == {TP0: 3, TP1: 3}


def test_a_trip_without_a_rejection_in_the_batch_names_no_code() -> None:
    router = _router(ratio=0.5, min_events=3)
    first = router.route({TP0: _at(TP0, [1, 2], [b"{x", b"{y"])}, NOW)
    assert first.trips == [] and first.commit == {TP0: 3}
    # The window (2 of 2 rejected) is full with the next record, accepted: 2/3 > 0.5 trips.
    second = router.route({TP0: _at(TP0, [3, 4], [GOOD, GOOD])}, NOW)
    assert [(t.tp, t.offset, t.last_code) for t in second.trips] == [(TP0, 3, "")]
    assert second.commit == {TP0: 3}
    assert second.accepted == [] and second.size == 2


def test_a_trip_names_the_last_rejection_seen() -> None:
    router = _router(ratio=0.5, min_events=3)
    routed = router.route({TP0: _at(TP0, [1, 2, 3], [b"{x", b"[1]", GOOD])}, NOW)
    assert [(t.offset, t.last_code) for t in routed.trips] == [(3, "not_an_object")]


def test_addons_run_in_the_router() -> None:
    event = {
        "page": "https://shop.example.com/p",
        "keen": {
            "addons": [{"name": "keen:url_parser", "input": {"url": "page"}, "output": "parsed"}]
        },
    }
    routed = _router().route({TP0: _at(TP0, [1], [event])}, NOW)
    assert routed.rejected == []
    assert routed.accepted[0].body["parsed"]["domain"] == "shop.example.com"


def test_project_ratio_is_asked_with_the_project_or_empty() -> None:
    asked: list[str] = []

    def ratio_for(project_id: str) -> float | None:
        asked.append(project_id)
        return None

    bad_topic = TopicPartition("in.nonsense", 0)
    router = _router(ratio_for=ratio_for)
    router.route({TP0: _at(TP0, [1], [GOOD]), bad_topic: _at(bad_topic, [1], [GOOD])}, NOW)
    assert asked == [PROJECT, ""]
