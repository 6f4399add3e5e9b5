"""FastAPI dependencies for what the app holds: settings, database sessions, the producer,
the replay rate limiter. Routes declare them as parameters instead of reading app.state.

``SessionDep`` is one session per request, closed when the route function returns: reads use
it as is (autobegin, rolled back on close), writes wrap their work in ``session.begin()`` so
the commit happens in the route, before the answer. Async routes that do their database work
in threads take ``SessionsDep``, the factory, and open their own sessions there.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session, sessionmaker

from app.api.producer import KafkaProducerHolder
from app.api.replay_limit import ReplayLimiter
from app.settings import Settings


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_sessions(request: Request) -> sessionmaker[Session]:
    return request.app.state.session_factory


def get_session(
    sessions: Annotated[sessionmaker[Session], Depends(get_sessions)],
) -> Iterator[Session]:
    with sessions() as session:
        yield session


def get_producer(request: Request) -> KafkaProducerHolder:
    return request.app.state.producer


def get_replay_limiter(request: Request) -> ReplayLimiter:
    return request.app.state.replay_limiter


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionsDep = Annotated[sessionmaker[Session], Depends(get_sessions)]
# scope="function": the session closes (and its connection goes back to the pool) as soon as
# the route returns, as the `with` blocks this replaces did, not after the answer is sent.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
ProducerDep = Annotated[KafkaProducerHolder, Depends(get_producer)]
ReplayLimiterDep = Annotated[ReplayLimiter, Depends(get_replay_limiter)]
