"""Awards that carry their application (the JSON body of the contract): validated by the
program's form exactly as the service validates a request, and turned into the same facts
(service.engine.facts.extract), so that the audit judges what the service would have judged."""

from __future__ import annotations

from typing import Any

import polars as pl

from service.audit import findings as F
from service.audit.context import AuditContext
from service.engine.facts import Context
from service.engine.polars_decide import REC, SEQ, known_col
from service.engine.polars_facts import app_refs, application_rows, frame, item_refs
from service.errors import InvalidRequest, ServiceError
from service.schemas.body import decode_json, validate_body

LIST = "list"
BODY_LIMIT = 10_000_000


def _problem(record: dict[str, Any], detail: list[dict[str, Any]]) -> dict[str, Any]:
    paths = "; ".join(f"{d.get('path') or 'body'}: {d.get('msg')}" for d in detail[:5])
    return {
        "src": record.get("src"),
        "row": record.get("row"),
        "program_id": record.get("program_id"),
        "applicant_uscc": record.get("applicant_uscc"),
        "applicant_name": record.get("applicant_name"),
        "award_id": record.get("award_id"),
        "message_zh": f"申报内容不符合申报表：{paths}",
        "message_en": f"The application does not match its form: {paths}",
    }


def expand(
    ctx: AuditContext, records: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame | None, pl.DataFrame]:
    """Records with an ``application`` get its facts (they win over columns) and its items."""
    if "application" not in records.columns:
        return records, None, F.empty()
    bodies = records.filter(pl.col("application").is_not_null())
    if bodies.height == 0:
        return records.drop("application"), None, F.empty()
    facts: list[pl.DataFrame] = []
    items: list[pl.DataFrame] = []
    problems: list[dict[str, Any]] = []
    for record in bodies.iter_rows(named=True):
        program = ctx.book.get(record.get("program_id") or "")
        if program is None:
            continue  # reported as an unknown program
        try:
            body = decode_json(str(record["application"]).encode(), BODY_LIMIT)
            application = validate_body(program.form, body)
        except InvalidRequest as exc:
            problems.append(_problem(record, exc.extra.get("detail", [])))
            continue
        except ServiceError as exc:
            problems.append(_problem(record, [{"path": "body", "msg": exc.message_en}]))
            continue
        app, lists = application_rows(program, application, Context())
        app.setdefault("applicant_uscc", application.applicant.uscc)
        app.setdefault("applicant_name", application.applicant.name)
        row = {REC: record[REC], **app, **{known_col(n): True for n in lists}}
        extra: dict[str, pl.DataType] = {
            REC: pl.String(),
            "applicant_uscc": pl.String(),
            "applicant_name": pl.String(),
        }
        extra.update({known_col(n): pl.Boolean() for n in lists})
        facts.append(frame([row], app_refs(program), extra))
        refs = item_refs(program)
        for name, rows in lists.items():
            if rows:
                meta = {"src": record["src"], "row": record["row"], REC: record[REC], LIST: name}
                items.append(
                    frame(
                        [{**meta, SEQ: i, **r} for i, r in enumerate(rows)],
                        refs[name],
                        {
                            "src": pl.String(),
                            "row": pl.Int64(),
                            REC: pl.String(),
                            LIST: pl.String(),
                            SEQ: pl.Int64(),
                        },
                    )
                )
    out = records.drop("application")
    if facts:
        parsed = pl.concat(facts, how="diagonal_relaxed")
        out = out.join(parsed, on=REC, how="left", suffix=":json")
        for column in parsed.columns:
            if column == REC:
                continue
            if column in records.columns:
                out = out.with_columns(pl.coalesce(column + ":json", column).alias(column))
                out = out.drop(column + ":json")
    found = F.build(pl.DataFrame(problems), "invalid_application") if problems else F.empty()
    return out, (pl.concat(items, how="diagonal_relaxed") if items else None), found
