"""The canary: one known application evaluated by the serving engine, compared with the plain
Python oracle's answer, so that ``/readyz`` says whether the engine still answers correctly (a
durable_rules host that has gone wrong fails every evaluation while the database is fine)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from service.decision import decide
from service.engine.base import Evaluator
from service.engine.facts import Context
from service.engine.python_eval import PythonEvaluator
from service.rules.loader import RuleBook
from service.rules.program import Program
from service.schemas.results import render


@dataclass(frozen=True)
class Canary:
    program: Program
    application: BaseModel
    expected: dict[str, Any]  # the oracle's rendered result

    @classmethod
    def build(cls, book: RuleBook, examples: dict[str, dict[str, Any]]) -> Canary | None:
        """From the first program (in the book's order) whose Swagger example is valid for it;
        None when no program has one (a rules folder of the tests' own)."""
        for program in book.programs.values():
            example = examples.get(program.id)
            if example is None:
                continue
            try:
                application = program.form.model_validate(example["value"])
            except ValidationError:
                continue
            expected = cls._evaluate(program, application, PythonEvaluator(), book.version)
            return cls(program, application, expected)
        return None

    @staticmethod
    def _evaluate(
        program: Program, application: BaseModel, evaluator: Evaluator, version: str
    ) -> dict[str, Any]:
        return render(decide(program, application, evaluator, version, Context()), True)

    def agrees(self, evaluator: Evaluator, version: str) -> bool:
        """One evaluation by ``evaluator``: True when it gives the oracle's answer. An engine
        error propagates (the caller reports it)."""
        return self._evaluate(self.program, self.application, evaluator, version) == self.expected
