"""The one way a rule file fails: it names the file and the line."""

from __future__ import annotations

from pathlib import Path


class RuleFileError(Exception):
    """A rule file that cannot be used; the message names the file and the line."""

    def __init__(self, path: Path | str, line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}")
        self.path = str(path)
        self.line = line
        self.message = message
