"""What a rule file may name: the fields of a program's request form, with their kinds.

Derived from the pydantic forms, so a rule that names a field the form does not have, or
compares a date with money, is refused at start-up instead of silently never matching.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel


@dataclass(frozen=True)
class FieldSpec:
    kind: str  # bool | int | str | money | date | datetime
    optional: bool = False
    choices: tuple[Any, ...] | None = None


@dataclass
class Scope:
    """The fields one condition may read: a form, or one item of an item list."""

    name: str
    fields: dict[str, FieldSpec] = field(default_factory=dict)
    lists: dict[str, Scope] = field(default_factory=dict)


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    optional = False
    while True:
        origin = get_origin(annotation)
        if origin is typing.Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            args = [a for a in get_args(annotation) if a is not type(None)]
            optional = optional or len(args) < len(get_args(annotation))
            if len(args) != 1:
                raise TypeError(f"unsupported union {annotation}")
            annotation = args[0]
        else:
            return annotation, optional


def _kind(annotation: Any) -> tuple[str, tuple[Any, ...] | None]:
    if get_origin(annotation) is Literal:
        choices = get_args(annotation)
        return ("int" if isinstance(choices[0], int) else "str"), choices
    for python_type, kind in (
        (bool, "bool"),
        (int, "int"),
        (str, "str"),
        (Decimal, "money"),
        (datetime, "datetime"),
        (date, "date"),
    ):
        if annotation is python_type:
            return kind, None
    raise TypeError(f"unsupported field type {annotation}")


def scope_of(model: type[BaseModel], name: str | None = None) -> Scope:
    """Flatten a form into dotted field paths (``applicant.entity_type``) and item lists."""
    scope = Scope(name or model.__name__)
    _collect(model, (), scope, optional=False)
    return scope


def _collect(model: type[BaseModel], prefix: tuple[str, ...], scope: Scope, optional: bool) -> None:
    for fname, info in model.model_fields.items():
        annotation, is_optional = _unwrap(info.annotation)
        is_optional = is_optional or optional
        path = (*prefix, fname)
        if get_origin(annotation) is list:
            (element,) = get_args(annotation)
            element, _ = _unwrap(element)
            scope.lists[".".join(path)] = scope_of(element, f"{scope.name}.{fname}[]")
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
            _collect(annotation, path, scope, is_optional)
        else:
            kind, choices = _kind(annotation)
            scope.fields[".".join(path)] = FieldSpec(kind, is_optional, choices)
