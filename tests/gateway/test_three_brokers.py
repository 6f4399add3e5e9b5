"""The edge on a 3-node backend (RF 3, min ISR 2): leader routing, and a leader killed mid-stream.

Customers see one broker, the gateway, leading every partition; the gateway forwards each
partition's batch to its backend leader. When that leader dies the customer's producer must
recover through the edge alone (a retriable error, then a metadata refresh), and nothing
acknowledged may be lost or, with an idempotent producer, written twice.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Iterator

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from kafka.protocol.producer import InitProducerIdRequest, ProduceRequest

from app.contract.topics import inbound_topic
from app.settings import Settings
from tests.gateway.conftest import Edge, make_edge
from tests.gateway.rawclient import Raw, batch
from tests.support.ports import free_kafka_base
from tests.support.three_brokers import ThreeBrokers, create_topic, wait_for_partitions

pytestmark = pytest.mark.kafka
confluent_kafka = pytest.importorskip("confluent_kafka")

NODES = {1, 2, 3}
PARTITIONS = 6


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreeBrokers]:
    """One real 3-node KRaft cluster for this module (heavy: started once)."""
    data_dir = tmp_path_factory.mktemp("kafka3")
    brokers = ThreeBrokers.start(data_dir, Settings().cache_dir, free_kafka_base(3))
    try:
        yield brokers
    finally:
        brokers.stop()


@pytest.fixture
def edge3(make_settings, sqlite_url: str, cluster: ThreeBrokers, dev_certs: dict) -> Iterator[Edge]:  # noqa: ANN001
    thread, edge = make_edge(make_settings, sqlite_url, cluster.bootstrap, dev_certs)
    try:
        yield edge
    finally:
        thread.stop()


def _producer(edge: Edge, project: dict, **extra: object):  # noqa: ANN202 - confluent Producer
    return confluent_kafka.Producer(
        {
            "bootstrap.servers": edge.tls_bootstrap,
            "security.protocol": "SASL_SSL",
            "sasl.mechanisms": "PLAIN",
            "sasl.username": project["project_id"],
            "sasl.password": project["write_key"],
            "ssl.ca.location": edge.certs["ca_cert"],
            "acks": "all",
            "enable.idempotence": True,
            **extra,
        }
    )


async def _read_all(bootstrap: str, topic: str, partitions: int) -> list:
    """Every record of ``topic`` up to the end offsets at the time of the call."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, request_timeout_ms=15000
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, i) for i in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        out: list = []
        deadline = time.monotonic() + 120
        # The deadline only bounds a broken run; the assertions show what is missing.
        while time.monotonic() < deadline:
            positions = {tp: await consumer.position(tp) for tp in tps}
            if all(positions[tp] >= ends[tp] for tp in tps):
                break
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                out.extend(records)
        return out
    finally:
        await consumer.stop()


def _ready_topic(cluster: ThreeBrokers, topic: str) -> dict[int, tuple[int, list[int]]]:
    async def go() -> dict[int, tuple[int, list[int]]]:
        await create_topic(cluster.bootstrap, topic, PARTITIONS)
        return await wait_for_partitions(cluster.bootstrap, topic, leaders_among=NODES, isr_size=3)

    state = asyncio.run(go())
    assert len(state) == PARTITIONS and all(len(isr) == 3 for _, isr in state.values()), state
    return state


def test_each_partition_goes_to_its_own_leader(
    cluster: ThreeBrokers, edge3: Edge, new_project
) -> None:
    p = new_project()
    topic = inbound_topic(p["project_id"], "spread")
    state = _ready_topic(cluster, topic)
    # Kafka spreads six partitions' leadership over the three nodes, two each.
    assert Counter(leader for leader, _ in state.values()) == {1: 2, 2: 2, 3: 2}, state

    producer = _producer(edge3, p, **{"message.timeout.ms": 60000, "linger.ms": 5})
    reports: list = []

    def on_delivery(err, msg) -> None:  # noqa: ANN001 - librdkafka callback
        reports.append((err, msg.partition(), msg.offset(), json.loads(msg.value())))

    per_partition = 25
    for n in range(per_partition):
        for part in range(PARTITIONS):
            value = json.dumps({"p": part, "n": n}).encode()
            producer.produce("spread", value, partition=part, on_delivery=on_delivery)
    assert producer.flush(90) == 0
    failed = [r for r in reports if r[0] is not None]
    assert failed == []
    assert all(part == value["p"] for _, part, _, value in reports)

    records = asyncio.run(_read_all(cluster.bootstrap, topic, PARTITIONS))
    seen = Counter(
        (r.partition, json.loads(r.value)["p"], json.loads(r.value)["n"]) for r in records
    )
    expected = {(part, part, n): 1 for part in range(PARTITIONS) for n in range(per_partition)}
    assert seen == expected
    # In order within each partition, at the offsets the edge acknowledged.
    for part in range(PARTITIONS):
        ns = [
            json.loads(r.value)["n"]
            for r in sorted(records, key=lambda r: r.offset)
            if r.partition == part
        ]
        assert ns == list(range(per_partition))
    acked_at = {(part, value["n"]): offset for _, part, offset, value in reports}
    assert all(acked_at[(r.partition, json.loads(r.value)["n"])] == r.offset for r in records)


def test_leader_killed_mid_stream_loses_and_duplicates_nothing_acknowledged(
    cluster: ThreeBrokers, edge3: Edge, new_project, capsys: pytest.CaptureFixture
) -> None:
    p = new_project()
    topic = inbound_topic(p["project_id"], "failover")
    state = _ready_topic(cluster, topic)
    leads = Counter(leader for leader, _ in state.values())
    victim = leads.most_common(1)[0][0]
    victim_partitions = {part for part, (leader, _) in state.items() if leader == victim}

    # Generous: the backend fences a dead broker only after its session timeout (9 s).
    producer = _producer(edge3, p, **{"message.timeout.ms": 120000, "linger.ms": 5})
    acks: dict[int, tuple[int, int, float]] = {}  # n -> (partition, offset, when)
    failures: list[tuple[int, str]] = []

    def on_delivery(err, msg) -> None:  # noqa: ANN001 - librdkafka callback
        n = json.loads(msg.value())["n"]
        if err is None:
            acks[n] = (msg.partition(), msg.offset(), time.monotonic())
        else:
            failures.append((n, str(err)))

    def send(n: int) -> None:
        value = json.dumps({"n": n}).encode()
        while True:
            try:
                producer.produce(
                    "failover", value, partition=n % PARTITIONS, on_delivery=on_delivery
                )
                return
            except BufferError:  # the local queue is full: let deliveries drain it
                producer.poll(0.05)

    sent = 0
    killed_at: float | None = None
    in_flight_at_kill = 0
    first_sent_after_kill = 0
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline:
            send(sent)
            sent += 1
            producer.poll(0.002)
            if killed_at is None and len(acks) >= 600:
                in_flight_at_kill = sent - len(acks) - len(failures)
                cluster.kill(victim)
                killed_at = time.monotonic()
                first_sent_after_kill = sent
            if killed_at is not None:
                after = [a for a in acks.values() if a[2] > killed_at]
                # Resumed on the partitions the dead node led, not only on the others.
                resumed = {part for part, _, _ in after} >= victim_partitions
                if resumed and len(after) >= 1200:
                    break
        left = producer.flush(150)
        assert left == 0, f"{left} records never got a delivery report"
        assert killed_at is not None, f"only {len(acks)} acknowledged before any kill"

        def first_ack(own: bool, sent_after: bool = False) -> str:
            """Seconds from the kill to the first ack on the dead node's partitions (own) or
            the others', optionally only of records produced after the kill."""
            times = sorted(
                when
                for n, (part, _, when) in acks.items()
                if when > killed_at
                and (part in victim_partitions) == own
                and (not sent_after or n >= first_sent_after_kill)
            )
            return f"{times[0] - killed_at:.3f}s" if times else "never"

        with capsys.disabled():
            print(
                f"\nfailover: killed node {victim} (led partitions {sorted(victim_partitions)});"
                f" sent={sent} acked={len(acks)} failed={len(failures)}"
                f" in_flight_at_kill={in_flight_at_kill}; first ack after the kill on its"
                f" partitions {first_ack(True)}, on the others {first_ack(False)}; of a record"
                f" produced after the kill: {first_ack(True, True)} / {first_ack(False, True)}"
            )
        assert failures == []
        assert len(acks) == sent
        assert {part for part, _, when in acks.values() if when > killed_at} >= victim_partitions

        records = asyncio.run(_read_all(cluster.bootstrap_without(victim), topic, PARTITIONS))
        stored = Counter(json.loads(r.value)["n"] for r in records)
        # The idempotent producer's id and sequences reach the backend through the edge, so
        # a batch retried after the leader died is not written twice.
        assert [n for n, count in stored.items() if count > 1] == []
        assert sorted(set(acks) - set(stored)) == []
        where = {json.loads(r.value)["n"]: (r.partition, r.offset) for r in records}
        assert all(where[n] == (part, offset) for n, (part, offset, _) in acks.items())
    finally:
        cluster.restart(victim)
        after_restart = asyncio.run(
            wait_for_partitions(cluster.bootstrap, topic, leaders_among=NODES, isr_size=3)
        )
        assert all(len(isr) == 3 for _, isr in after_restart.values()), after_restart


def test_a_client_arriving_while_a_leader_is_dead_gets_retriable_answers(
    cluster: ThreeBrokers, edge3: Edge, new_project
) -> None:
    """Between a broker's death and its fencing (the backend's 9 s session timeout) the
    backend still names it: the edge must answer with errors a client retries, never close."""
    p = new_project()
    topic = inbound_topic(p["project_id"], "arrival")
    state = _ready_topic(cluster, topic)
    victim = 1  # the first broker the backend lists: the gateway's first choice for any node
    raw = Raw(edge3.plain_port, timeout=90)
    try:
        assert raw.sasl(p["project_id"], p["write_key"]).error_code == 0
        cluster.kill(victim)
        init = raw.request(
            InitProducerIdRequest(
                transactional_id=None,
                transaction_timeout_ms=60000,
                producer_id=-1,
                producer_epoch=-1,
            ),
            1,
        )
        # A producer id, or what Kafka clients retry InitProducerId on: 14
        # COORDINATOR_LOAD_IN_PROGRESS (the backend waits for its controller to hand out ids),
        # 15 COORDINATOR_NOT_AVAILABLE (the edge found no broker to ask).
        assert (init.error_code, init.producer_id >= 0) in ((0, True), (14, False), (15, False))
        request = ProduceRequest(
            transactional_id=None,
            acks=-1,
            timeout_ms=30000,
            topic_data=[
                ProduceRequest.TopicProduceData(
                    name="arrival",
                    partition_data=[
                        ProduceRequest.TopicProduceData.PartitionProduceData(
                            index=part, records=batch([json.dumps({"p": part}).encode()])
                        )
                        for part in range(PARTITIONS)
                    ],
                )
            ],
        )
        resp = raw.request(request, 9)
        codes = {r.index: r.error_code for r in resp.responses[0].partition_responses}
        assert set(codes) == set(range(PARTITIONS))
        # 0 NONE, 5 LEADER_NOT_AVAILABLE, 6 NOT_LEADER_OR_FOLLOWER, 7 REQUEST_TIMED_OUT
        assert set(codes.values()) <= {0, 5, 6, 7}, codes
        dead_led = {part for part, (leader, _) in state.items() if leader == victim}
        assert all(codes[part] in (5, 6) for part in dead_led), codes
    finally:
        raw.close()
        cluster.restart(victim)
        asyncio.run(wait_for_partitions(cluster.bootstrap, topic, leaders_among=NODES, isr_size=3))
