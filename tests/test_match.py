"""POST /v1/match: which programs an organisation can apply to, from what is known of it."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.engine.python_eval import holds
from service.rules.expr import refs_of
from service.rules.loader import RuleBook
from tests.conftest import DISQUALIFIED_USCC
from tests.examples import examples

GOOD_STANDING = {
    "registered_in_shanghai": True,
    "operating_status": "normal",
    "credit_status": "good",
    "uscc": "91310000MA1FL0000N",
}


def _match(client: TestClient, body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    response = client.post("/v1/match", json=body)
    assert response.status_code == 200, response.text
    return {p["program_id"]: p for p in response.json()["programs"]}


def _split(value: dict[str, Any]) -> dict[str, Any]:
    """A whole application as a match body: its applicant, and the rest as facts."""
    facts = {k: v for k, v in value.items() if k != "applicant"}
    on = value["submitted_at"][:10]
    return {"applicant": value["applicant"], "facts": facts, "on": on}


@pytest.mark.parametrize("program_id", sorted(examples()))
def test_each_programs_passing_example_is_eligible(
    client: TestClient, book: RuleBook, program_id: str
) -> None:
    """As validated (a field left to its default is told). An optional field the example
    leaves out stays unknown to match, which never assumes "not supplied": it is asked for."""
    program = book.programs[program_id]
    whole = program.form.model_validate(examples()[program_id]["value"])
    found = _match(client, _split(whole.model_dump(mode="json", exclude_none=True)))[program_id]
    assert found["failed"] == []
    if found["status"] == "needs":
        for need in found["needs"]:
            assert program.scope.fields[need["field"]].optional, need
            assert getattr(whole, need["field"]) is None
    else:
        assert found["status"] == "eligible"


def test_every_entity_type(client: TestClient, book: RuleBook) -> None:
    """With a good standing and only the kind of organisation known, each program's entity
    condition decides as the full evaluation would; the rest is asked for."""
    form = next(iter(book.forms.forms.values()))
    choices = book.forms.label(form, "applicant.entity_type").choices  # type: ignore[union-attr]
    assert choices is not None
    for entity_type in choices:
        found = _match(
            client,
            {"applicant": {**GOOD_STANDING, "entity_type": entity_type}, "on": "2023-03-01"},
        )
        assert {p.split("-")[0] for p in found} == {"ipa2022"}  # stcsm is not in force
        for pid, result in found.items():
            program = book.programs[pid]
            for cond in program.conditions:
                keys = {r.key for r in refs_of(cond.node)}
                if keys == {"applicant__entity_type"}:
                    fails = not holds(cond.node, {"applicant__entity_type": entity_type})
                    failed = cond.id in {f["rule"] for f in result["failed"]}
                    assert fails == failed, (entity_type, pid, cond.id)
                    if fails:
                        assert result["status"] == "ineligible"
                        assert {"article", "message_zh", "message_en"} <= set(result["failed"][0])
            if result["status"] == "needs":
                assert all(n["text_zh"] and n["text_en"] for n in result["needs"])


def test_a_partial_profile_says_what_it_needs(client: TestClient) -> None:
    found = _match(client, {"applicant": {"entity_type": "university"}, "on": "2023-03-01"})
    art19 = found["ipa2022-art19"]
    assert art19["status"] == "needs"
    needs = {n["field"]: n for n in art19["needs"]}
    assert {"applicant.registered_in_shanghai", "applicant.uscc", "transactions"} <= set(needs)
    assert needs["transactions"]["text_zh"] == "专利许可转让"
    assert needs["transactions"]["text_en"] == "patents licensed or transferred"
    assert "submitted_at" not in needs  # 2023-03-01 lies wholly inside 第二十七条's period
    assert art19["max_award"] == {
        "kind": "per_item",
        "amount": "3000000.00",
        "article": "第十九条",
        "per_item": "1500.00",
        "rate": None,
        "tiers": None,
    }
    assert art19["window"] == {
        "from": "2022-11-09T00:00:00+08:00",
        "to": "2023-12-31T23:59:59+08:00",
    }
    # A hospital is no enterprise: 第十三条 fails whatever is missing.
    art13 = found["ipa2022-art13"]
    assert art13["status"] == "ineligible" and art13["needs"] == []
    assert art13["failed"][0]["article"] == "第十三条"


def test_items_decide_per_item_programs(client: TestClient) -> None:
    value = examples()["ipa2022-art19"]["value"]
    body = _split(value)
    one = dict(body["facts"]["transactions"][0])
    del one["contract_date"]
    body["facts"]["transactions"] = [one]
    art19 = _match(client, body)["ipa2022-art19"]
    assert art19["status"] == "needs"
    assert [n["field"] for n in art19["needs"]] == ["transactions[0].contract_date"]
    one["cnipa_recorded"] = False
    art19 = _match(client, body)["ipa2022-art19"]
    assert art19["status"] == "ineligible"
    assert [f["rule"] for f in art19["failed"]] == ["at-least-one-patent"]


def test_the_disqualification_list_needs_to_know_who_applies(client: TestClient) -> None:
    body = _split(examples()["ipa2022-art19"]["value"])
    del body["applicant"]["uscc"]
    art19 = _match(client, body)["ipa2022-art19"]
    assert [n["field"] for n in art19["needs"]] == ["applicant.uscc"]
    body["applicant"]["uscc"] = DISQUALIFIED_USCC
    art19 = _match(client, body)["ipa2022-art19"]
    assert art19["status"] == "ineligible"
    assert [(f["rule"], f["article"]) for f in art19["failed"]] == [
        ("not-disqualified", "第二十六条")
    ]


def _stcsm(client: TestClient, on: str, **extra: Any) -> dict[str, dict[str, Any]]:
    value = examples()["stcsm2022-concept-verification"]["value"]
    facts = {k: v for k, v in value.items() if k not in ("applicant", "submitted_at")}
    found = _match(client, {"applicant": value["applicant"], "facts": facts, "on": on, **extra})
    return {k: v for k, v in found.items() if k.endswith("concept-verification")}


def test_windows_of_the_guide_years(client: TestClient) -> None:
    # Inside the 2022 window (8月3日9:00–8月22日16:30); the 2023 guide is not yet in force.
    found = _stcsm(client, "2022-08-10")
    assert set(found) == {"stcsm2022-concept-verification"}
    assert found["stcsm2022-concept-verification"]["status"] == "eligible"
    assert found["stcsm2022-concept-verification"]["window"] == {
        "from": "2022-08-03T09:00:00+08:00",
        "to": "2022-08-22T16:30:00+08:00",
    }
    # Listed anyway when asked, marked as not in force, and outside its own window.
    found = _stcsm(client, "2022-08-10", include_closed=True)
    closed = found["stcsm2023-concept-verification"]
    assert closed["in_force"] is False and closed["status"] == "ineligible"
    assert [f["rule"] for f in closed["failed"]] == ["within-application-window"]
    assert closed["window"]["from"] == "2023-10-11T09:00:00+08:00"
    # After the 2022 window closed, though the guide is in force until the year's end.
    late = _stcsm(client, "2022-09-01")["stcsm2022-concept-verification"]
    assert late["status"] == "ineligible"
    assert [f["rule"] for f in late["failed"]] == ["within-application-window"]
    # The first and the last day: it depends on the hour, so the submission time is asked for.
    for day in ("2022-08-03", "2022-08-22"):
        edge = _stcsm(client, day)["stcsm2022-concept-verification"]
        assert edge["status"] == "needs"
        assert [n["field"] for n in edge["needs"]] == ["submitted_at"]
        assert edge["needs"][0]["text_zh"] == "申报时间"
    # The 2023 guide: in force and inside its window; the 2022 one no longer listed.
    found = _stcsm(client, "2023-10-20")
    assert set(found) == {"stcsm2023-concept-verification"}
    assert found["stcsm2023-concept-verification"]["status"] == "eligible"


def test_the_most_each_kind_of_award_pays(client: TestClient) -> None:
    found = _match(client, {"on": "2023-03-01"})
    assert found["ipa2022-art06"]["max_award"]["kind"] == "cap"
    assert found["ipa2022-art06"]["max_award"]["amount"] == "800000.00"
    assert found["ipa2022-art10-1"]["max_award"]["kind"] == "fixed"
    assert found["ipa2022-art20"]["max_award"]["kind"] == "rate"
    assert found["ipa2022-art20"]["max_award"]["rate"] == "0.001"
    tiers = found["ipa2022-art21"]["max_award"]
    assert tiers["kind"] == "tiers" and tiers["amount"] is None  # set per round
    assert all(p["status"] == "needs" for p in found.values())


def test_unknown_fields_and_bad_values_are_named(client: TestClient) -> None:
    response = client.post(
        "/v1/match",
        json={
            "applicant": {"entity_type": "castle", "colour": "red"},
            "facts": {"requested_amount": "1.234", "transactions": [{"patent_nr": "x"}]},
        },
    )
    assert response.status_code == 422
    paths = {d["path"]: d for d in response.json()["detail"]}
    assert {
        "applicant.colour",
        "facts.transactions[0].patent_nr",
        "applicant.entity_type",
        "facts.requested_amount",
    } == set(paths)
    assert paths["applicant.colour"]["type"] == "extra_forbidden"
