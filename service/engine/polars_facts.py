"""Facts for the batch backend: what a program's conditions read (``service.engine.facts``), plus
what its award plan reads (the requested amount, the tier, the duration, each item's base
amount) and the value items are told apart by (``distinct_by``), laid out as columns."""

from __future__ import annotations

from typing import Any

import polars as pl
from pydantic import BaseModel

from service.engine.facts import Context, extract
from service.engine.polars_decide import REC, SEQ
from service.engine.polars_eval import DTYPES, encode
from service.rules.expr import Ref
from service.rules.fields import Scope
from service.rules.program import Program


def _ref(scope: Scope, path: str, where: str) -> Ref | None:
    spec = scope.fields.get(path)
    return None if spec is None else Ref(where, tuple(path.split(".")), spec)


def _unique(refs: list[Ref | None]) -> list[Ref]:
    seen: dict[str, Ref] = {}
    for ref in refs:
        if ref is not None:
            seen.setdefault(ref.key, ref)
    return list(seen.values())


def app_refs(program: Program) -> list[Ref]:
    extra = [_ref(program.scope, name, "app") for name in program.plan.fields]
    return _unique([*program.facts, *extra])


def item_refs(program: Program) -> dict[str, list[Ref]]:
    out: dict[str, list[Ref]] = {}
    for group in program.item_groups:
        extra = [_ref(group.scope, group.distinct_by, "item")] if group.distinct_by else []
        base = program.plan.item_field
        if program.plan.items == group.list_name and base is not None:
            extra.append(_ref(group.scope, base, "item"))
        out[group.list_name] = _unique([*group.facts, *extra])
    return out


def _value(obj: Any, ref: Ref) -> Any:
    for part in ref.path:
        if obj is None:
            return None
        obj = getattr(obj, part, None)
    return obj


def application_rows(
    program: Program, application: BaseModel, context: Context
) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """One application's facts (unencoded): the engine's own extraction, plus award fields."""
    facts = extract(program, application, context)
    app = dict(facts.app)
    for ref in app_refs(program):
        if ref.key not in app and ref.aggregate is None and ref.path[0] != "context":
            value = _value(application, ref)
            if value is not None:
                app[ref.key] = value
    items: dict[str, list[dict[str, Any]]] = {}
    refs = item_refs(program)
    for group in program.item_groups:
        raw = getattr(application, group.list_name, None) or []
        rows = []
        for fact, item in zip(facts.items.get(group.list_name, []), raw, strict=True):
            row = dict(fact)
            for ref in refs[group.list_name]:
                if ref.key not in row:
                    value = _value(item, ref)
                    if value is not None:
                        row[ref.key] = value
            rows.append(row)
        items[group.list_name] = rows
    return app, items


def frame(
    rows: list[dict[str, Any]], refs: list[Ref], extra: dict[str, pl.DataType]
) -> pl.DataFrame:
    """Rows of facts (plus ``extra`` columns such as ``rec``) as typed, encoded columns."""
    schema: dict[str, pl.DataType] = dict(extra)
    schema.update({ref.key: DTYPES[ref.spec.kind] for ref in refs})
    data = {key: [encode(row.get(key)) for row in rows] for key in schema}
    return pl.DataFrame(data, schema=schema)


def application_frames(
    program: Program,
    applications: list[tuple[str, dict[str, Any], dict[str, list[dict[str, Any]]]]],
) -> tuple[pl.DataFrame, dict[str, pl.DataFrame]]:
    """``(rec, app facts, items)`` for many applications of one program, as batch frames."""
    apps = frame(
        [{REC: rec, **app} for rec, app, _ in applications],
        app_refs(program),
        {REC: pl.String()},
    )
    items: dict[str, pl.DataFrame] = {}
    for name, refs in item_refs(program).items():
        rows = [
            {REC: rec, SEQ: seq, **item}
            for rec, _, lists in applications
            for seq, item in enumerate(lists.get(name, []))
        ]
        items[name] = frame(rows, refs, {REC: pl.String(), SEQ: pl.Int64()})
    return apps, items
