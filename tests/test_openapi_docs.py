"""Swagger UI a reviewer can read: every form field and enum value described in Chinese and
English, tags in both languages, no lock on open routes, and a failing example beside each
program's passing one."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from service.rules.loader import RuleBook

CJK = re.compile(r"[\u4e00-\u9fff]")
LATIN = re.compile(r"[A-Za-z]{2,}")


@pytest.fixture(scope="module")
def schema(app: FastAPI) -> dict[str, Any]:
    return app.openapi()


def test_every_form_field_and_enum_value_is_described_in_both_languages(
    schema: dict[str, Any], book: RuleBook
) -> None:
    components = schema["components"]["schemas"]
    checked = 0
    for name in book.forms.models:
        if name not in components:
            continue  # a base model only extended by forms
        for field, prop in components[name].get("properties", {}).items():
            text = prop.get("description", "")
            assert CJK.search(text) and LATIN.search(text), (name, field, text)
            choices = prop.get("enum") or next(
                (p["enum"] for p in prop.get("anyOf", []) if "enum" in p), None
            )
            for value in choices or []:
                assert re.search(rf"(^|[：；\s]){re.escape(str(value))} \S+ / ", text), (
                    name,
                    field,
                    value,
                )
            checked += 1
    assert checked > 80


def test_tags_are_described_in_chinese_and_english(schema: dict[str, Any]) -> None:
    described = {t["name"]: t["description"] for t in schema["tags"]}
    used = {tag for path in schema["paths"].values() for op in path.values() for tag in op["tags"]}
    assert used <= set(described)
    for text in described.values():
        assert CJK.search(text) and " / " in text


def test_open_routes_show_no_lock_and_guarded_ones_do(schema: dict[str, Any]) -> None:
    for path, item in schema["paths"].items():
        for method, op in item.items():
            if "x-roles" in op:
                assert op.get("security"), (method, path)
            elif path.startswith("/v1/programs") or path == "/v1/match":
                assert "security" not in op, (method, path)
                assert "无需API密钥" in op["description"], (method, path)


def test_each_program_offers_a_failing_example_that_fails(
    schema: dict[str, Any], client: TestClient, book: RuleBook
) -> None:
    calculate = schema["paths"]["/v1/programs/{program_id}/calculate"]["post"]
    offered = calculate["requestBody"]["content"]["application/json"]["examples"]
    for pid in book.programs:
        assert pid in offered
        failing = offered[f"{pid}-failing"]
        assert "不符合" in failing["summary"]
        response = client.post(f"/v1/programs/{pid}/calculate", json=failing["value"])
        assert response.status_code == 200, response.text
        result = response.json()
        assert result["eligible"] is False
        assert result["summary_zh"].startswith("不符合条件：")
        assert [r for r in result["reasons"] if not r["passed"]]
