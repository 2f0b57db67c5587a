"""Errors a user sees: one line, naming the file, the field and the fix, with an exit code.

Exit codes: 0 ok, 1 partial (rows quarantined in warn mode), 2 failure.
"""

from __future__ import annotations

from pathlib import Path

EXIT_OK = 0
EXIT_PARTIAL = 1
EXIT_FAILURE = 2


class DativoError(Exception):
    """A failure reported to the user as one line; never carries a secret value."""

    exit_code: int = EXIT_FAILURE

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(DativoError):
    """A configuration file is wrong: `<file>: <field>: <problem> (<fix>)`."""

    def __init__(
        self,
        path: str | Path | None,
        message: str,
        *,
        field: str | None = None,
        fix: str | None = None,
    ) -> None:
        parts = []
        if path is not None:
            parts.append(str(path))
        if field:
            parts.append(field)
        parts.append(message)
        text = ": ".join(parts)
        if fix:
            text += f" ({fix})"
        super().__init__(text)
        self.path = path
        self.field = field
        self.fix = fix


class InfrastructureError(DativoError):
    """A service the job needs cannot be reached or refuses us."""


class SourceError(DativoError):
    """The source could not be read (malformed file, unreadable path)."""


class ValidationFailed(DativoError):
    """Rows violate the asset's contract in strict mode; nothing was committed."""
