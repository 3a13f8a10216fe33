"""第二十六条: organisations disqualified from all bureau programs for fraud, as a plain file
(one USCC per line, ``#`` comments). The service keeps the list in its database
(service.db.disqualifications); the file, when configured, seeds it at start-up.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path


class DisqualificationList:
    def __init__(self, usccs: frozenset[str] = frozenset()) -> None:
        self._usccs = usccs

    @classmethod
    def from_file(cls, path: Path | None) -> DisqualificationList:
        if path is None:
            return cls()
        lines = path.read_text(encoding="utf-8").splitlines()
        return cls(
            frozenset(line.split("#")[0].strip() for line in lines if line.split("#")[0].strip())
        )

    def __contains__(self, uscc: object) -> bool:
        return uscc in self._usccs

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._usccs))
