"""Access keys managed with the project's master key (Keen's access key API)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, BackgroundTasks, Depends

from app.api.auth import MASTER_KEY, Caller
from app.api.deps import ProducerDep, SessionDep
from app.api.key_admin import list_keys, make_key, revoke_key, tell_workers_keys_changed
from app.api.problems import KEY_ERRORS, ApiError, error_responses
from app.api.schemas.keys import KeyCreate, KeyCreated, KeyView

router = APIRouter(tags=["keys"])
KEYS_PATH = "/3.0/projects/{project_id}/keys"


@router.post(
    KEYS_PATH,
    summary="Create an access key",
    description="`permitted` from writes, queries, saved_queries, cached_queries, datasets, "
    "schema; `options.writes.autofill` is merged into written events, "
    "`options.queries.filters` forced onto queries. The secret is in this response only.",
    status_code=201,
    response_model=KeyCreated,
    responses=error_responses(*KEY_ERRORS),
)
def key_create(session: SessionDep, body: KeyCreate, caller: Caller = Depends(MASTER_KEY)) -> Any:
    if body.kind != "access":
        raise ApiError(403, "InvalidApiKeyError", "A master key creates access keys only.")
    with session.begin():
        return make_key(session, caller.project_id, body)


@router.get(
    KEYS_PATH,
    summary="List the project's keys (never their secrets)",
    response_model=list[KeyView],
    responses=error_responses(*KEY_ERRORS),
)
def key_list(session: SessionDep, caller: Caller = Depends(MASTER_KEY)) -> Any:
    return list_keys(session, caller.project_id)


@router.post(
    f"{KEYS_PATH}/{{key_id}}/revoke",
    summary="Revoke a key (it stops working at once)",
    response_model=KeyView,
    responses=error_responses(*KEY_ERRORS, 404),
)
def key_revoke(
    session: SessionDep,
    key_id: str,
    producer: ProducerDep,
    tasks: BackgroundTasks,
    caller: Caller = Depends(MASTER_KEY),
) -> Any:
    if key_id == caller.key.id:
        raise ApiError(400, "InvalidParameterError", "A key cannot revoke itself.")
    with session.begin():
        view = revoke_key(session, caller.project_id, key_id)
    tell_workers_keys_changed(tasks, producer)
    return view
