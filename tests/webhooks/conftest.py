"""Fixtures for webhook tests: a real loopback receiver and an engine on the test database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from app.store.db import make_engine
from tests.webhooks.receiver import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def hook_settings(make_settings, db_url: str):  # noqa: ANN001, ANN201 - factory
    """Settings for dispatcher tests: loopback allowed, no batching window unless asked."""

    def _make(**overrides: object):  # noqa: ANN202
        values: dict[str, object] = {
            "webhook_allow_private": True,
            "webhook_batch_window_ms": 0,
            "webhook_connect_timeout": 2.0,
            "webhook_read_timeout": 2.0,
        }
        values.update(overrides)
        return make_settings(db_url, **values)

    return _make
