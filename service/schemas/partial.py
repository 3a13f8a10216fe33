"""Partial forms for ``/v1/match``: the same fields, types and bounds as a form, every field
optional and with no default (a fact not given stays unknown), other fields ignored.

Built from the forms of rules/**/_forms.yaml, so a known value is validated exactly as check
would validate it (a money amount to the fen, an enum by its values or labels).
"""

from __future__ import annotations

import types
import typing
from functools import cache
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, create_model

from service.rules.forms import share_labels


def _strip_none(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


@cache
def partial_model(model: type[BaseModel]) -> type[BaseModel]:
    fields: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        annotation = _strip_none(info.annotation)
        inner = _model_in(annotation)
        constraints = [m for m in info.metadata]
        if inner is not None:
            new: Any = partial_model(inner)
        elif get_origin(annotation) is list and _model_in(get_args(annotation)[0]) is not None:
            new = list[partial_model(get_args(annotation)[0])]  # type: ignore[misc]
        else:
            new = annotation
        if constraints:
            new = Annotated[new, *constraints]
        fields[name] = (typing.Optional[new], Field(default=None, description=info.description))  # noqa: UP045
    partial: type[BaseModel] = create_model(  # type: ignore[call-overload]
        f"{model.__name__}Partial",
        __config__=ConfigDict(extra="ignore"),
        __module__=__name__,
        **fields,
    )
    share_labels(model, partial)
    return partial


def field_paths(model: type[BaseModel], prefix: str = "") -> dict[str, bool]:
    """Every dotted path of a form (an item list's fields under ``list.field``): path -> whether
    it holds a model or a list of models (walked into) rather than a value."""
    out: dict[str, bool] = {}
    for name, info in model.model_fields.items():
        annotation = _strip_none(info.annotation)
        path = f"{prefix}{name}"
        inner = _model_in(annotation)
        if inner is None and get_origin(annotation) is list:
            inner = _model_in(get_args(annotation)[0])
        out[path] = inner is not None
        if inner is not None:
            out.update(field_paths(inner, f"{path}."))
    return out
