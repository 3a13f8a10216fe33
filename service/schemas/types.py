"""Field types of the contract: money, dates, timestamps, identifiers.

Bodies are decoded by :mod:`service.schemas.body` with ``parse_float=Decimal`` so that a JSON
number reaches these validators exactly as it was written; floats never carry money.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import (
    AfterValidator,
    BeforeValidator,
    PlainSerializer,
    StrictBool,
    StringConstraints,
    WithJsonSchema,
)

from service.money import fmt
from service.schemas.identifiers import canonical_patent_number, validate_uscc

# ASCII digits only (\d would accept full-width ones), at most 15 before the point: sums of
# thousands of items then stay far inside Decimal's 28 significant digits.
SHANGHAI = ZoneInfo("Asia/Shanghai")
_MONEY_RE = re.compile(r"^[0-9]{1,15}(\.[0-9]{1,2})?$")


class ExponentNumber(str):
    """A JSON number written with an exponent (``1.5e3``): kept as text so it can be refused."""


class NonFiniteNumber(str):
    """``NaN`` / ``Infinity`` literals, which Python's json module accepts and JSON does not."""


class OversizeNumber:
    """A JSON number with more digits than any field could hold: kept as its length so the
    field refuses it with its path (not a string: no text field may take it for its digits)."""

    def __init__(self, digits: int) -> None:
        self.digits = digits

    def __repr__(self) -> str:
        return f"<number of {self.digits} digits>"

    def message(self) -> str:
        return f"数字位数过多（{self.digits} 位） / a number of {self.digits} digits is too long"


def _parse_money(value: Any) -> Decimal:
    if isinstance(value, OversizeNumber):
        raise ValueError(value.message())
    if isinstance(value, bool):
        raise ValueError("金额不能是布尔值 / an amount cannot be a boolean")
    if isinstance(value, ExponentNumber | NonFiniteNumber):
        raise ValueError(
            "金额不能使用指数形式或非数值 / exponent forms, NaN and Infinity are not amounts"
        )
    if isinstance(value, int):
        if value < 0:
            raise ValueError("金额不能为负 / an amount cannot be negative")
        if value >= 10**15:
            raise ValueError("金额超过15位整数 / an amount has at most 15 digits before the point")
        return Decimal(value)
    if isinstance(value, Decimal):
        text = format(value, "f") if value.is_finite() else "NaN"
    elif isinstance(value, str):
        text = value
    else:
        raise ValueError('金额应为字符串或整数，如 "1500.00" / send amounts as strings or integers')
    if text.startswith("-"):
        raise ValueError("金额不能为负 / an amount cannot be negative")
    if not _MONEY_RE.fullmatch(text):
        raise ValueError(
            '金额应为非负数，最多两位小数，如 "1500.00" / '
            'an amount is a non-negative number with at most two decimals, like "1500.00"'
        )
    try:
        return Decimal(text)
    except InvalidOperation as exc:  # pragma: no cover - the regex already guards this
        raise ValueError("金额无法解析 / unreadable amount") from exc


def _two_places(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"))


Money = Annotated[
    Decimal,
    BeforeValidator(_parse_money),
    AfterValidator(_two_places),
    PlainSerializer(fmt, return_type=str, when_used="json"),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^[0-9]{1,15}(\.[0-9]{1,2})?$",
            "description": "人民币元，最多两位小数 / CNY yuan, at most two decimals",
            "examples": ["1500.00"],
        }
    ),
]

_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _parse_date(value: Any) -> Any:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _DATE_RE.fullmatch(value):
        raise ValueError("日期格式应为 YYYY-MM-DD / a date is written YYYY-MM-DD")
    return value


def _parse_timestamp(value: Any) -> Any:
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError as exc:
            raise ValueError(
                "时间应为 ISO 8601 格式并带时区，如 2023-03-01T10:00:00+08:00 / "
                "a timestamp is ISO 8601 with an offset, like 2023-03-01T10:00:00+08:00"
            ) from exc
    else:
        raise ValueError("时间应为字符串 / a timestamp is a string")
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError(
            "时间必须带时区偏移，如 +08:00 / a timestamp must carry a UTC offset, like +08:00"
        )
    try:  # stored in UTC, evaluated in Asia/Shanghai: both must exist (9999-12-31T23:00-12:00 doesn't)
        parsed.astimezone(UTC)
        parsed.astimezone(SHANGHAI)
    except OverflowError as exc:
        raise ValueError(
            "时间超出可表示的范围（换算为UTC或北京时间时越界） / the timestamp is out of range "
            "(it has no UTC or Asia/Shanghai equivalent before year 10000 or after year 1)"
        ) from exc
    return parsed


CalendarDate = Annotated[
    date,
    BeforeValidator(_parse_date),
    WithJsonSchema({"type": "string", "format": "date", "examples": ["2023-03-01"]}),
]

Timestamp = Annotated[
    datetime,
    BeforeValidator(_parse_timestamp),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "description": "ISO 8601，必须带时区偏移 / ISO 8601 with a UTC offset",
            "examples": ["2023-03-01T10:00:00+08:00"],
        }
    ),
]

USCC = Annotated[
    str,
    AfterValidator(validate_uscc),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": "^[0-9A-HJ-NPQRTUWXY]{18}$",
            "description": "统一社会信用代码（GB 32100-2015，含校验位） / USCC with check character",
            "examples": ["123100004250061179"],
        }
    ),
]

PatentNumber = Annotated[
    str,
    AfterValidator(canonical_patent_number),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^(ZL|CN)?([0-9]{12}|[0-9]{8})\.?[0-9X]$",
            "description": "中国专利号（含校验位），可带 ZL/CN 前缀 / Chinese patent number with check character",
            "examples": ["ZL201510906090.5"],
        }
    ),
]

Flag = StrictBool


def _not_bool(value: Any) -> Any:
    if isinstance(value, OversizeNumber):
        raise ValueError(value.message())
    if isinstance(value, bool):
        raise ValueError("应为整数而非布尔值 / a number is expected, not a boolean")
    return value


NotBool = BeforeValidator(_not_bool)

# An identifier compared for duplicates (loan ids, contract ids): surrounding spaces dropped.
ItemId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


# C0 and C1 controls (tabs and newlines too: a name is one line) and the bidirectional marks,
# embeddings, overrides and isolates, which make a name display as another (U+202E "evil").
_NOT_IN_NAMES = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


_NOT_IN_PARAGRAPHS = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)


def _refuse(pattern: re.Pattern[str], value: str) -> str:
    found = pattern.search(value)
    if found is not None:
        raise ValueError(
            f"不能含有控制字符或双向文本控制符（U+{ord(found.group()):04X}） / "
            f"control characters and bidirectional controls are not allowed "
            f"(U+{ord(found.group()):04X})"
        )
    return value


def _plain_text(value: str) -> str:
    return _refuse(_NOT_IN_NAMES, value)


def _plain_paragraph(value: str) -> str:
    return _refuse(_NOT_IN_PARAGRAPHS, value)


# Names and other one-line free text that people read in lists and reports.
PlainText = Annotated[str, AfterValidator(_plain_text)]
# Reasons and notes: the same, but lines and tabs are allowed.
PlainParagraph = Annotated[str, AfterValidator(_plain_paragraph)]
