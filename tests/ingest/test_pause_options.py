"""A project's breaker ratio comes from its stored JSON options: any value there must leave the
worker running (the default ratio applies), never stop that project's batches."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy.orm import sessionmaker

from app.ingest.pause import PauseStore
from app.store.db import make_engine
from app.store.models import Project


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"dlq_pause_ratio": 0.5}, 0.5),
        ({"dlq_pause_ratio": 1}, 1.0),
        ({"dlq_pause_ratio": "0.5"}, None),
        ({"dlq_pause_ratio": True}, None),
        ({"dlq_pause_ratio": [0.5]}, None),
        ({"dlq_pause_ratio": None}, None),
        ([], None),
        ("a string", None),
        (True, None),
        (None, None),
    ],
)
def test_bad_stored_options_mean_the_default_ratio(
    db_url: str, options: object, expected: float | None
) -> None:
    engine = make_engine(db_url)
    sessions = sessionmaker(engine)
    with sessions.begin() as session:
        session.add(
            Project(
                id="ab" * 12,
                name="p",
                is_active=True,
                options=options,
                created_at=datetime.now(UTC),
            )
        )
    store = PauseStore(sessions)
    store.prefetch_options({"ab" * 12, "cd" * 12})
    assert store.ratio_for("ab" * 12) == expected
    assert store.ratio_for("cd" * 12) is None
    engine.dispose()
