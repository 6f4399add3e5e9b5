"""The edge through a database outage: a key looked up before keeps working for
INBOUND_GATEWAY_KEY_STALE_SECONDS past its cache time; a key never seen, or seen too long
ago, is neither accepted nor counted as a failed login (KeyStoreUnavailable)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from app.gateway.auth import KEY_STORE_UNAVAILABLE, KeyStoreUnavailable, KeyVerifier, Principal
from app.store.db import make_engine, session_scope
from app.store.migrate import upgrade
from app.store.projects import create_project


def _project(url: str) -> dict[str, str]:
    upgrade(url)
    engine = make_engine(url)
    with session_scope(engine) as session:
        project = create_project(session, "outage")
    engine.dispose()
    return project


def _break(path: Path, verifier_engine) -> Path:  # noqa: ANN001
    """The database file goes away; a new connection finds an empty database."""
    verifier_engine.dispose()
    moved = path.with_suffix(".away")
    path.rename(moved)
    return moved


async def test_a_known_key_keeps_working_while_the_database_is_away(tmp_path: Path) -> None:
    path = tmp_path / "keys.db"
    url = f"sqlite:///{path}"
    project = _project(url)
    engine = make_engine(url)
    verifier = KeyVerifier(engine, ttl=0.01, stale_seconds=60)
    pid, key = project["project_id"], project["write_key"]
    first = await verifier.authenticate(pid, key)
    assert isinstance(first, Principal)
    moved = _break(path, engine)
    time.sleep(0.02)  # past the 10 ms cache time, well within the 60 s stale allowance
    assert await verifier.authenticate(pid, key) == first
    assert await verifier.still_valid(first)
    # A key it never looked up cannot be judged: neither accepted nor refused.
    with pytest.raises(KeyStoreUnavailable) as caught:
        await verifier.authenticate(pid, project["master_key"])
    assert str(caught.value) == (
        "Authentication unavailable: Inbound cannot read its keys right now; retry in a few seconds"
    )
    assert str(caught.value) == KEY_STORE_UNAVAILABLE
    engine.dispose()
    moved.rename(path)
    assert isinstance(await verifier.authenticate(pid, project["master_key"]), Principal)
    engine.dispose()


async def test_with_no_stale_allowance_a_key_is_not_judged_during_the_outage(
    tmp_path: Path,
) -> None:
    path = tmp_path / "keys.db"
    url = f"sqlite:///{path}"
    project = _project(url)
    engine = make_engine(url)
    verifier = KeyVerifier(engine, ttl=0.01, stale_seconds=0)
    principal = await verifier.authenticate(project["project_id"], project["write_key"])
    assert isinstance(principal, Principal)
    _break(path, engine)
    time.sleep(0.02)
    with pytest.raises(KeyStoreUnavailable):
        await verifier.still_valid(principal)
    engine.dispose()
