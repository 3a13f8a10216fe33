"""What was wrong with a field, in Chinese and English (``message_zh`` / ``message_en`` of each
422 ``detail`` item): missing, unknown (and whose form it belongs to), the allowed values with
their labels, the bounds, the money format with its real limit of digits.

Read from pydantic's error (its type and context), the field's labels in the form files, and
which forms have a field of that name (registered by the loader for each book's forms).
"""

from __future__ import annotations

import re
from typing import Any
from weakref import WeakKeyDictionary

from pydantic import BaseModel
from pydantic_core import ErrorDetails

from service.rules.forms import FieldLabel, field_label

# form model -> field path -> the forms (id, their programs) that have it: the same mapping
# for every form of one book, registered by service.rules.loader.
_OWNERS: WeakKeyDictionary[type[BaseModel], dict[str, list[tuple[str, list[str]]]]] = (
    WeakKeyDictionary()
)
_MONEY_DIGITS = 15  # service.schemas.types: at most 15 digits before the point, 2 after


def register_owners(
    forms: dict[str, type[BaseModel]], owners: dict[str, list[tuple[str, list[str]]]]
) -> None:
    for form in forms.values():
        _OWNERS[form] = owners


def _plain_path(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(p) for p in loc if isinstance(p, str))


def _choice(value: Any, label: FieldLabel | None) -> tuple[str, str]:
    if label is not None and label.choices and value in label.choices:
        zh, en = label.choices[value]
        return f"{value}（{zh}）", f"{value} ({en})"
    return str(value), str(value)


def _split(msg: str) -> tuple[str, str]:
    text = msg.removeprefix("Value error, ")
    zh, sep, en = text.partition(" / ")
    return (zh, en) if sep else (text, text)


def _money(value: Any) -> tuple[str, str] | None:
    """The money format's real limit: which of its two limits the amount passes."""
    if not isinstance(value, str):
        return None
    whole, _, fraction = value.strip().partition(".")
    if whole.isdigit() and len(whole) > _MONEY_DIGITS:
        return (
            f"金额整数部分最多{_MONEY_DIGITS}位（收到{len(whole)}位）",
            f"an amount has at most {_MONEY_DIGITS} digits before the point ({len(whole)} sent)",
        )
    if whole.isdigit() and fraction.isdigit() and len(fraction) > 2:
        return (
            f"金额最多两位小数（收到{len(fraction)}位）",
            f"an amount has at most two decimals ({len(fraction)} sent)",
        )
    return None


def _few(programs: list[str], sep: str, more: str) -> str:
    if len(programs) <= 3:
        return sep.join(programs)
    return sep.join(programs[:2]) + more.format(n=len(programs))


def _owners_hint(model: type[BaseModel] | None, path: str) -> tuple[str, str]:
    owners = _OWNERS.get(model) if model is not None else None
    found = (owners or {}).get(re.sub(r"\[\d+\]", "", path), [])
    if not found:
        return "", ""
    zh = "；".join(f"{form}（{_few(programs, '、', '等{n}个项目')}）" for form, programs in found)
    en = "; ".join(f"{form} ({_few(programs, ', ', '… {n} programs')})" for form, programs in found)
    return f"；该字段属于另一申报表：{zh}", f"; it belongs to another form: {en}"


def messages(err: ErrorDetails, model: type[BaseModel] | None = None) -> tuple[str, str]:
    """``(message_zh, message_en)`` for one pydantic error of a body validated as ``model``."""
    loc = tuple(err["loc"])
    kind = err["type"]
    ctx: dict[str, Any] = dict(err.get("ctx") or {})
    path = _plain_path(loc)
    label = field_label(model, path) if model is not None and path else None
    if kind == "missing":
        zh, en = "缺少必填字段", "this field is required"
    elif kind == "extra_forbidden":
        hint_zh, hint_en = _owners_hint(model, path)
        zh, en = f"没有这个字段{hint_zh}", f"no such field{hint_en}"
    elif kind == "literal_error":
        expected = re.findall(r"'([^']*)'|(\d+)", str(ctx.get("expected", "")))
        values: list[Any] = [s if s else int(n) for s, n in expected]
        shown = [_choice(v, label) for v in values]
        zh = "应为以下之一：" + "、".join(z for z, _ in shown)
        en = "must be one of: " + ", ".join(e for _, e in shown)
    elif kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        bound = next(iter(ctx.values()), "")
        zh, en = {
            "greater_than_equal": (f"不能小于{bound}", f"must be at least {bound}"),
            "greater_than": (f"应大于{bound}", f"must be greater than {bound}"),
            "less_than_equal": (f"不能大于{bound}", f"must be at most {bound}"),
            "less_than": (f"应小于{bound}", f"must be less than {bound}"),
        }[kind]
    elif kind == "string_too_short":
        n = ctx.get("min_length")
        zh, en = f"至少{n}个字符", f"must have at least {n} character{'s' if n != 1 else ''}"
    elif kind == "string_too_long":
        n = ctx.get("max_length")
        zh, en = f"最多{n}个字符", f"must have at most {n} characters"
    elif kind == "too_long":
        n = ctx.get("max_length")
        zh, en = f"最多{n}项", f"must have at most {n} items"
    elif kind in ("int_type", "int_parsing", "int_from_float"):
        zh, en = "应为整数", "must be a whole number"
    elif kind in ("bool_type", "bool_parsing"):
        zh, en = "应为 true 或 false", "must be true or false"
    elif kind == "string_type":
        zh, en = "应为文本", "must be text"
    elif kind in ("model_type", "dict_type", "model_attributes_type"):
        zh, en = "应为对象（JSON object）", "must be an object"
    elif kind == "list_type":
        zh, en = "应为数组（JSON array）", "must be a list"
    elif kind.startswith("date") and kind != "datetime_type":
        zh, en = "不是有效日期（YYYY-MM-DD）", "not a valid date (YYYY-MM-DD)"
    elif kind.startswith("datetime"):
        zh, en = (
            "不是有效时间（ISO 8601，带时区）",
            "not a valid timestamp (ISO 8601 with an offset)",
        )
    else:  # our own validators (money, USCC, patent numbers, JSON) already say "zh / en"
        zh, en = _split(err["msg"])
        if kind == "value_error" and "金额" in zh:
            zh, en = _money(err.get("input")) or (zh, en)
    if label is not None:
        return f"{label.zh}：{zh}", f"{label.en[:1].upper()}{label.en[1:]}: {en}"
    return zh, f"{en[:1].upper()}{en[1:]}"


def with_messages(
    detail: list[dict[str, Any]], errors: list[ErrorDetails], model: type[BaseModel] | None
) -> list[dict[str, Any]]:
    """Add ``message_zh`` / ``message_en`` to each detail item (one per error, in order)."""
    for item, err in zip(detail, errors, strict=True):
        item["message_zh"], item["message_en"] = messages(err, model)
    return detail


def fill_messages(detail: list[dict[str, Any]]) -> None:
    """Items built by hand (an unknown query parameter, a round of another program) say
    "zh / en" in ``msg``: split them, so that every 422 item has both messages."""
    for item in detail:
        if "message_zh" not in item:
            item["message_zh"], item["message_en"] = _split(str(item.get("msg", "")))
