"""Indicator tables and score sheets as data (tests/performance/*.yaml), through the HTTP API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

HERE = Path(__file__).parent / "performance"


def _cases(name: str, key: str) -> list[Any]:
    data = yaml.safe_load((HERE / name).read_text(encoding="utf-8"))
    return [pytest.param(case, id=case["name"]) for case in data[key]]


@pytest.mark.parametrize("case", _cases("targets.yaml", "cases"))
def test_indicator_tables(client: TestClient, case: dict[str, Any]) -> None:
    response = client.post("/v1/performance/targets", json={"indicators": case["indicators"]})
    expect = case["expect"]
    assert response.status_code == expect.get("status", 200), response.text
    body = response.json()
    if response.status_code == 422:
        assert [d["path"] for d in body["detail"]] == expect["errors"]
        assert all(" / " in d["msg"] for d in body["detail"])  # Chinese and English
        return
    assert body["met"] is expect["met"]
    assert [i["met"] for i in body["indicators"]] == expect["verdicts"]
    counts = body["counts"]
    verdicts = expect["verdicts"]
    assert counts == {
        "met": verdicts.count(True),
        "not_met": verdicts.count(False),
        "unjudged": verdicts.count(None),
    }
    for out in body["indicators"]:
        assert out["message_zh"] and out["message_en"]
    if "growth_rates" in expect:
        assert [i["growth_rate"]["value"] for i in body["indicators"]] == expect["growth_rates"]


def test_a_target_is_shown_parsed(client: TestClient) -> None:
    body = client.post(
        "/v1/performance/targets",
        json={"indicators": [{"name": "x", "target": "≥100 亿元", "actual": "120亿元"}]},
    ).json()
    target = body["indicators"][0]["target"]
    assert target == {
        "kind": "quantitative",
        "text": "≥100 亿元",
        "op": ">=",
        "value": "100",
        "unit": "亿元",
        "base_value": "10000000000",
        "base_unit": "元",
    }
    bare = client.post(
        "/v1/performance/targets",
        json={"indicators": [{"name": "x", "target": "1000 次", "actual": "1200次"}]},
    ).json()["indicators"][0]["target"]
    assert bare["op"] == ">=" and bare["implied_op"] is True


@pytest.mark.parametrize("sheet", _cases("score-sheets.yaml", "sheets"))
def test_score_sheets(client: TestClient, sheet: dict[str, Any]) -> None:
    rows = [
        {
            k: v
            for k, v in row.items()
            if k in ("level1", "level2", "name", "weight", "score", "score_rate")
        }
        for row in sheet["rows"]
    ]
    response = client.post("/v1/performance/score", json={"rows": rows})
    expect = sheet["expect"]
    assert response.status_code == expect.get("status", 200), response.text
    body = response.json()
    if response.status_code == 422:
        assert [d["path"] for d in body["detail"]] == expect["errors"]
        return
    for key in ("total", "rate", "grade"):
        if key in expect:
            assert body[key] == expect[key], key
    if "subtotals" in expect:
        assert body["subtotals"] == expect["subtotals"]
    if "warnings" in expect:
        assert [w["rule"] for w in body["warnings"]] == expect["warnings"]
