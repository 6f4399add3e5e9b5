"""Step 7: merge the writing key's autofill into the event.

Deep merge where the event's own values win: autofill only fills properties the event
lacks, descending into objects present on both sides. ``keen`` is never autofilled.
Values taken from the autofill are copied, because the same autofill dict is shared by
every event the key writes and later steps (add-ons) write into the event.
"""

from __future__ import annotations

from typing import Any


def apply_autofill(event: dict[str, Any], autofill: dict[str, Any]) -> None:
    # Iterative over (target, defaults) pairs; autofill depth is bounded by the key's options
    # but nothing here depends on that.
    pending: list[tuple[dict[str, Any], dict[str, Any]]] = [
        (event, {k: v for k, v in autofill.items() if k != "keen"})
    ]
    while pending:
        target, defaults = pending.pop()
        for name, default in defaults.items():
            if name not in target:
                target[name] = _copy(default)
            else:
                mine = target[name]
                if type(mine) is dict and type(default) is dict:
                    pending.append((mine, default))


def _copy(value: Any) -> Any:
    kind = type(value)
    if kind is not dict and kind is not list:
        return value
    root: Any = {} if kind is dict else []
    work: list[tuple[Any, Any]] = [(value, root)]
    while work:
        source, copy = work.pop()
        items = source.items() if type(source) is dict else enumerate(source)
        for name, item in items:
            item_kind = type(item)
            if item_kind is dict or item_kind is list:
                child: Any = {} if item_kind is dict else []
                work.append((item, child))
            else:
                child = item
            if type(copy) is dict:
                copy[name] = child
            else:
                copy.append(child)
    return root
