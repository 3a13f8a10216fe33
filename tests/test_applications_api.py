"""POST/GET /v1/applications on SQLite: stored as submitted, evaluated with the rules version,
idempotent retries, append-only re-evaluation, reviews, the 第二十六条 list and one application
per organisation per guide year."""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import func, select

from service.db.models import Application, Evaluation
from service.engine.base import EngineError
from service.rules.model import Statement
from tests.dbsupport import RULES, bank, client_for, example, sqlite_url, submit, uscc


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("applications")


@pytest.fixture(scope="module")
def api(folder: Path) -> Iterator[TestClient]:
    with client_for(sqlite_url(folder)) as client:
        yield client


def _count(api: TestClient, model: type[Any] = Application, **where: Any) -> int:
    with api.app.state.runtime.db.transaction(write=False) as session:  # type: ignore[attr-defined]
        query = select(func.count()).select_from(model)
        for name, value in where.items():
            query = query.where(getattr(model, name) == value)
        return int(session.exec(query).one())


def _failed(result: dict[str, Any]) -> dict[str, str]:
    return {r["rule"]: r["article"] for r in result["reasons"] if not r["passed"]}


# -- store, evaluate, read back ------------------------------------------------------------


def test_a_submission_is_stored_evaluated_and_read_back(api: TestClient) -> None:
    application = example("ipa2022-art20")
    response = submit(api, "ipa2022-art20", application)
    assert response.status_code == 201, response.text
    record = response.json()
    assert record["application"] == application
    assert record["applicant_uscc"] == application["applicant"]["uscc"]
    assert record["submitted_at"] == "2023-07-20T09:30:00+08:00"  # in the offset it was sent in
    assert record["received_at"] == "2023-07-20T09:30:00+08:00"  # the server's clock
    evaluation = record["evaluation"]
    version = api.app.state.runtime.book.version  # type: ignore[attr-defined]
    assert evaluation["rules_version"] == version
    assert evaluation["eligible"] is True
    assert evaluation["award"]["amount"] == "17345.67"
    assert [e["rules_version"] for e in record["evaluations"]] == [version]
    assert record["evaluations"][0]["award_amount"] == "17345.67"
    assert record["review"] is None

    again = api.get(f"/v1/applications/{record['id']}")  # as a reviewer: with the ledger
    assert again.status_code == 200
    assert {k: v for k, v in again.json().items() if k != "claims"} == record
    assert again.json()["claims"][0]["also_claimed_by"] == []


def test_an_ineligible_application_is_stored_with_its_reasons(api: TestClient) -> None:
    application = bank(7100, "17345.67")
    application["applicant"]["entity_type"] = "enterprise"
    record = submit(api, "ipa2022-art20", application).json()
    assert record["evaluation"]["eligible"] is False
    assert _failed(record["evaluation"]) == {"applicant-commercial-bank": "第二十条"}
    assert record["evaluation"]["award"]["amount"] == "0.00"


def test_amounts_are_stored_exactly_as_written(api: TestClient) -> None:
    application = bank(1, "1.00")
    raw = json.dumps({"program_id": "ipa2022-art20", "application": application})
    raw = raw.replace('"1000.00"', "1000.10")  # a plain JSON decimal, never a float
    response = api.post(
        "/v1/applications", content=raw, headers={"content-type": "application/json"}
    )
    assert response.status_code == 201, response.text
    assert response.json()["application"]["loans"][0]["disbursed_amount"] == "1000.10"
    assert response.json()["evaluation"]["award"]["amount"] == "1.00"


# -- idempotency ---------------------------------------------------------------------------


def test_a_retried_submission_returns_the_first_result_and_stores_once(api: TestClient) -> None:
    application = bank(2, "100.00")
    first = submit(api, "ipa2022-art20", application, key="retry-1")
    second = submit(api, "ipa2022-art20", application, key="retry-1")
    assert first.status_code == second.status_code == 201
    assert first.headers["Idempotent-Replayed"] == "false"
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.json() == first.json()
    assert _count(api, idempotency_key="retry-1") == 1
    assert _count(api, Evaluation, application_id=first.json()["id"]) == 1


def test_the_same_key_with_another_body_is_409_and_stores_nothing(api: TestClient) -> None:
    first = submit(api, "ipa2022-art20", bank(3, "100.00"), key="retry-2")
    before = _count(api)
    other = submit(api, "ipa2022-art20", bank(3, "100.01"), key="retry-2")
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_conflict"
    assert other.json()["application_id"] == first.json()["id"]
    assert other.json()["message_zh"] and other.json()["message_en"]
    assert _count(api) == before


def test_the_same_key_for_another_round_is_a_different_body(api: TestClient) -> None:
    round_id = api.post("/v1/rounds", json={"program_id": "ipa2022-art20", "name": "r"}).json()[
        "id"
    ]
    submit(api, "ipa2022-art20", bank(4, "100.00"), key="retry-3")
    assert (
        submit(api, "ipa2022-art20", bank(4, "100.00"), round_id, key="retry-3").status_code == 409
    )


def test_without_a_key_every_submission_is_stored(api: TestClient) -> None:
    before = _count(api)
    ids = {submit(api, "ipa2022-art20", bank(5, "100.00")).json()["id"] for _ in range(2)}
    assert len(ids) == 2 and _count(api) == before + 2


# -- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "paths"),
    [
        ({"program_id": "ipa2022-art20"}, ["application"]),
        ({"application": {}}, ["program_id"]),
        (
            {"program_id": "ipa2022-art20", "application": {}, "round": 1},
            ["round"],
        ),
        ({"program_id": "ipa2022-art20", "application": {}, "round_id": "one"}, ["round_id"]),
        ({"program_id": "ipa2022-art20", "application": []}, ["application"]),
    ],
)
def test_malformed_envelopes_are_422_naming_the_field(
    api: TestClient, body: dict[str, Any], paths: list[str]
) -> None:
    before = _count(api)
    response = api.post("/v1/applications", json=body)
    assert response.status_code == 422, response.text
    assert [d["path"] for d in response.json()["detail"]] == paths
    assert _count(api) == before


def test_a_bad_application_field_is_422_with_its_full_path(api: TestClient) -> None:
    application = bank(6, "100.00")
    application["loans"][0]["disbursed_amount"] = "100.001"
    application["applicant"]["uscc"] = "91310000MA1FL1A2BX"
    response = submit(api, "ipa2022-art20", application)
    assert response.status_code == 422
    assert {d["path"] for d in response.json()["detail"]} == {
        "application.loans[0].disbursed_amount",
        "application.applicant.uscc",
    }


def test_invalid_json_and_oversized_bodies(api: TestClient) -> None:
    response = api.post(
        "/v1/applications", content=b'{"program_id": ', headers={"content-type": "application/json"}
    )
    assert response.status_code == 422 and response.json()["detail"][0]["type"] == "json_invalid"


def test_an_unknown_program_is_404(api: TestClient) -> None:
    response = submit(api, "ipa2099-art99", example("ipa2022-art20"))
    assert response.status_code == 404 and response.json()["code"] == "unknown_program"


def test_the_round_must_exist_and_be_the_programs(api: TestClient) -> None:
    missing = submit(api, "ipa2022-art20", bank(7, "1.00"), round_id=9999)
    assert missing.status_code == 422
    assert [d["path"] for d in missing.json()["detail"]] == ["round_id"]
    other = api.post(
        "/v1/rounds",
        json={"program_id": "ipa2022-art21", "name": "t", "overrides": {"tier_amounts": {"1": 1}}},
    ).json()
    wrong = submit(api, "ipa2022-art20", bank(7, "1.00"), round_id=other["id"])
    assert wrong.status_code == 422 and "ipa2022-art21" in wrong.json()["detail"][0]["msg"]


def test_unknown_application_ids(api: TestClient) -> None:
    assert api.get("/v1/applications/99999").json()["code"] == "not_found"
    assert api.get("/v1/applications/99999").status_code == 404
    assert api.post("/v1/applications/99999/evaluations").status_code == 404
    assert api.post("/v1/applications/99999/approval", json={"approved": True}).status_code == 404
    assert api.get("/v1/applications/abc").status_code == 422


def test_an_engine_failure_stores_nothing(api: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: Any) -> Any:
        raise EngineError("simulated")

    monkeypatch.setattr(api.app.state.runtime.evaluator, "evaluate", broken)  # type: ignore[attr-defined]
    before = _count(api)
    response = submit(api, "ipa2022-art20", bank(8, "1.00"), key="engine-down")
    assert response.status_code == 500 and response.json()["code"] == "evaluation_failed"
    assert _count(api) == before
    monkeypatch.undo()
    assert submit(api, "ipa2022-art20", bank(8, "1.00"), key="engine-down").status_code == 201


# -- re-evaluation and review -------------------------------------------------------------


def test_reevaluating_under_newer_rules_keeps_the_old_decision(
    api: TestClient, folder: Path, tmp_path: Path
) -> None:
    record = submit(api, "ipa2022-art20", bank(7200, "17345.67")).json()
    newer = tmp_path / "rules"
    shutil.copytree(RULES, newer)
    art20 = newer / "ipa2022" / "art20.yaml"
    art20.write_text(
        art20.read_text(encoding="utf-8").replace('value: "0.1%"', 'value: "0.05%"'),
        encoding="utf-8",
    )
    with client_for(sqlite_url(folder), rules_dir=newer) as newer_api:
        response = newer_api.post(f"/v1/applications/{record['id']}/evaluations")
        new_version = newer_api.app.state.runtime.book.version  # type: ignore[attr-defined]
    assert response.status_code == 201, response.text
    old_version = record["evaluation"]["rules_version"]
    assert new_version != old_version
    history = api.get(f"/v1/applications/{record['id']}").json()["evaluations"]
    assert [(e["rules_version"], e["award_amount"]) for e in history] == [
        (old_version, "17345.67"),
        (new_version, "8672.83"),
    ]
    latest = api.get(f"/v1/applications/{record['id']}").json()["evaluation"]
    assert latest["rules_version"] == new_version and latest["award"]["amount"] == "8672.83"
    assert (
        api.get(f"/v1/applications/{record['id']}").json()["application"] == record["application"]
    )


def test_the_review_is_recorded_under_the_reviewers_key(api: TestClient) -> None:
    record = submit(api, "ipa2022-art20", bank(9, "10.00")).json()
    response = api.post(
        f"/v1/applications/{record['id']}/approval", json={"approved": True, "note": "同意"}
    )
    assert response.status_code == 200
    review = response.json()["review"]
    # Who reviewed is the key that sent it, never a name in the body.
    assert (review["approved"], review["reviewed_by"], review["note"]) == (
        True,
        "test reviewer",
        "同意",
    )
    assert api.get(f"/v1/applications/{record['id']}").json()["review"] == review
    impostor = api.post(
        f"/v1/applications/{record['id']}/approval",
        json={"approved": False, "reviewed_by": "局长"},
    )
    assert impostor.status_code == 422
    assert impostor.json()["detail"][0]["path"] == "reviewed_by"
    bad = api.post(f"/v1/applications/{record['id']}/approval", json={"approved": "yes"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["path"] == "approved"


# -- 第二十六条: the stored list ----------------------------------------------------------


def test_the_disqualification_list_is_added_to_checked_and_removed_with_a_record(
    api: TestClient,
) -> None:
    who = uscc(2600)
    application = bank(2600, "10.00")
    assert submit(api, "ipa2022-art20", application).json()["evaluation"]["eligible"] is True

    added = api.post(
        "/v1/admin/disqualifications",
        json={"uscc": who, "reason": "虚假材料", "decided_on": "2023-05-10", "added_by": "运营处"},
    )
    assert added.status_code == 201, added.text
    entry = added.json()
    # added_by in the body is ignored: who adds it is the admin key.
    assert (entry["uscc"], entry["active"], entry["added_by"]) == (who, True, "test admin")

    refused = submit(api, "ipa2022-art20", application).json()["evaluation"]
    assert refused["eligible"] is False
    assert _failed(refused)["not-disqualified"] == "第二十六条"
    checked = api.post("/v1/programs/ipa2022-art20/check", json=application).json()
    assert _failed(checked) == {"not-disqualified": "第二十六条"}

    twice = api.post(
        "/v1/admin/disqualifications",
        json={"uscc": who, "reason": "again", "decided_on": "2023-05-11", "added_by": "运营处"},
    )
    assert twice.status_code == 409 and twice.json()["code"] == "already_disqualified"

    removed = api.post(
        f"/v1/admin/disqualifications/{entry['id']}/removal",
        json={"removed_by": "复议办", "reason": "复议撤销"},
    )
    assert removed.status_code == 200
    assert removed.json()["active"] is False
    assert (removed.json()["removed_by"], removed.json()["removal_reason"]) == (
        "test admin",
        "复议撤销",
    )
    assert removed.json()["removed_at"]
    fresh = bank(2600, "10.00")
    fresh["loans"][0]["loan_id"] = "ZY-2600-B"  # the first loan is claimed already (the ledger)
    assert submit(api, "ipa2022-art20", fresh).json()["evaluation"]["eligible"] is True

    again = api.post(
        f"/v1/admin/disqualifications/{entry['id']}/removal",
        json={"removed_by": "x", "reason": "y"},
    )
    assert again.status_code == 409
    active = {e["uscc"] for e in api.get("/v1/admin/disqualifications").json()}
    everything = api.get("/v1/admin/disqualifications?include_removed=true").json()
    assert who not in active
    assert [e["id"] for e in everything if e["uscc"] == who] == [entry["id"]]  # never deleted


def test_list_entries_are_validated(api: TestClient) -> None:
    bad = api.post(
        "/v1/admin/disqualifications",
        json={
            "uscc": "91310000MA1FL1A2BX",
            "reason": "",
            "decided_on": "2023-13-01",
            "added_by": "x",
        },
    )
    assert bad.status_code == 422
    assert {d["path"] for d in bad.json()["detail"]} == {"uscc", "reason", "decided_on"}
    missing = api.post(
        "/v1/admin/disqualifications/99999/removal", json={"removed_by": "x", "reason": "y"}
    )
    assert missing.status_code == 404


def test_the_file_seeds_the_list_once_and_a_removal_stands(tmp_path: Path) -> None:
    listing = tmp_path / "disqualified.txt"
    listing.write_text(f"# 第二十六条\n{uscc(77)}\n", encoding="utf-8")
    url = sqlite_url(tmp_path)
    with client_for(url, disqualified_file=listing) as first:
        (entry,) = first.get("/v1/admin/disqualifications").json()
        assert entry["uscc"] == uscc(77) and entry["added_by"] == "seed:disqualified.txt"
        first.post(
            f"/v1/admin/disqualifications/{entry['id']}/removal",
            json={"removed_by": "运营处", "reason": "误列"},
        )
    with client_for(url, disqualified_file=listing) as restarted:
        assert restarted.get("/v1/admin/disqualifications").json() == []
        assert len(restarted.get("/v1/admin/disqualifications?include_removed=1").json()) == 1


# -- one application per organisation per guide year (表注4) --------------------------------

ONCE = Statement(
    id="one-application-per-guide-year",
    article="四（一）注4",
    zh="每家企业/机构同一年度仅能申报一个项目",
    en="An organisation may submit only one application per guide year",
)


def _once_per_applicant(client: TestClient, program_ids: list[str], guide_year: int) -> None:
    """Declare the rule on these programs, as a stcsm rule file does (``once_per_applicant``)."""
    programs = client.app.state.runtime.book.programs  # type: ignore[attr-defined]
    for pid in program_ids:
        declared = copy.copy(programs[pid])
        object.__setattr__(declared, "once_per_applicant", ONCE)
        object.__setattr__(declared, "guide_year", guide_year)
        programs[pid] = declared


def test_one_application_per_organisation_per_guide_year(tmp_path: Path) -> None:
    with client_for(sqlite_url(tmp_path)) as client:
        _once_per_applicant(client, ["ipa2022-art13", "ipa2022-art14"], 2023)
        first_body = example("ipa2022-art13")
        first = submit(client, "ipa2022-art13", first_body).json()
        assert first["evaluation"]["eligible"] is True
        assert {r["rule"]: r["passed"] for r in first["evaluation"]["reasons"]}[ONCE.id] is True

        # The same organisation again, for another program of the same guide year.
        second_body = example("ipa2022-art14")
        second_body["applicant"] = first_body["applicant"]
        second = submit(client, "ipa2022-art14", second_body).json()
        assert second["evaluation"]["eligible"] is False
        assert _failed(second["evaluation"]) == {ONCE.id: ONCE.article}
        assert str(first["id"]) in next(
            r["message_en"] for r in second["evaluation"]["reasons"] if r["rule"] == ONCE.id
        )
        assert second["evaluation"]["award"]["amount"] == "0.00"

        # Another organisation is not affected, and the first keeps passing on re-evaluation.
        other = example("ipa2022-art14")
        other["applicant"]["uscc"] = uscc(1401)
        assert submit(client, "ipa2022-art14", other).json()["evaluation"]["eligible"] is True
        again = client.post(f"/v1/applications/{first['id']}/evaluations").json()
        assert again["evaluation"]["eligible"] is True


def test_stcsm_guide_years_allow_one_application_each(tmp_path: Path) -> None:
    with client_for(sqlite_url(tmp_path)) as client:
        book = client.app.state.runtime.book  # type: ignore[attr-defined]
        wanted = ["stcsm2023-tech-transfer", "stcsm2023-open-innovation", "stcsm2022-tech-transfer"]
        if any(book.get(p) is None for p in wanted):
            pytest.skip("the stcsm rule files are not in this rule book yet")
        first = submit(client, wanted[0], example(wanted[0])).json()
        assert first["evaluation"]["eligible"] is True, _failed(first["evaluation"])
        second_body = example(wanted[1])
        second_body["applicant"] = example(wanted[0])["applicant"]
        second = submit(client, wanted[1], second_body).json()
        assert ONCE.id in _failed(second["evaluation"])
        earlier_year = example(wanted[2])
        earlier_year["applicant"] = example(wanted[0])["applicant"]
        result = submit(client, wanted[2], earlier_year).json()["evaluation"]
        assert ONCE.id not in _failed(result)


# -- the Swagger examples of the new operations run as they are ---------------------------


def test_every_new_swagger_example_runs_as_it_is(api: TestClient) -> None:
    spec = api.app.openapi()  # type: ignore[attr-defined]
    record = submit(api, "ipa2022-art20", bank(4242, "1.00")).json()
    entry_id = None
    ran = 0
    for path, operations in spec["paths"].items():
        if not path.startswith(("/v1/applications", "/v1/rounds", "/v1/admin")):
            continue
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if not content:
                continue
            for name, example_ in content["examples"].items():
                url = path.replace("{application_id}", str(record["id"]))
                if "{entry_id}" in url:
                    assert entry_id is not None
                    url = url.replace("{entry_id}", str(entry_id))
                response = api.request(method.upper(), url, json=example_["value"])
                assert response.status_code in (200, 201), (path, name, response.text)
                if path == "/v1/admin/disqualifications":
                    entry_id = response.json()["id"]
                ran += 1
    assert ran >= 7


def test_operation_ids_are_stable(api: TestClient) -> None:
    spec = api.app.openapi()  # type: ignore[attr-defined]
    ids = {op["operationId"] for path in spec["paths"].values() for op in path.values()}
    assert {
        "applications-submit_application",
        "applications-get_application",
        "applications-reevaluate_application",
        "applications-review_application",
        "rounds-create_round",
        "rounds-get_round",
        "rounds-allocate_round",
        "admin-list_disqualifications",
        "admin-add_disqualification",
        "admin-remove_disqualification",
    } <= ids
