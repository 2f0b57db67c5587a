"""Structured logging with secret redaction.

Every log line passes through ``Redactor``: any secret value (from the tenant's secrets or a
secret-looking environment variable) is replaced by ``***`` before it is written. Errors printed
by the CLI go through the same ``redact``.

The rule (``mask``): a secret is masked wherever it stands as a whole token — not preceded or followed by a
letter, digit or ``_`` — whatever its length, longest first. So ``API_TOKEN=a`` masks ``a`` standing alone but
not the ``a`` in ``acme``; a one-letter secret is still masked. ``Secrets.weak_secrets`` names the secrets
this cannot protect well (short ones, ones equal to another configured value).
"""

from __future__ import annotations

import functools
import logging
import re
import sys
import threading
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

import orjson

MASK = "***"
_WORD = "A-Za-z0-9_"


@functools.lru_cache(maxsize=64)
def _pattern(values: frozenset[str]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(v) for v in sorted(values, key=len, reverse=True))
    return re.compile(f"(?<![{_WORD}])(?:{alternatives})(?![{_WORD}])")


def mask(text: str, values: Iterable[str], replacement: str = MASK) -> str:
    """``text`` with every value of ``values`` that stands there as a whole token replaced (see the docstring)."""
    wanted = frozenset(v for v in values if v)
    if not wanted or not text:
        return text
    return _pattern(wanted).sub(replacement, text)


class Redactor:
    """The process-wide set of values that logs and errors must never show."""

    def __init__(self) -> None:
        self._values: frozenset[str] = frozenset()
        self._lock = threading.Lock()

    def add(self, values: Iterable[str]) -> None:
        """Mask these values from now on (empty ones are ignored)."""
        with self._lock:
            self._values = self._values | {v for v in values if v}

    def __call__(self, text: str) -> str:
        return mask(text, self._values)


redact = Redactor()

_RESERVED = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = redact(str(value)) if isinstance(value, str) else value
        if record.exc_info:
            entry["exc"] = redact(self.formatException(record.exc_info))
        return orjson.dumps(entry, default=str).decode()


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


_console: Any = None
_console_lock = threading.Lock()


def console() -> Any:
    """The one ``rich`` console of the process, on stderr: log lines and live displays (``run --job-dir``
    progress) both write through it, so a log line prints above a live display, never inside it."""
    global _console
    with _console_lock:
        if _console is None:
            from rich.console import Console

            _console = Console(stderr=True)
        return _console


class ConsoleHandler(logging.Handler):
    """Writes each formatted record through ``console()`` (for a terminal)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            console().print(self.format(record), markup=False, highlight=False, emoji=False, soft_wrap=True)
        except Exception:  # noqa: BLE001 - logging must not raise
            self.handleError(record)


def setup_logging(level: str = "INFO", *, json: bool = True) -> None:
    """Log to stderr: JSON lines (default, for machines) or short text (for a TTY). On a terminal the lines go
    through ``console()``."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler: logging.Handler = ConsoleHandler() if sys.stderr.isatty() else logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json else TextFormatter())
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    for noisy in ("pyiceberg", "botocore", "urllib3", "sqlalchemy"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
