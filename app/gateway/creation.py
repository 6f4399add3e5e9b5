"""Creating collections on first use, within the project's limits.

A valid name is created by the first Metadata or Produce that names it (no admin rights
needed), but one request creates at most ``max_topics_created_per_request`` of them and a
project has at most ``max_collections`` (its ``in.<project>.*`` backend topics).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from app.contract import topics
from app.gateway import errors
from app.gateway.logsafe import shown
from app.gateway.session import Session

log = logging.getLogger("inbound.gateway")


@dataclass(frozen=True, slots=True)
class Refusal:
    code: int
    message: str


async def create_collections(session: Session, missing: list[str]) -> dict[str, Refusal]:
    """Create those of ``missing`` (this project's backend topics) the limits allow; the
    refused ones, by backend name, with the error to answer."""
    principal = session.principal
    assert principal is not None
    limits = session.ctx.limits
    prefix = topics.inbound_topic(principal.project_id, "")
    refused: dict[str, Refusal] = {}
    missing = list(dict.fromkeys(missing))
    async with session.ctx.create_lock:
        resp = await session.backend.refresh(None)
        existing = {t.name for t in resp.topics if t.name.startswith(prefix)}
        new = [n for n in missing if n not in existing]
        room = max(0, limits.max_collections - len(existing))
        allowed: list[str] = []
        for i, name in enumerate(new):
            if i >= room:
                refused[name] = Refusal(
                    errors.POLICY_VIOLATION,
                    f"the project has reached its limit of {limits.max_collections} "
                    "collections (INBOUND_GATEWAY_MAX_COLLECTIONS)",
                )
            elif i >= limits.max_topics_created_per_request:
                refused[name] = Refusal(
                    errors.UNKNOWN_TOPIC_OR_PARTITION,
                    f"at most {limits.max_topics_created_per_request} new collections per "
                    "request: retry",
                )
            else:
                allowed.append(name)
        if any(r.code == errors.POLICY_VIOLATION for r in refused.values()):
            log.warning(
                "project %s at its collection limit (%s): not creating %s",
                principal.project_id,
                limits.max_collections,
                ", ".join(shown(n) for n in refused),
            )
        wait_for = [n for n in missing if n not in refused]
        if wait_for:
            await session.backend.ensure_topics(wait_for)
    return refused
