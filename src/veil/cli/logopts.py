"""Logging of the long-running commands (`veil node run`, `veil gateway`): levels, a log file, sanitised lines.

``--log-level`` (default info) and ``--log-file FILE`` (in addition to stderr; reopened when
logrotate moves it). Every line goes through ``SafeFormatter``, which runs the message through
format/remote_text.py's ``clean``: whatever a peer sent (an address, an error text) cannot
put escape sequences or fake lines into a terminal or a log. Messages never carry caps, keys
or tokens (docs/specs/operations.md, "Logs").
"""

from __future__ import annotations

import logging
import logging.handlers
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from veil.errors import UsageError
from veil.format.remote_text import clean

F = TypeVar("F", bound=Callable[..., Any])
LEVELS = ("debug", "info", "warning", "error")
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
MAX_LINE = 4000  # characters of one message (a traceback comes after it, unbounded)


class SafeFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        saved = record.msg, record.args
        record.msg, record.args = clean(record.getMessage(), MAX_LINE), None
        try:
            return super().format(record)
        finally:
            record.msg, record.args = saved


def log_options(f: F) -> F:
    f = click.option("--log-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
                     help="Also write the log to FILE (appended; reopened when rotated).")(f)
    f = click.option("--log-level", type=click.Choice(LEVELS, case_sensitive=False), default=None,
                     envvar="VEIL_LOG_LEVEL", help="Least severe messages logged (default info; -v: debug).")(f)
    return click.option("-v", "--verbose", is_flag=True, help="Same as --log-level debug.")(f)


def setup_service_logging(level: str | None, log_file: Path | None, verbose: bool = False) -> None:
    """Root logger: stderr, and ``log_file`` when given, at ``level``."""
    name = "debug" if verbose else (level or "info").lower()
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    fmt = SafeFormatter(FORMAT)
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if log_file is not None:
        try:
            log_file.parent.mkdir(parents=True, exist_ok=True)
            handlers.append(logging.handlers.WatchedFileHandler(log_file))
        except OSError as e:
            raise UsageError(f"cannot write the log file {log_file}: {e.strerror or e}") from e
    for h in handlers:
        h.setFormatter(fmt)
        root.addHandler(h)
    root.setLevel(getattr(logging, name.upper()))
    logging.captureWarnings(True)
