"""The grading standard of a 绩效评价 score sheet, read from ``rules/performance/_score.yaml``
(the thresholds are policy numbers: they live in a rule file, not here)."""

from __future__ import annotations

from decimal import Decimal
from functools import cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

SCORE_FILE = Path("performance") / "_score.yaml"


class Grade(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    grade: str = Field(min_length=1)
    start: Decimal = Field(alias="from", ge=0)
    zh: str
    en: str


class ScoreStandard(BaseModel):
    model_config = ConfigDict(extra="forbid")

    article: str = Field(min_length=2)
    total_weight: Decimal = Field(gt=0)
    zh: str
    en: str
    grades: list[Grade] = Field(min_length=1)

    @field_validator("grades")
    @classmethod
    def _highest_first(cls, grades: list[Grade]) -> list[Grade]:
        starts = [g.start for g in grades]
        if starts != sorted(starts, reverse=True) or starts[-1] != 0:
            raise ValueError("grades go from the highest bound down to one starting at 0")
        return grades

    def grade(self, rate: Decimal) -> Grade:
        """The grade of a score out of 100 (a bound belongs to the grade it starts)."""
        return next(g for g in self.grades if rate >= g.start)


@cache
def score_standard(rules_dir: Path) -> ScoreStandard:
    data = yaml.safe_load((rules_dir / SCORE_FILE).read_text(encoding="utf-8"))
    return ScoreStandard.model_validate(data)
