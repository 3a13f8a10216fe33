"""Parameters of a rule file: caps, rates, ratios, counts and windows, each with its article."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ParamType = Literal[
    "money", "rate", "ratio", "count", "date_window", "datetime_window", "money_by_tier"
]


@dataclass(frozen=True)
class Window:
    """Both ends included (spec: "Windows include both ends")."""

    start: date | datetime
    end: date | datetime
    kind: str  # date | datetime


class ValueSpec(BaseModel):
    """One guide year's value of a parameter, with the article that sets it."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    value: Any = None
    start: Any = Field(default=None, alias="from")
    end: Any = Field(default=None, alias="to")
    article: str | None = None


class ParameterSpec(BaseModel):
    """A parameter as written in a rule file: one value, or ``values`` keyed by guide year."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    type: ParamType
    article: str = Field(min_length=2)
    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)
    value: Any = None
    start: Any = Field(default=None, alias="from")
    end: Any = Field(default=None, alias="to")
    values: dict[int, ValueSpec] | None = None

    def for_edition(self, guide_year: int | None) -> ParameterSpec | None:
        """This parameter as it stands in one guide year; None if that year does not have it."""
        if self.values is None:
            return self
        if guide_year is None or guide_year not in self.values:
            return None
        chosen = self.values[guide_year]
        return self.model_copy(
            update={
                "value": chosen.value,
                "start": chosen.start,
                "end": chosen.end,
                "article": chosen.article or self.article,
                "values": None,
            }
        )


@dataclass(frozen=True)
class Parameter:
    name: str
    kind: str  # the condition-language kind: money, ratio, int, window, tiers, rate
    value: Any
    article: str
    zh: str
    en: str
    type: str

    def public(self) -> dict[str, Any]:
        """The JSON shape of ``GET /v1/programs/{id}``."""
        out: dict[str, Any] = {"name": self.name, "type": self.type, "article": self.article}
        if isinstance(self.value, Window):
            out["from"] = self.value.start.isoformat()
            out["to"] = self.value.end.isoformat()
        elif isinstance(self.value, dict):
            out["value"] = {str(k): str(v) for k, v in self.value.items()}
        elif self.value is None:
            out["value"] = None
        elif isinstance(self.value, Decimal) and self.kind == "money":
            out["value"] = str(self.value.quantize(Decimal("0.01")))
        else:
            out["value"] = str(self.value)
        out["text_zh"] = self.zh
        out["text_en"] = self.en
        return out


def _money(raw: Any, what: str) -> Decimal:
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise ValueError(f'{what}: write amounts as quoted strings such as "1500.00"')
    try:
        value = Decimal(str(raw))
    except InvalidOperation as exc:
        raise ValueError(f"{what}: '{raw}' is not an amount") from exc
    if value < 0 or value != value.quantize(Decimal("0.01")):
        raise ValueError(f"{what}: '{raw}' must be non-negative with at most two decimals")
    return value


def _rate(raw: Any) -> Decimal:
    text = str(raw).strip()
    if isinstance(raw, float) or not text:
        raise ValueError('write rates as quoted strings such as "0.1%" or "0.001"')
    try:
        return Decimal(text[:-1]) / 100 if text.endswith("%") else Decimal(text)
    except InvalidOperation as exc:
        raise ValueError(f"'{raw}' is not a rate") from exc


def _ratio(raw: Any) -> Decimal:
    text = str(raw).strip()
    left, _, right = text.partition(":")
    try:
        ratio = Decimal(left) / Decimal(right or "1")
    except (InvalidOperation, ZeroDivisionError) as exc:
        raise ValueError(f"'{raw}' is not a ratio such as \"2:1\"") from exc
    return ratio


def _moment(raw: Any, kind: str) -> date | datetime:
    if kind == "date":
        if isinstance(raw, date) and not isinstance(raw, datetime):
            return raw
        return date.fromisoformat(str(raw))
    moment = raw if isinstance(raw, datetime) else datetime.fromisoformat(str(raw))
    if moment.tzinfo is None:
        raise ValueError(f"'{raw}' needs a UTC offset such as +08:00")
    return moment


def build_parameter(name: str, spec: ParameterSpec) -> Parameter:
    """Parse a parameter's value into Decimal / int / Window; raises ValueError when malformed."""
    value: Any
    if spec.type == "money":
        value, kind = _money(spec.value, name), "money"
    elif spec.type == "rate":
        value, kind = _rate(spec.value), "rate"
    elif spec.type == "ratio":
        value, kind = _ratio(spec.value), "ratio"
    elif spec.type == "count":
        if type(spec.value) is not int or spec.value < 0:
            raise ValueError(f"{name}: a count is a whole number")
        value, kind = spec.value, "int"
    elif spec.type == "money_by_tier":
        if spec.value is None:
            value = None
        elif isinstance(spec.value, dict):
            value = {int(k): _money(v, f"{name}[{k}]") for k, v in spec.value.items()}
        else:
            raise ValueError(f"{name}: tier amounts are a mapping tier -> amount, or null")
        kind = "tiers"
    else:
        moment_kind = "date" if spec.type == "date_window" else "datetime"
        if spec.start is None or spec.end is None:
            raise ValueError(f"{name}: a window needs 'from' and 'to'")
        start, end = _moment(spec.start, moment_kind), _moment(spec.end, moment_kind)
        if end < start:
            raise ValueError(f"{name}: the window ends before it starts")
        value, kind = Window(start, end, moment_kind), "window"
    return Parameter(name, kind, value, spec.article, spec.zh, spec.en, spec.type)
