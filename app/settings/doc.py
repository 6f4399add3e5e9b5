"""Renders the README's settings table from the Settings class, so the two cannot drift.

`python -m app.settings.doc --write` updates README.md between the settings markers.
"""

from __future__ import annotations

import sys
from pathlib import Path

from app.settings import Settings

BEGIN = "<!-- settings:begin -->"
END = "<!-- settings:end -->"
README = Path(__file__).resolve().parents[2] / "README.md"


def _default(name: str) -> str:
    field = Settings.model_fields[name]
    if name in ("data_dir", "cache_dir"):
        return f"`~/{Path(str(field.default)).relative_to(Path.home())}`"
    if field.default is None:
        return "unset"
    return f"`{field.default}`"


def table() -> str:
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        rows.append(f"| `INBOUND_{name.upper()}` | {_default(name)} | {field.description or ''} |")
    return "\n".join(rows)


def render_readme(text: str) -> str:
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return f"{head}{BEGIN}\n{table()}\n{END}{tail}"


if __name__ == "__main__":
    current = README.read_text()
    updated = render_readme(current)
    if "--write" in sys.argv:
        README.write_text(updated)
    else:
        print(table())
