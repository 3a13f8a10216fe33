"""Build the request forms from the form files (``rules/**/_forms.yaml``), once per load.

Each model of a form file becomes a pydantic model (``extra="forbid"``) named as the file names
it, so validation, the 422 paths and the OpenAPI components are those of hand-written classes.
The audit reads its columns by the same labels: ``headers`` and ``choice_labels``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, get_args
from weakref import WeakKeyDictionary

import yaml
from pydantic import BaseModel, BeforeValidator, Field, TypeAdapter, ValidationError, create_model
from pydantic.fields import FieldInfo

from service.rules.errors import RuleFileError
from service.rules.formspec import NAME, SCALAR_TYPES, EnumSpec, FieldDecl, FormFileSpec, ModelDecl
from service.rules.yaml_lines import LineDict, line_of, load_yaml
from service.schemas.forms import Application, text_field
from service.schemas.types import (
    USCC,
    CalendarDate,
    Flag,
    ItemId,
    Money,
    NotBool,
    PatentNumber,
    Timestamp,
)

FORM_FILE = "_forms.yaml"
_SIMPLE: dict[str, Any] = {
    "bool": Flag,
    "money": Money,
    "date": CalendarDate,
    "timestamp": Timestamp,
    "uscc": USCC,
    "patent_number": PatentNumber,
    "item_id": ItemId,
}
# What a type's own schema says of its values (units, format), kept after a field's description.
_TYPE_DESCRIPTIONS = {
    kind: TypeAdapter(t).json_schema().get("description") for kind, t in _SIMPLE.items()
}
_BOUNDS = {
    "min": ("int",),
    "max": ("int",),
    "min_length": ("text",),
    "max_length": ("text",),
    "values": ("enum",),
    "enum": ("enum",),
    "items": ("list",),
    "max_items": ("list",),
}


@dataclass
class FormBook:
    """The built forms: form id -> model, and what the audit needs of their labels."""

    forms: dict[str, type[Application]]
    models: dict[str, type[Application]]
    enums: dict[str, EnumSpec]
    headers: dict[str, str] = field(default_factory=dict)  # audit header -> field path
    choice_labels: dict[str, str] = field(default_factory=dict)  # zh label or alias -> value

    def label(self, model: type[BaseModel], path: str) -> FieldLabel | None:
        return field_label(model, path)


# model -> its own fields' labels, recorded as each model is built: what /v1/match says a
# missing fact is, what a verdict line calls the items, and what a 422 says a field allows.
_LABELS: WeakKeyDictionary[type[BaseModel], dict[str, FieldLabel]] = WeakKeyDictionary()


def share_labels(source: type[BaseModel], target: type[BaseModel]) -> None:
    """A model derived from a form model (the partial forms of /v1/match) reads its labels."""
    for cls in source.__mro__:
        if cls in _LABELS:
            _LABELS.setdefault(target, {}).update(
                {k: v for k, v in _LABELS[cls].items() if k not in _LABELS.get(target, {})}
            )


def field_label(model: type[BaseModel], path: str) -> FieldLabel | None:
    """The labels of a dotted field path of a form model (``applicant.entity_type``,
    ``transactions.contract_date`` for a field of a list's items)."""
    current: Any = model
    found: FieldLabel | None = None
    for part in path.split("."):
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        owner = next((c for c in current.__mro__ if part in _LABELS.get(c, {})), None)
        if owner is None:
            return None
        found = _LABELS[owner][part]
        current = _inner_model(current.model_fields[part].annotation)
    return found


@dataclass(frozen=True)
class FieldLabel:
    zh: str
    en: str
    article: str | None = None
    choices: dict[Any, tuple[str, str]] | None = None  # enum value -> (zh, en)


def _inner_model(annotation: Any) -> Any:
    """The model a field holds (itself, in a list, or optional), or None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        inner = _inner_model(arg)
        if inner is not None:
            return inner
    return None


@dataclass
class _Decl:
    name: str
    spec: ModelDecl
    label: str  # the file
    raw: LineDict  # the model's mapping, for line numbers


def _read(root: Path, path: Path) -> tuple[str, LineDict, FormFileSpec]:
    label = f"rules/{path.relative_to(root).as_posix()}"
    try:
        raw = load_yaml(path.read_text(encoding="utf-8"))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise RuleFileError(label, (mark.line + 1) if mark else 1, str(exc.problem)) from exc
    if not isinstance(raw, LineDict):
        raise RuleFileError(label, 1, "a form file is a mapping of keys to values")
    try:
        spec = FormFileSpec.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        raise RuleFileError(label, line_of(raw, error["loc"]), f"{where}: {error['msg']}") from exc
    return label, raw, spec


def load_forms(root: Path) -> FormBook:
    """Every ``_forms.yaml`` under ``root``, shallowest first; names are shared by all files."""
    files = sorted(root.rglob(FORM_FILE), key=lambda p: (len(p.parts), p.as_posix()))
    decls: dict[str, _Decl] = {}
    enums: dict[str, EnumSpec] = {}
    form_ids: dict[str, tuple[str, str, int]] = {}
    for path in files:
        label, raw, spec = _read(root, path)
        for name, enum in spec.enums.items():
            if name in enums:
                raise RuleFileError(
                    label, line_of(raw, ("enums", name)), f"enum '{name}' is declared twice"
                )
            enums[name] = enum
        for name, model in spec.models.items():
            line = line_of(raw, ("models", name))
            if name in decls:
                raise RuleFileError(label, line, f"model '{name}' is declared twice")
            decls[name] = _Decl(name, model, label, raw["models"][name])
        for form_id, model_name in spec.forms.items():
            if form_id in form_ids:
                raise RuleFileError(
                    label, line_of(raw, ("forms", form_id)), f"form '{form_id}' is declared twice"
                )
            form_ids[form_id] = (model_name, label, line_of(raw, ("forms", form_id)))
    builder = _Builder(decls, enums)
    forms: dict[str, type[Application]] = {}
    for form_id, (model_name, label, line) in form_ids.items():
        decl = decls.get(model_name)
        if decl is None or decl.spec.base:
            raise RuleFileError(label, line, f"form '{form_id}': no form model '{model_name}'")
        form = builder.model(model_name)
        applicant = form.model_fields.get("applicant")
        applicant_type = applicant.annotation if applicant is not None else None
        if (
            "submitted_at" not in form.model_fields
            or not isinstance(applicant_type, type)
            or not issubclass(applicant_type, Application)
            or not {"uscc", "name"} <= set(applicant_type.model_fields)
        ):
            raise RuleFileError(
                label,
                line,
                f"form '{form_id}': a form has applicant (with uscc and name) and submitted_at "
                "(extends: Application)",
            )
        forms[form_id] = form
    for name in decls:  # models no form uses are still checked
        builder.model(name)
    book = FormBook(forms, builder.models, enums)
    _labels(book, builder, decls)
    return book


class _Builder:
    def __init__(self, decls: dict[str, _Decl], enums: dict[str, EnumSpec]) -> None:
        self.decls = decls
        self.enums = enums
        self.models: dict[str, type[Application]] = {}
        self.labels: dict[str, dict[str, FieldLabel]] = {}
        self._building: list[str] = []

    def model(self, name: str) -> type[Application]:
        built = self.models.get(name)
        if built is not None:
            return built
        decl = self.decls[name]
        if name in self._building:
            raise RuleFileError(decl.label, decl.raw.line, f"model '{name}' contains itself")
        self._building.append(name)
        base: type[Application] = Application
        if decl.spec.extends is not None:
            if decl.spec.extends not in self.decls:
                raise RuleFileError(
                    decl.label,
                    line_of(decl.raw, ("extends",)),
                    f"extends: no model '{decl.spec.extends}'",
                )
            base = self.model(decl.spec.extends)
        fields: dict[str, Any] = {}
        for fname, fdecl in decl.spec.fields.items():
            loc = ("fields", fname)
            if not _is_name(fname):
                raise RuleFileError(
                    decl.label, line_of(decl.raw, loc), f"'{fname}' is not a field name ({NAME})"
                )
            if fname in base.model_fields:
                raise RuleFileError(
                    decl.label,
                    line_of(decl.raw, loc),
                    f"field '{fname}' is already in '{decl.spec.extends}'",
                )
            fields[fname] = self._field(decl, fname, fdecl)
            self.labels.setdefault(name, {})[fname] = FieldLabel(
                fdecl.zh, fdecl.en, fdecl.article, self._choices(fdecl)
            )
        doc = None
        if decl.spec.zh is not None:
            doc = decl.spec.zh if decl.spec.en is None else f"{decl.spec.zh} / {decl.spec.en}"
        model = create_model(  # type: ignore[call-overload]
            name, __base__=base, __doc__=doc, __module__=__name__, **fields
        )
        self._building.pop()
        self.models[name] = model
        _LABELS[model] = self.labels.get(name, {})
        return model  # type: ignore[no-any-return]

    def _fail(self, decl: _Decl, fname: str, key: str | None, message: str) -> RuleFileError:
        loc: tuple[str, ...] = ("fields", fname) if key is None else ("fields", fname, key)
        return RuleFileError(decl.label, line_of(decl.raw, loc), f"{decl.name}.{fname}: {message}")

    def _field(self, decl: _Decl, fname: str, f: FieldDecl) -> tuple[Any, FieldInfo]:
        kind = f.type
        if kind not in SCALAR_TYPES and kind not in self.decls:
            raise self._fail(
                decl, fname, "type", f"unknown type '{kind}' ({', '.join(SCALAR_TYPES)} or a model)"
            )
        for key, kinds in _BOUNDS.items():
            if getattr(f, key) is not None and kind not in kinds:
                raise self._fail(decl, fname, key, f"'{key}' does not apply to a {kind} field")
        if f.header_prefix is not None and kind in SCALAR_TYPES:
            raise self._fail(decl, fname, "header_prefix", "only a field holding a model has one")
        constraints: dict[str, Any] = {}
        annotation: Any
        if kind in _SIMPLE:
            annotation = _SIMPLE[kind]
        elif kind == "int":
            if f.min is not None and f.max is not None and f.min > f.max:
                raise self._fail(decl, fname, "min", f"min {f.min} is above max {f.max}")
            annotation = Annotated[int, NotBool]
            constraints = {"ge": f.min, "le": f.max}
        elif kind == "text":
            if (f.min_length or 0) > (f.max_length if f.max_length is not None else 1 << 62):
                raise self._fail(decl, fname, "min_length", "min_length is above max_length")
            annotation, constraints = text_field(f.min_length, f.max_length)
        elif kind == "enum":
            annotation = self._enum(decl, fname, f)
        elif kind == "list":
            if f.items is None or f.items not in self.decls or self.decls[f.items].spec.base:
                raise self._fail(
                    decl, fname, "items", f"a list needs items: <a model>, not {f.items}"
                )
            if f.max_items is None:
                raise self._fail(decl, fname, None, "a list needs max_items")
            annotation = list[self._inner(decl, fname, f.items)]  # type: ignore[misc]
            constraints = {"max_length": f.max_items}
        else:
            if self.decls[kind].spec.base:
                raise self._fail(decl, fname, "type", f"'{kind}' is only a base of forms")
            annotation = self._inner(decl, fname, kind)
        constraints = {k: v for k, v in constraints.items() if v is not None}
        description = f.description or _description(f)
        if kind == "enum":  # every value with its labels, as Swagger UI shows a field
            values = f.values if f.values is not None else self.enums[f.enum or ""].values
            listed = "；".join(f"{v} {lab.zh} / {lab.en}" for v, lab in values.items())
            description += f"。取值 / values: {listed}"
        extra: dict[str, Any] = {"description": description}
        if f.examples is not None:
            extra["examples"] = f.examples
        if "default" in f.model_fields_set:
            if not f.required or f.default is None:
                raise self._fail(
                    decl, fname, "default", "a field with a default is not also required: false"
                )
            try:  # pydantic does not check defaults: a wrong one would reach the engines
                TypeAdapter(Annotated[annotation, Field(**constraints)]).validate_python(f.default)
            except ValidationError as exc:
                message = exc.errors()[0]["msg"]
                raise self._fail(decl, fname, "default", f"bad default: {message}") from exc
            return annotation, Field(default=f.default, **constraints, **extra)
        if f.required:
            return annotation, Field(**constraints, **extra)
        if kind == "list":
            return annotation, Field(default_factory=list, **constraints, **extra)
        return annotation | None, Field(default=None, **constraints, **extra)

    def _choices(self, f: FieldDecl) -> dict[Any, tuple[str, str]] | None:
        if f.type != "enum":
            return None
        values = f.values if f.values is not None else self.enums[f.enum or ""].values
        return {value: (labels.zh, labels.en) for value, labels in values.items()}

    def _inner(self, decl: _Decl, fname: str, name: str) -> type[Application]:
        if name in self._building:
            raise self._fail(decl, fname, "type", f"model '{name}' would contain itself")
        return self.model(name)

    def _enum(self, decl: _Decl, fname: str, f: FieldDecl) -> Any:
        if (f.values is None) == (f.enum is None):
            raise self._fail(decl, fname, None, "an enum has values: or enum: <a shared list>")
        if f.enum is not None:
            if f.enum not in self.enums:
                raise self._fail(decl, fname, "enum", f"no shared enum '{f.enum}'")
            spec = self.enums[f.enum]
            values, accept = spec.values, spec.accept_labels
        else:
            assert f.values is not None
            values, accept = f.values, False
        kinds = {type(v) for v in values}
        if len(kinds) != 1:
            raise self._fail(decl, fname, "values", "an enum's values are all numbers or all text")
        options = tuple(values)
        annotation: Any = Literal[options]  # type: ignore[valid-type]
        if kinds == {int}:
            annotation = Annotated[annotation, NotBool]
        if accept:
            annotation = Annotated[annotation, BeforeValidator(_by_label(values))]
        return annotation


def _is_name(name: str) -> bool:
    return re.fullmatch(NAME, name) is not None


def _description(f: FieldDecl) -> str:
    text = f"{f.zh} / {f.en}"
    if f.article:
        text += f"（{f.article}）"
    extra = _TYPE_DESCRIPTIONS.get(f.type)
    return f"{text}. {extra}" if extra else text


def _by_label(values: dict[Any, Any]) -> Any:
    """Accept a value by its id, its zh label or an alias (surrounding spaces dropped)."""
    lookup: dict[str, Any] = {}
    for value, labels in values.items():
        for text in (str(value), labels.zh, *labels.aliases):
            lookup[text] = value

    def canonical(value: object) -> object:
        if isinstance(value, str):
            return lookup.get(value.strip(), value)
        return value

    return canonical


def _labels(book: FormBook, builder: _Builder, decls: dict[str, _Decl]) -> None:
    """The audit's headers (受让方名称 -> counterparty.name) and choice labels, checked for
    clashes: one header or label means one thing."""

    def add(table: dict[str, str], key: str, value: str, decl: _Decl, fname: str) -> None:
        known = table.setdefault(key, value)
        if known != value:
            raise RuleFileError(
                decl.label,
                line_of(decl.raw, ("fields", fname)),
                f"{decl.name}.{fname}: '{key}' already names '{known}'",
            )

    def walk(name: str, path: str, prefix: str) -> None:
        decl = decls[name]
        chain = [decl]
        while chain[-1].spec.extends is not None:
            chain.append(decls[chain[-1].spec.extends])
        for current in reversed(chain):
            for fname, f in current.spec.fields.items():
                full = f"{path}{fname}"
                if f.type == "list":
                    assert f.items is not None
                    walk(f.items, "", "")
                elif f.type in decls:
                    inner = f.header_prefix if f.header_prefix is not None else f.zh
                    walk(f.type, f"{full}.", prefix + inner)
                else:
                    for header in (prefix + f.zh, *(prefix + a for a in f.aliases)):
                        add(book.headers, header, full, current, fname)
                if f.type == "enum":
                    values = f.values if f.values is not None else book.enums[f.enum or ""].values
                    for value, labels in values.items():
                        if isinstance(value, str):  # whole numbers are read as numbers
                            for text in (labels.zh, *labels.aliases):
                                add(book.choice_labels, text, value, current, fname)

    for form_id in book.forms:
        walk(_model_name(book, form_id), "", "")


def _model_name(book: FormBook, form_id: str) -> str:
    return book.forms[form_id].__name__
