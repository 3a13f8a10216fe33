"""The one interface every evaluator implements: facts in, failed condition ids out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from service.engine.facts import Facts
from service.rules.program import Program


class EngineError(RuntimeError):
    """The rules engine could not produce a trustworthy answer (never the applicant's fault)."""


@dataclass(frozen=True)
class Violations:
    """Which conditions did not hold: application-level ids, and per item list, per item."""

    app: frozenset[str]
    items: dict[str, tuple[frozenset[str], ...]]


class Evaluator(Protocol):
    name: str

    def evaluate(self, program: Program, facts: Facts) -> Violations: ...  # pragma: no cover
