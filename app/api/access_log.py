"""Access-log hygiene: no API key in a logged URL, no control character from a client.

Project keys may arrive as the ``api_key`` query parameter (Keen compatibility), and uvicorn's
access logger writes the full path with its query string. The filter here rewrites the record's
arguments before they are formatted: every ``api_key`` value becomes ``***`` and control
characters in client-provided strings (path, method, client address) are escaped, so a request
cannot forge or split log lines.
"""

from __future__ import annotations

import logging
import re

ACCESS_LOGGER = "uvicorn.access"
_API_KEY = re.compile(r"(?i)((?:^|[?&;])api_key=)[^&;#]*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def escape_control(text: str) -> str:
    r"""``text`` with every control character written as ``\xNN``."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def redact_api_key(path: str) -> str:
    """``path`` (with query string) with each ``api_key`` value replaced by ``***``."""
    if "?" not in path:
        return path
    base, _, query = path.partition("?")
    redacted = _API_KEY.sub(lambda m: m.group(1) + "***", query)
    return f"{base}?{redacted}"


def clean(value: object) -> object:
    if isinstance(value, str):
        return escape_control(redact_api_key(value))
    return value


class AccessLogFilter(logging.Filter):
    """Rewrites uvicorn access records: keys redacted, control characters escaped."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(clean(a) for a in record.args)
        elif isinstance(record.msg, str) and not record.args:
            record.msg = clean(record.msg)  # type: ignore[assignment]
        return True


def install(logger_name: str = ACCESS_LOGGER) -> None:
    logger = logging.getLogger(logger_name)
    if not any(isinstance(f, AccessLogFilter) for f in logger.filters):
        logger.addFilter(AccessLogFilter())
