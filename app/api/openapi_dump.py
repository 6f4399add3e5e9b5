"""Write the API's OpenAPI document: `python -m app.api.openapi_dump [path]`.

openapi/openapi.json is generated, never edited; a test checks it is current.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from app.settings import Settings

DEFAULT_PATH = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"


def render() -> str:
    from app.api.app import create_app

    # The document does not depend on the environment: build it from fixed settings.
    settings = Settings(database_url="sqlite://", kafka_bootstrap=None)
    spec = create_app(settings).openapi()
    return json.dumps(spec, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0]) if args else DEFAULT_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(), encoding="utf-8")
    print(path)


if __name__ == "__main__":
    main()
