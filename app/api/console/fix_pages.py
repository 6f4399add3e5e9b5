"""What the fix editor shows: the editor's buttons (a template of each named operation), the
target of a fix posted from a problem's page (its open errors) or an error's page (that
error), the operations text read as JSON, and the preview or result of the fix service
(``routes_fixes.fix_errors``, the function the JSON API's POST /errors/fix calls) shaped for
the page, and a problem's saved fixes (``routes_fixes.saved_fixes``) with their buttons. The
service itself decides everything; nothing here counts or patches."""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from app.api.console.payload_view import bytes_text
from app.api.console.problem_pages import error_url, problem_url
from app.api.console.sessions import ConsoleUser
from app.api.error_views import find_error
from app.api.fixes.views import find_fix
from app.api.problem_views import find_problem
from app.api.problems import ApiError
from app.api.routes_fixes import saved_fixes

# Each named operation's button inserts this, filled with the documented example's values.
NAMED_TEMPLATES: tuple[tuple[str, dict[str, Any]], ...] = (
    ("rename", {"op": "rename", "path": "/user.name", "to": "user_name"}),
    ("cast", {"op": "cast", "path": "/price", "to": "number"}),
    ("parse_json", {"op": "parse_json", "path": "/details"}),
    ("set_timestamp", {"op": "set_timestamp", "from": "/created_at", "format": "iso"}),
    ("drop_deeper_than", {"op": "drop_deeper_than", "depth": 8}),
)
# The replace_payload button starts from the stored payload when it is text this short.
PREFILL_CHARS = 8 * 1024
HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})
EXAMPLE = '[{"op": "rename", "path": "/user.name", "to": "user_name"}]'
# Saved fixes listed on a problem's page (the JSON API pages the rest).
SAVED_SHOWN = 50


@dataclass(frozen=True)
class FixTarget:
    """What a console fix applies to, and the page it was posted from."""

    project_id: str
    error_id: str | None  # one error (the error page) ...
    problem_id: str | None  # ... or the open errors of a problem (the problem page)
    label: str  # "the open errors of problem …" / "error …", for the page
    back_url: str
    action_url: str
    payload_text: str | None = None  # the error's stored payload, for replace_payload
    saved: tuple[dict[str, Any], ...] = ()  # the problem's saved fixes, for its page

    @property
    def single(self) -> bool:
        return self.error_id is not None


def problem_target(db: Session, user: ConsoleUser, project_id: str, problem_id: str) -> FixTarget:
    """The problem's open errors; 404 unless the problem is this project's and visible."""
    problem = find_problem(db, problem_id, user.scope(project_id))
    if problem.project_id != project_id:  # staff: the URL names the problem's own project
        raise ApiError(404, "ResourceNotFoundError", "No such problem in this project.")
    url = problem_url(project_id, problem_id)
    listed = saved_fixes(db, problem_id, project_id, None, SAVED_SHOWN)["fixes"]
    return FixTarget(
        project_id=project_id,
        error_id=None,
        problem_id=problem_id,
        label=problem.title,
        back_url=url,
        action_url=f"{url}/fix",
        saved=tuple(saved_view(f, url) for f in listed),
    )


def saved_view(fix: dict[str, Any], problem_page_url: str) -> dict[str, Any]:
    """A saved fix as the problem page lists it: operations as indented JSON, its buttons."""
    base = f"{problem_page_url}/fixes/{fix['fix_id']}"
    return {
        "fix_id": fix["fix_id"],
        "operations": json.dumps(fix["operations"], ensure_ascii=False, indent=2),
        "actor": fix["actor"],
        "created_at": fix["created_at"],
        "status": fix["status"],
        "preview_url": f"{base}/preview",
        "apply_url": f"{base}/apply",
        "unsave_url": f"{base}/unsave",
    }


def saved_fix_of(db: Session, target: FixTarget, fix_id: str) -> list[dict[str, Any]]:
    """The operations of a fix kept on the target's problem; 404 for any other fix, so a
    problem's page only ever acts on its own fixes. Whether it is still saved is the
    service's to say (409)."""
    fix = find_fix(db, fix_id, target.project_id)
    if fix.problem_id != target.problem_id:
        raise ApiError(404, "ResourceNotFoundError", "No such fix on this problem.")
    return list(fix.operations)


def error_target(db: Session, user: ConsoleUser, project_id: str, error_id: str) -> FixTarget:
    """One error; 404 unless it is this project's and visible."""
    row = find_error(db, error_id, user.scope(project_id))
    if row.project_id != project_id:
        raise ApiError(404, "ResourceNotFoundError", "No such error in this project.")
    url = error_url(project_id, error_id)
    return FixTarget(
        project_id=project_id,
        error_id=error_id,
        problem_id=row.problem_id,
        label=error_id,
        back_url=url,
        action_url=f"{url}/fix",
        payload_text=prefill_text(row.payload),
    )


def prefill_text(raw: bytes | None) -> str:
    """The payload as replace_payload's starting text: itself when short UTF-8, else empty."""
    text = bytes_text(raw) if raw is not None else None
    return text if text is not None and len(text) <= PREFILL_CHARS else ""


def _json_escape(ch: str) -> str:
    if _hidden(ch):
        code = ord(ch)
        if code > 0xFFFF:  # JSON spells it as a surrogate pair
            code -= 0x10000
            return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
        return f"\\u{code:04x}"
    return ch


def _hidden(ch: str) -> bool:
    # The characters payload_view draws as escapes (bidi overrides, zero-width, controls).
    return ch > "~" and unicodedata.category(ch) in HIDDEN_CATEGORIES


def _compact(template: dict[str, Any]) -> str:
    """The template as JSON; a hidden character of a prefilled payload as its \\u escape (the
    same JSON string), so a U+202E never reaches the textarea as itself."""
    text = json.dumps(template, ensure_ascii=False, separators=(", ", ": "))
    return "".join(_json_escape(ch) for ch in text)


def editor(
    target: FixTarget, text: str = "", error: dict[str, Any] | None = None, save: bool = False
) -> dict[str, Any]:
    """The editor's context: where it posts, its text, its error, its buttons, whether the
    "keep this fix" box is ticked (a problem's editor only), the problem's saved fixes."""
    buttons = [{"name": name, "template": _compact(t)} for name, t in NAMED_TEMPLATES]
    if target.single:
        replace = {"op": "replace_payload", "text": target.payload_text or ""}
        buttons.append({"name": "replace_payload", "template": _compact(replace)})
    return {
        "action": target.action_url,
        "text": text,
        "error": error,
        "buttons": buttons,
        "single": target.single,
        "example": EXAMPLE,
        "save": save,
        "saved": target.saved,
    }


class TextRefused(Exception):
    """The operations text is not a JSON document: shown next to the textarea."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def read_operations(text: str) -> Any:
    """The textarea's JSON (blank: an empty list, which the service explains); the fix
    service validates the operations themselves, as for the JSON API."""
    if not text.strip():
        return []
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise TextRefused(
            f"The operations are not JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}."
        ) from None
    except RecursionError:
        raise TextRefused(
            "The operations are not JSON this console can read: nested too deep."
        ) from None


def operation_error(detail: dict[str, Any]) -> dict[str, Any]:
    """An InvalidFixError's index and reason, as the editor shows them."""
    index = detail.get("index", -1)
    return {
        "index": index if isinstance(index, int) and index >= 0 else None,
        "reason": str(detail.get("reason") or detail.get("message") or ""),
    }


def _op_name(operations: Any, index: int) -> str | None:
    if isinstance(operations, list) and 0 <= index < len(operations):
        op = operations[index]
        if isinstance(op, dict) and isinstance(op.get("op"), str):
            return op["op"]
    return None


def result_view(result: dict[str, Any], operations: Any, target: FixTarget) -> dict[str, Any]:
    """The service's FixResult with each failure's operation named and links added."""
    failures = [{**f, "op": _op_name(operations, f["index"])} for f in result["failures"]]
    samples = [{**s, "url": error_url(target.project_id, s["error_id"])} for s in result["samples"]]
    return {**result, "failures": failures, "samples": samples}
