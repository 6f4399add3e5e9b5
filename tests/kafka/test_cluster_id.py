"""Local Kafka's cluster id is one the storage tool accepts: never starting with '-'."""

from __future__ import annotations

import uuid

from app.kafka import local


def test_cluster_ids_never_start_with_a_dash(monkeypatch) -> None:  # noqa: ANN001
    # uuid bytes whose URL-safe base64 starts with '-' (0xF8 -> '-'), then ordinary ones.
    dashed = uuid.UUID(bytes=b"\xf8" + b"\x00" * 15)
    plain = uuid.UUID(bytes=b"\x00" * 16)
    draws = iter([dashed, dashed, plain])
    monkeypatch.setattr(local.uuid, "uuid4", lambda: next(draws))
    cluster_id = local._random_cluster_id()
    assert cluster_id == "AAAAAAAAAAAAAAAAAAAAAA"
    for _ in range(500):
        monkeypatch.undo()
        assert not local._random_cluster_id().startswith("-")
