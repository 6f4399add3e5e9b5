"""Step 3: the project and collection named by the backend topic (docs/design.md, "Collections")."""

from __future__ import annotations

from functools import lru_cache

from app.contract.collections import collection_problem
from app.contract.errors import Rejection
from app.contract.topics import parse_inbound


@lru_cache(maxsize=4096)  # a batch holds few topics; the answer never changes for a name
def collection_of(topic: str) -> tuple[str, str] | Rejection:
    """(project_id, collection) from ``in.<project>.<collection>``, or why it is refused."""
    parsed = parse_inbound(topic)
    if parsed is None:
        return Rejection(
            "unknown_project",
            "validate",
            "The topic does not belong to a project; produce to a topic of your own project.",
            {"topic": topic[:300]},
        )
    project_id, collection = parsed
    problem = collection_problem(collection)
    if problem is not None:
        return Rejection(problem.code, "validate", problem.message, problem.detail)
    return project_id, collection
