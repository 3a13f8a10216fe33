"""Every 422 item says what was wrong with its field in Chinese and English (message_zh /
message_en), beside the keys clients already read (loc, path, type, msg)."""

from __future__ import annotations

import copy
import re
from typing import Any

from fastapi.testclient import TestClient

from tests.examples import examples

CJK = re.compile(r"[\u4e00-\u9fff]")


def _detail(client: TestClient, url: str, body: Any) -> dict[str, dict[str, Any]]:
    response = client.post(url, json=body)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    for item in detail:
        assert {"loc", "path", "type", "msg", "message_zh", "message_en"} <= set(item)
        assert CJK.search(item["message_zh"]), item
        assert not CJK.search(item["message_en"].split("(")[0]), item
    return {d["path"]: d for d in detail}


def _art19() -> dict[str, Any]:
    return copy.deepcopy(examples()["ipa2022-art19"]["value"])


def _stcsm() -> dict[str, Any]:
    return copy.deepcopy(examples()["stcsm2022-tech-transfer"]["value"])


ART19 = "/v1/programs/ipa2022-art19/calculate"
STCSM = "/v1/programs/stcsm2022-tech-transfer/calculate"


def test_missing_field(client: TestClient) -> None:
    body = _art19()
    del body["applicant"]["name"]
    item = _detail(client, ART19, body)["applicant.name"]
    assert item["message_zh"] == "申报单位名称：缺少必填字段"
    assert item["message_en"] == "Name of the organisation: this field is required"


def test_unknown_field_and_the_form_it_belongs_to(client: TestClient) -> None:
    body = _art19()
    body["transactions"][0]["contract_amont"] = "1.00"  # a typo: no form has it
    body["loans"] = []  # 第二十条's form
    found = _detail(client, ART19, body)
    assert found["transactions[0].contract_amont"]["message_zh"] == "没有这个字段"
    assert found["transactions[0].contract_amont"]["message_en"] == "No such field"
    loans = found["loans"]
    assert loans["type"] == "extra_forbidden"  # the keys clients read are kept
    assert "ipa2022-loans（ipa2022-art20）" in loans["message_zh"]
    assert "it belongs to another form: ipa2022-loans (ipa2022-art20)" in loans["message_en"]
    # A field of another family: its form and (some of) its programs.
    body = _art19()
    body["requested_amount"] = "1.00"
    item = _detail(client, ART19, body)["requested_amount"]
    assert "ipa2022-support（ipa2022-art06、ipa2022-art07等18个项目）" in item["message_zh"]
    assert "stcsm-matched-grant" in item["message_en"]


def test_allowed_values_with_their_labels(client: TestClient) -> None:
    body = _art19()
    body["applicant"]["entity_type"] = "castle"
    body["transactions"][0]["kind"] = "gift"
    found = _detail(client, ART19, body)
    assert found["applicant.entity_type"]["message_zh"].startswith(
        "单位类型：应为以下之一：university（高校）、research_institute（科研机构）"
    )
    assert found["transactions[0].kind"]["message_en"] == (
        "Licence or transfer: must be one of: license (licence), transfer (transfer)"
    )
    body = _stcsm()
    body["duration_years"] = 7
    item = _detail(client, STCSM, body)["duration_years"]
    assert item["message_zh"] == "执行期：应为以下之一：1（1年）、2（2年）、3（3年）"


def test_bounds(client: TestClient) -> None:
    body = _stcsm()
    manager = body["tech_managers"][0]
    manager["full_time_years"] = -1
    found = _detail(client, STCSM, body)
    item = found["tech_managers[0].full_time_years"]
    assert item["type"] == "greater_than_equal"
    assert item["message_zh"].endswith("不能小于0") and item["message_en"].endswith(
        "must be at least 0"
    )
    body = _art19()
    body["applicant"]["name"] = ""
    item = _detail(client, ART19, body)["applicant.name"]
    assert item["message_zh"] == "申报单位名称：至少1个字符"


def test_money_format_says_its_real_limit(client: TestClient) -> None:
    body = _stcsm()
    body["requested_amount"] = "1234567890123456.00"  # 16 digits before the point
    body["self_funds"] = "1.234"
    found = _detail(client, STCSM, body)
    assert found["requested_amount"]["message_zh"] == "申请金额：金额整数部分最多15位（收到16位）"
    assert "at most 15 digits before the point (16 sent)" in found["requested_amount"]["message_en"]
    assert found["self_funds"]["message_zh"].endswith("金额最多两位小数（收到3位）")


def test_types_timestamps_and_identifiers(client: TestClient) -> None:
    body = _art19()
    body["submitted_at"] = "2023-01-01T00:00:00"
    body["transactions"][1]["counterparty"]["registered_in_shanghai"] = "yes"
    body["transactions"][2]["contract_date"] = "2023-02-30"
    body["applicant"]["uscc"] = "123"
    found = _detail(client, ART19, body)
    assert found["submitted_at"]["message_en"].startswith("Submitted at: a timestamp must carry")
    assert found["transactions[1].counterparty.registered_in_shanghai"]["message_zh"] == (
        "注册在本市：应为 true 或 false"
    )
    assert found["transactions[2].contract_date"]["message_zh"].startswith("合同日期：不是有效日期")
    assert found["applicant.uscc"]["message_zh"].startswith("统一社会信用代码：")


def test_json_and_match_errors_too(client: TestClient) -> None:
    response = client.post(ART19, content=b"{", headers={"content-type": "application/json"})
    item = response.json()["detail"][0]
    assert item["message_zh"].startswith("请求体不是有效的 JSON") and item["message_en"]
    found = _detail(
        client,
        "/v1/match",
        {"applicant": {"entity_type": "castle", "colour": "red"}, "facts": {"self_funds": "-1"}},
    )
    assert found["applicant.colour"]["message_zh"] == "没有这个字段（所有申报表均无此字段）"
    assert found["applicant.entity_type"]["message_zh"].startswith("单位类型：应为以下之一")
    assert found["facts.self_funds"]["message_zh"] == "自筹经费：金额不能为负"
