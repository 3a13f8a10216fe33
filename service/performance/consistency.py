"""Stage reports must agree with each other (the evaluation's 五、存在的问题: figures entered by
hand, never re-checked, that disagree between a project's reports — 培养硕士研究生 1 in the
acceptance report, 2 in the self-evaluation).

Pure. A project's figures are cumulative (what it has achieved so far), so:
- a figure lower than an earlier report's, of an earlier stage, is a warning naming both;
- a figure that differs from an earlier report of the same stage is a warning naming both.
Rates (percent, ratios) are not cumulative and are only compared within a stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from service.performance.notation import NotationError, Quantity, comparable, parse_actual

DECREASED = "cumulative-figure-decreased"
CHANGED = "figure-changed"


@dataclass(frozen=True)
class EarlierReport:
    id: int
    stage: str
    reported: dict[str, Any]  # target id -> figure (text, or {"actual", "previous"})


def _quantity(text: str) -> Quantity:
    quantity = parse_actual(text).quantity
    if quantity is None:  # pragma: no cover - parse_actual reads a quantity or raises
        raise NotationError("无数值", "no value")
    return quantity


def _figure(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("actual")
    return value if isinstance(value, str) else None


def disagreements(
    earlier: list[EarlierReport], stage: str, reported: dict[str, Any], articles: dict[str, str]
) -> list[dict[str, Any]]:
    """Warnings for ``reported`` (a new report of ``stage``) against the ``earlier`` ones,
    oldest first; each names the target, both values and the earlier report."""
    warnings: list[dict[str, Any]] = []
    for key, value in reported.items():
        new_text = _figure(value)
        if new_text is None:
            continue
        for old in earlier:
            old_text = _figure(old.reported.get(key))
            if old_text is None:
                continue
            try:
                old_q, new_q = comparable(_quantity(old_text), _quantity(new_text))
            except NotationError:
                continue  # units that cannot be compared were refused when that report came in
            same_stage = old.stage == stage
            if same_stage and new_q.base != old_q.base:
                rule, zh, en = (
                    CHANGED,
                    "同一阶段的两份报告数值不一致",
                    "changed between two reports",
                )
            elif (
                not same_stage
                and new_q.family not in ("percent", "ratio")
                and new_q.base < old_q.base
            ):
                rule, zh, en = DECREASED, "累计数低于此前报告", "is lower than an earlier report's"
            else:
                continue
            warnings.append(
                {
                    "rule": rule,
                    "article": articles.get(key, "五、存在的问题"),
                    "target_id": key,
                    "earlier_report_id": old.id,
                    "earlier_value": old_text,
                    "value": new_text,
                    "message_zh": f"{key}：{zh}（第{old.id}号报告 {old_text}，本次 {new_text}）",
                    "message_en": f"{key} {en} (report {old.id}: {old_text}; now: {new_text})",
                }
            )
    return warnings
