"""End to end through the gateway with unchanged standard clients: kcat, Java, aiokafka."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from app.contract.topics import inbound_topic
from app.store.db import engine_for, session_scope
from app.store.keys import create_key
from tests.gateway.conftest import (
    Edge,
    backend_records,
    java_client_config,
    java_tool,
    kcat,
    kcat_sasl,
)
from tests.gateway.helpers import key_id_of, producer_for

pytestmark = pytest.mark.kafka


def test_kcat_over_tls_stamps_key_and_strips_inbound_headers(
    edge: Edge, new_project, sqlite_url: str
) -> None:
    p = new_project()
    args = kcat_sasl(edge, p["project_id"], p["write_key"])
    result = kcat(
        *args,
        "-P",
        "-t",
        "purchases",
        "-H",
        "inbound.key_id=forged",
        "-H",
        "trace=abc",
        input=b'{"item": 1}\n{"item": 2}\n{"item": 3}\n',
    )
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    records = backend_records(edge.backend, inbound_topic(p["project_id"], "purchases"), 3)
    assert sorted(r.value for r in records) == [b'{"item": 1}', b'{"item": 2}', b'{"item": 3}']
    want = key_id_of(sqlite_url, p["write_key"])
    for r in records:
        assert ("inbound.key_id", want.encode()) in r.headers
        assert ("trace", b"abc") in r.headers
        assert ("inbound.key_id", b"forged") not in r.headers


def test_kcat_over_plaintext_dev_listener(edge: Edge, new_project) -> None:
    p = new_project()
    args = kcat_sasl(edge, p["project_id"], p["master_key"], tls=False)
    result = kcat(*args, "-P", "-t", "signups", input=b'{"plain": true}\n')
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    records = backend_records(edge.backend, inbound_topic(p["project_id"], "signups"), 1)
    assert records[0].value == b'{"plain": true}'


def test_java_console_producer_as_in_the_seed(
    edge: Edge, new_project, sqlite_url: str, tmp_path: Path
) -> None:
    p = new_project()
    config = java_client_config(edge, tmp_path, p["project_id"], p["write_key"])
    result = java_tool(
        edge,
        "org.apache.kafka.tools.ConsoleProducer",
        "--bootstrap-server",
        edge.tls_bootstrap,
        "--topic",
        "purchases",
        "--producer.config",
        str(config),
        input=b'{"java": 1}\n{"java": 2}\n',
    )
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    records = backend_records(edge.backend, inbound_topic(p["project_id"], "purchases"), 2)
    assert sorted(r.value for r in records) == [b'{"java": 1}', b'{"java": 2}']
    want = key_id_of(sqlite_url, p["write_key"]).encode()
    assert all(("inbound.key_id", want) in r.headers for r in records)


async def test_aiokafka_acks_and_idempotence(edge: Edge, new_project, sqlite_url: str) -> None:
    p = new_project()
    with session_scope(engine_for(sqlite_url)) as session:
        access = create_key(
            session,
            p["project_id"],
            "access",
            name="writer",
            permitted=["writes"],
            options={"writes": {"autofill": {"source": "edge"}}},
        )
        access_secret, access_id = access.secret, access.key.id
    sent = 0
    for acks, idempotent, secret in (
        # acks=1 first: acks=0 is fire-and-forget, so it goes to a topic that surely exists.
        (1, False, p["master_key"]),
        (0, False, p["write_key"]),
        ("all", True, access_secret),
    ):
        producer = producer_for(
            edge, p["project_id"], secret, acks=acks, enable_idempotence=idempotent
        )
        await producer.start()
        try:
            futures = [
                await producer.send("orders", f'{{"n": {i}, "acks": "{acks}"}}'.encode())
                for i in range(20)
            ]
            await producer.flush()
            metas = await asyncio.gather(*futures)
            if acks != 0:
                assert all(m.offset >= 0 for m in metas)
        finally:
            await producer.stop()
        sent += 20
    records = await asyncio.to_thread(
        backend_records, edge.backend, inbound_topic(p["project_id"], "orders"), sent
    )
    from collections import Counter

    assert len(records) == sent, Counter(r.value.split(b"acks")[1] for r in records)
    access_records = [r for r in records if b'"acks": "all"' in r.value]
    assert all(("inbound.key_id", access_id.encode()) in r.headers for r in access_records)


async def test_same_topic_in_two_projects_stays_apart(edge: Edge, new_project) -> None:
    a, b = new_project("a"), new_project("b")
    for project, body in ((a, b'{"from": "a"}'), (b, b'{"from": "b"}')):
        producer = producer_for(edge, project["project_id"], project["write_key"])
        await producer.start()
        try:
            await producer.send_and_wait("purchases", body)
            topics = await producer.client.fetch_all_metadata()
            # Metadata shows a project only its own topics, under its own names.
            assert "purchases" in topics.topics()
            assert not any(t.startswith(("in.", "dlq.")) for t in topics.topics())
        finally:
            await producer.stop()
    ra = await asyncio.to_thread(
        backend_records, edge.backend, inbound_topic(a["project_id"], "purchases"), 1
    )
    rb = await asyncio.to_thread(
        backend_records, edge.backend, inbound_topic(b["project_id"], "purchases"), 1
    )
    assert [r.value for r in ra] == [b'{"from": "a"}']
    assert [r.value for r in rb] == [b'{"from": "b"}']
