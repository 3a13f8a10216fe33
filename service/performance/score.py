"""A 绩效评价 score sheet: level-1 and level-2 indicators, each third-level indicator with its
weight and its score (or score rate) → subtotals per level-1, the total, its rate and grade.

Pure and exact (Decimal). A score computed from a rate is weight × rate rounded half-up to two
places, as the evaluation's tables print them (表3-1: 3 × 94.40% = 2.832 → 2.83). Rates are
score / weight in percent, two places. The grade follows the rate, which is the score itself on
a sheet weighing 100 points; a sheet weighing anything else is graded on its rate, with a warning.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from service.performance.standards import ScoreStandard

CENT = Decimal("0.01")
ZERO = Decimal(0)


@dataclass(frozen=True)
class Row:
    level1: str
    level2: str
    name: str
    weight: Decimal
    score: Decimal | None = None
    score_rate: Decimal | None = None  # a fraction: 0.944 for 94.40%


@dataclass(frozen=True)
class RowError:
    index: int
    field: str
    message_zh: str
    message_en: str


class SheetError(ValueError):
    def __init__(self, errors: list[RowError]) -> None:
        super().__init__("; ".join(f"rows[{e.index}].{e.field}: {e.message_en}" for e in errors))
        self.errors = errors


def two_places(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def rate_of(score: Decimal, weight: Decimal) -> Decimal:
    return two_places(score / weight * 100) if weight else ZERO


def _score(index: int, row: Row) -> Decimal:
    if (row.score is None) == (row.score_rate is None):
        raise SheetError(
            [RowError(index, "score", "应给出得分或得分率之一", "Give either score or score_rate")]
        )
    if row.score is not None:
        if row.score > row.weight:
            raise SheetError(
                [
                    RowError(
                        index,
                        "score",
                        f"得分 {row.score} 高于权重 {row.weight}",
                        f"The score {row.score} is above the weight {row.weight}",
                    )
                ]
            )
        return row.score
    assert row.score_rate is not None
    if row.score_rate > 1:
        raise SheetError(
            [RowError(index, "score_rate", "得分率不能超过100%", "A score rate cannot exceed 100%")]
        )
    return two_places(row.weight * row.score_rate)


def score_sheet(rows: list[Row], standard: ScoreStandard) -> dict[str, Any]:
    errors: list[RowError] = []
    scores: list[Decimal] = []
    for index, row in enumerate(rows):
        try:
            scores.append(_score(index, row))
        except SheetError as exc:
            errors.extend(exc.errors)
    if errors:
        raise SheetError(errors)
    subtotals: dict[str, dict[str, Decimal]] = {}
    for row, score in zip(rows, scores, strict=True):
        sub = subtotals.setdefault(row.level1, {"weight": ZERO, "score": ZERO})
        sub["weight"] += row.weight
        sub["score"] += score
    weight = sum((r.weight for r in rows), ZERO)
    total = sum(scores, ZERO)
    rate = rate_of(total, weight)
    grade = standard.grade(rate)
    warnings = []
    if weight != standard.total_weight:
        warnings.append(
            {
                "rule": "weights-add-up",
                "article": standard.article,
                "message_zh": f"各指标权重合计 {_plain(weight)}，应为 {_plain(standard.total_weight)}；按得分率定级",
                "message_en": f"The weights add up to {_plain(weight)}, not "
                f"{_plain(standard.total_weight)}; the grade follows the rate",
            }
        )
    return {
        "weight": weight,
        "total": total,
        "rate": rate,
        "grade": grade.grade,
        "grade_article": standard.article,
        "subtotals": [
            {
                "level1": name,
                "weight": sub["weight"],
                "score": sub["score"],
                "rate": rate_of(sub["score"], sub["weight"]),
            }
            for name, sub in subtotals.items()
        ],
        "rows": [
            {
                "index": i,
                "name": r.name,
                "weight": r.weight,
                "score": s,
                "rate": rate_of(s, r.weight),
            }
            for i, (r, s) in enumerate(zip(rows, scores, strict=True))
        ],
        "warnings": warnings,
    }


def _plain(value: Decimal) -> str:
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text
