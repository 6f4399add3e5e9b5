"""Logging of every process: one handler on the root logger, text or JSON lines.

``INBOUND_LOG_LEVEL`` (default INFO) is the level of Inbound's own loggers (``inbound.*``,
``app.*``); third-party libraries (faust, mode, aiokafka, uvicorn, ...) log at WARNING and
above, unless the level is DEBUG, which shows everything. ``INBOUND_LOG_FORMAT=json`` writes
each record as one JSON object (python-json-logger) with ``time``, ``level``, ``logger``,
``message``, ``process`` (worker, api, gateway, webhooks, up, ...), ``pid`` and whatever the
call passed in ``extra=`` (``project_id``, ``collection``, ``topic``, ``partition``,
``offset``, ``error_id``, ...): what Loki or Elasticsearch take as they are.

A few messages libraries log at WARNING or ERROR while a fresh broker is still electing its
group coordinator or auto-creating a topic are retried by the library itself; they are
lowered to DEBUG (see ``_TRANSIENT``), so ``inbound up`` does not open with false alarms. A
worker that never gets there says so on its ``/healthz``, and ``inbound up`` reports it as
not ready.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from pythonjsonlogger.json import JsonFormatter

OWN_LOGGERS = ("inbound", "app")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
# `inbound up` hands its children this directory; each writes <process>.ready into it once
# it serves (see ready()). Internal to the supervisor, so not a setting.
READY_DIR_ENV = "INBOUND_READY_DIR"

# (logger, message template): retried by the library, harmless while a broker starts.
_TRANSIENT = {
    ("aiokafka.consumer.group_coordinator", "Group Coordinator Request failed: %s"),
    ("aiokafka.consumer.group_coordinator", "Marking the coordinator dead (node %s)for group %s."),
    ("aiokafka.cluster", "Topic %s not found in cluster metadata"),
    ("aiokafka.cluster", "Topic %s is not available during auto-create initialization"),
    ("faust.assignor.partition_assignor", "Ignoring missing topic: %r"),
}


def third_party_level(level: int) -> int:
    """The level of libraries' loggers for Inbound's own ``level``."""
    return level if level <= logging.DEBUG else max(level, logging.WARNING)


class _LowerTransient(logging.Filter):
    """Lowers the retried start-up messages in ``_TRANSIENT`` to DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        if (record.name, record.msg) not in _TRANSIENT:
            return True
        if record.msg.startswith("Group Coordinator") and not _retriable(record.args):
            return True
        record.levelno = logging.DEBUG
        record.levelname = "DEBUG"
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


def _retriable(args: Any) -> bool:
    err = args[0] if isinstance(args, tuple) and args else None
    return bool(getattr(err, "retriable", False))


class InboundJsonFormatter(JsonFormatter):
    """One JSON object a line: time, level, logger, message, process, pid, extras."""

    def __init__(self, process: str) -> None:
        super().__init__(
            "{levelname}{name}{message}",
            style="{",
            rename_fields={"levelname": "level", "name": "logger", "exc_info": "exception"},
            timestamp="time",
        )
        self.process_name = process

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        super().add_fields(log_data, record, message_dict)
        # LogRecord.process is the pid; ours names the Inbound process.
        log_data["process"] = self.process_name
        log_data["pid"] = record.process


def parse_level(value: str | int) -> int:
    if isinstance(value, int):
        return value
    level = logging.getLevelName(value.strip().upper())
    if not isinstance(level, int):
        raise ValueError(f"unknown log level {value!r} (DEBUG, INFO, WARNING, ERROR, CRITICAL)")
    return level


def setup(
    process: str,
    level: str | int = "INFO",
    fmt: str = "text",
    stream: IO[str] | None = None,
) -> None:
    """Configure logging for ``process``: replaces every root handler, so it may run twice."""
    own = parse_level(level)
    handler = logging.StreamHandler(stream or sys.stderr)
    if fmt == "json":
        handler.setFormatter(InboundJsonFormatter(process))
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    handler.addFilter(_LowerTransient())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(third_party_level(own))
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel(own)
    # Libraries that set their loggers' levels or handlers themselves go back to the root's.
    for name in ("faust", "mode", "aiokafka", "kafka", "uvicorn", "uvicorn.error", "aiohttp"):
        lib = logging.getLogger(name)
        lib.setLevel(logging.NOTSET)
        lib.handlers.clear()
        lib.propagate = True
    logging.captureWarnings(True)
    if fmt == "json":
        # A crash is one JSON line too (its traceback in `exception`), not a bare traceback.
        sys.excepthook = _log_uncaught
        threading.excepthook = lambda args: _log_uncaught(
            args.exc_type, args.exc_value, args.exc_traceback
        )


def _log_uncaught(
    exc_type: type[BaseException], exc: BaseException | None, tb: TracebackType | None
) -> None:
    if issubclass(exc_type, KeyboardInterrupt):
        sys.__excepthook__(exc_type, exc or exc_type(), tb)
        return
    logging.getLogger("inbound").critical(
        "uncaught %s: %s", exc_type.__name__, exc, exc_info=(exc_type, exc, tb)
    )


def setup_from_settings(process: str, settings: Any) -> None:
    setup(process, settings.log_level, settings.log_format)


def ready(process: str) -> None:
    """Tell ``inbound up`` (if it started this process) that ``process`` now serves."""
    directory = os.environ.get(READY_DIR_ENV)
    if directory:
        try:
            (Path(directory) / f"{process}.ready").write_text(str(os.getpid()))
        except OSError as exc:
            logging.getLogger("inbound").warning("could not signal readiness: %s", exc)
