"""Facts: the values a program's conditions read, taken from a validated application.

Both engine backends evaluate the same facts, so what they can disagree on is only how they
evaluate, never what they were given. Timestamps are taken in Asia/Shanghai to the whole second
(the windows of the rules are written to the second or the minute).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from service.money import to_fen
from service.rules.expr import Ref
from service.rules.program import Program

SHANGHAI = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class Context:
    """What the service knows beside the request (第二十六条's disqualification list, …)."""

    disqualified: bool = False

    def as_model(self) -> dict[str, Any]:
        return {"disqualified": self.disqualified}


@dataclass
class Facts:
    app: dict[str, Any]
    items: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def _get(obj: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        if obj is None:
            return None
        obj = obj.get(part) if isinstance(obj, dict) else getattr(obj, part, None)
    if isinstance(obj, datetime):
        return obj.astimezone(SHANGHAI).replace(microsecond=0)
    return obj


def _collect(obj: Any, refs: list[Ref], context: dict[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for ref in refs:
        if ref.aggregate is not None:
            agg = ref.aggregate
            items = getattr(obj, agg.list_name, None) or []
            value: Any = sum(
                1 for i in items if agg.field is None or getattr(i, agg.field) == agg.value
            )
        elif ref.path[0] == "context" and context is not None:
            value = _get(context, ref.path[1:])
        else:
            value = _get(obj, ref.path)
        if value is not None:  # a missing optional fact is absent, never null
            out[ref.key] = value
    return out


def extract(program: Program, application: BaseModel, context: Context) -> Facts:
    facts = Facts(_collect(application, program.facts, context.as_model()))
    for group in program.item_groups:
        refs = group.facts
        items = getattr(application, group.list_name, None) or []
        facts.items[group.list_name] = [_collect(item, refs, None) for item in items]
    return facts


def encode(value: Any) -> Any:
    """A fact value as an engine compares it exactly: booleans, strings and integers (fen,
    yyyymmdd, yyyymmddhhmmss in Asia/Shanghai). durable_rules and the polars batch share it."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, Decimal):
        return to_fen(value)
    if isinstance(value, int):
        return value
    if isinstance(value, datetime):
        return int(value.astimezone(SHANGHAI).strftime("%Y%m%d%H%M%S"))
    if isinstance(value, date):
        return value.year * 10000 + value.month * 100 + value.day
    raise TypeError(f"cannot encode {type(value).__name__} as a fact")
