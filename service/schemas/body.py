"""Decoding and validating request bodies exactly: JSON numbers become Decimal (never float),
and every validation error names its field by path (``transactions[2].patent_number``)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from service.errors import BodyTooLarge, InvalidRequest
from service.schemas.messages import with_messages
from service.schemas.types import ExponentNumber, NonFiniteNumber, OversizeNumber

M = TypeVar("M", bound=BaseModel)

# No form nests deeper than a handful of levels; 32 leaves room and keeps every recursive
# consumer (pydantic, json.dumps when storing) far from Python's recursion limit.
MAX_DEPTH = 32
# A number with more digits than any amount, id or count of the contract could have. Python
# itself refuses integers above 4,300 digits with a ValueError (a 500 if it escaped).
MAX_NUMBER_DIGITS = 100
# ``"\ud800"`` is valid JSON but no valid text: it could be neither stored nor answered in UTF-8.
_SURROGATE = re.compile("[\ud800-\udfff]")
# Valid UTF-8 holds none: one can only come from an escape (the walk then finds it, if it is one).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _number(text: str) -> Decimal | ExponentNumber | OversizeNumber:
    if len(text) > MAX_NUMBER_DIGITS:
        return OversizeNumber(len(text))
    if "e" in text or "E" in text:
        return ExponentNumber(text)
    return Decimal(text)


def _integer(text: str) -> int | OversizeNumber:
    if len(text) > MAX_NUMBER_DIGITS:
        return OversizeNumber(len(text))
    return int(text)


class _DuplicatedKeys(dict):  # type: ignore[type-arg]
    """An object that named a key twice; found (with its path) by the walk after decoding."""

    duplicates: list[str]


def _objects(seen_duplicates: list[bool]) -> Callable[[list[tuple[str, Any]]], dict[str, Any]]:
    """json's object_pairs_hook: a dict, marked when a key came twice (and the call noted)."""

    def build(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        obj = dict(pairs)
        if len(obj) == len(pairs):
            return obj
        marked = _DuplicatedKeys(obj)
        marked.duplicates = []
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                marked.duplicates.append(key)
            seen.add(key)
        seen_duplicates.append(True)
        return marked

    return build


def _too_deep(data: Any) -> bool:
    """More than MAX_DEPTH levels? Level by level, containers only: the cheap check every body
    gets (the walk that names the path runs only when something is wrong)."""
    level = [data] if isinstance(data, dict | list) else []
    for _ in range(MAX_DEPTH):
        below: list[Any] = []
        for value in level:
            children = value.values() if isinstance(value, dict) else value
            below.extend(c for c in children if isinstance(c, dict | list))
        if not below:
            return False
        level = below
    return True


_NOT_TEXT = "文本含有孤立的代理码位 / the text holds a lone surrogate code point (not Unicode text)"


def _problem(path: str, kind: str, msg: str) -> InvalidRequest:
    loc: list[int | str] = ["body"]
    return InvalidRequest([{"loc": loc, "path": path, "type": kind, "msg": msg}])


def _check_structure(data: Any) -> None:
    """Nesting depth, duplicate keys and lone surrogates, raised with the path of the first
    offender (iterative: the walk itself never recurses)."""
    stack: list[tuple[Any, tuple[int | str, ...]]] = [(data, ())]
    while stack:
        value, loc = stack.pop()
        if isinstance(value, str):
            if _SURROGATE.search(value):
                raise _problem(path_of(loc), "json_invalid", _NOT_TEXT)
            continue
        if isinstance(value, dict):
            children: Any = value.items()
        elif isinstance(value, list):
            children = enumerate(value)
        else:
            continue
        if len(loc) >= MAX_DEPTH:
            raise _problem(
                path_of(loc),
                "json_too_deep",
                f"嵌套超过 {MAX_DEPTH} 层 / nested more than {MAX_DEPTH} levels deep",
            )
        if isinstance(value, _DuplicatedKeys):
            key = value.duplicates[0]
            raise _problem(
                path_of((*loc, key)),
                "json_duplicate_key",
                f"同一对象中键 {key!r} 出现了两次 / the key {key!r} appears twice in one object",
            )
        for key, child in children:
            if isinstance(key, str) and _SURROGATE.search(key):
                raise _problem(path_of(loc), "json_invalid", _NOT_TEXT)
            stack.append((child, (*loc, key)))


def decode_json(raw: bytes, limit: int) -> Any:
    """JSON as the contract reads it: UTF-8 only, numbers exact (Decimal, or a marker the field
    types refuse with the field's path), no key twice in one object, at most MAX_DEPTH levels."""
    if len(raw) > limit:
        raise BodyTooLarge(limit)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _problem(
            "",
            "json_invalid",
            f"请求体不是有效的 UTF-8（第 {exc.start} 字节） / "
            f"the body is not valid UTF-8 (at byte {exc.start})",
        ) from exc
    duplicates: list[bool] = []
    try:
        data = json.loads(
            text.removeprefix("\ufeff"),
            parse_float=_number,
            parse_int=_integer,
            parse_constant=NonFiniteNumber,
            object_pairs_hook=_objects(duplicates),
        )
    except RecursionError as exc:  # json's own guard (near 1,000 levels), before our walk
        raise _problem(
            "",
            "json_too_deep",
            f"嵌套超过 {MAX_DEPTH} 层 / nested more than {MAX_DEPTH} levels deep",
        ) from exc
    except json.JSONDecodeError as exc:
        raise _problem(
            "",
            "json_invalid",
            "请求体不是有效的 JSON / the body is not valid JSON "
            f"(line {exc.lineno}, column {exc.colno})",
        ) from exc
    if duplicates or _SURROGATE_ESCAPE.search(text) or _too_deep(data):
        _check_structure(data)
    return data


def path_of(loc: tuple[int | str, ...] | list[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def error_detail(
    exc: ValidationError,
    prefix: tuple[str, ...] = ("body",),
    model: type[BaseModel] | None = None,
) -> list[dict[str, Any]]:
    detail = []
    for err in exc.errors(include_url=False, include_context=False, include_input=False):
        loc = tuple(err["loc"])
        detail.append(
            {"loc": [*prefix, *loc], "path": path_of(loc), "type": err["type"], "msg": err["msg"]}
        )
    return with_messages(detail, exc.errors(include_url=False), model)


def validate_body(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidRequest(error_detail(exc, model=model)) from exc
