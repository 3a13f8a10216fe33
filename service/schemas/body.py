"""Decoding and validating request bodies exactly: JSON numbers become Decimal (never float),
and every validation error names its field by path (``transactions[2].patent_number``)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from service.errors import BodyTooLarge, InvalidRequest
from service.schemas.messages import with_messages
from service.schemas.types import ExponentNumber, NonFiniteNumber

M = TypeVar("M", bound=BaseModel)


def _number(text: str) -> Decimal | ExponentNumber:
    if "e" in text or "E" in text:
        return ExponentNumber(text)
    return Decimal(text)


def decode_json(raw: bytes, limit: int) -> Any:
    if len(raw) > limit:
        raise BodyTooLarge(limit)
    try:
        return json.loads(raw, parse_float=_number, parse_constant=NonFiniteNumber)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        where = (
            f" (line {exc.lineno}, column {exc.colno})"
            if isinstance(exc, json.JSONDecodeError)
            else ""
        )
        raise InvalidRequest(
            [
                {
                    "loc": ["body"],
                    "path": "",
                    "type": "json_invalid",
                    "msg": f"请求体不是有效的 JSON / the body is not valid JSON{where}",
                    "message_zh": "请求体不是有效的 JSON",
                    "message_en": f"The body is not valid JSON{where}",
                }
            ]
        ) from exc


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
