"""Acceptance (验收) as data (tests/performance/acceptance.yaml), through the HTTP API; and
the targets each stcsm edition shows in the catalogue."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from service.rules.loader import RuleFileError, load_rules
from tests.casefiles import build_body
from tests.conftest import RULES
from tests.examples import examples

CASES = yaml.safe_load(
    (Path(__file__).parent / "performance" / "acceptance.yaml").read_text(encoding="utf-8")
)["cases"]
REQUEST_KEYS = ("stage", "reported", "task_book", "reported_on", "period_ends_on")


@pytest.mark.parametrize("case", [pytest.param(c, id=c["name"]) for c in CASES])
def test_acceptance(client: TestClient, case: dict[str, Any]) -> None:
    application = build_body(examples()[case["program"]]["value"], case)
    body = {"application": application, **{k: case[k] for k in REQUEST_KEYS if k in case}}
    response = client.post(f"/v1/programs/{case['program']}/acceptance", json=body)
    expect = case["expect"]
    assert response.status_code == expect.get("status", 200), response.text
    result = response.json()
    if response.status_code == 422:
        assert [d["path"] for d in result["detail"]] == expect["errors"]
        return
    if "passed" in expect:
        assert result["passed"] is expect["passed"]
    verdicts = {
        i["id"] + (" (task book)" if i["source"] == "task_book" else ""): i["met"]
        for i in result["indicators"]
    }
    for key, met in (expect.get("verdicts") or {}).items():
        assert verdicts[key] is met, key
    if expect.get("verdicts") == {}:
        assert verdicts == {}
    if "warnings" in expect:
        assert [w["rule"] for w in result["warnings"]] == expect["warnings"]
    if "tranche" in expect:
        tranche = result["tranche"]
        got = (
            None
            if tranche is None
            else [tranche[k] for k in ("stage", "share", "amount", "payable")]
        )
        assert got == expect["tranche"]
    for indicator in result["indicators"]:
        assert (
            indicator["article"] == "表1-9" and indicator["message_zh"] and indicator["message_en"]
        )


def test_each_edition_shows_its_targets(client: TestClient) -> None:
    p22 = client.get("/v1/programs/stcsm2022-concept-verification").json()
    p23 = client.get("/v1/programs/stcsm2023-concept-verification").json()
    assert [t["id"] for t in p22["targets"]] == [
        "early-results-verified",
        "verified-results-transferred",
    ]
    listed = {t["id"]: t for t in p23["targets"]}["results-listed"]
    assert listed == {
        "id": "results-listed",
        "article": "表1-9",
        "text_zh": "单个概念验证中心纳入概念验证成果清单项目数",
        "text_en": listed["text_en"],
        "target": "≥50项",
        "op": ">=",
        "value": "50",
        "unit": "项",
        "growth": False,
        "entity_types": None,
    }
    assert p23["acceptance"]["article"] == "C32" and p23["acceptance"]["within_months"] == 3
    assert client.get("/v1/programs/stcsm2022-tech-transfer").json()["targets"] == []
    assert client.get("/v1/programs/ipa2022-art19").json()["targets"] == []


def test_late_report_warning_names_the_due_date(client: TestClient) -> None:
    body = {
        "application": examples()["stcsm2023-concept-verification"]["value"],
        "stage": "acceptance",
        "reported": {},
        "period_ends_on": "2026-10-31",
        "reported_on": "2027-02-01",
    }
    result = client.post("/v1/programs/stcsm2023-concept-verification/acceptance", json=body).json()
    late = result["warnings"][0]
    assert late["rule"] == "late-report" and late["due"] == "2027-01-31"  # 31 Oct + 3 months
    assert "3个月内" in late["message_zh"]


def test_unknown_program_is_404(client: TestClient) -> None:
    response = client.post(
        "/v1/programs/nope/acceptance", json={"application": {}, "stage": "acceptance"}
    )
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("new", "message"),
    [("≥50斤", "Cannot read the target"), ("提升", "must be measurable")],
)
def test_an_unreadable_rule_file_target_stops_start_up(
    tmp_path: Path, new: str, message: str
) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)  # the stcsm forms build on rules/_forms.yaml
    path = rules / "stcsm" / "concept-verification.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("values: {2023: ≥50项}", f"values: {{2023: {new}}}"), "utf-8")
    with pytest.raises(RuleFileError) as caught:
        load_rules(rules)
    line = next(i for i, s in enumerate(path.read_text("utf-8").splitlines(), 1) if new in s)
    assert caught.value.path == "rules/stcsm/concept-verification.yaml"
    assert caught.value.line == line and message in caught.value.message


def test_a_broken_score_standard_stops_start_up(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    path = rules / "performance" / "_score.yaml"
    path.write_text(path.read_text("utf-8").replace('from: "75"', 'from: "95"'), "utf-8")
    with pytest.raises(
        RuleFileError, match=r"(?s)rules/performance/_score.yaml:1: .*highest bound"
    ):
        load_rules(rules)
