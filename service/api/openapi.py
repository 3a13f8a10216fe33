"""OpenAPI: the request forms as components, a runnable Chinese example per program, stable
operation ids (so the committed openapi.yaml diffs stay readable)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from service.schemas.forms import FORMS

EXAMPLES_DIR = Path(__file__).parent / "examples"
REF = "#/components/schemas/{model}"


@cache
def examples() -> dict[str, dict[str, Any]]:
    """program id -> {"summary", "value"}: requests a reviewer can run from Swagger UI as they are."""
    return {
        p.stem: json.loads(p.read_text(encoding="utf-8"))
        for p in sorted(EXAMPLES_DIR.glob("*.json"))
    }


def application_body() -> dict[str, Any]:
    """The request body of check / calculate: one form per family, chosen by the program id."""
    return {
        "requestBody": {
            "required": True,
            "description": "申报材料，字段随项目所属表单而定 / the application; its form depends on the program",
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [{"$ref": REF.format(model=m.__name__)} for m in FORMS.values()]
                    },
                    "examples": examples(),
                }
            },
        }
    }


# Request models of bodies read with decode_json (exact decimals): their schemas are added to
# the components by build_openapi.
BODY_MODELS: list[type[BaseModel]] = []


def json_body(model: type[BaseModel], examples: dict[str, Any], description: str) -> dict[str, Any]:
    """``openapi_extra`` for a body validated by ``validate_body(model, ...)`` in the route."""
    if model not in BODY_MODELS:
        BODY_MODELS.append(model)
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {
                "application/json": {
                    "schema": {"$ref": REF.format(model=model.__name__)},
                    "examples": examples,
                }
            },
        }
    }


def operation_id(route: APIRoute) -> str:
    tag = route.tags[0] if route.tags else "default"
    return f"{tag}-{route.name}"


def build_openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
        tags=app.openapi_tags,
    )
    models = [*FORMS.values(), *BODY_MODELS]
    _, defs = models_json_schema([(m, "validation") for m in models], ref_template=REF)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name, definition in defs.get("$defs", {}).items():
        components.setdefault(name, definition)
    app.openapi_schema = schema
    return schema
