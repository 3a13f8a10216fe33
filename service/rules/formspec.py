"""The shape of a form file (``rules/_forms.yaml``, ``rules/<policy>/_forms.yaml``).

A form file declares shared value lists (``enums``), groups of fields (``models``, each named as
its OpenAPI component) and which model each form id of the rule files is (``forms``). The
format is described for policy officers at the top of ``rules/_forms.yaml``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

NAME = r"^[a-z][a-z0-9_]*$"  # a field name, as the request writes it
MODEL = r"^[A-Z][A-Za-z0-9]*$"  # a model name, as OpenAPI shows it

# The field types a form file may name, besides the name of another model.
SCALAR_TYPES = (
    "bool",
    "int",
    "money",
    "date",
    "timestamp",
    "enum",
    "uscc",
    "patent_number",
    "item_id",
    "text",
    "list",
)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EnumValue(Strict):
    """One allowed value with its labels (the audit also reads a cell by its zh label)."""

    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)
    aliases: list[str] = Field(default_factory=list)


class EnumSpec(Strict):
    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)
    # A request may send a value's zh label or an alias instead of the value (黄浦区 -> huangpu).
    accept_labels: bool = False
    values: dict[int | str, EnumValue] = Field(min_length=1)


class FieldDecl(Strict):
    type: str = Field(min_length=1)
    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)
    description: str | None = None  # the OpenAPI description, when "zh / en" is not enough
    article: str | None = None
    required: bool = True
    default: bool | int | str | None = None
    aliases: list[str] = Field(default_factory=list)  # other column headers of the audit
    examples: list[Any] | None = None
    # int
    min: int | None = None
    max: int | None = None
    # text
    min_length: int | None = Field(default=None, ge=0)
    max_length: int | None = Field(default=None, ge=1)
    # enum: its values here, or the name of a shared list
    values: dict[int | str, EnumValue] | None = None
    enum: str | None = None
    # list
    items: str | None = Field(default=None, pattern=MODEL)
    max_items: int | None = Field(default=None, ge=1)
    # a field holding another model: what the audit's headers of its fields start with
    # (受让方 + 名称 = 受让方名称); the field's zh label unless given
    header_prefix: str | None = None


class ModelDecl(Strict):
    zh: str | None = None
    en: str | None = None
    base: bool = False  # only extended by forms, never a component of its own
    extends: str | None = Field(default=None, pattern=MODEL)
    fields: dict[str, FieldDecl] = Field(min_length=1)


class FormFileSpec(Strict):
    forms: dict[str, str] = Field(default_factory=dict)  # form id -> model name
    enums: dict[str, EnumSpec] = Field(default_factory=dict)
    models: dict[str, ModelDecl] = Field(default_factory=dict)
